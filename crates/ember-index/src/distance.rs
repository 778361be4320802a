//! Distance kernels on `f32`, `f16` (against an `f32` query), `i8` and packed binary vectors, with
//! the instruction set picked once at run time: AVX-512 (VNNI for `i8`, VPOPCNTDQ for Hamming
//! when the CPU has them), AVX2+FMA (F16C, POPCNT), or portable code that the compiler
//! vectorises for the baseline target.
//!
//! [`Kernels::best`] is the set an index keeps (plain function pointers, chosen once); the free
//! functions ([`dot`], [`l2_sq`], …) call through it. Slices are expected to have equal length;
//! the extra elements of a longer one are ignored, as `ember_core::dot` does. Every kernel is
//! tested against [`scalar`] on lengths with odd tails.

use std::sync::OnceLock;

use half::f16;

#[cfg(target_arch = "x86_64")]
mod x86;

/// An instruction-set level for the `f32` kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Scalar,
    /// AVX2 with FMA (and F16C / POPCNT for the `f16` / Hamming kernels when present).
    Avx2,
    /// AVX-512F (and VNNI / VPOPCNTDQ for the `i8` / Hamming kernels when present).
    Avx512,
}

/// A kernel of a query `q` against chosen rows of a row-major matrix: `(q, data, rows, out)`
/// writes the distance of `q` to row `rows[i]` (the `q.len()` values from `rows[i] · q.len()`)
/// into `out[i]`.
pub type RowsKernel = fn(&[f32], &[f32], &[u32], &mut [f32]);

/// One implementation of every kernel, for one instruction set.
#[derive(Debug, Clone, Copy)]
pub struct Kernels {
    pub isa: Isa,
    /// Which code the `i8` kernels run: `"avx512-vnni"`, `"avx2"` or `"scalar"`.
    pub int8_path: &'static str,
    /// Which code the Hamming kernels run: `"avx512-vpopcntdq"`, `"popcnt"` or `"scalar"`.
    pub hamming_path: &'static str,
    /// `Σ aᵢbᵢ`.
    pub dot: fn(&[f32], &[f32]) -> f32,
    /// `a·b / (max(‖a‖, 1e-8) · max(‖b‖, 1e-8))`, as `ember_core::cosine`.
    pub cosine: fn(&[f32], &[f32]) -> f32,
    /// `Σ (aᵢ - bᵢ)²`.
    pub l2_sq: fn(&[f32], &[f32]) -> f32,
    /// `Σ |aᵢ - bᵢ|`.
    pub l1: fn(&[f32], &[f32]) -> f32,
    /// [`Kernels::dot`] of `q` against rows `rows` of `data` (rows of `q.len()` values), into
    /// `out`: one call per batch, so a graph search pays no call per neighbour.
    pub dot_rows: RowsKernel,
    /// [`Kernels::l2_sq`] of `q` against rows `rows` of `data`, into `out`.
    pub l2_sq_rows: RowsKernel,
    /// [`Kernels::l1`] of `q` against rows `rows` of `data`, into `out`.
    pub l1_rows: RowsKernel,
    /// `Σ aᵢbᵢ` for a stored `f16` vector `a` and an `f32` query `b`.
    pub dot_f16: fn(&[f16], &[f32]) -> f32,
    /// `Σ (aᵢ - bᵢ)²` for a stored `f16` vector `a` and an `f32` query `b`.
    pub l2_sq_f16: fn(&[f16], &[f32]) -> f32,
    /// `Σ aᵢbᵢ` in `i32` (exact for lengths up to 65,536).
    pub dot_i8: fn(&[i8], &[i8]) -> i32,
    /// [`Kernels::dot_i8`] of `q` against every row of `codes` (rows of `q.len()`), into `out`.
    pub dot_i8_many: fn(&[i8], &[i8], &mut [i32]),
    /// The number of differing bits of two packed bit vectors.
    pub hamming: fn(&[u64], &[u64]) -> u32,
    /// [`Kernels::hamming`] of `q` against every row of `codes` (rows of `q.len()` words), into `out`.
    pub hamming_many: fn(&[u64], &[u64], &mut [u32]),
}

