//! Server-rendered SVG line charts: axes with readable ticks, one path per
//! series, a legend, and hover values that need no JavaScript (an SVG
//! `<title>` on each point; the page's script adds a crosshair on top).

use std::fmt::Write as _;

use super::esc;

/// One line of a chart.
pub struct Line {
    /// Legend text (the series' labels).
    pub label: String,
    /// Points `(t_ms, v)` in time order; NaN and infinities are gaps.
    pub points: Vec<(i64, f64)>,
}

/// Colours that stay apart for the first dozen series.
const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22", "#393b79", "#ad494a",
];

/// Per-point hover titles are drawn up to this many points per chart; past
/// it the script's crosshair is the hover.
const MAX_TITLED_POINTS: usize = 3_000;

const W: f64 = 900.0;
const H: f64 = 320.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 28.0;

/// A "nice" step near `raw` (1, 2 or 5 times a power of ten).
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let n = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * mag
}

/// A value as an axis label: short, with SI suffixes for big numbers.
pub fn short_value(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e12 {
        (v / 1e12, "T")
    } else if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let mut s = format!("{scaled:.3}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".into();
    }
    format!("{s}{suffix}")
}

/// `HH:MM` (or `MM-DD HH:MM` for ranges over a day) in UTC.
fn time_label(ms: i64, long: bool) -> String {
    let (_, mo, d, h, mi, s) = crate::monitor::api::params::civil(ms);
    if long {
        format!("{mo:02}-{d:02} {h:02}:{mi:02}")
    } else if ms % 60_000 != 0 {
        format!("{h:02}:{mi:02}:{s:02}")
    } else {
        format!("{h:02}:{mi:02}")
    }
}

