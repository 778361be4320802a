//! Layer normalisation over the rows of a row-major matrix, in place, rows split between
//! rayon's threads; compiled for AVX-512 when the CPU has it.
#![allow(unsafe_code)]

use rayon::prelude::*;

/// A LayerNorm's weight (`gamma`), bias (`beta`) and epsilon.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub eps: f32,
}

impl LayerNorm {
    /// Normalise each row of `x` (`rows × gamma.len()` values): `(x − mean)/√(var + eps)·γ + β`.
    pub fn forward(&self, x: &mut [f32]) {
        let h = self.gamma.len();
        assert!(x.len().checked_rem(h) == Some(0), "{} values are not rows of {h}", x.len());
        // Rows per task: enough work per task to amortise the hand-off.
        let rows_per_task = (16 * 1024 / h).max(1);
        if x.len() <= rows_per_task * h {
            self.rows(x);
        } else {
            x.par_chunks_mut(rows_per_task * h).for_each(|chunk| self.rows(chunk));
        }
    }

    /// [`forward`](Self::forward) on the calling thread only.
    pub fn forward_serial(&self, x: &mut [f32]) {
        let h = self.gamma.len();
        assert!(x.len().checked_rem(h) == Some(0), "{} values are not rows of {h}", x.len());
        self.rows(x);
    }

    fn rows(&self, x: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { self.rows_avx512(x) };
        }
        self.rows_inline(x)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn rows_avx512(&self, x: &mut [f32]) {
        self.rows_inline(x)
    }

    #[inline(always)]
    fn rows_inline(&self, x: &mut [f32]) {
        let h = self.gamma.len();
        let inv_h = 1.0 / h as f32;
        for row in x.chunks_exact_mut(h) {
            let mean = sum(row) * inv_h;
            let var = squared_deviation(row, mean) * inv_h;
            let rstd = 1.0 / (var + self.eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(&self.gamma).zip(&self.beta) {
                *v = (*v - mean) * rstd * g + b;
            }
        }
    }
}

/// Sum of `x` in sixteen interleaved lanes (f32 addition is not associative, so the compiler
/// would not vectorise one running sum).
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    lanes.iter().sum::<f32>() + tail
}

/// `Σ (x − mean)²` in sixteen interleaved lanes.
#[inline(always)]
fn squared_deviation(x: &[f32], mean: f32) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += (v - mean) * (v - mean);
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{max_abs_diff, random};

    fn naive(x: &[f32], ln: &LayerNorm) -> Vec<f32> {
        let h = ln.gamma.len();
        x.chunks(h)
            .flat_map(|row| {
                let mean: f64 = row.iter().map(|&v| f64::from(v)).sum::<f64>() / h as f64;
                let var: f64 = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / h as f64;
                let rstd = 1.0 / (var + f64::from(ln.eps)).sqrt();
                row.iter()
                    .enumerate()
                    .map(move |(j, &v)| {
                        ((f64::from(v) - mean) * rstd * f64::from(ln.gamma[j]) + f64::from(ln.beta[j])) as f32
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn matches_the_definition() {
        for (rows, h) in [(1, 7), (3, 13), (37, 384), (100, 768), (1, 1)] {
            let ln = LayerNorm { gamma: random(h, 1), beta: random(h, 2), eps: 1e-12 };
            let mut x: Vec<f32> = random(rows * h, 3).iter().map(|v| v * 3.0 + 0.5).collect();
            let expect = naive(&x, &ln);
            ln.forward(&mut x);
            assert!(max_abs_diff(&x, &expect) <= 2e-5, "{rows}×{h}: {}", max_abs_diff(&x, &expect));
        }
    }

    #[test]
    fn sum_matches_sequential() {
        let x = random(1001, 4);
        let want: f64 = x.iter().map(|&v| f64::from(v)).sum();
        assert!((f64::from(sum(&x)) - want).abs() < 1e-4);
    }
}
