//! Atomic file writes: every file facegpu produces (checkpoints, plots, tables) is written to a
//! temporary file in the destination directory, fsynced, then renamed over the destination, so
//! a crash or Ctrl-C mid-write leaves either the old file or the new one, never half of one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{anyhow, Context, Result};

/// Write `bytes` to `path` atomically (temp file in the same directory, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], but the content is streamed by `fill` into a buffered writer, so large
/// files need not be assembled in memory first. If `fill` fails, the destination is untouched
/// and the temp file removed.
pub fn write_atomic_with<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let dir = parent_dir(path);
    check_dir(path, &dir)?;
    let tmp = temp_path(path, &dir)?;
    let result = (|| -> Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| write_error(path, &dir, e))?;
        let mut w = BufWriter::new(file);
        fill(&mut w).map_err(|e| write_error(path, &dir, e))?;
        let file = w
            .into_inner()
            .map_err(|e| write_error(path, &dir, e.into_error()))?;
        // Data must be on disk before the rename makes it visible under the final name.
        file.sync_all().map_err(|e| write_error(path, &dir, e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| {
            if path.is_dir() {
                anyhow!(
                    "cannot write {}: it is a directory; give a file name inside it instead",
                    path.display()
                )
            } else {
                write_error(path, &dir, e)
            }
        })?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Persist the rename itself (the directory entry). Best effort: not every filesystem
    // lets a directory be opened and synced, and the data is already safe.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Copy `from` to `to` atomically, as [`write_atomic`] writes: the copy is streamed into a temp
/// file beside `to`, fsynced, then renamed over `to` (the directory entry synced after), so a
/// crash leaves the old `to` or a complete copy, never a partial one.
pub fn copy_atomic(from: &Path, to: &Path) -> Result<()> {
    let mut src = File::open(from).map_err(|e| {
        anyhow!(
            "cannot copy {} to {}: cannot read it ({e})",
            from.display(),
            to.display()
        )
    })?;
    write_atomic_with(to, |w| io::copy(&mut src, w).map(|_| ()))
}

/// Makes `dir` ready to receive a command's outputs, before any slow work: creates it when
/// missing, and fails with a message naming `flag`, the path and the fix when it is a file,
/// lies under a file, or cannot be written.
pub fn ensure_output_dir(dir: &Path, flag: &str) -> Result<()> {
    // the nearest part of the path that exists must be a folder
    let mut existing = Some(dir);
    while let Some(p) = existing {
        if p.as_os_str().is_empty() || fs::symlink_metadata(p).is_ok() {
            break;
        }
        existing = p.parent();
    }
    if let Some(p) = existing.filter(|p| !p.as_os_str().is_empty()) {
        if !p.is_dir() {
            return Err(anyhow!(
                "{flag} {}: {} is a file, not a folder; pass a folder path for the outputs (it is created when missing)",
                dir.display(),
                if p == dir { "it".to_string() } else { p.display().to_string() }
            ));
        }
    }
    fs::create_dir_all(dir).map_err(|e| {
        anyhow!(
            "{flag} {}: cannot create this folder ({e}); pass a folder you can write to",
            dir.display()
        )
    })?;
    // a probe file: an unwritable folder fails now, not when the first output is written
    let probe = dir.join(format!(
        ".facegpu-write-test-{}{TEMP_SUFFIX}",
        std::process::id()
    ));
    match OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
    {
        Ok(f) => {
            drop(f);
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(anyhow!(
            "{flag} {}: cannot write into this folder ({e}); fix its permissions or pass another {flag}",
            dir.display()
        )),
    }
}

/// The directory a relative or absolute path lives in ("." for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn check_dir(path: &Path, dir: &Path) -> Result<()> {
    if path.file_name().is_none() {
        return Err(anyhow!(
            "cannot write {}: the path has no file name; give a file path such as {}",
            path.display(),
            dir.join("out.bin").display()
        ));
    }
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(anyhow!(
            "cannot write {}: {} is not a directory; choose an output path inside a directory",
            path.display(),
            dir.display()
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(anyhow!(
            "cannot write {}: directory {} does not exist; create it (mkdir -p {}) or choose another output directory",
            path.display(),
            dir.display(),
            dir.display()
        )),
        Err(e) => Err(anyhow!(
            "cannot write {}: cannot access directory {}: {e}",
            path.display(),
            dir.display()
        )),
    }
}

fn write_error(path: &Path, dir: &Path, e: io::Error) -> anyhow::Error {
    match e.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => anyhow!(
            "cannot write {}: directory {} is not writable ({e}); fix its permissions or choose another output directory",
            path.display(),
            dir.display()
        ),
        io::ErrorKind::StorageFull => anyhow!(
            "cannot write {}: the disk holding {} is full ({e}); free space or choose another output directory",
            path.display(),
            dir.display()
        ),
        _ => anyhow!("cannot write {}: {e}", path.display()),
    }
}

/// A hidden, unique sibling of `path`: same directory so the rename never crosses filesystems.
fn temp_path(path: &Path, dir: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .with_context(|| format!("cannot write {}: no file name", path.display()))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = format!(
        ".{}.{}.{}{}",
        name.to_string_lossy(),
        std::process::id(),
        n,
        TEMP_SUFFIX
    );
    Ok(dir.join(tmp))
}

/// Suffix of the temp files [`write_atomic`] creates (and removes); tests look for leftovers.
pub const TEMP_SUFFIX: &str = ".facegpu-tmp";
