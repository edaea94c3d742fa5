//! PINCER prescribing-safety indicators (issue 11): `Patient/{id}/$pincer` (one patient, who
//! is flagged and by which entries) and the aggregates per practice, sub-ICB and ICB for a
//! month (`/analytics/pincer`, analysts and administrators only).
//!
//! The definitions and the evaluation are `smr_safety::pincer` (pure). This module reads the
//! record and shapes the answers:
//! - per patient, like `$safety-check`: the caller must be able to open the record; the
//!   indicators are evaluated on the *whole* record (a prescription the patient withholds from
//!   this organisation still makes the patient at risk), and a withheld entry is counted as
//!   hidden, never named;
//! - aggregates: every patient except those who opted out of secondary use (a `research`
//!   Consent denying, as `$export` detects it), counted at the reference date (the first day
//!   of the month, as OpenSAFELY counts on the first of each month), grouped by the practice
//!   the patient is registered with (`Patient.generalPractitioner` Organization) and its
//!   `partOf` chain — the top-most ancestor is the ICB, the one below it (when there is one)
//!   the sub-ICB. Counts go through [`disclose`] before ranks and deciles are computed from
//!   the published figures.

use std::collections::HashMap;

use serde_json::{Value, json};
use smr_access::{Interaction, RequestContext};
use smr_fhir::query::{self, Handling};
use smr_safety::pincer::aggregate::{self, Level, PatientRow, UnitCount};
use smr_safety::pincer::{Date, IndicatorResult, Outcome, PatientData, Pincer};
use smr_store::{Access, PatientView};

use crate::audit::{AuditAction, Event};
use crate::authorize::check_interaction;
use crate::medication_record::LoadedRecord;
use crate::pgx::check_patient_id;
use crate::{App, AppError, now_micros};

/// The types the indicators read besides the Patient.
const TYPES: [&str; 4] = ["MedicationRequest", "Condition", "Observation", "Procedure"];
const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
/// Resources read per page when walking every patient or organisation.
const PAGE: usize = 500;

pub(crate) fn definitions() -> Result<&'static Pincer, AppError> {
    smr_safety::pincer::definitions().map_err(|e| {
        AppError::Store(smr_store::StoreError::Internal(format!(
            "the PINCER definitions are not usable: {e}"
        )))
    })
}

fn today() -> Date {
    Date::from_days(now_micros().div_euclid(86_400_000_000) as i32)
}

/// Reads `?date=` (a full date, `YYYY-MM-DD`).
pub fn parse_date(text: &str) -> Result<Date, AppError> {
    if text.len() != 10 {
        return Err(AppError::BadRequest(format!(
            "date must be a full date YYYY-MM-DD, not '{text}'"
        )));
    }
    Date::parse(text)
        .ok_or_else(|| AppError::BadRequest(format!("date '{text}' is not a valid date")))
}

pub(crate) fn json_body(r: &smr_store::StoredResource) -> Result<Value, AppError> {
    serde_json::from_str(&r.body).map_err(|e| {
        AppError::Store(smr_store::StoreError::Internal(format!(
            "stored {}/{} is not JSON: {e}",
            r.res_type, r.id
        )))
    })
}

impl App {
    /// The patient's record read for the indicators: everything, each resource marked visible
    /// to the caller or not (`view` `None`: all visible, for aggregates).
    async fn pincer_data(
        &self,
        ctx: Option<&RequestContext>,
        view: Option<&PatientView>,
        patient: &Value,
        id: &str,
        pincer: &Pincer,
    ) -> Result<PatientData, AppError> {
        // Unfiltered on purpose: see the module documentation.
        let LoadedRecord {
            sources,
            medications,
            ..
        } = self
            .load_record(id, &TYPES, &Access::unrestricted())
            .await?;
        let visible = |r: &Value| match (ctx, view) {
            (Some(ctx), Some(view)) => {
                let p = &ctx.principal;
                let ty = r.get("resourceType").and_then(Value::as_str).unwrap_or("");
                smr_access::policy::role_allows(p.role, ty, Interaction::Read)
                    && p.scopes.allows(ty, Interaction::Read)
                    && !view.hides(r)
            }
            _ => true,
        };
        let lookup = self.medicine_lookup();
        Ok(smr_safety::pincer::fhir_in::read_patient(
            pincer,
            patient,
            &sources,
            &medications,
            lookup.as_ref(),
            &visible,
        ))
    }

