//! Charts drawn on the server as inline SVG: line charts, stacked bar charts and sparklines.
//! No JavaScript is needed to see them, the Content-Security-Policy stays strict (colours
//! come from CSS classes, never `style` attributes), and every data point carries a
//! `<title>` so a pointer or a screen reader gets its exact value.
//!
//! Every text that reaches the SVG goes through [`esc`]: facet values come from events.

use std::fmt::Write as _;

/// Escapes text for HTML and SVG (element content and quoted attributes).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Round tick values covering `lo..=hi`, about `n` of them (1, 2, 2.5 or 5 × 10^k apart),
/// at least `min_step` apart (1 for counts: no "1.5 messages").
fn nice_ticks_from(lo: f64, hi: f64, n: usize, min_step: f64) -> Vec<f64> {
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo, lo + 1.0) };
    let raw = ((hi - lo) / n.max(1) as f64).max(min_step);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).floor() * step;
    let mut out = Vec::new();
    let mut v = first;
    while v <= hi + step * 0.5 && out.len() < 50 {
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        if v >= hi {
            break;
        }
        v += step;
    }
    out
}

/// Where the drawing goes inside the SVG's box.
#[derive(Clone, Copy)]
struct Frame {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn new(width: f64, height: f64) -> Frame {
        Frame {
            width,
            height,
            left: 52.0,
            right: 14.0,
            top: 12.0,
            bottom: 28.0,
        }
    }
    fn plot_w(&self) -> f64 {
        self.width - self.left - self.right
    }
    fn plot_h(&self) -> f64 {
        self.height - self.top - self.bottom
    }
    /// Centre of slot `i` of `n` (bars) or point `i` of `n` (lines, edge to edge).
    fn x(&self, i: usize, n: usize, slots: bool) -> f64 {
        if slots {
            self.left + self.plot_w() * (i as f64 + 0.5) / n.max(1) as f64
        } else if n <= 1 {
            self.left + self.plot_w() / 2.0
        } else {
            self.left + self.plot_w() * i as f64 / (n - 1) as f64
        }
    }
}

/// A vertical scale from data values to SVG y.
struct Scale {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Scale {
    fn new(lo: f64, hi: f64) -> Scale {
        Scale::stepped(lo, hi, 0.0)
    }
    /// Whole-number data (counts) get whole-number ticks.
    fn for_values(lo: f64, hi: f64, integers: bool) -> Scale {
        Scale::stepped(lo, hi, if integers { 1.0 } else { 0.0 })
    }
    fn stepped(lo: f64, hi: f64, min_step: f64) -> Scale {
        let ticks = nice_ticks_from(lo, hi, 4, min_step);
        let lo = ticks.first().copied().unwrap_or(lo).min(lo);
        let hi = ticks.last().copied().unwrap_or(hi).max(hi);
        Scale { lo, hi, ticks }
    }
    fn fixed(lo: f64, hi: f64, ticks: Vec<f64>) -> Scale {
        Scale { lo, hi, ticks }
    }
    fn y(&self, f: &Frame, v: f64) -> f64 {
        let span = if self.hi > self.lo {
            self.hi - self.lo
        } else {
            1.0
        };
        f.top + f.plot_h() * (1.0 - (v - self.lo) / span)
    }
}

fn open_svg(out: &mut String, f: &Frame, class: &str, label: &str) {
    let _ = write!(
        out,
        r#"<svg class="{class}" viewBox="0 0 {w} {h}" role="img" aria-label="{l}" xmlns="http://www.w3.org/2000/svg"><title>{l}</title>"#,
        w = f.width,
        h = f.height,
        l = esc(label)
    );
}

fn y_axis(out: &mut String, f: &Frame, s: &Scale, fmt: fn(f64) -> String) {
    // Ticks are round numbers: whole ones lose their decimals ("+50.0" reads as "50").
    let whole = s
        .ticks
        .iter()
        .all(|t| t.fract() == 0.0 && t.abs() >= 1.0 || *t == 0.0);
    for t in &s.ticks {
        let y = s.y(f, *t);
        let _ = write!(
            out,
            r#"<line class="grid{zero}" x1="{x1}" x2="{x2}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{tx}" y="{ty:.1}" text-anchor="end">{label}</text>"#,
            zero = if *t == 0.0 { " zero" } else { "" },
            x1 = f.left,
            x2 = f.width - f.right,
            tx = f.left - 6.0,
            ty = y + 3.5,
            label = esc(&if whole && t.abs() >= 1.0 {
                format!(
                    "{}{}",
                    if *t < 0.0 { "−" } else { "" },
                    crate::format::int(t.abs() as i64)
                )
            } else if *t == 0.0 {
                "0".to_string()
            } else {
                fmt(*t)
            })
        );
    }
}

fn x_labels(out: &mut String, f: &Frame, labels: &[String], slots: bool) {
    let n = labels.len();
    // About 6.5 units per character at the ticks' 11 px, plus a gap between labels.
    let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as f64;
    let most = ((f.plot_w() / (widest * 6.5 + 14.0)).floor() as usize).max(2);
    let step = n.div_ceil(most).max(1);
    for (i, l) in labels.iter().enumerate() {
        // Counted back from the last label (the newest bucket is always named), every
        // `step`th one.
        if !(n - 1 - i).is_multiple_of(step) {
            continue;
        }
        let x = f.x(i, n, slots);
        let anchor = if !slots && i == 0 && n > 1 {
            "start"
        } else if !slots && i + 1 == n && n > 1 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            out,
            r#"<text class="tick" x="{x:.1}" y="{y}" text-anchor="{anchor}">{l}</text>"#,
            y = f.height - 8.0,
            l = esc(l)
        );
    }
}

