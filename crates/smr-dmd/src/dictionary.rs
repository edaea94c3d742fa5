//! A dm+d dictionary: concepts of all five levels with their links, looked up by code (current
//! or previous), by name, and up the chain to VMP and VTM. Built from an NHSBSA release
//! (`release`), from the built-in starter file (`starter`), or from rows a store kept.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::medicine::{ConceptRef, IngredientStrength, Level, MedicineInfo, MedicineLookup};
use crate::{DMD_SYSTEMS, tokens};

/// One dm+d concept at any level. Fields that belong to VMPs (ingredients, form, route,
/// controlled drug) are empty at other levels: the chain up to the VMP supplies them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concept {
    pub code: String,
    pub level: Level,
    pub name: String,
    /// dm+d's INVALID flag: the concept should no longer be used, but old records carry it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invalid: bool,
    /// The concept one level up: AMP→VMP, VMP→VTM, VMPP→VMP, AMPP→AMP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// An AMPP's VMPP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmpp: Option<String>,
    /// A VMP's ingredients with strengths, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingredients: Vec<IngredientStrength>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bnf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controlled_drug: Option<String>,
    /// Codes this concept had before (VTMIDPREV, VPIDPREV); they resolve to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<String>,
}

impl Concept {
    /// A bare concept: code, level and name, no links.
    pub fn new(code: impl Into<String>, level: Level, name: impl Into<String>) -> Concept {
        Concept {
            code: code.into(),
            level,
            name: name.into(),
            invalid: false,
            parent: None,
            vmpp: None,
            ingredients: Vec::new(),
            form: None,
            route: None,
            bnf: None,
            controlled_drug: None,
            previous: Vec::new(),
        }
    }

    pub fn as_ref(&self) -> ConceptRef {
        ConceptRef {
            code: self.code.clone(),
            name: self.name.clone(),
        }
    }
}

/// How many concepts of each level a dictionary holds, and how many previous codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub vtm: usize,
    pub vmp: usize,
    pub amp: usize,
    pub vmpp: usize,
    pub ampp: usize,
    pub previous: usize,
}

impl Counts {
    pub fn concepts(&self) -> usize {
        self.vtm + self.vmp + self.amp + self.vmpp + self.ampp
    }
}

/// A phrase of VTM-name words and the VTM it names, for finding an ingredient in free text.
#[derive(Debug, Clone)]
struct Phrase {
    words: Vec<String>,
    code: String,
}

/// The dictionary. Immutable once built; cheap lookups by hash.
#[derive(Debug, Clone)]
pub struct Dictionary {
    release: String,
    source: String,
    concepts: HashMap<String, Concept>,
    /// Previous code → current code.
    current: HashMap<String, String>,
    /// Lower-case name → codes (valid concepts first).
    names: HashMap<String, Vec<String>>,
    /// First word → phrases of valid VTM names starting with it.
    phrases: HashMap<String, Vec<Phrase>>,
}

impl Dictionary {
    /// Builds the indexes over `concepts`. `release` identifies the data (e.g. `3010419`),
    /// `source` says which dictionary answered (e.g. `dm+d release 3010419`). A code given
    /// twice keeps its last concept; a previous code that is also some concept's current code
    /// names that concept.
    pub fn from_concepts(
        release: impl Into<String>,
        source: impl Into<String>,
        concepts: impl IntoIterator<Item = Concept>,
    ) -> Dictionary {
        let concepts: HashMap<String, Concept> =
            concepts.into_iter().map(|c| (c.code.clone(), c)).collect();
        let mut current = HashMap::new();
        let mut names: HashMap<String, Vec<String>> = HashMap::new();
        let mut phrases: HashMap<String, Vec<Phrase>> = HashMap::new();
        for concept in concepts.values() {
            for previous in &concept.previous {
                if !concepts.contains_key(previous) {
                    current.insert(previous.clone(), concept.code.clone());
                }
            }
            names
                .entry(concept.name.trim().to_lowercase())
                .or_default()
                .push(concept.code.clone());
            if concept.level == Level::Vtm && !concept.invalid {
                let words = tokens(&concept.name);
                if let Some(first) = words.first() {
                    phrases.entry(first.clone()).or_default().push(Phrase {
                        words: words.clone(),
                        code: concept.code.clone(),
                    });
                }
            }
        }
        // Deterministic answers whatever the hash order: valid before invalid, then by level
        // (VTM first) and code.
        for codes in names.values_mut() {
            codes.sort_by_key(|code| {
                let c = &concepts[code];
                (c.invalid, c.level, code.clone())
            });
        }
        for list in phrases.values_mut() {
            list.sort_by(|a, b| {
                b.words
                    .len()
                    .cmp(&a.words.len())
                    .then_with(|| a.code.cmp(&b.code))
            });
        }
        Dictionary {
            release: release.into(),
            source: source.into(),
            concepts,
            current,
            names,
            phrases,
        }
    }

