//! Server-side charts (SVG, no script) and CSV, from published values only.
//!
//! Charts carry `role="img"`, a `<title>` and a `<desc>` (referenced by `aria-labelledby`), and
//! every bar or point has its value as text, so a screen reader or a printout loses nothing.
//! A redacted value is drawn as no bar with the word "redacted".

use std::fmt::Write;

use smr_sdc::{Cell, PublishedTable};

/// Text safe inside SVG/XML content and attribute values.
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// How values are printed on a chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// A proportion 0–1 shown as a percentage with one decimal.
    Percent,
    /// A number with no decimals (counts, days, pounds).
    Whole,
}

impl ValueFormat {
    fn show(self, v: f64) -> String {
        match self {
            ValueFormat::Percent => format!("{:.1}%", v * 100.0),
            ValueFormat::Whole => format!("{v:.0}"),
        }
    }
}

fn header(out: &mut String, id: &str, width: u32, height: u32, title: &str, desc: &str) {
    let id = escape_xml(id);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" aria-labelledby="{id}-title {id}-desc" font-family="sans-serif" font-size="14"><title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        escape_xml(title),
        escape_xml(desc)
    );
}

/// A horizontal bar chart: one bar per label, `None` drawn as "redacted".
pub fn bar_chart(
    id: &str,
    title: &str,
    desc: &str,
    bars: &[(String, Option<f64>)],
    format: ValueFormat,
) -> String {
    let row = 28u32;
    let label_w = 220u32;
    let chart_w = 360u32;
    let width = label_w + chart_w + 90;
    let height = 40 + row * bars.len() as u32 + 10;
    let max = bars
        .iter()
        .filter_map(|(_, v)| *v)
        .fold(0.0f64, f64::max)
        .max(match format {
            ValueFormat::Percent => 1.0,
            ValueFormat::Whole => 1.0,
        });
    let mut out = String::new();
    header(&mut out, id, width, height, title, desc);
    let _ = write!(
        out,
        r#"<text x="0" y="20" font-weight="bold">{}</text>"#,
        escape_xml(title)
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = 40 + row * i as u32;
        let _ = write!(
            out,
            r#"<g><text x="{}" y="{}" text-anchor="end">{}</text>"#,
            label_w - 8,
            y + 18,
            escape_xml(label)
        );
        match value {
            Some(v) => {
                let w = ((v / max) * f64::from(chart_w)).round().max(0.0) as u32;
                let _ = write!(
                    out,
                    r##"<rect x="{label_w}" y="{}" width="{w}" height="{}" fill="#005eb8"><title>{}: {}</title></rect><text x="{}" y="{}">{}</text></g>"##,
                    y + 4,
                    row - 8,
                    escape_xml(label),
                    format.show(*v),
                    label_w + w + 6,
                    y + 18,
                    format.show(*v)
                );
            }
            None => {
                let _ = write!(
                    out,
                    r##"<text x="{}" y="{}" fill="#425563" font-style="italic">redacted</text></g>"##,
                    label_w + 6,
                    y + 18
                );
            }
        }
    }
    out.push_str("</svg>");
    out
}

