//! GP system medication extracts (issue 9): a CSV file, one row per repeat authorisation or
//! per issue, read into FHIR R4 MedicationRequests the way GP Connect shapes them: an
//! authorisation is a `plan`, an issue an `order` whose `basedOn` names its plan. The format
//! is `docs/gp-extract.md`.
//!
//! Layout: [`Extract`] reads the header and then one row at a time (streaming, from any
//! `io::Read` the caller opens); [`map_row`] is the pure row → resource mapping; [`ids`] says
//! how identifiers and resource ids are derived from the practice's ODS code and the GP
//! system's own ids, so a re-run names the same resources. No I/O of its own, no store.

pub mod ids;

use std::collections::HashMap;
use std::io::Read;

use serde_json::{Value, json};
use smr_fhir::nhs_number::{self, NHS_NUMBER_SYSTEM};

pub use ids::{Kind, identifier_system, parse_identifier, resource_id};

const SNOMED: &str = "http://snomed.info/sct";

/// Every column a file must have (in any order; other columns are ignored).
pub const REQUIRED_COLUMNS: &[&str] = &[
    "nhs_number",
    "record_type",
    "authorisation_id",
    "issue_id",
    "dmd_code",
    "medication_name",
    "dose_text",
    "quantity",
    "quantity_unit",
    "start_date",
    "end_date",
    "issue_date",
    "status",
    "stop_reason",
];

/// Columns a file may have.
pub const OPTIONAL_COLUMNS: &[&str] = &["prescriber", "practice_ods"];

/// Why a whole file cannot be read as an extract.
#[derive(Debug)]
pub enum FileError {
    /// The header is missing or lacks columns, or no practice is known.
    Header(String),
    /// The underlying reader failed.
    Io(std::io::Error),
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::Header(m) => write!(f, "{m}"),
            FileError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FileError {}

/// A row that cannot be mapped: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Line of the file where the row starts (the header is line 1).
    pub line: u64,
    /// The column at fault, when one is.
    pub column: Option<&'static str>,
    /// `structure` (the row cannot be read), `required` (a value is missing) or `value`.
    pub code: &'static str,
    pub message: String,
}

/// One mapped row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub kind: Kind,
    /// The practice's ODS code (upper case).
    pub practice: String,
    pub nhs_number: String,
    pub authorisation_id: String,
    /// The MedicationRequest, with its derived `id`.
    pub resource: Value,
}

impl Row {
    pub fn id(&self) -> &str {
        self.resource["id"].as_str().unwrap_or_default()
    }

    /// The id of the plan this row is (an authorisation) or is an issue of.
    pub fn plan_id(&self) -> String {
        resource_id(&self.practice, Kind::Authorisation, &self.authorisation_id)
    }
}

/// The positions of the columns, from the header row.
#[derive(Debug, Clone)]
pub struct Header {
    index: HashMap<&'static str, usize>,
}

impl Header {
    /// Reads a header row; `has_default_practice` says whether the caller gives a practice
    /// for rows without one (`--practice`).
    pub fn read(names: &[&str], has_default_practice: bool) -> Result<Header, FileError> {
        let mut index = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            // A spreadsheet's UTF-8 byte order mark sits before the first name.
            let name = name.trim_start_matches('\u{feff}').trim();
            if let Some(known) = REQUIRED_COLUMNS
                .iter()
                .chain(OPTIONAL_COLUMNS)
                .find(|c| c.eq_ignore_ascii_case(name))
                && index.insert(*known, i).is_some()
            {
                return Err(FileError::Header(format!(
                    "the header names column '{known}' twice"
                )));
            }
        }
        let missing: Vec<&str> = REQUIRED_COLUMNS
            .iter()
            .copied()
            .filter(|c| !index.contains_key(c))
            .collect();
        if !missing.is_empty() {
            return Err(FileError::Header(format!(
                "the header row lacks column(s) {} (docs/gp-extract.md)",
                missing.join(", ")
            )));
        }
        if !index.contains_key("practice_ods") && !has_default_practice {
            return Err(FileError::Header(
                "the file has no practice_ods column: give the practice with --practice ODS".into(),
            ));
        }
        Ok(Header { index })
    }

    fn get<'a>(&self, fields: &'a [&'a str], column: &'static str) -> &'a str {
        self.index
            .get(column)
            .and_then(|&i| fields.get(i))
            .map_or("", |v| v.trim())
    }
}

