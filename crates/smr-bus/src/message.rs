//! One change on the bus: its subject and its identifiers-only JSON body.
//!
//! ```json
//! {"resourceType":"MedicationRequest","id":"0193…","versionId":2,"patient":"0192…",
//!  "action":"update","changedAt":1765065600000000,"tx":812,"seq":4410}
//! ```
//!
//! `patient` is the owning patient's id, or `Type/id` for a resource outside any patient's
//! record. Nothing of the resource's content is carried: a consumer that needs it reads it
//! from SMR with its own token.

use serde::{Deserialize, Serialize};
use smr_store::{Change, FeedPosition};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    resource_type: String,
    id: String,
    version_id: i64,
    patient: String,
    action: String,
    /// Microseconds since the epoch.
    changed_at: i64,
    tx: i64,
    seq: i64,
}

/// The JSON body of a change.
pub fn encode(change: &Change) -> Vec<u8> {
    let wire = Wire {
        resource_type: change.res_type.clone(),
        id: change.id.clone(),
        version_id: change.version,
        patient: change.patient_key.clone(),
        action: change.action.clone(),
        changed_at: change.changed_at,
        tx: change.position.tx,
        seq: change.position.seq,
    };
    serde_json::to_vec(&wire).unwrap_or_default()
}

/// A change read back; `None` when the body is not one.
pub fn decode(body: &[u8]) -> Option<Change> {
    let wire: Wire = serde_json::from_slice(body).ok()?;
    Some(Change {
        position: FeedPosition {
            tx: wire.tx,
            seq: wire.seq,
        },
        res_type: wire.resource_type,
        id: wire.id,
        version: wire.version_id,
        patient_key: wire.patient,
        action: wire.action,
        changed_at: wire.changed_at,
    })
}

/// `{prefix}.{Type}.{patient}`. A NATS subject token may not contain `.`, `*`, `>` or white
/// space, so those (and `%`) are percent-encoded in the patient key; a subscriber can still
/// filter on one patient (`smr.changes.*.{patient}`) or one type (`smr.changes.Type.>`).
pub fn subject(prefix: &str, change: &Change) -> String {
    format!(
        "{prefix}.{}.{}",
        token(&change.res_type),
        token(&change.patient_key)
    )
}

fn token(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '.' | '*' | '>' | '%' => out.push_str(&format!("%{:02X}", c as u32)),
            c if c.is_whitespace() || c.is_control() => {
                out.push_str(&format!("%{:02X}", c as u32 & 0xFF))
            }
            c => out.push(c),
        }
    }
    if out.is_empty() {
        out.push('-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(patient: &str) -> Change {
        Change {
            position: FeedPosition { tx: 7, seq: 42 },
            res_type: "MedicationRequest".into(),
            id: "abc".into(),
            version: 3,
            patient_key: patient.into(),
            action: "update".into(),
            changed_at: 1_765_065_600_000_000,
        }
    }

    #[test]
    fn a_change_round_trips_and_carries_identifiers_only() {
        let c = change("p1");
        let body = encode(&c);
        assert_eq!(decode(&body), Some(c));
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "resourceType",
                "id",
                "versionId",
                "patient",
                "action",
                "changedAt",
                "tx",
                "seq"
            ]
        );
        assert_eq!(decode(b"not json"), None);
    }

    #[test]
    fn subjects_are_one_token_per_part() {
        assert_eq!(
            subject("smr.changes", &change("p1")),
            "smr.changes.MedicationRequest.p1"
        );
        assert_eq!(
            subject("smr.changes", &change("a.b*c>d e%")),
            "smr.changes.MedicationRequest.a%2Eb%2Ac%3Ed%20e%25"
        );
        assert_eq!(
            subject("smr.changes", &change("Organization/x")),
            "smr.changes.MedicationRequest.Organization/x"
        );
    }
}
