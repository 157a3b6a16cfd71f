//! Checkpoints: bit-exact round trips, metadata, atomic writes, clear errors on bad files, and
//! the PyTorch fixture that shows our names and layouts are PyTorch's.
//!
//! Fixture (tests/fixtures/checkpoint/, see its README.md): `ae_fixture.safetensors` written by
//! facegpu with weights from `fixture_weight`, `ae_input.safetensors` from `fixture_input`,
//! and `ae_torch_output.json` computed by tools/torch_load_check.py after
//! `load_state_dict(strict=True)`. Regenerate with
//! `cargo test --test checkpoint -- --ignored write_ae_fixture` then the two Python commands in
//! the README.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::Rng;
use facegpu::fsutil::{write_atomic, write_atomic_with, TEMP_SUFFIX};
use facegpu::model::checkpoint::{
    self, load, load_expecting, load_optim, optim_path, pytorch_names, save, save_optim,
    Checkpoint, CheckpointMeta, OptimState, AE_PARAMS, VAE_PARAMS,
};
use serde_json::json;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoint")
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn expected(model: &str) -> Vec<(String, Vec<usize>)> {
    pytorch_names(model)
        .unwrap()
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect()
}

/// A random checkpoint of the AE's shapes, plus special values that must survive bit for bit.
fn random_ae(seed: u64) -> Checkpoint {
    let mut rng = Rng::new(seed);
    let tensors = AE_PARAMS
        .iter()
        .map(|(n, s)| {
            let len: usize = s.iter().product();
            let data = rng.vec(len, -1.0, 1.0).iter().map(|&v| v as f32).collect();
            (n.to_string(), s.to_vec(), data)
        })
        .collect();
    let mut meta = CheckpointMeta::new("ae", 7, seed);
    meta.options = json!({"lr": 1e-3, "batch": 32, "noise": 0.1});
    meta.split = json!({"train": 900, "val": 100, "source": "synthetic", "seed": 3});
    meta.step = 1234;
    meta.metrics = json!({"train_loss": 0.0123, "val_loss": 0.0145});
    meta.adapter = "llvmpipe (Vulkan)".into();
    Checkpoint { tensors, meta }
}

fn assert_bits_equal(a: &[(String, Vec<usize>, Vec<f32>)], b: &[(String, Vec<usize>, Vec<f32>)]) {
    assert_eq!(a.len(), b.len());
    for ((na, sa, da), (nb, sb, db)) in a.iter().zip(b) {
        assert_eq!(na, nb);
        assert_eq!(sa, sb, "{na}");
        let ba: Vec<u32> = da.iter().map(|v| v.to_bits()).collect();
        let bb: Vec<u32> = db.iter().map(|v| v.to_bits()).collect();
        assert_eq!(ba, bb, "{na}: data differs");
    }
}

#[test]
fn round_trip_is_bit_exact_and_keeps_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let mut ck = random_ae(1);
    // Special values (NaN with a payload, -0, inf, subnormal) and odd shapes, in a
    // non-alphabetical order that the file (sorted by name) does not keep by itself.
    ck.tensors.insert(
        0,
        (
            "zz.special".into(),
            vec![2, 3],
            vec![
                f32::from_bits(0x7fc0_1234),
                -0.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::from_bits(1),
                f32::MAX,
            ],
        ),
    );
    ck.tensors.push(("a.empty".into(), vec![0, 5], vec![]));
    ck.tensors.push(("m.scalar".into(), vec![], vec![3.5]));
    save(&path, &ck).unwrap();
    let back = load(&path).unwrap();
    assert_bits_equal(&ck.tensors, &back.tensors);
    assert_eq!(back.meta, ck.meta);
}

