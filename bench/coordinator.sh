#!/usr/bin/env bash
# Coordinator scale (issue 14): `loadgrade serve` on loopback with a throwaway SQLite store, and N simulated agents
# (coordinator/examples/scale_agents, its own process) running one run of SECONDS on it, for each N. A fresh
# coordinator per N. Prints one table row per N:
#   - coordinator CPU: % of one core, (utime+stime) from /proc/PID/stat over the run (StartRun to its final event);
#   - RSS before agents, at the peak (sampled every 250 ms during the run) and at the run's end, and per agent:
#     (RSS - RSS before agents) / N;
#   - intake latency: an interval's send to its acknowledgement (the coordinator checks, stores and acknowledges it,
#     and merges it right after in the same task), p50/p99/max, measured by the harness;
#   - WatchRun latency: an interval's send to the first WatchRun progress event whose request count covers it;
#   - intervals sent, stored (rows in the store) and dropped (sent - stored), and what the report counted;
#   - WatchRun's longest gap between events while the run was running.
# The agents send no load: their figures are simulated, and the store holding their run is deleted.
#
# Usage: bench/coordinator.sh [N...] [SECONDSs]    e.g. bench/coordinator.sh 100 1000 20s
#   N: plain numbers (default 100 1000 2000 5000); SECONDS: a number ending in s (default 60s).
#   SKIP_BUILD=1 skips the release build; PORT (default 7719); KEEP=1 keeps the temporary folders.
set -euo pipefail
cd "$(dirname "$0")/.."

agents=()
seconds=60
for a in "$@"; do
    case "$a" in
        *s) seconds="${a%s}" ;;
        *) agents+=("$a") ;;
    esac
done
[ ${#agents[@]} -gt 0 ] || agents=(100 1000 2000 5000)
port="${PORT:-7719}"

# Each simulated agent holds a connection: one descriptor in the harness and one in the coordinator.
ulimit -n "$(ulimit -Hn)"
max_n=$(printf '%s\n' "${agents[@]}" | sort -n | tail -1)
if [ "$(ulimit -n)" -lt $((max_n + 1000)) ]; then
    echo "open-file limit $(ulimit -n) is too low for $max_n agents (raise the hard limit: ulimit -Hn)" >&2
    exit 1
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release -q -p loadgrade-coordinator --bin loadgrade --example scale_agents
fi
serve=target/release/loadgrade
harness=target/release/examples/scale_agents

echo "# coordinator benchmark: N = ${agents[*]}, ${seconds} s each, $(nproc) cores, $(uname -srm), $(date -u +%FT%TZ)"
echo "# simulated agents (no load sent, figures simulated); one run per N"
echo
echo "| N | coord. CPU (% of a core) | RSS before / peak / end (MiB) | KiB per agent (peak / end) | intake send→ack p50 / p99 / max (ms) | WatchRun send→progress p50 / p99 (s) | intervals sent / stored / dropped | report intervals | WatchRun max gap (s) | harness CPU (%) |"
echo "|---|---|---|---|---|---|---|---|---|---|"

for n in "${agents[@]}"; do
    dir=$(mktemp -d /tmp/loadgrade-coord-bench.XXXXXX)
    db="sqlite://$dir/bench.db"
    # Every simulated agent dials from 127.0.0.1: the per-source cap (default 1,024) must hold them all.
    "$serve" serve --listen "127.0.0.1:$port" --database "$db" \
        --max-connections $((n + 1000)) --max-connections-per-source $((n + 100)) >"$dir/serve.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
        sleep 0.1
    done
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "loadgrade serve did not start (see $dir/serve.log)" >&2
        exit 1
    fi
    "$harness" --coordinator "http://127.0.0.1:$port" --agents "$n" --seconds "$seconds" --watch-pid "$pid" \
        >"$dir/summary.json" 2>"$dir/harness.log" || {
        echo "harness failed at N=$n (see $dir/harness.log)" >&2
        kill "$pid" 2>/dev/null || true
        exit 1
    }
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    run=$(jq -r .run_id "$dir/summary.json")
    stored=$(sqlite3 "${db#sqlite://}" "SELECT count(*) FROM intervals WHERE run_id = '$run'")
    jq -r --argjson stored "$stored" '
        def f(x; d): if x == null then "-" else (x * pow(10; d) | round / pow(10; d) | tostring) end;
        "| \(.agents) | \(f(.coordinator_cpu_percent; 0)) | \(f(.rss_before_mib; 0)) / \(f(.rss_peak_mib; 0)) / \(f(.rss_end_mib; 0))"
        + " | \(f(.kib_per_agent_peak; 1)) / \(f(.kib_per_agent_end; 1))"
        + " | \(f(.ack_ms_p50; 1)) / \(f(.ack_ms_p99; 1)) / \(f(.ack_ms_max; 0))"
        + " | \(f(.watch_reflect_s_p50; 2)) / \(f(.watch_reflect_s_p99; 2))"
        + " | \(.intervals_sent) / \($stored) / \(.intervals_sent - $stored)"
        + " | \(.report_intervals) | \(f(.watch_max_gap_s; 2)) | \(f(.harness_cpu_percent; 0)) |"
        + (if .final_state != "finished" then " run ended \(.final_state)" else "" end)
        + (if .sessions_broken > 0 then " \(.sessions_broken) sessions broke" else "" end)
    ' "$dir/summary.json"
    if [ "${KEEP:-0}" = 1 ]; then echo "# kept $dir" >&2; else rm -rf "$dir"; fi
done
