#!/usr/bin/env bash
# loadgrade's cache scenario vs redis-benchmark (GET, pipelining off), side by side in one run, on one machine.
#
# A redis-server of the script's own (no persistence) runs pinned to core 0; each generator runs pinned to core 1
# with the same connections. Every GET is a hit: redis-benchmark's key space is filled first; ours is filled by the
# scenario's warm-up (its misses fetch a 0 ms origin, the testbed, also on core 0) and the measured window is all
# hits. Generators alternate, ROUNDS times; the script prints the medians of the per-round ratios: GETs per second,
# and GETs per CPU second of the generator (our process also holds the coordinator and pays for the warm-up, so the
# per-CPU ratio is a floor).
#
# Usage: bench/cache.sh [ROUNDS] [SECONDS] [CONNECTIONS] [KEYS]      defaults: 5 10 50 1000
# Needs: redis-server and redis-benchmark (apt-get install redis-server redis-tools), GNU time, python3, taskset.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-5}
SECONDS_EACH=${2:-10}
CONNECTIONS=${3:-50}
KEYS=${4:-1000}
PORT=${BENCH_REDIS_PORT:-18379}
WORK=$(mktemp -d /tmp/loadgrade-cache-bench.XXXXXX)
cleanup() {
  kill "$(cat "$WORK/redis.pid" 2>/dev/null)" 2>/dev/null || true
  exec 3>&- 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null || { echo "bench: $1 is missing ($2)" >&2; exit 2; }; }
need redis-server "apt-get install redis-server"
need redis-benchmark "apt-get install redis-tools"
need taskset "apt-get install util-linux"
need python3 "apt-get install python3"
[ -x /usr/bin/time ] || { echo "bench: GNU time is missing (apt-get install time)" >&2; exit 2; }

[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bin loadgrade
LOADGRADE=$PWD/target/release/loadgrade

taskset -c 0 redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
  --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log"
# The origin for our warm-up's misses: the testbed, pinned beside Redis; it lives while fd 3 is open.
exec 3> >(taskset -c 0 "$LOADGRADE" testbed-process --listen 127.0.0.1:0 > "$WORK/testbed.out")
sleep 1
ORIGIN=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$WORK/testbed.out" | head -1)
[ -n "$ORIGIN" ] || { echo "bench: the testbed did not start" >&2; exit 1; }

cat > "$WORK/plan.toml" <<PLAN
name = "cache-bench"
[[scenario]]
name = "get"
kind = "cache"
redis = "redis://127.0.0.1:$PORT/0"
origin = "$ORIGIN/api/complete?key={key}&ms=0&capacity=100000&size=64"
key_space = $KEYS
connections = $CONNECTIONS
warmup = "2s"
duration = "${SECONDS_EACH}s"
PLAN

# Fill redis-benchmark's key space (key:000000000000 .. ) once.
redis-benchmark -h 127.0.0.1 -p "$PORT" -t set -n $((KEYS * 20)) -r "$KEYS" -d 64 -q > /dev/null

# Each run prints: GETs/s, CPU seconds (user+system), GETs, wall seconds.
run_redis_benchmark() {
  local n=$((80000 * SECONDS_EACH))   # about as long as our window at its usual rate
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$WORK/time" taskset -c 1 \
    redis-benchmark -h 127.0.0.1 -p "$PORT" -t get -c "$CONNECTIONS" -n "$n" -r "$KEYS" -P 1 --csv > "$WORK/rb.csv"
  t1=$(date +%s.%N)
  python3 - "$WORK" "$n" "$t0" "$t1" <<'PY'
import csv, sys
w, n, t0, t1 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
rows = [r for r in csv.reader(open(f"{w}/rb.csv")) if r and r[0].startswith("GET")]
rps = float(rows[0][1])
u, s = open(f"{w}/time").read().split()[-2:]
print(rps, float(u) + float(s), n, t1 - t0)
PY
}
run_ours() {
  local t0 t1
  rm -rf "$WORK/report" "$WORK/runs.db"*
  t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$WORK/time" taskset -c 1 \
    "$LOADGRADE" run "$WORK/plan.toml" --agents 1 --out "$WORK/report" --database "sqlite://$WORK/runs.db" \
    > /dev/null 2>&1 || true   # a pinned generator may be graded INVALID; only the figures matter here
  t1=$(date +%s.%N)
  python3 - "$WORK" "$t0" "$t1" <<'PY'
import json, sys
w, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
m = json.load(open(f"{w}/report/report.json"))["scenarios"][0]["metrics"]
u, s = open(f"{w}/time").read().split()[-2:]
assert m["misses"] * 100 <= m["requests"], f"the window was not all hits: {m['misses']} misses"
print(m["throughput_rps"], float(u) + float(s), m["requests"], t1 - t0)
PY
}

echo "loadgrade cache bench: $ROUNDS rounds, $SECONDS_EACH s, $CONNECTIONS connections, $KEYS keys; redis-server on core 0, generators on core 1"
echo "machine: $(nproc --all) cores, $(uname -r), $(redis-server --version | cut -d' ' -f3), $(date -u +%Y-%m-%dT%H:%MZ)"
: > "$WORK/rows"
for i in $(seq 1 "$ROUNDS"); do
  ours=$(run_ours); rb=$(run_redis_benchmark)
  echo "round $i: loadgrade [$ours]  redis-benchmark [$rb]   (GETs/s, CPU s, GETs, wall s)"
  echo "$ours | $rb" >> "$WORK/rows"
done

python3 - "$WORK/rows" <<'PY'
import statistics, sys
rows = [[list(map(float, part.split())) for part in line.split("|")] for line in open(sys.argv[1])]
med = statistics.median
# GETs per CPU second of the generator: ours counts the whole process (coordinator, warm-up, report) against the
# window's GETs only, so it is a floor.
per_cpu = lambda r: r[2] / r[1]
print()
print("medians over rounds          loadgrade   redis-benchmark")
print(f"GETs/s                     {med([r[0][0] for r in rows]):>10,.0f}   {med([r[1][0] for r in rows]):>10,.0f}")
print(f"GETs per CPU second        {med([per_cpu(r[0]) for r in rows]):>10,.0f}   {med([per_cpu(r[1]) for r in rows]):>10,.0f}")
print()
print("median of per-round ratios (loadgrade / redis-benchmark)")
print(f"GETs/s                       {med([r[0][0] / r[1][0] for r in rows]):.2f}x")
print(f"GETs per CPU second          {med([per_cpu(r[0]) / per_cpu(r[1]) for r in rows]):.2f}x")
PY
