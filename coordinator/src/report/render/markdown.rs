//! report.md: the report page rendered as Markdown.

use super::{doc, page};
use loadgrade_common::report::Report;

pub fn markdown(report: &Report) -> String {
    doc::markdown(&page::blocks(report))
}
