//! Pearson and Spearman correlation, as `scipy.stats.pearsonr` / `scipy.stats.spearmanr` compute
//! them (MTEB's STS main score is `spearmanr(cosine similarity, gold score)`, reported ×100).
//!
//! Spearman is the Pearson correlation of the ranks, with tied values given the average of the
//! ranks they span (`scipy.stats.rankdata(method="average")`). Both are computed in `f64` on
//! mean-centred data and clamped to [-1, 1], like SciPy. Constant inputs, for which SciPy returns
//! NaN with a warning, are an error here.

use super::{check_finite, check_same_len, MetricsError, Result};

/// Pearson's r between `a` and `b`.
///
/// ```
/// use ember_eval::metrics::correlation::pearson;
/// let r = pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 7.0]).unwrap();
/// assert!((r - 0.993_399_267_798_782_8).abs() < 1e-12);
/// ```
pub fn pearson(a: &[f64], b: &[f64]) -> Result<f64> {
    check_same_len("a", a.len(), "b", b.len())?;
    check_finite("a", a)?;
    check_finite("b", b)?;
    if a.len() < 2 {
        return Err(MetricsError::Undefined("a correlation needs at least two pairs".into()));
    }
    let n = a.len() as f64;
    let mean_a = a.iter().sum::<f64>() / n;
    let mean_b = b.iter().sum::<f64>() / n;
    let (mut cov, mut var_a, mut var_b) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x - mean_a, y - mean_b);
        cov += dx * dy;
        var_a += dx * dx;
        var_b += dy * dy;
    }
    if var_a == 0.0 {
        return Err(MetricsError::ConstantInput { what: "a" });
    }
    if var_b == 0.0 {
        return Err(MetricsError::ConstantInput { what: "b" });
    }
    Ok((cov / (var_a.sqrt() * var_b.sqrt())).clamp(-1.0, 1.0))
}

/// Spearman's rank correlation between `a` and `b` (average ranks for ties).
///
/// ```
/// use ember_eval::metrics::correlation::spearman;
/// // monotone but not linear: rho = 1
/// let rho = spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 8.0, 27.0, 64.0]).unwrap();
/// assert!((rho - 1.0).abs() < 1e-15);
/// ```
pub fn spearman(a: &[f64], b: &[f64]) -> Result<f64> {
    check_same_len("a", a.len(), "b", b.len())?;
    check_finite("a", a)?;
    check_finite("b", b)?;
    pearson(&average_ranks(a), &average_ranks(b))
}

/// 1-based ranks, ties sharing the mean of the ranks they occupy (`scipy.stats.rankdata`).
/// NaN sorts as equal to everything; callers check finiteness first.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].partial_cmp(&values[j]).unwrap_or(std::cmp::Ordering::Equal));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // positions start..end hold ranks start+1..=end; their mean:
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_values() {
        // a = 1..5, b = 2,4,5,4,5: means 3 and 4; cov = (-2)(-2)+(-1)(0)+0+(1)(0)+(2)(1) = 6;
        // var_a = 10, var_b = 4+0+1+0+1 = 6 -> r = 6 / sqrt(60)
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [2.0, 4.0, 5.0, 4.0, 5.0];
        assert!((pearson(&a, &b).unwrap() - 6.0 / 60f64.sqrt()).abs() < 1e-15);
        assert!((pearson(&a, &a.map(|x| -3.0 * x + 1.0)).unwrap() + 1.0).abs() < 1e-15);
        // ranks of b: 1, 2.5, 4.5, 2.5, 4.5
        assert_eq!(average_ranks(&b), vec![1.0, 2.5, 4.5, 2.5, 4.5]);
    }

    #[test]
    fn scipy_reference_values() {
        // scipy 1.17.1: float(pearsonr(a, b)[0]), float(spearmanr(a, b)[0]) (ties in both inputs)
        let a = [0.1, 0.4, 0.35, 0.8, 0.8, 0.2, 0.9, 0.05];
        let b = [1.0, 3.0, 2.0, 5.0, 4.0, 2.0, 5.0, 0.0];
        assert!((pearson(&a, &b).unwrap() - 0.965_644_828_725_936_5).abs() < 1e-12);
        assert!((spearman(&a, &b).unwrap() - 0.975_775_496_500_586_9).abs() < 1e-12);
    }

    #[test]
    fn degenerate_inputs_are_errors() {
        assert!(matches!(pearson(&[1.0, 1.0], &[1.0, 2.0]), Err(MetricsError::ConstantInput { what: "a" })));
        assert!(matches!(spearman(&[1.0], &[1.0]), Err(MetricsError::Undefined(_))));
        assert!(matches!(pearson(&[1.0, 2.0], &[1.0]), Err(MetricsError::LengthMismatch { .. })));
        assert!(matches!(pearson(&[], &[]), Err(MetricsError::Empty { .. })));
        assert!(matches!(spearman(&[1.0, f64::NAN], &[1.0, 2.0]), Err(MetricsError::NonFinite { index: 1, .. })));
    }
}