impl Kernels {
    /// The fastest kernels this CPU runs, detected once.
    pub fn best() -> &'static Kernels {
        static BEST: OnceLock<Kernels> = OnceLock::new();
        BEST.get_or_init(|| [Isa::Avx512, Isa::Avx2].into_iter().find_map(Kernels::for_isa).unwrap_or(Kernels::SCALAR))
    }

    /// The kernels of one instruction-set level, or `None` when this CPU lacks it. Kernels that
    /// need a further extension the CPU lacks (VNNI, F16C, POPCNT…) fall back to a lower level.
    pub fn for_isa(isa: Isa) -> Option<Kernels> {
        match isa {
            Isa::Scalar => Some(Kernels::SCALAR),
            #[cfg(target_arch = "x86_64")]
            _ => x86::kernels(isa),
            #[cfg(not(target_arch = "x86_64"))]
            _ => None,
        }
    }

    /// The portable kernels.
    pub const SCALAR: Kernels = Kernels {
        isa: Isa::Scalar,
        int8_path: "scalar",
        hamming_path: "scalar",
        dot: scalar::dot,
        cosine: scalar::cosine,
        l2_sq: scalar::l2_sq,
        l1: scalar::l1,
        dot_rows: scalar::dot_rows,
        l2_sq_rows: scalar::l2_sq_rows,
        l1_rows: scalar::l1_rows,
        dot_f16: scalar::dot_f16,
        l2_sq_f16: scalar::l2_sq_f16,
        dot_i8: scalar::dot_i8,
        dot_i8_many: scalar::dot_i8_many,
        hamming: scalar::hamming,
        hamming_many: scalar::hamming_many,
    };

    /// A one-line description, e.g. `avx512 (int8: avx512-vnni, hamming: avx512-vpopcntdq)`.
    pub fn describe(&self) -> String {
        let isa = match self.isa {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2+fma",
            Isa::Avx512 => "avx512",
        };
        format!("{isa} (int8: {}, hamming: {})", self.int8_path, self.hamming_path)
    }
}

/// `Σ aᵢbᵢ` with the best kernel.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (Kernels::best().dot)(a, b)
}

/// Cosine similarity with the best kernel (norms clamped at 1e-8, as `ember_core::cosine`).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    (Kernels::best().cosine)(a, b)
}

/// Squared Euclidean distance with the best kernel.
pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    (Kernels::best().l2_sq)(a, b)
}

/// Manhattan distance with the best kernel.
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    (Kernels::best().l1)(a, b)
}

/// `Σ aᵢbᵢ` of an `f16` vector and an `f32` query with the best kernel.
pub fn dot_f16(a: &[f16], b: &[f32]) -> f32 {
    (Kernels::best().dot_f16)(a, b)
}

/// Squared Euclidean distance of an `f16` vector and an `f32` query with the best kernel.
pub fn l2_sq_f16(a: &[f16], b: &[f32]) -> f32 {
    (Kernels::best().l2_sq_f16)(a, b)
}

/// `Σ aᵢbᵢ` of two `i8` vectors in `i32` with the best kernel.
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    (Kernels::best().dot_i8)(a, b)
}

/// Hamming distance of two packed bit vectors with the best kernel.
pub fn hamming(a: &[u64], b: &[u64]) -> u32 {
    (Kernels::best().hamming)(a, b)
}

/// Hint the CPU to start loading the first `lines` cache lines of `v` (a no-op off x86-64).
#[inline(always)]
pub fn prefetch<T>(v: &[T], lines: usize) {
    #[cfg(target_arch = "x86_64")]
    x86::prefetch(v, lines);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (v, lines);
}

/// The portable kernels: the reference the SIMD ones are tested against, and the fallback.
/// Sums run in eight lanes so the compiler vectorises them for the baseline target.
pub mod scalar {
    use half::f16;

    const LANES: usize = 8;

