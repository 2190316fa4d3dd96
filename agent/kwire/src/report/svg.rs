//! The report's charts, written as inline SVG text: step charts of offsets over time, line and bar charts
//! of rates, and lanes (one per consumer group member) of who owned what when.
//!
//! Hand-written rather than plotters' SVG backend: the charts need a time axis in packet time with
//! sub-millisecond ticks, lanes with labelled bars, vertical event marks and a legend that prints;
//! plotters would add a dependency tree (font handling included) for a few hundred lines of `<path>` and
//! `<text>`, and its output format is not ours to keep byte-stable across upgrades. Here the text is
//! deterministic by construction: fixed-precision numbers, inputs in the caller's order.
//!
//! Easy to get wrong: every label is escaped (client ids, topics and group names are wire strings); no
//! `xmlns` or other URL appears (inline SVG in HTML needs none); colours come from the Okabe-Ito palette
//! (distinguishable with colour-blindness) and every series also differs by marker or dash, so a
//! black-and-white printout still reads; a chart with nothing to draw says so instead of an empty box.

use std::fmt::Write;

use super::html::esc;

pub const BLUE: &str = "#0072B2";
pub const ORANGE: &str = "#E69F00";
pub const GREEN: &str = "#009E73";
pub const PURPLE: &str = "#CC79A7";
pub const SKY: &str = "#56B4E9";
pub const RED: &str = "#D55E00";
pub const GREY: &str = "#8a8a8a";
pub const INK: &str = "#222222";

/// Colours given to series in turn (context charts).
pub const PALETTE: [&str; 7] = [BLUE, ORANGE, GREEN, PURPLE, SKY, RED, INK];

const W: f64 = 960.0;
const LEFT: f64 = 92.0;
const RIGHT: f64 = 24.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    None,
    Circle,
    Square,
    Diamond,
    Triangle,
    Cross,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Holds its value until the next point (offsets).
    Step,
    /// Straight segments between points (rates).
    Line,
    /// A bar per point (counts per bucket).
    Bars,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub color: &'static str,
    pub dash: bool,
    pub width: f64,
    pub marker: Marker,
    pub shape: Shape,
    /// (time ns, value), in time order.
    pub points: Vec<(i64, f64)>,
    /// A step series goes on to the right edge at its last value.
    pub hold: bool,
    /// Bars: this series' place among `n` drawn side by side in each bucket.
    pub slot: Option<(usize, usize)>,
}

impl Series {
    pub fn new(label: impl Into<String>, color: &'static str, shape: Shape) -> Series {
        Series {
            label: label.into(),
            color,
            dash: false,
            width: 2.0,
            marker: Marker::None,
            shape,
            points: Vec::new(),
            hold: false,
            slot: None,
        }
    }
}

/// A vertical line across the plot at one moment (the alert, a leader change, a revocation).
#[derive(Debug, Clone)]
pub struct VMark {
    pub t: i64,
    pub label: String,
    pub color: &'static str,
    pub strong: bool,
}

