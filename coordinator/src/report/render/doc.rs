//! A report page as blocks, written once and rendered twice: as Markdown (report.md) and as HTML (report.html), so
//! both show the same figures by construction.

use super::escape;
use loadgrade_common::grade::{Grade, Verdict};
use std::fmt::Write as _;

/// A run of text inside a block.
pub enum Inline {
    Text(String),
    Strong(String),
    Code(String),
    /// A measured figure (three decimals), or "not measured".
    Figure(Option<f64>),
    /// Something wrong, shown loudly.
    Bad(String),
}

/// A figure as people read it: a whole number as an integer, anything else with three decimals.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

impl Inline {
    /// A figure, or text that reads as a number (a count): right-aligned in a table.
    fn is_number(&self) -> bool {
        match self {
            Inline::Figure(_) => true,
            Inline::Text(t) => t.trim().parse::<f64>().is_ok(),
            _ => false,
        }
    }
}

/// Plain text.
pub fn text(t: impl Into<String>) -> Inline {
    Inline::Text(t.into())
}

/// A measured figure, or "not measured".
pub fn figure(v: Option<f64>) -> Inline {
    Inline::Figure(v)
}

/// A share (0..1 in report.json) shown as a percentage: the pages write every share the same way.
pub fn percent(v: Option<f64>) -> Inline {
    Inline::Figure(v.map(|v| 100.0 * v))
}

/// A count.
pub fn count(n: impl std::fmt::Display) -> Inline {
    Inline::Text(n.to_string())
}

pub enum Block {
    Heading(u8, Vec<Inline>),
    Verdict {
        verdict: Verdict,
        grade: Grade,
        reason: String,
    },
    Paragraph(Vec<Inline>),
    List(Vec<Vec<Inline>>),
    Table {
        headers: Vec<&'static str>,
        rows: Vec<Vec<Inline>>,
    },
    /// HTML only (a chart): Markdown leaves it out.
    Html(String),
    /// Preformatted text (a statement, a database's plan), lines kept.
    Code(String),
}

/// How a format writes each piece; [`render`] walks the blocks once for every format.
trait Format {
    fn inline(out: &mut String, inline: &Inline);
    fn heading(out: &mut String, level: u8, start: bool);
    fn verdict(out: &mut String, verdict: Verdict, grade: Grade, reason: &str);
    fn paragraph(out: &mut String, start: bool);
    fn list(out: &mut String, start: bool);
    fn item(out: &mut String, start: bool);
    /// `numeric[i]`: column `i` holds figures (right-aligned).
    fn header_row(out: &mut String, headers: &[&str], numeric: &[bool]);
    fn row(out: &mut String, start: bool);
    fn cell(out: &mut String, start: bool);
    fn table_end(out: &mut String);
    fn html(out: &mut String, fragment: &str);
    fn code(out: &mut String, text: &str);
}

fn render<F: Format>(blocks: &[Block]) -> String {
    let mut out = String::new();
    let runs = |out: &mut String, parts: &[Inline]| parts.iter().for_each(|p| F::inline(out, p));
    for block in blocks {
        match block {
            Block::Heading(level, parts) => {
                F::heading(&mut out, *level, true);
                runs(&mut out, parts);
                F::heading(&mut out, *level, false);
            }
            Block::Verdict {
                verdict,
                grade,
                reason,
            } => F::verdict(&mut out, *verdict, *grade, reason),
            Block::Paragraph(parts) => {
                F::paragraph(&mut out, true);
                runs(&mut out, parts);
                F::paragraph(&mut out, false);
            }
            Block::List(items) => {
                F::list(&mut out, true);
                for item in items {
                    F::item(&mut out, true);
                    runs(&mut out, item);
                    F::item(&mut out, false);
                }
                F::list(&mut out, false);
            }
            Block::Table { headers, rows } => {
                let numeric: Vec<bool> = (0..headers.len())
                    .map(|i| i > 0 && rows.iter().all(|r| r.get(i).is_none_or(Inline::is_number)))
                    .collect();
                F::header_row(&mut out, headers, &numeric);
                for row in rows {
                    F::row(&mut out, true);
                    for cell in row {
                        F::cell(&mut out, true);
                        F::inline(&mut out, cell);
                        F::cell(&mut out, false);
                    }
                    F::row(&mut out, false);
                }
                F::table_end(&mut out);
            }
            Block::Html(fragment) => F::html(&mut out, fragment),
            Block::Code(text) => F::code(&mut out, text),
        }
    }
    out
}

/// The blocks as Markdown.
pub fn markdown(blocks: &[Block]) -> String {
    render::<Markdown>(blocks)
}

/// The blocks as an HTML fragment.
pub fn html(blocks: &[Block]) -> String {
    render::<Html>(blocks)
}

struct Markdown;

