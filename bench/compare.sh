#!/usr/bin/env bash
# loadgrade's agent vs wrk and oha, side by side in one run, on one machine.
#
# nginx (one worker pinned to core 0, `return 200`, keep-alive) is the target; each generator runs pinned to
# core 1 with the same connections and duration. Generators alternate, PAIRS rounds, and the script prints the
# median of the per-round ratios (absolute figures drift on a shared machine; ratios measured back to back do less).
#
# Usage: bench/compare.sh [PAIRS] [SECONDS] [CONNECTIONS]      defaults: 5 10 50
# Needs: nginx, wrk (apt-get install nginx wrk), oha (cargo install oha), GNU time, python3, taskset.
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${1:-5}
SECONDS_EACH=${2:-10}
CONNECTIONS=${3:-50}
PORT=${BENCH_PORT:-18089}
WORK=$(mktemp -d /tmp/loadgrade-bench.XXXXXX)
trap 'kill "$(cat "$WORK/nginx.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$WORK"' EXIT

need() { command -v "$1" >/dev/null || { echo "bench: $1 is missing ($2)" >&2; exit 2; }; }
need nginx "apt-get install nginx"
need wrk "apt-get install wrk"
need oha "cargo install oha"
need taskset "apt-get install util-linux"
need python3 "apt-get install python3"
[ -x /usr/bin/time ] || { echo "bench: GNU time is missing (apt-get install time)" >&2; exit 2; }
[ "$(nproc --all)" -ge 2 ] || { echo "bench: needs 2 cores (target on core 0, generator on core 1)" >&2; exit 2; }

[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bin loadgrade
LOADGRADE=$PWD/target/release/loadgrade

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
  keepalive_timeout 300s;
  server { listen 127.0.0.1:$PORT; location / { return 200 "ok\n"; } }
}
NGINX
nginx -c "$WORK/nginx.conf" -p "$WORK"
sleep 0.5
URL="http://127.0.0.1:$PORT/"

cat > "$WORK/plan.toml" <<PLAN
name = "bench"
[[scenario]]
name = "max"
kind = "http"
url = "$URL"
model = "closed"
connections = $CONNECTIONS
duration = "${SECONDS_EACH}s"
PLAN

# CPU seconds nginx's worker has used so far (to show whether the target was the bottleneck).
nginx_cpu() {
  local worker
  worker=$(pgrep -P "$(cat "$WORK/nginx.pid")" | head -1)
  awk '{ print ($14 + $15) / 100 }' "/proc/$worker/stat"
}
# Runs a generator function and appends the target's CPU share (% of one core) over its wall time.
measured() {
  local before after t0 t1 line
  before=$(nginx_cpu); t0=$(date +%s.%N)
  line=$("$@")
  after=$(nginx_cpu); t1=$(date +%s.%N)
  echo "$line $(python3 -c "print(round(100 * ($after - $before) / ($t1 - $t0), 1))")"
}

# Each run prints: requests/s, CPU seconds (user+system), max RSS (KiB), requests (then the target's CPU %).
run_wrk() {
  /usr/bin/time -f "%U %S %M" -o "$WORK/time" taskset -c 1 \
    wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" "$URL" > "$WORK/wrk.out"
  python3 - "$WORK" <<'PY'
import re, sys
w = sys.argv[1]
out = open(f"{w}/wrk.out").read()
reqs = int(re.search(r"(\d+) requests in", out).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
u, s, m = open(f"{w}/time").read().split()[-3:]
print(rps, float(u) + float(s), int(m), reqs)
PY
}
run_oha() {
  /usr/bin/time -f "%U %S %M" -o "$WORK/time" taskset -c 1 \
    oha -c "$CONNECTIONS" -z "${SECONDS_EACH}s" --no-tui --output-format json "$URL" > "$WORK/oha.json"
  python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
j = json.load(open(f"{w}/oha.json"))
rps = j["summary"]["requestsPerSec"]
reqs = sum(j.get("statusCodeDistribution", {}).values())
u, s, m = open(f"{w}/time").read().split()[-3:]
print(rps, float(u) + float(s), int(m), reqs)
PY
}
run_ours() {
  rm -rf "$WORK/report" "$WORK/runs.db"*
  /usr/bin/time -f "%U %S %M" -o "$WORK/time" taskset -c 1 \
    "$LOADGRADE" run "$WORK/plan.toml" --agents 1 --out "$WORK/report" --database "sqlite://$WORK/runs.db" \
    > /dev/null 2>&1 || true   # a pinned generator is graded INVALID on purpose; only the figures matter here
  python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
m_ = json.load(open(f"{w}/report/report.json"))["scenarios"][0]["metrics"]
u, s, m = open(f"{w}/time").read().split()[-3:]
print(m_["throughput_rps"], float(u) + float(s), int(m), m_["requests"])
PY
}

echo "loadgrade bench: $PAIRS rounds, $SECONDS_EACH s each, $CONNECTIONS connections, nginx on core 0, generators on core 1"
echo "machine: $(nproc --all) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
: > "$WORK/rows"
for i in $(seq 1 "$PAIRS"); do
  ours=$(measured run_ours); wrk=$(measured run_wrk); oha=$(measured run_oha)
  echo "round $i: loadgrade [$ours]  wrk [$wrk]  oha [$oha]   (req/s, CPU s, max RSS KiB, requests, nginx CPU %)"
  echo "$ours | $wrk | $oha" >> "$WORK/rows"
done

python3 - "$WORK/rows" <<'PY'
import statistics, sys
rows = [[list(map(float, part.split())) for part in line.split("|")] for line in open(sys.argv[1])]
def us_per_req(r): return r[1] / r[3] * 1e6
def med(xs): return statistics.median(xs)
print()
print("medians over rounds            loadgrade        wrk        oha")
print(f"requests/s                  {med([r[0][0] for r in rows]):>11,.0f} {med([r[1][0] for r in rows]):>10,.0f} {med([r[2][0] for r in rows]):>10,.0f}")
print(f"CPU-us per request          {med([us_per_req(r[0]) for r in rows]):>11.2f} {med([us_per_req(r[1]) for r in rows]):>10.2f} {med([us_per_req(r[2]) for r in rows]):>10.2f}")
print(f"max RSS (MiB)               {med([r[0][2] for r in rows])/1024:>11.1f} {med([r[1][2] for r in rows])/1024:>10.1f} {med([r[2][2] for r in rows])/1024:>10.1f}")
print(f"nginx worker CPU % (wall)   {med([r[0][4] for r in rows]):>11.0f} {med([r[1][4] for r in rows]):>10.0f} {med([r[2][4] for r in rows]):>10.0f}   (our run's wall time includes ~1.5 s of start-up and report)")
print()
print("median of per-round ratios   vs wrk    vs oha")
print(f"requests/s (higher better)   {med([r[0][0]/r[1][0] for r in rows]):>6.2f}x  {med([r[0][0]/r[2][0] for r in rows]):>6.2f}x")
print(f"CPU per request (lower)      {med([us_per_req(r[0])/us_per_req(r[1]) for r in rows]):>6.2f}x  {med([us_per_req(r[0])/us_per_req(r[2]) for r in rows]):>6.2f}x")
PY
