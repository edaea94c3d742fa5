//! Structured dosage from the dose text a GP writes: `doseAndRate.doseQuantity` (or
//! `doseRange`), `timing.repeat` frequency and period, `asNeededBoolean` and the route, as GP
//! Connect's medication records carry beside the text. The text stays the instruction; the
//! structure is what a merge compares (a dose changed in hospital shows as a different
//! quantity or strength).

use serde_json::{Value, json};

use crate::SNOMED_SYSTEM;
use crate::clinical::Drug;

/// SNOMED CT route concepts (qualifier values used by dm+d's route mapping).
const ORAL: (&str, &str) = ("26643006", "Oral route");
const INHALED: (&str, &str) = ("447694001", "Respiratory tract route");

/// Every SNOMED CT code this module writes, for the Verhoeff test.
#[cfg(test)]
pub const CODES: [&str; 2] = [ORAL.0, INHALED.0];

/// The route of a product, by its form.
pub fn route(drug: Drug) -> Value {
    let (code, display) = if drug.name.contains("inhaler") {
        INHALED
    } else {
        ORAL
    };
    json!({"coding": [{"system": SNOMED_SYSTEM, "code": code, "display": display}], "text": display})
}

/// The unit a dose of `drug` is counted in.
fn unit(drug: Drug) -> &'static str {
    let name = drug.name;
    if name.contains("inhaler") {
        "puff"
    } else if name.contains("sachets") {
        "sachet"
    } else if name.contains("oral suspension") {
        "ml"
    } else if name.contains("capsules") {
        "capsule"
    } else {
        "tablet"
    }
}

/// Dose quantity (low, high) as written at the start of the text ("One", "One or two", "5 ml").
fn amount(text: &str) -> Option<(u32, u32)> {
    let word = |w: &str| match w.to_ascii_lowercase().as_str() {
        "one" => Some(1),
        "two" => Some(2),
        "three" => Some(3),
        "four" => Some(4),
        "eight" => Some(8),
        n => n.parse().ok(),
    };
    let mut words = text.split_whitespace();
    let first = word(words.next()?)?;
    if words.next() == Some("or") {
        let second = word(words.next()?)?;
        return Some((first, second));
    }
    Some((first, first))
}

/// Times per period and the period's UCUM unit.
fn timing(text: &str) -> Option<(u32, Option<u32>, &'static str)> {
    let t = text.to_ascii_lowercase();
    Some(if t.contains("once a week") {
        (1, None, "wk")
    } else if t.contains("once or twice a day") {
        (1, Some(2), "d")
    } else if t.contains("four times a day") {
        (4, None, "d")
    } else if t.contains("three times a day") {
        (3, None, "d")
    } else if t.contains("twice a day") {
        (2, None, "d")
    } else if t.contains("once a day") || t.contains("each morning") || t.contains("at night") {
        (1, None, "d")
    } else {
        return None;
    })
}

/// A Dosage for `text` of `drug`: the text, and when the text is regular enough to read
/// ("as directed" is not), the structured dose, timing and route.
pub fn dosage(drug: Drug, text: &str) -> Value {
    let mut d = json!({"text": text});
    let (Some((low, high)), Some((frequency, frequency_max, period_unit))) =
        (amount(text), timing(text))
    else {
        return d;
    };
    let unit = unit(drug);
    let quantity = |n: u32| json!({"value": n, "unit": unit});
    let mut repeat = json!({"frequency": frequency, "period": 1, "periodUnit": period_unit});
    if let Some(max) = frequency_max {
        repeat["frequencyMax"] = json!(max);
    }
    d["timing"] = json!({"repeat": repeat});
    if text.contains("when required") {
        d["asNeededBoolean"] = json!(true);
    }
    d["route"] = route(drug);
    d["doseAndRate"] = if low == high {
        json!([{"doseQuantity": quantity(low)}])
    } else {
        json!([{"doseRange": {"low": quantity(low), "high": quantity(high)}}])
    };
    d
}

/// The dose quantity of a structured Dosage, for administrations (`dosage.dose`): the lower
/// end of a range.
pub fn dose(dosage: &Value) -> Option<Value> {
    let rate = &dosage["doseAndRate"][0];
    rate.get("doseQuantity")
        .or_else(|| rate.pointer("/doseRange/low"))
        .cloned()
}

/// `text` with its dose doubled ("One tablet …" → "Two tablets …"), for a dose changed in
/// hospital where the subset has no other strength; `None` for anything else.
pub fn doubled(text: &'static str) -> Option<String> {
    for (from, to) in [
        ("One tablet ", "Two tablets "),
        ("One capsule ", "Two capsules "),
    ] {
        if let Some(rest) = text.strip_prefix(from)
            && !text.contains("when required")
        {
            return Some(format!("{to}{rest}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clinical::*;

    #[test]
    fn reads_the_doses_gps_write() {
        let d = dosage(METFORMIN_500MG, "One tablet twice a day with meals");
        assert_eq!(d["doseAndRate"][0]["doseQuantity"]["value"], 1);
        assert_eq!(d["timing"]["repeat"]["frequency"], 2);
        assert_eq!(d["route"]["coding"][0]["code"], "26643006");
        let d = dosage(
            CO_CODAMOL_30_500,
            "One or two tablets up to four times a day when required",
        );
        assert_eq!(d["doseAndRate"][0]["doseRange"]["high"]["value"], 2);
        assert_eq!(d["asNeededBoolean"], true);
        let d = dosage(SALBUTAMOL_INHALER, "Two puffs twice a day");
        assert_eq!(d["doseAndRate"][0]["doseQuantity"]["unit"], "puff");
        let d = dosage(ALENDRONIC_ACID_70MG, "One tablet once a week");
        assert_eq!(d["timing"]["repeat"]["periodUnit"], "wk");
        let d = dosage(WARFARIN_1MG, "Take as directed by the anticoagulant clinic");
        assert!(d.get("doseAndRate").is_none());
        assert_eq!(
            doubled("One tablet each morning").as_deref(),
            Some("Two tablets each morning")
        );
        assert_eq!(doubled("One tablet when required"), None);
    }
}
