//! PyTorch's Adam and AdamW update rules (torch.optim.Adam / AdamW, amsgrad and maximize off,
//! the single-tensor path) in float64, with the L1 term's gradient, and the penalties' values.

#[derive(Clone, Copy, Debug)]
pub struct Cfg {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// AdamW
    pub decoupled: bool,
    pub l1: f64,
}

/// torch.sign: 0 at 0.
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// One step at t (1-based) with learning rate lr, updating w, m, v in place.
pub fn adam_step(c: &Cfg, lr: f64, t: u32, w: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]) {
    let bc1 = 1.0 - c.beta1.powf(t as f64);
    let bc2 = 1.0 - c.beta2.powf(t as f64);
    for i in 0..w.len() {
        // the loss holds l1 * Σ|w|, so the gradient the optimizer sees includes l1 sign(w)
        let mut gi = g[i] + c.l1 * sign(w[i]);
        if c.decoupled {
            w[i] *= 1.0 - lr * c.weight_decay; // AdamW: param.mul_(1 - lr * weight_decay)
        } else {
            gi += c.weight_decay * w[i]; // Adam: grad = grad.add(param, alpha=weight_decay)
        }
        m[i] += (1.0 - c.beta1) * (gi - m[i]); // exp_avg.lerp_(grad, 1 - beta1)
        v[i] = v[i] * c.beta2 + (1.0 - c.beta2) * gi * gi;
        let step_size = lr / bc1;
        let denom = v[i].sqrt() / bc2.sqrt() + c.eps;
        w[i] -= step_size * m[i] / denom;
    }
}

/// l1 Σ|w|
pub fn l1_penalty(w: &[f64], l1: f64) -> f64 {
    l1 * w.iter().map(|x| x.abs()).sum::<f64>()
}

/// l2/2 Σ w^2
pub fn l2_penalty(w: &[f64], l2: f64) -> f64 {
    0.5 * l2 * w.iter().map(|x| x * x).sum::<f64>()
}
