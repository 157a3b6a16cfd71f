//! `facegpu eval`: a checkpoint on its own test split (or any split), clean and noisy, with
//! the fused GPU metrics, read back once per batch. Reports: a markdown table in the seeds'
//! layout, results.json, per-image CSV, histograms, a grid, and the compression figures.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::data::batcher::{Batcher, BatcherConfig, NoiseSpec};
use crate::data::split::{Part, Split, SplitFractions};
use crate::data::{self};
use crate::gpu::Gpu;
use crate::model::checkpoint;
use crate::model::graph::{Graph, Latent};
use crate::model::params::Params;
use crate::model::registry;
use crate::ops::metrics::{self, ImageMetrics, Summary};
use crate::ops::step::{StepState, StepValues};
use crate::train::TrainOptions;
use crate::{fsutil, report};

#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub checkpoint: PathBuf,
    /// Overrides the checkpoint's dataset (its split must still match).
    pub dataset: Option<PathBuf>,
    pub part: Part,
    pub noise: Option<f32>,
    pub clip: bool,
    /// Seed of the evaluation noise (default: the checkpoint's seed).
    pub seed: Option<u64>,
    /// VAE: sample z instead of z = mu.
    pub sample: bool,
    pub batch: usize,
    pub out: Option<PathBuf>,
}

/// One evaluated condition: what went in, what the output is compared with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Condition {
    pub name: String,
    pub summary: Summary,
}

/// How much the latent compresses a 128x128 8-bit face.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Compression {
    pub latent_shape: Vec<usize>,
    pub latent_elements: usize,
    pub pixels: usize,
    /// pixels / latent elements.
    pub element_ratio: f64,
    pub bits_per_pixel_f32: f64,
    pub bits_per_pixel_u8: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalResults {
    pub model: String,
    pub checkpoint: String,
    pub epoch: usize,
    pub split: String,
    pub images: usize,
    pub synthetic: bool,
    pub noise: Option<f32>,
    pub latent: String,
    pub adapter: String,
    pub conditions: Vec<Condition>,
    pub compression: Compression,
}

