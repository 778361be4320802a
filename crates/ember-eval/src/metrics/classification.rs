//! Classification on embeddings: L2-regularised logistic regression, as MTEB runs it
//! (`sklearn.linear_model.LogisticRegression(max_iter=100)` with the defaults `C=1.0`,
//! `solver="lbfgs"`, `fit_intercept=True`, `tol=1e-4`; raw embeddings, no scaling), reporting
//! accuracy (MTEB's main score) and macro / weighted F1.
//!
//! The model is scikit-learn's: with two classes one weight vector and a sigmoid (binary
//! log-loss); with more, one weight vector per class and a softmax (multinomial). The objective is
//! `Σ_i loss_i + ‖W‖² / (2C)` (intercepts not penalised), minimised here — divided by n, which
//! does not move the minimum — with ember's own L-BFGS (memory 10, Armijo backtracking) from
//! zero weights, stopping like scipy's L-BFGS-B as sklearn calls it: when the largest gradient
//! component is ≤ `tol`, when the objective stops decreasing (relative change ≤ 64 ε), or after
//! `max_iter` iterations. Everything is sequential `f64`, so results are deterministic.
//!
//! The optimum is unique (strictly convex objective), so a converged fit equals scikit-learn's
//! up to the solvers' tolerances; the fixtures test compares predictions, probabilities and
//! accuracy with scikit-learn's. When `max_iter` stops both solvers early (sklearn's
//! `ConvergenceWarning`, common on large embedding sets), the two stop at different points near
//! the optimum and accuracies may differ slightly; raise `max_iter` to remove that noise.
//! Predictions take the first class of maximal score (NumPy `argmax`); in the binary case class 1
//! wins when the decision value is > 0, as in scikit-learn.

use super::{check_same_len, MetricsError, Result};

/// Logistic-regression settings (scikit-learn's names and MTEB's values).
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticRegressionConfig {
    /// Inverse regularisation strength.
    pub c: f64,
    pub max_iter: usize,
    /// Stop when the largest gradient component of the (n-averaged) objective is at most this.
    pub tol: f64,
}

impl Default for LogisticRegressionConfig {
    fn default() -> Self {
        Self { c: 1.0, max_iter: 100, tol: 1e-4 }
    }
}

/// A fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticRegression {
    /// Sorted distinct training labels (scikit-learn's `classes_`).
    pub classes: Vec<usize>,
    /// One row per weight vector (1 for binary, one per class otherwise): `dim` weights, then
    /// the intercept.
    pub weights: Vec<Vec<f64>>,
    pub iterations: usize,
    /// Whether the gradient / objective criterion was met before `max_iter`.
    pub converged: bool,
}

/// Test-set metrics.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ClassificationScores {
    /// MTEB's main score.
    pub accuracy: f64,
    pub f1_macro: f64,
    pub f1_weighted: f64,
}

/// Fits on `(train_x, train_y)`, predicts `test_x` and scores against `test_y`.
///
/// Errors: empty or mismatched inputs, rows of different dimensions, non-finite features, fewer
/// than two training classes, `c` ≤ 0.
pub fn evaluate<V: AsRef<[f32]>>(
    train_x: &[V],
    train_y: &[usize],
    test_x: &[V],
    test_y: &[usize],
    config: &LogisticRegressionConfig,
) -> Result<ClassificationScores> {
    check_same_len("test_x", test_x.len(), "test_y", test_y.len())?;
    let model = LogisticRegression::fit(train_x, train_y, config)?;
    let predicted = model.predict(test_x)?;
    scores(test_y, &predicted)
}

