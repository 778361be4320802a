//! Multi-head self-attention over packed sequences (no padding, so no mask): each sequence
//! attends only to itself. Tasks are (sequence, block of query rows) so one long sequence
//! still keeps every thread busy, and each task owns its rows of the output.
#![allow(unsafe_code)]

use rayon::prelude::*;

use super::activation::exp;

/// An additive bias that depends on the relative distance `j − i` of key `j` and query `i`
/// (MPNet's bucketed relative positions): `values[head × (2·span − 1) + (j − i + span − 1)]`
/// for sequences up to `span` long.
#[derive(Debug, Clone, Copy)]
pub struct DistanceBias<'a> {
    pub values: &'a [f32],
    pub span: usize,
}

/// `softmax(q·kᵀ/√d + bias)·v` per head for each sequence. `qkv` holds, per token, the
/// query, key and value projections side by side (`3 × hidden` values); `out` gets
/// `hidden` values per token, heads side by side.
pub fn attend(qkv: &[f32], lengths: &[usize], heads: usize, bias: Option<DistanceBias<'_>>, out: &mut [f32]) {
    attend_with(qkv, lengths, heads, bias, out, super::amx::available());
}

/// [`attend`], on AMX tiles only when `amx` (and [`super::amx::available`]).
fn attend_with(
    qkv: &[f32],
    lengths: &[usize],
    heads: usize,
    bias: Option<DistanceBias<'_>>,
    out: &mut [f32],
    amx: bool,
) {
    let tokens: usize = lengths.iter().sum();
    if tokens == 0 {
        return;
    }
    let hidden = out.len() / tokens;
    assert_eq!(out.len(), tokens * hidden, "output is not {tokens} rows");
    assert_eq!(qkv.len(), tokens * 3 * hidden, "qkv is not {tokens} × 3·{hidden}");
    assert!(hidden.checked_rem(heads) == Some(0), "{hidden} is not divisible into {heads} heads");
    if let Some(b) = bias {
        let longest = lengths.iter().copied().max().unwrap_or(0);
        assert!(b.span >= longest && b.values.len() >= heads * (2 * b.span - 1), "distance bias too short");
    }
    // Split sequences into query-row blocks, about two per thread in all: each task transposes
    // the keys of its sequence once per head, so fewer, larger tasks waste less.
    let target = (tokens / (2 * rayon::current_num_threads())).max(16);
    let mut tasks = Vec::new();
    let mut rest = out;
    let mut start = 0;
    for &n in lengths {
        let blocks = n.div_ceil(target).max(1);
        let per = n.div_ceil(blocks).max(1);
        let mut r0 = 0;
        while r0 < n {
            let r1 = (r0 + per).min(n);
            let (mine, tail) = rest.split_at_mut((r1 - r0) * hidden);
            tasks.push(Task { seq_start: start, len: n, rows: r0..r1, out: mine });
            rest = tail;
            r0 = r1;
        }
        start += n;
    }
    let shape = Shape { heads, hidden, amx: amx && super::amx::available() };
    if tasks.len() == 1 || tokens < 16 {
        tasks.into_iter().for_each(|t| run(qkv, shape, bias, t));
    } else {
        tasks.into_par_iter().for_each(|t| run(qkv, shape, bias, t));
    }
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    heads: usize,
    hidden: usize,
    /// Whether to use the AMX path.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    amx: bool,
}

/// Query rows `rows` of the sequence of `len` tokens that starts at token `seq_start`.
struct Task<'a> {
    seq_start: usize,
    len: usize,
    rows: std::ops::Range<usize>,
    out: &'a mut [f32],
}

