//! Conv2d forward, backward_input and backward_weight against the float64 reference on odd
//! shapes (batch 1 and 3, non-square images, 1x1 / 3x3 / 5x5 / 3x5 kernels, channel counts not
//! multiples of 4, stride 1-3, padding 0-2, all three activations), the seed AE's shapes at
//! batch 2, and the backward passes against central finite differences of the reference.
//!
//! Bound: every output is a float32 sum of terms; its error is at most REL * (sum of |terms|)
//! (computed by running the reference on absolute values), REL = 1e-5 (~170 ulp; typical
//! float32 accumulation of up to a few hundred terms per partial sum gives ~1e-6). Inputs are
//! rounded to float32 first, so both sides see the same numbers.
mod common;
mod reference;

use common::*;
use facegpu::ops::conv2d::{self, Conv2dShape};
use facegpu::ops::Activation;
use reference::conv2d::{self as r, Conv};

const REL: f64 = 1e-5;
const ACTS: [Activation; 3] = [Activation::None, Activation::Relu, Activation::Sigmoid];

#[allow(clippy::too_many_arguments)]
fn conv(
    batch: usize,
    c_in: usize,
    h_in: usize,
    w_in: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
) -> Conv {
    Conv {
        batch,
        c_in,
        h_in,
        w_in,
        c_out,
        kh,
        kw,
        stride,
        pad,
    }
}

/// Odd shapes, each paired with one activation (all three appear).
fn odd_cases() -> Vec<(Conv, Activation)> {
    let shapes = [
        // widths in and out multiples of 4: the CPU kernel (conv_forward_cpu) on lavapipe
        conv(1, 1, 7, 8, 1, 1, 1, 1, 0),
        conv(3, 3, 7, 12, 5, 3, 3, 1, 1),
        conv(1, 5, 9, 16, 3, 5, 5, 2, 2),
        conv(3, 3, 10, 7, 5, 3, 3, 2, 0),
        conv(1, 5, 11, 8, 1, 3, 3, 2, 1),
        conv(3, 1, 5, 5, 3, 5, 5, 1, 2),
        // 12 output channels: two channel blocks of 6
        conv(2, 3, 8, 9, 12, 1, 1, 2, 0),
        // non-square kernel, stride 3
        conv(1, 2, 6, 7, 3, 3, 5, 3, 1),
        // many channels: several channel blocks in every kernel
        conv(1, 20, 5, 6, 9, 3, 3, 1, 1),
        // a 2x66 output plane: more than one 64-pixel workgroup per plane
        conv(1, 2, 3, 131, 3, 3, 3, 2, 1),
        // input widths multiples of 4 and S * c_in in 8..=16: backward_input takes the CPU
        // transposed kernel (convt_forward_cpu) on lavapipe
        conv(2, 8, 6, 12, 3, 3, 3, 1, 1),
        conv(1, 4, 9, 16, 5, 5, 5, 2, 2),
        conv(1, 16, 3, 4, 2, 1, 1, 1, 0),
        // widths in and out multiples of 4, 3x3, stride 2: backward_weight takes the CPU
        // kernel (conv_wgrad_cpu) and backward_input the hand-written transposed one
        // (convt_s2k3_cpu) on lavapipe
        conv(3, 3, 6, 8, 5, 3, 3, 2, 1),
        // input twice the output, output width a multiple of 8: forward takes the hand-written
        // kernel (conv_forward_s2k3_cpu), both backward passes theirs (odd output height)
        conv(1, 3, 6, 16, 2, 3, 3, 2, 1),
        // 5 input channels: backward_input takes convt_s2k3_all_cpu on lavapipe
        conv(3, 5, 6, 8, 3, 3, 3, 2, 1),
        // 12 output channels, input twice the output: forward and backward_weight take the
        // hand-written kernels once per group of 8 channels (8 + 4) on lavapipe
        conv(2, 3, 8, 16, 12, 3, 3, 2, 1),
        // stride 1, a 1x3 kernel, 12 output channels, widths multiples of 4: forward takes
        // conv_forward_cpu and backward_weight conv_wgrad_cpu once per group of 8 channels
        // (8 + 4) on lavapipe
        conv(1, 2, 6, 8, 12, 1, 3, 1, 1),
        // 3x3 stride 1 pad 1, output width a multiple of 8: forward takes the hand-written
        // kernel with S1 (5 output channels), backward_input the same with S1 and TW, and
        // backward_weight conv_wgrad_s2k3_cpu with S1, on lavapipe
        conv(2, 3, 6, 16, 5, 3, 3, 1, 1),
        // the same as ae-wide's last layer (many input channels, one output, here an odd
        // height): forward loops over the 12 input channels, backward_input runs once per
        // group of 8 of its 12 output channels (8 + 4), backward_weight two input channels per
        // invocation
        conv(1, 12, 5, 8, 1, 3, 3, 1, 1),
        // as ae-wide's first layer (1 -> 12): forward and backward_weight once per group of 8
        conv(2, 1, 6, 8, 12, 3, 3, 1, 1),
        // 12 input channels, input twice the output: backward_input takes convt_s2k3_all_cpu
        // once per group of 8 of its 12 output channels (8 + 4) on lavapipe
        conv(2, 12, 8, 8, 3, 3, 3, 2, 1),
    ];
    shapes
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c, ACTS[i % 3]))
        .collect()
}

