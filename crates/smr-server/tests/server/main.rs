//! The HTTP integration tests, one module per area, linked into one test binary: each
//! separate binary linked the whole server again (~80 MB each in a debug build), which
//! filled CI's disk and spent minutes linking. `cargo test -p smr-server --test server
//! <module>::` runs one area.

#[macro_use]
mod support;

mod access;
mod analytics;
mod bulk_export;
mod cds_hooks;
mod connection_timeouts;
mod content_validation;
mod eps_messages;
mod fhir_api;
mod http_robustness;
mod medication_record;
mod mllp;
mod pgx_vcf;
mod pincer;
mod provenance;
mod reconcile;
mod safety;
mod search;
mod search_robustness;
mod shared_examples;
mod stored_bundles;
mod subscriptions;
mod summary_elements;
mod terminology_lookup;
mod tls;
mod transactions;
mod webapp;
mod webapp_browser;
mod write_integrity;