impl LogisticRegression {
    /// Fits the model (see the module docs).
    pub fn fit<V: AsRef<[f32]>>(x: &[V], y: &[usize], config: &LogisticRegressionConfig) -> Result<Self> {
        check_same_len("x", x.len(), "y", y.len())?;
        if config.c.is_nan() || config.c <= 0.0 {
            return Err(MetricsError::InvalidParameter(format!("C must be positive, got {}", config.c)));
        }
        let data = Rows::new(x)?;
        let mut classes = y.to_vec();
        classes.sort_unstable();
        classes.dedup();
        if classes.len() < 2 {
            return Err(MetricsError::InvalidParameter("logistic regression needs at least two classes".into()));
        }
        let targets: Vec<usize> = y.iter().map(|label| classes.partition_point(|c| c < label)).collect();
        let outputs = if classes.len() == 2 { 1 } else { classes.len() };
        let width = data.dim + 1;
        let n = data.len() as f64;
        let l2 = 1.0 / (config.c * n);
        let objective = |theta: &[f64], grad: &mut [f64]| -> f64 {
            grad.iter_mut().for_each(|g| *g = 0.0);
            let mut loss = 0.0;
            let mut z = vec![0.0; outputs];
            for (row, &target) in data.iter().zip(&targets) {
                for (k, zk) in z.iter_mut().enumerate() {
                    *zk = linear(&theta[k * width..(k + 1) * width], row);
                }
                if outputs == 1 {
                    let label = if target == 1 { 1.0 } else { 0.0 };
                    loss += softplus(z[0]) - label * z[0];
                    accumulate(&mut grad[..width], row, sigmoid(z[0]) - label);
                } else {
                    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
                    loss += max + sum.ln() - z[target];
                    for (k, zk) in z.iter().enumerate() {
                        let residual = (zk - max).exp() / sum - if k == target { 1.0 } else { 0.0 };
                        accumulate(&mut grad[k * width..(k + 1) * width], row, residual);
                    }
                }
            }
            let mut penalty = 0.0;
            for k in 0..outputs {
                for j in 0..data.dim {
                    let w = theta[k * width + j];
                    penalty += w * w;
                    grad[k * width + j] = grad[k * width + j] / n + l2 * w;
                }
                grad[k * width + data.dim] /= n;
            }
            loss / n + 0.5 * l2 * penalty
        };
        let fit = lbfgs(objective, vec![0.0; outputs * width], config.max_iter, config.tol);
        Ok(Self {
            classes,
            weights: fit.x.chunks(width).map(<[f64]>::to_vec).collect(),
            iterations: fit.iterations,
            converged: fit.converged,
        })
    }

    /// Class probabilities of each row, in the order of [`Self::classes`].
    pub fn predict_proba<V: AsRef<[f32]>>(&self, x: &[V]) -> Result<Vec<Vec<f64>>> {
        let data = self.rows_of(x)?;
        Ok(data
            .iter()
            .map(|row| {
                let z: Vec<f64> = self.weights.iter().map(|w| linear(w, row)).collect();
                if z.len() == 1 {
                    let p = sigmoid(z[0]);
                    vec![1.0 - p, p]
                } else {
                    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let exp: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
                    let sum: f64 = exp.iter().sum();
                    exp.into_iter().map(|e| e / sum).collect()
                }
            })
            .collect())
    }

    /// Predicted label of each row.
    pub fn predict<V: AsRef<[f32]>>(&self, x: &[V]) -> Result<Vec<usize>> {
        let data = self.rows_of(x)?;
        Ok(data
            .iter()
            .map(|row| {
                let z: Vec<f64> = self.weights.iter().map(|w| linear(w, row)).collect();
                let index = if z.len() == 1 {
                    usize::from(z[0] > 0.0)
                } else {
                    // first maximum, like numpy.argmax
                    z.iter()
                        .enumerate()
                        .fold((0, f64::NEG_INFINITY), |best, (k, &v)| if v > best.1 { (k, v) } else { best })
                        .0
                };
                self.classes[index]
            })
            .collect())
    }

    fn rows_of<V: AsRef<[f32]>>(&self, x: &[V]) -> Result<Rows> {
        let data = Rows::new(x)?;
        let dim = self.weights.first().map_or(0, |w| w.len().saturating_sub(1));
        if data.dim != dim {
            return Err(MetricsError::InvalidParameter(format!(
                "the model was fitted on {dim} dimensions, got {}",
                data.dim
            )));
        }
        Ok(data)
    }
}

