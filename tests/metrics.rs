mod common;
mod reference;

use common::*;
use facegpu::ops::metrics;
use reference::metrics as r;

/// n image pairs of h x w (values exactly representable in f32): a smooth pattern plus noise,
/// and a copy with uniform noise of amplitude `noise`.
fn random_pair(seed: u64, n: usize, h: usize, w: usize, noise: f64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in 0..n {
        for y in 0..h {
            for x in 0..w {
                let v = 0.5
                    + 0.3 * ((y as f64 * 0.2 + i as f64).sin() * (x as f64 * 0.13).cos())
                    + rng.uniform(-0.1, 0.1);
                let v = (v.clamp(0.0, 1.0) as f32) as f64;
                a.push(v);
                b.push((((v + rng.uniform(-noise, noise)).clamp(0.0, 1.0)) as f32) as f64);
            }
        }
    }
    (a, b)
}

/// Runs `record` into a NaN-poisoned [n, 4] output and returns its rows.
fn run_poisoned(a: &[f64], b: &[f64], n: usize, h: usize, w: usize) -> Vec<f64> {
    run_opts(a, b, n, h, w, metrics::Options::default())
}

/// `record_opts` into a NaN-poisoned [n, 4] output.
fn run_opts(
    a: &[f64],
    b: &[f64],
    n: usize,
    h: usize,
    w: usize,
    opts: metrics::Options,
) -> Vec<f64> {
    let at = upload(a, &[n, 1, h, w]);
    let bt = upload(b, &[n, 1, h, w]);
    let out = poisoned(&[n, 4]);
    let mut rec = gpu().record();
    metrics::record_opts(&mut rec, &at, &bt, &out, opts).unwrap();
    rec.run().unwrap();
    read(&out)
}

#[test]
fn matches_reference() {
    let mut textured = 0;
    // batch 1 and 3, square, odd and non-square sizes, the 11x11 minimum, w not a multiple of 8
    for &(n, h, w, noise) in &[
        (1usize, 128usize, 128usize, 0.05),
        (3, 37, 53, 0.05),
        (2, 11, 11, 0.2),
        (1, 12, 130, 0.01),
        (3, 45, 19, 0.3),
        // bands (>= 256 invocations): 70 rows in 32-row bands (32, 32, 6), 100 rows in 64-row
        // bands (64, 36), 20 rows as one whole-image band; w not a multiple of 16
        (8, 70, 21, 0.1),
        (4, 100, 500, 0.1),
        (16, 20, 250, 0.1),
        // the texture path's shapes (widths 64 * 2^k): non-square, odd batch, odd height
        (3, 37, 256, 0.05),
        (2, 130, 64, 0.1),
        // batches large enough that on lavapipe the textures are the tensors' own memory
        // (gpu::alias): whole 4-row groups, and a height llvmpipe pads (copied instead)
        (5, 128, 128, 0.1),
        (4, 130, 128, 0.1),
    ] {
        let (a, b) = random_pair(n as u64 * 1000 + h as u64 + w as u64, n, h, w, noise);
        let got = run_poisoned(&a, &b, n, h, w);
        let mut want = Vec::new();
        for i in 0..n {
            let s = i * h * w..(i + 1) * h * w;
            want.extend(r::metrics(&a[s.clone()], &b[s], h, w));
        }
        let col = |v: &[f64], j: usize| v.iter().skip(j).step_by(4).copied().collect::<Vec<_>>();
        let what = format!("{n}x{h}x{w}");
        // mse: f32 sums of small squares, ~1e-6 relative
        assert_close(
            &format!("{what} mse"),
            &col(&got, 0),
            &col(&want, 0),
            1e-5,
            0.0,
        );
        // psnr in f32 from the f32 mse: 10 log10 of a value good to 1e-6 relative, ~1e-5 dB
        assert_close(
            &format!("{what} psnr"),
            &col(&got, 1),
            &col(&want, 1),
            0.0,
            1e-4,
        );
        // ssim values in [-1, 1] from f32 window sums around a local shift: ~1e-7, bound 2e-6
        assert_close(
            &format!("{what} ssim"),
            &col(&got, 2),
            &col(&want, 2),
            0.0,
            2e-6,
        );
        assert_close(
            &format!("{what} ssim_g"),
            &col(&got, 3),
            &col(&want, 3),
            0.0,
            2e-6,
        );
        // the box-only pass (no Gaussian SSIM): same bounds, NaN in column 3, read from the
        // buffers and, where the shape allows (width 64 * 2^k, as 128x128), from textures
        for reads in [metrics::Reads::Buffers, metrics::Reads::Textures] {
            if reads == metrics::Reads::Textures && !metrics::textures_fit(gpu(), n, h, w) {
                continue;
            }
            textured += (reads == metrics::Reads::Textures) as usize;
            let what = format!("{what} {reads:?}");
            let opts = metrics::Options {
                gaussian: false,
                reads,
            };
            let got = run_opts(&a, &b, n, h, w, opts);
            assert_close(
                &format!("{what} box mse"),
                &col(&got, 0),
                &col(&want, 0),
                1e-5,
                0.0,
            );
            assert_close(
                &format!("{what} box psnr"),
                &col(&got, 1),
                &col(&want, 1),
                0.0,
                1e-4,
            );
            assert_close(
                &format!("{what} box ssim"),
                &col(&got, 2),
                &col(&want, 2),
                0.0,
                2e-6,
            );
            assert!(
                col(&got, 3).iter().all(|v| v.is_nan()),
                "{what}: column 3 must be NaN"
            );
        }
    }
    assert!(textured >= 3, "the texture path ran on {textured} shapes");
}

