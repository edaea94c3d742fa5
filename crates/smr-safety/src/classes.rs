//! Which classes a medicine's ingredients belong to, and whether two ingredient names are
//! the same medicine.
//!
//! Names are dm+d ingredient names, lower-case. A name matches a listed name when it equals it
//! or begins with it followed by a space: salts and esters match their base ("diclofenac
//! sodium" is "diclofenac", "dabigatran etexilate mesilate" is "dabigatran"), a longer word
//! does not ("naproxenate" is not "naproxen"). Class lists are indexed by their first word,
//! so a lookup touches a handful of names, not every class member.

use std::collections::HashMap;

use crate::knowledge::Class;

/// Whether ingredient `name` is `listed` (or a salt or ester of it).
pub fn name_matches(name: &str, listed: &str) -> bool {
    name == listed
        || name
            .strip_prefix(listed)
            .is_some_and(|rest| rest.starts_with(' '))
}

/// Whether two ingredient names are the same medicine: equal, or one a salt or ester of the
/// other. "insulin glargine" and "insulin detemir" are not; "codeine phosphate" and "codeine"
/// are.
pub fn same_ingredient(a: &str, b: &str) -> bool {
    name_matches(a, b) || name_matches(b, a)
}

/// The classes, indexed for lookup by ingredient name.
#[derive(Debug, Clone, Default)]
pub struct ClassIndex {
    classes: Vec<Class>,
    /// First word of a member name → (member name, class index).
    by_first_word: HashMap<String, Vec<(String, usize)>>,
}

impl ClassIndex {
    pub fn new(classes: Vec<Class>) -> ClassIndex {
        let mut by_first_word: HashMap<String, Vec<(String, usize)>> = HashMap::new();
        for (i, c) in classes.iter().enumerate() {
            for member in &c.ingredients {
                let first = member.split(' ').next().unwrap_or(member).to_owned();
                by_first_word
                    .entry(first)
                    .or_default()
                    .push((member.clone(), i));
            }
        }
        ClassIndex {
            classes,
            by_first_word,
        }
    }

    pub fn classes(&self) -> &[Class] {
        &self.classes
    }

    pub fn get(&self, id: &str) -> Option<&Class> {
        self.classes.iter().find(|c| c.id == id)
    }

    /// The ids of the classes ingredient `name` (lower-case) belongs to.
    pub fn classes_of(&self, name: &str) -> impl Iterator<Item = &str> {
        let first = name.split(' ').next().unwrap_or(name);
        self.by_first_word
            .get(first)
            .into_iter()
            .flatten()
            .filter(move |(member, _)| name_matches(name, member))
            .map(|(_, i)| self.classes[*i].id.as_str())
    }

    /// The member name of class `id` that ingredient `name` matches, if any.
    pub fn member_of<'a>(&'a self, name: &str, id: &str) -> Option<&'a str> {
        self.get(id)?
            .ingredients
            .iter()
            .find(|m| name_matches(name, m))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salts_match_their_base_but_longer_words_do_not() {
        assert!(name_matches("diclofenac sodium", "diclofenac"));
        assert!(name_matches("dabigatran etexilate mesilate", "dabigatran"));
        assert!(!name_matches("naproxenate", "naproxen"));
        assert!(same_ingredient("codeine", "codeine phosphate hemihydrate"));
        assert!(!same_ingredient("insulin glargine", "insulin detemir"));
    }

    #[test]
    fn classes_are_found_by_member_name() {
        let index = ClassIndex::new(vec![Class {
            id: "nsaids".into(),
            name: "NSAIDs".into(),
            bnf: "BNF 10.1.1".into(),
            source: "BNF".into(),
            membership: None,
            ingredients: vec!["ibuprofen".into(), "mefenamic acid".into()],
        }]);
        assert_eq!(
            index.classes_of("ibuprofen lysine").collect::<Vec<_>>(),
            ["nsaids"]
        );
        assert_eq!(
            index.classes_of("mefenamic acid").collect::<Vec<_>>(),
            ["nsaids"]
        );
        assert!(index.classes_of("mefenamic").next().is_none());
        assert_eq!(
            index.member_of("ibuprofen lysine", "nsaids"),
            Some("ibuprofen")
        );
    }
}
