//! `eval` on checkpoints trained here: clean and noisy conditions, the same numbers twice,
//! the outputs written (what they say was evaluated), the dataset found however its path is
//! spelled and refused with the changed files named when its split differs, clear errors for
//! bad checkpoints and options; `compare`; and `metrics` (the dataset's gray conversion,
//! folders with sub-folders).
mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::gpu;
use facegpu::data::Part;
use facegpu::eval::{self, EvalOptions};
use facegpu::train::TrainOptions;

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
        synthetic_count: 80,
        epochs: 1,
        batch: 16,
        seed: 3,
        split: [0.6, 0.2, 0.2],
        ..TrainOptions::new(model, t.path())
    };
    common::train_quietly(&o);
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
        let mut files = vec![
            "results.json".to_string(),
            "per_image.csv".into(),
            "grid.png".into(),
        ];
        for key in ["clean", "noisy_vs_input", "noisy_vs_clean"] {
            files.extend(eval::histogram_files(key));
        }
        for f in &files {
            assert!(out.path().join(f).is_file(), "{model}: {f} missing");
        }
        let csv = std::fs::read_to_string(out.path().join("per_image.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + 3 * 16, "{model}");
        // rows name the condition and the face (synthetic faces by their index), not numbers
        let rows: Vec<Vec<&str>> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        for (i, key) in ["clean", "noisy_vs_input", "noisy_vs_clean"]
            .iter()
            .enumerate()
        {
            let block = &rows[i * 16..(i + 1) * 16];
            assert!(block.iter().all(|r| r[0] == *key), "{model}: {csv}");
            assert!(
                block.iter().all(|r| r[1].starts_with("synthetic/0/")),
                "{csv}"
            );
        }
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

/// `p` as a path relative to the working directory ("../../tmp/x"), which resolves only from
/// here.
fn relative_from_cwd(p: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
    let p = p.canonicalize().unwrap();
    let mut rel = PathBuf::new();
    for _ in cwd.components().skip(1) {
        rel.push("..");
    }
    rel.push(p.strip_prefix("/").unwrap());
    rel
}

/// Removes the default cache's file for a temporary folder (eval caches folders as training
/// does), whatever spelling of the folder it was loaded by.
fn forget_cache(folder: &Path) {
    if let Some(dir) = facegpu::data::cache::default_dir() {
        let _ = std::fs::remove_file(facegpu::data::cache::path_for(&dir, folder));
    }
}

/// A run of `ae` on a folder of 40 faces in `root/faces`, trained with the folder named by a
/// path relative to the working directory; the checkpoint lies in `root/run`.
fn trained_on_folder(root: &Path) -> PathBuf {
    let faces = root.join("faces");
    facegpu::data::write_synth(40, 7, &faces).unwrap();
    let o = TrainOptions {
        dataset: Some(relative_from_cwd(&faces)),
        synthetic_count: 0,
        epochs: 1,
        batch: 8,
        seed: 5,
        l1: 0.0,
        l2: 0.0,
        split: [0.6, 0.2, 0.2],
        cache: facegpu::data::CacheChoice::Off,
        ..TrainOptions::new("ae", root.join("run"))
    };
    common::train_quietly(&o);
    root.join("run").join("best.safetensors")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The folder a checkpoint was trained on is the same folder however its path is spelled
/// (trailing slash, `.` and `..` components, relative or absolute) or wherever an identical
/// copy lies; training records it as an absolute path, so eval without --dataset finds it.
#[test]
fn the_training_folder_is_accepted_however_it_is_spelled() {
    let root = tempfile::tempdir().unwrap();
    let ck = trained_on_folder(root.path());
    let faces = root.path().join("faces");
    // recorded absolute, the folder itself (not the relative spelling training was given)
    let meta = facegpu::model::checkpoint::load(&ck).unwrap().meta;
    let recorded = PathBuf::from(meta.options["dataset"].as_str().unwrap());
    assert!(recorded.is_absolute(), "{recorded:?}");
    assert_eq!(recorded, faces.canonicalize().unwrap());

    let copy = root.path().join("copy");
    copy_dir(&faces, &copy);
    let out = root.path().join("eval");
    let mut o = opts(&ck);
    o.out = Some(out.clone());
    let base = eval::evaluate(gpu(), &o).unwrap();
    assert_eq!(base.images, 8);
    // the faces by file name; compare names the folder
    let csv = std::fs::read_to_string(out.join("per_image.csv")).unwrap();
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| l.starts_with("clean,synthetic-") && l.contains(".png,")),
        "{csv}"
    );
    let table = eval::compare(&[out.join("results.json")]).unwrap();
    assert!(table.contains("| faces test (8) "), "{table}");
    assert!(!table.contains("SYNTHETIC"), "{table}");
    for spelling in [
        PathBuf::from(format!("{}/", faces.display())),
        root.path().join(".").join("faces"),
        root.path().join("run").join("..").join("faces"),
        relative_from_cwd(&faces),
        faces.canonicalize().unwrap(),
        copy.clone(),
    ] {
        let mut o = opts(&ck);
        o.dataset = Some(spelling.clone());
        let r = eval::evaluate(gpu(), &o)
            .unwrap_or_else(|e| panic!("--dataset {}: {e:#}", spelling.display()));
        assert_eq!(
            serde_json::to_string(&r.conditions).unwrap(),
            serde_json::to_string(&base.conditions).unwrap(),
            "{spelling:?}"
        );
    }
    forget_cache(&faces);
    forget_cache(&copy);
}

/// A checkpoint that recorded its folder relative to where training ran (as facegpu did
/// before) is evaluated from another working directory: the folder is found from where the
/// checkpoint lies; when it is nowhere, the error asks for --dataset without blaming one.
#[test]
fn a_relative_recorded_folder_is_found_from_the_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let ck = trained_on_folder(root.path());
    let mut c = facegpu::model::checkpoint::load(&ck).unwrap();
    // as if trained in root with `--dataset faces --out run`
    c.meta.options["dataset"] = "faces".into();
    c.meta.options["out"] = "run".into();
    let old = root.path().join("run").join("old.safetensors");
    facegpu::model::checkpoint::save(&old, &c).unwrap();
    let r = eval::evaluate(gpu(), &opts(&old)).unwrap();
    assert_eq!(r.images, 8);
    assert_eq!(
        r.dataset.as_deref(),
        Some(
            root.path()
                .join("faces")
                .canonicalize()
                .unwrap()
                .to_str()
                .unwrap()
        )
    );
    // nowhere to be found
    c.meta.options["dataset"] = "gone/faces".into();
    facegpu::model::checkpoint::save(&old, &c).unwrap();
    let e = format!("{:#}", eval::evaluate(gpu(), &opts(&old)).unwrap_err());
    assert!(
        e.contains("gone/faces") && e.contains("pass --dataset"),
        "{e}"
    );
    assert!(!e.contains("check the path given to --dataset"), "{e}");
    forget_cache(&root.path().join("faces"));
}

