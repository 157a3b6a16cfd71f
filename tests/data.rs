//! The data pipeline on the CPU: decoding (formats, PIL gray, crop + resize), bad input,
//! splits, the cache, synthetic faces and `facegpu data`'s report. The real face sets in
//! ../shared/faces are used when present (never copied into the project).
mod common;
mod data_util;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use data_util::*;
use facegpu::data::{
    self, cache, decode, split, synth, CacheChoice, DataOptions, Dataset, SkipReason, Split,
    SplitFractions, PIXELS,
};

fn opts(dir: &Path, cache_dir: Option<&Path>) -> DataOptions {
    DataOptions {
        dataset: Some(dir.to_path_buf()),
        cache: match cache_dir {
            Some(d) => CacheChoice::Dir(d.to_path_buf()),
            None => CacheChoice::Off,
        },
        verbose: false,
        ..Default::default()
    }
}

/// Pillow's convert('L') for one RGB pixel, written from its definition (ITU-R 601-2 luma
/// L = R*299/1000 + G*587/1000 + B*114/1000 in Pillow's 16-bit fixed point, rounded).
fn pil_l(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 32768) >> 16) as u8
}

#[test]
fn png_128_gray_passes_through_bit_for_bit() {
    let dir = scratch("passthrough");
    let px = bytes(PIXELS, 1);
    write_gray_png(&dir.join("a.png"), &px, 128, 128);
    let ds = data::load(&opts(&dir, None)).unwrap();
    assert_eq!(ds.len(), 1);
    assert_eq!(ds.image(0), &px[..], "a 128x128 gray PNG must not change");
    assert_eq!(ds.summary.formats.get("PNG"), Some(&1));
    assert_eq!(ds.summary.sizes.get("128x128"), Some(&1));
}

#[test]
fn rgb_to_gray_matches_pil_formula() {
    // Known pixels: primaries, greys, extremes and seeded colours, 128x128 (no resize).
    let mut rgb = bytes(PIXELS * 3, 2);
    let fixed: [[u8; 3]; 8] = [
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
        [255, 255, 255],
        [0, 0, 0],
        [1, 2, 3],
        [128, 64, 200],
        [77, 150, 29],
    ];
    for (i, p) in fixed.iter().enumerate() {
        rgb[3 * i..3 * i + 3].copy_from_slice(p);
    }
    let want: Vec<u8> = rgb.chunks(3).map(|p| pil_l(p[0], p[1], p[2])).collect();
    // the fixed-point formula is the decimal one rounded to nearest (within half a level)
    for (p, &w) in rgb.chunks(3).zip(&want) {
        let exact = p[0] as f64 * 0.299 + p[1] as f64 * 0.587 + p[2] as f64 * 0.114;
        assert!(
            (w as f64 - exact).abs() <= 0.5 + 1e-3,
            "{p:?}: {w} vs {exact}"
        );
    }
    assert_eq!(&want[..8], &[76, 150, 29, 255, 0, 2, 99, 114]);
    let dir = scratch("gray");
    image::RgbImage::from_raw(128, 128, rgb.clone())
        .unwrap()
        .save(dir.join("rgb.png"))
        .unwrap();
    // RGBA: alpha is dropped, as Pillow does
    let rgba: Vec<u8> = rgb
        .chunks(3)
        .enumerate()
        .flat_map(|(i, p)| [p[0], p[1], p[2], (i * 7) as u8])
        .collect();
    image::RgbaImage::from_raw(128, 128, rgba)
        .unwrap()
        .save(dir.join("rgba.png"))
        .unwrap();
    // 16-bit gray: rounded to 8 bits (v / 257)
    let g16: Vec<u16> = bytes(PIXELS * 2, 3)
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    image::ImageBuffer::<image::Luma<u16>, _>::from_raw(128, 128, g16.clone())
        .unwrap()
        .save(dir.join("z16.png"))
        .unwrap();
    let ds = data::load(&opts(&dir, None)).unwrap();
    assert_eq!(ds.names, ["rgb.png", "rgba.png", "z16.png"]);
    assert_eq!(ds.image(0), &want[..], "RGB");
    assert_eq!(ds.image(1), &want[..], "RGBA");
    let want16: Vec<u8> = g16
        .iter()
        .map(|&v| ((v as f64) / 257.0).round() as u8)
        .collect();
    assert_eq!(ds.image(2), &want16[..], "16-bit gray");
    assert_eq!(ds.summary.colors.get("Rgb8"), Some(&1));
    assert_eq!(ds.summary.colors.get("Rgba8"), Some(&1));
    assert_eq!(ds.summary.colors.get("L16"), Some(&1));
}

#[test]
fn non_square_is_centre_cropped_then_resized() {
    let dir = scratch("crop");
    // 200x128: the crop keeps columns 36..164 exactly, no resize needed
    let wide = bytes(200 * 128, 4);
    write_gray_png(&dir.join("a_wide.png"), &wide, 200, 128);
    // 92x112 (ORL's size): crop rows 10..102, then upscale 92 -> 128. A horizontal ramp must
    // stay a ramp (Lanczos3 reproduces linear functions away from the borders).
    let ramp: Vec<u8> = (0..112 * 92).map(|i| (40 + 2 * (i % 92)) as u8).collect();
    write_gray_png(&dir.join("b_ramp.png"), &ramp, 92, 112);
    // 256x256 constant: downscaled to exactly the same constant
    write_gray_png(&dir.join("c_const.png"), &vec![93u8; 256 * 256], 256, 256);
    // 300x301 with a border: the odd extra row goes, the centre stays
    let ds = data::load(&opts(&dir, None)).unwrap();
    let a = ds.image(0);
    for y in 0..128 {
        assert_eq!(
            &a[y * 128..(y + 1) * 128],
            &wide[y * 200 + 36..y * 200 + 164],
            "row {y}"
        );
    }
    let b = ds.image(1);
    for y in 0..128 {
        for x in 8..120 {
            // the source x of output x is (x + 0.5) * 92/128 - 0.5; value 40 + 2 * that
            let want = 40.0 + 2.0 * ((x as f64 + 0.5) * 92.0 / 128.0 - 0.5);
            let got = b[y * 128 + x] as f64;
            assert!((got - want).abs() <= 1.0, "ramp ({x},{y}): {got} vs {want}");
        }
    }
    assert!(
        ds.image(2).iter().all(|&v| v == 93),
        "constant stays constant"
    );
    assert_eq!(ds.summary.sizes.get("92x112"), Some(&1));
}

