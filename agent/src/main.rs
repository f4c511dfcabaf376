//! `loadgrade-agent`: an agent on a load box. Dials out to the coordinator; listens on no port.

use clap::Parser;
use loadgrade_agent::{AgentConfig, Allowlist};
use tokio_util::sync::CancellationToken;

/// A loadgrade agent: dials out to a coordinator and runs the load it is assigned.
#[derive(Debug, Parser)]
#[command(name = "loadgrade-agent", version)]
struct Args {
    /// Coordinator URL, e.g. http://10.0.0.5:7700
    #[arg(long)]
    coordinator: String,
    /// Name shown in reports. Default: the host name.
    #[arg(long)]
    name: Option<String>,
    /// Sharding weight. Default: logical cores.
    #[arg(long)]
    cores: Option<u32>,
    /// Extra network this agent may send load to (CIDR or address; repeatable). Loopback is always allowed.
    #[arg(long = "allow", value_name = "CIDR")]
    allow: Vec<String>,
    /// Run as a probe agent on a target host: report its process or cgroup figures for ramp probes
    /// (probe = { kind = "agent", agent = NAME, .. }) and run no load.
    #[arg(long)]
    probe_only: bool,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let allowlist = match Allowlist::with_extra(&args.allow) {
        Ok(list) => list,
        Err(e) => {
            eprintln!("loadgrade-agent: {e}");
            std::process::exit(2);
        }
    };
    let name = args.name.unwrap_or_else(host_name);
    let mut config = AgentConfig::new(args.coordinator, name);
    config.allowlist = allowlist;
    config.probe_only = args.probe_only;
    if let Some(cores) = args.cores {
        config.cores = cores.max(1);
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

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "agent".to_owned())
}
