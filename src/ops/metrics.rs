//! Fused per-image quality metrics (shaders/metrics.wgsl): MSE, PSNR, SSIM and Gaussian SSIM of
//! a batch of reconstructions against their originals, in one pass over the pixels plus a tiny
//! per-image reduction; the host reads back 4 numbers per image once per batch.
//!
//! Definitions (images in [0, 1], data_range 1, never the reconstruction's own range):
//! - `mse` = mean((x - y)^2) over all pixels.
//! - `psnr` = 10 log10(1 / mse); +inf for identical images (mse 0). Nothing is dropped: a batch
//!   holding an identical pair has mean PSNR +inf, and [`Summary::identical`] counts such pairs.
//! - `ssim` = scikit-image's `structural_similarity(x, y, data_range=1.0)`: 7x7 uniform window,
//!   K1 0.01, K2 0.03, sample covariance (x 49/48), mean of the SSIM map without its 3-pixel
//!   border.
//! - `ssim_gaussian` = Wang et al. 2004, i.e. scikit-image's `structural_similarity(x, y,
//!   data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`: 11x11
//!   Gaussian window (sigma 1.5, truncate 3.5), population covariance, mean over the windows
//!   that lie inside the image (a 5-pixel border cropped).
//!
//! Images must be at least 11x11 (the Gaussian window); any other size works.

use anyhow::{bail, ensure, Result};

use crate::gpu::timing::{BenchCases, KernelBench};
use crate::gpu::{grid_1d, Gpu, Recorder, Tensor};

/// Output columns per invocation of the Gaussian pass (`K` in shaders/metrics.wgsl) and of the
/// box-only pass (`KB`). On CPU adapters every storage-buffer load is a per-lane loop (Mesa 22's
/// llvmpipe), ~90% of the time, so wide blocks pay: K + 10 (Gaussian) or KB + 6 (box) loaded
/// columns per block (the Gaussian pass's 2 x 11-row ring makes wider blocks compile slowly).
const K: usize = 16;
const KB: usize = 32;
/// Output rows of the box-only pass whose window sums are carried down from one fresh 7-row sum
/// (shaders/metrics_box_core.wgsl): the carried sums drift by at most 2 BOX_REFRESH roundings.
const BOX_REFRESH: usize = 16;
/// Smallest side the metrics accept: the Gaussian window's.
pub const MIN_SIDE: usize = 11;
/// The Gaussian window: sigma 1.5, radius 5 (scipy's int(truncate * sigma + 0.5), truncate 3.5).
pub const GAUSS_SIGMA: f64 = 1.5;
pub const GAUSS_RADIUS: usize = 5;

/// The four metrics of one image pair.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ImageMetrics {
    pub mse: f64,
    /// 10 log10(1 / mse), computed on the host in float64 from the GPU's mse; +inf when mse is 0.
    #[serde(serialize_with = "ser_f64", deserialize_with = "de_f64")]
    pub psnr: f64,
    pub ssim: f64,
    pub ssim_gaussian: f64,
}

/// PSNR in dB for data range 1: +inf for mse 0.
pub fn psnr_of(mse: f64) -> f64 {
    if mse > 0.0 {
        -10.0 * mse.log10()
    } else {
        f64::INFINITY
    }
}

/// The 11 Gaussian taps, normalised in float64 as scipy's `_gaussian_kernel1d` does.
pub fn gaussian_taps() -> [f64; 2 * GAUSS_RADIUS + 1] {
    let mut g = [0.0; 2 * GAUSS_RADIUS + 1];
    for (i, v) in g.iter_mut().enumerate() {
        let t = i as f64 - GAUSS_RADIUS as f64;
        *v = (-0.5 / (GAUSS_SIGMA * GAUSS_SIGMA) * t * t).exp();
    }
    let sum: f64 = g.iter().sum();
    g.iter_mut().for_each(|v| *v /= sum);
    g
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    h: u32,
    w: u32,
    rows: u32,
    bands: u32,
    blocks: u32,
    inf_bits: u32,
    gauss: u32,
    g: [f32; 12],
}

/// What [`record_opts`] computes besides MSE, PSNR and the 7x7 SSIM, and how it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The 11x11 Gaussian SSIM (column 3). Off: a box-only pass (about 2x faster on CPU
    /// adapters) writes NaN there, e.g. to compare with scikit-image's default SSIM alone.
    pub gaussian: bool,
    /// Where the kernels read the images from.
    pub reads: Reads,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            gaussian: true,
            reads: Reads::Auto,
        }
    }
}