/// Text safe in Markdown: its markup characters (HTML's `<` too) backslash-escaped, one line (so no text can start a list item,
/// a table row or a heading of its own).
fn md_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' | '>' | '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text safe in a Markdown code span: no backtick to close it, no bar to split a table cell, one line.
fn md_code(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '`' => "'".to_owned(),
            '|' => "\\|".to_owned(),
            c if c.is_control() => " ".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

impl Format for Markdown {
    fn inline(out: &mut String, inline: &Inline) {
        let _ = match inline {
            Inline::Text(t) => write!(out, "{}", md_escape(t)),
            Inline::Strong(t) | Inline::Bad(t) => write!(out, "**{}**", md_escape(t)),
            Inline::Code(t) => write!(out, "`{}`", md_code(t)),
            Inline::Figure(Some(v)) => write!(out, "{}", number(*v)),
            Inline::Figure(None) => write!(out, "not measured"),
        };
    }

    fn heading(out: &mut String, level: u8, start: bool) {
        if start {
            out.push_str(&"#".repeat(usize::from(level)));
            out.push(' ');
        } else {
            out.push_str("\n\n");
        }
    }

    fn verdict(out: &mut String, verdict: Verdict, grade: Grade, reason: &str) {
        let _ = write!(
            out,
            "**Verdict: {verdict}** · grade **{grade}** · {}\n\n",
            md_escape(reason)
        );
    }

    fn paragraph(out: &mut String, start: bool) {
        if !start {
            out.push_str("\n\n");
        }
    }

    fn list(out: &mut String, start: bool) {
        if !start {
            out.push('\n');
        }
    }

    fn item(out: &mut String, start: bool) {
        out.push_str(if start { "- " } else { "\n" });
    }

    fn header_row(out: &mut String, headers: &[&str], numeric: &[bool]) {
        // Figures are right-aligned, text left.
        let _ = writeln!(out, "| {} |", headers.join(" | "));
        let rule: String = numeric
            .iter()
            .map(|n| if *n { "---:|" } else { "---|" })
            .collect();
        let _ = writeln!(out, "|{rule}");
    }

    fn row(out: &mut String, start: bool) {
        out.push_str(if start { "|" } else { "\n" });
    }

    fn cell(out: &mut String, start: bool) {
        out.push_str(if start { " " } else { " |" });
    }

    fn table_end(out: &mut String) {
        out.push('\n');
    }

    fn html(_out: &mut String, _fragment: &str) {}

    /// A fenced block whose fence is longer than any run of backticks in the text, so nothing in it can close it.
    fn code(out: &mut String, text: &str) {
        let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        let body: String = text
            .chars()
            .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
            .collect();
        let _ = write!(out, "{fence}\n{}\n{fence}\n\n", body.trim_end());
    }
}

struct Html;

impl Format for Html {
    fn inline(out: &mut String, inline: &Inline) {
        let _ = match inline {
            Inline::Text(t) => write!(out, "{}", escape(t)),
            Inline::Strong(t) => write!(out, "<b>{}</b>", escape(t)),
            Inline::Code(t) => write!(out, "<code>{}</code>", escape(t)),
            Inline::Bad(t) => write!(out, "<span class=\"bad\">{}</span>", escape(t)),
            Inline::Figure(Some(v)) => write!(out, "{}", number(*v)),
            Inline::Figure(None) => write!(out, "<em>not measured</em>"),
        };
    }

    fn heading(out: &mut String, level: u8, start: bool) {
        let _ = write!(out, "<{}h{level}>", if start { "" } else { "/" });
    }

    fn verdict(out: &mut String, verdict: Verdict, grade: Grade, reason: &str) {
        let _ = write!(
            out,
            "<div class=\"verdict {verdict}\">Verdict <b>{verdict}</b> · grade <b>{grade}</b> · {}</div>",
            escape(reason)
        );
    }

    fn paragraph(out: &mut String, start: bool) {
        out.push_str(if start { "<p>" } else { "</p>" });
    }

    fn list(out: &mut String, start: bool) {
        out.push_str(if start { "<ul>" } else { "</ul>" });
    }

    fn item(out: &mut String, start: bool) {
        out.push_str(if start { "<li>" } else { "</li>" });
    }

    fn header_row(out: &mut String, headers: &[&str], _numeric: &[bool]) {
        // Wide tables scroll inside their own box on a narrow screen; the page never does.
        out.push_str("<div class=\"scroll\"><table><tr>");
        for h in headers {
            let _ = write!(out, "<th>{}</th>", escape(h));
        }
        out.push_str("</tr>");
    }

    fn row(out: &mut String, start: bool) {
        out.push_str(if start { "<tr>" } else { "</tr>" });
    }

    fn cell(out: &mut String, start: bool) {
        out.push_str(if start { "<td>" } else { "</td>" });
    }

    fn table_end(out: &mut String) {
        out.push_str("</table></div>");
    }

    fn html(out: &mut String, fragment: &str) {
        out.push_str(fragment);
    }

    fn code(out: &mut String, text: &str) {
        let _ = write!(out, "<pre>{}</pre>", escape(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 9): an agent's refusal text went into report.md as written: new lines forged list items,
    /// `<script>` and links went through.
    #[test]
    fn markdown_text_cannot_forge_markup() {
        let blocks = [Block::Paragraph(vec![text(
            "ok\n- PASS <script>x</script> [a](javascript:x) | *b*",
        )])];
        let md = markdown(&blocks);
        assert!(
            !md.contains("\n- PASS") && !md.contains("<script>") && !md.contains("[a]("),
            "{md}"
        );
    }

    #[test]
    fn one_table_two_renderings() {
        let blocks = [Block::Table {
            headers: vec!["a", "b"],
            rows: vec![
                vec![text("x<y"), figure(None)],
                vec![Inline::Bad("late".into()), figure(Some(1.0))],
            ],
        }];
        assert_eq!(
            markdown(&blocks),
            "| a | b |\n|---|---:|\n| x\\<y | not measured |\n| **late** | 1 |\n\n"
        );
        assert_eq!(
            html(&blocks),
            "<div class=\"scroll\"><table><tr><th>a</th><th>b</th></tr><tr><td>x&lt;y</td><td><em>not measured</em>\
             </td></tr><tr><td><span class=\"bad\">late</span></td><td>1</td></tr></table></div>"
        );
        assert_eq!(number(2.5), "2.500");
    }
}
