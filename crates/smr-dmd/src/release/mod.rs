//! Reading an official NHSBSA dm+d XML release into a [`Dictionary`].
//!
//! Pure: [`locate`] works on a list of file names, [`parse_release`] on readers the caller
//! opens (the CLI opens files and wraps them in a progress bar). Errors name the file, the
//! element and its byte position, so a bad release can be reported and fixed.

mod records;

use std::collections::{HashMap, HashSet};
use std::io::BufRead;

use crate::dictionary::{Concept, Dictionary};
use crate::medicine::{IngredientStrength, Level};
use records::{Record, for_each_record};

/// The files of a release SMR reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    Lookup,
    Ingredient,
    Vtm,
    Vmp,
    Amp,
    Vmpp,
    Ampp,
    /// The BNF/ATC mapping (`f_bnf1_*.xml`), published in a separate bundle; optional.
    Bnf,
}

impl FileKind {
    /// The mandatory files, in the order they are read (lookups and ingredients first, as the
    /// products refer to them).
    pub const REQUIRED: [FileKind; 7] = [
        FileKind::Lookup,
        FileKind::Ingredient,
        FileKind::Vtm,
        FileKind::Vmp,
        FileKind::Amp,
        FileKind::Vmpp,
        FileKind::Ampp,
    ];

    /// The file name prefix (`f_vtm2_` for `f_vtm2_3010419.xml`).
    pub fn prefix(self) -> &'static str {
        match self {
            FileKind::Lookup => "f_lookup2_",
            FileKind::Ingredient => "f_ingredient2_",
            FileKind::Vtm => "f_vtm2_",
            FileKind::Vmp => "f_vmp2_",
            FileKind::Amp => "f_amp2_",
            FileKind::Vmpp => "f_vmpp2_",
            FileKind::Ampp => "f_ampp2_",
            FileKind::Bnf => "f_bnf1_",
        }
    }

    /// The root element the file must have.
    pub fn root(self) -> &'static str {
        match self {
            FileKind::Lookup => "LOOKUP",
            FileKind::Ingredient => "INGREDIENT_SUBSTANCES",
            FileKind::Vtm => "VIRTUAL_THERAPEUTIC_MOIETIES",
            FileKind::Vmp => "VIRTUAL_MED_PRODUCTS",
            FileKind::Amp => "ACTUAL_MEDICINAL_PRODUCTS",
            FileKind::Vmpp => "VIRTUAL_MED_PRODUCT_PACK",
            FileKind::Ampp => "ACTUAL_MEDICINAL_PROD_PACKS",
            FileKind::Bnf => "BNF_DETAILS",
        }
    }
}

/// A release could not be read. Nothing of it is used: the caller keeps its dictionary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("the dm+d release has no {prefix}*.xml file")]
    MissingFile { prefix: &'static str },
    #[error("the dm+d release has two {prefix}*.xml files: {first} and {second}")]
    DuplicateFile {
        prefix: &'static str,
        first: String,
        second: String,
    },
    #[error("{file}: belongs to release {found}, but the other files are release {expected}")]
    MixedRelease {
        file: String,
        found: String,
        expected: String,
    },
    #[error("{file}: cannot be read: {message}")]
    Io { file: String, message: String },
    #[error("{file}: malformed XML near byte {position}: {message}")]
    Xml {
        file: String,
        position: u64,
        message: String,
    },
    #[error("{file}: the root element is <{found}>, expected <{expected}>")]
    WrongRoot {
        file: String,
        found: String,
        expected: String,
    },
    #[error("{file}: <{element}> at byte {position} has no <{field}>")]
    MissingField {
        file: String,
        element: String,
        field: String,
        position: u64,
    },
    #[error("{file}: <{element}> at byte {position}: {message}")]
    Invalid {
        file: String,
        element: String,
        position: u64,
        message: String,
    },
}

/// Which file of a folder is which, and the release they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseLayout {
    /// The release identifier, from the file names (`f_vtm2_3010419.xml` → `3010419`).
    pub release: String,
    /// The file name of each kind found (every required kind; BNF when present).
    pub files: HashMap<FileKind, String>,
}

impl ReleaseLayout {
    pub fn file(&self, kind: FileKind) -> Option<&str> {
        self.files.get(&kind).map(String::as_str)
    }
}

