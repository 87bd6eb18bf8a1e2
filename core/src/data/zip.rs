//! A small zip reader for `.npz` files: the central directory (zip64 too: `np.savez`
//! writes zip64 entries), stored (method 0) and deflated (method 8) entries, CRC-32 checked.
//! An entry is inflated as a stream and never past the size the directory declares, so a
//! small file that inflates to gigabytes fails at once instead of taking the memory.

use crate::error::{Error, Result};
use std::io::Read;

/// One file of the archive, as the central directory describes it.
#[derive(Clone, Debug)]
struct Entry {
    name: String,
    method: u16,
    flags: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    offset: u64,
}

/// A parsed zip archive over borrowed bytes.
pub struct Archive<'a> {
    bytes: &'a [u8],
    source: &'a str,
    entries: Vec<Entry>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

const EOCD: u32 = 0x0605_4b50;
const EOCD64_LOCATOR: u32 = 0x0706_4b50;
const EOCD64: u32 = 0x0606_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;

impl<'a> Archive<'a> {
    /// Reads the central directory of `bytes` (named `source` in errors).
    pub fn parse(bytes: &'a [u8], source: &'a str) -> Result<Archive<'a>> {
        let bad = |d: &str| {
            Error::data(
                source,
                format!("not a valid .npz (zip) file: {d}; write it with np.savez or np.savez_compressed"),
            )
        };
        // The end-of-central-directory record: 22 bytes plus a comment of up to 64 KiB.
        let lowest = bytes.len().saturating_sub(22 + 0xffff);
        let eocd = (lowest..bytes.len().saturating_sub(21))
            .rev()
            .find(|&i| u32_at(bytes, i) == Some(EOCD))
            .ok_or_else(|| bad("no end-of-central-directory record (truncated?)"))?;
        let mut count = u16_at(bytes, eocd + 10).expect("in range") as u64;
        let mut cd_size = u32_at(bytes, eocd + 12).expect("in range") as u64;
        let mut cd_offset = u32_at(bytes, eocd + 16).expect("in range") as u64;
        if count == 0xffff || cd_size == 0xffff_ffff || cd_offset == 0xffff_ffff {
            let loc = eocd
                .checked_sub(20)
                .filter(|&l| u32_at(bytes, l) == Some(EOCD64_LOCATOR))
                .ok_or_else(|| bad("a zip64 archive without its zip64 locator"))?;
            let at = u64_at(bytes, loc + 8).expect("in range") as usize;
            if u32_at(bytes, at) != Some(EOCD64) {
                return Err(bad("the zip64 end-of-central-directory record is missing"));
            }
            let field = |o: usize| {
                at.checked_add(o)
                    .and_then(|i| u64_at(bytes, i))
                    .ok_or_else(|| bad("a truncated zip64 record"))
            };
            count = field(32)?;
            cd_size = field(40)?;
            cd_offset = field(48)?;
        }
        let cd_end = cd_offset
            .checked_add(cd_size)
            .filter(|&e| e <= bytes.len() as u64)
            .ok_or_else(|| bad("the central directory lies outside the file (truncated?)"))?;
        // Every entry takes at least 46 bytes, which bounds the count before allocating.
        if count > cd_size / 46 {
            return Err(bad("the central directory is shorter than its entry count"));
        }
        let cd = &bytes[cd_offset as usize..cd_end as usize];
        let mut entries = Vec::with_capacity(count as usize);
        let mut p = 0usize;
        for _ in 0..count {
            let truncated = || bad("a truncated central directory entry");
            if u32_at(cd, p) != Some(CENTRAL) {
                return Err(bad("a damaged central directory"));
            }
            let h = |o: usize| u16_at(cd, p + o).ok_or_else(truncated);
            let w = |o: usize| u32_at(cd, p + o).ok_or_else(truncated);
            let (flags, method) = (h(8)?, h(10)?);
            let crc = w(16)?;
            let (mut compressed, mut size) = (w(20)? as u64, w(24)? as u64);
            let (n, e, c) = (h(28)? as usize, h(30)? as usize, h(32)? as usize);
            let mut offset = w(42)? as u64;
            let name = cd.get(p + 46..p + 46 + n).ok_or_else(truncated)?;
            let extra = cd.get(p + 46 + n..p + 46 + n + e).ok_or_else(truncated)?;
            // The zip64 extra field holds the 64-bit values of the fields set to 0xffffffff.
            let mut q = 0;
            while q + 4 <= extra.len() {
                let (id, len) = (
                    u16_at(extra, q).expect("4"),
                    u16_at(extra, q + 2).expect("4"),
                );
                let body = extra
                    .get(q + 4..q + 4 + len as usize)
                    .ok_or_else(truncated)?;
                if id == 1 {
                    let mut r = 0;
                    for v in [&mut size, &mut compressed, &mut offset] {
                        if *v == 0xffff_ffff {
                            *v = u64_at(body, r).ok_or_else(truncated)?;
                            r += 8;
                        }
                    }
                }
                q += 4 + len as usize;
            }
            entries.push(Entry {
                name: String::from_utf8_lossy(name).into_owned(),
                method,
                flags,
                crc,
                compressed,
                size,
                offset,
            });
            p += 46 + n + e + c;
        }
        Ok(Archive {
            bytes,
            source,
            entries,
        })
    }

    /// The names of the archive's files, in directory order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// The contents of the file `name`, or `None` when the archive has none of that name.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let Some(e) = self.entries.iter().find(|e| e.name == name) else {
            return Ok(None);
        };
        let bad = |d: String| Error::data(self.source, format!("{name}: {d}"));
        if e.flags & 1 != 0 {
            return Err(bad(
                "is encrypted; save the arrays without a password".into()
            ));
        }
        if e.size > crate::input_file::InputKind::Data.limit() {
            return Err(bad(format!(
                "declares {} uncompressed, over the {} accrete reads from one file",
                crate::input_file::human_bytes(e.size),
                crate::input_file::human_bytes(crate::input_file::InputKind::Data.limit())
            )));
        }
        let local = usize::try_from(e.offset).unwrap_or(usize::MAX);
        let outside = || bad("its data lies outside the file (truncated?)".into());
        if u32_at(self.bytes, local) != Some(LOCAL) {
            return Err(outside());
        }
        let n = u16_at(self.bytes, local.saturating_add(26)).ok_or_else(outside)? as usize;
        let x = u16_at(self.bytes, local.saturating_add(28)).ok_or_else(outside)? as usize;
        let start = local.saturating_add(30 + n + x);
        let data = usize::try_from(e.compressed)
            .ok()
            .and_then(|c| self.bytes.get(start..start.checked_add(c)?))
            .ok_or_else(outside)?;
        let out = match e.method {
            0 => {
                if e.compressed != e.size {
                    return Err(bad(format!(
                        "a stored entry of {} bytes declares {} uncompressed",
                        e.compressed, e.size
                    )));
                }
                data.to_vec()
            }
            8 => {
                let mut out = Vec::with_capacity(e.size.min(1 << 26) as usize);
                flate2::bufread::DeflateDecoder::new(data)
                    .take(e.size + 1)
                    .read_to_end(&mut out)
                    .map_err(|err| bad(format!("the deflated data is corrupt ({err})")))?;
                if out.len() as u64 != e.size {
                    return Err(bad(format!(
                        "inflates to {}{} bytes, the directory declares {}",
                        out.len(),
                        if out.len() as u64 > e.size { " or more" } else { "" },
                        e.size
                    )));
                }
                out
            }
            m => {
                return Err(bad(format!(
                    "compression method {m} is not supported (stored and deflated are: np.savez, np.savez_compressed)"
                )))
            }
        };
        if crc32fast::hash(&out) != e.crc {
            return Err(bad(
                "the CRC-32 does not match: the file is corrupted".into()
            ));
        }
        Ok(Some(out))
    }
}

