//! The crate's only way out: every count below has been through `smr_sdc::publish`, and every
//! rate, gap, median and estimate is computed from published values.

use serde::Serialize;
use smr_sdc::{Cell, Margins, PublishedTable, Rate, THRESHOLD, Table, publish};

use crate::aggregate::{Aggregate, Dimension, Level, Measure, Period, Prop};
use crate::facts::Month;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalyticsError {
    #[error("no {level} has any patients counted in {month}")]
    NoData { level: &'static str, month: String },
    #[error("{level} '{unit}' has no patients counted in {month}")]
    UnknownUnit {
        level: &'static str,
        unit: String,
        month: String,
    },
    #[error("disclosure control refused the table: {0}")]
    Sdc(#[from] smr_sdc::SdcError),
}

/// A rate for one labelled row of a published table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelledRate {
    pub label: String,
    pub rate: Rate,
}

/// One measure for every unit of a level in a month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasureReport {
    pub measure: Measure,
    pub title: &'static str,
    pub level: Level,
    pub month: Month,
    /// Rows: units; columns: numerator, rest of the denominator; margins: the denominators
    /// (row totals), the level's totals (column totals) and the grand total.
    pub table: PublishedTable,
    /// Numerator ÷ denominator per unit, from published values.
    pub rates: Vec<LabelledRate>,
    /// The whole level's rate this month and the month before.
    pub overall: Rate,
    pub previous_overall: Rate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trend {
    Narrowing,
    Widening,
    Unchanged,
    /// A gap is missing this month or last (too few published groups).
    Unknown,
}

/// The gap between the best and the worst group with a published value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gap {
    /// The group with the best value (highest rate where higher is better; where a measure has
    /// no better direction, the highest).
    pub best: Option<String>,
    pub worst: Option<String>,
    /// |best − worst| (a proportion for rates, days for medians).
    pub gap: Option<f64>,
    pub previous_gap: Option<f64>,
    pub trend: Trend,
}

/// One measure for one unit split by one equity dimension.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EquityReport {
    pub measure: Measure,
    pub level: Level,
    pub unit: String,
    pub dimension: Dimension,
    pub month: Month,
    pub table: PublishedTable,
    pub rates: Vec<LabelledRate>,
    pub gap: Gap,
}

/// Median days from an actionable result to a change of the affected drug.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DelayReport {
    pub level: Level,
    pub month: Month,
    /// Rows: units (or groups); one column: patients whose change fell in the month.
    pub table: PublishedTable,
    /// Median days per row, published only where the row's count is.
    pub medians: Vec<LabelledMedian>,
    pub overall_median: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap: Option<Gap>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelledMedian {
    pub label: String,
    pub median_days: Option<f64>,
}

/// Patients who gave each override reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonsReport {
    pub level: Level,
    pub unit: String,
    pub month: Month,
    pub table: PublishedTable,
}

fn two_column(
    labels: Vec<String>,
    props: &[Prop],
    measure: Measure,
) -> Result<PublishedTable, AnalyticsError> {
    let cols = measure.columns();
    let cells = props
        .iter()
        .map(|p| vec![p.numerator, p.denominator - p.numerator])
        .collect();
    let table = Table::new(
        labels,
        vec![cols[0].to_string(), cols[1].to_string()],
        cells,
        Margins::Both,
    )?;
    Ok(publish(&table))
}

fn row_rates(table: &PublishedTable) -> Vec<LabelledRate> {
    table
        .row_labels
        .iter()
        .enumerate()
        .map(|(i, l)| LabelledRate {
            label: l.clone(),
            rate: table.share_of_row(i, 0),
        })
        .collect()
}

fn overall(table: &PublishedTable) -> Rate {
    match (&table.column_totals, table.grand_total) {
        (Some(c), Some(g)) => smr_sdc::rate(c[0], g),
        _ => Rate::Redacted,
    }
}

/// `measure` for every unit of `level` in the aggregate's month.
pub fn publish_measure(
    agg: &Aggregate,
    measure: Measure,
    level: Level,
) -> Result<MeasureReport, AnalyticsError> {
    let units: Vec<(&str, &[Period; 2])> = agg.units(level).collect();
    if units.is_empty() {
        return Err(AnalyticsError::NoData {
            level: level.slug(),
            month: agg.month.to_string(),
        });
    }
    let labels: Vec<String> = units.iter().map(|(c, _)| c.to_string()).collect();
    let m = measure as usize;
    let now: Vec<Prop> = units.iter().map(|(_, p)| p[0].measures[m]).collect();
    let before: Vec<Prop> = units.iter().map(|(_, p)| p[1].measures[m]).collect();
    let table = two_column(labels.clone(), &now, measure)?;
    let previous = two_column(labels, &before, measure)?;
    Ok(MeasureReport {
        measure,
        title: measure.title(),
        level,
        month: agg.month,
        rates: row_rates(&table),
        overall: overall(&table),
        previous_overall: overall(&previous),
        table,
    })
}