/// Finds the release's files among `names` (a folder's file names). Every required file
/// must be there once, and all must carry the same release number; other files (GTIN, the
/// XSD schemas, a licence) are ignored.
pub fn locate<S: AsRef<str>>(names: &[S]) -> Result<ReleaseLayout, ReleaseError> {
    let mut files: HashMap<FileKind, String> = HashMap::new();
    let kinds = FileKind::REQUIRED.iter().copied().chain([FileKind::Bnf]);
    for kind in kinds {
        for name in names.iter().map(AsRef::as_ref) {
            let Some(rest) = name.strip_prefix(kind.prefix()) else {
                continue;
            };
            if !rest.ends_with(".xml") {
                continue;
            }
            if let Some(first) = files.get(&kind) {
                let (first, second) = if first.as_str() < name {
                    (first.clone(), name.to_owned())
                } else {
                    (name.to_owned(), first.clone())
                };
                return Err(ReleaseError::DuplicateFile {
                    prefix: kind.prefix(),
                    first,
                    second,
                });
            }
            files.insert(kind, name.to_owned());
        }
    }
    let mut release: Option<(String, String)> = None;
    for kind in FileKind::REQUIRED {
        let name = files.get(&kind).ok_or(ReleaseError::MissingFile {
            prefix: kind.prefix(),
        })?;
        let id = release_id(kind, name);
        match &release {
            None => release = Some((id, name.clone())),
            Some((expected, _)) if *expected != id => {
                return Err(ReleaseError::MixedRelease {
                    file: name.clone(),
                    found: id,
                    expected: expected.clone(),
                });
            }
            Some(_) => {}
        }
    }
    let (release, _) = release.ok_or(ReleaseError::MissingFile {
        prefix: FileKind::Lookup.prefix(),
    })?;
    Ok(ReleaseLayout { release, files })
}

fn release_id(kind: FileKind, name: &str) -> String {
    name.strip_prefix(kind.prefix())
        .and_then(|rest| rest.strip_suffix(".xml"))
        .unwrap_or(name)
        .to_owned()
}

/// The text SMR reports as the source of a release's answers.
pub fn source_of(release: &str) -> String {
    format!("dm+d release {release}")
}

