//! The dictionary SMR answers from: an imported dm+d release (when one has been imported)
//! over the built-in starter dictionary, over the PGx subset as a last resort.

use std::sync::Arc;

use crate::dictionary::Dictionary;
use crate::medicine::{MedicineInfo, MedicineLookup, SubsetLookup};
use crate::starter::starter;

/// An imported release over the starter dictionary over the PGx subset.
#[derive(Debug, Clone)]
pub struct Layered {
    pub imported: Option<Arc<Dictionary>>,
    pub starter: &'static Dictionary,
}

impl Layered {
    /// The built-in dictionaries under `imported`, if any.
    pub fn new(imported: Option<Arc<Dictionary>>) -> Layered {
        Layered {
            imported,
            starter: starter(),
        }
    }

    fn layers(&self) -> impl Iterator<Item = &Dictionary> {
        self.imported.as_deref().into_iter().chain([self.starter])
    }
}

impl Default for Layered {
    fn default() -> Layered {
        Layered::new(None)
    }
}

impl MedicineLookup for Layered {
    /// Codes first, in every layer (a code is more specific than any name), then the text in
    /// every layer; the PGx subset last (it knows a few product codes and many names).
    fn resolve(
        &self,
        codings: &[(Option<&str>, &str)],
        text: Option<&str>,
    ) -> Option<MedicineInfo> {
        if !codings.is_empty()
            && let Some(info) = self.layers().find_map(|d| d.resolve(codings, None))
        {
            return Some(info);
        }
        if text.is_some()
            && let Some(info) = self.layers().find_map(|d| d.resolve(&[], text))
        {
            return Some(info);
        }
        SubsetLookup.resolve(codings, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dictionary::Concept;
    use crate::medicine::Level;
    use crate::starter::{STARTER_SOURCE, check_starter};

    const DMD: Option<&str> = Some("https://dmd.nhs.uk");

    #[test]
    fn the_starter_file_loads() {
        assert_eq!(check_starter(), Ok(()));
        assert_eq!(starter().source(), STARTER_SOURCE);
    }

    #[test]
    fn an_imported_release_takes_precedence_over_the_starter() {
        // Simvastatin 40mg tablets (320000009) and its VTM are in the PGx subset too.
        let plain = Layered::default().resolve(&[(DMD, "320000009")], None);
        let plain = plain.expect("known to the built-in dictionaries");
        assert_eq!(plain.vtm.map(|v| v.code), Some("96304005".to_owned()));

        let mut vmp = Concept::new("320000009", Level::Vmp, "Simvastatin 40mg tablets");
        vmp.form = Some("Imported form".into());
        let imported = Dictionary::from_concepts("9", "dm+d release 9", [vmp]);
        let layered = Layered::new(Some(Arc::new(imported)));
        let info = layered.resolve(&[(DMD, "320000009")], None).expect("known");
        assert_eq!(info.source, "dm+d release 9");
        assert_eq!(info.form.as_deref(), Some("Imported form"));
        // A code the release lacks still resolves below it.
        let vtm = layered
            .resolve(&[(DMD, "108979001")], None)
            .expect("clopidogrel");
        assert_eq!(vtm.level, Level::Vtm);
    }

    #[test]
    fn names_fall_through_to_the_pgx_subset() {
        let layered = Layered::default();
        let by_vtm_name = layered
            .resolve(&[], Some("Simvastatin 20 MG Oral Tablet"))
            .expect("a VTM name in the text");
        assert_eq!(by_vtm_name.matched.code, "96304005");
        // A brand only the PGx subset knows.
        let by_brand = layered.resolve(&[], Some("Plavix 75mg")).expect("subset");
        assert_eq!(by_brand.ingredients[0].name, "clopidogrel");
        assert!(layered.resolve(&[], Some("no such medicine")).is_none());
    }
}