#[test]
fn metadata_round_trip_and_readable_from_python_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let ck = random_ae(2);
    save(&path, &ck).unwrap();
    let back = load(&path).unwrap();
    assert_eq!(back.meta.model, "ae");
    assert_eq!(back.meta.epoch, 7);
    assert_eq!(back.meta.seed, 2);
    assert_eq!(back.meta.options["batch"], 32);
    assert_eq!(back.meta.split["source"], "synthetic");
    assert_eq!(back.meta.facegpu_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(back.meta.metrics["val_loss"], 0.0145);
    assert!(back.meta.created_unix > 0);
    // The raw header carries the keys Python tools read with safe_open(...).metadata().
    let bytes = std::fs::read(&path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let md = header.metadata().clone().unwrap();
    assert_eq!(md["format"], checkpoint::FORMAT_CHECKPOINT);
    assert_eq!(md["model"], "ae");
    let meta: serde_json::Value = serde_json::from_str(&md["facegpu"]).unwrap();
    assert_eq!(meta["epoch"], 7);
}

#[test]
fn optim_state_round_trip_beside_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("model.safetensors");
    let path = optim_path(&ckpt);
    assert_eq!(path, dir.path().join("model.optim.safetensors"));
    let mut rng = Rng::new(5);
    let mut tensors = Vec::new();
    for (n, s) in AE_PARAMS {
        let len: usize = s.iter().product();
        for kind in ["m", "v"] {
            let d = rng.vec(len, 0.0, 1e-3).iter().map(|&v| v as f32).collect();
            tensors.push((format!("{kind}.{n}"), s.to_vec(), d));
        }
    }
    let st = OptimState {
        t: 98765,
        epoch: 12,
        tensors,
        extra: json!({"batch": 17, "rng": [1, 2, 3], "history": [[0, 0.5, 0.6], [1, 0.25, 0.3]]}),
    };
    save_optim(&path, &st).unwrap();
    let back = load_optim(&path).unwrap();
    assert_eq!(back.t, st.t);
    assert_eq!(back.epoch, st.epoch);
    assert_eq!(back.extra, st.extra);
    assert_bits_equal(&st.tensors, &back.tensors);
    // Each file refuses to be read as the other kind, and says which file to pass instead.
    let e = format!("{:#}", load(&path).unwrap_err());
    assert!(
        e.contains("optimizer state") && e.contains("model.safetensors"),
        "{e}"
    );
    save(&ckpt, &random_ae(3)).unwrap();
    let e = format!("{:#}", load_optim(&ckpt).unwrap_err());
    assert!(e.contains("model.optim.safetensors"), "{e}");
}

/// Weights and optimizer state written by the same save pass (optimizer t = steps + 1, same
/// epoch); a pair from different saves is refused with both file names and what each holds.
#[test]
fn check_pair_refuses_files_from_different_saves() {
    let dir = tempfile::tempdir().unwrap();
    let (w, o) = (
        dir.path().join("last.safetensors"),
        dir.path().join("last.optim.safetensors"),
    );
    let mut meta = CheckpointMeta::new("ae", 2, 0);
    meta.step = 14;
    let st = |t: u64, epoch: usize| OptimState {
        t,
        epoch,
        tensors: vec![],
        extra: json!(null),
    };
    checkpoint::check_pair(&w, &meta, &o, &st(15, 2)).unwrap();
    for (t, epoch) in [(8, 1), (15, 1), (14, 2), (16, 2)] {
        let e = format!(
            "{:#}",
            checkpoint::check_pair(&w, &meta, &o, &st(t, epoch)).unwrap_err()
        );
        assert!(
            e.contains(&format!("{} (epoch 2, 14 steps)", w.display()))
                && e.contains(&format!("{} (epoch {epoch}, {} steps)", o.display(), t - 1))
                && e.contains("not written together"),
            "{e}"
        );
    }
}

/// The `best` copy: a complete copy under the final name, no temp file left, the source named
/// when it cannot be read. And an output folder that is a file, or lies under one, is refused
/// with the path and the fix; a missing one is created.
#[test]
fn copy_atomic_and_output_dir_checks() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.bin"), dir.path().join("b.bin"));
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    std::fs::write(&a, &bytes).unwrap();
    std::fs::write(&b, b"old").unwrap();
    facegpu::fsutil::copy_atomic(&a, &b).unwrap();
    assert_eq!(std::fs::read(&b).unwrap(), bytes);
    assert_eq!(names(dir.path()), vec!["a.bin", "b.bin"]);
    let missing = dir.path().join("missing.bin");
    let e = format!(
        "{:#}",
        facegpu::fsutil::copy_atomic(&missing, &b).unwrap_err()
    );
    assert!(e.contains(&missing.display().to_string()), "{e}");
    assert_eq!(std::fs::read(&b).unwrap(), bytes);

    use facegpu::fsutil::ensure_output_dir;
    let e = format!("{:#}", ensure_output_dir(&a, "--out").unwrap_err());
    assert!(
        e.contains(&format!(
            "--out {}: it is a file, not a folder",
            a.display()
        )),
        "{e}"
    );
    let under = a.join("run");
    let e = format!("{:#}", ensure_output_dir(&under, "--out").unwrap_err());
    assert!(
        e.contains(&format!("{} is a file, not a folder", a.display())),
        "{e}"
    );
    let new = dir.path().join("new/run");
    ensure_output_dir(&new, "--out").unwrap();
    assert!(new.is_dir());
    assert!(names(&new).is_empty(), "the write probe is left behind");
}

