//! `facegpu data`: what a dataset holds (count, formats, sizes, skipped files and why, split
//! sizes) and a PNG grid of sample faces. Also the PNG writers the data pipeline shares.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::dataset::{CacheState, SYNTHETIC_BANNER};
use super::split::{epoch_order, Split, SplitFractions, SplitInfo};
use super::{counts_line, decode, load, DataOptions, Skipped, SIDE};

/// Writes 8-bit gray pixels as a PNG with a tEXt "Comment" (says where the image came from).
pub fn write_png_gray(path: &Path, px: &[u8], w: u32, h: u32, comment: &str) -> Result<()> {
    let f =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    if !comment.is_empty() {
        enc.add_text_chunk("Comment".into(), comment.into())?;
    }
    let mut wr = enc
        .write_header()
        .with_context(|| format!("writing {}", path.display()))?;
    wr.write_image_data(px)
        .with_context(|| format!("writing {}", path.display()))?;
    wr.finish()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// 5x7 glyphs (rows top to bottom, bit 4 = leftmost) for captions burnt into grids.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        'A' => [14, 17, 17, 31, 17, 17, 17],
        'B' => [30, 17, 17, 30, 17, 17, 30],
        'C' => [14, 17, 16, 16, 16, 17, 14],
        'D' => [30, 17, 17, 17, 17, 17, 30],
        'E' => [31, 16, 16, 30, 16, 16, 31],
        'F' => [31, 16, 16, 30, 16, 16, 16],
        'G' => [14, 17, 16, 23, 17, 17, 15],
        'H' => [17, 17, 17, 31, 17, 17, 17],
        'I' => [14, 4, 4, 4, 4, 4, 14],
        'J' => [7, 2, 2, 2, 2, 18, 12],
        'K' => [17, 18, 20, 24, 20, 18, 17],
        'L' => [16, 16, 16, 16, 16, 16, 31],
        'M' => [17, 27, 21, 21, 17, 17, 17],
        'N' => [17, 17, 25, 21, 19, 17, 17],
        'O' => [14, 17, 17, 17, 17, 17, 14],
        'P' => [30, 17, 17, 30, 16, 16, 16],
        'Q' => [14, 17, 17, 17, 21, 18, 13],
        'R' => [30, 17, 17, 30, 20, 18, 17],
        'S' => [15, 16, 16, 14, 1, 1, 30],
        'T' => [31, 4, 4, 4, 4, 4, 4],
        'U' => [17, 17, 17, 17, 17, 17, 14],
        'V' => [17, 17, 17, 17, 17, 10, 4],
        'W' => [17, 17, 17, 21, 21, 21, 10],
        'X' => [17, 17, 10, 4, 10, 17, 17],
        'Y' => [17, 17, 10, 4, 4, 4, 4],
        'Z' => [31, 1, 2, 4, 8, 16, 31],
        '0' => [14, 17, 19, 21, 25, 17, 14],
        '1' => [4, 12, 4, 4, 4, 4, 14],
        '2' => [14, 17, 1, 2, 4, 8, 31],
        '3' => [31, 2, 4, 2, 1, 17, 14],
        '4' => [2, 6, 10, 18, 31, 2, 2],
        '5' => [31, 16, 30, 1, 1, 17, 14],
        '6' => [6, 8, 16, 30, 17, 17, 14],
        '7' => [31, 1, 2, 4, 8, 8, 8],
        '8' => [14, 17, 17, 14, 17, 17, 14],
        '9' => [14, 17, 17, 15, 1, 2, 12],
        '-' => [0, 0, 0, 31, 0, 0, 0],
        '.' => [0, 0, 0, 0, 0, 12, 12],
        ',' => [0, 0, 0, 0, 12, 4, 8],
        ':' => [0, 12, 12, 0, 12, 12, 0],
        '(' => [2, 4, 8, 8, 8, 4, 2],
        ')' => [8, 4, 2, 2, 2, 4, 8],
        '/' => [1, 2, 2, 4, 8, 8, 16],
        '_' => [0, 0, 0, 0, 0, 0, 31],
        ' ' => [0; 7],
        _ => [14, 17, 1, 2, 4, 0, 4], // '?'
    }
}

