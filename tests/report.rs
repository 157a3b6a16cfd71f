//! Reports: PNGs are written atomically, decode, have the expected sizes and content; Markdown
//! tables are well formed; CSV parses back to what was written.
//!
//! Set FACEGPU_REPORT_KEEP=DIR to keep the PNGs for a look.

use std::path::{Path, PathBuf};

use facegpu::report::{grid, plot, table};

/// Where a test's PNG goes: FACEGPU_REPORT_KEEP if set, else the temp dir.
fn out(tmp: &Path, name: &str) -> PathBuf {
    match std::env::var_os("FACEGPU_REPORT_KEEP") {
        Some(d) => Path::new(&d).join(name),
        None => tmp.join(name),
    }
}

fn decode(path: &Path) -> image::RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()))
        .to_rgb8()
}

fn no_temp_files(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !n.ends_with(facegpu::fsutil::TEMP_SUFFIX),
            "temp file left: {n}"
        );
    }
}

/// Pixels of `img` in the rectangle that are "ink": far from white.
fn dark_pixels(img: &image::RgbImage, x0: u32, y0: u32, x1: u32, y1: u32) -> usize {
    let mut n = 0;
    for y in y0..y1 {
        for x in x0..x1 {
            let p = img.get_pixel(x, y).0;
            if p.iter().map(|&c| c as u32).sum::<u32>() < 300 {
                n += 1;
            }
        }
    }
    n
}

fn count_color(img: &image::RgbImage, rgb: [u8; 3], tol: i32) -> usize {
    img.pixels()
        .filter(|p| {
            p.0.iter()
                .zip(rgb)
                .all(|(&a, b)| (a as i32 - b as i32).abs() <= tol)
        })
        .count()
}

