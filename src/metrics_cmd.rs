//! `facegpu metrics REF DIST [--json]`: MSE, PSNR, SSIM and Gaussian SSIM of distorted images
//! against their references, computed on the GPU in batches (ops::metrics), with per-pair rows
//! and a summary (mean, median, std of each metric).
//!
//! REF and DIST are two image files, or two folders: then every image in REF is paired with the
//! same-named file in DIST. Images are decoded to 8-bit gray with the image crate's `to_luma8`
//! (Rec. 709 weights on colour inputs; PIL's `convert("L")` uses Rec. 601 weights, so colour
//! inputs may differ from a PIL pipeline by a gray level) and scaled to [0, 1] (data_range 1).

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

use crate::gpu::Gpu;
use crate::ops::metrics::{self, ImageMetrics, Summary};

/// Images per GPU batch: 256 images of 128x128 are 16 MiB per side.
pub const DEFAULT_BATCH: usize = 256;

/// One reference/distorted pair and its metrics.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PairRow {
    pub reference: String,
    pub distorted: String,
    pub width: usize,
    pub height: usize,
    #[serde(flatten)]
    pub metrics: ImageMetrics,
}

/// Everything `facegpu metrics` prints (as text or, with --json, serialized).
#[derive(Clone, Debug, serde::Serialize)]
pub struct MetricsReport {
    pub adapter: String,
    pub pairs: Vec<PairRow>,
    pub summary: Summary,
}

const EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "bmp", "pgm", "ppm", "tif", "tiff", "webp",
];

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The (reference, distorted) file pairs for two files or two folders of same-named images
/// (sorted by name).
pub fn pair_paths(reference: &Path, distorted: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    match (reference.is_dir(), distorted.is_dir()) {
        (false, false) => {
            for p in [reference, distorted] {
                ensure!(p.is_file(), "{}: no such file or folder", p.display());
            }
            Ok(vec![(reference.to_path_buf(), distorted.to_path_buf())])
        }
        (true, true) => {
            let mut names: Vec<_> = std::fs::read_dir(reference)
                .with_context(|| format!("reading the folder {}", reference.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_image(p))
                .filter_map(|p| p.file_name().map(|n| n.to_owned()))
                .collect();
            names.sort();
            ensure!(
                !names.is_empty(),
                "{}: no images ({}) in this folder",
                reference.display(),
                EXTENSIONS.join(", ")
            );
            let missing: Vec<_> = names
                .iter()
                .filter(|n| !distorted.join(n).is_file())
                .map(|n| n.to_string_lossy().into_owned())
                .collect();
            if !missing.is_empty() {
                bail!(
                    "{} has no image named like {} of {}: {}{}; both folders must hold the same file names",
                    distorted.display(),
                    missing.len(),
                    reference.display(),
                    missing[..missing.len().min(5)].join(", "),
                    if missing.len() > 5 { ", ..." } else { "" }
                );
            }
            Ok(names
                .iter()
                .map(|n| (reference.join(n), distorted.join(n)))
                .collect())
        }
        _ => bail!(
            "give two image files or two folders; {} is a {} but {} is a {}",
            reference.display(),
            if reference.is_dir() { "folder" } else { "file" },
            distorted.display(),
            if distorted.is_dir() { "folder" } else { "file" }
        ),
    }
}

/// Decodes an image to 8-bit gray and scales it to [0, 1]: (pixels, height, width).
pub fn load_gray(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let img = image::open(path)
        .with_context(|| format!("{}: cannot decode this image", path.display()))?
        .to_luma8();
    let (w, h) = img.dimensions();
    Ok((
        img.as_raw().iter().map(|&v| v as f32 / 255.0).collect(),
        h as usize,
        w as usize,
    ))
}

/// Metrics of every pair, batched on the GPU: consecutive pairs of one size share a batch of
/// at most `batch` images; each batch is read back once.
pub fn run(gpu: &Gpu, reference: &Path, distorted: &Path, batch: usize) -> Result<MetricsReport> {
    ensure!(batch > 0, "metrics: the batch size must be at least 1");
    let paths = pair_paths(reference, distorted)?;
    let mut pairs = Vec::with_capacity(paths.len());
    // pending batch: its pairs, size and pixels
    let mut pend: Vec<PairRow> = Vec::new();
    let (mut ra, mut da) = (Vec::new(), Vec::new());
    let flush = |pend: &mut Vec<PairRow>,
                 ra: &mut Vec<f32>,
                 da: &mut Vec<f32>,
                 pairs: &mut Vec<PairRow>|
     -> Result<()> {
        if let Some(first) = pend.first() {
            let (h, w) = (first.height, first.width);
            let m = metrics::compute(gpu, ra, da, pend.len(), h, w)?;
            for (mut row, m) in pend.drain(..).zip(m) {
                row.metrics = m;
                pairs.push(row);
            }
            ra.clear();
            da.clear();
        }
        Ok(())
    };
    for (rp, dp) in &paths {
        let (r, h, w) = load_gray(rp)?;
        let (d, dh, dw) = load_gray(dp)?;
        ensure!(
            (h, w) == (dh, dw),
            "{} is {w}x{h} pixels but {} is {dw}x{dh}; a pair must have the same size",
            rp.display(),
            dp.display()
        );
        ensure!(
            h >= metrics::MIN_SIDE && w >= metrics::MIN_SIDE,
            "{} is {w}x{h} pixels; SSIM needs at least {}x{}",
            rp.display(),
            metrics::MIN_SIDE,
            metrics::MIN_SIDE
        );
        if pend.len() == batch || pend.first().is_some_and(|f| (f.height, f.width) != (h, w)) {
            flush(&mut pend, &mut ra, &mut da, &mut pairs)?;
        }
        ra.extend_from_slice(&r);
        da.extend_from_slice(&d);
        pend.push(PairRow {
            reference: rp.display().to_string(),
            distorted: dp.display().to_string(),
            width: w,
            height: h,
            metrics: ImageMetrics {
                mse: f64::NAN,
                psnr: f64::NAN,
                ssim: f64::NAN,
                ssim_gaussian: f64::NAN,
            },
        });
    }
    flush(&mut pend, &mut ra, &mut da, &mut pairs)?;
    let all: Vec<ImageMetrics> = pairs.iter().map(|p| p.metrics).collect();
    Ok(MetricsReport {
        adapter: gpu.describe(),
        summary: metrics::summarize(&all),
        pairs,
    })
}

/// The report as a plain-text table plus summary lines.
pub fn format_text(rep: &MetricsReport) -> String {
    let mut s = String::new();
    if rep.pairs.len() > 1 {
        s += &format!(
            "{:<40} {:>12} {:>9} {:>8} {:>8}\n",
            "image", "mse", "psnr_db", "ssim", "ssim_g"
        );
        for p in &rep.pairs {
            let name = Path::new(&p.reference)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.reference.clone());
            let m = &p.metrics;
            s += &format!(
                "{:<40} {:>12.6e} {:>9.3} {:>8.5} {:>8.5}\n",
                name, m.mse, m.psnr, m.ssim, m.ssim_gaussian
            );
        }
    }
    let sm = &rep.summary;
    s += &format!(
        "{} pair(s) ({} identical) on {}\n",
        sm.count, sm.identical, rep.adapter
    );
    for (name, st) in [
        ("mse", &sm.mse),
        ("psnr_db", &sm.psnr),
        ("ssim", &sm.ssim),
        ("ssim_gaussian", &sm.ssim_gaussian),
    ] {
        s += &format!(
            "{name:<14} mean {:.6} median {:.6} std {:.6}\n",
            st.mean, st.median, st.std
        );
    }
    s += &format!("psnr of the mean mse: {:.3} dB\n", sm.psnr_of_mean_mse);
    s
}
