//! Reading input files safely: every file accrete reads (configurations, data, checkpoints,
//! histories, inputs to predict on) comes through here. A path is read only if it is a
//! regular file — a FIFO nobody writes to would block `open()` forever, and a device such
//! as `/dev/zero` never ends — and only up to a size cap per kind of file, so a wrong path
//! fails at once with a clear error instead of hanging or taking all memory.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

const MIB: u64 = 1 << 20;

/// What a file is for, which sets its size cap and how errors name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A run configuration (TOML) or a JSON spec: at most 4 MiB.
    Config,
    /// A data file (IDX, CSV, inputs to predict on): at most 4 GiB.
    Data,
    /// A checkpoint or a weights file: at most 4 GiB.
    Checkpoint,
    /// A run's `metrics.jsonl`: at most 256 MiB.
    History,
}

impl InputKind {
    /// The largest file of this kind accrete reads, in bytes.
    pub fn limit(self) -> u64 {
        match self {
            InputKind::Config => 4 * MIB,
            InputKind::Data | InputKind::Checkpoint => 4096 * MIB,
            InputKind::History => 256 * MIB,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            InputKind::Config => "a configuration",
            InputKind::Data => "a data file",
            InputKind::Checkpoint => "a checkpoint",
            InputKind::History => "a history (metrics.jsonl)",
        }
    }
}

fn io(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

/// "1.5 GiB"-style sizes for messages.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// What a path that is not a regular file is, for the error message.
fn file_type_name(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// Checks that `path` names a regular file (following symbolic links) of at most
/// `kind`'s size cap, without opening it. Returns its size.
pub fn check(path: &Path, kind: InputKind) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    if !meta.is_file() {
        return Err(io(
            path,
            format!(
                "is {}, not a regular file; accrete reads {} only from a regular file (copy the data to a file first)",
                file_type_name(&meta),
                kind.noun()
            ),
        ));
    }
    over_limit(path, kind, meta.len())?;
    Ok(meta.len())
}

fn over_limit(path: &Path, kind: InputKind, len: u64) -> Result<()> {
    if len > kind.limit() {
        return Err(io(
            path,
            format!(
                "is {} (or more), over the {} accrete reads as {}; is this the right file?",
                human_bytes(len),
                human_bytes(kind.limit()),
                kind.noun()
            ),
        ));
    }
    Ok(())
}

/// Reads the bytes of the regular file `path`, refusing anything else and anything over
/// `kind`'s cap (also a file that grows past it while being read).
pub fn read(path: &Path, kind: InputKind) -> Result<Vec<u8>> {
    let len = check(path, kind)?;
    let file = std::fs::File::open(path).map_err(|e| io(path, e))?;
    // The path could have been replaced between the check and the open.
    let meta = file.metadata().map_err(|e| io(path, e))?;
    if !meta.is_file() {
        return Err(io(
            path,
            "changed into something that is not a regular file",
        ));
    }
    let cap = kind.limit();
    let mut bytes = Vec::with_capacity(len.min(cap) as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io(path, e))?;
    over_limit(path, kind, bytes.len() as u64)?;
    Ok(bytes)
}

/// Reads the regular file `path` as UTF-8 text (see [`read`]).
pub fn read_text(path: &Path, kind: InputKind) -> Result<String> {
    let bytes = read(path, kind)?;
    String::from_utf8(bytes).map_err(|e| {
        io(
            path,
            format!(
                "is not UTF-8 text (invalid byte at offset {}); is this the right file?",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Like [`read_text`], but a missing file reads as `None`.
pub fn read_text_if_exists(path: &Path, kind: InputKind) -> Result<Option<String>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => read_text(path, kind).map(Some),
    }
}

/// Whether `a` and `b` name the same existing file (the same device and inode on unix;
/// equal canonical paths elsewhere). Used to refuse an output path that is an input.
pub fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        ma.dev() == mb.dev() && ma.ino() == mb.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (ma, mb);
        matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("accrete-input-file-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_regular_files_and_refuses_directories() {
        let d = dir();
        let f = d.join("a.txt");
        std::fs::write(&f, "hello").unwrap();
        assert_eq!(read_text(&f, InputKind::Config).unwrap(), "hello");
        let e = read(&d, InputKind::Data).unwrap_err().to_string();
        assert!(e.contains("is a directory, not a regular file"), "{e}");
        assert!(read_text_if_exists(&d.join("missing"), InputKind::History)
            .unwrap()
            .is_none());
        assert!(same_file(&f, &d.join(".").join("a.txt")));
        assert!(!same_file(&f, &d));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_devices_without_reading_them() {
        let e = read(Path::new("/dev/zero"), InputKind::Config)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a character device, not a regular file"), "{e}");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(4 * MIB), "4.0 MiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }
}