/// Where the box-only pass (`gaussian: false`) reads the two batches from; the pass with the
/// Gaussian SSIM always reads the buffers. The same kernel (shaders/metrics_box_core.wgsl) runs
/// either way and gives the same numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// Textures for the box-only pass on CPU adapters where the shape allows
    /// ([`textures_fit`]), else buffers.
    Auto,
    /// The storage buffers themselves (shaders/metrics.wgsl).
    Buffers,
    /// Copies in two rgba32float 2D-array textures (shaders/metrics_tex.wgsl), box-only pass.
    /// Measured on llvmpipe (Mesa 22.3): a storage-buffer load costs about 4 ns per float
    /// whatever its width, a texel load of 4 floats about 3 ns, and the pass is bound by its
    /// loads (2.1x the images/s). Not for the Gaussian pass: llvmpipe took 107 s to compile its
    /// texture version (per texture layout) for a 1.8x gain.
    Textures,
}

/// Whether a batch of n images of h x w fits the texture path: rows copy to textures only in
/// multiples of 256 bytes (w a multiple of 64), the adapter's limits must hold the array, and
/// the texture's width (w / 4 texels) must be a power of two: llvmpipe compiles a kernel variant
/// per texture layout, and for this kernel with a width that is not a power of two that
/// compile took 99 s (measured with 37x192 images; 37x256 and 130x64 compile in about 2 s).
pub fn textures_fit(gpu: &Gpu, n: usize, h: usize, w: usize) -> bool {
    let l = &gpu.limits;
    w.is_multiple_of(64)
        && (w / 4).is_power_of_two()
        && h <= l.max_texture_dimension_2d as usize
        && w / 4 <= l.max_texture_dimension_2d as usize
        && n <= l.max_texture_array_layers as usize
}

/// An rgba32float 2D-array texture holding `t`'s n images (4 pixels per texel), filled by a
/// recorded copy, and its view.
/// On lavapipe, for a tensor large enough to be aliased, the texture is its own memory and no
/// copy is recorded (`gpu::alias`).
fn texture_of(rec: &mut Recorder, t: &Tensor, n: usize, h: usize, w: usize) -> wgpu::TextureView {
    let extent = [(w / 4) as u32, h as u32, n as u32];
    let tex = match rec
        .gpu
        .texture_alias_shaped(&t.buf, extent, wgpu::TextureFormat::Rgba32Float)
    {
        Some(tex) => tex,
        None => {
            let tex = rec
                .gpu
                .copy_texture("metrics images", extent[0], extent[1], extent[2]);
            rec.copy_to_texture(&t.buf, &tex, (w * 4) as u32);
            tex
        }
    };
    tex.create_view(&wgpu::TextureViewDescriptor {
        dimension: Some(wgpu::TextureViewDimension::D2Array),
        ..Default::default()
    })
}

/// Output rows per invocation: long bands waste less on the 6 or 10 halo rows (whole 128-row
/// images: 5-8%), short ones give more invocations, which small batches need to fill every core:
/// the longest band (whole image, 64, 32 rows) that still gives >= 256 invocations (4 workgroups).
fn band_rows(n: usize, h: usize, w: usize, k: usize) -> usize {
    let blocks = w.div_ceil(k);
    for rows in [h, 64, 32] {
        if rows <= h && n * h.div_ceil(rows) * blocks >= 256 {
            return rows;
        }
    }
    h.min(32)
}

/// Splits a shape into (n, h, w): [n, 1, h, w] or [n, h, w].
fn image_dims(shape: &[usize]) -> Result<(usize, usize, usize)> {
    match *shape {
        [n, 1, h, w] | [n, h, w] => Ok((n, h, w)),
        _ => bail!(
            "metrics take grayscale batches shaped [n, 1, h, w] (or [n, h, w]); got {shape:?}"
        ),
    }
}

/// Records the fused metrics for a batch of n images [n,1,h,w] (values in [0,1]) into out
/// [n,4] (mse, psnr, ssim, ssim_gaussian). `out`'s psnr column is computed on the GPU in f32
/// (within ~1e-5 dB of the float64 value; +inf for identical images).
pub fn record(
    rec: &mut Recorder,
    reference: &Tensor,
    distorted: &Tensor,
    out: &Tensor,
) -> Result<()> {
    record_opts(rec, reference, distorted, out, Options::default())
}

