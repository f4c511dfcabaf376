//! `loadgrade`: the command line. Parses options, installs tracing, builds the runtime and runs the command; the
//! commands (in `cli/`) are thin over the library.

mod cli;

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: a log written to a file or the journal stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = cli::Cli::parse();
    let code = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(cli::execute(cli)),
        Err(e) => {
            eprintln!("loadgrade: error: cannot start the runtime: {e}");
            cli::EXIT_RUNTIME
        }
    };
    std::process::exit(code);
}
