//! UK guidance that asks for a pharmacogenomic test before a medicine is given (NICE DG59
//! for CYP2C19 and clopidogrel after ischaemic stroke/TIA, the MHRA's DPYD testing before
//! fluoropyrimidines, NICE HTE6 for MT-RNR1 before aminoglycosides in newborns), read from
//! `data/uk-testing-guidance.json`, which cites each source.
//!
//! The question answered here is only "does UK guidance ask for a test this patient has not
//! had?". Who the guidance applies to is checked against what the request says about the
//! patient ([`PatientContext`]); when the request does not say (no conditions, no age), the
//! finding still fires and the card states who the guidance applies to, rather than SMR
//! guessing that the patient is outside it.

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;
use smr_pgx::Gene;

use crate::cards::Indicator;
use crate::genotype::GeneResult;

const SNOMED: &str = "http://snomed.info/sct";

/// One piece of UK guidance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UkGuidance {
    pub id: String,
    pub gene: Gene,
    /// dm+d ingredient names (lower case) the guidance applies to.
    pub drugs: Vec<String>,
    /// "NICE", "MHRA".
    pub body: String,
    pub name: String,
    /// Guidance number and date ("NICE diagnostics guidance DG59 (July 2024; …)").
    pub reference: String,
    pub url: String,
    /// What the guidance asks for, paraphrased.
    pub advice: String,
    pub indicator: Indicator,
    pub applies_to: AppliesTo,
}

/// Who the guidance applies to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliesTo {
    pub description: String,
    /// The guidance applies only to patients with one of these conditions.
    #[serde(default)]
    pub conditions: Option<ConditionMatch>,
    /// The guidance applies only up to this age.
    #[serde(default)]
    pub max_age_days: Option<u32>,
}

/// A Condition qualifies when one of its SNOMED CT codes is listed, or its text or a
/// coding's display contains one of the phrases (whole words, ignoring case).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionMatch {
    pub snomed: Vec<String>,
    pub text: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[allow(dead_code)]
    title: String,
    release: String,
    #[serde(default)]
    notes: Vec<String>,
    guidance: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    gene: String,
    drugs: Vec<String>,
    body: String,
    name: String,
    reference: String,
    url: String,
    advice: String,
    indicator: Indicator,
    applies_to: AppliesTo,
}

/// The data file does not make sense (a packaging bug, reported rather than panicking).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("data/uk-testing-guidance.json: {0}")]
pub struct UkGuidanceError(pub String);

struct Loaded {
    release: String,
    notes: Vec<String>,
    guidance: Vec<UkGuidance>,
}

fn load(text: &str) -> Result<Loaded, UkGuidanceError> {
    let file: File = serde_json::from_str(text).map_err(|e| UkGuidanceError(e.to_string()))?;
    let mut guidance = Vec::new();
    for e in file.guidance {
        let gene: Gene = e
            .gene
            .parse()
            .map_err(|_| UkGuidanceError(format!("{}: unknown gene '{}'", e.id, e.gene)))?;
        for (field, value) in [
            ("reference", &e.reference),
            ("url", &e.url),
            ("advice", &e.advice),
        ] {
            if value.trim().is_empty() {
                return Err(UkGuidanceError(format!("{}: '{field}' is empty", e.id)));
            }
        }
        if !e.url.starts_with("https://") {
            return Err(UkGuidanceError(format!("{}: url is not https", e.id)));
        }
        if e.drugs.is_empty() {
            return Err(UkGuidanceError(format!("{}: names no drug", e.id)));
        }
        guidance.push(UkGuidance {
            id: e.id,
            gene,
            drugs: e.drugs.iter().map(|d| d.to_lowercase()).collect(),
            body: e.body,
            name: e.name,
            reference: e.reference,
            url: e.url,
            advice: e.advice,
            indicator: e.indicator,
            applies_to: e.applies_to,
        });
    }
    Ok(Loaded {
        release: file.release,
        notes: file.notes,
        guidance,
    })
}

static DATA: LazyLock<Result<Loaded, UkGuidanceError>> =
    LazyLock::new(|| load(include_str!("../data/uk-testing-guidance.json")));

/// Every entry, or why the file could not be loaded.
pub fn guidance() -> Result<&'static [UkGuidance], &'static UkGuidanceError> {
    DATA.as_ref().map(|d| d.guidance.as_slice())
}

/// The data file's release line and notes, for `smr pgx kb`.
pub fn release() -> Result<(&'static str, Vec<&'static str>), &'static UkGuidanceError> {
    DATA.as_ref().map(|d| {
        (
            d.release.as_str(),
            d.notes.iter().map(String::as_str).collect(),
        )
    })
}

/// A Condition the request says the patient has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConditionFact {
    /// `Condition/{id}`, when it has an id.
    pub reference: Option<String>,
    /// `(system, code)` of each coding.
    pub codings: Vec<(Option<String>, String)>,
    /// `code.text`, or the first coding's display.
    pub text: Option<String>,
}

