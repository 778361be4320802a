//! Lucene's BM25 (`org.apache.lucene.search.similarities.BM25Similarity`, Lucene ≥ 8), float for
//! float:
//!
//! * `idf = ln(1 + (N − df + 0.5) / (df + 0.5))`, computed in `f64` and rounded to `f32`, where
//!   `N` is the number of documents with at least one term and `df` the number holding the term;
//! * `avgdl = total terms / N` (1 when there are none);
//! * a term's weight is `boost · idf` where Anserini's boost is the term's count in the query
//!   (`BagOfWordsQueryGenerator` turns repeats into a `BoostQuery`);
//! * with `norm⁻¹ = 1 / (k1 · ((1 − b) + b · dl / avgdl))`, a posting with frequency `tf` scores
//!   `weight − weight / (1 + tf · norm⁻¹)`, which is `weight · tf / (tf + k1 · (1 − b + b · dl / avgdl))`
//!   (Lucene 8 dropped the classic `(k1 + 1)` factor, a constant that does not change rankings)
//!   written so that it is monotonic in `tf` and `dl` under float rounding;
//! * a document's score is the sum over the query's terms (Lucene adds them in `f64`; ember adds
//!   them exactly, in fixed point, see [`search`](super::search), and rounds to `f32`).
//!
//! Lucene stores `dl` lossily, in one byte per document (Lucene's `SmallFloat.intToByte4`: exact below 24, then
//! four significant bits); [`LengthNorm::Lucene`] reproduces that, [`LengthNorm::Exact`] uses the
//! exact length.

use serde::{Deserialize, Serialize};

use super::error::SparseError;

/// How a document's length enters the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthNorm {
    /// Lucene's one-byte length (`SmallFloat.intToByte4`), as Lucene, Anserini and tantivy score.
    #[default]
    Lucene,
    /// The exact token count.
    Exact,
}

/// BM25's free parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bm25Params {
    /// Term-frequency saturation (≥ 0; Lucene's default 1.2).
    pub k1: f32,
    /// Length normalisation strength (0 to 1; Lucene's default 0.75).
    pub b: f32,
    pub length_norm: LengthNorm,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params { k1: 1.2, b: 0.75, length_norm: LengthNorm::Lucene }
    }
}

impl Bm25Params {
    pub(crate) fn validate(&self) -> Result<(), SparseError> {
        if !(self.k1.is_finite() && self.k1 >= 0.0) {
            return Err(SparseError::InvalidParameter { name: "k1", value: self.k1, why: "must be finite and ≥ 0" });
        }
        if !(0.0..=1.0).contains(&self.b) {
            return Err(SparseError::InvalidParameter { name: "b", value: self.b, why: "must be between 0 and 1" });
        }
        Ok(())
    }
}

/// Lucene's `SmallFloat.longToInt4`: 4 significant bits (the leading one implicit) and a shift.
fn long_to_int4(i: u32) -> u32 {
    let bits = 32 - i.leading_zeros();
    if bits < 4 {
        i
    } else {
        let shift = bits - 4;
        ((i >> shift) & 0x07) | ((shift + 1) << 3)
    }
}

/// Lucene's `SmallFloat.int4ToLong`.
fn int4_to_long(i: u32) -> u64 {
    let bits = u64::from(i & 0x07);
    match (i >> 3) as i32 - 1 {
        -1 => bits,
        shift => (bits | 0x08) << shift,
    }
}

/// Byte values below this encode themselves (Lucene: `255 − longToInt4(Integer.MAX_VALUE)` = 24).
const NUM_FREE_VALUES: u32 = 255 - 231;

/// Lucene's `SmallFloat.intToByte4`: a document length in one byte (exact below 24).
pub(crate) fn int_to_byte4(i: u32) -> u8 {
    let i = i.min(i32::MAX as u32);
    if i < NUM_FREE_VALUES {
        i as u8
    } else {
        (NUM_FREE_VALUES + long_to_int4(i - NUM_FREE_VALUES)) as u8
    }
}

/// Lucene's `SmallFloat.byte4ToInt`: the length a byte stands for (rounded down).
pub(crate) fn byte4_to_int(b: u8) -> u32 {
    let i = u32::from(b);
    if i < NUM_FREE_VALUES {
        i
    } else {
        (u64::from(NUM_FREE_VALUES) + int4_to_long(i - NUM_FREE_VALUES)) as u32
    }
}

/// Lucene's idf.
pub(crate) fn idf(docs: usize, df: usize) -> f32 {
    let (n, df) = (docs as f64, df as f64);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln() as f32
}

/// Per-query state: the `norm⁻¹` of each length (Lucene caches it for each of the 256 bytes).
#[derive(Debug, Clone)]
pub(crate) struct Bm25Scorer {
    k1: f32,
    b: f32,
    avgdl: f32,
    /// `Some` for [`LengthNorm::Lucene`].
    cache: Option<Box<[f32; 256]>>,
}