fn ae_cases() -> Vec<(Conv, Activation)> {
    // each layer with its own activation (the others are covered by odd_cases; every extra
    // activation is another set of kernels to compile, seconds each on lavapipe)
    conv2d::ae_shapes(2)
        .into_iter()
        .map(|(_, s, act)| (lib_to_ref(&s), act))
        .collect()
}

fn lib_shape(c: &Conv) -> Conv2dShape {
    Conv2dShape {
        batch: c.batch,
        c_in: c.c_in,
        h_in: c.h_in,
        w_in: c.w_in,
        c_out: c.c_out,
        kh: c.kh,
        kw: c.kw,
        stride: c.stride,
        pad: c.pad,
    }
}

fn lib_to_ref(s: &Conv2dShape) -> Conv {
    conv(
        s.batch, s.c_in, s.h_in, s.w_in, s.c_out, s.kh, s.kw, s.stride, s.pad,
    )
}

/// Random float32-representable data for one case.
struct Data {
    x: Vec<f64>,
    w: Vec<f64>,
    b: Vec<f64>,
    dy: Vec<f64>,
}

fn data(c: &Conv, seed: u64) -> Data {
    let mut rng = Rng::new(seed);
    let scale = 1.0 / ((c.c_in * c.kh * c.kw) as f64).sqrt();
    Data {
        x: r::f32_round(&rng.vec(c.in_len(), -1.0, 1.0)),
        w: r::f32_round(&rng.vec(c.w_len(), -2.0 * scale, 2.0 * scale)),
        b: r::f32_round(&rng.vec(c.c_out, -0.5, 0.5)),
        dy: r::f32_round(&rng.vec(c.out_len(), -1.0, 1.0)),
    }
}

fn gpu_forward(c: &Conv, act: Activation, d: &Data) -> Vec<f64> {
    let s = lib_shape(c);
    assert_eq!(s.out_shape(), [c.batch, c.c_out, c.h_out(), c.w_out()]);
    let y = poisoned(&s.out_shape());
    let mut rec = gpu().record();
    conv2d::forward(
        &mut rec,
        &s,
        &upload(&d.x, &s.in_shape()),
        &upload(&d.w, &s.weight_shape()),
        &upload(&d.b, &[c.c_out]),
        &y,
        act,
    )
    .unwrap();
    rec.run().unwrap();
    read(&y)
}

