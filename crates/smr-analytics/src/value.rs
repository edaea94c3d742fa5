//! The value model: ADRs, admissions, bed-days and pounds avoided, with low/central/high
//! ranges, from the cited parameters in `data/value-model.json` (each overridable).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use smr_sdc::{Cell, publish_count};

use crate::aggregate::{Aggregate, Level};
use crate::facts::Month;
use crate::publish::AnalyticsError;

const DATA: &str = include_str!("../data/value-model.json");

/// A parameter's range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub low: f64,
    pub central: f64,
    pub high: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    pub description: String,
    pub unit: String,
    pub low: f64,
    pub central: f64,
    pub high: f64,
    pub source: String,
    pub verified: String,
}

impl Parameter {
    pub fn range(&self) -> Range {
        Range {
            low: self.low,
            central: self.central,
            high: self.high,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueModel {
    pub format: u32,
    pub title: String,
    pub version: String,
    pub model: Vec<String>,
    pub parameters: BTreeMap<String, Parameter>,
}

/// The parameter names the model uses.
pub const PARAMETERS: [&str; 5] = [
    "baseline_adr_risk",
    "relative_adr_reduction",
    "adr_admission_share",
    "bed_days_per_adr_admission",
    "cost_per_bed_day_gbp",
];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error("value model data file is not valid: {0}")]
    Data(String),
    #[error(
        "unknown value-model parameter '{0}' (known: baseline_adr_risk, relative_adr_reduction, adr_admission_share, bed_days_per_adr_admission, cost_per_bed_day_gbp)"
    )]
    UnknownParameter(String),
    #[error(
        "parameter '{name}': low {low}, central {central} and high {high} must be finite, not negative and in order{extra}"
    )]
    BadRange {
        name: String,
        low: f64,
        central: f64,
        high: f64,
        extra: &'static str,
    },
}

impl ValueModel {
    /// The compiled-in, cited model.
    pub fn cited() -> Result<&'static ValueModel, ValueError> {
        static MODEL: OnceLock<Result<ValueModel, ValueError>> = OnceLock::new();
        MODEL
            .get_or_init(|| {
                let m: ValueModel =
                    serde_json::from_str(DATA).map_err(|e| ValueError::Data(e.to_string()))?;
                for name in PARAMETERS {
                    let p = m
                        .parameters
                        .get(name)
                        .ok_or_else(|| ValueError::Data(format!("parameter {name} missing")))?;
                    check(name, p.range())?;
                    if p.source.trim().is_empty() {
                        return Err(ValueError::Data(format!("parameter {name} has no source")));
                    }
                }
                Ok(m)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The parameters as ranges, ready to be overridden.
    pub fn parameters(&self) -> Parameters {
        let r = |n: &str| self.parameters.get(n).map(Parameter::range);
        Parameters {
            ranges: PARAMETERS
                .iter()
                .filter_map(|n| r(n).map(|v| (n.to_string(), v)))
                .collect(),
            overridden: Vec::new(),
        }
    }
}

fn check(name: &str, r: Range) -> Result<(), ValueError> {
    let finite = [r.low, r.central, r.high]
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0);
    let ordered = r.low <= r.central && r.central <= r.high;
    let probability = matches!(
        name,
        "baseline_adr_risk" | "relative_adr_reduction" | "adr_admission_share"
    );
    let in_unit = !probability || r.high <= 1.0;
    if finite && ordered && in_unit {
        Ok(())
    } else {
        Err(ValueError::BadRange {
            name: name.to_string(),
            low: r.low,
            central: r.central,
            high: r.high,
            extra: if probability {
                " (a proportion: at most 1)"
            } else {
                ""
            },
        })
    }
}

/// The model's parameters, with the caller's overrides recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parameters {
    pub ranges: BTreeMap<String, Range>,
    /// Names the caller changed (shown with the estimate: it is no longer the cited model).
    pub overridden: Vec<String>,
}

impl Parameters {
    pub fn set(&mut self, name: &str, range: Range) -> Result<(), ValueError> {
        if !PARAMETERS.contains(&name) {
            return Err(ValueError::UnknownParameter(name.to_string()));
        }
        check(name, range)?;
        self.ranges.insert(name.to_string(), range);
        if !self.overridden.iter().any(|n| n == name) {
            self.overridden.push(name.to_string());
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Range {
        self.ranges.get(name).copied().unwrap_or(Range {
            low: 0.0,
            central: 0.0,
            high: 0.0,
        })
    }
}

/// One output of the model as a range (None when its inputs are redacted).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub low: f64,
    pub central: f64,
    pub high: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueReport {
    pub level: Level,
    pub unit: String,
    pub month: Month,
    /// The disclosure-controlled inputs.
    pub guided_patients: Cell,
    pub admissions_of_guided_patients: Cell,
    pub adrs_avoided: Option<Estimate>,
    pub admissions_avoided: Option<Estimate>,
    pub bed_days_avoided: Option<Estimate>,
    pub cost_avoided_gbp: Option<Estimate>,
    pub parameters: Parameters,
    pub model: Vec<String>,
}

fn scaled(input: Cell, factors: &[Range]) -> Option<Estimate> {
    let n = input.value()? as f64;
    let product = |pick: fn(&Range) -> f64| factors.iter().map(pick).product::<f64>() * n;
    Some(Estimate {
        low: product(|r| r.low),
        central: product(|r| r.central),
        high: product(|r| r.high),
    })
}

/// The value estimate for one unit in the aggregate's month, from published counts.
pub fn estimate_value(
    agg: &Aggregate,
    level: Level,
    code: &str,
    parameters: &Parameters,
) -> Result<ValueReport, AnalyticsError> {
    let periods = agg
        .unit(level, code)
        .ok_or_else(|| AnalyticsError::UnknownUnit {
            level: level.slug(),
            unit: code.to_string(),
            month: agg.month.to_string(),
        })?;
    let guided = publish_count(periods[0].guided);
    let admissions = publish_count(periods[0].guided_admissions);
    let p = |n: &str| parameters.get(n);
    let reduction = p("relative_adr_reduction");
    let admissions_avoided = scaled(admissions, &[p("adr_admission_share"), reduction]);
    let bed_days = scaled(
        admissions,
        &[
            p("adr_admission_share"),
            reduction,
            p("bed_days_per_adr_admission"),
        ],
    );
    let cost = scaled(
        admissions,
        &[
            p("adr_admission_share"),
            reduction,
            p("bed_days_per_adr_admission"),
            p("cost_per_bed_day_gbp"),
        ],
    );
    let model = ValueModel::cited()
        .map(|m| m.model.clone())
        .unwrap_or_default();
    Ok(ValueReport {
        level,
        unit: code.to_string(),
        month: agg.month,
        guided_patients: guided,
        admissions_of_guided_patients: admissions,
        adrs_avoided: scaled(guided, &[p("baseline_adr_risk"), reduction]),
        admissions_avoided,
        bed_days_avoided: bed_days,
        cost_avoided_gbp: cost,
        parameters: parameters.clone(),
        model,
    })
}
