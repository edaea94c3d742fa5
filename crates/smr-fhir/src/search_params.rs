//! R4 search-parameter definitions for the served types. OWNER: search helper.