/// [`record`] with options: `Options { gaussian: false }` skips the Gaussian SSIM and writes NaN
/// in out's column 3.
pub fn record_opts(
    rec: &mut Recorder,
    reference: &Tensor,
    distorted: &Tensor,
    out: &Tensor,
    opts: Options,
) -> Result<()> {
    let (n, h, w) = image_dims(&reference.shape)?;
    ensure!(
        reference.shape == distorted.shape,
        "metrics: the reference batch is {:?} but the distorted batch is {:?}; they must match",
        reference.shape,
        distorted.shape
    );
    ensure!(
        h >= MIN_SIDE && w >= MIN_SIDE,
        "metrics: images are {w}x{h} pixels; SSIM needs at least {MIN_SIDE}x{MIN_SIDE} (the Gaussian window)"
    );
    ensure!(
        out.shape == [n, 4],
        "metrics: out must be [{n}, 4] (mse, psnr, ssim, ssim_gaussian), got {:?}",
        out.shape
    );
    if n == 0 {
        return Ok(());
    }
    let k = if opts.gaussian { K } else { KB };
    let rows = band_rows(n, h, w, k);
    let bands = h.div_ceil(rows);
    let blocks = w.div_ceil(k);
    let taps = gaussian_taps();
    let mut g = [0f32; 12];
    for (d, s) in g.iter_mut().zip(taps) {
        *d = s as f32;
    }
    let params = Params {
        n: n as u32,
        h: h as u32,
        w: w as u32,
        rows: rows as u32,
        bands: bands as u32,
        blocks: blocks as u32,
        inf_bits: f32::INFINITY.to_bits(),
        gauss: opts.gaussian as u32,
        g,
    };
    let tiles = n * bands * blocks;
    let part = rec.gpu.zeros(&[tiles, 3]);
    let fit = textures_fit(rec.gpu, n, h, w);
    let textures = match opts.reads {
        Reads::Auto => !opts.gaussian && fit && rec.gpu.info.device_type == wgpu::DeviceType::Cpu,
        Reads::Buffers => false,
        Reads::Textures => {
            ensure!(
                !opts.gaussian,
                "metrics: the texture path runs the box-only pass; set Options::gaussian to false or use Reads::Buffers"
            );
            ensure!(
                fit,
                "metrics: {n} images of {w}x{h} do not fit the texture path (width 64 * 2^k, at most {} images); use Reads::Buffers or Reads::Auto",
                rec.gpu.limits.max_texture_array_layers
            );
            true
        }
    };
    let (shader, images) = if textures {
        let a = texture_of(rec, reference, n, h, w);
        let b = texture_of(rec, distorted, n, h, w);
        ("metrics_tex", [(&a).into(), (&b).into()])
    } else {
        ("metrics", [reference.into(), distorted.into()])
    };
    let [a, b] = images;
    rec.dispatch(
        shader,
        if opts.gaussian {
            "metrics_partials"
        } else {
            "metrics_partials_box"
        },
        &params,
        &[a, b, (&part).into()],
        grid_1d(tiles as u64, 64),
    )?;
    rec.dispatch(
        "metrics",
        "metrics_finish",
        &params,
        &[(&part).into(), out.into()],
        grid_1d(n as u64, 64),
    )
}

/// Convenience: uploads, runs, reads back. `reference` and `distorted` hold n images of h x w.
pub fn compute(
    gpu: &Gpu,
    reference: &[f32],
    distorted: &[f32],
    n: usize,
    h: usize,
    w: usize,
) -> Result<Vec<ImageMetrics>> {
    compute_opts(gpu, reference, distorted, n, h, w, Options::default())
}

/// [`compute`] with options (`gaussian: false`: `ssim_gaussian` is NaN).
pub fn compute_opts(
    gpu: &Gpu,
    reference: &[f32],
    distorted: &[f32],
    n: usize,
    h: usize,
    w: usize,
    opts: Options,
) -> Result<Vec<ImageMetrics>> {
    let len = n * h * w;
    ensure!(
        reference.len() == len && distorted.len() == len,
        "metrics: {n} images of {w}x{h} need {len} values each; got {} (reference) and {} (distorted)",
        reference.len(),
        distorted.len()
    );
    if n == 0 {
        return Ok(Vec::new());
    }
    let a = gpu.upload(reference, &[n, 1, h, w])?;
    let b = gpu.upload(distorted, &[n, 1, h, w])?;
    let out = gpu.zeros(&[n, 4]);
    let mut rec = gpu.record();
    record_opts(&mut rec, &a, &b, &out, opts)?;
    rec.run()?;
    Ok(from_rows(&gpu.read(&out)?))
}

