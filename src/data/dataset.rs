//! The dataset: n faces of 128x128 u8 pixels (owned, or memory-mapped from the cache), their
//! names, and where they came from. [`load`] is the one entry point: a folder (with the cache)
//! or, with no folder, the embedded synthetic faces.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{cache, decode, scan, synth, ScanSummary, SkipReason, Skipped, PIXELS};

/// Where faces come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Source {
    /// Procedural faces drawn by [`synth`]: not photographs.
    Synthetic { seed: u64, count: usize },
    /// Every image under a folder.
    Folder { dir: PathBuf },
}

impl Source {
    pub fn is_synthetic(&self) -> bool {
        matches!(self, Source::Synthetic { .. })
    }
    /// "synthetic faces (seed 0, 2000 drawn)" or "folder /data/ffhq".
    pub fn describe(&self) -> String {
        match self {
            Source::Synthetic { seed, count } => {
                format!("SYNTHETIC faces (procedural, seed {seed}, {count} drawn)")
            }
            Source::Folder { dir } => format!("folder {}", dir.display()),
        }
    }
}

/// Where the cache lives.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum CacheChoice {
    /// [`cache::default_dir`]: $FACEGPU_CACHE_DIR, $XDG_CACHE_HOME/facegpu or ~/.cache/facegpu.
    #[default]
    Default,
    /// `--cache-dir DIR`.
    Dir(PathBuf),
    /// `--no-cache`: decode every time, write nothing.
    Off,
}

/// How to load faces (the library side of the `--dataset`, `--strict`, `--cache-dir`,
/// `--no-cache` and `--synthetic-*` flags).
#[derive(Clone, Debug)]
pub struct DataOptions {
    /// None: the embedded synthetic faces.
    pub dataset: Option<PathBuf>,
    /// Any skipped file or folder is an error.
    pub strict: bool,
    pub cache: CacheChoice,
    /// How many synthetic faces to draw when there is no `dataset`.
    pub synthetic_count: usize,
    pub synthetic_seed: u64,
    /// Print notices (skipped files, cache problems, the synthetic-data banner) to stderr.
    pub verbose: bool,
}

/// Synthetic faces drawn when no dataset is given: enough to learn from, few enough to train
/// in seconds.
pub const DEFAULT_SYNTHETIC_COUNT: usize = 2000;

impl Default for DataOptions {
    fn default() -> Self {
        DataOptions {
            dataset: None,
            strict: false,
            cache: CacheChoice::Default,
            synthetic_count: DEFAULT_SYNTHETIC_COUNT,
            synthetic_seed: 0,
            verbose: true,
        }
    }
}

/// What happened with the cache on this load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CacheState {
    /// Loaded (memory-mapped) from this file.
    Hit(PathBuf),
    /// Decoded, then written to this file.
    Written(PathBuf),
    /// Decoded; the cache could not be written (the reason), so the next run decodes again.
    NotWritten(String),
    /// `--no-cache`.
    Off,
    /// Synthetic faces are drawn, not cached.
    NotUsed,
}

/// How the faces were loaded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadInfo {
    pub cache: CacheState,
    /// Wall time of the whole load (scan + cache or decode).
    pub seconds: f64,
    /// Problems worth a line on stderr (cache unwritable or damaged, ...).
    pub notes: Vec<String>,
}

/// u8 pixels, owned or mapped from the cache file.
pub enum Pixels {
    Owned(Vec<u8>),
    Mapped {
        map: memmap2::Mmap,
        offset: usize,
        len: usize,
    },
}

impl Pixels {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Pixels::Owned(v) => v,
            Pixels::Mapped { map, offset, len } => &map[*offset..*offset + *len],
        }
    }
}

/// n faces, image after image, 128x128 u8 each.
#[derive(Clone)]
pub struct Dataset {
    pixels: Arc<Pixels>,
    /// One name per face: the path relative to the folder ('/'-separated), or
    /// "synthetic/SEED/INDEX". Splits and hashes are made from these.
    pub names: Vec<String>,
    pub source: Source,
    pub summary: ScanSummary,
    pub load: LoadInfo,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("len", &self.len())
            .field("source", &self.source)
            .finish()
    }
}

