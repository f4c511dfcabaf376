//! What the command line prints on standard output, and where reports go: a reader that stops reading ends the
//! command quietly instead of panicking; report folders default to loadgrade-report/<run-id>/ with a `latest` link;
//! an error's causes said once each.

use super::Failure;
use anyhow::Context as _;
use loadgrade_common::report::Report;
use loadgrade_coordinator::report::render::write_reports;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The exit code a command has decided on before it prints its output: when the reader of standard output goes
/// away mid-way (`| head -1`, `| grep -q`), the command still exits with it, never 0 for a failing verdict.
static DECIDED_EXIT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Records the exit code to use if standard output closes from now on.
pub(super) fn decided(code: i32) -> i32 {
    DECIDED_EXIT.store(code, std::sync::atomic::Ordering::Relaxed);
    code
}

/// The exit code when standard output closed: what the command had decided on, else 0.
pub(super) fn closed_exit_code() -> i32 {
    DECIDED_EXIT.load(std::sync::atomic::Ordering::Relaxed)
}

/// `eprintln!` that never panics: a closed or full standard error (`2>&1 | head -1`) loses the line, never the exit
/// code (the standard macro panics, which exits 101).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Writes one line to standard output; a closed pipe ends the command (exit 0) instead of panicking.
pub(super) fn line(text: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_fmt(text)
        .and_then(|()| stdout.write_all(b"\n"))
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::ClosedOutput),
        Err(e) => Err(Failure::Runtime(
            anyhow::Error::from(e).context("writing to standard output"),
        )),
    }
}

/// `println!` that returns a [`Failure`] for a closed pipe (use inside functions returning `Result<_, Failure>`).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))?
    };
}

/// Writes the four reports into `dir` (report.json and report.md as given, as stored), prints the verdict, its
/// reasons and where the reports are; returns the verdict's exit code.
pub(super) fn deliver(
    dir: &Path,
    report: &Report,
    json: &str,
    markdown: &str,
) -> Result<i32, Failure> {
    write_reports(dir, report, json, markdown).context("writing reports")?;
    let verdict = report.verdict;
    // A failed preflight sent no load: the plan or the setup needs fixing, as for an invalid plan.
    let preflight_failed = report
        .findings
        .iter()
        .any(|f| f.kind == loadgrade_common::report::FindingKind::PreflightFailed);
    let code = decided(if preflight_failed {
        super::EXIT_USAGE
    } else {
        verdict.exit_code()
    });
    // The report may come from another host: its words are printed with control characters escaped.
    let escaped = loadgrade_common::text::escaped;
    out!("verdict: {verdict} ({})", escaped(&report.grade_reason));
    for r in &report.verdict_reasons {
        out!("  - {}", escaped(r));
    }
    out!("report: {}", dir.join("report.md").display());
    out!("        {}", dir.join("report.html").display());
    out!("        {}", dir.join("report.json").display());
    out!("        {}", dir.join("junit.xml").display());
    out!(
        "monitoring: {} (alert rules from this run's figures), {} (Grafana)",
        dir.join("alerts.yml").display(),
        dir.join("dashboard.json").display()
    );
    Ok(code)
}

/// The report directory: `out`, or loadgrade-report/<run-id>/ with loadgrade-report/latest pointing at it. A run id
/// not of the coordinator's form (`loadgrade_common::run::is_run_id`) is refused: it would name a path.
pub(super) fn report_dir(out: Option<PathBuf>, run_id: &str) -> anyhow::Result<PathBuf> {
    if let Some(out) = out {
        return Ok(out);
    }
    anyhow::ensure!(
        loadgrade_common::run::is_run_id(run_id),
        "run id {:?} is not of the form a coordinator gives (e.g. 20261127T001530Z-3f9a)",
        loadgrade_common::text::escaped(run_id)
    );
    let base = PathBuf::from("loadgrade-report");
    let dir = base.join(run_id);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let latest = base.join("latest");
    let _ = std::fs::remove_file(&latest);
    std::os::unix::fs::symlink(run_id, &latest)
        .with_context(|| format!("linking {}", latest.display()))?;
    Ok(dir)
}

/// An error and its causes on one line, a cause that only repeats what is said already left out (a TLS error comes
/// once as the I/O error that carries it and once as itself), TLS failures in words.
pub(super) fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let said = cause.to_string();
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    loadgrade_common::text::tls_in_words(&text)
}