/// (dx, dw, db) from the GPU, given the forward output y.
fn gpu_backward(c: &Conv, act: Activation, d: &Data, y: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let s = lib_shape(c);
    let yt = upload(y, &s.out_shape());
    let dyt = upload(&d.dy, &s.out_shape());
    let wt = upload(&d.w, &s.weight_shape());
    let xt = upload(&d.x, &s.in_shape());
    let dx = poisoned(&s.in_shape());
    let dw = poisoned(&s.weight_shape());
    let db = poisoned(&[c.c_out]);
    let mut rec = gpu().record();
    conv2d::backward_input(&mut rec, &s, act, &yt, &dyt, &wt, &dx).unwrap();
    conv2d::backward_weight(&mut rec, &s, act, &yt, &dyt, &xt, &dw, &db).unwrap();
    rec.run().unwrap();
    (read(&dx), read(&dw), read(&db))
}

fn check_forward(c: &Conv, act: Activation, seed: u64) {
    let d = data(c, seed);
    let got = gpu_forward(c, act, &d);
    let want = c.forward(&d.x, &d.w, &d.b, act);
    let mag: Vec<f64> = c
        .forward_pre(&r::abs(&d.x), &r::abs(&d.w), &r::abs(&d.b))
        .iter()
        .zip(&want)
        .map(|(m, w)| m + w.abs())
        .collect();
    r::assert_within(&format!("forward {c:?} {act:?}"), &got, &want, &mag, REL);
}

/// One case's inputs and the GPU's gradients, for [`check_fd`] after [`check_backward`].
struct Grads {
    d: Data,
    dx: Vec<f64>,
    dw: Vec<f64>,
    db: Vec<f64>,
}

fn check_backward(c: &Conv, act: Activation, seed: u64) -> Grads {
    let d = data(c, seed);
    let y = r::f32_round(&c.forward(&d.x, &d.w, &d.b, act));
    let (dx, dw, db) = gpu_backward(c, act, &d, &y);
    let g = r::pre_grad(act, &y, &d.dy);
    let ga = r::abs(&g);
    r::assert_within(
        &format!("backward_input {c:?} {act:?}"),
        &dx,
        &c.backward_input(&g, &d.w),
        &c.backward_input(&ga, &r::abs(&d.w)),
        REL,
    );
    let (dw_want, db_want) = c.backward_weight(&g, &d.x);
    let (dw_mag, db_mag) = c.backward_weight(&ga, &r::abs(&d.x));
    r::assert_within(&format!("dw {c:?} {act:?}"), &dw, &dw_want, &dw_mag, REL);
    r::assert_within(&format!("db {c:?} {act:?}"), &db, &db_want, &db_mag, REL);
    Grads { d, dx, dw, db }
}

/// The GPU's dx, dw, db of [`check_backward`] against central differences of the float64
/// reference loss L = sum(dy * act(conv(x, w) + b)) ([`check_layer_grads_fd`]).
fn check_fd(c: &Conv, act: Activation, g: &Grads, seed: u64) {
    let d = &g.d;
    let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
        c.forward(x, w, b, act)
            .iter()
            .zip(&d.dy)
            .map(|(a, b)| a * b)
            .sum()
    };
    check_layer_grads_fd(
        &format!("{c:?} {act:?}"),
        &loss,
        &d.x,
        &d.w,
        &d.b,
        (&g.dx, &g.dw, &g.db),
        seed,
    );
}

#[test]
fn forward_matches_reference() {
    for (i, (c, act)) in odd_cases().into_iter().enumerate() {
        check_forward(&c, act, i as u64);
    }
}

/// Every odd shape's dx, dw, db against the reference (bound REL of the magnitude) and, the
/// same GPU outputs, against central differences of the reference loss ([`check_fd`]: bound
/// FD_RTOL |FD| + FD_ATOL), so that each specialised kernel the shapes route to (see
/// `odd_cases`) is checked against finite differences too.
#[test]
fn backward_matches_reference() {
    for (i, (c, act)) in odd_cases().into_iter().enumerate() {
        let g = check_backward(&c, act, 100 + i as u64);
        check_fd(&c, act, &g, 1000 + 10 * i as u64);
    }
}

/// The seed AE's layers at their own shapes (128x128 in, batch 2): the kernels training runs,
/// against the reference and, the same GPU gradients, against central differences.
#[test]
fn ae_shapes_match_reference() {
    for (i, (c, act)) in ae_cases().into_iter().enumerate() {
        check_forward(&c, act, 200 + i as u64);
        let g = check_backward(&c, act, 300 + i as u64);
        check_fd(&c, act, &g, 2000 + 10 * i as u64);
    }
}

