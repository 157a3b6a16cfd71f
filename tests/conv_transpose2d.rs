//! ConvTranspose2d forward, backward_input and backward_weight against the float64 reference on
//! odd shapes (batch 1 and 3, non-square images, 1x1 / 3x3 / 5x5 / 3x5 kernels, channel counts
//! not multiples of 4, stride 1-3, padding 0-2, output_padding 0-2, all three activations), the
//! seed AE's decoder shapes at batch 2, and the backward passes against central finite
//! differences of the reference.
//!
//! Bound: every output is a float32 sum of terms; its error is at most REL * (sum of |terms|)
//! (computed by running the reference on absolute values), REL = 1e-5 (~170 ulp; float32
//! accumulation of up to a few hundred terms per partial sum gives ~1e-6). Inputs are rounded
//! to float32 first, so both sides see the same numbers.
mod common;
mod reference;

use common::*;
use facegpu::ops::conv_transpose2d::{self, ConvTranspose2dShape};
use facegpu::ops::Activation;
use reference::conv2d as r;
use reference::conv_transpose2d::ConvT;

const REL: f64 = 1e-5;
const ACTS: [Activation; 3] = [Activation::None, Activation::Relu, Activation::Sigmoid];

#[allow(clippy::too_many_arguments)]
fn convt(
    batch: usize,
    c_in: usize,
    h_in: usize,
    w_in: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    output_padding: usize,
) -> ConvT {
    ConvT {
        batch,
        c_in,
        h_in,
        w_in,
        c_out,
        kh,
        kw,
        stride,
        pad,
        output_padding,
    }
}

/// Odd shapes, each paired with one activation (all three appear).
fn odd_cases() -> Vec<(ConvT, Activation)> {
    let shapes = [
        // widths in and out multiples of 4: backward_input takes the CPU kernel on lavapipe
        convt(1, 1, 7, 4, 1, 1, 1, 1, 0, 0),
        convt(3, 3, 7, 8, 5, 3, 3, 1, 1, 0),
        convt(1, 5, 5, 8, 3, 5, 5, 2, 2, 1),
        // the finite-difference case's geometry (shares its compiled kernels)
        convt(3, 3, 6, 5, 5, 3, 3, 2, 1, 1),
        convt(3, 1, 5, 5, 3, 5, 5, 1, 2, 0),
        // 1x1 kernel with stride 2: output pixels no tap reaches (bias only)
        convt(2, 3, 4, 5, 6, 1, 1, 2, 0, 1),
        // non-square kernel, stride 3, output_padding 2, pad 0
        convt(1, 2, 4, 5, 3, 3, 5, 3, 0, 2),
        // many channels: several channel blocks in every kernel; a 2x131 output plane (more
        // than one 64-pixel workgroup per plane)
        convt(1, 9, 1, 66, 19, 3, 3, 2, 1, 0),
        // output widths multiples of 4 and S * c_out in 8..=16: forward takes the CPU kernel
        // (convt_forward_cpu) on lavapipe; stride 1, 2 and 4
        convt(3, 3, 5, 4, 8, 3, 3, 1, 1, 0),
        convt(1, 2, 3, 2, 4, 5, 5, 2, 2, 1),
        convt(1, 3, 2, 2, 2, 5, 5, 4, 1, 1),
        // widths in and out multiples of 4, 3x3, P + S <= 3, c_in <= 8: backward_weight takes
        // the CPU kernel on lavapipe; stride 2, two channel blocks; 6 output channels and an
        // odd height: forward takes convt_s2k3_all_cpu
        convt(3, 5, 3, 4, 6, 3, 3, 2, 1, 1),
        // 3x3 s2 p1 op1, w_in % 8 == 0, 2 output channels, an odd height (half a row block):
        // forward takes the hand-written CPU kernel (convt_s2k3_cpu) on lavapipe
        convt(3, 5, 3, 16, 2, 3, 3, 2, 1, 1),
        // 3x3 s2 p1 op1, 3 input channels (two per weight-gradient invocation), 5 output
        // channels (a partial channel block): backward_weight takes conv_wgrad_s2k3_cpu
        convt(3, 3, 3, 4, 5, 3, 3, 2, 1, 1),
        // 3x3 s2 p1 op1, 12 input channels: backward_input and backward_weight take the
        // hand-written kernels once per group of 8 input channels (8 + 4) on lavapipe
        convt(2, 12, 4, 8, 3, 3, 3, 2, 1, 1),
        // 3x3 s2 p1 op1, 12 output channels: forward takes convt_s2k3_all_cpu once per group
        // of 8 (8 + 4) on lavapipe
        convt(2, 3, 3, 4, 12, 3, 3, 2, 1, 1),
        // 3x3 stride 1 pad 1 (output the size of the input), widths multiples of 8: forward
        // takes Conv2d's hand-written kernel with S1 and TW, backward_input the same with S1,
        // backward_weight conv_wgrad_s2k3_cpu with S1 and TRANSPOSED, on lavapipe; 12 input
        // channels: forward loops over them, backward_input and backward_weight run once per
        // group of 8 (8 + 4)
        convt(2, 12, 4, 8, 3, 3, 3, 1, 1, 0),
        // 12 output channels: forward once per group of 8 (8 + 4)
        convt(1, 3, 4, 16, 12, 3, 3, 1, 1, 0),
    ];
    shapes
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c, ACTS[i % 3]))
        .collect()
}

