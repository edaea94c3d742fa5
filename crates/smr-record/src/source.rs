//! One source entry of the record (a MedicationRequest, MedicationDispense,
//! MedicationAdministration or MedicationStatement) read into what the merge needs: what it
//! names, when it happened, whether it says the patient is taking the medicine now, and the
//! dose and route it gives.

use serde_json::Value;

/// The four resource types a medication record is made from.
pub const SOURCE_TYPES: [&str; 4] = [
    "MedicationRequest",
    "MedicationDispense",
    "MedicationAdministration",
    "MedicationStatement",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    Request,
    Dispense,
    Administration,
    Statement,
}

impl SourceKind {
    pub fn from_type(resource_type: &str) -> Option<SourceKind> {
        match resource_type {
            "MedicationRequest" => Some(SourceKind::Request),
            "MedicationDispense" => Some(SourceKind::Dispense),
            "MedicationAdministration" => Some(SourceKind::Administration),
            "MedicationStatement" => Some(SourceKind::Statement),
            _ => None,
        }
    }
}

/// What an entry says about the medicine being taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A course of therapy: a prescription (a GP plan, a hospital order with no plan above
    /// it) or a statement that the patient takes (or took) the medicine. Its status says
    /// whether the therapy is current.
    Therapy,
    /// Something done under a therapy or on its own: an issue of a plan (GP Connect "order"
    /// based on a "plan"), a dispense, an administration. Evidence of activity at its date.
    Event,
    /// Says nothing about taking the medicine (entered in error, not taken, declined).
    Inert,
}

/// A therapy's status, folded from each type's own value set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TherapyStatus {
    Active,
    OnHold,
    /// Stopped or cancelled by a decision (what "stopped in one setting" means).
    Stopped,
    /// Finished as planned (a completed course or inpatient order).
    Completed,
    /// Draft, unknown: kept in the record but says nothing about now.
    Other,
}

/// A dose as structured data, comparable only with a dose in the same unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Dose {
    pub value: f64,
    pub unit: String,
}

/// How often, as administrations per day, when the timing is structured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerDay(pub f64);

/// A coded route (system|code) with its display, or text alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub key: Option<String>,
    pub display: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub kind: SourceKind,
    pub resource_type: String,
    pub id: String,
    pub version: Option<String>,
    /// `Type/id`.
    pub reference: String,
    pub role: Role,
    /// For therapies.
    pub status: TherapyStatus,
    /// The raw status, for the timeline and messages.
    pub status_text: String,
    /// `intent` of a request.
    pub intent: Option<String>,
    /// References this entry acts under (`basedOn`, `authorizingPrescription`, `request`,
    /// `partOf`), as `Type/id`.
    pub acts_under: Vec<String>,
    /// (system, code, display) of the medicine as written.
    pub codings: Vec<(Option<String>, String, Option<String>)>,
    pub text: Option<String>,
    /// When the entry began or happened (microseconds since the epoch) and its text.
    pub start: Option<(i64, String)>,
    /// When a therapy ended (stop date), where the entry says.
    pub end: Option<(i64, String)>,
    /// The entry's own latest activity: the issue, supply or administration date; a therapy's
    /// authoring or assertion date.
    pub activity: Option<(i64, String)>,
    pub dose: Option<Dose>,
    pub per_day: Option<PerDay>,
    pub route: Option<Route>,
    /// Whether the entry states a dosage (the line's "current dose" is read from the
    /// resource with [`dosage_of`] only for the entry chosen, not copied for every entry).
    pub has_dosage: bool,
    /// The first dosage's text, for messages.
    pub dosage_text: Option<String>,
    /// Category codes (any system), for setting inference.
    pub categories: Vec<String>,
    /// Who stated it, for statements (`informationSource` reference type).
    pub information_source: Option<String>,
    /// References to the organisations the entry names (dispense performer, request
    /// requester/performer when an Organization).
    pub organisations: Vec<String>,
    /// `meta.lastUpdated`: when the current version was written (a stop is dated by it when
    /// the entry names no end).
    pub last_updated: Option<(i64, String)>,
}

impl Source {
    /// `Type/id/_history/version` when the version is known.
    pub fn versioned_reference(&self) -> String {
        match &self.version {
            Some(v) => format!("{}/_history/{v}", self.reference),
            None => self.reference.clone(),
        }
    }

