//! Mean squared error in float64.

/// scale * Σ (p - t)^2
pub fn mse(p: &[f64], t: &[f64], scale: f64) -> f64 {
    scale * p.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum::<f64>()
}

/// d mse / d p = 2 scale (p - t)
pub fn mse_grad(p: &[f64], t: &[f64], scale: f64) -> Vec<f64> {
    p.iter()
        .zip(t)
        .map(|(a, b)| 2.0 * scale * (a - b))
        .collect()
}