/// A line chart: x labels (months), one or more series; a `None` breaks the line and its
/// point is labelled "redacted".
pub fn line_chart(
    id: &str,
    title: &str,
    desc: &str,
    x_labels: &[String],
    series: &[(String, Vec<Option<f64>>)],
    format: ValueFormat,
) -> String {
    let (left, top, plot_w, plot_h) = (60u32, 40u32, 520u32, 220u32);
    let legend_h = 22 * series.len() as u32;
    let width = left + plot_w + 40;
    let height = top + plot_h + 50 + legend_h;
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().filter_map(|x| *x))
        .fold(0.0f64, f64::max);
    let max = if max <= 0.0 { 1.0 } else { max };
    let n = x_labels.len().max(1);
    let x = |i: usize| -> f64 {
        if n == 1 {
            f64::from(left) + f64::from(plot_w) / 2.0
        } else {
            f64::from(left) + f64::from(plot_w) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| f64::from(top) + f64::from(plot_h) * (1.0 - v / max);
    let colours = [
        "#005eb8", "#da291c", "#007f3b", "#7c2855", "#ed8b00", "#330072",
    ];
    let dashes = ["", "6 3", "2 3", "8 3 2 3", "1 2", "10 4"];
    let mut out = String::new();
    header(&mut out, id, width, height, title, desc);
    let _ = write!(
        out,
        r##"<text x="0" y="20" font-weight="bold">{}</text><line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#425563"/><line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="#425563"/><text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{}" text-anchor="end">{}</text>"##,
        escape_xml(title),
        top + plot_h,
        left + plot_w,
        top + plot_h,
        top + plot_h,
        left - 6,
        top + 5,
        format.show(max),
        left - 6,
        top + plot_h,
        format.show(0.0)
    );
    for (i, l) in x_labels.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x(i),
            top + plot_h + 20,
            escape_xml(l)
        );
    }
    for (s, (name, values)) in series.iter().enumerate() {
        let colour = colours[s % colours.len()];
        let dash = dashes[s % dashes.len()];
        let _ = write!(out, r#"<g><title>{}</title>"#, escape_xml(name));
        // Segments of consecutive published points.
        let mut segment: Vec<String> = Vec::new();
        let flush = |out: &mut String, seg: &mut Vec<String>| {
            if seg.len() > 1 {
                let _ = write!(
                    out,
                    r#"<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}" points="{}"/>"#,
                    seg.join(" ")
                );
            }
            seg.clear();
        };
        for (i, v) in values.iter().enumerate().take(n) {
            match v {
                Some(v) => {
                    segment.push(format!("{:.1},{:.1}", x(i), y(*v)));
                    let _ = write!(
                        out,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{colour}"><title>{} {}: {}</title></circle><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">{}</text>"#,
                        x(i),
                        y(*v),
                        escape_xml(name),
                        escape_xml(x_labels.get(i).map_or("", String::as_str)),
                        format.show(*v),
                        x(i),
                        y(*v) - 8.0,
                        format.show(*v)
                    );
                }
                None => {
                    flush(&mut out, &mut segment);
                    let _ = write!(
                        out,
                        r##"<text x="{:.1}" y="{}" text-anchor="middle" font-size="12" fill="#425563" font-style="italic">redacted</text>"##,
                        x(i),
                        top + plot_h - 6
                    );
                }
            }
        }
        flush(&mut out, &mut segment);
        out.push_str("</g>");
        let ly = top + plot_h + 40 + 22 * s as u32;
        let _ = write!(
            out,
            r#"<line x1="{left}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{}" y="{}">{}</text>"#,
            left + 30,
            left + 36,
            ly + 5,
            escape_xml(name)
        );
    }
    out.push_str("</svg>");
    out
}

fn csv_field(s: &str) -> String {
    // Quote when needed; a leading =, +, - or @ is prefixed with ' so a spreadsheet does not
    // run it as a formula (CSV injection).
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv_cell(c: Cell) -> String {
    match c {
        Cell::Published(v) => v.to_string(),
        // OpenSAFELY's marker for a suppressed value.
        Cell::Redacted(_) => "[REDACTED]".to_string(),
    }
}

/// A published table as CSV: a header row, one line per row (with its total if any), and a
/// `Total` line when the table has column totals.
pub fn table_csv(corner: &str, t: &PublishedTable) -> String {
    let mut out = String::new();
    let mut head: Vec<String> = vec![csv_field(corner)];
    head.extend(t.column_labels.iter().map(|l| csv_field(l)));
    if t.row_totals.is_some() {
        head.push("Total".into());
    }
    out.push_str(&head.join(","));
    out.push_str("\r\n");
    for (i, label) in t.row_labels.iter().enumerate() {
        let mut line = vec![csv_field(label)];
        line.extend(t.cells[i].iter().map(|c| csv_cell(*c)));
        if let Some(rt) = &t.row_totals {
            line.push(csv_cell(rt[i]));
        }
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    if let Some(ct) = &t.column_totals {
        let mut line = vec!["Total".to_string()];
        line.extend(ct.iter().map(|c| csv_cell(*c)));
        if t.row_totals.is_some() {
            line.push(t.grand_total.map_or(String::new(), csv_cell));
        }
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}