    /// The release identifier (e.g. `3010419`).
    pub fn release(&self) -> &str {
        &self.release
    }

    /// Which dictionary this is, as `MedicineInfo::source` reports it.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn counts(&self) -> Counts {
        let mut counts = Counts {
            previous: self.current.len(),
            ..Counts::default()
        };
        for c in self.concepts.values() {
            match c.level {
                Level::Vtm => counts.vtm += 1,
                Level::Vmp => counts.vmp += 1,
                Level::Amp => counts.amp += 1,
                Level::Vmpp => counts.vmpp += 1,
                Level::Ampp => counts.ampp += 1,
            }
        }
        counts
    }

    /// Every concept, in no particular order.
    pub fn concepts(&self) -> impl Iterator<Item = &Concept> {
        self.concepts.values()
    }

    /// Every previous code and the current code it resolves to.
    pub fn previous_codes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.current.iter().map(|(p, c)| (p.as_str(), c.as_str()))
    }

    /// The concept with `code` at any level, by its current or a previous code.
    pub fn lookup(&self, code: &str) -> Option<&Concept> {
        let code = code.trim();
        self.concepts.get(code).or_else(|| {
            self.current
                .get(code)
                .and_then(|current| self.concepts.get(current))
        })
    }

    /// Concepts whose name is `name` (case-insensitive, surrounding space ignored); valid
    /// before invalid, VTM before VMP before AMP.
    pub fn by_name(&self, name: &str) -> Vec<&Concept> {
        self.names
            .get(&name.trim().to_lowercase())
            .map(|codes| codes.iter().filter_map(|c| self.concepts.get(c)).collect())
            .unwrap_or_default()
    }

    /// The VMP a concept is or belongs to (`None` for a VTM, or a broken chain).
    pub fn up_to_vmp(&self, code: &str) -> Option<&Concept> {
        let concept = self.lookup(code)?;
        match concept.level {
            Level::Vtm => None,
            Level::Vmp => Some(concept),
            Level::Amp | Level::Vmpp => self.parent_at(concept, Level::Vmp),
            Level::Ampp => {
                let via_amp = self
                    .parent_at(concept, Level::Amp)
                    .and_then(|amp| self.parent_at(amp, Level::Vmp));
                via_amp.or_else(|| {
                    let vmpp = self.lookup(concept.vmpp.as_deref()?)?;
                    self.parent_at(vmpp, Level::Vmp)
                })
            }
        }
    }

    /// The VTM a concept is or belongs to (`None` when dm+d gives its VMP none).
    pub fn up_to_vtm(&self, code: &str) -> Option<&Concept> {
        let concept = self.lookup(code)?;
        if concept.level == Level::Vtm {
            return Some(concept);
        }
        let vmp = self.up_to_vmp(code)?;
        self.parent_at(vmp, Level::Vtm)
    }

    fn parent_at(&self, concept: &Concept, level: Level) -> Option<&Concept> {
        self.lookup(concept.parent.as_deref()?)
            .filter(|p| p.level == level)
    }

    /// The valid VTM whose name occurs in `text` as whole words, the longest such name
    /// winning (then the earliest): "Simvastatin 20 MG Oral Tablet" → Simvastatin.
    pub fn vtm_in_text(&self, text: &str) -> Option<&Concept> {
        let words = tokens(text);
        let mut best: Option<&Phrase> = None;
        for start in 0..words.len() {
            let Some(candidates) = self.phrases.get(&words[start]) else {
                continue;
            };
            // Longest first, so the first that fits is this position's best.
            let fits = candidates
                .iter()
                .find(|p| words.get(start..start + p.words.len()) == Some(p.words.as_slice()));
            if let Some(phrase) = fits
                && best.is_none_or(|b| phrase.words.len() > b.words.len())
            {
                best = Some(phrase);
            }
        }
        best.and_then(|p| self.concepts.get(&p.code))
    }

    /// What the dictionary says about the concept with `code` (current or previous).
    pub fn info(&self, code: &str) -> Option<MedicineInfo> {
        let concept = self.lookup(code)?;
        let vmp = self.up_to_vmp(&concept.code);
        let vtm = self.up_to_vtm(&concept.code);
        let ingredients = match vmp.filter(|v| !v.ingredients.is_empty()) {
            Some(vmp) => vmp.ingredients.clone(),
            None => {
                // No ingredient rows (a VTM, or a VMP dm+d lists none for, e.g. a feed): the
                // VTM's name parts, else the concept's own name, so the medicine still has a
                // stable identity to merge on.
                let name = vtm.map_or(concept.name.as_str(), |v| v.name.as_str());
                let mut parts: Vec<IngredientStrength> = name
                    .split(" + ")
                    .map(|n| IngredientStrength {
                        name: n.trim().to_lowercase(),
                        code: None,
                        strength: None,
                    })
                    .filter(|i| !i.name.is_empty())
                    .collect();
                parts.sort();
                parts
            }
        };
        // Product-level facts from the concept itself, else its VMP.
        let from_vmp = |f: fn(&Concept) -> &Option<String>| {
            f(concept)
                .clone()
                .or_else(|| vmp.and_then(|v| f(v).clone()))
        };
        let bnf = from_vmp(|c| &c.bnf).or_else(|| vtm.and_then(|v| v.bnf.clone()));
        Some(MedicineInfo {
            level: concept.level,
            matched: concept.as_ref(),
            vmp: vmp.map(Concept::as_ref),
            vtm: vtm.map(Concept::as_ref),
            ingredients,
            form: from_vmp(|c| &c.form),
            route: from_vmp(|c| &c.route),
            bnf,
            controlled_drug: from_vmp(|c| &c.controlled_drug),
            source: self.source.clone(),
        })
    }
}

