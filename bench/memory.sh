#!/usr/bin/env bash
# Memory of our agent: max RSS for a short and a long run at 50 connections (must not grow with run length), and
# per connection at 10,000 concurrent keep-alive connections against the testbed.
#
# Usage: bench/memory.sh [SHORT_S] [LONG_S] [MANY]      defaults: 60 300 10000 (SHORT_S=0 skips the run-length part)
# Needs: nginx (apt-get install nginx), GNU time, python3, taskset.
set -euo pipefail
cd "$(dirname "$0")/.."

SHORT=${1:-60}
LONG=${2:-300}
MANY=${3:-10000}
PORT=${BENCH_PORT:-18090}
WORK=$(mktemp -d /tmp/loadgrade-memory.XXXXXX)
trap 'kill "$(cat "$WORK/nginx.pid" 2>/dev/null)" 2>/dev/null || true; kill "${TESTBED_PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v nginx >/dev/null || { echo "bench: nginx is missing (apt-get install nginx)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench: GNU time is missing (apt-get install time)" >&2; exit 2; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bin loadgrade --bin loadgrade-testbed
LOADGRADE=$PWD/target/release/loadgrade
TESTBED=$PWD/target/release/loadgrade-testbed
ulimit -n "$(ulimit -Hn)"  # agents and the testbed hold one descriptor per connection

cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
worker_cpu_affinity 01;
daemon on;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 1000000000;
  keepalive_timeout 600s;
  server { listen 127.0.0.1:$PORT; location / { return 200 "ok\n"; } }
}
NGINX
nginx -c "$WORK/nginx.conf" -p "$WORK"

plan() { # url connections duration_s
  cat > "$WORK/plan.toml" <<PLAN
name = "memory"
[[scenario]]
name = "m"
kind = "http"
url = "$1"
model = "closed"
connections = $2
duration = "${3}s"
timeout = "30s"
PLAN
}
# Prints: max RSS (KiB), requests, verdict.
run() {
  rm -rf "$WORK/report" "$WORK/runs.db"*
  /usr/bin/time -f "%M" -o "$WORK/time" taskset -c 1 \
    "$LOADGRADE" run "$WORK/plan.toml" --agents 1 --out "$WORK/report" --database "sqlite://$WORK/runs.db" \
    > /dev/null 2>&1 || true
  python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
r = json.load(open(f"{w}/report/report.json"))
m = r["scenarios"][0]["metrics"]
print(open(f"{w}/time").read().split()[-1], m["requests"], m["errors"], r["verdict"])
for reason in r["verdict_reasons"]:
    print("  why:", reason, file=sys.stderr)
PY
}

echo "loadgrade memory bench, $(nproc --all) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
short="0 0 0 -"; long="0 0 0 -"
if [ "$SHORT" != 0 ]; then
  plan "http://127.0.0.1:$PORT/" 50 "$SHORT";  short=$(run); echo "50 connections, ${SHORT} s: max RSS KiB, requests, errors, verdict = $short"
  plan "http://127.0.0.1:$PORT/" 50 "$LONG";   long=$(run);  echo "50 connections, ${LONG} s: max RSS KiB, requests, errors, verdict = $long"
fi

"$TESTBED" --listen 127.0.0.1:$((PORT + 1)) > /dev/null 2>&1 &
TESTBED_PID=$!
sleep 0.5
kill -0 "$TESTBED_PID" || { echo "bench: the testbed did not start" >&2; exit 1; }
plan "http://127.0.0.1:$((PORT + 1))/delay?ms=100" 50 10;      few=$(run);  echo "50 connections to the testbed, 10 s: $few"
plan "http://127.0.0.1:$((PORT + 1))/delay?ms=100" "$MANY" 10; many=$(run); echo "$MANY connections to the testbed, 10 s: $many"

python3 - "$short" "$long" "$few" "$many" "$MANY" <<'PY'
import sys
(short, _, _, _), (long_, _, _, _), (few, few_req, few_err, _), (many, many_req, many_err, _) = (
    a.split() for a in sys.argv[1:5])
short, long_, few, many = int(short), int(long_), int(few), int(many)
n = int(sys.argv[5])
print()
if short:
    print(f"max RSS, 50 connections: {short/1024:.1f} MiB short run, {long_/1024:.1f} MiB long run ({(long_/short - 1)*100:+.1f} %)")
if int(many_err) > int(many_req) // 100 or int(few_err) > int(few_req) // 100:
    print(f"per connection at {n}: not measured: the testbed runs had errors ({few_err}, {many_err}), so the connections were not all held")
else:
    print(f"per connection at {n}: {(many - few) / (n - 50):.1f} KiB ((RSS at {n} - RSS at 50) / {n - 50}); total {many/1024:.1f} MiB")
PY