impl ConditionFact {
    /// Reads a FHIR Condition. Entered-in-error and refuted conditions are not facts.
    pub fn from_resource(r: &Value) -> Option<ConditionFact> {
        if r.get("resourceType").and_then(Value::as_str) != Some("Condition") {
            return None;
        }
        let status = |path: &str| {
            r.pointer(path)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("code").and_then(Value::as_str))
                .any(|c| c == "entered-in-error" || c == "refuted")
        };
        if status("/verificationStatus/coding") {
            return None;
        }
        let coding = r.pointer("/code/coding").and_then(Value::as_array);
        let codings = coding
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some((
                    c.get("system").and_then(Value::as_str).map(str::to_owned),
                    c.get("code").and_then(Value::as_str)?.to_owned(),
                ))
            })
            .collect();
        let text = r
            .pointer("/code/text")
            .and_then(Value::as_str)
            .or_else(|| {
                coding
                    .into_iter()
                    .flatten()
                    .find_map(|c| c.get("display").and_then(Value::as_str))
            })
            .map(str::to_owned);
        let reference = r
            .get("id")
            .and_then(Value::as_str)
            .map(|id| format!("Condition/{id}"));
        Some(ConditionFact {
            reference,
            codings,
            text,
        })
    }

    fn describe(&self) -> String {
        match (&self.reference, &self.text) {
            (Some(r), Some(t)) => format!("{r} ({t})"),
            (Some(r), None) => r.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => "a Condition".into(),
        }
    }
}

/// What the request says about the patient beyond the genotypes. `None` means "not
/// supplied", which is different from "supplied and empty".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientContext {
    pub conditions: Option<Vec<ConditionFact>>,
    pub age_days: Option<u32>,
}

impl PatientContext {
    /// Reads what a hook request's prefetch says: `conditions` (a searchset Bundle of
    /// Conditions, when supplied) and the `patient` resource's `birthDate`, aged against
    /// `today` (`YYYY-MM-DD`, from the caller's clock: this crate has none).
    pub fn from_prefetch(conditions: Option<&Value>, patient: Option<&Value>, today: &str) -> Self {
        let conditions = conditions
            .filter(|b| b.get("resourceType").and_then(Value::as_str) == Some("Bundle"))
            .map(|b| {
                b.get("entry")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.get("resource"))
                    .filter_map(ConditionFact::from_resource)
                    .collect()
            });
        let age_days = patient
            .and_then(|p| p.get("birthDate"))
            .and_then(Value::as_str)
            .and_then(|b| age_in_days(b, today));
        PatientContext {
            conditions,
            age_days,
        }
    }
}

