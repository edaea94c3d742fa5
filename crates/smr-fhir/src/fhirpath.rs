//! The FHIRPath subset used by R4 search-parameter expressions. OWNER: search helper.