#[test]
fn cpu_kernels_read_buffers_and_textures_alike() {
    // on CPU adapters the software kernels read flat texture copies of their inputs by default
    // (the tests above); here the shapes that take them (conv_forward_cpu, conv_wgrad_cpu and
    // the hand-written 3x3 stride-2 pair) again, reading the storage buffers instead; the
    // backward outputs also against finite differences ([`check_fd`]'s bound)
    let cases = [
        (conv(1, 1, 7, 8, 1, 1, 1, 1, 0), Activation::Relu),
        (conv(3, 3, 6, 8, 5, 3, 3, 2, 1), Activation::Sigmoid),
        (conv(1, 3, 6, 16, 2, 3, 3, 2, 1), Activation::Relu),
        // the stride-1 variants (S1, TW)
        (conv(2, 3, 6, 16, 5, 3, 3, 1, 1), Activation::Sigmoid),
        // enough pixels for the weight gradient's partials to come in many chunks (the
        // reduction's 4-chunk loop, not only its tail)
        (conv(1, 1, 64, 64, 3, 3, 3, 2, 1), Activation::Sigmoid),
    ];
    facegpu::gpu::with_texture_reads(false, || {
        for (i, (c, act)) in cases.iter().enumerate() {
            check_forward(c, *act, 400 + i as u64);
            let g = check_backward(c, *act, 500 + i as u64);
            check_fd(c, *act, &g, 1500 + 10 * i as u64);
        }
    });
}

/// L = sum(dy * act(conv(x, w) + b)); dL/dx, dL/dw, dL/db from the GPU against central
/// differences of the float64 reference. Bound: rel 1e-4 + abs 1e-5 (float32 gradients; the
/// differences themselves are accurate to ~1e-9).
#[test]
fn backward_matches_finite_differences() {
    let c = conv(2, 3, 5, 6, 4, 3, 3, 2, 1);
    for (k, act) in ACTS.into_iter().enumerate() {
        let d = data(&c, 400 + k as u64);
        let y = r::f32_round(&c.forward(&d.x, &d.w, &d.b, act));
        let (dx, dw, db) = gpu_backward(&c, act, &d, &y);
        let loss = |x: &[f64], w: &[f64], b: &[f64]| {
            c.forward(x, w, b, act)
                .iter()
                .zip(&d.dy)
                .map(|(a, b)| a * b)
                .sum::<f64>()
        };
        let what = format!("{act:?}");
        check_grad_fd(
            &format!("dx {what}"),
            &|x| loss(x, &d.w, &d.b),
            &d.x,
            &dx,
            60,
            1e-4,
            1e-5,
        );
        check_grad_fd(
            &format!("dw {what}"),
            &|w| loss(&d.x, w, &d.b),
            &d.w,
            &dw,
            108,
            1e-4,
            1e-5,
        );
        check_grad_fd(
            &format!("db {what}"),
            &|b| loss(&d.x, &d.w, b),
            &d.b,
            &db,
            4,
            1e-4,
            1e-5,
        );
    }
}