#[test]
fn atomic_write_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    save(&path, &random_ae(4)).unwrap();
    save(&path, &random_ae(5)).unwrap(); // overwrite in place
    assert_eq!(names(dir.path()), vec!["model.safetensors"]);
    assert_eq!(load(&path).unwrap().meta.seed, 5);

    // A writer that fails halfway leaves the old file as it was and no temp file behind.
    let before = std::fs::read(&path).unwrap();
    let err = write_atomic_with(&path, |w| {
        w.write_all(b"partial")?;
        Err(std::io::Error::other("simulated failure"))
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("simulated failure"));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(names(dir.path()), vec!["model.safetensors"]);
    assert!(!names(dir.path()).iter().any(|n| n.ends_with(TEMP_SUFFIX)));

    // A missing directory: the message names the path and says how to fix it.
    let missing = dir.path().join("no/such/dir/model.safetensors");
    let e = format!("{:#}", save(&missing, &random_ae(6)).unwrap_err());
    assert!(
        e.contains(&missing.display().to_string()) && e.contains("mkdir -p"),
        "{e}"
    );
    // A directory as the destination.
    let e = format!("{:#}", write_atomic(dir.path(), b"x").unwrap_err());
    assert!(e.contains("no file name") || e.contains("directory"), "{e}");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let e = format!("{:#}", write_atomic(&sub, b"x").unwrap_err());
    assert!(e.contains("is a directory"), "{e}");
    assert_eq!(names(dir.path()), vec!["model.safetensors", "sub"]);
}

#[test]
fn save_rejects_inconsistent_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    let mut ck = random_ae(7);
    ck.tensors[1].2.pop();
    let e = format!("{:#}", save(&path, &ck).unwrap_err());
    assert!(
        e.contains("encoder.0.bias") && e.contains("7 values"),
        "{e}"
    );
    let mut ck = random_ae(7);
    ck.tensors.push(ck.tensors[0].clone());
    let e = format!("{:#}", save(&path, &ck).unwrap_err());
    assert!(e.contains("appears twice"), "{e}");
    assert!(names(dir.path()).is_empty());
}

/// Every way a checkpoint can be wrong gives an error (never a panic) naming the file.
#[test]
fn bad_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.safetensors");
    save(&good, &random_ae(8)).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let check = |path: &Path, want: &[&str]| {
        let e = format!("{:#}", load(path).unwrap_err());
        eprintln!("{e}");
        assert!(
            e.contains(&path.display().to_string()),
            "no file name in: {e}"
        );
        for w in want {
            assert!(e.contains(w), "expected {w:?} in: {e}");
        }
    };

    check(
        &dir.path().join("missing.safetensors"),
        &["not found", "facegpu train --out"],
    );
    check(dir.path(), &["is a directory", "good.safetensors"]);

    let empty = dir.path().join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    check(&empty, &["truncated"]);
    // Cut inside the header, and inside the tensor data.
    for (name, cut) in [("cut_header", 40), ("cut_data", bytes.len() - 100)] {
        let p = dir.path().join(format!("{name}.safetensors"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        check(&p, &["truncated"]);
    }
    let data_cut = dir.path().join("cut_data.safetensors");
    check(&data_cut, &[&format!("{} bytes", bytes.len())]);

    let mut rng = Rng::new(9);
    let garbage: Vec<u8> = (0..5000).map(|_| rng.next_u64() as u8).collect();
    let p = dir.path().join("garbage.safetensors");
    std::fs::write(&p, &garbage).unwrap();
    check(&p, &["not a safetensors file"]);
    let p = dir.path().join("text.safetensors");
    std::fs::write(&p, b"this is a text file, not a checkpoint at all").unwrap();
    check(&p, &["not a safetensors file"]);

    // Valid safetensors without facegpu metadata (e.g. written by PyTorch directly).
    let data = vec![0u8; 16];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &data).unwrap();
    let plain = safetensors::serialize([("w", view)], None).unwrap();
    let p = dir.path().join("plain.safetensors");
    std::fs::write(&p, &plain).unwrap();
    check(&p, &["not a facegpu checkpoint"]);

    // facegpu metadata but a tensor in another dtype.
    let data = vec![0u8; 8];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![4], &data).unwrap();
    let meta = serde_json::to_string(&CheckpointMeta::new("ae", 0, 0)).unwrap();
    let md = HashMap::from([
        (
            "format".to_string(),
            checkpoint::FORMAT_CHECKPOINT.to_string(),
        ),
        ("facegpu".to_string(), meta),
    ]);
    let p = dir.path().join("f16.safetensors");
    std::fs::write(&p, safetensors::serialize([("w", view)], Some(md)).unwrap()).unwrap();
    check(&p, &["\"w\"", "F16"]);
}

