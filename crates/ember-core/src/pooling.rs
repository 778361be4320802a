//! Pooling: token embeddings of one sequence → one sentence embedding.
//!
//! Semantics follow sentence-transformers' `Pooling` module exactly, for right-padded inputs:
//! only the sequence's real tokens are passed in, in order. Several modes may be combined; their
//! outputs are concatenated in the order sentence-transformers uses (cls, max, mean,
//! mean_sqrt_len, weighted_mean, last_token).

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// One pooling strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolingMode {
    /// The first token (`[CLS]` / `<s>`).
    Cls,
    /// Element-wise maximum over tokens.
    Max,
    /// Mean over tokens.
    Mean,
    /// Sum over tokens divided by the square root of their count.
    MeanSqrtLen,
    /// Mean weighted by position (1, 2, … n), as in SGPT.
    WeightedMean,
    /// The last real token (decoder models such as Qwen3-Embedding).
    LastToken,
}

impl PoolingMode {
    /// The order in which sentence-transformers concatenates combined modes.
    pub const ALL: [PoolingMode; 6] = [
        PoolingMode::Cls,
        PoolingMode::Max,
        PoolingMode::Mean,
        PoolingMode::MeanSqrtLen,
        PoolingMode::WeightedMean,
        PoolingMode::LastToken,
    ];
}

impl std::str::FromStr for PoolingMode {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "cls" | "cls_token" => PoolingMode::Cls,
            "max" | "max_tokens" => PoolingMode::Max,
            "mean" | "mean_tokens" => PoolingMode::Mean,
            "mean_sqrt_len" | "mean_sqrt_len_tokens" => PoolingMode::MeanSqrtLen,
            "weightedmean" | "weighted_mean" | "weighted_mean_tokens" => PoolingMode::WeightedMean,
            "lasttoken" | "last_token" => PoolingMode::LastToken,
            _ => return Err(CoreError::UnknownPooling(s.to_string())),
        })
    }
}

impl std::fmt::Display for PoolingMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PoolingMode::Cls => "cls",
            PoolingMode::Max => "max",
            PoolingMode::Mean => "mean",
            PoolingMode::MeanSqrtLen => "mean_sqrt_len_tokens",
            PoolingMode::WeightedMean => "weightedmean",
            PoolingMode::LastToken => "lasttoken",
        })
    }
}

/// Pool the token embeddings of one sequence.
///
/// `tokens` holds `len × hidden` values, the real (unpadded) tokens in order. `masked_prefix`
/// tokens at the start (the first token and a prompt the model excludes from pooling,
/// `include_prompt: false`) are masked as sentence-transformers 6 masks them: every mode skips
/// them, and `cls` takes the first token after them (the first unmasked one; the very first token
/// when nothing is left). The pooled vector(s) are appended to `out`.
pub fn pool(modes: &[PoolingMode], tokens: &[f32], hidden: usize, masked_prefix: usize, out: &mut Vec<f32>) {
    let len = tokens.len() / hidden.max(1);
    for mode in PoolingMode::ALL.iter().filter(|m| modes.contains(m)) {
        let start = masked_prefix.min(len);
        let rows = &tokens[start * hidden..len * hidden];
        let n = len - start;
        let at = out.len();
        match mode {
            PoolingMode::Cls => {
                let first = if n == 0 { 0 } else { start };
                out.extend_from_slice(&tokens[first * hidden..((first + 1) * hidden).min(tokens.len())]);
            }
            PoolingMode::LastToken => {
                if n == 0 {
                    out.resize(at + hidden, 0.0);
                } else {
                    out.extend_from_slice(&rows[(n - 1) * hidden..]);
                }
            }
            PoolingMode::Max => {
                // sentence-transformers sets masked positions to -1e9 before the max.
                out.resize(at + hidden, if n == 0 { -1e9 } else { f32::NEG_INFINITY });
                for row in rows.chunks_exact(hidden) {
                    for (o, &v) in out[at..].iter_mut().zip(row) {
                        *o = o.max(v);
                    }
                }
            }
            PoolingMode::Mean | PoolingMode::MeanSqrtLen | PoolingMode::WeightedMean => {
                out.resize(at + hidden, 0.0);
                let mut total_weight = 0.0f32;
                for (i, row) in rows.chunks_exact(hidden).enumerate() {
                    // Weighted mean weighs by absolute position (1-based), as the reference does.
                    let w = if *mode == PoolingMode::WeightedMean { (start + i + 1) as f32 } else { 1.0 };
                    total_weight += w;
                    for (o, &v) in out[at..].iter_mut().zip(row) {
                        *o += w * v;
                    }
                }
                // The reference clamps the denominator at 1e-9.
                let denom = match mode {
                    PoolingMode::MeanSqrtLen => (n as f32).sqrt().max(1e-9),
                    _ => total_weight.max(1e-9),
                };
                for o in &mut out[at..] {
                    *o /= denom;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Three tokens, hidden size 2.
    const T: [f32; 6] = [1.0, -2.0, 3.0, 0.0, 5.0, 4.0];

    fn run(modes: &[PoolingMode], prefix: usize) -> Vec<f32> {
        let mut out = Vec::new();
        pool(modes, &T, 2, prefix, &mut out);
        out
    }

    #[test]
    fn each_mode_matches_hand_computed_values() {
        assert_eq!(run(&[PoolingMode::Cls], 0), vec![1.0, -2.0]);
        assert_eq!(run(&[PoolingMode::Max], 0), vec![5.0, 4.0]);
        assert_eq!(run(&[PoolingMode::Mean], 0), vec![3.0, 2.0 / 3.0]);
        let s = 3f32.sqrt();
        assert_eq!(run(&[PoolingMode::MeanSqrtLen], 0), vec![9.0 / s, 2.0 / s]);
        // weights 1, 2, 3: (1 + 6 + 15) / 6, (-2 + 0 + 12) / 6
        assert_eq!(run(&[PoolingMode::WeightedMean], 0), vec![22.0 / 6.0, 10.0 / 6.0]);
        assert_eq!(run(&[PoolingMode::LastToken], 0), vec![5.0, 4.0]);
    }

    #[test]
    fn combined_modes_concatenate_in_reference_order() {
        // Asked as mean then cls, produced as cls then mean.
        assert_eq!(run(&[PoolingMode::Mean, PoolingMode::Cls], 0), vec![1.0, -2.0, 3.0, 2.0 / 3.0]);
    }

    #[test]
    fn masked_prompt_is_excluded_and_cls_takes_the_first_unmasked_token() {
        assert_eq!(run(&[PoolingMode::Mean], 1), vec![4.0, 2.0]);
        assert_eq!(run(&[PoolingMode::Cls], 1), vec![3.0, 0.0]);
        assert_eq!(run(&[PoolingMode::Cls], 3), vec![1.0, -2.0]);
        // weights stay positional: 2 and 3
        assert_eq!(run(&[PoolingMode::WeightedMean], 1), vec![21.0 / 5.0, 12.0 / 5.0]);
    }

    #[test]
    fn parses_sentence_transformers_names() {
        assert_eq!("mean_tokens".parse::<PoolingMode>().unwrap(), PoolingMode::Mean);
        assert_eq!("lasttoken".parse::<PoolingMode>().unwrap(), PoolingMode::LastToken);
        assert!("median".parse::<PoolingMode>().is_err());
    }
}
