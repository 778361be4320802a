//! `C = A·Wᵀ + b` in f32 with the weight packed once at load: the product every linear layer
//! of an encoder runs.
//!
//! `W` is a PyTorch `Linear` weight (`[n, k]`, row-major). [`PackedLinear`] stores it as panels of
//! [`NR`] output columns, each `k × NR` values laid out k-major and 64-byte aligned, so the
//! micro-kernel streams one panel with aligned vector loads while it broadcasts values of `A`
//! read in place (row-major, no packing). The AVX-512 micro-kernel keeps a `12 × 32` tile of
//! `C` in 24 registers; a portable kernel (AVX2+FMA when present, else plain) serves other CPUs.
//! Columns are split between rayon's threads panel by panel; bias, activation and residual
//! are applied to each tile while it is still in L1. A model's weights do not fit in L2, so
//! with few rows (one query) the kernel would wait on L3: the first tile of each panel
//! prefetches the next panel.
#![allow(unsafe_code)]

use std::cell::RefCell;

use rayon::prelude::*;

use super::{activation, amx};
use crate::arch::Activation;

/// Output columns per packed panel (two AVX-512 vectors).
pub const NR: usize = 32;
/// Rows of the AVX-512 micro-tile.
const MR: usize = 12;
/// How many panels ahead the first tile of a panel prefetches.
const PREFETCH_AHEAD: usize = 2;
/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 16;

/// One 64-byte line of a panel; a `Vec` of these is a 64-byte-aligned `f32` buffer.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug)]
struct Line([f32; 16]);

/// What is applied to a tile of `A·Wᵀ + b` before it is left.
#[derive(Debug, Clone, Copy)]
pub enum Epilogue<'a> {
    /// `A·Wᵀ + b`.
    Bias,
    /// `act(A·Wᵀ + b)`.
    Activation(Activation),
    /// `A·Wᵀ + b + R`, with `R` shaped like the output (`m × n`).
    Residual(&'a [f32]),
}

/// A linear layer's weight and bias, packed for [`PackedLinear::forward`].
#[derive(Clone)]
pub struct PackedLinear {
    n: usize,
    k: usize,
    panels: Vec<Line>,
    /// `n` values, zero-padded to a whole number of panels.
    bias: Vec<f32>,
    /// The weight as AMX tiles, when the CPU has them ([`amx`]).
    amx: Option<amx::AmxWeight>,
}

thread_local! {
    /// The bfloat16 halves of the current product's `A`, reused across products.
    static SPLIT_A: RefCell<amx::SplitA> = RefCell::new(amx::SplitA::default());
}

impl std::fmt::Debug for PackedLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedLinear").field("n", &self.n).field("k", &self.k).finish()
    }
}

impl PackedLinear {
    /// Pack `weight` (`[n, k]` row-major, PyTorch's `Linear` layout) and `bias` (`n` values, or
    /// zeros when absent).
    pub fn new(weight: &[f32], bias: Option<&[f32]>, n: usize, k: usize) -> Self {
        assert_eq!(weight.len(), n * k, "weight is not {n} × {k}");
        let panel_count = n.div_ceil(NR);
        let mut flat = vec![0f32; panel_count * k * NR];
        for p in 0..panel_count {
            let panel = &mut flat[p * k * NR..(p + 1) * k * NR];
            for j in 0..NR.min(n - p * NR) {
                let row = &weight[(p * NR + j) * k..(p * NR + j + 1) * k];
                for (kk, &w) in row.iter().enumerate() {
                    panel[kk * NR + j] = w;
                }
            }
        }
        let panels = flat
            .chunks_exact(16)
            .map(|c| {
                let mut line = [0f32; 16];
                line.copy_from_slice(c);
                Line(line)
            })
            .collect();
        let mut padded_bias = vec![0f32; panel_count * NR];
        if let Some(b) = bias {
            assert_eq!(b.len(), n, "bias is not {n} long");
            padded_bias[..n].copy_from_slice(b);
        }
        let amx = amx::available().then(|| amx::AmxWeight::new(weight, n, k));
        PackedLinear { n, k, panels, bias: padded_bias, amx }
    }

