//! PharmCAT "outside call" files: calls made by another tool or lab, one gene per
//! line as `gene<TAB>diplotype<TAB>phenotype<TAB>activity score`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::gene::Gene;

/// One line of an outside-call file. Empty columns are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutsideCall {
    /// 1-based line number in the file, so later problems can point back to it.
    pub line: usize,
    pub gene: Gene,
    pub diplotype: Option<String>,
    pub phenotype: Option<String>,
    pub activity_score: Option<String>,
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error(
        "line {line}: expected 2 to 4 tab-separated columns (gene, diplotype, phenotype, activity score), found {found}"
    )]
    Columns { line: usize, found: usize },
    #[error("line {line}: unknown gene '{gene}'")]
    UnknownGene { line: usize, gene: String },
    #[error("line {line}: {gene} has no diplotype, phenotype or activity score")]
    Empty { line: usize, gene: Gene },
    #[error("line {line}: {gene} was already given on line {first}")]
    Duplicate {
        line: usize,
        gene: Gene,
        first: usize,
    },
}

/// Every bad line of an outside-call file, so a user can fix them in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub errors: Vec<LineError>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

/// Parses an outside-call TSV. Blank lines and `#` comments are skipped; a gene may
/// appear only once (two calls for one gene would contradict each other). Each
/// call needs at least one of diplotype, phenotype, activity score.
pub fn parse_outside_calls(tsv: &str) -> Result<Vec<OutsideCall>, ParseError> {
    let mut calls: Vec<OutsideCall> = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in tsv.lines().enumerate() {
        let line = i + 1;
        let text = raw.strip_suffix('\r').unwrap_or(raw);
        if text.trim().is_empty() || text.trim_start().starts_with('#') {
            continue;
        }
        let columns: Vec<&str> = text.split('\t').collect();
        if !(2..=4).contains(&columns.len()) {
            errors.push(LineError::Columns {
                line,
                found: columns.len(),
            });
            continue;
        }
        let field = |n: usize| {
            columns
                .get(n)
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let gene_text = columns[0].trim();
        let gene = match gene_text.parse::<Gene>() {
            Ok(g) => g,
            Err(_) => {
                errors.push(LineError::UnknownGene {
                    line,
                    gene: gene_text.to_string(),
                });
                continue;
            }
        };
        let (diplotype, phenotype, activity_score) = (field(1), field(2), field(3));
        if diplotype.is_none() && phenotype.is_none() && activity_score.is_none() {
            errors.push(LineError::Empty { line, gene });
            continue;
        }
        if let Some(first) = calls.iter().find(|c| c.gene == gene) {
            errors.push(LineError::Duplicate {
                line,
                gene,
                first: first.line,
            });
            continue;
        }
        calls.push(OutsideCall {
            line,
            gene,
            diplotype,
            phenotype,
            activity_score,
        });
    }
    if errors.is_empty() {
        Ok(calls)
    } else {
        Err(ParseError { errors })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pharmcat_example() {
        let tsv = "CYP2D6\t*1/*3\nHLA-B\t*15:02/*57:01\nMT-RNR1\t1555A>G\n";
        let calls = parse_outside_calls(tsv);
        let Ok(calls) = calls else {
            panic!("{calls:?}")
        };
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].gene, Gene::Cyp2d6);
        assert_eq!(calls[0].diplotype.as_deref(), Some("*1/*3"));
        assert_eq!(calls[2].gene, Gene::MtRnr1);
        assert_eq!(calls[2].line, 3);
        assert_eq!(calls[2].phenotype, None);
    }

    #[test]
    fn phenotype_and_score_columns() {
        let tsv = "# lab report\r\nCYP2C9\t\t\t1.5\r\n\r\nCYP2C19\t\tPoor Metabolizer\r\n";
        let Ok(calls) = parse_outside_calls(tsv) else {
            panic!("should parse")
        };
        assert_eq!(calls[0].activity_score.as_deref(), Some("1.5"));
        assert_eq!(calls[0].diplotype, None);
        assert_eq!(calls[0].line, 2);
        assert_eq!(calls[1].phenotype.as_deref(), Some("Poor Metabolizer"));
    }

    #[test]
    fn reports_every_bad_line() {
        let tsv =
            "CYP2D6\t*1/*4\nFOO1\t*1/*1\nCYP2D6\t*1/*1\nTPMT\nTPMT\t\t\t\nNUDT15\ta\tb\tc\td\n";
        let Err(e) = parse_outside_calls(tsv) else {
            panic!("should fail")
        };
        assert_eq!(
            e.errors,
            vec![
                LineError::UnknownGene {
                    line: 2,
                    gene: "FOO1".into()
                },
                LineError::Duplicate {
                    line: 3,
                    gene: Gene::Cyp2d6,
                    first: 1
                },
                LineError::Columns { line: 4, found: 1 },
                LineError::Empty {
                    line: 5,
                    gene: Gene::Tpmt
                },
                LineError::Columns { line: 6, found: 5 },
            ]
        );
        assert!(
            e.to_string()
                .starts_with("line 2: unknown gene 'FOO1'; line 3:")
        );
    }
}
