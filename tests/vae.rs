//! The VAE's reparameterisation and KL kernels against float64, backward passes also against
//! finite differences, and the noise: the host mirror of Philox (src/ops/rng.rs), fresh per
//! optimizer step when a recorded program replays, the same for the same step.
//! Bounds (u = 2^-24): eps vs the float64 mirror 1e-5 abs (float32 log/cos/sin, |eps| < 6);
//! z and the backward from the GPU's own eps rel 1e-6 + abs 1e-6 (a few roundings and one exp
//! of a few ulp); KL: each term 1 + lv - mu^2 - exp(lv) cancels, so the bound is absolute,
//! 2e-6 * scale/2 * Σ(1 + |lv| + mu^2 + exp(lv)); its gradient rel 1e-6 + abs 1e-6 * scale.
mod common;
mod reference;

use common::*;
use facegpu::gpu::Tensor;
use facegpu::ops::rng;
use facegpu::ops::step::{StepState, StepValues};
use facegpu::ops::vae;
use reference::vae as r;

const SIZES: &[usize] = &[1, 7, 255, 1000, 70_001, 128 * 200];

fn f32s(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|x| x as f32 as f64).collect()
}

fn step_state(t: u32) -> StepState {
    StepState::new(gpu(), values(t))
}

fn values(t: u32) -> StepValues {
    StepValues {
        t,
        epoch: 0,
        lr: 1e-3,
        _pad: 0,
    }
}

/// The noise the forward must draw, from the host mirror.
fn host_eps(seed: u64, n: usize, t: u32) -> Vec<f64> {
    (0..n)
        .map(|i| rng::normal_at(rng::key(seed), i as u32, t, vae::REPARAM_STREAM))
        .collect()
}

/// Latent shape for n values: [batch, latent] with an odd batch where n allows.
fn shape(n: usize) -> Vec<usize> {
    if n.is_multiple_of(200) {
        vec![n / 200, 200]
    } else if n.is_multiple_of(7) {
        vec![n / 7, 7]
    } else {
        vec![1, n]
    }
}

struct Forward {
    z: Vec<f64>,
    eps: Vec<f64>,
}

fn run_forward(mu: &[f64], lv: &[f64], seed: u64, t: u32) -> Forward {
    let s = shape(mu.len());
    let (mu_t, lv_t) = (upload(mu, &s), upload(lv, &s));
    let (z, eps) = (poisoned(&s), poisoned(&s));
    let step = step_state(t);
    let mut rec = gpu().record();
    vae::reparam_forward(&mut rec, &mu_t, &lv_t, &z, &eps, seed, &step).unwrap();
    rec.run().unwrap();
    Forward {
        z: read(&z),
        eps: read(&eps),
    }
}

#[test]
fn reparam_forward_matches_reference() {
    for (k, &n) in SIZES.iter().enumerate() {
        let mu = f32s(Rng::new(k as u64).vec(n, -2.0, 2.0));
        let lv = f32s(Rng::new(30 + k as u64).vec(n, -4.0, 2.0));
        let seed = 0x1234_5678_9abc_def0 ^ k as u64;
        let f = run_forward(&mu, &lv, seed, 3 + k as u32);
        assert_close(
            &format!("eps n={n}"),
            &f.eps,
            &host_eps(seed, n, 3 + k as u32),
            0.0,
            1e-5,
        );
        assert_close(
            &format!("z n={n}"),
            &f.z,
            &r::reparam(&mu, &lv, &f.eps),
            1e-6,
            1e-6,
        );
    }
}

