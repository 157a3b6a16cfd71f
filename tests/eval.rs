//! `eval` on checkpoints trained here: clean and noisy conditions, the same numbers twice,
//! the outputs written, and clear errors for bad checkpoints and options; and `metrics` (the
//! dataset's gray conversion, folders with sub-folders).
mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use common::gpu;
use facegpu::data::Part;
use facegpu::eval::{self, EvalOptions};
use facegpu::train::{self, Quiet, Reg, TrainOptions};

/// One small trained run per model, shared by the tests of this binary.
fn trained(model: &'static str) -> PathBuf {
    static DIRS: OnceLock<std::sync::Mutex<Vec<(&'static str, tempfile::TempDir)>>> =
        OnceLock::new();
    let dirs = DIRS.get_or_init(Default::default);
    let mut d = dirs.lock().unwrap();
    if let Some((_, t)) = d.iter().find(|(m, _)| *m == model) {
        return t.path().join("best.safetensors");
    }
    let t = tempfile::tempdir().unwrap();
    let o = TrainOptions {
        model: model.into(),
        dataset: None,
        synthetic_count: 80,
        epochs: 1,
        batch: 16,
        lr: 1e-3,
        seed: 3,
        reg: Reg::None,
        l1: 1e-5,
        l2: 1e-5,
        noise: None,
        clip: true,
        denoise: false,
        kl_weight: 1.0,
        patience: None,
        split: [0.6, 0.2, 0.2],
        strict: false,
        out: t.path().to_path_buf(),
        cache: Default::default(),
    };
    train::train(
        gpu(),
        &o,
        false,
        &mut Quiet,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    let p = t.path().join("best.safetensors");
    d.push((model, t));
    p
}

fn opts(ck: &Path) -> EvalOptions {
    EvalOptions {
        checkpoint: ck.to_path_buf(),
        dataset: None,
        part: Part::Test,
        noise: None,
        clip: true,
        seed: None,
        sample: false,
        batch: 7,
        out: None,
    }
}

#[test]
fn every_model_evaluates_clean_and_noisy() {
    for model in ["ae", "vae", "ae-wide", "conv-vae"] {
        let ck = trained(model);
        let out = tempfile::tempdir().unwrap();
        let mut o = opts(&ck);
        o.noise = Some(0.1);
        o.out = Some(out.path().to_path_buf());
        let r = eval::evaluate(gpu(), &o).unwrap();
        assert_eq!(r.images, 16, "{model}: 20% of 80 faces");
        assert_eq!(r.conditions.len(), 3, "{model}");
        for c in &r.conditions {
            let s = &c.summary;
            assert!(
                s.mse.mean > 0.0 && s.mse.mean < 1.0,
                "{model} {}: {s:?}",
                c.name
            );
            assert!((s.psnr_of_mean_mse - 10.0 * (1.0 / s.mse.mean).log10()).abs() < 1e-6);
            assert!(s.ssim.mean > -1.0 && s.ssim.mean <= 1.0);
        }
        // noise makes the input worse, so the output against the clean face is worse too
        assert!(
            r.conditions[2].summary.mse.mean > r.conditions[0].summary.mse.mean * 0.999,
            "{model}"
        );
        for f in [
            "results.json",
            "per_image.csv",
            "hist_mse.png",
            "hist_psnr.png",
            "hist_ssim.png",
            "grid.png",
        ] {
            assert!(out.path().join(f).is_file(), "{model}: {f} missing");
        }
        let csv = std::fs::read_to_string(out.path().join("per_image.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + 3 * 16, "{model}");
        let expect_latent = if model.contains("vae") {
            200
        } else {
            4 * 32 * 32
        };
        assert_eq!(r.compression.latent_elements, expect_latent, "{model}");
        assert_eq!(
            r.compression.bits_per_pixel_u8,
            8.0 * expect_latent as f64 / 16384.0
        );
    }
}

/// Noise fixed by the seed: two evaluations of one checkpoint give identical numbers; another
/// seed other numbers.
#[test]
fn evaluation_is_reproducible() {
    let ck = trained("ae");
    let mut o = opts(&ck);
    o.noise = Some(0.1);
    let a = eval::evaluate(gpu(), &o).unwrap();
    let b = eval::evaluate(gpu(), &o).unwrap();
    assert_eq!(
        serde_json::to_string(&a.conditions).unwrap(),
        serde_json::to_string(&b.conditions).unwrap()
    );
    o.seed = Some(99);
    let c = eval::evaluate(gpu(), &o).unwrap();
    assert_ne!(
        a.conditions[1].summary.mse.mean,
        c.conditions[1].summary.mse.mean
    );
    // the clean condition does not depend on the noise seed
    assert_eq!(
        a.conditions[0].summary.mse.mean,
        c.conditions[0].summary.mse.mean
    );
    // the batch size changes only float32 summation order (the metrics kernel picks its row
    // bands by batch size): per-image MSE agrees to ~1e-7 relative, PSNR to ~1e-6 dB
    o.seed = None;
    o.batch = 16;
    let d = eval::evaluate(gpu(), &o).unwrap();
    let diff = (d.conditions[1].summary.psnr.mean - a.conditions[1].summary.psnr.mean).abs();
    assert!(diff < 1e-4, "{diff}");
}

#[test]
fn compare_prints_runs_side_by_side() {
    let ck = trained("ae");
    let out = tempfile::tempdir().unwrap();
    let mut o = opts(&ck);
    o.out = Some(out.path().to_path_buf());
    eval::evaluate(gpu(), &o).unwrap();
    let j = out.path().join("results.json");
    let table = eval::compare(&[j.clone(), j]).unwrap();
    assert_eq!(
        table.lines().filter(|l| l.contains("ae (")).count(),
        2,
        "{table}"
    );
    let e = format!(
        "{:#}",
        eval::compare(&[out.path().join("nope.json")]).unwrap_err()
    );
    assert!(e.contains("nope.json"), "{e}");
}

#[test]
fn bad_checkpoints_and_options_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = |o: &EvalOptions| format!("{:#}", eval::evaluate(gpu(), o).unwrap_err());
    // missing
    let e = err(&opts(&dir.path().join("missing.safetensors")));
    assert!(e.contains("missing.safetensors"), "{e}");
    // truncated
    let ck = trained("ae");
    let bytes = std::fs::read(&ck).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = err(&opts(&cut));
    assert!(e.contains("cut.safetensors"), "{e}");
    // negative or NaN sigma
    for s in [-0.1f32, f32::NAN] {
        let mut o = opts(&ck);
        o.noise = Some(s);
        assert!(err(&o).contains("--noise"));
    }
    // a folder that is not the one the split was made from
    let other = tempfile::tempdir().unwrap();
    facegpu::data::write_synth(30, 5, other.path()).unwrap();
    let mut o = opts(&ck);
    o.dataset = Some(other.path().to_path_buf());
    let e = err(&o);
    assert!(e.contains("split"), "{e}");
    // eval caches the folder's decoded faces as training did (the default cache folder): leave
    // no file of a temporary folder behind in the user's cache
    if let Some(dir) = facegpu::data::cache::default_dir() {
        let _ = std::fs::remove_file(facegpu::data::cache::path_for(&dir, other.path()));
    }
}

/// Colour images are scored after the dataset's own gray conversion (PIL's convert('L')), not
/// Rec. 709.
#[test]
fn metrics_turns_colour_to_gray_as_the_dataset_does() {
    use facegpu::data::decode::luma_pil;
    use facegpu::metrics_cmd;
    let dir = tempfile::tempdir().unwrap();
    // saturated colours, where PIL's and Rec. 709's weights differ by many gray levels
    let colour = |seed: u32| {
        image::RgbImage::from_fn(24, 20, |x, y| {
            let v = (x * 37 + y * 101 + seed * 59) % 256;
            match (x + y + seed) % 3 {
                0 => image::Rgb([v as u8, 0, 255 - v as u8]),
                1 => image::Rgb([0, v as u8, 40]),
                _ => image::Rgb([255, (v / 2) as u8, v as u8]),
            }
        })
    };
    let (a, b) = (colour(1), colour(2));
    a.save(dir.path().join("a.png")).unwrap();
    b.save(dir.path().join("b.png")).unwrap();
    let (px, h, w) = metrics_cmd::load_gray(&dir.path().join("a.png")).unwrap();
    assert_eq!((h, w), (20, 24));
    for (i, p) in a.pixels().enumerate() {
        let want = luma_pil(p[0], p[1], p[2]) as f32 / 255.0;
        assert_eq!(px[i], want, "pixel {i}");
    }
    let pil = |img: &image::RgbImage| -> Vec<f32> {
        img.pixels()
            .map(|p| luma_pil(p[0], p[1], p[2]) as f32 / 255.0)
            .collect()
    };
    let rep = metrics_cmd::run(
        gpu(),
        &dir.path().join("a.png"),
        &dir.path().join("b.png"),
        4,
    )
    .unwrap();
    let want = facegpu::ops::metrics::compute(gpu(), &pil(&a), &pil(&b), 1, 20, 24).unwrap();
    assert_eq!(rep.pairs[0].metrics, want[0]);
    // and not what Rec. 709 gives
    let r709 = |img: &image::RgbImage| -> Vec<f32> {
        image::DynamicImage::ImageRgb8(img.clone())
            .to_luma8()
            .pixels()
            .map(|p| p[0] as f32 / 255.0)
            .collect()
    };
    let other = facegpu::ops::metrics::compute(gpu(), &r709(&a), &r709(&b), 1, 20, 24).unwrap();
    assert_ne!(rep.pairs[0].metrics.mse, other[0].mse);
}

/// Folder mode pairs images at the same relative paths, sub-folders included (ORL's layout),
/// takes every format the dataset loader takes, and names a missing partner by its path.
#[test]
fn metrics_folders_with_sub_folders_and_every_format() {
    use facegpu::metrics_cmd;
    let dir = tempfile::tempdir().unwrap();
    let (rdir, ddir) = (dir.path().join("ref"), dir.path().join("dist"));
    let img = |seed: u32| {
        image::GrayImage::from_fn(16, 14, |x, y| {
            image::Luma([((x * 13 + y * 7 + seed * 31) % 256) as u8])
        })
    };
    for (rel, fmt) in [
        ("s1/1.png", image::ImageFormat::Png),
        ("s1/2.gif", image::ImageFormat::Gif),
        ("s2/1.tga", image::ImageFormat::Tga),
        ("top.pgm", image::ImageFormat::Pnm),
    ] {
        for (d, seed) in [(&rdir, 1), (&ddir, 2)] {
            let p = d.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            // GIF stores colour only: the same gray in R, G and B
            let im = image::DynamicImage::ImageLuma8(img(seed));
            let im = if fmt == image::ImageFormat::Gif {
                image::DynamicImage::ImageRgb8(im.to_rgb8())
            } else {
                im
            };
            im.save_with_format(&p, fmt).unwrap();
        }
    }
    std::fs::write(rdir.join("s1").join("notes.txt"), "not an image").unwrap();
    let rep = metrics_cmd::run(gpu(), &rdir, &ddir, 3).unwrap();
    let names: Vec<&str> = rep.pairs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["s1/1.png", "s1/2.gif", "s2/1.tga", "top.pgm"]);
    assert!(rep.pairs.iter().all(|p| p.metrics.mse > 0.0));
    assert!(metrics_cmd::format_text(&rep).contains("s2/1.tga"));
    // a missing partner in a sub-folder is named by its relative path
    std::fs::remove_file(ddir.join("s2").join("1.tga")).unwrap();
    let e = format!(
        "{:#}",
        metrics_cmd::run(gpu(), &rdir, &ddir, 3).unwrap_err()
    );
    assert!(
        e.contains("s2/1.tga") && e.contains("same relative paths"),
        "{e}"
    );
    // a folder with no image anywhere below it
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("sub")).unwrap();
    let e = format!(
        "{:#}",
        metrics_cmd::run(gpu(), &empty, &ddir, 3).unwrap_err()
    );
    assert!(
        e.contains("no images in this folder or its sub-folders"),
        "{e}"
    );
    // an undecodable file named like an image is named
    std::fs::write(rdir.join("s1").join("bad.png"), b"not a png").unwrap();
    std::fs::write(ddir.join("s1").join("bad.png"), b"not a png").unwrap();
    std::fs::copy(rdir.join("s2/1.tga"), ddir.join("s2/1.tga")).unwrap();
    let e = format!(
        "{:#}",
        metrics_cmd::run(gpu(), &rdir, &ddir, 3).unwrap_err()
    );
    assert!(e.contains("bad.png") && e.contains("cannot decode"), "{e}");
}
