//! `loadgrade-testbed` binary: parses flags and runs the reference HTTP target.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use loadgrade_testbed::TestbedConfig;
use tracing_subscriber::EnvFilter;

/// loadgrade's reference HTTP target for load tests and demos.
#[derive(Debug, Parser)]
#[command(
    name = "loadgrade-testbed",
    version,
    after_help = "Routes (anything else: 404, still counted):\n  \
    GET /api/items?limit=N            JSON array of N items (default 20, max 1000)\n  \
    GET /api/complete?key=K&ms=M&capacity=C&size=S   K's answer from an LRU cache of C entries before an origin of M ms; X-Cache: HIT or MISS\n  \
    GET /health                       ok\n  \
    GET /delay?ms=N                   sleep N ms (max 60000), then 200\n  \
    GET /status/CODE                  respond with CODE\n  \
    GET /stall?period_ms=P&pause_ms=S every P ms, hold all responses for S ms\n  \
    GET /work?ms=N&slots=K            K slots of N ms each, requests beyond K queue\n  \
    GET /slow?every=N&ms=M            every Nth request sleeps M ms\n  \
    GET|POST /hangup?every=N          the Nth request on each connection is read, counted and left unanswered\n  \
    POST /_testbed/allocate?mb=N, POST /_testbed/free   hold (touched) memory, or drop it\n  \
    GET /_testbed/stats               {\"requests\": N}: counted requests since start or the last reset\n  \
    GET /_testbed/sources             {\"ADDRESS\": N, ...}: counted requests by source address\n  \
    POST /_testbed/reset              zero both, 204\n  \
    GET /_testbed/pid                 process id\n  \
    GET /metrics                      loadgrade_testbed_requests_total, loadgrade_testbed_in_flight, cache figures, synthetic series\n\
Requests under /_testbed/ and to /metrics, and preflight probes (x-loadgrade-preflight: 1), are not counted."
)]
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
    /// header-bomb, slow-header, chunk-extension-bomb, many-headers or endless-body.
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
        // Colour codes only on a terminal (issue 21: a redirected log was full of escapes).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
