//! A dictionary as flat rows for storage, and back: one row per concept (its JSON body) and
//! one per previous code (no body, pointing at the current code), so a store can find an old
//! code with one indexed read and rebuild the dictionary from the bodies alone.

use serde::{Deserialize, Serialize};

use crate::dictionary::{Concept, Dictionary};

/// One stored row. Mirrors the store's `dmd_concept` table without depending on the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConceptRow {
    pub code: String,
    pub level: String,
    pub name: String,
    /// The concept as JSON; `None` for a previous code.
    pub body: Option<String>,
    pub current_code: String,
}

/// A stored row could not be read back (a store written by a different version, or damaged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored dm+d concept {code} is not readable: {message}")]
pub struct RowError {
    pub code: String,
    pub message: String,
}

impl Dictionary {
    /// Every concept and previous code as rows, sorted by code (so inserts are repeatable).
    pub fn to_rows(&self) -> Vec<ConceptRow> {
        let mut rows: Vec<ConceptRow> = self
            .concepts()
            .map(|c| ConceptRow {
                code: c.code.clone(),
                level: c.level.as_str().to_owned(),
                name: c.name.clone(),
                // Serialising a plain struct of strings cannot fail.
                body: serde_json::to_string(c).ok(),
                current_code: c.code.clone(),
            })
            .collect();
        for (previous, current) in self.previous_codes() {
            if let Some(c) = self.lookup(current) {
                rows.push(ConceptRow {
                    code: previous.to_owned(),
                    level: c.level.as_str().to_owned(),
                    name: c.name.clone(),
                    body: None,
                    current_code: current.to_owned(),
                });
            }
        }
        rows.sort_by(|a, b| a.code.cmp(&b.code));
        rows
    }

    /// Rebuilds a dictionary from stored rows (previous-code rows are implied by the bodies).
    pub fn from_rows(
        release: &str,
        source: &str,
        rows: impl IntoIterator<Item = ConceptRow>,
    ) -> Result<Dictionary, RowError> {
        let mut concepts = Vec::new();
        for row in rows {
            let Some(body) = row.body else { continue };
            let concept: Concept = serde_json::from_str(&body).map_err(|e| RowError {
                code: row.code.clone(),
                message: e.to_string(),
            })?;
            concepts.push(concept);
        }
        Ok(Dictionary::from_concepts(release, source, concepts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::medicine::Level;

    #[test]
    fn rows_round_trip_with_previous_codes() {
        let mut vmp = Concept::new("20", Level::Vmp, "Thing 5mg tablets");
        vmp.previous = vec!["21".into()];
        vmp.parent = Some("10".into());
        let vtm = Concept::new("10", Level::Vtm, "Thing");
        let d = Dictionary::from_concepts("7", "dm+d release 7", [vmp, vtm]);
        let rows = d.to_rows();
        assert_eq!(rows.len(), 3);
        let prev = rows.iter().find(|r| r.code == "21").expect("previous row");
        assert_eq!(
            (prev.body.as_deref(), prev.current_code.as_str()),
            (None, "20")
        );
        let back = Dictionary::from_rows("7", "dm+d release 7", rows).expect("round trip");
        assert_eq!(back.lookup("21"), d.lookup("21"));
        assert_eq!(back.counts(), d.counts());
        let bad = ConceptRow {
            code: "9".into(),
            level: "vtm".into(),
            name: "x".into(),
            body: Some("{".into()),
            current_code: "9".into(),
        };
        assert!(Dictionary::from_rows("7", "s", [bad]).is_err());
    }
}