/// backward_input_then: dx times act'(t) of a previous layer's output t, against the reference
/// dx * act'(t) (t in [-1, 1] for relu so the mask varies element by element, in [0, 1] for
/// sigmoid, whose outputs those are; bound REL of the magnitude) and against central
/// differences of the composed reference loss (bound FD_RTOL |FD| + FD_ATOL). The
/// hand-written 3x3 stride-2 kernels apply it in their epilogue (convt_s2k3_all_cpu,
/// convt_s2k3_cpu; reading textures and buffers); the other shape takes the separate pass.
#[test]
fn backward_input_then_matches_reference() {
    let cases = [
        // the seed AE's enc1 at batch 2: convt_s2k3_all_cpu on CPU adapters
        conv(2, 8, 64, 64, 4, 3, 3, 2, 1),
        // 2 input channels: convt_s2k3_cpu
        conv(1, 2, 6, 16, 3, 3, 3, 2, 1),
        // 12 input channels: convt_s2k3_all_cpu once per group of 8
        conv(2, 12, 8, 8, 3, 3, 3, 2, 1),
        // the separate pass
        conv(3, 3, 10, 7, 5, 3, 3, 2, 0),
    ];
    let run = |k: usize, c: &Conv, then: Activation| {
        let d = data(c, 700 + k as u64);
        let act = ACTS[k % 3];
        let y = r::f32_round(&c.forward(&d.x, &d.w, &d.b, act));
        let lo = if then == Activation::Relu { -1.0 } else { 0.0 };
        let t = r::f32_round(&Rng::new(800 + k as u64).vec(c.in_len(), lo, 1.0));
        let dx = gpu_backward_input_then(c, act, &y, &d, then, &t);
        let g = r::pre_grad(act, &y, &d.dy);
        let want = r::pre_grad(then, &t, &c.backward_input(&g, &d.w));
        let mag = r::pre_grad(then, &t, &c.backward_input(&r::abs(&g), &r::abs(&d.w)));
        r::assert_within(
            &format!("backward_input_then {c:?} {act:?} then {then:?}"),
            &dx,
            &want,
            &mag,
            REL,
        );
    };
    for (k, c) in cases.iter().enumerate() {
        for then in [Activation::Relu, Activation::Sigmoid] {
            run(k, c, then);
        }
    }
    facegpu::gpu::with_texture_reads(false, || run(0, &cases[0], Activation::Relu));
    // Finite differences (the same kernels, already compiled): with this layer's input the
    // previous layer's output x = then(z), the kernel's dx * then'(x) is dL/dz of the composed
    // reference loss L(z) = sum(dy * act(conv(then(z), w) + b)); FD_SAMPLES elements, bound
    // FD_RTOL |FD| + FD_ATOL.
    for (k, c) in cases.iter().enumerate() {
        for then in [Activation::Relu, Activation::Sigmoid] {
            let d = data(c, 700 + k as u64);
            let act = ACTS[k % 3];
            let z = r::f32_round(&Rng::new(850 + k as u64).vec(c.in_len(), -2.0, 2.0));
            let x = r::f32_round(&r::apply(then, &z));
            let y = r::f32_round(&c.forward(&x, &d.w, &d.b, act));
            let dz = gpu_backward_input_then(c, act, &y, &d, then, &x);
            let loss = |z: &[f64]| -> f64 {
                c.forward(&r::apply(then, z), &d.w, &d.b, act)
                    .iter()
                    .zip(&d.dy)
                    .map(|(a, b)| a * b)
                    .sum()
            };
            check_grad_fd_sampled(
                &format!("backward_input_then {c:?} {act:?} then {then:?}: finite differences"),
                &loss,
                &z,
                &dz,
                FD_SAMPLES,
                870 + k as u64,
                FD_RTOL,
                FD_ATOL,
            );
        }
    }
}

/// conv2d::backward_input_then's dx for the forward output y, with then = (then, t).
fn gpu_backward_input_then(
    c: &Conv,
    act: Activation,
    y: &[f64],
    d: &Data,
    then: Activation,
    t: &[f64],
) -> Vec<f64> {
    let s = lib_shape(c);
    let dx = poisoned(&s.in_shape());
    let mut rec = gpu().record();
    conv2d::backward_input_then(
        &mut rec,
        &s,
        act,
        &upload(y, &s.out_shape()),
        &upload(&d.dy, &s.out_shape()),
        &upload(&d.w, &s.weight_shape()),
        &dx,
        Some((then, &upload(t, &s.in_shape()))),
    )
    .unwrap();
    rec.run().unwrap();
    read(&dx)
}