/// A streaming reader of an extract: the header, then one mapped row (or row error) at a time.
pub struct Extract<R: Read> {
    reader: csv::Reader<R>,
    header: Header,
    practice: Option<String>,
    record: csv::ByteRecord,
    width: usize,
}

impl<R: Read> Extract<R> {
    /// Reads the header of `input`. `practice`: the ODS code for rows that give none.
    pub fn new(input: R, practice: Option<&str>) -> Result<Self, FileError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(input);
        let names = reader.headers().map_err(csv_file_error)?.clone();
        if names.is_empty() || names.iter().all(|n| n.trim().is_empty()) {
            return Err(FileError::Header(
                "the file has no header row (docs/gp-extract.md)".into(),
            ));
        }
        let list: Vec<&str> = names.iter().collect();
        let header = Header::read(&list, practice.is_some())?;
        Ok(Extract {
            reader,
            header,
            practice: practice.map(str::to_owned),
            record: csv::ByteRecord::new(),
            width: names.len(),
        })
    }

    /// The next row: `None` at the end; `Some(Err(FileError))` is fatal (I/O), a row error
    /// is `Some(Ok(Err(_)))` and reading goes on.
    #[allow(clippy::type_complexity)]
    pub fn next_row(&mut self) -> Option<Result<Result<Row, RowError>, FileError>> {
        loop {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(0, csv::Position::line);
                    return match e.into_kind() {
                        csv::ErrorKind::Io(io) => Some(Err(FileError::Io(io))),
                        other => Some(Ok(Err(RowError {
                            line,
                            column: None,
                            code: "structure",
                            message: format!("the row cannot be read as CSV: {other:?}"),
                        }))),
                    };
                }
            }
            let line = self.record.position().map_or(0, csv::Position::line);
            // A blank line between rows is no row.
            if self.record.len() == 1 && self.record[0].iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if self.record.len() != self.width {
                return Some(Ok(Err(RowError {
                    line,
                    column: None,
                    code: "structure",
                    message: format!(
                        "the row has {} fields, the header {}",
                        self.record.len(),
                        self.width
                    ),
                })));
            }
            let mut fields = Vec::with_capacity(self.record.len());
            for field in self.record.iter() {
                match std::str::from_utf8(field) {
                    Ok(f) => fields.push(f),
                    Err(_) => {
                        return Some(Ok(Err(RowError {
                            line,
                            column: None,
                            code: "structure",
                            message: "the row is not UTF-8 text".into(),
                        })));
                    }
                }
            }
            return Some(Ok(map_row(
                &self.header,
                &fields,
                line,
                self.practice.as_deref(),
            )));
        }
    }
}

fn csv_file_error(e: csv::Error) -> FileError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => FileError::Io(io),
        csv::ErrorKind::Utf8 { .. } => FileError::Header("the header row is not UTF-8 text".into()),
        other => FileError::Header(format!("the header row cannot be read: {other:?}")),
    }
}

