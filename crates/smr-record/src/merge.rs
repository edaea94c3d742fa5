//! Source entries → lines: one line per medicine (same VTM, or same ingredients), at VMP level
//! when every source that names a product names the same VMP, at VTM level when they differ.
//! Entries no dictionary knows stay lines of their own ("unmapped").

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;
use smr_access::CareSetting;
use smr_dmd::{MedicineInfo, MedicineLookup};

use crate::setting::{Origin, Provenances};
use crate::source::{self, Role, Source, TherapyStatus};

pub(crate) const DAY_MICROS: i64 = 86_400_000_000;

/// An event (issue, dispense, administration) with no therapy above it shows the medicine as
/// being taken for this long: a month's supply with a margin, the same window as the default
/// for showing stopped medicines.
pub const EVENT_CURRENCY_DAYS: i64 = 90;

/// One source entry with what the dictionary and the Provenance say about it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Position of the resource in the caller's list of sources.
    pub input: usize,
    pub source: Source,
    /// Shared by every entry naming the same medicine the same way (resolved once).
    pub info: Option<Arc<MedicineInfo>>,
    pub origin: Origin,
}

/// The status of a line, as `MedicationStatement.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LineStatus {
    Active,
    OnHold,
    Unknown,
    Stopped,
    Completed,
}

impl LineStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LineStatus::Active => "active",
            LineStatus::OnHold => "on-hold",
            LineStatus::Unknown => "unknown",
            LineStatus::Stopped => "stopped",
            LineStatus::Completed => "completed",
        }
    }
}

/// How the line names its medicine.
#[derive(Debug, Clone, PartialEq)]
pub enum LineMedicine {
    /// Every product named is this VMP (brands and packs of it included).
    Vmp { code: String, name: String },
    /// The sources name different products of one moiety, or only the moiety.
    Vtm {
        code: Option<String>,
        name: String,
        /// The VMPs the sources name, when more than one.
        products: Vec<String>,
    },
    /// No dictionary knows the medicine: the concept as written.
    Unmapped { concept: Value },
}

/// The latest activity in one setting.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingActivity {
    pub setting: CareSetting,
    pub last_activity: Option<(i64, String)>,
    /// `Type/id/_history/v` of the latest entry in the setting.
    pub last_entry: String,
    pub organisation: Option<String>,
    pub ods: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Line {
    /// Stable key: `vtm:CODE`, `ingredients:a+b`, or `unmapped:…`.
    pub key: String,
    pub medicine: LineMedicine,
    pub status: LineStatus,
    pub start: Option<(i64, String)>,
    pub end: Option<(i64, String)>,
    /// Indices into the record's entries, in date order.
    pub entries: Vec<usize>,
    pub settings: Vec<SettingActivity>,
    /// The dosage as last prescribed (or stated).
    pub dosage: Option<Value>,
    /// Versioned references of the entries, in date order (`derivedFrom`).
    pub derived_from: Vec<String>,
}

impl Line {
    pub fn is_unmapped(&self) -> bool {
        matches!(self.medicine, LineMedicine::Unmapped { .. })
    }

    pub fn display(&self) -> String {
        match &self.medicine {
            LineMedicine::Vmp { name, .. } | LineMedicine::Vtm { name, .. } => name.clone(),
            LineMedicine::Unmapped { concept } => concept
                .get("text")
                .and_then(Value::as_str)
                .or_else(|| concept.pointer("/coding/0/display").and_then(Value::as_str))
                .or_else(|| concept.pointer("/coding/0/code").and_then(Value::as_str))
                .unwrap_or("medicine not named")
                .to_owned(),
        }
    }
}

/// One way an entry names its medicine: its (system, code) pairs and the fallback name.
type NamingKey = (Vec<(Option<String>, String)>, Option<String>);

