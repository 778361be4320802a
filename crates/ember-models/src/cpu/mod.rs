//! A padding-free f32 forward pass for the CPU: the kernels (packed GEMM, attention, layer
//! norm, activations) and the encoder loop BERT, XLM-RoBERTa and MPNet share. The model files
//! in [`crate::arch`] build a [`CpuEncoder`] from their weights when the model runs in f32 on the
//! CPU and route `forward_packed` to it; other devices and dtypes keep candle's path.
//!
//! Kernels pick their instruction set at run time (`is_x86_feature_detected!`): AVX-512 when
//! present, else a portable version of the same loop. Work is split across rayon's threads.

pub mod activation;
pub mod amx;
pub mod attention;
pub mod encoder;
pub mod gemm;
pub mod layer_norm;

pub use encoder::{CpuEncoder, EmbeddingWeights, LayerWeights};

/// `dst.copy_from_slice(src)` for the short rows (16–64 values) the kernels move: sixteen
/// values at a time as fixed-size arrays, which compile to vector moves in place, where a
/// slice copy of run-time length is a call to `memcpy`.
#[inline(always)]
pub(crate) fn copy_row(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "rows of different lengths");
    let mut d = dst.chunks_exact_mut(16);
    let mut s = src.chunks_exact(16);
    for (dc, sc) in (&mut d).zip(&mut s) {
        let dc: &mut [f32; 16] = dc.try_into().unwrap_or_else(|_| unreachable!());
        let sc: &[f32; 16] = sc.try_into().unwrap_or_else(|_| unreachable!());
        *dc = *sc;
    }
    for (o, &v) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *o = v;
    }
}

/// Deterministic inputs and comparisons for the kernel tests.
#[cfg(test)]
pub(crate) mod testing {
    /// `len` values in [-1, 1) from a fixed-seed generator (SplitMix64).
    pub fn random(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
        (0..len)
            .map(|_| {
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Largest `|a − b|`; infinite when either holds a NaN.
    pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .map(|d| if d.is_nan() { f32::INFINITY } else { d })
            .fold(0.0, f32::max)
    }
}
