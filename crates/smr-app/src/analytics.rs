//! Regional analytics (issue 12; docs/analytics.md): the use cases behind `/analytics/*`.
//!
//! `smr-analytics` is pure: it turns one [`PatientFacts`] per patient into disclosure-controlled
//! reports. This module is its gatherer and its gate:
//! - only analysts and administrators may ask, and every question is audited with the
//!   analyst and its parameters (detail `analytics-{report}`);
//! - the facts are read from the whole store (the analyst sees no person, only published
//!   numbers), patient by patient: the registered practice and its `partOf` chain (as the
//!   PINCER aggregates find them), age band at the month's end, sex, ethnic category, IMD
//!   quintile, the research opt-out (such patients are marked and never counted), the
//!   MedicationRequests (prescriptions, and changes: a request stopped or cancelled, dated by
//!   when that was recorded, and a request that replaces another through `priorPrescription`),
//!   the genotype Observations (with the CPIC level A drugs for which the guideline advises
//!   something other than standard prescribing), inpatient Encounters (admissions), and the CDS
//!   Hooks card feedback in the audit trail (accepted or overridden, with the reason);
//! - nothing leaves but what `smr_analytics::publish_*` and `estimate_value` publish.
//!
//! What the audit trail cannot give: cards shown with no feedback. The alert measures'
//! denominators are therefore the patients with feedback on a card in the month (docs).

use std::collections::HashMap;

use serde_json::{Value, json};
use smr_access::RequestContext;
use smr_analytics::{
    AgeBand, Aggregate, Alert, CpicDrugs, EthnicGroup, Feedback, GenotypeResult, ImdQuintile,
    Level, Month, PatientFacts, PrescribingChange, Prescription, Sex,
};
use smr_dmd::MedicineLookup;
use smr_pgx_guidelines::{Action, Assessment};
use smr_store::{Access, AuditQuery};
use time::Date;

pub use smr_analytics::{Dimension, Measure};

use crate::audit::{AuditAction, Event};
use crate::pincer::{Regions, json_body, page_request};
use crate::{App, AppError};

const ETHNIC_CATEGORY_URL: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory";
const IMD_URL: &str = "https://fhir.smr.nhs.uk/StructureDefinition/imd-2019";
/// The record's types the facts are read from.
const TYPES: [&str; 3] = ["MedicationRequest", "Observation", "Encounter"];
/// With what the PINCER indicators read as well.
const TYPES_WITH_SAFETY: [&str; 7] = [
    "MedicationRequest",
    "Observation",
    "Encounter",
    "List",
    "MedicationStatement",
    "Condition",
    "Procedure",
];
/// With what QS120's reconciliation timeliness reads.
const TYPES_WITH_RECONCILIATION: [&str; 5] = [
    "MedicationRequest",
    "Observation",
    "Encounter",
    "List",
    "MedicationStatement",
];
/// Audit records read per page when collecting card feedback.
const AUDIT_PAGE: usize = 1000;

/// One analytics question (each is one endpoint under `/analytics/`).
#[derive(Debug, Clone, PartialEq)]
pub enum AnalyticsReport {
    /// Every measure (or one) for every unit of the level.
    Measures { measure: Option<Measure> },
    /// One measure for one unit split by an equity dimension, with the gap and its trend.
    Equity {
        code: String,
        measure: Measure,
        dimension: Dimension,
    },
    /// Median days from an actionable result to a prescribing change, per unit.
    ResultToChange,
    /// Override reasons given in one unit.
    OverrideReasons { code: String },
    /// Medicines reconciliation against NICE QS120 per unit: admissions reconciled within 24
    /// hours (statement 4) and discharges within 7 days of the information reaching the GP
    /// (statement 5), counted by the month the clock started in.
    ReconciliationTimeliness,
    /// Every PINCER indicator and both QS120 statements for one unit, split by an equity
    /// dimension, with the gap between groups and its trend.
    SafetyEquity { code: String, dimension: Dimension },
    /// Harm and cost avoided in one unit, with parameters overridden as `name=low,central,high`.
    Value {
        code: String,
        overrides: Vec<(String, [f64; 3])>,
    },
}

impl AnalyticsReport {
    fn slug(&self) -> &'static str {
        match self {
            AnalyticsReport::Measures { .. } => "measures",
            AnalyticsReport::Equity { .. } => "equity",
            AnalyticsReport::ResultToChange => "result-to-change",
            AnalyticsReport::OverrideReasons { .. } => "override-reasons",
            AnalyticsReport::ReconciliationTimeliness => "reconciliation-timeliness",
            AnalyticsReport::SafetyEquity { .. } => "safety-equity",
            AnalyticsReport::Value { .. } => "value",
        }
    }
}

