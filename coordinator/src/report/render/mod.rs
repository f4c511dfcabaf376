//! Renderers: the report as JSON, Markdown, HTML and JUnit XML, and writing them to an output directory. The page
//! is built once as blocks (`page`, `doc`) and rendered as Markdown and HTML; each scenario kind has its own section
//! module (`http`, `ramp`) that the page reaches through one match on
//! [`loadgrade_common::report::ScenarioMetrics`].

mod cache;
mod chart;
mod doc;
mod html;
mod http;
mod junit;
mod markdown;
mod monitoring;
mod page;
mod pagination;
mod ramp;
mod scrape;

pub use html::html;
pub use junit::junit;
pub use markdown::markdown;
pub use monitoring::{alert_rules, dashboard};

use loadgrade_common::report::Report;
use std::path::Path;

/// XML-escapes text for attributes and content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

/// report.json: pretty-printed, field names as in DESIGN.md.
pub fn json(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(report)
}

/// Writes report.json, report.md, report.html, junit.xml and the monitoring artifacts (alerts.yml,
/// dashboard.json) into `dir` (created if missing). The JSON and Markdown are written as given (as stored); the rest
/// is rendered from `report`.
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
    std::fs::write(dir.join("alerts.yml"), alert_rules(report))?;
    let dashboard =
        serde_json::to_string_pretty(&dashboard(report)).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("dashboard.json"), dashboard)?;
    Ok(())
}
