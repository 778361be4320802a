//! Activations and the `exp` they and softmax need, written branch-free on plain `f32` so the
//! compiler vectorises the loops; [`apply`] runs them compiled for AVX-512 when the CPU has it.
//!
//! `exp` is the Cephes `expf` polynomial (≈1 ulp); `erf` is two polynomials (absolute error
//! ≤ 2e-7, about two f32 ulp of 1; no division, which is slow in vectors), which keeps GELU
//! within 1e-6 of the exact erf form.
#![allow(unsafe_code)]

use crate::arch::Activation;

/// Apply `act` to every value of `x` in place.
pub fn apply(act: Activation, x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F, checked just above.
        return unsafe { apply_avx512(act, x) };
    }
    apply_inline(act, x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn apply_avx512(act: Activation, x: &mut [f32]) {
    apply_inline(act, x)
}

/// [`apply`] without dispatch, for kernels already compiled for an instruction set.
#[inline(always)]
pub fn apply_inline(act: Activation, x: &mut [f32]) {
    match act {
        Activation::Gelu => x.iter_mut().for_each(|v| *v = gelu_erf(*v)),
        Activation::GeluNew => x.iter_mut().for_each(|v| *v = gelu_tanh(*v)),
        Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Silu => x.iter_mut().for_each(|v| *v /= 1.0 + exp(-*v)),
    }
}

/// `e^x` for `x` in f32 range (results below `e^-87.3` flush toward 0, above `e^88.7` saturate).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Round to nearest by the 1.5·2^23 trick: branch-free and vectorisable without SSE4.1.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.336_54, 88.376_26);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n by building the exponent bits; n ∈ [-126, 127] after the clamp. `shifted` lies in
    // [2²³, 2²⁴), where consecutive integers have consecutive bit patterns, so its bits minus
    // ROUND's are n: integer arithmetic that vectorises (`n as i32` is a saturating conversion,
    // which LLVM leaves scalar).
    let n_int = shifted.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127);
    let scale = f32::from_bits(n_int << 23);
    e * scale
}

/// The error function without division or `exp`: its Maclaurin series below 1, and above a
/// degree-12 polynomial fitted (Chebyshev, on [1, 4]) to erf, which is 1 in f32 beyond 3.92.
/// Absolute error ≤ 2e-7. Both branches are computed and one selected, so loops stay
/// branch-free and vectorise.
#[inline(always)]
#[allow(clippy::excessive_precision)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let z = a * a;
    let mut s = -1.229_055_5e-9_f32;
    s = s * z + 1.480_719_3e-8;
    s = s * z - 1.636_584_5e-7;
    s = s * z + 1.646_211_4e-6;
    s = s * z - 1.492_565e-5;
    s = s * z + 1.205_533_3e-4;
    s = s * z - 8.548_327e-4;
    s = s * z + 5.223_977_6e-3;
    s = s * z - 2.686_617e-2;
    s = s * z + 1.128_379_2e-1;
    s = s * z - 3.761_264e-1;
    s = s * z + std::f32::consts::FRAC_2_SQRT_PI;
    let t = (a.min(4.0) - 2.5) * (1.0 / 1.5);
    let mut r = -0.0011636613635346293_f32;
    r = r * t + 0.0018402247224003077;
    r = r * t + 0.003520481288433075;
    r = r * t - 0.010768605396151543;
    r = r * t + 0.007385029457509518;
    r = r * t + 0.009783949702978134;
    r = r * t - 0.03211725875735283;
    r = r * t + 0.04633280634880066;
    r = r * t - 0.043612245470285416;
    r = r * t + 0.028194116428494453;
    r = r * t - 0.01225513406097889;
    r = r * t + 0.003267045598477125;
    r = r * t + 0.9995930790901184;
    let y = if a < 1.0 { s * a } else { r.min(1.0) };
    y.copysign(x)
}

/// GELU, exact (erf) form: `x/2 · (1 + erf(x/√2))`.
#[inline(always)]
pub fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU, tanh approximation: `x/2 · (1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let y = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
    0.5 * x * (1.0 + tanh(y))
}

/// `tanh(y) = 1 − 2/(e^{2y} + 1)`, exact at the saturated ends.
#[inline(always)]
pub fn tanh(y: f32) -> f32 {
    let y = y.clamp(-9.0, 9.0);
    1.0 - 2.0 / (exp(2.0 * y) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference_erf(x: f64) -> f64 {
        // erf by its Maclaurin series (|x| ≤ 3) or the complement's continued fraction.
        if x.abs() <= 3.0 {
            let mut sum = 0.0;
            let mut term = x;
            let mut k = 0.0;
            while term.abs() > 1e-18 {
                sum += term / (2.0 * k + 1.0);
                k += 1.0;
                term *= -x * x / k;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let a = x.abs();
            let mut f = 0.0;
            for n in (1..60).rev() {
                f = f64::from(n) / 2.0 / (a + f);
            }
            let erfc = (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + f);
            (1.0 - erfc).copysign(x)
        }
    }

    #[test]
    fn exp_is_within_two_ulp() {
        for i in -8000..8000 {
            let x = i as f32 * 0.0109;
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            assert!(((got - want) / want).abs() < 2.5e-7, "exp({x}) = {got}, want {want}");
        }
        assert_eq!(exp(-1000.0).min(1e-37), exp(-1000.0));
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn erf_and_gelu_match_the_definition() {
        for i in -6000..6000 {
            let x = i as f32 * 0.0013;
            let want = reference_erf(f64::from(x));
            assert!((f64::from(erf(x)) - want).abs() < 2.5e-7, "erf({x})");
            let g = 0.5 * f64::from(x) * (1.0 + reference_erf(f64::from(x) / 2f64.sqrt()));
            assert!((f64::from(gelu_erf(x)) - g).abs() < 1e-6, "gelu({x})");
            let t = f64::from(x).tanh();
            assert!((f64::from(tanh(x)) - t).abs() < 3e-7, "tanh({x})");
        }
    }

    #[test]
    fn apply_equals_the_scalar_forms() {
        let xs: Vec<f32> = (0..1001).map(|i| (i as f32 - 500.0) * 0.013).collect();
        for act in [Activation::Gelu, Activation::GeluNew, Activation::Relu, Activation::Silu] {
            let mut got = xs.clone();
            apply(act, &mut got);
            for (&x, &g) in xs.iter().zip(&got) {
                let want = match act {
                    Activation::Gelu => gelu_erf(x),
                    Activation::GeluNew => 0.5 * x * (1.0 + (0.797_884_6 * (x + 0.044_715 * x * x * x)).tanh()),
                    Activation::Relu => x.max(0.0),
                    Activation::Silu => x / (1.0 + (-x).exp()),
                };
                assert!((g - want).abs() <= 1e-6 * (1.0 + want.abs()), "{act:?}({x}) = {g}, want {want}");
            }
        }
    }
}
