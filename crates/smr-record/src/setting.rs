//! Which care setting an entry came from. The writer's Provenance says it best (SMR writes one
//! for every entry, naming the caller's setting; a loader may send its own); failing that the
//! entry's own organisation and category say; failing that the setting is `unspecified`,
//! never guessed.

use std::collections::HashMap;

use serde_json::Value;
use smr_access::CareSetting;
use smr_access::consent::CARE_SETTING_SYSTEM;

use crate::source::{Source, SourceKind, as_list, date, strip_history};

/// Where an entry came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub setting: CareSetting,
    /// The organisation it was written for (`Organization/id`), where known.
    pub organisation: Option<String>,
    /// Its ODS code, where known.
    pub ods: Option<String>,
    /// The Provenance records about the entry, `Provenance/id`, oldest first.
    pub provenance: Vec<String>,
    /// How the setting was found: `provenance`, `organisation`, `category`, `type`, `unknown`.
    pub basis: &'static str,
}

/// What the Provenance records and Organizations of a record say, indexed for lookups.
#[derive(Debug, Default)]
pub struct Provenances {
    /// target `Type/id` → (recorded, Provenance id, setting, onBehalfOf reference, ODS code)
    by_target: HashMap<String, Vec<ProvenanceFact>>,
    /// `Organization/id` → (setting, ODS code)
    organisations: HashMap<String, (Option<CareSetting>, Option<String>)>,
}

#[derive(Debug, Clone)]
struct ProvenanceFact {
    recorded: i64,
    id: String,
    setting: Option<CareSetting>,
    organisation: Option<String>,
    ods: Option<String>,
}

impl Provenances {
    pub fn new(provenances: &[Value], organisations: &[Value]) -> Provenances {
        let mut by_target: HashMap<String, Vec<ProvenanceFact>> = HashMap::new();
        for p in provenances {
            let Some(id) = p.get("id").and_then(Value::as_str) else {
                continue;
            };
            let recorded = p
                .get("recorded")
                .and_then(Value::as_str)
                .and_then(date)
                .map_or(i64::MIN, |(t, _)| t);
            let (setting, organisation, ods) = agent_setting(p);
            for target in as_list(p.get("target")) {
                if let Some(reference) = target.get("reference").and_then(Value::as_str) {
                    by_target
                        .entry(strip_history(reference))
                        .or_default()
                        .push(ProvenanceFact {
                            recorded,
                            id: id.to_owned(),
                            setting,
                            organisation: organisation.clone(),
                            ods: ods.clone(),
                        });
                }
            }
        }
        for facts in by_target.values_mut() {
            facts.sort_by(|a, b| a.recorded.cmp(&b.recorded).then(a.id.cmp(&b.id)));
        }
        let organisations = organisations
            .iter()
            .filter_map(|o| {
                let id = o.get("id")?.as_str()?;
                Some((
                    format!("Organization/{id}"),
                    (organisation_setting(o), ods_identifier(o)),
                ))
            })
            .collect();
        Provenances {
            by_target,
            organisations,
        }
    }

    /// Where `source` came from.
    pub fn origin(&self, source: &Source) -> Origin {
        let facts = self.by_target.get(&source.reference);
        let provenance: Vec<String> = facts
            .into_iter()
            .flatten()
            .map(|f| format!("Provenance/{}", f.id))
            .collect();
        // The first write says where the entry came from; a later Provenance by another
        // setting (a correction, a status change) does not move it.
        if let Some(fact) = facts
            .into_iter()
            .flatten()
            .find(|f| f.setting.is_some_and(|s| s != CareSetting::Unspecified))
        {
            let organisation_ods = fact
                .organisation
                .as_ref()
                .and_then(|o| self.organisations.get(o))
                .and_then(|(_, ods)| ods.clone());
            return Origin {
                setting: fact.setting.unwrap_or(CareSetting::Unspecified),
                organisation: fact.organisation.clone(),
                ods: fact.ods.clone().or(organisation_ods),
                provenance,
                basis: "provenance",
            };
        }
        for organisation in &source.organisations {
            if let Some((Some(setting), ods)) = self.organisations.get(organisation) {
                return Origin {
                    setting: *setting,
                    organisation: Some(organisation.clone()),
                    ods: ods.clone(),
                    provenance,
                    basis: "organisation",
                };
            }
        }
        let (setting, basis) = match infer(source) {
            Some((setting, basis)) => (setting, basis),
            None => (CareSetting::Unspecified, "unknown"),
        };
        Origin {
            setting,
            organisation: source.organisations.first().cloned(),
            ods: None,
            provenance,
            basis,
        }
    }
}

/// The setting an entry's own content implies: its category (R4 medicationrequest-,
/// medication-admin- and medication-statement-category), who stated it, or its type (a
/// dispense is a pharmacy's act).
fn infer(source: &Source) -> Option<(CareSetting, &'static str)> {
    for category in &source.categories {
        let setting = match category.as_str() {
            "inpatient" | "outpatient" | "discharge" => Some(CareSetting::Hospital),
            "patientspecified" => Some(CareSetting::PatientReported),
            "community" => match source.kind {
                SourceKind::Request => Some(CareSetting::GpPractice),
                SourceKind::Dispense => Some(CareSetting::CommunityPharmacy),
                _ => Some(CareSetting::Community),
            },
            _ => None,
        };
        if let Some(setting) = setting {
            return Some((setting, "category"));
        }
    }
    if source.kind == SourceKind::Statement
        && matches!(
            source.information_source.as_deref(),
            Some("Patient" | "RelatedPerson")
        )
    {
        return Some((CareSetting::PatientReported, "category"));
    }
    if source.kind == SourceKind::Dispense {
        return Some((CareSetting::CommunityPharmacy, "type"));
    }
    None
}

/// The care setting of a Provenance's first agent that names one, with its organisation.
fn agent_setting(p: &Value) -> (Option<CareSetting>, Option<String>, Option<String>) {
    for agent in as_list(p.get("agent")) {
        let setting = as_list(agent.get("role"))
            .flat_map(|r| as_list(r.get("coding")))
            .find(|c| c.get("system").and_then(Value::as_str) == Some(CARE_SETTING_SYSTEM))
            .and_then(|c| c.get("code").and_then(Value::as_str))
            .and_then(CareSetting::parse);
        if setting.is_some() {
            let organisation = agent
                .pointer("/onBehalfOf/reference")
                .and_then(Value::as_str)
                .map(strip_history);
            let ods = agent
                .pointer("/onBehalfOf/identifier/value")
                .and_then(Value::as_str)
                .map(str::to_owned);
            return (setting, organisation, ods);
        }
    }
    (None, None, None)
}

/// An Organization's setting, from a `type` coding in SMR's care-setting system.
pub fn organisation_setting(o: &Value) -> Option<CareSetting> {
    as_list(o.get("type"))
        .flat_map(|t| as_list(t.get("coding")))
        .filter(|c| c.get("system").and_then(Value::as_str) == Some(CARE_SETTING_SYSTEM))
        .find_map(|c| {
            c.get("code")
                .and_then(Value::as_str)
                .and_then(CareSetting::parse)
        })
}

fn ods_identifier(o: &Value) -> Option<String> {
    as_list(o.get("identifier"))
        .find(|i| i.get("system").and_then(Value::as_str) == Some(smr_access::ODS_SYSTEM))
        .and_then(|i| i.get("value").and_then(Value::as_str))
        .map(str::to_owned)
}
