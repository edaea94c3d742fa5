//! A medicine's daily dose of one ingredient, in mg, when the dictionary's strength and the
//! dosage say enough: strength per unit × dose × times a day. `None` whenever any part is
//! missing or the units do not combine; the rule then states its limit as a condition rather
//! than guessing.

use smr_dmd::MedicineInfo;

use crate::classes::name_matches;
use crate::context::DoseFacts;

/// Units of presentation a dose may be given in (one tablet is one unit of the strength).
/// `428673006` is SNOMED CT "Tablet (unit of product usage)", the code UK dosage quantities
/// carry (as in NHS EPS examples).
const UNIT_DOSES: &[&str] = &[
    "tablet",
    "tablets",
    "{tablet}",
    "tab",
    "capsule",
    "capsules",
    "{capsule}",
    "cap",
    "sachet",
    "sachets",
    "dose",
    "doses",
    "428673006",
];

/// `amount unit` → mg.
fn mass_mg(amount: f64, unit: &str) -> Option<f64> {
    let factor = match unit.trim().to_lowercase().as_str() {
        "mg" | "milligram" | "milligrams" => 1.0,
        "g" | "gram" | "grams" => 1000.0,
        "microgram" | "micrograms" | "mcg" | "ug" | "µg" => 0.001,
        _ => return None,
    };
    Some(amount * factor)
}

/// A dm+d strength (`"40 mg"`, `"500 micrograms"`, `"20 mg/5 ml"`, `"1 mg/ml"`) as mg per
/// unit of presentation, or mg per ml.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Strength {
    PerUnit(f64),
    PerMl(f64),
}

fn strength(text: &str) -> Option<Strength> {
    let (numerator, denominator) = match text.split_once('/') {
        Some((n, d)) => (n.trim(), Some(d.trim())),
        None => (text.trim(), None),
    };
    let (amount, unit) = numerator.split_once(' ')?;
    let mg = mass_mg(amount.trim().parse().ok()?, unit)?;
    match denominator {
        None => Some(Strength::PerUnit(mg)),
        Some(d) => {
            let (volume, unit) = match d.split_once(' ') {
                Some((v, u)) => (v.trim().parse::<f64>().ok()?, u.trim()),
                None => (1.0, d),
            };
            let ml = match unit.to_lowercase().as_str() {
                "ml" => volume,
                "litre" | "l" => volume * 1000.0,
                _ => return None,
            };
            (ml > 0.0).then_some(Strength::PerMl(mg / ml))
        }
    }
}

/// mg a day of `ingredient` (a listed name; salts match) in a medicine given as `dose`.
pub fn daily_mg(info: &MedicineInfo, dose: &DoseFacts, ingredient: &str) -> Option<f64> {
    let per_day = dose.per_day?;
    let unit = dose.unit.trim().to_lowercase();
    let one = info
        .ingredients
        .iter()
        .find(|i| name_matches(&i.name, ingredient))?;
    let per_dose = if let Some(mg) = mass_mg(dose.value, &unit) {
        // A dose in mg is the ingredient's own only when it is the only active ingredient.
        (info.ingredients.len() == 1).then_some(mg)?
    } else {
        match (strength(one.strength.as_deref()?)?, unit.as_str()) {
            (Strength::PerUnit(mg), u) if UNIT_DOSES.contains(&u) => mg * dose.value,
            (Strength::PerMl(mg), "ml" | "millilitre" | "millilitres") => mg * dose.value,
            _ => return None,
        }
    };
    Some(per_dose * per_day)
}

#[cfg(test)]
mod tests {
    use smr_dmd::{ConceptRef, IngredientStrength, Level};

    use super::*;

    fn info(strength: &str) -> MedicineInfo {
        MedicineInfo {
            level: Level::Vmp,
            matched: ConceptRef {
                code: "1".into(),
                name: "Simvastatin".into(),
            },
            vmp: None,
            vtm: None,
            ingredients: vec![IngredientStrength {
                name: "simvastatin".into(),
                code: None,
                strength: Some(strength.into()),
            }],
            form: None,
            route: None,
            bnf: None,
            controlled_drug: None,
            source: "test".into(),
        }
    }

    fn dose(value: f64, unit: &str, per_day: Option<f64>) -> DoseFacts {
        DoseFacts {
            value,
            unit: unit.into(),
            per_day,
        }
    }

    #[test]
    fn tablets_times_strength_times_frequency() {
        let i = info("40 mg");
        assert_eq!(
            daily_mg(&i, &dose(1.0, "tablet", Some(1.0)), "simvastatin"),
            Some(40.0)
        );
        assert_eq!(
            daily_mg(&i, &dose(1.0, "428673006", Some(2.0)), "simvastatin"),
            Some(80.0)
        );
        assert_eq!(
            daily_mg(&i, &dose(20.0, "mg", Some(1.0)), "simvastatin"),
            Some(20.0)
        );
        assert_eq!(
            daily_mg(&i, &dose(1.0, "tablet", None), "simvastatin"),
            None
        );
        assert_eq!(
            daily_mg(&i, &dose(1.0, "puff", Some(1.0)), "simvastatin"),
            None
        );
    }

    #[test]
    fn liquids_and_micrograms() {
        let i = info("20 mg/5 ml");
        assert_eq!(
            daily_mg(&i, &dose(10.0, "ml", Some(1.0)), "simvastatin"),
            Some(40.0)
        );
        let i = info("500 micrograms");
        assert_eq!(
            daily_mg(&i, &dose(2.0, "tablet", Some(1.0)), "simvastatin"),
            Some(1.0)
        );
    }
}
