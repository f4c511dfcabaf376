#!/usr/bin/env bash
# Validates deploy/ with the checks that run without what these files deploy onto: no Docker daemon, no systemd
# as PID 1, no cluster. Every check runs, each problem is printed, and the script exits 1 if any check failed.
#
#   deploy/validate.sh                 systemd docker compose prometheus grafana kubernetes
#   deploy/validate.sh compose ...     only those
#   LOADGRADE_BIN=target/debug/loadgrade deploy/validate.sh plans
#                                      the plans in compose/ and kubernetes/ with `loadgrade validate`
#
# Installs what it lacks (as root: Debian packages systemd, prometheus for promtool, python3-venv) and a
# virtualenv from PyPI (validate-requirements.txt) in target/deploy-validate/, reused while that file is unchanged.
# DEPLOY_DIR=DIR checks a copy of deploy/ instead (REPO_ROOT: the folder holding rust-toolchain.toml, default
# DIR/..). LOADGRADE_VALIDATE_DOCKER_BUILD=1 also builds the image when a Docker daemon answers (minutes).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
deploy=$(cd "${DEPLOY_DIR:-$here}" && pwd)
root=$(cd "${REPO_ROOT:-$deploy/..}" && pwd)
venv=${LOADGRADE_VALIDATE_VENV:-$here/../target/deploy-validate/venv}
checks=("$@")
((${#checks[@]})) || checks=(systemd docker compose prometheus grafana kubernetes)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=()
started=$SECONDS

fail() { # what failed
  echo "FAIL: $*"
  failed+=("$*")
}

# clean LABEL CMD...: CMD must exit 0 and print nothing; otherwise what it printed is shown and LABEL fails.
clean() {
  local label=$1 out rc=0
  shift
  out=$("$@" 2>&1) || rc=$?
  if ((rc != 0)) || [[ -n $out ]]; then
    printf '%s\n' "$out" | sed 's/^/    /'
    fail "$label (exit $rc${out:+, output above})"
  else
    echo "ok: $label"
  fi
}

# succeeds LABEL CMD...: CMD must exit 0 (tools that report success in words); its output is shown on failure.
succeeds() {
  local label=$1 out rc=0
  shift
  out=$("$@" 2>&1) || rc=$?
  if ((rc != 0)); then
    printf '%s\n' "$out" | sed 's/^/    /'
    fail "$label (exit $rc)"
  else
    echo "ok: $label"
  fi
}

not_checked() { echo "NOT CHECKED: $*"; }

apt_install() { # package...
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "deploy/validate.sh: needs $*: install it (apt-get install $*)" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}

need_command() { # command package
  command -v "$1" >/dev/null || apt_install "$2"
}

# The virtualenv with the validators from PyPI; its python also runs checks.py.
py=
need_venv() {
  [[ -n $py ]] && return
  local req=$here/validate-requirements.txt
  if ! [[ -x $venv/bin/python ]] || ! cmp -s "$req" "$venv/.requirements"; then
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      rm -rf "$venv"
      apt_install python3-venv
      python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$req"
    cp "$req" "$venv/.requirements"
  fi
  py=$venv/bin/python
}

check_systemd() {
  echo "== systemd units and sysctl settings"
  need_command systemd-analyze systemd
  need_venv
  # `verify` needs each ExecStart binary to exist and be executable: a copy of the units points at stand-ins
  # (loadgrade is not installed on the machine that validates).
  mkdir -p "$tmp/systemd/bin"
  for bin in loadgrade loadgrade-agent; do
    printf '#!/bin/sh\nexit 0\n' >"$tmp/systemd/bin/$bin"
    chmod +x "$tmp/systemd/bin/$bin"
  done
  local unit units=()
  for unit in "$deploy"/systemd/*.service; do
    grep -q '^ExecStart=/usr/local/bin/loadgrade' "$unit" || fail "$unit: ExecStart is not /usr/local/bin/loadgrade*"
    sed "s#^ExecStart=/usr/local/bin/#ExecStart=$tmp/systemd/bin/#" "$unit" >"$tmp/systemd/$(basename "$unit")"
    units+=("$tmp/systemd/$(basename "$unit")")
  done
  # It reports unknown keys and bad values on stderr but still exits 0: any output is a failure.
  clean "systemd-analyze verify ${units[*]##*/}" systemd-analyze verify --man=no "${units[@]}"
  for unit in "${units[@]}"; do
    # Exposure 0.0 (locked down) to 10.0 (unprotected), as `systemd-analyze security` scores a unit; fail above 2.0.
    succeeds "systemd-analyze security ${unit##*/} at most 2.0: $(systemd-analyze security --offline=yes \
      "$unit" 2>/dev/null | grep -o 'Overall exposure level.*' | sed 's/ for [^:]*://')" \
      systemd-analyze security --offline=yes --threshold=20 "$unit"
  done
  clean "units: the settings asked for; 99-loadgrade-agent.conf: keys, values, comments" \
    "$py" "$here/checks.py" systemd "$deploy/systemd"
}

check_docker() {
  echo "== Dockerfile"
  need_venv
  clean "hadolint docker/Dockerfile" "$venv/bin/hadolint" --no-color --failure-threshold style \
    "$deploy/docker/Dockerfile"
  clean "Dockerfile: toolchain, build command, user, ports, Dockerfile.dockerignore" \
    "$py" "$here/checks.py" docker "$deploy/docker/Dockerfile" "$root/rust-toolchain.toml"
  if [[ ${LOADGRADE_VALIDATE_DOCKER_BUILD:-} == 1 ]] && docker info >/dev/null 2>&1; then
    succeeds "docker build" docker build -f "$deploy/docker/Dockerfile" -t loadgrade:validate "$root"
  elif docker info >/dev/null 2>&1; then
    not_checked "image build (a Docker daemon answers: LOADGRADE_VALIDATE_DOCKER_BUILD=1 builds it)"
  else
    not_checked "image build: no Docker daemon answers here (docker info)"
  fi
}

check_compose() {
  echo "== compose"
  need_venv
  succeeds "check-jsonschema: compose.yaml against the Compose Specification's schema" \
    "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$deploy/compose/compose.yaml"
  clean "compose.yaml: services, volumes, files, variables" "$py" "$here/checks.py" compose "$deploy/compose/compose.yaml"
  if docker compose version >/dev/null 2>&1; then
    clean "docker compose config -q" docker compose -f "$deploy/compose/compose.yaml" config -q
  else
    not_checked "docker compose config (no compose plugin in this Docker CLI)"
  fi
}

check_prometheus() {
  echo "== Prometheus"
  need_command promtool prometheus
  need_venv
  succeeds "promtool check config prometheus.yml (and its rule file)" promtool check config "$deploy/compose/prometheus.yml"
  succeeds "promtool test rules alerts.test.yml" promtool test rules "$deploy/compose/alerts.test.yml"
  clean "prometheus.yml: targets are compose services; rules name coordinator metrics" \
    "$py" "$here/checks.py" prometheus "$deploy/compose/prometheus.yml" "$deploy/compose/compose.yaml"
}

check_grafana() {
  echo "== Grafana"
  need_command promtool prometheus
  need_venv
  local dashboard
  for dashboard in "$deploy"/compose/grafana/dashboards/*.json; do
    clean "python -m json.tool ${dashboard##*/}" bash -c '"$1" -m json.tool "$2" >/dev/null' _ "$py" "$dashboard"
  done
  clean "dashboards: every query names coordinator metrics, through the provisioned data source" \
    "$py" "$here/checks.py" grafana "$deploy/compose/grafana" "$deploy/compose/compose.yaml" "$tmp/panels.yml"
  # Each panel query as a recording rule, so promtool parses its PromQL.
  if [[ -s $tmp/panels.yml ]]; then
    succeeds "promtool check rules: the dashboards' PromQL parses" promtool check rules "$tmp/panels.yml"
  fi
}

check_kubernetes() {
  echo "== Kubernetes"
  need_venv
  local manifests=() file version
  for file in "$deploy"/kubernetes/*.yaml; do
    [[ ${file##*/} == kustomization.yaml ]] || manifests+=("$file")
  done
  # --strict rejects fields the schema does not have; an unknown kind is only a warning: any output fails.
  for version in 1.30.0 1.37.0; do
    clean "kubernetes-validate --strict -k $version (${#manifests[@]} files)" \
      "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}"
  done
  clean "manifests: kustomization lists them; restricted pods; variables; Service ports" \
    "$py" "$here/checks.py" kubernetes "$deploy/kubernetes"
  if command -v kubectl >/dev/null; then
    succeeds "kubectl kustomize (renders)" bash -c 'kubectl kustomize "$1" >"$2"' _ "$deploy/kubernetes" "$tmp/rendered.yaml"
    if [[ -s $tmp/rendered.yaml ]]; then
      clean "kubernetes-validate --strict of the rendered kustomization" \
        "$venv/bin/kubernetes-validate" --strict --quiet "$tmp/rendered.yaml"
    fi
  else
    not_checked "kubectl kustomize (no kubectl here: the kustomization was checked by checks.py only)"
  fi
}

