"""Cross-file checks of deploy/ that no schema makes: run by deploy/validate.sh, one subcommand per area.

Each subcommand prints one line per problem ("FILE: what is wrong") and exits 1 if it found any, 0 otherwise,
printing nothing on success. It reads files only; it never runs what they describe.
"""

import json
import os
import re
import sys
from pathlib import Path

import yaml

# The metrics the coordinator exports on --metrics-listen (/metrics), as Prometheus sees them.
METRICS = {
    "loadgrade_agents_connected",
    "loadgrade_runs",
    "loadgrade_run_requests_per_second",
    "loadgrade_run_latency_p95_seconds",
    "loadgrade_intervals_received_total",
    "loadgrade_intervals_stored_total",
}
HISTOGRAMS = {"loadgrade_store_write_seconds"}
KNOWN_SERIES = METRICS | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}
RUN_STATES = {"queued", "waiting", "running", "finished", "cancelled", "error", "interrupted"}

# The configuration contract: which variables each command reads (besides RUST_LOG).
COORDINATOR_VARS = {
    "LOADGRADE_CONFIG", "LOADGRADE_LISTEN", "LOADGRADE_DATABASE", "LOADGRADE_METRICS_LISTEN",
    "LOADGRADE_REFLECTION", "LOADGRADE_TLS_CERT", "LOADGRADE_TLS_KEY", "LOADGRADE_TLS_CA", "LOADGRADE_TOKENS",
    "LOADGRADE_INSECURE", "LOADGRADE_SUBMIT_TOKEN", "LOADGRADE_READ_TOKEN",
}
AGENT_VARS = {
    "LOADGRADE_CONFIG", "LOADGRADE_COORDINATOR", "LOADGRADE_AGENT_NAME", "LOADGRADE_ALLOW",
    "LOADGRADE_ALLOW_LOOPBACK", "LOADGRADE_LABELS", "LOADGRADE_TLS_CERT", "LOADGRADE_TLS_KEY", "LOADGRADE_TLS_CA",
    "LOADGRADE_SPOOL", "LOADGRADE_PROMETHEUS", "LOADGRADE_MAX_RATE", "LOADGRADE_MAX_CONNECTIONS",
    "LOADGRADE_MAX_DURATION", "LOADGRADE_CORES", "LOADGRADE_PROBE_ONLY",
}
SUBMIT_VARS = {"LOADGRADE_TOKEN", "LOADGRADE_IDEMPOTENCY_KEY"}
BOOLEAN_VARS = {"LOADGRADE_INSECURE", "LOADGRADE_REFLECTION", "LOADGRADE_ALLOW_LOOPBACK", "LOADGRADE_PROBE_ONLY"}

problems = []


def problem(path, message):
    problems.append(f"{path}: {message}")


def load_yaml(path):
    try:
        with open(path) as f:
            return list(yaml.safe_load_all(f))
    except (OSError, yaml.YAMLError) as e:
        problem(path, f"cannot read as YAML: {e}")
        return []


def command_vars(command):
    """The variables the loadgrade command in `command` (a list) reads, or None if it runs something else."""
    if not command:
        return None
    words = [str(w) for w in command]
    program = os.path.basename(words[0])
    if program == "loadgrade-agent":
        return AGENT_VARS
    if program == "loadgrade":
        sub = words[1] if len(words) > 1 else ""
        return {"serve": COORDINATOR_VARS, "submit": SUBMIT_VARS}.get(sub, set())
    return None


def check_env(path, where, command, env):
    """Every LOADGRADE_* variable given to a loadgrade command is one that command reads; booleans are true/false."""
    known = command_vars(command)
    if known is None:
        return
    for name, value in env.items():
        if name == "RUST_LOG":
            continue
        if name not in known:
            problem(path, f"{where}: {name} is not a variable `{' '.join(map(str, command[:2]))}` reads")
        elif name in BOOLEAN_VARS and str(value).lower() not in ("true", "false"):
            problem(path, f"{where}: {name}={value!r}: expected true or false")


def port_of(address):
    match = re.search(r":(\d+)$", str(address))
    return int(match.group(1)) if match else None


# === systemd ===