/// Reads, resolves and orders every source entry. Entries are sorted by date, then type
/// and id, so the record does not depend on the order they arrived in.
pub fn entries(
    sources: &[Value],
    provenances: &Provenances,
    medications: &HashMap<String, Value>,
    lookup: &dyn MedicineLookup,
) -> Vec<Entry> {
    let find_medication = |reference: &str| medications.get(reference).cloned();
    // A record names few medicines many times: resolve each way of naming one once.
    let mut resolved: HashMap<NamingKey, Option<Arc<MedicineInfo>>> = HashMap::new();
    let mut entries: Vec<Entry> = sources
        .iter()
        .enumerate()
        .filter_map(|(input, r)| source::read(r, &find_medication).map(|s| (input, s)))
        .map(|(input, source)| {
            let codings: Vec<(Option<&str>, &str)> = source
                .codings
                .iter()
                .map(|(system, code, _)| (system.as_deref(), code.as_str()))
                .collect();
            // The name to fall back on when no code is known: the concept's text, else a
            // coding's display (US RxNorm entries and codes from another release carry
            // one), which maps at ingredient level when the dictionary knows the name.
            let name = source.text.as_deref().or_else(|| {
                source
                    .codings
                    .iter()
                    .find_map(|(_, _, display)| display.as_deref())
            });
            let info = if codings.is_empty() && name.is_none() {
                None
            } else {
                let key = (
                    codings
                        .iter()
                        .map(|(s, c)| (s.map(str::to_owned), (*c).to_owned()))
                        .collect(),
                    name.map(str::to_owned),
                );
                resolved
                    .entry(key)
                    .or_insert_with(|| lookup.resolve(&codings, name).map(Arc::new))
                    .clone()
            };
            let origin = provenances.origin(&source);
            Entry {
                input,
                source,
                info,
                origin,
            }
        })
        .collect();
    entries.sort_by(|a, b| {
        a.source
            .when()
            .cmp(&b.source.when())
            .then_with(|| a.source.resource_type.cmp(&b.source.resource_type))
            .then_with(|| a.source.id.cmp(&b.source.id))
    });
    entries
}

/// The line key of each entry: its moiety, or "unmapped" by code or text as written. An
/// unmapped entry that acts under a mapped one (an issue of a plan, a dispense of a
/// prescription) joins that entry's line: the reference says so, nothing is guessed.
pub fn line_keys(entries: &[Entry]) -> Vec<String> {
    let own: Vec<Option<String>> = entries
        .iter()
        .map(|e| e.info.as_ref().map(|i| i.moiety_key()))
        .collect();
    let by_reference: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.source.reference.as_str(), i))
        .collect();
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if let Some(key) = &own[i] {
                return key.clone();
            }
            for reference in &e.source.acts_under {
                if let Some(key) = by_reference
                    .get(reference.as_str())
                    .and_then(|&j| own[j].clone())
                {
                    return key;
                }
            }
            unmapped_key(&e.source)
        })
        .collect()
}

/// What the dictionary says one entry names, resolved as the merge resolves it: its codes,
/// else its text, else a coding's display. For callers matching entries outside a record
/// (medicines reconciliation) so that they meet the record on the same reading.
pub fn resolve(source: &Source, lookup: &dyn MedicineLookup) -> Option<MedicineInfo> {
    let codings: Vec<(Option<&str>, &str)> = source
        .codings
        .iter()
        .map(|(system, code, _)| (system.as_deref(), code.as_str()))
        .collect();
    let name = source.text.as_deref().or_else(|| {
        source
            .codings
            .iter()
            .find_map(|(_, _, display)| display.as_deref())
    });
    if codings.is_empty() && name.is_none() {
        return None;
    }
    lookup.resolve(&codings, name)
}

/// The line key an entry gets on its own: its moiety (`vtm:…`, `ingredients:…`), else
/// "unmapped" by code or text as written (the same keys as [`line_keys`]).
pub fn own_key(source: &Source, info: Option<&MedicineInfo>) -> String {
    match info {
        Some(info) => info.moiety_key(),
        None => unmapped_key(source),
    }
}

fn unmapped_key(source: &Source) -> String {
    match source.codings.first() {
        Some((system, code, _)) => format!("unmapped:{}|{code}", system.as_deref().unwrap_or("")),
        None => match &source.text {
            Some(text) => format!("unmapped:text:{}", text.trim().to_lowercase()),
            None => format!("unmapped:entry:{}", source.reference),
        },
    }
}