    /// Output features.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input features.
    pub fn k(&self) -> usize {
        self.k
    }

    fn panel_count(&self) -> usize {
        self.n.div_ceil(NR)
    }

    fn panel_values(&self) -> &[f32] {
        // SAFETY: `Line` is `repr(C)` around `[f32; 16]`, so `panels` is `16 × len` contiguous,
        // initialised f32 values; the slice borrows `self`.
        unsafe { std::slice::from_raw_parts(self.panels.as_ptr().cast::<f32>(), self.panels.len() * 16) }
    }

    /// `out[..m × n] = epilogue(a[..m × k] · Wᵀ + b)`, rows of `a` and `out` contiguous.
    pub fn forward(&self, a: &[f32], m: usize, out: &mut [f32], epilogue: Epilogue<'_>) {
        self.forward_with(a, m, out, epilogue, true);
    }

    /// [`forward`](Self::forward) on the calling thread only (for callers that already split
    /// their work between threads, by rows). The result is the same.
    pub fn forward_serial(&self, a: &[f32], m: usize, out: &mut [f32], epilogue: Epilogue<'_>) {
        self.forward_with(a, m, out, epilogue, false);
    }

    fn forward_with(&self, a: &[f32], m: usize, out: &mut [f32], epilogue: Epilogue<'_>, parallel: bool) {
        let (n, k) = (self.n, self.k);
        assert!(a.len() >= m * k, "A has {} values, needs {m} × {k}", a.len());
        assert!(out.len() >= m * n, "C has {} values, needs {m} × {n}", out.len());
        if let Epilogue::Residual(r) = epilogue {
            assert!(r.len() >= m * n, "residual has {} values, needs {m} × {n}", r.len());
        }
        if m == 0 || n == 0 {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        // Every product goes to AMX when the CPU has it, however few its rows: a row's result
        // then never depends on the batch it came in (the kernels round differently).
        if let Some(w) = &self.amx {
            self.forward_amx(w, a, m, out, epilogue, parallel);
            return;
        }
        let isa = Isa::detect();
        let panels = self.panel_count();
        let threads = if parallel { rayon::current_num_threads().min(panels) } else { 1 };
        let c = SharedOut(out.as_mut_ptr());
        if threads <= 1 || m * n * k < PARALLEL_MIN_WORK {
            self.run_panels(isa, a, m, c, 0..panels, epilogue);
            return;
        }
        let per = panels.div_ceil(threads);
        (0..threads).into_par_iter().for_each(|t| {
            let range = (t * per).min(panels)..((t + 1) * per).min(panels);
            self.run_panels(isa, a, m, c, range, epilogue);
        });
    }

    /// [`forward`](Self::forward) on AMX tiles: `A` split into bfloat16 halves once, column
    /// pairs split between threads, bias and epilogue applied as each 16 × 32 block leaves.
    #[cfg(target_arch = "x86_64")]
    fn forward_amx(
        &self,
        w: &amx::AmxWeight,
        a: &[f32],
        m: usize,
        out: &mut [f32],
        epilogue: Epilogue<'_>,
        parallel: bool,
    ) {
        let (n, k) = (self.n, self.k);
        // The buffer is taken out of the thread-local for the product, not borrowed through it:
        // a rayon worker waiting for the parallel section below may run another product (a
        // stolen job) on this same thread.
        let mut buffer = SPLIT_A.with(|cell| std::mem::take(&mut *cell.borrow_mut()));
        {
            buffer.fill(&a[..m * k], m, k, parallel);
            let split = &buffer;
            let c = SharedOut(out.as_mut_ptr());
            let pairs = w.column_pairs();
            let run = |range: std::ops::Range<usize>| {
                let emit = |m0: usize, c0: usize, tile: &mut amx::Scratch| {
                    let rows = 16.min(m.saturating_sub(m0));
                    let cols = (2 * 16).min(n.saturating_sub(c0));
                    // SAFETY: rows `m0..m0 + rows < m` and columns `c0..c0 + cols ≤ n` of the
                    // output, which covers `m × n` values (checked in `forward`); threads get
                    // disjoint column pairs, so no two write the same values.
                    unsafe {
                        finish_tile(
                            tile,
                            TileTarget { out: c, n, m0, rows, c0, cols },
                            &self.bias[c0..c0 + cols],
                            epilogue,
                        )
                    };
                };
                // SAFETY: `w` exists only when `amx::available()` returned true.
                unsafe { amx::product(w, split, range, emit) };
            };
            let threads = if parallel { rayon::current_num_threads().min(pairs) } else { 1 };
            if threads <= 1 || m * n * k < PARALLEL_MIN_WORK {
                run(0..pairs);
            } else {
                let per = pairs.div_ceil(threads);
                (0..threads).into_par_iter().for_each(|t| run((t * per).min(pairs)..((t + 1) * per).min(pairs)));
            }
        }
        SPLIT_A.with(|cell| *cell.borrow_mut() = buffer);
    }

    /// All rows of `a` against panels `range`, writing their columns of `c`.
    fn run_panels(
        &self,
        isa: Isa,
        a: &[f32],
        m: usize,
        c: SharedOut,
        range: std::ops::Range<usize>,
        epilogue: Epilogue<'_>,
    ) {
        // Rows of A per block: the block (`rows × k` values) stays in L2 while panels stream by.
        let block_rows = ((256 * 1024 / 4) / self.k.max(1)).clamp(MR, 8 * 1024) / MR * MR;
        for m0 in (0..m).step_by(block_rows) {
            let rows = block_rows.min(m - m0);
            match isa {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Isa::Avx512` is only chosen when the CPU reports AVX-512F; the
                // slices and `c` cover `m × k` and `m × n` values (checked in `forward`), and
                // each caller passes a disjoint panel range, so no two threads write one column.
                Isa::Avx512 => unsafe { self.block_avx512(a, m0, rows, c, range.clone(), epilogue) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above, with AVX2 and FMA reported by the CPU.
                Isa::Avx2 => unsafe { self.block_avx2(a, m0, rows, c, range.clone(), epilogue) },
                // SAFETY: as above; no instruction-set requirement.
                Isa::Portable => unsafe { self.block_portable::<false>(a, m0, rows, c, range.clone(), epilogue) },
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn block_avx512(
        &self,
        a: &[f32],
        m0: usize,
        rows: usize,
        c: SharedOut,
        range: std::ops::Range<usize>,
        epilogue: Epilogue<'_>,
    ) {
        let (n, k) = (self.n, self.k);
        let w = self.panel_values();
        for p in range.clone() {
            let j0 = p * NR;
            let cols = NR.min(n - j0);
            // The first tile of each panel pulls the next panel toward L2: a layer's weights
            // come from L3, and with few rows the kernel would otherwise wait on them.
            let next = if p + PREFETCH_AHEAD < range.end {
                w[(p + PREFETCH_AHEAD) * k * NR..].as_ptr()
            } else {
                std::ptr::null()
            };
            let mut i = m0;
            while i < m0 + rows {
                // Rows left split into equal tiles of at most MR (15 → 8 + 7, not 12 + 3): a
                // short tile runs the panel at a fraction of the speed of a full one.
                let left = m0 + rows - i;
                let r = left.div_ceil(left.div_ceil(MR));
                let tile = Tile {
                    k,
                    a: a[i * k..].as_ptr(),
                    lda: k,
                    w: w[p * k * NR..].as_ptr(),
                    bias: self.bias[j0..].as_ptr(),
                    c: c.0.add(i * n + j0),
                    ldc: n,
                    cols,
                    residual: match epilogue {
                        Epilogue::Residual(res) => res[i * n + j0..].as_ptr(),
                        _ => std::ptr::null(),
                    },
                    prefetch: if i == m0 { next } else { std::ptr::null() },
                };
                avx512::wide(r, &tile);
                if let Epilogue::Activation(act) = epilogue {
                    for row in 0..r {
                        let out = std::slice::from_raw_parts_mut(tile.c.add(row * n), cols);
                        activation::apply_inline(act, out);
                    }
                }
                i += r;
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_avx2(
        &self,
        a: &[f32],
        m0: usize,
        rows: usize,
        c: SharedOut,
        range: std::ops::Range<usize>,
        epilogue: Epilogue<'_>,
    ) {
        self.block_portable::<true>(a, m0, rows, c, range, epilogue)
    }

    /// The portable kernel: one row at a time against one panel, with `FMA` choosing
    /// `mul_add` (one instruction when compiled with FMA) over a separate multiply and add.
    #[inline(always)]
    unsafe fn block_portable<const FMA: bool>(
        &self,
        a: &[f32],
        m0: usize,
        rows: usize,
        c: SharedOut,
        range: std::ops::Range<usize>,
        epilogue: Epilogue<'_>,
    ) {
        let (n, k) = (self.n, self.k);
        let w = self.panel_values();
        for p in range {
            let j0 = p * NR;
            let cols = NR.min(n - j0);
            let panel = &w[p * k * NR..(p + 1) * k * NR];
            for i in m0..m0 + rows {
                let mut acc = [0f32; NR];
                acc.copy_from_slice(&self.bias[j0..j0 + NR]);
                for (&x, wk) in a[i * k..(i + 1) * k].iter().zip(panel.chunks_exact(NR)) {
                    for (s, &wv) in acc.iter_mut().zip(wk) {
                        *s = if FMA { x.mul_add(wv, *s) } else { *s + x * wv };
                    }
                }
                if let Epilogue::Residual(res) = epilogue {
                    for (s, &r) in acc.iter_mut().zip(&res[i * n + j0..i * n + j0 + cols]) {
                        *s += r;
                    }
                }
                if let Epilogue::Activation(act) = epilogue {
                    activation::apply_inline(act, &mut acc[..cols]);
                }
                let out = std::slice::from_raw_parts_mut(c.0.add(i * n + j0), cols);
                out.copy_from_slice(&acc[..cols]);
            }
        }
    }
}

/// The instruction set the kernels run with, detected at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl Isa {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }
}

/// The output pointer, shared by threads that write disjoint column ranges.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);

impl SharedOut {
    /// The pointer (a method, so that closures capture the `Sync` wrapper, not the field).
    fn ptr(self) -> *mut f32 {
        self.0
    }
}
// SAFETY: threads given a `SharedOut` write disjoint panels (column ranges) of the output,
// which outlives the parallel section (`forward` borrows it mutably throughout).
unsafe impl Send for SharedOut {}
// SAFETY: as above.
unsafe impl Sync for SharedOut {}

/// One micro-tile's operands: `R` rows of `A` from `a` (stride `lda`) times one packed panel
/// `w` (`k × NR`, 64-byte aligned), plus bias, into `cols ≤ NR` columns of `c` (stride `ldc`),
/// adding `residual` (stride `ldc`) when it is not null, and prefetching the panel at
/// `prefetch` into L2 alongside when that is not null.
#[cfg(target_arch = "x86_64")]
struct Tile {
    k: usize,
    a: *const f32,
    lda: usize,
    w: *const f32,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    residual: *const f32,
    prefetch: *const f32,
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Tile, NR};

    /// [`tile`] for `r` (1 to 12) rows.
    ///
    /// # Safety
    /// As for [`tile`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn wide(r: usize, t: &Tile) {
        if t.prefetch.is_null() {
            wide_with::<false>(r, t)
        } else {
            wide_with::<true>(r, t)
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn wide_with<const PREFETCH: bool>(r: usize, t: &Tile) {
        match r {
            12 => tile::<12, PREFETCH>(t),
            11 => tile::<11, PREFETCH>(t),
            10 => tile::<10, PREFETCH>(t),
            9 => tile::<9, PREFETCH>(t),
            8 => tile::<8, PREFETCH>(t),
            7 => tile::<7, PREFETCH>(t),
            6 => tile::<6, PREFETCH>(t),
            5 => tile::<5, PREFETCH>(t),
            4 => tile::<4, PREFETCH>(t),
            3 => tile::<3, PREFETCH>(t),
            2 => tile::<2, PREFETCH>(t),
            _ => tile::<1, PREFETCH>(t),
        }
    }

    /// `R × 32` tile in `2R` zmm accumulators over the whole `k`, prefetching `t.prefetch`
    /// when `PREFETCH`. Not inlined: alone, the tile gets all 32 vector registers to itself
    /// (inlined into the block loop, LLVM spilled accumulators).
    ///
    /// # Safety
    /// The CPU supports AVX-512F; `t.a` holds `R` rows of `t.k` values at stride `t.lda`;
    /// `t.prefetch` is null or a panel like `t.w` (prefetches never fault, but stay in bounds);
    /// `t.w` is a 64-byte aligned `t.k × NR` panel; `t.bias` has `NR` values; `t.c` (and
    /// `t.residual` when not null) hold `R` rows of `t.cols` values at stride `t.ldc`.
    #[inline(never)]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const R: usize, const PREFETCH: bool>(t: &Tile) {
        let b0 = _mm512_loadu_ps(t.bias);
        let b1 = _mm512_loadu_ps(t.bias.add(16));
        let mut lo = [b0; R];
        let mut hi = [b1; R];
        let mut w = t.w;
        let mut a = t.a;
        for p in 0..t.k {
            if PREFETCH {
                _mm_prefetch::<_MM_HINT_T1>(t.prefetch.add(p * NR).cast::<i8>());
                _mm_prefetch::<_MM_HINT_T1>(t.prefetch.add(p * NR + 16).cast::<i8>());
            }
            let w0 = _mm512_load_ps(w);
            let w1 = _mm512_load_ps(w.add(16));
            for r in 0..R {
                let x = _mm512_set1_ps(*a.add(r * t.lda));
                lo[r] = _mm512_fmadd_ps(x, w0, lo[r]);
                hi[r] = _mm512_fmadd_ps(x, w1, hi[r]);
            }
            w = w.add(NR);
            a = a.add(1);
        }
        let mask_lo: __mmask16 = if t.cols >= 16 { 0xffff } else { (1u16 << t.cols) - 1 };
        let mask_hi: __mmask16 = if t.cols >= 32 {
            0xffff
        } else if t.cols <= 16 {
            0
        } else {
            (1u16 << (t.cols - 16)) - 1
        };
        for r in 0..R {
            let row = t.c.add(r * t.ldc);
            if !t.residual.is_null() {
                let res = t.residual.add(r * t.ldc);
                lo[r] = _mm512_add_ps(lo[r], _mm512_maskz_loadu_ps(mask_lo, res));
                hi[r] = _mm512_add_ps(hi[r], _mm512_maskz_loadu_ps(mask_hi, res.add(16)));
            }
            _mm512_mask_storeu_ps(row, mask_lo, lo[r]);
            _mm512_mask_storeu_ps(row.add(16), mask_hi, hi[r]);
        }
    }
}

/// `C = A·Wᵀ + b` by the definition, in f64: the reference the kernels are tested against.
#[cfg(test)]
pub(crate) fn naive(a: &[f32], weight: &[f32], bias: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k).map(|p| f64::from(a[i * k + p]) * f64::from(weight[j * k + p])).sum();
            c[i * n + j] = (dot + f64::from(bias[j])) as f32;
        }
    }
    c
}

/// Where one 16 × 32 AMX result tile goes: `rows` × `cols` of it are real, written to `out`
/// (`n` columns) at row `m0`, column `c0`.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct TileTarget {
    out: SharedOut,
    n: usize,
    m0: usize,
    rows: usize,
    c0: usize,
    cols: usize,
}

/// Bias, residual and activation on one AMX result tile, then its rows copied to their place.
/// Compiled for AVX-512 when the CPU has it: the tile is worked on in place, so the activation
/// runs over it in one pass rather than row by row.
///
/// # Safety
/// `at.out` must be valid for writes of rows `m0..m0 + rows`, columns `c0..c0 + cols` of an
/// `_ × n` matrix, and no other thread may write those values meanwhile.
#[cfg(target_arch = "x86_64")]
unsafe fn finish_tile(tile: &mut amx::Scratch, at: TileTarget, bias: &[f32], epilogue: Epilogue<'_>) {
    if std::is_x86_feature_detected!("avx512f") {
        finish_tile_avx512(tile, at, bias, epilogue)
    } else {
        finish_tile_inline(tile, at, bias, epilogue)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn finish_tile_avx512(tile: &mut amx::Scratch, at: TileTarget, bias: &[f32], epilogue: Epilogue<'_>) {
    finish_tile_inline(tile, at, bias, epilogue)
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn finish_tile_inline(tile: &mut amx::Scratch, at: TileTarget, bias: &[f32], epilogue: Epilogue<'_>) {
    let TileTarget { out, n, m0, rows, c0, cols } = at;
    const W: usize = 32;
    let values = &mut tile.0[..rows * W];
    for (r, row) in values.chunks_exact_mut(W).enumerate() {
        let row = &mut row[..cols];
        match epilogue {
            Epilogue::Residual(res) => {
                let i = m0 + r;
                let res = &res[i * n + c0..i * n + c0 + cols];
                for ((o, &b), &x) in row.iter_mut().zip(bias).zip(res) {
                    *o = *o + b + x; // (g + b) + x, the order of the other kernels
                }
            }
            _ => row.iter_mut().zip(bias).for_each(|(o, &b)| *o += b),
        }
    }
    if let Epilogue::Activation(act) = epilogue {
        // Whole rows of the tile, padding columns included (they are never copied out).
        activation::apply_inline(act, values);
    }
    for (r, row) in values.chunks_exact(W).enumerate() {
        // SAFETY: the caller guarantees these `cols` values of row `m0 + r` are ours to write.
        let dst = std::slice::from_raw_parts_mut(out.ptr().add((m0 + r) * n + c0), cols);
        super::copy_row(dst, &row[..cols]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{max_abs_diff, random};

    fn check(m: usize, n: usize, k: usize, isa: Isa) {
        let a = random(m * k, 1);
        let w = random(n * k, 2);
        let b = random(n, 3);
        let res = random(m * n, 4);
        let packed = PackedLinear::new(&w, Some(&b), n, k);
        let expect = naive(&a, &w, &b, m, n, k);
        let tol = 1e-5 * (k as f32).sqrt().max(1.0);

        let mut got = vec![f32::NAN; m * n];
        packed.run_panels(isa, &a, m, SharedOut(got.as_mut_ptr()), 0..packed.panel_count(), Epilogue::Bias);
        assert!(max_abs_diff(&got, &expect) <= tol, "{isa:?} {m}×{n}×{k}: diff {}", max_abs_diff(&got, &expect));

        let mut got = vec![f32::NAN; m * n];
        packed.run_panels(isa, &a, m, SharedOut(got.as_mut_ptr()), 0..packed.panel_count(), Epilogue::Residual(&res));
        let with_res: Vec<f32> = expect.iter().zip(&res).map(|(e, r)| e + r).collect();
        assert!(max_abs_diff(&got, &with_res) <= tol, "{isa:?} residual {m}×{n}×{k}");

        let mut got = vec![f32::NAN; m * n];
        packed.run_panels(
            isa,
            &a,
            m,
            SharedOut(got.as_mut_ptr()),
            0..packed.panel_count(),
            Epilogue::Activation(Activation::Relu),
        );
        let relu: Vec<f32> = expect.iter().map(|e| e.max(0.0)).collect();
        assert!(max_abs_diff(&got, &relu) <= tol, "{isa:?} relu {m}×{n}×{k}");
    }

    /// The AMX path (bfloat16 halves, f32 accumulation) agrees with the f64 reference within
    /// the f32 kernels' tolerance, with bias, residual and activation, for shapes that are not
    /// whole tiles; skipped (saying so) on CPUs without AMX.
    #[test]
    fn amx_products_match_the_reference() {
        if !amx::available() {
            eprintln!("no AMX on this CPU: the AMX product is not exercised");
            return;
        }
        for (m, n, k) in [(1, 32, 32), (8, 32, 32), (17, 50, 33), (40, 384, 384), (100, 96, 1536), (33, 1152, 384)] {
            let a = random(m * k, 11);
            let w = random(n * k, 12);
            let b = random(n, 13);
            let res = random(m * n, 14);
            let packed = PackedLinear::new(&w, Some(&b), n, k);
            assert!(packed.amx.is_some());
            let expect = naive(&a, &w, &b, m, n, k);
            let tol = 1e-5 * (k as f32).sqrt().max(1.0);
            let mut got = vec![f32::NAN; m * n];
            packed.forward(&a, m, &mut got, Epilogue::Bias);
            let diff = max_abs_diff(&got, &expect);
            assert!(diff <= tol, "AMX {m}×{n}×{k}: diff {diff}");
            packed.forward(&a, m, &mut got, Epilogue::Residual(&res));
            let with_res: Vec<f32> = expect.iter().zip(&res).map(|(e, r)| e + r).collect();
            assert!(max_abs_diff(&got, &with_res) <= tol, "AMX residual {m}×{n}×{k}");
            packed.forward(&a, m, &mut got, Epilogue::Activation(Activation::Relu));
            let relu: Vec<f32> = expect.iter().map(|e| e.max(0.0)).collect();
            assert!(max_abs_diff(&got, &relu) <= tol, "AMX relu {m}×{n}×{k}");
        }
    }

    fn isas() -> Vec<Isa> {
        let mut all = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                all.push(Isa::Avx2);
            }
            if std::is_x86_feature_detected!("avx512f") {
                all.push(Isa::Avx512);
            }
        }
        all
    }

    #[test]
    fn every_kernel_matches_the_definition_on_odd_sizes() {
        for isa in isas() {
            for (m, n, k) in [
                (1, 7, 13),
                (1, 1, 1),
                (13, 33, 5),
                (12, 32, 16),
                (25, 65, 31),
                (28, 40, 9),
                (29, 17, 3),
                (37, 48, 100),
            ] {
                check(m, n, k, isa);
            }
        }
    }

    #[test]
    fn large_product_matches_the_definition() {
        for isa in isas() {
            check(37, 384, 1536, isa);
        }
    }

    #[test]
    fn threaded_forward_equals_one_thread() {
        let (m, n, k) = (50, 1152, 384);
        let a = random(m * k, 5);
        let w = random(n * k, 6);
        let packed = PackedLinear::new(&w, None, n, k);
        let mut threaded = vec![0f32; m * n];
        packed.forward(&a, m, &mut threaded, Epilogue::Bias);
        // The same product on one thread (whichever kernel `forward` picks: AMX or vectors).
        let mut single = vec![0f32; m * n];
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        one.install(|| packed.forward(&a, m, &mut single, Epilogue::Bias));
        assert_eq!(threaded, single);
        let expect = naive(&a, &w, &vec![0.0; n], m, n, k);
        // The tolerance of every kernel here (AMX's bfloat16 halves keep 16 mantissa bits).
        assert!(max_abs_diff(&threaded, &expect) <= 1e-5 * (k as f32).sqrt());
    }
}
