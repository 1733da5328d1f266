#!/usr/bin/env bash
# Page load times of vigil-monitor's web pages against a monitor holding
# about TARGETS × SERIES series (default 100 × 1,000 = 100k), scraped from
# vigil-loadgen at 5 s: each page fetched RUNS times with curl; prints the
# median and the maximum time to the last byte, and the page size.
#
#   bash benches/web-pages.sh [TARGETS] [SERIES] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
targets=${1:-100}
series=${2:-1000}
runs=${3:-10}
first_port=${FIRST_PORT:-25000}
cargo build --release -q -p vigil-examples --bin vigil-monitor --bin vigil-loadgen

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

target/release/vigil-loadgen "$targets" "$series" "$first_port" > "$work/targets.yml" &
pids+=($!)
sleep 1
{
    echo "global:"
    echo "  scrape_interval: 5s"
    echo "scrape_configs:"
    echo "- job_name: load"
    echo "  static_configs:"
    echo "  - targets:"
    sed 's/^/    /' "$work/targets.yml"
} > "$work/prometheus.yml"
port=$((first_port + targets + 1))
target/release/vigil-monitor --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address=127.0.0.1:$port >"$work/log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:$port"
want=$((targets * series))
for _ in $(seq 1 60); do
    have=$(curl -s "$base/api/v1/query?query=count(%7Bjob%3D%22load%22%7D)" | python3 -c 'import sys,json; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)' 2>/dev/null || echo 0)
    [ "$have" -ge "$want" ] && break
    sleep 2
done
sleep 20 # a few more scrapes, so the graph has points
echo "monitor holds $(curl -s "$base/api/v1/status/tsdb" | python3 -c 'import sys,json; print(json.load(sys.stdin)["data"]["headStats"]["numSeries"])') series"
printf '%-60s %10s %10s %10s\n' page median_ms max_ms bytes
for page in \
    "/graph" \
    "/graph?tab=table&expr=up" \
    "/graph?tab=table&expr=topk(10,loadgen_requests_0_total)" \
    "/graph?tab=graph&range=1m&expr=sum%20by%20(instance)(rate(loadgen_requests_0_total%5B30s%5D))" \
    "/targets" \
    "/service-discovery" \
    "/alerts" \
    "/rules" \
    "/status" \
    "/dashboard"; do
    times=()
    for _ in $(seq 1 "$runs"); do
        times+=("$(curl -s -o "$work/page" -w '%{time_total}' "$base$page")")
    done
    bytes=$(wc -c < "$work/page")
    printf '%s\n' "${times[@]}" | sort -n | awk -v p="$page" -v b="$bytes" '{ t[NR] = $1 } END { printf "%-60s %10.1f %10.1f %10d\n", p, t[int((NR + 1) / 2)] * 1000, t[NR] * 1000, b }'
done
