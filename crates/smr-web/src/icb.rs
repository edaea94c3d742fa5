//! The ICB dashboards (`/app/icb`, analysts): the published analytics reports (`smr-app`'s
//! `/analytics/*` answers, already disclosure-controlled) as tables, charts and download links.
//!
//! Charts are `smr_analytics::render` SVGs shown as `<img>` with a `data:` URI: the page needs
//! no script, the SVG (which never holds script) cannot touch the page, and the page's Content
//! Security Policy allows only `'self'` and `data:` images. Every chart has a text
//! alternative, and the same numbers are in the table below it.

use base64::Engine as _;
use serde_json::Value;
use smr_analytics::render::{ValueFormat, bar_chart};

use crate::json::text;

/// A level the dashboard can show, for the level picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelChoice {
    pub slug: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// One row of a published measure table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureRow {
    pub unit: String,
    pub numerator: String,
    pub denominator: String,
    pub rate: String,
}

/// One measure for every unit of the level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasurePanel {
    pub slug: String,
    pub title: String,
    pub columns: [String; 2],
    pub rows: Vec<MeasureRow>,
    pub overall: String,
    pub previous_overall: String,
    /// `data:image/svg+xml;base64,…`
    pub chart: String,
    pub chart_alt: String,
    pub csv_href: String,
}

/// One measure split by an equity dimension for one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EquityPanel {
    pub title: String,
    pub rows: Vec<MeasureRow>,
    pub gap: String,
    pub chart: String,
    pub chart_alt: String,
}

/// The value estimate for one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuePanel {
    pub unit: String,
    /// (what, low, central, high); "withheld" where the inputs were redacted.
    pub rows: Vec<(String, String, String, String)>,
    pub sources: Vec<String>,
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcbDashboard {
    pub month: String,
    pub levels: Vec<LevelChoice>,
    pub level_label: String,
    pub measures: Vec<MeasurePanel>,
    /// The unit the equity and value panels describe (the first ICB).
    pub focus: Option<String>,
    pub equity: Vec<EquityPanel>,
    pub value: Option<ValuePanel>,
    pub opted_out: String,
}

impl IcbDashboard {
    /// The selected level's slug (for links that keep it).
    pub fn levels_selected(&self) -> &'static str {
        self.levels
            .iter()
            .find(|l| l.selected)
            .map_or("icb", |l| l.slug)
    }
}

/// The equity dimensions with `dimension` selected (the level picker's shape).
pub fn dimensions(dimension: &str) -> Vec<LevelChoice> {
    [
        ("imd", "Deprivation (IMD quintile)"),
        ("ethnicity", "Ethnic group"),
        ("age-band", "Age band"),
        ("sex", "Sex"),
    ]
    .iter()
    .map(|(slug, label)| LevelChoice {
        slug,
        label,
        selected: *slug == dimension,
    })
    .collect()
}

const LEVELS: [(&str, &str); 3] = [
    ("icb", "ICB"),
    ("sub-icb", "Sub-ICB location"),
    ("practice", "Practice"),
];

/// The level choices with `level` selected, and its label.
pub fn levels(level: &str) -> (Vec<LevelChoice>, String) {
    let choices = LEVELS
        .iter()
        .map(|(slug, label)| LevelChoice {
            slug,
            label,
            selected: *slug == level,
        })
        .collect();
    let label = LEVELS
        .iter()
        .find(|(slug, _)| *slug == level)
        .map_or("ICB", |(_, l)| l);
    (choices, label.to_owned())
}

/// A published cell: a number, or "withheld" (redacted by disclosure control).
pub fn cell(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        Value::Object(o) if o.contains_key("redacted") => "withheld".to_owned(),
        _ => "–".to_owned(),
    }
}

/// A published rate as a percentage, or why there is none.
pub fn rate(value: &Value) -> String {
    match value.get("status").and_then(Value::as_str) {
        Some("published") => value
            .get("value")
            .and_then(Value::as_f64)
            .map_or_else(|| "–".to_owned(), |v| format!("{:.1}%", v * 100.0)),
        Some("redacted") => "withheld".to_owned(),
        Some("no-denominator") => "no patients".to_owned(),
        _ => "–".to_owned(),
    }
}