def systemd(unit_dir):
    """Unit settings the contract asks for, the variables the units set, and the sysctl file beside them."""
    required = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "CapabilityBoundingSet": "",
        "MemoryDenyWriteExecute": "yes", "LockPersonality": "yes", "RestrictNamespaces": "yes",
        "DynamicUser": "yes",
    }
    limits = {}
    for unit in sorted(Path(unit_dir).glob("*.service")):
        settings = {}
        for line in unit.read_text().splitlines():
            if "=" in line and not line.startswith(("#", ";", "[", " ")):
                key, value = line.split("=", 1)
                settings.setdefault(key, []).append(value)
        for key, value in required.items():
            if value not in settings.get(key, []):
                problem(unit, f"{key}={value} is missing")
        if "@system-service" not in settings.get("SystemCallFilter", []):
            problem(unit, "SystemCallFilter=@system-service is missing")
        for key in ("StateDirectory", "LimitNOFILE", "ExecStart"):
            if not settings.get(key):
                problem(unit, f"{key}= is missing")
        if not any(v.startswith(("-/etc/default/", "/etc/default/")) for v in settings.get("EnvironmentFile", [])):
            problem(unit, "EnvironmentFile=/etc/default/... is missing")
        command = settings.get("ExecStart", [""])[0].split()
        env = dict(v.split("=", 1) for v in settings.get("Environment", []) if "=" in v)
        check_env(unit, "Environment=", command, env)
        limits[unit.name] = int(settings.get("LimitNOFILE", ["0"])[0])
    agent = limits.get("loadgrade-agent.service")
    if agent != 1048576:
        problem(Path(unit_dir) / "loadgrade-agent.service", f"LimitNOFILE={agent}, expected 1048576")
    sysctl(Path(unit_dir) / "99-loadgrade-agent.conf", agent or 0)


def sysctl(path, nofile):
    """Each setting commented, its key a real /proc/sys entry (unless '-': optional), its value numbers."""
    if not path.exists():
        problem(path, "missing")
        return
    values = {}
    commented = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            commented = False
            continue
        if stripped.startswith(("#", ";")):
            commented = True
            continue
        match = re.fullmatch(r"(-?)([a-z0-9_.]+)\s*=\s*(.+)", stripped)
        if not match:
            problem(path, f"line {number}: not KEY = VALUE: {stripped!r}")
            continue
        optional, key, value = match.groups()
        if not commented:
            problem(path, f"line {number}: {key} has no comment above it")
        if not re.fullmatch(r"\d+( \d+)*", value):
            problem(path, f"line {number}: {key} = {value!r} is not a number or numbers")
        proc = Path("/proc/sys") / key.replace(".", "/")
        if not optional and not proc.exists():
            problem(path, f"line {number}: {key}: no such kernel setting ({proc} does not exist here)")
        values[key] = value
    for key in ("net.ipv4.ip_local_port_range", "net.ipv4.tcp_tw_reuse", "fs.nr_open"):
        if key not in values:
            problem(path, f"{key} is not set")
    if "fs.nr_open" in values and values["fs.nr_open"].isdigit() and int(values["fs.nr_open"]) < nofile:
        problem(path, f"fs.nr_open = {values['fs.nr_open']} is below the agent unit's LimitNOFILE={nofile}")
    ports = values.get("net.ipv4.ip_local_port_range", "").split()
    if len(ports) == 2 and int(ports[1]) - int(ports[0]) + 1 < 60000:
        problem(path, "net.ipv4.ip_local_port_range gives fewer than 60,000 ports")


# === Docker ===


def docker(dockerfile, toolchain):
    """The builder's Rust matches rust-toolchain.toml; the build, user, ports and ignore file are as documented."""
    text = Path(dockerfile).read_text()
    channel = re.search(r'channel\s*=\s*"([^"]+)"', Path(toolchain).read_text())
    image = re.search(r"^FROM\s+rust:(\S+?)-bookworm\s+AS\s+\w+", text, re.M)
    if not image:
        problem(dockerfile, "no `FROM rust:VERSION-bookworm AS ...` builder stage")
    elif channel and image.group(1) != channel.group(1):
        problem(dockerfile, f"builder rust:{image.group(1)} but rust-toolchain.toml pins {channel.group(1)}")
    build = "cargo build --release --locked -p loadgrade-coordinator -p loadgrade-agent"
    if build not in text:
        problem(dockerfile, f"the builder does not run `{build}`")
    stages = re.split(r"^FROM\s", text, flags=re.M)
    final = stages[-1] if stages else ""
    if not final.startswith("debian:bookworm-slim"):
        problem(dockerfile, "the runtime stage is not debian:bookworm-slim")
    if not re.search(r"^USER\s+10001(:10001)?\s*$", final, re.M):
        problem(dockerfile, "the runtime stage does not run as USER 10001")
    if not re.search(r"^EXPOSE\s+7700\s+9464\s*$", final, re.M):
        problem(dockerfile, "the runtime stage does not EXPOSE 7700 9464")
    ignore = Path(str(dockerfile) + ".dockerignore")
    if not ignore.exists():
        problem(ignore, "missing (BuildKit reads it for the Dockerfile beside it)")
    else:
        patterns = {p.strip().rstrip("/") for p in ignore.read_text().splitlines() if p.strip() and p[0] != "#"}
        for needed in ("target", ".git", "loadgrade-report"):
            if needed not in patterns:
                problem(ignore, f"{needed}/ is not excluded")


