//! Confidentiality labels for medication entries, from their medicine.
//!
//! A patient may withhold sensitive medicines from chosen organisations (see
//! [`crate::consent`]). This module says which entries are sensitive: it labels a
//! MedicationRequest, MedicationStatement, MedicationDispense, MedicationAdministration or
//! Medication with HL7 v3 ActCode sensitivity codes ([`ACT_CODE_SYSTEM`]): `HIV`, `PSY`, `ETH`,
//! `STD`, `SEX`.
//!
//! The mapping from medicines to labels is data, not code: `data/sensitivity.json`, compiled
//! in, cites a source for every class of medicines (BNF section, WHO ATC group, NICE/BHIVA/BASHH
//! guidance) and says why the class carries its label; its `notes` list the deliberate
//! exclusions (valproate, STI antibiotics, gender-affirming hormones, …) with their reasons.
//! [`check_data`] validates it.
//!
//! The medicine of a resource is read from `medicationCodeableConcept` (codings and text),
//! `medicationReference` (its `display`, and a contained Medication referenced as `#id`), or, for
//! a Medication, its `code` and ingredients. dm+d / SNOMED CT codes are resolved to ingredients
//! through the `smr-dmd` subset and the codes listed in the data file; ingredient and brand names
//! are also matched as whole words in the codings' displays and the text.
//!
//! ```
//! use serde_json::json;
//! use smr_access::sensitivity::labels_for;
//! let order = json!({
//!     "resourceType": "MedicationRequest",
//!     "medicationCodeableConcept": {"text": "Biktarvy 50mg/200mg/25mg tablets"}
//! });
//! assert_eq!(labels_for(&order), ["HIV"]);
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

/// The code system of the labels.
pub const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// The labels this module assigns, with their ActCode display names, in code order.
const LABELS: [(&str, &str); 5] = [
    ("ETH", "substance abuse information sensitivity"),
    ("HIV", "HIV/AIDS information sensitivity"),
    ("PSY", "psychiatry information sensitivity"),
    (
        "SEX",
        "sexuality and reproductive health information sensitivity",
    ),
    (
        "STD",
        "sexually transmitted disease information sensitivity",
    ),
];

/// The ActCode display name of a label this module assigns: `label_display("PSY")` is
/// `Some("psychiatry information sensitivity")`; `None` for any other code.
pub fn label_display(code: &str) -> Option<&'static str> {
    LABELS.iter().find(|(c, _)| *c == code).map(|(_, d)| *d)
}

fn static_label(code: &str) -> Option<&'static str> {
    LABELS.iter().find(|(c, _)| *c == code).map(|(c, _)| *c)
}

const DATA: &str = include_str!("../data/sensitivity.json");

