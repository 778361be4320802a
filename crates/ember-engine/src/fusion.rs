//! Fusing ranked lists from several retrievers (dense, BM25, learned sparse, multi-vector) into
//! one: reciprocal rank fusion, plain or weighted, and score fusion after min-max or
//! distribution-based (z-score) normalisation. Raw scores of different retrievers (BM25 in the
//! tens, cosine below 1) are never added as they are.
//!
//! Each input list is `(id, score)` pairs, best first. With weights `w_i` (1 each when none are
//! given), a hit's fused score is the sum over the lists that hold it of:
//!
//! | method | contribution of list `i` |
//! |---|---|
//! | [`Fusion::Rrf`] | `w_i / (k + rank_i)`, rank from 1 (Cormack, Clarke & Büttcher, SIGIR 2009); `k` = [`DEFAULT_RRF_K`] = 60 unless set, as Milvus, Chroma and Elastic (Qdrant uses 2) |
//! | [`Fusion::MinMax`] | `w_i · (s − min_i) / (max_i − min_i)` |
//! | [`Fusion::Dbsf`] | `w_i · (s − (μ_i − 3σ_i)) / (6σ_i)`, μ and σ the mean and sample standard deviation of list `i`'s scores: Qdrant's distribution-based score fusion (not clamped, as Qdrant) |
//!
//! A list whose scores are all equal (one hit, say) normalises every hit to 0.5, as Qdrant does.
//! Sums are taken in list order in `f64`. Hits are ordered by fused score, then by their best
//! rank in any list, then by id, so ties are deterministic and fusing one list (sorted by score,
//! for the score methods) returns that list in its order. Each fused hit keeps its rank, raw
//! score and contribution in every list (for `--explain`). An id repeated within one list counts
//! once, at its first (best) position.

use std::collections::HashMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// RRF's `k` unless one is given.
pub const DEFAULT_RRF_K: f32 = 60.0;

/// How ranked lists are fused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fusion {
    /// Reciprocal rank fusion, weighted when the weights differ.
    Rrf {
        #[serde(default = "default_rrf_k")]
        k: f32,
    },
    /// Min-max normalised scores, weighted sum.
    MinMax,
    /// Distribution-based (mean ± 3σ) normalised scores, weighted sum (Qdrant's DBSF).
    Dbsf,
}

fn default_rrf_k() -> f32 {
    DEFAULT_RRF_K
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Rrf { k: DEFAULT_RRF_K }
    }
}

impl FromStr for Fusion {
    type Err = FusionError;

    /// `rrf` (k = 60), `min_max` / `minmax`, `dbsf` / `zscore` / `z_score`.
    fn from_str(s: &str) -> Result<Self, FusionError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rrf" => Ok(Fusion::default()),
            "min_max" | "minmax" | "min-max" => Ok(Fusion::MinMax),
            "dbsf" | "zscore" | "z_score" | "z-score" => Ok(Fusion::Dbsf),
            _ => Err(FusionError::UnknownMethod { name: s.to_string() }),
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum FusionError {
    #[error("unknown fusion method '{name}' (rrf, min_max or dbsf)")]
    UnknownMethod { name: String },
    #[error("{weights} weights given for {lists} ranked lists")]
    WeightCount { weights: usize, lists: usize },
    #[error("fusion weight {value} (list {list}) is not a finite number ≥ 0")]
    BadWeight { list: usize, value: f32 },
    #[error("RRF k = {k} is not a finite number ≥ 0")]
    BadRrfK { k: f32 },
    #[error("score {score} of '{id}' in list {list} is not finite")]
    BadScore { list: usize, id: String, score: f32 },
}

/// Where a fused hit stood in one input list.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SourceHit {
    /// 1-based position in the list.
    pub rank: usize,
    /// The list's own score.
    pub score: f32,
    /// What this list added to the fused score (weight included).
    pub contribution: f32,
}

/// One hit after fusion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FusedHit {
    pub id: String,
    pub score: f32,
    /// One entry per input list, in input order: `None` where the list does not hold the id.
    pub sources: Vec<Option<SourceHit>>,
}

impl FusedHit {
    /// The best (lowest) rank the hit has in any list.
    pub fn best_rank(&self) -> usize {
        self.sources.iter().flatten().map(|s| s.rank).min().unwrap_or(usize::MAX)
    }
}

