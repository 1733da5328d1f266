#!/usr/bin/env bash
# Whole-process bench: vigil-monitor and a real Prometheus scrape the same
# local targets (vigil-loadgen: TARGETS × SERIES at a 1 s interval) at the
# same time for MINUTES; prints each one's CPU seconds (user+sys, from
# /proc/PID/stat) and peak RSS (VmHWM), and the ratios.
#
#   bash benches/monitor-vs-prometheus.sh [MINUTES] [TARGETS] [SERIES]
#
# Needs Debian's prometheus (scripts/test installs it). Everything listens
# on 127.0.0.1 and is stopped by process id at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-3}
targets=${2:-200}
series=${3:-1000}
first_port=${FIRST_PORT:-23000}

command -v prometheus >/dev/null || { echo "needs Debian's prometheus (scripts/test installs it)" >&2; exit 1; }
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
    echo "  scrape_interval: 1s"
    echo "  scrape_timeout: 1s"
    echo "scrape_configs:"
    echo "- job_name: load"
    echo "  static_configs:"
    echo "  - targets:"
    sed 's/^/    /' "$work/targets.yml"
} > "$work/prometheus.yml"

mkdir -p "$work/prom" "$work/vigil"
prom_port=$((first_port + targets + 1))
vigil_port=$((first_port + targets + 2))
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom/data" \
    --web.listen-address=127.0.0.1:$prom_port >"$work/prom/log" 2>&1 &
prom=$!
pids+=($prom)
target/release/vigil-monitor --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/vigil/data" \
    --web.listen-address=127.0.0.1:$vigil_port >"$work/vigil/log" 2>&1 &
vigil=$!
pids+=($vigil)

echo "scraping $targets targets × $series series at 1 s for $minutes min (both at once)..."
sleep $((minutes * 60))

# Both must have done the same work: every target up, and the samples they
# scraped (sum of scrape_samples_scraped over the run) within a few percent.
for port in $vigil_port $prom_port; do
    q='count(up == 1)'
    up=$(curl -s "http://127.0.0.1:$port/api/v1/query" --data-urlencode "query=$q" | python3 -c 'import sys,json; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
    q="sum(count_over_time(scrape_samples_scraped[${minutes}m]))"
    scrapes=$(curl -s "http://127.0.0.1:$port/api/v1/query" --data-urlencode "query=$q" | python3 -c 'import sys,json; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
    echo "port $port: targets up $up, scrapes in the run $scrapes"
done

clk=$(getconf CLK_TCK)
report() {
    local name=$1 pid=$2
    local ticks rss
    ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    awk -v n="$name" -v t="$ticks" -v c="$clk" -v r="$rss" 'BEGIN { printf "%s %.2f %.1f\n", n, t / c, r / 1024 }'
}
ours=$(report vigil-monitor "$vigil")
theirs=$(report prometheus "$prom")
printf '%-14s %10s %12s\n' process cpu_seconds peak_rss_MiB
for line in "$ours" "$theirs"; do
    set -- $line
    printf '%-14s %10s %12s\n' "$1" "$2" "$3"
done
set -- $ours; our_cpu=$2; our_rss=$3
set -- $theirs; their_cpu=$2; their_rss=$3
awk -v a="$our_cpu" -v b="$their_cpu" 'BEGIN { printf "cpu ratio (vigil/prometheus): %.3f\n", a / b }'
awk -v a="$our_rss" -v b="$their_rss" 'BEGIN { printf "rss ratio (vigil/prometheus): %.3f\n", a / b }'
