//! Adam and AdamW against a float64 model of PyTorch's update rule: 10 steps of one recorded
//! program replayed with the step t and learning rate from the StepState buffer, fresh random
//! gradients every step, with and without weight decay and L1. Late steps check the bias
//! corrections. Bounds after 10 steps (u = 2^-24 = 6e-8): each step rounds w once (|w| u/2)
//! and computes the update to a few u relative, so |w - ref| <= 1e-6 (|w| + 10 lr) (observed
//! <= 0.5 of it on lavapipe); the moments carry ~2 roundings a step, of terms up to max|g|
//! (max g^2): rel 1e-6 + abs 2e-7 max|g| (max g^2) (observed <= 0.3 of it).
//! Penalties sum non-negative terms: rel 1e-6 (see tests/loss.rs).
mod common;
mod reference;

use common::*;
use facegpu::gpu::Tensor;
use facegpu::ops::optim::{self, AdamConfig};
use facegpu::ops::step::{StepState, StepValues};
use reference::optim as r;

fn f32s(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|x| x as f32 as f64).collect()
}

fn ref_cfg(c: &AdamConfig) -> r::Cfg {
    // betas as the decimals a user types (PyTorch's betas are Python floats, and the kernel
    // takes 1 - beta from the decimal); the others are the float32 values the kernel gets:
    // with l1 = 0.3 a gradient near -0.3 cancels to ~1e-6, and there the 1e-8 difference between
    // 0.3 and 0.3f32 would move the update's eps term by 1e-4 lr
    let d = |x: f32| format!("{x}").parse::<f64>().unwrap();
    r::Cfg {
        beta1: d(c.beta1),
        beta2: d(c.beta2),
        eps: c.eps as f64,
        weight_decay: c.weight_decay as f64,
        decoupled: c.decoupled,
        l1: c.l1 as f64,
    }
}

struct State {
    w: Tensor,
    g: Tensor,
    m: Tensor,
    v: Tensor,
}

fn values(t: u32, lr: f32) -> StepValues {
    StepValues {
        t,
        epoch: 0,
        lr,
        _pad: 0,
    }
}

/// Runs `steps` steps on GPU and reference from w0 (m = v = 0), gradients drawn per step at
/// `gscale`, the learning rate decaying per step to show it is read from the buffer.
fn check_steps(what: &str, cfg: AdamConfig, n: usize, seed: u64, gscale: f64, steps: u32) {
    let mut rng = Rng::new(seed);
    let mut w0 = f32s(rng.vec(n, -1.0, 1.0));
    if n > 3 {
        w0[3] = 0.0; // sign(0) = 0 in the L1 term
    }
    let st = State {
        w: upload(&w0, &[n]),
        g: poisoned(&[n]),
        m: upload(&vec![0.0; n], &[n]),
        v: upload(&vec![0.0; n], &[n]),
    };
    let step = StepState::new(gpu(), values(1, cfg.lr));
    let mut rec = gpu().record();
    optim::adam(&mut rec, &cfg, &st.w, &st.g, &st.m, &st.v, &step).unwrap();
    let prog = rec.finish().unwrap();

    let c = ref_cfg(&cfg);
    let (mut w, mut m, mut v) = (w0.clone(), vec![0.0; n], vec![0.0; n]);
    let mut gmax: f64 = 0.0;
    for t in 1..=steps {
        let g = f32s(rng.vec(n, -gscale, gscale));
        gmax = g.iter().fold(gmax, |a, b| a.max(b.abs()));
        let lr = cfg.lr * (1.0 - 0.05 * t as f32);
        gpu().write(&st.g, &to_f32(&g)).unwrap();
        step.set(gpu(), values(t, lr));
        prog.run(gpu()).unwrap();
        r::adam_step(&c, lr as f64, t, &mut w, &g, &mut m, &mut v);
    }
    let lr = cfg.lr as f64;
    let (gw, gm, gv) = (read(&st.w), read(&st.m), read(&st.v));
    assert_close(&format!("{what}: w"), &gw, &w, 1e-6, 1e-5 * lr);
    assert_close(&format!("{what}: m"), &gm, &m, 1e-6, 2e-7 * gmax);
    assert_close(&format!("{what}: v"), &gv, &v, 1e-6, 2e-7 * gmax * gmax);
    // and the optimizer did move the parameters
    let moved = gw.iter().zip(&w0).filter(|(a, b)| a != b).count();
    assert!(
        moved >= n * 9 / 10,
        "{what}: only {moved} of {n} parameters moved"
    );
}

