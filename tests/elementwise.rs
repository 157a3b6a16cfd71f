//! axpy and accumulate against float64; bound: one f32 multiply-add, rel 1e-6.
mod common;
mod reference;

use common::*;
use facegpu::ops::elementwise;

#[test]
fn axpy_matches_reference() {
    for (k, &n) in [1usize, 7, 255, 1000, 70_001].iter().enumerate() {
        let a = Rng::new(k as u64).vec(n, -1.0, 1.0);
        let y0 = Rng::new(50 + k as u64).vec(n, -1.0, 1.0);
        let (at, yt) = (upload(&a, &[n]), upload(&y0, &[n]));
        let mut rec = gpu().record();
        elementwise::axpy(&mut rec, -0.75, &at, &yt).unwrap();
        rec.run().unwrap();
        assert_close(
            &format!("axpy n={n}"),
            &read(&yt),
            &reference::elementwise::axpy(-0.75, &a, &y0),
            1e-6,
            1e-7,
        );
    }
}

#[test]
fn accumulate_adds_every_replay() {
    let a = upload(&[0.5, -2.0, 3.0], &[3]);
    let y = upload(&[0.0, 0.0, 0.0], &[3]);
    let mut rec = gpu().record();
    elementwise::accumulate(&mut rec, 2.0, &a, &y).unwrap();
    let prog = rec.finish().unwrap();
    for _ in 0..3 {
        prog.run(gpu()).unwrap();
    }
    assert_eq!(read(&y), vec![3.0, -12.0, 18.0]);
}

#[test]
fn mismatched_lengths_are_refused() {
    let a = upload(&[1.0; 3], &[3]);
    let y = upload(&[1.0; 4], &[4]);
    let mut rec = gpu().record();
    assert!(elementwise::axpy(&mut rec, 1.0, &a, &y).is_err());
}
