//! `facegpu eval`: a checkpoint on its own test split (or any split), clean and noisy, with
//! the fused GPU metrics, read back once per batch. Reports: a markdown table in the seeds'
//! layout (with noise, one table with a column per condition), results.json, per-image CSV,
//! histograms per condition, a grid, and the compression figures.
//!
//! The dataset is the checkpoint's own (the folder training recorded, or the same synthetic
//! faces) unless `--dataset` names another spelling or copy of it; either way the split made
//! now must be the split training made ([`SplitInfo::differences`]: same names, same parts),
//! else eval refuses and names the files added or removed.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::data::batcher::{Batcher, BatcherConfig, NoiseSpec};
use crate::data::split::{Part, Split, SplitFractions, SplitInfo};
use crate::data::{self, Dataset};
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

/// The conditions eval scores, in order: (key in results.json, per_image.csv and the histogram
/// file names; description). The two noisy ones exist only with `--noise`.
pub const CONDITIONS: [(&str, &str); 3] = [
    ("clean", "clean input vs original"),
    (
        "noisy_vs_input",
        "noisy input: output vs noisy input (as the seeds reported)",
    ),
    ("noisy_vs_clean", "noisy input: output vs clean original"),
];

/// One evaluated condition: what went in, what the output is compared with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Condition {
    /// "clean", "noisy_vs_input" or "noisy_vs_clean" ([`CONDITIONS`]); empty in results.json
    /// files written before the key existed.
    #[serde(default)]
    pub key: String,
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

/// What `eval` prints with --json and writes to results.json. Fields added after the first
/// version have defaults, so `compare` still reads older files.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalResults {
    pub model: String,
    pub checkpoint: String,
    pub epoch: usize,
    /// The part evaluated: "train", "val" or "test".
    pub split: String,
    /// Faces evaluated (the part's size).
    pub images: usize,
    pub synthetic: bool,
    /// The dataset folder as an absolute path; None for the synthetic faces.
    #[serde(default)]
    pub dataset: Option<String>,
    /// Where the faces came from, in words ("folder /data/lfw" or "SYNTHETIC faces (...)").
    #[serde(default)]
    pub source: String,
    /// Sigma of the Gaussian noise on the inputs; None: clean inputs only.
    #[serde(alias = "noise")]
    pub sigma: Option<f32>,
    /// Noisy inputs clipped to [0, 1].
    #[serde(default = "yes")]
    pub clip: bool,
    /// Seed of the evaluation noise (and of z with --sample); None in older files.
    #[serde(default)]
    pub seed: Option<u64>,
    pub latent: String,
    pub adapter: String,
    pub conditions: Vec<Condition>,
    pub compression: Compression,
}

fn yes() -> bool {
    true
}

/// The training options as checkpoints record them: the dataset folder as an absolute path,
/// so that `eval` without --dataset finds it from any working directory (a relative path is
/// relative to where training ran). Called by `train` when it writes a checkpoint.
pub fn recorded_options(opts: &TrainOptions) -> Result<serde_json::Value> {
    let mut o = opts.clone();
    o.dataset = o.dataset.map(|d| std::fs::canonicalize(&d).unwrap_or(d));
    Ok(serde_json::to_value(&o)?)
}

/// Canonical form of a folder path where it exists, else the path as given.
fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The folder training ran in, inferred from where its checkpoint lies: a checkpoint written
/// to `--out runs/x` (relative) lies in `<training folder>/runs/x/`. None when `out` is
/// absolute or does not end the checkpoint's folder.
fn training_folder(checkpoint: &Path, out: &Path) -> Option<PathBuf> {
    if out.is_absolute() {
        return None;
    }
    let mut parts = Vec::new();
    for c in out.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(n) => parts.push(n),
            _ => return None,
        }
    }
    let mut dir = std::fs::canonicalize(checkpoint).ok()?;
    dir.pop(); // the file
    for n in parts.iter().rev() {
        if dir.file_name() != Some(n) {
            return None;
        }
        dir.pop();
    }
    Some(dir)
}

/// The folder the recorded dataset path `p` names: as it is (absolute, or relative to the
/// working directory), else relative to the folder training ran in. None when neither exists.
fn find_recorded_folder(p: &Path, checkpoint: &Path, out: &Path) -> Option<PathBuf> {
    if p.is_dir() {
        return Some(p.to_path_buf());
    }
    if p.is_absolute() {
        return None;
    }
    let d = training_folder(checkpoint, out)?.join(p);
    d.is_dir().then_some(d)
}

