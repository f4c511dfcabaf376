//! `loadgrade-agent`: an agent on a load box. Dials out to the coordinator; listens on no port.

use clap::Parser;
use loadgrade_agent::{AgentConfig, Allowlist, Caps};
use tokio_util::sync::CancellationToken;

/// A loadgrade agent: dials out to a coordinator and runs the load it is assigned.
#[derive(Debug, Parser)]
#[command(name = "loadgrade-agent", version)]
struct Args {
    /// Coordinator URL, e.g. https://10.0.0.5:7700 (with --tls-*), or http://127.0.0.1:7700 on one machine.
    #[arg(long, env = "LOADGRADE_COORDINATOR", hide_env_values = true)]
    coordinator: String,
    /// This agent's certificate (PEM), made for its --name (see `loadgrade certs`); with --tls-key and --tls-ca.
    #[arg(long, env = "LOADGRADE_TLS_CERT", value_name = "PEM", requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<std::path::PathBuf>,
    /// This agent's private key (PEM).
    #[arg(long, env = "LOADGRADE_TLS_KEY", value_name = "PEM", requires_all = ["tls_cert", "tls_ca"])]
    tls_key: Option<std::path::PathBuf>,
    /// CA (PEM) the coordinator's certificate must chain to.
    #[arg(long, env = "LOADGRADE_TLS_CA", value_name = "PEM", requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<std::path::PathBuf>,
    /// Name shown in reports and checked against the certificate: lower-case letters, digits, '-', '_', '.'.
    /// Default: the host name, in lower case.
    #[arg(long, env = "LOADGRADE_AGENT_NAME")]
    name: Option<String>,
    /// Sharding weight (1 to 256). Default: logical cores.
    #[arg(long, env = "LOADGRADE_CORES", value_parser = clap::value_parser!(u32).range(1..=256))]
    cores: Option<u32>,
    /// Where this agent may send load: a CIDR, an address or a host name (repeatable). Nothing is allowed by
    /// default.
    #[arg(
        long = "allow",
        env = "LOADGRADE_ALLOW",
        value_delimiter = ',',
        value_name = "CIDR|ADDRESS|HOST"
    )]
    allow: Vec<String>,
    /// Allow loopback targets (127.0.0.0/8, ::1): services on this machine.
    #[arg(long, env = "LOADGRADE_ALLOW_LOOPBACK")]
    allow_loopback: bool,
    /// Most arrivals per second any shard may ask of this agent.
    #[arg(long, env = "LOADGRADE_MAX_RATE", value_name = "N")]
    max_rate: Option<u64>,
    /// Most connections any shard may ask of this agent.
    #[arg(long, env = "LOADGRADE_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<u64>,
    /// Longest any shard may run on this agent, e.g. "30m"; a request budget alone is stopped there.
    #[arg(long, env = "LOADGRADE_MAX_DURATION", value_name = "DURATION", value_parser = humantime::parse_duration)]
    max_duration: Option<std::time::Duration>,
    /// Where interval reports are kept until the coordinator acknowledges them.
    /// Default: $STATE_DIRECTORY, else ~/.local/state/loadgrade-agent/NAME.
    #[arg(long, env = "LOADGRADE_SPOOL", value_name = "DIR")]
    spool: Option<std::path::PathBuf>,
    /// Run as a probe agent on a target host: report its process or cgroup figures for ramp probes
    /// (probe = { kind = "agent", agent = NAME, .. }) and run no load.
    #[arg(long, env = "LOADGRADE_PROBE_ONLY")]
    probe_only: bool,
    /// The Prometheus this agent may run for scrape scenarios (an absolute path, owned by root or this user and
    /// writable by no one else). Without it, a plan's `prometheus` is refused here and the Prometheus-side
    /// figures are not measured.
    #[arg(long, env = "LOADGRADE_PROMETHEUS", value_name = "PATH")]
    prometheus: Option<std::path::PathBuf>,
    /// A label plans select agents by (`agents = { zone = "a" }` in a plan), repeatable: `--label zone=a`.
    #[arg(long = "label", env = "LOADGRADE_LABELS", value_delimiter = ',', value_name = "KEY=VALUE",
          value_parser = loadgrade_common::protocol::parse_label)]
    labels: Vec<(String, String)>,
    /// Accept a --tls-key file that its group or others may read (refused otherwise, as ssh refuses such keys).
    #[arg(long, env = "LOADGRADE_INSECURE")]
    insecure: bool,
    /// A TOML file of flag values (keys are the long flag names: `coordinator = "https://..."`, `allow = [..]`).
    /// Precedence: flag > environment variable > this file > default.
    #[arg(long, env = "LOADGRADE_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
}

