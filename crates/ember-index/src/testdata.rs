//! Test data shared by the index tests: seeded Gaussian clusters and recall against an oracle.

use crate::random::SplitMix64;
use crate::topk::Scored;

/// `n` points around `clusters` centres (centres ~ N(0, 1) per dimension, points = centre +
/// `spread` · N(0, 1)), then `queries` more drawn the same way.
pub(crate) fn clustered(
    n: usize,
    queries: usize,
    dim: usize,
    clusters: usize,
    spread: f32,
    seed: u64,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut rng = SplitMix64::new(seed);
    let centres: Vec<Vec<f32>> = (0..clusters).map(|_| (0..dim).map(|_| rng.normal()).collect()).collect();
    let draw = |rng: &mut SplitMix64| {
        let c = &centres[rng.below(clusters)];
        c.iter().map(|&x| x + spread * rng.normal()).collect::<Vec<f32>>()
    };
    let points = (0..n).map(|_| draw(&mut rng)).collect();
    let qs = (0..queries).map(|_| draw(&mut rng)).collect();
    (points, qs)
}

/// The fraction of `exact`'s ids that `approx` found.
pub(crate) fn recall(approx: &[Scored], exact: &[Scored]) -> f64 {
    if exact.is_empty() {
        return 1.0;
    }
    let found = exact.iter().filter(|e| approx.iter().any(|a| a.id == e.id)).count();
    found as f64 / exact.len() as f64
}