    /// The date used to order entries: activity, else start.
    pub fn when(&self) -> Option<i64> {
        self.activity
            .as_ref()
            .or(self.start.as_ref())
            .map(|(t, _)| *t)
    }

    pub fn is_therapy(&self) -> bool {
        self.role == Role::Therapy
    }

    /// A therapy current now: active (or on hold, which still means "on the list").
    pub fn is_current_therapy(&self) -> bool {
        self.role == Role::Therapy && self.status == TherapyStatus::Active
    }
}

/// Reads a source entry. `None` for a resource of another type, one without an id, or one
/// entered in error (which is not part of anyone's medicines).
pub fn read(resource: &Value, medications: &dyn Fn(&str) -> Option<Value>) -> Option<Source> {
    let resource_type = resource.get("resourceType")?.as_str()?;
    let kind = SourceKind::from_type(resource_type)?;
    let id = resource.get("id")?.as_str()?.to_owned();
    let status_text = str_at(resource, &["status"])
        .unwrap_or("unknown")
        .to_owned();
    if status_text == "entered-in-error" {
        return None;
    }
    let version = str_at(resource, &["meta", "versionId"]).map(str::to_owned);
    let intent = str_at(resource, &["intent"]).map(str::to_owned);
    let mut acts_under = Vec::new();
    for key in ["basedOn", "authorizingPrescription", "request", "partOf"] {
        for r in as_list(resource.get(key)) {
            if let Some(reference) = r.get("reference").and_then(Value::as_str) {
                acts_under.push(strip_history(reference));
            }
        }
    }
    let (codings, text) = medicine(resource, medications);
    let categories = as_list(resource.get("category"))
        .flat_map(|c| as_list(c.get("coding")))
        .filter_map(|c| c.get("code").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    let information_source = str_at(resource, &["informationSource", "reference"])
        .and_then(|r| r.split('/').next())
        .map(str::to_owned);
    let mut organisations = Vec::new();
    for path in [
        &["requester", "reference"][..],
        &["performer", "reference"][..],
    ] {
        if let Some(r) = str_at(resource, path).filter(|r| r.starts_with("Organization/")) {
            organisations.push(strip_history(r));
        }
    }
    for p in as_list(resource.get("performer")) {
        if let Some(r) = p
            .pointer("/actor/reference")
            .and_then(Value::as_str)
            .filter(|r| r.starts_with("Organization/"))
        {
            organisations.push(strip_history(r));
        }
    }

    let (role, status) = role_and_status(kind, &status_text, intent.as_deref(), &acts_under);
    let (start, end, activity) = dates(kind, resource);
    // Read in place: the first Dosage (an administration's one `dosage`, whose dose is
    // `dose` rather than `doseAndRate`).
    let first_dosage = match kind {
        SourceKind::Request | SourceKind::Dispense => {
            resource.get("dosageInstruction").and_then(|d| d.get(0))
        }
        SourceKind::Statement => resource.get("dosage").and_then(|d| d.get(0)),
        SourceKind::Administration => resource.get("dosage"),
    };
    let dose = match kind {
        SourceKind::Administration => first_dosage
            .and_then(|d| d.get("dose"))
            .and_then(quantity_dose),
        _ => first_dosage.and_then(structured_dose),
    };
    let per_day = first_dosage.and_then(per_day);
    let route = first_dosage.and_then(|d| d.get("route")).and_then(route);
    let has_dosage = first_dosage.is_some();
    let dosage_text = first_dosage
        .and_then(|d| d.get("text"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(Source {
        kind,
        resource_type: resource_type.to_owned(),
        reference: format!("{resource_type}/{id}"),
        id,
        version,
        role,
        status,
        status_text,
        intent,
        acts_under,
        codings,
        text,
        start,
        end,
        activity,
        dose,
        per_day,
        route,
        has_dosage,
        dosage_text,
        categories,
        information_source,
        organisations,
        last_updated: str_at(resource, &["meta", "lastUpdated"]).and_then(date),
    })
}

fn role_and_status(
    kind: SourceKind,
    status: &str,
    intent: Option<&str>,
    acts_under: &[String],
) -> (Role, TherapyStatus) {
    let therapy_status = match status {
        "active" | "intended" => TherapyStatus::Active,
        "on-hold" => TherapyStatus::OnHold,
        "stopped" | "cancelled" => TherapyStatus::Stopped,
        "completed" => TherapyStatus::Completed,
        _ => TherapyStatus::Other,
    };
    match kind {
        SourceKind::Request => {
            // A GP Connect issue ("order" under a "plan") is an event of its plan: its
            // "completed" means issued, not that the medicine was stopped.
            let under_plan = acts_under
                .iter()
                .any(|r| r.starts_with("MedicationRequest/"));
            if under_plan && intent != Some("plan") {
                let role = if matches!(status, "active" | "completed" | "on-hold") {
                    Role::Event
                } else {
                    Role::Inert
                };
                (role, therapy_status)
            } else {
                (Role::Therapy, therapy_status)
            }
        }
        SourceKind::Statement => match status {
            "not-taken" => (Role::Inert, TherapyStatus::Other),
            _ => (Role::Therapy, therapy_status),
        },
        SourceKind::Dispense | SourceKind::Administration => {
            let happened = matches!(status, "completed" | "in-progress" | "on-hold");
            (
                if happened { Role::Event } else { Role::Inert },
                TherapyStatus::Other,
            )
        }
    }
}

/// A date as microseconds since the epoch, with the text it was read from.
pub type Dated = Option<(i64, String)>;
/// (system, code, display) of one coding.
pub type Coding = (Option<String>, String, Option<String>);

/// (start, end, activity) of an entry.
fn dates(kind: SourceKind, r: &Value) -> (Dated, Dated, Dated) {
    let at = |path: &[&str]| str_at(r, path).and_then(date);
    let end_of = |path: &[&str]| str_at(r, path).and_then(date_end);
    match kind {
        SourceKind::Request => {
            let authored = at(&["authoredOn"]);
            let start = at(&["dispenseRequest", "validityPeriod", "start"]).or(authored.clone());
            let end = end_of(&["dispenseRequest", "validityPeriod", "end"]);
            (start, end, authored)
        }
        SourceKind::Dispense => {
            let when = at(&["whenHandedOver"]).or(at(&["whenPrepared"]));
            (when.clone(), None, when)
        }
        SourceKind::Administration => {
            let when = at(&["effectiveDateTime"]).or(at(&["effectivePeriod", "start"]));
            (when.clone(), None, when)
        }
        SourceKind::Statement => {
            let start = at(&["effectiveDateTime"]).or(at(&["effectivePeriod", "start"]));
            let end = end_of(&["effectivePeriod", "end"]);
            let asserted = at(&["dateAsserted"]).or(start.clone());
            (start, end, asserted)
        }
    }
}

/// The medicine's codes and text: `medicationCodeableConcept`, or the Medication a
/// `medicationReference` names (contained `#id` or looked up by the caller).
fn medicine(
    r: &Value,
    medications: &dyn Fn(&str) -> Option<Value>,
) -> (Vec<Coding>, Option<String>) {
    let owned;
    let concept: Option<&Value> = if let Some(c) = r.get("medicationCodeableConcept") {
        Some(c)
    } else if let Some(reference) = r
        .pointer("/medicationReference/reference")
        .and_then(Value::as_str)
    {
        let medication = match reference.strip_prefix('#') {
            Some(local) => as_list(r.get("contained"))
                .find(|c| c.get("id").and_then(Value::as_str) == Some(local))
                .cloned(),
            None => medications(&strip_history(reference)),
        };
        owned = medication.and_then(|m| m.get("code").cloned()).or_else(|| {
            r.pointer("/medicationReference/display")
                .and_then(Value::as_str)
                .map(|d| serde_json::json!({"text": d}))
        });
        owned.as_ref()
    } else {
        None
    };
    let Some(concept) = concept else {
        return (Vec::new(), None);
    };
    let codings = as_list(concept.get("coding"))
        .filter_map(|c| {
            let code = c.get("code")?.as_str()?.trim();
            (!code.is_empty()).then(|| {
                (
                    c.get("system").and_then(Value::as_str).map(str::to_owned),
                    code.to_owned(),
                    c.get("display").and_then(Value::as_str).map(str::to_owned),
                )
            })
        })
        .collect();
    let text = concept
        .get("text")
        .and_then(Value::as_str)
        .map(str::to_owned);
    (codings, text)
}

/// The dosage as written (`dosageInstruction` / `dosage` array, or an administration's
/// `dosage` shaped as one Dosage), for the line's "current dose".
pub fn dosage_of(kind: SourceKind, r: &Value) -> Option<Value> {
    let value = match kind {
        SourceKind::Request | SourceKind::Dispense => r.get("dosageInstruction")?.clone(),
        SourceKind::Statement => r.get("dosage")?.clone(),
        // An administration's dosage is one dose given; shaped as a Dosage so that lines
        // and comparisons read it the same way.
        SourceKind::Administration => {
            let d = r.get("dosage")?;
            let mut dosage = serde_json::Map::new();
            if let Some(text) = d.get("text") {
                dosage.insert("text".into(), text.clone());
            }
            if let Some(route) = d.get("route") {
                dosage.insert("route".into(), route.clone());
            }
            if let Some(dose) = d.get("dose") {
                dosage.insert(
                    "doseAndRate".into(),
                    serde_json::json!([{"doseQuantity": dose}]),
                );
            }
            Value::Array(vec![Value::Object(dosage)])
        }
    };
    value.as_array().filter(|a| !a.is_empty())?;
    Some(value)
}

fn structured_dose(dosage: &Value) -> Option<Dose> {
    let quantity = as_list(dosage.get("doseAndRate")).find_map(|d| d.get("doseQuantity"))?;
    quantity_dose(quantity)
}

fn quantity_dose(quantity: &Value) -> Option<Dose> {
    let value = number(quantity.get("value")?)?;
    let unit = quantity
        .get("code")
        .or(quantity.get("unit"))
        .and_then(Value::as_str)?
        .trim()
        .to_lowercase();
    Some(Dose { value, unit })
}

fn per_day(dosage: &Value) -> Option<PerDay> {
    let repeat = dosage.pointer("/timing/repeat")?;
    let frequency = repeat.get("frequency").and_then(number).unwrap_or(1.0);
    let period = repeat.get("period").and_then(number)?;
    let unit_days = match repeat.get("periodUnit").and_then(Value::as_str)? {
        "s" => 1.0 / 86_400.0,
        "min" => 1.0 / 1_440.0,
        "h" => 1.0 / 24.0,
        "d" => 1.0,
        "wk" => 7.0,
        "mo" => 30.0,
        "a" => 365.0,
        _ => return None,
    };
    (period > 0.0).then(|| PerDay(frequency / (period * unit_days)))
}

fn route(route: &Value) -> Option<Route> {
    let coding = as_list(route.get("coding")).find(|c| c.get("code").is_some());
    let key = coding.and_then(|c| {
        Some(format!(
            "{}|{}",
            c.get("system").and_then(Value::as_str).unwrap_or(""),
            c.get("code")?.as_str()?
        ))
    });
    let display = coding
        .and_then(|c| c.get("display"))
        .or(route.get("text"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    (key.is_some() || display.is_some()).then_some(Route { key, display })
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.to_string().parse().ok())
}

/// Start of a FHIR date/dateTime (microseconds), with the text.
pub(crate) fn date(text: &str) -> Option<(i64, String)> {
    smr_fhir::datetime::parse_range(text)
        .ok()
        .map(|(start, _)| (start, text.to_owned()))
}

/// The last instant a FHIR date covers, for end dates ("stopped on 2026-03-01" covers that day).
fn date_end(text: &str) -> Option<(i64, String)> {
    smr_fhir::datetime::parse_range(text)
        .ok()
        .map(|(_, end)| (end - 1, text.to_owned()))
}

pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut at = v;
    for key in path {
        at = at.get(key)?;
    }
    at.as_str()
}

pub(crate) fn as_list(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    match v {
        Some(Value::Array(items)) => items.iter().collect::<Vec<_>>().into_iter(),
        Some(other) => vec![other].into_iter(),
        None => Vec::new().into_iter(),
    }
}

/// `Type/id` of a reference, without `_history/v` or a server base.
pub fn strip_history(reference: &str) -> String {
    let without_history = match reference.find("/_history/") {
        Some(at) => &reference[..at],
        None => reference,
    };
    // An absolute reference to this server: keep the last two segments.
    let parts: Vec<&str> = without_history.rsplitn(3, '/').collect();
    if without_history.contains("://") && parts.len() >= 2 {
        format!("{}/{}", parts[1], parts[0])
    } else {
        without_history.to_owned()
    }
}
