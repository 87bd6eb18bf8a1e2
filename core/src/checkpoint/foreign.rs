//! Reading the weights of a safetensors file that accrete did not write (a PyTorch state
//! dict saved with `safetensors.torch.save_file`): F32 as is, F16/BF16/F64 converted to f32
//! (exactly for the half types; F64 rounds to nearest), and a leading `model.` or `module.`
//! (as `nn.DataParallel` and wrapper modules add) stripped from every name.

use super::NamedTensor;
use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors};

/// The prefixes stripped from tensor names.
pub const PREFIXES: [&str; 2] = ["module.", "model."];

/// IEEE binary16 bits → f32 (exact: every half value is an f32 value).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        // Subnormal: man · 2⁻²⁴, exact in f32.
        (0, m) => return f32::from_bits(sign) + (m as f32) * (2f32).powi(-24) * sign_of(h),
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

fn sign_of(h: u16) -> f32 {
    if h >> 15 == 1 {
        -1.0
    } else {
        1.0
    }
}

/// bfloat16 bits → f32 (exact: the top half of an f32).
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// `name` without one leading [`PREFIXES`] entry.
pub fn strip_prefix(name: &str) -> &str {
    PREFIXES
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name)
}

/// The tensors of a foreign safetensors file as f32, names stripped, sorted by name.
pub fn read(bytes: &[u8], name: &str) -> Result<Vec<NamedTensor>> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        Error::data(
            name,
            format!("not a valid safetensors file, truncated or corrupted ({e})"),
        )
    })?;
    let mut out = Vec::new();
    for (tname, view) in st.tensors() {
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => bytemuck::pod_collect_to_vec(raw),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|b| bf16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            Dtype::F64 => raw
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
            other => {
                return Err(Error::data(
                    name,
                    format!(
                        "tensor {tname} is {other:?}; accrete reads F32, F16, BF16 and F64 weights (convert with model.float())"
                    ),
                ))
            }
        };
        out.push(NamedTensor {
            name: strip_prefix(&tname).to_string(),
            shape: view.shape().to_vec(),
            data,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = out.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::data(
            name,
            format!(
                "two tensors are named {} once the prefix (model./module.) is stripped",
                w[0].name
            ),
        ));
    }
    Ok(out)
}

/// A plain safetensors file of F32 `tensors` (no accrete metadata), as PyTorch's
/// `safetensors.torch.load_file` reads it.
pub fn encode(tensors: &[NamedTensor]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut data = Vec::new();
    for t in tensors {
        let start = data.len();
        data.extend(t.data.iter().flat_map(|v| v.to_le_bytes()));
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": "F32", "shape": t.shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut h = serde_json::to_vec(&header).expect("a JSON map");
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file written by hand: (name, dtype string, shape, little-endian bytes).
    fn file(tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (n, dt, shape, bytes) in tensors {
            let start = data.len();
            data.extend_from_slice(bytes);
            header.insert(
                n.to_string(),
                serde_json::json!({"dtype": dt, "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
        let mut h = serde_json::to_string(&header).unwrap().into_bytes();
        while !h.len().is_multiple_of(8) {
            h.push(b' ');
        }
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend(h);
        out.extend(data);
        out
    }

    #[test]
    fn half_types_convert_exactly() {
        // Every finite f16 value round-trips through f64 arithmetic on its fields.
        for h in 0u16..=0xffff {
            let exp = (h >> 10) & 0x1f;
            if exp == 0x1f {
                continue;
            }
            let man = (h & 0x3ff) as f64;
            let s = if h >> 15 == 1 { -1.0 } else { 1.0 };
            let want = if exp == 0 {
                s * man * 2f64.powi(-24)
            } else {
                s * (1.0 + man / 1024.0) * 2f64.powi(exp as i32 - 15)
            };
            assert_eq!(f16_to_f32(h) as f64, want, "f16 bits {h:#06x}");
        }
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc040), -3.0);
    }

    #[test]
    fn reads_every_float_type_and_strips_prefixes() {
        let f16: Vec<u8> = [0x3c00u16, 0xc000] // 1, −2
            .iter()
            .flat_map(|h| h.to_le_bytes())
            .collect();
        let bf16: Vec<u8> = [0x3f80u16, 0x4040]
            .iter()
            .flat_map(|h| h.to_le_bytes())
            .collect();
        let f64s: Vec<u8> = [0.5f64, -0.25]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let f32s: Vec<u8> = [7.0f32].iter().flat_map(|x| x.to_le_bytes()).collect();
        let bytes = file(&[
            ("module.0.weight", "F16", vec![1, 2], f16),
            ("model.0.bias", "BF16", vec![2], bf16),
            ("2.weight", "F64", vec![2, 1], f64s),
            ("2.bias", "F32", vec![1], f32s),
        ]);
        let t = read(&bytes, "sd.safetensors").unwrap();
        let got: Vec<(&str, Vec<f32>)> = t
            .iter()
            .map(|t| (t.name.as_str(), t.data.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("0.bias", vec![1.0, 3.0]),
                ("0.weight", vec![1.0, -2.0]),
                ("2.bias", vec![7.0]),
                ("2.weight", vec![0.5, -0.25]),
            ]
        );
        assert_eq!(t[1].shape, vec![1, 2]);
        // encode → read is the identity on F32 tensors.
        assert_eq!(read(&encode(&t), "again").unwrap(), t);
    }

    #[test]
    fn integer_tensors_and_name_clashes_are_refused() {
        let e = read(&file(&[("0.weight", "I64", vec![1], vec![0; 8])]), "sd").unwrap_err();
        assert!(
            e.to_string().contains("I64") && e.to_string().contains("F16"),
            "{e}"
        );
        let one = 1.0f32.to_le_bytes().to_vec();
        let e = read(
            &file(&[
                ("model.0.bias", "F32", vec![1], one.clone()),
                ("0.bias", "F32", vec![1], one),
            ]),
            "sd",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("two tensors are named 0.bias"),
            "{e}"
        );
        assert!(read(b"garbage", "sd")
            .unwrap_err()
            .to_string()
            .contains("not a valid"));
    }
}