#[test]
fn load_expecting_checks_model_names_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ae.safetensors");
    let ck = random_ae(10);
    save(&path, &ck).unwrap();

    let back = load_expecting(&path, "ae", &expected("ae")).unwrap();
    assert_bits_equal(&ck.tensors, &back.tensors);

    let e = format!(
        "{:#}",
        load_expecting(&path, "vae", &expected("vae")).unwrap_err()
    );
    assert!(
        e.contains(&path.display().to_string()) && e.contains("\"ae\"") && e.contains("vae"),
        "{e}"
    );

    let mut want = expected("ae");
    want[2].1 = vec![4, 8, 5, 5];
    let e = format!("{:#}", load_expecting(&path, "ae", &want).unwrap_err());
    assert!(
        e.contains("encoder.2.weight") && e.contains("[4, 8, 3, 3]") && e.contains("[4, 8, 5, 5]"),
        "{e}"
    );

    let mut want = expected("ae");
    want.push(("encoder.4.weight".into(), vec![2, 4, 3, 3]));
    let e = format!("{:#}", load_expecting(&path, "ae", &want).unwrap_err());
    assert!(
        e.contains("encoder.4.weight") && e.contains("missing"),
        "{e}"
    );

    let mut want = expected("ae");
    want.pop();
    let e = format!("{:#}", load_expecting(&path, "ae", &want).unwrap_err());
    assert!(
        e.contains("decoder.2.bias") && e.contains("unexpected"),
        "{e}"
    );
}