/// Accuracy and F1 (macro and support-weighted, over the labels present in either `truth` or
/// `predicted`, a label's F1 being 0 where undefined — scikit-learn's `f1_score`).
pub fn scores(truth: &[usize], predicted: &[usize]) -> Result<ClassificationScores> {
    check_same_len("truth", truth.len(), "predicted", predicted.len())?;
    if truth.is_empty() {
        return Err(MetricsError::Empty { what: "test labels" });
    }
    let correct = truth.iter().zip(predicted).filter(|(t, p)| t == p).count();
    let mut labels: Vec<usize> = truth.iter().chain(predicted).copied().collect();
    labels.sort_unstable();
    labels.dedup();
    let (mut macro_sum, mut weighted_sum) = (0.0, 0.0);
    for &label in &labels {
        let tp = truth.iter().zip(predicted).filter(|&(t, p)| *t == label && *p == label).count() as f64;
        let support = truth.iter().filter(|&&t| t == label).count() as f64;
        let predicted_count = predicted.iter().filter(|&&p| p == label).count() as f64;
        let denominator = support + predicted_count;
        let f1 = if denominator > 0.0 { 2.0 * tp / denominator } else { 0.0 };
        macro_sum += f1;
        weighted_sum += f1 * support;
    }
    let n = truth.len() as f64;
    Ok(ClassificationScores {
        accuracy: correct as f64 / n,
        f1_macro: macro_sum / labels.len() as f64,
        f1_weighted: weighted_sum / n,
    })
}

/// Row-major f64 copy of the features.
struct Rows {
    values: Vec<f64>,
    dim: usize,
}

impl Rows {
    fn new<V: AsRef<[f32]>>(x: &[V]) -> Result<Self> {
        let dim = x.first().map(|r| r.as_ref().len()).ok_or(MetricsError::Empty { what: "features" })?;
        if dim == 0 {
            return Err(MetricsError::InvalidParameter("feature vectors have no dimensions".into()));
        }
        let mut values = Vec::with_capacity(x.len() * dim);
        for (i, row) in x.iter().enumerate() {
            let row = row.as_ref();
            if row.len() != dim {
                return Err(MetricsError::InvalidParameter(format!(
                    "row {i} has {} dimensions, row 0 has {dim}",
                    row.len()
                )));
            }
            if row.iter().any(|v| !v.is_finite()) {
                return Err(MetricsError::NonFinite { what: "features", index: i });
            }
            values.extend(row.iter().map(|&v| f64::from(v)));
        }
        Ok(Self { values, dim })
    }

    fn len(&self) -> usize {
        self.values.len().checked_div(self.dim).unwrap_or(0)
    }

    fn iter(&self) -> impl Iterator<Item = &[f64]> {
        self.values.chunks(self.dim.max(1))
    }
}

/// `w[..d] · x + w[d]`.
fn linear(w: &[f64], x: &[f64]) -> f64 {
    w[..x.len()].iter().zip(x).map(|(a, b)| a * b).sum::<f64>() + w[x.len()]
}