fn run(qkv: &[f32], shape: Shape, bias: Option<DistanceBias<'_>>, task: Task<'_>) {
    #[cfg(target_arch = "x86_64")]
    if shape.amx && std::is_x86_feature_detected!("avx512f") {
        // SAFETY: AMX is available to this process (`shape.amx` is only set when it is) and the
        // CPU supports AVX-512F.
        return unsafe { run_amx(qkv, shape, bias, task) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F, checked just above.
        return unsafe { run_avx512(qkv, shape, bias, task) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { run_avx2(qkv, shape, bias, task) };
    }
    run_inline(qkv, shape, bias, task)
}

/// With FMA, `mul_add` is one instruction (without, it is a library call: correct, slow).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(qkv: &[f32], shape: Shape, bias: Option<DistanceBias<'_>>, task: Task<'_>) {
    run_inline(qkv, shape, bias, task)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512(qkv: &[f32], shape: Shape, bias: Option<DistanceBias<'_>>, task: Task<'_>) {
    run_inline(qkv, shape, bias, task)
}

/// Buffers of one attention task on AMX tiles, reused across heads and tasks.
#[cfg(target_arch = "x86_64")]
#[derive(Default)]
struct AmxBuffers {
    /// One head's keys, values (`n × d`) and the task's queries (`rows × d`), gathered.
    keys: Vec<f32>,
    values: Vec<f32>,
    queries: Vec<f32>,
    /// Keys and values split into bfloat16 halves, rows `ld` apart.
    halves: [Vec<u16>; 4],
    key_tiles: Option<super::amx::AmxWeight>,
    value_tiles: Option<super::amx::AmxWeight>,
    q: super::amx::SplitA,
    p: super::amx::SplitA,
    /// Scores, then probabilities: `rows × n`.
    scores: Vec<f32>,
}

#[cfg(target_arch = "x86_64")]
thread_local! {
    static AMX_BUFFERS: std::cell::RefCell<AmxBuffers> = std::cell::RefCell::new(AmxBuffers::default());
}

/// [`run`] with both products of each head on AMX tiles ([`super::amx::product`], the f32
/// accuracy of the linear layers): `S = Q·Kᵀ` with the keys packed as the product's weight,
/// softmax in f32 vectors, then `P·V` with the values packed transposed. Per head the keys and
/// values are gathered and split into bfloat16 halves once for all the task's query rows.
///
/// # Safety
/// [`super::amx::available`] must have returned true, and the CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_amx(qkv: &[f32], shape: Shape, bias: Option<DistanceBias<'_>>, task: Task<'_>) {
    use super::amx::{self, AmxWeight};
    use super::copy_row;
    let Shape { heads, hidden, .. } = shape;
    let d = hidden / heads;
    let n = task.len;
    let stride = 3 * hidden;
    let seq = &qkv[task.seq_start * stride..(task.seq_start + n) * stride];
    let scale = 1.0 / (d as f32).sqrt();
    let m = task.rows.len();
    let first = task.rows.start;
    let ld = d.div_ceil(32) * 32;
    // Taken out of the thread-local, not borrowed through it, as the linear layers do.
    let mut b = AMX_BUFFERS.with(|cell| std::mem::take(&mut *cell.borrow_mut()));
    let mut key_tiles = b.key_tiles.take().unwrap_or_else(AmxWeight::empty);
    let mut value_tiles = b.value_tiles.take().unwrap_or_else(AmxWeight::empty);
    b.keys.resize(n * d, 0.0);
    b.values.resize(n * d, 0.0);
    b.queries.resize(m * d, 0.0);
    b.scores.resize(m * n, 0.0);
    for buf in &mut b.halves {
        buf.resize(n * ld, 0);
    }
    for h in 0..heads {
        for (j, tok) in seq.chunks_exact(stride).enumerate() {
            copy_row(&mut b.keys[j * d..(j + 1) * d], &tok[hidden + h * d..hidden + (h + 1) * d]);
            copy_row(&mut b.values[j * d..(j + 1) * d], &tok[2 * hidden + h * d..2 * hidden + (h + 1) * d]);
        }
        for (r, i) in task.rows.clone().enumerate() {
            copy_row(&mut b.queries[r * d..(r + 1) * d], &seq[i * stride + h * d..i * stride + (h + 1) * d]);
        }
        {
            let [khi, klo, vhi, vlo] = &mut b.halves;
            amx::split_rows(&b.keys, n, d, ld, khi, klo);
            amx::split_rows(&b.values, n, d, ld, vhi, vlo);
            key_tiles.pack_rows(khi, klo, n, d, ld);
            value_tiles.pack_columns(vhi, vlo, n, d, ld);
        }
        b.q.fill(&b.queries, m, d, false);
        let scores = &mut b.scores;
        amx::product(&key_tiles, &b.q, 0..key_tiles.column_pairs(), |m0, c0, tile| {
            if c0 >= n {
                return;
            }
            let cols = 32.min(n - c0);
            for r in 0..16.min(m.saturating_sub(m0)) {
                copy_row(&mut scores[(m0 + r) * n + c0..(m0 + r) * n + c0 + cols], &tile.0[r * 32..r * 32 + cols]);
            }
        });
        for (r, row) in scores.chunks_exact_mut(n).enumerate() {
            row.iter_mut().for_each(|s| *s *= scale);
            if let Some(bias) = bias {
                let from = h * (2 * bias.span - 1) + bias.span - 1 - (first + r);
                for (s, &bv) in row.iter_mut().zip(&bias.values[from..from + n]) {
                    *s += bv;
                }
            }
            let top = max(row);
            for s in row.iter_mut() {
                *s = exp(*s - top);
            }
            let inv = 1.0 / super::layer_norm::sum(row);
            row.iter_mut().for_each(|s| *s *= inv);
        }
        b.p.fill(scores, m, n, false);
        let out = &mut *task.out;
        amx::product(&value_tiles, &b.p, 0..value_tiles.column_pairs(), |m0, c0, tile| {
            if c0 >= d {
                return;
            }
            let cols = 32.min(d - c0);
            for r in 0..16.min(m.saturating_sub(m0)) {
                let at = (m0 + r) * hidden + h * d + c0;
                copy_row(&mut out[at..at + cols], &tile.0[r * 32..r * 32 + cols]);
            }
        });
    }
    b.key_tiles = Some(key_tiles);
    b.value_tiles = Some(value_tiles);
    AMX_BUFFERS.with(|cell| *cell.borrow_mut() = b);
}

/// Query rows handled together: their score rows share every key load and their context rows
/// every value load, and their independent accumulators hide the multiply-add latency.
const ROWS: usize = 4;

#[inline(always)]
fn run_inline(qkv: &[f32], shape: Shape, bias: Option<DistanceBias<'_>>, task: Task<'_>) {
    let Shape { heads, hidden, .. } = shape;
    let d = hidden / heads;
    let n = task.len;
    let stride = 3 * hidden;
    let seq = &qkv[task.seq_start * stride..(task.seq_start + n) * stride];
    let scale = 1.0 / (d as f32).sqrt();
    // Keys of one head transposed (`d × width`), so a query's scores are one vectorised
    // multiply-add per key dimension. The width is rounded up to whole vectors (zero keys past
    // `n`, their probabilities zeroed) so that no loop ends in a scalar remainder.
    let width = n.div_ceil(16) * 16;
    let mut keys_t = vec![0f32; d * width];
    let mut scores = vec![0f32; ROWS * width];
    let rows: Vec<usize> = task.rows.clone().collect();
    let mut out_rows: Vec<&mut [f32]> = task.out.chunks_exact_mut(hidden).collect();
    for h in 0..heads {
        for (j, tok) in seq.chunks_exact(stride).enumerate() {
            for (c, &kv) in tok[hidden + h * d..hidden + (h + 1) * d].iter().enumerate() {
                keys_t[c * width + j] = kv;
            }
        }
        let query = |i: usize| &seq[i * stride + h * d..i * stride + (h + 1) * d];
        let values = &seq[2 * hidden + h * d..];
        let mut g = 0;
        while g < rows.len() {
            let count = (rows.len() - g).min(ROWS);
            let group = &rows[g..g + count];
            if count == ROWS {
                query_scores_rows::<ROWS>(std::array::from_fn(|r| query(group[r])), &keys_t, width, &mut scores);
            } else {
                for (r, &i) in group.iter().enumerate() {
                    query_scores_rows::<1>([query(i)], &keys_t, width, &mut scores[r * width..(r + 1) * width]);
                }
            }
            let mut inv = [0f32; ROWS];
            for (r, &i) in group.iter().enumerate() {
                let row = &mut scores[r * width..(r + 1) * width];
                row.iter_mut().for_each(|s| *s *= scale);
                if let Some(b) = bias {
                    let from = h * (2 * b.span - 1) + b.span - 1 - i;
                    for (s, &bv) in row[..n].iter_mut().zip(&b.values[from..from + n]) {
                        *s += bv;
                    }
                }
                let max = max(&row[..n]);
                for s in row.iter_mut() {
                    *s = exp(*s - max);
                }
                row[n..].fill(0.0);
                inv[r] = 1.0 / super::layer_norm::sum(row);
            }
            let ctx_rows = &mut out_rows[g..g + count];
            match (d, count) {
                (32, ROWS) => weighted_sum_rows::<32, ROWS>(&scores, width, n, inv, values, stride, ctx_rows, h),
                (64, ROWS) => weighted_sum_rows::<64, ROWS>(&scores, width, n, inv, values, stride, ctx_rows, h),
                _ => {
                    for (r, out_row) in ctx_rows.iter_mut().enumerate() {
                        let p = &scores[r * width..r * width + n];
                        let ctx = &mut out_row[h * d..(h + 1) * d];
                        ctx.fill(0.0);
                        for (j, &pj) in p.iter().enumerate() {
                            for (o, &v) in ctx.iter_mut().zip(&values[j * stride..j * stride + d]) {
                                *o = (pj * inv[r]).mul_add(v, *o);
                            }
                        }
                    }
                }
            }
            g += count;
        }
    }
}

/// `scores[r × width + j] = q_r · k_j` for `R` queries and all `width` (a multiple of 16) keys,
/// `keys_t` holding the keys transposed (`d × width`). Sixteen keys at a time in registers; each
/// key load feeds `R` multiply-adds.
#[inline(always)]
fn query_scores_rows<const R: usize>(q: [&[f32]; R], keys_t: &[f32], width: usize, scores: &mut [f32]) {
    let d = q[0].len();
    for block in 0..width / 16 {
        let key = |c: usize| -> &[f32] { &keys_t[c * width + block * 16..c * width + block * 16 + 16] };
        let mut acc = [[0f32; 16]; R];
        let mut acc2 = [[0f32; 16]; R];
        let mut c = 0;
        // Two dimensions per step into separate accumulators: 2·R independent chains.
        while c + 2 <= d {
            let (k0, k1) = (key(c), key(c + 1));
            for r in 0..R {
                multiply_add(&mut acc[r], q[r][c], k0);
                multiply_add(&mut acc2[r], q[r][c + 1], k1);
            }
            c += 2;
        }
        if c < d {
            let k0 = key(c);
            for r in 0..R {
                multiply_add(&mut acc[r], q[r][c], k0);
            }
        }
        for r in 0..R {
            let out = &mut scores[r * width + block * 16..r * width + block * 16 + 16];
            for (l, o) in out.iter_mut().enumerate() {
                *o = acc[r][l] + acc2[r][l];
            }
        }
    }
}

/// `acc += x · k` over sixteen lanes.
#[inline(always)]
fn multiply_add(acc: &mut [f32; 16], x: f32, k: &[f32]) {
    for (a, &kv) in acc.iter_mut().zip(k) {
        *a = x.mul_add(kv, *a);
    }
}

/// For `R` query rows at once: `ctx_r = Σ_j (p_rj · inv_r) · v_j` over the first `n` keys for a
/// head of `D` dimensions (`p` rows `width` apart, `v_j` at `values[j × stride..]`), written to
/// head `h` of each output row. Each value load feeds `R` multiply-adds.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn weighted_sum_rows<const D: usize, const R: usize>(
    p: &[f32],
    width: usize,
    n: usize,
    inv: [f32; R],
    values: &[f32],
    stride: usize,
    out: &mut [&mut [f32]],
    h: usize,
) {
    let mut acc = [[0f32; D]; R];
    for j in 0..n {
        let v = &values[j * stride..j * stride + D];
        for r in 0..R {
            let w = p[r * width + j] * inv[r];
            for (a, &vv) in acc[r].iter_mut().zip(v) {
                *a = w.mul_add(vv, *a);
            }
        }
    }
    for (r, row) in out.iter_mut().enumerate() {
        row[h * D..(h + 1) * D].copy_from_slice(&acc[r]);
    }
}

