//! Line charts as inline SVG for report.html: axes with ticks and labels, a legend, and each point's value in a
//! `<title>` (shown on hover, no script). Hand-written rather than drawn with `plotters`: the page stays one small
//! self-contained file whose colours follow the page's light or dark scheme through CSS, and the charts need only
//! lines, ticks and text.

use super::escape;
use std::fmt::Write as _;

/// One line of a chart.
pub struct Line {
    pub label: String,
    pub colour: &'static str,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

/// An axis: its label, linear or logarithmic, and its ticks (computed when `None`).
pub struct Axis {
    pub label: String,
    pub log: bool,
    pub ticks: Option<Vec<(f64, String)>>,
}

impl Axis {
    pub fn linear(label: impl Into<String>) -> Axis {
        Axis {
            label: label.into(),
            log: false,
            ticks: None,
        }
    }
}

const W: f64 = 640.0;
const H: f64 = 280.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 40.0;
/// Past this many points a line has no hover marks (the file stays small).
const MAX_MARKED: usize = 240;

/// A labelled mark across the plot: a vertical line at an x value, or a horizontal one at a y value.
pub enum Mark {
    AtX(f64, String),
    AtY(f64, String),
}

/// A chart of `lines` (points with a non-finite coordinate, or not positive on a log axis, are left out); empty
/// when no line has a point.
pub fn line_chart(name: &str, x: &Axis, y: &Axis, lines: &[Line]) -> String {
    marked_chart(name, x, y, lines, &[])
}

/// [`line_chart`] with marks (a cliff, a budget); the y range stretches to show a horizontal mark.
pub fn marked_chart(name: &str, x: &Axis, y: &Axis, lines: &[Line], marks: &[Mark]) -> String {
    let usable = |axis: &Axis, v: f64| v.is_finite() && (!axis.log || v > 0.0);
    let lines: Vec<(&Line, Vec<(f64, f64)>)> = lines
        .iter()
        .map(|l| {
            let points = l
                .points
                .iter()
                .copied()
                .filter(|(px, py)| usable(x, *px) && usable(y, *py))
                .collect();
            (l, points)
        })
        .filter(|(_, p): &(&Line, Vec<(f64, f64)>)| !p.is_empty())
        .collect();
    let all: Vec<(f64, f64)> = lines.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    if all.is_empty() {
        return String::new();
    }
    let scale = |axis: &Axis, v: f64| if axis.log { v.log10() } else { v };
    let range = |axis: &Axis, values: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| {
            (lo.min(scale(axis, v)), hi.max(scale(axis, v)))
        });
        if axis.log {
            (lo.floor(), hi.ceil().max(lo.floor() + 1.0))
        } else {
            let lo = lo.min(0.0);
            let hi = if hi > lo { nice_ceiling(hi) } else { lo + 1.0 };
            (lo, hi)
        }
    };
    let (x_lo, x_hi) = range(x, &mut all.iter().map(|(px, _)| *px));
    let y_marks = marks.iter().filter_map(|m| match m {
        Mark::AtY(v, _) if usable(y, *v) => Some(*v),
        _ => None,
    });
    let (y_lo, y_hi) = range(y, &mut all.iter().map(|(_, py)| *py).chain(y_marks));
    let px = |v: f64| LEFT + (scale(x, v) - x_lo) / (x_hi - x_lo) * (W - LEFT - RIGHT);
    let py = |v: f64| TOP + (y_hi - scale(y, v)) / (y_hi - y_lo) * (H - TOP - BOTTOM);
    let mut out = format!(
        "<svg class=\"chart\" data-chart=\"{}\" data-points=\"{}\" viewBox=\"0 0 {W} {H}\" width=\"100%\" \
         role=\"img\" aria-label=\"{}\">",
        escape(name),
        all.len(),
        escape(name)
    );
    // Y ticks and grid.
    let y_ticks: Vec<(f64, String)> = match &y.ticks {
        Some(t) => t.clone(),
        None if y.log => decades(y_lo, y_hi),
        None => linear_ticks(y_lo, y_hi),
    };
    for (v, label) in &y_ticks {
        let at = py(*v);
        if !(TOP - 0.5..=H - BOTTOM + 0.5).contains(&at) {
            continue;
        }
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{at:.1}\" y2=\"{at:.1}\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 4.0,
            at + 4.0,
            escape(label)
        );
    }
    let x_ticks: Vec<(f64, String)> = match &x.ticks {
        Some(t) => t.clone(),
        None if x.log => decades(x_lo, x_hi),
        None => linear_ticks(x_lo, x_hi),
    };
    for (v, label) in &x_ticks {
        let at = px(*v);
        if !(LEFT - 0.5..=W - RIGHT + 0.5).contains(&at) {
            continue;
        }
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"{TOP}\" y2=\"{}\"/>\
             <text x=\"{at:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            H - BOTTOM,
            H - BOTTOM + 14.0,
            escape(label)
        );
    }
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\
         <text x=\"12\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 12 {})\">{}</text>",
        H - BOTTOM,
        W - RIGHT,
        H - BOTTOM,
        H - BOTTOM,
        (LEFT + W - RIGHT) / 2.0,
        H - 6.0,
        escape(&x.label),
        (TOP + H - BOTTOM) / 2.0,
        (TOP + H - BOTTOM) / 2.0,
        escape(&y.label),
    );
    for mark in marks {
        match mark {
            Mark::AtX(v, label) if usable(x, *v) => {
                let at = px(*v);
                let _ = write!(
                    out,
                    "<line class=\"mark\" x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"{TOP}\" y2=\"{}\" stroke=\"#9467bd\" \
                     stroke-dasharray=\"3 3\"><title>{}</title></line>\
                     <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#9467bd\" text-anchor=\"{}\">{}</text>",
                    H - BOTTOM,
                    escape(label),
                    if at > W - RIGHT - 70.0 {
                        at - 3.0
                    } else {
                        at + 3.0
                    },
                    TOP + 10.0,
                    if at > W - RIGHT - 70.0 {
                        "end"
                    } else {
                        "start"
                    },
                    escape(label)
                );
            }
            Mark::AtY(v, label) if usable(y, *v) => {
                let at = py(*v);
                let _ = write!(
                    out,
                    "<line class=\"mark\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{at:.1}\" y2=\"{at:.1}\" stroke=\"#d62728\" \
                     stroke-dasharray=\"6 3\"><title>{}</title></line>\
                     <text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#d62728\">{}</text>",
                    W - RIGHT,
                    escape(label),
                    W - RIGHT - 2.0,
                    at - 3.0,
                    escape(label)
                );
            }
            _ => {}
        }
    }
    let mut legend_x = LEFT;
    for (line, points) in &lines {
        let path = points
            .iter()
            .map(|(vx, vy)| format!("{:.1},{:.1}", px(*vx), py(*vy)))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{path}\"/>",
            line.colour,
            if line.dashed {
                " stroke-dasharray=\"5 3\""
            } else {
                ""
            }
        );
        // A fitted or intended line (dashed) is not a measurement: no marks to hover.
        if points.len() <= MAX_MARKED && !line.dashed {
            for (vx, vy) in points {
                let _ = write!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"><title>{}: {} at {}</title></circle>",
                    px(*vx),
                    py(*vy),
                    line.colour,
                    escape(&line.label),
                    short(*vy),
                    short(*vx)
                );
            }
        }
        let _ = write!(
            out,
            "<rect x=\"{legend_x:.1}\" y=\"10\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"19\" font-size=\"11\">{}</text>",
            line.colour,
            legend_x + 14.0,
            escape(&line.label)
        );
        legend_x += 14.0 + 6.5 * line.label.chars().count() as f64 + 14.0;
    }
    out.push_str("</svg>");
    out
}