/// Patients left out before counting because the store cannot place them.
#[derive(Debug, Default, Clone, Copy)]
struct Unplaced {
    /// No registered practice with an ICB above it.
    no_unit: u64,
    /// No usable birth date (no age band).
    no_birth_date: u64,
}

impl App {
    /// Answers one analytics question for `month` (`YYYY-MM`) at `level` (`practice`,
    /// `sub-icb`, `icb`), as JSON, every figure disclosure-controlled. Analysts and
    /// administrators only; audited with the parameters (`query`, as the caller gave them).
    pub async fn analytics(
        &self,
        ctx: &RequestContext,
        report: AnalyticsReport,
        level: &str,
        month: &str,
        query: &str,
    ) -> Result<AnalyticsAnswer, AppError> {
        let mut answers = self
            .analytics_reports(ctx, std::slice::from_ref(&report), level, month, query)
            .await?;
        answers
            .pop()
            .unwrap_or_else(|| Err(AppError::BadRequest("no report asked for".into())))
    }

    /// Several questions about the same month and level (a dashboard), the store read once;
    /// one audit record naming them all. The outer error refuses the whole request (role,
    /// level, month); each inner one is that report's (e.g. an unknown unit).
    pub async fn analytics_reports(
        &self,
        ctx: &RequestContext,
        reports: &[AnalyticsReport],
        level: &str,
        month: &str,
        query: &str,
    ) -> Result<Vec<Result<AnalyticsAnswer, AppError>>, AppError> {
        let slugs: Vec<&str> = reports.iter().map(AnalyticsReport::slug).collect();
        let event = Event::new("operation", AuditAction::Read)
            .detail(format!("analytics-{}", slugs.join("+")))
            .query(query.to_owned());
        let result = async {
            crate::authorize::check_analyst(ctx, "the regional analytics")?;
            let level = Level::parse(level).ok_or_else(|| {
                AppError::BadRequest(format!(
                    "level must be practice, sub-icb or icb, not '{level}'"
                ))
            })?;
            let month: Month = month
                .parse()
                .map_err(|e: smr_analytics::facts::BadMonth| AppError::BadRequest(e.to_string()))?;
            let with_pincer = reports
                .iter()
                .any(|r| matches!(r, AnalyticsReport::SafetyEquity { .. }));
            let with_timeliness = with_pincer
                || reports
                    .iter()
                    .any(|r| matches!(r, AnalyticsReport::ReconciliationTimeliness));
            let (facts, unplaced, timeliness) = self
                .analytics_facts(month, with_timeliness, with_pincer)
                .await?;
            let aggregate = smr_analytics::aggregate(&facts, month, CpicDrugs::level_a());
            let answers: Vec<Result<AnalyticsAnswer, AppError>> = reports
                .iter()
                .map(|report| {
                    let mut answer = match report {
                        AnalyticsReport::ReconciliationTimeliness => {
                            publish_timeliness(&timeliness, level, month)
                        }
                        AnalyticsReport::SafetyEquity { code, dimension } => {
                            publish_safety_equity(&timeliness, level, code, *dimension, month)?
                        }
                        _ => publish(&aggregate, report, level)?,
                    };
                    if let Some(obj) = answer.json.as_object_mut() {
                        obj.insert("month".into(), json!(month.to_string()));
                        obj.insert("level".into(), json!(level.slug()));
                        obj.insert(
                            "patientsNotPlaced".into(),
                            json!({
                                "noRegisteredPracticeInAnIcb": published_count(unplaced.no_unit),
                                "noBirthDate": published_count(unplaced.no_birth_date),
                            }),
                        );
                    }
                    Ok(answer)
                })
                .collect();
            // A single question that fails is a failed request (and audited as one).
            if let [Err(_)] = answers.as_slice() {
                return answers
                    .into_iter()
                    .next()
                    .map_or(Ok(Vec::new()), |answer| answer.map(|a| vec![Ok(a)]));
            }
            Ok(answers)
        }
        .await;
        self.audited(ctx, event, result).await
    }

