//! The `loadgrade` command line: run, demo, serve, submit, validate, runs, report, compare. Exit codes: 0 PASS,
//! 1 runtime error, 2 usage error or invalid plan, 3 FAIL, 4 DEGRADED or INVALID. Handlers are thin: the work is
//! in the library; this module parses, prints and maps outcomes to exit codes.

#[macro_use]
mod output;
mod certs;
mod check;
mod history;
mod local;
mod progress;
mod remote;
mod security;

use clap::{Parser, Subcommand};
use loadgrade_common::plan::Plan;
use loadgrade_coordinator::store::{DEFAULT_DATABASE_URL, Store};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const EXIT_RUNTIME: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// loadgrade: distributed load generation with a graded verdict.
#[derive(Debug, Parser)]
#[command(name = "loadgrade", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// No progress on standard error (`run`, `demo`, `submit`); the verdict and the report's paths are still
    /// printed. On a terminal, progress is one line redrawn in place; otherwise plain lines.
    #[arg(long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a plan with a coordinator and N agents in this process (real gRPC on loopback).
    Run {
        /// Plan file (TOML).
        plan: PathBuf,
        /// In-process agents (1 to 64). Default: the plan's min_agents.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(local::MAX_EMBEDDED_AGENTS)))]
        agents: Option<u32>,
        /// Report directory. Default: loadgrade-report/<run-id>/ (and loadgrade-report/latest).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Results store.
        #[arg(long, default_value = DEFAULT_DATABASE_URL)]
        database: String,
    },
    /// Start the testbed and 2 agents, run examples/demo.toml against it, write the report.
    Demo {
        /// Report directory. Default: loadgrade-report/<run-id>/ (and loadgrade-report/latest).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Results store.
        #[arg(long, default_value = DEFAULT_DATABASE_URL)]
        database: String,
    },
    /// The coordinator server: agents and CI connect here.
    ///
    /// Every flag can also come from its environment variable or from a TOML file (`--config`, keys are the long
    /// flag names); precedence: flag > environment > file > default.
    Serve {
        /// Address to listen on. Loopback by default; any other address needs TLS and tokens (or --insecure).
        #[arg(long, env = "LOADGRADE_LISTEN", default_value = "127.0.0.1:7700")]
        listen: SocketAddr,
        /// Results store: sqlite://PATH or postgres://USER@HOST/DB.
        #[arg(long, env = "LOADGRADE_DATABASE", hide_env_values = true, default_value = DEFAULT_DATABASE_URL)]
        database: String,
        /// Serve the coordinator's Prometheus metrics at http://ADDR/metrics (agents, runs by state, the current
        /// run's requests/s and p95, intervals received and stored, store write time). Off by default.
        #[arg(long, env = "LOADGRADE_METRICS_LISTEN", value_name = "ADDR")]
        metrics_listen: Option<SocketAddr>,
        /// Offer gRPC server reflection (grpcurl without .proto files). Off by default: it describes the services
        /// to anyone who can connect.
        #[arg(long, env = "LOADGRADE_REFLECTION")]
        reflection: bool,
        /// Where the coordinator itself may connect for a plan (a ramp's or a scrape's Prometheus probe, a cache
        /// scenario's Redis): a CIDR, an address or a host name, repeatable. Loopback is always allowed; a plan
        /// that names anything else is refused. (Agents keep their own allowlists for the load.)
        #[arg(
            long = "allow",
            env = "LOADGRADE_SERVE_ALLOW",
            value_delimiter = ',',
            value_name = "NET"
        )]
        allow: Vec<String>,
        /// Most connections held at once (agents, CI callers, anything else); more are closed as they arrive.
        /// Lowered to what the open-file limit allows (LimitNOFILE), with a warning.
        #[arg(long, env = "LOADGRADE_SERVE_MAX_CONNECTIONS", value_name = "N",
              default_value_t = loadgrade_coordinator::server::connections::DEFAULT_MAX_CONNECTIONS as u32,
              value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        max_connections: u32,
        /// Most connections held at once from one source address.
        #[arg(long, env = "LOADGRADE_SERVE_MAX_CONNECTIONS_PER_SOURCE", value_name = "N",
              default_value_t = loadgrade_coordinator::server::connections::DEFAULT_MAX_PER_SOURCE as u32,
              value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        max_connections_per_source: u32,
        /// Time a new connection has to start its first gRPC call, TLS and HTTP/2 handshakes included; a
        /// connection that has not is closed.
        #[arg(long, env = "LOADGRADE_SERVE_FIRST_CALL_TIMEOUT", value_name = "DURATION", default_value = "10s",
              value_parser = parse_first_call_timeout)]
        first_call_timeout: std::time::Duration,
        /// A TOML file of flag values (`listen = "0.0.0.0:7700"`, `metrics-listen = ...`).
        #[arg(long, env = "LOADGRADE_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        security: security::ServeSecurity,
    },
    /// Preflight a plan without running it: agents, versions, clocks, each target probed once from each agent that
    /// would load it (no load), open-file and port limits against each agent's share, free disk.
    ///
    /// Exit 0 when no check failed, 2 when one did (or the plan is invalid).
    Check {
        /// Plan file (TOML).
        plan: PathBuf,
        /// Check on a coordinator server, from its connected agents. Without it: from in-process agents on
        /// loopback, as `run` would start them.
        #[command(flatten)]
        remote: security::OptionalRemote,
        /// In-process agents when no coordinator is given. Default: the plan's min_agents.
        #[arg(long, conflicts_with = "coordinator")]
        agents: Option<u32>,
        /// How to print the checks.
        #[arg(long, value_enum, default_value = "table")]
        format: check::Format,
    },
    /// Make a CA and certificates for mutual TLS: the coordinator's and one per agent (written to --out).
    Certs(certs::CertsArgs),
    /// Start a run on a coordinator server, show progress, download the reports, exit with the verdict's code.
    Submit {
        /// Plan file (TOML).
        #[arg(required_unless_present = "attach")]
        plan: Option<PathBuf>,
        /// Follow a run already started (its id) instead of starting one: after a lost connection or in
        /// another shell.
        #[arg(long, conflicts_with = "plan")]
        attach: Option<String>,
        #[command(flatten)]
        remote: security::Remote,
        /// Report directory. Default: loadgrade-report/<run-id>/ (and loadgrade-report/latest).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Submit at most once: a retry with the same key (after a lost connection, a CI retry) follows the run
        /// the first submission started instead of starting another. Up to 128 printable characters.
        #[arg(
            long,
            env = "LOADGRADE_IDEMPOTENCY_KEY",
            hide_env_values = true,
            conflicts_with = "attach"
        )]
        idempotency_key: Option<String>,
    },
    /// Check a plan without running it.
    Validate {
        /// Plan file (TOML).
        plan: PathBuf,
    },
    /// List runs from the results store, newest first.
    Runs {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Results store.
        #[arg(long, default_value = DEFAULT_DATABASE_URL, conflicts_with = "coordinator")]
        database: String,
        /// List the runs of a coordinator server instead (a read or submit token).
        #[command(flatten)]
        remote: security::OptionalRemote,
    },
    /// Regression verdict between two stored runs.
    ///
    /// Exit 0 when no headline figure of HEAD is worse than BASE beyond the tolerance, 3 when one is, 4 when either
    /// run was DEGRADED or INVALID.
    Compare {
        /// The base run id.
        base: String,
        /// The run to judge against it.
        head: String,
        /// Relative change allowed before a figure counts as a regression.
        #[arg(long, default_value_t = 0.10)]
        tolerance: f64,
        /// Results store.
        #[arg(long, default_value = DEFAULT_DATABASE_URL)]
        database: String,
    },
    /// The demo's target in a process of its own (run by `demo`; not for people).
    #[command(hide = true)]
    TestbedProcess {
        #[arg(long)]
        listen: SocketAddr,
        /// Synthetic series on its /metrics (the demo's scrape scenario measures them).
        #[arg(long, default_value_t = 0)]
        metrics_series: u64,
    },
    /// Write a stored run's reports again; exits with its verdict's code.
    Report {
        /// The run id (see `loadgrade runs`).
        run_id: String,
        /// Report directory. Default: loadgrade-report/<run-id>/.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Results store.
        #[arg(long, default_value = DEFAULT_DATABASE_URL)]
        database: String,
    },
}