#[test]
fn identical_images() {
    // exact: d = 0 everywhere, so mse is 0, psnr +inf, and both SSIM maps are exactly 1
    let (a, _) = random_pair(7, 3, 23, 17, 0.0);
    let got = run_poisoned(&a, &a, 3, 23, 17);
    for row in got.chunks(4) {
        assert_eq!(row[0], 0.0);
        assert!(row[1].is_infinite() && row[1] > 0.0, "psnr {}", row[1]);
        assert!(
            (row[2] - 1.0).abs() < 1e-6 && (row[3] - 1.0).abs() < 1e-6,
            "{row:?}"
        );
    }
}

#[test]
fn rejects_bad_shapes() {
    let t = gpu().zeros(&[1, 1, 10, 20]);
    let out = gpu().zeros(&[1, 4]);
    let mut rec = gpu().record();
    let e = metrics::record(&mut rec, &t, &t, &out).unwrap_err();
    assert!(e.to_string().contains("at least 11x11"), "{e}");
    // the texture path: box-only, widths 64 * 2^k; asked for otherwise, a clear error
    let t = gpu().zeros(&[1, 1, 16, 192]);
    let textures = |gaussian| metrics::Options {
        gaussian,
        reads: metrics::Reads::Textures,
    };
    let e = metrics::record_opts(&mut rec, &t, &t, &out, textures(false)).unwrap_err();
    assert!(e.to_string().contains("64 * 2^k"), "{e}");
    let t = gpu().zeros(&[1, 1, 16, 128]);
    let e = metrics::record_opts(&mut rec, &t, &t, &out, textures(true)).unwrap_err();
    assert!(e.to_string().contains("box-only"), "{e}");
    assert!(metrics::record_opts(&mut rec, &t, &t, &out, textures(false)).is_ok());
}

#[derive(serde::Deserialize)]
struct Fixture {
    pairs: Vec<Pair>,
}
#[derive(serde::Deserialize)]
struct Pair {
    name: String,
    reference: String,
    distorted: String,
    mse: f64,
    psnr: f64,
    ssim: f64,
    ssim_gaussian: f64,
}