# === Compose ===


def compose_services(path):
    """The compose file's services and the coordinator's environment (no checks)."""
    docs = load_yaml(path)
    services = (docs[0] or {}).get("services", {}) if docs else {}
    return services, services.get("coordinator", {}).get("environment") or {}


def compose(path):
    """References between services, volumes and files; the variables each loadgrade command is given."""
    path = Path(path)
    docs = load_yaml(path)
    if not docs:
        return
    spec = docs[0]
    base = path.parent
    services = spec.get("services", {})
    volumes = set((spec.get("volumes") or {}).keys())
    used_volumes = set()
    for name, service in services.items():
        where = f"services.{name}"
        for dep in service.get("depends_on", []) or []:
            if dep not in services:
                problem(path, f"{where}.depends_on: no service {dep!r}")
        for mount in service.get("volumes", []) or []:
            source = mount.get("source") if isinstance(mount, dict) else str(mount).split(":")[0]
            if isinstance(mount, dict) and mount.get("type") == "tmpfs":
                continue
            if source.startswith((".", "/")):
                if not (base / source).exists():
                    problem(path, f"{where}.volumes: {source} does not exist beside compose.yaml")
            else:
                used_volumes.add(source)
                if source not in volumes:
                    problem(path, f"{where}.volumes: volume {source!r} is not declared under volumes:")
        build = service.get("build")
        if isinstance(build, dict):
            context = base / build.get("context", ".")
            if not (context / build.get("dockerfile", "Dockerfile")).exists():
                problem(path, f"{where}.build: {context / build.get('dockerfile', 'Dockerfile')} does not exist")
        command = service.get("command")
        if isinstance(command, str):
            command = command.split()
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        if command:
            check_env(path, where, command, env)
            if "testbed-process" in command and service.get("stdin_open") is not True:
                problem(path, f"{where}: testbed-process ends when its stdin closes: needs stdin_open: true")
    for unused in volumes - used_volumes:
        problem(path, f"volume {unused!r} is declared but no service uses it")
    # Agents reach the coordinator where it listens; Prometheus scrapes where the metrics are.
    coordinator = services.get("coordinator", {}).get("environment", {})
    listen = port_of(coordinator.get("LOADGRADE_LISTEN"))
    for name, service in services.items():
        url = (service.get("environment") or {}).get("LOADGRADE_COORDINATOR")
        if url and port_of(url) != listen:
            problem(path, f"services.{name}: LOADGRADE_COORDINATOR {url} is not the coordinator's port {listen}")


def prometheus(config, compose_file):
    """Scrape targets are compose services on the ports they serve; rule expressions name known metrics."""
    docs = load_yaml(config)
    if not docs:
        return
    services, coordinator = compose_services(compose_file)
    metrics_port = port_of(coordinator.get("LOADGRADE_METRICS_LISTEN"))
    jobs = {job["job_name"]: job for job in docs[0].get("scrape_configs", [])}
    for job in jobs.values():
        for static in job.get("static_configs", []):
            for target in static.get("targets", []):
                host, _, port = target.partition(":")
                if host not in services:
                    problem(config, f"job {job['job_name']}: target {target}: no compose service {host!r}")
    targets = [t for s in jobs.get("loadgrade-coordinator", {}).get("static_configs", []) for t in s["targets"]]
    if f"coordinator:{metrics_port}" not in targets:
        problem(config, f"job loadgrade-coordinator does not scrape coordinator:{metrics_port} (LOADGRADE_METRICS_LISTEN)")
    for rule_file in docs[0].get("rule_files", []):
        rules = load_yaml(Path(config).parent / rule_file)
        for group in (rules[0] or {}).get("groups", []) if rules else []:
            for rule in group.get("rules", []):
                name = rule.get("alert") or rule.get("record")
                check_expr(Path(config).parent / rule_file, f"rule {name}", rule.get("expr", ""), also={"up"})


