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

/// Decompresses when the bytes start with the gzip magic.
fn maybe_gunzip(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| Error::data(name, format!("gzip data is corrupt or truncated ({e})")))?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

/// Parses an IDX file (raw or gzip) of u8 elements. `name` appears in error messages.
pub fn parse(bytes: &[u8], name: &str) -> Result<IdxArray> {
    let raw = maybe_gunzip(bytes, name)?;
    if raw.len() < 4 || raw[0] != 0 || raw[1] != 0 {
        return Err(Error::data(
            name,
            "not an IDX file (the magic number must start with two zero bytes)",
        ));
    }
    if raw[2] != 0x08 {
        return Err(Error::data(
            name,
            format!(
                "IDX element type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
                raw[2]
            ),
        ));
    }
    let nd = raw[3] as usize;
    if nd == 0 || raw.len() < 4 + 4 * nd {
        return Err(Error::data(
            name,
            format!(
                "truncated header: {nd} dimensions declared, {} bytes present",
                raw.len()
            ),
        ));
    }
    let dims: Vec<usize> = (0..nd)
        .map(|i| {
            u32::from_be_bytes(raw[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::data(name, format!("dimensions {dims:?} overflow")))?;
    let body = &raw[4 + 4 * nd..];
    if body.len() < count {
        return Err(Error::data(
            name,
            format!(
                "truncated: dimensions {dims:?} need {count} bytes of data, the file has {}",
                body.len()
            ),
        ));
    }
    if body.len() > count {
        return Err(Error::data(
            name,
            format!(
                "{} unexpected bytes after the {count} elements of {dims:?}",
                body.len() - count
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: body.to_vec(),
    })
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
                let bytes = std::fs::read(&path).map_err(|e| Error::Io {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                })?;
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
