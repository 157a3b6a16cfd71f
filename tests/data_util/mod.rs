//! Helpers for the data tests: scratch folders, image writers, and the real face sets in
//! ../shared/faces when present (never copied into the project).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A fresh, empty scratch folder for one test (under the system temp folder).
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir()
        .join("facegpu-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A real face set: CARGO_MANIFEST_DIR/../shared/faces/NAME (the CI layout), else
/// $FACEGPU_FACES/NAME, else shared/faces/NAME beside any ancestor folder (worktrees). None,
/// with a printed note, when absent.
pub fn faces(name: &str) -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut candidates = vec![manifest.join("../shared/faces").join(name)];
    if let Some(d) = std::env::var_os("FACEGPU_FACES") {
        candidates.push(PathBuf::from(d).join(name));
    }
    for a in manifest.ancestors().skip(1) {
        candidates.push(a.join("shared/faces").join(name));
    }
    match candidates.into_iter().find(|c| c.is_dir()) {
        Some(p) => Some(p),
        None => {
            eprintln!("note: ../shared/faces/{name} not found (set FACEGPU_FACES); skipping the part of this test that uses it");
            None
        }
    }
}

/// Seeded bytes (SplitMix64).
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E3779B97F4A7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
            ((z ^ (z >> 31)) >> 56) as u8
        })
        .collect()
}

pub fn write_gray_png(path: &Path, px: &[u8], w: u32, h: u32) {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    image::GrayImage::from_raw(w, h, px.to_vec())
        .unwrap()
        .save_with_format(path, image::ImageFormat::Png)
        .unwrap();
}