impl Bm25Scorer {
    pub(crate) fn new(params: &Bm25Params, docs: usize, total_len: u64) -> Self {
        let avgdl = if docs == 0 || total_len == 0 { 1.0 } else { (total_len as f64 / docs as f64) as f32 };
        let (k1, b) = (params.k1, params.b);
        let cache = match params.length_norm {
            LengthNorm::Lucene => {
                let mut c = Box::new([0f32; 256]);
                for (byte, slot) in c.iter_mut().enumerate() {
                    *slot = 1.0 / (k1 * ((1.0 - b) + b * byte4_to_int(byte as u8) as f32 / avgdl));
                }
                Some(c)
            }
            LengthNorm::Exact => None,
        };
        Bm25Scorer { k1, b, avgdl, cache }
    }

    /// `1 / (k1 · ((1 − b) + b · dl / avgdl))`; non-increasing in `len`.
    #[inline]
    pub(crate) fn norm_inverse(&self, len: u32) -> f32 {
        match &self.cache {
            Some(c) => c[int_to_byte4(len) as usize],
            None => 1.0 / (self.k1 * ((1.0 - self.b) + self.b * len as f32 / self.avgdl)),
        }
    }

    /// One posting's score; non-decreasing in `tf` and in `norm_inverse`.
    #[inline]
    pub(crate) fn score(weight: f32, tf: f32, norm_inverse: f32) -> f32 {
        weight - weight / (1.0 + tf * norm_inverse)
    }
}

/// BM25 exactly as [`InvertedIndex::search_text`](super::InvertedIndex::search_text) scores it,
/// for a store that keeps its postings and statistics elsewhere (ember's PostgreSQL backend):
/// given the collection's statistics, a query term's weight and each posting's contribution come
/// out float for float as in the inverted index. Sum a document's contributions in `f64` and
/// round to `f32` ([`Bm25Formula::sum`]): the inverted index sums in exact fixed point, which gives
/// the same `f32` whenever the contributions' exponents lie within 29 binary orders of one
/// another (every realistic query), and otherwise differs by at most one rounding.
#[derive(Debug, Clone)]
pub struct Bm25Formula {
    scorer: Bm25Scorer,
    docs: usize,
}

impl Bm25Formula {
    /// `docs`: documents with at least one term (Lucene's `docCount`); `total_len`: the sum of
    /// their lengths in tokens.
    pub fn new(params: &Bm25Params, docs: usize, total_len: u64) -> Self {
        Bm25Formula { scorer: Bm25Scorer::new(params, docs, total_len), docs }
    }

    /// The weight of a query term seen `count` times in the query and held by `df` documents.
    pub fn term_weight(&self, count: u32, df: usize) -> f32 {
        count as f32 * idf(self.docs, df)
    }

    /// The average document length the scores use.
    pub fn avgdl(&self) -> f32 {
        self.scorer.avgdl
    }

    /// The length that enters the score for a document of `len` tokens: Lucene's one-byte length
    /// ([`LengthNorm::Lucene`], rounded down) or `len` itself ([`LengthNorm::Exact`]).
    pub fn norm_length(params: &Bm25Params, len: u32) -> u32 {
        match params.length_norm {
            LengthNorm::Lucene => byte4_to_int(int_to_byte4(len)),
            LengthNorm::Exact => len,
        }
    }

    /// One posting's contribution: a term of weight `weight` found `tf` times in a document of
    /// `len` tokens.
    pub fn contribution(&self, weight: f32, tf: u32, len: u32) -> f32 {
        Bm25Scorer::score(weight, tf as f32, self.scorer.norm_inverse(len))
    }

    /// A document's score from its contributions.
    pub fn sum(contributions: impl IntoIterator<Item = f32>) -> f32 {
        contributions.into_iter().map(f64::from).sum::<f64>() as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lucene_length_bytes() {
        for i in 0..24 {
            assert_eq!(byte4_to_int(int_to_byte4(i)), i);
        }
        assert_eq!(int_to_byte4(24), 24);
        assert_eq!(byte4_to_int(255), (15 << 27) + 24);
        let mut last = 0;
        for b in 0..=255u8 {
            let v = byte4_to_int(b);
            assert!(b == 0 || v > last, "byte4ToInt is increasing");
            assert_eq!(int_to_byte4(v), b, "round trip of {b}");
            last = v;
        }
        // lossy, rounding down: every length maps to the largest table value not above it
        for len in [25u32, 100, 187, 1000, 123_456] {
            let v = byte4_to_int(int_to_byte4(len));
            assert!(v <= len && byte4_to_int(int_to_byte4(len).saturating_add(1)) > len, "{len} -> {v}");
        }
        assert_eq!(byte4_to_int(int_to_byte4(200)), 200);
        assert_eq!(byte4_to_int(int_to_byte4(201)), 200);
        assert_eq!(byte4_to_int(int_to_byte4(187)), 184);
    }
}
