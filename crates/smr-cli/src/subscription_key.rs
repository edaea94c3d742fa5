//! The key rest-hook notifications are signed with (`smr serve --subscription-key`): given,
//! or kept in the data directory (`subscription-signing.key`, owner-only), made at first start.
//! Each subscription's secret is derived from it (`smr-app`'s `subscriptions`), so a node
//! that loses this file changes every subscription's secret.

use std::path::Path;

use anyhow::Context;

const FILE: &str = "subscription-signing.key";

pub fn load(given: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(key) = given {
        anyhow::ensure!(
            key.len() >= 16,
            "--subscription-key must be at least 16 characters"
        );
        return Ok(key.as_bytes().to_vec());
    }
    let path = data_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(text.trim().as_bytes().to_vec()),
        Ok(_) => anyhow::bail!("{} is too short to be a key", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    // Two v4 UUIDs: 244 random bits from the OS generator, as hex.
    let key = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    write_owner_only(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    Ok(key.into_bytes())
}

fn write_owner_only(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(None, dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(load(None, dir.path()).unwrap(), first);
        assert_eq!(
            load(Some("a given key, long"), dir.path()).unwrap(),
            b"a given key, long"
        );
        assert!(load(Some("short"), dir.path()).is_err());
    }
}
