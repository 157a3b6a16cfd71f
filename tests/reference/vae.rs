//! The VAE's reparameterisation and KL term in float64.

/// z = mu + eps exp(logvar / 2)
pub fn reparam(mu: &[f64], logvar: &[f64], eps: &[f64]) -> Vec<f64> {
    (0..mu.len())
        .map(|i| mu[i] + eps[i] * (0.5 * logvar[i]).exp())
        .collect()
}

/// (dmu, dlogvar) of L = Σ dz * z with eps fixed.
pub fn reparam_backward(dz: &[f64], logvar: &[f64], eps: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let dlv = (0..dz.len())
        .map(|i| dz[i] * eps[i] * 0.5 * (0.5 * logvar[i]).exp())
        .collect();
    (dz.to_vec(), dlv)
}

/// scale * -0.5 Σ (1 + logvar - mu^2 - exp(logvar))
pub fn kl(mu: &[f64], logvar: &[f64], scale: f64) -> f64 {
    scale
        * -0.5
        * (0..mu.len())
            .map(|i| 1.0 + logvar[i] - mu[i] * mu[i] - logvar[i].exp())
            .sum::<f64>()
}

/// (d kl / d mu, d kl / d logvar) = (scale mu, scale (exp(logvar) - 1) / 2)
pub fn kl_grad(mu: &[f64], logvar: &[f64], scale: f64) -> (Vec<f64>, Vec<f64>) {
    (
        mu.iter().map(|m| scale * m).collect(),
        logvar
            .iter()
            .map(|l| scale * 0.5 * (l.exp() - 1.0))
            .collect(),
    )
}
