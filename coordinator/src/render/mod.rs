//! Renderers: the report as JSON, Markdown, HTML and JUnit XML, and writing them to an output directory.

mod html;
mod junit;
mod markdown;

pub use html::html;
pub use junit::junit;
pub use markdown::markdown;

use loadgrade_common::report::Report;
use std::path::Path;

/// report.json: pretty-printed, field names as in DESIGN.md.
pub fn json(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(report)
}

/// Writes report.json, report.md, report.html and junit.xml into `dir` (created if missing). The JSON and Markdown
/// are written as given (as stored); HTML and JUnit are rendered from `report`.
pub fn write_reports(
    dir: &Path,
    report: &Report,
    json: &str,
    markdown: &str,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.json"), json)?;
    std::fs::write(dir.join("report.md"), markdown)?;
    std::fs::write(dir.join("report.html"), html(report))?;
    std::fs::write(dir.join("junit.xml"), junit(report))?;
    Ok(())
}