/// The input gradient of a layer fused with the weight gradient of the 1-channel 3x3 stride-2
/// conv below it (its g = dx * act'(y0) never stored): dw0 and db0 against the float64
/// reference (error bound REL of the magnitude, as every conv test) and against central
/// differences of the two layers' reference loss (FD_SAMPLES of dw0, all of db0; bound
/// FD_RTOL |FD| + FD_ATOL), through textures and buffers; on GPUs, and where `below` does not
/// fit, it declines and records nothing.
#[test]
fn backward_input_into_wgrad_below_matches_reference() {
    let cases = [
        // the seed AE's enc0 and enc1 at batch 2
        (
            conv(2, 1, 128, 128, 8, 3, 3, 2, 1),
            conv(2, 8, 64, 64, 4, 3, 3, 2, 1),
        ),
        // odd batch, non-square, 5 channels between the two layers
        (
            conv(3, 1, 16, 32, 5, 3, 3, 2, 1),
            conv(3, 5, 8, 16, 3, 3, 3, 2, 1),
        ),
    ];
    let run = |k: usize, below: &Conv, c: &Conv, act: Activation| -> bool {
        let d0 = data(below, 900 + k as u64);
        let y0 = r::f32_round(&below.forward(&d0.x, &d0.w, &d0.b, Activation::Relu));
        let d = data(c, 950 + k as u64);
        let y = r::f32_round(&c.forward(&y0, &d.w, &d.b, act));
        let (s0, s) = (lib_shape(below), lib_shape(c));
        let dw0 = poisoned(&s0.weight_shape());
        let db0 = poisoned(&[below.c_out]);
        let mut rec = gpu().record();
        let fused = conv2d::backward_input_into_wgrad_below(
            &mut rec,
            &s,
            act,
            &upload(&y, &s.out_shape()),
            &upload(&d.dy, &s.out_shape()),
            &upload(&d.w, &s.weight_shape()),
            (Activation::Relu, &upload(&y0, &s.in_shape())),
            &s0,
            &upload(&d0.x, &s0.in_shape()),
            &dw0,
            &db0,
        )
        .unwrap();
        rec.run().unwrap();
        if !fused {
            // declined: nothing recorded
            assert!(read(&dw0).iter().chain(&read(&db0)).all(|v| v.is_nan()));
            return false;
        }
        let g = r::pre_grad(act, &y, &d.dy);
        let g0 = r::pre_grad(Activation::Relu, &y0, &c.backward_input(&g, &d.w));
        let g0_mag = r::pre_grad(
            Activation::Relu,
            &y0,
            &c.backward_input(&r::abs(&g), &r::abs(&d.w)),
        );
        let (dw_want, db_want) = below.backward_weight(&g0, &d0.x);
        let (dw_mag, db_mag) = below.backward_weight(&g0_mag, &r::abs(&d0.x));
        let what = format!("into_wgrad_below {below:?} {c:?} {act:?}");
        let (dw0, db0) = (read(&dw0), read(&db0));
        r::assert_within(&format!("{what} dw0"), &dw0, &dw_want, &dw_mag, REL);
        r::assert_within(&format!("{what} db0"), &db0, &db_want, &db_mag, REL);
        // the same outputs against central differences of the two layers' reference loss
        // L(w0, b0) = sum(dy * act(conv(relu(conv(x0, w0) + b0), w) + b))
        let loss = |w0: &[f64], b0: &[f64]| -> f64 {
            let y0 = below.forward(&d0.x, w0, b0, Activation::Relu);
            c.forward(&y0, &d.w, &d.b, act)
                .iter()
                .zip(&d.dy)
                .map(|(a, b)| a * b)
                .sum()
        };
        check_grad_fd_sampled(
            &format!("{what} dw0: finite differences"),
            &|w0| loss(w0, &d0.b),
            &d0.w,
            &dw0,
            FD_SAMPLES,
            960 + k as u64,
            FD_RTOL,
            FD_ATOL,
        );
        check_grad_fd_sampled(
            &format!("{what} db0: finite differences"),
            &|b0| loss(&d0.w, b0),
            &d0.b,
            &db0,
            below.c_out,
            970 + k as u64,
            FD_RTOL,
            FD_ATOL,
        );
        true
    };
    for (k, (below, c)) in cases.iter().enumerate() {
        for act in [Activation::None, Activation::Relu] {
            let fused = run(k, below, c, act);
            assert_eq!(fused, gpu().is_cpu(), "fused on software adapters only");
        }
    }
    if gpu().is_cpu() {
        assert!(facegpu::gpu::with_texture_reads(false, || run(
            0,
            &cases[0].0,
            &cases[0].1,
            Activation::None
        )));
    }
    // a 2-channel layer below does not fit: declined
    let below2 = conv(3, 2, 16, 32, 5, 3, 3, 2, 1);
    assert!(!run(9, &below2, &cases[1].1, Activation::None));
}