/// Fuse `lists` (each best first) with `weights` (one per list, or empty for 1 each).
pub fn fuse<L: AsRef<[(String, f32)]>>(
    lists: &[L],
    weights: &[f32],
    fusion: Fusion,
) -> Result<Vec<FusedHit>, FusionError> {
    let weights = check_weights(weights, lists.len())?;
    if let Fusion::Rrf { k } = fusion {
        if !(k.is_finite() && k >= 0.0) {
            return Err(FusionError::BadRrfK { k });
        }
    }
    let lists: Vec<Vec<(&str, f32)>> = lists.iter().map(|l| dedup(l.as_ref())).collect();
    if !matches!(fusion, Fusion::Rrf { .. }) {
        for (list, hits) in lists.iter().enumerate() {
            if let Some(&(id, score)) = hits.iter().find(|h| !h.1.is_finite()) {
                return Err(FusionError::BadScore { list, id: id.to_string(), score });
            }
        }
    }

    let n = lists.len();
    let mut slot: HashMap<&str, usize> = HashMap::new();
    let mut ids: Vec<&str> = Vec::new();
    let mut sources: Vec<Vec<Option<SourceHit>>> = Vec::new();
    for (i, (hits, &w)) in lists.iter().zip(&weights).enumerate() {
        let normalise = normaliser(hits, fusion);
        for (pos, &(id, score)) in hits.iter().enumerate() {
            let rank = pos + 1;
            let contribution = match fusion {
                Fusion::Rrf { k } => (f64::from(w) / (f64::from(k) + rank as f64)) as f32,
                Fusion::MinMax | Fusion::Dbsf => w * normalise(score),
            };
            let at = *slot.entry(id).or_insert_with(|| {
                ids.push(id);
                sources.push(vec![None; n]);
                ids.len() - 1
            });
            sources[at][i] = Some(SourceHit { rank, score, contribution });
        }
    }
    let mut fused: Vec<FusedHit> = ids
        .into_iter()
        .zip(sources)
        .map(|(id, sources)| {
            let score = sources.iter().flatten().map(|s| f64::from(s.contribution)).sum::<f64>() as f32;
            FusedHit { id: id.to_string(), score, sources }
        })
        .collect();
    fused.sort_by(|a, b| {
        b.score.total_cmp(&a.score).then(a.best_rank().cmp(&b.best_rank())).then_with(|| a.id.cmp(&b.id))
    });
    Ok(fused)
}

/// Reciprocal rank fusion with constant `k` (weighted when `weights` differ).
pub fn rrf<L: AsRef<[(String, f32)]>>(lists: &[L], weights: &[f32], k: f32) -> Result<Vec<FusedHit>, FusionError> {
    fuse(lists, weights, Fusion::Rrf { k })
}

/// Weighted sum of min-max normalised scores.
pub fn min_max<L: AsRef<[(String, f32)]>>(lists: &[L], weights: &[f32]) -> Result<Vec<FusedHit>, FusionError> {
    fuse(lists, weights, Fusion::MinMax)
}

/// Weighted sum of mean ± 3σ normalised scores (Qdrant's DBSF).
pub fn dbsf<L: AsRef<[(String, f32)]>>(lists: &[L], weights: &[f32]) -> Result<Vec<FusedHit>, FusionError> {
    fuse(lists, weights, Fusion::Dbsf)
}

fn check_weights(weights: &[f32], lists: usize) -> Result<Vec<f32>, FusionError> {
    if weights.is_empty() {
        return Ok(vec![1.0; lists]);
    }
    if weights.len() != lists {
        return Err(FusionError::WeightCount { weights: weights.len(), lists });
    }
    if let Some((list, &value)) = weights.iter().enumerate().find(|(_, w)| !(w.is_finite() && **w >= 0.0)) {
        return Err(FusionError::BadWeight { list, value });
    }
    Ok(weights.to_vec())
}

/// The list with every id at its first position only.
fn dedup(list: &[(String, f32)]) -> Vec<(&str, f32)> {
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    list.iter().filter(|(id, _)| seen.insert(id.as_str())).map(|(id, s)| (id.as_str(), *s)).collect()
}