#[test]
fn every_common_format_is_read() {
    let dir = scratch("formats");
    let gray = bytes(64 * 48, 5);
    let img = image::GrayImage::from_raw(64, 48, gray).unwrap();
    let rgb = image::DynamicImage::ImageLuma8(img.clone()).to_rgb8();
    img.save(dir.join("a.png")).unwrap();
    // binary PGM/PPM written by hand (the image crate's encoder writes PAM, P7)
    let pnm = |magic: &str, px: &[u8]| [format!("{magic}\n64 48\n255\n").as_bytes(), px].concat();
    fs::write(dir.join("b.pgm"), pnm("P5", img.as_raw())).unwrap();
    fs::write(dir.join("c.ppm"), pnm("P6", rgb.as_raw())).unwrap();
    rgb.save(dir.join("d.bmp")).unwrap();
    img.save(dir.join("e.tiff")).unwrap();
    rgb.save(dir.join("f.webp")).unwrap(); // lossless
    rgb.save(dir.join("g.jpg")).unwrap(); // lossy
    rgb.save(dir.join("h.gif")).unwrap(); // the GIF encoder takes RGB, not L8
    img.save(dir.join("i.tga")).unwrap(); // no signature: found by extension
    let ds = data::load(&opts(&dir, None)).unwrap();
    assert!(ds.summary.skipped.is_empty(), "{:?}", ds.summary.skipped);
    assert_eq!(ds.len(), 9);
    for f in [
        "PNG", "PGM", "PPM", "BMP", "TIFF", "WebP", "JPEG", "GIF", "TGA",
    ] {
        assert_eq!(
            ds.summary.formats.get(f),
            Some(&1),
            "{f}: {:?}",
            ds.summary.formats
        );
    }
    // lossless formats give the same face as the PNG; JPEG is close
    for i in [1, 2, 3, 4, 5, 7, 8] {
        assert_eq!(ds.image(i), ds.image(0), "{}", ds.names[i]);
    }
    let mean_err: f64 = ds
        .image(6)
        .iter()
        .zip(ds.image(0))
        .map(|(&a, &b)| (a as f64 - b as f64).abs())
        .sum::<f64>()
        / PIXELS as f64;
    assert!(mean_err < 20.0, "JPEG mean error {mean_err}");
}

/// A folder with good images and every kind of bad input.
fn bad_folder(name: &str) -> std::path::PathBuf {
    let dir = scratch(name);
    for i in 0..3 {
        write_gray_png(
            &dir.join(format!("good/{i}.png")),
            &bytes(PIXELS, 10 + i),
            128,
            128,
        );
    }
    fs::write(dir.join("good/zero.png"), b"").unwrap();
    let mut png = Vec::new();
    image::GrayImage::from_raw(128, 128, bytes(PIXELS, 20))
        .unwrap()
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    fs::write(dir.join("good/truncated.png"), &png[..png.len() / 2]).unwrap();
    fs::write(dir.join("text.png"), b"hello, I am not a PNG").unwrap();
    fs::write(dir.join("notes.txt"), b"a README").unwrap();
    fs::create_dir_all(dir.join("empty")).unwrap();
    fs::create_dir_all(dir.join("only-bad")).unwrap();
    fs::write(dir.join("only-bad/x.jpg"), b"\xFF\xD8\xFF\xE0 broken").unwrap();
    fs::write(dir.join(".hidden.png"), b"ignored").unwrap();
    dir
}

#[test]
fn bad_input_is_skipped_with_reasons_and_strict_refuses_it() {
    let dir = bad_folder("bad");
    let ds = data::load(&opts(&dir, None)).unwrap();
    assert_eq!(ds.names, ["good/0.png", "good/1.png", "good/2.png"]);
    let by = ds.summary.skipped_by_reason();
    assert_eq!(by.get(&SkipReason::EmptyFile), Some(&1), "{by:?}");
    assert_eq!(by.get(&SkipReason::Corrupt), Some(&2), "{by:?}"); // truncated png, broken jpg
    assert_eq!(by.get(&SkipReason::NotAnImage), Some(&2), "{by:?}"); // text.png, notes.txt
    assert_eq!(by.get(&SkipReason::FolderWithoutImages), Some(&2), "{by:?}");
    let names: Vec<&str> = ds.summary.skipped.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "empty/",
            "good/truncated.png",
            "good/zero.png",
            "notes.txt",
            "only-bad/",
            "only-bad/x.jpg",
            "text.png"
        ]
    );
    let lines = ds.summary.skipped_lines(10).join("\n");
    assert!(lines.starts_with("skipped 7 entries"), "{lines}");
    assert!(
        lines.contains("text.png: named .png but the content is not a PNG image"),
        "{lines}"
    );
    // at most ten named
    let many = facegpu::data::ScanSummary {
        skipped: (0..25)
            .map(|i| facegpu::data::Skipped {
                name: format!("f{i:02}"),
                reason: SkipReason::EmptyFile,
                detail: "empty".into(),
            })
            .collect(),
        ..Default::default()
    };
    let l = many.skipped_lines(10);
    assert_eq!(l.len(), 12, "{l:?}");
    assert!(l[11].contains("15 more"));

    let mut strict = opts(&dir, None);
    strict.strict = true;
    let err = format!("{:#}", data::load(&strict).unwrap_err());
    assert!(
        err.contains("--strict") && err.contains("skipped 7"),
        "{err}"
    );
    assert!(err.contains("good/zero.png"), "{err}");
}

