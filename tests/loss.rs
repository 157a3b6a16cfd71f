//! MSE and its gradient against float64, the gradient also against finite differences.
//! Bounds: the forward sums non-negative terms, so its error is relative: each term carries
//! <= 3 roundings and three passes of <= 256-term sums add at most ~541 u (u = 2^-24) in the
//! worst case, square-root growth in practice (observed <= 4e-8 on lavapipe); asserted rel 1e-6.
//! The gradient is two roundings per element: rel 1e-6.
mod common;
mod reference;

use common::*;
use facegpu::ops::loss;
use reference::loss as r;

const SIZES: &[usize] = &[1, 7, 255, 1000, 70_001, 128 * 16384];

fn f32s(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|x| x as f32 as f64).collect()
}

fn gpu_mse(p: &[f64], t: &[f64], scale: f32) -> f64 {
    let pt = upload(p, &[p.len()]);
    let tt = upload(t, &[t.len()]);
    let out = poisoned(&[1]);
    let mut rec = gpu().record();
    loss::mse(&mut rec, &pt, &tt, &out, scale).unwrap();
    rec.run().unwrap();
    read(&out)[0]
}

fn gpu_mse_grad(p: &[f64], t: &[f64], scale: f32) -> Vec<f64> {
    let pt = upload(p, &[p.len()]);
    let tt = upload(t, &[t.len()]);
    let d = poisoned(&[p.len()]);
    let mut rec = gpu().record();
    loss::mse_grad(&mut rec, &pt, &tt, &d, scale).unwrap();
    rec.run().unwrap();
    read(&d)
}

#[test]
fn mse_matches_reference() {
    for (k, &n) in SIZES.iter().enumerate() {
        let p = f32s(Rng::new(k as u64).vec(n, 0.0, 1.0));
        let t = f32s(Rng::new(50 + k as u64).vec(n, 0.0, 1.0));
        // the mean, and the VAE's per-image sum averaged over a batch of 3
        for scale in [1.0 / n as f32, 1.0 / 3.0] {
            let want = r::mse(&p, &t, scale as f64);
            let got = gpu_mse(&p, &t, scale);
            assert_close(
                &format!("mse n={n} scale={scale}"),
                &[got],
                &[want],
                1e-6,
                0.0,
            );
        }
    }
}

#[test]
fn mse_of_equal_tensors_is_zero() {
    let p = f32s(Rng::new(3).vec(1000, 0.0, 1.0));
    assert_eq!(gpu_mse(&p, &p, 1.0), 0.0);
}

#[test]
fn mse_grad_matches_reference() {
    for (k, &n) in SIZES.iter().enumerate() {
        let p = f32s(Rng::new(100 + k as u64).vec(n, 0.0, 1.0));
        let t = f32s(Rng::new(150 + k as u64).vec(n, 0.0, 1.0));
        let scale = 1.0 / n as f32;
        assert_close(
            &format!("mse_grad n={n}"),
            &gpu_mse_grad(&p, &t, scale),
            &r::mse_grad(&p, &t, scale as f64),
            1e-6,
            1e-30,
        );
    }
}

/// mse_grad_act: the gradient times act'(pred) of the last layer's activation (pred its
/// output), scalar (n = 7) and vec4 (n = 1000) kernels, textures and buffers: against
/// float64, rel 1e-6 (relu: inputs in [-1, 1] so the mask varies; sigmoid: outputs in (0, 1)).
#[test]
fn mse_grad_act_matches_reference() {
    use facegpu::ops::Activation;
    for (k, &n) in [7usize, 1000].iter().enumerate() {
        for act in [Activation::Relu, Activation::Sigmoid] {
            let lo = if act == Activation::Relu { -1.0 } else { 0.0 };
            let p = f32s(Rng::new(900 + k as u64).vec(n, lo, 1.0));
            let t = f32s(Rng::new(950 + k as u64).vec(n, 0.0, 1.0));
            let scale = 1.0 / n as f32;
            let want: Vec<f64> = r::mse_grad(&p, &t, scale as f64)
                .iter()
                .zip(&p)
                .map(|(g, &y)| match act {
                    Activation::Relu => {
                        if y > 0.0 {
                            *g
                        } else {
                            0.0
                        }
                    }
                    _ => g * y * (1.0 - y),
                })
                .collect();
            for textures in [true, false] {
                let got = facegpu::gpu::with_texture_reads(textures, || {
                    let d = poisoned(&[n]);
                    let mut rec = gpu().record();
                    loss::mse_grad_act(
                        &mut rec,
                        &upload(&p, &[n]),
                        &upload(&t, &[n]),
                        &d,
                        scale,
                        act,
                    )
                    .unwrap();
                    rec.run().unwrap();
                    read(&d)
                });
                assert_close(
                    &format!("mse_grad_act n={n} {act:?} textures {textures}"),
                    &got,
                    &want,
                    1e-6,
                    1e-30,
                );
            }
        }
    }
}