    #[inline(always)]
    fn lanes_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0f32; LANES];
        let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ar, br) = (ac.remainder(), bc.remainder());
        for (x, y) in ac.zip(bc) {
            for l in 0..LANES {
                acc[l] += f(x[l], y[l]);
            }
        }
        let tail: f32 = ar.iter().zip(br).map(|(&x, &y)| f(x, y)).sum();
        acc.iter().sum::<f32>() + tail
    }

    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        lanes_sum(a, b, |x, y| x * y)
    }

    pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        dot(a, b) / (dot(a, a).sqrt().max(1e-8) * dot(b, b).sqrt().max(1e-8))
    }

    pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
        lanes_sum(a, b, |x, y| (x - y) * (x - y))
    }

    pub fn l1(a: &[f32], b: &[f32]) -> f32 {
        lanes_sum(a, b, |x, y| (x - y).abs())
    }

    fn rows(q: &[f32], data: &[f32], rows: &[u32], out: &mut [f32], f: fn(&[f32], &[f32]) -> f32) {
        let dim = q.len();
        for (&r, o) in rows.iter().zip(out) {
            let start = r as usize * dim;
            *o = f(q, &data[start..start + dim]);
        }
    }

    pub fn dot_rows(q: &[f32], data: &[f32], r: &[u32], out: &mut [f32]) {
        rows(q, data, r, out, dot)
    }

    pub fn l2_sq_rows(q: &[f32], data: &[f32], r: &[u32], out: &mut [f32]) {
        rows(q, data, r, out, l2_sq)
    }

    pub fn l1_rows(q: &[f32], data: &[f32], r: &[u32], out: &mut [f32]) {
        rows(q, data, r, out, l1)
    }

    pub fn dot_f16(a: &[f16], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, &y)| x.to_f32() * y).sum()
    }

    pub fn l2_sq_f16(a: &[f16], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, &y)| (x.to_f32() - y) * (x.to_f32() - y)).sum()
    }

    pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
        a.iter().zip(b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum()
    }

    pub fn dot_i8_many(q: &[i8], codes: &[i8], out: &mut [i32]) {
        if q.is_empty() {
            out.fill(0);
            return;
        }
        for (row, o) in codes.chunks_exact(q.len()).zip(out) {
            *o = dot_i8(q, row);
        }
    }

    pub fn hamming(a: &[u64], b: &[u64]) -> u32 {
        a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
    }

    pub fn hamming_many(q: &[u64], codes: &[u64], out: &mut [u32]) {
        if q.is_empty() {
            out.fill(0);
            return;
        }
        for (row, o) in codes.chunks_exact(q.len()).zip(out) {
            *o = hamming(q, row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SplitMix64;

    const LENGTHS: [usize; 16] = [0, 1, 2, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 384, 385, 1024];

    fn all_kernels() -> Vec<Kernels> {
        let ks: Vec<Kernels> = [Isa::Scalar, Isa::Avx2, Isa::Avx512].into_iter().filter_map(Kernels::for_isa).collect();
        eprintln!("testing {:?}", ks.iter().map(Kernels::describe).collect::<Vec<_>>());
        ks
    }

    /// `|got - want| ≤ 1e-5 · Σ|terms| + 1e-6`: a bound on f32 summation error in any order.
    fn close(got: f32, want: f64, magnitude: f64) -> bool {
        (f64::from(got) - want).abs() <= 1e-5 * magnitude + 1e-6
    }

    #[test]
    fn f32_kernels_match_the_f64_reference() {
        let mut rng = SplitMix64::new(1);
        for k in all_kernels() {
            for n in LENGTHS {
                let a: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
                let b: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
                let pairs = || a.iter().zip(&b).map(|(&x, &y)| (f64::from(x), f64::from(y)));
                let dot: f64 = pairs().map(|(x, y)| x * y).sum();
                let l2: f64 = pairs().map(|(x, y)| (x - y) * (x - y)).sum();
                let l1: f64 = pairs().map(|(x, y)| (x - y).abs()).sum();
                let mag: f64 = pairs().map(|(x, y)| (x * y).abs()).sum();
                assert!(close((k.dot)(&a, &b), dot, mag), "{:?} dot n={n}", k.isa);
                assert!(close((k.l2_sq)(&a, &b), l2, l2), "{:?} l2 n={n}", k.isa);
                assert!(close((k.l1)(&a, &b), l1, l1), "{:?} l1 n={n}", k.isa);
                let (na, nb) = (pairs().map(|(x, _)| x * x).sum::<f64>(), pairs().map(|(_, y)| y * y).sum::<f64>());
                let cos = dot / (na.sqrt().max(1e-8) * nb.sqrt().max(1e-8));
                assert!(close((k.cosine)(&a, &b), cos, 1.0), "{:?} cosine n={n}", k.isa);
                // Extra elements of the longer slice are ignored.
                let mut longer = b.clone();
                longer.push(100.0);
                assert_eq!((k.dot)(&a, &longer), (k.dot)(&a, &b), "{:?} n={n}", k.isa);
            }
        }
    }

    #[test]
    fn row_kernels_equal_the_single_kernels() {
        let mut rng = SplitMix64::new(4);
        for k in all_kernels() {
            for dim in [1, 7, 31, 384, 385] {
                let data: Vec<f32> = (0..20 * dim).map(|_| rng.normal()).collect();
                let q: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
                let rows = [19u32, 0, 7, 7, 3];
                let mut out = [0f32; 5];
                let row = |r: u32| &data[r as usize * dim..(r as usize + 1) * dim];
                for (many, one) in [(k.dot_rows, k.dot), (k.l2_sq_rows, k.l2_sq), (k.l1_rows, k.l1)] {
                    many(&q, &data, &rows, &mut out);
                    for (&r, &o) in rows.iter().zip(&out) {
                        assert_eq!(o, one(&q, row(r)), "{:?} dim={dim}", k.isa);
                    }
                }
            }
        }
    }

    #[test]
    fn f16_kernels_match_the_f64_reference() {
        let mut rng = SplitMix64::new(2);
        for k in all_kernels() {
            for n in LENGTHS {
                let a: Vec<f16> = (0..n).map(|_| f16::from_f32(rng.normal())).collect();
                let b: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
                let pairs = || a.iter().zip(&b).map(|(x, &y)| (f64::from(x.to_f32()), f64::from(y)));
                let dot: f64 = pairs().map(|(x, y)| x * y).sum();
                let l2: f64 = pairs().map(|(x, y)| (x - y) * (x - y)).sum();
                let mag: f64 = pairs().map(|(x, y)| (x * y).abs()).sum();
                assert!(close((k.dot_f16)(&a, &b), dot, mag), "{:?} dot_f16 n={n}", k.isa);
                assert!(close((k.l2_sq_f16)(&a, &b), l2, l2), "{:?} l2_f16 n={n}", k.isa);
            }
        }
    }

    #[test]
    fn int8_and_hamming_kernels_are_exact() {
        let mut rng = SplitMix64::new(3);
        for k in all_kernels() {
            for n in LENGTHS {
                let mut a: Vec<i8> = (0..n).map(|_| rng.next_u64() as i8).collect();
                let b: Vec<i8> = (0..n).map(|_| rng.next_u64() as i8).collect();
                assert_eq!((k.dot_i8)(&a, &b), scalar::dot_i8(&a, &b), "{} n={n}", k.int8_path);
                // The extremes: -128·-128 summed over the whole length.
                a.iter_mut().for_each(|x| *x = i8::MIN);
                assert_eq!((k.dot_i8)(&a, &a), 16384 * n as i32, "{} n={n}", k.int8_path);
                let rows = 5;
                let codes: Vec<i8> = (0..rows * n).map(|_| rng.next_u64() as i8).collect();
                let mut out = vec![0; rows];
                (k.dot_i8_many)(&b, &codes, &mut out);
                for (r, &o) in out.iter().enumerate() {
                    let want = if n == 0 { 0 } else { scalar::dot_i8(&b, &codes[r * n..(r + 1) * n]) };
                    assert_eq!(o, want, "{} many n={n}", k.int8_path);
                }

                let x: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
                let y: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
                assert_eq!((k.hamming)(&x, &y), scalar::hamming(&x, &y), "{} n={n}", k.hamming_path);
                assert_eq!((k.hamming)(&x, &x), 0);
                let codes: Vec<u64> = (0..rows * n).map(|_| rng.next_u64()).collect();
                let mut out = vec![0; rows];
                (k.hamming_many)(&x, &codes, &mut out);
                for (r, &o) in out.iter().enumerate() {
                    let want = if n == 0 { 0 } else { scalar::hamming(&x, &codes[r * n..(r + 1) * n]) };
                    assert_eq!(o, want, "{} many n={n}", k.hamming_path);
                }
            }
        }
    }

    #[test]
    fn best_is_the_highest_level_available() {
        let best = Kernels::best();
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            assert_eq!(best.isa, Isa::Avx512);
        }
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
        assert_eq!(hamming(&[0b1011], &[0b0001]), 2);
        assert_eq!(dot_i8(&[-1, 2], &[3, 4]), 5);
    }
}