/// The command line, with `--config FILE` (or `LOADGRADE_CONFIG`) applied beneath flags and environment.
fn parse_args() -> Args {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut command = Args::command();
    if let Some(path) = loadgrade_common::config_file::named(&argv, "LOADGRADE_CONFIG") {
        // Either error is said the same way: the file, then what is wrong with it.
        let applied = loadgrade_common::config_file::read(&path)
            .map_err(anyhow::Error::from)
            .and_then(|settings| Ok(loadgrade_agent::config_flags::apply(command, &settings)?));
        command = match applied {
            Ok(command) => command,
            Err(e) => {
                eprintln!("loadgrade-agent: {e}");
                std::process::exit(2);
            }
        };
    }
    let matches = command.get_matches_from(argv);
    Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: a log written to a file or the journal stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = parse_args();
    let allowlist = match Allowlist::new(args.allow_loopback, &args.allow) {
        Ok(list) => list,
        Err(e) => {
            eprintln!("loadgrade-agent: {e}");
            std::process::exit(2);
        }
    };
    let tls = match (&args.tls_cert, &args.tls_key, &args.tls_ca) {
        (Some(cert), Some(key), Some(ca)) => {
            match loadgrade_agent::identity::AgentTls::read(cert, key, ca, args.insecure) {
                Ok(tls) => Some(tls),
                Err(e) => {
                    eprintln!("loadgrade-agent: {e}");
                    std::process::exit(2);
                }
            }
        }
        _ => None,
    };
    if let Err(e) = check_transport(&args.coordinator, tls.is_some()) {
        eprintln!("loadgrade-agent: {e}");
        std::process::exit(2);
    }
    let name = args.name.unwrap_or_else(host_name);
    if let Err(e) = loadgrade_common::protocol::check_agent_name(&name) {
        eprintln!("loadgrade-agent: {e} (give one with --name)");
        std::process::exit(2);
    }
    let spool = args.spool.or_else(|| default_spool(&name));
    let mut config = AgentConfig::new(args.coordinator, name);
    config.allowlist = allowlist;
    config.tls = tls;
    config.probe_only = args.probe_only;
    if args.labels.len() > loadgrade_common::protocol::MAX_LABELS {
        eprintln!(
            "loadgrade-agent: at most {} labels",
            loadgrade_common::protocol::MAX_LABELS
        );
        std::process::exit(2);
    }
    let keys: std::collections::BTreeSet<&str> =
        args.labels.iter().map(|(k, _)| k.as_str()).collect();
    if keys.len() != args.labels.len() {
        eprintln!(
            "loadgrade-agent: a label key is given twice (--label KEY=VALUE names each key once)"
        );
        std::process::exit(2);
    }
    config.labels = args.labels.into_iter().collect();
    config.spool_dir = spool;
    if let Some(path) = args.prometheus {
        if let Err(why) = loadgrade_agent::scrape::trusted_binary(&path) {
            eprintln!("loadgrade-agent: --prometheus {}: {why}", path.display());
            std::process::exit(2);
        }
        config.prometheus = Some(path);
    }
    config.caps = Caps {
        max_rate: args.max_rate,
        max_connections: args.max_connections,
        max_duration: args.max_duration,
    };
    if let Some(cores) = args.cores {
        config.cores = cores;
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(async {
                let shutdown = CancellationToken::new();
                let on_signal = shutdown.clone();
                tokio::spawn(async move {
                    if let Err(e) = loadgrade_agent::signal::terminated().await {
                        tracing::warn!("cannot wait for signals: {e}");
                    }
                    on_signal.cancel();
                });
                loadgrade_agent::run(config, shutdown)
                    .await
                    .map_err(anyhow::Error::from)
            })
        });
    if let Err(e) = result {
        eprintln!("loadgrade-agent: error: {e:#}");
        std::process::exit(1);
    }
}

/// Why the coordinator URL and the TLS flags do not go together.
#[derive(Debug, thiserror::Error)]
enum TransportError {
    #[error("{url} is https://: give this agent its certificate (--tls-cert, --tls-key, --tls-ca)")]
    HttpsWithoutCertificate { url: String },
    #[error("--tls-* given but {url} is not https://")]
    TlsWithoutHttps { url: String },
    #[error("invalid coordinator URL {url:?}: {source}")]
    InvalidUrl {
        url: String,
        #[source]
        source: http::uri::InvalidUri,
    },
}

/// https:// needs this agent's certificate; plain http:// off loopback is allowed but warned (assignments, with
/// the plan's headers, would cross the network readable and the coordinator could not know who this agent is).
fn check_transport(url: &str, tls: bool) -> Result<(), TransportError> {
    let https = url.starts_with("https://");
    if https && !tls {
        return Err(TransportError::HttpsWithoutCertificate {
            url: url.to_owned(),
        });
    }
    if !https && tls {
        return Err(TransportError::TlsWithoutHttps {
            url: url.to_owned(),
        });
    }
    if !https {
        let uri: http::Uri = url.parse().map_err(|source| TransportError::InvalidUrl {
            url: url.to_owned(),
            source,
        })?;
        let host = uri.host().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            eprintln!(
                "loadgrade-agent: WARNING: {url} is plain http:// off this machine: assignments travel unencrypted \
                 and unauthenticated; use https:// with --tls-cert, --tls-key and --tls-ca"
            );
        }
    }
    Ok(())
}

/// systemd's state directory, else ~/.local/state/loadgrade-agent/NAME.
fn default_spool(name: &str) -> Option<std::path::PathBuf> {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        return Some(std::path::PathBuf::from(dir).join("spool"));
    }
    let home = std::env::var_os("HOME")?;
    Some(
        std::path::PathBuf::from(home)
            .join(".local/state/loadgrade-agent")
            .join(name),
    )
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_ascii_lowercase())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "agent".to_owned())
}