#[test]
fn replayed_step_draws_fresh_noise_and_same_step_same_noise() {
    let n = 3 * 200;
    let s = [3, 200];
    let mu = upload(&vec![0.0; n], &s);
    let lv = upload(&vec![0.0; n], &s);
    let (z, eps) = (poisoned(&s), poisoned(&s));
    let step = step_state(1);
    let mut rec = gpu().record();
    vae::reparam_forward(&mut rec, &mu, &lv, &z, &eps, 42, &step).unwrap();
    let prog = rec.finish().unwrap();
    let mut draws = Vec::new();
    for t in [1, 2, 1] {
        step.set(gpu(), values(t));
        gpu().fill(&eps, f32::NAN);
        prog.run(gpu()).unwrap();
        let e = gpu().read(&eps).unwrap();
        assert_close(
            &format!("eps at step {t}"),
            &to_f64(&e),
            &host_eps(42, n, t),
            0.0,
            1e-5,
        );
        draws.push(e);
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&draws[0]), bits(&draws[2]), "same step, same noise");
    let same = draws[0]
        .iter()
        .zip(&draws[1])
        .filter(|(a, b)| a == b)
        .count();
    assert_eq!(same, 0, "steps 1 and 2 share {same} of {n} noise values");
    // a different seed gives different noise too
    let other = run_forward(&vec![0.0; n], &vec![0.0; n], 43, 1);
    assert!(other
        .eps
        .iter()
        .zip(&draws[0])
        .all(|(a, &b)| *a != b as f64));
}

fn run_backward(dz: &[f64], lv: &[f64], eps: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let s = shape(dz.len());
    let (dz_t, lv_t, eps_t) = (upload(dz, &s), upload(lv, &s), upload(eps, &s));
    let (dmu, dlv) = (poisoned(&s), poisoned(&s));
    let mut rec = gpu().record();
    vae::reparam_backward(&mut rec, &dz_t, &lv_t, &eps_t, &dmu, &dlv).unwrap();
    rec.run().unwrap();
    (read(&dmu), read(&dlv))
}

#[test]
fn reparam_backward_matches_reference() {
    for (k, &n) in SIZES.iter().enumerate() {
        let dz = f32s(Rng::new(60 + k as u64).vec(n, -1.0, 1.0));
        let lv = f32s(Rng::new(90 + k as u64).vec(n, -4.0, 2.0));
        let eps = f32s(host_eps(5, n, 1));
        let (dmu, dlv) = run_backward(&dz, &lv, &eps);
        let (wmu, wlv) = r::reparam_backward(&dz, &lv, &eps);
        assert_close(&format!("dmu n={n}"), &dmu, &wmu, 0.0, 0.0);
        assert_close(&format!("dlogvar n={n}"), &dlv, &wlv, 1e-6, 1e-6);
    }
}

#[test]
fn reparam_backward_matches_finite_differences() {
    for n in [3 * 7, 3 * 8] {
        reparam_fd(n);
    }
}

fn reparam_fd(n: usize) {
    let mu = f32s(Rng::new(1).vec(n, -2.0, 2.0));
    let lv = f32s(Rng::new(2).vec(n, -3.0, 1.0));
    let dz = f32s(Rng::new(3).vec(n, -1.0, 1.0));
    let eps = f32s(host_eps(9, n, 1));
    let (dmu, dlv) = run_backward(&dz, &lv, &eps);
    // L = Σ dz * z(mu, logvar) with eps held fixed
    let loss = |mu: &[f64], lv: &[f64]| {
        r::reparam(mu, lv, &eps)
            .iter()
            .zip(&dz)
            .map(|(z, d)| z * d)
            .sum::<f64>()
    };
    check_grad_fd("dmu", &|m: &[f64]| loss(m, &lv), &mu, &dmu, n, 1e-5, 1e-7);
    check_grad_fd(
        "dlogvar",
        &|l: &[f64]| loss(&mu, l),
        &lv,
        &dlv,
        n,
        1e-5,
        1e-7,
    );
}

fn run_kl(mu: &[f64], lv: &[f64], scale: f32) -> f64 {
    let s = shape(mu.len());
    let out = poisoned(&[1]);
    let mut rec = gpu().record();
    vae::kl(&mut rec, &upload(mu, &s), &upload(lv, &s), &out, scale).unwrap();
    rec.run().unwrap();
    read(&out)[0]
}

