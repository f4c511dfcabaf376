//! `loadgrade`: the command line. Parses options, installs tracing, builds the runtime and runs the command; the
//! commands (in `cli/`) are thin over the library.

mod cli;

use clap::{CommandFactory as _, FromArgMatches as _};

fn main() {
    // Warnings by default; `serve` also says when agents connect and leave (an operator's first question).
    let default_filter = if serving(&std::env::args_os().collect::<Vec<_>>()) {
        "warn,loadgrade_coordinator::server::agent_service=info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: a log written to a file or the journal stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = parse();
    let code = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(cli::execute(cli)),
        Err(e) => {
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("loadgrade: error: cannot start the runtime: {e}\n"),
            );
            cli::EXIT_RUNTIME
        }
    };
    std::process::exit(code);
}

/// The command line; for `serve`, a `--config FILE` (or `LOADGRADE_CONFIG`) applied beneath flags and environment.
fn parse() -> cli::Cli {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut command = cli::Cli::command();
    if serving(&argv)
        && let Some(path) = loadgrade_common::config_file::named(&argv, "LOADGRADE_CONFIG")
        && let Some(serve) = command.find_subcommand("serve").cloned()
    {
        // Either error is said the same way: the file, then what is wrong with it.
        let applied = loadgrade_common::config_file::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|settings| {
                loadgrade_agent::config_flags::apply(serve, &settings).map_err(|e| e.to_string())
            });
        match applied {
            Ok(serve) => command = command.mut_subcommand("serve", |_| serve),
            Err(e) => {
                let _ = std::io::Write::write_fmt(
                    &mut std::io::stderr(),
                    format_args!("loadgrade serve: {e}\n"),
                );
                std::process::exit(cli::EXIT_USAGE);
            }
        }
    }
    let matches = command.get_matches_from(argv);
    cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Whether the command is `serve`: its first word that is not an option.
fn serving(argv: &[std::ffi::OsString]) -> bool {
    argv.iter()
        .skip(1)
        .find(|a| !a.to_string_lossy().starts_with('-'))
        .is_some_and(|a| a == "serve")
}
