//! `loadgrade`: the command line (run, demo, serve, submit, validate). All logic lives in the library.

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = loadgrade_coordinator::cli::Cli::parse();
    let code = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(loadgrade_coordinator::cli::execute(cli)),
        Err(e) => {
            eprintln!("loadgrade: error: cannot start the runtime: {e}");
            loadgrade_coordinator::cli::EXIT_RUNTIME
        }
    };
    std::process::exit(code);
}