/// The map from a list's raw scores to normalised ones (unused for RRF).
fn normaliser(hits: &[(&str, f32)], fusion: Fusion) -> impl Fn(f32) -> f32 {
    let scores = hits.iter().map(|h| f64::from(h.1));
    let (low, high) = match fusion {
        Fusion::Rrf { .. } => (0.0, 1.0),
        Fusion::MinMax => scores.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| (lo.min(s), hi.max(s))),
        Fusion::Dbsf => {
            let n = hits.len() as f64;
            if hits.len() < 2 {
                (0.0, 0.0)
            } else {
                let mean = scores.clone().sum::<f64>() / n;
                let var = scores.map(|s| (s - mean) * (s - mean)).sum::<f64>() / (n - 1.0);
                let sd = var.sqrt();
                (mean - 3.0 * sd, mean + 3.0 * sd)
            }
        }
    };
    move |s: f32| {
        if high > low {
            ((f64::from(s) - low) / (high - low)) as f32
        } else {
            0.5
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[(&str, f32)]) -> Vec<(String, f32)> {
        items.iter().map(|(id, s)| (id.to_string(), *s)).collect()
    }

    fn ids(hits: &[FusedHit]) -> Vec<&str> {
        hits.iter().map(|h| h.id.as_str()).collect()
    }

    const METHODS: [Fusion; 4] = [Fusion::Rrf { k: 60.0 }, Fusion::Rrf { k: 0.0 }, Fusion::MinMax, Fusion::Dbsf];

    #[test]
    fn fusing_one_list_returns_that_list() {
        let one = list(&[("d3", 9.5), ("d1", 7.0), ("d9", 7.0), ("d0", 7.0), ("d2", 1.0), ("d8", -3.0)]);
        for method in METHODS {
            for weights in [&[][..], &[0.3][..]] {
                let fused = fuse(&[&one], weights, method).unwrap();
                assert_eq!(ids(&fused), vec!["d3", "d1", "d9", "d0", "d2", "d8"], "{method:?}");
                for (pos, hit) in fused.iter().enumerate() {
                    let source = hit.sources[0].unwrap();
                    assert_eq!((source.rank, source.score), (pos + 1, one[pos].1));
                }
            }
        }
        // one hit, all-equal scores
        for method in METHODS {
            let fused = fuse(&[list(&[("only", 3.0)])], &[], method).unwrap();
            assert_eq!(ids(&fused), vec!["only"]);
            let fused = fuse(&[list(&[("b", 1.0), ("a", 1.0), ("c", 1.0)])], &[], method).unwrap();
            assert_eq!(ids(&fused), vec!["b", "a", "c"]);
        }
    }

    #[test]
    fn rrf_by_hand() {
        let a = list(&[("a", 0.9), ("b", 0.8), ("c", 0.1)]);
        let b = list(&[("b", 31.0), ("c", 20.0), ("d", 2.0)]);
        let fused = rrf(&[a.clone(), b.clone()], &[], 60.0).unwrap();
        assert_eq!(ids(&fused), vec!["b", "c", "a", "d"]);
        let want = [1.0 / 62.0 + 1.0 / 61.0, 1.0 / 63.0 + 1.0 / 62.0, 1.0 / 61.0, 1.0 / 63.0];
        for (h, w) in fused.iter().zip(want) {
            assert!((f64::from(h.score) - w).abs() < 1e-7, "{} {} {w}", h.id, h.score);
        }
        assert_eq!(fused[0].sources[0], Some(SourceHit { rank: 2, score: 0.8, contribution: (1.0f64 / 62.0) as f32 }));
        assert_eq!(fused[0].sources[1], Some(SourceHit { rank: 1, score: 31.0, contribution: (1.0f64 / 61.0) as f32 }));
        assert_eq!(fused[2].sources[1], None);
        // weighted: list b counts 3 times as much, so d (only in b) overtakes a (only in a)
        let fused = rrf(&[a, b], &[1.0, 3.0], 60.0).unwrap();
        assert_eq!(ids(&fused), vec!["b", "c", "d", "a"]);
        assert!((f64::from(fused[2].score) - 3.0 / 63.0).abs() < 1e-7);
        assert!((f64::from(fused[0].score) - (1.0 / 62.0 + 3.0 / 61.0)).abs() < 1e-7);
    }

    #[test]
    fn min_max_and_dbsf_by_hand() {
        let a = list(&[("a", 10.0), ("b", 5.0), ("c", 0.0)]);
        let b = list(&[("c", 0.9), ("a", 0.5), ("d", 0.1)]);
        // a: 1 + 0.5, c: 0 + 1, b: 0.5, d: 0
        let fused = min_max(&[a.clone(), b.clone()], &[]).unwrap();
        assert_eq!(ids(&fused), vec!["a", "c", "b", "d"]);
        let scores: Vec<f32> = fused.iter().map(|h| h.score).collect();
        assert_eq!(scores, vec![1.5, 1.0, 0.5, 0.0]);
        // weights 1 and 2: c = 2, a = 1 + 1, b = .5 ; a and c tie at 2.0, a has the better best rank (1)
        let fused = min_max(&[a, b], &[1.0, 2.0]).unwrap();
        assert_eq!(ids(&fused), vec!["a", "c", "b", "d"]);
        assert_eq!(fused[0].score, fused[1].score);

        // scores 3, 2, 1: mean 2, sample σ 1, range [-1, 5]: 4/6, 3/6, 2/6
        let d = dbsf(&[list(&[("x", 3.0), ("y", 2.0), ("z", 1.0)])], &[]).unwrap();
        let got: Vec<f32> = d.iter().map(|h| h.score).collect();
        for (g, w) in got.iter().zip([4.0 / 6.0, 3.0 / 6.0, 2.0 / 6.0]) {
            assert!((f64::from(*g) - w).abs() < 1e-6, "{got:?}");
        }
        // BM25-sized and cosine-sized scores weigh alike after normalisation: q, second in BM25
        // and first by cosine, wins (a raw sum would follow BM25 alone: p, q, r, s)
        let bm25 = list(&[("p", 40.0), ("q", 30.0), ("r", 10.0), ("s", 0.0)]);
        let cosine = list(&[("q", 0.9), ("r", 0.8), ("p", 0.2), ("s", 0.1)]);
        let fused = dbsf(&[bm25.clone(), cosine.clone()], &[]).unwrap();
        assert_eq!(ids(&fused), vec!["q", "p", "r", "s"]);
        assert!((fused[0].score - (64.77 / 109.54 + 1.6247 / 2.4495)).abs() < 1e-3, "{}", fused[0].score);
        let fused = min_max(&[bm25, cosine], &[]).unwrap();
        assert_eq!(ids(&fused), vec!["q", "p", "r", "s"]);
    }

    #[test]
    fn ties_are_deterministic() {
        let a = list(&[("x", 1.0)]);
        let b = list(&[("y", 1.0)]);
        for method in METHODS {
            let ab = fuse(&[a.clone(), b.clone()], &[], method).unwrap();
            let ba = fuse(&[b.clone(), a.clone()], &[], method).unwrap();
            assert_eq!(ids(&ab), vec!["x", "y"]);
            assert_eq!(ids(&ba), vec!["x", "y"]);
            assert_eq!(ab[0].score, ab[1].score);
        }
        // the same fused score: the better best rank first, then the id
        let c = list(&[("m", 1.0), ("n", 1.0)]);
        let d = list(&[("n", 1.0), ("m", 1.0)]);
        assert_eq!(ids(&rrf(&[c, d], &[], 60.0).unwrap()), vec!["m", "n"]);
    }

    #[test]
    fn bad_input_and_edges() {
        let a = list(&[("a", 1.0), ("a", 0.5), ("b", 0.2)]);
        let fused = rrf(&[&a], &[], 60.0).unwrap();
        assert_eq!(ids(&fused), vec!["a", "b"]);
        assert_eq!(fused[1].sources[0].unwrap().rank, 2);
        assert_eq!(fuse::<Vec<(String, f32)>>(&[], &[], Fusion::default()).unwrap(), vec![]);
        assert_eq!(fuse(&[Vec::new(), Vec::new()], &[], Fusion::Dbsf).unwrap(), vec![]);
        assert_eq!(
            fuse(&[&a], &[1.0, 2.0], Fusion::MinMax).unwrap_err(),
            FusionError::WeightCount { weights: 2, lists: 1 }
        );
        assert!(matches!(fuse(&[&a], &[-1.0], Fusion::MinMax), Err(FusionError::BadWeight { .. })));
        assert!(matches!(rrf(&[&a], &[], -1.0), Err(FusionError::BadRrfK { .. })));
        let nan = list(&[("a", f32::NAN)]);
        assert!(matches!(min_max(&[&nan], &[]), Err(FusionError::BadScore { .. })));
        assert_eq!(ids(&rrf(&[nan], &[], 60.0).unwrap()), vec!["a"]);
        assert_eq!("rrf".parse::<Fusion>().unwrap(), Fusion::Rrf { k: 60.0 });
        assert_eq!("DBSF".parse::<Fusion>().unwrap(), Fusion::Dbsf);
        assert_eq!("min_max".parse::<Fusion>().unwrap(), Fusion::MinMax);
        assert!("sum".parse::<Fusion>().is_err());
        assert_eq!(serde_json::from_str::<Fusion>(r#"{"method":"rrf"}"#).unwrap(), Fusion::default());
        assert_eq!(serde_json::to_string(&Fusion::Dbsf).unwrap(), r#"{"method":"dbsf"}"#);
    }
}
