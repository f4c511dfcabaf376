#!/usr/bin/env bash
# README.md's "Multi-host quick start", command by command as written, on five hosts made of network namespaces:
# coord (10.20.0.5, also coord.example), box-1 and box-2 (load agents), target (the testbed, 10.20.0.20) and ci
# (check, submit, runs). It fails if a command fails or if the report's requests are not the testbed's own count.
# Needs root and `ip netns` (iproute2) and openssl; elsewhere it says why and skips, except under CI=true.
#
#   deploy/readme-multihost.sh            # binaries from target/debug (LOADGRADE_BIN_DIR=target/release for those)
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=$(cd "${LOADGRADE_BIN_DIR:-target/debug}" && pwd)
skip() {
  if [[ "${CI:-}" == true ]]; then echo "readme-multihost: $1 (under CI this fails)" >&2; exit 1; fi
  echo "readme-multihost: skipped: $1"; exit 0
}
[[ $(id -u) == 0 ]] || skip "needs root for network namespaces"
command -v ip >/dev/null || skip "no ip (iproute2)"
command -v openssl >/dev/null || skip "no openssl"
for b in loadgrade loadgrade-agent loadgrade-testbed; do
  [[ -x "$bin_dir/$b" ]] || { echo "readme-multihost: no $bin_dir/$b: cargo build first" >&2; exit 1; }
done
export PATH="$bin_dir:$PATH"

hosts=(coord:5 box-1:11 box-2:12 target:20 ci:30)
ns() { echo "lgq-$1"; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for h in "${hosts[@]}"; do ip netns del "$(ns "${h%%:*}")" 2>/dev/null || true; rm -rf "/etc/netns/$(ns "${h%%:*}")"; done
  ip netns del lgq-net 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The network: a bridge in a namespace of its own, one veth per host, 10.20.0.0/24; coord.example in each host's
# /etc/hosts (ip netns exec mounts /etc/netns/NAME/hosts over /etc/hosts).
ip netns add lgq-net || skip "ip netns add is not permitted here"
ip -n lgq-net link add br0 type bridge
ip -n lgq-net link set br0 up
i=0
for h in "${hosts[@]}"; do
  name=${h%%:*}; octet=${h##*:}; n=$(ns "$name"); i=$((i + 1))
  ip netns add "$n"
  ip link add "lgq$i" netns "$n" type veth peer name "p$i" netns lgq-net
  ip -n lgq-net link set "p$i" master br0 up
  ip -n "$n" addr add "10.20.0.$octet/24" dev "lgq$i"
  ip -n "$n" link set "lgq$i" up
  ip -n "$n" link set lo up
  mkdir -p "/etc/netns/$n"
  printf '127.0.0.1 localhost\n::1 localhost\n10.20.0.5 coord.example\n' > "/etc/netns/$n/hosts"
done
on() { local host=$1; shift; ip netns exec "$(ns "$host")" "$@"; }
wait_for() { # what, command...
  local what=$1; shift
  for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "readme-multihost: $what never came" >&2; return 1
}

cd "$work"
echo "== certificates and tokens (README, as written)"
loadgrade certs --out pki --coordinator-name coord.example --coordinator-name 10.20.0.5 --agent box-1 --agent box-2
(umask 077; printf 'submit %s\nread %s\n' "$(openssl rand -hex 24)" "$(openssl rand -hex 24)" > tokens)   # ROLE TOKEN per line
[[ $(stat -c %a tokens) == 600 ]] || { echo "tokens is not 0600" >&2; exit 1; }

echo "== coordinator box"
mkdir coord && cp -a pki tokens coord/
(cd coord && on coord loadgrade serve --listen 0.0.0.0:7700 --tls-cert pki/coordinator.pem --tls-key pki/coordinator.key \
    --tls-ca pki/ca.pem --tokens tokens > serve.log 2>&1) &
pids+=($!)

echo "== load boxes"
for b in box-1 box-2; do
  mkdir "$b"
  # Copying keys to a box keeps them private: install -m 600.
  install -m 600 "pki/agent-$b.pem" "pki/agent-$b.key" pki/ca.pem "$b/"
done
zone=(a b); k=0
for b in box-1 box-2; do
  (cd "$b" && HOME="$work/$b" on "$b" loadgrade-agent --coordinator https://coord.example:7700 --name "$b" \
      --allow 10.20.0.0/24 --label "zone=${zone[$k]}" --tls-cert "agent-$b.pem" --tls-key "agent-$b.key" \
      --tls-ca ca.pem > agent.log 2>&1) &
  pids+=($!); k=$((k + 1))
done

echo "== target box"
on target loadgrade-testbed --listen 10.20.0.20:8080 > testbed.log 2>&1 &
pids+=($!)
wait_for "the testbed" on ci curl -sf http://10.20.0.20:8080/health

echo "== CI box"
mkdir ci && cp pki/ca.pem ci/ && mkdir ci/pki && cp pki/ca.pem ci/pki/ && cp tokens ci/ && cd ci
(umask 077; awk '$1 == "submit" { print $2 }' tokens > submit.token; awk '$1 == "read" { print $2 }' tokens > read.token)
cat > plan.toml <<'PLAN'
name = "readme-multihost"
min_agents = 2
ready_timeout = "30s"

[[scenario]]
name = "items"
kind = "http"
url = "http://10.20.0.20:8080/api/items?limit=5"
rate = 300
connections = 8
duration = "4s"
thresholds = ["latency_ms.p95 < 1000", "success_rate >= 0.99"]
PLAN
# check, as the README says, once both agents are connected (it exits non-zero until then).
checked=false
for _ in $(seq 1 60); do
  if on ci loadgrade check plan.toml --coordinator https://coord.example:7700 --tls-ca pki/ca.pem --token-file submit.token \
    > check.txt 2>&1; then checked=true; break; fi
  sleep 0.5
done
cat check.txt
$checked || { echo "readme-multihost: check never passed" >&2; cat ../coord/serve.log ../box-1/agent.log >&2; exit 1; }
on ci curl -sf -X POST http://10.20.0.20:8080/_testbed/reset >/dev/null
# A modest open-model rate: five processes share this machine's cores, and a saturated agent would make it INVALID.
on ci loadgrade submit plan.toml --coordinator https://coord.example:7700 --tls-ca pki/ca.pem --token-file submit.token --out report/ \
  || { code=$?; echo "readme-multihost: submit exited $code (0 is PASS)" >&2; exit "$code"; }
on ci loadgrade runs --coordinator https://coord.example:7700 --tls-ca pki/ca.pem --token-file read.token | head -3

served=$(on ci curl -sf http://10.20.0.20:8080/_testbed/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
reported=$(python3 - report/report.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = r["scenarios"][0]["metrics"]
# What the target can have received: measured, warm-up and resent requests.
print(m["requests"] + m.get("warmup_requests", 0) + m.get("resent", 0))
PY
)
echo "testbed served $served requests; the report holds $reported"
[[ "$served" == "$reported" ]] || { echo "readme-multihost: the report's requests are not the testbed's count" >&2; exit 1; }
echo "readme-multihost: ok"
