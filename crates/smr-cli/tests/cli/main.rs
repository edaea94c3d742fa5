//! The CLI integration tests (they drive the real `smr` binary), one module per command,
//! linked into one test binary rather than nine: each linked the same dependencies again.
//! `cargo test -p smr-cli --test cli <module>::` runs one.

mod support;

mod audit_verify;
mod gp_extract_import;
mod hl7v2_import;
mod import_cli;
mod loadgen;
mod pgx_call;
mod pgx_cli;
mod serve_tls_cli;
mod synth_cli;
mod terminology_cli;