fn ae_cases() -> Vec<(ConvT, Activation)> {
    // each layer with its own activation (the others are covered by odd_cases; every extra
    // activation is another set of kernels to compile, seconds each on lavapipe)
    conv_transpose2d::ae_shapes(2)
        .into_iter()
        .map(|(_, s, act)| (lib_to_ref(&s), act))
        .collect()
}

fn lib_shape(c: &ConvT) -> ConvTranspose2dShape {
    ConvTranspose2dShape {
        batch: c.batch,
        c_in: c.c_in,
        h_in: c.h_in,
        w_in: c.w_in,
        c_out: c.c_out,
        kh: c.kh,
        kw: c.kw,
        stride: c.stride,
        pad: c.pad,
        output_padding: c.output_padding,
    }
}

fn lib_to_ref(s: &ConvTranspose2dShape) -> ConvT {
    convt(
        s.batch,
        s.c_in,
        s.h_in,
        s.w_in,
        s.c_out,
        s.kh,
        s.kw,
        s.stride,
        s.pad,
        s.output_padding,
    )
}

/// Random float32-representable data for one case.
struct Data {
    x: Vec<f64>,
    w: Vec<f64>,
    b: Vec<f64>,
    dy: Vec<f64>,
}

fn data(c: &ConvT, seed: u64) -> Data {
    let mut rng = Rng::new(seed);
    let scale = 1.0 / ((c.c_in * c.kh * c.kw) as f64).sqrt();
    Data {
        x: r::f32_round(&rng.vec(c.in_len(), -1.0, 1.0)),
        w: r::f32_round(&rng.vec(c.w_len(), -2.0 * scale, 2.0 * scale)),
        b: r::f32_round(&rng.vec(c.c_out, -0.5, 0.5)),
        dy: r::f32_round(&rng.vec(c.out_len(), -1.0, 1.0)),
    }
}