// 741 (the AE) and other odd lengths take the scalar kernel, multiples of 4 the vec4 one
const SIZES: &[usize] = &[1, 7, 741, 1000, 70_001, 70_004];

#[test]
fn adam_matches_pytorch() {
    for (k, &n) in SIZES.iter().enumerate() {
        let cfg = AdamConfig {
            lr: 1e-2,
            ..Default::default()
        };
        check_steps(&format!("adam n={n}"), cfg, n, k as u64, 1.0, 10);
    }
}

#[test]
fn adam_with_weight_decay_and_l1_matches_pytorch() {
    for (k, &n) in SIZES.iter().enumerate() {
        let cfg = AdamConfig {
            lr: 1e-2,
            weight_decay: 0.05,
            ..Default::default()
        };
        check_steps(&format!("adam wd n={n}"), cfg, n, 10 + k as u64, 1.0, 10);
        let cfg = AdamConfig { l1: 0.3, ..cfg };
        check_steps(&format!("adam wd+l1 n={n}"), cfg, n, 20 + k as u64, 1.0, 10);
    }
}

#[test]
fn adamw_matches_pytorch() {
    for (k, &n) in SIZES.iter().enumerate() {
        let cfg = AdamConfig {
            lr: 1e-2,
            weight_decay: 0.1,
            decoupled: true,
            ..Default::default()
        };
        check_steps(&format!("adamw n={n}"), cfg, n, 30 + k as u64, 1.0, 10);
        let cfg = AdamConfig { l1: 0.3, ..cfg };
        check_steps(&format!("adamw l1 n={n}"), cfg, n, 40 + k as u64, 1.0, 10);
    }
}

/// The vec4 kernel reads storage buffers or texture copies (CPU adapters' default, where the
/// length fits whole texels): both paths against the reference, with every option that changes
/// the update, on lengths of whole texture rows and rows plus a partial row (under one row,
/// `optim::TEXTURE_MIN`, the buffers are read either way: 1000).
#[test]
fn buffer_and_texture_reads_match_pytorch() {
    let cfgs = [
        AdamConfig {
            lr: 1e-2,
            weight_decay: 0.05,
            l1: 0.3,
            ..Default::default()
        },
        AdamConfig {
            lr: 1e-2,
            weight_decay: 0.1,
            decoupled: true,
            ..Default::default()
        },
    ];
    for textures in [false, true] {
        for (k, &n) in [1000usize, 2 * 4 * 4096, 70_004].iter().enumerate() {
            for (c, cfg) in cfgs.iter().enumerate() {
                let what = format!("textures={textures} n={n} cfg {c}");
                facegpu::gpu::with_texture_reads(textures, || {
                    check_steps(&what, *cfg, n, 70 + (k * 2 + c) as u64, 1.0, 5)
                });
            }
        }
    }
}

#[test]
fn tiny_gradients_meet_eps() {
    // |g| ~ 1e-8 = eps: the denominator's eps term matters as much as sqrt(v)
    for (k, &n) in SIZES.iter().enumerate() {
        let cfg = AdamConfig::default();
        check_steps(
            &format!("adam tiny g n={n}"),
            cfg,
            n,
            50 + k as u64,
            2e-8,
            10,
        );
    }
}