/// Burns `text` into a gray image at (x, y), `scale` pixels per font dot.
#[allow(clippy::too_many_arguments)]
fn draw_text(
    img: &mut [u8],
    w: usize,
    h: usize,
    x: usize,
    y: usize,
    text: &str,
    scale: usize,
    ink: u8,
) {
    for (k, c) in text.chars().enumerate() {
        let g = glyph(c);
        for (row, bits) in g.iter().enumerate() {
            for col in 0..5 {
                if bits & (16 >> col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let px = x + (k * 6 + col) * scale + dx;
                            let py = y + row * scale + dy;
                            if px < w && py < h {
                                img[py * w + px] = ink;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Writes faces (128x128 u8 each) as a grid PNG, `cols` wide, 2-pixel white gaps, with an
/// optional caption strip on top.
pub fn write_grid(path: &Path, faces: &[&[u8]], cols: usize, caption: Option<&str>) -> Result<()> {
    let n = faces.len().max(1);
    let cols = cols.clamp(1, n);
    let rows = n.div_ceil(cols);
    let gap = 2;
    let w = cols * SIDE + (cols + 1) * gap;
    let strip = if caption.is_some() { 20 } else { 0 };
    let h = strip + rows * SIDE + (rows + 1) * gap;
    let mut img = vec![255u8; w * h];
    if let Some(text) = caption {
        let scale = if text.chars().count() * 12 + 8 <= w {
            2
        } else {
            1
        };
        let text: String = text.chars().take((w - 4) / (6 * scale)).collect();
        draw_text(
            &mut img,
            w,
            h,
            4,
            (strip - 7 * scale) / 2 + 1,
            &text,
            scale,
            0,
        );
    }
    for (k, face) in faces.iter().enumerate() {
        let (r, c) = (k / cols, k % cols);
        let (x0, y0) = (gap + c * (SIDE + gap), strip + gap + r * (SIDE + gap));
        for y in 0..SIDE {
            img[(y0 + y) * w + x0..(y0 + y) * w + x0 + SIDE]
                .copy_from_slice(&face[y * SIDE..(y + 1) * SIDE]);
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_png_gray(path, &img, w as u32, h as u32, caption.unwrap_or(""))
}

/// What `facegpu data` prints (and `--json` serialises).
#[derive(Clone, Debug, Serialize)]
pub struct DataReport {
    /// "folder DIR" or "SYNTHETIC faces (...)".
    pub source: String,
    pub synthetic: bool,
    /// Faces loaded.
    pub count: usize,
    /// Files looked at.
    pub files: usize,
    pub formats: BTreeMap<String, usize>,
    pub sizes: BTreeMap<String, usize>,
    pub colors: BTreeMap<String, usize>,
    /// How each file becomes a 128x128 gray face.
    pub pipeline: String,
    pub skipped_by_reason: BTreeMap<String, usize>,
    /// Everything skipped, sorted by name.
    pub skipped: Vec<Skipped>,
    /// The split `train` would make; None where it cannot be made (`split_error` says why):
    /// the rest of the report still describes the folder.
    pub split: Option<SplitInfo>,
    pub split_error: Option<String>,
    pub cache: CacheState,
    pub load_seconds: f64,
    pub notes: Vec<String>,
    /// Mean and standard deviation of all pixels, in [0, 1].
    pub pixel_mean: f64,
    pub pixel_std: f64,
    pub grid: Option<PathBuf>,
}

/// Loads the dataset as `opts` says, splits it, and (if `grid` is given) writes a PNG grid of
/// up to 64 faces drawn at random by `seed`. Nothing is printed; show the report with Display
/// or serialise it.
pub fn data_report(
    opts: &DataOptions,
    fractions: SplitFractions,
    seed: u64,
    grid: Option<&Path>,
) -> Result<DataReport> {
    let mut opts = opts.clone();
    opts.verbose = false; // the report says it all
    let ds = load(&opts)?;
    let (split, split_error) = match Split::new(&ds, fractions, seed) {
        Ok(s) => (Some(s.info), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let (sum, sum2) = ds
        .pixels()
        .chunks(1 << 16)
        .map(|c| {
            c.iter().fold((0u64, 0u64), |(s, s2), &p| {
                (s + p as u64, s2 + (p as u64) * (p as u64))
            })
        })
        .fold((0u64, 0u64), |a, b| (a.0 + b.0, a.1 + b.1));
    let n = ds.pixels().len().max(1) as f64;
    let mean = sum as f64 / n / 255.0;
    let var = (sum2 as f64 / n / (255.0 * 255.0) - mean * mean).max(0.0);
    let grid = match grid {
        None => None,
        Some(path) => {
            let mut pick: Vec<usize> = epoch_order(ds.len(), seed, u32::MAX)
                .into_iter()
                .take(64)
                .map(|i| i as usize)
                .collect();
            pick.sort_unstable();
            let faces: Vec<&[u8]> = pick.iter().map(|&i| ds.image(i)).collect();
            let caption = if ds.is_synthetic() {
                "SYNTHETIC FACES - NOT PHOTOGRAPHS".to_string()
            } else {
                let name = match &ds.source {
                    super::Source::Folder { dir } => dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| dir.display().to_string()),
                    _ => String::new(),
                };
                format!("{name}: {} of {} faces", faces.len(), ds.len())
            };
            write_grid(path, &faces, 8, Some(&caption))?;
            Some(path.to_path_buf())
        }
    };
    Ok(DataReport {
        source: ds.source.describe(),
        synthetic: ds.is_synthetic(),
        count: ds.len(),
        files: ds.summary.files,
        formats: ds.summary.formats.clone(),
        sizes: ds.summary.sizes.clone(),
        colors: ds.summary.colors.clone(),
        pipeline: if ds.is_synthetic() {
            "drawn at 128x128 8-bit gray".into()
        } else {
            decode::PIPELINE.into()
        },
        skipped_by_reason: ds
            .summary
            .skipped_by_reason()
            .into_iter()
            .map(|(r, n)| (r.describe().to_string(), n))
            .collect(),
        skipped: ds.summary.skipped.clone(),
        split,
        split_error,
        cache: ds.load.cache.clone(),
        load_seconds: ds.load.seconds,
        notes: ds.load.notes.clone(),
        pixel_mean: mean,
        pixel_std: var.sqrt(),
        grid,
    })
}

impl fmt::Display for DataReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.synthetic {
            writeln!(f, "NOTE: {SYNTHETIC_BANNER}")?;
        }
        writeln!(f, "dataset: {}", self.source)?;
        writeln!(
            f,
            "faces: {} ({} file{} looked at)",
            self.count,
            self.files,
            if self.files == 1 { "" } else { "s" }
        )?;
        writeln!(f, "  formats: {}", counts_line(&self.formats))?;
        writeln!(f, "  sizes:   {}", counts_line(&self.sizes))?;
        writeln!(f, "  samples: {}", counts_line(&self.colors))?;
        writeln!(f, "  to 128x128 gray: {}", self.pipeline)?;
        if self.skipped.is_empty() {
            writeln!(f, "skipped: none")?;
        } else {
            let summary = super::ScanSummary {
                skipped: self.skipped.clone(),
                ..Default::default()
            };
            for line in summary.skipped_lines(10) {
                writeln!(f, "{line}")?;
            }
        }
        match (&self.split, &self.split_error) {
            (Some(s), _) => writeln!(
                f,
                "split (--seed {} --split {},{},{}): train {}, val {}, test {} (names hash {})",
                s.seed,
                s.fractions[0],
                s.fractions[1],
                s.fractions[2],
                s.counts[0],
                s.counts[1],
                s.counts[2],
                &s.paths_hash[..16]
            )?,
            (None, e) => writeln!(
                f,
                "split: cannot be made, so train would refuse this folder with this --split: {}",
                e.as_deref().unwrap_or("unknown reason")
            )?,
        }
        writeln!(
            f,
            "pixels: mean {:.4}, std {:.4} (in [0, 1])",
            self.pixel_mean, self.pixel_std
        )?;
        match &self.cache {
            CacheState::Hit(p) => writeln!(
                f,
                "cache: loaded {} in {:.3} s (memory-mapped)",
                p.display(),
                self.load_seconds
            )?,
            CacheState::Written(p) => writeln!(
                f,
                "cache: decoded in {:.2} s, written to {}",
                self.load_seconds,
                p.display()
            )?,
            CacheState::NotWritten(why) => writeln!(
                f,
                "cache: decoded in {:.2} s, not written ({why})",
                self.load_seconds
            )?,
            CacheState::Off => writeln!(f, "cache: off; decoded in {:.2} s", self.load_seconds)?,
            CacheState::NotUsed => writeln!(f, "drawn in {:.2} s (not cached)", self.load_seconds)?,
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        if let Some(g) = &self.grid {
            write!(f, "sample grid: {}", g.display())?;
        }
        Ok(())
    }
}