    /// One [`PatientFacts`] per patient the store can place (opted-out patients included,
    /// marked, so the aggregate counts them out), how many it could not place, and (when asked)
    /// each placed, not opted-out patient's reconciliation timeliness with their units.
    async fn analytics_facts(
        &self,
        month: Month,
        with_timeliness: bool,
        with_pincer: bool,
    ) -> Result<(Vec<PatientFacts>, Unplaced, Vec<UnitTimeliness>), AppError> {
        // PINCER counts at the first day of the month (as OpenSAFELY does) and of the month
        // before (for the trend of equity gaps).
        let pincer = if with_pincer {
            let at = |m: Month| smr_safety::pincer::Date::parse_month(&m.to_string());
            Some((
                crate::pincer::definitions()?,
                at(month).ok_or_else(|| AppError::BadRequest(format!("month {month}")))?,
                at(month.previous())
                    .ok_or_else(|| AppError::BadRequest(format!("month {month}")))?,
            ))
        } else {
            None
        };
        let regions = self.regions().await?;
        let feedback = self.card_feedback(month).await?;
        let lookup = self.medicine_lookup();
        let drugs = CpicDrugs::level_a();
        let month_end = month
            .end_exclusive()
            .ok_or_else(|| AppError::BadRequest(format!("month {month} is out of range")))?;
        let mut facts = Vec::new();
        let mut unplaced = Unplaced::default();
        let mut timeliness = Vec::new();
        let types: &[&str] = if with_pincer {
            &TYPES_WITH_SAFETY
        } else if with_timeliness {
            &TYPES_WITH_RECONCILIATION
        } else {
            &TYPES
        };
        let now = crate::now_micros();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .search(
                    &page_request("Patient", cursor.take())?,
                    &Access::unrestricted(),
                )
                .await?;
            for stored in &page.matches {
                let patient = json_body(stored)?;
                let Some((practice, sub_icb, icb)) = unit_of(&regions, &patient) else {
                    unplaced.no_unit += 1;
                    continue;
                };
                let Some(age_band) = age_band(&patient, month_end) else {
                    unplaced.no_birth_date += 1;
                    continue;
                };
                let mut person = PatientFacts {
                    practice,
                    sub_icb,
                    icb,
                    age_band,
                    sex: Sex::from_fhir(
                        patient
                            .get("gender")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    ),
                    ethnicity: ethnicity(&patient),
                    imd_quintile: imd_quintile(&patient),
                    opted_out: self.opted_out(&stored.id).await?,
                    prescriptions: Vec::new(),
                    genotypes: Vec::new(),
                    alerts: feedback.get(&stored.id).cloned().unwrap_or_default(),
                    changes: Vec::new(),
                    admissions: Vec::new(),
                };
                if !person.opted_out {
                    let record = self
                        .load_record(&stored.id, types, &Access::unrestricted())
                        .await?;
                    read_record(
                        &mut person,
                        &record.sources,
                        &record.medications,
                        lookup.as_ref(),
                        drugs,
                    );
                    if with_timeliness {
                        let pincer_flags = pincer.map(|(definitions, at, before)| {
                            let data = smr_safety::pincer::fhir_in::read_patient(
                                definitions,
                                &patient,
                                &record.sources,
                                &record.medications,
                                lookup.as_ref(),
                                &|_| true,
                            );
                            [
                                definitions.flags(&data, at),
                                definitions.flags(&data, before),
                            ]
                        });
                        timeliness.push(UnitTimeliness {
                            units: [
                                person.practice.clone(),
                                person.sub_icb.clone(),
                                person.icb.clone(),
                            ],
                            groups: Dimension::ALL.map(|d| d.group_of(&person)),
                            pincer: pincer_flags,
                            results: reconciliation_timeliness(&record.sources, now),
                        });
                    }
                }
                facts.push(person);
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok((facts, unplaced, timeliness))
    }

    /// CDS Hooks card feedback per patient, from the audit trail, recorded since the month
    /// before `month` began.
    async fn card_feedback(&self, month: Month) -> Result<HashMap<String, Vec<Alert>>, AppError> {
        let since = month
            .previous()
            .end_exclusive()
            .and_then(|d| d.previous_day())
            .map(|d| {
                let first = d.replace_day(1).unwrap_or(d);
                first.midnight().assume_utc().unix_timestamp() * 1_000_000
            });
        let mut by_patient: HashMap<String, Vec<Alert>> = HashMap::new();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .audit_events(&AuditQuery {
                    since,
                    count: AUDIT_PAGE,
                    cursor,
                    ..AuditQuery::default()
                })
                .await?;
            for (_, body) in &page.records {
                if let Some((patient, alert)) = feedback_alert(body) {
                    by_patient.entry(patient).or_default().push(alert);
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(by_patient)
    }
}

/// What one analytics question answers: the JSON report, and its table as CSV where the
/// report is one table (a single measure, an equity split, the delays, the override reasons).
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticsAnswer {
    pub json: Value,
    pub csv: Option<String>,
}

fn to_json<T: serde::Serialize>(report: &T) -> Result<Value, AppError> {
    serde_json::to_value(report)
        .map_err(|e| AppError::BadRequest(format!("the report could not be written: {e}")))
}

/// The published form of one report.
fn publish(
    aggregate: &Aggregate,
    report: &AnalyticsReport,
    level: Level,
) -> Result<AnalyticsAnswer, AppError> {
    let bad = |e: smr_analytics::AnalyticsError| AppError::BadRequest(e.to_string());
    let unit_label = match level {
        Level::Icb => "ICB",
        Level::SubIcb => "Sub-ICB location",
        Level::Practice => "Practice",
    };
    let answer = |json: Value, csv: Option<String>| Ok(AnalyticsAnswer { json, csv });
    match report {
        AnalyticsReport::Measures { measure } => {
            let measures: Vec<Measure> = match measure {
                Some(m) => vec![*m],
                None => Measure::ALL.to_vec(),
            };
            let mut out = Vec::new();
            let mut csv = None;
            for m in measures {
                // A month with no unit at the level is an empty answer, not an error.
                match smr_analytics::publish_measure(aggregate, m, level) {
                    Ok(r) => {
                        if measure.is_some() {
                            csv = Some(smr_analytics::render::table_csv(unit_label, &r.table));
                        }
                        out.push(to_json(&r)?);
                    }
                    Err(smr_analytics::AnalyticsError::NoData { .. }) => {}
                    Err(e) => return Err(bad(e)),
                }
            }
            answer(
                json!({"measures": out, "optedOut": aggregate.opted_out()}),
                csv,
            )
        }
        AnalyticsReport::Equity {
            code,
            measure,
            dimension,
        } => {
            let r = smr_analytics::publish_equity(aggregate, *measure, level, code, *dimension)
                .map_err(bad)?;
            let csv = smr_analytics::render::table_csv(dimension.slug(), &r.table);
            answer(to_json(&r)?, Some(csv))
        }
        AnalyticsReport::ResultToChange => {
            let r = smr_analytics::publish_delays(aggregate, level).map_err(bad)?;
            let csv = smr_analytics::render::table_csv(unit_label, &r.table);
            answer(to_json(&r)?, Some(csv))
        }
        AnalyticsReport::OverrideReasons { code } => {
            let r = smr_analytics::publish_override_reasons(aggregate, level, code).map_err(bad)?;
            let csv = smr_analytics::render::table_csv("Override reason", &r.table);
            answer(to_json(&r)?, Some(csv))
        }
        // Answered from the records' reconciliations, not the aggregate (see the caller).
        AnalyticsReport::ReconciliationTimeliness | AnalyticsReport::SafetyEquity { .. } => {
            Err(AppError::BadRequest(
                "reconciliation timeliness and safety equity are not aggregate reports".into(),
            ))
        }
        AnalyticsReport::Value { code, overrides } => {
            let model = smr_analytics::ValueModel::cited()
                .map_err(|e| AppError::BadRequest(format!("the value model is not usable: {e}")))?;
            let mut parameters = model.parameters();
            for (name, [low, central, high]) in overrides {
                parameters
                    .set(
                        name,
                        smr_analytics::Range {
                            low: *low,
                            central: *central,
                            high: *high,
                        },
                    )
                    .map_err(|e| AppError::BadRequest(e.to_string()))?;
            }
            let r =
                smr_analytics::estimate_value(aggregate, level, code, &parameters).map_err(bad)?;
            answer(to_json(&r)?, None)
        }
    }
}

/// One patient's reconciliation timeliness, with their (practice, sub-ICB, ICB) codes.
#[derive(Debug)]
struct UnitTimeliness {
    units: [String; 3],
    /// The patient's group in each equity dimension (`Dimension::ALL` order).
    groups: [usize; 4],
    /// PINCER (denominator, numerator) flags per indicator, this month and the month before.
    pincer: Option<[Vec<(bool, bool)>; 2]>,
    results: Vec<smr_reconcile::timeliness::Timeliness>,
}

/// Each admission and discharge of a record measured against QS120 (as
/// `$reconcile-timeliness` measures them).
fn reconciliation_timeliness(
    sources: &[Value],
    now: i64,
) -> Vec<smr_reconcile::timeliness::Timeliness> {
    let of = |types: &[&str]| -> Vec<Value> {
        sources
            .iter()
            .filter(|r| {
                r.get("resourceType")
                    .and_then(Value::as_str)
                    .is_some_and(|t| types.contains(&t))
            })
            .cloned()
            .collect()
    };
    smr_reconcile::timeliness::for_patient(
        &of(&["Encounter"]),
        &of(&["List"]),
        &of(&["MedicationRequest", "MedicationStatement"]),
        now,
    )
}

/// QS120 timeliness per unit of `level` for the clocks that started in `month`: one
/// disclosure-controlled table per statement (rows: units; columns: met, not met, pending;
/// row totals), the share met of those decided (met + not met) from published counts.
fn publish_timeliness(patients: &[UnitTimeliness], level: Level, month: Month) -> AnalyticsAnswer {
    use smr_reconcile::timeliness::{Measure as Qs, Status};
    let column = match level {
        Level::Practice => 0,
        Level::SubIcb => 1,
        Level::Icb => 2,
    };
    let month_text = month.to_string();
    let mut statements = Vec::new();
    let mut csv = String::new();
    for (measure, title) in [
        (
            Qs::Admission,
            "Admissions with medicines reconciled within 24 hours (NICE QS120 statement 4)",
        ),
        (
            Qs::Discharge,
            "Discharges reconciled in the GP record within 7 days of the information arriving (NICE QS120 statement 5)",
        ),
    ] {
        let mut counts: std::collections::BTreeMap<&str, [u64; 3]> = Default::default();
        for patient in patients {
            for r in patient.results.iter().filter(|r| {
                r.measure == measure && r.started.1.get(..7) == Some(month_text.as_str())
            }) {
                let cell = match r.status {
                    Status::Met => 0,
                    Status::NotMet => 1,
                    Status::Pending => 2,
                };
                counts.entry(&patient.units[column]).or_default()[cell] += 1;
            }
        }
        let mut statement = json!({"measure": measure.code(), "title": title,
                                   "limitHours": measure.limit_hours()});
        if !counts.is_empty() {
            let labels: Vec<String> = counts.keys().map(|k| (*k).to_owned()).collect();
            let cells: Vec<Vec<u64>> = counts.values().map(|c| c.to_vec()).collect();
            if let Ok(table) = smr_sdc::Table::new(
                labels.clone(),
                vec!["met".into(), "not met".into(), "pending".into()],
                cells,
                smr_sdc::Margins::RowTotals,
            ) {
                let published = smr_sdc::publish(&table);
                let rates: Vec<Value> = labels
                    .iter()
                    .enumerate()
                    .map(|(i, label)| {
                        let (met, not_met) = (published.cell(i, 0), published.cell(i, 1));
                        let decided = match (met.value(), not_met.value()) {
                            (Some(a), Some(b)) => smr_sdc::Cell::Published(a + b),
                            _ => smr_sdc::Cell::Redacted(smr_sdc::Reason::Secondary),
                        };
                        json!({"label": label, "rate": smr_sdc::rate(met, decided)})
                    })
                    .collect();
                csv.push_str(&smr_analytics::render::table_csv(
                    measure.code(),
                    &published,
                ));
                statement["table"] = serde_json::to_value(&published).unwrap_or(Value::Null);
                statement["rates"] = json!(rates);
            }
        }
        statements.push(statement);
    }
    AnalyticsAnswer {
        json: json!({"statements": statements,
            "note": "Counts of admissions and discharges whose clock started in the month; the share met is of those decided (met or not met), pending ones left out."}),
        csv: Some(csv),
    }
}

/// Every PINCER indicator and both QS120 statements for the patients of one unit, split by
/// `dimension` (see [`smr_analytics::publish_split`]): lower is better for PINCER, higher for
/// reconciliation on time.
fn publish_safety_equity(
    patients: &[UnitTimeliness],
    level: Level,
    code: &str,
    dimension: Dimension,
    month: Month,
) -> Result<AnalyticsAnswer, AppError> {
    use smr_reconcile::timeliness::{Measure as Qs, Status};
    let column = match level {
        Level::Practice => 0,
        Level::SubIcb => 1,
        Level::Icb => 2,
    };
    let in_unit: Vec<&UnitTimeliness> = patients
        .iter()
        .filter(|p| p.units[column] == code)
        .collect();
    if in_unit.is_empty() {
        return Err(AppError::BadRequest(format!(
            "no patient is counted in unit '{code}' at level {} in {month}",
            level.slug()
        )));
    }
    let dim = dimension as usize;
    let groups = dimension.groups().len();
    let bad = |e: smr_analytics::AnalyticsError| AppError::BadRequest(e.to_string());
    let definitions = crate::pincer::definitions()?;
    let mut pincer = Vec::new();
    for (i, indicator) in definitions.indicators.iter().enumerate() {
        let mut periods = [vec![(0u64, 0u64); groups], vec![(0u64, 0u64); groups]];
        for p in &in_unit {
            let Some(flags) = &p.pincer else { continue };
            for (period, counts) in periods.iter_mut().enumerate() {
                if let (Some(&(den, num)), Some(cell)) =
                    (flags[period].get(i), counts.get_mut(p.groups[dim]))
                    && den
                {
                    cell.1 += 1;
                    cell.0 += u64::from(num);
                }
            }
        }
        let report = smr_analytics::publish_split(
            &indicator.title,
            dimension,
            ["flagged", "not flagged"],
            &periods[0],
            &periods[1],
            false,
        )
        .map_err(bad)?;
        let mut value = to_json(&report)?;
        value["id"] = json!(indicator.id);
        pincer.push(value);
    }
    let (this, before) = (month.to_string(), month.previous().to_string());
    let mut reconciliation = Vec::new();
    for (measure, title) in [
        (
            Qs::Admission,
            "Admissions reconciled within 24 hours (NICE QS120 statement 4)",
        ),
        (
            Qs::Discharge,
            "Discharges reconciled by the GP within 7 days (NICE QS120 statement 5)",
        ),
    ] {
        let mut periods = [vec![(0u64, 0u64); groups], vec![(0u64, 0u64); groups]];
        for p in &in_unit {
            for r in p.results.iter().filter(|r| r.measure == measure) {
                let started = r.started.1.get(..7);
                let period = if started == Some(this.as_str()) {
                    0
                } else if started == Some(before.as_str()) {
                    1
                } else {
                    continue;
                };
                if let Some(cell) = periods[period].get_mut(p.groups[dim]) {
                    match r.status {
                        Status::Met => {
                            cell.0 += 1;
                            cell.1 += 1;
                        }
                        Status::NotMet => cell.1 += 1,
                        Status::Pending => {}
                    }
                }
            }
        }
        let report = smr_analytics::publish_split(
            title,
            dimension,
            ["met", "not met"],
            &periods[0],
            &periods[1],
            true,
        )
        .map_err(bad)?;
        let mut value = to_json(&report)?;
        value["measure"] = json!(measure.code());
        reconciliation.push(value);
    }
    Ok(AnalyticsAnswer {
        json: json!({"unit": code, "dimension": dimension.slug(), "pincer": pincer,
                     "reconciliation": reconciliation}),
        csv: None,
    })
}

/// A count published by the disclosure rule (1–7 redacted, the rest rounded to 5).
fn published_count(n: u64) -> Value {
    serde_json::to_value(smr_sdc::publish_count(n)).unwrap_or(Value::Null)
}

/// (practice, sub-ICB, ICB) of a registered patient; a practice directly under its ICB is
/// its own sub-ICB unit's member under the ICB's code.
fn unit_of(regions: &Regions, patient: &Value) -> Option<(String, String, String)> {
    let (practice, sub_icb, icb) = regions.of_patient(patient);
    let (practice, icb) = (practice?, icb?);
    let sub_icb = sub_icb.unwrap_or_else(|| icb.clone());
    Some((practice, sub_icb, icb))
}

/// `YYYY-MM-DD`, `YYYY-MM` or `YYYY` (FHIR date) as a date (the first of the month or year
/// when partial).
fn fhir_date(text: &str) -> Option<Date> {
    let date = text.get(..10).unwrap_or(text);
    let mut parts = date.split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next().map_or(Some(1), |m| m.parse().ok())?;
    let day: u8 = parts.next().map_or(Some(1), |d| d.parse().ok())?;
    Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

/// Age band at the last day of the month (`month_end` is the first day of the next).
fn age_band(patient: &Value, month_end: Date) -> Option<AgeBand> {
    let born = fhir_date(patient.get("birthDate")?.as_str()?)?;
    let at = month_end.previous_day()?;
    if born > at {
        return None;
    }
    let mut years = at.year() - born.year();
    if (at.month() as u8, at.day()) < (born.month() as u8, born.day()) {
        years -= 1;
    }
    Some(AgeBand::of_age(u32::try_from(years).ok()?))
}

fn ethnicity(patient: &Value) -> EthnicGroup {
    extensions(patient, ETHNIC_CATEGORY_URL)
        .filter_map(|e| {
            e.pointer("/valueCodeableConcept/coding")
                .and_then(Value::as_array)
        })
        .flatten()
        .find_map(|c| c.get("code").and_then(Value::as_str))
        .map_or(EthnicGroup::NotStated, EthnicGroup::from_nhs_code)
}

fn imd_quintile(patient: &Value) -> Option<ImdQuintile> {
    let address = patient.get("address")?.as_array()?.first()?;
    let imd = extensions(address, IMD_URL).next()?;
    let sub = |name: &str| {
        extensions(imd, name)
            .find_map(|e| e.get("valueInteger").and_then(Value::as_u64))
            .and_then(|v| u8::try_from(v).ok())
    };
    sub("quintile")
        .and_then(ImdQuintile::new)
        .or_else(|| sub("decile").and_then(ImdQuintile::from_decile))
}

fn extensions<'a>(element: &'a Value, url: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    element
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |e| e.get("url").and_then(Value::as_str) == Some(url))
}

fn date_at(resource: &Value, pointers: &[&str]) -> Option<Date> {
    pointers
        .iter()
        .find_map(|p| resource.pointer(p).and_then(Value::as_str))
        .and_then(fhir_date)
}

/// The ingredient names of a MedicationRequest's medicine (lower case), resolved through the
/// dictionary; none when unmapped (an unmapped medicine cannot be a CPIC drug SMR knows).
fn ingredients(request: &Value, medications: &[Value], lookup: &dyn MedicineLookup) -> Vec<String> {
    let concept = request.get("medicationCodeableConcept").or_else(|| {
        let reference = request
            .pointer("/medicationReference/reference")?
            .as_str()?;
        let id = reference.strip_prefix("Medication/")?;
        medications
            .iter()
            .find(|m| m.get("id").and_then(Value::as_str) == Some(id))?
            .get("code")
    });
    let Some(concept) = concept else {
        return Vec::new();
    };
    let codings: Vec<(Option<&str>, &str)> = concept
        .get("coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some((
                c.get("system").and_then(Value::as_str),
                c.get("code")?.as_str()?,
            ))
        })
        .collect();
    let text = concept.get("text").and_then(Value::as_str);
    lookup
        .resolve(&codings, text)
        .map(|info| {
            info.ingredients
                .iter()
                .map(|i| i.name.to_lowercase())
                .collect()
        })
        .unwrap_or_default()
}

