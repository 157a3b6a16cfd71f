//! Sums in float64.

pub fn sum(x: &[f64]) -> f64 {
    x.iter().sum()
}

/// Row sums of x viewed as [rows, x.len() / rows].
pub fn sum_rows(x: &[f64], rows: usize) -> Vec<f64> {
    let n = x.len() / rows;
    (0..rows).map(|r| sum(&x[r * n..(r + 1) * n])).collect()
}

/// Σ|x|: the scale of float32 summation error.
pub fn sum_abs(x: &[f64]) -> f64 {
    x.iter().map(|v| v.abs()).sum()
}