#[test]
fn folders_without_images_are_clear_errors() {
    let dir = scratch("empty-dataset");
    let err = format!("{:#}", data::load(&opts(&dir, None)).unwrap_err());
    assert!(err.contains("no usable images"), "{err}");
    fs::write(dir.join("junk.png"), b"").unwrap();
    let err = format!("{:#}", data::load(&opts(&dir, None)).unwrap_err());
    assert!(
        err.contains("no usable images") && err.contains("junk.png"),
        "{err}"
    );
    let err = format!(
        "{:#}",
        data::load(&opts(&dir.join("missing"), None)).unwrap_err()
    );
    assert!(err.contains("cannot open the dataset folder"), "{err}");
    let err = format!(
        "{:#}",
        data::load(&opts(&dir.join("junk.png"), None)).unwrap_err()
    );
    assert!(err.contains("is a file, not a folder"), "{err}");
}

#[test]
fn split_fractions_parse_and_validate() {
    let f: SplitFractions = "0.7,0.1,0.2".parse().unwrap();
    assert_eq!(f, SplitFractions::default());
    let f: SplitFractions = " 80 , 10 , 10 ".parse().unwrap();
    assert_eq!((f.train, f.val, f.test), (0.8, 0.1, 0.1));
    let f: SplitFractions = "0.9,0.1,0".parse().unwrap();
    assert_eq!(f.test, 0.0);
    for (bad, says) in [
        ("0.7,0.3", "three fractions"),
        ("0.7,0.1,x", "not a number"),
        ("0.7,0.1,0.3", "add up to"),
        ("-0.1,0.6,0.5", ">= 0"),
        ("0,0.5,0.5", "train fraction"),
        ("nan,0.5,0.5", ">= 0"),
    ] {
        let e = format!("{:#}", bad.parse::<SplitFractions>().unwrap_err());
        assert!(e.contains(says), "{bad}: {e}");
    }
}

fn names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("person{:03}/img{i:05}.png", i % 97))
        .collect()
}

#[test]
fn split_is_deterministic_and_has_the_stated_sizes() {
    let f = SplitFractions::default();
    // sizes: cumulative rounding, always adding up to n
    assert_eq!(split::part_sizes(1000, f), [700, 100, 200]);
    assert_eq!(split::part_sizes(7238, f), [5067, 723, 1448]);
    assert_eq!(split::part_sizes(400, f), [280, 40, 80]);
    assert_eq!(split::part_sizes(2000, f), [1400, 200, 400]);
    let n = names(1000);
    let a = split::split_names(&n, f, 0).unwrap();
    let b = split::split_names(&n, f, 0).unwrap();
    assert_eq!(a, b, "same seed, same split");
    assert_eq!([a[0].len(), a[1].len(), a[2].len()], [700, 100, 200]);
    let mut all: Vec<usize> = a.concat();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..1000).collect::<Vec<_>>(),
        "every face in exactly one part"
    );
    let c = split::split_names(&n, f, 1).unwrap();
    assert_ne!(a, c, "another seed, another split");
    // The split depends on names, not on the order they are listed in.
    let mut rev = n.clone();
    rev.reverse();
    let r = split::split_names(&rev, f, 0).unwrap();
    let test_a: std::collections::BTreeSet<&str> = a[2].iter().map(|&i| n[i].as_str()).collect();
    let test_r: std::collections::BTreeSet<&str> = r[2].iter().map(|&i| rev[i].as_str()).collect();
    assert_eq!(test_a, test_r);
    // Same on every machine: the split equals the one the test derives independently from
    // the documented algorithm (FNV-1a-128 keys of (seed, name), sorted), for several seeds.
    for seed in [0, 1, 12345, u64::MAX] {
        assert_eq!(
            split::split_names(&n, f, seed).unwrap(),
            reference_split(&n, f, seed),
            "seed {seed}: the split algorithm changed"
        );
    }
    // Too small
    let e = format!("{:#}", split::split_names(&names(8), f, 0).unwrap_err());
    assert!(e.contains("too few") && e.contains("val"), "{e}");
    assert!(split::split_names(&names(10), f, 0).is_ok());
    assert!(split::split_names::<String>(&[], f, 0).is_err());
}

/// FNV-1a with a 128-bit state, written out here from its definition (not the crate's copy).
fn fnv128(chunks: &[&[u8]]) -> u128 {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for c in chunks {
        for &b in *c {
            h ^= b as u128;
            h = h.wrapping_mul(0x0000000001000000000000000000013B);
        }
    }
    h
}

/// The documented names hash: count, then each name with its length, FNV-1a-128, 32 hex digits.
fn reference_names_hash<S: AsRef<str>>(names: &[S]) -> String {
    let mut bytes = (names.len() as u64).to_le_bytes().to_vec();
    for n in names {
        bytes.extend_from_slice(&(n.as_ref().len() as u64).to_le_bytes());
        bytes.extend_from_slice(n.as_ref().as_bytes());
    }
    format!("{:032x}", fnv128(&[&bytes]))
}