/// Fills a patient's events from their record.
fn read_record(
    person: &mut PatientFacts,
    sources: &[Value],
    medications: &[Value],
    lookup: &dyn MedicineLookup,
    drugs: &CpicDrugs,
) {
    let mut drug_of_request: HashMap<&str, Vec<String>> = HashMap::new();
    for r in sources {
        let ty = r.get("resourceType").and_then(Value::as_str);
        let status = r.get("status").and_then(Value::as_str).unwrap_or_default();
        if status == "entered-in-error" {
            continue;
        }
        match ty {
            Some("MedicationRequest") => {
                let names = ingredients(r, medications, lookup);
                if let Some(id) = r.get("id").and_then(Value::as_str) {
                    drug_of_request.insert(id, names.clone());
                }
                if let Some(date) = date_at(r, &["/authoredOn", "/meta/lastUpdated"]) {
                    person
                        .prescriptions
                        .extend(names.iter().map(|drug| Prescription {
                            date,
                            drug: drug.clone(),
                        }));
                }
                if matches!(status, "stopped" | "cancelled")
                    && let Some(date) = date_at(r, &["/meta/lastUpdated"])
                {
                    person
                        .changes
                        .extend(names.iter().map(|drug| PrescribingChange {
                            date,
                            drug: drug.clone(),
                        }));
                }
            }
            Some("Observation") => {
                if let Some(result) = genotype(r, drugs) {
                    person.genotypes.push(result);
                }
            }
            Some("Encounter") => {
                let inpatient = r.pointer("/class/code").and_then(Value::as_str) == Some("IMP");
                if inpatient
                    && status != "cancelled"
                    && let Some(date) = date_at(r, &["/period/start"])
                {
                    person.admissions.push(date);
                }
            }
            _ => {}
        }
    }
    // A request that replaces another (dose change, switch) changes the earlier one's drug.
    for r in sources {
        if r.get("resourceType").and_then(Value::as_str) != Some("MedicationRequest") {
            continue;
        }
        let Some(prior) = r
            .pointer("/priorPrescription/reference")
            .and_then(Value::as_str)
            .and_then(|p| p.strip_prefix("MedicationRequest/"))
        else {
            continue;
        };
        let Some(date) = date_at(r, &["/authoredOn", "/meta/lastUpdated"]) else {
            continue;
        };
        if let Some(names) = drug_of_request.get(prior) {
            person
                .changes
                .extend(names.iter().map(|drug| PrescribingChange {
                    date,
                    drug: drug.clone(),
                }));
        }
    }
}

