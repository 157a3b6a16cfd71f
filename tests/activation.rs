//! ReLU and sigmoid kernels against the float64 reference, and their backward passes against
//! finite differences. Bound: float32 rounding, rel 1e-6 + abs 1e-6 (exp differs by a few ulp).
mod common;
mod reference;

use common::*;
use facegpu::ops::activation::{self, Activation};
use reference::activation as r;

// Odd sizes: smaller than a workgroup, not a multiple of it, and large enough to split the grid.
const SIZES: &[usize] = &[1, 7, 255, 1000, 70_001];

fn run_forward(act: Activation, x: &[f64]) -> Vec<f64> {
    let xt = upload(x, &[x.len()]);
    let yt = poisoned(&[x.len()]);
    let mut rec = gpu().record();
    activation::forward(&mut rec, act, &xt, &yt).unwrap();
    rec.run().unwrap();
    read(&yt)
}

fn run_backward(act: Activation, y: &[f64], dy: &[f64]) -> Vec<f64> {
    let yt = upload(y, &[y.len()]);
    let dyt = upload(dy, &[y.len()]);
    let dxt = poisoned(&[y.len()]);
    let mut rec = gpu().record();
    activation::backward(&mut rec, act, &yt, &dyt, &dxt).unwrap();
    rec.run().unwrap();
    read(&dxt)
}

#[test]
fn relu_matches_reference() {
    for (k, &n) in SIZES.iter().enumerate() {
        let x = Rng::new(k as u64).vec(n, -2.0, 2.0);
        let x: Vec<f64> = x.iter().map(|&v| v as f32 as f64).collect();
        assert_close(
            &format!("relu n={n}"),
            &run_forward(Activation::Relu, &x),
            &r::relu(&x),
            0.0,
            0.0,
        );
        let dy = Rng::new(100 + k as u64).vec(n, -1.0, 1.0);
        let dy: Vec<f64> = dy.iter().map(|&v| v as f32 as f64).collect();
        let y = r::relu(&x);
        assert_close(
            &format!("relu' n={n}"),
            &run_backward(Activation::Relu, &y, &dy),
            &r::relu_backward(&y, &dy),
            0.0,
            0.0,
        );
    }
}

#[test]
fn sigmoid_matches_reference() {
    for (k, &n) in SIZES.iter().enumerate() {
        let x = Rng::new(k as u64).vec(n, -8.0, 8.0);
        assert_close(
            &format!("sigmoid n={n}"),
            &run_forward(Activation::Sigmoid, &x),
            &r::sigmoid(&x),
            1e-6,
            1e-6,
        );
        let y = r::sigmoid(&x);
        let dy = Rng::new(200 + k as u64).vec(n, -1.0, 1.0);
        assert_close(
            &format!("sigmoid' n={n}"),
            &run_backward(Activation::Sigmoid, &y, &dy),
            &r::sigmoid_backward(&y, &dy),
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn sigmoid_backward_matches_finite_differences() {
    let x = Rng::new(9).vec(33, -4.0, 4.0);
    let dy = Rng::new(10).vec(33, -1.0, 1.0);
    // L(x) = sum dy * sigmoid(x); dL/dx = sigmoid'(x) dy
    let f = |x: &[f64]| {
        r::sigmoid(x)
            .iter()
            .zip(&dy)
            .map(|(a, b)| a * b)
            .sum::<f64>()
    };
    let got = run_backward(Activation::Sigmoid, &r::sigmoid(&x), &dy);
    check_grad_fd("sigmoid backward", &f, &x, &got, 33, 1e-4, 1e-6);
}

/// relu_backward against central differences of L(x) = sum dy * relu(x): dL/dx = [x > 0] dy,
/// from the forward output y = relu(x). x in [-2, 2] with |x| >= 1e-3, far from the kink
/// (h = 1e-6), so the differences are exact up to float64 rounding (~1e-9); the kernel's
/// value is dy or 0 exactly. Bound: rel 1e-4 + abs 1e-6, as the sigmoid test's.
#[test]
fn relu_backward_matches_finite_differences() {
    let x: Vec<f64> = Rng::new(11)
        .vec(257, -2.0, 2.0)
        .into_iter()
        .map(|v| if v.abs() < 1e-3 { v + 1e-2 } else { v })
        .collect();
    let x: Vec<f64> = x.iter().map(|&v| v as f32 as f64).collect();
    let dy: Vec<f64> = Rng::new(12)
        .vec(257, -1.0, 1.0)
        .iter()
        .map(|&v| v as f32 as f64)
        .collect();
    let f = |x: &[f64]| r::relu(x).iter().zip(&dy).map(|(a, b)| a * b).sum::<f64>();
    let got = run_backward(Activation::Relu, &r::relu(&x), &dy);
    check_grad_fd("relu backward", &f, &x, &got, 257, 1e-4, 1e-6);
}

#[test]
fn none_records_nothing() {
    let mut rec = gpu().record();
    let x = upload(&[1.0], &[1]);
    activation::forward(&mut rec, Activation::None, &x, &x).unwrap();
    assert_eq!(rec.finish().unwrap().dispatches(), 0);
}
