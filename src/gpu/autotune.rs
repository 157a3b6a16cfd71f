//! Measured kernel choices, cached per adapter (name + driver) in a small JSON file:
//! `$XDG_CACHE_HOME/facegpu/autotune.json` (else `~/.cache/facegpu/autotune.json`).
//!
//! Kernel families look a choice up by key and fall back to their static choice when there is
//! none (no cache, another adapter, unreadable file, or `FACEGPU_AUTOTUNE=off`). Tuning itself
//! runs only when asked (e.g. `ops::linear::autotune`); a cache that cannot be written is a
//! warning, not an error. A tuned choice may change a result only by float rounding (e.g. the
//! number of K chunks a sum is split into).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context as _, Result};

use super::Gpu;

type Table = BTreeMap<String, BTreeMap<String, serde_json::Value>>;

static CACHE: Mutex<Option<Table>> = Mutex::new(None);

/// The cache file, or None when neither XDG_CACHE_HOME nor HOME is set.
pub fn cache_path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("FACEGPU_AUTOTUNE_FILE") {
        return Some(PathBuf::from(p));
    }
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
    };
    Some(base.join("facegpu").join("autotune.json"))
}

fn enabled() -> bool {
    !matches!(
        std::env::var("FACEGPU_AUTOTUNE").as_deref(),
        Ok("off") | Ok("0") | Ok("false")
    )
}

/// What identifies an adapter's measurements: name, backend and driver version.
pub fn adapter_key(gpu: &Gpu) -> String {
    super::context::describe(&gpu.info)
}

fn load() -> Table {
    match cache_path() {
        Some(path) => load_from(&path),
        None => Table::new(),
    }
}

fn load_from(path: &Path) -> Table {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

/// The cached value for `key` on this adapter.
pub fn lookup(gpu: &Gpu, key: &str) -> Option<serde_json::Value> {
    if !enabled() {
        return None;
    }
    let mut c = CACHE.lock().unwrap();
    let table = c.get_or_insert_with(load);
    table.get(&adapter_key(gpu))?.get(key).cloned()
}

/// Merges `entries` into this adapter's section and writes the file (via a temporary file and
/// a rename, so that a crash leaves the old file).
pub fn store(gpu: &Gpu, entries: &[(String, serde_json::Value)]) -> Result<PathBuf> {
    let path = cache_path().context("no cache directory: set XDG_CACHE_HOME or HOME")?;
    let mut c = CACHE.lock().unwrap();
    let table = merge_into(&path, gpu, entries)?;
    *c = Some(table);
    Ok(path)
}

/// [`store`] into the file at `path`, leaving the choices this process uses as they are (for
/// tests, and for writing a file other than the one in use).
pub fn store_at(path: &Path, gpu: &Gpu, entries: &[(String, serde_json::Value)]) -> Result<()> {
    merge_into(path, gpu, entries).map(|_| ())
}

fn merge_into(path: &Path, gpu: &Gpu, entries: &[(String, serde_json::Value)]) -> Result<Table> {
    let mut table = load_from(path);
    let sect = table.entry(adapter_key(gpu)).or_default();
    for (k, v) in entries {
        sect.insert(k.clone(), v.clone());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the cache directory {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&table)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(table)
}

/// Key of a linear-layer K-split choice.
pub fn linear_key(
    pass: &str,
    variant: impl std::fmt::Debug,
    m: usize,
    n: usize,
    k: usize,
) -> String {
    format!("linear.{pass}.{variant:?}.{m}x{n}x{k}.chunks")
}

/// The tuned number of K chunks for a linear pass, if measured on this adapter.
pub fn linear_chunks(
    gpu: &Gpu,
    pass: &str,
    variant: impl std::fmt::Debug,
    m: usize,
    n: usize,
    k: usize,
) -> Option<usize> {
    lookup(gpu, &linear_key(pass, variant, m, n, k))?
        .as_u64()
        .map(|c| c as usize)
}