/// A zip archive of `files` (name, contents), stored or deflated, without zip64 (tests and
/// tools; `np.load` reads it).
pub fn encode(files: &[(&str, &[u8])], deflate: bool) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let body = if deflate {
            let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(data).expect("in memory");
            z.finish().expect("in memory")
        } else {
            data.to_vec()
        };
        let method: u16 = if deflate { 8 } else { 0 };
        let crc = crc32fast::hash(data);
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            v.extend(20u16.to_le_bytes()); // version needed
            v.extend(0u16.to_le_bytes()); // flags
            v.extend(method.to_le_bytes());
            v.extend([0, 0, 0x21, 0]); // time, date (1980-01-01)
            v.extend(crc.to_le_bytes());
            v.extend((body.len() as u32).to_le_bytes());
            v.extend((data.len() as u32).to_le_bytes());
            v.extend((name.len() as u16).to_le_bytes());
            v.extend(0u16.to_le_bytes()); // extra
        };
        out.extend(LOCAL.to_le_bytes());
        common(&mut out);
        out.extend(name.as_bytes());
        out.extend(&body);
        central.extend(CENTRAL.to_le_bytes());
        central.extend(20u16.to_le_bytes()); // version made by
        common(&mut central);
        central.extend([0u8; 10]); // comment length, disk, internal and external attributes
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(EOCD.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((files.len() as u16).to_le_bytes());
    out.extend((files.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_and_deflated_round_trip() {
        let big = vec![7u8; 5000];
        for deflate in [false, true] {
            let z = encode(&[("a.npy", b"hello"), ("b.npy", &big)], deflate);
            let a = Archive::parse(&z, "t.npz").unwrap();
            assert_eq!(a.names().collect::<Vec<_>>(), ["a.npy", "b.npy"]);
            assert_eq!(a.read("a.npy").unwrap().unwrap(), b"hello");
            assert_eq!(a.read("b.npy").unwrap().unwrap(), big);
            assert!(a.read("c.npy").unwrap().is_none());
        }
    }
}
