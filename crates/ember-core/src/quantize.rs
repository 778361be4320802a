//! Output quantization with sentence-transformers' `quantize_embeddings` semantics.
//!
//! (version 6.2, float32 arithmetic in the same order):
//!
//! * `uint8`: per-dimension ranges `[min, max]` (from the batch itself or supplied calibration
//!   ranges), `step = (max - min) / 255` (1 where the range is empty), value
//!   `clip(floor((x - min) / step), 0, 255)`;
//! * `int8`: the uint8 value minus 128;
//! * `binary`: one bit per dimension (`x > 0`), packed big-endian into bytes, stored as
//!   `byte - 128` in an `i8`; `ubinary`: the same bytes as `u8`.
//!
//! As in the reference, int8/uint8 ranges cannot be computed from a single embedding: supply
//! calibration ranges.

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// The output precision of embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Float32,
    Int8,
    Uint8,
    Binary,
    Ubinary,
}

impl std::str::FromStr for Precision {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "float32" | "f32" | "float" => Precision::Float32,
            "int8" => Precision::Int8,
            "uint8" => Precision::Uint8,
            "binary" => Precision::Binary,
            "ubinary" => Precision::Ubinary,
            _ => return Err(CoreError::UnknownPrecision(s.to_string())),
        })
    }
}

/// Quantized vectors, one row per input.
#[derive(Debug, Clone, PartialEq)]
pub enum QuantizedEmbeddings {
    Float32(Vec<Vec<f32>>),
    Int8(Vec<Vec<i8>>),
    Uint8(Vec<Vec<u8>>),
}

/// Per-dimension `[min, max]` of a set of vectors (sentence-transformers' calibration ranges).
pub fn ranges(vectors: &[Vec<f32>]) -> (Vec<f32>, Vec<f32>) {
    let dim = vectors.first().map_or(0, Vec::len);
    let mut lo = vec![f32::INFINITY; dim];
    let mut hi = vec![f32::NEG_INFINITY; dim];
    for v in vectors {
        for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(v) {
            *l = l.min(x);
            *h = h.max(x);
        }
    }
    (lo, hi)
}

/// Quantize `vectors` to `precision`. `calibration` supplies int8/uint8 ranges `(min, max)`;
/// without it the ranges come from `vectors` themselves.
pub fn quantize(
    vectors: Vec<Vec<f32>>,
    precision: Precision,
    calibration: Option<&(Vec<f32>, Vec<f32>)>,
) -> Result<QuantizedEmbeddings, CoreError> {
    let scalar = |offset: f32| -> Result<Vec<Vec<f32>>, CoreError> {
        let own;
        let (lo, hi) = match calibration {
            Some(r) => r,
            None if vectors.len() == 1 => return Err(CoreError::SingleEmbeddingRanges),
            None => {
                own = ranges(&vectors);
                &own
            }
        };
        let dim = vectors.first().map_or(lo.len(), Vec::len);
        if lo.len() != dim || hi.len() != dim {
            return Err(CoreError::RangesMismatch { got: lo.len().min(hi.len()), expected: dim });
        }
        Ok(vectors
            .iter()
            .map(|v| {
                v.iter()
                    .zip(lo.iter().zip(hi))
                    .map(|(&x, (&l, &h))| {
                        let step = (h - l) / 255.0;
                        let step = if step == 0.0 { 1.0 } else { step };
                        ((x - l) / step).floor().clamp(0.0, 255.0) - offset
                    })
                    .collect()
            })
            .collect())
    };
    Ok(match precision {
        Precision::Float32 => QuantizedEmbeddings::Float32(vectors),
        Precision::Int8 => QuantizedEmbeddings::Int8(
            scalar(128.0)?.into_iter().map(|v| v.into_iter().map(|x| x.clamp(-128.0, 127.0) as i8).collect()).collect(),
        ),
        Precision::Uint8 => QuantizedEmbeddings::Uint8(
            scalar(0.0)?.into_iter().map(|v| v.into_iter().map(|x| x.clamp(0.0, 255.0) as u8).collect()).collect(),
        ),
        Precision::Binary => QuantizedEmbeddings::Int8(
            vectors.iter().map(|v| pack_bits(v).into_iter().map(|b| (i16::from(b) - 128) as i8).collect()).collect(),
        ),
        Precision::Ubinary => QuantizedEmbeddings::Uint8(vectors.iter().map(|v| pack_bits(v)).collect()),
    })
}

/// numpy.packbits(v > 0): big-endian bit order, the last byte padded with zeros.
fn pack_bits(v: &[f32]) -> Vec<u8> {
    v.chunks(8)
        .map(|chunk| chunk.iter().enumerate().fold(0u8, |b, (i, &x)| if x > 0.0 { b | (0x80 >> i) } else { b }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vs() -> Vec<Vec<f32>> {
        vec![vec![-1.0, 0.5, 0.05], vec![1.0, 0.25, 0.2], vec![0.0, 0.0, -0.3]]
    }

    // Expected values printed by sentence_transformers 6.2's quantize_embeddings on the same
    // float32 input (note 254 at the maximum: float32 rounding before the floor).
    #[test]
    fn int8_and_uint8_follow_numpy_truncation() {
        let QuantizedEmbeddings::Int8(q) = quantize(vs(), Precision::Int8, None).unwrap() else { panic!() };
        assert_eq!(q, vec![vec![-128, 126, 50], vec![126, -1, 126], vec![-1, -128, -128]]);
        let QuantizedEmbeddings::Uint8(q) = quantize(vs(), Precision::Uint8, None).unwrap() else { panic!() };
        assert_eq!(q, vec![vec![0, 254, 178], vec![254, 127, 254], vec![127, 0, 0]]);
    }

    #[test]
    fn binary_packs_sign_bits_big_endian() {
        let v = vec![vec![1.0, -1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.1, 3.0]];
        let QuantizedEmbeddings::Uint8(q) = quantize(v.clone(), Precision::Ubinary, None).unwrap() else { panic!() };
        assert_eq!(q, vec![vec![145, 128]]);
        let QuantizedEmbeddings::Int8(q) = quantize(v, Precision::Binary, None).unwrap() else { panic!() };
        assert_eq!(q, vec![vec![17, 0]]);
    }

    #[test]
    fn calibration_ranges_are_used_and_checked() {
        let cal = (vec![-2.0, -2.0, -2.0], vec![2.0, 2.0, 2.0]);
        let QuantizedEmbeddings::Uint8(q) = quantize(vec![vec![0.0, 2.0, -2.0]], Precision::Uint8, Some(&cal)).unwrap()
        else {
            panic!()
        };
        assert_eq!(q, vec![vec![127, 254, 0]]);
        assert_eq!(quantize(vec![vec![0.5]], Precision::Int8, None), Err(CoreError::SingleEmbeddingRanges));
        let bad = (vec![0.0], vec![1.0]);
        assert_eq!(quantize(vs(), Precision::Int8, Some(&bad)), Err(CoreError::RangesMismatch { got: 1, expected: 3 }));
    }
}
