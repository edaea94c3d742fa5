//! Streaming VCF 4.x reader that keeps only genotypes at defining positions.
//!
//! Lines are pushed one at a time so the caller can stream a file of any size; a
//! record is split into fields only when its (chromosome, position) is a defining
//! position of some gene, found by hashing the position (pharmacogene positions
//! are a few hundred among millions of records).

use std::collections::HashMap;

use super::definitions::DefinitionSet;

/// What one sample's VCF record says at a defining position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The VCF REF at this position (compared with the definition's REF).
    pub vcf_ref: String,
    /// Called alleles as sequences; one for a haploid call, two for diploid.
    /// `None` where the GT had `.`.
    pub alleles: Vec<Option<String>>,
    /// `|` separated the alleles.
    pub phased: bool,
    /// The PS (phase set) value when given: alleles phased within one set only.
    pub phase_set: Option<String>,
    /// The FILTER column when it is neither `PASS` nor `.`.
    pub filter: Option<String>,
}

impl Observed {
    /// Any allele missing (`./.`, `./1`, `.`)?
    pub fn has_missing(&self) -> bool {
        self.alleles.iter().any(Option::is_none)
    }
}

/// The VCF could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VcfError {
    #[error("VCF line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("VCF has a data line (line {0}) before the #CHROM header line")]
    NoHeader(usize),
    #[error("VCF has no #CHROM header line")]
    MissingHeader,
    #[error("VCF has no sample columns, so there is nobody to call")]
    NoSamples,
}

/// `chr10`, `10`, `CHR10` → `10`; `chrM`/`MT` → `M`: VCFs differ in spelling.
pub(crate) fn normalize_chromosome(chrom: &str) -> &str {
    // Compared as bytes: a name with a multi-byte character near its start is not cut
    // inside that character (found by fuzzing: `c€10` panicked).
    let bare = match chrom.as_bytes().get(..3) {
        Some(prefix) if chrom.len() > 3 && prefix.eq_ignore_ascii_case(b"chr") => &chrom[3..],
        _ => chrom,
    };
    if bare.eq_ignore_ascii_case("MT") || bare.eq_ignore_ascii_case("M") {
        "M"
    } else {
        bare
    }
}

/// (gene index in the set, position index in the gene) for one defining position.
#[derive(Debug, Clone, Copy)]
struct Slot {
    gene: usize,
    position: usize,
}

/// Collects genotypes at defining positions, line by line.
#[derive(Debug)]
pub struct GenotypeCollector<'d> {
    definitions: &'d DefinitionSet,
    /// position → (normalised chromosome, slot); a Vec because two genes could
    /// in principle share a position.
    index: HashMap<u64, Vec<(String, Slot)>>,
    samples: Vec<String>,
    /// observed[sample][gene][position]
    observed: Vec<Vec<Vec<Option<Observed>>>>,
    /// notes[sample][gene]: things the call should mention (duplicates, filters…).
    notes: Vec<Vec<Vec<String>>>,
    line: usize,
    header_seen: bool,
}

/// Everything collected from a VCF, ready for matching.
#[derive(Debug, Clone)]
pub struct CollectedGenotypes {
    pub samples: Vec<String>,
    /// observed[sample][gene][position], genes in [`DefinitionSet::genes`] order.
    pub observed: Vec<Vec<Vec<Option<Observed>>>>,
    pub notes: Vec<Vec<Vec<String>>>,
}

impl<'d> GenotypeCollector<'d> {
    pub fn new(definitions: &'d DefinitionSet) -> Self {
        let mut index: HashMap<u64, Vec<(String, Slot)>> = HashMap::new();
        for (g, def) in definitions.genes().iter().enumerate() {
            for (p, pos) in def.positions.iter().enumerate() {
                index.entry(pos.position).or_default().push((
                    normalize_chromosome(&pos.chromosome).to_string(),
                    Slot {
                        gene: g,
                        position: p,
                    },
                ));
            }
        }
        GenotypeCollector {
            definitions,
            index,
            samples: Vec::new(),
            observed: Vec::new(),
            notes: Vec::new(),
            line: 0,
            header_seen: false,
        }
    }

    /// Feed the next line of the VCF (with or without its line terminator).
    pub fn push_line(&mut self, raw: &str) -> Result<(), VcfError> {
        self.line += 1;
        let line = raw.trim_end_matches(['\n', '\r']);
        if line.is_empty() || line.starts_with("##") {
            return Ok(());
        }
        if let Some(header) = line.strip_prefix('#') {
            return self.header(header);
        }
        if !self.header_seen {
            return Err(VcfError::NoHeader(self.line));
        }
        // Cheap pre-check: only CHROM and POS are looked at for the vast majority
        // of records, which are not at a defining position.
        let mut cols = line.splitn(3, '\t');
        let chrom = cols.next().unwrap_or_default();
        let pos_text = cols.next().unwrap_or_default();
        let pos: u64 = pos_text.parse().map_err(|_| VcfError::Line {
            line: self.line,
            message: format!("POS '{pos_text}' is not a number"),
        })?;
        let Some(entries) = self.index.get(&pos) else {
            return Ok(());
        };
        let chrom = normalize_chromosome(chrom);
        let slots: Vec<Slot> = entries
            .iter()
            .filter(|(c, _)| c == chrom)
            .map(|(_, s)| *s)
            .collect();
        if slots.is_empty() {
            return Ok(());
        }
        self.record(line, &slots)
    }

