//! The Prometheus exposition formats, text 0.0.4 and OpenMetrics 1.0: a strict line reader that counts series
//! and samples (and yields each sample's name and value), and the relay's replication of a scrape.
//!
//! Written here rather than taken from `prometheus-parse` (0.2.5): that crate skips lines it cannot match, so a
//! page of garbage parses as "no samples"; its names exclude `:` and its label reader stops at a `}` inside a
//! value; it knows no OpenMetrics. A scrape that is not an exposition must be an error that names the line.

use std::collections::HashSet;

/// The format a body is in, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    /// The format a `Content-Type` names; `None` for one that is not an exposition (HTML, JSON).
    pub fn of_content_type(content_type: &str) -> Option<Format> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/openmetrics-text" => Some(Format::OpenMetrics),
            // No content type at all is what many small exporters send.
            "text/plain" | "" => Some(Format::Text),
            _ => None,
        }
    }
}

/// What one scrape exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counted {
    /// Distinct series (name and labels).
    pub series: u64,
    /// Sample lines.
    pub samples: u64,
}

/// Why a body is not an exposition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why} ({text})")]
pub struct ExpositionError {
    pub line: usize,
    pub why: &'static str,
    /// The line's start, control characters escaped.
    pub text: String,
}

/// One sample line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    /// The text between the braces, as written; empty without labels.
    pub labels: &'a str,
    pub value: f64,
    /// Name and labels as written: the series.
    pub series: &'a str,
}

/// Counts the series and samples of `body`, or says which line is not an exposition.
pub fn count(body: &str, format: Format) -> Result<Counted, ExpositionError> {
    let mut series: HashSet<&str> = HashSet::new();
    let mut samples = 0u64;
    for sample in samples_of(body, format) {
        let sample = sample?;
        series.insert(sample.series);
        samples += 1;
    }
    Ok(Counted {
        series: series.len() as u64,
        samples,
    })
}

/// Every sample line of `body`, in order; comments and empty lines are checked and skipped.
pub fn samples_of(
    body: &str,
    format: Format,
) -> impl Iterator<Item = Result<Sample<'_>, ExpositionError>> {
    let mut ended = false;
    body.lines().enumerate().filter_map(move |(index, line)| {
        let error = |why: &'static str| {
            Some(Err(ExpositionError {
                line: index + 1,
                why,
                text: line
                    .chars()
                    .take(60)
                    .flat_map(char::escape_default)
                    .collect(),
            }))
        };
        if ended {
            return error("text after # EOF");
        }
        let trimmed = line.trim_end_matches('\r');
        if trimmed.trim().is_empty() {
            return None;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            if format == Format::OpenMetrics && comment.trim() == "EOF" {
                ended = true;
                return None;
            }
            return comment_problem(comment, format).and_then(error);
        }
        match sample(trimmed, format) {
            Ok(s) => Some(Ok(s)),
            Err(why) => error(why),
        }
    })
}

/// A `#` line: HELP and TYPE (and UNIT in OpenMetrics) must name a metric; TYPE a known type.
fn comment_problem(comment: &str, format: Format) -> Option<&'static str> {
    let mut words = comment.split_whitespace();
    let keyword = words.next();
    let named = |name: Option<&str>| name.is_some_and(|n| name_end(n) == n.len() && !n.is_empty());
    match keyword {
        Some("HELP") | Some("UNIT") if !named(words.next()) => {
            Some("a HELP or UNIT line without a metric name")
        }
        Some("TYPE") => {
            if !named(words.next()) {
                return Some("a TYPE line without a metric name");
            }
            let known: &[&str] = match format {
                Format::Text => &["counter", "gauge", "histogram", "summary", "untyped"],
                Format::OpenMetrics => &[
                    "counter",
                    "gauge",
                    "histogram",
                    "gaugehistogram",
                    "stateset",
                    "info",
                    "summary",
                    "unknown",
                ],
            };
            (!words.next().is_some_and(|t| known.contains(&t))).then_some("an unknown metric type")
        }
        _ if format == Format::OpenMetrics
            && !matches!(keyword, Some("HELP" | "TYPE" | "UNIT")) =>
        {
            Some("OpenMetrics allows only HELP, TYPE, UNIT and EOF comments")
        }
        _ => None,
    }
}

/// Where a metric name starting `text` ends (0: no name).
fn name_end(text: &str) -> usize {
    text.char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()))
        })
        .map_or(text.len(), |(i, _)| i)
}

