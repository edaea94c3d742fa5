//! The FHIR R4 domain of SMR. Pure: no I/O, no async, no database.
//!
//! Layout:
//! - [`resource_types`]: the resource types SMR serves and how each joins a patient's compartment.
//! - [`references`]: walking and rewriting `Reference.reference` values.
//! - [`outcome`]: `OperationOutcome` issues, the one error shape every layer reports in.
//! - [`nhs_number`]: NHS number Modulus 11 check.
//! - [`sctid`]: SNOMED CT / dm+d identifier syntax and Verhoeff check digit.
//! - [`validate`]: structural validation of incoming resources (elements, cardinality, types,
//!   required bindings, references, NHS numbers).
//! - [`datetime`]: FHIR date/dateTime/instant parsing into half-open microsecond ranges.
//! - [`fhirpath`]: the small FHIRPath subset used by R4 search-parameter expressions.
//! - [`fhirpath_patch`]: FHIRPath Patch (a `Parameters` resource) applied to a resource.
//! - [`search_params`]: the R4 search-parameter definitions for the served types.
//! - [`index`]: the index entries extracted from a resource on every write.
//! - [`extract`]: resource → index entries, driven by the definitions.
//! - [`query`]: parsing a FHIR search query string into typed criteria.
//! - [`text`]: string folding shared by indexing and search.
//! - [`json`]: strict reading of JSON request bodies (no duplicate keys, finite numbers kept
//!   as sent, bounded nesting).
//! - [`stored_bundle`]: the rules for Bundles stored as resources (collection, document).
//! - [`summary`]: `_summary` / `_elements` subsets of stored resources.

pub mod datetime;
pub mod extract;
pub mod fhirpath;
pub mod fhirpath_patch;
pub mod index;
pub mod json;
pub mod nhs_number;
pub mod outcome;
pub mod query;
pub mod references;
pub mod resource_types;
pub mod sctid;
pub mod search_params;
pub mod stored_bundle;
pub mod subscription;
pub mod summary;
pub mod text;
pub mod validate;

pub use index::{IndexEntry, IndexValue};
pub use outcome::{Issue, IssueCode, Severity};
