#!/bin/sh
# Head ingest, vigil beside Prometheus: runs `promtool tsdb bench write` and
# vigil's `tsdb_ingest_full` example on the same label sets, one after the
# other, PAIRS times, each under /usr/bin/time -v, and prints per run the
# samples/s (wall clock), samples per CPU-second (user + system: steadier on
# a shared machine) and peak RSS, with vigil/promtool ratios per pair.
#
#   benches/tsdb-vs-promtool.sh                 # 1 pair, 10,000 series x 3,000 scrapes
#   PAIRS=3 METRICS=10000 SCRAPES=3000 benches/tsdb-vs-promtool.sh
#   THREADS=1 benches/tsdb-vs-promtool.sh       # vigil ingesting from one thread
#
# Needs promtool (Debian's `prometheus` package), python3, and
# ../shared/corpus/bench/gen_bench_series.py beside the repository. Honours
# CARGO_TARGET_DIR. The promtool workload is described in
# ../shared/corpus/bench/README.md; the vigil example does the same (one
# sample per series per round, WAL on, split as promtool splits it: shards
# of 1,000 series, a commit per shard and round, from as many threads as
# cores; it prints the thread count).
set -eu

PAIRS=${PAIRS:-1}
METRICS=${METRICS:-10000}
SCRAPES=${SCRAPES:-3000}
# vigil's ingest threads (empty: the example's default, one per core).
THREADS=${THREADS:-}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
gen=$root/../shared/corpus/bench/gen_bench_series.py

command -v promtool >/dev/null || { echo "promtool not found (apt-get install prometheus)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time not found (apt-get install time)" >&2; exit 1; }
[ -f "$gen" ] || { echo "$gen not found" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
python3 "$gen" --lines "$METRICS" -o "$work/labels.json"
(cd "$root" && cargo build --quiet --release -p vigil-benches --example tsdb_ingest_full)
vigil=$target/release/examples/tsdb_ingest_full

# field LABEL FILE: the value after "LABEL: " in /usr/bin/time -v output.
field() { sed -n "s/^[[:space:]]*$1: //p" "$2" | head -n 1; }

# cpu FILE: user + system seconds.
cpu() { echo "$(field 'User time (seconds)' "$1") $(field 'System time (seconds)' "$1")" | awk '{ print $1 + $2 }'; }

samples=$((METRICS * SCRAPES))
printf '%-5s %-8s %12s %14s %10s %8s\n' pair store 'M samples/s' 'M samples/CPU-s' 'peak MiB' 'wall s'
i=1
while [ "$i" -le "$PAIRS" ]; do
    rm -rf "$work/promout"
    /usr/bin/time -v promtool tsdb bench write --metrics="$METRICS" --scrapes="$SCRAPES" \
        --out="$work/promout" "$work/labels.json" >"$work/prom.out" 2>"$work/prom.time"
    prom_rate=$(sed -n 's/.*samples\/sec: //p' "$work/prom.out" | awk '{ printf "%.2f", $1 / 1e6 }')
    prom_cpu=$(cpu "$work/prom.time")
    prom_rss=$(field 'Maximum resident set size (kbytes)' "$work/prom.time")

    /usr/bin/time -v "$vigil" "$work/labels.json" "$METRICS" "$SCRAPES" $THREADS \
        >"$work/vigil.out" 2>"$work/vigil.time"
    vigil_rate=$(sed -n 's/^vigil head: [0-9]* samples in [0-9.]* s = \([0-9.]*\) M samples\/s;.*/\1/p' "$work/vigil.out")
    vigil_rss=$(field 'Maximum resident set size (kbytes)' "$work/vigil.time")
    # The vigil process also reopens the head twice (replay, checkpoint):
    # its ingest-only peak RSS is the one it prints before reopening.
    vigil_ingest_rss=$(sed -n 's/^vigil head: .*peak RSS \([0-9]*\) MiB.*/\1/p' "$work/vigil.out")

    prom_wall=$(field 'Elapsed (wall clock) time (h:mm:ss or m:ss)' "$work/prom.time")
    vigil_wall=$(field 'Elapsed (wall clock) time (h:mm:ss or m:ss)' "$work/vigil.time")
    # promtool's CPU is its whole process (reading the labels, ingest,
    # closing); vigil's is the ingest phase as the example measures it
    # (its process also reopens the head twice).
    prom_per_cpu=$(echo "$samples $prom_cpu" | awk '{ printf "%.2f", $1 / $2 / 1e6 }')
    vigil_per_cpu=$(sed -n 's/^vigil head: [0-9]* samples in .* = \([0-9.]*\) M samples\/CPU-s$/\1/p' "$work/vigil.out")
    printf '%-5s %-8s %12s %14s %10s %8s\n' "$i" promtool "$prom_rate" "$prom_per_cpu" \
        "$((prom_rss / 1024))" "$prom_wall"
    printf '%-5s %-8s %12s %14s %10s %8s\n' "$i" vigil "$vigil_rate" "$vigil_per_cpu" \
        "$((vigil_rss / 1024)) ($vigil_ingest_rss ingest)" "$vigil_wall"
    echo "$prom_rate $vigil_rate $prom_per_cpu $vigil_per_cpu $prom_rss $vigil_rss $vigil_ingest_rss" | awk '{
        printf "pair %s ratios vigil/promtool: samples/s %.2fx, samples/CPU-s %.2fx, peak RSS %.2fx (whole process), %.2fx (ingest only)\n",
            "'"$i"'", $2 / $1, $4 / $3, $6 / $5, $7 * 1024 / $5 }'
    grep '^vigil head: reopened' "$work/vigil.out" | sed "s/^/pair $i /"
    i=$((i + 1))
done