/// Turns the [n, 4] output into per-image metrics (PSNR recomputed in float64 from mse).
pub fn from_rows(out: &[f32]) -> Vec<ImageMetrics> {
    out.chunks_exact(4)
        .map(|r| ImageMetrics {
            mse: r[0] as f64,
            psnr: psnr_of(r[0] as f64),
            ssim: r[2] as f64,
            ssim_gaussian: r[3] as f64,
        })
        .collect()
}

/// Mean, median and (population) standard deviation of one metric over a set of images.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    #[serde(serialize_with = "ser_f64", deserialize_with = "de_f64")]
    pub mean: f64,
    #[serde(serialize_with = "ser_f64", deserialize_with = "de_f64")]
    pub median: f64,
    #[serde(serialize_with = "ser_f64", deserialize_with = "de_f64")]
    pub std: f64,
}

/// Statistics of each metric over a set of images.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub count: usize,
    /// Pairs with mse 0 (PSNR +inf). They are included in every statistic, so with any of them
    /// the PSNR mean is +inf; `psnr_of_mean_mse` stays finite unless all are identical.
    pub identical: usize,
    pub mse: Stats,
    /// Mean of the per-image PSNRs (what per-image evaluations usually report).
    pub psnr: Stats,
    /// 10 log10(1 / mean mse): the PSNR of the whole set taken as one signal.
    #[serde(serialize_with = "ser_f64", deserialize_with = "de_f64")]
    pub psnr_of_mean_mse: f64,
    pub ssim: Stats,
    pub ssim_gaussian: Stats,
}

impl Summary {
    /// Table rows in the seeds' layout: metric, mean, median, std.
    pub fn rows(&self) -> Vec<Vec<String>> {
        let row = |name: &str, s: &Stats, digits: usize| {
            vec![
                name.to_string(),
                format!("{:.*}", digits, s.mean),
                format!("{:.*}", digits, s.median),
                format!("{:.*}", digits, s.std),
            ]
        };
        vec![
            row("MSE", &self.mse, 6),
            row("PSNR (dB)", &self.psnr, 3),
            row("SSIM", &self.ssim, 4),
            row("SSIM (Gaussian)", &self.ssim_gaussian, 4),
        ]
    }
}

fn stats(mut v: Vec<f64>) -> Stats {
    if v.is_empty() {
        return Stats {
            mean: f64::NAN,
            median: f64::NAN,
            std: f64::NAN,
        };
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = if mean.is_finite() {
        (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt()
    } else {
        f64::NAN // a spread around an infinite mean is not a number
    };
    let median = crate::gpu::timing::median(&mut v);
    Stats { mean, median, std }
}

pub fn summarize(v: &[ImageMetrics]) -> Summary {
    let col = |f: fn(&ImageMetrics) -> f64| stats(v.iter().map(f).collect());
    let mse = col(|m| m.mse);
    Summary {
        count: v.len(),
        identical: v.iter().filter(|m| m.mse == 0.0).count(),
        psnr_of_mean_mse: if v.is_empty() {
            f64::NAN
        } else {
            psnr_of(mse.mean)
        },
        mse,
        psnr: col(|m| m.psnr),
        ssim: col(|m| m.ssim),
        ssim_gaussian: col(|m| m.ssim_gaussian),
    }
}

/// Reads what [`ser_f64`] writes: a number, or "inf", "-inf", "nan".
pub fn de_f64<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum F {
        N(f64),
        S(String),
    }
    match <F as serde::Deserialize>::deserialize(d)? {
        F::N(v) => Ok(v),
        F::S(s) => match s.as_str() {
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            "nan" => Ok(f64::NAN),
            other => Err(serde::de::Error::custom(format!(
                "expected a number, got {other:?}"
            ))),
        },
    }
}

/// JSON has no infinities: non-finite numbers are written as the strings "inf", "-inf", "nan".
pub fn ser_f64<S: serde::Serializer>(v: &f64, s: S) -> std::result::Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else if v.is_nan() {
        s.serialize_str("nan")
    } else if *v > 0.0 {
        s.serialize_str("inf")
    } else {
        s.serialize_str("-inf")
    }
}