#[test]
fn matches_scikit_image_fixtures() {
    // tests/fixtures/metrics/expected.json comes from tools/skimage_fixtures.py (scikit-image)
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics");
    let fx: Fixture =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    assert!(fx.pairs.len() >= 2);
    for p in &fx.pairs {
        let load = |f: &str| {
            let img = image::open(dir.join(f)).unwrap().to_luma8();
            let (w, h) = img.dimensions();
            let v: Vec<f32> = img.as_raw().iter().map(|&b| b as f32 / 255.0).collect();
            (v, h as usize, w as usize)
        };
        let (a, h, w) = load(&p.reference);
        let (b, _, _) = load(&p.distorted);
        let m = metrics::compute(gpu(), &a, &b, 1, h, w).unwrap()[0];
        let opts = metrics::Options {
            gaussian: false,
            ..Default::default()
        };
        let mb = metrics::compute_opts(gpu(), &a, &b, 1, h, w, opts).unwrap()[0];
        println!(
            "{}: {m:?}; |ssim - skimage| {:.1e} (box-only pass {:.1e}), |ssim_gaussian - skimage| {:.1e}",
            p.name,
            (m.ssim - p.ssim).abs(),
            (mb.ssim - p.ssim).abs(),
            (m.ssim_gaussian - p.ssim_gaussian).abs()
        );
        // the box-only pass: same bounds for mse and ssim, NaN for the Gaussian SSIM
        assert!(
            (mb.mse - p.mse).abs() < 1e-5 * p.mse.max(1e-3),
            "{} box mse",
            p.name
        );
        assert!(
            (mb.ssim - p.ssim).abs() < 1e-5,
            "{} box ssim {} vs {}",
            p.name,
            mb.ssim,
            p.ssim
        );
        assert!(mb.ssim_gaussian.is_nan(), "{} box ssim_gaussian", p.name);
        // within 1e-5 (psnr: 1e-5 relative) of scikit-image's float64 values
        assert!(
            (m.mse - p.mse).abs() < 1e-5 * p.mse.max(1e-3),
            "{} mse {} vs {}",
            p.name,
            m.mse,
            p.mse
        );
        assert!(
            (m.psnr - p.psnr).abs() < 1e-5 * p.psnr,
            "{} psnr {} vs {}",
            p.name,
            m.psnr,
            p.psnr
        );
        assert!(
            (m.ssim - p.ssim).abs() < 1e-5,
            "{} ssim {} vs {}",
            p.name,
            m.ssim,
            p.ssim
        );
        assert!(
            (m.ssim_gaussian - p.ssim_gaussian).abs() < 1e-5,
            "{} ssim_gaussian {} vs {}",
            p.name,
            m.ssim_gaussian,
            p.ssim_gaussian
        );
    }
}

/// CPU seconds this process has used (all threads, lavapipe's workers included).
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let tick = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (tick(11) + tick(12)) / 100.0
}

#[test]
#[ignore]
fn bench() {
    // images/s of the fused metrics at 128x128: cargo test --test metrics bench -- --ignored
    // Wall time via time_program; on a shared machine also images per CPU second (x cores for
    // what an idle machine would do), comparable with tools/skimage_speed.py's second number.
    for batch in [1usize, 128] {
        let b = metrics::bench_programs(gpu(), batch).unwrap();
        let t = facegpu::gpu::timing::time_program(gpu(), &b[0].program, 5, 5).unwrap();
        let (c0, reps) = (cpu_seconds(), 10);
        for _ in 0..reps {
            b[0].program.run(gpu()).unwrap();
        }
        let cpu = (cpu_seconds() - c0) / reps as f64;
        println!(
            "{} on {}: {:.1} us/run, {:.0} images/s wall; {:.0} images per CPU second",
            b[0].name,
            gpu().describe(),
            t.seconds() * 1e6,
            batch as f64 / t.seconds(),
            batch as f64 / cpu
        );
    }
}