/// Days from `birth` to `today`, both full dates (`YYYY-MM-DD`); `None` for a partial date
/// (`1990`, `1990-05`), which cannot tell a newborn from a month-old baby.
pub fn age_in_days(birth: &str, today: &str) -> Option<u32> {
    let b = day_number(birth)?;
    let t = day_number(today.get(..10)?)?;
    u32::try_from(t - b).ok()
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (Howard Hinnant's days_from_civil).
fn day_number(date: &str) -> Option<i64> {
    let mut parts = date.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.get(..2)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Why the guidance was taken to apply to this patient; the card states it as evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applicability {
    /// The guidance applies to everyone given the medicine.
    Everyone,
    /// These Conditions on record put the patient in the guidance's population.
    ConditionOnRecord(Vec<String>),
    /// The guidance is for a population defined by condition, and the request carried no
    /// conditions: the card says who the guidance is for.
    ConditionsNotSupplied,
    /// The patient's age (in days) is within the guidance's population.
    AgeOnRecord(u32),
    /// The guidance is for an age group, and the request gave no age.
    AgeNotSupplied,
}

/// A test UK guidance asks for that the patient has not had.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingTest {
    pub guidance: &'static UkGuidance,
    pub applicability: Applicability,
}

fn contains_phrase(haystack: &str, phrase: &str) -> bool {
    let h = haystack.to_lowercase();
    let p = phrase.to_lowercase();
    h.match_indices(&p).any(|(i, _)| {
        let before = h[..i].chars().next_back();
        let after = h[i + p.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

fn qualifies(c: &ConditionFact, m: &ConditionMatch) -> bool {
    let by_code = c.codings.iter().any(|(system, code)| {
        system.as_deref().is_none_or(|s| s == SNOMED) && m.snomed.iter().any(|x| x == code)
    });
    by_code
        || c.text
            .as_deref()
            .is_some_and(|t| m.text.iter().any(|p| contains_phrase(t, p)))
}

/// Whether `g` applies to the patient, and why; `None` when the request shows it does not.
fn applicability(g: &UkGuidance, ctx: &PatientContext) -> Option<Applicability> {
    if let Some(m) = &g.applies_to.conditions {
        return match &ctx.conditions {
            None => Some(Applicability::ConditionsNotSupplied),
            Some(conds) => {
                let hits: Vec<String> = conds
                    .iter()
                    .filter(|c| qualifies(c, m))
                    .map(ConditionFact::describe)
                    .collect();
                (!hits.is_empty()).then_some(Applicability::ConditionOnRecord(hits))
            }
        };
    }
    if let Some(max) = g.applies_to.max_age_days {
        return match ctx.age_days {
            None => Some(Applicability::AgeNotSupplied),
            Some(age) if age <= max => Some(Applicability::AgeOnRecord(age)),
            Some(_) => None,
        };
    }
    Some(Applicability::Everyone)
}

/// The tests UK guidance asks for before `drug` (a dm+d ingredient name) that the patient
/// has no result for. Any result for the gene counts, even an unusable one: that is an
/// indeterminate result (with its own card), not a missing test.
pub fn missing_tests(drug: &str, results: &[GeneResult], ctx: &PatientContext) -> Vec<MissingTest> {
    let Ok(all) = guidance() else {
        return Vec::new();
    };
    let drug = drug.to_lowercase();
    all.iter()
        .filter(|g| g.drugs.contains(&drug))
        .filter(|g| !results.iter().any(|r| r.gene == g.gene))
        .filter_map(|g| {
            applicability(g, ctx).map(|applicability| MissingTest {
                guidance: g,
                applicability,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_file_loads_and_cites_each_guidance() {
        let all = guidance().expect("loads");
        let ids: Vec<&str> = all.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["nice-dg59", "mhra-dpyd-2020", "nice-hte6"]);
        for g in all {
            assert!(g.url.starts_with("https://"), "{}", g.id);
            assert!(!g.reference.is_empty(), "{}", g.id);
        }
        assert!(release().is_ok());
    }

    #[test]
    fn bad_files_name_the_entry() {
        let e = load(
            r#"{"title":"t","release":"r","guidance":[{"id":"x","gene":"NOPE","drugs":["a"],"body":"b","name":"n","reference":"r","url":"https://u","advice":"a","indicator":"info","applies_to":{"description":"d"}}]}"#,
        );
        assert!(matches!(e, Err(UkGuidanceError(m)) if m.contains("x: unknown gene 'NOPE'")));
    }

    #[test]
    fn conditions_match_by_snomed_code_or_words() {
        let m = ConditionMatch {
            snomed: vec!["266257000".into()],
            text: vec!["TIA".into(), "ischaemic stroke".into()],
        };
        let code = ConditionFact {
            codings: vec![(Some(SNOMED.into()), "266257000".into())],
            ..Default::default()
        };
        assert!(qualifies(&code, &m));
        let text = |t: &str| ConditionFact {
            text: Some(t.into()),
            ..Default::default()
        };
        assert!(qualifies(&text("Acute ischaemic stroke"), &m));
        assert!(qualifies(&text("tia"), &m));
        assert!(!qualifies(&text("Haemorrhagic stroke"), &m));
        assert!(!qualifies(&text("Dementia"), &m)); // "tia" inside a word
    }

    #[test]
    fn ages_in_days() {
        assert_eq!(age_in_days("2026-12-01", "2026-12-06T21:00:00Z"), Some(5));
        assert_eq!(age_in_days("2024-02-28", "2024-03-01"), Some(2));
        assert_eq!(age_in_days("1970-01-01", "1971-01-01"), Some(365));
        assert_eq!(age_in_days("2026-12", "2026-12-06"), None);
        assert_eq!(age_in_days("2027-01-01", "2026-12-06"), None);
    }

    #[test]
    fn prefetch_gives_conditions_and_age() {
        let bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": {"resourceType": "Condition", "id": "c1", "code": {"text": "TIA"}}}]});
        let patient = json!({"resourceType": "Patient", "birthDate": "2026-12-04"});
        let ctx = PatientContext::from_prefetch(Some(&bundle), Some(&patient), "2026-12-06");
        assert_eq!(ctx.age_days, Some(2));
        assert_eq!(ctx.conditions.map(|c| c.len()), Some(1));
        let none = PatientContext::from_prefetch(None, None, "2026-12-06");
        assert_eq!(none, PatientContext::default());
    }

    #[test]
    fn condition_resources_are_read_and_refuted_ones_ignored() {
        let c = json!({"resourceType":"Condition","id":"c1",
            "code":{"coding":[{"system":SNOMED,"code":"422504002","display":"Ischemic stroke"}]}});
        let f = ConditionFact::from_resource(&c).expect("a condition");
        assert_eq!(f.reference.as_deref(), Some("Condition/c1"));
        assert_eq!(f.text.as_deref(), Some("Ischemic stroke"));
        let refuted = json!({"resourceType":"Condition","id":"c2",
            "verificationStatus":{"coding":[{"code":"refuted"}]},
            "code":{"text":"TIA"}});
        assert_eq!(ConditionFact::from_resource(&refuted), None);
    }
}