    /// `Patient/{id}/$pincer[?date=YYYY-MM-DD]`: every PINCER indicator for one patient at
    /// the date (today by default), as a FHIR `Parameters`. Audited.
    pub async fn pincer_for_patient(
        &self,
        ctx: &RequestContext,
        patient: &str,
        as_of: Option<&str>,
    ) -> Result<Value, AppError> {
        let mut event = Event::new("operation", AuditAction::Read)
            .detail("$pincer")
            .patient(patient);
        if let Some(date) = as_of {
            event = event.query(format!("date={date}"));
        }
        let result = async {
            check_patient_id(patient)?;
            check_interaction(ctx, "Patient", Interaction::Read)?;
            let at = as_of.map(parse_date).transpose()?.unwrap_or_else(today);
            let access = self.access(ctx).await?;
            // 404 for an unknown patient comes before the relationship check.
            let stored = self.store.read("Patient", patient).await?;
            let view = self.patient_view(ctx, &access, patient).await?;
            let pincer = definitions()?;
            let resource = json_body(&stored)?;
            let data = self
                .pincer_data(Some(ctx), Some(&view), &resource, patient, pincer)
                .await?;
            let results = pincer.evaluate(&data, at);
            Ok(patient_parameters(pincer, &data, &results, at))
        }
        .await;
        self.audited(ctx, event, result).await
    }

    /// The aggregates of every indicator for `month` (`YYYY-MM`) at `level` (`practice`,
    /// `sub-icb`, `icb`), after disclosure control. Analysts and administrators only; audited
    /// with the parameters.
    pub async fn pincer_aggregates(
        &self,
        ctx: &RequestContext,
        level: &str,
        month: &str,
    ) -> Result<Value, AppError> {
        let event = Event::new("operation", AuditAction::Read)
            .detail("pincer-aggregates")
            .query(format!("level={level}&month={month}"));
        let result = async {
            crate::authorize::check_analyst(ctx, "the PINCER aggregates")?;
            let level_value = Level::parse(level).ok_or_else(|| {
                AppError::BadRequest(format!(
                    "level must be practice, sub-icb or icb, not '{level}'"
                ))
            })?;
            let at = Date::parse_month(month).ok_or_else(|| {
                AppError::BadRequest(format!("month must be YYYY-MM, not '{month}'"))
            })?;
            let pincer = definitions()?;
            let regions = self.regions().await?;
            let (rows, opted_out) = self.pincer_rows(pincer, &regions, at).await?;
            let counts = aggregate::count(&rows, level_value, pincer.indicators.len());
            Ok(aggregates_json(
                pincer,
                level_value,
                month,
                at,
                &counts,
                &regions,
                opted_out,
            ))
        }
        .await;
        self.audited(ctx, event, result).await
    }

    /// Every patient's flags and units, but for those who opted out of secondary use (and
    /// how many did).
    async fn pincer_rows(
        &self,
        pincer: &Pincer,
        regions: &Regions,
        at: Date,
    ) -> Result<(Vec<PatientRow>, u64), AppError> {
        let mut rows = Vec::new();
        let mut opted_out = 0;
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
                if self.opted_out(&stored.id).await? {
                    opted_out += 1;
                    continue;
                }
                let patient = json_body(stored)?;
                let data = self
                    .pincer_data(None, None, &patient, &stored.id, pincer)
                    .await?;
                let (practice, sub_icb, icb) = regions.of_patient(&patient);
                rows.push(PatientRow {
                    practice,
                    sub_icb,
                    icb,
                    flags: pincer.flags(&data, at),
                });
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok((rows, opted_out))
    }