/// Maps one row (its fields in header order) at `line`; `practice` is the ODS code for a row
/// without `practice_ods`.
pub fn map_row(
    header: &Header,
    fields: &[&str],
    line: u64,
    practice: Option<&str>,
) -> Result<Row, RowError> {
    let get = |c: &'static str| header.get(fields, c);
    let fail = |column: &'static str, code: &'static str, message: String| RowError {
        line,
        column: Some(column),
        code,
        message: format!("line {line}, {column}: {message}"),
    };
    let required = |c: &'static str| -> Result<&str, RowError> {
        match get(c) {
            "" => Err(fail(c, "required", "a value is required".into())),
            v => Ok(v),
        }
    };
    let must_be_empty = |c: &'static str, kind: &str| -> Result<(), RowError> {
        match get(c) {
            "" => Ok(()),
            _ => Err(fail(c, "value", format!("must be empty on an {kind} row"))),
        }
    };

    let kind = match required("record_type")?.to_ascii_lowercase().as_str() {
        "authorisation" | "authorization" => Kind::Authorisation,
        "issue" => Kind::Issue,
        other => {
            return Err(fail(
                "record_type",
                "value",
                format!("'{other}' is neither 'authorisation' nor 'issue'"),
            ));
        }
    };
    let practice = match (get("practice_ods"), practice) {
        ("", Some(p)) => p.trim(),
        ("", None) => {
            return Err(fail(
                "practice_ods",
                "required",
                "a value is required (or --practice ODS)".into(),
            ));
        }
        (p, _) => p,
    };
    let practice = ods_code(practice).ok_or_else(|| {
        fail(
            "practice_ods",
            "value",
            format!("'{practice}' is not an ODS code"),
        )
    })?;
    let nhs: String = required("nhs_number")?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if !nhs_number::is_valid(&nhs) {
        return Err(fail(
            "nhs_number",
            "value",
            format!("'{nhs}' is not a valid NHS number (10 digits, Modulus 11 check digit)"),
        ));
    }
    let authorisation_id = required("authorisation_id")?;
    check_local_id(authorisation_id).map_err(|m| fail("authorisation_id", "value", m))?;
    let dmd = required("dmd_code")?;
    if let Some(problem) = smr_fhir::sctid::sctid_problem(dmd) {
        return Err(fail(
            "dmd_code",
            "value",
            format!("'{dmd}' is not a dm+d (SNOMED CT) code: it {problem}"),
        ));
    }
    let name = required("medication_name")?;
    let date_of = |c: &'static str| -> Result<Option<&str>, RowError> {
        match get(c) {
            "" => Ok(None),
            v if is_date(v) => Ok(Some(v)),
            v => Err(fail(
                c,
                "value",
                format!("'{v}' is not a date (YYYY-MM-DD)"),
            )),
        }
    };
    let quantity = match get("quantity") {
        "" => {
            if !get("quantity_unit").is_empty() {
                return Err(fail(
                    "quantity_unit",
                    "value",
                    "a unit without a quantity".into(),
                ));
            }
            None
        }
        q if is_positive_decimal(q) => {
            let number: serde_json::Number = q
                .parse()
                .map_err(|_| fail("quantity", "value", format!("'{q}' is not a number")))?;
            let mut quantity = json!({ "value": number });
            let unit = get("quantity_unit");
            if !unit.is_empty() {
                quantity["unit"] = json!(unit);
            }
            Some(quantity)
        }
        q => {
            return Err(fail(
                "quantity",
                "value",
                format!("'{q}' is not a positive decimal number"),
            ));
        }
    };
    let status_text = get("status").to_ascii_lowercase();
    let stop_reason = get("stop_reason");

    let (identifier_value, status, authored, validity) = match kind {
        Kind::Authorisation => {
            must_be_empty("issue_id", "authorisation")?;
            must_be_empty("issue_date", "authorisation")?;
            let start = date_of("start_date")?
                .ok_or_else(|| fail("start_date", "required", "a value is required".into()))?;
            let end = date_of("end_date")?;
            if let Some(end) = end
                && end < start
            {
                return Err(fail(
                    "end_date",
                    "value",
                    format!("{end} is before start_date {start}"),
                ));
            }
            let status = match status_text.as_str() {
                "" => return Err(fail("status", "required", "a value is required".into())),
                s @ ("active" | "on-hold" | "stopped" | "completed" | "cancelled"
                | "entered-in-error") => s.to_owned(),
                other => {
                    return Err(fail(
                        "status",
                        "value",
                        format!(
                            "'{other}' is not an authorisation status (active, on-hold, stopped, completed, cancelled, entered-in-error)"
                        ),
                    ));
                }
            };
            let mut validity = json!({ "start": start });
            if let Some(end) = end {
                validity["end"] = json!(end);
            }
            (authorisation_id.to_owned(), status, start, validity)
        }
        Kind::Issue => {
            must_be_empty("start_date", "issue")?;
            must_be_empty("end_date", "issue")?;
            let issue_id = required("issue_id")?;
            check_local_id(issue_id).map_err(|m| fail("issue_id", "value", m))?;
            let date = date_of("issue_date")?
                .ok_or_else(|| fail("issue_date", "required", "a value is required".into()))?;
            let status = match status_text.as_str() {
                "" | "issued" | "completed" => "completed".to_owned(),
                s @ ("cancelled" | "entered-in-error") => s.to_owned(),
                other => {
                    return Err(fail(
                        "status",
                        "value",
                        format!(
                            "'{other}' is not an issue status (completed, cancelled, entered-in-error)"
                        ),
                    ));
                }
            };
            (issue_id.to_owned(), status, date, json!({ "start": date }))
        }
    };
    if !stop_reason.is_empty() && matches!(status.as_str(), "active" | "on-hold") {
        return Err(fail(
            "stop_reason",
            "value",
            format!("a stop reason on a row whose status is {status}"),
        ));
    }

    let mut resource = json!({
        "resourceType": "MedicationRequest",
        "id": resource_id(&practice, kind, &identifier_value),
        "identifier": [{
            "system": identifier_system(&practice, kind),
            "value": identifier_value,
        }],
        "status": status,
    });
    if !stop_reason.is_empty() {
        resource["statusReason"] = json!({ "text": stop_reason });
    }
    resource["intent"] = json!(match kind {
        Kind::Authorisation => "plan",
        Kind::Issue => "order",
    });
    resource["medicationCodeableConcept"] = json!({
        "coding": [{ "system": SNOMED, "code": dmd, "display": name }],
        "text": name,
    });
    resource["subject"] = json!({ "reference": patient_reference(&nhs) });
    if kind == Kind::Issue {
        resource["basedOn"] = json!([{
            "reference": format!(
                "MedicationRequest/{}",
                resource_id(&practice, Kind::Authorisation, authorisation_id)
            )
        }]);
    }
    resource["authoredOn"] = json!(authored);
    let prescriber = get("prescriber");
    if !prescriber.is_empty() {
        resource["requester"] = json!({ "display": prescriber });
    }
    let dose = get("dose_text");
    if !dose.is_empty() {
        resource["dosageInstruction"] = json!([{ "text": dose }]);
    }
    let mut dispense = json!({ "validityPeriod": validity });
    if let Some(q) = quantity {
        dispense["quantity"] = q;
    }
    resource["dispenseRequest"] = dispense;
    Ok(Row {
        line,
        kind,
        practice,
        nhs_number: nhs,
        authorisation_id: authorisation_id.to_owned(),
        resource,
    })
}

/// The patient as a conditional reference by NHS number: the store resolves it inside the
/// write's transaction and refuses the row when SMR holds no such patient.
pub fn patient_reference(nhs_number: &str) -> String {
    format!("Patient?identifier={NHS_NUMBER_SYSTEM}|{nhs_number}")
}

/// An ODS organisation code: 3 to 10 letters and digits, upper-cased.
pub fn ods_code(text: &str) -> Option<String> {
    let t = text.trim();
    ((3..=10).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| t.to_ascii_uppercase())
}

/// A GP system's own id: 1 to 128 characters, no control characters.
fn check_local_id(id: &str) -> Result<(), String> {
    if id.chars().count() > 128 {
        return Err("longer than 128 characters".into());
    }
    if id.chars().any(char::is_control) {
        return Err("holds a control character".into());
    }
    Ok(())
}

/// `YYYY-MM-DD`, a real calendar date.
pub fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1 && (1..=days).contains(&d)
}

/// Digits with an optional fraction, above zero (FHIR decimal, no sign or exponent).
fn is_positive_decimal(text: &str) -> bool {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && (int == "0" || !int.starts_with('0'))
        && (!text.contains('.') || (!frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit())));
    ok && text.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

#[cfg(test)]
mod tests;
