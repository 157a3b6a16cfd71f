//! `eval` on checkpoints trained here: clean and noisy conditions, the same numbers twice,
//! the outputs written, and clear errors for bad checkpoints and options.
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