    /// The stored Organizations: ODS code, name and `partOf`.
    pub(crate) async fn regions(&self) -> Result<Regions, AppError> {
        let mut regions = Regions::default();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .search(
                    &page_request("Organization", cursor.take())?,
                    &Access::unrestricted(),
                )
                .await?;
            for stored in &page.matches {
                let org = json_body(stored)?;
                let ods = org
                    .get("identifier")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|i| i.get("system").and_then(Value::as_str) == Some(ODS_SYSTEM))
                    .and_then(|i| i.get("value").and_then(Value::as_str))
                    .map(str::to_owned);
                if let Some(ods) = &ods {
                    regions.by_ods.insert(ods.clone(), stored.id.clone());
                }
                regions.orgs.insert(
                    stored.id.clone(),
                    Org {
                        ods,
                        name: org.get("name").and_then(Value::as_str).map(str::to_owned),
                        part_of: org.get("partOf").and_then(|p| org_ref(p, &HashMap::new())),
                        part_of_ods: org
                            .pointer("/partOf/identifier")
                            .filter(|i| i.get("system").and_then(Value::as_str) == Some(ODS_SYSTEM))
                            .and_then(|i| i.get("value").and_then(Value::as_str))
                            .map(str::to_owned),
                    },
                );
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(regions)
    }
}