def check_expr(path, where, expr, also=frozenset()):
    """An expression names at least one coordinator metric and no loadgrade_* series that does not exist."""
    names = set(re.findall(r"\b(loadgrade_[a-z0-9_]+)\b", expr))
    for name in names - KNOWN_SERIES:
        problem(path, f"{where}: {name} is not a coordinator metric")
    if not names & KNOWN_SERIES and not any(re.search(rf"\b{a}\b", expr) for a in also):
        problem(path, f"{where}: names none of the coordinator's metrics: {expr!r}")
    for state in re.findall(r'state\s*=~?\s*"([^"]*)"', expr):
        for s in state.split("|"):
            if s not in RUN_STATES:
                problem(path, f"{where}: state {s!r} is not a run state")


# === Grafana ===


def grafana(grafana_dir, compose_file, rules_out):
    """Dashboards parse, every panel queries coordinator metrics through the provisioned data source; writes each
    query as a recording rule to `rules_out` so that promtool can parse the PromQL."""
    grafana_dir = Path(grafana_dir)
    uids = set()
    for f in sorted((grafana_dir / "provisioning" / "datasources").glob("*.y*ml")):
        for doc in load_yaml(f):
            for ds in (doc or {}).get("datasources", []):
                uids.add(ds.get("uid"))
                if ds.get("url") != "http://prometheus:9090":
                    problem(f, f"data source {ds.get('name')}: url {ds.get('url')} is not the compose Prometheus")
    paths = set()
    for f in sorted((grafana_dir / "provisioning" / "dashboards").glob("*.y*ml")):
        for doc in load_yaml(f):
            for provider in (doc or {}).get("providers", []):
                paths.add(provider.get("options", {}).get("path"))
    services, _ = compose_services(compose_file)
    mounts = {str(m).split(":")[1] for m in services.get("grafana", {}).get("volumes", []) if ":" in str(m)
              and str(m).split(":")[0] == "./grafana/dashboards"}
    for p in paths - mounts:
        problem(grafana_dir / "provisioning" / "dashboards", f"provider path {p} is not where compose mounts ./grafana/dashboards ({mounts})")
    rules = []
    dashboards = sorted((grafana_dir / "dashboards").glob("*.json"))
    if not dashboards:
        problem(grafana_dir / "dashboards", "no dashboard")
    for f in dashboards:
        try:
            dashboard = json.loads(f.read_text())
        except ValueError as e:
            problem(f, f"not JSON: {e}")
            continue
        panels = dashboard.get("panels", [])
        if not panels:
            problem(f, "no panels")
        for panel in panels:
            if panel.get("type") == "row":
                continue
            where = f"panel {panel.get('id')} {panel.get('title')!r}"
            targets = panel.get("targets") or []
            if not targets:
                problem(f, f"{where}: no query")
            for ds in [panel.get("datasource")] + [t.get("datasource") for t in targets]:
                if ds is not None and ds.get("uid") not in uids:
                    problem(f, f"{where}: data source uid {ds.get('uid')!r} is not a provisioned one {sorted(uids)}")
            for target in targets:
                expr = target.get("expr", "")
                check_expr(f, f"{where} query {target.get('refId')}", expr)
                promql = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
                rules.append({"record": f"panel:{panel.get('id')}:{target.get('refId')}", "expr": promql})
    Path(rules_out).write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}))


# === Kubernetes ===

SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}


