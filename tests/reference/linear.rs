//! nn.Linear in float64: y = act(x W^T + b), x [batch][d_in], W [d_out][d_in], b [d_out].

/// Activation codes as `Activation::code()`: 0 none, 1 relu, 2 sigmoid.
pub fn act(code: u32, v: f64) -> f64 {
    match code {
        1 => v.max(0.0),
        2 => 1.0 / (1.0 + (-v).exp()),
        _ => v,
    }
}

/// act' expressed through the activation's output y.
pub fn act_grad(code: u32, y: f64) -> f64 {
    match code {
        1 => {
            if y > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        2 => y * (1.0 - y),
        _ => 1.0,
    }
}

/// Pre-activation x W^T + b.
pub fn pre(x: &[f64], w: &[f64], b: &[f64], batch: usize, d_in: usize, d_out: usize) -> Vec<f64> {
    let mut z = vec![0.0; batch * d_out];
    for n in 0..batch {
        for o in 0..d_out {
            let mut s = b[o];
            for i in 0..d_in {
                s += x[n * d_in + i] * w[o * d_in + i];
            }
            z[n * d_out + o] = s;
        }
    }
    z
}

pub fn forward(
    code: u32,
    x: &[f64],
    w: &[f64],
    b: &[f64],
    batch: usize,
    d_in: usize,
    d_out: usize,
) -> Vec<f64> {
    pre(x, w, b, batch, d_in, d_out)
        .into_iter()
        .map(|v| act(code, v))
        .collect()
}

/// sqrt(sum_k term^2) of each output's dot product (x W^T): the scale its float32 rounding
/// error grows with.
pub fn forward_scale(x: &[f64], w: &[f64], batch: usize, d_in: usize, d_out: usize) -> f64 {
    let mut worst = 0.0f64;
    for n in 0..batch {
        for o in 0..d_out {
            let s: f64 = (0..d_in)
                .map(|i| (x[n * d_in + i] * w[o * d_in + i]).powi(2))
                .sum();
            worst = worst.max(s.sqrt());
        }
    }
    worst
}

/// g = dy * act'(y).
pub fn grad_out(code: u32, y: &[f64], dy: &[f64]) -> Vec<f64> {
    y.iter()
        .zip(dy)
        .map(|(&y, &d)| d * act_grad(code, y))
        .collect()
}

/// dx = g W.
pub fn backward_input(
    code: u32,
    y: &[f64],
    dy: &[f64],
    w: &[f64],
    batch: usize,
    d_in: usize,
    d_out: usize,
) -> Vec<f64> {
    let g = grad_out(code, y, dy);
    let mut dx = vec![0.0; batch * d_in];
    for n in 0..batch {
        for i in 0..d_in {
            dx[n * d_in + i] = (0..d_out).map(|o| g[n * d_out + o] * w[o * d_in + i]).sum();
        }
    }
    dx
}

/// (dW = g^T x, db = sum over the batch of g).
#[allow(clippy::too_many_arguments)]
pub fn backward_weight(
    code: u32,
    y: &[f64],
    dy: &[f64],
    x: &[f64],
    batch: usize,
    d_in: usize,
    d_out: usize,
) -> (Vec<f64>, Vec<f64>) {
    let g = grad_out(code, y, dy);
    let mut dw = vec![0.0; d_out * d_in];
    let mut db = vec![0.0; d_out];
    for o in 0..d_out {
        for i in 0..d_in {
            dw[o * d_in + i] = (0..batch).map(|n| g[n * d_out + o] * x[n * d_in + i]).sum();
        }
        db[o] = (0..batch).map(|n| g[n * d_out + o]).sum();
    }
    (dw, db)
}
