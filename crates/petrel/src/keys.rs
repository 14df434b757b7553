//! Signing keys kept in files: `ID SECRET` lines, the last one signs and all verify. Used
//! for tracking links and VERP return paths, so that without any key in the configuration
//! petrel creates one on first start and links keep working across restarts.

use std::io::Write as _;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use ring::rand::{SecureRandom, SystemRandom};
use tracing::info;

/// The keys given in the configuration, else those of `file` (created when missing).
pub fn configured_or_file(configured: &[(u8, String)], file: &Path) -> Result<Vec<(u8, String)>> {
    if configured.is_empty() {
        read_or_create_key_file(file)
    } else {
        Ok(configured.to_vec())
    }
}

/// Reads `ID SECRET` lines (the `tracking-key` syntax; `#` comments) from the key file, or
/// creates it, readable by petrel's user only, with one random 256-bit key.
fn read_or_create_key_file(path: &Path) -> Result<Vec<(u8, String)>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_key_file(&text).with_context(|| format!("{}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            SystemRandom::new()
                .fill(&mut secret)
                .map_err(|_| anyhow::anyhow!("no random numbers for a signing key"))?;
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let mut f = create_private(path)
                .with_context(|| format!("creating key file {}", path.display()))?;
            writeln!(
                f,
                "# petrel signing keys: ID SECRET per line; the last one signs, all verify.\n1 {hex}"
            )?;
            f.sync_all()?;
            info!("created key file {}", path.display());
            Ok(vec![(1, hex)])
        }
        Err(e) => Err(e).with_context(|| format!("reading key file {}", path.display())),
    }
}

fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

fn parse_key_file(text: &str) -> Result<Vec<(u8, String)>> {
    let mut out: Vec<(u8, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(id), Some(secret), None) = (words.next(), words.next(), words.next()) else {
            bail!("line {}: expected `ID SECRET`", n + 1);
        };
        let id: u8 = id
            .parse()
            .with_context(|| format!("line {}: key id `{id}` is not 0-255", n + 1))?;
        if secret.len() < 16 {
            bail!("line {}: the secret must be at least 16 characters", n + 1);
        }
        if out.iter().any(|(k, _)| *k == id) {
            bail!("line {}: key id {id} is given twice", n + 1);
        }
        out.push((id, secret.to_string()));
    }
    if out.is_empty() {
        bail!("no keys");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/tracking.key");
        let first = read_or_create_key_file(&path).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].1.len(), 64);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(read_or_create_key_file(&path).unwrap(), first);
    }

    #[test]
    fn bad_key_files_are_refused_with_the_line() {
        assert!(parse_key_file("# nothing\n").is_err());
        let e = parse_key_file("1 short\n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = parse_key_file("1 aaaaaaaaaaaaaaaaaaaa\n1 bbbbbbbbbbbbbbbbbbbb\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("twice"), "{e}");
    }
}