#[test]
fn loss_curves_png() {
    let tmp = tempfile::tempdir().unwrap();
    let train: Vec<(f64, f64)> = (0..30)
        .map(|e| (e as f64, 0.5 * (-0.15 * e as f64).exp() + 0.01))
        .collect();
    let val: Vec<(f64, f64)> = (0..30)
        .map(|e| (e as f64, 0.55 * (-0.12 * e as f64).exp() + 0.02))
        .collect();
    let path = out(tmp.path(), "loss.png");
    plot::loss_curves(
        &path,
        "AE: MSE loss",
        &[("train", &train[..]), ("val", &val[..])],
    )
    .unwrap();
    let img = decode(&path);
    assert_eq!(img.dimensions(), (800, 500));
    // Title, axes and tick labels give ink; both series colours appear.
    assert!(dark_pixels(&img, 0, 0, 800, 40) > 100, "no title text");
    assert!(dark_pixels(&img, 0, 0, 90, 500) > 200, "no y tick labels");
    let non_gray = img
        .pixels()
        .filter(|p| {
            let [r, g, b] = p.0;
            r.max(g).max(b) as i32 - r.min(g).min(b) as i32 > 80
        })
        .count();
    assert!(
        non_gray > 500,
        "series lines missing ({non_gray} coloured pixels)"
    );
    no_temp_files(tmp.path());

    // Log-y, custom size, with a NaN (diverged step) and a zero (not drawable on log axes).
    let mut bad = train.clone();
    bad[3].1 = f64::NAN;
    bad[4].1 = 0.0;
    let opts = plot::CurveOptions {
        log_y: true,
        x_label: "step".into(),
        y_label: "loss".into(),
        size: (640, 400),
    };
    let path = out(tmp.path(), "loss_log.png");
    plot::loss_curves_with(
        &path,
        "log-y",
        &[("train", &bad[..]), ("val", &val[..])],
        &opts,
    )
    .unwrap();
    let img = decode(&path);
    assert_eq!(img.dimensions(), (640, 400));
    // The note about the 2 dropped points is drawn in red near the bottom.
    assert!(
        count_color(&img, [255, 0, 0], 60) > 20,
        "no dropped-points note"
    );

    // Degenerate inputs still give a valid plot: one point, a flat series, no data at all.
    let one = [(0.0, 1.0)];
    let flat = [(0.0, 2.0), (1.0, 2.0)];
    for (name, s) in [
        ("one.png", &one[..]),
        ("flat.png", &flat[..]),
        ("none.png", &[][..]),
    ] {
        let p = out(tmp.path(), name);
        plot::loss_curves(&p, name, &[("s", s)]).unwrap();
        assert_eq!(decode(&p).dimensions(), (800, 500));
    }
    let e = plot::loss_curves_with(
        &tmp.path().join("x.png"),
        "t",
        &[],
        &plot::CurveOptions {
            size: (10, 10),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("10x10"), "{e:#}");
}

#[test]
fn histogram_png() {
    let tmp = tempfile::tempdir().unwrap();
    // PSNR-like values: a spread around 25 dB, plus one NaN that must be left out.
    let mut values: Vec<f64> = (0..500)
        .map(|i| 25.0 + 4.0 * ((i as f64) * 0.7).sin() * ((i as f64) * 0.13).cos())
        .collect();
    values.push(f64::NAN);
    let path = out(tmp.path(), "hist.png");
    plot::histogram_labeled(&path, "PSNR per image", "PSNR (dB)", &values, 20).unwrap();
    let img = decode(&path);
    assert_eq!(img.dimensions(), (800, 500));
    assert!(
        count_color(&img, [70, 110, 180], 0) > 5000,
        "histogram bars missing"
    );
    assert!(count_color(&img, [255, 0, 0], 60) > 20, "no NaN note");
    no_temp_files(tmp.path());

    let path = out(tmp.path(), "hist_const.png");
    plot::histogram(&path, "constant", &[3.0; 10], 5).unwrap();
    assert_eq!(decode(&path).dimensions(), (800, 500));
    let path = out(tmp.path(), "hist_empty.png");
    plot::histogram(&path, "empty", &[], 5).unwrap();
    assert_eq!(decode(&path).dimensions(), (800, 500));

    let e = plot::histogram(&tmp.path().join("h.png"), "t", &values, 0).unwrap_err();
    assert!(format!("{e:#}").contains("bins"), "{e:#}");
    let missing = tmp.path().join("nodir/h.png");
    let e = plot::histogram(&missing, "t", &values, 5).unwrap_err();
    assert!(
        format!("{e:#}").contains(&missing.display().to_string()),
        "{e:#}"
    );
}

/// A 128x128 test image: a smooth pattern that differs per (row, col) of the grid.
fn pattern(r: usize, c: usize) -> Vec<f32> {
    (0..128 * 128)
        .map(|k| {
            let (y, x) = ((k / 128) as f32, (k % 128) as f32);
            (0.5 + 0.5 * ((x * 0.05 * (c + 1) as f32) + y * 0.03 * (r + 1) as f32).sin())
                .clamp(0.0, 1.0)
        })
        .collect()
}

#[test]
fn image_grid_png() {
    let tmp = tempfile::tempdir().unwrap();
    let (nrows, ncols) = (3, 4);
    let imgs: Vec<Vec<Vec<f32>>> = (0..nrows)
        .map(|r| (0..ncols).map(|c| pattern(r, c)).collect())
        .collect();
    let labels = ["original", "noisy", "reconstruction"];
    let rows: Vec<(&str, Vec<&[f32]>)> = (0..nrows)
        .map(|r| (labels[r], imgs[r].iter().map(|v| &v[..]).collect()))
        .collect();
    let caption = "synthetic faces: real results need real faces";
    let path = out(tmp.path(), "grid.png");
    grid::image_grid(&path, &rows, caption).unwrap();
    let img = decode(&path);
    let (w, h) = img.dimensions();
    // Layout: caption line (18 px font + 2*6 pad), then rows of 128 px images with 6 px gaps.
    let (pad, side, cap_h) = (6u32, 128u32, 30u32);
    assert_eq!(h, cap_h + pad + nrows as u32 * (side + pad));
    assert!(
        w >= ncols as u32 * (side + pad) + pad + 100,
        "no room for labels: {w}"
    );
    // Every image sits at its cell, pixel exact (value*255 rounded); cells are right-aligned.
    let label_col = w - pad - ncols as u32 * (side + pad);
    for (r, row) in imgs.iter().enumerate() {
        for (c, im) in row.iter().enumerate() {
            let (x0, y0) = (
                label_col + pad + c as u32 * (side + pad),
                cap_h + pad + r as u32 * (side + pad),
            );
            for (k, &v) in im.iter().enumerate() {
                let (x, y) = (x0 + (k % 128) as u32, y0 + (k / 128) as u32);
                let g = (v * 255.0).round() as u8;
                assert_eq!(
                    img.get_pixel(x, y).0,
                    [g, g, g],
                    "row {r} col {c} pixel {k}"
                );
            }
        }
    }
    // Caption and labels are drawn (ink in their areas, which hold no image pixels).
    assert!(dark_pixels(&img, 0, 0, w, cap_h) > 200, "caption missing");
    for r in 0..nrows as u32 {
        let y0 = cap_h + pad + r * (side + pad);
        assert!(
            dark_pixels(&img, 0, y0, label_col, y0 + side) > 50,
            "label of row {r} missing"
        );
    }
    no_temp_files(tmp.path());

    // Ragged rows, NaN pixels shown in magenta, no caption.
    let mut nan_img = pattern(0, 0);
    nan_img[0] = f32::NAN;
    nan_img[1] = f32::INFINITY;
    let rows: Vec<(&str, Vec<&[f32]>)> = vec![
        ("a", vec![&nan_img[..]]),
        ("b", vec![&imgs[0][0][..], &imgs[0][1][..]]),
    ];
    let path = out(tmp.path(), "grid_ragged.png");
    grid::image_grid(&path, &rows, "").unwrap();
    let img = decode(&path);
    assert_eq!(img.height(), pad + 2 * (side + pad));
    assert_eq!(count_color(&img, [255, 0, 255], 0), 2);

    // Errors: not square, mixed sizes, nothing to draw; each names the file.
    let p = tmp.path().join("bad.png");
    let small = vec![0.5f32; 64 * 64];
    for (rows, want) in [
        (vec![("x", vec![&small[..99]])], "not a square"),
        (vec![("x", vec![&small[..], &imgs[0][0][..]])], "same size"),
        (vec![("x", vec![])], "no images"),
        (vec![], "no images"),
    ] {
        let e = format!("{:#}", grid::image_grid(&p, &rows, "c").unwrap_err());
        assert!(e.contains(want) && e.contains("bad.png"), "{e}");
    }
    assert!(!p.exists());
}

#[test]
fn markdown_table() {
    let headers = ["model", "PSNR (dB)", "note"];
    let rows = vec![
        vec!["ae".to_string(), "24.51".to_string(), "a|b".to_string()],
        vec![
            "vae".to_string(),
            "22.1".to_string(),
            "two\nlines".to_string(),
        ],
    ];
    let md = table::markdown(&headers, &rows);
    let want = "\
| model | PSNR (dB) | note      |
| ----- | --------: | --------- |
| ae    |     24.51 | a\\|b      |
| vae   |      22.1 | two lines |
";
    assert_eq!(md, want);
    // Every line has the same number of unescaped pipes (4 for 3 columns).
    for line in md.lines() {
        assert_eq!(line.replace("\\|", "").matches('|').count(), 4, "{line}");
    }
    // Short rows are padded; long rows widen the table.
    let md = table::markdown(&["a"], &[vec![], vec!["1".into(), "2".into()]]);
    assert_eq!(md.lines().count(), 4);
    assert!(md.lines().all(|l| l.matches('|').count() == 3), "{md}");
    assert_eq!(table::markdown(&[], &[]), "");
}

#[test]
fn csv_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("results.csv");
    let headers = ["model", "psnr", "note"];
    let rows = vec![
        vec!["ae".to_string(), "24.51".to_string(), "plain".to_string()],
        vec![
            "vae".to_string(),
            "22.1".to_string(),
            "comma, \"quote\"\nand newline".to_string(),
        ],
    ];
    table::write_csv(&path, &headers, &rows).unwrap();
    no_temp_files(tmp.path());
    let mut rd = csv::Reader::from_path(&path).unwrap();
    let got_headers: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(got_headers, headers);
    let got: Vec<Vec<String>> = rd
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(got, rows);

    let e = table::write_csv(&path, &headers, &[vec!["only one".to_string()]]).unwrap_err();
    let e = format!("{e:#}");
    assert!(e.contains("row 0") && e.contains("results.csv"), "{e}");
    // The failed write left the earlier file intact.
    assert_eq!(csv::Reader::from_path(&path).unwrap().records().count(), 2);
}