/// A folder whose files changed since training is refused, naming the files added and
/// removed; the advice depends on whether it is the folder training used.
#[test]
fn a_changed_folder_is_refused_with_the_changed_files_named() {
    let root = tempfile::tempdir().unwrap();
    let ck = trained_on_folder(root.path());
    let faces = root.path().join("faces");
    let mut names: Vec<String> = std::fs::read_dir(&faces)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    names.sort();
    // a copy with one file removed and seven added (five named, then a count)
    let copy = root.path().join("copy");
    copy_dir(&faces, &copy);
    std::fs::remove_file(copy.join(&names[3])).unwrap();
    for i in 0..7 {
        std::fs::copy(faces.join(&names[0]), copy.join(format!("zz_new_{i}.png"))).unwrap();
    }
    let mut o = opts(&ck);
    o.dataset = Some(copy.clone());
    let e = format!("{:#}", eval::evaluate(gpu(), &o).unwrap_err());
    assert!(e.contains("split"), "{e}");
    assert!(
        e.contains("7 files not in the training run's split")
            && e.contains("zz_new_0.png")
            && e.contains("zz_new_4.png")
            && !e.contains("zz_new_5.png")
            && e.contains("and 2 more"),
        "{e}"
    );
    assert!(
        e.contains("1 file of the training run's split missing") && e.contains(&names[3]),
        "{e}"
    );
    assert!(
        e.contains("pass --dataset with the folder it was trained on"),
        "{e}"
    );
    assert!(!e.contains("file lists differ"), "{e}");
    // the training folder itself, changed: no advice to use the same folder
    std::fs::remove_file(faces.join(&names[5])).unwrap();
    let e = format!("{:#}", eval::evaluate(gpu(), &opts(&ck)).unwrap_err());
    assert!(e.contains(&names[5]), "{e}");
    assert!(e.contains("this is the folder it was trained on"), "{e}");
    assert!(!e.contains("pass --dataset with the folder"), "{e}");
    forget_cache(&faces);
    forget_cache(&copy);
}