/// One line of a [`LineChart`]; `None` leaves a gap.
pub struct Line {
    /// Shown in point titles and the legend.
    pub name: String,
    /// Colour class (`s0` … `s11`, or a named one from the stylesheet).
    pub class: String,
    /// One value per x label.
    pub values: Vec<Option<f64>>,
}

/// A line chart over labelled points (days or time buckets).
pub struct LineChart {
    /// The accessible name (also the SVG's `<title>`).
    pub label: String,
    /// X labels, one per point.
    pub x: Vec<String>,
    /// The lines.
    pub lines: Vec<Line>,
    /// Fixed y range and ticks (e.g. a score's 0–100), else derived from the data.
    pub y_range: Option<(f64, f64, Vec<f64>)>,
    /// Formats y values for ticks and titles.
    pub fmt: fn(f64) -> String,
    /// Background bands `(from, to, class)` in y units.
    pub bands: Vec<(f64, f64, &'static str)>,
    /// The last point is a day still in progress (drawn hollow, titled "so far").
    pub partial_last: bool,
    /// Size of the SVG's box.
    pub size: (f64, f64),
}

impl LineChart {
    /// The chart as an SVG element.
    pub fn svg(&self) -> String {
        let f = Frame::new(self.size.0, self.size.1);
        let n = self.x.len();
        let scale = match &self.y_range {
            Some((lo, hi, ticks)) => Scale::fixed(*lo, *hi, ticks.clone()),
            None => {
                let vals = || self.lines.iter().flat_map(|l| l.values.iter().flatten());
                let (lo, hi) =
                    vals().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
                let integers = vals().all(|v| v.fract() == 0.0);
                if lo > hi {
                    Scale::new(0.0, 1.0)
                } else {
                    Scale::for_values(lo.min(0.0), hi, integers)
                }
            }
        };
        let mut out = String::with_capacity(4096);
        open_svg(&mut out, &f, "chart", &self.label);
        for (a, b, class) in &self.bands {
            let (y1, y2) = (scale.y(&f, *b), scale.y(&f, *a));
            let _ = write!(
                out,
                r#"<rect class="band {class}" x="{x}" y="{y1:.1}" width="{w}" height="{h:.1}"/>"#,
                x = f.left,
                w = f.plot_w(),
                h = (y2 - y1).max(0.0)
            );
        }
        y_axis(&mut out, &f, &scale, self.fmt);
        x_labels(&mut out, &f, &self.x, false);
        for line in &self.lines {
            let mut d = String::new();
            let mut pen_down = false;
            for (i, v) in line.values.iter().enumerate() {
                match v {
                    Some(v) => {
                        let _ = write!(
                            d,
                            "{}{:.1},{:.1} ",
                            if pen_down { "L" } else { "M" },
                            f.x(i, n, false),
                            scale.y(&f, *v)
                        );
                        pen_down = true;
                    }
                    None => pen_down = false,
                }
            }
            if !d.is_empty() {
                let _ = write!(
                    out,
                    r#"<path class="line {c}" d="{d}"/>"#,
                    c = esc(&line.class),
                    d = d.trim_end()
                );
            }
            // Dense series (hourly over a week) get no dots: they would hide the line.
            let dots = n <= 100 || line.values.iter().filter(|v| v.is_some()).count() <= 100;
            for (i, v) in line.values.iter().enumerate() {
                let Some(v) = v else { continue };
                if !(dots || self.partial_last && i + 1 == n) {
                    continue;
                }
                let partial = self.partial_last && i + 1 == n;
                let _ = write!(
                    out,
                    r#"<circle class="dot {c}{p}" cx="{x:.1}" cy="{y:.1}" r="3"><title>{name} · {label}{so_far}: {val}</title></circle>"#,
                    c = esc(&line.class),
                    p = if partial { " partial" } else { "" },
                    x = f.x(i, n, false),
                    y = scale.y(&f, *v),
                    name = esc(&line.name),
                    label = esc(&self.x[i]),
                    so_far = if partial { " (so far)" } else { "" },
                    val = esc(&(self.fmt)(*v)),
                );
            }
        }
        out.push_str("</svg>");
        out
    }
}

/// One series of a [`BarChart`]: a value per x label; negatives stack downwards.
pub struct Stack {
    /// Shown in titles and the legend.
    pub name: String,
    /// Colour class.
    pub class: String,
    /// One value per x label.
    pub values: Vec<f64>,
    /// Extra text for each value's title (e.g. the raw rate behind a weight).
    pub notes: Vec<String>,
}

/// Stacked bars per x label, positive values above the zero line and negative below.
pub struct BarChart {
    /// The accessible name.
    pub label: String,
    /// X labels.
    pub x: Vec<String>,
    /// The series, stacked in this order.
    pub stacks: Vec<Stack>,
    /// Formats values for ticks and titles.
    pub fmt: fn(f64) -> String,
    /// Fixed y range and ticks (e.g. 0–100 % for shares).
    pub y_range: Option<(f64, f64, Vec<f64>)>,
    /// The last bar is a day still in progress.
    pub partial_last: bool,
    /// Size of the SVG's box.
    pub size: (f64, f64),
}

impl BarChart {
    /// The chart as an SVG element.
    pub fn svg(&self) -> String {
        let f = Frame::new(self.size.0, self.size.1);
        let n = self.x.len();
        let mut lo: f64 = 0.0;
        let mut hi: f64 = 0.0;
        for i in 0..n {
            let (mut p, mut m) = (0.0, 0.0);
            for s in &self.stacks {
                let v = s.values.get(i).copied().unwrap_or(0.0);
                if v >= 0.0 {
                    p += v;
                } else {
                    m += v;
                }
            }
            hi = hi.max(p);
            lo = lo.min(m);
        }
        let scale = match &self.y_range {
            Some((a, b, t)) => Scale::fixed(*a, *b, t.clone()),
            None if hi == 0.0 && lo == 0.0 => Scale::new(0.0, 1.0),
            None => {
                let integers = self
                    .stacks
                    .iter()
                    .flat_map(|s| &s.values)
                    .all(|v| v.fract() == 0.0);
                Scale::for_values(lo, hi, integers)
            }
        };
        let mut out = String::with_capacity(8192);
        open_svg(&mut out, &f, "chart", &self.label);
        y_axis(&mut out, &f, &scale, self.fmt);
        x_labels(&mut out, &f, &self.x, true);
        let slot = f.plot_w() / n.max(1) as f64;
        let bar_w = (slot * 0.7).clamp(2.0, 48.0);
        for i in 0..n {
            let x = f.x(i, n, true) - bar_w / 2.0;
            let (mut up, mut down) = (0.0, 0.0);
            let partial = self.partial_last && i + 1 == n;
            for s in &self.stacks {
                let v = s.values.get(i).copied().unwrap_or(0.0);
                if v == 0.0 {
                    continue;
                }
                let (a, b) = if v > 0.0 {
                    let r = (up, up + v);
                    up += v;
                    r
                } else {
                    let r = (down + v, down);
                    down += v;
                    r
                };
                let (y1, y2) = (scale.y(&f, b), scale.y(&f, a));
                let note = s.notes.get(i).map(String::as_str).unwrap_or("");
                let _ = write!(
                    out,
                    r#"<rect class="bar {c}{p}" x="{x:.1}" y="{y1:.1}" width="{bar_w:.1}" height="{h:.1}"><title>{label}{so_far} · {name}: {val}{note}</title></rect>"#,
                    c = esc(&s.class),
                    p = if partial { " partial" } else { "" },
                    h = (y2 - y1).max(0.5),
                    label = esc(&self.x[i]),
                    so_far = if partial { " (so far)" } else { "" },
                    name = esc(&s.name),
                    val = esc(&(self.fmt)(v)),
                    note = esc(note),
                );
            }
        }
        out.push_str("</svg>");
        out
    }
}

/// A small trend line for a table row: no axes, the last point marked in `last_class`.
/// `range` fixes the vertical scale (e.g. 0–1 for scores) so rows compare at a glance.
pub fn sparkline(
    values: &[Option<f64>],
    range: Option<(f64, f64)>,
    label: &str,
    last_class: &str,
) -> String {
    let (w, h, pad) = (120.0, 30.0, 3.0);
    let (lo, hi) = range.unwrap_or_else(|| {
        let (a, b) = values
            .iter()
            .flatten()
            .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
        if a > b {
            (0.0, 1.0)
        } else if a == b {
            (a - 1.0, b + 1.0)
        } else {
            (a, b)
        }
    });
    let n = values.len();
    let x = |i: usize| {
        if n <= 1 {
            w / 2.0
        } else {
            pad + (w - 2.0 * pad) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| pad + (h - 2.0 * pad) * (1.0 - ((v - lo) / (hi - lo)).clamp(0.0, 1.0));
    let mut d = String::new();
    let mut pen = false;
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let _ = write!(
                    d,
                    "{}{:.1},{:.1} ",
                    if pen { "L" } else { "M" },
                    x(i),
                    y(*v)
                );
                pen = true;
            }
            None => pen = false,
        }
    }
    let mut out = format!(
        r#"<svg class="spark" viewBox="0 0 {w} {h}" role="img" aria-label="{l}" xmlns="http://www.w3.org/2000/svg"><title>{l}</title>"#,
        l = esc(label)
    );
    if !d.is_empty() {
        let _ = write!(out, r#"<path class="spark-line" d="{}"/>"#, d.trim_end());
    }
    if let Some((i, v)) = values
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, v)| v.map(|v| (i, v)))
    {
        let _ = write!(
            out,
            r#"<circle class="spark-dot {c}" cx="{:.1}" cy="{:.1}" r="2.6"/>"#,
            x(i),
            y(v),
            c = esc(last_class)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_from_events() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        let chart = LineChart {
            label: "<b>campaign</b>".into(),
            x: vec!["<i>".into()],
            lines: vec![Line {
                name: "<script>".into(),
                class: "s0".into(),
                values: vec![Some(1.0)],
            }],
            y_range: None,
            fmt: |v| v.to_string(),
            bands: vec![],
            partial_last: false,
            size: (600.0, 200.0),
        }
        .svg();
        assert!(!chart.contains("<script>") && !chart.contains("<b>") && !chart.contains("<i>"));
        assert!(chart.contains("&lt;script&gt;"));
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(
            nice_ticks_from(0.0, 100.0, 4, 0.0),
            vec![0.0, 25.0, 50.0, 75.0, 100.0]
        );
        let t = nice_ticks_from(-7.3, 4.1, 4, 0.0);
        assert!(t.first().unwrap() <= &-7.3 && t.last().unwrap() >= &4.1);
        assert!(t.contains(&0.0));
        assert_eq!(nice_ticks_from(0.0, 0.0, 4, 0.0).first(), Some(&0.0));
        // Counts: whole steps only.
        assert_eq!(nice_ticks_from(0.0, 2.0, 4, 1.0), vec![0.0, 1.0, 2.0]);
    }

    #[test]
    fn lines_break_at_gaps_and_mark_each_point() {
        let svg = LineChart {
            label: "score".into(),
            x: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            lines: vec![Line {
                name: "Health score".into(),
                class: "s0".into(),
                values: vec![Some(70.0), None, Some(80.0), Some(82.0)],
            }],
            y_range: Some((0.0, 100.0, vec![0.0, 50.0, 100.0])),
            fmt: |v| format!("{v:.0}"),
            bands: vec![(0.0, 55.0, "bad")],
            partial_last: true,
            size: (600.0, 200.0),
        }
        .svg();
        // Two sub-paths (the gap), three points with titles, the last one partial.
        let path = svg.split("d=\"").nth(1).unwrap();
        assert_eq!(path.split('"').next().unwrap().matches('M').count(), 2);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("d (so far): 82"));
        assert!(svg.contains(r#"class="band bad""#));
    }

    #[test]
    fn bars_stack_both_ways_from_zero() {
        let svg = BarChart {
            label: "weights".into(),
            x: vec!["Dec 1".into()],
            stacks: vec![
                Stack {
                    name: "Up".into(),
                    class: "s0".into(),
                    values: vec![4.0],
                    notes: vec![],
                },
                Stack {
                    name: "Down".into(),
                    class: "s1".into(),
                    values: vec![-3.0],
                    notes: vec![" (rate 2%)".into()],
                },
            ],
            fmt: |v| format!("{v:.1}"),
            y_range: None,
            partial_last: false,
            size: (600.0, 200.0),
        }
        .svg();
        assert_eq!(svg.matches("<rect class=\"bar").count(), 2);
        assert!(svg.contains("Down: -3.0 (rate 2%)"));
        assert!(svg.contains("grid zero"));
    }

    #[test]
    fn sparkline_marks_the_last_value() {
        let s = sparkline(&[Some(0.5), Some(0.9), None], Some((0.0, 1.0)), "t", "good");
        assert!(s.contains("spark-dot good"));
        assert!(s.contains("M3.0,"));
    }
}