fn unit<'a>(
    agg: &'a Aggregate,
    level: Level,
    code: &str,
) -> Result<&'a [Period; 2], AnalyticsError> {
    agg.unit(level, code)
        .ok_or_else(|| AnalyticsError::UnknownUnit {
            level: level.slug(),
            unit: code.to_string(),
            month: agg.month.to_string(),
        })
}

/// Groups whose values take part in a gap: not the unknown / not-stated ones.
fn counts_in_gap(dimension: Dimension, group: usize) -> bool {
    let unknown = match dimension {
        Dimension::Imd => 5,
        Dimension::Ethnicity => 5,
        Dimension::AgeBand => usize::MAX,
        Dimension::Sex => 3,
    };
    group != unknown
}

fn gap_of(
    values: &[(String, Option<f64>)],
    dimension: Dimension,
    higher_is_better: bool,
) -> (Option<String>, Option<String>, Option<f64>) {
    let present: Vec<(&String, f64)> = values
        .iter()
        .enumerate()
        .filter(|(i, _)| counts_in_gap(dimension, *i))
        .filter_map(|(_, (l, v))| v.map(|v| (l, v)))
        .collect();
    if present.len() < 2 {
        return (None, None, None);
    }
    let by = |a: &(&String, f64), b: &(&String, f64)| a.1.total_cmp(&b.1);
    let hi = present.iter().max_by(|a, b| by(a, b)).copied();
    let lo = present.iter().min_by(|a, b| by(a, b)).copied();
    let (Some(hi), Some(lo)) = (hi, lo) else {
        return (None, None, None);
    };
    let (best, worst) = if higher_is_better { (hi, lo) } else { (lo, hi) };
    (
        Some(best.0.clone()),
        Some(worst.0.clone()),
        Some((hi.1 - lo.1).abs()),
    )
}

fn trend(now: Option<f64>, before: Option<f64>) -> Trend {
    match (now, before) {
        (Some(n), Some(b)) if n < b - 1e-9 => Trend::Narrowing,
        (Some(n), Some(b)) if n > b + 1e-9 => Trend::Widening,
        (Some(_), Some(_)) => Trend::Unchanged,
        _ => Trend::Unknown,
    }
}

/// `measure` for one unit split by `dimension`, with the gap and whether it is narrowing.
pub fn publish_equity(
    agg: &Aggregate,
    measure: Measure,
    level: Level,
    code: &str,
    dimension: Dimension,
) -> Result<EquityReport, AnalyticsError> {
    let periods = unit(agg, level, code)?;
    let labels: Vec<String> = dimension.groups().iter().map(|g| g.to_string()).collect();
    let (m, d) = (measure as usize, dimension as usize);
    let table = two_column(labels.clone(), &periods[0].groups[m][d], measure)?;
    let previous = two_column(labels, &periods[1].groups[m][d], measure)?;
    let values = |t: &PublishedTable| -> Vec<(String, Option<f64>)> {
        row_rates(t)
            .into_iter()
            .map(|r| (r.label, r.rate.value()))
            .collect()
    };
    let better = measure.higher_is_better().unwrap_or(true);
    let (best, worst, gap) = gap_of(&values(&table), dimension, better);
    let (_, _, previous_gap) = gap_of(&values(&previous), dimension, better);
    Ok(EquityReport {
        measure,
        level,
        unit: code.to_string(),
        dimension,
        month: agg.month,
        rates: row_rates(&table),
        gap: Gap {
            best,
            worst,
            gap,
            previous_gap,
            trend: trend(gap, previous_gap),
        },
        table,
    })
}

/// A proportion computed outside this crate (a PINCER indicator, a QS120 statement) for one
/// unit, split by an equity dimension.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitReport {
    pub title: String,
    pub dimension: Dimension,
    /// Rows: the dimension's groups; columns: in the numerator, the rest of the denominator.
    pub table: PublishedTable,
    pub rates: Vec<LabelledRate>,
    pub gap: Gap,
}

/// Publishes raw (numerator, denominator) per group of `dimension` (in `Dimension::groups`
/// order) for the month and the month before, as [`publish_equity`] publishes its measures:
/// one disclosure-controlled table, rates from published values, the gap between the best and
/// the worst group (unknown groups left out) and its trend. `columns` names the two columns.
pub fn publish_split(
    title: &str,
    dimension: Dimension,
    columns: [&str; 2],
    now: &[(u64, u64)],
    before: &[(u64, u64)],
    higher_is_better: bool,
) -> Result<SplitReport, AnalyticsError> {
    let labels: Vec<String> = dimension.groups().iter().map(|g| g.to_string()).collect();
    let table = |counts: &[(u64, u64)]| -> Result<PublishedTable, AnalyticsError> {
        let cells = labels
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let (n, d) = counts.get(i).copied().unwrap_or_default();
                vec![n.min(d), d.saturating_sub(n)]
            })
            .collect();
        let t = Table::new(
            labels.clone(),
            vec![columns[0].to_string(), columns[1].to_string()],
            cells,
            Margins::Both,
        )?;
        Ok(publish(&t))
    };
    let current = table(now)?;
    let previous = table(before)?;
    let values = |t: &PublishedTable| -> Vec<(String, Option<f64>)> {
        row_rates(t)
            .into_iter()
            .map(|r| (r.label, r.rate.value()))
            .collect()
    };
    let (best, worst, gap) = gap_of(&values(&current), dimension, higher_is_better);
    let (_, _, previous_gap) = gap_of(&values(&previous), dimension, higher_is_better);
    Ok(SplitReport {
        title: title.to_string(),
        dimension,
        rates: row_rates(&current),
        gap: Gap {
            best,
            worst,
            gap,
            previous_gap,
            trend: trend(gap, previous_gap),
        },
        table: current,
    })
}