pub fn evaluate(gpu: &Gpu, opts: &EvalOptions) -> Result<EvalResults> {
    if let Some(s) = opts.noise {
        if !(s.is_finite() && s >= 0.0) {
            bail!("--noise must be a sigma >= 0, got {s}");
        }
    }
    if opts.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let ck = checkpoint::load(&opts.checkpoint)?;
    let spec = registry::model(&ck.meta.model).with_context(|| {
        format!(
            "{} was written for model {:?}, which this facegpu does not know",
            opts.checkpoint.display(),
            ck.meta.model
        )
    })?;
    let params = Params::from_host(gpu, &spec, &ck.tensors).with_context(|| {
        format!(
            "{} does not fit model {}",
            opts.checkpoint.display(),
            spec.name
        )
    })?;
    let topts: TrainOptions =
        serde_json::from_value(ck.meta.options.clone()).with_context(|| {
            format!(
                "{} has no training options; was it written by `facegpu train`?",
                opts.checkpoint.display()
            )
        })?;
    let mut dopts = topts.data_options();
    if opts.dataset.is_some() {
        dopts.dataset = opts.dataset.clone();
    }
    let ds = data::load(&dopts)?;
    let split = Split::new(
        &ds,
        SplitFractions::new(topts.split[0], topts.split[1], topts.split[2])?,
        topts.seed,
    )?;
    let now = serde_json::to_value(&split.info)?;
    if !ck.meta.split.is_null() && ck.meta.split != now {
        let saved: data::split::SplitInfo = serde_json::from_value(ck.meta.split.clone())?;
        let diffs = saved.differences(&split.info);
        bail!(
            "the dataset no longer matches the split {} was trained with ({}): the test images could overlap the training ones; \
             evaluate on the same folder, or retrain",
            opts.checkpoint.display(),
            if diffs.is_empty() { "file lists differ".to_string() } else { diffs.join("; ") }
        );
    }
    let rows = split.part(opts.part);
    if rows.is_empty() {
        bail!("the {} split is empty", opts.part.name());
    }
    let seed = opts.seed.unwrap_or(topts.seed);
    let batch = opts.batch.min(rows.len());
    let noise = opts.noise.map(|sigma| NoiseSpec {
        sigma,
        clip: opts.clip,
    });
    let mut batcher = Batcher::new(gpu, &ds, rows, BatcherConfig::eval(batch, seed, noise))?;
    let latent = if opts.sample {
        Latent::Sample
    } else {
        Latent::Mean
    };
    let step = StepState::new(
        gpu,
        StepValues {
            t: 1,
            epoch: 0,
            lr: 0.0,
            _pad: 0,
        },
    );
    // clean input -> clean target; noisy input -> (noisy, clean) targets
    let clean_g = Graph::new(
        gpu,
        &spec,
        &params,
        batch,
        batcher.clean.clone(),
        batcher.clean.clone(),
        latent,
    )?;
    let noisy_g = match &batcher.noisy {
        Some(n) => Some(Graph::new(
            gpu,
            &spec,
            &params,
            batch,
            n.clone(),
            batcher.clean.clone(),
            latent,
        )?),
        None => None,
    };
    let outs: Vec<_> = (0..if noisy_g.is_some() { 3 } else { 1 })
        .map(|_| gpu.zeros(&[batch, 4]))
        .collect();
    let prog = {
        let mut rec = gpu.record();
        batcher.record(&mut rec)?;
        clean_g.record_forward(&mut rec, &params, seed, &step, 1.0)?;
        metrics::record(&mut rec, &batcher.clean, &clean_g.output, &outs[0])?;
        if let (Some(g), Some(n)) = (&noisy_g, &batcher.noisy) {
            g.record_forward(&mut rec, &params, seed, &step, 1.0)?;
            metrics::record(&mut rec, n, &g.output, &outs[1])?;
            metrics::record(&mut rec, &batcher.clean, &g.output, &outs[2])?;
        }
        rec.finish()?
    };
    let mut per: Vec<Vec<ImageMetrics>> = vec![Vec::new(); outs.len()];
    batcher.begin_epoch(gpu, 0)?;
    for k in 0..batcher.batches() {
        let valid = batcher.set_batch(gpu, k)?;
        prog.run(gpu)?;
        for (c, o) in outs.iter().enumerate() {
            let v = gpu.read(o)?;
            per[c].extend(metrics::from_rows(&v[..valid * 4]));
        }
    }
    let names = [
        "clean input vs original",
        "noisy input: output vs noisy input (as the seeds reported)",
        "noisy input: output vs clean original",
    ];
    let conditions: Vec<Condition> = per
        .iter()
        .zip(names)
        .map(|(v, n)| Condition {
            name: n.to_string(),
            summary: metrics::summarize(v),
        })
        .collect();
    let dims = spec.dims()?;
    let lat: usize = dims.latent.iter().product();
    let results = EvalResults {
        model: spec.name.to_string(),
        checkpoint: opts.checkpoint.display().to_string(),
        epoch: ck.meta.epoch,
        split: opts.part.name().to_string(),
        images: rows.len(),
        synthetic: ds.is_synthetic(),
        noise: opts.noise,
        latent: if spec.is_vae() {
            if opts.sample {
                "z sampled".into()
            } else {
                "z = mu".into()
            }
        } else {
            "deterministic".into()
        },
        adapter: gpu.describe(),
        conditions,
        compression: Compression {
            latent_shape: dims.latent.iter().copied().filter(|&d| d > 1).collect(),
            latent_elements: lat,
            pixels: 128 * 128,
            element_ratio: (128 * 128) as f64 / lat as f64,
            bits_per_pixel_f32: 32.0 * lat as f64 / (128 * 128) as f64,
            bits_per_pixel_u8: 8.0 * lat as f64 / (128 * 128) as f64,
        },
    };
    if let Some(out) = &opts.out {
        // re-run the first batch so the grid shows real inputs and outputs
        batcher.set_batch(gpu, 0)?;
        prog.run(gpu)?;
        write_outputs(
            gpu,
            out,
            &results,
            &per,
            &batcher,
            &clean_g,
            noisy_g.as_ref(),
        )?;
    }
    Ok(results)
}