/// Deterministic test images for the benchmark: a smooth pattern plus hashed noise, and a noisy
/// copy of it (so SSIM is not trivially 1).
fn bench_images(n: usize, h: usize, w: usize) -> (Vec<f32>, Vec<f32>) {
    let mut a = Vec::with_capacity(n * h * w);
    let mut b = Vec::with_capacity(n * h * w);
    let mut z = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        z = z
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((z >> 40) as f32) / (1u64 << 24) as f32
    };
    for i in 0..n {
        for r in 0..h {
            for c in 0..w {
                let v = 0.5
                    + 0.3 * ((r as f32 * 0.11 + i as f32).sin() * (c as f32 * 0.07).cos())
                    + 0.1 * (next() - 0.5);
                a.push(v.clamp(0.0, 1.0));
                b.push((v + 0.05 * (next() - 0.5)).clamp(0.0, 1.0));
            }
        }
    }
    (a, b)
}

/// The fused metrics on a batch of 128x128 images, inputs filled: what `facegpu bench metrics`
/// times (images/s = batch / seconds per run).
pub fn bench_programs(gpu: &Gpu, batch: usize) -> Result<Vec<KernelBench>> {
    let mut cases = BenchCases::new(gpu, None);
    bench_cases(&mut cases, batch)?;
    Ok(cases.cases)
}

/// The bench case of [`bench_programs`].
pub fn bench_cases(cases: &mut BenchCases, batch: usize) -> Result<()> {
    let gpu = cases.gpu;
    let (h, w) = (128, 128);
    ensure!(
        batch > 0,
        "bench metrics: the batch must hold at least one image"
    );
    let (a, b) = bench_images(batch, h, w);
    let at = gpu.upload(&a, &[batch, 1, h, w])?;
    let bt = gpu.upload(&b, &[batch, 1, h, w])?;
    let out = gpu.zeros(&[batch, 4]);
    let px = (batch * h * w) as f64;
    cases.add(
        format!("metrics mse+psnr+ssim+ssim_gaussian ({batch}x1x{h}x{w})"),
        // per pixel, as a separable implementation counts them: 5 for s, d and their squares,
        // 2 x (4 x 7 box + 4 x 11 x 2 Gaussian) window sums, 2 x ~20 for the SSIM formulas,
        // 2 for the squared error
        px * (5.0 + 2.0 * (28.0 + 88.0) + 40.0 + 2.0),
        px * 8.0 + batch as f64 * 16.0,
        |rec| record(rec, &at, &bt, &out),
    )
}

// ------------------------------------------------------------------------------------------
// The box-only pass's source (shaders/metrics_box_core.wgsl is this function's output).