/// The documented split: key each name by FNV-1a-128("facegpu split", seed, name), extended
/// by SplitMix64's mixer, sort by key, cut at the cumulative rounded fractions.
fn reference_split<S: AsRef<str>>(names: &[S], f: SplitFractions, seed: u64) -> [Vec<usize>; 3] {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    };
    let tag = "facegpu split";
    let mut keyed: Vec<(u128, usize)> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let name = name.as_ref();
            let x = fnv128(&[
                &(tag.len() as u64).to_le_bytes(),
                tag.as_bytes(),
                &seed.to_le_bytes(),
                &(name.len() as u64).to_le_bytes(),
                name.as_bytes(),
            ]);
            (((mix(x as u64 ^ (x >> 64) as u64) as u128) << 64) | x, i)
        })
        .collect();
    keyed.sort_unstable();
    let n = names.len() as f64;
    let b1 = (n * f.train).round() as usize;
    let b2 = (n * (f.train + f.val)).round() as usize;
    let mut parts = [Vec::new(), Vec::new(), Vec::new()];
    for (rank, &(_, i)) in keyed.iter().enumerate() {
        parts[if rank < b1 {
            0
        } else if rank < b2 {
            1
        } else {
            2
        }]
        .push(i);
    }
    for p in &mut parts {
        p.sort_unstable();
    }
    parts
}