fn write_outputs(
    gpu: &Gpu,
    out: &Path,
    r: &EvalResults,
    per: &[Vec<ImageMetrics>],
    b: &Batcher,
    clean_g: &Graph,
    noisy_g: Option<&Graph>,
) -> Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output folder {}", out.display()))?;
    fsutil::write_atomic(
        &out.join("results.json"),
        serde_json::to_string_pretty(r)?.as_bytes(),
    )?;
    let mut rows = Vec::new();
    for (c, cond) in per.iter().enumerate() {
        for (i, m) in cond.iter().enumerate() {
            rows.push(vec![
                c.to_string(),
                i.to_string(),
                format!("{:.8}", m.mse),
                format!("{:.6}", m.psnr),
                format!("{:.6}", m.ssim),
                format!("{:.6}", m.ssim_gaussian),
            ]);
        }
    }
    report::table::write_csv(
        &out.join("per_image.csv"),
        &["condition", "image", "mse", "psnr", "ssim", "ssim_gaussian"],
        &rows,
    )?;
    let c = &per[per.len() - 1];
    let tag = if r.synthetic {
        " (synthetic faces)"
    } else {
        ""
    };
    report::plot::histogram(
        &out.join("hist_mse.png"),
        &format!("MSE{tag}"),
        &c.iter().map(|m| m.mse).collect::<Vec<_>>(),
        30,
    )?;
    report::plot::histogram(
        &out.join("hist_psnr.png"),
        &format!("PSNR dB{tag}"),
        &c.iter()
            .map(|m| m.psnr)
            .filter(|p| p.is_finite())
            .collect::<Vec<_>>(),
        30,
    )?;
    report::plot::histogram(
        &out.join("hist_ssim.png"),
        &format!("SSIM{tag}"),
        &c.iter().map(|m| m.ssim).collect::<Vec<_>>(),
        30,
    )?;
    let n = b.batch_size().min(b.len()).min(8);
    let px = 128 * 128;
    let read = |t: &crate::gpu::Tensor| -> Result<Vec<Vec<f32>>> {
        let v = gpu.read(t)?;
        Ok((0..n).map(|i| v[i * px..(i + 1) * px].to_vec()).collect())
    };
    let orig = read(&b.clean)?;
    let rec_clean = read(&clean_g.output)?;
    let mut grid: Vec<(&str, Vec<Vec<f32>>)> =
        vec![("original", orig), ("from clean input", rec_clean)];
    if let (Some(g), Some(noisy)) = (noisy_g, &b.noisy) {
        grid.push(("noisy input", read(noisy)?));
        grid.push(("from noisy input", read(&g.output)?));
    }
    let rows: Vec<(&str, Vec<&[f32]>)> = grid
        .iter()
        .map(|(l, v)| (*l, v.iter().map(|x| x.as_slice()).collect()))
        .collect();
    let caption = if r.synthetic {
        "SYNTHETIC faces: real results need real faces"
    } else {
        ""
    };
    report::grid::image_grid(&out.join("grid.png"), &rows, caption)
}

/// The seeds' table: rows MSE, PSNR, SSIM; columns mean, median, std; one block per condition.
pub fn markdown(r: &EvalResults) -> String {
    let mut s = format!(
        "{} epoch {} on the {} split ({} images{}), {}, adapter {}\n",
        r.model,
        r.epoch,
        r.split,
        r.images,
        if r.synthetic {
            ", SYNTHETIC faces: real results need real faces"
        } else {
            ""
        },
        r.latent,
        r.adapter
    );
    for c in &r.conditions {
        s += &format!("\n{}\n\n", c.name);
        s += &report::table::markdown(&["metric", "mean", "median", "std"], &c.summary.rows());
        s += &format!(
            "PSNR of the mean MSE: {:.3} dB\n",
            c.summary.psnr_of_mean_mse
        );
    }
    let k = &r.compression;
    s += &format!(
        "\ncompression: latent {:?} = {} values for {} pixels (ratio {:.2}); {:.3} bits/pixel as float32, {:.3} as 8-bit (not entropy coded)\n",
        k.latent_shape, k.latent_elements, k.pixels, k.element_ratio, k.bits_per_pixel_f32, k.bits_per_pixel_u8
    );
    s
}

/// `facegpu compare A.json B.json ...`: the mean of each metric per condition, side by side.
pub fn compare(paths: &[PathBuf]) -> Result<String> {
    let mut headers = vec!["run".to_string(), "condition".to_string()];
    headers.extend(["MSE", "PSNR dB", "SSIM", "SSIM (gaussian)"].map(String::from));
    let mut rows = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).with_context(|| {
            format!(
                "cannot read {}; pass results.json files written by `facegpu eval --out DIR`",
                p.display()
            )
        })?;
        let r: EvalResults = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a facegpu results.json", p.display()))?;
        for c in &r.conditions {
            rows.push(vec![
                format!("{} ({})", r.model, p.display()),
                c.name.clone(),
                format!("{:.6}", c.summary.mse.mean),
                format!("{:.3}", c.summary.psnr.mean),
                format!("{:.4}", c.summary.ssim.mean),
                format!("{:.4}", c.summary.ssim_gaussian.mean),
            ]);
        }
    }
    let h: Vec<&str> = headers.iter().map(|s| s.as_str()).collect();
    Ok(report::table::markdown(&h, &rows))
}
