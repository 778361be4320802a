//! Clustering: V-measure (scikit-learn semantics) and a deterministic k-means.
//!
//! **What MTEB does.** `ClusteringEvaluator` (legacy tasks) fits
//! `sklearn.cluster.MiniBatchKMeans(n_clusters = #gold labels, batch_size=500, n_init="auto"
//! (= 1 run with k-means++), random_state=seed)` and scores `v_measure_score(gold, predicted)`;
//! the "fast" clustering tasks (`_evaluate_clustering_bootstrapped`) draw 10 bootstrap samples
//! of up to 16,384 documents and fit `MiniBatchKMeans(batch_size=512, init="k-means++", n_init=1)`
//! on each, reporting the mean V-measure.
//!
//! **What ember does, and the deviation.** [`kmeans`] is full-batch Lloyd k-means with
//! scikit-learn's greedy k-means++ seeding (2 + ⌊ln k⌋ candidates per centre, the one lowering the
//! potential most wins), stopping when assignments stop changing or the centres move less than
//! `tol` × mean feature variance (sklearn's rule), over `n_init` seeded restarts keeping the lowest
//! inertia. The random stream is ember's own [`SplitMix64`], not NumPy's Mersenne Twister, and
//! Lloyd is not mini-batch, so cluster assignments — hence V-measures — are not bit-identical to
//! MTEB's; they differ by the same kind of seed-to-seed noise MTEB itself shows (typically well
//! under one V-measure point on MTEB's tasks, not measured here). Full-batch Lloyd reaches an
//! inertia at least as low as mini-batch on the same seeding.
//!
//! [`v_measure`] matches `sklearn.metrics.homogeneity_completeness_v_measure` (natural log,
//! beta = 1) to floating-point precision; see the fixtures test.

use std::collections::HashMap;
use std::hash::Hash;

use super::{check_same_len, MetricsError, Result};

/// Homogeneity, completeness and their harmonic mean (V-measure, beta = 1).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct VMeasure {
    pub homogeneity: f64,
    pub completeness: f64,
    pub v_measure: f64,
}

/// scikit-learn's `homogeneity_completeness_v_measure(labels_true, labels_pred)`.
///
/// Errors: empty or mismatched inputs (scikit-learn returns 1.0 for empty input).
///
/// ```
/// use ember_eval::metrics::clustering::v_measure;
/// // a relabelled perfect clustering
/// let v = v_measure(&["a", "a", "b"], &[7, 7, 3]).unwrap();
/// assert_eq!(v.v_measure, 1.0);
/// ```
pub fn v_measure<A: Eq + Hash, B: Eq + Hash>(labels_true: &[A], labels_pred: &[B]) -> Result<VMeasure> {
    check_same_len("labels_true", labels_true.len(), "labels_pred", labels_pred.len())?;
    if labels_true.is_empty() {
        return Err(MetricsError::Empty { what: "labels" });
    }
    let (classes, class_idx) = index_labels(labels_true);
    let (clusters, cluster_idx) = index_labels(labels_pred);
    let mut contingency: HashMap<(usize, usize), usize> = HashMap::new();
    for (&c, &k) in class_idx.iter().zip(&cluster_idx) {
        *contingency.entry((c, k)).or_default() += 1;
    }
    let class_counts = counts(&class_idx, classes);
    let cluster_counts = counts(&cluster_idx, clusters);
    let entropy_c = entropy(&class_counts);
    let entropy_k = entropy(&cluster_counts);

    let n = labels_true.len() as f64;
    let mi = if classes == 1 || clusters == 1 {
        0.0
    } else {
        let mut cells: Vec<(&(usize, usize), &usize)> = contingency.iter().collect();
        cells.sort_unstable(); // fixed summation order
        let mut mi = 0.0;
        for (&(c, k), &count) in cells {
            let count = count as f64;
            let p = count / n;
            let outer = class_counts[c] as f64 * cluster_counts[k] as f64;
            let term = p * (count.ln() - n.ln()) + p * (-outer.ln() + n.ln() + n.ln());
            mi += if term.abs() < f64::EPSILON { 0.0 } else { term };
        }
        mi.max(0.0)
    };
    let homogeneity = if entropy_c == 0.0 { 1.0 } else { mi / entropy_c };
    let completeness = if entropy_k == 0.0 { 1.0 } else { mi / entropy_k };
    let v_measure = if homogeneity + completeness == 0.0 {
        0.0
    } else {
        2.0 * homogeneity * completeness / (homogeneity + completeness)
    };
    Ok(VMeasure { homogeneity, completeness, v_measure })
}

