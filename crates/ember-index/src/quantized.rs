//! Flat search in two passes: every point is scored with a cheap quantized kernel, the best
//! `k · oversampling` are kept, and those are rescored with their full `f32` vectors.
//!
//! * **Binary** (sign) quantization: one bit per dimension (`x > 0`, as sentence-transformers'
//!   `binary` precision), scored by Hamming distance with `popcnt` / AVX-512 VPOPCNTDQ. 32×
//!   smaller codes; the first pass ranks by angle, so it suits cosine and dot on roughly
//!   centred embeddings.
//! * **Int8** scalar quantization with per-dimension ranges (sentence-transformers' formula:
//!   `step = (hi - lo) / 255`, code `floor((x - lo) / step) - 128`, clipped). The query stays
//!   asymmetric: `x·q ≈ Σ qᵢ(loᵢ + 128.5·stepᵢ) + Σ (qᵢ·stepᵢ)·codeᵢ`, and the weights `qᵢ·stepᵢ`
//!   are quantized to `i8` so the second sum runs on the `i8·i8` kernel (VNNI / AVX2 `madd`).
//!   Euclidean ranks by `‖x‖² - 2x·q` with exact stored norms; Manhattan uses the same first pass.
//!
//! The filter and tombstones are applied in the first pass, so the kept candidates all pass and
//! a filtered query returns `k` hits whenever `k` points pass. With `k · oversampling` at least
//! the number of passing points the result is exact. Points are stored in slots indexed by id,
//! as [`crate::FlatIndex`] stores them (ids are small integers the store assigns).

use std::sync::Mutex;

use ember_core::{CoreError, Similarity};

use crate::dense::{DenseIndex, PointFilter};
use crate::distance::Kernels;
use crate::error::IndexError;
use crate::metric::Metric;
use crate::topk::{top_k, Scored};

/// How the first pass quantizes vectors.
#[derive(Debug, Clone, PartialEq)]
pub enum Quantization {
    /// One bit per dimension, Hamming distance.
    Binary,
    /// One signed byte per dimension over the per-dimension ranges `[lo, hi]` of the stored
    /// vectors (normalised ones for cosine); values outside are clipped.
    Int8 { lo: Vec<f32>, hi: Vec<f32> },
}

impl Quantization {
    /// Int8 ranges fitted to `sample` as the index will store it (normalised for cosine): the
    /// per-dimension minimum and maximum.
    pub fn int8_fitted(similarity: Similarity, sample: &[Vec<f32>]) -> Quantization {
        let dim = sample.first().map_or(0, Vec::len);
        let metric = Metric::new(similarity);
        let (mut lo, mut hi) = (vec![f32::INFINITY; dim], vec![f32::NEG_INFINITY; dim]);
        let mut v = Vec::with_capacity(dim);
        for s in sample {
            metric.prepare(s, &mut v);
            for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(&v) {
                *l = l.min(x);
                *h = h.max(x);
            }
        }
        Quantization::Int8 { lo, hi }
    }
}

#[derive(Debug)]
enum Codec {
    Binary {
        words: usize,
    },
    /// `lo` and `step` per dimension.
    Int8 {
        lo: Vec<f32>,
        step: Vec<f32>,
    },
}

/// Buffers one search reuses (one per concurrent search, kept in a pool).
#[derive(Debug, Default)]
struct Scratch {
    query: Vec<f32>,
    bits: Vec<u64>,
    weights: Vec<i8>,
    hamming: Vec<u32>,
    dots: Vec<i32>,
    keys: Vec<(f32, u32)>,
    histogram: Vec<u32>,
    candidates: Vec<u32>,
}

/// A quantized first pass over every point and an exact rescoring of the best few; see the
/// [module documentation](self).
#[derive(Debug)]
pub struct QuantizedFlatIndex {
    dim: usize,
    metric: Metric,
    kernels: &'static Kernels,
    codec: Codec,
    oversampling: usize,
    /// `dim` values per slot (normalised for cosine).
    vectors: Vec<f32>,
    /// Binary codes, `words` per slot.
    bits: Vec<u64>,
    /// Int8 codes, `dim` per slot.
    bytes: Vec<i8>,
    /// `‖x‖²` per slot (int8 with Euclidean or Manhattan only).
    norms_sq: Vec<f32>,
    live: Vec<bool>,
    live_count: usize,
    scratch: Mutex<Vec<Scratch>>,
}

