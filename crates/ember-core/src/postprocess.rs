//! What happens to a pooled vector after the model: Matryoshka truncation and L2 normalisation.

use crate::CoreError;

/// L2-normalise in place, as `torch.nn.functional.normalize` does (the norm is clamped at 1e-12,
/// so a zero vector stays zero instead of becoming NaN).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    for x in v {
        *x /= norm;
    }
}

/// Keep the first `dims` values (Matryoshka truncation). Re-normalise afterwards if the model
/// normalises: a truncated unit vector is no longer a unit vector.
pub fn truncate_dimensions(v: &mut Vec<f32>, dims: usize) -> Result<(), CoreError> {
    if dims == 0 {
        return Err(CoreError::ZeroDimensions);
    }
    if dims > v.len() {
        return Err(CoreError::DimensionsTooLarge { requested: dims, available: v.len() });
    }
    v.truncate(dims);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_to_unit_length_and_keeps_zero_vectors_finite() {
        let mut v = vec![3.0, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
        let mut z = vec![0.0; 3];
        l2_normalize(&mut z);
        assert_eq!(z, vec![0.0; 3]);
    }

    #[test]
    fn truncation_checks_bounds() {
        let mut v = vec![1.0, 2.0, 3.0];
        truncate_dimensions(&mut v, 2).unwrap();
        assert_eq!(v, vec![1.0, 2.0]);
        assert_eq!(truncate_dimensions(&mut v, 5), Err(CoreError::DimensionsTooLarge { requested: 5, available: 2 }));
        assert_eq!(truncate_dimensions(&mut v, 0), Err(CoreError::ZeroDimensions));
    }
}