/// The dataset folder to evaluate on (None: the synthetic faces).
fn dataset_folder(opts: &EvalOptions, topts: &TrainOptions) -> Result<Option<PathBuf>> {
    if let Some(d) = &opts.dataset {
        return Ok(Some(d.clone()));
    }
    let Some(p) = &topts.dataset else {
        return Ok(None);
    };
    match find_recorded_folder(p, &opts.checkpoint, &topts.out) {
        Some(d) => Ok(Some(d)),
        None => bail!(
            "{} was trained on the folder {}{}, which is not there{}: pass --dataset DIR with that \
             folder (moved or copied is fine: eval checks that it holds the same files)",
            opts.checkpoint.display(),
            p.display(),
            if p.is_absolute() {
                ""
            } else {
                " (a path relative to where training ran)"
            },
            if p.is_absolute() {
                String::new()
            } else {
                format!(
                    " from {}",
                    std::env::current_dir()
                        .map(|d| d.display().to_string())
                        .unwrap_or_else(|_| "this folder".into())
                )
            }
        ),
    }
}

/// Up to `max` names, then "and N more".
fn few(names: &[String], max: usize) -> String {
    let mut s = names[..names.len().min(max)].join(", ");
    if names.len() > max {
        s += &format!(" and {} more", names.len() - max);
    }
    s
}

/// The names the checkpoint's run split, from the `split.json` training wrote next to it (when
/// it is there and belongs to the same split).
fn trained_names(checkpoint: &Path, saved: &SplitInfo) -> Option<HashSet<String>> {
    #[derive(Deserialize)]
    struct Lists {
        info: SplitInfo,
        train: Vec<String>,
        val: Vec<String>,
        test: Vec<String>,
    }
    let path = checkpoint.parent()?.join("split.json");
    let l: Lists = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    if l.info.paths_hash != saved.paths_hash {
        return None;
    }
    // folder runs list root.join(name); synthetic runs list the names themselves
    let root = l.info.source.strip_prefix("folder ").map(PathBuf::from);
    let mut names = HashSet::new();
    for p in l.train.iter().chain(&l.val).chain(&l.test) {
        let name = match &root {
            Some(r) if !l.info.synthetic => Path::new(p)
                .strip_prefix(r)
                .ok()?
                .to_string_lossy()
                .into_owned(),
            _ => p.clone(),
        };
        names.insert(name);
    }
    Some(names)
}

/// The error for a dataset whose split is not the checkpoint's: what differs, which files were
/// added or removed where that is known, and what to do.
fn split_mismatch(
    opts: &EvalOptions,
    topts: &TrainOptions,
    saved: &SplitInfo,
    now: &SplitInfo,
    ds: &Dataset,
    diffs: &[String],
    folder: Option<&Path>,
) -> anyhow::Error {
    let ck = opts.checkpoint.display();
    let mut msg = format!(
        "the dataset ({}) does not match the split {ck} was trained with: {}",
        now.source,
        diffs.join("; ")
    );
    if saved.synthetic != now.synthetic {
        msg += &if saved.synthetic {
            "\nit was trained on the synthetic faces: evaluate without --dataset".to_string()
        } else {
            format!(
                "\nit was trained on {}: pass --dataset with that folder",
                saved.source
            )
        };
        return anyhow::anyhow!(msg);
    }
    match trained_names(&opts.checkpoint, saved) {
        Some(then) => {
            let now_names: HashSet<&str> = ds.names.iter().map(String::as_str).collect();
            let mut added: Vec<String> = ds
                .names
                .iter()
                .filter(|n| !then.contains(n.as_str()))
                .cloned()
                .collect();
            let mut removed: Vec<String> = then
                .iter()
                .filter(|n| !now_names.contains(n.as_str()))
                .cloned()
                .collect();
            added.sort();
            removed.sort();
            let mut parts = Vec::new();
            if !added.is_empty() {
                parts.push(format!(
                    "{} file{} not in the training run's split ({})",
                    added.len(),
                    if added.len() == 1 { "" } else { "s" },
                    few(&added, 5)
                ));
            }
            if !removed.is_empty() {
                parts.push(format!(
                    "{} file{} of the training run's split missing ({})",
                    removed.len(),
                    if removed.len() == 1 { "" } else { "s" },
                    few(&removed, 5)
                ));
            }
            if !parts.is_empty() {
                msg += &format!("\nnow: {}", parts.join("; "));
            }
        }
        None => {
            msg += &format!(
                "\n(which files changed is not known: there is no split.json of this run next to {ck})"
            );
        }
    }
    // the same folder (however spelled) as the one training recorded?
    let recorded = topts
        .dataset
        .as_deref()
        .and_then(|p| find_recorded_folder(p, &opts.checkpoint, &topts.out))
        .map(|p| canonical(&p));
    let same = match (folder, &recorded) {
        (Some(f), Some(r)) => canonical(f) == *r,
        _ => false,
    };
    if same {
        msg += "\nthis is the folder it was trained on, changed since: restore those files, or retrain on the folder as it is \
                (evaluating anyway could score faces the model was trained on)";
    } else {
        msg += &format!(
            "\npass --dataset with the folder it was trained on{} as it was then, or retrain \
             (evaluating anyway could score faces the model was trained on)",
            topts
                .dataset
                .as_ref()
                .map(|p| format!(" ({})", p.display()))
                .unwrap_or_default()
        );
    }
    anyhow::anyhow!(msg)
}