    fn header(&mut self, header: &str) -> Result<(), VcfError> {
        let cols: Vec<&str> = header.split('\t').collect();
        if cols.first() != Some(&"CHROM") {
            // A lone '#' comment line: not VCF 4.x, but harmless to skip.
            return Ok(());
        }
        if cols.len() < 10 {
            return Err(VcfError::NoSamples);
        }
        self.samples = cols[9..].iter().map(|s| s.to_string()).collect();
        let genes = self.definitions.genes();
        self.observed = self
            .samples
            .iter()
            .map(|_| {
                genes
                    .iter()
                    .map(|g| vec![None; g.positions.len()])
                    .collect()
            })
            .collect();
        self.notes = self
            .samples
            .iter()
            .map(|_| vec![Vec::new(); genes.len()])
            .collect();
        self.header_seen = true;
        Ok(())
    }

    fn record(&mut self, line: &str, slots: &[Slot]) -> Result<(), VcfError> {
        let line_no = self.line;
        let err = |message: String| VcfError::Line {
            line: line_no,
            message,
        };
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != 9 + self.samples.len() {
            return Err(err(format!(
                "{} columns, expected {} (9 + {} samples)",
                cols.len(),
                9 + self.samples.len(),
                self.samples.len()
            )));
        }
        let vcf_ref = cols[3];
        // Allele 0 is REF; ALT '.' means the site is monomorphic in this file.
        let mut alleles: Vec<&str> = vec![vcf_ref];
        if cols[4] != "." {
            alleles.extend(cols[4].split(','));
        }
        let filter = match cols[6] {
            "PASS" | "." => None,
            f => Some(f.to_string()),
        };
        let format: Vec<&str> = cols[8].split(':').collect();
        let Some(gt_at) = format.iter().position(|f| *f == "GT") else {
            // Sites-only or GT-less records say nothing about genotypes: the
            // position stays missing and is reported as such.
            return Ok(());
        };
        let ps_at = format.iter().position(|f| *f == "PS");

        for (s, sample_col) in cols[9..].iter().enumerate() {
            let fields: Vec<&str> = sample_col.split(':').collect();
            // Trailing FORMAT fields may be dropped (VCF 4.x allows it): GT absent = missing.
            let gt = fields.get(gt_at).copied().unwrap_or(".");
            let phase_set = ps_at
                .and_then(|i| fields.get(i))
                .filter(|v| **v != ".")
                .map(|v| v.to_string());
            let phased = gt.contains('|') && !gt.contains('/');
            let mut called = Vec::with_capacity(2);
            for a in gt.split(['/', '|']) {
                if a == "." || a.is_empty() {
                    called.push(None);
                    continue;
                }
                let i: usize = a
                    .parse()
                    .map_err(|_| err(format!("GT '{gt}' of sample {} is not valid", s + 1)))?;
                let allele = alleles.get(i).ok_or_else(|| {
                    err(format!(
                        "GT '{gt}' of sample {} refers to allele {i}, but the record has {}",
                        s + 1,
                        alleles.len()
                    ))
                })?;
                called.push(Some(allele.to_string()));
            }
            if called.len() > 2 {
                // Polyploid calls do not occur at these loci; keep them visible.
                for slot in slots {
                    self.notes[s][slot.gene].push(format!(
                        "ignored polyploid GT '{gt}' at {}",
                        self.definitions.genes()[slot.gene].positions[slot.position].label()
                    ));
                }
                continue;
            }
            let obs = Observed {
                vcf_ref: vcf_ref.to_string(),
                alleles: called,
                phased,
                phase_set,
                filter: filter.clone(),
            };
            for slot in slots {
                let def = &self.definitions.genes()[slot.gene];
                let label = def.positions[slot.position].label();
                let cell = &mut self.observed[s][slot.gene][slot.position];
                match cell {
                    None => *cell = Some(obs.clone()),
                    Some(prev) => {
                        // Split multi-allelic sites arrive as several records; keep the
                        // one that carries information (a call over a no-call, a
                        // non-reference call over a reference one).
                        let prev_is_ref = prev
                            .alleles
                            .iter()
                            .all(|a| a.as_deref() == Some(prev.vcf_ref.as_str()));
                        let new_is_ref = obs
                            .alleles
                            .iter()
                            .all(|a| a.as_deref() == Some(obs.vcf_ref.as_str()));
                        if prev.has_missing() || (prev_is_ref && !new_is_ref) {
                            *cell = Some(obs.clone());
                        }
                        self.notes[s][slot.gene].push(format!(
                            "several VCF records at {label}; used the most informative"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Finish reading: the genotypes for matching.
    pub fn finish(self) -> Result<CollectedGenotypes, VcfError> {
        if !self.header_seen {
            return Err(VcfError::MissingHeader);
        }
        Ok(CollectedGenotypes {
            samples: self.samples,
            observed: self.observed,
            notes: self.notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chromosome_names_with_multibyte_characters_do_not_panic() {
        assert_eq!(normalize_chromosome("c\u{20ac}10"), "c\u{20ac}10");
        assert_eq!(normalize_chromosome("chr10"), "10");
        assert_eq!(normalize_chromosome("\u{20ac}"), "\u{20ac}");
    }

    #[test]
    fn chromosome_spellings() {
        assert_eq!(normalize_chromosome("chr10"), "10");
        assert_eq!(normalize_chromosome("10"), "10");
        assert_eq!(normalize_chromosome("CHRX"), "X");
        assert_eq!(normalize_chromosome("chrM"), "M");
        assert_eq!(normalize_chromosome("MT"), "M");
    }
}