/// A fresh temp folder for one test.
fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("facegpu-metrics-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A seeded 8-bit test image of h x w.
fn gray_image(seed: u64, h: u32, w: u32) -> image::GrayImage {
    let mut rng = Rng::new(seed);
    image::GrayImage::from_fn(w, h, |x, y| {
        let v = 128.0
            + 80.0 * ((y as f64 * 0.21).sin() * (x as f64 * 0.17).cos())
            + rng.uniform(-30.0, 30.0);
        image::Luma([v.clamp(0.0, 255.0) as u8])
    })
}

fn unit(img: &image::GrayImage) -> Vec<f64> {
    // the f32 values the GPU sees, in float64
    img.as_raw()
        .iter()
        .map(|&v| (v as f32 / 255.0) as f64)
        .collect()
}

#[test]
fn metrics_cmd_files_and_folders() {
    use facegpu::metrics_cmd;
    let dir = temp_dir("cmd");
    let (rdir, ddir) = (dir.join("ref"), dir.join("dist"));
    std::fs::create_dir_all(&rdir).unwrap();
    std::fs::create_dir_all(&ddir).unwrap();
    // three pairs: identical, shifted by one column, and a different (non-square) size, so
    // the folder run needs two batches (batch 2) and a size change
    let a = gray_image(1, 40, 40);
    let shifted = image::GrayImage::from_fn(40, 40, |x, y| *a.get_pixel((x + 1) % 40, y));
    let c = gray_image(2, 23, 31);
    let c2 = gray_image(3, 23, 31);
    a.save(rdir.join("a.png")).unwrap();
    a.save(ddir.join("a.png")).unwrap();
    a.save(rdir.join("b.png")).unwrap();
    shifted.save(ddir.join("b.png")).unwrap();
    c.save(rdir.join("c.png")).unwrap();
    c2.save(ddir.join("c.png")).unwrap();

    // an image against itself: mse 0 (psnr +inf), both SSIMs 1
    let rep = metrics_cmd::run(gpu(), &rdir.join("a.png"), &ddir.join("a.png"), 8).unwrap();
    assert_eq!(rep.pairs.len(), 1);
    let m = rep.pairs[0].metrics;
    assert!(m.mse == 0.0 && m.psnr.is_infinite(), "{m:?}");
    assert!(
        (m.ssim - 1.0).abs() < 1e-6 && (m.ssim_gaussian - 1.0).abs() < 1e-6,
        "{m:?}"
    );

    let rep = metrics_cmd::run(gpu(), &rdir, &ddir, 2).unwrap();
    assert_eq!(rep.pairs.len(), 3);
    assert_eq!(rep.summary.identical, 1);
    for (row, (x, y)) in rep.pairs.iter().zip([(&a, &a), (&a, &shifted), (&c, &c2)]) {
        let want = r::metrics(&unit(x), &unit(y), x.height() as usize, x.width() as usize);
        let g = row.metrics;
        // same bounds as matches_reference
        assert!(
            (g.mse - want[0]).abs() <= 1e-5 * want[0],
            "{row:?} vs {want:?}"
        );
        assert!(
            g.psnr == want[1] || (g.psnr - want[1]).abs() < 1e-4,
            "{row:?} vs {want:?}"
        );
        assert!((g.ssim - want[2]).abs() < 2e-6, "{row:?} vs {want:?}");
        assert!(
            (g.ssim_gaussian - want[3]).abs() < 2e-6,
            "{row:?} vs {want:?}"
        );
    }
    // summary: the mean of the rows; serializable (psnr +inf written as "inf")
    let mean_ssim = rep.pairs.iter().map(|p| p.metrics.ssim).sum::<f64>() / 3.0;
    assert!((rep.summary.ssim.mean - mean_ssim).abs() < 1e-12);
    let json = serde_json::to_string(&rep).unwrap();
    assert!(json.contains("\"psnr\":\"inf\""), "{json}");
    assert!(metrics_cmd::format_text(&rep).contains("ssim_gaussian"));

    // size mismatch: the error names both files
    c.save(ddir.join("b.png")).unwrap();
    let e = metrics_cmd::run(gpu(), &rdir, &ddir, 2)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("b.png") && e.contains("40x40") && e.contains("31x23"),
        "{e}"
    );
    // a missing partner is named
    std::fs::remove_file(ddir.join("c.png")).unwrap();
    let e = metrics_cmd::run(gpu(), &rdir, &ddir, 2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("c.png"), "{e}");
    // file vs folder
    let e = metrics_cmd::run(gpu(), &rdir.join("a.png"), &ddir, 2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("two image files or two folders"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn box_shader_file_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/metrics_box_core.wgsl");
    let want = metrics::box_core_wgsl();
    if std::env::var_os("FACEGPU_REGEN").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "shaders/metrics_box_core.wgsl is stale: run FACEGPU_REGEN=1 cargo test --test metrics box_shader"
    );
}