/// The terminal report says what was evaluated; with noise it is one table with a column per
/// condition (rows: metric and statistic); without, the seeds' table as before.
#[test]
fn the_report_says_what_was_evaluated_and_puts_noisy_beside_clean() {
    let ck = trained("ae");
    let mut o = opts(&ck);
    let clean = eval::evaluate(gpu(), &o).unwrap();
    let m = eval::markdown(&clean);
    assert!(m.contains("the test split (16 images)"), "{m}");
    assert!(m.contains("SYNTHETIC"), "{m}");
    assert!(m.contains("noise: none") && m.contains("seed 3"), "{m}");
    let head = m.lines().find(|l| l.starts_with("| metric")).unwrap();
    let cols: Vec<&str> = head.split('|').map(str::trim).collect();
    assert_eq!(cols, ["", "metric", "mean", "median", "std", ""], "{m}");
    assert_eq!(m.matches("| metric").count(), 1, "{m}");
    assert_eq!(m.matches("PSNR of the mean MSE").count(), 1, "{m}");

    o.noise = Some(0.1);
    o.seed = Some(11);
    let noisy = eval::evaluate(gpu(), &o).unwrap();
    let m = eval::markdown(&noisy);
    assert!(
        m.contains("sigma 0.1") && m.contains("clipped to [0, 1]"),
        "{m}"
    );
    assert!(m.contains("seed 11"), "{m}");
    let tables: Vec<&str> = m.lines().filter(|l| l.starts_with("| metric")).collect();
    assert_eq!(tables.len(), 1, "one table: {m}");
    for h in [
        "statistic",
        "clean",
        "noisy: vs noisy input",
        "noisy: vs clean face",
    ] {
        assert!(tables[0].contains(h), "{m}");
    }
    let body: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| metric") && !l.starts_with("| -"))
        .collect();
    assert_eq!(body.len(), 4 * 3, "4 metrics x mean, median, std: {m}");
    assert!(body.iter().any(|l| l.contains("SSIM (Gaussian)")), "{m}");
    // the cells are the conditions' own numbers, side by side
    let psnr_mean = body.iter().find(|l| l.contains("PSNR (dB)")).unwrap();
    for c in &noisy.conditions {
        assert!(
            psnr_mean.contains(&format!("{:.3}", c.summary.psnr.mean)),
            "{psnr_mean}"
        );
    }
    let line = m
        .lines()
        .find(|l| l.starts_with("PSNR of the mean MSE"))
        .unwrap();
    for c in &noisy.conditions {
        assert!(
            line.contains(&format!("{:.3}", c.summary.psnr_of_mean_mse)),
            "{line}"
        );
    }
}

/// results.json records the seed, sigma, clip, data and split; compare tells a 0.1 run from
/// a 0.3 one, shows the PSNR of the mean MSE, marks synthetic results, and still reads files
/// written before those fields existed.
#[test]
fn results_and_compare_say_sigma_seed_and_data() {
    let ck = trained("ae");
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for sigma in [0.1f32, 0.3] {
        let mut o = opts(&ck);
        o.noise = Some(sigma);
        o.out = Some(dir.path().join(format!("s{sigma}")));
        eval::evaluate(gpu(), &o).unwrap();
        paths.push(dir.path().join(format!("s{sigma}")).join("results.json"));
    }
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&paths[1]).unwrap()).unwrap();
    assert_eq!(j["sigma"].as_f64().unwrap() as f32, 0.3);
    assert_eq!(j["seed"], 3);
    assert_eq!(j["clip"], true);
    assert_eq!(j["split"], "test");
    assert_eq!(j["images"], 16);
    assert_eq!(j["synthetic"], true);
    assert!(j["dataset"].is_null(), "{j}");
    assert!(j["source"].as_str().unwrap().contains("SYNTHETIC"), "{j}");
    assert_eq!(j["conditions"][2]["key"], "noisy_vs_clean");

    let table = eval::compare(&paths).unwrap();
    let rows: Vec<&str> = table.lines().filter(|l| l.contains("ae (")).collect();
    assert_eq!(rows.len(), 6, "{table}");
    let sigma_of = |row: &str| row.split('|').nth(4).unwrap().trim().to_string();
    assert_eq!(
        rows.iter().map(|r| sigma_of(r)).collect::<Vec<_>>(),
        ["0", "0.1", "0.1", "0", "0.3", "0.3"],
        "{table}"
    );
    assert!(table.contains("PSNR of mean MSE"), "{table}");
    assert!(rows.iter().all(|r| r.contains("SYNTHETIC")), "{table}");
    let r: eval::EvalResults =
        serde_json::from_str(&std::fs::read_to_string(&paths[0]).unwrap()).unwrap();
    assert!(rows[1].contains(&format!("{:.3}", r.conditions[1].summary.psnr_of_mean_mse)));

    // an older results.json: "noise" for sigma, no seed, clip, source or condition keys
    let mut old = j.clone();
    let o = old.as_object_mut().unwrap();
    o.insert("noise".into(), o["sigma"].clone());
    for k in ["sigma", "seed", "clip", "source", "dataset"] {
        o.remove(k);
    }
    for c in o["conditions"].as_array_mut().unwrap() {
        c.as_object_mut().unwrap().remove("key");
    }
    let old_path = dir.path().join("old.json");
    std::fs::write(&old_path, serde_json::to_string(&old).unwrap()).unwrap();
    let table = eval::compare(&[old_path]).unwrap();
    let sigmas: Vec<String> = table
        .lines()
        .filter(|l| l.contains("ae ("))
        .map(|r| r.split('|').nth(4).unwrap().trim().to_string())
        .collect();
    assert_eq!(sigmas, ["0", "0.3", "0.3"], "{table}");
    assert!(table.contains("noisy: vs clean face"), "{table}");
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