/// Builds every line (before the stopped-within filter).
/// `sources` are the resources the entries were read from (for the lines' dosage).
pub fn lines(entries: &[Entry], sources: &[Value], now: i64) -> Vec<Line> {
    let keys = line_keys(entries);
    let mut grouped: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        grouped.entry(key.as_str()).or_default().push(i);
    }
    grouped
        .into_iter()
        .map(|(key, members)| build_line(key, members, entries, sources, now))
        .collect()
}

fn build_line(
    key: &str,
    members: Vec<usize>,
    entries: &[Entry],
    sources: &[Value],
    now: i64,
) -> Line {
    let of = |i: &usize| &entries[*i];
    let medicine = line_medicine(key, &members, entries);
    let therapies: Vec<&Entry> = members
        .iter()
        .map(of)
        .filter(|e| e.source.role == Role::Therapy)
        .collect();
    let events: Vec<&Entry> = members
        .iter()
        .map(of)
        .filter(|e| e.source.role == Role::Event)
        .collect();

    let current = therapies
        .iter()
        .any(|e| e.source.status == TherapyStatus::Active);
    let on_hold = therapies
        .iter()
        .any(|e| e.source.status == TherapyStatus::OnHold);
    let last_stop = therapies
        .iter()
        .filter(|e| {
            matches!(
                e.source.status,
                TherapyStatus::Stopped | TherapyStatus::Completed
            )
        })
        .filter_map(|e| stop_date(&e.source))
        .max_by_key(|(t, _)| *t);
    let last_event = events
        .iter()
        .filter_map(|e| e.source.when().map(|t| (t, e)))
        .max_by_key(|(t, _)| *t)
        .and_then(|(_, e)| e.source.activity.clone().or(e.source.start.clone()));
    let stopped = therapies
        .iter()
        .any(|e| e.source.status == TherapyStatus::Stopped);
    let event_after_stop = match (&last_event, &last_stop) {
        (Some((event, _)), Some((stop, _))) => event > stop,
        (Some(_), None) => true,
        _ => false,
    };
    let event_is_recent = last_event
        .as_ref()
        .is_some_and(|(t, _)| *t >= now - EVENT_CURRENCY_DAYS * DAY_MICROS);
    let only_undated_or_unknown = therapies
        .iter()
        .all(|e| e.source.status == TherapyStatus::Other)
        && events.is_empty();

    let (status, end) = if current {
        (LineStatus::Active, None)
    } else if on_hold {
        (LineStatus::OnHold, None)
    } else if event_after_stop && event_is_recent {
        (LineStatus::Active, None)
    } else if only_undated_or_unknown {
        (LineStatus::Unknown, None)
    } else {
        let end = [last_stop.clone(), last_event.clone()]
            .into_iter()
            .flatten()
            .max_by_key(|(t, _)| *t);
        (
            if stopped {
                LineStatus::Stopped
            } else {
                LineStatus::Completed
            },
            end,
        )
    };
    let start = members
        .iter()
        .map(of)
        .filter_map(|e| e.source.start.clone().or(e.source.activity.clone()))
        .min_by_key(|(t, _)| *t);
    Line {
        key: key.to_owned(),
        medicine,
        status,
        start,
        end,
        settings: settings(&members, entries),
        dosage: last_prescribed_dosage(&members, entries, sources),
        derived_from: members
            .iter()
            .map(|&i| entries[i].source.versioned_reference())
            .collect(),
        entries: members,
    }
}

/// When a therapy ended: its stated end, else when its stopping version was written, else
/// its own date.
pub(crate) fn stop_date(source: &Source) -> Option<(i64, String)> {
    source
        .end
        .clone()
        .or_else(|| source.last_updated.clone())
        .or_else(|| source.activity.clone())
        .or_else(|| source.start.clone())
}

