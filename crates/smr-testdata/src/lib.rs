//! Test-only access to the reference data in `../shared` (beside the project checkout).
//!
//! Developers' machines and CI have `../shared`; users' machines do not. A test that needs it
//! calls [`shared`]: with the data present it gets the path; without it the test skips with a
//! notice — unless `SMR_REQUIRE_SHARED` is set (CI sets it), when a missing file is a failure,
//! so a moved or renamed file can never turn a real check into a silent skip.

use std::path::{Path, PathBuf};

/// The variable that turns a missing `../shared` file into a test failure.
pub const REQUIRE_VAR: &str = "SMR_REQUIRE_SHARED";

/// The `../shared` directory beside the project (it may not exist).
pub fn shared_root() -> PathBuf {
    // This crate lives at crates/smr-testdata, so the project root is two levels up.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// `../shared/<relative>` when it exists; `None` (after a SKIP notice) when it does not.
///
/// # Panics
/// When the path is absent and `SMR_REQUIRE_SHARED` is set to anything but `0` or empty.
pub fn shared(relative: &str) -> Option<PathBuf> {
    let path = shared_root().join(relative);
    if path.exists() {
        return Some(path);
    }
    if required() {
        panic!(
            "{} is absent, and {REQUIRE_VAR} says ../shared must be present here",
            path.display()
        );
    }
    eprintln!(
        "SKIP: {} absent (../shared is only on developers' and CI machines)",
        path.display()
    );
    None
}

fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| !v.is_empty() && v != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_path_skips_unless_required() {
        let rel = "no-such-directory-in-shared/none.json";
        if required() {
            assert!(std::panic::catch_unwind(|| shared(rel)).is_err());
        } else {
            assert!(shared(rel).is_none());
        }
    }
}
