//! The senders file (`--mllp-senders`): who may send HL7 v2 to SMR, and as which organisation
//! and care setting. MLLP has no authentication: the sending facility (MSH-4) is looked up
//! here and a sender not listed is refused (`AR`).
//!
//! Format: CSV, header `ods_code,setting,name`, one sender per line; fields may be quoted
//! (`"…"`, `""` for a quote) so names can hold commas; blank lines and lines starting with `#`
//! are skipped. Settings: `gp`, `hospital`, `pharmacy`, `community`, `care-home`.

use std::collections::HashMap;

use smr_access::CareSetting;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// ODS code, as MSH-4 names it (compared case-insensitively).
    pub ods_code: String,
    pub setting: CareSetting,
    pub name: String,
}

/// The configured senders, by ODS code.
#[derive(Debug, Clone, Default)]
pub struct Senders {
    by_code: HashMap<String, Sender>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SendersError {
    pub line: usize,
    pub message: String,
}

const SETTINGS: [&str; 5] = ["gp", "hospital", "pharmacy", "community", "care-home"];

impl Senders {
    /// Reads the CSV text of a senders file.
    pub fn parse(text: &str) -> Result<Senders, SendersError> {
        let mut by_code = HashMap::new();
        let mut header_seen = false;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let fail = |message: String| SendersError { line: n, message };
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line).map_err(|m| fail(m.into()))?;
            if !header_seen {
                let header: Vec<&str> = fields.iter().map(|f| f.trim()).collect();
                if header != ["ods_code", "setting", "name"] {
                    return Err(fail("the header must be `ods_code,setting,name`".into()));
                }
                header_seen = true;
                continue;
            }
            let [code, setting, name] = fields.as_slice() else {
                return Err(fail(format!(
                    "expected 3 fields (ods_code,setting,name), found {}",
                    fields.len()
                )));
            };
            let code = code.trim().to_ascii_uppercase();
            if code.is_empty() || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(fail(format!("'{code}' is not an ODS code")));
            }
            let setting_text = setting.trim();
            let setting = SETTINGS
                .contains(&setting_text)
                .then(|| CareSetting::parse(setting_text))
                .flatten()
                .ok_or_else(|| {
                    fail(format!(
                        "setting '{setting_text}' is not one of {}",
                        SETTINGS.join(", ")
                    ))
                })?;
            let sender = Sender {
                ods_code: code.clone(),
                setting,
                name: name.trim().to_owned(),
            };
            if by_code.insert(code.clone(), sender).is_some() {
                return Err(fail(format!("ODS code {code} is listed twice")));
            }
        }
        if !header_seen {
            return Err(SendersError {
                line: 1,
                message: "the file is empty (expected the header `ods_code,setting,name`)".into(),
            });
        }
        Ok(Senders { by_code })
    }

    /// A list of senders made in code (tests, `smr import --sender`).
    pub fn from_list(list: impl IntoIterator<Item = Sender>) -> Senders {
        Senders {
            by_code: list
                .into_iter()
                .map(|s| (s.ods_code.to_ascii_uppercase(), s))
                .collect(),
        }
    }

    /// The sender with this ODS code (case-insensitive).
    pub fn get(&self, code: &str) -> Option<&Sender> {
        self.by_code.get(&code.trim().to_ascii_uppercase())
    }

    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }
}

/// One CSV line into fields (RFC 4180 quoting, no line breaks inside quotes).
fn split_csv(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed");
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_senders() {
        let s = Senders::parse(
            "ods_code,setting,name\n\
             RTH,hospital,Oxford University Hospitals NHS Foundation Trust\n\
             # a comment\n\
             \n\
             FA123,pharmacy,\"Boots, High Street\"\r\n\
             a81001,gp,The Surgery\n",
        )
        .expect("parses");
        assert_eq!(s.len(), 3);
        assert_eq!(s.get("rth").map(|s| s.setting), Some(CareSetting::Hospital));
        assert_eq!(
            s.get("FA123").map(|s| s.name.as_str()),
            Some("Boots, High Street")
        );
        assert_eq!(
            s.get("A81001").map(|s| s.setting),
            Some(CareSetting::GpPractice)
        );
        assert!(s.get("XYZ").is_none());
    }

    #[test]
    fn refuses_wrong_files_with_the_line() {
        for (text, line) in [
            ("", 1),
            ("code,setting,name\n", 1),
            ("ods_code,setting,name\nRTH,ward,X\n", 2),
            ("ods_code,setting,name\nRTH,hospital\n", 2),
            ("ods_code,setting,name\nRTH,hospital,A\nRTH,gp,B\n", 3),
            ("ods_code,setting,name\nR TH,hospital,A\n", 2),
            ("ods_code,setting,name\nRTH,hospital,\"A\n", 2),
            ("ods_code,setting,name\nRTH,unspecified,A\n", 2),
        ] {
            let e = Senders::parse(text).expect_err(text);
            assert_eq!(e.line, line, "{text}: {e}");
        }
    }
}
