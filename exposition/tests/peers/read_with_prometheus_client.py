"""Reads an exposition with the Python reference client (prometheus_client)
and prints its families as JSON, for tests/peers.rs to compare with what
vigil-exposition parsed.

usage: read_with_prometheus_client.py text|openmetrics FILE
"""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families as text_families
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as om_families,
)


def number(v):
    # JSON has no NaN or infinities: spell them the way the exposition does.
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
    return float(v)


def main():
    fmt, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        body = f.read()
    parse = text_families if fmt == "text" else om_families
    out = []
    for fam in parse(body):
        samples = []
        for s in fam.samples:
            ex = None
            if getattr(s, "exemplar", None) is not None:
                ex = {
                    "labels": sorted(s.exemplar.labels.items()),
                    "value": number(s.exemplar.value),
                }
            samples.append(
                {
                    "name": s.name,
                    "labels": sorted(s.labels.items()),
                    "value": number(s.value),
                    "exemplar": ex,
                }
            )
        out.append(
            {
                "name": fam.name,
                "type": fam.type,
                "unit": getattr(fam, "unit", ""),
                "help": fam.documentation,
                "samples": samples,
            }
        )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
