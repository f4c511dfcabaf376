//! Live progress of a run on standard error: on a terminal, one line redrawn in place for the current part (its
//! requests, the last second's rate and p95, elapsed of at most, agents) under the lines that stay (a part started
//! or ended, a finding); plain lines when standard error is a file or a pipe; nothing with `--quiet`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use loadgrade_common::run::RunEvent;
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `--quiet`, set once from the command line.
static QUIET: AtomicBool = AtomicBool::new(false);

/// No progress at all (the verdict and report paths are still printed).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub struct Progress {
    quiet: bool,
    /// On a terminal: the redrawn line.
    live: Option<ProgressBar>,
}

impl Progress {
    pub fn new() -> Progress {
        let quiet = QUIET.load(Ordering::Relaxed);
        let live = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress { quiet, live }
    }

    /// Shows one event of the run.
    pub fn event(&self, event: &RunEvent) {
        if self.quiet || event.message.is_empty() {
            return;
        }
        // Events may come from another host: escape sequences in them are shown, never obeyed.
        let message = loadgrade_common::text::escaped(&event.message);
        match &self.live {
            Some(bar) if event.progress => bar.set_message(message),
            Some(bar) => bar.println(format!("  {message}")),
            None => note!("  {message}"),
        }
    }

    /// Removes the live line.
    pub fn finish(&self) {
        if let Some(bar) = &self.live {
            bar.finish_and_clear();
        }
    }
}
