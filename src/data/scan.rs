//! Finding the files of a dataset folder: every file under it, recursively, in a stable order
//! (sorted relative paths with '/' separators), with the size and modification time that make
//! up the cache fingerprint. Hidden entries (names starting with '.') are left out silently:
//! they are version-control folders, thumbnails caches and editor files, not faces.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{bail, Context as _, Result};

use super::hash::Fnv128;
use super::{SkipReason, Skipped};

/// One file found under the dataset folder.
#[derive(Clone, Debug)]
pub struct FileEntry {
    /// Path relative to the dataset folder, '/'-separated: the file's name in every report,
    /// split and hash, so the same folder gives the same answers on every machine.
    pub rel: String,
    pub path: PathBuf,
    pub size: u64,
    /// Modification time in nanoseconds since 1970 (0 where the filesystem has none).
    pub mtime_ns: i128,
}

/// Everything found under a folder.
#[derive(Debug, Default)]
pub struct Walk {
    /// Regular files, sorted by `rel`.
    pub files: Vec<FileEntry>,
    /// Sub-folders (relative, sorted), for the "folder without images" report.
    pub dirs: Vec<String>,
    /// Entries that could not be listed (unreadable folders, broken links).
    pub problems: Vec<Skipped>,
}

impl Walk {
    /// A fingerprint of the listing (names, sizes, modification times): any added, removed,
    /// touched or rewritten file changes it, which invalidates the cache.
    pub fn fingerprint(&self, pipeline: &str) -> String {
        let mut h = Fnv128::new();
        h.str(pipeline).u64(self.files.len() as u64);
        for f in &self.files {
            h.str(&f.rel).u64(f.size).i128(f.mtime_ns);
        }
        h.u64(self.dirs.len() as u64);
        for d in &self.dirs {
            h.str(d);
        }
        h.hex()
    }
}

fn mtime_ns(md: &fs::Metadata) -> i128 {
    match md.modified() {
        Ok(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        },
        Err(_) => 0,
    }
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

fn join_rel(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// Lists every file under `root` (following links, each folder once).
pub fn walk(root: &Path) -> Result<Walk> {
    let md = fs::metadata(root).with_context(|| {
        format!(
            "cannot open the dataset folder {}: check the path given to --dataset",
            root.display()
        )
    })?;
    if !md.is_dir() {
        bail!(
            "--dataset {} is a file, not a folder: pass the folder that holds the images",
            root.display()
        );
    }
    let mut out = Walk::default();
    let mut seen = HashSet::new();
    if let Ok(c) = fs::canonicalize(root) {
        seen.insert(c);
    }
    // Unreadable root: an error, not a skip (there would be nothing to train on).
    fs::read_dir(root).with_context(|| {
        format!(
            "cannot list the dataset folder {}: check its permissions",
            root.display()
        )
    })?;
    visit(root, "", &mut out, &mut seen);
    out.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.dirs.sort();
    out.problems.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn visit(dir: &Path, rel: &str, out: &mut Walk, seen: &mut HashSet<PathBuf>) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.problems.push(Skipped {
                name: format!("{}/", rel),
                reason: SkipReason::Unreadable,
                detail: format!("cannot list folder: {e}"),
            });
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                out.problems.push(Skipped {
                    name: format!("{}/", rel),
                    reason: SkipReason::Unreadable,
                    detail: format!("cannot list folder: {e}"),
                });
                continue;
            }
        };
        let name = entry.file_name();
        if is_hidden(&name) {
            continue;
        }
        let child_rel = join_rel(rel, &name.to_string_lossy());
        let path = entry.path();
        // fs::metadata follows links; a dangling link is reported, not fatal.
        let md = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                out.problems.push(Skipped {
                    name: child_rel,
                    reason: SkipReason::Unreadable,
                    detail: format!("cannot read file information: {e}"),
                });
                continue;
            }
        };
        if md.is_dir() {
            let canon = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if !seen.insert(canon) {
                continue; // a link back to a folder already visited
            }
            out.dirs.push(child_rel.clone());
            visit(&path, &child_rel, out, seen);
        } else if md.is_file() {
            out.files.push(FileEntry {
                rel: child_rel,
                path,
                size: md.len(),
                mtime_ns: mtime_ns(&md),
            });
        }
        // sockets, fifos and devices are not images and reading them could block: ignored.
    }
}