impl Dataset {
    /// A dataset from pixels held in memory (`pixels.len()` must be `names.len() * 128*128`).
    pub fn from_pixels(pixels: Vec<u8>, names: Vec<String>, source: Source) -> Result<Dataset> {
        if pixels.len() != names.len() * PIXELS {
            bail!(
                "{} bytes of pixels for {} faces of {PIXELS}",
                pixels.len(),
                names.len()
            );
        }
        Ok(Dataset {
            pixels: Arc::new(Pixels::Owned(pixels)),
            summary: ScanSummary {
                files: names.len(),
                ..Default::default()
            },
            names,
            source,
            load: LoadInfo {
                cache: CacheState::NotUsed,
                seconds: 0.0,
                notes: Vec::new(),
            },
        })
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
    /// All pixels, image after image.
    pub fn pixels(&self) -> &[u8] {
        self.pixels.as_slice()
    }
    /// Face `i`: 128*128 bytes, row-major.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels()[i * PIXELS..(i + 1) * PIXELS]
    }
    pub fn is_synthetic(&self) -> bool {
        self.source.is_synthetic()
    }
    /// A shared handle to the pixels (the streaming batcher keeps one).
    pub fn shared_pixels(&self) -> Arc<Pixels> {
        self.pixels.clone()
    }

    /// Lines worth showing the user on any command that loads this dataset: the synthetic
    /// banner, skipped files (first ten by name) and cache problems.
    pub fn notices(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.is_synthetic() {
            v.push(SYNTHETIC_BANNER.to_string());
        }
        v.extend(self.summary.skipped_lines(10));
        v.extend(self.load.notes.iter().cloned());
        v
    }
}

/// Said wherever synthetic faces are used.
pub const SYNTHETIC_BANNER: &str = "using SYNTHETIC faces (procedurally drawn, not photographs): \
results show the pipeline works, not how well a model compresses real faces; pass \
--dataset DIR with real face images for real results";

/// Loads faces as `opts` says. Errors: a missing folder, one with no usable image, and with
/// `strict` any skipped entry.
pub fn load(opts: &DataOptions) -> Result<Dataset> {
    let ds = match &opts.dataset {
        None => load_synthetic(opts)?,
        Some(dir) => load_folder(dir, opts)?,
    };
    if opts.verbose {
        for line in ds.notices() {
            eprintln!("facegpu: {line}");
        }
    }
    Ok(ds)
}

fn check(dir: &Path, names: usize, summary: &ScanSummary, strict: bool) -> Result<()> {
    if names == 0 {
        let lines = summary.skipped_lines(10);
        bail!(
            "no usable images in {} ({} file{} looked at){}{}\nfacegpu reads PNG, JPEG, PGM/PPM, BMP, TIFF, WebP and more, in any sub-folder; \
             run without --dataset to use synthetic faces",
            dir.display(),
            summary.files,
            if summary.files == 1 { "" } else { "s" },
            if lines.is_empty() { "" } else { "\n" },
            lines.join("\n")
        );
    }
    if strict && !summary.skipped.is_empty() {
        bail!(
            "--strict: {}\nremove or fix these files, or run without --strict to skip them",
            summary.skipped_lines(10).join("\n")
        );
    }
    Ok(())
}

fn cache_dir(choice: &CacheChoice) -> Option<PathBuf> {
    match choice {
        CacheChoice::Off => None,
        CacheChoice::Dir(d) => Some(d.clone()),
        CacheChoice::Default => cache::default_dir(),
    }
}

/// Synthetic faces, cached like a folder (drawing 2000 faces takes seconds; mapping them, ms).
fn load_synthetic(opts: &DataOptions) -> Result<Dataset> {
    let t0 = Instant::now();
    let (count, seed) = (opts.synthetic_count, opts.synthetic_seed);
    let fingerprint = format!("synthetic {} seed {seed} count {count}", synth::VERSION);
    let path = cache_dir(&opts.cache).map(|d| {
        d.join(format!(
            "synthetic-v{}-s{seed}-n{count}.fgfaces",
            synth::VERSION
        ))
    });
    let mut notes = Vec::new();
    if let Some(path) = &path {
        match cache::read(path, &fingerprint) {
            Ok(Some((meta, map, offset))) => {
                let len = meta.names.len() * PIXELS;
                return Ok(Dataset {
                    pixels: Arc::new(Pixels::Mapped { map, offset, len }),
                    names: meta.names,
                    source: Source::Synthetic { seed, count },
                    summary: meta.summary,
                    load: LoadInfo {
                        cache: CacheState::Hit(path.clone()),
                        seconds: t0.elapsed().as_secs_f64(),
                        notes,
                    },
                });
            }
            Ok(None) => {}
            Err(e) => notes.push(format!(
                "ignoring the damaged cache {} ({e:#}); rebuilding it",
                path.display()
            )),
        }
    }
    let mut ds = synth::dataset(count, seed)?;
    ds.load.cache = match &path {
        None => CacheState::Off,
        Some(path) => {
            let meta = cache::CacheMeta {
                dir: "synthetic".into(),
                fingerprint,
                names: ds.names.clone(),
                summary: ds.summary.clone(),
            };
            match cache::write(path, &meta, ds.pixels()) {
                Ok(()) => CacheState::Written(path.clone()),
                Err(e) => CacheState::NotWritten(format!("{e:#}")),
            }
        }
    };
    ds.load.notes = notes;
    ds.load.seconds = t0.elapsed().as_secs_f64();
    Ok(ds)
}