impl QuantizedFlatIndex {
    /// `oversampling` (≥ 1): how many candidates per wanted hit the first pass keeps.
    pub fn new(
        dim: usize,
        similarity: Similarity,
        quantization: Quantization,
        oversampling: usize,
    ) -> Result<Self, IndexError> {
        if oversampling == 0 {
            return Err(IndexError::InvalidParameter { name: "oversampling", value: 0, why: "must be at least 1" });
        }
        let codec = match quantization {
            Quantization::Binary => Codec::Binary { words: dim.div_ceil(64) },
            Quantization::Int8 { lo, hi } => {
                if lo.len() != dim || hi.len() != dim {
                    return Err(IndexError::InvalidParameter {
                        name: "int8 ranges",
                        value: lo.len().min(hi.len()),
                        why: "need one [lo, hi] per dimension",
                    });
                }
                let step = lo
                    .iter()
                    .zip(&hi)
                    .map(|(&l, &h)| {
                        let s = (h - l) / 255.0;
                        if s.is_finite() && s > 0.0 {
                            s
                        } else {
                            1.0
                        }
                    })
                    .collect();
                let lo = lo.into_iter().map(|l| if l.is_finite() { l } else { 0.0 }).collect();
                Codec::Int8 { lo, step }
            }
        };
        Ok(QuantizedFlatIndex {
            dim,
            metric: Metric::new(similarity),
            kernels: Kernels::best(),
            codec,
            oversampling,
            vectors: Vec::new(),
            bits: Vec::new(),
            bytes: Vec::new(),
            norms_sq: Vec::new(),
            live: Vec::new(),
            live_count: 0,
            scratch: Mutex::new(Vec::new()),
        })
    }

    /// The oversampling [`DenseIndex::search`] uses (at least 1).
    pub fn set_oversampling(&mut self, oversampling: usize) {
        self.oversampling = oversampling.max(1);
    }