fn rate_value(value: &Value) -> Option<f64> {
    (value.get("status").and_then(Value::as_str) == Some("published"))
        .then(|| value.get("value").and_then(Value::as_f64))
        .flatten()
}

fn data_uri(svg: &str) -> String {
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

/// Rows (label, numerator, numerator + rest, rate) of a two-column published table.
fn rows(report: &Value) -> Vec<MeasureRow> {
    let table = &report["table"];
    let labels = table["row_labels"].as_array().cloned().unwrap_or_default();
    let rates = report["rates"].as_array().cloned().unwrap_or_default();
    labels
        .iter()
        .enumerate()
        .map(|(i, label)| MeasureRow {
            unit: label.as_str().unwrap_or_default().to_owned(),
            numerator: cell(&table["cells"][i][0]),
            denominator: cell(&table["row_totals"][i]),
            rate: rates
                .get(i)
                .map_or_else(|| "–".to_owned(), |r| rate(&r["rate"])),
        })
        .collect()
}

fn chart(id: &str, title: &str, report: &Value, what: &str) -> (String, String) {
    let bars: Vec<(String, Option<f64>)> = report["rates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["label"].as_str().unwrap_or_default().to_owned(),
                rate_value(&r["rate"]),
            )
        })
        .collect();
    let alt = format!(
        "Bar chart of {title} by {what}: {}",
        bars.iter()
            .map(|(label, v)| match v {
                Some(v) => format!("{label} {:.1}%", v * 100.0),
                None => format!("{label} withheld"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    );
    let svg = bar_chart(
        id,
        title,
        &format!("{title}, by {what}; withheld values are shown as redacted"),
        &bars,
        ValueFormat::Percent,
    );
    (data_uri(&svg), alt)
}

/// One measure panel from a published `MeasureReport` (JSON).
pub fn measure_panel(report: &Value, level_label: &str, csv_href: String) -> MeasurePanel {
    let slug = text(report, "/measure").unwrap_or_default();
    let title = text(report, "/title").unwrap_or_else(|| slug.clone());
    let columns = report["table"]["column_labels"]
        .as_array()
        .map(|c| {
            [
                c.first()
                    .and_then(Value::as_str)
                    .unwrap_or("Yes")
                    .to_owned(),
                c.get(1).and_then(Value::as_str).unwrap_or("No").to_owned(),
            ]
        })
        .unwrap_or_else(|| ["Yes".to_owned(), "No".to_owned()]);
    let (chart, chart_alt) = chart(&format!("m-{slug}"), &title, report, level_label);
    MeasurePanel {
        rows: rows(report),
        overall: rate(&report["overall"]),
        previous_overall: rate(&report["previous_overall"]),
        slug,
        title,
        columns,
        chart,
        chart_alt,
        csv_href,
    }
}

/// One equity panel from a published `EquityReport` (JSON).
pub fn equity_panel(report: &Value, title: &str) -> EquityPanel {
    let dimension = text(report, "/dimension").unwrap_or_default();
    let gap = &report["gap"];
    let gap_text = match (
        gap["best"].as_str(),
        gap["worst"].as_str(),
        gap["gap"].as_f64(),
    ) {
        (Some(best), Some(worst), Some(g)) => format!(
            "Gap between the best ({best}) and the worst ({worst}) group: {:.1} percentage points; trend: {}.",
            g * 100.0,
            gap["trend"].as_str().unwrap_or("unknown")
        ),
        _ => "Too few groups have a published rate to measure a gap.".to_owned(),
    };
    let (chart, chart_alt) = chart(&format!("e-{dimension}"), title, report, &dimension);
    EquityPanel {
        title: title.to_owned(),
        rows: rows(report),
        gap: gap_text,
        chart,
        chart_alt,
    }
}

fn estimate(value: &Value) -> (String, String, String) {
    let show = |k: &str| {
        value[k]
            .as_f64()
            .map_or_else(|| "withheld".to_owned(), |v| format!("{v:.1}"))
    };
    if value.is_null() {
        let w = || "withheld".to_owned();
        return (w(), w(), w());
    }
    (show("low"), show("central"), show("high"))
}

/// The value panel from a published `ValueReport` (JSON).
pub fn value_panel(report: &Value) -> ValuePanel {
    let rows = [
        ("Adverse drug reactions avoided", "adrs_avoided"),
        ("Admissions avoided", "admissions_avoided"),
        ("Bed-days avoided", "bed_days_avoided"),
        ("Cost avoided (£)", "cost_avoided_gbp"),
    ]
    .iter()
    .map(|(label, key)| {
        let (low, central, high) = estimate(&report[*key]);
        ((*label).to_owned(), low, central, high)
    })
    .collect();
    let sources = report["model"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    ValuePanel {
        unit: text(report, "/unit").unwrap_or_default(),
        rows,
        sources,
    }
}

/// One unit's figures for one PINCER indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PincerUnit {
    pub unit: String,
    pub numerator: String,
    pub denominator: String,
    pub rate: String,
    pub percentile: String,
}

/// One PINCER indicator for every unit of the level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PincerPanel {
    pub id: String,
    pub title: String,
    pub units: Vec<PincerUnit>,
    /// "10th 0.0%, 50th 2.5%, 90th 8.0%", or why there are none.
    pub deciles: String,
}

/// One QS120 statement for every unit of the level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelinessPanel {
    pub title: String,
    /// (unit, met, not met, pending, share met of those decided)
    pub rows: Vec<(String, String, String, String, String)>,
}

