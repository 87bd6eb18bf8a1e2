//! Checkpoint files on disk. Writes are atomic: write to a temporary file in the same
//! folder, fsync it, rename it over the target, fsync the folder. A crash at any instant
//! leaves either the old file or the new one, never a half-written one.

use crate::error::{Error, Result};
use crate::input_file::InputKind;
use std::io::Write;
use std::path::Path;

fn write_error(path: &Path, e: std::io::Error) -> Error {
    Error::Write {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| write_error(&tmp, e))?;
        f.write_all(bytes).map_err(|e| write_error(&tmp, e))?;
        f.sync_all().map_err(|e| write_error(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| write_error(path, e))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Reads a checkpoint or weights file's bytes (a regular file of at most
/// [`InputKind::Checkpoint`]'s cap; see [`crate::input_file`]).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    crate::input_file::read(path, InputKind::Checkpoint)
}