#[test]
fn kl_matches_reference() {
    for (k, &n) in SIZES.iter().enumerate() {
        let mu = f32s(Rng::new(120 + k as u64).vec(n, -2.0, 2.0));
        let lv = f32s(Rng::new(150 + k as u64).vec(n, -4.0, 2.0));
        let scale = 1.0 / 3.0f32;
        let got = run_kl(&mu, &lv, scale);
        let want = r::kl(&mu, &lv, scale as f64);
        let size: f64 = (0..n)
            .map(|i| 1.0 + lv[i].abs() + mu[i] * mu[i] + lv[i].exp())
            .sum();
        let bound = 2e-6 * scale as f64 * 0.5 * size;
        assert!(
            (got - want).abs() <= bound,
            "kl n={n}: got {got}, want {want}, bound {bound:e}"
        );
    }
    // the prior itself: mu = 0, logvar = 0 gives exactly 0
    assert_eq!(run_kl(&[0.0; 1000], &[0.0; 1000], 1.0), 0.0);
}

fn run_kl_grad(
    mu: &[f64],
    lv: &[f64],
    dmu0: &[f64],
    dlv0: &[f64],
    scale: f32,
) -> (Vec<f64>, Vec<f64>) {
    let s = shape(mu.len());
    let (dmu, dlv): (Tensor, Tensor) = (upload(dmu0, &s), upload(dlv0, &s));
    let mut rec = gpu().record();
    vae::kl_grad_accumulate(
        &mut rec,
        &upload(mu, &s),
        &upload(lv, &s),
        &dmu,
        &dlv,
        scale,
    )
    .unwrap();
    rec.run().unwrap();
    (read(&dmu), read(&dlv))
}

#[test]
fn kl_grad_accumulate_matches_reference() {
    for (k, &n) in SIZES.iter().enumerate() {
        let mu = f32s(Rng::new(200 + k as u64).vec(n, -2.0, 2.0));
        let lv = f32s(Rng::new(230 + k as u64).vec(n, -4.0, 2.0));
        // what the reparam backward left in the accumulators
        let dmu0 = f32s(Rng::new(260 + k as u64).vec(n, -1.0, 1.0));
        let dlv0 = f32s(Rng::new(290 + k as u64).vec(n, -1.0, 1.0));
        let scale = 0.25f32;
        let (dmu, dlv) = run_kl_grad(&mu, &lv, &dmu0, &dlv0, scale);
        let (gmu, glv) = r::kl_grad(&mu, &lv, scale as f64);
        let add = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x + y).collect::<Vec<_>>();
        assert_close(
            &format!("dmu n={n}"),
            &dmu,
            &add(&dmu0, &gmu),
            1e-6,
            1e-6 * scale as f64,
        );
        assert_close(
            &format!("dlogvar n={n}"),
            &dlv,
            &add(&dlv0, &glv),
            1e-6,
            1e-6 * scale as f64,
        );
    }
}

#[test]
fn kl_grad_matches_finite_differences() {
    for n in [3 * 7, 3 * 8] {
        kl_fd(n);
    }
}

fn kl_fd(n: usize) {
    let mu = f32s(Rng::new(11).vec(n, -2.0, 2.0));
    let lv = f32s(Rng::new(12).vec(n, -3.0, 1.0));
    let scale = 1.0 / 3.0f32;
    let (dmu, dlv) = run_kl_grad(&mu, &lv, &vec![0.0; n], &vec![0.0; n], scale);
    let s = scale as f64;
    check_grad_fd(
        "kl dmu",
        &|m: &[f64]| r::kl(m, &lv, s),
        &mu,
        &dmu,
        n,
        1e-5,
        1e-7,
    );
    check_grad_fd(
        "kl dlogvar",
        &|l: &[f64]| r::kl(&mu, l, s),
        &lv,
        &dlv,
        n,
        1e-5,
        1e-7,
    );
}

#[test]
fn mismatched_shapes_are_refused() {
    let a = upload(&[0.0; 6], &[2, 3]);
    let b = upload(&[0.0; 4], &[2, 2]);
    let st = step_state(1);
    let mut rec = gpu().record();
    let err = vae::reparam_forward(&mut rec, &a, &b, &a, &a, 0, &st)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 2]"), "{err}");
    assert!(vae::kl(&mut rec, &a, &b, &poisoned(&[1]), 1.0).is_err());
    assert!(vae::kl_grad_accumulate(&mut rec, &a, &a, &b, &a, 1.0).is_err());
    assert!(vae::reparam_backward(&mut rec, &a, &a, &a, &a, &b).is_err());
}