/// Generates shaders/metrics_box_core.wgsl, the box-only first pass (MSE and the 7x7 SSIM) with
/// its per-column work written out, so that every array index is a constant: software adapters
/// keep constant-indexed private arrays in registers and spill the rest to their stack, but turn
/// a dynamically indexed one into per-lane memory accesses.
///
/// An output row's window sums are carried down from the row above (the entering row's
/// horizontal window sums added, the leaving row's subtracted, both loaded again), summed afresh
/// from 7 rows every REFRESH rows. The version before kept a ring of the last 7 rows' sums,
/// which unrolled the row loop 7 times (about 200 KB of code on llvmpipe) and spent its time
/// on the ring's loads and stores; this one ran about 1.2x as fast (README, Speed).
pub fn box_core_wgsl() -> String {
    use std::fmt::Write as _;
    const COLS: usize = KB; // output columns per invocation
                            // q index j is column c0 - 3 + j, in texel (j + 1) / 4 (texel i = columns c0 - 4 + 4i ..)
    let texel = |j: usize| ((j + 1) / 4, ["x", "y", "z", "w"][(j + 1) % 4]);
    let mut o = String::new();
    let w = &mut o;
    o_lines(
        w,
        &[
            "// GENERATED by facegpu::ops::metrics::box_core_wgsl() (src/ops/metrics.rs); do not edit by hand.",
            "// The box-only first pass of the fused metrics (MSE and the 7x7 SSIM, no Gaussian SSIM),",
            "// 32 output columns per invocation. The including file supplies texel_x / texel_y (4 pixels",
            "// of a row, columns clamped into the image: clamped values only reach masked-out windows)",
            "// and pixel_s.",
            "//",
            "// An output row's 7x7 window sums are carried down from the row above: add the horizontal",
            "// window sums of the row entering the window, subtract those of the row leaving it (both",
            "// loaded again: texel loads are cheap, and a ring of the last 7 rows, which CPU adapters keep",
            "// in memory, was what the previous version spent its time on). The differences are formed",
            "// per pixel and summed along the row once, streamed column by column into the 32 carried",
            "// sums and the SSIM, so that few values stay live. Every REFRESH rows the sums are summed",
            "// afresh from 7 rows, so the carried sums drift by at most 2 REFRESH roundings.",
            "//!include metrics_core",
            "",
        ],
    );
    let _ = writeln!(
        w,
        "const KB: u32 = {COLS}u; // output columns per invocation"
    );
    let _ = writeln!(
        w,
        "const REFRESH: u32 = {BOX_REFRESH}u; // output rows carried down from one fresh sum"
    );
    let _ = writeln!(w, "struct BoxSums {{\n    v: array<vec4<f32>, {COLS}>,\n}}");
    o_lines(
        w,
        &[
            "// (e, e^2, d, d^2) of a pixel from its two values, e = (x + y) - sigma, d = x - y",
            "fn box_quant(t: Tile, a: f32, b: f32) -> vec4<f32> {",
            "    let e = (a + b) - t.sigma;",
            "    let d = a - b;",
            "    return vec4<f32>(e, e * e, d, d * d);",
            "}",
            "// box_quant(entering pixel) - box_quant(leaving pixel), the squares' differences as (u - v)(u + v)",
            "fn dquant(t: Tile, ai: f32, bi: f32, ao: f32, bo: f32) -> vec4<f32> {",
            "    let ei = (ai + bi) - t.sigma;",
            "    let eo = (ao + bo) - t.sigma;",
            "    let di = ai - bi;",
            "    let do_ = ao - bo;",
            "    return vec4<f32>(ei - eo, (ei - eo) * (ei + eo), di - do_, (di - do_) * (di + do_));",
            "}",
            "fn box_px(sums: vec4<f32>, c: i32, t: Tile) -> f32 {",
            "    let v = sums * (1.0 / 49.0);",
            "    let s = ssim_sd(v.x, v.z, v.y, v.w, t.sigma, SAMPLE);",
            "    return select(s, 0.0, c < 3 || c > i32(p.w) - 4);",
            "}",
            "// v += row r's horizontal window sums; returns its sum of squared errors over the block's",
            "// columns (for the MSE)",
            "fn box_add_row(t: Tile, r: i32, v: ptr<function, BoxSums>) -> f32 {",
            "    let w = i32(p.w);",
            "    var se = 0.0;",
        ],
    );
    let mut loaded = Vec::new();
    for j in 0..COLS + 6 {
        let (ti, c) = texel(j);
        load_texel_once(w, &mut loaded, ti, &[("x", "r"), ("y", "r")]);
        let _ = writeln!(w, "    let q{j} = box_quant(t, x{ti}.{c}, y{ti}.{c});");
        window_sum_step(w, j);
        if j >= 6 {
            let k = j - 6;
            let _ = writeln!(w, "    se += select(0.0, q{}.w, t.c0 + {k} < w);", k + 3);
        }
    }
    let _ = writeln!(w, "    return se;\n}}");
    o_lines(
        w,
        &[
            "// Carries v down one row (rin enters the window, rout leaves it) and returns the new row's",
            "// SSIM sum over the block's columns (x) and row rin's sum of squared errors (y)",
            "fn box_carry_row(t: Tile, rin: i32, rout: i32, v: ptr<function, BoxSums>) -> vec2<f32> {",
            "    let w = i32(p.w);",
            "    var se = 0.0;",
            "    var ss = 0.0;",
        ],
    );
    let mut loaded = Vec::new();
    let rows = [("xi", "rin"), ("yi", "rin"), ("xo", "rout"), ("yo", "rout")];
    for j in 0..COLS + 6 {
        let (ti, c) = texel(j);
        load_texel_once(w, &mut loaded, ti, &rows);
        let _ = writeln!(
            w,
            "    let q{j} = dquant(t, xi{ti}.{c}, yi{ti}.{c}, xo{ti}.{c}, yo{ti}.{c});"
        );
        window_sum_step(w, j);
        if j >= 6 {
            let k = j - 6;
            let col = if k == 0 {
                "t.c0".to_string()
            } else {
                format!("t.c0 + {k}")
            };
            let _ = writeln!(w, "    ss += box_px((*v).v[{k}], {col}, t);");
            let (mi, mc) = texel(k + 3);
            let _ = writeln!(
                w,
                "    se += select(0.0, xi{mi}.{mc} - yi{mi}.{mc}, {col} < w) * (xi{mi}.{mc} - yi{mi}.{mc});"
            );
        }
    }
    let _ = writeln!(w, "    return vec2<f32>(ss, se);\n}}");
    o_lines(
        w,
        &[
            "@compute @workgroup_size(64)",
            "fn metrics_partials_box(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {",
            "    let id = gid.x + gid.y * nwg.x * WG;",
            "    if (id >= p.n * p.bands * p.blocks) {",
            "        return;",
            "    }",
            "    let t = tile_of(id, KB);",
            "",
            "    // output rows with a whole window in the image; a band with none (at most its image's",
            "    // first or last 3 rows) still walks one row for its squared errors, its SSIM masked",
            "    var lo = max(t.r_lo, 3);",
            "    var hi = min(t.r_hi, i32(p.h) - 3);",
            "    var valid = 1.0;",
            "    if (lo >= hi) {",
            "        lo = t.r_lo;",
            "        hi = t.r_lo + 1;",
            "        valid = 0.0;",
            "    }",
            "    var counted = t.r_lo; // rows below this have had their squared errors summed",
            "    var se = 0.0;",
            "    var total = 0.0;",
            "    var ro = lo;",
            "    loop {",
            "        if (ro >= hi) {",
            "            break;",
            "        }",
            "        // fresh window sums of the row above ro (rows ro - 4 .. ro + 2)",
            "        var v: BoxSums;",
            "        for (var r = ro - 4; r <= ro + 2; r++) {",
            "            let m = box_add_row(t, r, &v);",
            "            let take = r >= counted && r < t.r_hi;",
            "            se += select(0.0, m, take);",
            "            counted = select(counted, r + 1, take);",
            "        }",
            "        // then up to REFRESH output rows carried down, their SSIM summed per block",
            "        var blk = 0.0;",
            "        var n = 0u;",
            "        loop {",
            "            let o = box_carry_row(t, ro + 3, ro - 4, &v);",
            "            blk += o.x;",
            "            let take = ro + 3 >= counted && ro + 3 < t.r_hi;",
            "            se += select(0.0, o.y, take);",
            "            counted = select(counted, ro + 4, take);",
            "            ro += 1;",
            "            n += 1u;",
            "            if (ro >= hi || n >= REFRESH) {",
            "                break;",
            "            }",
            "        }",
            "        total += valid * blk;",
            "    }",
            "    let o = id * 3u;",
            "    part[o] = se;",
            "    part[o + 1u] = total;",
            "    part[o + 2u] = 0.0;",
            "}",
        ],
    );
    o
}

