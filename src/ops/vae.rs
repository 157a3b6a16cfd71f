//! VAE latent kernels (shaders/vae.wgsl): the reparameterisation z = mu + eps * exp(logvar / 2)
//! with counter-based Gaussian noise, its backward, and the KL term with its gradient.

use anyhow::{bail, Result};

use crate::gpu::timing::BenchCases;
use crate::gpu::{grid_1d, Recorder, Tensor};
use crate::ops::reduce::{self, Map};
use crate::ops::rng;
use crate::ops::step::{StepState, StepValues};

/// The Philox stream (third counter word) of the reparameterisation noise, so it never
/// coincides with other random draws that use the same seed and step.
pub const REPARAM_STREAM: u32 = 0x7265_7061; // "repa"

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct RepParams {
    n: u32,
    k0: u32,
    k1: u32,
    stream: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct KlParams {
    n: u32,
    scale: f32,
    _pad: [u32; 2],
}

fn same_size(what: &str, ts: &[&Tensor]) -> Result<usize> {
    let n = ts[0].len();
    if let Some(t) = ts.iter().find(|t| t.len() != n) {
        bail!(
            "{what}: tensors must all have the shape of the first ({:?}), got {:?}",
            ts[0].shape,
            t.shape
        );
    }
    if n >= (1 << 32) {
        bail!("{what}: {n} values is more than a kernel indexes (2^32)");
    }
    Ok(n)
}

/// The entry for `n` elements: the vec4 form ("4" suffix, n / 4 invocations) when n allows.
fn entry(name: &str, n: usize) -> (String, usize) {
    if n.is_multiple_of(4) {
        (format!("{name}4"), n / 4)
    } else {
        (name.to_string(), n)
    }
}

fn rep_params(n: usize, seed: u64) -> RepParams {
    let k = rng::key(seed);
    RepParams {
        n: n as u32,
        k0: k[0],
        k1: k[1],
        stream: REPARAM_STREAM,
    }
}

/// z = mu + eps * exp(0.5 * logvar) with eps[i] = normal_at(key(seed), i, t, REPARAM_STREAM),
/// t the optimizer step in `step` (read when the program runs, so replays draw fresh noise).
/// Writes eps too: the backward needs it.
pub fn reparam_forward(
    rec: &mut Recorder,
    mu: &Tensor,
    logvar: &Tensor,
    z: &Tensor,
    eps: &Tensor,
    seed: u64,
    step: &StepState,
) -> Result<()> {
    let n = same_size("reparam_forward", &[mu, logvar, z, eps])?;
    if n == 0 {
        return Ok(());
    }
    let (e, n) = entry("reparam_forward", n);
    rec.dispatch(
        "vae",
        &e,
        &rep_params(n, seed),
        &[
            mu.into(),
            logvar.into(),
            z.into(),
            eps.into(),
            (&step.buf).into(),
        ],
        grid_1d(n as u64, 256),
    )
}

/// dmu = dz, dlogvar = dz * eps * 0.5 * exp(0.5 * logvar): both overwritten (add the KL part
/// afterwards with [`kl_grad_accumulate`]).
pub fn reparam_backward(
    rec: &mut Recorder,
    dz: &Tensor,
    logvar: &Tensor,
    eps: &Tensor,
    dmu: &Tensor,
    dlogvar: &Tensor,
) -> Result<()> {
    let n = same_size("reparam_backward", &[dz, logvar, eps, dmu, dlogvar])?;
    if n == 0 {
        return Ok(());
    }
    let (e, n) = entry("reparam_backward", n);
    rec.dispatch(
        "vae",
        &e,
        &rep_params(n, 0),
        &[
            dz.into(),
            logvar.into(),
            eps.into(),
            dmu.into(),
            dlogvar.into(),
        ],
        grid_1d(n as u64, 256),
    )
}

/// out = scale * -0.5 * sum(1 + logvar - mu^2 - exp(logvar)); `out` has one element.
pub fn kl(
    rec: &mut Recorder,
    mu: &Tensor,
    logvar: &Tensor,
    out: &Tensor,
    scale: f32,
) -> Result<()> {
    same_size("kl", &[mu, logvar])?;
    if out.len() != 1 {
        bail!(
            "kl: the output must hold one value, it has shape {:?}",
            out.shape
        );
    }
    reduce::sum_rows_mapped(rec, Map::KlTerm, mu, Some(logvar), out, -0.5 * scale)
}

/// dmu += scale * mu; dlogvar += scale * 0.5 * (exp(logvar) - 1): the gradient of [`kl`].
pub fn kl_grad_accumulate(
    rec: &mut Recorder,
    mu: &Tensor,
    logvar: &Tensor,
    dmu: &Tensor,
    dlogvar: &Tensor,
    scale: f32,
) -> Result<()> {
    let n = same_size("kl_grad_accumulate", &[mu, logvar, dmu, dlogvar])?;
    if n == 0 {
        return Ok(());
    }
    let (e, n) = entry("kl_grad_accumulate", n);
    rec.dispatch(
        "vae",
        &e,
        &KlParams {
            n: n as u32,
            scale,
            _pad: [0; 2],
        },
        &[mu.into(), logvar.into(), dmu.into(), dlogvar.into()],
        grid_1d(n as u64, 256),
    )
}

/// Benchmarks at the seed shape (batch x 200 latents): reparam forward and backward, KL and
/// its gradient.
pub fn bench_cases(cases: &mut BenchCases, batch: usize) -> Result<()> {
    let gpu = cases.gpu;
    let shape = [batch, 200];
    let n = batch * 200;
    let mu = gpu.upload(&vec![0.1f32; n], &shape)?;
    let lv = gpu.upload(&vec![-0.2f32; n], &shape)?;
    let z = gpu.zeros(&shape);
    let eps = gpu.zeros(&shape);
    let dmu = gpu.zeros(&shape);
    let dlv = gpu.zeros(&shape);
    let out = gpu.zeros(&[1]);
    let step = StepState::new(gpu, StepValues::first(1e-3));
    let nf = n as f64;
    cases.add(
        format!("reparam forward ({batch}x200)"),
        60.0 * nf, // ~ Philox (shared by 4) + Box-Muller + exp
        16.0 * nf,
        |rec| reparam_forward(rec, &mu, &lv, &z, &eps, 1, &step),
    )?;
    cases.add(
        format!("reparam backward ({batch}x200)"),
        5.0 * nf,
        20.0 * nf,
        |rec| reparam_backward(rec, &z, &lv, &eps, &dmu, &dlv),
    )?;
    cases.add(
        format!("kl forward ({batch}x200 -> 1)"),
        6.0 * nf,
        8.0 * nf,
        |rec| kl(rec, &mu, &lv, &out, 1.0 / batch as f32),
    )?;
    cases.add(
        format!("kl backward ({batch}x200)"),
        5.0 * nf,
        24.0 * nf,
        |rec| kl_grad_accumulate(rec, &mu, &lv, &dmu, &dlv, 1.0 / batch as f32),
    )
}
