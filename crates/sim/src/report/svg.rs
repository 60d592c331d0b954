//! SVG line plots written by hand: one or more series over a shared x axis,
//! "nice" ticks, and vertical markers (faults, detection, recovery). Used for
//! throughput over time around a fault and, in studies, throughput against
//! offered load.

use crate::report::json::Report;
use crate::stats::Stats;
use std::fmt::Write;

/// One line.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A vertical line at `x` with a label.
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    pub x: f64,
    pub label: String,
    pub color: &'static str,
}

/// A plot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub markers: Vec<Marker>,
}

const W: f64 = 800.0;
const H: f64 = 420.0;
const L: f64 = 70.0;
const R: f64 = 20.0;
const T: f64 = 40.0;
const B: f64 = 55.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
];

/// A step of 1, 2 or 5 times a power of ten giving about `n` intervals.
fn nice_step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    };
    m * mag
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

impl Plot {
    /// Renders the plot as a standalone SVG document.
    pub fn render(&self) -> String {
        let pts = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0f64);
        for &(x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        for m in &self.markers {
            x0 = x0.min(m.x);
            x1 = x1.max(m.x);
        }
        if !x0.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let xs = nice_step(x1 - x0, 8.0);
        let ys = nice_step(if y1 > 0.0 { y1 } else { 1.0 }, 5.0);
        let x0 = (x0 / xs).floor() * xs;
        let x1 = (x1 / xs).ceil() * xs;
        let y1 = ((y1 / ys).ceil() * ys).max(ys);
        let px = |x: f64| L + (x - x0) / (x1 - x0) * (W - L - R);
        let py = |y: f64| H - B - y / y1 * (H - T - B);

        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
            W / 2.0,
            esc(&self.title)
        );
        // Grid and ticks.
        let mut x = x0;
        while x <= x1 + xs * 1e-9 {
            let p = px(x);
            let _ = writeln!(
                s,
                r##"<line x1="{p:.1}" y1="{T}" x2="{p:.1}" y2="{:.1}" stroke="#eee"/><text x="{p:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                H - B,
                H - B + 16.0,
                num(x)
            );
            x += xs;
        }
        let mut y = 0.0;
        while y <= y1 + ys * 1e-9 {
            let p = py(y);
            let _ = writeln!(
                s,
                r##"<line x1="{L}" y1="{p:.1}" x2="{:.1}" y2="{p:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                W - R,
                L - 6.0,
                p + 4.0,
                num(y)
            );
            y += ys;
        }
        let _ = writeln!(
            s,
            r#"<rect x="{L}" y="{T}" width="{:.1}" height="{:.1}" fill="none" stroke="black"/>"#,
            W - L - R,
            H - T - B
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            (L + W - R) / 2.0,
            H - 12.0,
            esc(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"#,
            (T + H - B) / 2.0,
            (T + H - B) / 2.0,
            esc(&self.y_label)
        );
        for (i, se) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let mut d = String::new();
            for &(x, y) in &se.points {
                let _ = write!(d, "{:.1},{:.1} ", px(x), py(y));
            }
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
                d.trim_end()
            );
            let ly = T + 16.0 + 16.0 * i as f64;
            let _ = writeln!(
                s,
                r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                W - R - 170.0,
                W - R - 150.0,
                W - R - 145.0,
                ly + 4.0,
                esc(&se.name)
            );
        }
        for (i, m) in self.markers.iter().enumerate() {
            let p = px(m.x);
            let _ = writeln!(
                s,
                r#"<line x1="{p:.1}" y1="{T}" x2="{p:.1}" y2="{:.1}" stroke="{}" stroke-dasharray="5,3"/><text x="{:.1}" y="{:.1}" fill="{}">{}</text>"#,
                H - B,
                m.color,
                p + 3.0,
                T + 14.0 + 14.0 * (i % 4) as f64,
                m.color,
                esc(&m.label)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// Goodput over time in Mbit/s, averaged over windows of `window_us`.
pub fn goodput_series(stats: &Stats, window_us: u64, name: &str) -> Series {
    let per = (window_us / stats.bucket_us()).max(1) as usize;
    let secs = (per as u64 * stats.bucket_us()) as f64 / 1e6;
    let points = stats
        .goodput_series()
        .chunks(per)
        .enumerate()
        .map(|(i, c)| {
            let t = (i * per) as f64 * stats.bucket_us() as f64 / 1e6;
            (t, c.iter().sum::<u64>() as f64 * 8.0 / secs / 1e6)
        })
        .collect();
    Series {
        name: name.to_string(),
        points,
    }
}

/// The standard plot of a scenario run: goodput over time with the faults,
/// their detection and the recovery marked.
pub fn run_plot(report: &Report, stats: &Stats) -> Plot {
    let mut markers = Vec::new();
    for f in &report.faults {
        markers.push(Marker {
            x: f.at_ms / 1e3,
            label: format!("{} {}", f.kind, f.target),
            color: "#d62728",
        });
        if let Some(d) = f.detected_ms {
            markers.push(Marker {
                x: d / 1e3,
                label: "detected".into(),
                color: "#ff7f0e",
            });
        }
        if let Some(r) = f.recovered_ms {
            markers.push(Marker {
                x: r / 1e3,
                label: "recovered".into(),
                color: "#2ca02c",
            });
        }
    }
    Plot {
        title: format!("{}: goodput (seed {})", report.scenario, report.seed),
        x_label: "time (s)".into(),
        y_label: "goodput (Mbit/s)".into(),
        series: vec![goodput_series(stats, 100_000, "all connections")],
        markers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftsplice_proto::Instant;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(1000.0, 8.0), 100.0);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
    }

    #[test]
    fn renders_series_markers_and_escapes_text() {
        let p = Plot {
            title: "a < b".into(),
            x_label: "t".into(),
            y_label: "y".into(),
            series: vec![Series {
                name: "s".into(),
                points: vec![(0.0, 0.0), (1.0, 5.0), (2.0, 3.0)],
            }],
            markers: vec![Marker {
                x: 1.5,
                label: "crash".into(),
                color: "red",
            }],
        };
        let svg = p.render();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt; b"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("crash"));
        // Three points in the polyline.
        let line = svg.lines().find(|l| l.contains("<polyline")).unwrap();
        assert_eq!(
            line.split("points=\"").nth(1).unwrap().split(' ').count(),
            3
        );
    }

    #[test]
    fn goodput_windows_average_buckets() {
        let mut s = Stats::new(10_000);
        s.goodput(Instant::from_millis(5), 125_000); // 1 Mbit in bucket 0
        s.goodput(Instant::from_millis(15), 125_000);
        let g = goodput_series(&s, 20_000, "g");
        assert_eq!(g.points, vec![(0.0, 100.0)]);
    }
}
