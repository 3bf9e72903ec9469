//! SHA-256 of files, as hex: an image's fingerprint, a folder's `SHA256SUMS`.

use crate::error::{Error, Kind, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// The SHA-256 of the files' contents, one after the other.
pub fn sha256_files(files: &[&Path]) -> Result<String> {
    let mut hasher = Sha256::new();
    for file in files {
        hash_into(file, &mut hasher)?;
    }
    Ok(hex(&hasher.finalize()))
}

/// The SHA-256 of one file's contents.
pub fn sha256_file(file: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    hash_into(file, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

fn hash_into(file: &Path, hasher: &mut Sha256) -> Result<()> {
    let cannot = |e: std::io::Error| {
        Error::new(Kind::Failed, format!("cannot read {}: {e}", file.display()))
    };
    let mut f = std::fs::File::open(file).map_err(cannot)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(cannot)?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
