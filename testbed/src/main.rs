//! `loadgrade-testbed` binary: parses flags and runs the reference HTTP target.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use loadgrade_testbed::TestbedConfig;
use tracing_subscriber::EnvFilter;

/// loadgrade's reference HTTP target for load tests and demos.
#[derive(Debug, Parser)]
#[command(name = "loadgrade-testbed", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value_t = TestbedConfig::default().listen)]
    listen: SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Synthetic histogram series on /metrics (request durations by route and status), for scrape scenarios.
    #[arg(long, default_value_t = 0)]
    metrics_series: u64,
    /// Serve a hostile target instead of the testbed, for the load engine's bounds (bench/hostile_rss.sh):
    /// header-bomb, slow-header, chunk-extension-bomb or many-headers.
    #[arg(long, value_name = "KIND")]
    hostile: Option<loadgrade_testbed::hostile::Hostility>,
}

fn tls_identity(args: &Args) -> anyhow::Result<Option<loadgrade_testbed::TlsIdentity>> {
    use anyhow::Context as _;
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    Ok(Some(loadgrade_testbed::TlsIdentity {
        cert_pem: std::fs::read_to_string(cert)
            .with_context(|| format!("reading {}", cert.display()))?,
        key_pem: std::fs::read_to_string(key)
            .with_context(|| format!("reading {}", key.display()))?,
    }))
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let result = tls_identity(&args).and_then(|tls| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow::Error::new(e).context("building the tokio runtime"))
            .and_then(|rt| {
                rt.block_on(async {
                    if let Some(hostility) = args.hostile {
                        let target = loadgrade_testbed::hostile::HostileTarget::start(
                            args.listen,
                            hostility,
                        )
                        .await?;
                        println!("hostile target ({hostility:?}) on http://{}", target.addr);
                        tokio::signal::ctrl_c().await?;
                        return Ok(());
                    }
                    loadgrade_testbed::run(TestbedConfig {
                        listen: args.listen,
                        tls,
                        metrics_series: args.metrics_series,
                    })
                    .await
                })
            })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgrade-testbed: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