/// A genotype or phenotype Observation as an analytics result: its gene, its date, and the
/// CPIC level A drugs for which its guideline advises something other than standard
/// prescribing.
fn genotype(observation: &Value, drugs: &CpicDrugs) -> Option<GenotypeResult> {
    if !smr_cds::genotype::is_pgx_observation(observation) {
        return None;
    }
    let result = smr_cds::genotype::read_observation(observation).ok()??;
    let date = date_at(
        observation,
        &["/effectiveDateTime", "/issued", "/meta/lastUpdated"],
    )?;
    let interpretation = [result.interpretation()];
    let actionable_for = drugs
        .drugs()
        .filter(|drug| drugs.genes(drug).is_some_and(|g| g.contains(&result.gene)))
        .filter(|drug| {
            smr_pgx_guidelines::recommend(drug, &interpretation)
                .iter()
                .any(|a| matches!(a, Assessment::Recommendation(r) if r.action != Action::Standard))
        })
        .map(str::to_owned)
        .collect();
    Some(GenotypeResult {
        date,
        gene: result.gene,
        actionable_for,
    })
}

/// A CDS Hooks feedback AuditEvent as (patient, alert with its feedback).
fn feedback_alert(body: &str) -> Option<(String, Alert)> {
    let event: Value = serde_json::from_str(body).ok()?;
    if event.pointer("/type/code").and_then(Value::as_str) != Some("cds-hooks-feedback") {
        return None;
    }
    let detail = |name: &str| {
        event
            .get("entity")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|e| {
                e.get("detail")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .find(|d| d.get("type").and_then(Value::as_str) == Some(name))
            .and_then(|d| d.get("valueString").and_then(Value::as_str))
            .map(str::to_owned)
    };
    let feedback = match detail("outcome").as_deref()? {
        "accepted" => Feedback::Accepted,
        "overridden" => Feedback::Overridden {
            reason: detail("overrideReason"),
        },
        _ => return None,
    };
    let patient = event
        .get("entity")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.pointer("/what/reference").and_then(Value::as_str))
        .find_map(|r| r.strip_prefix("Patient/"))?
        .to_owned();
    let date = fhir_date(event.get("recorded")?.as_str()?)?;
    Some((
        patient,
        Alert {
            date,
            feedback: Some(feedback),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_dates_and_ages() {
        assert_eq!(
            fhir_date("1960-03-15"),
            Date::from_calendar_date(1960, time::Month::March, 15).ok()
        );
        assert_eq!(
            fhir_date("1960"),
            Date::from_calendar_date(1960, time::Month::January, 1).ok()
        );
        assert_eq!(fhir_date("sixty"), None);
        let end = Date::from_calendar_date(2026, time::Month::December, 1).expect("date");
        let born = |d: &str| json!({"birthDate": d});
        // 65 on 30 November 2026 (the month's last day), 64 the day after.
        assert_eq!(
            age_band(&born("1961-11-30"), end),
            Some(AgeBand::From65To79)
        );
        assert_eq!(
            age_band(&born("1961-12-01"), end),
            Some(AgeBand::From40To64)
        );
        assert_eq!(age_band(&born("2027-01-01"), end), None, "not yet born");
        assert_eq!(age_band(&json!({}), end), None);
    }

    #[test]
    fn demographics_from_uk_core_extensions() {
        let patient = json!({
            "extension": [{"url": ETHNIC_CATEGORY_URL, "valueCodeableConcept": {"coding": [
                {"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland", "code": "M"}]}}],
            "address": [{"extension": [{"url": IMD_URL, "extension": [
                {"url": "decile", "valueInteger": 3}, {"url": "quintile", "valueInteger": 2}]}]}]
        });
        assert_eq!(ethnicity(&patient), EthnicGroup::Black);
        assert_eq!(imd_quintile(&patient), ImdQuintile::new(2));
        assert_eq!(ethnicity(&json!({})), EthnicGroup::NotStated);
        assert_eq!(imd_quintile(&json!({})), None);
    }

    #[test]
    fn feedback_events_become_alerts() {
        let body = json!({"resourceType": "AuditEvent",
            "type": {"code": "cds-hooks-feedback"}, "recorded": "2026-11-03T10:00:00Z",
            "entity": [{"what": {"reference": "Patient/p1"}},
                       {"detail": [{"type": "outcome", "valueString": "overridden"},
                                   {"type": "overrideReason", "valueString": "s|patient-tolerating"}]}]});
        let (patient, alert) = feedback_alert(&body.to_string()).expect("an alert");
        assert_eq!(patient, "p1");
        assert_eq!(
            alert.feedback,
            Some(Feedback::Overridden {
                reason: Some("s|patient-tolerating".into())
            })
        );
        let other = json!({"resourceType": "AuditEvent", "type": {"code": "rest"}});
        assert!(feedback_alert(&other.to_string()).is_none());
    }
}