/// Runs a command; returns the process exit code.
pub async fn execute(cli: Cli) -> i32 {
    progress::set_quiet(cli.quiet);
    let result = match cli.command {
        Command::Run {
            plan,
            agents,
            out,
            database,
        } => local::run(&plan, agents, out, &database).await,
        Command::Demo { out, database } => local::demo(out, &database).await,
        Command::Serve {
            listen,
            database,
            metrics_listen,
            reflection,
            max_connections,
            max_connections_per_source,
            first_call_timeout,
            allow,
            config: _,
            security,
        } => match security.load(listen) {
            Ok(security) => {
                let connections = loadgrade_coordinator::server::connections::ConnectionLimits {
                    max_total: max_connections as usize,
                    max_per_source: max_connections_per_source as usize,
                    first_call: first_call_timeout,
                };
                let options = loadgrade_coordinator::ServeOptions {
                    reflection,
                    connections,
                };
                match loadgrade_coordinator::run::outbound::Outbound::new(&allow) {
                    Ok(outbound) => {
                        let serving = local::Serving {
                            listen,
                            database: &database,
                            security,
                            options,
                            metrics_listen,
                            outbound,
                        };
                        local::serve(serving).await
                    }
                    Err(e) => Err(Failure::Usage(format!("loadgrade serve: {e}"))),
                }
            }
            Err(e) => Err(e),
        },
        Command::Check {
            plan,
            remote,
            agents,
            format,
        } => check::check(&plan, remote.get().as_ref(), agents, format).await,
        Command::Certs(args) => certs::make(&args),
        Command::Submit {
            plan,
            attach,
            remote,
            out,
            idempotency_key,
        } => match (&plan, &attach) {
            (_, Some(id)) => remote::submit(remote::Target::Attach(id), &remote, out).await,
            (Some(path), None) => {
                let target = remote::Target::Plan(path, idempotency_key.as_deref());
                remote::submit(target, &remote, out).await
            }
            (None, None) => Err(Failure::Usage(
                "submit needs a plan file or --attach RUN_ID".into(),
            )),
        },
        Command::Validate { plan } => validate(&plan),
        Command::TestbedProcess {
            listen,
            metrics_series,
        } => local::testbed_process(listen, metrics_series).await,
        Command::Runs {
            limit,
            database,
            remote,
        } => match remote.get() {
            Some(remote) => history::remote_runs(limit, &remote).await,
            None => history::runs(limit, &database).await,
        },
        Command::Compare {
            base,
            head,
            tolerance,
            database,
        } => history::compare_runs(&base, &head, tolerance, &database).await,
        Command::Report {
            run_id,
            out,
            database,
        } => history::stored_report(&run_id, out, &database).await,
    };
    // Messages may carry a coordinator's words (a refusal, a report that does not parse): whatever the path, they
    // are printed with control characters escaped, lines kept.
    let escaped = loadgrade_common::text::escaped_lines;
    match result {
        Ok(code) => code,
        Err(Failure::Usage(message)) => {
            note!("{}", escaped(&message));
            EXIT_USAGE
        }
        Err(Failure::Runtime(e)) => {
            note!("loadgrade: error: {}", escaped(&output::error_text(&e)));
            EXIT_RUNTIME
        }
        // Whoever read our output stopped reading (`loadgrade runs | head -3`): nothing left to say.
        Err(Failure::ClosedOutput) => output::closed_exit_code(),
    }
}