fn load_folder(dir: &Path, opts: &DataOptions) -> Result<Dataset> {
    let t0 = Instant::now();
    let walk = scan::walk(dir)?;
    let fingerprint = walk.fingerprint(decode::PIPELINE);
    let mut notes = Vec::new();
    let cache_path = cache_dir(&opts.cache).map(|d| cache::path_for(&d, dir));
    if cache_path.is_none() && opts.cache == CacheChoice::Default {
        notes.push(
            "no cache folder (set HOME, XDG_CACHE_HOME or --cache-dir): decoding every run"
                .to_string(),
        );
    }
    let source = Source::Folder {
        dir: dir.to_path_buf(),
    };

    if let Some(path) = &cache_path {
        match cache::read(path, &fingerprint) {
            Ok(Some((meta, map, offset))) => {
                check(dir, meta.names.len(), &meta.summary, opts.strict)?;
                let len = meta.names.len() * PIXELS;
                return Ok(Dataset {
                    pixels: Arc::new(Pixels::Mapped { map, offset, len }),
                    names: meta.names,
                    source,
                    summary: meta.summary,
                    load: LoadInfo {
                        cache: CacheState::Hit(path.clone()),
                        seconds: t0.elapsed().as_secs_f64(),
                        notes,
                    },
                });
            }
            Ok(None) => {}
            Err(e) => notes.push(format!(
                "ignoring the damaged cache {} ({e:#}); rebuilding it",
                path.display()
            )),
        }
    }

    // Decode every file on all cores, each straight into its slot; then close the gaps the
    // skipped files leave (one buffer, never two copies of the dataset).
    let n = walk.files.len();
    let mut pixels = vec![0u8; n * PIXELS];
    let results: Vec<Result<decode::Decoded, (SkipReason, String)>> = pixels
        .par_chunks_mut(PIXELS)
        .zip(walk.files.par_iter())
        .map(|(slot, f)| {
            let mut d = decode::decode_file(&f.path)?;
            slot.copy_from_slice(&d.pixels);
            d.pixels = Vec::new();
            Ok(d)
        })
        .collect();
    let mut summary = ScanSummary {
        files: n,
        skipped: walk.problems.clone(),
        ..Default::default()
    };
    let mut names = Vec::with_capacity(n);
    let mut kept = 0;
    for (i, (f, r)) in walk.files.iter().zip(&results).enumerate() {
        match r {
            Ok(d) => {
                if kept != i {
                    pixels.copy_within(i * PIXELS..(i + 1) * PIXELS, kept * PIXELS);
                }
                kept += 1;
                names.push(f.rel.clone());
                *summary.formats.entry(d.format.clone()).or_insert(0) += 1;
                *summary
                    .sizes
                    .entry(format!("{}x{}", d.width, d.height))
                    .or_insert(0) += 1;
                *summary.colors.entry(d.color.clone()).or_insert(0) += 1;
            }
            Err((reason, detail)) => summary.skipped.push(Skipped {
                name: f.rel.clone(),
                reason: *reason,
                detail: detail.clone(),
            }),
        }
    }
    pixels.truncate(kept * PIXELS);
    pixels.shrink_to_fit();
    // Folders with no usable image anywhere below them.
    let mut used: HashSet<&str> = HashSet::new();
    for name in &names {
        let mut s = name.as_str();
        while let Some(p) = s.rfind('/') {
            s = &s[..p];
            if !used.insert(s) {
                break;
            }
        }
    }
    for d in &walk.dirs {
        if !used.contains(d.as_str()) {
            summary.skipped.push(Skipped {
                name: format!("{d}/"),
                reason: SkipReason::FolderWithoutImages,
                detail: "folder without images".into(),
            });
        }
    }
    summary.skipped.sort_by(|a, b| a.name.cmp(&b.name));
    check(dir, names.len(), &summary, opts.strict)?;

    let cache = match &cache_path {
        None => CacheState::Off,
        Some(path) => {
            let meta = cache::CacheMeta {
                dir: dir.display().to_string(),
                fingerprint,
                names: names.clone(),
                summary: summary.clone(),
            };
            match cache::write(path, &meta, &pixels) {
                Ok(()) => CacheState::Written(path.clone()),
                Err(e) => {
                    let why = format!("{e:#}");
                    notes.push(format!(
                        "could not write the dataset cache ({why}); continuing without it \
                         (use --cache-dir DIR to put it somewhere writable)"
                    ));
                    CacheState::NotWritten(why)
                }
            }
        }
    };
    Ok(Dataset {
        pixels: Arc::new(Pixels::Owned(pixels)),
        names,
        source,
        summary,
        load: LoadInfo {
            cache,
            seconds: t0.elapsed().as_secs_f64(),
            notes,
        },
    })
}