/// A number for a tick or a hover: few digits.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The smallest 1, 2 or 5 times a power of ten at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * power)
}

/// About five ticks at a 1, 2 or 5 step.
fn linear_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let step = nice_ceiling((hi - lo) / 5.0);
    let mut ticks = Vec::new();
    let mut v = (lo / step).ceil() * step;
    while v <= hi + step * 1e-9 && ticks.len() < 12 {
        ticks.push((v, short(v)));
        v += step;
    }
    ticks
}

/// A tick at each power of ten between `lo` and `hi` (log10 values).
fn decades(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let mut ticks = Vec::new();
    let mut d = lo;
    while d <= hi + 1e-9 && ticks.len() < 16 {
        let v = 10f64.powf(d);
        ticks.push((v, short(v)));
        d += 1.0;
    }
    ticks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_its_points_axes_and_escaped_labels() {
        let svg = line_chart(
            "latency",
            &Axis::linear("time (s)"),
            &Axis::linear("ms <p95>"),
            &[Line {
                label: "p95 <b>".into(),
                colour: "#1f77b4",
                points: vec![(0.0, 1.5), (1.0, 2.5), (2.0, f64::NAN)],
                dashed: false,
            }],
        );
        assert!(svg.contains("data-points=\"2\""), "{svg}");
        assert!(svg.contains("ms &lt;p95&gt;") && !svg.contains("<b>"));
        assert!(
            svg.contains("<title>p95 &lt;b&gt;: 2.50 at 1</title>"),
            "{svg}"
        );
        assert!(line_chart("none", &Axis::linear("x"), &Axis::linear("y"), &[]).is_empty());
        assert_eq!(nice_ceiling(7.3), 10.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
    }
}
