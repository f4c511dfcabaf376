#!/usr/bin/env bash
# Agent memory against hostile targets (issue 20): a standalone `loadgrade-agent` (release build) under `loadgrade
# serve`, running a plan of CONNECTIONS closed-model connections for SECONDS against `loadgrade-testbed --hostile
# KIND` (an endless header, a header trickled a byte every 10 ms, an endless chunk extension, 20,000 header lines),
# and, first, against the well-behaved testbed's /health as the reference. Prints per target: the agent's resident
# memory before the run and its peak (VmHWM, the kernel's own high-water mark, and the highest VmRSS sampled every
# 100 ms), requests and how they ended (errors_by_class from report.json), and the run's length.
#
# Usage: bench/hostile_rss.sh [CONNECTIONS] [SECONDS]   (default 50 connections, 10 s)
#   SKIP_BUILD=1 skips the release build; KEEP=1 keeps the temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."

connections="${1:-50}"
seconds="${2:-10}"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release -q -p loadgrade-coordinator -p loadgrade-agent -p loadgrade-testbed
fi
bin=target/release
dir=$(mktemp -d /tmp/loadgrade-hostile-rss.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "${KEEP:-0}" = 1 ] || rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
kib() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$2/status"; }

coord_port=$(free_port)
"$bin/loadgrade" serve --listen "127.0.0.1:$coord_port" --database "sqlite://$dir/store.db" >"$dir/serve.log" 2>&1 &
pids+=($!)
wait_port "$coord_port"

echo "# agent memory against hostile targets: $connections connections, ${seconds} s each, $(nproc) cores, $(uname -srm), $(date -u +%FT%TZ)"
echo
echo "| target | agent RSS before (MiB) | peak VmHWM (MiB) | peak VmRSS sampled (MiB) | requests | errors_by_class | run (s) |"
echo "|---|---|---|---|---|---|---|"

for kind in reference header-bomb slow-header chunk-extension-bomb many-headers; do
    # A fresh agent per target: its high-water mark is this target's alone.
    "$bin/loadgrade-agent" --coordinator "http://127.0.0.1:$coord_port" --name "rss-$kind" --allow-loopback \
        >"$dir/agent-$kind.log" 2>&1 &
    agent=$!
    pids+=("$agent")
    port=$(free_port)
    if [ "$kind" = reference ]; then
        "$bin/loadgrade-testbed" --listen "127.0.0.1:$port" >"$dir/target-$kind.log" 2>&1 &
        path=/health
    else
        "$bin/loadgrade-testbed" --listen "127.0.0.1:$port" --hostile "$kind" >"$dir/target-$kind.log" 2>&1 &
        path=/
    fi
    target=$!
    pids+=("$target")
    wait_port "$port"
    sleep 1
    before=$(kib VmRSS "$agent")
    cat >"$dir/$kind.toml" <<EOF
name = "hostile-rss-$kind"
preflight = "warn"
[[scenario]]
name = "h"
kind = "http"
url = "http://127.0.0.1:$port$path"
connections = $connections
duration = "${seconds}s"
timeout = "2s"
EOF
    peak=0
    started=$(date +%s.%N)
    "$bin/loadgrade" --quiet submit "$dir/$kind.toml" --coordinator "http://127.0.0.1:$coord_port" \
        --out "$dir/out-$kind" >"$dir/submit-$kind.log" 2>&1 &
    submit=$!
    while kill -0 "$submit" 2>/dev/null; do
        now=$(kib VmRSS "$agent" || echo 0)
        [ "${now:-0}" -gt "$peak" ] && peak=$now
        sleep 0.1
    done
    wait "$submit" || true
    took=$(echo "$(date +%s.%N) - $started" | bc)
    hwm=$(kib VmHWM "$agent")
    summary=$(python3 - "$dir/out-$kind/report.json" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"| no report ({e}) |"); sys.exit()
m = r["scenarios"][0]["metrics"]
e = {k: v for k, v in m["errors_by_class"].items() if v}
print(f"| {m['requests']} | {e or 'none'} |")
PY
)
    printf '| %s | %.1f | %.1f | %.1f %s %.1f |\n' "$kind" "$(echo "$before/1024" | bc -l)" \
        "$(echo "$hwm/1024" | bc -l)" "$(echo "$peak/1024" | bc -l)" "$summary" "$took"
    kill "$agent" "$target" 2>/dev/null || true
    wait "$agent" "$target" 2>/dev/null || true
done
