//! NumPy files: `.npy` (one array, `np.save`) and `.npz` (a zip of `.npy` files,
//! `np.savez` stored or `np.savez_compressed` deflated; see [`super::zip`]).
//!
//! `.npy` format versions 1.0, 2.0 and 3.0: the magic `\x93NUMPY`, a version, a header
//! length, and a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (n, d), }`,
//! then the elements. Read: dtypes `u1`, `i4`, `i8`, `f4`, `f8`, little-endian, C order.

use super::arrays::{self, element_count, Array, ArrayNames, Dtype};
use super::{zip, Dataset};
use crate::error::{Error, Result};

/// The first bytes of every `.npy` file.
pub const MAGIC: &[u8] = b"\x93NUMPY";

/// Parses a `.npy` file. `name` appears in error messages.
pub fn parse(bytes: &[u8], name: &str) -> Result<Array> {
    let bad = |d: String| Error::data(name, d);
    if !bytes.starts_with(MAGIC) {
        return Err(bad(
            "not a .npy file (it does not start with \\x93NUMPY); write it with np.save".into(),
        ));
    }
    let (major, minor) = match (bytes.get(6), bytes.get(7)) {
        (Some(&a), Some(&b)) => (a, b),
        _ => return Err(bad("truncated .npy header".into())),
    };
    let (len_bytes, start) = match major {
        1 => (2, 10),
        2 | 3 => (4, 12),
        _ => {
            return Err(bad(format!(
                ".npy format version {major}.{minor} is not supported (1.0, 2.0 and 3.0 are)"
            )))
        }
    };
    if bytes.len() < start {
        return Err(bad("truncated .npy header".into()));
    }
    let mut len = 0usize;
    for (i, &b) in bytes[8..8 + len_bytes].iter().enumerate() {
        len |= (b as usize) << (8 * i);
    }
    let header = bytes.get(start..start.saturating_add(len)).ok_or_else(|| {
        bad(format!(
            "truncated: the header declares {len} bytes, the file has {} after the preamble",
            bytes.len() - start
        ))
    })?;
    let header = std::str::from_utf8(header)
        .map_err(|_| bad("the .npy header is not text; is this the right file?".into()))?;
    let (descr, fortran, shape) = parse_header(header).map_err(|e| {
        bad(format!(
            "unreadable .npy header ({e}): {:?}",
            crate::error::clip(header.trim_end(), 120)
        ))
    })?;
    let dtype = dtype(&descr).map_err(bad)?;
    if fortran && shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(bad(
            "the array is in Fortran (column-major) order; save np.ascontiguousarray(arr) instead"
                .into(),
        ));
    }
    let count = element_count(&shape, dtype, name)?;
    let data = &bytes[start + len..];
    let want = count * dtype.size();
    if data.len() != want {
        let what = if data.len() < want {
            "truncated"
        } else {
            "unexpected bytes after the data"
        };
        return Err(bad(format!(
            "{what}: shape {shape:?} of {} needs {want} bytes of data, the file has {}",
            dtype.name(),
            data.len()
        )));
    }
    Ok(Array {
        shape,
        dtype,
        bytes: data.to_vec(),
    })
}

fn dtype(descr: &str) -> std::result::Result<Dtype, String> {
    let (order, code) = match descr.as_bytes().first() {
        Some(b'<' | b'>' | b'|' | b'=') => (descr.as_bytes()[0], &descr[1..]),
        _ => (b'|', descr),
    };
    let t = match code {
        "u1" => Dtype::U8,
        "i4" => Dtype::I32,
        "i8" => Dtype::I64,
        "f4" => Dtype::F32,
        "f8" => Dtype::F64,
        _ => {
            return Err(format!(
                "dtype {descr:?} is not supported; accrete reads {}",
                arrays::DTYPES
            ))
        }
    };
    if order == b'>' && t != Dtype::U8 {
        return Err(format!(
            "dtype {descr:?} is big-endian; save arr.astype('<{code}') instead"
        ));
    }
    Ok(t)
}