pub(crate) fn page_request(
    ty: &str,
    cursor: Option<String>,
) -> Result<query::SearchRequest, AppError> {
    let mut request = query::parse(ty, &[], Handling::Strict)
        .map_err(|issues| {
            AppError::BadRequest(
                issues
                    .iter()
                    .map(|i| i.diagnostics.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?
        .request;
    request.count = PAGE;
    request.total = query::TotalMode::None;
    request.cursor = cursor;
    Ok(request)
}

#[derive(Debug, Clone, Default)]
struct Org {
    ods: Option<String>,
    name: Option<String>,
    /// `partOf` as an Organization id.
    part_of: Option<String>,
    /// `partOf` as an ODS code (a logical reference), resolved through `by_ods`.
    part_of_ods: Option<String>,
}

/// The stored Organizations, for the region of a practice.
#[derive(Debug, Default)]
pub(crate) struct Regions {
    orgs: HashMap<String, Org>,
    by_ods: HashMap<String, String>,
}

/// The Organization id a reference names: `Organization/{id}` or a logical ODS reference.
fn org_ref(reference: &Value, by_ods: &HashMap<String, String>) -> Option<String> {
    if let Some(r) = reference.get("reference").and_then(Value::as_str) {
        let r = r.split("/_history").next().unwrap_or(r);
        return r
            .strip_prefix("Organization/")
            .filter(|id| !id.contains('/'))
            .map(str::to_owned);
    }
    let identifier = reference.get("identifier")?;
    if identifier.get("system").and_then(Value::as_str) != Some(ODS_SYSTEM) {
        return None;
    }
    by_ods
        .get(identifier.get("value").and_then(Value::as_str)?)
        .cloned()
}

impl Regions {
    /// How a unit is named in the aggregates: its ODS code, else its reference.
    fn code(&self, id: &str) -> String {
        self.orgs
            .get(id)
            .and_then(|o| o.ods.clone())
            .unwrap_or_else(|| format!("Organization/{id}"))
    }

    pub(crate) fn name_of(&self, code: &str) -> Option<&str> {
        let id = self
            .by_ods
            .get(code)
            .map(String::as_str)
            .or_else(|| code.strip_prefix("Organization/"))?;
        self.orgs.get(id)?.name.as_deref()
    }

    /// (practice, sub-ICB, ICB) codes of a patient: the first Organization of
    /// `generalPractitioner` and its `partOf` chain.
    pub(crate) fn of_patient(
        &self,
        patient: &Value,
    ) -> (Option<String>, Option<String>, Option<String>) {
        let practice = patient
            .get("generalPractitioner")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|r| org_ref(r, &self.by_ods))
            .filter(|id| self.orgs.contains_key(id));
        let Some(practice) = practice else {
            return (None, None, None);
        };
        let mut chain = vec![practice];
        // Bounded: a cycle in partOf must not hang the request.
        while chain.len() < 16 {
            let Some(org) = chain.last().and_then(|id| self.orgs.get(id)) else {
                break;
            };
            let parent = org.part_of.clone().or_else(|| {
                org.part_of_ods
                    .as_ref()
                    .and_then(|ods| self.by_ods.get(ods).cloned())
            });
            match parent {
                Some(p) if self.orgs.contains_key(&p) && !chain.contains(&p) => chain.push(p),
                _ => break,
            }
        }
        let n = chain.len();
        let icb = (n >= 2).then(|| self.code(&chain[n - 1]));
        let sub_icb = (n >= 3).then(|| self.code(&chain[n - 2]));
        (Some(self.code(&chain[0])), sub_icb, icb)
    }
}

/// Statistical disclosure control (`smr-sdc`): where raw counts become published ones. One
/// indicator's units as one table — a row per unit, columns flagged and not flagged, the row
/// total its denominator — so a small complement ("9 of 12": 3 not flagged) is protected as
/// well as a small numerator, and secondary suppression stops a redacted cell being recovered
/// from its row total. Answers (numerator, denominator) per unit, `None` where withheld.
pub fn disclose(units: &[(u64, u64)]) -> Vec<(Option<u64>, Option<u64>)> {
    if units.is_empty() {
        return Vec::new();
    }
    let labels = (0..units.len()).map(|i| i.to_string()).collect();
    let cells = units
        .iter()
        .map(|&(n, d)| vec![n, d.saturating_sub(n)])
        .collect();
    let Ok(table) = smr_sdc::Table::new(
        labels,
        vec!["flagged".into(), "not flagged".into()],
        cells,
        smr_sdc::Margins::RowTotals,
    ) else {
        // Unreachable with the shapes above; withholding everything is the safe answer.
        return vec![(None, None); units.len()];
    };
    let published = smr_sdc::publish(&table);
    (0..units.len())
        .map(|i| {
            let total = published
                .row_totals
                .as_ref()
                .and_then(|t| t.get(i).copied())
                .and_then(smr_sdc::Cell::value);
            (published.cell(i, 0).value(), total)
        })
        .collect()
}

fn part(name: &str, value_key: &str, value: Value) -> Value {
    json!({"name": name, value_key: value})
}

fn source_text(pincer: &Pincer, reference: &str) -> String {
    pincer
        .sources
        .iter()
        .find(|s| s.id == reference)
        .map(|s| format!("{} ({})", s.publication, s.url))
        .unwrap_or_else(|| reference.to_owned())
}

/// The `$pincer` answer.
fn patient_parameters(
    pincer: &Pincer,
    data: &PatientData,
    results: &[IndicatorResult<'_>],
    at: Date,
) -> Value {
    let mut parameters = vec![
        part("date", "valueDate", json!(at.to_string())),
        part(
            "definitions",
            "valueString",
            json!(format!("SMR PINCER definitions version {}", pincer.version)),
        ),
    ];
    for r in results {
        let ind = r.indicator;
        let mut parts = vec![
            part("id", "valueCode", json!(ind.id)),
            part("code", "valueString", json!(ind.code)),
            part("title", "valueString", json!(ind.title)),
        ];
        match &r.outcome {
            Outcome::Evaluated {
                denominator,
                numerator,
                entries,
                hidden,
            } => {
                parts.push(part("denominator", "valueBoolean", json!(denominator)));
                parts.push(part("numerator", "valueBoolean", json!(numerator)));
                for e in entries {
                    parts.push(part("entry", "valueReference", json!({"reference": e})));
                }
                if *hidden > 0 {
                    parts.push(part("hiddenEntries", "valueInteger", json!(hidden)));
                }
            }
            Outcome::CannotEvaluate { missing } => {
                parts.push(part(
                    "cannotEvaluate",
                    "valueString",
                    json!(format!("missing: {}", missing.join("; "))),
                ));
            }
        }
        parts.push(part(
            "source",
            "valueString",
            json!(format!(
                "{}; {}",
                source_text(pincer, &ind.source.reference),
                ind.source.section
            )),
        ));
        parameters.push(json!({"name": "indicator", "part": parts}));
    }
    for r in &data.unmapped {
        parameters.push(part("unmapped", "valueReference", json!({"reference": r})));
    }
    for r in &data.undated {
        parameters.push(part("undated", "valueReference", json!({"reference": r})));
    }
    json!({"resourceType": "Parameters", "parameter": parameters})
}

/// The `/analytics/pincer` answer (documented in docs/pincer.md).
fn aggregates_json(
    pincer: &Pincer,
    level: Level,
    month: &str,
    at: Date,
    counts: &aggregate::Counts,
    regions: &Regions,
    opted_out: u64,
) -> Value {
    let indicators: Vec<Value> = pincer
        .indicators
        .iter()
        .zip(&counts.per_indicator)
        .map(|(ind, units)| {
            let raw: Vec<(u64, u64)> = units.iter().map(|u| (u.numerator, u.denominator)).collect();
            let published: Vec<(&UnitCount, Option<u64>, Option<u64>)> = units
                .iter()
                .zip(disclose(&raw))
                .map(|(u, (n, d))| (u, n, d))
                .collect();
            let rates: Vec<Option<f64>> = published
                .iter()
                .map(|(_, n, d)| aggregate::rate(*n, *d))
                .collect();
            let ranks = aggregate::percentile_ranks(&rates);
            let deciles = aggregate::deciles(&rates).map(|d| {
                let mut m = serde_json::Map::new();
                for (k, v) in d.iter().enumerate() {
                    m.insert(format!("{}", (k + 1) * 10), json!(v));
                }
                Value::Object(m)
            });
            let units: Vec<Value> = published
                .iter()
                .zip(rates.iter().zip(&ranks))
                .map(|((u, n, d), (rate, rank))| {
                    json!({
                        "code": u.unit,
                        "name": regions.name_of(&u.unit),
                        "numerator": n,
                        "denominator": d,
                        "rate": rate,
                        "percentile": rank,
                    })
                })
                .collect();
            json!({
                "id": ind.id,
                "code": ind.code,
                "title": ind.title,
                "units": units,
                "deciles": deciles,
            })
        })
        .collect();
    let without_unit = smr_sdc::publish_count(counts.without_unit).value();
    let opted_out = smr_sdc::publish_count(opted_out).value();
    json!({
        "month": month,
        "referenceDate": at.to_string(),
        "level": level.as_str(),
        "definitions": pincer.version,
        "disclosureControl": "smr-sdc (OpenSAFELY's rule): counts of 1-7 redacted (null), others rounded to the nearest 5, denominators the sum of the rounded flagged and not-flagged counts, secondary suppression where a redacted count could be recovered; rates from the published counts; ranks and deciles from the published rates",
        "patientsWithoutUnit": without_unit,
        "patientsOptedOut": opted_out,
        "indicators": indicators,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disclosure_protects_small_numerators_and_small_complements() {
        let out = disclose(&[(13, 100), (8, 12), (17, 18), (0, 7), (40, 60)]);
        // Nothing small: rounded to 5, the denominator the sum of the rounded parts.
        assert_eq!(out[0], (Some(15), Some(100)));
        // 4 and 1 not flagged are redacted, so the numerators are too (else total minus
        // numerator would give them back).
        assert_eq!(out[1].0, None);
        assert_eq!(out[2].0, None);
        // A denominator of 7 is never published.
        assert_eq!(out[3].1, None);
        assert_eq!(out[4], (Some(40), Some(60)));
        assert!(disclose(&[]).is_empty());
    }

    #[test]
    fn the_region_of_a_practice_is_its_part_of_chain() {
        let mut regions = Regions::default();
        let org = |ods: &str, part_of: Option<&str>| Org {
            ods: Some(ods.into()),
            name: None,
            part_of: part_of.map(str::to_owned),
            part_of_ods: None,
        };
        regions.orgs.insert("p1".into(), org("P1", Some("icb")));
        regions.orgs.insert("p2".into(), org("P2", Some("sub")));
        regions.orgs.insert("sub".into(), org("S1", Some("icb")));
        regions.orgs.insert("icb".into(), org("I1", None));
        regions.orgs.insert("lone".into(), org("L1", None));
        for (id, ods) in [
            ("p1", "P1"),
            ("p2", "P2"),
            ("sub", "S1"),
            ("icb", "I1"),
            ("lone", "L1"),
        ] {
            regions.by_ods.insert(ods.into(), id.into());
        }
        let patient = |gp: Value| json!({"resourceType": "Patient", "generalPractitioner": [gp]});
        let s = |x: &str| Some(x.to_owned());
        assert_eq!(
            regions.of_patient(&patient(json!({"reference": "Organization/p1"}))),
            (s("P1"), None, s("I1"))
        );
        assert_eq!(
            regions.of_patient(&patient(
                json!({"identifier": {"system": ODS_SYSTEM, "value": "P2"}})
            )),
            (s("P2"), s("S1"), s("I1"))
        );
        assert_eq!(
            regions.of_patient(&patient(json!({"reference": "Organization/lone"}))),
            (s("L1"), None, None)
        );
        assert_eq!(
            regions.of_patient(&patient(json!({"reference": "Practitioner/x"}))),
            (None, None, None)
        );
    }
}