/// Safety measures for one unit split by an equity dimension: a row per measure, a rate per
/// group, and the gap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EquityMatrix {
    pub unit: String,
    pub dimension: String,
    pub groups: Vec<String>,
    /// (measure, a rate per group, the gap in words)
    pub rows: Vec<(String, Vec<String>, String)>,
}

fn gap_words(gap: &Value, unit: &str) -> String {
    match (
        gap["best"].as_str(),
        gap["worst"].as_str(),
        gap["gap"].as_f64(),
    ) {
        (Some(best), Some(worst), Some(g)) => format!(
            "best {best}, worst {worst}: {:.1} {unit}; {}",
            g * 100.0,
            gap["trend"].as_str().unwrap_or("unknown")
        ),
        _ => "too few published groups".to_owned(),
    }
}

/// The matrix from the `/analytics/safety-equity` answer (JSON): QS120 statements first, then
/// the PINCER measures.
pub fn equity_matrix(answer: &Value) -> EquityMatrix {
    let reports: Vec<&Value> = ["/reconciliation", "/pincer"]
        .iter()
        .flat_map(|p| {
            answer
                .pointer(p)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .collect();
    let groups = reports
        .first()
        .and_then(|r| r["table"]["row_labels"].as_array())
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let rows = reports
        .iter()
        .map(|r| {
            let title = match r["id"].as_str() {
                Some(id) => format!("PINCER {id}. {}", r["title"].as_str().unwrap_or_default()),
                None => r["title"].as_str().unwrap_or_default().to_owned(),
            };
            let rates = r["rates"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| rate(&x["rate"]))
                .collect();
            (title, rates, gap_words(&r["gap"], "percentage points"))
        })
        .collect();
    EquityMatrix {
        unit: text(answer, "/unit").unwrap_or_default(),
        dimension: text(answer, "/dimension").unwrap_or_default(),
        groups,
        rows,
    }
}

/// The safety dashboard: PINCER indicators and reconciliation timeliness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcbSafety {
    pub month: String,
    pub levels: Vec<LevelChoice>,
    pub level_label: String,
    pub pincer: Vec<PincerPanel>,
    pub timeliness: Vec<TimelinessPanel>,
    pub pincer_definitions: String,
    /// For one unit (`code`, else at ICB level the analyst's own), split by `dimension`.
    pub equity: Option<EquityMatrix>,
    pub dimensions: Vec<LevelChoice>,
}

fn percent(value: &Value) -> String {
    value
        .as_f64()
        .map_or_else(|| "withheld".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

fn count(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        Value::Null => "withheld".to_owned(),
        other => cell(other),
    }
}

/// PINCER panels from the `/analytics/pincer` answer (JSON).
pub fn pincer_panels(aggregates: &Value) -> Vec<PincerPanel> {
    aggregates["indicators"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|indicator| {
            let units = indicator["units"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|u| PincerUnit {
                    unit: match (u["code"].as_str(), u["name"].as_str()) {
                        (Some(code), Some(name)) => format!("{name} ({code})"),
                        (Some(code), None) => code.to_owned(),
                        _ => "–".to_owned(),
                    },
                    numerator: count(&u["numerator"]),
                    denominator: count(&u["denominator"]),
                    rate: percent(&u["rate"]),
                    percentile: u["percentile"]
                        .as_f64()
                        .map_or_else(|| "–".to_owned(), |p| format!("{p:.0}")),
                })
                .collect();
            let deciles = match indicator["deciles"].as_object() {
                Some(d) => ["10", "50", "90"]
                    .iter()
                    .filter_map(|k| d.get(*k).map(|v| format!("{k}th {}", percent(v))))
                    .collect::<Vec<_>>()
                    .join(", "),
                None => "no unit has a published rate".to_owned(),
            };
            PincerPanel {
                id: text(indicator, "/id").unwrap_or_default(),
                title: text(indicator, "/title").unwrap_or_default(),
                units,
                deciles,
            }
        })
        .collect()
}

/// QS120 panels from the `/analytics/reconciliation-timeliness` answer (JSON).
pub fn timeliness_panels(answer: &Value) -> Vec<TimelinessPanel> {
    answer["statements"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|statement| {
            let table = &statement["table"];
            let rates = statement["rates"].as_array().cloned().unwrap_or_default();
            let rows = table["row_labels"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, label)| {
                    (
                        label.as_str().unwrap_or_default().to_owned(),
                        cell(&table["cells"][i][0]),
                        cell(&table["cells"][i][1]),
                        cell(&table["cells"][i][2]),
                        rates
                            .get(i)
                            .map_or_else(|| "–".to_owned(), |r| rate(&r["rate"])),
                    )
                })
                .collect();
            TimelinessPanel {
                title: text(statement, "/title").unwrap_or_default(),
                rows,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn withheld_cells_and_rates_say_so() {
        assert_eq!(cell(&json!(15)), "15");
        assert_eq!(cell(&json!({"redacted": "primary"})), "withheld");
        assert_eq!(
            rate(&json!({"status": "published", "value": 0.25})),
            "25.0%"
        );
        assert_eq!(rate(&json!({"status": "redacted"})), "withheld");
        assert_eq!(rate(&json!({"status": "no-denominator"})), "no patients");
    }

    #[test]
    fn a_measure_panel_has_a_chart_with_a_text_alternative() {
        let report = json!({"measure": "pgx-adoption", "title": "PGx adoption",
            "table": {"row_labels": ["Q9X", "Q9Y"], "column_labels": ["With a genotype", "Without"],
                      "cells": [[10, 10], [{"redacted": "primary"}, {"redacted": "secondary"}]],
                      "row_totals": [20, {"redacted": "secondary"}]},
            "rates": [{"label": "Q9X", "rate": {"status": "published", "value": 0.5}},
                      {"label": "Q9Y", "rate": {"status": "redacted"}}],
            "overall": {"status": "redacted"}, "previous_overall": {"status": "no-denominator"}});
        let panel = measure_panel(&report, "ICB", "/x.csv".into());
        assert_eq!(panel.rows[0].rate, "50.0%");
        assert_eq!(panel.rows[1].numerator, "withheld");
        assert!(panel.chart.starts_with("data:image/svg+xml;base64,"));
        assert!(panel.chart_alt.contains("Q9X 50.0%") && panel.chart_alt.contains("Q9Y withheld"));
    }
}