// ---------------------------------------------------------------------------------------------
// The data file

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataFile {
    format: u32,
    title: String,
    version: String,
    release: String,
    label_system: String,
    labels: Vec<LabelDef>,
    matching: Vec<String>,
    sources: Vec<SourceDef>,
    classes: Vec<ClassDef>,
    deliberate_overlaps: Vec<OverlapDef>,
    notes: Vec<NoteDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelDef {
    code: String,
    display: String,
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceDef {
    id: String,
    title: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassDef {
    id: String,
    label: String,
    class: String,
    #[serde(default)]
    ingredients: Vec<String>,
    #[serde(default)]
    aliases: Vec<AliasDef>,
    #[serde(default)]
    brands: Vec<BrandDef>,
    #[serde(default)]
    only_when: Vec<RuleDef>,
    #[serde(default)]
    except_when: Vec<RuleDef>,
    #[serde(default)]
    bnf: Vec<BnfDef>,
    #[serde(default)]
    atc: Vec<String>,
    #[serde(default)]
    codes: Vec<CodeDef>,
    refs: Vec<String>,
    source: String,
    why: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasDef {
    name: String,
    ingredient: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BrandDef {
    name: String,
    ingredients: Vec<String>,
}

/// `ingredients` count only when (`only_when`) / except when (`except_when`) any term is present.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    ingredients: Vec<String>,
    any: Vec<String>,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BnfDef {
    code: String,
    section: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeDef {
    code: String,
    kind: String,
    term: String,
    ingredients: Vec<String>,
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverlapDef {
    ingredient: String,
    labels: Vec<String>,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteDef {
    topic: String,
    decision: String,
    names: Vec<String>,
    reason: String,
}

const NOT_LABELLED: &str = "not labelled";
const NOTE_DECISIONS: [&str; 3] = [NOT_LABELLED, "labelled (ambiguous)", "conditional"];
const CODE_KINDS: [&str; 4] = ["vtm", "vmp", "amp", "snomed"];

// ---------------------------------------------------------------------------------------------
// The compiled mapping

struct Mapping {
    version: String,
    classes: Vec<Class>,
    /// Phrases (ingredients, aliases, brands, names noted as not labelled), longest first.
    phrases: Vec<(Vec<String>, Target)>,
    /// First word of a phrase → indices into `phrases` (ascending).
    phrases_by_first_word: HashMap<String, Vec<usize>>,
    /// dm+d / SNOMED CT code → the ingredients it names.
    codes: HashMap<String, Vec<String>>,
    /// Ingredient → the classes that list it.
    ingredient_classes: HashMap<String, Vec<usize>>,
}

struct Class {
    label: &'static str,
    only_when: Vec<Rule>,
    except_when: Vec<Rule>,
}

struct Rule {
    ingredients: Vec<String>,
    /// Each term as words.
    any: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Ingredient(String),
    Brand(usize),
    /// A name recognised as not labelled: it only keeps its words from other phrases.
    Known,
}

/// What was read from one resource.
#[derive(Default)]
struct Found {
    ingredients: BTreeSet<String>,
    brand_classes: BTreeSet<usize>,
    /// The words of each text read (displays, texts), for rule terms.
    texts: Vec<Vec<String>>,
}

static MAPPING: LazyLock<Result<Mapping, String>> = LazyLock::new(|| build(DATA));

/// Checks the compiled-in data file: known labels only, a source and a reason for every class,
/// valid and unique codes (SNOMED CT Verhoeff check), rules that name their class's ingredients,
/// no ingredient under two labels unless listed in `deliberate_overlaps`, notes consistent with
/// the classes. `Ok` means [`labels_for`] reads the file as documented.
pub fn check_data() -> Result<(), String> {
    MAPPING.as_ref().map(|_| ()).map_err(Clone::clone)
}

/// The version of the mapping data (for provenance of stored labels); `None` only if the data
/// file is defective.
pub fn mapping_version() -> Option<&'static str> {
    MAPPING.as_ref().ok().map(|m| m.version.as_str())
}

/// The HL7 v3 ActCode sensitivity labels of a medication entry, from its medicine: sorted,
/// without duplicates, e.g. `["PSY"]`; empty when the medicine is not sensitive or cannot be
/// identified.
///
/// Reads `medicationCodeableConcept`, `medicationReference` (`display`, and a contained
/// Medication referenced as `#id`), or, for a Medication, its `code` and ingredients. Never
/// panics. Should the compiled-in data ever be defective (a build defect that [`check_data`]'s
/// unit test catches), every label is returned: an unreadable mapping is never taken for "not
/// sensitive".
pub fn labels_for(resource: &Value) -> Vec<&'static str> {
    let mapping = match MAPPING.as_ref() {
        Ok(m) => m,
        Err(_) => return LABELS.iter().map(|(c, _)| *c).collect(),
    };
    let mut concepts = Vec::new();
    let mut displays = Vec::new();
    gather(resource, &mut concepts, &mut displays);
    let mut found = Found::default();
    for concept in concepts {
        read_concept(mapping, concept, &mut found);
    }
    for display in displays {
        read_text(mapping, display, &mut found);
    }
    evaluate(mapping, &found).into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Reading a resource

/// How deep `#id` references are followed (Medication → contained ingredient Medication).
const MAX_REFERENCE_DEPTH: usize = 2;

fn gather<'a>(resource: &'a Value, concepts: &mut Vec<&'a Value>, displays: &mut Vec<&'a str>) {
    if resource.get("resourceType").and_then(Value::as_str) == Some("Medication") {
        medication(resource, resource, concepts, displays, 0);
        return;
    }
    if let Some(concept) = resource.get("medicationCodeableConcept") {
        concepts.push(concept);
    }
    if let Some(reference) = resource.get("medicationReference") {
        follow(reference, resource, concepts, displays, 0);
    }
}

fn medication<'a>(
    med: &'a Value,
    container: &'a Value,
    concepts: &mut Vec<&'a Value>,
    displays: &mut Vec<&'a str>,
    depth: usize,
) {
    if let Some(code) = med.get("code") {
        concepts.push(code);
    }
    for ingredient in med
        .get("ingredient")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(concept) = ingredient.get("itemCodeableConcept") {
            concepts.push(concept);
        }
        if let Some(reference) = ingredient.get("itemReference") {
            follow(reference, container, concepts, displays, depth + 1);
        }
    }
}

/// A Reference: its display, and the contained Medication it points to as `#id`.
fn follow<'a>(
    reference: &'a Value,
    container: &'a Value,
    concepts: &mut Vec<&'a Value>,
    displays: &mut Vec<&'a str>,
    depth: usize,
) {
    if let Some(display) = reference.get("display").and_then(Value::as_str) {
        displays.push(display);
    }
    if depth > MAX_REFERENCE_DEPTH {
        return;
    }
    let Some(id) = reference
        .get("reference")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .filter(|id| !id.is_empty())
    else {
        return;
    };
    for contained in container
        .get("contained")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if contained.get("id").and_then(Value::as_str) == Some(id)
            && contained.get("resourceType").and_then(Value::as_str) == Some("Medication")
        {
            medication(contained, container, concepts, displays, depth + 1);
        }
    }
}

/// A CodeableConcept: codes through smr-dmd and the data file's codes, displays and text by name.
fn read_concept(mapping: &Mapping, concept: &Value, found: &mut Found) {
    let mut codings: Vec<(Option<&str>, &str)> = Vec::new();
    for coding in concept
        .get("coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let system = coding.get("system").and_then(Value::as_str);
        if let Some(code) = coding.get("code").and_then(Value::as_str) {
            codings.push((system, code));
            let dmd = system
                .is_some_and(|s| smr_dmd::DMD_SYSTEMS.contains(&s.trim().trim_end_matches('/')));
            let listed = mapping.codes.get(code.trim()).filter(|_| dmd);
            found
                .ingredients
                .extend(listed.into_iter().flatten().cloned());
        }
        if let Some(display) = coding.get("display").and_then(Value::as_str) {
            read_text(mapping, display, found);
        }
    }
    let text = concept.get("text").and_then(Value::as_str);
    if !codings.is_empty() || text.is_some() {
        let identified = smr_dmd::identify(&codings, text);
        found
            .ingredients
            .extend(identified.ingredient_names().into_iter().map(str::to_owned));
    }
    if let Some(text) = text {
        read_text(mapping, text, found);
    }
}

/// Whole-word matching of the mapping's phrases in `text`: each word is used by at most one
/// phrase, longest phrases first.
fn read_text(mapping: &Mapping, text: &str, found: &mut Found) {
    let words = tokens(text);
    if words.is_empty() {
        return;
    }
    let mut candidates: Vec<(usize, usize)> = words
        .iter()
        .enumerate()
        .filter_map(|(start, w)| {
            mapping
                .phrases_by_first_word
                .get(w)
                .map(|phrases| (start, phrases))
        })
        .flat_map(|(start, phrases)| phrases.iter().map(move |&p| (p, start)))
        .collect();
    candidates.sort_unstable();
    let mut used = vec![false; words.len()];
    for (p, start) in candidates {
        let Some((phrase, target)) = mapping.phrases.get(p) else {
            continue;
        };
        let span = start..start + phrase.len();
        let free = used.get(span.clone()).is_some_and(|u| u.iter().all(|x| !x));
        if free && words.get(span.clone()) == Some(phrase.as_slice()) {
            used[span].iter_mut().for_each(|u| *u = true);
            match target {
                Target::Ingredient(name) => {
                    found.ingredients.insert(name.clone());
                }
                Target::Brand(class) => {
                    found.brand_classes.insert(*class);
                }
                Target::Known => {}
            }
        }
    }
    found.texts.push(words);
}

/// The labels of what was found: every class named by a brand, and every class with an
/// ingredient that its rules let count.
fn evaluate(mapping: &Mapping, found: &Found) -> BTreeSet<&'static str> {
    let mut labels = BTreeSet::new();
    for &class in &found.brand_classes {
        if let Some(c) = mapping.classes.get(class) {
            labels.insert(c.label);
        }
    }
    let ingredient_words: Vec<Vec<String>> =
        found.ingredients.iter().map(|name| tokens(name)).collect();
    let present = |term: &[String]| {
        found
            .texts
            .iter()
            .chain(&ingredient_words)
            .any(|words| contains_phrase(words, term))
    };
    for name in &found.ingredients {
        for &class in mapping.ingredient_classes.get(name).into_iter().flatten() {
            let Some(c) = mapping.classes.get(class) else {
                continue;
            };
            let applies = |rule: &&Rule| rule.ingredients.iter().any(|i| i == name);
            let required = c
                .only_when
                .iter()
                .filter(applies)
                .all(|rule| rule.any.iter().any(|t| present(t)));
            let excepted = c
                .except_when
                .iter()
                .filter(applies)
                .any(|rule| rule.any.iter().any(|t| present(t)));
            if required && !excepted {
                labels.insert(c.label);
            }
        }
    }
    labels
}

fn contains_phrase(words: &[String], phrase: &[String]) -> bool {
    !phrase.is_empty() && words.windows(phrase.len()).any(|w| w == phrase)
}

// ---------------------------------------------------------------------------------------------
// Words

/// Lower-case words of `text`: letters and digits (a '.' between digits stays, "1.5"); a number
/// followed by a unit becomes one word and units are spelt one way, so "75 mcg", "75micrograms"
/// and "75microgram" are all `75microgram`.
fn tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let mut raw = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let decimal_point = c == '.'
            && i.checked_sub(1)
                .and_then(|p| chars.get(p))
                .is_some_and(char::is_ascii_digit)
            && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if c.is_alphanumeric() || decimal_point {
            current.push(c);
        } else if !current.is_empty() {
            raw.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        raw.push(current);
    }
    let mut words = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(word) = raw.get(i) {
        let spelt = raw
            .get(i + 1)
            .and_then(|u| unit(u))
            .filter(|_| is_number(word));
        match spelt {
            Some(spelt) => {
                words.push(format!("{word}{spelt}"));
                i += 2;
            }
            None => {
                words.push(with_canonical_unit(word));
                i += 1;
            }
        }
    }
    words
}