#[test]
fn late_steps_bias_correction() {
    // one step from given moments at large t: 1 - beta^t must stay accurate (the kernel builds it
    // by binary powering, never pow or exp/log)
    let n = 1001;
    for (k, &t) in [1u32, 2, 3, 1000, 123_457, 4_000_000_000]
        .iter()
        .enumerate()
    {
        for decoupled in [false, true] {
            let cfg = AdamConfig {
                lr: 3e-3,
                weight_decay: 0.01,
                decoupled,
                ..Default::default()
            };
            let mut rng = Rng::new(60 + k as u64);
            let mut w = f32s(rng.vec(n, -1.0, 1.0));
            let g = f32s(rng.vec(n, -1.0, 1.0));
            let mut m = f32s(rng.vec(n, -0.5, 0.5));
            let mut v = f32s(rng.vec(n, 0.0, 0.5));
            let (wt, gt, mt, vt) = (
                upload(&w, &[n]),
                upload(&g, &[n]),
                upload(&m, &[n]),
                upload(&v, &[n]),
            );
            let step = StepState::new(gpu(), values(t, cfg.lr));
            let mut rec = gpu().record();
            optim::adam(&mut rec, &cfg, &wt, &gt, &mt, &vt, &step).unwrap();
            rec.run().unwrap();
            r::adam_step(&ref_cfg(&cfg), cfg.lr as f64, t, &mut w, &g, &mut m, &mut v);
            let what = format!("t={t} decoupled={decoupled}");
            assert_close(
                &format!("{what}: w"),
                &read(&wt),
                &w,
                1e-6,
                1e-6 * cfg.lr as f64,
            );
            assert_close(&format!("{what}: m"), &read(&mt), &m, 1e-6, 1e-7);
            assert_close(&format!("{what}: v"), &read(&vt), &v, 1e-6, 1e-7);
        }
    }
}

fn run_penalty(l1: bool, w: &[f64], coef: f32) -> f64 {
    let out = poisoned(&[1]);
    let mut rec = gpu().record();
    let wt = upload(w, &[w.len()]);
    if l1 {
        optim::l1_penalty(&mut rec, &wt, &out, coef).unwrap();
    } else {
        optim::l2_penalty(&mut rec, &wt, &out, coef).unwrap();
    }
    rec.run().unwrap();
    read(&out)[0]
}

#[test]
fn penalties_match_reference() {
    for (k, &n) in [1usize, 7, 741, 70_001, 2 * 1024 * 1024].iter().enumerate() {
        let w = f32s(Rng::new(80 + k as u64).vec(n, -1.0, 1.0));
        let got = run_penalty(true, &w, 1e-4);
        assert_close(
            &format!("l1 n={n}"),
            &[got],
            &[r::l1_penalty(&w, 1e-4f32 as f64)],
            1e-6,
            0.0,
        );
        let got = run_penalty(false, &w, 3e-3);
        assert_close(
            &format!("l2 n={n}"),
            &[got],
            &[r::l2_penalty(&w, 3e-3f32 as f64)],
            1e-6,
            0.0,
        );
    }
}

#[test]
fn bad_inputs_are_refused() {
    let a = upload(&[0.0; 6], &[2, 3]);
    let b = upload(&[0.0; 5], &[5]);
    let step = StepState::new(gpu(), values(1, 1e-3));
    let mut rec = gpu().record();
    let cfg = AdamConfig::default();
    let err = optim::adam(&mut rec, &cfg, &a, &b, &a, &a, &step)
        .unwrap_err()
        .to_string();
    assert!(err.contains("grad") && err.contains("[5]"), "{err}");
    let bad = AdamConfig { beta2: 1.0, ..cfg };
    assert!(optim::adam(&mut rec, &bad, &a, &a, &a, &a, &step).is_err());
    assert!(optim::l1_penalty(&mut rec, &a, &a, 1.0).is_err());
}
