//! report.html: one self-contained page (no scripts, no external assets): the report page rendered as HTML, with
//! its charts, readable on a phone and in dark mode.

use super::{doc, escape, page};
use loadgrade_common::report::Report;

/// Light by default, dark with the reader's `prefers-color-scheme`; readable from 390 px up: the page never scrolls
/// sideways, wide tables scroll in their own box, charts take the width they get.
const STYLE: &str = ":root{--bg:#fff;--fg:#222;--muted:#666;--panel:#fafafa;--line:#ccc;--grid:#e4e4e4;--head:#f3f3f3;\
--pass:#d8f5d8;--fail:#fbd5d5;--warn:#fdebc8;--bad:#b00}\
@media (prefers-color-scheme:dark){:root{--bg:#15171a;--fg:#ddd;--muted:#999;--panel:#1d2024;--line:#444;\
--grid:#2c3036;--head:#23272c;--pass:#1f4d2a;--fail:#5c2323;--warn:#5a4a1e;--bad:#ff7b7b}}\
*{box-sizing:border-box}html{-webkit-text-size-adjust:100%}\
body{font-family:system-ui,sans-serif;margin:0 auto;padding:1rem;max-width:72rem;color:var(--fg);\
background:var(--bg);line-height:1.4;overflow-wrap:anywhere}\
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid var(--line)}\
.scroll{overflow-x:auto;max-width:100%;margin:.5rem 0 1.5rem}table{border-collapse:collapse}\
td,th{border:1px solid var(--line);padding:.25rem .6rem;text-align:right;white-space:nowrap;\
font-variant-numeric:tabular-nums}th{background:var(--head)}td:first-child,th:first-child{text-align:left}\
.verdict{padding:.6rem 1rem;font-size:1.3rem;border-radius:.3rem;display:inline-block}.PASS{background:var(--pass)}\
.FAIL{background:var(--fail)}.DEGRADED,.INVALID{background:var(--warn)}.bad{color:var(--bad);font-weight:bold}\
pre{overflow-x:auto;background:var(--panel);padding:.5rem;border:1px solid var(--line)}\
svg{display:block;width:100%;height:auto;max-width:640px;background:var(--panel);border:1px solid var(--line);\
margin:.5rem 0;color:var(--fg)}svg text{fill:currentColor}svg .grid,svg line[stroke=\"#ddd\"]{stroke:var(--grid)}\
svg .axis,svg line[stroke=\"#888\"]{stroke:var(--muted)}.charts{display:grid;gap:.5rem;\
grid-template-columns:repeat(auto-fit,minmax(min(100%,30rem),1fr))}";

pub fn html(report: &Report) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\"><title>loadgrade: {}</title><style>{STYLE}</style>\
         </head><body>{}</body></html>\n",
        escape(&report.plan_name),
        doc::html(&page::blocks(report))
    )
}
