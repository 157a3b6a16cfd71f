//! Deterministic sums against float64. Two kinds of input:
//! - small integers: every partial sum is an integer below 2^24, so float32 adds them exactly
//!   and the result must equal the float64 sum bit for bit (any element dropped or counted twice
//!   shows);
//! - random reals: bound |got - want| <= 1e-6 * Σ|x| + 1e-7 |want|. The rigorous worst case
//!   of three passes of <= 256-term sums is ~541 u Σ|x| = 3.2e-5 Σ|x| (u = 2^-24); rounding
//!   errors of random data grow like the square root of the term count (~40 u).
//!
//! And the same bits on every run, and for a replayed program.
mod common;
mod reference;

use common::*;
use facegpu::ops::reduce;
use reference::reduce as r;

const SIZES: &[usize] = &[1, 7, 255, 1000, 70_001, 2 * 1024 * 1024];

/// Rounds to float32, so the reference sees exactly what the GPU sees.
fn f32s(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|x| x as f32 as f64).collect()
}

fn ints(seed: u64, n: usize) -> Vec<f64> {
    Rng::new(seed)
        .vec(n, -8.0, 8.0)
        .into_iter()
        .map(|x| x.floor())
        .collect()
}

fn gpu_sum(x: &[f64], scale: f32) -> f32 {
    let xt = upload(x, &[x.len()]);
    let out = poisoned(&[1]);
    let mut rec = gpu().record();
    reduce::sum(&mut rec, &xt, &out, scale).unwrap();
    rec.run().unwrap();
    gpu().read(&out).unwrap()[0]
}

fn gpu_sum_rows(x: &[f64], rows: usize, scale: f32) -> Vec<f64> {
    let xt = upload(x, &[rows, x.len() / rows]);
    let out = poisoned(&[rows]);
    let mut rec = gpu().record();
    reduce::sum_rows(&mut rec, &xt, &out, scale).unwrap();
    rec.run().unwrap();
    read(&out)
}

#[test]
fn sum_of_integers_is_exact() {
    for (k, &n) in SIZES.iter().enumerate() {
        let x = ints(k as u64, n);
        let got = gpu_sum(&x, 1.0) as f64;
        assert_eq!(got, r::sum(&x), "sum of {n} integers");
        // a power-of-two scale is exact too
        let got = gpu_sum(&x, 0.25) as f64;
        assert_eq!(got, 0.25 * r::sum(&x), "0.25 * sum of {n} integers");
    }
}

#[test]
fn sum_matches_reference() {
    for (k, &n) in SIZES.iter().enumerate() {
        let x = f32s(Rng::new(10 + k as u64).vec(n, -1.0, 2.0));
        let scale = 1.0 / n as f32;
        let want = scale as f64 * r::sum(&x);
        let got = gpu_sum(&x, scale) as f64;
        let bound = 1e-6 * scale as f64 * r::sum_abs(&x) + 1e-7 * want.abs();
        assert!(
            (got - want).abs() <= bound,
            "sum n={n}: got {got}, want {want}, bound {bound:e}"
        );
    }
}

#[test]
fn sum_rows_matches_reference() {
    // (rows, n): one row, one column, odd both ways, and the seed's batch of 128x128 images
    for (k, &(rows, n)) in [
        (1, 1),
        (1, 70_001),
        (1000, 1),
        (3, 7),
        (7, 300),
        (5, 70_001),
        (128, 16384),
    ]
    .iter()
    .enumerate()
    {
        let x = ints(20 + k as u64, rows * n);
        assert_eq!(
            gpu_sum_rows(&x, rows, 1.0),
            r::sum_rows(&x, rows),
            "integer row sums {rows}x{n}"
        );
        let x = f32s(Rng::new(40 + k as u64).vec(rows * n, -1.0, 2.0));
        let got = gpu_sum_rows(&x, rows, 0.5);
        let want: Vec<f64> = r::sum_rows(&x, rows).iter().map(|s| 0.5 * s).collect();
        let worst = r::sum_rows(&x.iter().map(|v| v.abs()).collect::<Vec<_>>(), rows)
            .into_iter()
            .fold(0.0, f64::max);
        assert_close(
            &format!("row sums {rows}x{n}"),
            &got,
            &want,
            1e-7,
            0.5e-6 * worst,
        );
    }
}