#[test]
fn bad_shapes_are_errors() {
    let s = Conv2dShape {
        batch: 1,
        c_in: 2,
        h_in: 4,
        w_in: 4,
        c_out: 3,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 0,
    };
    let x = gpu().zeros(&s.in_shape());
    let w = gpu().zeros(&s.weight_shape());
    let b = gpu().zeros(&[3]);
    let y = gpu().zeros(&s.out_shape());
    let mut rec = gpu().record();
    // wrong output size
    let bad_y = gpu().zeros(&[1, 3, 4, 4]);
    let e = conv2d::forward(&mut rec, &s, &x, &w, &b, &bad_y, Activation::None).unwrap_err();
    assert!(e.to_string().contains("forward y"), "{e}");
    // kernel larger than the padded input
    let big = Conv2dShape { kh: 7, ..s };
    assert!(conv2d::forward(&mut rec, &big, &x, &w, &b, &y, Activation::None).is_err());
    // zero stride
    let z = Conv2dShape { stride: 0, ..s };
    assert!(conv2d::forward(&mut rec, &z, &x, &w, &b, &y, Activation::None).is_err());
    // wrong bias length in backward_weight
    let bad_b = gpu().zeros(&[2]);
    assert!(
        conv2d::backward_weight(&mut rec, &s, Activation::Relu, &y, &y, &x, &w, &bad_b).is_err()
    );
    // the tensor whose act' multiplies dx must be dx's size
    let e = conv2d::backward_input_then(
        &mut rec,
        &s,
        Activation::None,
        &y,
        &y,
        &w,
        &x,
        Some((Activation::Relu, &bad_b)),
    )
    .unwrap_err();
    assert!(e.to_string().contains("act'"), "{e}");
    // the fused first-layer weight gradient: a layer below that fits, with a wrong-size dw0 or
    // x0, is an error naming it (and records nothing)
    let up = Conv2dShape {
        batch: 1,
        c_in: 5,
        h_in: 8,
        w_in: 16,
        c_out: 3,
        kh: 3,
        kw: 3,
        stride: 2,
        pad: 1,
    };
    let below = Conv2dShape {
        c_in: 1,
        h_in: 16,
        w_in: 32,
        c_out: 5,
        ..up
    };
    let (uy, uw, y0) = (
        gpu().zeros(&up.out_shape()),
        gpu().zeros(&up.weight_shape()),
        gpu().zeros(&up.in_shape()),
    );
    let (x0, dw0, db0) = (
        gpu().zeros(&below.in_shape()),
        gpu().zeros(&below.weight_shape()),
        gpu().zeros(&[5]),
    );
    let fused = |rec: &mut facegpu::gpu::Recorder,
                 x0: &facegpu::gpu::Tensor,
                 dw0: &facegpu::gpu::Tensor| {
        conv2d::backward_input_into_wgrad_below(
            rec,
            &up,
            Activation::None,
            &uy,
            &uy,
            &uw,
            (Activation::Relu, &y0),
            &below,
            x0,
            dw0,
            &db0,
        )
    };
    let e = fused(&mut rec, &x0, &db0).unwrap_err();
    assert!(e.to_string().contains("below dw"), "{e}");
    let e = fused(&mut rec, &dw0, &dw0).unwrap_err();
    assert!(e.to_string().contains("below x0"), "{e}");
    assert_eq!(rec.finish().unwrap().dispatches(), 0);
}