/// A first-call timeout: from 100 ms (a handshake over a slow link needs some) to 10 minutes.
fn parse_first_call_timeout(text: &str) -> Result<std::time::Duration, FirstCallTimeoutError> {
    let d = humantime::parse_duration(text)?;
    if d < std::time::Duration::from_millis(100) || d > std::time::Duration::from_secs(600) {
        return Err(FirstCallTimeoutError::OutOfRange);
    }
    Ok(d)
}

/// A `--first-call-timeout` that is not a duration from 100 ms to 10 minutes.
#[derive(Debug, thiserror::Error)]
enum FirstCallTimeoutError {
    #[error(transparent)]
    NotADuration(#[from] humantime::DurationError),
    #[error("expected a duration from 100ms to 10m")]
    OutOfRange,
}

enum Failure {
    Usage(String),
    Runtime(anyhow::Error),
    /// Standard output was closed by its reader.
    ClosedOutput,
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

/// The results store at `database`, opened (and migrated).
async fn open_store(database: &str) -> Result<Store, Failure> {
    Store::open(database)
        .await
        .map_err(|e| Failure::Runtime(anyhow::Error::from(e).context("opening the results store")))
}

/// Reads a plan file, refusing one larger than a plan may be before reading it whole.
fn read_plan(path: &Path) -> Result<(String, String), Failure> {
    use std::io::Read as _;
    let cannot = |e: std::io::Error| {
        Failure::Usage(format!(
            "loadgrade: cannot read plan {}: {e}",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    let limit = loadgrade_common::plan::MAX_PLAN_BYTES;
    let mut text = String::new();
    file.take(limit as u64 + 1)
        .read_to_string(&mut text)
        .map_err(cannot)?;
    if text.len() > limit {
        return Err(Failure::Usage(format!(
            "{}: the plan is larger than {} KiB, the most a plan may be",
            path.display(),
            limit >> 10
        )));
    }
    Ok((path.display().to_string(), text))
}

fn validate(path: &Path) -> Result<i32, Failure> {
    let (file, text) = read_plan(path)?;
    let plan = Plan::parse(&file, &text).map_err(|e| Failure::Usage(e.to_string()))?;
    out!(
        "{file}: valid plan {:?} with {} scenario(s)",
        plan.name,
        plan.scenarios.len()
    );
    Ok(0)
}