#[test]
fn pytorch_name_tables_match_torch_state_dict() {
    let count = |m: &str| -> usize {
        pytorch_names(m)
            .unwrap()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    };
    assert_eq!(count("ae"), 741);
    assert_eq!(count("vae"), 17_102_224);
    assert!(pytorch_names("gan").is_none());
    assert_eq!(AE_PARAMS.len(), 8);
    assert_eq!(VAE_PARAMS.len(), 10);

    // pytorch_names.json is `state_dict()` of tools/seed_models.py as PyTorch itself lists it.
    let text = std::fs::read_to_string(fixture_dir().join("pytorch_names.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for m in ["ae", "vae"] {
        let torch: Vec<(String, Vec<usize>)> =
            serde_json::from_value(v[m]["params"].clone()).unwrap();
        assert_eq!(
            torch,
            expected(m),
            "{m}: Rust table differs from torch state_dict"
        );
        assert_eq!(v[m]["count"].as_u64().unwrap() as usize, count(m));
    }
    // Every model's checkpoint (names and shapes from its spec, as `train` saves them) is the
    // state_dict of its PyTorch module, the two stronger variants included.
    for m in facegpu::model::registry::MODEL_NAMES {
        let spec = facegpu::model::registry::model(m).unwrap();
        let torch: Vec<(String, Vec<usize>)> = serde_json::from_value(v[*m]["params"].clone())
            .unwrap_or_else(|e| panic!("{m} missing from pytorch_names.json: {e}"));
        assert_eq!(
            spec.tensor_shapes(),
            torch,
            "{m}: spec differs from torch state_dict"
        );
        assert_eq!(
            v[*m]["count"].as_u64().unwrap() as usize,
            spec.parameter_count()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// PyTorch fixture

/// Deterministic fixture weights: parameter `p` (index in AE_PARAMS), element `k`. Scaled by
/// 1/sqrt(fan) so activations stay O(1) and the sigmoid is not saturated.
fn fixture_weight(p: usize, k: usize, shape: &[usize]) -> f32 {
    let fan: usize = if shape.len() > 1 {
        shape[1..].iter().product()
    } else {
        4
    };
    let s = (0.7 * k as f64 + 1.3 * p as f64 + 0.4).sin() / (fan as f64).sqrt();
    (if shape.len() == 1 { 0.3 * s } else { 1.5 * s }) as f32
}

/// The fixed input: two 128x128 images with values in [0.05, 0.95].
fn fixture_input() -> Vec<f32> {
    let mut x = Vec::with_capacity(2 * 128 * 128);
    for n in 0..2 {
        for i in 0..128 {
            for j in 0..128 {
                let (nf, fi, fj) = (n as f64, i as f64, j as f64);
                let v = 0.5
                    + 0.45
                        * (0.05 * fi * (nf + 1.0) + 0.08 * fj).sin()
                        * (0.03 * (fi - fj) + nf).cos();
                x.push(v as f32);
            }
        }
    }
    x
}

fn fixture_checkpoint() -> Checkpoint {
    let tensors = AE_PARAMS
        .iter()
        .enumerate()
        .map(|(p, (n, s))| {
            let len: usize = s.iter().product();
            (
                n.to_string(),
                s.to_vec(),
                (0..len).map(|k| fixture_weight(p, k, s)).collect(),
            )
        })
        .collect();
    let mut meta = CheckpointMeta::new("ae", 0, 0);
    meta.created_unix = 0; // reproducible bytes
    meta.options = json!({"fixture": "weights from fixture_weight() in tests/checkpoint.rs"});
    Checkpoint { tensors, meta }
}

/// Writes the Rust half of the fixture; run by hand (see the module comment), then run the
/// Python tools to refresh ae_torch_output.json.
#[test]
#[ignore]
fn write_ae_fixture() {
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).unwrap();
    save(&dir.join("ae_fixture.safetensors"), &fixture_checkpoint()).unwrap();
    let x = fixture_input();
    let view = safetensors::tensor::TensorView::new(
        safetensors::Dtype::F32,
        vec![2, 1, 128, 128],
        bytemuck::cast_slice(&x),
    )
    .unwrap();
    let bytes = safetensors::serialize([("input", view)], None).unwrap();
    write_atomic(&dir.join("ae_input.safetensors"), &bytes).unwrap();
}

/// Conv2d, PyTorch semantics: x [n,c,h,w], w [o,c,k,k], output [n,o,ho,wo] with
/// ho = (h + 2p - k)/s + 1; cross-correlation (no kernel flip).
fn conv2d(
    x: &[f64],
    dims: [usize; 4],
    w: &[f32],
    b: &[f32],
    o: usize,
    s: usize,
    p: usize,
) -> (Vec<f64>, [usize; 4]) {
    let [n, c, h, wd] = dims;
    let k = 3;
    let (ho, wo) = ((h + 2 * p - k) / s + 1, (wd + 2 * p - k) / s + 1);
    let mut y = vec![0f64; n * o * ho * wo];
    for ni in 0..n {
        for oc in 0..o {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = b[oc] as f64;
                    for ic in 0..c {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s + ky) as isize - p as isize;
                                let ix = (ox * s + kx) as isize - p as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                acc += w[((oc * c + ic) * k + ky) * k + kx] as f64
                                    * x[((ni * c + ic) * h + iy as usize) * wd + ix as usize];
                            }
                        }
                    }
                    y[((ni * o + oc) * ho + oy) * wo + ox] = acc;
                }
            }
        }
    }
    (y, [n, o, ho, wo])
}

