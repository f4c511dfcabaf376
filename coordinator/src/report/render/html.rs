//! report.html: one self-contained page (no scripts, no external assets): the report page rendered as HTML, with
//! a chart of each ramp's throughput and p95 by concurrency.

use super::{doc, escape, page};
use loadgrade_common::report::Report;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem;color:#222}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}\
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.verdict{padding:.6rem 1rem;font-size:1.3rem;\
border-radius:.3rem;display:inline-block}.PASS{background:#d8f5d8}.FAIL{background:#fbd5d5}.DEGRADED,.INVALID\
{background:#fdebc8}.bad{color:#b00;font-weight:bold}svg{background:#fafafa;border:1px solid #ddd}";

pub fn html(report: &Report) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>loadgrade: {}</title><style>{STYLE}</style></head>\
         <body>{}</body></html>\n",
        escape(&report.plan_name),
        doc::html(&page::blocks(report))
    )
}