/// After q{j}: the horizontal 7-window sum s of the column j - 6 (once q0 .. q6 exist, then
/// sliding by one column) and, from there on, added into the carried sums v.
fn window_sum_step(w: &mut String, j: usize) {
    use std::fmt::Write as _;
    if j == 6 {
        let _ = writeln!(w, "    var s = q0 + q1 + q2 + q3 + q4 + q5 + q6;");
    } else if j > 6 {
        let _ = writeln!(w, "    s += q{j} - q{};", j - 7);
    }
    if j >= 6 {
        let _ = writeln!(w, "    (*v).v[{}] += s;", j - 6);
    }
}

/// Writes `let {name}{i} = texel_x/y(t, {row}, i);` for each (name, row) not loaded yet: each
/// texel is loaded where first needed, so its value is live no longer than it must be.
fn load_texel_once(
    w: &mut String,
    loaded: &mut Vec<(String, usize)>,
    i: usize,
    rows: &[(&str, &str)],
) {
    for &(name, row) in rows {
        if !loaded.contains(&(name.to_string(), i)) {
            loaded.push((name.to_string(), i));
            let f = if name.starts_with('x') {
                "texel_x"
            } else {
                "texel_y"
            };
            w.push_str(&format!("    let {name}{i} = {f}(t, {row}, {i});\n"));
        }
    }
}

fn o_lines(w: &mut String, lines: &[&str]) {
    for l in lines {
        w.push_str(l);
        w.push('\n');
    }
}