    /// Heap bytes held: the `f32` vectors kept for rescoring, the codes and the flags.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.vectors.capacity() * size_of::<f32>()
            + self.bits.capacity() * size_of::<u64>()
            + self.bytes.capacity()
            + self.norms_sq.capacity() * size_of::<f32>()
            + self.live.capacity()
    }

    /// The `k` nearest live points passing `filter`, rescoring `k · oversampling` first-pass
    /// candidates (`oversampling` raised to 1 when 0).
    pub fn search_with(
        &self,
        query: &[f32],
        k: usize,
        oversampling: usize,
        filter: Option<PointFilter<'_>>,
    ) -> Result<Vec<Scored>, CoreError> {
        if query.len() != self.dim {
            return Err(CoreError::DimensionMismatch { left: self.dim, right: query.len() });
        }
        if k == 0 || self.live_count == 0 {
            return Ok(Vec::new());
        }
        let keep = k.saturating_mul(oversampling.max(1));
        let mut s = {
            let mut pool = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
            pool.pop().unwrap_or_default()
        };
        self.metric.prepare(query, &mut s.query);
        match &self.codec {
            Codec::Binary { words } => self.binary_candidates(*words, keep, filter, &mut s),
            Codec::Int8 { lo, step } => self.int8_candidates(lo, step, keep, filter, &mut s),
        }
        let q = &s.query;
        let hits = s.candidates.iter().map(|&id| Scored {
            id: id as usize,
            score: self.metric.score(self.metric.distance(q, self.vector(id as usize))),
        });
        let hits = top_k(hits, k);
        self.scratch.lock().unwrap_or_else(|p| p.into_inner()).push(s);
        Ok(hits)
    }

    fn vector(&self, slot: usize) -> &[f32] {
        &self.vectors[slot * self.dim..(slot + 1) * self.dim]
    }

    fn passes(&self, slot: usize, filter: Option<PointFilter<'_>>) -> bool {
        self.live[slot] && filter.is_none_or(|f| f(slot))
    }

    /// Hamming distances to every slot, then the `keep` smallest among passing slots by a
    /// histogram of distances (ties: lower ids first).
    fn binary_candidates(&self, words: usize, keep: usize, filter: Option<PointFilter<'_>>, s: &mut Scratch) {
        let Scratch { query, bits, hamming, histogram, candidates, .. } = s;
        encode_bits(query, bits);
        let slots = self.live.len();
        hamming.resize(slots, 0);
        (self.kernels.hamming_many)(&bits[..words], &self.bits, hamming);
        histogram.clear();
        histogram.resize(words * 64 + 2, 0);
        let rejected = (words * 64 + 1) as u32;
        if filter.is_none() && self.live_count == slots {
            for &h in hamming.iter() {
                histogram[h as usize] += 1;
            }
        } else {
            for (slot, h) in hamming.iter_mut().enumerate() {
                if self.passes(slot, filter) {
                    histogram[*h as usize] += 1;
                } else {
                    *h = rejected;
                }
            }
        }
        // The smallest distance `t` with at least `keep` passing slots at or below it.
        let (mut below, mut t) = (0usize, 0usize);
        while t < rejected as usize && below + histogram[t] as usize <= keep {
            below += histogram[t] as usize;
            t += 1;
        }
        let mut at_t = keep.saturating_sub(below);
        candidates.clear();
        for (slot, &h) in hamming.iter().enumerate() {
            if (h as usize) < t {
                candidates.push(slot as u32);
            } else if h as usize == t && h != rejected && at_t > 0 {
                candidates.push(slot as u32);
                at_t -= 1;
            }
        }
    }

    /// Approximate distances from the int8 codes, then the `keep` smallest among passing slots.
    fn int8_candidates(&self, lo: &[f32], step: &[f32], keep: usize, filter: Option<PointFilter<'_>>, s: &mut Scratch) {
        let Scratch { query, weights, dots, keys, candidates, .. } = s;
        // x·q ≈ offset + Σ (qᵢ·stepᵢ)·codeᵢ, the weights quantized to i8 with one scale.
        let offset: f32 = query.iter().zip(lo.iter().zip(step)).map(|(&q, (&l, &st))| q * (l + 128.5 * st)).sum();
        let max_w = query.iter().zip(step).map(|(&q, &st)| (q * st).abs()).fold(0f32, f32::max);
        let scale = if max_w > 0.0 { max_w / 127.0 } else { 1.0 };
        weights.clear();
        weights.extend(query.iter().zip(step).map(|(&q, &st)| (q * st / scale).round().clamp(-127.0, 127.0) as i8));
        let slots = self.live.len();
        dots.resize(slots, 0);
        (self.kernels.dot_i8_many)(weights, &self.bytes, dots);
        let by_norm = !self.norms_sq.is_empty();
        keys.clear();
        for (slot, &d) in dots.iter().enumerate() {
            if self.passes(slot, filter) {
                let approx_dot = offset + scale * d as f32;
                let key = if by_norm { self.norms_sq[slot] - 2.0 * approx_dot } else { -approx_dot };
                keys.push((key, slot as u32));
            }
        }
        let order = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        if keep < keys.len() {
            keys.select_nth_unstable_by(keep, order);
            keys.truncate(keep);
        }
        candidates.clear();
        candidates.extend(keys.iter().map(|&(_, slot)| slot));
    }
}

/// Sign bits (`x > 0`), dimension `i` at bit `i % 64` of word `i / 64`.
fn encode_bits(v: &[f32], out: &mut Vec<u64>) {
    out.clear();
    out.extend(v.chunks(64).map(|c| c.iter().enumerate().fold(0u64, |w, (i, &x)| w | (u64::from(x > 0.0) << i))));
}

