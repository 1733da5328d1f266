#!/usr/bin/env bash
# Remote write bench (not a test). Two figures:
#
# 1. Sender: our relay (store + /api/v1/write handler + RemoteWriter reading
#    the store's WAL, examples/tests/remote_bench.rs) and a real Prometheus
#    2.42 started with --web.enable-remote-write-receiver and a remote_write
#    entry do the same job on the same input in the same run: SERIES series
#    × ROUNDS rounds arrive by remote write, go into the store's WAL, and
#    the sender forwards them to a counting sink. Prints each relay's CPU
#    seconds (user+sys, /proc/PID/stat) and samples per CPU-second, and the
#    wall time until its sink has every sample. The relays run one after
#    the other so they do not share the 2 cores.
# 2. Backfill: vigil-backfill and promtool tsdb create-blocks-from
#    openmetrics on the same generated OpenMetrics file (samples/s).
#
#   bash benches/remote-write.sh [SERIES] [ROUNDS] [BACKFILL_SERIES] [BACKFILL_HOURS]
#
# Needs Debian's prometheus and promtool (scripts/test installs them).
# Everything listens on 127.0.0.1 and is stopped by process id.
set -euo pipefail
cd "$(dirname "$0")/.."
series=${1:-10000}
rounds=${2:-100}
bf_series=${3:-2000}
bf_hours=${4:-12}
port=${FIRST_PORT:-24100}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}

command -v prometheus >/dev/null || { echo "needs Debian's prometheus" >&2; exit 1; }
cargo build --release -q -p vigil-examples --bin vigil-backfill
bench=$(cargo test --release -q -p vigil-examples --test remote_bench --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*remote_bench[^"]*\)".*/\1/p' | tail -1)
[ -x "$bench" ] || { echo "could not build the remote_bench test binary" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cpu() { # user+sys seconds of PID
    awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
role() { # ROLE ADDR [env...]: starts a bench process, prints its pid
    local r=$1 addr=$2; shift 2
    env VIGIL_RW_BENCH="$r" VIGIL_RW_ADDR="$addr" "$@" "$bench" --exact "$r" --ignored --nocapture \
        >"$work/$r-${addr##*:}.log" 2>&1 &
    echo $!
}
wait_http() { # any HTTP answer will do
    for _ in $(seq 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
    echo "no answer from $1" >&2; exit 1
}
count() { curl -fs "http://$1/count" || echo 0; }

total=$((series * rounds))
run_one() { # NAME RELAY_PID RELAY_ADDR SINK_ADDR
    local name=$1 pid=$2 addr=$3 sink=$4
    local c0 t0 t1 c1
    c0=$(cpu "$pid")
    t0=$(date +%s.%N)
    env VIGIL_RW_BENCH=load VIGIL_RW_SERIES="$series" VIGIL_RW_ROUNDS="$rounds" \
        VIGIL_RW_TARGET="http://$addr/api/v1/write" "$bench" --exact load --ignored >"$work/load-$name.log" 2>&1
    while [ "$(count "$sink")" -lt "$total" ]; do sleep 0.05; done
    t1=$(date +%s.%N)
    c1=$(cpu "$pid")
    awk -v n="$name" -v s="$total" -v c="$(echo "$c1 - $c0" | bc -l)" -v w="$(echo "$t1 - $t0" | bc -l)" \
        'BEGIN { printf "%-16s %12d %10.2f %10.2f %14.0f %14.0f\n", n, s, w, c, s / w, s / c }'
}

echo "== sender: $series series × $rounds rounds = $total samples, remote write in → WAL → remote write out"
sink1=127.0.0.1:$((port)); sink2=127.0.0.1:$((port + 1))
ours=127.0.0.1:$((port + 2)); prom=127.0.0.1:$((port + 3))
pids+=("$(role sink "$sink1")"); pids+=("$(role sink "$sink2")")
wait_http "http://$sink1/count"; wait_http "http://$sink2/count"
mkdir -p "$work/ours" "$work/prom"
relay=$(role relay "$ours" VIGIL_RW_DIR="$work/ours" VIGIL_RW_SINK="http://$sink1/api/v1/write")
pids+=("$relay")
wait_http "http://$ours/"
cat >"$work/prom/prometheus.yml" <<YML
global: {scrape_interval: 1m}
remote_write:
- url: http://$sink2/api/v1/write
YML
prometheus --config.file="$work/prom/prometheus.yml" --storage.tsdb.path="$work/prom/data" \
    --web.listen-address="$prom" --web.enable-remote-write-receiver >"$work/prom/log" 2>&1 &
ppid=$!
pids+=("$ppid")
sleep 1
wait_http "http://$prom/-/ready"
printf "%-16s %12s %10s %10s %14s %14s\n" relay samples wall_s cpu_s samples/s samples/cpu_s
run_one vigil "$relay" "$ours" "$sink1"
run_one prometheus-2.42 "$ppid" "$prom" "$sink2"

echo
echo "== backfill: $bf_series series × $bf_hours h at 15 s"
om="$work/in.om"
awk -v n="$bf_series" -v h="$bf_hours" 'BEGIN {
    t0 = 1700000000; steps = h * 240
    print "# TYPE bench_metric gauge"
    for (i = 0; i < steps; i++) for (s = 0; s < n; s++)
        printf "bench_metric{series=\"%d\",job=\"bf\"} %d %d\n", s, (i * 7 + s) % 1000, t0 + i * 15
    print "# EOF"
}' >"$om"
samples=$((bf_series * bf_hours * 240))
echo "input: $(du -h "$om" | cut -f1), $samples samples"
t0=$(date +%s.%N)
/usr/bin/time -f "%e s wall, %U s user, %S s sys, %M KiB peak RSS" \
    "$CARGO_TARGET_DIR/release/vigil-backfill" openmetrics "$om" "$work/bf-ours" >"$work/bf-ours.log" 2>"$work/bf-ours.time"
t1=$(date +%s.%N)
echo "vigil-backfill:  $(tail -1 "$work/bf-ours.time"); $(echo "$samples / ($t1 - $t0)" | bc) samples/s"
tail -1 "$work/bf-ours.log"
if command -v promtool >/dev/null; then
    t0=$(date +%s.%N)
    /usr/bin/time -f "%e s wall, %U s user, %S s sys, %M KiB peak RSS" \
        promtool tsdb create-blocks-from openmetrics "$om" "$work/bf-prom" >"$work/bf-prom.log" 2>"$work/bf-prom.time"
    t1=$(date +%s.%N)
    echo "promtool 2.42:   $(tail -1 "$work/bf-prom.time"); $(echo "$samples / ($t1 - $t0)" | bc) samples/s"
fi