/// Per-image metrics with each image's name (for per_image.csv and the histograms).
struct PerImage {
    /// conditions x images
    metrics: Vec<Vec<ImageMetrics>>,
    names: Vec<String>,
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
    // a bad --out is found now, not after the evaluation
    if let Some(out) = &opts.out {
        fsutil::ensure_output_dir(out, "--out")?;
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
    let folder = dataset_folder(opts, &topts)?;
    let mut dopts = topts.data_options();
    dopts.dataset = folder.clone();
    let ds = data::load(&dopts)?;
    let split = Split::new(
        &ds,
        SplitFractions::new(topts.split[0], topts.split[1], topts.split[2])?,
        topts.seed,
    )?;
    if !ck.meta.split.is_null() {
        let saved: SplitInfo = serde_json::from_value(ck.meta.split.clone()).with_context(|| {
            format!(
                "{}: the split stored in this checkpoint cannot be read (written by another facegpu version?); retrain to evaluate it",
                opts.checkpoint.display()
            )
        })?;
        // the split's own comparison: names and parts, not how the folder's path is spelled
        let diffs = saved.differences(&split.info);
        if !diffs.is_empty() {
            return Err(split_mismatch(
                opts,
                &topts,
                &saved,
                &split.info,
                &ds,
                &diffs,
                folder.as_deref(),
            ));
        }
    }
    let rows = split.part(opts.part);
    if rows.is_empty() {
        bail!("the {} split is empty", opts.part.name());
    }
    let seed = opts.seed.unwrap_or(topts.seed);
    let batch = opts.batch.min(rows.len());
    spec.check_batch(gpu, batch)?;
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
    let step = StepState::new(gpu, StepValues::first(0.0));
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
    let nconds = if noisy_g.is_some() { 3 } else { 1 };
    let outs: Vec<_> = (0..nconds).map(|_| gpu.zeros(&[batch, 4])).collect();
    // every condition's [batch, 4] rows land in one mappable buffer, copied there by the
    // program itself: one submit and one wait per batch, no staging buffer per read
    let cond_bytes = (batch * 4 * 4) as u64;
    let readback = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("eval metrics readback"),
        size: cond_bytes * nconds as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
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
        for (c, o) in outs.iter().enumerate() {
            rec.copy(&o.buf, 0, &readback, c as u64 * cond_bytes, cond_bytes);
        }
        rec.finish()?
    };
    let mut per = PerImage {
        metrics: vec![Vec::with_capacity(rows.len()); nconds],
        names: Vec::with_capacity(rows.len()),
    };
    batcher.begin_epoch(gpu, 0)?;
    for k in 0..batcher.batches() {
        let valid = batcher.set_batch(gpu, k)?;
        prog.submit(gpu);
        let v = read_mapped(gpu, &readback)?;
        for (c, m) in per.metrics.iter_mut().enumerate() {
            let at = c * batch * 4;
            m.extend(metrics::from_rows(&v[at..at + valid * 4]));
        }
        per.names.extend(
            batcher
                .batch_ids(k)
                .into_iter()
                .map(|i| ds.names[i].clone()),
        );
    }
    let conditions: Vec<Condition> = per
        .metrics
        .iter()
        .zip(CONDITIONS)
        .map(|(v, (key, name))| Condition {
            key: key.to_string(),
            name: name.to_string(),
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
        dataset: folder
            .as_deref()
            .map(|f| canonical(f).display().to_string()),
        source: match &folder {
            Some(f) => format!("folder {}", canonical(f).display()),
            None => ds.source.describe(),
        },
        sigma: opts.noise,
        clip: opts.clip,
        seed: Some(seed),
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

/// Maps `buf` (MAP_READ, its copies submitted), waits, and returns its floats.
fn read_mapped(gpu: &Gpu, buf: &wgpu::Buffer) -> Result<Vec<f32>> {
    let (tx, rx) = std::sync::mpsc::channel();
    buf.map_async(wgpu::MapMode::Read, .., move |r| {
        tx.send(r).ok();
    });
    gpu.wait()?;
    match rx.recv() {
        Ok(Ok(())) => {}
        _ => bail!("reading the metrics back from the GPU failed"),
    }
    let v = buf
        .get_mapped_range(..)?
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    buf.unmap();
    Ok(v)
}

/// One metric of an image pair.
type Metric = fn(&ImageMetrics) -> f64;

/// Axis label and value of each histogram: (file stem, axis label, value).
const HISTOGRAMS: [(&str, &str, Metric); 3] = [
    ("mse", "MSE", |m| m.mse),
    ("psnr", "PSNR (dB)", |m| m.psnr),
    ("ssim", "SSIM", |m| m.ssim),
];

/// The histogram files eval writes for the condition `key`.
pub fn histogram_files(key: &str) -> Vec<String> {
    HISTOGRAMS
        .iter()
        .map(|(stem, _, _)| format!("hist_{stem}_{key}.png"))
        .collect()
}

fn write_outputs(
    gpu: &Gpu,
    out: &Path,
    r: &EvalResults,
    per: &PerImage,
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
    for (cond, ms) in r.conditions.iter().zip(&per.metrics) {
        for (name, m) in per.names.iter().zip(ms) {
            rows.push(vec![
                cond.key.clone(),
                name.clone(),
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
    let tag = if r.synthetic { ", SYNTHETIC faces" } else { "" };
    let noise = r.sigma.map(|s| format!(", sigma {s}")).unwrap_or_default();
    for (cond, ms) in r.conditions.iter().zip(&per.metrics) {
        for ((stem, label, f), file) in HISTOGRAMS.iter().zip(histogram_files(&cond.key)) {
            let noise = if cond.key == "clean" { "" } else { &noise };
            report::plot::histogram_labeled(
                &out.join(file),
                &format!(
                    "{label} per image: {}{noise} ({} {} split{tag})",
                    cond.name, r.model, r.split
                ),
                label,
                &ms.iter().map(f).collect::<Vec<_>>(),
                30,
            )
            .with_context(|| format!("writing the {stem} histogram in {}", out.display()))?;
        }
    }
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

/// "Gaussian sigma 0.1, clipped to [0, 1]" or "none".
fn noise_words(r: &EvalResults) -> String {
    match r.sigma {
        Some(s) => format!(
            "Gaussian sigma {s}, {}",
            if r.clip {
                "clipped to [0, 1]"
            } else {
                "not clipped"
            }
        ),
        None => "none (clean inputs only)".into(),
    }
}

/// The report's header: what was evaluated, on what, with which noise.
fn header(r: &EvalResults) -> String {
    let mut s = format!(
        "{} epoch {} ({}), {}, adapter {}\n",
        r.model, r.epoch, r.checkpoint, r.latent, r.adapter
    );
    s += &format!(
        "data: the {} split ({} images) of {}\n",
        r.split,
        r.images,
        if r.source.is_empty() {
            r.dataset.as_deref().unwrap_or("?")
        } else {
            &r.source
        }
    );
    if r.synthetic {
        s += "SYNTHETIC faces: real results need real faces\n";
    }
    s += &format!(
        "noise: {}; seed {}\n",
        noise_words(r),
        r.seed.map_or("?".to_string(), |v| v.to_string())
    );
    s
}

/// The report as printed: with no noise, the seeds' table (rows MSE, PSNR, SSIM, Gaussian SSIM;
/// columns mean, median, std); with noise, one table whose rows are metric and statistic and
/// whose columns are the three conditions, side by side.
pub fn markdown(r: &EvalResults) -> String {
    let mut s = header(r);
    if r.conditions.len() > 1 {
        s += &format!(
            "\nclean: the output from the clean face vs that face; noisy: the output from the face with noise ({}) \
             vs the noisy input (as the seeds reported) and vs the clean face\n\n",
            noise_words(r)
        );
        s += &side_by_side(r);
        s += &format!(
            "PSNR of the mean MSE: {}\n",
            r.conditions
                .iter()
                .map(|c| format!("{} {:.3} dB", short_name(c), c.summary.psnr_of_mean_mse))
                .collect::<Vec<_>>()
                .join("; ")
        );
    } else {
        for c in &r.conditions {
            s += &format!("\n{}\n\n", c.name);
            s += &report::table::markdown(&["metric", "mean", "median", "std"], &c.summary.rows());
            s += &format!(
                "PSNR of the mean MSE: {:.3} dB\n",
                c.summary.psnr_of_mean_mse
            );
        }
    }
    let k = &r.compression;
    s += &format!(
        "\ncompression: latent {:?} = {} values for {} pixels (ratio {:.2}); {:.3} bits/pixel as float32, {:.3} as 8-bit (not entropy coded)\n",
        k.latent_shape, k.latent_elements, k.pixels, k.element_ratio, k.bits_per_pixel_f32, k.bits_per_pixel_u8
    );
    s
}

/// A condition's column heading: "clean", "noisy: vs noisy input", "noisy: vs clean face"
/// (found by name in results.json files written before the key existed).
fn short_name(c: &Condition) -> String {
    let key = if c.key.is_empty() {
        CONDITIONS
            .iter()
            .find(|(_, name)| *name == c.name)
            .map_or("", |(k, _)| k)
    } else {
        c.key.as_str()
    };
    match key {
        "clean" => "clean".into(),
        "noisy_vs_input" => "noisy: vs noisy input".into(),
        "noisy_vs_clean" => "noisy: vs clean face".into(),
        _ => c.name.clone(),
    }
}

/// One table, rows (metric, statistic), a column per condition.
fn side_by_side(r: &EvalResults) -> String {
    let mut headers = vec!["metric".to_string(), "statistic".to_string()];
    headers.extend(r.conditions.iter().map(short_name));
    let per: Vec<Vec<Vec<String>>> = r.conditions.iter().map(|c| c.summary.rows()).collect();
    let mut rows = Vec::new();
    for (m, metric_rows) in per[0].iter().enumerate() {
        for (k, stat) in ["mean", "median", "std"].iter().enumerate() {
            let mut row = vec![
                if k == 0 {
                    metric_rows[0].clone()
                } else {
                    String::new()
                },
                stat.to_string(),
            ];
            row.extend(per.iter().map(|c| c[m][k + 1].clone()));
            rows.push(row);
        }
    }
    let h: Vec<&str> = headers.iter().map(String::as_str).collect();
    report::table::markdown(&h, &rows)
}

/// `facegpu compare A.json B.json ...`: per run and condition, the noise sigma, the mean of
/// each metric and the PSNR of the mean MSE, side by side; synthetic runs are marked.
pub fn compare(paths: &[PathBuf]) -> Result<String> {
    let headers = [
        "run",
        "data",
        "condition",
        "sigma",
        "MSE",
        "PSNR dB",
        "PSNR of mean MSE dB",
        "SSIM",
        "SSIM (gaussian)",
    ];
    let mut rows = Vec::new();
    let mut synthetic = false;
    for p in paths {
        let text = std::fs::read_to_string(p).with_context(|| {
            format!(
                "cannot read {}; pass results.json files written by `facegpu eval --out DIR`",
                p.display()
            )
        })?;
        let r: EvalResults = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a facegpu results.json (write one with `facegpu eval --out DIR`)",
                p.display()
            )
        })?;
        synthetic |= r.synthetic;
        // "lfw test (1448)", "SYNTHETIC test (16)"
        let folder = r
            .dataset
            .as_deref()
            .and_then(|d| Path::new(d).file_name())
            .map(|n| format!("{} ", n.to_string_lossy()))
            .unwrap_or_default();
        let data = if r.synthetic {
            format!("SYNTHETIC {} ({})", r.split, r.images)
        } else {
            format!("{folder}{} ({})", r.split, r.images)
        };
        for c in &r.conditions {
            let noisy =
                c.key.starts_with("noisy") || (c.key.is_empty() && c.name.contains("noisy"));
            rows.push(vec![
                format!("{} ({})", r.model, p.display()),
                data.clone(),
                short_name(c),
                match (noisy, r.sigma) {
                    (true, Some(s)) => format!("{s}"),
                    (true, None) => "?".into(),
                    (false, _) => "0".into(),
                },
                format!("{:.6}", c.summary.mse.mean),
                format!("{:.3}", c.summary.psnr.mean),
                format!("{:.3}", c.summary.psnr_of_mean_mse),
                format!("{:.4}", c.summary.ssim.mean),
                format!("{:.4}", c.summary.ssim_gaussian.mean),
            ]);
        }
    }
    let mut s = report::table::markdown(&headers, &rows);
    s += "MSE, PSNR and SSIM: means over the images; sigma: the noise on the inputs (0: clean)\n";
    if synthetic {
        s += "SYNTHETIC: scored on synthetic faces; real results need real faces\n";
    }
    Ok(s)
}