/// Reads the release laid out in `layout`, opening each file through `open` (given the file
/// name). All or nothing: any error leaves no dictionary.
pub fn parse_release<R, F>(layout: &ReleaseLayout, mut open: F) -> Result<Dictionary, ReleaseError>
where
    R: BufRead,
    F: FnMut(&str) -> std::io::Result<R>,
{
    let mut parser = Parser::default();
    let kinds = FileKind::REQUIRED.iter().copied().chain([FileKind::Bnf]);
    for kind in kinds {
        let Some(file) = layout.file(kind) else {
            continue;
        };
        let reader = open(file).map_err(|e| ReleaseError::Io {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
        parser.read(kind, file, reader)?;
    }
    parser.finish(&layout.release)
}

/// Accumulates the files of one release, then links them.
#[derive(Default)]
struct Parser {
    /// Lookup tables by name (`FORM`, `ROUTE`, `UNIT_OF_MEASURE`, `CONTROL_DRUG_CATEGORY`):
    /// code → description.
    lookups: HashMap<String, HashMap<String, String>>,
    /// Ingredient substance code → name.
    ingredients: HashMap<String, String>,
    /// Previous ingredient code → current.
    ingredient_previous: HashMap<String, String>,
    concepts: Vec<Concept>,
    /// Code → index in `concepts`.
    index: HashMap<String, usize>,
    /// VMP code → its ingredient rows (record kept for error positions).
    vpi: HashMap<String, Vec<IngredientStrength>>,
    bnf: Vec<(String, String)>,
    /// Concept code → date its previous code changed (VTMIDDT, VPIDDT).
    previous_dates: HashMap<String, String>,
}

/// Lookup tables the parser keeps (the others are not needed for prescribing records).
const KEPT_LOOKUPS: [&str; 4] = ["FORM", "ROUTE", "UNIT_OF_MEASURE", "CONTROL_DRUG_CATEGORY"];

impl Parser {
    fn read<R: BufRead>(
        &mut self,
        kind: FileKind,
        file: &str,
        input: R,
    ) -> Result<(), ReleaseError> {
        for_each_record(file, kind.root(), input, |r| match kind {
            FileKind::Lookup => self.lookup(file, r),
            FileKind::Ingredient => self.ingredient(file, r),
            FileKind::Vtm => self.vtm(file, r),
            FileKind::Vmp => self.vmp(file, r),
            FileKind::Amp => self.product(file, r, Level::Amp),
            FileKind::Vmpp => self.product(file, r, Level::Vmpp),
            FileKind::Ampp => self.product(file, r, Level::Ampp),
            FileKind::Bnf => self.bnf(file, r),
        })
    }

    fn lookup(&mut self, file: &str, r: &Record) -> Result<(), ReleaseError> {
        if r.tag != "INFO" || !KEPT_LOOKUPS.contains(&r.group.as_str()) {
            return Ok(());
        }
        let code = r.require(file, "CD")?;
        let desc = r.require(file, "DESC")?;
        self.lookups
            .entry(r.group.clone())
            .or_default()
            .insert(code.to_owned(), desc.to_owned());
        Ok(())
    }

    fn described(
        &self,
        file: &str,
        r: &Record,
        table: &str,
        field: &str,
    ) -> Result<String, ReleaseError> {
        let code = r.require(file, field)?;
        self.lookups
            .get(table)
            .and_then(|t| t.get(code))
            .cloned()
            .ok_or_else(|| r.invalid(file, format!("<{field}> {code} is not in lookup {table}")))
    }

    fn ingredient(&mut self, file: &str, r: &Record) -> Result<(), ReleaseError> {
        if r.tag != "ING" {
            return Ok(());
        }
        let code = r.require(file, "ISID")?;
        let name = r.require(file, "NM")?;
        self.ingredients.insert(code.to_owned(), name.to_owned());
        if let Some(previous) = r.get("ISIDPREV") {
            self.ingredient_previous
                .insert(previous.to_owned(), code.to_owned());
        }
        Ok(())
    }

    fn add(&mut self, file: &str, r: &Record, concept: Concept) -> Result<(), ReleaseError> {
        if self.index.contains_key(&concept.code) {
            return Err(r.invalid(file, format!("code {} is given twice", concept.code)));
        }
        self.index.insert(concept.code.clone(), self.concepts.len());
        self.concepts.push(concept);
        Ok(())
    }

    fn base(
        file: &str,
        r: &Record,
        id: &str,
        prev: Option<&str>,
        level: Level,
    ) -> Result<Concept, ReleaseError> {
        let mut concept = Concept::new(r.require(file, id)?, level, r.require(file, "NM")?);
        concept.invalid = r.get("INVALID") == Some("1");
        concept.previous = prev
            .and_then(|p| r.get(p))
            .map(str::to_owned)
            .into_iter()
            .collect();
        Ok(concept)
    }

    fn note_previous_date(&mut self, r: &Record, concept: &Concept, field: &str) {
        if let Some(date) = r.get(field).filter(|_| !concept.previous.is_empty()) {
            self.previous_dates
                .insert(concept.code.clone(), date.to_owned());
        }
    }

    fn vtm(&mut self, file: &str, r: &Record) -> Result<(), ReleaseError> {
        if r.tag != "VTM" {
            return Ok(());
        }
        let concept = Self::base(file, r, "VTMID", Some("VTMIDPREV"), Level::Vtm)?;
        self.note_previous_date(r, &concept, "VTMIDDT");
        self.add(file, r, concept)
    }

    fn vmp_index(&self, file: &str, r: &Record) -> Result<usize, ReleaseError> {
        let code = r.require(file, "VPID")?;
        self.index
            .get(code)
            .copied()
            .filter(|&i| self.concepts[i].level == Level::Vmp)
            .ok_or_else(|| {
                r.invalid(
                    file,
                    format!("refers to VMP {code}, which the file does not define"),
                )
            })
    }

    fn vmp(&mut self, file: &str, r: &Record) -> Result<(), ReleaseError> {
        match (r.group.as_str(), r.tag.as_str()) {
            ("VMPS", "VMP") => {
                let mut concept = Self::base(file, r, "VPID", Some("VPIDPREV"), Level::Vmp)?;
                concept.parent = r.get("VTMID").map(str::to_owned);
                self.note_previous_date(r, &concept, "VPIDDT");
                self.add(file, r, concept)
            }
            ("VIRTUAL_PRODUCT_INGREDIENT", "VPI") => {
                let i = self.vmp_index(file, r)?;
                let code = r.require(file, "ISID")?;
                let code = self
                    .ingredient_previous
                    .get(code)
                    .map_or(code, String::as_str);
                let name = self
                    .ingredients
                    .get(code)
                    .ok_or_else(|| {
                        r.invalid(file, format!("<ISID> {code} is not in the ingredient file"))
                    })?
                    .to_lowercase();
                let strength = self.strength(file, r)?;
                let vmp = self.concepts[i].code.clone();
                self.vpi.entry(vmp).or_default().push(IngredientStrength {
                    name,
                    code: Some(code.to_owned()),
                    strength,
                });
                Ok(())
            }
            ("DRUG_FORM", "DFORM") => {
                let i = self.vmp_index(file, r)?;
                let form = self.described(file, r, "FORM", "FORMCD")?;
                self.concepts[i].form.get_or_insert(form);
                Ok(())
            }
            ("DRUG_ROUTE", "DROUTE") => {
                let i = self.vmp_index(file, r)?;
                let route = self.described(file, r, "ROUTE", "ROUTECD")?;
                // dm+d lists routes in no meaningful order: keep the first alphabetically, so
                // the answer does not depend on row order.
                let slot = &mut self.concepts[i].route;
                if slot.as_ref().is_none_or(|r| route < *r) {
                    *slot = Some(route);
                }
                Ok(())
            }
            ("CONTROL_DRUG_INFO", "CONTROL_INFO") => {
                let i = self.vmp_index(file, r)?;
                // 0000 is "No Controlled Drug Status": not a category worth showing.
                if r.get("CATCD") != Some("0000") {
                    let category = self.described(file, r, "CONTROL_DRUG_CATEGORY", "CATCD")?;
                    self.concepts[i].controlled_drug = Some(category);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// "3 mg/ml", "23.2 mg/gram", "500 mg", "20 mg/5 ml" from a VPI row.
    fn strength(&self, file: &str, r: &Record) -> Result<Option<String>, ReleaseError> {
        let Some(value) = r.get("STRNT_NMRTR_VAL") else {
            return Ok(None);
        };
        let unit = self.described(file, r, "UNIT_OF_MEASURE", "STRNT_NMRTR_UOMCD")?;
        let mut text = format!("{value} {unit}");
        if r.get("STRNT_DNMTR_UOMCD").is_some() {
            let per = self.described(file, r, "UNIT_OF_MEASURE", "STRNT_DNMTR_UOMCD")?;
            match r.get("STRNT_DNMTR_VAL") {
                Some(v) if v != "1" => text.push_str(&format!("/{v} {per}")),
                _ => text.push_str(&format!("/{per}")),
            }
        }
        Ok(Some(text))
    }

    fn product(&mut self, file: &str, r: &Record, level: Level) -> Result<(), ReleaseError> {
        let (group, tag, id, parent) = match level {
            Level::Amp => ("AMPS", "AMP", "APID", "VPID"),
            Level::Vmpp => ("VMPPS", "VMPP", "VPPID", "VPID"),
            Level::Ampp => ("AMPPS", "AMPP", "APPID", "APID"),
            Level::Vtm | Level::Vmp => return Ok(()),
        };
        if r.group != group || r.tag != tag {
            return Ok(());
        }
        let mut concept = Self::base(file, r, id, None, level)?;
        concept.parent = Some(r.require(file, parent)?.to_owned());
        if level == Level::Ampp {
            concept.vmpp = Some(r.require(file, "VPPID")?.to_owned());
        }
        self.add(file, r, concept)
    }

    fn bnf(&mut self, file: &str, r: &Record) -> Result<(), ReleaseError> {
        let id = match r.tag.as_str() {
            "VMP" => "VPID",
            "AMP" => "APID",
            _ => return Ok(()),
        };
        if let Some(bnf) = r.get("BNF") {
            self.bnf
                .push((r.require(file, id)?.to_owned(), bnf.to_owned()));
        }
        Ok(())
    }

    fn finish(mut self, release: &str) -> Result<Dictionary, ReleaseError> {
        for (vmp, mut rows) in std::mem::take(&mut self.vpi) {
            rows.sort();
            if let Some(&i) = self.index.get(&vmp) {
                self.concepts[i].ingredients = rows;
            }
        }
        for (code, bnf) in std::mem::take(&mut self.bnf) {
            if let Some(&i) = self.index.get(&code) {
                self.concepts[i].bnf = Some(bnf);
            }
        }
        // dm+d sometimes gives one previous code to two concepts (a concept split: 412096001
        // is the VTMIDPREV of both Co-codaprin and Aspirin + Codeine). The latest change
        // (VTMIDDT/VPIDDT) keeps it, then the lower code, so the answer is deterministic;
        // a previous code that is some concept's current code names that concept.
        let mut winner: HashMap<&str, (&str, &str)> = HashMap::new();
        for c in &self.concepts {
            for p in &c.previous {
                let date = self.previous_dates.get(&c.code).map_or("", String::as_str);
                let candidate = (date, c.code.as_str());
                let slot = winner.entry(p.as_str()).or_insert(candidate);
                if (candidate.0, std::cmp::Reverse(candidate.1))
                    > (slot.0, std::cmp::Reverse(slot.1))
                {
                    *slot = candidate;
                }
            }
        }
        let keep: HashSet<(String, String)> = winner
            .into_iter()
            .filter(|(p, _)| !self.index.contains_key(*p))
            .map(|(p, (_, code))| (p.to_owned(), code.to_owned()))
            .collect();
        for c in &mut self.concepts {
            let code = c.code.clone();
            c.previous
                .retain(|p| keep.contains(&(p.clone(), code.clone())));
        }
        Ok(Dictionary::from_concepts(
            release,
            source_of(release),
            self.concepts,
        ))
    }
}

#[cfg(test)]
mod tests;
