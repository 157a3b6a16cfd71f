//! `facegpu metrics REF DIST [--json]`: MSE, PSNR, SSIM and Gaussian SSIM of distorted images
//! against their references, computed on the GPU in batches (ops::metrics), with per-pair rows
//! and a summary (mean, median, std of each metric).
//!
//! REF and DIST are two image files, or two folders: then every image under REF, in any
//! sub-folder, is paired with the file at the same relative path under DIST. Images are
//! what the dataset loader reads (any format the `image` crate decodes, recognised by content
//! or extension; hidden files are left out), turned to 8-bit gray exactly as the dataset does
//! it ([`crate::data::decode::to_gray`]: PIL's `convert('L')` weights on colour images), kept at
//! their own size (no crop or resize) and scaled to [0, 1] (data_range 1).

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

use crate::gpu::Gpu;
use crate::ops::metrics::{self, ImageMetrics, Summary};

/// Images per GPU batch: 256 images of 128x128 are 16 MiB per side.
pub const DEFAULT_BATCH: usize = 256;

/// One reference/distorted pair and its metrics.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PairRow {
    /// The pair's name: its path relative to the folders, or the reference's file name.
    pub name: String,
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

/// Whether the loader takes `p` for an image: an extension the `image` crate knows, or
/// content that starts with an image signature (as the dataset loader decides).
fn is_image(p: &Path) -> bool {
    let known_ext = p
        .extension()
        .and_then(|e| e.to_str())
        .and_then(image::ImageFormat::from_extension)
        .is_some();
    known_ext || {
        use std::io::Read as _;
        let mut head = [0u8; 64];
        std::fs::File::open(p)
            .and_then(|mut f| f.read(&mut head))
            .is_ok_and(|n| n > 0 && image::guess_format(&head[..n]).is_ok())
    }
}

/// Relative paths ('/'-separated, sorted) of the images under `dir`, in sub-folders too.
fn images_under(dir: &Path) -> Result<Vec<String>> {
    std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot list the folder {}: check the path and its permissions",
            dir.display()
        )
    })?;
    let walk = crate::data::scan::walk(dir)?;
    Ok(walk
        .files
        .into_iter()
        .filter(|f| is_image(&f.path))
        .map(|f| f.rel)
        .collect())
}

/// The (reference, distorted) file pairs for two files, or two folders of images at the same
/// relative paths (sorted by path).
pub fn pair_paths(reference: &Path, distorted: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    Ok(pairs(reference, distorted)?
        .into_iter()
        .map(|(_, r, d)| (r, d))
        .collect())
}

/// [`pair_paths`] with each pair's name: the relative path in folder mode, else the file name.
fn pairs(reference: &Path, distorted: &Path) -> Result<Vec<(String, PathBuf, PathBuf)>> {
    match (reference.is_dir(), distorted.is_dir()) {
        (false, false) => {
            for p in [reference, distorted] {
                ensure!(
                    p.is_file(),
                    "{}: no such file or folder; give two image files or two folders of images",
                    p.display()
                );
            }
            let name = reference
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| reference.display().to_string());
            Ok(vec![(
                name,
                reference.to_path_buf(),
                distorted.to_path_buf(),
            )])
        }
        (true, true) => {
            let names = images_under(reference)?;
            ensure!(
                !names.is_empty(),
                "{}: no images in this folder or its sub-folders (facegpu reads PNG, JPEG, PGM/PPM, BMP, TIFF, WebP, GIF, TGA and more); \
                 give two image files or two folders of images",
                reference.display()
            );
            let missing: Vec<_> = names
                .iter()
                .filter(|n| !distorted.join(n).is_file())
                .cloned()
                .collect();
            if !missing.is_empty() {
                bail!(
                    "{} has no file at {} of the {} image path{} of {}: {}{}; both folders must hold the same relative paths \
                     (file names with their extensions, sub-folders included)",
                    distorted.display(),
                    missing.len(),
                    names.len(),
                    if names.len() == 1 { "" } else { "s" },
                    reference.display(),
                    missing[..missing.len().min(5)].join(", "),
                    if missing.len() > 5 {
                        format!(" and {} more", missing.len() - 5)
                    } else {
                        String::new()
                    }
                );
            }
            Ok(names
                .into_iter()
                .map(|n| {
                    let (r, d) = (reference.join(&n), distorted.join(&n));
                    (n, r, d)
                })
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

/// Decodes an image to 8-bit gray as the dataset loader does ([`crate::data::decode::to_gray`]:
/// PIL's `convert('L')` on colour) and scales it to [0, 1]: (pixels, height, width).
pub fn load_gray(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let decoded = image::ImageReader::open(path)
        .with_context(|| format!("{}: cannot open this file", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("{}: cannot read this file", path.display()))?
        .decode()
        .with_context(|| {
            format!(
                "{}: cannot decode this image (damaged, or not an image?); remove it or give another file",
                path.display()
            )
        })?;
    let img = crate::data::decode::to_gray(&decoded);
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
    let paths = pairs(reference, distorted)?;
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
    for (name, rp, dp) in &paths {
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
            name: name.clone(),
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
            let m = &p.metrics;
            s += &format!(
                "{:<40} {:>12.6e} {:>9.3} {:>8.5} {:>8.5}\n",
                p.name, m.mse, m.psnr, m.ssim, m.ssim_gaussian
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
