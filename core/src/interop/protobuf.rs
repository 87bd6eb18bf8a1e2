//! A small protocol-buffers wire-format encoder (and a reader of the same subset), enough
//! for ONNX models ([`super::onnx`]) and TensorBoard event files ([`super::tensorboard`])
//! without a code generator or a dependency. Wire format
//! (<https://protobuf.dev/programming-guides/encoding/>): every field is a key —
//! `field_number << 3 | wire_type` as a varint — followed by its value: wire type 0 a
//! varint (int32/int64/enum/bool; a negative int is its 64-bit two's complement, 10 bytes),
//! 1 eight little-endian bytes (double), 2 a varint length and that many bytes (string,
//! bytes, embedded message, packed repeated scalars), 5 four little-endian bytes (float).
//! Fields are written in the order the caller adds them; readers accept any order.

use crate::error::{Error, Result};

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// Appends `v` as a base-128 varint (7 bits a byte, low group first, high bit = more).
pub fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// One message being encoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Message {
    buf: Vec<u8>,
}

impl Message {
    pub fn new() -> Message {
        Message::default()
    }

    fn key(&mut self, field: u32, wire: u32) {
        put_varint(&mut self.buf, ((field as u64) << 3) | wire as u64);
    }

    /// An int64 (also int32 and enum: proto sign-extends negative int32s to 64 bits).
    pub fn int64(&mut self, field: u32, v: i64) -> &mut Message {
        self.key(field, VARINT);
        put_varint(&mut self.buf, v as u64);
        self
    }

    pub fn double(&mut self, field: u32, v: f64) -> &mut Message {
        self.key(field, FIXED64);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn float(&mut self, field: u32, v: f32) -> &mut Message {
        self.key(field, FIXED32);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `bytes` field (also an embedded message's encoding).
    pub fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Message {
        self.key(field, LEN);
        put_varint(&mut self.buf, v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    pub fn string(&mut self, field: u32, v: &str) -> &mut Message {
        self.bytes(field, v.as_bytes())
    }

    pub fn message(&mut self, field: u32, m: &Message) -> &mut Message {
        self.bytes(field, &m.buf)
    }

    /// A packed `repeated float` (one length-delimited field of little-endian f32s).
    pub fn packed_floats(&mut self, field: u32, v: &[f32]) -> &mut Message {
        let raw: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.bytes(field, &raw)
    }

    /// A packed `repeated int64` (one length-delimited field of varints).
    pub fn packed_int64s(&mut self, field: u32, v: &[i64]) -> &mut Message {
        let mut raw = Vec::new();
        for &x in v {
            put_varint(&mut raw, x as u64);
        }
        self.bytes(field, &raw)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// A field's value as read from the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

fn truncated(what: &str) -> Error {
    Error::data(
        what,
        "a protobuf message is truncated or malformed (the file is damaged)",
    )
}

fn take_varint(bytes: &[u8], at: &mut usize, what: &str) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at).ok_or_else(|| truncated(what))?;
        *at += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(truncated(what))
}

fn take<'a>(bytes: &'a [u8], at: &mut usize, n: usize, what: &str) -> Result<&'a [u8]> {
    let end = at.checked_add(n).ok_or_else(|| truncated(what))?;
    let s = bytes.get(*at..end).ok_or_else(|| truncated(what))?;
    *at = end;
    Ok(s)
}

/// The fields of one encoded message, in wire order; `what` names the source in errors.
pub fn fields<'a>(bytes: &'a [u8], what: &str) -> Result<Vec<(u32, Value<'a>)>> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let key = take_varint(bytes, &mut at, what)?;
        let field = (key >> 3) as u32;
        let value = match (key & 7) as u32 {
            VARINT => Value::Varint(take_varint(bytes, &mut at, what)?),
            FIXED64 => {
                let b = take(bytes, &mut at, 8, what)?;
                Value::Fixed64(u64::from_le_bytes(
                    b.try_into().map_err(|_| truncated(what))?,
                ))
            }
            FIXED32 => {
                let b = take(bytes, &mut at, 4, what)?;
                Value::Fixed32(u32::from_le_bytes(
                    b.try_into().map_err(|_| truncated(what))?,
                ))
            }
            LEN => {
                let n = take_varint(bytes, &mut at, what)?;
                let n = usize::try_from(n).map_err(|_| truncated(what))?;
                Value::Len(take(bytes, &mut at, n, what)?)
            }
            _ => return Err(truncated(what)),
        };
        out.push((field, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_documented_examples() {
        // protobuf.dev's encoding guide: `a = 150` in field 1 is 08 96 01; `b = "testing"`
        // in field 2 is 12 07 74 65 73 74 69 6e 67.
        assert_eq!(Message::new().int64(1, 150).as_bytes(), [0x08, 0x96, 0x01]);
        assert_eq!(
            Message::new().string(2, "testing").as_bytes(),
            b"\x12\x07testing"
        );
        // A negative int64 is ten bytes of two's complement; -2 is fe ff … ff 01.
        let neg = Message::new().int64(3, -2).clone().into_bytes();
        assert_eq!(
            neg,
            [0x18, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        // Fixed-width: field 4 double (key 0x21), field 5 float (key 0x2d), little-endian.
        let mut m = Message::new();
        m.double(4, 1.0).float(5, -2.5);
        assert_eq!(
            m.as_bytes(),
            [0x21, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x2d, 0, 0, 0x20, 0xc0]
        );
        // Packed repeated: field 6 = [3, 270, 86942] is 32 06 03 8e 02 9e a7 05.
        assert_eq!(
            Message::new().packed_int64s(6, &[3, 270, 86942]).as_bytes(),
            [0x32, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05]
        );
        // A field number past 15 takes a two-byte key: field 20 varint is a0 01.
        assert_eq!(Message::new().int64(20, 1).as_bytes(), [0xa0, 0x01, 0x01]);
    }

    #[test]
    fn reads_back_what_it_writes_and_refuses_truncation() {
        let mut inner = Message::new();
        inner.string(1, "loss").float(2, 0.25);
        let mut m = Message::new();
        m.double(1, 1.5e9)
            .int64(2, 42)
            .message(5, &inner)
            .packed_floats(4, &[1.0]);
        let f = fields(m.as_bytes(), "t").unwrap();
        assert_eq!(f[0], (1, Value::Fixed64(1.5e9f64.to_bits())));
        assert_eq!(f[1], (2, Value::Varint(42)));
        let Value::Len(b) = f[2].1 else { panic!() };
        assert_eq!(
            fields(b, "t").unwrap(),
            [
                (1, Value::Len(b"loss".as_slice())),
                (2, Value::Fixed32(0.25f32.to_bits()))
            ]
        );
        assert_eq!(f[3], (4, Value::Len(&1.0f32.to_le_bytes()[..])));
        let bytes = m.as_bytes();
        for cut in 1..bytes.len() {
            // Every strict prefix either parses to fewer fields or is refused, never panics.
            if let Ok(g) = fields(&bytes[..cut], "t") {
                assert!(g.len() < f.len());
            }
        }
        assert!(fields(&[0x0a, 0x05, 1], "t").is_err());
    }
}
