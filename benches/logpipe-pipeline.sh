#!/usr/bin/env bash
# Whole-process bench of vigil-logpipe: vigil-sidecar tails a generated nginx
# combined log (1 GiB by default) from its head and writes it to a file
# output as JSON lines, with the issue's configuration:
#
#   [SERVICE] Flush 1
#   [INPUT]   Name tail, Path <log>, Read_From_Head On, Refresh_Interval 1,
#             Mem_Buf_Limit 64MB, DB <file>, Parser <parser>, Exit_On_Eof On
#   [OUTPUT]  Name file, Match *, Path <dir>, File <name>, Format plain
#
# in three variants: no parser, the JSON parser (on the same records written
# as JSON lines), and fluent-bit's nginx regex parser (remote, host, user,
# time, method, path, code, size, referer, agent; Time_Format
# %d/%b/%Y:%H:%M:%S %z). Exit_On_Eof (a fluent-bit tail key too) ends the
# run once the file is read; the pipeline then flushes and exits, so
# /usr/bin/time -v measures the whole job: wall time and peak RSS.
#
# Usage: benches/logpipe-pipeline.sh [SIZE_MB] [VARIANTS...]
#   SIZE_MB   size of each generated log (default 1024)
#   VARIANTS  any of: none json regex (default all three)
# WORK=<dir> keeps the generated files there (default: a temporary dir,
# removed at the end). The sidecar is built in release mode first.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=${1:-1024}
shift || true
VARIANTS=${*:-none json regex}
TARGET=${CARGO_TARGET_DIR:-target}
KEEP=${WORK:+1}
WORK=${WORK:-$(mktemp -d /tmp/logpipe-bench.XXXXXX)}
mkdir -p "$WORK"
[ -z "$KEEP" ] && trap 'rm -rf "$WORK"' EXIT

cargo build --release -q -p vigil-examples --bin vigil-sidecar
BIN="$TARGET/release/vigil-sidecar"

# One 4 MiB block of varied lines, repeated up to the size (generating
# every line at random would make the generator the slow part).
gen() { # $1 = nginx|json, $2 = output file
    [ -s "$2" ] && [ "$(stat -c %s "$2")" -ge $((SIZE_MB << 20)) ] && return
    python3 - "$1" "$2" "$SIZE_MB" <<'PY'
import random, sys
kind, out, size_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
rnd = random.Random(42)
methods = ["GET"] * 8 + ["POST", "PUT", "DELETE", "HEAD"]
paths = ["/", "/index.html", "/api/v1/items", "/api/v1/users/{}", "/static/app.{}.js",
         "/search?q=term{}&page={}", "/images/photo{}.jpg", "/healthz"]
agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
          "curl/8.5.0", "kube-probe/1.29", "Go-http-client/1.1"]
refs = ["-", "https://example.com/", "https://example.com/search?q=rust", "https://news.example.org/a/{}"]
months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
lines = []
total = 0
while total < 4 << 20:
    ip = "%d.%d.%d.%d" % (rnd.randint(1, 223), rnd.randint(0, 255), rnd.randint(0, 255), rnd.randint(1, 254))
    t = "%02d/%s/2026:%02d:%02d:%02d +0000" % (rnd.randint(1, 28), rnd.choice(months), rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 59))
    m = rnd.choice(methods)
    p = rnd.choice(paths).format(rnd.randint(1, 99999), rnd.randint(1, 50))
    code = rnd.choice([200] * 12 + [201, 204, 301, 304, 400, 404, 500, 503])
    size = rnd.randint(0, 200000)
    ref = rnd.choice(refs).format(rnd.randint(1, 9999))
    ua = rnd.choice(agents)
    if kind == "nginx":
        l = '%s - - [%s] "%s %s HTTP/1.1" %d %d "%s" "%s"\n' % (ip, t, m, p, code, size, ref, ua)
    else:
        l = ('{"remote":"%s","host":"-","user":"-","time":"%s","method":"%s","path":"%s",'
             '"code":%d,"size":%d,"referer":"%s","agent":"%s"}\n') % (ip, t, m, p, code, size, ref, ua)
    lines.append(l)
    total += len(l)
block = "".join(lines).encode()
with open(out, "wb") as f:
    written = 0
    while written < size_mb << 20:
        f.write(block)
        written += len(block)
PY
}

run() { # $1 = variant
    local v=$1 log parser_line=""
    case $v in
        none) log="$WORK/nginx.log" ;;
        json) log="$WORK/json.log"; parser_line="    Parser            json_bench" ;;
        regex) log="$WORK/nginx.log"; parser_line="    Parser            nginx_bench" ;;
    esac
    local dir="$WORK/$v"
    rm -rf "$dir"; mkdir -p "$dir/out"
    cat > "$dir/parsers.conf" <<'CONF'
[PARSER]
    Name        nginx_bench
    Format      regex
    Regex       ^(?<remote>[^ ]*) (?<host>[^ ]*) (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^\"]*?)(?: +\S*)?)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^\"]*)" "(?<agent>[^\"]*)")
    Time_Key    time
    Time_Format %d/%b/%Y:%H:%M:%S %z

[PARSER]
    Name        json_bench
    Format      json
CONF
    cat > "$dir/fluent-bit.conf" <<CONF
[SERVICE]
    Flush             1
    Parsers_File      parsers.conf

[INPUT]
    Name              tail
    Path              $log
    Read_From_Head    On
    Refresh_Interval  1
    Mem_Buf_Limit     64MB
    DB                $dir/tail.db
$parser_line
    Exit_On_Eof       On

[OUTPUT]
    Name              file
    Match             *
    Path              $dir/out
    File              out.jsonl
    Format            plain
CONF
    sync
    /usr/bin/time -v "$BIN" -c "$dir/fluent-bit.conf" 2> "$dir/time.txt" || { cat "$dir/time.txt"; exit 1; }
    local bytes lines_in lines_out wall rss
    bytes=$(stat -c %s "$log")
    lines_in=$(wc -l < "$log")
    lines_out=$(wc -l < "$dir/out/out.jsonl")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/time.txt")
    cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$dir/time.txt")
    python3 - "$v" "$bytes" "$lines_in" "$lines_out" "$wall" "$rss" "$cpu" <<'PY'
import sys
v, b, li, lo, wall, rss, cpu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), float(sys.argv[7])
secs = 0.0
for part in wall.split(":"):
    secs = secs * 60 + float(part)
print(f"{v:6} {b / 1e6 / secs:8.1f} MB/s {li / secs / 1e3:8.0f} k lines/s  peak RSS {rss / 1024:6.1f} MiB  "
      f"wall {secs:6.2f} s  CPU {cpu:6.2f} s  lines in {li} out {lo}{'' if li == lo else '  MISMATCH'}")
PY
    rm -rf "$dir/out"
}

for v in $VARIANTS; do
    case $v in
        none|regex) gen nginx "$WORK/nginx.log" ;;
        json) gen json "$WORK/json.log" ;;
        *) echo "unknown variant $v (none json regex)" >&2; exit 2 ;;
    esac
done
echo "vigil-sidecar, ${SIZE_MB} MiB per run, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for v in $VARIANTS; do run "$v"; done
