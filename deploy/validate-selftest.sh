#!/usr/bin/env bash
# Shows that deploy/validate.sh rejects broken files: each case breaks one file in a copy of deploy/ (one sed
# edit), runs the one check that covers it on the copy, and expects that check to fail saying the given words.
# A validator that starts passing what it should reject (a new version, a changed flag) fails this script.
#   deploy/validate-selftest.sh            every case (the plan cases too when LOADGRADE_BIN names a loadgrade)
#   deploy/validate-selftest.sh NAME...    those cases
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0
ran=0
only=("$@")

# case NAME CHECK FILE SED-SCRIPT EXPECTED: FILE (under deploy/) edited by SED-SCRIPT must make CHECK fail with
# EXPECTED (a fixed string) in what validate.sh prints.
case_() {
  local name=$1 check=$2 file=$3 edit=$4 expected=$5 dir out rc=0
  if ((${#only[@]})) && ! printf '%s\n' "${only[@]}" | grep -qxF "$name"; then return 0; fi
  ran=$((ran + 1))
  dir=$tmp/$name
  mkdir -p "$dir"
  cp -r "$here" "$dir/deploy"
  cp "$root/rust-toolchain.toml" "$dir/"
  sed -i -e "$edit" "$dir/deploy/$file"
  if cmp -s "$here/$file" "$dir/deploy/$file"; then
    echo "BROKEN CASE $name: the edit changed nothing in $file" >&2
    bad=$((bad + 1))
    return 0
  fi
  out=$(DEPLOY_DIR=$dir/deploy "$here/validate.sh" "$check" 2>&1) || rc=$?
  if ((rc == 1)) && grep -qF -- "$expected" <<<"$out"; then
    echo "rejected as expected: $name ($file): $(grep -F -- "$expected" <<<"$out" | head -1 | sed 's/^ *//')"
  else
    printf '%s\n' "$out" | sed 's/^/    /' >&2
    echo "NOT REJECTED: $name ($file): exit $rc, expected a failure saying: $expected" >&2
    bad=$((bad + 1))
  fi
}

started=$SECONDS
# systemd units and the sysctl file
case_ unit-unknown-key systemd systemd/loadgrade-coordinator.service \
  's/^NoNewPrivileges=yes/NoNewPrivilege=yes/' "Unknown key 'NoNewPrivilege'"
case_ unit-bad-value systemd systemd/loadgrade-agent.service \
  's/^ProtectSystem=strict/ProtectSystem=stricter/' "Failed to parse protect system value"
case_ unit-sandbox-removed systemd systemd/loadgrade-agent.service \
  '/^NoNewPrivileges=yes/,/^KeyringMode=private/d' "systemd-analyze security loadgrade-agent.service at most 2.0"
case_ unit-missing-binary-path systemd systemd/loadgrade-agent.service \
  's#^ExecStart=/usr/local/bin/loadgrade-agent#ExecStart=/usr/local/bin/loadgrade-agnet#' "is not executable"
case_ unit-unknown-variable systemd systemd/loadgrade-coordinator.service \
  's/^Environment=LOADGRADE_TOKENS=/Environment=LOADGRADE_TOKEN_FILE=/' "LOADGRADE_TOKEN_FILE is not a variable"
case_ sysctl-unknown-key systemd systemd/99-loadgrade-agent.conf \
  's/^net.ipv4.tcp_tw_reuse/net.ipv4.tcp_tw_resue/' "tcp_tw_resue: no such kernel setting"
case_ sysctl-uncommented systemd systemd/99-loadgrade-agent.conf \
  '/^# The most file descriptors/,/^# the kernel.s default/d' "fs.nr_open has no comment above it"
# Dockerfile
case_ dockerfile-untagged-base docker docker/Dockerfile \
  's/^FROM debian:bookworm-slim/FROM debian/' "DL3006"
case_ dockerfile-toolchain-drift docker docker/Dockerfile \
  's/^FROM rust:1.95.0-bookworm/FROM rust:1.94.0-bookworm/' "but rust-toolchain.toml pins 1.95.0"
case_ dockerfile-root-user docker docker/Dockerfile \
  '/^USER 10001:10001/d' "does not run as USER 10001"
# compose
case_ compose-unknown-key compose compose/compose.yaml \
  's/stop_grace_period: 45s/stop_grace_priod: 45s/' "'stop_grace_priod' was unexpected"
case_ compose-wrong-type compose compose/compose.yaml \
  's/^  read_only: true/  read_only: [true]/' "read_only: [True] is not of type 'boolean', 'string'"
case_ compose-undeclared-volume compose compose/compose.yaml \
  's/^  prometheus-data:$/  prometheus-store:/' "volume 'prometheus-data' is not declared"
case_ compose-variable-typo compose compose/compose.yaml \
  's/^  LOADGRADE_ALLOW: testbed/  LOADGRADE_ALOW: testbed/' "LOADGRADE_ALOW is not a variable"
# Prometheus
case_ prometheus-unknown-field prometheus compose/prometheus.yml \
  's/^  scrape_interval: 5s/  scrape_intervl: 5s/' "field scrape_intervl not found"
case_ prometheus-bad-promql prometheus compose/alerts.yml \
  's/expr: loadgrade_agents_connected == 0/expr: loadgrade_agents_connected == = 0/' "could not parse expression"
case_ prometheus-misnamed-metric prometheus compose/alerts.yml \
  's/expr: loadgrade_agents_connected == 0/expr: loadgrade_agent_connected == 0/' "loadgrade_agent_connected is not a coordinator metric"
case_ prometheus-wrong-target prometheus compose/prometheus.yml \
  's/"coordinator:9464"/"coordinator:9090"/' "does not scrape coordinator:9464"
# Grafana
case_ grafana-not-json grafana compose/grafana/dashboards/loadgrade-coordinator.json \
  '0,/"panels": \[/s//"panels": [,/' "Expecting value"
case_ grafana-unknown-metric grafana compose/grafana/dashboards/loadgrade-coordinator.json \
  's/sum by (state) (loadgrade_runs)/sum by (state) (loadgrade_runs_total)/' "loadgrade_runs_total is not a coordinator metric"
case_ grafana-bad-promql grafana compose/grafana/dashboards/loadgrade-coordinator.json \
  's/sum by (state) (loadgrade_runs)/sum by (state) (loadgrade_runs/' "unclosed left parenthesis"
case_ grafana-other-datasource grafana compose/grafana/dashboards/loadgrade-coordinator.json \
  '0,/"uid": "prometheus"/s//"uid": "mimir"/' "data source uid 'mimir' is not a provisioned one"
# Kubernetes
case_ kubernetes-wrong-type kubernetes kubernetes/agent-deployment.yaml \
  's/replicas: 3/replicas: three/' "'three' is not of type 'integer'"
case_ kubernetes-unknown-field kubernetes kubernetes/coordinator-deployment.yaml \
  '0,/readOnlyRootFilesystem: true/s//readOnlyRootFileSystem: true/' "'readOnlyRootFileSystem' was unexpected"
case_ kubernetes-unknown-kind kubernetes kubernetes/coordinator-service.yaml \
  's/^kind: Service/kind: Servcie/' "Couldn't find schema for kind Servcie"
case_ kubernetes-not-listed kubernetes kubernetes/kustomization.yaml \
  '/^  - networkpolicy.yaml/d' "does not list networkpolicy.yaml"
case_ kubernetes-root-pod kubernetes kubernetes/testbed.yaml \
  's/runAsNonRoot: true/runAsNonRoot: false/' "runAsNonRoot is not true"
case_ kubernetes-variable-typo kubernetes kubernetes/agent-deployment.yaml \
  's/name: LOADGRADE_AGENT_NAME/name: LOADGRADE_NAME/' "LOADGRADE_NAME is not a variable"
# plans (they need a built loadgrade: CI runs them after the tests)
if [[ -n ${LOADGRADE_BIN:-} ]]; then
  case_ plan-wrong-type plans compose/plan.toml \
    's/^rate = 300/rate = "fast"/' 'invalid type: string "fast", expected i64'
  case_ plan-unknown-field plans kubernetes/plan-configmap.yaml \
    's/^    duration = "15s"/    duraton = "15s"/' 'unknown field `duraton`'
fi

if ((ran == 0)); then
  echo "deploy/validate-selftest.sh: no case named ${only[*]}" >&2
  exit 2
fi
if ((bad)); then
  echo "deploy/validate-selftest.sh: $bad of $ran broken copies were not rejected as expected" >&2
  exit 1
fi
echo "deploy/validate-selftest.sh: all $ran broken copies rejected in $((SECONDS - started)) s"
