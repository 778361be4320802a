//! How an index turns a [`Similarity`] into the distance its search minimises, and back.

use ember_core::Similarity;

use crate::distance::{Kernels, RowsKernel};

/// A distance (lower is closer) computed by one kernel, and how it maps back to the score the
/// flat index reports for the same pair, so approximate and exact hits compare directly.
///
/// Cosine runs as a dot product on vectors normalised at insert (and queries normalised once);
/// dot is `-a·b`; Euclidean is the squared distance (its score is `-√d`); Manhattan is `Σ|aᵢ-bᵢ|`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metric {
    similarity: Similarity,
    kernel: fn(&[f32], &[f32]) -> f32,
    rows_kernel: RowsKernel,
    sign: f32,
}

impl Metric {
    pub(crate) fn new(similarity: Similarity) -> Self {
        let k = Kernels::best();
        let (kernel, rows_kernel, sign) = match similarity {
            Similarity::Cosine | Similarity::Dot => (k.dot, k.dot_rows, -1.0),
            Similarity::Euclidean => (k.l2_sq, k.l2_sq_rows, 1.0),
            Similarity::Manhattan => (k.l1, k.l1_rows, 1.0),
        };
        Metric { similarity, kernel, rows_kernel, sign }
    }

    pub(crate) fn similarity(&self) -> Similarity {
        self.similarity
    }

    /// Whether vectors are normalised before they are stored or searched.
    pub(crate) fn normalises(&self) -> bool {
        self.similarity == Similarity::Cosine
    }

    #[inline(always)]
    pub(crate) fn distance(&self, a: &[f32], b: &[f32]) -> f32 {
        self.sign * (self.kernel)(a, b)
    }

    /// [`Metric::distance`] of `q` to rows `rows` of `data` (rows of `q.len()` values), into `out`.
    #[inline]
    pub(crate) fn distances(&self, q: &[f32], data: &[f32], rows: &[u32], out: &mut Vec<f32>) {
        out.clear();
        out.resize(rows.len(), 0.0);
        (self.rows_kernel)(q, data, rows, out);
        out.iter_mut().for_each(|d| *d *= self.sign);
    }

    /// The flat index's score for a pair at distance `d`.
    #[inline]
    pub(crate) fn score(&self, d: f32) -> f32 {
        match self.similarity {
            Similarity::Cosine | Similarity::Dot | Similarity::Manhattan => -d,
            Similarity::Euclidean => -d.max(0.0).sqrt(),
        }
    }

    /// `v` as it is stored and searched: unit length for cosine (norm clamped at 1e-8, as
    /// `ember_core::cosine` clamps it), unchanged otherwise.
    pub(crate) fn prepare(&self, v: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend_from_slice(v);
        if self.normalises() {
            let norm = (Kernels::best().dot)(v, v).sqrt().max(1e-8);
            out.iter_mut().for_each(|x| *x /= norm);
        }
    }
}
