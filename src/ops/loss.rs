//! Mean squared error (shaders/loss.wgsl): the forward is a deterministic mapped sum
//! (src/ops/reduce.rs), the backward an elementwise kernel.

use anyhow::{bail, Result};

use crate::gpu::timing::BenchCases;
use crate::gpu::{grid_1d, Recorder, Tensor};
use crate::ops::reduce::{self, Map};
use crate::ops::Activation;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    k: f32,
    _pad: [u32; 2],
}

fn same_size(what: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.len() != b.len() {
        bail!(
            "{what}: shapes {:?} and {:?} differ in size; pass tensors of the same shape",
            a.shape,
            b.shape
        );
    }
    Ok(())
}

/// out = scale * sum((pred - target)^2): scale = 1/n for the mean, 1/batch for the VAE's
/// per-image sum averaged over the batch. `out` has one element.
pub fn mse(
    rec: &mut Recorder,
    pred: &Tensor,
    target: &Tensor,
    out: &Tensor,
    scale: f32,
) -> Result<()> {
    same_size("mse", pred, target)?;
    if out.len() != 1 {
        bail!(
            "mse: the output must hold one value, it has shape {:?}",
            out.shape
        );
    }
    reduce::sum_rows_mapped(rec, Map::SquaredDiff, pred, Some(target), out, scale)
}

/// dpred = 2 * scale * (pred - target), the gradient of [`mse`] with the same scale.
pub fn mse_grad(
    rec: &mut Recorder,
    pred: &Tensor,
    target: &Tensor,
    dpred: &Tensor,
    scale: f32,
) -> Result<()> {
    mse_grad_act(rec, pred, target, dpred, scale, Activation::None)
}

/// [`mse_grad`] times act'(pred): with the last layer's activation (pred its output), dpred is
/// that layer's g, so its backward runs with `Activation::None`.
pub fn mse_grad_act(
    rec: &mut Recorder,
    pred: &Tensor,
    target: &Tensor,
    dpred: &Tensor,
    scale: f32,
    act: Activation,
) -> Result<()> {
    let consts = [("ACT", act.code() as f64)];
    same_size("mse_grad", pred, target)?;
    same_size("mse_grad", pred, dpred)?;
    // vec4 loads where the length allows
    let (entry, n) = match pred.len() {
        0 => return Ok(()),
        n if n % 4 == 0 => ("mse_grad4", n / 4),
        n => ("mse_grad", n),
    };
    let params = Params {
        n: n as u32,
        k: 2.0 * scale,
        _pad: [0; 2],
    };
    // CPU adapters: texture copies of the operands (the kernel is bound by its loads)
    if entry == "mse_grad4" && rec.texture_reads() && rec.gpu.flat_texture_fits(pred.len()) {
        let tp = rec.flat_texture(&pred.buf, pred.len());
        let tt = rec.flat_texture(&target.buf, target.len());
        return rec.dispatch_with(
            "loss",
            "mse_grad4_tex",
            &consts,
            &params,
            &[(&tp).into(), (&tt).into(), dpred.into()],
            grid_1d(n as u64, 256),
        );
    }
    rec.dispatch_with(
        "loss",
        entry,
        &consts,
        &params,
        &[pred.into(), target.into(), dpred.into()],
        grid_1d(n as u64, 256),
    )
}

/// Benchmarks at the seed shape: MSE and its gradient over a batch of 128x128 images.
pub fn bench_cases(cases: &mut BenchCases, batch: usize) -> Result<()> {
    let gpu = cases.gpu;
    let n = batch * 16384;
    let p = gpu.upload(&vec![0.25f32; n], &[batch, 1, 128, 128])?;
    let t = gpu.upload(&vec![0.75f32; n], &[batch, 1, 128, 128])?;
    let d = gpu.zeros(&[batch, 1, 128, 128]);
    let out = gpu.zeros(&[1]);
    // the mean; the sum is the same kernel with scale 1
    cases.add(
        format!("mse forward ({batch}x16384 -> 1)"),
        3.0 * n as f64,
        8.0 * n as f64,
        |rec| mse(rec, &p, &t, &out, 1.0 / n as f32),
    )?;
    cases.add(
        format!("mse backward ({batch}x16384)"),
        2.0 * n as f64,
        12.0 * n as f64,
        |rec| mse_grad(rec, &p, &t, &d, 1.0 / n as f32),
    )
}