fn is_number(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_digit())
        && word.chars().all(|c| c.is_ascii_digit() || c == '.')
}

fn unit(word: &str) -> Option<&'static str> {
    match word {
        "mg" => Some("mg"),
        "g" => Some("g"),
        "microgram" | "micrograms" | "mcg" | "ug" | "µg" | "μg" => Some("microgram"),
        "nanogram" | "nanograms" | "ng" => Some("nanogram"),
        "ml" => Some("ml"),
        "unit" | "units" => Some("unit"),
        _ => None,
    }
}

/// "75mcg" → "75microgram"; anything else unchanged.
fn with_canonical_unit(word: &str) -> String {
    let split = word
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(word.len());
    let (number, rest) = word.split_at(split);
    match unit(rest) {
        Some(spelt) if is_number(number) => format!("{number}{spelt}"),
        _ => word.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Building and checking the mapping

fn build(text: &str) -> Result<Mapping, String> {
    let file: DataFile =
        serde_json::from_str(text).map_err(|e| format!("sensitivity.json is not valid: {e}"))?;
    check_header(&file)?;
    let source_ids = check_sources(&file)?;
    let mut cited: HashSet<&str> = HashSet::new();
    for l in &file.labels {
        if !source_ids.contains(l.source.as_str()) {
            return Err(format!("label {}: unknown source '{}'", l.code, l.source));
        }
        cited.insert(l.source.as_str());
    }
    let mut classes = Vec::new();
    let mut phrase_targets: HashMap<Vec<String>, Target> = HashMap::new();
    let mut codes: HashMap<String, Vec<String>> = HashMap::new();
    let mut ingredient_classes: HashMap<String, Vec<usize>> = HashMap::new();
    let mut class_ids = HashSet::new();
    for (index, c) in file.classes.iter().enumerate() {
        let at = format!("class '{}'", c.id);
        if c.id.trim().is_empty() || !class_ids.insert(c.id.as_str()) {
            return Err(format!("{at}: the id is empty or used twice"));
        }
        let label =
            static_label(&c.label).ok_or_else(|| format!("{at}: unknown label '{}'", c.label))?;
        for (what, value) in [("class", &c.class), ("source", &c.source), ("why", &c.why)] {
            if value.trim().is_empty() {
                return Err(format!("{at}: '{what}' is empty"));
            }
        }
        if c.refs.is_empty() {
            return Err(format!("{at}: cites no source (refs)"));
        }
        for r in &c.refs {
            if !source_ids.contains(r.as_str()) {
                return Err(format!("{at}: refs names unknown source '{r}'"));
            }
            cited.insert(r.as_str());
        }
        if c.ingredients.is_empty() && c.brands.is_empty() && c.codes.is_empty() {
            return Err(format!("{at}: names no ingredient, brand or code"));
        }
        let mut own = HashSet::new();
        for name in &c.ingredients {
            check_name(name, &at)?;
            if !own.insert(name.as_str()) {
                return Err(format!("{at}: ingredient '{name}' listed twice"));
            }
            ingredient_classes
                .entry(name.clone())
                .or_default()
                .push(index);
            add_phrase(
                &mut phrase_targets,
                name,
                Target::Ingredient(name.clone()),
                &at,
            )?;
        }
        for alias in &c.aliases {
            check_name(&alias.name, &at)?;
            if !own.contains(alias.ingredient.as_str()) {
                return Err(format!(
                    "{at}: alias '{}' names '{}', which is not an ingredient of the class",
                    alias.name, alias.ingredient
                ));
            }
            add_phrase(
                &mut phrase_targets,
                &alias.name,
                Target::Ingredient(alias.ingredient.clone()),
                &at,
            )?;
        }
        for brand in &c.brands {
            if brand.name.trim().is_empty() || brand.name.trim() != brand.name {
                return Err(format!("{at}: brand '{}' is empty or padded", brand.name));
            }
            if brand.ingredients.is_empty() {
                return Err(format!("{at}: brand '{}' lists no ingredient", brand.name));
            }
            for name in &brand.ingredients {
                check_name(name, &at)?;
            }
            add_phrase(&mut phrase_targets, &brand.name, Target::Brand(index), &at)?;
        }
        let only_when = compile_rules(&c.only_when, &own, &at, "only_when")?;
        let except_when = compile_rules(&c.except_when, &own, &at, "except_when")?;
        for bnf in &c.bnf {
            check_bnf(bnf).map_err(|e| format!("{at}: {e}"))?;
        }
        for atc in &c.atc {
            if !is_atc_group(atc) {
                return Err(format!("{at}: '{atc}' is not an ATC code"));
            }
        }
        for code in &c.codes {
            let at = format!("{at}, code {}", code.code);
            if !smr_fhir::sctid::is_concept_id(&code.code) {
                return Err(format!(
                    "{at}: not a valid SNOMED CT concept id (Verhoeff check digit, partition)"
                ));
            }
            if !CODE_KINDS.contains(&code.kind.as_str()) || code.term.trim().is_empty() {
                return Err(format!("{at}: unknown kind '{}' or empty term", code.kind));
            }
            if !source_ids.contains(code.source.as_str()) {
                return Err(format!("{at}: unknown source '{}'", code.source));
            }
            cited.insert(code.source.as_str());
            if code.ingredients.is_empty() {
                return Err(format!("{at}: lists no ingredient"));
            }
            for name in &code.ingredients {
                check_name(name, &at)?;
            }
            if codes
                .insert(code.code.clone(), code.ingredients.clone())
                .is_some()
            {
                return Err(format!("{at}: listed twice"));
            }
        }
        classes.push(Class {
            label,
            only_when,
            except_when,
        });
    }
    check_overlaps(&file, &ingredient_classes, &classes)?;
    check_notes(&file, &mut phrase_targets)?;
    if let Some(unused) = file.sources.iter().find(|s| !cited.contains(s.id.as_str())) {
        return Err(format!("source '{}' is never cited", unused.id));
    }
    let mut phrases: Vec<(Vec<String>, Target)> = phrase_targets.into_iter().collect();
    // Longest first; ties in word order, so that the build is deterministic.
    phrases.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
    let mut phrases_by_first_word: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, (words, _)) in phrases.iter().enumerate() {
        if let Some(first) = words.first() {
            phrases_by_first_word
                .entry(first.clone())
                .or_default()
                .push(i);
        }
    }
    let mapping = Mapping {
        version: file.version.clone(),
        classes,
        phrases,
        phrases_by_first_word,
        codes,
        ingredient_classes,
    };
    check_codes_fire(&file, &mapping)?;
    Ok(mapping)
}

fn check_header(file: &DataFile) -> Result<(), String> {
    if file.format != 1 {
        return Err(format!("unsupported format {}", file.format));
    }
    if file.label_system != ACT_CODE_SYSTEM {
        return Err(format!("label_system must be {ACT_CODE_SYSTEM}"));
    }
    for (what, value) in [
        ("title", &file.title),
        ("version", &file.version),
        ("release", &file.release),
    ] {
        if value.trim().is_empty() {
            return Err(format!("'{what}' is empty"));
        }
    }
    if file.matching.iter().all(|m| m.trim().is_empty()) {
        return Err("'matching' does not describe the matching".into());
    }
    let listed: BTreeSet<&str> = file.labels.iter().map(|l| l.code.as_str()).collect();
    let known: BTreeSet<&str> = LABELS.iter().map(|(c, _)| *c).collect();
    if listed != known || file.labels.len() != LABELS.len() {
        return Err(format!(
            "labels must be exactly {known:?}, found {listed:?}"
        ));
    }
    for l in &file.labels {
        if label_display(&l.code) != Some(l.display.as_str()) {
            return Err(format!(
                "label {}: display '{}' is not the ActCode display",
                l.code, l.display
            ));
        }
    }
    Ok(())
}

fn check_sources(file: &DataFile) -> Result<HashSet<&str>, String> {
    let mut ids = HashSet::new();
    for s in &file.sources {
        if s.id.trim().is_empty() || s.title.trim().is_empty() || !ids.insert(s.id.as_str()) {
            return Err(format!("source '{}': empty or duplicate", s.id));
        }
    }
    Ok(ids)
}

/// Ingredient names: lower case, trimmed, with at least one word.
fn check_name(name: &str, at: &str) -> Result<(), String> {
    if name.trim() != name || name.to_lowercase() != name || tokens(name).is_empty() {
        return Err(format!(
            "{at}: name '{name}' must be lower case, trimmed and not empty"
        ));
    }
    Ok(())
}

fn add_phrase(
    phrases: &mut HashMap<Vec<String>, Target>,
    name: &str,
    target: Target,
    at: &str,
) -> Result<(), String> {
    let words = tokens(name);
    if words.is_empty() {
        return Err(format!("{at}: '{name}' has no words"));
    }
    match phrases.get(&words) {
        None => {
            phrases.insert(words, target);
            Ok(())
        }
        // The same ingredient in two classes: allowed here, judged by check_overlaps.
        Some(existing) if *existing == target && matches!(target, Target::Ingredient(_)) => Ok(()),
        Some(_) => Err(format!(
            "{at}: '{name}' is already used as another ingredient, alias, brand or noted name"
        )),
    }
}

fn compile_rules(
    rules: &[RuleDef],
    own: &HashSet<&str>,
    at: &str,
    what: &str,
) -> Result<Vec<Rule>, String> {
    rules
        .iter()
        .map(|rule| {
            if rule.ingredients.is_empty() || rule.any.is_empty() || rule.reason.trim().is_empty() {
                return Err(format!(
                    "{at}: a {what} rule needs ingredients, terms and a reason"
                ));
            }
            if let Some(name) = rule.ingredients.iter().find(|n| !own.contains(n.as_str())) {
                return Err(format!(
                    "{at}: {what} names '{name}', which is not an ingredient of the class"
                ));
            }
            let any = rule
                .any
                .iter()
                .map(|term| {
                    let words = tokens(term);
                    if words.is_empty() {
                        Err(format!("{at}: {what} term '{term}' has no words"))
                    } else if rule.ingredients.iter().any(|i| tokens(i) == words) {
                        Err(format!(
                            "{at}: {what} term '{term}' is the ingredient itself"
                        ))
                    } else {
                        Ok(words)
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Rule {
                ingredients: rule.ingredients.clone(),
                any,
            })
        })
        .collect()
}

/// A BNF code (chapter, section, paragraph, sub-paragraph digits, then an optional chemical
/// code) that agrees with its section number: 4.2.1 ↔ 0402010.
fn check_bnf(bnf: &BnfDef) -> Result<(), String> {
    let code = bnf.code.as_str();
    let digits = code.get(..7).unwrap_or(code);
    let rest = code.get(7..).unwrap_or("");
    let well_formed = digits.len() == 7
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (rest.is_empty()
            || (rest.len() == 2 && rest.bytes().all(|b| b.is_ascii_alphanumeric())));
    if !well_formed || bnf.name.trim().is_empty() {
        return Err(format!("BNF code '{code}' is malformed or unnamed"));
    }
    let parts: Vec<u32> = bnf
        .section
        .split('.')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| format!("BNF section '{}' is not a number", bnf.section))?;
    let mut expected = String::new();
    for (i, part) in parts.iter().enumerate() {
        match i {
            0..=2 => expected.push_str(&format!("{part:02}")),
            3 => expected.push_str(&part.to_string()),
            _ => return Err(format!("BNF section '{}' is too deep", bnf.section)),
        }
    }
    let agrees = digits.starts_with(&expected)
        && digits
            .get(expected.len()..)
            .is_some_and(|tail| tail.bytes().all(|b| b == b'0'));
    if !agrees {
        return Err(format!(
            "BNF code '{code}' does not match section {}",
            bnf.section
        ));
    }
    Ok(())
}

/// An ATC code down to the chemical subgroup: `N05A`, `J05AF`, `G04BX14`.
fn is_atc_group(code: &str) -> bool {
    let b = code.as_bytes();
    let shape = |i: usize, digit: bool| {
        b.get(i).is_some_and(|c| {
            if digit {
                c.is_ascii_digit()
            } else {
                c.is_ascii_uppercase()
            }
        })
    };
    matches!(b.len(), 3 | 4 | 5 | 7)
        && b"ABCDGHJLMNPRSV".contains(&b[0])
        && shape(1, true)
        && shape(2, true)
        && (b.len() < 4 || shape(3, false))
        && (b.len() < 5 || shape(4, false))
        && (b.len() < 7 || (shape(5, true) && shape(6, true)))
}

/// An ingredient in classes of different labels is an error unless listed, with those labels,
/// in `deliberate_overlaps`; every listed overlap must exist.
fn check_overlaps(
    file: &DataFile,
    ingredient_classes: &HashMap<String, Vec<usize>>,
    classes: &[Class],
) -> Result<(), String> {
    let mut listed: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for o in &file.deliberate_overlaps {
        if o.reason.trim().is_empty() {
            return Err(format!("overlap '{}': no reason", o.ingredient));
        }
        let labels = o
            .labels
            .iter()
            .map(|l| {
                static_label(l)
                    .ok_or_else(|| format!("overlap '{}': unknown label '{l}'", o.ingredient))
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        listed.insert(o.ingredient.as_str(), labels);
    }
    for (name, in_classes) in ingredient_classes {
        if in_classes.len() < 2 {
            continue;
        }
        let labels: BTreeSet<&str> = in_classes
            .iter()
            .filter_map(|&i| classes.get(i).map(|c| c.label))
            .collect();
        match listed.get(name.as_str()) {
            Some(l) if *l == labels => {}
            _ => {
                return Err(format!(
                    "ingredient '{name}' is in several classes ({labels:?}) but not listed as a deliberate overlap"
                ));
            }
        }
    }
    for name in listed.keys() {
        if ingredient_classes.get(*name).is_none_or(|c| c.len() < 2) {
            return Err(format!("deliberate overlap '{name}' is not in two classes"));
        }
    }
    Ok(())
}

/// Notes: a name "not labelled" is in no class (and is recognised, so that it keeps its words
/// from shorter phrases); a name "labelled (ambiguous)" or "conditional" is a class ingredient.
fn check_notes(file: &DataFile, phrases: &mut HashMap<Vec<String>, Target>) -> Result<(), String> {
    for note in &file.notes {
        let at = format!("note '{}'", note.topic);
        if note.topic.trim().is_empty() || note.reason.trim().is_empty() || note.names.is_empty() {
            return Err(format!("{at}: needs a topic, names and a reason"));
        }
        if !NOTE_DECISIONS.contains(&note.decision.as_str()) {
            return Err(format!("{at}: unknown decision '{}'", note.decision));
        }
        for name in &note.names {
            check_name(name, &at)?;
            let existing = phrases.get(&tokens(name)).cloned();
            if note.decision == NOT_LABELLED {
                match existing {
                    None => {
                        phrases.insert(tokens(name), Target::Known);
                    }
                    Some(Target::Known) => {}
                    Some(_) => {
                        return Err(format!(
                            "{at}: '{name}' is noted as not labelled but a class names it"
                        ));
                    }
                }
            } else if !matches!(existing, Some(Target::Ingredient(ref i)) if i == name) {
                return Err(format!(
                    "{at}: '{name}' is noted as labelled but is not a class ingredient"
                ));
            }
        }
    }
    Ok(())
}

/// Every listed code must label its entry with its class's label (through the class's rules).
fn check_codes_fire(file: &DataFile, mapping: &Mapping) -> Result<(), String> {
    for c in &file.classes {
        for code in &c.codes {
            let found = Found {
                ingredients: code.ingredients.iter().cloned().collect(),
                ..Found::default()
            };
            if !evaluate(mapping, &found).contains(c.label.as_str()) {
                return Err(format!(
                    "class '{}': code {} ({}) would not be labelled {}",
                    c.id, code.code, code.term, c.label
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn request(text: &str) -> Value {
        json!({"resourceType": "MedicationRequest", "medicationCodeableConcept": {"text": text}})
    }

    fn labels_of_text(text: &str) -> Vec<&'static str> {
        labels_for(&request(text))
    }

    #[test]
    fn the_data_file_is_valid() {
        assert_eq!(check_data(), Ok(()));
        assert!(mapping_version().is_some());
    }

    #[test]
    fn displays_and_system() {
        assert_eq!(
            ACT_CODE_SYSTEM,
            "http://terminology.hl7.org/CodeSystem/v3-ActCode"
        );
        assert_eq!(
            label_display("HIV"),
            Some("HIV/AIDS information sensitivity")
        );
        assert_eq!(
            label_display("PSY"),
            Some("psychiatry information sensitivity")
        );
        assert_eq!(
            label_display("ETH"),
            Some("substance abuse information sensitivity")
        );
        assert_eq!(
            label_display("STD"),
            Some("sexually transmitted disease information sensitivity")
        );
        assert_eq!(
            label_display("SEX"),
            Some("sexuality and reproductive health information sensitivity")
        );
        assert_eq!(label_display("R"), None);
        assert_eq!(label_display("psy"), None);
    }

    #[test]
    fn typical_uk_products_are_labelled() {
        for (text, expected) in [
            ("Dolutegravir 50mg tablets", "HIV"),
            ("Biktarvy 50mg/200mg/25mg tablets", "HIV"),
            (
                "Emtricitabine 200mg / Tenofovir disoproxil 245mg tablets",
                "HIV",
            ),
            ("Tenofovir disoproxil 245mg tablets", "HIV"),
            ("Truvada 200mg/245mg tablets", "HIV"),
            ("Lamivudine 300mg tablets", "HIV"),
            ("Darunavir 800mg tablets", "HIV"),
            ("Ritonavir 100mg tablets", "HIV"),
            (
                "Apretude 600mg/3ml prolonged-release suspension for injection",
                "HIV",
            ),
            ("Olanzapine 10mg tablets", "PSY"),
            (
                "Aripiprazole 400mg powder and solvent for prolonged-release suspension for injection",
                "PSY",
            ),
            (
                "Flupentixol decanoate 20mg/1ml solution for injection ampoules",
                "PSY",
            ),
            ("Priadel 400mg modified-release tablets", "PSY"),
            ("Lithium carbonate 400mg modified-release tablets", "PSY"),
            ("Depakote 250mg gastro-resistant tablets", "PSY"),
            ("Sertraline 50mg tablets", "PSY"),
            ("Mirtazapine 15mg tablets", "PSY"),
            ("Amitriptyline 10mg tablets", "PSY"),
            ("Duloxetine 60mg gastro-resistant capsules", "PSY"),
            ("Elvanse 30mg capsules", "PSY"),
            ("Methylphenidate 18mg modified-release tablets", "PSY"),
            ("Methadone 1mg/1ml oral solution sugar free", "ETH"),
            ("Buprenorphine 8mg sublingual tablets sugar free", "ETH"),
            ("Buprenorphine 8mg / Naloxone 2mg sublingual tablets", "ETH"),
            (
                "Buvidal 64mg/0.18ml prolonged-release solution for injection pre-filled syringes",
                "ETH",
            ),
            ("Acamprosate 333mg gastro-resistant tablets", "ETH"),
            ("Disulfiram 200mg tablets", "ETH"),
            ("Naltrexone 50mg tablets", "ETH"),
            ("Nalmefene 18mg tablets", "ETH"),
            ("Lofexidine 200microgram tablets", "ETH"),
            (
                "Prenoxad 2mg/2ml solution for injection pre-filled syringes",
                "ETH",
            ),
            ("Podophyllotoxin 0.15% cream", "STD"),
            ("Warticon 0.5% solution", "STD"),
            (
                "Benzathine benzylpenicillin 2.4 million units powder for suspension for injection",
                "STD",
            ),
            ("Desogestrel 75microgram tablets", "SEX"),
            ("Levonorgestrel 1.5mg tablets", "SEX"),
            ("Ulipristal acetate 30mg tablets", "SEX"),
            (
                "Ethinylestradiol 30microgram / Levonorgestrel 150microgram tablets",
                "SEX",
            ),
            ("Microgynon 30 tablets", "SEX"),
            (
                "Medroxyprogesterone 150mg/1ml suspension for injection pre-filled syringes",
                "SEX",
            ),
            ("Norethisterone 350microgram tablets", "SEX"),
            ("Etonogestrel 68mg implant", "SEX"),
            ("Mifepristone 200mg tablets", "SEX"),
            ("Misoprostol 200microgram tablets", "SEX"),
            ("Sildenafil 50mg tablets", "SEX"),
            ("Tadalafil 10mg tablets", "SEX"),
            (
                "Follitropin alfa 75units powder and solvent for solution for injection vials",
                "SEX",
            ),
        ] {
            assert_eq!(labels_of_text(text), [expected], "{text}");
        }
    }

    #[test]
    fn ordinary_and_excluded_products_are_not_labelled() {
        for text in [
            "Paracetamol 500mg tablets",
            "Amoxicillin 500mg capsules",
            "Sodium valproate 200mg gastro-resistant tablets",
            "Valproic acid 250mg gastro-resistant tablets",
            "Lamotrigine 100mg tablets",
            "Carbamazepine 200mg tablets",
            "Doxycycline 100mg capsules",
            "Azithromycin 500mg tablets",
            "Ceftriaxone 1g powder for solution for injection vials",
            "Imiquimod 5% cream 250mg sachets",
            "Estradiol 2mg tablets",
            "Testosterone 50mg/5g gel unit dose sachets",
            "Triptorelin 11.25mg powder and solvent for suspension for injection vials",
            "Estradiol 50micrograms/24hours / Levonorgestrel 7micrograms/24hours transdermal patches",
            "Co-cyprindiol 2000microgram/35microgram tablets",
            "Ethinylestradiol 10microgram tablets",
            "Norethisterone 5mg tablets",
            "Medroxyprogesterone 10mg tablets",
            "Ulipristal acetate 5mg tablets",
            "Dienogest 2mg tablets",
            "Buprenorphine 10micrograms/hour seven day transdermal patches",
            "Buprenorphine 200microgram sublingual tablets sugar free",
            "Temgesic 400microgram sublingual tablets",
            "Naloxone 400micrograms/1ml solution for injection ampoules",
            "Naltrexone 8mg / Bupropion 90mg modified-release tablets",
            "Diamorphine 10mg powder for solution for injection ampoules",
            "Chlordiazepoxide 10mg capsules",
            "Nicotine 21mg/24hours transdermal patches",
            "Prochlorperazine 5mg tablets",
            "Modafinil 100mg tablets",
            "Diazepam 5mg tablets",
            "Duloxetine 40mg gastro-resistant capsules",
            "Yentreve 20mg gastro-resistant capsules",
            "Doxepin 5% cream",
            "Amitriptyline 2% / Ketamine 1% cream",
            "Sildenafil 20mg tablets",
            "Sildenafil 20 mg film-coated tablets",
            "Sildenafil 10mg/ml oral suspension",
            "Revatio 20mg tablets",
            "Adcirca 20mg tablets",
            "Alprostadil 500micrograms/1ml concentrate for solution for infusion ampoules",
            "Diclofenac sodium 75mg / Misoprostol 200microgram modified-release tablets",
            "Nirmatrelvir 150mg tablets and Ritonavir 100mg tablets",
            "Zeffix 100mg tablets",
            "Lamivudine 100mg tablets",
            "Tenofovir alafenamide 25mg tablets",
            "Entecavir 500microgram tablets",
            "Lithium chloride 150mmol/l solution for injection",
            "Dinoprostone 10mg vaginal delivery system",
            "Chorionic gonadotrophin 5,000unit powder and solvent for solution for injection ampoules",
            "",
        ] {
            assert_eq!(labels_of_text(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn names_match_as_whole_words_in_any_case() {
        assert_eq!(labels_of_text("OLANZAPINE 5MG TABLETS"), ["PSY"]);
        assert_eq!(labels_of_text("olanzapine"), ["PSY"]);
        assert_eq!(labels_of_text("Olanzapinex 5mg"), Vec::<&str>::new());
        assert_eq!(labels_of_text("Xolanzapine"), Vec::<&str>::new());
        // A multi-word name needs all its words, in order.
        assert_eq!(labels_of_text("Lithium 400mg tablets"), Vec::<&str>::new());
        assert_eq!(labels_of_text("carbonate lithium"), Vec::<&str>::new());
        assert_eq!(labels_of_text("Benzathine penicillin 2.4MU"), ["STD"]);
        // Old names and US spellings are aliases.
        assert_eq!(labels_of_text("Dothiepin 75mg tablets"), ["PSY"]);
        assert_eq!(labels_of_text("Tenofovir 245mg tablets"), ["HIV"]);
        assert_eq!(labels_of_text("Ethinyl estradiol / norgestimate"), ["SEX"]);
    }

    #[test]
    fn strengths_are_read_however_spelt() {
        assert_eq!(tokens("Desogestrel 75 mcg"), ["desogestrel", "75microgram"]);
        assert_eq!(tokens("75micrograms/24hours"), ["75microgram", "24hours"]);
        assert_eq!(
            tokens("Levonorgestrel 1.5 mg."),
            ["levonorgestrel", "1.5mg"]
        );
        assert_eq!(
            tokens("Co-codamol 30mg/500mg"),
            ["co", "codamol", "30mg", "500mg"]
        );
        assert_eq!(
            labels_of_text("Norethisterone 350 micrograms tablets"),
            ["SEX"]
        );
        assert_eq!(
            labels_of_text("Sildenafil 20 mg tablets"),
            Vec::<&str>::new()
        );
        assert_eq!(
            labels_of_text("Duloxetine 20 mg capsules"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn several_labels_come_sorted_and_once() {
        let both = json!({
            "resourceType": "MedicationStatement",
            "medicationCodeableConcept": {
                "coding": [{"system": "https://dmd.nhs.uk", "code": "999", "display": "Methadone 1mg/ml oral solution"}],
                "text": "Methadone and olanzapine and methadone"
            }
        });
        assert_eq!(labels_for(&both), ["ETH", "PSY"]);
    }

    #[test]
    fn every_medication_entry_type_is_read() {
        for resource_type in [
            "MedicationRequest",
            "MedicationStatement",
            "MedicationDispense",
            "MedicationAdministration",
        ] {
            let entry = json!({
                "resourceType": resource_type,
                "medicationCodeableConcept": {"coding": [{
                    "system": "https://dmd.nhs.uk", "code": "000", "display": "Quetiapine 25mg tablets"
                }]}
            });
            assert_eq!(labels_for(&entry), ["PSY"], "{resource_type}");
        }
        let medication = json!({
            "resourceType": "Medication",
            "code": {"text": "Desogestrel 75microgram tablets"}
        });
        assert_eq!(labels_for(&medication), ["SEX"]);
        let compounded = json!({
            "resourceType": "Medication",
            "code": {"text": "Special order capsules"},
            "ingredient": [
                {"itemCodeableConcept": {"text": "Lactose"}},
                {"itemCodeableConcept": {"coding": [{"display": "Naltrexone hydrochloride"}]}}
            ]
        });
        assert_eq!(labels_for(&compounded), ["ETH"]);
    }

    #[test]
    fn a_contained_medication_is_followed() {
        let order = json!({
            "resourceType": "MedicationRequest",
            "contained": [
                {"resourceType": "Medication", "id": "other", "code": {"text": "Olanzapine 5mg tablets"}},
                {"resourceType": "Medication", "id": "med1", "code": {"coding": [{
                    "system": "http://snomed.info/sct", "code": "30934611000001107",
                    "display": "Emtricitabine + Tenofovir disoproxil"
                }]}}
            ],
            "medicationReference": {"reference": "#med1"}
        });
        assert_eq!(labels_for(&order), ["HIV"]);
        // A reference that is not to a contained resource: only its display is read.
        let external = json!({
            "resourceType": "MedicationDispense",
            "medicationReference": {"reference": "Medication/abc", "display": "Sertraline 50mg tablets"}
        });
        assert_eq!(labels_for(&external), ["PSY"]);
        let dangling = json!({
            "resourceType": "MedicationDispense",
            "medicationReference": {"reference": "#nope"},
            "contained": [{"resourceType": "Patient", "id": "nope"}]
        });
        assert_eq!(labels_for(&dangling), Vec::<&str>::new());
        // A cycle of contained references ends.
        let cycle = json!({
            "resourceType": "Medication",
            "contained": [{"resourceType": "Medication", "id": "a",
                           "ingredient": [{"itemReference": {"reference": "#a"}}]}],
            "ingredient": [{"itemReference": {"reference": "#a", "display": "Methadone"}}]
        });
        assert_eq!(labels_for(&cycle), ["ETH"]);
    }

    #[test]
    fn dm_d_codes_known_to_the_smr_dmd_subset_are_used() {
        // 321987003 Citalopram 20mg tablets (VMP), in the smr-dmd subset; no text at all.
        for system in ["https://dmd.nhs.uk", "http://snomed.info/sct"] {
            let order = json!({
                "resourceType": "MedicationRequest",
                "medicationCodeableConcept": {"coding": [{"system": system, "code": "321987003"}]}
            });
            assert_eq!(
                smr_dmd::identify(&[(Some(system), "321987003")], None).ingredient_names(),
                ["citalopram"]
            );
            assert_eq!(labels_for(&order), ["PSY"], "{system}");
        }
        // The same code in another system is not guessed at.
        let other = json!({
            "resourceType": "MedicationRequest",
            "medicationCodeableConcept": {"coding": [{"system": "http://example.org/codes", "code": "321987003"}]}
        });
        assert_eq!(labels_for(&other), Vec::<&str>::new());
    }

    #[test]
    fn codes_listed_in_the_data_file_are_used() {
        for (code, expected) in [
            ("30934611000001107", "HIV"), // VTM Emtricitabine + Tenofovir disoproxil
            ("23942511000001102", "HIV"), // VTM Dolutegravir
            ("321730000", "PSY"),         // VMP Lithium carbonate 250mg tablets (PINCER)
            ("108441004", "PSY"),         // VTM Olanzapine
            ("425741009", "ETH"),         // VTM Buprenorphine + Naloxone
            ("415128000", "STD"),         // VTM Podophyllotoxin
            ("412420008", "SEX"),         // VTM Ethinylestradiol + Levonorgestrel
        ] {
            let order = json!({
                "resourceType": "MedicationRequest",
                "medicationCodeableConcept": {"coding": [{"system": "https://dmd.nhs.uk/", "code": code}]}
            });
            assert_eq!(labels_for(&order), [expected], "{code}");
        }
    }

    #[test]
    fn every_code_in_the_file_is_a_valid_sctid_and_labels_its_class() {
        let file: DataFile = serde_json::from_str(DATA).expect("data file parses");
        let mut seen = 0;
        for class in &file.classes {
            for code in &class.codes {
                assert!(
                    smr_fhir::sctid::is_concept_id(&code.code),
                    "{} ({}) fails the SNOMED CT check",
                    code.code,
                    code.term
                );
                let order = json!({
                    "resourceType": "MedicationStatement",
                    "medicationCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": code.code}]}
                });
                assert!(
                    labels_for(&order).iter().any(|l| *l == class.label),
                    "{} ({}) does not give {}",
                    code.code,
                    code.term,
                    class.label
                );
                seen += 1;
            }
        }
        assert!(seen > 100, "only {seen} codes");
    }

    #[test]
    fn the_data_file_covers_what_it_must() {
        let file: DataFile = serde_json::from_str(DATA).expect("data file parses");
        let labels: BTreeSet<&str> = file.classes.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            LABELS.iter().map(|(c, _)| *c).collect::<BTreeSet<_>>()
        );
        let ingredients: HashSet<&str> = file
            .classes
            .iter()
            .flat_map(|c| &c.ingredients)
            .map(String::as_str)
            .collect();
        for must in [
            "dolutegravir",
            "emtricitabine",
            "tenofovir disoproxil",
            "bictegravir",
            "olanzapine",
            "lithium carbonate",
            "sertraline",
            "methylphenidate",
            "methadone",
            "buprenorphine",
            "naltrexone",
            "lofexidine",
            "disulfiram",
            "acamprosate",
            "nalmefene",
            "podophyllotoxin",
            "benzathine benzylpenicillin",
            "desogestrel",
            "levonorgestrel",
            "ulipristal",
            "ethinylestradiol",
            "mifepristone",
            "misoprostol",
            "sildenafil",
        ] {
            assert!(ingredients.contains(must), "{must}");
        }
        for excluded in [
            "sodium valproate",
            "lamotrigine",
            "doxycycline",
            "azithromycin",
            "ceftriaxone",
            "estradiol",
            "testosterone",
        ] {
            assert!(!ingredients.contains(excluded), "{excluded}");
            assert!(
                file.notes
                    .iter()
                    .any(|n| n.decision == NOT_LABELLED && n.names.iter().any(|x| x == excluded)),
                "{excluded} is not explained in the notes"
            );
        }
    }

    #[test]
    fn defects_in_the_data_are_reported() {
        let good: Value = serde_json::from_str(DATA).expect("data file parses");
        let broken = |edit: &dyn Fn(&mut Value)| {
            let mut v = good.clone();
            edit(&mut v);
            build(&v.to_string()).err().unwrap_or_default()
        };
        let wrong_label = broken(&|v| v["classes"][0]["label"] = json!("XYZ"));
        assert!(wrong_label.contains("unknown label"), "{wrong_label}");
        let no_source = broken(&|v| v["classes"][0]["source"] = json!(" "));
        assert!(no_source.contains("'source' is empty"), "{no_source}");
        let bad_code =
            broken(&|v| v["classes"][0]["codes"][0]["code"] = json!("30934611000001108"));
        assert!(bad_code.contains("Verhoeff"), "{bad_code}");
        let overlap = broken(&|v| {
            let first = v["classes"][0]["ingredients"][0].clone();
            let psy = v["classes"]
                .as_array_mut()
                .and_then(|c| c.iter_mut().find(|c| c["label"] == "PSY"))
                .expect("a PSY class");
            psy["ingredients"]
                .as_array_mut()
                .expect("ingredients")
                .push(first);
        });
        assert!(overlap.contains("deliberate overlap"), "{overlap}");
        let noted = broken(&|v| v["notes"][0]["names"] = json!(["olanzapine"]));
        assert!(noted.contains("a class names it"), "{noted}");
        let bnf = broken(&|v| v["classes"][0]["bnf"][0]["code"] = json!("0403010"));
        assert!(bnf.contains("does not match section"), "{bnf}");
        let unknown = broken(&|v| v["classes"][0]["surprise"] = json!(1));
        assert!(unknown.contains("unknown field"), "{unknown}");
        let display = broken(&|v| v["labels"][0]["display"] = json!("HIV"));
        assert!(display.contains("not the ActCode display"), "{display}");
        assert_eq!(build(&good.to_string()).err(), None);
    }

    #[test]
    fn unrelated_or_malformed_resources_have_no_labels() {
        for v in [
            json!(null),
            json!("Olanzapine"),
            json!([{"medicationCodeableConcept": {"text": "Olanzapine"}}]),
            json!({"resourceType": "MedicationRequest"}),
            json!({"resourceType": "MedicationRequest", "medicationCodeableConcept": "Olanzapine"}),
            json!({"resourceType": "MedicationRequest", "medicationCodeableConcept": {"coding": "x", "text": 5}}),
            json!({"resourceType": "MedicationRequest", "medicationReference": {"reference": "#"}}),
            json!({"resourceType": "Observation", "code": {"text": "Olanzapine level"}}),
        ] {
            assert_eq!(labels_for(&v), Vec::<&str>::new(), "{v}");
        }
    }

    const KEYS: &[&str] = &[
        "resourceType",
        "medicationCodeableConcept",
        "medicationReference",
        "coding",
        "system",
        "code",
        "display",
        "text",
        "reference",
        "contained",
        "id",
        "ingredient",
        "itemCodeableConcept",
        "itemReference",
    ];
    const STRINGS: &[&str] = &[
        "Medication",
        "MedicationRequest",
        "#med1",
        "med1",
        "https://dmd.nhs.uk",
        "http://snomed.info/sct",
        "321987003",
        "30934611000001107",
        "Olanzapine 10mg",
        "tenofovir alafenamide",
        "Sildenafil 20 mg",
        "1.5.mg",
        "..",
        "µg",
        "İ",
        "ß",
        "75 micrograms",
    ];

    fn json_ish() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,40}".prop_map(Value::String),
            prop::sample::select(STRINGS).prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(5, 96, 6, |inner| {
            let key = prop_oneof![
                prop::sample::select(KEYS).prop_map(str::to_owned),
                ".{0,12}",
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key, inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn never_panics_and_answers_known_labels_in_order(v in json_ish()) {
            let labels = labels_for(&v);
            prop_assert!(labels.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(labels.iter().all(|l| label_display(l).is_some()));
            let entry = json!({"resourceType": "MedicationRequest", "medicationCodeableConcept": v.clone(), "contained": [v]});
            let _ = labels_for(&entry);
        }

        #[test]
        fn any_text_is_read_and_a_named_antiretroviral_is_always_labelled(text in ".{0,200}", display in ".{0,60}") {
            let entry = json!({"resourceType": "MedicationRequest", "medicationCodeableConcept": {
                "coding": [{"system": "https://dmd.nhs.uk", "code": display.clone(), "display": display}],
                "text": text.clone()
            }});
            let _ = labels_for(&entry);
            let labelled = request(&format!("{text} Dolutegravir 50mg tablets"));
            prop_assert!(labels_for(&labelled).contains(&"HIV"));
        }
    }
}
