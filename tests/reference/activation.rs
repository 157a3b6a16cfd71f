//! ReLU and sigmoid in float64.

pub fn relu(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| v.max(0.0)).collect()
}

pub fn sigmoid(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect()
}

/// dx from the forward output y and dy.
pub fn relu_backward(y: &[f64], dy: &[f64]) -> Vec<f64> {
    y.iter()
        .zip(dy)
        .map(|(&y, &d)| if y > 0.0 { d } else { 0.0 })
        .collect()
}

pub fn sigmoid_backward(y: &[f64], dy: &[f64]) -> Vec<f64> {
    y.iter().zip(dy).map(|(&y, &d)| d * y * (1.0 - y)).collect()
}
