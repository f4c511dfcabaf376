//! Renderers: the report as JSON and Markdown, and writing them to an output directory.

mod markdown;

pub use markdown::markdown;

use loadgrade_common::report::Report;
use std::path::Path;

/// report.json: pretty-printed, field names as in DESIGN.md.
pub fn json(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(report)
}

/// Writes report.json and report.md into `dir` (created if missing).
pub fn write_reports(dir: &Path, json: &str, markdown: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.json"), json)?;
    std::fs::write(dir.join("report.md"), markdown)?;
    Ok(())
}