fn gpu_forward(c: &ConvT, act: Activation, d: &Data) -> Vec<f64> {
    let s = lib_shape(c);
    assert_eq!(s.out_shape(), [c.batch, c.c_out, c.h_out(), c.w_out()]);
    let y = poisoned(&s.out_shape());
    let mut rec = gpu().record();
    conv_transpose2d::forward(
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
fn gpu_backward(c: &ConvT, act: Activation, d: &Data, y: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let s = lib_shape(c);
    let yt = upload(y, &s.out_shape());
    let dyt = upload(&d.dy, &s.out_shape());
    let wt = upload(&d.w, &s.weight_shape());
    let xt = upload(&d.x, &s.in_shape());
    let dx = poisoned(&s.in_shape());
    let dw = poisoned(&s.weight_shape());
    let db = poisoned(&[c.c_out]);
    let mut rec = gpu().record();
    conv_transpose2d::backward_input(&mut rec, &s, act, &yt, &dyt, &wt, &dx).unwrap();
    conv_transpose2d::backward_weight(&mut rec, &s, act, &yt, &dyt, &xt, &dw, &db).unwrap();
    rec.run().unwrap();
    (read(&dx), read(&dw), read(&db))
}

fn check_forward(c: &ConvT, act: Activation, seed: u64) {
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

fn check_backward(c: &ConvT, act: Activation, seed: u64) -> Grads {
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

/// sum(dy * v): the reference loss whose gradients the backward passes compute.
fn dot(v: &[f64], dy: &[f64]) -> f64 {
    v.iter().zip(dy).map(|(a, b)| a * b).sum()
}

/// The GPU's dx, dw, db of [`check_backward`] against central differences of the float64
/// reference loss L = sum(dy * act(convT(x, w) + b)) ([`check_layer_grads_fd`]).
fn check_fd(c: &ConvT, act: Activation, g: &Grads, seed: u64) {
    let d = &g.d;
    let loss = |x: &[f64], w: &[f64], b: &[f64]| dot(&c.forward(x, w, b, act), &d.dy);
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
    // on CPU adapters the 3x3 stride-2 forward kernels (convt_s2k3_core.wgsl) and the software
    // kernels shared with Conv2d (conv2d.wgsl: backward_input as conv_forward_cpu, the weight
    // gradient as conv_wgrad*_cpu with TRANSPOSED) read flat texture copies of their inputs by
    // default (the tests above); here shapes that take them again, reading the storage buffers
    // instead (convt_s2k3_all_cpu for 4..8 output channels, convt_s2k3_cpu for 2); the
    // backward outputs also against finite differences ([`check_fd`]'s bound)
    let cases = [
        (convt(1, 1, 7, 4, 1, 1, 1, 1, 0, 0), Activation::None),
        (convt(3, 5, 3, 4, 6, 3, 3, 2, 1, 1), Activation::Sigmoid),
        (convt(3, 3, 3, 4, 5, 3, 3, 2, 1, 1), Activation::Relu),
        (convt(3, 5, 3, 16, 2, 3, 3, 2, 1, 1), Activation::Sigmoid),
        // stride 1 (S1, TW)
        (convt(3, 3, 7, 8, 5, 3, 3, 1, 1, 0), Activation::Relu),
    ];
    facegpu::gpu::with_texture_reads(false, || {
        for (i, (c, act)) in cases.iter().enumerate() {
            check_forward(c, *act, 400 + i as u64);
            let g = check_backward(c, *act, 500 + i as u64);
            check_fd(c, *act, &g, 1500 + 10 * i as u64);
        }
    });
}

/// L = sum(dy * act(convT(x, w) + b)); dL/dx, dL/dw, dL/db from the GPU against central
/// differences of the float64 reference. Bound: rel 1e-4 + abs 1e-5 (float32 gradients; the
/// differences themselves are accurate to ~1e-9).
#[test]
fn backward_matches_finite_differences() {
    // geometries shared with odd_cases / the AE shapes, so no extra kernels compile
    let cases = [
        (convt(2, 3, 4, 5, 5, 3, 3, 2, 1, 1), Activation::None),
        (convt(2, 4, 3, 4, 8, 3, 3, 2, 1, 1), Activation::Relu),
        (convt(1, 8, 3, 5, 1, 3, 3, 2, 1, 1), Activation::Sigmoid),
    ];
    for (k, (c, act)) in cases.into_iter().enumerate() {
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
            100,
            1e-4,
            1e-5,
        );
        check_grad_fd(
            &format!("db {what}"),
            &|b| loss(&d.x, &d.w, b),
            &d.b,
            &db,
            8,
            1e-4,
            1e-5,
        );
    }
}

/// backward_input_then: dx times act'(t) of a previous layer's output t, against the reference
/// dx * act'(t) (t in [-1, 1] for relu so the mask varies element by element, in [0, 1] for
/// sigmoid, whose outputs those are; bound REL of the magnitude) and against central
/// differences of the composed reference loss (bound FD_RTOL |FD| + FD_ATOL). The
/// hand-written 3x3 stride-2 kernels apply it in their epilogue (conv_forward_s2k3_cpu;
/// reading textures and buffers); the other shape takes the separate pass.
#[test]
fn backward_input_then_matches_reference() {
    let cases = [
        // the seed AE's dec1 at batch 2: conv_forward_s2k3_cpu on CPU adapters
        convt(2, 8, 64, 64, 1, 3, 3, 2, 1, 1),
        // 12 input channels: conv_forward_s2k3_cpu once per group of 8
        convt(2, 12, 4, 8, 3, 3, 3, 2, 1, 1),
        // the separate pass
        convt(3, 3, 5, 7, 2, 3, 3, 2, 1, 0),
    ];
    let run = |k: usize, c: &ConvT, then: Activation| {
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
    // reference loss L(z) = sum(dy * act(convT(then(z), w) + b)); FD_SAMPLES elements, bound
    // FD_RTOL |FD| + FD_ATOL.
    for (k, c) in cases.iter().enumerate() {
        for then in [Activation::Relu, Activation::Sigmoid] {
            let d = data(c, 700 + k as u64);
            let act = ACTS[k % 3];
            let z = r::f32_round(&Rng::new(850 + k as u64).vec(c.in_len(), -2.0, 2.0));
            let x = r::f32_round(&r::apply(then, &z));
            let y = r::f32_round(&c.forward(&x, &d.w, &d.b, act));
            let dz = gpu_backward_input_then(c, act, &y, &d, then, &x);
            check_grad_fd_sampled(
                &format!("backward_input_then {c:?} {act:?} then {then:?}: finite differences"),
                &|z| dot(&c.forward(&r::apply(then, z), &d.w, &d.b, act), &d.dy),
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

/// conv_transpose2d::backward_input_then's dx for the forward output y, with then = (then, t).
fn gpu_backward_input_then(
    c: &ConvT,
    act: Activation,
    y: &[f64],
    d: &Data,
    then: Activation,
    t: &[f64],
) -> Vec<f64> {
    let s = lib_shape(c);
    let dx = poisoned(&s.in_shape());
    let mut rec = gpu().record();
    conv_transpose2d::backward_input_then(
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

/// backward_fused: the input gradient (times then'(x), x the layer's input) and the weight
/// gradient of a one-output-channel 3x3 stride-2 transposed conv in one pass, against the
/// float64 reference (bound REL, as every test here) and against central differences of the
/// composed reference loss (bound FD_RTOL |FD| + FD_ATOL), through textures and buffers. On
/// GPUs, and for shapes the kernel does not take, it declines and records nothing.
#[test]
fn backward_fused_matches_reference() {
    let cases = [
        // the seed AE's dec1 at batch 2
        convt(2, 8, 64, 64, 1, 3, 3, 2, 1, 1),
        // odd batch, non-square, input channels not multiples of 4
        convt(3, 3, 4, 8, 1, 3, 3, 2, 1, 1),
        convt(1, 5, 6, 16, 1, 3, 3, 2, 1, 1),
    ];
    let run = |k: usize, c: &ConvT, act: Activation, then: Activation| -> bool {
        let d = data(c, 1000 + k as u64);
        let y = r::f32_round(&c.forward(&d.x, &d.w, &d.b, act));
        let Some((dx, dw, db)) = gpu_backward_fused(c, act, &y, &d, then) else {
            return false;
        };
        let g = r::pre_grad(act, &y, &d.dy);
        let ga = r::abs(&g);
        // x in [-1, 1]: relu's mask varies element by element
        let want = r::pre_grad(then, &d.x, &c.backward_input(&g, &d.w));
        let mag = r::pre_grad(then, &d.x, &c.backward_input(&ga, &r::abs(&d.w)));
        let what = format!("backward_fused {c:?} {act:?} then {then:?}");
        r::assert_within(&format!("{what} dx"), &dx, &want, &mag, REL);
        let (dw_want, db_want) = c.backward_weight(&g, &d.x);
        let (dw_mag, db_mag) = c.backward_weight(&ga, &r::abs(&d.x));
        r::assert_within(&format!("{what} dw"), &dw, &dw_want, &dw_mag, REL);
        r::assert_within(&format!("{what} db"), &db, &db_want, &db_mag, REL);
        true
    };
    for (k, c) in cases.iter().enumerate() {
        for (act, then) in [
            (Activation::None, Activation::Relu),
            (Activation::Sigmoid, Activation::None),
            (Activation::Relu, Activation::Sigmoid),
        ] {
            let fused = run(k, c, act, then);
            assert_eq!(fused, gpu().is_cpu(), "fused on software adapters only");
        }
    }
    if gpu().is_cpu() {
        assert!(facegpu::gpu::with_texture_reads(false, || run(
            1,
            &cases[1],
            Activation::Sigmoid,
            Activation::Relu
        )));
    }
    // Finite differences where it fuses (the same kernels, already compiled): with the input
    // the previous layer's output x = then(z), the kernel's dx is dL/dz and dw, db the weight
    // and bias gradients of the reference loss L(z, w, b) = sum(dy * act(convT(then(z), w) +
    // b)); FD_SAMPLES elements of dx and dw, all of db, bound FD_RTOL |FD| + FD_ATOL.
    if gpu().is_cpu() {
        for (k, c) in cases.iter().enumerate() {
            for (act, then) in [
                (Activation::None, Activation::Relu),
                (Activation::Sigmoid, Activation::None),
                (Activation::Relu, Activation::Sigmoid),
            ] {
                let d = data(c, 1000 + k as u64);
                let z = r::f32_round(&Rng::new(1050 + k as u64).vec(c.in_len(), -2.0, 2.0));
                let d = Data {
                    x: r::f32_round(&r::apply(then, &z)),
                    ..d
                };
                let y = r::f32_round(&c.forward(&d.x, &d.w, &d.b, act));
                let (dz, dw, db) = gpu_backward_fused(c, act, &y, &d, then).expect("fused");
                let loss = |x: &[f64], w: &[f64], b: &[f64]| dot(&c.forward(x, w, b, act), &d.dy);
                let what =
                    format!("backward_fused {c:?} {act:?} then {then:?}: finite differences");
                check_grad_fd_sampled(
                    &format!("{what} dx"),
                    &|z| loss(&r::apply(then, z), &d.w, &d.b),
                    &z,
                    &dz,
                    FD_SAMPLES,
                    1060 + k as u64,
                    FD_RTOL,
                    FD_ATOL,
                );
                check_grad_fd_sampled(
                    &format!("{what} dw"),
                    &|w| loss(&d.x, w, &d.b),
                    &d.w,
                    &dw,
                    FD_SAMPLES,
                    1070 + k as u64,
                    FD_RTOL,
                    FD_ATOL,
                );
                check_grad_fd_sampled(
                    &format!("{what} db"),
                    &|b| loss(&d.x, &d.w, b),
                    &d.b,
                    &db,
                    c.c_out,
                    1080 + k as u64,
                    FD_RTOL,
                    FD_ATOL,
                );
            }
        }
    }
    // two output channels, an odd number of input-gradient rows, 9 input channels: declined
    for c in [
        convt(2, 3, 4, 8, 2, 3, 3, 2, 1, 1),
        convt(1, 3, 3, 8, 1, 3, 3, 2, 1, 1),
        convt(1, 9, 4, 8, 1, 3, 3, 2, 1, 1),
    ] {
        assert!(!run(7, &c, Activation::None, Activation::Relu), "{c:?}");
    }
}

/// conv_transpose2d::backward_fused's (dx, dw, db) for the forward output y, or None where it
/// declines (and then it must have recorded nothing).
fn gpu_backward_fused(
    c: &ConvT,
    act: Activation,
    y: &[f64],
    d: &Data,
    then: Activation,
) -> Option<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let s = lib_shape(c);
    let dx = poisoned(&s.in_shape());
    let dw = poisoned(&s.weight_shape());
    let db = poisoned(&[c.c_out]);
    let mut rec = gpu().record();
    let fused = conv_transpose2d::backward_fused(
        &mut rec,
        &s,
        act,
        &upload(y, &s.out_shape()),
        &upload(&d.dy, &s.out_shape()),
        &upload(&d.x, &s.in_shape()),
        &upload(&d.w, &s.weight_shape()),
        then,
        &dx,
        &dw,
        &db,
    )
    .unwrap();
    rec.run().unwrap();
    let (dx, dw, db) = (read(&dx), read(&dw), read(&db));
    if !fused {
        assert!(
            dx.iter().chain(&dw).chain(&db).all(|v| v.is_nan()),
            "declined: nothing recorded"
        );
        return None;
    }
    Some((dx, dw, db))
}

/// The last layer with the MSE loss folded in (training): g = 2 scale (y - t) act'(y) and
/// loss = scale * sum (y - t)^2 against the float64 reference, and bit for bit / within 1e-6 the
/// separate forward, loss::mse_grad_act and loss::mse (the same float32 operations on the same
/// y; the loss sums in another order). Software adapters fold it for 1-3 output channels at
/// 3x3 stride 2 (widths multiples of 8); elsewhere the call records nothing and says so.
#[test]
fn forward_mse_grad_matches_reference_and_separate_passes() {
    use facegpu::ops::loss;
    let folds = gpu().is_cpu();
    let cases = [
        // the seed AE's dec1 at batch 2; an odd input height (a half-filled last row pair)
        (
            convt(2, 8, 64, 64, 1, 3, 3, 2, 1, 1),
            Activation::Sigmoid,
            folds,
        ),
        (convt(3, 5, 7, 8, 2, 3, 3, 2, 1, 1), Activation::Relu, folds),
        (
            convt(1, 3, 4, 16, 3, 3, 3, 2, 1, 1),
            Activation::None,
            folds,
        ),
        // four output channels: not folded
        (
            convt(1, 3, 4, 8, 4, 3, 3, 2, 1, 1),
            Activation::Sigmoid,
            false,
        ),
    ];
    let check = |k: usize, c: &ConvT, act: &Activation, fold: &bool| {
        let d = data(c, 900 + k as u64);
        let t = r::f32_round(&Rng::new(950 + k as u64).vec(c.out_len(), 0.0, 1.0));
        let scale = 1.0 / c.out_len() as f32;
        let s = lib_shape(c);
        let (x, w, b) = (
            upload(&d.x, &s.in_shape()),
            upload(&d.w, &s.weight_shape()),
            upload(&d.b, &[c.c_out]),
        );
        let tt = upload(&t, &s.out_shape());
        let (g, l) = (poisoned(&s.out_shape()), poisoned(&[1]));
        let mut rec = gpu().record();
        let folded =
            conv_transpose2d::forward_mse_grad(&mut rec, &s, &x, &w, &b, *act, &tt, &g, &l, scale)
                .unwrap();
        rec.run().unwrap();
        assert_eq!(folded, *fold, "{c:?}: folded");
        if !folded {
            assert!(
                read(&g).iter().all(|v| v.is_nan()),
                "{c:?}: recorded nothing"
            );
            return;
        }
        // float64 reference
        let y = c.forward(&d.x, &d.w, &d.b, *act);
        let k2 = 2.0 * scale as f64;
        let diff: Vec<f64> = y.iter().zip(&t).map(|(y, t)| k2 * (y - t)).collect();
        let size: Vec<f64> = y
            .iter()
            .zip(&t)
            .map(|(y, t)| k2 * (y.abs() + t.abs()))
            .collect();
        let mag_y: Vec<f64> = c
            .forward_pre(&r::abs(&d.x), &r::abs(&d.w), &r::abs(&d.b))
            .iter()
            .zip(&size)
            .map(|(m, s)| k2 * m + s)
            .collect();
        r::assert_within(
            &format!("forward_mse_grad g {c:?} {act:?}"),
            &read(&g),
            &r::pre_grad(*act, &y, &diff),
            // act' <= 1 for all three
            &mag_y,
            REL,
        );
        let want: f64 = scale as f64 * y.iter().zip(&t).map(|(y, t)| (y - t).powi(2)).sum::<f64>();
        let got = read(&l)[0];
        assert!(
            (got - want).abs() <= 1e-5 * want,
            "{c:?} loss {got} vs {want}"
        );
        // the separate passes
        let (y2, g2, l2) = (
            poisoned(&s.out_shape()),
            poisoned(&s.out_shape()),
            poisoned(&[1]),
        );
        let mut rec = gpu().record();
        conv_transpose2d::forward(&mut rec, &s, &x, &w, &b, &y2, *act).unwrap();
        loss::mse(&mut rec, &y2, &tt, &l2, scale).unwrap();
        loss::mse_grad_act(&mut rec, &y2, &tt, &g2, scale, *act).unwrap();
        rec.run().unwrap();
        let bits = |t: &facegpu::gpu::Tensor| -> Vec<u32> {
            gpu().read(t).unwrap().iter().map(|v| v.to_bits()).collect()
        };
        assert!(
            bits(&g) == bits(&g2),
            "{c:?}: g differs from the separate passes"
        );
        let l2 = read(&l2)[0];
        assert!(
            (got - l2).abs() <= 1e-6 * l2,
            "{c:?} loss {got} vs separate {l2}"
        );
    };
    for (k, (c, act, fold)) in cases.iter().enumerate() {
        check(k, c, act, fold);
    }
    // the kernel reading storage buffers instead of texture copies
    facegpu::gpu::with_texture_reads(false, || check(0, &cases[0].0, &cases[0].1, &cases[0].2));
}

/// The training step's last layer under a ReLU transposed conv on software adapters:
/// forward_mse_wgrad (its input y recomputed from the layer below's input, the loss, its g, its
/// weight gradient and relu'(y) as bits in one pass) against the float64 reference and against
/// the layer below's forward then forward_mse_grad (g the same bit for bit); and
/// backward_input_masked (the input gradient times relu'(y) from those bits) against the
/// reference and, bit for bit, against backward_input_then reading y itself.
#[test]
fn forward_mse_wgrad_and_masked_input_gradient_match_reference() {
    if !gpu().is_cpu() {
        return; // software adapters' kernels only (elsewhere both return Ok(false))
    }
    let cases = [
        // the seed AE's decoder at batch 2
        (
            convt(2, 4, 32, 32, 8, 3, 3, 2, 1, 1),
            convt(2, 8, 64, 64, 1, 3, 3, 2, 1, 1),
            Activation::Sigmoid,
        ),
        // odd channel counts, a non-square input, height not a multiple of 4
        (
            convt(3, 3, 5, 4, 5, 3, 3, 2, 1, 1),
            convt(3, 5, 10, 8, 1, 3, 3, 2, 1, 1),
            Activation::Relu,
        ),
        (
            convt(1, 1, 3, 8, 2, 3, 3, 2, 1, 1),
            convt(1, 2, 6, 16, 1, 3, 3, 2, 1, 1),
            Activation::None,
        ),
    ];
    for (k, (c0, c1, act)) in cases.iter().enumerate() {
        let (d0, d1) = (data(c0, 1000 + k as u64), data(c1, 1100 + k as u64));
        let t = r::f32_round(&Rng::new(1200 + k as u64).vec(c1.out_len(), 0.0, 1.0));
        let scale = 1.0 / c1.out_len() as f32;
        let (s0, s1) = (lib_shape(c0), lib_shape(c1));
        let (x0, w0, b0) = (
            upload(&d0.x, &s0.in_shape()),
            upload(&d0.w, &s0.weight_shape()),
            upload(&d0.b, &[c0.c_out]),
        );
        let (w1, b1) = (
            upload(&d1.w, &s1.weight_shape()),
            upload(&d1.b, &[c1.c_out]),
        );
        let tt = upload(&t, &s1.out_shape());
        let mask = poisoned(&[conv_transpose2d::act_mask_len(&s1)]);
        let (g, l, dw, db) = (
            poisoned(&s1.out_shape()),
            poisoned(&[1]),
            poisoned(&s1.weight_shape()),
            poisoned(&[1]),
        );
        let below = conv_transpose2d::Below {
            shape: s0,
            x: &x0,
            w: &w0,
            b: &b0,
            act: Activation::Relu,
        };
        let mut rec = gpu().record();
        let fused = conv_transpose2d::forward_mse_wgrad(
            &mut rec,
            &s1,
            &w1,
            &b1,
            *act,
            (&tt, &g, &l, scale),
            &below,
            (&dw, &db, &mask),
        )
        .unwrap();
        assert!(fused, "{c1:?}: the kernel takes it");
        rec.run().unwrap();
        // float64 reference: y = relu(convT(x0) + b0), the last layer on y
        let pre0 = c0.forward_pre(&d0.x, &d0.w, &d0.b);
        let mag0 = c0.forward_pre(&r::abs(&d0.x), &r::abs(&d0.w), &r::abs(&d0.b));
        let y = r::apply(Activation::Relu, &pre0);
        let out = c1.forward(&y, &d1.w, &d1.b, *act);
        let k2 = 2.0 * scale as f64;
        let diff: Vec<f64> = out.iter().zip(&t).map(|(o, t)| k2 * (o - t)).collect();
        let g_ref = r::pre_grad(*act, &out, &diff);
        let mag_out: Vec<f64> = c1
            .forward_pre(&mag0, &r::abs(&d1.w), &r::abs(&d1.b))
            .iter()
            .zip(&t)
            .map(|(m, t)| k2 * (m + t.abs()))
            .collect();
        let what = format!("{c0:?} -> {c1:?} {act:?}");
        r::assert_within(&format!("g {what}"), &read(&g), &g_ref, &mag_out, REL);
        let want: f64 = scale as f64
            * out
                .iter()
                .zip(&t)
                .map(|(o, t)| (o - t).powi(2))
                .sum::<f64>();
        let got = read(&l)[0];
        assert!(
            (got - want).abs() <= 1e-5 * want,
            "{what}: loss {got} vs {want}"
        );
        let (dw_ref, db_ref) = c1.backward_weight(&g_ref, &y);
        let (dw_mag, db_mag) = c1.backward_weight(&mag_out, &mag0);
        r::assert_within(&format!("dw {what}"), &read(&dw), &dw_ref, &dw_mag, REL);
        r::assert_within(&format!("db {what}"), &read(&db), &db_ref, &db_mag, REL);
        // the bits: item (n, row pair, 8 columns), channel c, row r, column 4j + i at bit
        // (c % 2) * 16 + 8r + 4j + i of word c / 2 (where y is not within rounding of 0)
        let words: Vec<u32> = gpu()
            .read(&mask)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        let (h, w) = (c1.h_in, c1.w_in);
        let items_per_img = (h / 2) * (w / 8);
        for n in 0..c1.batch {
            for c in 0..c1.c_in {
                for yy in 0..h {
                    for xx in 0..w {
                        let i = ((n * c1.c_in + c) * h + yy) * w + xx;
                        let item = n * items_per_img + (yy / 2) * (w / 8) + xx / 8;
                        let bit = (c % 2) * 16 + (yy % 2) * 8 + (xx % 8);
                        let set = (words[4 * item + c / 2] >> bit) & 1 == 1;
                        if pre0[i].abs() > REL * mag0[i] {
                            assert_eq!(set, pre0[i] > 0.0, "{what}: bit of y[{i}]");
                        }
                    }
                }
            }
        }
        // the same g as the layer below's forward and the folded loss
        let (yt, g2, l2) = (
            poisoned(&s0.out_shape()),
            poisoned(&s1.out_shape()),
            poisoned(&[1]),
        );
        let mut rec = gpu().record();
        conv_transpose2d::forward(&mut rec, &s0, &x0, &w0, &b0, &yt, Activation::Relu).unwrap();
        let folded = conv_transpose2d::forward_mse_grad(
            &mut rec, &s1, &yt, &w1, &b1, *act, &tt, &g2, &l2, scale,
        )
        .unwrap();
        rec.run().unwrap();
        assert!(folded);
        let bits = |t: &facegpu::gpu::Tensor| -> Vec<u32> {
            gpu().read(t).unwrap().iter().map(|v| v.to_bits()).collect()
        };
        assert!(
            bits(&g) == bits(&g2),
            "{what}: g differs from the separate passes"
        );
        // the input gradient from the bits, against the reference and against reading y
        let (dx, dx2) = (poisoned(&s1.in_shape()), poisoned(&s1.in_shape()));
        let mut rec = gpu().record();
        let masked = conv_transpose2d::backward_input_masked(
            &mut rec,
            &s1,
            Activation::None,
            &g,
            &g,
            &w1,
            &dx,
            &mask,
        )
        .unwrap();
        assert!(masked, "{c1:?}: the kernel takes it");
        conv_transpose2d::backward_input_then(
            &mut rec,
            &s1,
            Activation::None,
            &g,
            &g,
            &w1,
            &dx2,
            Some((Activation::Relu, &yt)),
        )
        .unwrap();
        rec.run().unwrap();
        assert!(bits(&dx) == bits(&dx2), "{what}: dx differs from reading y");
        let g_gpu = read(&g);
        let dx_ref: Vec<f64> = c1
            .backward_input(&g_gpu, &d1.w)
            .iter()
            .zip(&y)
            .map(|(v, y)| if *y > 0.0 { *v } else { 0.0 })
            .collect();
        let dx_mag = c1.backward_input(&r::abs(&g_gpu), &r::abs(&d1.w));
        r::assert_within(&format!("dx {what}"), &read(&dx), &dx_ref, &dx_mag, REL);
    }
}

#[test]
fn bad_shapes_are_errors() {
    let s = ConvTranspose2dShape {
        batch: 1,
        c_in: 2,
        h_in: 4,
        w_in: 4,
        c_out: 3,
        kh: 3,
        kw: 3,
        stride: 2,
        pad: 1,
        output_padding: 1,
    };
    let x = gpu().zeros(&s.in_shape());
    let w = gpu().zeros(&s.weight_shape());
    let b = gpu().zeros(&[3]);
    let y = gpu().zeros(&s.out_shape());
    let mut rec = gpu().record();
    // wrong output size
    let bad_y = gpu().zeros(&[1, 3, 7, 7]);
    let e =
        conv_transpose2d::forward(&mut rec, &s, &x, &w, &b, &bad_y, Activation::None).unwrap_err();
    assert!(e.to_string().contains("forward y"), "{e}");
    // the fused last-layer passes: a mask of the wrong size (before any adapter check)
    let bad_mask = gpu().zeros(&[conv_transpose2d::act_mask_len(&s) + 4]);
    let below = conv_transpose2d::Below {
        shape: s,
        x: &x,
        w: &w,
        b: &b,
        act: Activation::Relu,
    };
    let (dw, db, loss) = (
        gpu().zeros(&s.weight_shape()),
        gpu().zeros(&[3]),
        gpu().zeros(&[1]),
    );
    let e = conv_transpose2d::forward_mse_wgrad(
        &mut rec,
        &s,
        &w,
        &b,
        Activation::Sigmoid,
        (&y, &y, &loss, 1.0),
        &below,
        (&dw, &db, &bad_mask),
    )
    .unwrap_err();
    assert!(e.to_string().contains("forward_mse_wgrad mask"), "{e}");
    let e = conv_transpose2d::backward_input_masked(
        &mut rec,
        &s,
        Activation::None,
        &y,
        &y,
        &w,
        &x,
        &bad_mask,
    )
    .unwrap_err();
    assert!(e.to_string().contains("backward_input_masked mask"), "{e}");
    // the folded loss: a target of another size, a loss of more than one value
    let one = gpu().zeros(&[1]);
    let e = conv_transpose2d::forward_mse_grad(
        &mut rec,
        &s,
        &x,
        &w,
        &b,
        Activation::Sigmoid,
        &bad_y,
        &y,
        &one,
        1.0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("forward_mse_grad target"), "{e}");
    let e = conv_transpose2d::forward_mse_grad(
        &mut rec,
        &s,
        &x,
        &w,
        &b,
        Activation::Sigmoid,
        &y,
        &y,
        &b,
        1.0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("forward_mse_grad loss"), "{e}");
    // output_padding must be smaller than stride
    let op = ConvTranspose2dShape {
        output_padding: 2,
        ..s
    };
    assert!(conv_transpose2d::forward(&mut rec, &op, &x, &w, &b, &y, Activation::None).is_err());
    // zero stride
    let z = ConvTranspose2dShape { stride: 0, ..s };
    assert!(conv_transpose2d::forward(&mut rec, &z, &x, &w, &b, &y, Activation::None).is_err());
    // weight with c_in and c_out swapped (the Conv2d layout) is the wrong length
    let bad_w = gpu().zeros(&[3, 2, 3, 2]);
    assert!(
        conv_transpose2d::backward_input(&mut rec, &s, Activation::Relu, &y, &y, &bad_w, &x)
            .is_err()
    );
    // wrong bias length in backward_weight
    let bad_b = gpu().zeros(&[2]);
    assert!(conv_transpose2d::backward_weight(
        &mut rec,
        &s,
        Activation::Relu,
        &y,
        &y,
        &x,
        &w,
        &bad_b
    )
    .is_err());
    assert_eq!(rec.finish().unwrap().dispatches(), 0);
}

/// Prints GFLOP/s and GB/s of every (layer, pass) at the seed AE's shapes, batch 128.
/// `cargo test --release --test conv_transpose2d -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_ae_shapes() {
    let gpu = gpu();
    println!("adapter: {}", gpu.describe());
    for b in conv_transpose2d::bench_programs(gpu, 128).unwrap() {
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

/// As conv2d's test of the same name: a transposed conv with many channels runs as matrix
/// products in chunks of 2, 2 and 1 images when the column limit is lowered, and all three
/// passes (the bias gradient by per-image channel sums) still match the reference, and the
/// backward passes central differences of the reference loss ([`check_fd`]: bound FD_RTOL
/// |FD| + FD_ATOL).
#[test]
fn products_in_chunks_match_reference() {
    let c = convt(5, 17, 4, 5, 8, 3, 3, 2, 1, 1);
    let s = lib_shape(&c);
    let g = gpu();
    if g.is_cpu() && facegpu::ops::linear::cpu_supported(g) {
        assert!(
            conv_transpose2d::uses_products(g, &s),
            "{c:?} should run as products here"
        );
    }
    let per_image = c.h_in * c.w_in * c.c_out * 9 * 4;
    facegpu::ops::conv_gemm::set_col_limit(2 * per_image);
    check_forward(&c, Activation::Sigmoid, 500);
    let g = check_backward(&c, Activation::Relu, 501);
    facegpu::ops::conv_gemm::set_col_limit(128 << 20);
    check_fd(&c, Activation::Relu, &g, 1501);
    let g = check_backward(&c, Activation::None, 502);
    check_fd(&c, Activation::None, &g, 1502);
}
