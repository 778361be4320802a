//! `C = A·Wᵀ + b` on Intel AMX tiles, with f32 accuracy kept by splitting every f32 into two
//! bfloat16 halves (`x ≈ hi + lo`, `hi = bf16(x)`, `lo = bf16(x − hi)`: 16 of f32's 24 mantissa
//! bits) and summing three tile products per step, `Ahi·Bhi + Ahi·Blo + Alo·Bhi`, into f32
//! accumulators (the dropped `Alo·Blo` term is below 2⁻¹⁶ of each product). The result agrees
//! with the f32 kernels to about 1e-5 relative — the parity tests hold — while a tile
//! multiply does 16 × 16 × 32 multiply-adds per instruction.
//!
//! Layout: the weight is packed at load into B tiles (per 16 output columns and 32 inputs, 16
//! rows of 16 column pairs: row `r` holds `(W[j][2r], W[j][2r+1])` for each column `j`), hi and
//! lo apart. Each product converts `A` once into hi and lo bfloat16 tiles (16 rows × 32 inputs,
//! each tile's 1 KiB contiguous), and streams pairs of 16-row blocks against pairs of column
//! blocks: four C tiles, two A tiles, two B tiles — the eight tile registers; per step and C
//! tile the three products always run in the same order, so a row's result never depends on
//! the rows around it. Results go through a 16 × 32 f32 scratch tile to the output, where bias,
//! activation or residual are applied. Attention uses the same product with the keys (and the
//! transposed values) packed as the weight ([`AmxWeight::pack_rows`],
//! [`AmxWeight::pack_columns`]).
//!
//! Used only when the CPU has AMX-BF16 and Linux grants the process the tile state
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM)`); `EMBER_CPU_AMX=0` turns it off (for comparisons).
#![allow(unsafe_code)]

use std::sync::OnceLock;

/// Output columns per B tile.
const TN: usize = 16;
/// Inputs per tile step (bf16 pairs × 16).
const TK: usize = 32;
/// Rows per A/C tile.
const TM: usize = 16;
/// Bytes of `A`'s bfloat16 halves kept in L2 while column pairs stream past.
const L2_BUDGET: usize = 512 * 1024;

/// Whether AMX tiles can be used by this process: the CPU reports AMX-TILE and AMX-BF16, the
/// kernel grants the tile data state, and `EMBER_CPU_AMX` is not `0`.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        if std::env::var("EMBER_CPU_AMX").is_ok_and(|v| v == "0") {
            return false;
        }
        detect()
    })
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    // CPUID.(EAX=7, ECX=0):EDX bit 22 = AMX-BF16, bit 24 = AMX-TILE.
    let leaf = std::arch::x86_64::__cpuid_count(7, 0);
    if leaf.edx & (1 << 22) == 0 || leaf.edx & (1 << 24) == 0 {
        return false;
    }
    // arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA): the kernel refuses unless it manages
    // the tile state; once granted, every thread of the process may use the tiles.
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: a plain Linux system call with integer arguments; it touches no memory of ours.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    ret == 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// f32 → bfloat16, round to nearest even (finite inputs; NaN keeps a NaN pattern).
#[inline(always)]
fn bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

#[inline(always)]
fn widen(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// `x` as `hi + lo` in bfloat16.
#[inline(always)]
fn split(x: f32) -> (u16, u16) {
    let hi = bf16(x);
    (hi, bf16(x - widen(hi)))
}

/// One 1 KiB tile of bfloat16 values, 64-byte aligned.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct TileBuf([u16; 512]);

/// A weight packed into B tiles: `[column block][k block]` tiles, hi and lo.
#[derive(Clone)]
pub struct AmxWeight {
    n: usize,
    k: usize,
    k_blocks: usize,
    n_blocks: usize,
    hi: Vec<TileBuf>,
    lo: Vec<TileBuf>,
}

impl std::fmt::Debug for AmxWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmxWeight").field("n", &self.n).field("k", &self.k).finish()
    }
}

impl AmxWeight {
    /// Pack `weight` (`[n, k]` row-major).
    pub fn new(weight: &[f32], n: usize, k: usize) -> Self {
        let k_blocks = k.div_ceil(TK);
        // Column blocks come in pairs (two C tiles per pass): round up to an even count.
        let n_blocks = n.div_ceil(TN).div_ceil(2) * 2;
        let zero = TileBuf([0; 512]);
        let mut hi = vec![zero; n_blocks * k_blocks];
        let mut lo = vec![zero; n_blocks * k_blocks];
        for nb in 0..n_blocks {
            for kb in 0..k_blocks {
                let (th, tl) = (&mut hi[nb * k_blocks + kb].0, &mut lo[nb * k_blocks + kb].0);
                for r in 0..TK / 2 {
                    for j in 0..TN {
                        let col = nb * TN + j;
                        for e in 0..2 {
                            let kk = kb * TK + 2 * r + e;
                            let x = if col < n && kk < k { weight[col * k + kk] } else { 0.0 };
                            let (h, l) = split(x);
                            th[r * 32 + 2 * j + e] = h;
                            tl[r * 32 + 2 * j + e] = l;
                        }
                    }
                }
            }
        }
        AmxWeight { n, k, k_blocks, n_blocks, hi, lo }
    }

    /// An empty weight, for [`pack_rows`](Self::pack_rows) and
    /// [`pack_columns`](Self::pack_columns) to fill (reusing its buffers).
    pub fn empty() -> Self {
        AmxWeight { n: 0, k: 0, k_blocks: 0, n_blocks: 0, hi: Vec::new(), lo: Vec::new() }
    }

    fn reshape(&mut self, n: usize, k: usize) {
        self.n = n;
        self.k = k;
        self.k_blocks = k.div_ceil(TK);
        self.n_blocks = n.div_ceil(TN).div_ceil(2) * 2;
        let tiles = self.n_blocks * self.k_blocks;
        let zero = TileBuf([0; 512]);
        for buf in [&mut self.hi, &mut self.lo] {
            buf.clear();
            buf.resize(tiles, zero);
        }
    }

    /// `W` (`[n, k]`) from its halves already split row by row ([`split_rows`]: rows `ld` apart,
    /// `ld ≥ k` a multiple of 32, columns past `k` zero): attention's keys, one row per key.
    pub fn pack_rows(&mut self, hi: &[u16], lo: &[u16], n: usize, k: usize, ld: usize) {
        debug_assert!(ld.is_multiple_of(TK) && ld >= k && hi.len() >= n * ld && lo.len() >= n * ld);
        self.reshape(n, k);
        let k_blocks = self.k_blocks;
        for (src, dst) in [(hi, &mut self.hi), (lo, &mut self.lo)] {
            for col in 0..n {
                let (nb, j) = (col / TN, col % TN);
                let row = &src[col * ld..col * ld + k_blocks * TK];
                for kb in 0..k_blocks {
                    let tile = &mut dst[nb * k_blocks + kb].0;
                    for r in 0..TK / 2 {
                        tile[r * 32 + 2 * j] = row[kb * TK + 2 * r];
                        tile[r * 32 + 2 * j + 1] = row[kb * TK + 2 * r + 1];
                    }
                }
            }
        }
    }

    /// `W = Xᵀ` (`[n, rows]`) from the halves of `X` (`rows × n`, split row by row as for
    /// [`pack_rows`](Self::pack_rows)): attention's values, whose rows (keys) are the
    /// product's inputs.
    pub fn pack_columns(&mut self, hi: &[u16], lo: &[u16], rows: usize, n: usize, ld: usize) {
        debug_assert!(ld >= n && hi.len() >= rows * ld && lo.len() >= rows * ld);
        self.reshape(n, rows);
        let k_blocks = self.k_blocks;
        for (src, dst) in [(hi, &mut self.hi), (lo, &mut self.lo)] {
            for kk in 0..rows {
                let (kb, r, e) = (kk / TK, (kk % TK) / 2, kk % 2);
                let row = &src[kk * ld..kk * ld + n];
                for (col, &v) in row.iter().enumerate() {
                    let (nb, j) = (col / TN, col % TN);
                    dst[nb * k_blocks + kb].0[r * 32 + 2 * j + e] = v;
                }
            }
        }
    }

    /// Pairs of 16-column blocks: the unit of work split across threads.
    pub fn column_pairs(&self) -> usize {
        self.n_blocks / 2
    }
}

/// `A` (`m × k` f32, row-major) as hi and lo bfloat16 matrices in tile order: rows padded to
/// a whole number of 16-row blocks and `k` to a whole number of 32-value steps, each
/// (row block, step) tile's 16 rows of 64 bytes contiguous (so a tile load reads 1 KiB in a
/// row, as the weight's tiles are read).
#[derive(Debug, Default)]
pub struct SplitA {
    k_blocks: usize,
    m_pad: usize,
    hi: Vec<u16>,
    lo: Vec<u16>,
}

impl SplitA {
    /// Split `a` into this buffer (reused across products: no allocation once it is large
    /// enough). Large matrices are split by rayon's threads, a range of row blocks each, when
    /// `parallel`.
    pub fn fill(&mut self, a: &[f32], m: usize, k: usize, parallel: bool) {
        use rayon::prelude::*;
        self.k_blocks = k.div_ceil(TK);
        self.m_pad = m.div_ceil(TM) * TM;
        let block = TM * self.k_blocks * TK; // values per row block
        let len = self.m_pad * self.k_blocks * TK;
        for buf in [&mut self.hi, &mut self.lo] {
            if buf.len() < len {
                buf.resize(len, 0);
            }
        }
        let (hi, lo) = (&mut self.hi[..len], &mut self.lo[..len]);
        const PARALLEL_MIN: usize = 1 << 16;
        let threads = if parallel { rayon::current_num_threads() } else { 1 };
        let blocks = self.m_pad / TM;
        if threads <= 1 || m * k < PARALLEL_MIN || blocks < 2 {
            split_tiles(a, 0, m, k, hi, lo);
            return;
        }
        let per = blocks.div_ceil(threads);
        hi.par_chunks_mut(per * block).zip(lo.par_chunks_mut(per * block)).enumerate().for_each(|(t, (h, l))| {
            split_tiles(a, t * per * TM, m, k, h, l);
        });
    }
}

/// Row blocks of `a` (`m × k`, row-major) from row `first` on, as many as `hi` holds, into
/// tile order ([`SplitA`]); rows past `m` and columns past `k` are zero.
fn split_tiles(a: &[f32], first: usize, m: usize, k: usize, hi: &mut [u16], lo: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw") {
        // SAFETY: the CPU supports AVX-512F/BW, checked just above.
        return unsafe { split_tiles_avx512(a, first, m, k, hi, lo) };
    }
    split_tiles_inline(a, first, m, k, hi, lo)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn split_tiles_avx512(a: &[f32], first: usize, m: usize, k: usize, hi: &mut [u16], lo: &mut [u16]) {
    split_tiles_inline(a, first, m, k, hi, lo)
}

#[inline(always)]
fn split_tiles_inline(a: &[f32], first: usize, m: usize, k: usize, hi: &mut [u16], lo: &mut [u16]) {
    let k_blocks = k.div_ceil(TK);
    let rows = hi.len() / (k_blocks * TK);
    for r in 0..rows {
        let i = first + r;
        let (mb, tr) = (r / TM, r % TM);
        for kb in 0..k_blocks {
            let at = (mb * k_blocks + kb) * TM * TK + tr * TK;
            let (h, l) = (&mut hi[at..at + TK], &mut lo[at..at + TK]);
            let c0 = kb * TK;
            let width = if i < m { TK.min(k - c0) } else { 0 };
            if width > 0 {
                split_values(&a[i * k + c0..i * k + c0 + width], &mut h[..width], &mut l[..width]);
            }
            h[width..].fill(0);
            l[width..].fill(0);
        }
    }
}

/// `x` as bfloat16 halves, value by value (round to nearest even, as [`split`]).
#[inline(always)]
fn split_values(x: &[f32], hi: &mut [u16], lo: &mut [u16]) {
    for ((x, h), l) in x.iter().zip(hi.iter_mut()).zip(lo.iter_mut()) {
        let b = x.to_bits();
        let hb = (b.wrapping_add(0x7fff + ((b >> 16) & 1))) & 0xffff_0000;
        *h = (hb >> 16) as u16;
        let r = (*x - f32::from_bits(hb)).to_bits();
        *l = (r.wrapping_add(0x7fff + ((r >> 16) & 1)) >> 16) as u16;
    }
}

/// Rows `0..m` of `a` (`m × k`, row-major) as bfloat16 halves into `hi` and `lo` (rows `ld`
/// apart, columns `k..ld` zeroed).
pub(super) fn split_rows(a: &[f32], m: usize, k: usize, ld: usize, hi: &mut [u16], lo: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw") {
        // SAFETY: the CPU supports AVX-512F/BW, checked just above.
        return unsafe { split_rows_avx512(a, m, k, ld, hi, lo) };
    }
    split_rows_inline(a, m, k, ld, hi, lo)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn split_rows_avx512(a: &[f32], m: usize, k: usize, ld: usize, hi: &mut [u16], lo: &mut [u16]) {
    split_rows_inline(a, m, k, ld, hi, lo)
}

/// Plain loops over whole rows, written to vectorise.
#[inline(always)]
fn split_rows_inline(a: &[f32], m: usize, k: usize, ld: usize, hi: &mut [u16], lo: &mut [u16]) {
    for i in 0..m {
        hi[i * ld + k..(i + 1) * ld].fill(0);
        lo[i * ld + k..(i + 1) * ld].fill(0);
        split_values(&a[i * k..(i + 1) * k], &mut hi[i * ld..i * ld + k], &mut lo[i * ld..i * ld + k]);
    }
}

/// Tile configuration: palette 1; tiles 0–7 of 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

impl TileConfig {
    fn new() -> Self {
        let mut c = [0u8; 64];
        c[0] = 1;
        for t in 0..8 {
            c[16 + 2 * t] = 64; // bytes per row
            c[48 + t] = 16; // rows
        }
        TileConfig(c)
    }
}

/// 16 × 32 f32 results of one pass, 64-byte aligned.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct Scratch(pub [f32; TM * 2 * TN]);

/// For every 16-row block of `a` and every column pair in `pairs`, compute the 16 × 32 block of
/// `A·Wᵀ` (no bias) into a scratch tile and hand it to `emit(row0, col0, scratch)` (which may
/// use the tile as its own workspace).
///
/// # Safety
/// [`available`] must have returned true in this process.
#[cfg(target_arch = "x86_64")]
pub unsafe fn product(
    w: &AmxWeight,
    a: &SplitA,
    pairs: std::ops::Range<usize>,
    mut emit: impl FnMut(usize, usize, &mut Scratch),
) {
    use std::arch::asm;
    let config = TileConfig::new();
    let mut scratch = Scratch([0f32; TM * 2 * TN]);
    let stride = 64usize; // bytes per tile row, A and B alike
    let stride_c = 2 * TN * 4; // bytes per row of the scratch tile
    let a_tile = |m0: usize, kb: usize| (m0 / TM * a.k_blocks + kb) * TM * TK;
    // Two accumulator tiles (a 16 × 32 block) into the scratch tile.
    macro_rules! store_pair {
        ($left:literal, $right:literal) => {
            asm!(
                concat!("tilestored [{c0} + {sc}], ", $left),
                concat!("tilestored [{c1} + {sc}], ", $right),
                c0 = in(reg) scratch.0.as_mut_ptr(),
                c1 = in(reg) scratch.0.as_mut_ptr().add(TN),
                sc = in(reg) stride_c,
                options(nostack)
            )
        };
    }
    asm!("ldtilecfg [{0}]", in(reg) config.0.as_ptr(), options(nostack));
    // Rows in chunks whose hi and lo halves stay in L2 while every column pair of the range
    // streams past them; within a chunk, a pair's B tiles stay in L1/L2 across its row blocks.
    let chunk_rows = ((L2_BUDGET / (4 * a.k_blocks * TK)).max(2 * TM) / (2 * TM)) * (2 * TM);
    for c0 in (0..a.m_pad).step_by(chunk_rows) {
        let c1 = (c0 + chunk_rows).min(a.m_pad);
        for pair in pairs.clone() {
            let (nb0, nb1) = (2 * pair, 2 * pair + 1);
            let mut m0 = c0;
            // Two row blocks at a time: four accumulator tiles, each loaded tile feeding two
            // products. Per accumulator the three products of a step run in the same order as
            // in the single-block loop below, so a row's result does not depend on which loop
            // computed it.
            while m0 + 2 * TM <= c1 {
                asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
                for kb in 0..w.k_blocks {
                    let (a0, a1) = (a_tile(m0, kb), a_tile(m0 + TM, kb));
                    asm!(
                        "tileloadd tmm4, [{a0hi} + {s}]",
                        "tileloadd tmm5, [{a1hi} + {s}]",
                        "tileloadd tmm6, [{b0hi} + {s}]",
                        "tileloadd tmm7, [{b1hi} + {s}]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        "tdpbf16ps tmm3, tmm5, tmm7",
                        "tileloadd tmm6, [{b0lo} + {s}]",
                        "tileloadd tmm7, [{b1lo} + {s}]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        "tdpbf16ps tmm3, tmm5, tmm7",
                        "tileloadd tmm4, [{a0lo} + {s}]",
                        "tileloadd tmm5, [{a1lo} + {s}]",
                        "tileloadd tmm6, [{b0hi} + {s}]",
                        "tileloadd tmm7, [{b1hi} + {s}]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        "tdpbf16ps tmm3, tmm5, tmm7",
                        a0hi = in(reg) a.hi.as_ptr().add(a0),
                        a0lo = in(reg) a.lo.as_ptr().add(a0),
                        a1hi = in(reg) a.hi.as_ptr().add(a1),
                        a1lo = in(reg) a.lo.as_ptr().add(a1),
                        b0hi = in(reg) w.hi.as_ptr().add(nb0 * w.k_blocks + kb),
                        b0lo = in(reg) w.lo.as_ptr().add(nb0 * w.k_blocks + kb),
                        b1hi = in(reg) w.hi.as_ptr().add(nb1 * w.k_blocks + kb),
                        b1lo = in(reg) w.lo.as_ptr().add(nb1 * w.k_blocks + kb),
                        s = in(reg) stride,
                        options(nostack, readonly)
                    );
                }
                store_pair!("tmm0", "tmm1");
                emit(m0, nb0 * TN, &mut scratch);
                store_pair!("tmm2", "tmm3");
                emit(m0 + TM, nb0 * TN, &mut scratch);
                m0 += 2 * TM;
            }
            // A last single row block.
            if m0 < c1 {
                asm!("tilezero tmm0", "tilezero tmm1", options(nostack, nomem));
                for kb in 0..w.k_blocks {
                    let a0 = a_tile(m0, kb);
                    asm!(
                        "tileloadd tmm2, [{ahi} + {s}]",
                        "tileloadd tmm3, [{alo} + {s}]",
                        "tileloadd tmm4, [{bhi0} + {s}]",
                        "tileloadd tmm5, [{blo0} + {s}]",
                        "tdpbf16ps tmm0, tmm2, tmm4",
                        "tdpbf16ps tmm0, tmm2, tmm5",
                        "tdpbf16ps tmm0, tmm3, tmm4",
                        "tileloadd tmm6, [{bhi1} + {s}]",
                        "tileloadd tmm7, [{blo1} + {s}]",
                        "tdpbf16ps tmm1, tmm2, tmm6",
                        "tdpbf16ps tmm1, tmm2, tmm7",
                        "tdpbf16ps tmm1, tmm3, tmm6",
                        ahi = in(reg) a.hi.as_ptr().add(a0),
                        alo = in(reg) a.lo.as_ptr().add(a0),
                        bhi0 = in(reg) w.hi.as_ptr().add(nb0 * w.k_blocks + kb),
                        blo0 = in(reg) w.lo.as_ptr().add(nb0 * w.k_blocks + kb),
                        bhi1 = in(reg) w.hi.as_ptr().add(nb1 * w.k_blocks + kb),
                        blo1 = in(reg) w.lo.as_ptr().add(nb1 * w.k_blocks + kb),
                        s = in(reg) stride,
                        options(nostack, readonly)
                    );
                }
                store_pair!("tmm0", "tmm1");
                emit(m0, nb0 * TN, &mut scratch);
            }
        }
    }
    asm!("tilerelease", options(nostack, nomem));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_sixteen_bits() {
        for &x in &[1.0f32, -3.3333, 1e-3, 123456.78, 0.0, -0.0, 2.5e-20] {
            let (h, l) = split(x);
            let back = widen(h) + widen(l);
            assert!((back - x).abs() <= x.abs() * 2f32.powi(-16), "{x}: {back}");
        }
        // The vectorised row split agrees with the scalar one.
        let a: Vec<f32> = (0..70).map(|i| (i as f32 * 0.37).sin() * 10f32.powi(i % 7 - 3)).collect();
        let (mut hi, mut lo) = (vec![0u16; 2 * 64], vec![0u16; 2 * 64]);
        split_rows(&a, 2, 35, 64, &mut hi, &mut lo);
        for i in 0..2 {
            for j in 0..35 {
                assert_eq!((hi[i * 64 + j], lo[i * 64 + j]), split(a[i * 35 + j]), "[{i}][{j}]");
            }
        }
    }
}