fn line_medicine(key: &str, members: &[usize], entries: &[Entry]) -> LineMedicine {
    let infos: Vec<&MedicineInfo> = members
        .iter()
        .filter_map(|&i| entries[i].info.as_deref())
        .collect();
    let Some(first) = infos.first() else {
        let concept = members
            .iter()
            .map(|&i| &entries[i].source)
            .find(|s| !s.codings.is_empty() || s.text.is_some())
            .map(written_concept)
            .unwrap_or_else(|| serde_json::json!({"text": "medicine not named"}));
        return LineMedicine::Unmapped { concept };
    };
    let vmps: BTreeSet<(&str, &str)> = infos
        .iter()
        .filter_map(|i| i.vmp.as_ref())
        .map(|v| (v.code.as_str(), v.name.as_str()))
        .collect();
    if vmps.len() == 1 {
        let (code, name) = vmps.iter().next().copied().unwrap_or_default();
        return LineMedicine::Vmp {
            code: code.to_owned(),
            name: name.to_owned(),
        };
    }
    let vtm = infos.iter().find_map(|i| i.vtm.as_ref());
    let name = match vtm {
        Some(vtm) => vtm.name.clone(),
        None if first.ingredients.is_empty() => first.matched.name.clone(),
        None => first
            .ingredients
            .iter()
            .map(|i| capitalise(&i.name))
            .collect::<Vec<_>>()
            .join(" + "),
    };
    let _ = key;
    LineMedicine::Vtm {
        code: vtm.map(|v| v.code.clone()),
        name,
        products: vmps.iter().map(|(_, name)| (*name).to_owned()).collect(),
    }
}

fn capitalise(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The medicine as the entry wrote it (codes and text), for unmapped lines.
pub fn written_concept(source: &Source) -> Value {
    let coding: Vec<Value> = source
        .codings
        .iter()
        .map(|(system, code, display)| {
            let mut c = serde_json::Map::new();
            if let Some(system) = system {
                c.insert("system".into(), Value::from(system.as_str()));
            }
            c.insert("code".into(), Value::from(code.as_str()));
            if let Some(display) = display {
                c.insert("display".into(), Value::from(display.as_str()));
            }
            Value::Object(c)
        })
        .collect();
    let mut concept = serde_json::Map::new();
    if !coding.is_empty() {
        concept.insert("coding".into(), Value::Array(coding));
    }
    if let Some(text) = &source.text {
        concept.insert("text".into(), Value::from(text.as_str()));
    }
    Value::Object(concept)
}

fn settings(members: &[usize], entries: &[Entry]) -> Vec<SettingActivity> {
    let mut by_setting: BTreeMap<&'static str, SettingActivity> = BTreeMap::new();
    // Members are in date order, so the last one seen in a setting is its latest.
    for &i in members {
        let e = &entries[i];
        let activity = e.source.activity.clone().or(e.source.start.clone());
        let slot = by_setting
            .entry(e.origin.setting.as_str())
            .or_insert_with(|| SettingActivity {
                setting: e.origin.setting,
                last_activity: None,
                last_entry: String::new(),
                organisation: None,
                ods: None,
            });
        let later = match (&slot.last_activity, &activity) {
            (Some((old, _)), Some((new, _))) => new >= old,
            (None, _) => true,
            (Some(_), None) => false,
        };
        if later || slot.last_entry.is_empty() {
            slot.last_activity = activity.or(slot.last_activity.take());
            slot.last_entry = e.source.versioned_reference();
            slot.organisation = e.origin.organisation.clone().or(slot.organisation.take());
            slot.ods = e.origin.ods.clone().or(slot.ods.take());
        }
    }
    by_setting.into_values().collect()
}

/// The dosage of the latest current prescription, else the latest prescription or statement
/// with one, else the latest entry with one.
fn last_prescribed_dosage(
    members: &[usize],
    entries: &[Entry],
    sources: &[Value],
) -> Option<Value> {
    let latest = |pick: &dyn Fn(&Entry) -> bool| {
        members
            .iter()
            .rev()
            .map(|&i| &entries[i])
            .filter(|e| pick(e) && e.source.has_dosage)
            .find_map(|e| source::dosage_of(e.source.kind, sources.get(e.input)?))
    };
    latest(&|e| e.source.is_current_therapy())
        .or_else(|| latest(&|e| e.source.role == Role::Therapy))
        .or_else(|| latest(&|_| true))
}
