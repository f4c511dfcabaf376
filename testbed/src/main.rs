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
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::Error::new(e).context("building the tokio runtime"))
        .and_then(|rt| {
            rt.block_on(loadgrade_testbed::run(TestbedConfig {
                listen: args.listen,
            }))
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgrade-testbed: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
