//! Similarity between vectors.

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// The similarity function a model was trained for (`similarity_fn_name` in
/// `config_sentence_transformers.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Similarity {
    #[default]
    Cosine,
    Dot,
    /// Negative Euclidean distance (higher is more similar), as sentence-transformers reports it.
    Euclidean,
    /// Negative Manhattan distance.
    Manhattan,
}

impl Similarity {
    /// Score two vectors of equal length.
    pub fn score(self, a: &[f32], b: &[f32]) -> Result<f32, CoreError> {
        if a.len() != b.len() {
            return Err(CoreError::DimensionMismatch { left: a.len(), right: b.len() });
        }
        Ok(match self {
            Similarity::Cosine => cosine(a, b),
            Similarity::Dot => dot(a, b),
            Similarity::Euclidean => -a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt(),
            Similarity::Manhattan => -a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>(),
        })
    }
}

/// Dot product of two equally long slices (extra elements of the longer one are ignored).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Cosine similarity; norms are clamped at 1e-8 as torch's `cosine_similarity` does.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let na = dot(a, a).sqrt().max(1e-8);
    let nb = dot(b, b).sqrt().max(1e-8);
    dot(a, b) / (na * nb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores() {
        let a = [1.0, 0.0, 1.0];
        let b = [0.0, 2.0, 2.0];
        assert!((cosine(&a, &b) - 0.5).abs() < 1e-6);
        assert_eq!(Similarity::Dot.score(&a, &b).unwrap(), 2.0);
        assert_eq!(Similarity::Manhattan.score(&a, &b).unwrap(), -4.0);
        assert!((Similarity::Euclidean.score(&a, &b).unwrap() + 6f32.sqrt()).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
        assert_eq!(Similarity::Cosine.score(&a, &[1.0]), Err(CoreError::DimensionMismatch { left: 3, right: 1 }));
    }
}