def kubernetes(kube_dir):
    """kustomization.yaml lists every manifest (but the documented alternative); pods meet the restricted Pod
    Security Standard and run read-only; loadgrade commands get only the variables they read; Services point at
    ports their pods name."""
    kube_dir = Path(kube_dir)
    kustomization = load_yaml(kube_dir / "kustomization.yaml")
    listed = set(kustomization[0].get("resources", [])) if kustomization else set()
    files = {f.name for f in kube_dir.glob("*.yaml")} - {"kustomization.yaml"}
    for missing in sorted(listed - files):
        problem(kube_dir / "kustomization.yaml", f"lists {missing}, which does not exist")
    for unlisted in sorted(files - listed - {"database-secret.yaml"}):
        problem(kube_dir / "kustomization.yaml", f"does not list {unlisted}")
    objects = []
    for name in sorted(files):
        for doc in load_yaml(kube_dir / name):
            if doc:
                objects.append((kube_dir / name, doc))
    pods = {}
    for path, obj in objects:
        kind, name = obj.get("kind"), obj.get("metadata", {}).get("name")
        template = None
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            template = obj["spec"]["template"]
        if template is None:
            continue
        pods[name] = (path, template)
        pod = template["spec"]
        where = f"{kind} {name}"
        security = pod.get("securityContext", {})
        if security.get("runAsNonRoot") is not True:
            problem(path, f"{where}: pod securityContext.runAsNonRoot is not true")
        if security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problem(path, f"{where}: pod seccompProfile is not RuntimeDefault")
        for sysctl_ in security.get("sysctls", []):
            if sysctl_["name"] not in SAFE_SYSCTLS:
                problem(path, f"{where}: sysctl {sysctl_['name']} is not a safe sysctl (restricted profile)")
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(key):
                problem(path, f"{where}: {key}")
        for volume in pod.get("volumes", []):
            if "hostPath" in volume:
                problem(path, f"{where}: hostPath volume {volume['name']}")
        if pod.get("automountServiceAccountToken") is not False:
            problem(path, f"{where}: automountServiceAccountToken is not false (no pod here talks to the API)")
        if pod.get("enableServiceLinks") is not False:
            problem(path, f"{where}: enableServiceLinks is not false (Service variables would share the LOADGRADE_ prefix)")
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            cwhere = f"{where} container {container['name']}"
            csec = container.get("securityContext", {})
            if csec.get("allowPrivilegeEscalation") is not False:
                problem(path, f"{cwhere}: allowPrivilegeEscalation is not false")
            if csec.get("privileged"):
                problem(path, f"{cwhere}: privileged")
            if csec.get("readOnlyRootFilesystem") is not True:
                problem(path, f"{cwhere}: readOnlyRootFilesystem is not true")
            if "ALL" not in csec.get("capabilities", {}).get("drop", []):
                problem(path, f"{cwhere}: capabilities.drop does not hold ALL")
            if set(csec.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
                problem(path, f"{cwhere}: adds capabilities")
            env = {e["name"]: e.get("value", "<from a reference>") for e in container.get("env", [])}
            check_env(path, cwhere, container.get("command", []), env)
            if "testbed-process" in container.get("command", []) and container.get("stdin") is not True:
                problem(path, f"{cwhere}: testbed-process ends when its stdin closes: needs stdin: true")
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
            listen = port_of(env.get("LOADGRADE_LISTEN"))
            if listen is not None and listen not in ports.values():
                problem(path, f"{cwhere}: LOADGRADE_LISTEN port {listen} is not a containerPort")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                grpc = container.get(probe, {}).get("grpc")
                if grpc and grpc.get("port") != listen:
                    problem(path, f"{cwhere}: {probe} grpc port {grpc.get('port')} is not LOADGRADE_LISTEN's {listen}")
    for path, obj in objects:
        if obj.get("kind") != "Service":
            continue
        selector = obj["spec"].get("selector", {})
        matching = [(p, t) for p, t in pods.values()
                    if all(t["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]
        if not matching:
            problem(path, f"Service {obj['metadata']['name']}: its selector matches no pod template here")
        names = {p.get("name") for _, t in matching for c in t["spec"]["containers"] for p in c.get("ports", [])}
        for port in obj["spec"].get("ports", []):
            target = port.get("targetPort")
            if isinstance(target, str) and target not in names:
                problem(path, f"Service {obj['metadata']['name']}: targetPort {target!r} is no container port's name")


def plan_from_configmap(path, out):
    """Writes the plan.toml held by the ConfigMap at `path` to `out` (for `loadgrade validate`)."""
    for doc in load_yaml(path):
        if doc and doc.get("kind") == "ConfigMap" and "plan.toml" in doc.get("data", {}):
            Path(out).write_text(doc["data"]["plan.toml"])
            return
    problem(path, "no ConfigMap with data plan.toml")


def main(argv):
    command, args = argv[1], argv[2:]
    {
        "systemd": systemd,
        "docker": docker,
        "compose": compose,
        "prometheus": prometheus,
        "grafana": grafana,
        "kubernetes": kubernetes,
        "plan-from-configmap": plan_from_configmap,
    }[command](*args)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