/// One sample line: `name[{labels}] value [timestamp] [# exemplar]`.
fn sample(line: &str, format: Format) -> Result<Sample<'_>, &'static str> {
    let end = name_end(line);
    if end == 0 {
        return Err("not a sample line: it does not start with a metric name");
    }
    let name = &line[..end];
    let mut rest = &line[end..];
    let mut labels = "";
    if let Some(after) = rest.strip_prefix('{') {
        let close = labels_end(after)?;
        labels = &after[..close];
        rest = &after[close + 1..];
    }
    // `a` and `a{}` are one series.
    let series = if labels.trim().is_empty() {
        name
    } else {
        &line[..line.len() - rest.len()]
    };
    // In text, spaces or tabs separate the fields; OpenMetrics is stricter, but a lenient reader loses nothing.
    let (fields, exemplar) = match rest.split_once(" # ") {
        Some((fields, exemplar)) if format == Format::OpenMetrics => (fields, Some(exemplar)),
        _ => (rest, None),
    };
    if !fields.starts_with([' ', '\t']) {
        return Err("no space between the series and its value");
    }
    let mut words = fields.split_whitespace();
    let value = words
        .next()
        .and_then(float)
        .ok_or("the value is not a number")?;
    if let Some(ts) = words.next()
        && float(ts).is_none_or(|t| !t.is_finite())
    {
        return Err("the timestamp is not a number");
    }
    if words.next().is_some() {
        return Err("more than a value and a timestamp after the series");
    }
    if let Some(exemplar) = exemplar
        && !exemplar.trim_start().starts_with('{')
    {
        return Err("an exemplar must start with its labels");
    }
    Ok(Sample {
        name,
        labels,
        value,
        series,
    })
}

/// The index of the `}` closing a label set whose text starts `text` (after the `{`), checking each pair.
fn labels_end(text: &str) -> Result<usize, &'static str> {
    let bytes = text.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if bytes.get(i) == Some(&b'}') {
            return Ok(i);
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if i == start || bytes[start].is_ascii_digit() {
            return Err("a label name is missing or starts with a digit");
        }
        if bytes.get(i) != Some(&b'=') || bytes.get(i + 1) != Some(&b'"') {
            return Err("a label is not name=\"value\"");
        }
        i += 2;
        loop {
            match bytes.get(i) {
                None => return Err("a label value is not closed"),
                Some(b'\\') => i += 2,
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
        i += 1;
        match bytes.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Ok(i),
            _ => return Err("labels are not separated by commas"),
        }
    }
}

/// A Go-style float: `NaN`, `+Inf`, `-Inf`, `Inf` or a decimal.
fn float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            text.parse().ok()
        }
        _ => None,
    }
}

/// The label the relay adds to each copy of a series.
pub const REPLICA_LABEL: &str = "loadgrade_replica";

/// Whether any sample of `body` (checked an exposition) has a label named `label`.
pub fn has_label(body: &str, label: &str) -> bool {
    let named = format!("{label}=\"");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = &l[name_end(l)..];
            let inner = rest.strip_prefix('{')?;
            Some(&inner[..labels_end(inner).ok()?])
        })
        .any(|labels| {
            // Label names start a pair: at the start or after a comma outside a value.
            let mut in_value = false;
            let mut escaped = false;
            let mut at_name = true;
            for (i, c) in labels.char_indices() {
                if in_value {
                    match (escaped, c) {
                        (false, '\\') => escaped = true,
                        (false, '"') => in_value = false,
                        _ => escaped = false,
                    }
                    continue;
                }
                if at_name && labels[i..].trim_start().starts_with(&named) {
                    return true;
                }
                at_name = c == ',';
                if c == '"' {
                    in_value = true;
                }
            }
            false
        })
}

/// `body` with every sample line served `replicas` times, each copy labelled `loadgrade_replica="K"`. A family's
/// comments stay once, before its samples; each copy of a family's samples is contiguous (as OpenMetrics wants);
/// `# EOF` stays last. The body was counted first, so its lines are known to be an exposition.
pub fn replicate(body: &str, replicas: u64) -> String {
    if replicas <= 1 {
        return body.to_owned();
    }
    let mut out = String::with_capacity(body.len().saturating_mul(replicas.min(1_000) as usize));
    let mut block: Vec<&str> = Vec::new();
    let mut eof = false;
    let flush = |out: &mut String, block: &mut Vec<&str>| {
        for k in 0..replicas {
            for line in block.iter() {
                out.push_str(&with_replica(line, k));
                out.push('\n');
            }
        }
        block.clear();
    };
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with('#') {
            flush(&mut out, &mut block);
            if line.trim() == "# EOF" {
                eof = true;
                continue;
            }
            out.push_str(line);
            out.push('\n');
        } else {
            block.push(line);
        }
    }
    flush(&mut out, &mut block);
    if eof {
        out.push_str("# EOF\n");
    }
    out
}

/// One sample line with the replica label added.
fn with_replica(line: &str, k: u64) -> String {
    let end = name_end(line);
    let (name, rest) = line.split_at(end);
    match rest.strip_prefix('{') {
        Some(labels) if labels.trim_start().starts_with('}') => {
            format!("{name}{{{REPLICA_LABEL}=\"{k}\"{labels}")
        }
        Some(labels) => format!("{name}{{{REPLICA_LABEL}=\"{k}\",{labels}"),
        None => format!("{name}{{{REPLICA_LABEL}=\"{k}\"}}{rest}"),
    }
}

#[cfg(test)]
mod tests;
