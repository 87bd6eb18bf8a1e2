//! IDX files (MNIST, Fashion-MNIST), raw or gzip-compressed.
//!
//! Format: magic `00 00 TT DD` (TT = element type, 0x08 = u8; DD = number of dimensions),
//! then DD big-endian u32 sizes, then the elements. Images are [n, rows, cols] u8, scaled to
//! [0, 1]; labels are [n] u8.

use super::Dataset;
use crate::error::{Error, Result};
use std::io::Read;

/// A decoded IDX array of u8 elements.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads up to `n` bytes (fewer only at the end of the stream).
fn read_up_to(r: &mut impl Read, n: u64, name: &str, gz: bool) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(n.min(1 << 26) as usize);
    r.take(n)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(name, gz, e))?;
    Ok(out)
}

fn corrupt(name: &str, gz: bool, e: std::io::Error) -> Error {
    if gz {
        Error::data(
            name,
            format!(
                "gzip data is corrupt or truncated, or followed by bytes that are not gzip ({e})"
            ),
        )
    } else {
        Error::data(name, e.to_string())
    }
}

/// Parses an IDX file (raw or gzip) of u8 elements. `name` appears in error messages.
///
/// One rule for both forms: the data must end exactly after the elements its header
/// declares — trailing bytes are refused, whether raw or inside the gzip stream, and so is
/// anything after the gzip stream that is not another gzip member. A gzip file is
/// decompressed as a stream and never past the size its header declares, so a small file
/// that inflates to gigabytes fails at once instead of taking the memory.
pub fn parse(bytes: &[u8], name: &str) -> Result<IdxArray> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        parse_stream(&mut flate2::bufread::MultiGzDecoder::new(bytes), name, true)
    } else {
        parse_stream(&mut &bytes[..], name, false)
    }
}

fn parse_stream(r: &mut impl Read, name: &str, gz: bool) -> Result<IdxArray> {
    let magic = read_up_to(r, 4, name, gz)?;
    if magic.len() < 4 || magic[0] != 0 || magic[1] != 0 {
        return Err(Error::data(
            name,
            "not an IDX file (the magic number must start with two zero bytes)",
        ));
    }
    if magic[2] != 0x08 {
        return Err(Error::data(
            name,
            format!(
                "IDX element type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
                magic[2]
            ),
        ));
    }
    let nd = magic[3] as usize;
    let header = read_up_to(r, 4 * nd as u64, name, gz)?;
    if nd == 0 || header.len() < 4 * nd {
        return Err(Error::data(
            name,
            format!(
                "truncated header: {nd} dimensions declared, {} bytes present",
                4 + header.len()
            ),
        ));
    }
    let dims: Vec<usize> = header
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes")) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&c| c as u64 <= crate::input_file::InputKind::Data.limit())
        .ok_or_else(|| {
            Error::data(
                name,
                format!(
                    "dimensions {dims:?} declare more elements than accrete reads from one file (at most {})",
                    crate::input_file::human_bytes(crate::input_file::InputKind::Data.limit())
                ),
            )
        })?;
    let data = read_up_to(r, count as u64, name, gz)?;
    if data.len() < count {
        return Err(Error::data(
            name,
            format!(
                "truncated: dimensions {dims:?} need {count} bytes of data, the file has {}",
                data.len()
            ),
        ));
    }
    let extra = read_up_to(r, 1 << 20, name, gz)?;
    if !extra.is_empty() {
        let more = if extra.len() == 1 << 20 {
            " or more"
        } else {
            ""
        };
        return Err(Error::data(
            name,
            format!(
                "{}{more} unexpected bytes after the {count} elements of {dims:?}{}",
                extra.len(),
                if gz { " (inside the gzip data)" } else { "" }
            ),
        ));
    }
    Ok(IdxArray { dims, data })
}

/// Builds a dataset from an image file ([n, rows, cols]) and a label file ([n]), scaling
/// pixels to [0, 1]. Samples are shaped [1, rows, cols].
pub fn dataset(
    images: &[u8],
    labels: &[u8],
    images_name: &str,
    labels_name: &str,
    classes: usize,
) -> Result<Dataset> {
    let im = parse(images, images_name)?;
    let lb = parse(labels, labels_name)?;
    if im.dims.len() != 3 {
        return Err(Error::data(
            images_name,
            format!(
                "expected images [n, rows, cols], got dimensions {:?}",
                im.dims
            ),
        ));
    }
    if lb.dims.len() != 1 {
        return Err(Error::data(
            labels_name,
            format!("expected labels [n], got dimensions {:?}", lb.dims),
        ));
    }
    if im.dims[0] != lb.dims[0] {
        return Err(Error::data(
            images_name,
            format!(
                "{} images but {labels_name} has {} labels",
                im.dims[0], lb.dims[0]
            ),
        ));
    }
    let features = im.data.iter().map(|&p| p as f32 / 255.0).collect();
    let labels: Vec<u32> = lb.data.iter().map(|&l| l as u32).collect();
    Dataset::new(features, labels, vec![1, im.dims[1], im.dims[2]], classes)
        .map_err(|e| Error::data(labels_name, e.to_string()))
}

/// Which half of MNIST-style data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// Reads the four-file MNIST layout (`train-images-idx3-ubyte[.gz]`, `t10k-...`) from `dir`.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_dir(dir: &std::path::Path, split: Split) -> Result<Dataset> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let read = |stem: &str| -> Result<(Vec<u8>, String)> {
        for suffix in [".gz", ""] {
            let path = dir.join(format!("{prefix}-{stem}{suffix}"));
            if path.exists() {
                let bytes = crate::input_file::read(&path, crate::input_file::InputKind::Data)?;
                return Ok((bytes, path.display().to_string()));
            }
        }
        Err(Error::Io {
            path: dir.join(format!("{prefix}-{stem}.gz")).display().to_string(),
            detail: "not found (install Fashion-MNIST with `apt-get install dataset-fashion-mnist`, or point data.dir at a folder holding the IDX files)".into(),
        })
    };
    let (images, iname) = read("images-idx3-ubyte")?;
    let (labels, lname) = read("labels-idx1-ubyte")?;
    dataset(&images, &labels, &iname, &lname, 10)
}
