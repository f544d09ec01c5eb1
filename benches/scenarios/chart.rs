//! Scaling curves as CSV (for anyone's tools) and as small SVG line charts (for the README):
//! a few dozen lines instead of a plotting framework.

use std::fmt::Write as _;
use std::path::Path;

/// One curve: how `y` grows with `x` for one measured quantity.
pub struct Curve {
    /// File stem: `target/bench/<name>.csv`, `<charts>/<name>.svg`.
    pub name: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// (x, y) points in x order; several series share the axes.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

impl Curve {
    /// `x,<series 1>,<series 2>…` with one row per x (empty where a series has no point).
    pub fn csv(&self) -> String {
        let mut xs: Vec<f64> = self
            .series
            .iter()
            .flat_map(|(_, pts)| pts.iter().map(|p| p.0))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let mut out = self.x_label.clone();
        for (name, _) in &self.series {
            let _ = write!(out, ",{name}");
        }
        out.push('\n');
        for x in xs {
            let _ = write!(out, "{x}");
            for (_, pts) in &self.series {
                match pts.iter().find(|p| p.0 == x) {
                    Some(p) => {
                        let _ = write!(out, ",{:.4}", p.1);
                    }
                    None => out.push(','),
                }
            }
            out.push('\n');
        }
        out
    }

    /// A 640×360 SVG: log-scale x when x spans more than a factor of 20, linear y from 0.
    pub fn svg(&self) -> String {
        const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
        let (w, h, left, right, top, bottom) = (640.0, 360.0, 70.0, 20.0, 40.0, 50.0);
        let pts = || self.series.iter().flat_map(|(_, p)| p.iter());
        let (x_min, x_max) = pts().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let y_max = pts().fold(0.0f64, |m, p| m.max(p.1)).max(1e-9) * 1.1;
        let log_x = x_min > 0.0 && x_max / x_min > 20.0;
        let fx = |x: f64| -> f64 {
            let (a, b, v) = if log_x {
                (x_min.ln(), x_max.ln(), x.ln())
            } else {
                (x_min, x_max, x)
            };
            let span = if b > a { b - a } else { 1.0 };
            left + (v - a) / span * (w - left - right)
        };
        let fy = |y: f64| top + (1.0 - y / y_max) * (h - top - bottom);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n\
             <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
            w / 2.0,
            escape(&self.title)
        );
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/><line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>",
            h - bottom,
            w - right,
            h - bottom,
            h - bottom
        );
        for i in 0..=4 {
            let y = y_max * f64::from(i) / 4.0;
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><line x1=\"{left}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#ddd\"/>",
                left - 6.0,
                fy(y) + 4.0,
                short(y),
                fy(y),
                w - right,
                fy(y)
            );
        }
        let mut xs: Vec<f64> = pts().map(|p| p.0).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        for x in xs {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                fx(x),
                h - bottom + 16.0,
                short(x)
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n<text transform=\"translate(16 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            (left + w - right) / 2.0,
            h - 12.0,
            escape(&self.x_label),
            (top + h - bottom) / 2.0,
            escape(&self.y_label)
        );
        for (i, (name, points)) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let path: Vec<String> = points
                .iter()
                .map(|p| format!("{:.1},{:.1}", fx(p.0), fy(p.1)))
                .collect();
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                path.join(" ")
            );
            for p in points {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>",
                    fx(p.0),
                    fy(p.1)
                );
            }
            let ly = top + 14.0 + 16.0 * i as f64;
            let _ = writeln!(
                s,
                "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"3\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{}</text>",
                left + 12.0,
                ly - 4.0,
                left + 30.0,
                ly,
                escape(name)
            );
        }
        s.push_str("</svg>\n");
        s
    }

    /// Writes the CSV under `csv_dir` and, when `svg_dir` is given, the chart there.
    pub fn write(&self, csv_dir: &Path, svg_dir: Option<&Path>) -> std::io::Result<()> {
        std::fs::create_dir_all(csv_dir)?;
        std::fs::write(csv_dir.join(format!("{}.csv", self.name)), self.csv())?;
        if let Some(dir) = svg_dir {
            std::fs::create_dir_all(dir)?;
            std::fs::write(dir.join(format!("{}.svg", self.name)), self.svg())?;
        }
        Ok(())
    }
}

fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