/// The `descr`, `fortran_order` and `shape` of a header dict.
fn parse_header(h: &str) -> std::result::Result<(String, bool, Vec<usize>), String> {
    let mut p = Parser {
        s: h.as_bytes(),
        i: 0,
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    p.expect(b'{')?;
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        match key.as_str() {
            "descr" => descr = Some(p.string()?),
            "fortran_order" => fortran = Some(p.boolean()?),
            "shape" => shape = Some(p.tuple()?),
            other => return Err(format!("unexpected key {other:?}")),
        }
        p.ws();
        if !p.eat(b',') {
            p.ws();
            p.expect(b'}')?;
            break;
        }
    }
    if p.s[p.i..].iter().any(|c| !c.is_ascii_whitespace()) {
        return Err("text after the dict".into());
    }
    Ok((
        descr.ok_or("no 'descr'")?,
        fortran.ok_or("no 'fortran_order'")?,
        shape.ok_or("no 'shape'")?,
    ))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.s.get(self.i) == Some(&c);
        self.i += hit as usize;
        hit
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i))
        }
    }

    fn string(&mut self) -> std::result::Result<String, String> {
        let q = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(format!("expected a quoted string at byte {}", self.i)),
        };
        let start = self.i + 1;
        let end = self.s[start..]
            .iter()
            .position(|&c| c == q)
            .ok_or("an unclosed string")?;
        self.i = start + end + 1;
        Ok(String::from_utf8_lossy(&self.s[start..start + end]).into_owned())
    }

    fn boolean(&mut self) -> std::result::Result<bool, String> {
        for (word, v) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.s[self.i..].starts_with(word) {
                self.i += word.len();
                return Ok(v);
            }
        }
        Err(format!("expected True or False at byte {}", self.i))
    }

    fn tuple(&mut self) -> std::result::Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.ws();
            if self.eat(b')') {
                return Ok(dims);
            }
            let start = self.i;
            while self.s.get(self.i).is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
            // A 'L' suffix: Python 2's long integers.
            let digits = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII digits");
            let _ = self.eat(b'L');
            dims.push(
                digits
                    .parse::<usize>()
                    .map_err(|_| format!("expected a dimension at byte {start}"))?,
            );
            self.ws();
            if !self.eat(b',') {
                self.ws();
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}

/// Reads the features and (when `want_labels`) the labels arrays of an `.npz` file: the
/// entries `<names.features>.npy` and `<names.labels>.npy`. Without `want_labels`, labels
/// are read when present.
pub fn parse_npz(
    bytes: &[u8],
    name: &str,
    names: &ArrayNames,
    want_labels: bool,
) -> Result<(Array, Option<Array>)> {
    let archive = zip::Archive::parse(bytes, name)?;
    let keys: Vec<String> = archive
        .names()
        .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string())
        .collect();
    let read = |key: &str, what: &str| -> Result<Option<Array>> {
        let entry = format!("{key}.npy");
        match archive.read(&entry)? {
            None if what.is_empty() => Ok(None),
            None => Err(arrays::missing(name, key, &keys, what)),
            Some(b) => parse(&b, &format!("{name}:{entry}")).map(Some),
        }
    };
    let features = read(&names.features, "features_key")?.expect("required");
    let labels = read(&names.labels, if want_labels { "labels_key" } else { "" })?;
    Ok((features, labels))
}

/// A dataset from an `.npz` file holding the features and labels arrays.
pub fn npz_dataset(
    bytes: &[u8],
    name: &str,
    names: &ArrayNames,
    classes: Option<usize>,
) -> Result<Dataset> {
    let (x, y) = parse_npz(bytes, name, names, true)?;
    arrays::dataset(
        &x,
        y.as_ref(),
        &format!("{name}:{}.npy", names.features),
        &format!("{name}:{}.npy", names.labels),
        classes,
    )
}

/// A dataset from two `.npy` files: features and labels.
pub fn npy_dataset(
    features: &[u8],
    labels: &[u8],
    fname: &str,
    lname: &str,
    classes: Option<usize>,
) -> Result<Dataset> {
    let x = parse(features, fname)?;
    let y = parse(labels, lname)?;
    arrays::dataset(&x, Some(&y), fname, lname, classes)
}

/// A `.npy` file of `array` (version 1.0), as `np.save` writes it.
pub fn encode(array: &Array) -> Vec<u8> {
    let descr = match array.dtype {
        Dtype::U8 => "|u1",
        Dtype::I32 => "<i4",
        Dtype::I64 => "<i8",
        Dtype::F32 => "<f4",
        Dtype::F64 => "<f8",
    };
    let dims: Vec<String> = array.shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad with spaces so that the data starts at a multiple of 64, then a newline.
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend([1, 0]);
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(&array.bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_numpy_headers() {
        let a = Array {
            shape: vec![2, 3],
            dtype: Dtype::F32,
            bytes: (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect(),
        };
        assert_eq!(parse(&encode(&a), "a.npy").unwrap(), a);
        let (d, f, s) =
            parse_header("{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }  \n").unwrap();
        assert_eq!((d.as_str(), f, s), ("<i8", false, vec![5]));
        assert_eq!(
            parse_header("{'descr':'|u1','fortran_order':True,'shape':()}")
                .unwrap()
                .2,
            Vec::<usize>::new()
        );
        assert!(dtype("<f2").unwrap_err().contains("not supported"));
        assert!(dtype(">f4").unwrap_err().contains("big-endian"));
    }
}
