//! The face data pipeline: a folder of images (or faces drawn on the spot) to 128x128 8-bit
//! gray faces, split into train/val/test, cached, and fed to the GPU.
//!
//! ```text
//! scan (sorted walk) --> decode (all cores; PIL gray; crop + Lanczos3) --> Dataset (u8)
//!      \-- cache: packed file keyed by the folder, fingerprinted by names/sizes/mtimes, mmap
//! split (seeded, 70/10/20) --> SplitInfo (travels with checkpoints and results)
//! batcher: u8 split resident on the GPU (several buffers) or streamed in windows;
//!          per-epoch order from (seed, epoch); one kernel gathers a batch, u8 -> f32, noise
//! ```
//! Modules: [`scan`], [`decode`], [`cache`], [`dataset`] (loading), [`split`], [`synth`]
//! (the embedded default: procedural faces), [`report`] (`facegpu data`), [`batcher`] (GPU).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod batcher;
pub mod cache;
pub mod dataset;
pub mod decode;
pub mod hash;
pub mod report;
pub mod scan;
pub mod split;
pub mod synth;

pub use batcher::{Batcher, BatcherConfig, NoiseSpec, Residency};
pub use dataset::{load, CacheChoice, DataOptions, Dataset, Source};
pub use report::{data_report, write_grid, DataReport};
pub use split::{Part, Split, SplitFractions, SplitInfo};
pub use synth::{write_synth, SynthReport};

/// Faces are SIDE x SIDE.
pub const SIDE: usize = 128;
/// Pixels (and bytes) per face.
pub const PIXELS: usize = SIDE * SIDE;

/// Why a file or folder was left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SkipReason {
    /// A zero-byte file.
    EmptyFile,
    /// The file or folder could not be read (permissions, I/O error, dangling link).
    Unreadable,
    /// Not an image at all (or named like one without being one).
    NotAnImage,
    /// An image format this build cannot decode (e.g. AVIF), or over the size limits.
    Unsupported,
    /// An image that fails to decode: truncated or damaged.
    Corrupt,
    /// A folder with no usable image in it.
    FolderWithoutImages,
}

impl SkipReason {
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::EmptyFile => "empty file (0 bytes)",
            SkipReason::Unreadable => "unreadable",
            SkipReason::NotAnImage => "not an image",
            SkipReason::Unsupported => "unsupported image format",
            SkipReason::Corrupt => "corrupt or truncated image",
            SkipReason::FolderWithoutImages => "folder without images",
        }
    }
}

/// One file or folder left out, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// Path relative to the dataset folder (folders end in '/').
    pub name: String,
    pub reason: SkipReason,
    pub detail: String,
}

/// What a folder held: formats, sizes and sample layouts of the images used, and everything
/// skipped. Stored in the cache, so a cached run reports the same as the first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanSummary {
    /// Files looked at (images used + files skipped).
    pub files: usize,
    /// "PNG" -> count, ...
    pub formats: BTreeMap<String, usize>,
    /// "92x112" -> count, ... (original sizes, before crop and resize)
    pub sizes: BTreeMap<String, usize>,
    /// "L8" -> count, "Rgb8" -> count, ...
    pub colors: BTreeMap<String, usize>,
    /// Everything left out, sorted by name.
    pub skipped: Vec<Skipped>,
}

impl ScanSummary {
    pub fn skipped_by_reason(&self) -> BTreeMap<SkipReason, usize> {
        let mut m = BTreeMap::new();
        for s in &self.skipped {
            *m.entry(s.reason).or_insert(0) += 1;
        }
        m
    }

    /// "skipped 3 of 410 files/folders: 1 empty file (0 bytes), 2 not an image", then the
    /// first `max` by name with their reasons. Empty when nothing was skipped.
    pub fn skipped_lines(&self, max: usize) -> Vec<String> {
        if self.skipped.is_empty() {
            return Vec::new();
        }
        let by: Vec<String> = self
            .skipped_by_reason()
            .iter()
            .map(|(r, n)| format!("{n} {}", r.describe()))
            .collect();
        let mut out = vec![format!(
            "skipped {} entr{}: {}",
            self.skipped.len(),
            if self.skipped.len() == 1 { "y" } else { "ies" },
            by.join(", ")
        )];
        for s in self.skipped.iter().take(max) {
            out.push(format!("  {}: {}", s.name, s.detail.trim_end()));
        }
        if self.skipped.len() > max {
            out.push(format!("  ... and {} more", self.skipped.len() - max));
        }
        out
    }
}

/// Sorted "key n" pairs, largest count first, for reports.
pub(crate) fn counts_line(m: &BTreeMap<String, usize>) -> String {
    let mut v: Vec<(&String, &usize)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