/// Maps labels to 0..n in order of first appearance.
fn index_labels<T: Eq + Hash>(labels: &[T]) -> (usize, Vec<usize>) {
    let mut ids: HashMap<&T, usize> = HashMap::new();
    let indices = labels
        .iter()
        .map(|label| {
            let next = ids.len();
            *ids.entry(label).or_insert(next)
        })
        .collect();
    (ids.len(), indices)
}

fn counts(indices: &[usize], n: usize) -> Vec<usize> {
    let mut counts = vec![0; n];
    for &i in indices {
        counts[i] += 1;
    }
    counts
}

/// Natural-log entropy of a label distribution given its counts (sklearn's `entropy`).
fn entropy(counts: &[usize]) -> f64 {
    if counts.len() <= 1 {
        return 0.0;
    }
    let total = counts.iter().sum::<usize>() as f64;
    -counts.iter().filter(|&&c| c > 0).map(|&c| (c as f64 / total) * ((c as f64).ln() - total.ln())).sum::<f64>()
}

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, well-mixed, seedable generator. Deterministic
/// across platforms; not cryptographic.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in 0..n (multiply-shift; the bias is below n / 2^64). Returns 0 for n = 0.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// k-means parameters. [`KMeansConfig::new`] gives MTEB's choices where they apply (one k-means++
/// run, seed 42 = MTEB's default seed) and scikit-learn's defaults otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansConfig {
    pub n_clusters: usize,
    /// Independent seeded runs; the lowest inertia wins.
    pub n_init: usize,
    pub max_iter: usize,
    /// Relative tolerance on the centre shift (times the mean per-feature variance).
    pub tol: f64,
    pub seed: u64,
}

impl KMeansConfig {
    pub fn new(n_clusters: usize) -> Self {
        Self { n_clusters, n_init: 1, max_iter: 300, tol: 1e-4, seed: 42 }
    }
}

/// A fitted clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansResult {
    /// Cluster of each point, 0..n_clusters.
    pub labels: Vec<usize>,
    /// Row-major centres, `n_clusters × dim`.
    pub centroids: Vec<Vec<f64>>,
    /// Sum of squared distances of points to their centre.
    pub inertia: f64,
    /// Lloyd iterations of the winning run.
    pub iterations: usize,
}

/// Deterministic k-means (see the module docs).
///
/// Errors: no points, rows of different dimensions, non-finite values, `n_clusters` = 0 or more
/// than the number of points, `n_init` = 0.
pub fn kmeans<V: AsRef<[f32]>>(points: &[V], config: &KMeansConfig) -> Result<KMeansResult> {
    let data = Matrix::from_rows(points)?;
    let k = config.n_clusters;
    if k == 0 || k > data.rows {
        return Err(MetricsError::InvalidParameter(format!(
            "n_clusters must be in 1..={} (the number of points), got {k}",
            data.rows
        )));
    }
    if config.n_init == 0 {
        return Err(MetricsError::InvalidParameter("n_init must be at least 1".into()));
    }
    let tol = config.tol * data.mean_variance();
    let mut rng = SplitMix64::new(config.seed);
    let mut best: Option<KMeansResult> = None;
    for _ in 0..config.n_init {
        let centres = kmeans_plus_plus(&data, k, &mut rng);
        let run = lloyd(&data, centres, config.max_iter, tol);
        if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
            best = Some(run);
        }
    }
    best.ok_or_else(|| MetricsError::InvalidParameter("n_init must be at least 1".into()))
}