/// `grad[..d] += r x`, `grad[d] += r`.
fn accumulate(grad: &mut [f64], x: &[f64], residual: f64) {
    for (g, v) in grad.iter_mut().zip(x) {
        *g += residual * v;
    }
    grad[x.len()] += residual;
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// log(1 + e^z) without overflow.
fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

struct Minimum {
    x: Vec<f64>,
    iterations: usize,
    converged: bool,
}

/// Limited-memory BFGS (memory 10) with Armijo backtracking, for smooth convex objectives.
/// `f` writes the gradient into its second argument and returns the value.
fn lbfgs(mut f: impl FnMut(&[f64], &mut [f64]) -> f64, mut x: Vec<f64>, max_iter: usize, gtol: f64) -> Minimum {
    const MEMORY: usize = 10;
    let ftol = 64.0 * f64::EPSILON;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
    let mut g = vec![0.0; x.len()];
    let mut fx = f(&x, &mut g);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = std::collections::VecDeque::new();
    let mut x_new = vec![0.0; x.len()];
    let mut g_new = vec![0.0; x.len()];
    for iteration in 0..max_iter {
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) <= gtol {
            return Minimum { x, iterations: iteration, converged: true };
        }
        // two-loop recursion: d = -H g
        let mut d: Vec<f64> = g.iter().map(|v| -v).collect();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let alpha = rho * dot(s, &d);
            d.iter_mut().zip(y).for_each(|(di, yi)| *di -= alpha * yi);
            alphas.push(alpha);
        }
        if let Some((s, y, _)) = history.back() {
            let gamma = dot(s, y) / dot(y, y);
            d.iter_mut().for_each(|di| *di *= gamma);
        }
        for ((s, y, rho), alpha) in history.iter().zip(alphas.iter().rev()) {
            let beta = rho * dot(y, &d);
            d.iter_mut().zip(s).for_each(|(di, si)| *di += (alpha - beta) * si);
        }
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // not a descent direction (numerical trouble): restart from steepest descent
            history.clear();
            d = g.iter().map(|v| -v).collect();
            slope = -dot(&g, &g);
        }
        let mut step = if history.is_empty() { 1.0 / dot(&g, &g).sqrt().max(1.0) } else { 1.0 };
        let mut accepted = None;
        for _ in 0..50 {
            x_new.iter_mut().zip(&x).zip(&d).for_each(|((xn, xi), di)| *xn = xi + step * di);
            let f_new = f(&x_new, &mut g_new);
            if f_new <= fx + 1e-4 * step * slope {
                accepted = Some(f_new);
                break;
            }
            step *= 0.5;
        }
        let Some(f_new) = accepted else {
            // no decrease possible at machine precision: as converged as it gets
            return Minimum { x, iterations: iteration + 1, converged: true };
        };
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-10 * dot(&y, &y).max(f64::MIN_POSITIVE) {
            if history.len() == MEMORY {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        let decrease = fx - f_new;
        fx = f_new;
        if decrease <= ftol * fx.abs().max(f_new.abs()).max(1.0) {
            return Minimum { x, iterations: iteration + 1, converged: true };
        }
    }
    Minimum { x, iterations: max_iter, converged: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_blobs_are_learned() {
        // three well separated classes in 2-D
        let x: Vec<[f32; 2]> =
            (0..30).map(|i| [(i % 3) as f32 * 5.0 + (i as f32 * 0.37).sin(), (i as f32).cos()]).collect();
        let y: Vec<usize> = (0..30).map(|i| [10, 20, 30][i % 3]).collect();
        let s = evaluate(&x, &y, &x, &y, &LogisticRegressionConfig::default()).unwrap();
        assert_eq!(s.accuracy, 1.0);
        assert_eq!(s.f1_macro, 1.0);
        let binary: Vec<usize> = y.iter().map(|&v| usize::from(v == 30)).collect();
        let model = LogisticRegression::fit(&x, &binary, &LogisticRegressionConfig::default()).unwrap();
        assert_eq!(model.weights.len(), 1);
        assert_eq!(model.predict(&x).unwrap(), binary);
    }

    #[test]
    fn f1_like_sklearn() {
        // f1_score([0,0,1,2], [0,1,1,1]) by hand, per label 2tp / (support + predicted):
        // label 0: tp 1, support 2, predicted 1 -> 2/3; label 1: 1, 1, 3 -> 1/2; label 2: 0
        let s = scores(&[0, 0, 1, 2], &[0, 1, 1, 1]).unwrap();
        assert!((s.f1_macro - (2.0 / 3.0 + 0.5) / 3.0).abs() < 1e-12);
        assert!((s.f1_weighted - (2.0 / 3.0 * 2.0 + 0.5) / 4.0).abs() < 1e-12);
        assert_eq!(s.accuracy, 0.5);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let x = [[1.0f32], [2.0]];
        assert!(LogisticRegression::fit(&x, &[1, 1], &LogisticRegressionConfig::default()).is_err());
        assert!(LogisticRegression::fit(&x, &[0], &LogisticRegressionConfig::default()).is_err());
        let bad_c = LogisticRegressionConfig { c: f64::NAN, ..Default::default() };
        assert!(LogisticRegression::fit(&x, &[0, 1], &bad_c).is_err());
        assert!(scores(&[], &[]).is_err());
    }
}
