//! Gaussian noise on the GPU (shaders/noise.wgsl), for denoising models and evaluation.
//!
//! The noise added to pixel `p` of the image with id `id` (its index in the dataset) in
//! stream `stream` is `sigma * normal_at(key(seed), p, id, stream)` (Philox, shaders/rng.wgsl):
//! a function of (seed, id, stream, p) alone. Training uses the epoch as the stream (fresh
//! noise per seed, epoch and image); evaluation uses [`EVAL_STREAM`], so two evaluations of one
//! checkpoint see identical noise. The fused batch gather (shaders/batch.wgsl) draws the same
//! values, so the two paths agree.

use anyhow::{bail, Result};

use crate::gpu::{grid_1d, Recorder, Tensor};
use crate::ops::rng;

/// The noise stream evaluation uses (training uses the epoch, which never gets this high).
pub const EVAL_STREAM: u32 = 0xFFFF_FFFF;

/// Philox key of the noise for `seed`: the seed's key with a salt, so noise never shares a
/// stream with other users of the same seed (weight init, VAE sampling).
pub fn key(seed: u64) -> [u32; 2] {
    let k = rng::key(seed);
    [k[0], k[1] ^ 0x6E6F_6973] // "nois"
}

/// Host mirror (float64): the standard normal value the GPU scales by sigma for pixel `p`
/// of image `id` in `stream`.
pub fn normal(seed: u64, id: u32, stream: u32, p: u32) -> f64 {
    rng::normal_at(key(seed), p, id, stream)
}

/// How much noise, and whether to clip.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NoiseSpec {
    /// Standard deviation, in pixel units of [0, 1].
    pub sigma: f32,
    /// Clip the noisy image to [0, 1] (the default; `--no-clip` turns it off).
    pub clip: bool,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    row_len: u32,
    row_base: u32,
    stream: u32,
    sigma: f32,
    clip: u32,
    key_lo: u32,
    key_hi: u32,
}

/// y = x + sigma * noise (clipped to [0, 1] if `spec.clip`), for x of shape [rows, ...] with
/// `row_len` = elements per row; row r is image id `row_base + r`. x and y must be distinct.
#[allow(clippy::too_many_arguments)]
pub fn add(
    rec: &mut Recorder,
    x: &Tensor,
    y: &Tensor,
    row_len: usize,
    row_base: u32,
    spec: NoiseSpec,
    seed: u64,
    stream: u32,
) -> Result<()> {
    if x.len() != y.len() {
        bail!("noise: x has {} elements, y {}", x.len(), y.len());
    }
    if row_len == 0 || !x.len().is_multiple_of(row_len) {
        bail!(
            "noise: {} elements are not whole rows of {row_len}",
            x.len()
        );
    }
    if x.buf == y.buf {
        bail!("noise: x and y must be different tensors");
    }
    let k = key(seed);
    let rows = x.len() / row_len;
    let quads = rows * row_len.div_ceil(4);
    rec.dispatch(
        "noise",
        "add_noise",
        &Params {
            n: x.len() as u32,
            row_len: row_len as u32,
            row_base,
            stream,
            sigma: spec.sigma,
            clip: spec.clip as u32,
            key_lo: k[0],
            key_hi: k[1],
        },
        &[x.into(), y.into()],
        grid_1d(quads as u64, 256),
    )
}

/// The noise kernel at a batch of faces (batch x 1 x 128 x 128).
pub fn bench_cases(cases: &mut crate::gpu::timing::BenchCases, batch: usize) -> Result<()> {
    let gpu = cases.gpu;
    let n = batch * 128 * 128;
    let x = gpu.upload(
        &(0..n).map(|i| (i % 251) as f32 / 250.0).collect::<Vec<_>>(),
        &[batch, 1, 128, 128],
    )?;
    let y = gpu.zeros(&[batch, 1, 128, 128]);
    let spec = NoiseSpec {
        sigma: 0.1,
        clip: true,
    };
    cases.add(
        format!("noise add ({batch}x1x128x128)"),
        0.0,
        8.0 * n as f64,
        |rec| add(rec, &x, &y, 128 * 128, 0, spec, 0, 0),
    )
}