/// Relative '/'-separated paths of every file under `dir`, sorted (byte order).
fn sorted_relative_paths(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap();
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn split_info_tells_what_changed() {
    let ds = |n: usize| {
        Dataset::from_pixels(
            vec![0; n * PIXELS],
            names(n),
            facegpu::data::Source::Folder { dir: "x".into() },
        )
        .unwrap()
    };
    let a = Split::new(&ds(50), SplitFractions::default(), 0).unwrap();
    let again = Split::new(&ds(50), SplitFractions::default(), 0).unwrap();
    assert!(a.info.differences(&again.info).is_empty());
    assert_eq!(a.info.counts, [35, 5, 10]);
    let json = serde_json::to_string(&a.info).unwrap();
    let back: facegpu::data::SplitInfo = serde_json::from_str(&json).unwrap();
    assert_eq!(
        back, a.info,
        "SplitInfo round-trips through JSON (checkpoints)"
    );
    let grown = Split::new(&ds(51), SplitFractions::default(), 0).unwrap();
    let d = a.info.differences(&grown.info).join("\n");
    assert!(d.contains("dataset changed"), "{d}");
    let reseeded = Split::new(&ds(50), SplitFractions::default(), 3).unwrap();
    let d = a.info.differences(&reseeded.info).join("\n");
    assert!(
        d.contains("--seed 0") && d.contains("test set is not"),
        "{d}"
    );
}

#[test]
fn epoch_orders_are_permutations_fixed_by_seed_and_epoch() {
    let a = split::epoch_order(1000, 7, 0);
    assert_eq!(a, split::epoch_order(1000, 7, 0));
    assert_ne!(a, split::epoch_order(1000, 7, 1));
    assert_ne!(a, split::epoch_order(1000, 8, 0));
    let mut s = a.clone();
    s.sort_unstable();
    assert_eq!(s, (0..1000).collect::<Vec<u32>>());
}

/// tools/torch_train_ae.py reimplements epoch_order to give PyTorch facegpu's batches; these
/// values are what its `facegpu_epoch_order` returns (`--print-order 10` prints the first).
#[test]
fn epoch_order_matches_the_pytorch_script() {
    assert_eq!(split::epoch_order(10, 0, 0), [9, 1, 5, 2, 0, 8, 4, 6, 3, 7]);
    assert_eq!(split::epoch_order(10, 0, 1), [6, 1, 9, 5, 4, 3, 8, 0, 7, 2]);
    assert_eq!(
        split::epoch_order(12, 7, 3),
        [6, 7, 1, 10, 5, 9, 4, 11, 0, 8, 2, 3]
    );
    assert_eq!(
        split::epoch_order(5067, 0, 0)[..8],
        [737, 2514, 1742, 4109, 1316, 2392, 90, 4532]
    );
}

fn no_temp_files(dir: &Path) -> bool {
    fs::read_dir(dir)
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp"))
}

#[test]
fn cache_round_trip_invalidation_and_atomic_writes() {
    let root = scratch("cache");
    let dir = root.join("set");
    let cdir = root.join("cache");
    for i in 0..5 {
        write_gray_png(
            &dir.join(format!("{i}.png")),
            &bytes(PIXELS, 30 + i),
            128,
            128,
        );
    }
    write_gray_png(&dir.join("odd.png"), &bytes(50 * 60, 40), 50, 60);
    fs::write(dir.join("bad.png"), b"").unwrap();
    let o = opts(&dir, Some(&cdir));
    let first = data::load(&o).unwrap();
    assert!(
        matches!(first.load.cache, data::dataset::CacheState::Written(_)),
        "{:?}",
        first.load.cache
    );
    assert!(no_temp_files(&cdir), "no temporary file left behind");
    let second = data::load(&o).unwrap();
    let data::dataset::CacheState::Hit(path) = &second.load.cache else {
        panic!("second load should hit the cache: {:?}", second.load.cache)
    };
    assert_eq!(second.pixels(), first.pixels());
    assert_eq!(second.names, first.names);
    assert_eq!(
        second.summary, first.summary,
        "skips and formats survive the cache"
    );
    // the file is what the header says: 4096-aligned pixels after the metadata
    let len = fs::metadata(path).unwrap().len();
    assert_eq!(len % 4096, (6 * PIXELS % 4096) as u64);

    // touching a file invalidates
    let t = SystemTime::now() + Duration::from_secs(5);
    fs::File::options()
        .write(true)
        .open(dir.join("2.png"))
        .unwrap()
        .set_modified(t)
        .unwrap();
    let third = data::load(&o).unwrap();
    assert!(matches!(
        third.load.cache,
        data::dataset::CacheState::Written(_)
    ));
    // adding a file invalidates
    write_gray_png(&dir.join("5.png"), &bytes(PIXELS, 50), 128, 128);
    let fourth = data::load(&o).unwrap();
    assert!(matches!(
        fourth.load.cache,
        data::dataset::CacheState::Written(_)
    ));
    assert_eq!(fourth.len(), 7);
    assert!(matches!(
        data::load(&o).unwrap().load.cache,
        data::dataset::CacheState::Hit(_)
    ));
    // one cache file per folder, no temporaries
    assert_eq!(fs::read_dir(&cdir).unwrap().count(), 1);

    // a cut-short cache (as if written without the rename) is never read: rebuilt, with a note
    let p = cache::path_for(&cdir, &dir);
    let full = fs::read(&p).unwrap();
    fs::write(&p, &full[..full.len() - 1000]).unwrap();
    let fifth = data::load(&o).unwrap();
    assert!(matches!(
        fifth.load.cache,
        data::dataset::CacheState::Written(_)
    ));
    assert!(
        fifth.load.notes[0].contains("damaged"),
        "{:?}",
        fifth.load.notes
    );
    assert_eq!(fifth.pixels(), fourth.pixels());

    // an unwritable cache folder: a note, and the data still loads
    let blocked = root.join("a-file");
    fs::write(&blocked, b"x").unwrap();
    let o2 = opts(&dir, Some(&blocked.join("cache")));
    let ds = data::load(&o2).unwrap();
    assert_eq!(ds.len(), 7);
    assert!(matches!(
        ds.load.cache,
        data::dataset::CacheState::NotWritten(_)
    ));
    assert!(
        ds.load.notes[0].contains("continuing without it"),
        "{:?}",
        ds.load.notes
    );
}

#[test]
fn orl_nested_pgm_folders_are_read() {
    let Some(dir) = faces("orl-pgm") else { return };
    let ds = data::load(&opts(&dir, None)).unwrap();
    assert_eq!(ds.len(), 400);
    assert!(ds.summary.skipped.is_empty(), "{:?}", ds.summary.skipped);
    assert_eq!(ds.summary.formats.get("PGM"), Some(&400));
    assert_eq!(ds.summary.sizes.get("92x112"), Some(&400));
    assert_eq!(&ds.names[..3], ["s1/1.pgm", "s1/10.pgm", "s1/2.pgm"]);
    let s = Split::new(&ds, SplitFractions::default(), 0).unwrap();
    assert_eq!(s.info.counts, [280, 40, 80]);
    // the same on every machine: the names are the sorted relative paths, and the hashes
    // and parts are what the test derives from them on its own
    let paths = sorted_relative_paths(&dir);
    assert_eq!(ds.names, paths);
    assert_eq!(s.info.paths_hash, reference_names_hash(&paths));
    let parts = reference_split(&paths, SplitFractions::default(), 0);
    assert_eq!(
        [&s.train, &s.val, &s.test],
        [&parts[0], &parts[1], &parts[2]]
    );
    let test_names: Vec<&str> = parts[2].iter().map(|&i| paths[i].as_str()).collect();
    assert_eq!(s.info.part_hashes[2], reference_names_hash(&test_names));
    // the crop keeps the centre: the face's top-left pixel is source pixel (0, 10) resampled
    let src = image::open(dir.join("s1/1.pgm")).unwrap().to_luma8();
    let want = decode::to_face(&src);
    assert_eq!(ds.image(0), &want[..]);
}

#[test]
fn lfw_subset_passes_through_and_cache_loads_fast() {
    let Some(dir) = faces("lfw-gray-128") else {
        return;
    };
    // a subset, decoded one by one: bit for bit the PNG's pixels
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files.iter().step_by(files.len() / 40) {
        let d = decode::decode_file(f).unwrap();
        let raw = image::open(f).unwrap().to_luma8().into_raw();
        assert_eq!(d.pixels, raw, "{}", f.display());
    }
    // the whole set: decoded once into the cache, then memory-mapped in well under a second
    let cdir = scratch("lfw-cache");
    let o = opts(&dir, Some(&cdir));
    let t = Instant::now();
    let first = data::load(&o).unwrap();
    let decode_s = t.elapsed().as_secs_f64();
    assert_eq!(first.len(), 7238);
    let t = Instant::now();
    let second = data::load(&o).unwrap();
    let cached_s = t.elapsed().as_secs_f64();
    assert!(matches!(
        second.load.cache,
        data::dataset::CacheState::Hit(_)
    ));
    assert_eq!(second.len(), 7238);
    assert_eq!(second.image(7237), first.image(7237));
    eprintln!("LFW 7238 faces: decoded in {decode_s:.2} s, loaded from cache in {cached_s:.3} s");
    assert!(cached_s < 1.0, "cache load took {cached_s} s");
    let s = Split::new(&second, SplitFractions::default(), 0).unwrap();
    assert_eq!(s.info.counts, [5067, 723, 1448]);
    let _ = fs::remove_dir_all(&cdir);
}

#[test]
fn synthetic_faces_are_deterministic_and_varied() {
    let a = synth::faces(48, 0);
    assert_eq!(a, synth::faces(48, 0), "same seed, same faces");
    assert_eq!(
        &a[5 * PIXELS..6 * PIXELS],
        &synth::face(0, 5)[..],
        "face i depends on (seed, i) only"
    );
    assert_ne!(a, synth::faces(48, 1), "another seed, other faces");
    // varied: the per-pixel standard deviation across faces is large on average, and every
    // face has contrast of its own
    let n = 48;
    let mut mean_std = 0.0;
    for p in 0..PIXELS {
        let v: Vec<f64> = (0..n).map(|i| a[i * PIXELS + p] as f64 / 255.0).collect();
        let m = v.iter().sum::<f64>() / n as f64;
        mean_std += (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64).sqrt();
    }
    mean_std /= PIXELS as f64;
    assert!(
        mean_std > 0.12,
        "faces vary too little: mean per-pixel std {mean_std}"
    );
    for i in 0..n {
        let f = &a[i * PIXELS..(i + 1) * PIXELS];
        let m = f.iter().map(|&x| x as f64).sum::<f64>() / PIXELS as f64;
        let s = (f.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / PIXELS as f64).sqrt();
        assert!(s > 10.0, "face {i} is nearly flat (std {s})");
    }
    // no two faces alike
    for i in 0..n {
        for j in 0..i {
            assert_ne!(
                &a[i * PIXELS..(i + 1) * PIXELS],
                &a[j * PIXELS..(j + 1) * PIXELS]
            );
        }
    }
}

#[test]
fn synthetic_default_dataset_and_synth_command() {
    let cdir = scratch("synth-cache");
    let o = DataOptions {
        synthetic_count: 40,
        synthetic_seed: 3,
        cache: CacheChoice::Dir(cdir.clone()),
        verbose: false,
        ..Default::default()
    };
    let ds = data::load(&o).unwrap();
    assert!(ds.is_synthetic() && ds.len() == 40);
    assert!(ds.notices()[0].contains("SYNTHETIC"));
    assert_eq!(ds.pixels(), &synth::faces(40, 3)[..]);
    let again = data::load(&o).unwrap();
    assert!(matches!(
        again.load.cache,
        data::dataset::CacheState::Hit(_)
    ));
    assert_eq!(again.pixels(), ds.pixels());

    let out = scratch("synth-out");
    let r = data::write_synth(5, 3, &out).unwrap();
    let text = r.to_string();
    assert!(
        text.contains("SYNTHETIC") && text.contains("real faces"),
        "{text}"
    );
    assert!(fs::read_to_string(out.join("README.txt"))
        .unwrap()
        .contains("SYNTHETIC"));
    for i in 0..5 {
        let back = image::open(out.join(format!("synthetic-{i:06}.png"))).unwrap();
        assert_eq!(back.as_luma8().unwrap().as_raw(), &synth::face(3, i as u64));
    }
    // the folder reads back as a dataset of exactly the faces (the grid lies beside it)
    let folder = data::load(&opts(&out, None)).unwrap();
    assert_eq!(folder.len(), 5);
    assert_eq!(folder.image(0), &synth::face(3, 0)[..]);
    assert!(
        r.grid.is_file() && !r.grid.starts_with(&out),
        "{}",
        r.grid.display()
    );
    assert!(data::write_synth(0, 0, &out).is_err());
}

#[test]
fn data_report_describes_the_dataset_and_writes_a_grid() {
    let dir = bad_folder("report");
    let grid = dir.join("../report-grid.png");
    let r = data::data_report(
        &opts(&dir, None),
        SplitFractions::new(0.34, 0.33, 0.33).unwrap(),
        0,
        Some(&grid),
    )
    .unwrap();
    let text = r.to_string();
    for want in [
        "faces: 3 (8 files looked at)",
        "formats: PNG 3",
        "sizes:   128x128 3",
        "skipped 7 entries",
        "split (--seed 0 --split 0.34,0.33,0.33): train 1, val 1, test 1",
        "sample grid:",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let g = image::open(&grid).unwrap();
    assert_eq!((g.width(), g.height()), (3 * 128 + 4 * 2, 20 + 128 + 2 * 2));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["count"], 3);

    let synth_opts = DataOptions {
        synthetic_count: 30,
        cache: CacheChoice::Off,
        verbose: false,
        ..Default::default()
    };
    let r = data::data_report(&synth_opts, SplitFractions::default(), 0, None).unwrap();
    let text = r.to_string();
    assert!(text.starts_with("NOTE: using SYNTHETIC faces"), "{text}");
    assert!(text.contains("train 21, val 3, test 6"), "{text}");

    // a folder too small for the split is still described; the split line says why it fails
    let r = data::data_report(&opts(&dir, None), SplitFractions::default(), 0, None).unwrap();
    let text = r.to_string();
    assert!(text.contains("faces: 3 (8 files looked at)"), "{text}");
    assert!(
        r.split.is_none()
            && text.contains("split: cannot be made")
            && text.contains("the val part would be empty"),
        "{text}"
    );
    assert!(serde_json::to_value(&r).unwrap()["split_error"].is_string());
}

// ---- on the GPU: the batcher and the noise ----

use facegpu::data::{Batcher, BatcherConfig, NoiseSpec, Residency};

/// n seeded faces in memory (names sorted like a folder's).
fn mem_dataset(n: usize, seed: u64) -> Dataset {
    Dataset::from_pixels(
        bytes(n * PIXELS, seed),
        (0..n).map(|i| format!("f{i:04}.png")).collect(),
        facegpu::data::Source::Folder { dir: "mem".into() },
    )
    .unwrap()
}

/// face / 255 as f32: what the GPU must hold for a face (exact: u8 -> f32 via i / 255).
fn unit(px: &[u8]) -> Vec<f32> {
    px.iter().map(|&v| v as f32 / 255.0).collect()
}

fn read_f32(t: &facegpu::gpu::Tensor) -> Vec<f32> {
    common::gpu().read(t).unwrap()
}

#[test]
fn png_reaches_the_gpu_unchanged() {
    // A 128x128 gray PNG, through the loader and the batch gather: pixel/255 exactly (error
    // bound: 0, bit for bit), for resident (one buffer, one buffer per face) and streamed.
    let gpu = common::gpu();
    let dir = scratch("to-gpu");
    let faces: Vec<Vec<u8>> = (0..3).map(|i| bytes(PIXELS, 60 + i)).collect();
    for (i, f) in faces.iter().enumerate() {
        write_gray_png(&dir.join(format!("{i}.png")), f, 128, 128);
    }
    let ds = data::load(&opts(&dir, None)).unwrap();
    let rows: Vec<usize> = (0..3).collect();
    for (what, residency, chunk) in [
        ("resident, one buffer", Residency::Resident, None),
        (
            "resident, a buffer per face",
            Residency::Resident,
            Some(PIXELS as u64),
        ),
        ("streamed", Residency::Stream, None),
    ] {
        let mut cfg = BatcherConfig::eval(2, 0, None);
        cfg.residency = residency;
        cfg.max_chunk_bytes = chunk;
        cfg.stream_window = 2;
        let mut b = Batcher::new(gpu, &ds, &rows, cfg).unwrap();
        assert_eq!((b.len(), b.batches(), b.batch_size()), (3, 2, 2));
        if chunk.is_some() {
            assert_eq!(b.chunk_count(), 3, "{what}");
        }
        let mut rec = gpu.record();
        b.record(&mut rec).unwrap();
        let prog = rec.finish().unwrap();
        for k in 0..2 {
            gpu.fill(&b.clean, f32::NAN); // poisoned
            let valid = b.set_batch(gpu, k).unwrap();
            prog.run(gpu).unwrap();
            let got = read_f32(&b.clean);
            assert_eq!(valid, if k == 0 { 2 } else { 1 });
            for s in 0..2 {
                let slot = &got[s * PIXELS..(s + 1) * PIXELS];
                if s < valid {
                    let want = unit(&faces[2 * k + s]);
                    assert!(
                        slot.iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{what}: batch {k} slot {s} differs from pixel/255"
                    );
                } else {
                    assert!(
                        slot.iter().all(|&v| v == 0.0),
                        "{what}: empty slot not zeroed"
                    );
                }
            }
        }
    }
}

#[test]
fn batches_follow_the_epoch_shuffle_in_every_layout() {
    // Train: each epoch visits the split in epoch_order(seed, epoch); every slot holds the
    // face batch_ids names (error bound 0). Odd sizes: 23 faces of a 40-face dataset, batch 5
    // (4 full batches, the last 3 faces dropped), 4-face buffers, and 10-face stream windows.
    let gpu = common::gpu();
    let ds = mem_dataset(40, 7);
    let rows: Vec<usize> = (0..40)
        .filter(|i| (i % 7 != 3 && i % 2 == 1) || i % 5 == 0)
        .collect();
    let n = rows.len();
    for (what, residency, chunk) in [
        (
            "resident, 4-face buffers",
            Residency::Resident,
            Some(4 * PIXELS as u64),
        ),
        ("streamed", Residency::Stream, None),
    ] {
        let mut cfg = BatcherConfig::train(5, 11, None);
        cfg.residency = residency;
        cfg.max_chunk_bytes = chunk;
        cfg.stream_window = 10;
        let mut b = Batcher::new(gpu, &ds, &rows, cfg).unwrap();
        assert_eq!(b.batches(), n / 5);
        assert_eq!(b.is_resident(), residency == Residency::Resident);
        let mut rec = gpu.record();
        b.record(&mut rec).unwrap();
        let prog = rec.finish().unwrap();
        let mut orders = Vec::new();
        for epoch in 0..2 {
            b.begin_epoch(gpu, epoch).unwrap();
            let order = split::epoch_order(n, 11, epoch);
            let mut seen = Vec::new();
            for k in 0..b.batches() {
                let ids = b.batch_ids(k);
                let want_ids: Vec<usize> = order[k * 5..k * 5 + 5]
                    .iter()
                    .map(|&j| rows[j as usize])
                    .collect();
                assert_eq!(ids, want_ids, "{what}: epoch {epoch} batch {k}");
                gpu.fill(&b.clean, f32::NAN);
                assert_eq!(b.set_batch(gpu, k).unwrap(), 5);
                prog.run(gpu).unwrap();
                let got = read_f32(&b.clean);
                for (s, &id) in ids.iter().enumerate() {
                    let want = unit(ds.image(id));
                    assert!(
                        got[s * PIXELS..(s + 1) * PIXELS]
                            .iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{what}: epoch {epoch} batch {k} slot {s} is not face {id}"
                    );
                }
                seen.extend(ids);
            }
            orders.push(seen);
        }
        assert_ne!(
            orders[0], orders[1],
            "{what}: epochs are shuffled differently"
        );
    }
    // a batch larger than the split cannot be drawn with full batches: a clear error
    let e = Batcher::new(gpu, &ds, &rows[..3], BatcherConfig::train(5, 0, None))
        .err()
        .unwrap();
    assert!(format!("{e:#}").contains("fewer than one batch"), "{e:#}");
}

#[test]
fn noise_statistics_reproducibility_and_clipping() {
    let gpu = common::gpu();
    // Mid-gray faces, so clipping at sigma 0.1 is rare (> 3.9 sigma away) and the statistics
    // are those of the noise itself.
    let n = 6;
    let ds = Dataset::from_pixels(
        vec![128; n * PIXELS],
        (0..n).map(|i| format!("g{i}")).collect(),
        facegpu::data::Source::Folder { dir: "mem".into() },
    )
    .unwrap();
    let rows: Vec<usize> = (0..n).collect();
    let sigma = 0.1f32;
    let run = |cfg: BatcherConfig, epoch: u32, k: usize| -> (Vec<f32>, Vec<f32>, Vec<usize>) {
        let mut b = Batcher::new(gpu, &ds, &rows, cfg).unwrap();
        let mut rec = gpu.record();
        b.record(&mut rec).unwrap();
        let prog = rec.finish().unwrap();
        b.begin_epoch(gpu, epoch).unwrap();
        gpu.fill(b.noisy.as_ref().unwrap(), f32::NAN);
        b.set_batch(gpu, k).unwrap();
        prog.run(gpu).unwrap();
        (
            read_f32(&b.clean),
            read_f32(b.noisy.as_ref().unwrap()),
            b.batch_ids(k),
        )
    };
    let spec = NoiseSpec { sigma, clip: false };
    let unclipped = Some(spec);
    let (clean, noisy, ids) = run(BatcherConfig::train(3, 5, unclipped), 0, 0);
    let d: Vec<f64> = noisy
        .iter()
        .zip(&clean)
        .map(|(a, b)| (a - b) as f64)
        .collect();
    let m = d.len() as f64;
    let mean = d.iter().sum::<f64>() / m;
    let std = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / m).sqrt();
    // 49,152 samples: mean within 5 standard errors (5 * 0.1 / sqrt(m) = 0.0023); std within
    // 3% (its standard error is 0.32%)
    assert!(
        mean.abs() < 5.0 * sigma as f64 / m.sqrt(),
        "noise mean {mean}"
    );
    assert!((std / sigma as f64 - 1.0).abs() < 0.03, "noise std {std}");
    // each value is the documented one: sigma * normal(seed, face id, stream = epoch, pixel),
    // the float64 host mirror (bound 1e-5: f32 log/cos/sin against f64, times sigma = 0.1)
    for (s, &id) in ids.iter().enumerate() {
        for p in (0..PIXELS).step_by(97) {
            let want = sigma as f64 * facegpu::ops::noise::normal(5, id as u32, 0, p as u32);
            let got = d[s * PIXELS + p];
            assert!(
                (got - want).abs() < 1e-5,
                "face {id} pixel {p}: {got} vs {want}"
            );
        }
    }
    // training: same (seed, epoch) -> same noise; another epoch or seed -> other noise
    assert_eq!(run(BatcherConfig::train(3, 5, unclipped), 0, 0).1, noisy);
    let (_, other_epoch, ids1) = run(BatcherConfig::train(3, 5, unclipped), 1, 0);
    assert_ne!(other_epoch, noisy);
    // the noise follows the face, not the slot: face ids[0] in epoch 1 has epoch-1 noise
    let s1 = ids1.iter().position(|&i| i == ids1[0]).unwrap();
    let want = sigma as f64 * facegpu::ops::noise::normal(5, ids1[0] as u32, 1, 0);
    assert!(((other_epoch[s1 * PIXELS] - clean[0]) as f64 - want).abs() < 1e-5);
    assert_ne!(run(BatcherConfig::train(3, 6, unclipped), 0, 0).1, noisy);
    // evaluation: fixed by the seed, whatever the epoch
    let e0 = run(BatcherConfig::eval(3, 5, unclipped), 0, 1).1;
    let e1 = run(BatcherConfig::eval(3, 5, unclipped), 4, 1).1;
    assert_eq!(e0, e1, "evaluation noise is fixed by the seed");
    assert_ne!(e0, run(BatcherConfig::eval(3, 9, unclipped), 0, 1).1);
    // clipped by default: large sigma, every value in [0, 1] and some at each end
    let (_, c, _) = run(
        BatcherConfig::train(
            3,
            5,
            Some(NoiseSpec {
                sigma: 0.5,
                clip: true,
            }),
        ),
        0,
        0,
    );
    assert!(c.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert!(c.contains(&0.0) && c.contains(&1.0));

    // the standalone noise kernel draws the same values as the fused gather (bound 0: same
    // f32 arithmetic on the same Philox outputs)
    // row r of this batch is face ids[r]: one call per row so each gets its id
    let mut rec = gpu.record();
    let xs: Vec<_> = ids.iter().map(|_| gpu.zeros(&[1, 1, 128, 128])).collect();
    let ys: Vec<_> = ids.iter().map(|_| gpu.zeros(&[1, 1, 128, 128])).collect();
    ys.iter().for_each(|y| gpu.fill(y, f32::NAN));
    for (r, &id) in ids.iter().enumerate() {
        gpu.write(&xs[r], &clean[r * PIXELS..(r + 1) * PIXELS])
            .unwrap();
        facegpu::ops::noise::add(&mut rec, &xs[r], &ys[r], PIXELS, id as u32, spec, 5, 0).unwrap();
    }
    rec.run().unwrap();
    for (r, yt) in ys.iter().enumerate() {
        assert_eq!(
            read_f32(yt),
            &noisy[r * PIXELS..(r + 1) * PIXELS],
            "noise kernel row {r}"
        );
    }
}

/// The standalone noise kernel with clipping on and rows of 37 values (not a multiple of 4:
/// each row's last quad is partial): y = clamp(x + sigma * normal(seed, row_base + r, stream,
/// p), 0, 1) at every element against the float64 host mirror (`noise::normal`), bound 5e-5
/// (the unclipped test's 1e-5 at sigma 0.1, scaled to sigma 0.5; clamping cannot widen it).
/// Every value lies in [0, 1], both ends are reached, and none is left unwritten (NaN).
#[test]
fn noise_kernel_clips_and_matches_the_host_mirror_on_partial_quads() {
    use facegpu::ops::noise;
    let gpu = common::gpu();
    let (rows, row_len, row_base, stream, seed) = (3usize, 37usize, 11u32, 4u32, 5u64);
    let sigma = 0.5f32;
    let x: Vec<f32> = common::Rng::new(31)
        .vec(rows * row_len, 0.0, 1.0)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let xt = gpu.upload(&x, &[rows, row_len]).unwrap();
    let yt = gpu.zeros(&[rows, row_len]);
    gpu.fill(&yt, f32::NAN);
    let spec = NoiseSpec { sigma, clip: true };
    let mut rec = gpu.record();
    noise::add(&mut rec, &xt, &yt, row_len, row_base, spec, seed, stream).unwrap();
    rec.run().unwrap();
    let y = read_f32(&yt);
    assert!(
        y.iter().all(|v| (0.0..=1.0).contains(v)),
        "values outside [0, 1] (or unwritten): {y:?}"
    );
    assert!(
        y.contains(&0.0) && y.contains(&1.0),
        "clipped at both ends: {y:?}"
    );
    for r in 0..rows {
        for p in 0..row_len {
            let i = r * row_len + p;
            let z = noise::normal(seed, row_base + r as u32, stream, p as u32);
            let want = (x[i] as f64 + sigma as f64 * z).clamp(0.0, 1.0);
            assert!(
                (y[i] as f64 - want).abs() < 5e-5,
                "row {r} element {p}: {} vs {want}",
                y[i]
            );
        }
    }
}
