//! The packed dataset cache: decoded faces written once, memory-mapped on later runs.
//!
//! File layout (little endian):
//! ```text
//!   0  magic  b"FGFACES\0"
//!   8  u32    format version
//!  12  u32    side (128)
//!  16  u64    count
//!  24  u64    meta_len: bytes of JSON metadata at 40
//!  32  u64    pixel_offset: 4096-aligned start of the pixels
//!  40  JSON   CacheMeta: folder, fingerprint (names, sizes, mtimes), names, scan summary
//!  pixel_offset: count * 128 * 128 u8 pixels, row-major, image after image
//! ```
//! A file is used only if its fingerprint matches the folder as it is now and its length is
//! exactly what the header says. Writes go to a temporary name in the same folder and are
//! renamed into place, so a half-written cache is never read.

use std::fs;
use std::io::{BufWriter, Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use super::hash::Fnv128;
use super::{ScanSummary, PIXELS, SIDE};

const MAGIC: &[u8; 8] = b"FGFACES\0";
const VERSION: u32 = 1;
const HEADER: usize = 40;
const ALIGN: u64 = 4096;

/// What the cache stores besides the pixels.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CacheMeta {
    pub dir: String,
    pub fingerprint: String,
    pub names: Vec<String>,
    pub summary: ScanSummary,
}

/// The default cache folder: $FACEGPU_CACHE_DIR, else $XDG_CACHE_HOME/facegpu, else
/// ~/.cache/facegpu. Never the dataset folder itself (it may be read-only).
pub fn default_dir() -> Option<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = nonempty("FACEGPU_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = nonempty("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("facegpu"));
    }
    nonempty("HOME").map(|h| PathBuf::from(h).join(".cache").join("facegpu"))
}

/// The cache file for dataset folder `root`: one file per folder (keyed by a hash of its
/// absolute path), so a changed folder replaces its stale cache instead of piling up copies.
pub fn path_for(cache_dir: &Path, root: &Path) -> PathBuf {
    let abs = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut h = Fnv128::new();
    h.str(&abs.to_string_lossy());
    let stem = abs
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(40)
                .collect::<String>()
        })
        .unwrap_or_else(|| "root".into());
    cache_dir.join(format!("{stem}-{}.fgfaces", &h.hex()[..16]))
}

/// Writes the cache atomically (temporary file in the same folder, then rename).
pub fn write(path: &Path, meta: &CacheMeta, pixels: &[u8]) -> Result<()> {
    let count = meta.names.len();
    if pixels.len() != count * PIXELS {
        bail!("cache write: {} bytes for {count} images", pixels.len());
    }
    let dir = path.parent().context("cache path has no folder")?;
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the cache folder {}", dir.display()))?;
    let json = serde_json::to_vec(meta)?;
    let pixel_offset = ((HEADER + json.len()) as u64).next_multiple_of(ALIGN);
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let result = (|| -> Result<()> {
        let f =
            fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        w.write_all(MAGIC)?;
        w.write_all(&VERSION.to_le_bytes())?;
        w.write_all(&(SIDE as u32).to_le_bytes())?;
        w.write_all(&(count as u64).to_le_bytes())?;
        w.write_all(&(json.len() as u64).to_le_bytes())?;
        w.write_all(&pixel_offset.to_le_bytes())?;
        w.write_all(&json)?;
        w.write_all(&vec![0u8; pixel_offset as usize - HEADER - json.len()])?;
        w.write_all(pixels)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
            .with_context(|| format!("cannot move the cache into place at {}", path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A valid cache for `fingerprint`, memory-mapped. `Ok(None)`: no cache, or a stale one (the
/// folder changed). `Err`: a damaged file (the caller rebuilds it).
pub fn read(path: &Path, fingerprint: &str) -> Result<Option<(CacheMeta, memmap2::Mmap, usize)>> {
    let mut f = match fs::File::open(path) {
        Ok(f) => f,
        // no cache yet, or its folder cannot exist (a file in the way): nothing to read
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    let len = f.metadata()?.len();
    let mut head = [0u8; HEADER];
    f.read_exact(&mut head)
        .context("the cache file is shorter than its header")?;
    let u32_at = |o: usize| u32::from_le_bytes(head[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(head[o..o + 8].try_into().unwrap());
    if &head[..8] != MAGIC {
        bail!("not a facegpu cache file");
    }
    if u32_at(8) != VERSION || u32_at(12) != SIDE as u32 {
        return Ok(None); // another version's cache: rebuild
    }
    let (count, meta_len, pixel_offset) = (u64_at(16), u64_at(24), u64_at(32));
    let want = pixel_offset
        .checked_add(count.checked_mul(PIXELS as u64).context("bad count")?)
        .context("bad header")?;
    if len != want || (HEADER as u64).saturating_add(meta_len) > pixel_offset {
        bail!("the cache file is {len} bytes but its header says {want}: damaged or cut short");
    }
    let mut json = vec![0u8; meta_len as usize];
    f.read_exact(&mut json)?;
    let meta: CacheMeta =
        serde_json::from_slice(&json).context("the cache's metadata does not parse")?;
    if meta.fingerprint != fingerprint {
        return Ok(None);
    }
    if meta.names.len() as u64 != count {
        bail!(
            "the cache lists {} names for {count} images",
            meta.names.len()
        );
    }
    // Safety: the file is only ever replaced by rename (never rewritten in place), so the
    // mapped inode keeps its contents for as long as the map lives.
    let map = unsafe { memmap2::Mmap::map(&f) }.context("cannot memory-map the cache")?;
    Ok(Some((meta, map, pixel_offset as usize)))
}