fn median(values: &[u32]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        f64::from(v[n / 2])
    } else {
        (f64::from(v[n / 2 - 1]) + f64::from(v[n / 2])) / 2.0
    })
}

/// A median is shown only for a published count of more than [`THRESHOLD`] patients: a summary
/// of 7 or fewer patients is itself disclosive (OpenSAFELY's rule for summary statistics).
fn medians(labels: &[String], groups: &[&Vec<u32>], table: &PublishedTable) -> Vec<LabelledMedian> {
    labels
        .iter()
        .zip(groups)
        .enumerate()
        .map(|(i, (l, g))| LabelledMedian {
            label: l.clone(),
            median_days: match table.cell(i, 0) {
                Cell::Published(_) if g.len() as u64 > THRESHOLD => median(g),
                _ => None,
            },
        })
        .collect()
}

fn delay_table(
    labels: Vec<String>,
    groups: &[&Vec<u32>],
) -> Result<PublishedTable, AnalyticsError> {
    let cells = groups.iter().map(|g| vec![g.len() as u64]).collect();
    let table = Table::new(
        labels,
        vec!["patients with a change".to_string()],
        cells,
        Margins::ColumnTotals,
    )?;
    Ok(publish(&table))
}

fn overall_median(all: &[u32], table: &PublishedTable) -> Option<f64> {
    match table.column_totals.as_deref() {
        Some([Cell::Published(_)]) if all.len() as u64 > THRESHOLD => median(all),
        _ => None,
    }
}

/// Median days result → prescribing change for every unit of `level`.
pub fn publish_delays(agg: &Aggregate, level: Level) -> Result<DelayReport, AnalyticsError> {
    let units: Vec<(&str, &[Period; 2])> = agg.units(level).collect();
    if units.is_empty() {
        return Err(AnalyticsError::NoData {
            level: level.slug(),
            month: agg.month.to_string(),
        });
    }
    let labels: Vec<String> = units.iter().map(|(c, _)| c.to_string()).collect();
    let groups: Vec<&Vec<u32>> = units.iter().map(|(_, p)| &p[0].delays).collect();
    let table = delay_table(labels.clone(), &groups)?;
    let all: Vec<u32> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    Ok(DelayReport {
        level,
        month: agg.month,
        medians: medians(&labels, &groups, &table),
        overall_median: overall_median(&all, &table),
        table,
        gap: None,
    })
}

/// Median days result → change for one unit split by `dimension` (lower is better).
pub fn publish_delay_equity(
    agg: &Aggregate,
    level: Level,
    code: &str,
    dimension: Dimension,
) -> Result<DelayReport, AnalyticsError> {
    let periods = unit(agg, level, code)?;
    let labels: Vec<String> = dimension.groups().iter().map(|g| g.to_string()).collect();
    let d = dimension as usize;
    let now: Vec<&Vec<u32>> = periods[0].delays_by_group[d].iter().collect();
    let before: Vec<&Vec<u32>> = periods[1].delays_by_group[d].iter().collect();
    let table = delay_table(labels.clone(), &now)?;
    let previous = delay_table(labels.clone(), &before)?;
    let ms = medians(&labels, &now, &table);
    let prev = medians(&labels, &before, &previous);
    let pairs = |m: &[LabelledMedian]| -> Vec<(String, Option<f64>)> {
        m.iter().map(|x| (x.label.clone(), x.median_days)).collect()
    };
    let (best, worst, gap) = gap_of(&pairs(&ms), dimension, false);
    let (_, _, previous_gap) = gap_of(&pairs(&prev), dimension, false);
    Ok(DelayReport {
        level,
        month: agg.month,
        overall_median: overall_median(&periods[0].delays, &table),
        medians: ms,
        table,
        gap: Some(Gap {
            best,
            worst,
            gap,
            previous_gap,
            trend: trend(gap, previous_gap),
        }),
    })
}

/// Override reasons given in one unit in the month (patients per reason).
pub fn publish_override_reasons(
    agg: &Aggregate,
    level: Level,
    code: &str,
) -> Result<ReasonsReport, AnalyticsError> {
    let periods = unit(agg, level, code)?;
    let reasons: Vec<(String, u64)> = periods[0]
        .override_reasons
        .iter()
        .map(|(r, n)| (r.clone(), *n))
        .collect();
    let reasons = if reasons.is_empty() {
        vec![("no overrides".to_string(), 0)]
    } else {
        reasons
    };
    let table = Table::one_way("patients", reasons)?;
    Ok(ReasonsReport {
        level,
        unit: code.to_string(),
        month: agg.month,
        table: publish(&table),
    })
}
