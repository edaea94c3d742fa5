//! Genes covered by the knowledge base, named by HGNC symbol.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A pharmacogene. Every CPIC level A gene, plus CYP3A4 and NAT2 (which PharmCAT
/// calls and CPIC publishes allele function for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Gene {
    #[serde(rename = "ABCG2")]
    Abcg2,
    #[serde(rename = "CACNA1S")]
    Cacna1s,
    #[serde(rename = "CYP2B6")]
    Cyp2b6,
    #[serde(rename = "CYP2C19")]
    Cyp2c19,
    #[serde(rename = "CYP2C9")]
    Cyp2c9,
    #[serde(rename = "CYP2D6")]
    Cyp2d6,
    #[serde(rename = "CYP3A4")]
    Cyp3a4,
    #[serde(rename = "CYP3A5")]
    Cyp3a5,
    #[serde(rename = "CYP4F2")]
    Cyp4f2,
    #[serde(rename = "DPYD")]
    Dpyd,
    #[serde(rename = "G6PD")]
    G6pd,
    #[serde(rename = "HLA-A", alias = "HLA_A")]
    HlaA,
    #[serde(rename = "HLA-B", alias = "HLA_B")]
    HlaB,
    #[serde(rename = "IFNL3")]
    Ifnl3,
    #[serde(rename = "MT-RNR1", alias = "MT_RNR1")]
    MtRnr1,
    #[serde(rename = "NAT2")]
    Nat2,
    #[serde(rename = "NUDT15")]
    Nudt15,
    #[serde(rename = "RYR1")]
    Ryr1,
    #[serde(rename = "SLCO1B1")]
    Slco1b1,
    #[serde(rename = "TPMT")]
    Tpmt,
    #[serde(rename = "UGT1A1")]
    Ugt1a1,
    #[serde(rename = "VKORC1")]
    Vkorc1,
}

impl Gene {
    /// Every gene, in symbol order (the order of [`Gene::index`]).
    pub const ALL: [Gene; 22] = [
        Gene::Abcg2,
        Gene::Cacna1s,
        Gene::Cyp2b6,
        Gene::Cyp2c19,
        Gene::Cyp2c9,
        Gene::Cyp2d6,
        Gene::Cyp3a4,
        Gene::Cyp3a5,
        Gene::Cyp4f2,
        Gene::Dpyd,
        Gene::G6pd,
        Gene::HlaA,
        Gene::HlaB,
        Gene::Ifnl3,
        Gene::MtRnr1,
        Gene::Nat2,
        Gene::Nudt15,
        Gene::Ryr1,
        Gene::Slco1b1,
        Gene::Tpmt,
        Gene::Ugt1a1,
        Gene::Vkorc1,
    ];

    /// HGNC symbol, e.g. `"CYP2C19"`, `"HLA-B"`, `"MT-RNR1"`.
    pub fn symbol(self) -> &'static str {
        match self {
            Gene::Abcg2 => "ABCG2",
            Gene::Cacna1s => "CACNA1S",
            Gene::Cyp2b6 => "CYP2B6",
            Gene::Cyp2c19 => "CYP2C19",
            Gene::Cyp2c9 => "CYP2C9",
            Gene::Cyp2d6 => "CYP2D6",
            Gene::Cyp3a4 => "CYP3A4",
            Gene::Cyp3a5 => "CYP3A5",
            Gene::Cyp4f2 => "CYP4F2",
            Gene::Dpyd => "DPYD",
            Gene::G6pd => "G6PD",
            Gene::HlaA => "HLA-A",
            Gene::HlaB => "HLA-B",
            Gene::Ifnl3 => "IFNL3",
            Gene::MtRnr1 => "MT-RNR1",
            Gene::Nat2 => "NAT2",
            Gene::Nudt15 => "NUDT15",
            Gene::Ryr1 => "RYR1",
            Gene::Slco1b1 => "SLCO1B1",
            Gene::Tpmt => "TPMT",
            Gene::Ugt1a1 => "UGT1A1",
            Gene::Vkorc1 => "VKORC1",
        }
    }

    /// Position in [`Gene::ALL`]; used to index per-gene tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Gene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// The text was not the symbol of a gene in the knowledge base.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown pharmacogene '{0}'")]
pub struct UnknownGene(pub String);

impl FromStr for Gene {
    type Err = UnknownGene;

    /// Case-insensitive; `_` is accepted for `-` because PharmCAT writes `MT_RNR1`
    /// and `HLA_B` in file names and some outside-call files.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Gene::ALL
            .into_iter()
            .find(|g| {
                let sym = g.symbol();
                sym.len() == wanted.len()
                    && sym
                        .bytes()
                        .zip(wanted.bytes())
                        .all(|(a, b)| a.eq_ignore_ascii_case(&b) || (a == b'-' && b == b'_'))
            })
            .ok_or_else(|| UnknownGene(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_round_trip_and_index_matches_all() {
        for (i, g) in Gene::ALL.into_iter().enumerate() {
            assert_eq!(g.index(), i);
            assert_eq!(g.symbol().parse::<Gene>(), Ok(g));
            assert_eq!(g.to_string(), g.symbol());
        }
    }

    #[test]
    fn accepts_pharmcat_spellings() {
        assert_eq!("MT_RNR1".parse::<Gene>(), Ok(Gene::MtRnr1));
        assert_eq!("hla_b".parse::<Gene>(), Ok(Gene::HlaB));
        assert_eq!(" cyp2c19 ".parse::<Gene>(), Ok(Gene::Cyp2c19));
        assert!("CYP2C1".parse::<Gene>().is_err());
        assert!("HLA-C".parse::<Gene>().is_err());
    }

    #[test]
    fn serde_uses_symbols() {
        assert_eq!(
            serde_json::to_string(&Gene::MtRnr1).ok().as_deref(),
            Some("\"MT-RNR1\"")
        );
        let g: Result<Gene, _> = serde_json::from_str("\"MT_RNR1\"");
        assert_eq!(g.ok(), Some(Gene::MtRnr1));
    }
}