#[test]
fn same_bits_every_run() {
    let n = 2 * 1024 * 1024;
    let x = f32s(Rng::new(7).vec(n, -1.0, 1.0));
    let a = gpu_sum(&x, 1.0).to_bits();
    let b = gpu_sum(&x, 1.0).to_bits();
    assert_eq!(a, b, "two recordings of the same sum");
    // one recorded program replayed, the output poisoned in between
    let xt = upload(&x, &[128, 16384]);
    let out = poisoned(&[1]);
    let rows = poisoned(&[128]);
    let mut rec = gpu().record();
    reduce::sum(&mut rec, &xt, &out, 1.0).unwrap();
    reduce::sum_rows(&mut rec, &xt, &rows, 1.0).unwrap();
    let prog = rec.finish().unwrap();
    prog.run(gpu()).unwrap();
    let first = (gpu().read(&out).unwrap(), gpu().read(&rows).unwrap());
    gpu().fill(&out, f32::NAN);
    gpu().fill(&rows, f32::NAN);
    prog.run(gpu()).unwrap();
    let second = (gpu().read(&out).unwrap(), gpu().read(&rows).unwrap());
    assert_eq!(
        first.0[0].to_bits(),
        a,
        "the [128, 16384] view sums the same way"
    );
    assert_eq!(first.0[0].to_bits(), second.0[0].to_bits());
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&first.1), bits(&second.1));
}

#[test]
fn shape_errors_are_reported() {
    let x = upload(&[1.0; 10], &[10]);
    let out3 = poisoned(&[3]);
    let mut rec = gpu().record();
    let err = reduce::sum_rows(&mut rec, &x, &out3, 1.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("rows"), "{err}");
    let err = reduce::sum(&mut rec, &x, &out3, 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("one value") || err.contains("1 value"),
        "{err}"
    );
}

#[test]
fn empty_input_sums_to_zero() {
    let x = gpu().zeros(&[0]);
    let out = poisoned(&[1]);
    let mut rec = gpu().record();
    reduce::sum(&mut rec, &x, &out, 3.0).unwrap();
    rec.run().unwrap();
    assert_eq!(read(&out), vec![0.0]);
}

/// On CPU adapters the first vec4 pass reads texture copies by default (the tests above); the
/// storage-buffer pass must give the same sums, bit for bit (same order of additions), and exact
/// integer sums, on rows that fill part of a texture row, whole rows and rows plus a partial row.
#[test]
fn buffer_and_texture_reads_agree() {
    for (k, &(rows, n)) in [(1, 1000), (5, 4 * 4096 + 8), (128, 16384)]
        .iter()
        .enumerate()
    {
        let ints = ints(60 + k as u64, rows * n);
        let reals = f32s(Rng::new(70 + k as u64).vec(rows * n, -1.0, 2.0));
        let [bi, br] = [false, true].map(|on| {
            facegpu::gpu::with_texture_reads(on, || {
                (
                    gpu_sum_rows(&ints, rows, 1.0),
                    gpu_sum_rows(&reals, rows, 0.5),
                )
            })
        });
        assert_eq!(
            bi.0,
            r::sum_rows(&ints, rows),
            "buffers: integer row sums {rows}x{n}"
        );
        assert_eq!(
            br.0,
            r::sum_rows(&ints, rows),
            "textures: integer row sums {rows}x{n}"
        );
        assert_eq!(bi.1, br.1, "buffers vs textures: row sums {rows}x{n}");
    }
}