/// Whether `system` is one whose codes are dm+d (SNOMED CT) identifiers.
pub(crate) fn is_dmd_system(system: Option<&str>) -> bool {
    system.is_some_and(|s| DMD_SYSTEMS.contains(&s.trim().trim_end_matches('/')))
}

impl MedicineLookup for Dictionary {
    /// The first dm+d/SNOMED CT coding the dictionary knows (previous codes included); else
    /// the text as a concept's exact name; else a VTM named in the text. Codes of other
    /// systems (RxNorm, …) are never guessed at: alone they resolve nothing.
    fn resolve(
        &self,
        codings: &[(Option<&str>, &str)],
        text: Option<&str>,
    ) -> Option<MedicineInfo> {
        for (system, code) in codings {
            if is_dmd_system(*system)
                && let Some(info) = self.info(code)
            {
                return Some(info);
            }
        }
        let text = text.map(str::trim).filter(|t| !t.is_empty())?;
        if let Some(concept) = self.by_name(text).first() {
            return self.info(&concept.code);
        }
        let vtm = self.vtm_in_text(text)?;
        self.info(&vtm.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Dictionary {
        let vtm = Concept::new("96304005", Level::Vtm, "Simvastatin");
        let combo = Concept::new("900", Level::Vtm, "Ezetimibe + Simvastatin");
        let mut old = Concept::new("901", Level::Vtm, "Simvastatin old");
        old.invalid = true;
        let mut vmp = Concept::new("320000009", Level::Vmp, "Simvastatin 40mg tablets");
        vmp.parent = Some("96304005".into());
        vmp.previous = vec!["111".into()];
        vmp.form = Some("Tablet".into());
        vmp.route = Some("Oral".into());
        vmp.ingredients = vec![IngredientStrength {
            name: "simvastatin".into(),
            code: Some("387584000".into()),
            strength: Some("40 mg".into()),
        }];
        let mut amp = Concept::new("500", Level::Amp, "Zocor 40mg tablets");
        amp.parent = Some("320000009".into());
        let mut vmpp = Concept::new("600", Level::Vmpp, "Simvastatin 40mg tablets 28 tablet");
        vmpp.parent = Some("320000009".into());
        let mut ampp = Concept::new("700", Level::Ampp, "Zocor 40mg tablets 28 tablet");
        ampp.parent = Some("500".into());
        ampp.vmpp = Some("600".into());
        Dictionary::from_concepts("1", "test", [vtm, combo, old, vmp, amp, vmpp, ampp])
    }

    #[test]
    fn every_level_climbs_to_vmp_and_vtm() {
        let d = sample();
        for code in ["320000009", "500", "600", "700", "111"] {
            assert_eq!(
                d.up_to_vmp(code).map(|c| c.code.as_str()),
                Some("320000009")
            );
            assert_eq!(d.up_to_vtm(code).map(|c| c.code.as_str()), Some("96304005"));
        }
        assert!(d.up_to_vmp("96304005").is_none());
        assert_eq!(d.lookup("111").map(|c| c.code.as_str()), Some("320000009"));
        assert_eq!(d.counts().previous, 1);
    }

    #[test]
    fn an_ampp_inherits_its_vmps_facts() {
        let info = sample().info("700").expect("known");
        assert_eq!(info.level, Level::Ampp);
        assert_eq!(info.form.as_deref(), Some("Tablet"));
        assert_eq!(info.ingredients[0].strength.as_deref(), Some("40 mg"));
        assert_eq!(info.moiety_key(), "vtm:96304005");
    }

    #[test]
    fn names_match_exactly_or_as_the_longest_vtm_in_text() {
        let d = sample();
        assert_eq!(d.by_name(" zocor 40MG tablets ")[0].code, "500");
        assert_eq!(
            d.vtm_in_text("Simvastatin 20 MG Oral Tablet")
                .map(|c| c.code.as_str()),
            Some("96304005")
        );
        assert_eq!(
            d.vtm_in_text("ezetimibe + simvastatin 10/20")
                .map(|c| c.code.as_str()),
            Some("900")
        );
        assert!(d.vtm_in_text("Simvastatinum").is_none(), "whole words only");
        assert!(
            d.vtm_in_text("simvastatin old").map(|c| c.code.as_str()) == Some("96304005"),
            "invalid VTMs are not matched by name"
        );
    }

    #[test]
    fn an_rxnorm_code_alone_resolves_nothing() {
        let d = sample();
        let rx = Some("http://www.nlm.nih.gov/research/umls/rxnorm");
        assert!(d.resolve(&[(rx, "314231")], None).is_none());
        let by_text = d
            .resolve(&[(rx, "314231")], Some("Simvastatin 20 MG Oral Tablet"))
            .expect("by name");
        assert_eq!(by_text.level, Level::Vtm);
        assert_eq!(by_text.ingredients[0].name, "simvastatin");
        let by_code = d
            .resolve(&[(Some("https://dmd.nhs.uk/"), "111")], None)
            .expect("previous code");
        assert_eq!(by_code.matched.code, "320000009");
    }
}