/// The chart as an `<svg>` element with a legend after it. `start`/`end`
/// are the x range in ms; `id` names the element for the script.
pub fn render(id: &str, lines: &[Line], start: i64, end: i64) -> String {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for l in lines {
        for &(_, v) in &l.points {
            if v.is_finite() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    let mut out = String::new();
    if !lo.is_finite() {
        out.push_str("<p class=\"empty\">No data points in this range.</p>");
        return out;
    }
    if lo == hi {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        lo -= pad;
        hi += pad;
    }
    let step = nice_step((hi - lo) / 5.0);
    let y0 = (lo / step).floor() * step;
    let y1 = (hi / step).ceil() * step;
    let span_t = (end - start).max(1) as f64;
    let x = |t: i64| LEFT + (t - start) as f64 / span_t * (W - LEFT - RIGHT);
    let y = |v: f64| TOP + (y1 - v) / (y1 - y0) * (H - TOP - BOTTOM);
    let _ = write!(
        out,
        "<svg id=\"{id}\" class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"graph of {} series\" data-start=\"{start}\" data-end=\"{end}\" data-y0=\"{y0}\" data-y1=\"{y1}\" data-left=\"{LEFT}\" data-right=\"{RIGHT}\" data-top=\"{TOP}\" data-bottom=\"{BOTTOM}\">",
        lines.len()
    );
    // Horizontal grid and value ticks.
    let mut v = y0;
    let mut guard = 0;
    while v <= y1 + step / 2.0 && guard < 50 {
        let yy = y(v);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/><text class=\"tick\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            esc(&short_value(v))
        );
        v += step;
        guard += 1;
    }
    // Time ticks at round intervals.
    let tstep = [
        1_000i64,
        5_000,
        10_000,
        15_000,
        30_000,
        60_000,
        300_000,
        600_000,
        900_000,
        1_800_000,
        3_600_000,
        7_200_000,
        21_600_000,
        43_200_000,
        86_400_000,
        604_800_000,
    ]
    .into_iter()
    .find(|s| (end - start) / s <= 8)
    .unwrap_or(604_800_000);
    let long = end - start > 86_400_000;
    let mut t = start.div_euclid(tstep) * tstep;
    if t < start {
        t += tstep;
    }
    while t <= end {
        let xx = x(t);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{}\"/><text class=\"tick\" x=\"{xx:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            H - BOTTOM,
            H - 8.0,
            time_label(t, long)
        );
        t += tstep;
    }
    let total: usize = lines.iter().map(|l| l.points.len()).sum();
    for (i, l) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let mut d = String::new();
        let mut pen_down = false;
        // A point with no finite neighbour draws no line: show it as a dot.
        let mut dots = String::new();
        let finite = |i: usize| l.points.get(i).is_some_and(|p| p.1.is_finite());
        for (i, &(t, v)) in l.points.iter().enumerate() {
            if !v.is_finite() {
                pen_down = false;
                continue;
            }
            let lonely = !(i > 0 && finite(i - 1) || finite(i + 1));
            if lonely {
                let _ = write!(
                    dots,
                    "<circle class=\"dot\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"/>",
                    x(t),
                    y(v)
                );
            }
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if pen_down { " L" } else { " M" },
                x(t),
                y(v)
            );
            pen_down = true;
        }
        let _ = write!(
            out,
            "<path class=\"series\" data-series=\"{i}\" d=\"{}\" stroke=\"{color}\"/>",
            d.trim_start()
        );
        out.push_str(&dots);
        if total <= MAX_TITLED_POINTS {
            for &(t, v) in l.points.iter().filter(|p| p.1.is_finite()) {
                let _ = write!(
                    out,
                    "<circle class=\"pt\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>{}\n{} @ {}</title></circle>",
                    x(t),
                    y(v),
                    esc(&l.label),
                    esc(&crate::monitor::rules::format_value(v)),
                    time_label(t, true)
                );
            }
        }
    }
    out.push_str("</svg><ul class=\"legend\">");
    for (i, l) in lines.iter().enumerate() {
        let _ = write!(
            out,
            "<li data-series=\"{i}\"><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
            COLORS[i % COLORS.len()],
            esc(&l.label)
        );
    }
    out.push_str("</ul>");
    // The data for the script's crosshair, inert without JavaScript.
    let _ = write!(
        out,
        "<script type=\"application/json\" class=\"chart-data\" data-for=\"{id}\">["
    );
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        for (j, &(t, v)) in l.points.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            if v.is_finite() {
                let _ = write!(out, "[{t},{v}]");
            } else {
                let _ = write!(out, "[{t},null]");
            }
        }
        out.push(']');
    }
    out.push_str("]</script>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_and_labels_are_round() {
        assert_eq!(nice_step(0.23), 0.5);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(1.5e6), 2e6);
        assert_eq!(short_value(1_500_000.0), "1.5M");
        assert_eq!(short_value(0.25), "0.25");
        assert_eq!(short_value(-0.0), "0");
        assert_eq!(short_value(12_345.0), "12.345k");
    }

    #[test]
    fn a_chart_draws_one_path_per_series_with_gaps_and_titles() {
        let lines = vec![
            Line {
                label: "up{job=\"a\"}".into(),
                points: vec![(0, 1.0), (15_000, f64::NAN), (30_000, 2.0), (45_000, 3.0)],
            },
            Line {
                label: "b".into(),
                points: vec![(0, 0.5)],
            },
        ];
        let svg = render("c0", &lines, 0, 60_000);
        assert_eq!(svg.matches("<path class=\"series\"").count(), 2);
        // The NaN splits the first line into two pieces.
        let first = svg.split("data-series=\"0\" d=\"").nth(1).unwrap();
        let d = first.split('"').next().unwrap();
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert_eq!(svg.matches("<circle class=\"pt\"").count(), 4);
        // The isolated points (before the gap, and the one-point series)
        // show as dots.
        assert_eq!(svg.matches("<circle class=\"dot\"").count(), 2);
        assert!(svg.contains("up{job=&quot;a&quot;}"));
        assert!(svg.contains("[[0,1],[15000,null],[30000,2],[45000,3]]"));
        assert!(render("c1", &[], 0, 1).contains("No data points"));
    }
}