/// k-means with k = the number of distinct gold labels, then the V-measure against those labels:
/// MTEB's clustering score for one set of documents.
pub fn cluster_v_measure<V: AsRef<[f32]>, L: Eq + Hash>(points: &[V], labels: &[L], seed: u64) -> Result<VMeasure> {
    check_same_len("points", points.len(), "labels", labels.len())?;
    let (n_classes, _) = index_labels(labels);
    let fitted = kmeans(points, &KMeansConfig { seed, ..KMeansConfig::new(n_classes) })?;
    v_measure(labels, &fitted.labels)
}

/// Points as one row-major f64 matrix.
struct Matrix {
    values: Vec<f64>,
    rows: usize,
    dim: usize,
}

impl Matrix {
    fn from_rows<V: AsRef<[f32]>>(points: &[V]) -> Result<Self> {
        let dim = points.first().map(|p| p.as_ref().len()).ok_or(MetricsError::Empty { what: "points" })?;
        let mut values = Vec::with_capacity(points.len() * dim);
        for (i, point) in points.iter().enumerate() {
            let point = point.as_ref();
            if point.len() != dim {
                return Err(MetricsError::InvalidParameter(format!(
                    "point {i} has {} dimensions, point 0 has {dim}",
                    point.len()
                )));
            }
            if point.iter().any(|v| !v.is_finite()) {
                return Err(MetricsError::NonFinite { what: "points", index: i });
            }
            values.extend(point.iter().map(|&v| f64::from(v)));
        }
        Ok(Self { values, rows: points.len(), dim })
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    fn mean_variance(&self) -> f64 {
        if self.dim == 0 {
            return 0.0;
        }
        let n = self.rows as f64;
        let mut total = 0.0;
        for d in 0..self.dim {
            let mean = (0..self.rows).map(|i| self.values[i * self.dim + d]).sum::<f64>() / n;
            total += (0..self.rows).map(|i| (self.values[i * self.dim + d] - mean).powi(2)).sum::<f64>() / n;
        }
        total / self.dim as f64
    }
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// scikit-learn's greedy k-means++ seeding.
fn kmeans_plus_plus(data: &Matrix, k: usize, rng: &mut SplitMix64) -> Vec<Vec<f64>> {
    let trials = 2 + (k as f64).ln() as usize;
    let first = rng.below(data.rows);
    let mut centres = vec![data.row(first).to_vec()];
    let mut closest: Vec<f64> = (0..data.rows).map(|i| squared_distance(data.row(i), data.row(first))).collect();
    let mut potential: f64 = closest.iter().sum();
    while centres.len() < k {
        let mut cumulative = Vec::with_capacity(data.rows);
        let mut running = 0.0;
        for &d in &closest {
            running += d;
            cumulative.push(running);
        }
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for _ in 0..trials {
            let target = rng.next_f64() * potential;
            // np.searchsorted(cumsum, target) (side="left"), clipped to the last index
            let candidate = cumulative.partition_point(|&c| c < target).min(data.rows - 1);
            let distances: Vec<f64> =
                (0..data.rows).map(|i| squared_distance(data.row(i), data.row(candidate)).min(closest[i])).collect();
            let candidate_potential: f64 = distances.iter().sum();
            if best.as_ref().is_none_or(|b| candidate_potential < b.0) {
                best = Some((candidate_potential, candidate, distances));
            }
        }
        if let Some((best_potential, candidate, distances)) = best {
            potential = best_potential;
            closest = distances;
            centres.push(data.row(candidate).to_vec());
        }
    }
    centres
}

fn assign(data: &Matrix, centres: &[Vec<f64>]) -> (Vec<usize>, Vec<f64>) {
    (0..data.rows)
        .map(|i| {
            let row = data.row(i);
            let mut best = (0usize, f64::INFINITY);
            for (c, centre) in centres.iter().enumerate() {
                let d = squared_distance(row, centre);
                if d < best.1 {
                    best = (c, d);
                }
            }
            best
        })
        .unzip()
}

fn lloyd(data: &Matrix, mut centres: Vec<Vec<f64>>, max_iter: usize, tol: f64) -> KMeansResult {
    let k = centres.len();
    let (mut labels, mut distances) = assign(data, &centres);
    let mut iterations = 0;
    for _ in 0..max_iter {
        iterations += 1;
        let mut sums = vec![vec![0.0; data.dim]; k];
        let mut sizes = vec![0usize; k];
        for (i, &c) in labels.iter().enumerate() {
            sizes[c] += 1;
            for (s, v) in sums[c].iter_mut().zip(data.row(i)) {
                *s += v;
            }
        }
        // Empty clusters take the points farthest from their centres (as scikit-learn relocates).
        let mut far: Vec<usize> = (0..data.rows).collect();
        far.sort_by(|&a, &b| distances[b].partial_cmp(&distances[a]).unwrap_or(std::cmp::Ordering::Equal));
        let mut far = far.into_iter();
        let mut shift = 0.0;
        for c in 0..k {
            let new_centre: Vec<f64> = if sizes[c] == 0 {
                far.next().map_or_else(|| centres[c].clone(), |i| data.row(i).to_vec())
            } else {
                sums[c].iter().map(|s| s / sizes[c] as f64).collect()
            };
            shift += squared_distance(&centres[c], &new_centre);
            centres[c] = new_centre;
        }
        let (new_labels, new_distances) = assign(data, &centres);
        let unchanged = new_labels == labels;
        labels = new_labels;
        distances = new_distances;
        if unchanged || shift <= tol {
            break;
        }
    }
    KMeansResult { inertia: distances.iter().sum(), labels, centroids: centres, iterations }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v_measure_by_hand() {
        // classes [0,0,1,1], clusters [0,0,0,1]: H(C) = ln 2, H(K) = H(3/4, 1/4),
        // I(C;K) = sum over cells n_ck/n * ln(n * n_ck / (a_c * b_k))
        let truth = [0, 0, 1, 1];
        let pred = [0, 0, 0, 1];
        let h_c = 2f64.ln();
        let h_k = -(0.75 * 0.75f64.ln() + 0.25 * 0.25f64.ln());
        // cells: (0,0)=2, (1,0)=1, (1,1)=1; a = [2,2], b = [3,1], n = 4
        let mi = 0.5 * (2.0 * 4.0 / (2.0 * 3.0f64)).ln()
            + 0.25 * (1.0 * 4.0 / (2.0 * 3.0f64)).ln()
            + 0.25 * (1.0 * 4.0 / (2.0 * 1.0f64)).ln();
        let v = v_measure(&truth, &pred).unwrap();
        assert!((v.homogeneity - mi / h_c).abs() < 1e-12);
        assert!((v.completeness - mi / h_k).abs() < 1e-12);
        // one cluster: homogeneity 0, completeness 1, v 0
        let one = v_measure(&truth, &[5; 4]).unwrap();
        assert_eq!((one.homogeneity, one.completeness, one.v_measure), (0.0, 1.0, 0.0));
        assert!(v_measure::<i32, i32>(&[], &[]).is_err());
    }

    #[test]
    fn kmeans_separates_blobs_deterministically() {
        let mut rng = SplitMix64::new(7);
        let centres = [[0.0f32, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut points = Vec::new();
        let mut labels = Vec::new();
        for (c, centre) in centres.iter().enumerate() {
            for _ in 0..30 {
                points.push(vec![centre[0] + rng.next_f64() as f32, centre[1] + rng.next_f64() as f32]);
                labels.push(c);
            }
        }
        let v = cluster_v_measure(&points, &labels, 42).unwrap();
        assert_eq!(v.v_measure, 1.0);
        let a = kmeans(&points, &KMeansConfig::new(3)).unwrap();
        let b = kmeans(&points, &KMeansConfig::new(3)).unwrap();
        assert_eq!(a, b);
        assert!(kmeans(&points, &KMeansConfig::new(0)).is_err());
        assert!(kmeans(&points[..2], &KMeansConfig::new(3)).is_err());
    }

    #[test]
    fn splitmix_reference_stream() {
        // first outputs for seed 1234567 from the reference C implementation (Vigna's splitmix64.c)
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }
}