impl VMark {
    /// Its line's width and dash attribute: solid and wide when strong, else thin and dashed.
    fn stroke(&self) -> (f64, &'static str) {
        if self.strong {
            (2.5, "")
        } else {
            (1.5, r#" stroke-dasharray="4 3""#)
        }
    }
}

/// A chart of series over time.
#[derive(Debug, Clone, Default)]
pub struct Plot {
    /// What the chart shows, for screen readers (`aria-label`) and the `<title>`.
    pub title: String,
    pub series: Vec<Series>,
    pub marks: Vec<VMark>,
    pub y_label: String,
    /// The y axis starts at 0 (rates), else at the smallest value shown (offsets).
    pub y_from_zero: bool,
    /// Integer values (offsets): ticks at whole numbers.
    pub integers: bool,
    pub height: f64,
    /// Time range; widened to the points and marks when None.
    pub t_range: Option<(i64, i64)>,
    /// Labelled points (the values an alert compares).
    pub notes: Vec<Note>,
}

/// A labelled point on a plot.
#[derive(Debug, Clone)]
pub struct Note {
    pub t: i64,
    pub v: f64,
    pub text: String,
    pub color: &'static str,
}

struct Frame {
    top: f64,
    bottom: f64,
    t0: i64,
    t1: i64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn x(&self, t: i64) -> f64 {
        let span = (self.t1 - self.t0).max(1) as f64;
        LEFT + (t.clamp(self.t0, self.t1) - self.t0) as f64 / span * (W - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        let span = (self.y1 - self.y0).max(1e-9);
        self.bottom - (v - self.y0) / span * (self.bottom - self.top)
    }

    /// The time axis: a grid line and a clock label per tick (8 at most).
    fn time_grid(&self, out: &mut String) {
        let (top, bottom) = (self.top, self.bottom);
        let (ticks, tstep) = time_ticks(self.t0, self.t1, 8);
        for t in &ticks {
            let x = self.x(*t);
            let _ = write!(
                out,
                r#"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" class="grid"/><text x="{x:.1}" y="{:.1}" class="ax" text-anchor="middle">{}</text>"#,
                bottom + 16.0,
                clock(*t, tstep)
            );
        }
    }
}

/// Digits grouped by thousands: 169994417 -> "169,994,417".
pub fn group_digits(v: i64) -> String {
    let s = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// A value for an axis label: grouped integers, else up to 2 decimals.
fn fmt_value(v: f64, integers: bool) -> String {
    if integers || (v.fract() == 0.0 && v.abs() < 9e15) {
        group_digits(v.round() as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A round step near `span / n`: 1, 2 or 5 times a power of ten.
fn nice_step(span: f64, n: f64, integers: bool) -> f64 {
    let raw = (span / n).max(1e-12);
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let step = if m <= 1.0 {
        p
    } else if m <= 2.0 {
        2.0 * p
    } else if m <= 5.0 {
        5.0 * p
    } else {
        10.0 * p
    };
    if integers {
        step.max(1.0).round()
    } else {
        step
    }
}

/// Time-of-day label of `t` (UTC) precise to `step_ns`.
pub fn clock(t: i64, step_ns: i64) -> String {
    let secs = t.div_euclid(1_000_000_000);
    let nanos = t.rem_euclid(1_000_000_000);
    let day = secs.rem_euclid(86_400);
    let (h, m, s) = (day / 3600, day % 3600 / 60, day % 60);
    if step_ns >= 60_000_000_000 {
        format!("{h:02}:{m:02}")
    } else if step_ns >= 1_000_000_000 {
        format!("{h:02}:{m:02}:{s:02}")
    } else if step_ns >= 100_000_000 {
        format!("{h:02}:{m:02}:{s:02}.{}", nanos / 100_000_000)
    } else if step_ns >= 10_000_000 {
        format!("{h:02}:{m:02}:{s:02}.{:02}", nanos / 10_000_000)
    } else {
        format!("{h:02}:{m:02}:{s:02}.{:03}", nanos / 1_000_000)
    }
}

/// Time ticks (ns) over [t0, t1], about `n` of them, at round steps.
fn time_ticks(t0: i64, t1: i64, n: i64) -> (Vec<i64>, i64) {
    const STEPS: [i64; 27] = [
        1_000_000,
        2_000_000,
        5_000_000,
        10_000_000,
        20_000_000,
        50_000_000,
        100_000_000,
        200_000_000,
        500_000_000,
        1_000_000_000,
        2_000_000_000,
        5_000_000_000,
        10_000_000_000,
        15_000_000_000,
        30_000_000_000,
        60_000_000_000,
        120_000_000_000,
        300_000_000_000,
        600_000_000_000,
        900_000_000_000,
        1_800_000_000_000,
        3_600_000_000_000,
        7_200_000_000_000,
        10_800_000_000_000,
        21_600_000_000_000,
        43_200_000_000_000,
        86_400_000_000_000,
    ];
    let span = (t1 - t0).max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= n)
        .unwrap_or(86_400_000_000_000);
    let mut t = t0.div_euclid(step) * step;
    if t < t0 {
        t += step;
    }
    let mut v = Vec::new();
    while t <= t1 && v.len() < 64 {
        v.push(t);
        t += step;
    }
    (v, step)
}

fn marker(out: &mut String, m: Marker, x: f64, y: f64, color: &str) {
    let _ = match m {
        Marker::None => Ok(()),
        Marker::Circle => write!(
            out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{color}"/>"#
        ),
        Marker::Square => write!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="7" height="7" fill="{color}"/>"#,
            x - 3.5,
            y - 3.5
        ),
        Marker::Diamond => write!(
            out,
            r#"<path d="M{x:.1} {:.1}L{:.1} {y:.1}L{x:.1} {:.1}L{:.1} {y:.1}Z" fill="{color}"/>"#,
            y - 5.0,
            x + 5.0,
            y + 5.0,
            x - 5.0
        ),
        Marker::Triangle => write!(
            out,
            r#"<path d="M{x:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}Z" fill="{color}"/>"#,
            y - 5.0,
            x + 5.0,
            y + 4.0,
            x - 5.0,
            y + 4.0
        ),
        Marker::Cross => write!(
            out,
            r#"<path d="M{:.1} {:.1}L{:.1} {:.1}M{:.1} {:.1}L{:.1} {:.1}" stroke="{color}" stroke-width="2.5"/>"#,
            x - 5.0,
            y - 5.0,
            x + 5.0,
            y + 5.0,
            x - 5.0,
            y + 5.0,
            x + 5.0,
            y - 5.0
        ),
    };
}

/// The legend rows at the top: returns the SVG and the height it takes.
fn legend(items: &[(&str, &'static str, bool, Marker)], y0: f64) -> (String, f64) {
    let mut out = String::new();
    let (mut x, mut y) = (LEFT, y0);
    for (label, color, dash, m) in items {
        // About 6.6 px per character at 12 px.
        let w = 34.0 + label.chars().count() as f64 * 6.6 + 18.0;
        if x + w > W - RIGHT && x > LEFT {
            x = LEFT;
            y += 18.0;
        }
        let dasharray = if *dash {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2.5"{dasharray}/>"#,
            x + 24.0
        );
        marker(&mut out, *m, x + 12.0, y, color);
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="lg">{}</text>"#,
            x + 30.0,
            y + 4.0,
            esc(label)
        );
        x += w;
    }
    (out, y - y0 + 18.0)
}

fn open(out: &mut String, title: &str, h: f64) {
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {W:.0} {h:.0}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
}

fn empty(title: &str, why: &str) -> String {
    let mut out = String::new();
    open(&mut out, title, 60.0);
    let _ = write!(
        out,
        r#"<rect x="1" y="1" width="{:.0}" height="58" class="empty"/><text x="{:.0}" y="35" class="nodata" text-anchor="middle">{}</text></svg>"#,
        W - 2.0,
        W / 2.0,
        esc(why)
    );
    out
}

/// A chart of series over time, with vertical marks and a legend.
pub fn plot(p: &Plot) -> String {
    let pts = p.series.iter().flat_map(|s| s.points.iter());
    let (mut t0, mut t1) = (i64::MAX, i64::MIN);
    let (mut y0, mut y1) = (f64::MAX, f64::MIN);
    for (t, v) in pts {
        t0 = t0.min(*t);
        t1 = t1.max(*t);
        y0 = y0.min(*v);
        y1 = y1.max(*v);
    }
    if t0 > t1 {
        return empty(&p.title, "nothing seen on the wire for this chart");
    }
    for m in &p.marks {
        t0 = t0.min(m.t);
        t1 = t1.max(m.t);
    }
    if let Some((a, b)) = p.t_range {
        t0 = a;
        t1 = b;
    }
    if t1 <= t0 {
        t0 -= 500_000_000;
        t1 += 500_000_000;
    }
    // A little air on both sides of the time range.
    let pad = (t1 - t0) / 40;
    let (t0, t1) = (t0 - pad, t1 + pad);
    if p.y_from_zero {
        y0 = 0.0;
    }
    if y1 <= y0 {
        y1 = y0 + if p.integers { 2.0 } else { 1.0 };
        if !p.y_from_zero {
            y0 -= if p.integers { 1.0 } else { 0.5 };
            y1 -= if p.integers { 1.0 } else { 0.5 };
        }
    }
    let step = nice_step(y1 - y0, 5.0, p.integers);
    let y0 = if p.y_from_zero {
        0.0
    } else {
        (y0 / step).floor() * step
    };
    let y1 = (y1 / step).ceil() * step;
    let y1 = if y1 <= y0 { y0 + step } else { y1 };

    let items: Vec<(&str, &'static str, bool, Marker)> = p
        .series
        .iter()
        .map(|s| (s.label.as_str(), s.color, s.dash, s.marker))
        .collect();
    let (leg, leg_h) = legend(&items, 16.0);
    // Room above the plot for the marks' labels (three staggered rows at most).
    let mark_rows = if p.marks.is_empty() { 0.0 } else { 3.0 };
    let top = 16.0 + leg_h + 8.0 + 13.0 * mark_rows;
    let plot_h = p.height.max(120.0);
    let bottom = top + plot_h;
    let h = bottom + 44.0;
    let f = Frame {
        top,
        bottom,
        t0,
        t1,
        y0,
        y1,
    };
    let mut out = String::new();
    open(&mut out, &p.title, h);
    out.push_str(&leg);
    // Grid and y labels.
    let mut v = y0;
    let mut n = 0;
    while v <= y1 + step * 0.001 && n < 40 {
        let y = f.y(v);
        let _ = write!(
            out,
            r#"<line x1="{LEFT:.0}" y1="{y:.1}" x2="{:.0}" y2="{y:.1}" class="grid"/><text x="{:.0}" y="{:.1}" class="ax" text-anchor="end">{}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            fmt_value(v, p.integers)
        );
        v += step;
        n += 1;
    }
    f.time_grid(&mut out);
    let _ = write!(
        out,
        r#"<text x="{:.0}" y="{:.0}" class="ax" text-anchor="end">time (UTC)</text><text x="14" y="{:.1}" class="ax" transform="rotate(-90 14 {:.1})" text-anchor="middle">{}</text>"#,
        W - RIGHT,
        bottom + 36.0,
        (top + bottom) / 2.0,
        (top + bottom) / 2.0,
        esc(&p.y_label)
    );
    let _ = write!(
        out,
        r#"<rect x="{LEFT:.0}" y="{top:.1}" width="{:.0}" height="{plot_h:.1}" class="frame"/>"#,
        W - LEFT - RIGHT
    );
    // Marks under the data.
    for m in &p.marks {
        let x = f.x(m.t);
        let (w, dash) = m.stroke();
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="{}" stroke-width="{w}"{dash}/>"#,
            m.color
        );
    }
    // Series.
    for s in &p.series {
        if s.points.is_empty() {
            continue;
        }
        let dash = if s.dash {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        match s.shape {
            Shape::Bars => {
                let (k, of) = s.slot.unwrap_or((0, 1));
                let bw = ((W - LEFT - RIGHT) / 130.0 / of as f64).max(2.0);
                let shift = (k as f64 - (of as f64 - 1.0) / 2.0) * bw;
                for (t, v) in &s.points {
                    let x = f.x(*t) + shift;
                    let y = f.y(*v);
                    let _ = write!(
                        out,
                        r#"<rect x="{:.1}" y="{y:.1}" width="{bw:.1}" height="{:.1}" fill="{}"/>"#,
                        x - bw / 2.0,
                        (bottom - y).max(0.0),
                        s.color
                    );
                }
            }
            Shape::Step | Shape::Line => {
                let mut d = String::new();
                let mut last_y = 0.0;
                for (i, (t, v)) in s.points.iter().enumerate() {
                    let (x, y) = (f.x(*t), f.y(*v));
                    if i == 0 {
                        let _ = write!(d, "M{x:.1} {y:.1}");
                    } else if s.shape == Shape::Step {
                        let _ = write!(d, "H{x:.1}V{y:.1}");
                    } else {
                        let _ = write!(d, "L{x:.1} {y:.1}");
                    }
                    last_y = y;
                }
                if s.hold && s.shape == Shape::Step {
                    let _ = write!(d, "H{:.1}", W - RIGHT);
                }
                let _ = last_y;
                let _ = write!(
                    out,
                    r#"<path d="{d}" fill="none" stroke="{}" stroke-width="{:.1}"{dash}/>"#,
                    s.color, s.width
                );
                for (t, v) in &s.points {
                    marker(&mut out, s.marker, f.x(*t), f.y(*v), s.color);
                }
            }
        }
    }
    // Notes: a ring on the point and its label beside it, on a white halo.
    for (i, nt) in p.notes.iter().enumerate() {
        let (x, y) = (f.x(nt.t), f.y(nt.v));
        let right = x < W - 260.0;
        let (anchor, dx) = if right { ("start", 9.0) } else { ("end", -9.0) };
        let dy = if i % 2 == 0 { -8.0 } else { 16.0 };
        let _ = write!(
            out,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="6.5" fill="none" stroke="{}" stroke-width="2"/><text x="{:.1}" y="{:.1}" class="nt" fill="{}" text-anchor="{anchor}">{}</text>"#,
            nt.color,
            x + dx,
            y + dy,
            nt.color,
            esc(&nt.text)
        );
    }
    // Mark labels on top, staggered so neighbours do not overlap.
    let mut last_x = f64::MIN;
    let mut row = 0;
    for m in &p.marks {
        let x = f.x(m.t);
        row = if x - last_x < 130.0 { (row + 1) % 3 } else { 0 };
        last_x = x;
        let anchor = if x > W - 200.0 { "end" } else { "start" };
        let dx = if anchor == "end" { -4.0 } else { 4.0 };
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="mk" fill="{}" text-anchor="{anchor}">{}</text>"#,
            x + dx,
            top - 5.0 - 13.0 * row as f64,
            m.color,
            esc(&m.label)
        );
    }
    out.push_str("</svg>");
    out
}

/// One bar of a lane: the member owned `text` from t0 to t1.
#[derive(Debug, Clone)]
pub struct Bar {
    pub t0: i64,
    pub t1: i64,
    pub text: String,
    /// It holds the partition the incident is about.
    pub hot: bool,
}

/// A moment on one lane (a join, a revocation, a commit).
#[derive(Debug, Clone)]
pub struct Dot {
    pub t: i64,
    pub marker: Marker,
    pub color: &'static str,
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct Lane {
    pub label: String,
    pub sub: String,
    pub bars: Vec<Bar>,
    pub dots: Vec<Dot>,
}

#[derive(Debug, Clone, Default)]
pub struct Lanes {
    pub title: String,
    pub lanes: Vec<Lane>,
    pub marks: Vec<VMark>,
    pub legend: Vec<(String, &'static str, Marker)>,
}

/// One lane per member over time: bars of ownership, dots of events, vertical marks.
pub fn lanes(l: &Lanes) -> String {
    let (mut t0, mut t1) = (i64::MAX, i64::MIN);
    for lane in &l.lanes {
        for b in &lane.bars {
            t0 = t0.min(b.t0);
            t1 = t1.max(b.t1);
        }
        for d in &lane.dots {
            t0 = t0.min(d.t);
            t1 = t1.max(d.t);
        }
    }
    for m in &l.marks {
        t0 = t0.min(m.t);
        t1 = t1.max(m.t);
    }
    if l.lanes.is_empty() || t0 > t1 {
        return empty(&l.title, "no group events seen for this group");
    }
    if t1 <= t0 {
        t1 = t0 + 1_000_000_000;
    }
    let pad = (t1 - t0) / 40;
    let (t0, t1) = (t0 - pad, t1 + pad);
    let items: Vec<(&str, &'static str, bool, Marker)> = l
        .legend
        .iter()
        .map(|(s, c, m)| (s.as_str(), *c, false, *m))
        .collect();
    let (leg, leg_h) = legend(&items, 16.0);
    let top = 16.0 + leg_h + 30.0;
    let lane_h = 60.0;
    let bottom = top + lane_h * l.lanes.len() as f64;
    let h = bottom + 40.0;
    let f = Frame {
        top,
        bottom,
        t0,
        t1,
        y0: 0.0,
        y1: 1.0,
    };
    let mut out = String::new();
    open(&mut out, &l.title, h);
    out.push_str(&leg);
    f.time_grid(&mut out);
    let _ = write!(
        out,
        r#"<text x="{:.0}" y="{:.0}" class="ax" text-anchor="end">time (UTC)</text>"#,
        W - RIGHT,
        bottom + 34.0
    );
    for (i, lane) in l.lanes.iter().enumerate() {
        let y = top + lane_h * i as f64;
        let cls = if i % 2 == 0 { "lane0" } else { "lane1" };
        let _ = write!(
            out,
            r#"<rect x="0" y="{y:.1}" width="{W:.0}" height="{lane_h:.0}" class="{cls}"/><text x="6" y="{:.1}" class="ln">{}</text><text x="6" y="{:.1}" class="ls">{}</text>"#,
            y + 19.0,
            esc(&clip(&lane.label, 13)),
            y + 34.0,
            esc(&clip(&lane.sub, 14))
        );
        for b in &lane.bars {
            let (x0, x1) = (f.x(b.t0), f.x(b.t1));
            let (fill, cls) = if b.hot {
                (BLUE, "bt")
            } else {
                ("#c9d6e3", "bt dark")
            };
            let _ = write!(
                out,
                r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="22" rx="3" fill="{fill}"/>"#,
                y + 8.0,
                (x1 - x0).max(2.0)
            );
            // The label only where it fits (about 6.2 px per character).
            let room = ((x1 - x0 - 8.0) / 6.2).floor();
            if room >= 3.0 {
                let _ = write!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" class="{cls}">{}</text>"#,
                    x0 + 4.0,
                    y + 23.0,
                    esc(&clip(&b.text, room as usize))
                );
            }
        }
        // Labels under the bars on two rows; one that would overlap both rows is left out (the
        // marker stays, the evidence table has the value).
        let mut row_end = [f64::MIN; 2];
        for d in &lane.dots {
            let x = f.x(d.t);
            marker(&mut out, d.marker, x, y + 19.0, d.color);
            if d.label.is_empty() {
                continue;
            }
            let width = d.label.chars().count() as f64 * 6.2 + 8.0;
            let end_anchor = x + width > W - RIGHT;
            let (x0, x1) = if end_anchor {
                (x - width, x)
            } else {
                (x - 3.0, x + width)
            };
            let Some(r) = (0..2).find(|r| row_end[*r] < x0) else {
                continue;
            };
            row_end[r] = x1;
            let (anchor, tx) = if end_anchor {
                ("end", x + 3.0)
            } else {
                ("start", x - 3.0)
            };
            let _ = write!(
                out,
                r#"<text x="{tx:.1}" y="{:.1}" class="dl" fill="{}" text-anchor="{anchor}">{}</text>"#,
                y + 43.0 + 12.0 * r as f64,
                d.color,
                esc(&d.label)
            );
        }
    }
    let mut last_x = f64::MIN;
    let mut row = 0;
    for m in &l.marks {
        let x = f.x(m.t);
        let (w, dash) = m.stroke();
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="{}" stroke-width="{w}"{dash}/>"#,
            top - 26.0,
            m.color
        );
        row = if x - last_x < 150.0 { (row + 1) % 2 } else { 0 };
        last_x = x;
        let anchor = if x > W - 220.0 { "end" } else { "start" };
        let dx = if anchor == "end" { -4.0 } else { 4.0 };
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="mk" fill="{}" text-anchor="{anchor}">{}</text>"#,
            x + dx,
            top - 16.0 + 12.0 * row as f64,
            m.color,
            esc(&m.label)
        );
    }
    out.push_str("</svg>");
    out
}

/// At most `n` characters, with an ellipsis when cut.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut v: String = s.chars().take(n.saturating_sub(1)).collect();
    v.push('…');
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_clock() {
        assert_eq!(group_digits(169_994_417), "169,994,417");
        assert_eq!(group_digits(-666_370), "-666,370");
        assert_eq!(group_digits(7), "7");
        // 2026-11-22T18:50:54.883493Z
        let t = 1_795_373_454_883_493_000;
        assert_eq!(clock(t, 1_000_000), "18:50:54.883");
        assert_eq!(clock(t, 1_000_000_000), "18:50:54");
    }

    #[test]
    fn a_plot_escapes_labels_and_names_no_url() {
        let mut s = Series::new("<client> & co", BLUE, Shape::Step);
        s.points = vec![(0, 4.0), (1_000_000_000, 10.0)];
        let svg = plot(&Plot {
            title: "t".into(),
            series: vec![s],
            integers: true,
            height: 200.0,
            ..Default::default()
        });
        assert!(svg.contains("&lt;client&gt; &amp; co"));
        assert!(!svg.contains("http"));
        assert!(svg.contains("<path d=\"M"));
        let none = plot(&Plot::default());
        assert!(none.contains("nothing seen"));
    }
}