/// The largest value of `x` (not empty), in sixteen lanes so that the loop vectorises.
#[inline(always)]
fn max(x: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = if v > *l { v } else { *l };
        }
    }
    let tail = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    lanes.iter().copied().fold(tail, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::testing::{max_abs_diff, random};

    fn naive(qkv: &[f32], lengths: &[usize], heads: usize, bias: Option<DistanceBias<'_>>) -> Vec<f32> {
        let tokens: usize = lengths.iter().sum();
        let hidden = qkv.len() / tokens / 3;
        let d = hidden / heads;
        let mut out = vec![0f32; tokens * hidden];
        let mut start = 0;
        for &n in lengths {
            let at = |t: usize, part: usize, h: usize, c: usize| {
                f64::from(qkv[(start + t) * 3 * hidden + part * hidden + h * d + c])
            };
            for h in 0..heads {
                for i in 0..n {
                    let mut s: Vec<f64> = (0..n)
                        .map(|j| {
                            let dot: f64 = (0..d).map(|c| at(i, 0, h, c) * at(j, 1, h, c)).sum();
                            let b =
                                bias.map_or(0.0, |b| f64::from(b.values[h * (2 * b.span - 1) + j + b.span - 1 - i]));
                            dot / (d as f64).sqrt() + b
                        })
                        .collect();
                    let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    s.iter_mut().for_each(|v| *v = (*v - max).exp());
                    let total: f64 = s.iter().sum();
                    for c in 0..d {
                        let ctx: f64 = (0..n).map(|j| s[j] / total * at(j, 2, h, c)).sum();
                        out[(start + i) * hidden + h * d + c] = ctx as f32;
                    }
                }
            }
            start += n;
        }
        out
    }

    /// The f32 kernels agree with the f64 definition to 1e-5; on AMX tiles both products keep
    /// 16 of f32's 24 mantissa bits per factor (as the linear layers do), so scores of `d`
    /// terms of up to ±4 may be off by ~1e-5·√d and the outputs by as much.
    fn tolerance(hidden: usize, heads: usize, amx: bool) -> f32 {
        if amx {
            1e-5 * ((hidden / heads) as f32).sqrt()
        } else {
            1e-5
        }
    }

    /// Both paths: the vector kernels, and AMX tiles where this CPU has them (said when not).
    #[test]
    fn matches_the_definition() {
        if !crate::cpu::amx::available() {
            eprintln!("no AMX on this CPU: only the vector kernels are exercised");
        }
        for amx in [false, true] {
            if amx && !crate::cpu::amx::available() {
                continue;
            }
            for (lengths, heads, hidden) in [
                (vec![1], 1, 7),
                (vec![5, 1, 13], 2, 16),
                (vec![37], 12, 384),
                (vec![3, 70, 9, 40], 4, 64),
                (vec![19, 6], 2, 128),
            ] {
                let tokens: usize = lengths.iter().sum();
                let qkv: Vec<f32> = random(tokens * 3 * hidden, 7).iter().map(|v| v * 2.0).collect();
                let mut out = vec![f32::NAN; tokens * hidden];
                attend_with(&qkv, &lengths, heads, None, &mut out, amx);
                let expect = naive(&qkv, &lengths, heads, None);
                let tol = tolerance(hidden, heads, amx);
                let diff = max_abs_diff(&out, &expect);
                assert!(diff <= tol, "amx {amx} {lengths:?}: {diff}");

                let span = *lengths.iter().max().unwrap_or(&1);
                let values = random(heads * (2 * span - 1), 8);
                let bias = DistanceBias { values: &values, span };
                attend_with(&qkv, &lengths, heads, Some(bias), &mut out, amx);
                let expect = naive(&qkv, &lengths, heads, Some(bias));
                let diff = max_abs_diff(&out, &expect);
                assert!(diff <= tol, "amx {amx} {lengths:?} with bias: {diff}");
            }
        }
    }
}
