//! Shared test helpers: one GPU per test binary, seeded random data, poisoned outputs,
//! tolerance checks and central finite differences.
#![allow(dead_code)]

use std::sync::OnceLock;

use facegpu::gpu::{BackendChoice, Gpu, Tensor};

/// A training run on the shared GPU with no progress output and no interrupt, to its end.
pub fn train_quietly(o: &facegpu::train::TrainOptions) -> facegpu::train::TrainSummary {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    facegpu::train::train(
        gpu(),
        o,
        false,
        &mut facegpu::train::Quiet,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap()
}

/// The GPU every test in a binary shares (`auto`: a real GPU if present, else lavapipe).
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        Gpu::new(BackendChoice::Auto).expect("no adapter: apt-get install mesa-vulkan-drivers")
    })
}

/// A small deterministic generator (SplitMix64) so test inputs are the same every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
    pub fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
}

pub fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}
pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Uploads float64 data as an f32 tensor.
pub fn upload(v: &[f64], shape: &[usize]) -> Tensor {
    gpu().upload(&to_f32(v), shape).unwrap()
}

/// An output tensor filled with NaN, so any element a kernel fails to write shows up.
pub fn poisoned(shape: &[usize]) -> Tensor {
    let t = gpu().zeros(shape);
    gpu().fill(&t, f32::NAN);
    t
}

pub fn read(t: &Tensor) -> Vec<f64> {
    to_f64(&gpu().read(t).unwrap())
}

/// Asserts |got - want| <= atol + rtol * |want| elementwise; NaN anywhere fails.
#[track_caller]
pub fn assert_close(what: &str, got: &[f64], want: &[f64], rtol: f64, atol: f64) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} != {}",
        got.len(),
        want.len()
    );
    let mut worst = (0usize, 0.0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.is_finite(),
            "{what}: element {i} is {g} (unwritten or overflow), want {w}"
        );
        let err = (g - w).abs() / (atol + rtol * w.abs());
        if err > worst.1 {
            worst = (i, err);
        }
    }
    let (i, e) = worst;
    assert!(
        e <= 1.0,
        "{what}: element {i} = {} but reference says {} (|err| = {:.3e}, bound atol {atol:e} + rtol {rtol:e} * |want|)",
        got[i],
        want[i],
        (got[i] - want[i]).abs()
    );
}

/// Central finite difference of scalar `f` at `x` along coordinate `i`.
pub fn finite_diff(f: &dyn Fn(&[f64]) -> f64, x: &[f64], i: usize, h: f64) -> f64 {
    let mut xp = x.to_vec();
    let mut xm = x.to_vec();
    xp[i] += h;
    xm[i] -= h;
    (f(&xp) - f(&xm)) / (2.0 * h)
}

/// Checks an analytic gradient against central differences of `f` at up to `samples`
/// coordinates spread over x (all of them when x is small).
#[track_caller]
pub fn check_grad_fd(
    what: &str,
    f: &dyn Fn(&[f64]) -> f64,
    x: &[f64],
    grad: &[f64],
    samples: usize,
    rtol: f64,
    atol: f64,
) {
    let step = (x.len() / samples.max(1)).max(1);
    for i in (0..x.len()).step_by(step) {
        let fd = finite_diff(f, x, i, 1e-6);
        let g = grad[i];
        assert!(
            (g - fd).abs() <= atol + rtol * fd.abs(),
            "{what}: d/dx[{i}] analytic {g} vs finite difference {fd}"
        );
    }
}

/// Up to `samples` distinct coordinates of an n-vector for a finite-difference check: all of
/// them when n <= samples, else the first and the last (borders) and the rest drawn from a
/// seeded generator, so that no regular stride aliases with the layout (always the same column
/// of an image, say). Sorted.
pub fn fd_samples(n: usize, samples: usize, seed: u64) -> Vec<usize> {
    if n <= samples {
        return (0..n).collect();
    }
    let mut rng = Rng::new(seed);
    let mut picked = std::collections::BTreeSet::from([0, n - 1]);
    while picked.len() < samples.max(2) {
        picked.insert((rng.next_u64() % n as u64) as usize);
    }
    picked.into_iter().collect()
}

/// [`check_grad_fd`] at the coordinates [`fd_samples`] picks: |analytic - central difference
/// (h = 1e-6)| <= atol + rtol * |difference| at each.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn check_grad_fd_sampled(
    what: &str,
    f: &dyn Fn(&[f64]) -> f64,
    x: &[f64],
    grad: &[f64],
    samples: usize,
    seed: u64,
    rtol: f64,
    atol: f64,
) {
    assert_eq!(x.len(), grad.len(), "{what}: gradient length");
    for i in fd_samples(x.len(), samples, seed) {
        let fd = finite_diff(f, x, i, 1e-6);
        let g = grad[i];
        assert!(
            (g - fd).abs() <= atol + rtol * fd.abs(),
            "{what}: d/dx[{i}] analytic {g} vs finite difference {fd}"
        );
    }
}

/// Finite-difference samples per gradient in [`check_layer_grads_fd`] (dx, dw; db whole).
pub const FD_SAMPLES: usize = 24;
/// Bound of the layers' finite-difference checks: |GPU - FD| <= FD_RTOL |FD| + FD_ATOL
/// (float32 gradients of sums of at most a few hundred terms, ~1e-6 relative; the float64
/// central differences, h = 1e-6, are accurate to ~1e-9).
pub const FD_RTOL: f64 = 1e-4;
pub const FD_ATOL: f64 = 1e-5;

/// A layer's float64 reference loss of its input, weights and bias.
pub type LayerLoss<'a> = &'a dyn Fn(&[f64], &[f64], &[f64]) -> f64;

/// A layer's GPU gradients `dx`, `dw`, `db` against central differences of the float64
/// reference `loss(x, w, b)` at (`x`, `w`, `b`): FD_SAMPLES elements of dx and dw (the first,
/// the last, the rest at places seeded by `seed`) and all of db, within FD_RTOL / FD_ATOL.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn check_layer_grads_fd(
    what: &str,
    loss: LayerLoss,
    x: &[f64],
    w: &[f64],
    b: &[f64],
    (dx, dw, db): (&[f64], &[f64], &[f64]),
    seed: u64,
) {
    let what = format!("{what}: finite differences");
    let fd = |name: &str, f: &dyn Fn(&[f64]) -> f64, v: &[f64], g: &[f64], n, s| {
        check_grad_fd_sampled(&format!("{name} {what}"), f, v, g, n, s, FD_RTOL, FD_ATOL)
    };
    fd("dx", &|x| loss(x, w, b), x, dx, FD_SAMPLES, seed);
    fd("dw", &|w| loss(x, w, b), w, dw, FD_SAMPLES, seed + 1);
    fd("db", &|b| loss(x, w, b), b, db, b.len(), seed + 2);
}
