//! Which drugs count as "a drug with CPIC level A guidance", and which genes are relevant to
//! each, taken from smr-pgx-guidelines rather than restated here.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use smr_pgx::Gene;
use smr_pgx_guidelines::{SourceBody, excluded, kb_versions, relevant_genes};

/// Drug (lower-case ingredient name) → genes whose results change its recommendation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpicDrugs {
    drugs: BTreeMap<String, Vec<Gene>>,
}

impl CpicDrugs {
    /// The CPIC guidelines smr-pgx-guidelines carries. Its data file holds CPIC level A
    /// gene–drug pairs and lists the level A pairs it leaves out (and pairs that are not level
    /// A) in `excluded`; drugs named there are left out here too, so a drug counts only when
    /// SMR can actually give CPIC guidance for it. DPWG-only guidance does not count.
    pub fn level_a() -> &'static CpicDrugs {
        static DRUGS: OnceLock<CpicDrugs> = OnceLock::new();
        DRUGS.get_or_init(|| {
            let excluded: Vec<String> = excluded()
                .iter()
                .flat_map(|e| e.drugs.iter().map(|d| d.to_lowercase()))
                .collect();
            let (_, guidelines) = kb_versions();
            let mut drugs = BTreeMap::new();
            for g in guidelines
                .iter()
                .filter(|g| g.source_body == SourceBody::Cpic)
            {
                for d in &g.drugs {
                    let name = d.to_lowercase();
                    if excluded.contains(&name) {
                        continue;
                    }
                    let genes = relevant_genes(d);
                    if !genes.is_empty() {
                        drugs.insert(name, genes);
                    }
                }
            }
            CpicDrugs { drugs }
        })
    }

    /// A set given by the caller (tests, or a deployment restricting the measure).
    pub fn from_map(drugs: BTreeMap<String, Vec<Gene>>) -> CpicDrugs {
        CpicDrugs {
            drugs: drugs
                .into_iter()
                .map(|(k, v)| (k.to_lowercase(), v))
                .collect(),
        }
    }

    pub fn genes(&self, drug: &str) -> Option<&[Gene]> {
        if let Some(g) = self.drugs.get(drug) {
            return Some(g.as_slice());
        }
        self.drugs.get(&drug.to_lowercase()).map(Vec::as_slice)
    }

    pub fn drugs(&self) -> impl Iterator<Item = &str> {
        self.drugs.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.drugs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.drugs.is_empty()
    }
}
