//! axpy in float64.
pub fn axpy(scale: f64, a: &[f64], y: &[f64]) -> Vec<f64> {
    a.iter().zip(y).map(|(a, y)| y + scale * a).collect()
}