/// ConvTranspose2d, PyTorch semantics: x [n,c,h,w], w [c,o,k,k] (in, out!), output size
/// (h-1)s - 2p + k + op; input (iy,ix) scatters into output (iy*s - p + ky, ix*s - p + kx).
#[allow(clippy::too_many_arguments)]
fn conv_transpose2d(
    x: &[f64],
    dims: [usize; 4],
    w: &[f32],
    b: &[f32],
    o: usize,
    s: usize,
    p: usize,
    op: usize,
) -> (Vec<f64>, [usize; 4]) {
    let [n, c, h, wd] = dims;
    let k = 3;
    let (ho, wo) = ((h - 1) * s + k + op - 2 * p, (wd - 1) * s + k + op - 2 * p);
    let mut y = vec![0f64; n * o * ho * wo];
    for ni in 0..n {
        for oc in 0..o {
            y[(ni * o + oc) * ho * wo..(ni * o + oc + 1) * ho * wo].fill(b[oc] as f64);
        }
        for ic in 0..c {
            for iy in 0..h {
                for ix in 0..wd {
                    let v = x[((ni * c + ic) * h + iy) * wd + ix];
                    for oc in 0..o {
                        for ky in 0..k {
                            for kx in 0..k {
                                let oy = (iy * s + ky) as isize - p as isize;
                                let ox = (ix * s + kx) as isize - p as isize;
                                if oy < 0 || ox < 0 || oy >= ho as isize || ox >= wo as isize {
                                    continue;
                                }
                                y[((ni * o + oc) * ho + oy as usize) * wo + ox as usize] +=
                                    v * w[((ic * o + oc) * k + ky) * k + kx] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    (y, [n, o, ho, wo])
}

#[test]
fn fixture_loads_with_pytorch_names_and_formula_weights() {
    let ck = load_expecting(
        &fixture_dir().join("ae_fixture.safetensors"),
        "ae",
        &expected("ae"),
    )
    .unwrap();
    assert_eq!(ck.num_params(), 741);
    // The committed file holds exactly the formula weights, so the Rust side is reproducible.
    assert_bits_equal(&ck.tensors, &fixture_checkpoint().tensors);
    let text = std::fs::read_to_string(fixture_dir().join("ae_torch_output.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["load_state_dict"], "strict=True ok");
    let torch: Vec<(String, Vec<usize>)> = serde_json::from_value(v["params"].clone()).unwrap();
    assert_eq!(torch, expected("ae"));
}

/// A float64 forward written plainly from PyTorch's definitions, on the fixture weights,
/// matches what PyTorch computed after load_state_dict(strict=True). Bound 1e-5 absolute: both
/// sides compute in float64 from the same f32 weights and input, the JSON keeps 10
/// significant digits, so agreement is ~1e-10 unless a layout (weight order, transposed-conv
/// [in,out] order, padding/output_padding placement) differs, which gives O(0.1) errors.
#[test]
fn fixture_ae_forward_matches_pytorch() {
    let dir = fixture_dir();
    let ck = load_expecting(&dir.join("ae_fixture.safetensors"), "ae", &expected("ae")).unwrap();
    let w = |name: &str| ck.tensor(name).unwrap().1;
    let bytes = std::fs::read(dir.join("ae_input.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let input = st.tensor("input").unwrap();
    assert_eq!(input.shape(), &[2, 1, 128, 128]);
    let x: Vec<f32> = input
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(
        x,
        fixture_input(),
        "ae_input.safetensors differs from fixture_input()"
    );
    let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();

    let relu = |v: &mut Vec<f64>| v.iter_mut().for_each(|a| *a = a.max(0.0));
    let (mut h1, d1) = conv2d(
        &x,
        [2, 1, 128, 128],
        w("encoder.0.weight"),
        w("encoder.0.bias"),
        8,
        2,
        1,
    );
    relu(&mut h1);
    let (mut z, dz) = conv2d(&h1, d1, w("encoder.2.weight"), w("encoder.2.bias"), 4, 2, 1);
    relu(&mut z);
    let (mut h2, d2) = conv_transpose2d(
        &z,
        dz,
        w("decoder.0.weight"),
        w("decoder.0.bias"),
        8,
        2,
        1,
        1,
    );
    relu(&mut h2);
    let (mut y, dy) = conv_transpose2d(
        &h2,
        d2,
        w("decoder.2.weight"),
        w("decoder.2.bias"),
        1,
        2,
        1,
        1,
    );
    y.iter_mut().for_each(|a| *a = 1.0 / (1.0 + (-*a).exp()));
    assert_eq!(dz, [2, 4, 32, 32]);
    assert_eq!(dy, [2, 1, 128, 128]);

    let text = std::fs::read_to_string(dir.join("ae_torch_output.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let get = |k: &str| -> Vec<f64> { serde_json::from_value(v[k].clone()).unwrap() };
    let (tz, ty) = (get("latent"), get("output"));
    assert_eq!(v["latent_shape"], json!([2, 4, 32, 32]));
    assert_eq!(v["output_shape"], json!([2, 1, 128, 128]));
    // Not a trivial fixture: the output varies and the latent has both active and dead units.
    let spread = ty.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
        - ty.iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(spread > 0.05, "fixture output nearly constant ({spread})");
    assert!(tz.contains(&0.0) && tz.iter().any(|&a| a > 0.1));
    eprintln!(
        "max |ours - PyTorch|: latent {:.2e}, output {:.2e}",
        max_err(&z, &tz),
        max_err(&y, &ty)
    );
    common::assert_close("latent vs PyTorch", &z, &tz, 0.0, 1e-5);
    common::assert_close("output vs PyTorch", &y, &ty, 0.0, 1e-5);
}

/// The largest absolute difference of two equally long slices.
fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// facegpu's GPU forward of `model` with weights `tensors` on fixture_input() as `eval` runs it
/// (a VAE decodes its mean): (latent, output), the output poisoned with NaN beforehand so an
/// unwritten element fails.
fn gpu_forward(model: &str, tensors: &[(String, Vec<usize>, Vec<f32>)]) -> (Vec<f64>, Vec<f64>) {
    use facegpu::model::graph::{Graph, Latent};
    use facegpu::model::params::Params;
    use facegpu::ops::step::{StepState, StepValues};
    let gpu = common::gpu();
    let spec = facegpu::model::registry::model(model).unwrap();
    let params = Params::from_host(gpu, &spec, tensors).unwrap();
    let input = gpu.upload(&fixture_input(), &[2, 1, 128, 128]).unwrap();
    let g = Graph::new(gpu, &spec, &params, 2, input.clone(), input, Latent::Mean).unwrap();
    gpu.fill(&g.output, f32::NAN);
    let step = StepState::new(gpu, StepValues::first(0.0));
    let mut rec = gpu.record();
    g.record_forward(&mut rec, &params, 0, &step, 1.0).unwrap();
    rec.run().unwrap();
    (common::read(g.latent()), common::read(&g.output))
}

/// facegpu's own forward pass (the GPU kernels of src/model/graph.rs, the AE with z = the
/// encoder output as `eval` runs it: Latent::Mean) on the fixture checkpoint, loaded with the
/// crate's loader, matches PyTorch's output. Bound 1e-5 absolute: the kernels compute in f32
/// from the same f32 weights (rounding over at most 72-term sums of O(1) values is ~1e-6);
/// a layout or padding mistake gives O(0.1) errors, as in the float64 test above.
#[test]
fn fixture_gpu_forward_matches_pytorch() {
    let gpu = common::gpu();
    let dir = fixture_dir();
    let ck = load_expecting(&dir.join("ae_fixture.safetensors"), "ae", &expected("ae")).unwrap();
    let (z, y) = gpu_forward("ae", &ck.tensors);

    let text = std::fs::read_to_string(dir.join("ae_torch_output.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let get = |k: &str| -> Vec<f64> { serde_json::from_value(v[k].clone()).unwrap() };
    let (tz, ty) = (get("latent"), get("output"));
    eprintln!(
        "max |facegpu GPU - PyTorch| on {}: latent {:.2e}, output {:.2e}",
        gpu.describe(),
        max_err(&z, &tz),
        max_err(&y, &ty)
    );
    common::assert_close("GPU latent vs PyTorch", &z, &tz, 0.0, 1e-5);
    common::assert_close("GPU output vs PyTorch", &y, &ty, 0.0, 1e-5);
}

// ---------------------------------------------------------------------------------------------
// The stronger variants: the same fixture (formula weights, fixture_input), their PyTorch
// modules in tools/seed_models.py. Only PyTorch's outputs are committed
// (`{model}_torch_output.json`); the checkpoint is rebuilt here from the formula, bit for bit
// what `write_variant_fixtures` gave PyTorch (test that by hand: regenerate and diff the JSON).

const VARIANTS: [&str; 2] = ["ae-wide", "conv-vae"];

/// The fixture checkpoint of `model`: fixture_weight over its spec's tensors, in spec order.
fn variant_checkpoint(model: &str) -> Checkpoint {
    let spec = facegpu::model::registry::model(model).unwrap();
    let tensors = spec
        .tensor_shapes()
        .into_iter()
        .enumerate()
        .map(|(p, (n, s))| {
            let len: usize = s.iter().product();
            let data = (0..len).map(|k| fixture_weight(p, k, &s)).collect();
            (n, s, data)
        })
        .collect();
    let mut meta = CheckpointMeta::new(model, 0, 0);
    meta.created_unix = 0;
    meta.options = json!({"fixture": "weights from fixture_weight() in tests/checkpoint.rs"});
    Checkpoint { tensors, meta }
}

/// Writes the variants' fixture checkpoints to target/variant-fixtures/ (not committed: 48 KB
/// and 10 MB) for tools/torch_load_check.py; see tests/fixtures/checkpoint/README.md.
#[test]
#[ignore]
fn write_variant_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/variant-fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    for m in VARIANTS {
        let path = dir.join(format!("{m}_fixture.safetensors"));
        save(&path, &variant_checkpoint(m)).unwrap();
        eprintln!("wrote {}", path.display());
    }
}

/// facegpu's GPU forward of `ae-wide` and `conv-vae` (the latter decoding its mean, as `eval`
/// does) on the formula weights, saved and loaded with the crate's own checkpoint code, matches
/// PyTorch's forward after `load_state_dict(strict=True)` of the same weights into the modules
/// of tools/seed_models.py: so their checkpoints load in PyTorch and mean the same there. Bound
/// 1e-5 absolute (measured: 1.3e-7 and 2.8e-7): f32 sums of up to 4096 terms (conv-vae's heads)
/// with small weights; a layout mistake (weight order, the flatten / unflatten order around the
/// linear layers, padding) gives O(0.1) errors. The JSON keeps 8 significant digits.
#[test]
fn variant_gpu_forward_matches_pytorch() {
    let gpu = common::gpu();
    let tmp = tempfile::tempdir().unwrap();
    for m in VARIANTS {
        let text =
            std::fs::read_to_string(fixture_dir().join(format!("{m}_torch_output.json"))).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["load_state_dict"], "strict=True ok");
        let spec = facegpu::model::registry::model(m).unwrap();
        let path = tmp.path().join(format!("{m}.safetensors"));
        save(&path, &variant_checkpoint(m)).unwrap();
        let ck = load_expecting(&path, m, &spec.tensor_shapes()).unwrap();
        let torch_params: Vec<(String, Vec<usize>)> =
            serde_json::from_value(v["params"].clone()).unwrap();
        assert_eq!(torch_params, spec.tensor_shapes(), "{m}");

        let (z, y) = gpu_forward(m, &ck.tensors);

        let get = |k: &str| -> Vec<f64> { serde_json::from_value(v[k].clone()).unwrap() };
        let (tz, ty) = (get("latent"), get("output"));
        assert_eq!((z.len(), y.len()), (tz.len(), ty.len()), "{m}: sizes");
        // Not a trivial fixture: the output varies.
        let spread = ty.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
            - ty.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!(
            spread > 0.05,
            "{m}: fixture output nearly constant ({spread})"
        );
        eprintln!(
            "{m}: max |facegpu GPU - PyTorch| on {}: latent {:.2e}, output {:.2e}",
            gpu.describe(),
            max_err(&z, &tz),
            max_err(&y, &ty)
        );
        common::assert_close(&format!("{m} GPU latent vs PyTorch"), &z, &tz, 0.0, 1e-5);
        common::assert_close(&format!("{m} GPU output vs PyTorch"), &y, &ty, 0.0, 1e-5);
    }
}