impl DenseIndex for QuantizedFlatIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.live_count
    }

    fn insert(&mut self, id: usize, vector: &[f32]) -> Result<(), CoreError> {
        if vector.len() != self.dim {
            return Err(CoreError::DimensionMismatch { left: self.dim, right: vector.len() });
        }
        if id >= self.live.len() {
            let slots = id + 1;
            self.live.resize(slots, false);
            self.vectors.resize(slots * self.dim, 0.0);
            match &self.codec {
                Codec::Binary { words } => self.bits.resize(slots * words, 0),
                Codec::Int8 { .. } => self.bytes.resize(slots * self.dim, 0),
            }
            if matches!(self.codec, Codec::Int8 { .. })
                && matches!(self.metric.similarity(), Similarity::Euclidean | Similarity::Manhattan)
            {
                self.norms_sq.resize(slots, 0.0);
            }
        }
        let mut v = Vec::with_capacity(self.dim);
        self.metric.prepare(vector, &mut v);
        self.vectors[id * self.dim..(id + 1) * self.dim].copy_from_slice(&v);
        match &self.codec {
            Codec::Binary { words } => {
                let mut code = Vec::with_capacity(*words);
                encode_bits(&v, &mut code);
                self.bits[id * words..(id + 1) * words].copy_from_slice(&code);
            }
            Codec::Int8 { lo, step } => {
                let code = &mut self.bytes[id * self.dim..(id + 1) * self.dim];
                for (c, (&x, (&l, &st))) in code.iter_mut().zip(v.iter().zip(lo.iter().zip(step))) {
                    *c = (((x - l) / st).floor().clamp(0.0, 255.0) - 128.0) as i8;
                }
            }
        }
        if let Some(n) = self.norms_sq.get_mut(id) {
            *n = (self.kernels.dot)(&v, &v);
        }
        if !self.live[id] {
            self.live[id] = true;
            self.live_count += 1;
        }
        Ok(())
    }

    fn remove(&mut self, id: usize) {
        if self.live.get(id).copied().unwrap_or(false) {
            self.live[id] = false;
            self.live_count -= 1;
        }
    }

    fn search(&self, query: &[f32], k: usize, filter: Option<PointFilter<'_>>) -> Result<Vec<Scored>, CoreError> {
        self.search_with(query, k, self.oversampling, filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flat::FlatIndex;
    use crate::testdata::{clustered, recall};

    fn build(points: &[Vec<f32>], sim: Similarity, q: Quantization, over: usize) -> (QuantizedFlatIndex, FlatIndex) {
        let dim = points[0].len();
        let mut idx = QuantizedFlatIndex::new(dim, sim, q, over).unwrap();
        let mut flat = FlatIndex::new(dim, sim);
        for (id, p) in points.iter().enumerate() {
            idx.insert(id, p).unwrap();
            flat.insert(id, p).unwrap();
        }
        (idx, flat)
    }

    fn mean_recall(idx: &QuantizedFlatIndex, flat: &FlatIndex, queries: &[Vec<f32>], over: usize) -> f64 {
        let total: f64 = queries
            .iter()
            .map(|q| recall(&idx.search_with(q, 10, over, None).unwrap(), &flat.search(q, 10, None).unwrap()))
            .sum();
        total / queries.len() as f64
    }

    #[test]
    fn exact_when_every_point_is_rescored() {
        let (points, queries) = clustered(500, 20, 48, 10, 1.0, 21);
        for sim in [Similarity::Cosine, Similarity::Dot, Similarity::Euclidean, Similarity::Manhattan] {
            for quant in [Quantization::Binary, Quantization::int8_fitted(sim, &points)] {
                let (idx, flat) = build(&points, sim, quant, 50);
                for q in &queries {
                    let got = idx.search(q, 10, None).unwrap();
                    let want = flat.search(q, 10, None).unwrap();
                    assert_eq!(
                        got.iter().map(|h| h.id).collect::<Vec<_>>(),
                        want.iter().map(|h| h.id).collect::<Vec<_>>()
                    );
                    for (g, w) in got.iter().zip(&want) {
                        assert!((g.score - w.score).abs() <= 1e-4 * w.score.abs().max(1.0), "{sim:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn recall_with_oversampling() {
        let (points, queries) = clustered(5000, 100, 128, 50, 1.0, 22);
        let sim = Similarity::Cosine;
        let (int8, flat) = build(&points, sim, Quantization::int8_fitted(sim, &points), 4);
        let (binary, _) = build(&points, sim, Quantization::Binary, 10);
        let r8 = mean_recall(&int8, &flat, &queries, 2);
        let r1 = mean_recall(&binary, &flat, &queries, 10);
        let r1_low = mean_recall(&binary, &flat, &queries, 2);
        eprintln!("int8 ×2 recall {r8:.4}, binary ×10 recall {r1:.4}, binary ×2 recall {r1_low:.4}");
        assert!(r8 >= 0.95, "int8 recall {r8}");
        assert!(r1 >= 0.9, "binary recall {r1}");
        assert!(r1 >= r1_low);
        let (l2, l2_flat) =
            build(&points, Similarity::Euclidean, Quantization::int8_fitted(Similarity::Euclidean, &points), 4);
        let r = mean_recall(&l2, &l2_flat, &queries, 2);
        eprintln!("int8 euclidean ×2 recall {r:.4}");
        assert!(r >= 0.95, "int8 euclidean recall {r}");
    }

    #[test]
    fn filters_and_deletes_apply_in_the_first_pass() {
        let (points, queries) = clustered(5000, 20, 64, 40, 1.0, 23);
        for quant in [Quantization::Binary, Quantization::int8_fitted(Similarity::Cosine, &points)] {
            let (mut idx, mut flat) = build(&points, Similarity::Cosine, quant, 4);
            let filters: [&(dyn Fn(usize) -> bool + Sync); 3] =
                [&|id| id % 2 == 0, &|id| id % 20 == 3, &|id| id % 1000 == 999];
            for f in filters {
                let passing = (0..points.len()).filter(|&id| f(id)).count();
                for q in &queries {
                    let got = idx.search(q, 10, Some(f)).unwrap();
                    assert_eq!(got.len(), 10.min(passing));
                    assert!(got.iter().all(|h| f(h.id)));
                }
            }
            for id in (0..points.len()).step_by(3) {
                idx.remove(id);
                flat.remove(id);
            }
            assert_eq!(idx.len(), flat.len());
            for q in &queries {
                let got = idx.search(q, 10, None).unwrap();
                assert_eq!(got.len(), 10);
                assert!(got.iter().all(|h| h.id % 3 != 0), "a deleted point was returned");
            }
            idx.insert(1, &queries[0]).unwrap();
            let best = idx.search(&queries[0], 1, None).unwrap()[0];
            assert_eq!(best.id, 1);
            assert!((best.score - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn small_cases_and_errors() {
        let mut idx = QuantizedFlatIndex::new(3, Similarity::Dot, Quantization::Binary, 2).unwrap();
        assert!(idx.search(&[1.0, 0.0, 0.0], 3, None).unwrap().is_empty());
        idx.insert(4, &[1.0, -1.0, 0.5]).unwrap();
        idx.insert(0, &[-1.0, 1.0, 0.5]).unwrap();
        let hits = idx.search(&[1.0, 0.0, 0.0], 5, None).unwrap();
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![4, 0]);
        assert_eq!(idx.len(), 2);
        assert!(idx.search(&[1.0], 1, None).is_err());
        assert!(idx.insert(1, &[1.0]).is_err());
        assert!(QuantizedFlatIndex::new(3, Similarity::Dot, Quantization::Binary, 0).is_err());
        let bad = Quantization::Int8 { lo: vec![0.0; 2], hi: vec![1.0; 3] };
        assert!(QuantizedFlatIndex::new(3, Similarity::Dot, bad, 1).is_err());
        // Empty ranges quantize with step 1 instead of dividing by zero.
        let flat = Quantization::Int8 { lo: vec![0.0; 3], hi: vec![0.0; 3] };
        let mut idx = QuantizedFlatIndex::new(3, Similarity::Dot, flat, 1).unwrap();
        idx.insert(0, &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(idx.search(&[1.0, 1.0, 1.0], 1, None).unwrap()[0].id, 0);
    }
}