/// Prints GFLOP/s and GB/s of every (layer, pass) at the seed AE's shapes, batch 128.
/// `cargo test --release --test conv2d -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_ae_shapes() {
    let gpu = gpu();
    println!("adapter: {}", gpu.describe());
    for b in conv2d::bench_programs(gpu, 128).unwrap() {
        let t = facegpu::gpu::timing::time_program(gpu, &b.program, 5, 5).unwrap();
        let s = t.seconds();
        println!(
            "{:<90} {:8.3} ms {:7.2} GFLOP/s {:6.2} GB/s",
            b.name,
            s * 1e3,
            b.flops / s * 1e-9,
            b.bytes / s * 1e-9
        );
    }
}

/// Layers with many channels run as matrix products (ops::conv_gemm) on software adapters, in
/// chunks of images when a column matrix would be large. With the chunk limit lowered to two
/// images' columns, a batch of 5 runs as chunks of 2, 2 and 1; all three passes must still
/// match the reference (weight gradients summed over the chunks), and the backward passes
/// (im2col / col2im around the linear kernels) central differences of the reference loss
/// ([`check_fd`]: bound FD_RTOL |FD| + FD_ATOL).
#[test]
fn products_in_chunks_match_reference() {
    let c = conv(5, 8, 7, 9, 17, 3, 3, 2, 1);
    let s = lib_shape(&c);
    let g = gpu();
    if g.is_cpu() && facegpu::ops::linear::cpu_supported(g) {
        assert!(
            conv2d::uses_products(g, &s),
            "{c:?} should run as products here"
        );
    }
    let per_image = s.h_out() * s.w_out() * c.c_in * 9 * 4;
    facegpu::ops::conv_gemm::set_col_limit(2 * per_image);
    check_forward(&c, Activation::Relu, 400);
    let g = check_backward(&c, Activation::Sigmoid, 401);
    facegpu::ops::conv_gemm::set_col_limit(128 << 20);
    check_fd(&c, Activation::Sigmoid, &g, 1401);
    // and in one chunk
    let g = check_backward(&c, Activation::None, 402);
    check_fd(&c, Activation::None, &g, 1402);
}

/// The weight gradients' partial sums reduced in one level and in two (groups of G partials,
/// then the groups: what GPUs run for long partial lists), against the float64 sum. Chunk
/// counts that are and are not multiples of G, and a G of 1 (every partial its own group);
/// the last level reading the partials from buffers (GPUs) and, where the adapter uses them,
/// from textures.
#[test]
fn partials_reduce_in_one_or_two_levels() {
    let (n_w, n_b) = (75, 5);
    let stride = n_w + n_b;
    for (chunks, groups) in [
        (1000, vec![None, Some(64), Some(7)]),
        (128, vec![Some(64), Some(1)]),
    ] {
        let mut rng = Rng::new(chunks as u64);
        let part = rng.vec(chunks * stride, -1.0, 1.0);
        let part_t = upload(&part, &[chunks * stride]);
        let part = to_f64(&to_f32(&part));
        let want: Vec<f64> = (0..stride)
            .map(|i| (0..chunks).map(|c| part[c * stride + i]).sum())
            .collect();
        let bound: Vec<f64> = (0..stride)
            .map(|i| (0..chunks).map(|c| part[c * stride + i].abs()).sum())
            .collect();
        for (group, textures) in groups.into_iter().flat_map(|g| [(g, false), (g, true)]) {
            let dw = poisoned(&[n_w]);
            let db = poisoned(&[n_b]);
            facegpu::gpu::with_texture_reads(textures, || {
                let mut rec = gpu().record();
                conv2d::reduce_partials_in_groups(
                    &mut rec,
                    &part_t.buf,
                    chunks,
                    group,
                    n_w,
                    n_b,
                    &dw,
                    &db,
                )
                .unwrap();
                rec.run().unwrap();
            });
            let got: Vec<f64> = read(&dw).into_iter().chain(read(&db)).collect();
            for i in 0..stride {
                let err = (got[i] - want[i]).abs();
                assert!(
                    err <= REL * bound[i],
                    "chunks {chunks}, group {group:?}, textures {textures}, value {i}: got {}, \
                     want {} (bound {})",
                    got[i],
                    want[i],
                    REL * bound[i]
                );
            }
        }
    }
}