#[test]
fn mse_grad_matches_finite_differences() {
    // batch 3 of 5x7 images; scale = 1/batch (sum over pixels, mean over the batch)
    let n = 3 * 35;
    let p = f32s(Rng::new(7).vec(n, 0.0, 1.0));
    let t = f32s(Rng::new(8).vec(n, 0.0, 1.0));
    let scale = 1.0f32 / 3.0;
    let f = |p: &[f64]| r::mse(p, &t, scale as f64);
    // FD of a quadratic is exact up to float64 rounding; the GPU gradient is float32
    check_grad_fd(
        "mse_grad",
        &f,
        &p,
        &gpu_mse_grad(&p, &t, scale),
        n,
        1e-6,
        1e-8,
    );
}

/// The vec4 gradient kernels (n a multiple of 4: mse_grad4, and on software adapters
/// mse_grad4_tex reading texture copies; both taken here with texture reads on and off) against
/// central differences of the float64 loss at every element: mse_grad of L(p) = scale * sum
/// (p - t)^2, and mse_grad_act (relu, sigmoid) of the composed L(z) = scale * sum (act(z) -
/// t)^2, pred = act(z) the last layer's output and z its pre-activation (what the gradient is
/// taken with respect to). n = 288 (batch 3 of 8x12 images), scale 1/n (the mean). Bound: rel
/// 1e-6 + abs 1e-8, as the scalar test: the GPU value is a few float32 roundings (~2e-7
/// relative; pred rounded to float32 moves it by < 2 scale * 3e-8 = 2e-10); the differences
/// err by < n * 2^-53 * L / h ~ 2e-9 (summation) plus ~1e-12 (truncation, h = 1e-6).
#[test]
fn mse_grad_vec4_kernels_match_finite_differences() {
    use facegpu::ops::Activation;
    let n = 3 * 8 * 12;
    let scale = 1.0 / n as f32;
    let t = f32s(Rng::new(960).vec(n, 0.0, 1.0));
    let acts = [Activation::None, Activation::Relu, Activation::Sigmoid];
    for (k, act) in acts.into_iter().enumerate() {
        // pre-activations: relu's mask varies element by element, sigmoid's outputs spread
        let z = f32s(Rng::new(970 + k as u64).vec(n, -1.0, 1.0));
        let apply = |z: &[f64]| -> Vec<f64> {
            z.iter()
                .map(|&v| match act {
                    Activation::None => v,
                    Activation::Relu => v.max(0.0),
                    Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
                })
                .collect()
        };
        let p = f32s(apply(&z));
        let f = |z: &[f64]| r::mse(&apply(z), &t, scale as f64);
        for textures in [true, false] {
            let got = facegpu::gpu::with_texture_reads(textures, || {
                let d = poisoned(&[n]);
                let mut rec = gpu().record();
                let (pt, tt) = (upload(&p, &[n]), upload(&t, &[n]));
                if act == Activation::None {
                    loss::mse_grad(&mut rec, &pt, &tt, &d, scale).unwrap();
                } else {
                    loss::mse_grad_act(&mut rec, &pt, &tt, &d, scale, act).unwrap();
                }
                rec.run().unwrap();
                read(&d)
            });
            check_grad_fd(
                &format!("mse_grad {act:?} n={n} textures {textures}"),
                &f,
                &z,
                &got,
                n,
                1e-6,
                1e-8,
            );
        }
    }
}

#[test]
fn mismatched_shapes_are_refused() {
    let a = upload(&[1.0; 6], &[2, 3]);
    let b = upload(&[1.0; 5], &[5]);
    let out = poisoned(&[1]);
    let mut rec = gpu().record();
    let err = loss::mse(&mut rec, &a, &b, &out, 1.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 3]") && err.contains("[5]"), "{err}");
    assert!(loss::mse_grad(&mut rec, &a, &b, &a, 1.0).is_err());
}

/// On CPU adapters the vec4 kernels read texture copies by default (the tests above): the
/// storage-buffer kernels against the reference too, and the two paths give the same bits.
#[test]
fn buffer_and_texture_reads_agree() {
    for (k, &n) in [1000usize, 2 * 4 * 4096 + 12, 128 * 16384]
        .iter()
        .enumerate()
    {
        let p = f32s(Rng::new(200 + k as u64).vec(n, 0.0, 1.0));
        let t = f32s(Rng::new(250 + k as u64).vec(n, 0.0, 1.0));
        let scale = 1.0 / n as f32;
        let [bufs, texs] = [false, true].map(|on| {
            facegpu::gpu::with_texture_reads(on, || {
                (gpu_mse(&p, &t, scale), gpu_mse_grad(&p, &t, scale))
            })
        });
        let want = r::mse(&p, &t, scale as f64);
        assert_close(
            &format!("buffers: mse n={n}"),
            &[bufs.0],
            &[want],
            1e-6,
            0.0,
        );
        let want = r::mse_grad(&p, &t, scale as f64);
        assert_close(
            &format!("buffers: mse_grad n={n}"),
            &bufs.1,
            &want,
            1e-6,
            1e-30,
        );
        assert_eq!(bufs.0, texs.0, "buffers vs textures: mse n={n}");
        assert_eq!(bufs.1, texs.1, "buffers vs textures: mse_grad n={n}");
    }
}