check_plans() {
  echo "== plans"
  local bin=${LOADGRADE_BIN:-}
  if [[ -z $bin || ! -x $bin ]]; then
    fail "plans: LOADGRADE_BIN must name a built loadgrade (e.g. target/debug/loadgrade)"
    return
  fi
  need_venv
  succeeds "loadgrade validate compose/plan.toml" "$bin" validate "$deploy/compose/plan.toml"
  clean "plan-configmap.yaml holds plan.toml" \
    "$py" "$here/checks.py" plan-from-configmap "$deploy/kubernetes/plan-configmap.yaml" "$tmp/kubernetes-plan.toml"
  if [[ -s $tmp/kubernetes-plan.toml ]]; then
    succeeds "loadgrade validate (the plan in plan-configmap.yaml)" "$bin" validate "$tmp/kubernetes-plan.toml"
  fi
}

for check in "${checks[@]}"; do
  case $check in
    systemd | docker | compose | prometheus | grafana | kubernetes | plans) "check_$check" ;;
    *) echo "deploy/validate.sh: unknown check $check" >&2; exit 2 ;;
  esac
done

if ((${#failed[@]})); then
  echo "deploy/validate.sh: ${#failed[@]} check(s) failed in $((SECONDS - started)) s:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "deploy/validate.sh: all checks passed in $((SECONDS - started)) s"
