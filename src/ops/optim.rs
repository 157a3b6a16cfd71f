//! Adam and AdamW (shaders/optim.wgsl) with PyTorch's semantics, an L1 term, and the weight
//! penalties' values for reporting the loss.

use anyhow::{bail, Result};

use crate::gpu::timing::BenchCases;
use crate::gpu::{grid_1d, Recorder, Tensor};
use crate::ops::reduce::{self, Map};
use crate::ops::step::{StepState, StepValues};

/// Adam's hyperparameters. `weight_decay` is coupled (PyTorch Adam: grad += wd * w) unless
/// `decoupled` (PyTorch AdamW: w -= lr * wd * w before the Adam step). `l1` adds l1 * sum|w| to
/// the loss, so grad += l1 * sign(w).
#[derive(Clone, Copy, Debug)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub decoupled: bool,
    pub l1: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            l1: 0.0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    decoupled: u32,
    beta2: f32,
    omb1: f32,
    omb2: f32,
    eps: f32,
    wd: f32,
    l1: f32,
}

/// The decimal a user typed for an f32 (0.999f32 -> 0.999f64), so 1 - beta is computed as in
/// PyTorch, where betas are Python floats: 1 - 0.999f32 is 1.3e-5 off in relative terms.
fn decimal(x: f32) -> f64 {
    format!("{x}").parse().unwrap_or(x as f64)
}

/// Parameters below this count (one texture row) are read from their buffers even on CPU
/// adapters.
pub const TEXTURE_MIN: usize = 4 * crate::gpu::kernels::FLAT_TEXTURE_WIDTH;

/// One Adam (or AdamW) update of `param` with `grad`; `m` and `v` are the moment buffers (zeros
/// at the start). The step t (1-based) and the learning rate are read from `step` when the
/// program runs, so a recorded training step replays; `cfg.lr` is only the value to put there.
pub fn adam(
    rec: &mut Recorder,
    cfg: &AdamConfig,
    param: &Tensor,
    grad: &Tensor,
    m: &Tensor,
    v: &Tensor,
    step: &StepState,
) -> Result<()> {
    let n = param.len();
    for (name, t) in [("grad", grad), ("m", m), ("v", v)] {
        if t.len() != n {
            bail!(
                "adam: {name} has shape {:?} but the parameter has {:?}; give each parameter its own gradient and moment buffers",
                t.shape,
                param.shape
            );
        }
    }
    if !(0.0..1.0).contains(&cfg.beta1) || !(0.0..1.0).contains(&cfg.beta2) {
        bail!(
            "adam: betas must lie in [0, 1), got {} and {}",
            cfg.beta1,
            cfg.beta2
        );
    }
    if n >= (1 << 32) {
        bail!("adam: {n} parameters in one tensor is more than a kernel indexes (2^32)");
    }
    if n == 0 {
        return Ok(());
    }
    // 4 parameters per invocation where the length allows
    let (entry, n) = if n.is_multiple_of(4) {
        ("adam4", n / 4)
    } else {
        ("adam", n)
    };
    let params = Params {
        n: n as u32,
        decoupled: cfg.decoupled as u32,
        beta2: cfg.beta2,
        omb1: (1.0 - decimal(cfg.beta1)) as f32,
        omb2: (1.0 - decimal(cfg.beta2)) as f32,
        eps: cfg.eps,
        wd: cfg.weight_decay,
        l1: cfg.l1,
    };
    let groups = grid_1d(n as u64, 256);
    // CPU adapters: read texture copies (Adam over a large layer is bound by its loads, and a
    // texel of 4 floats loads in about the time of one float from a storage buffer); not for
    // tensors under a texture row, where the four copies (each a whole 64 KiB row) cost more
    // than the loads they save (the seed AE's eight: ~0.1 ms each against ~0.05 for Adam)
    if entry == "adam4"
        && n >= TEXTURE_MIN
        && rec.texture_reads()
        && rec.gpu.flat_texture_fits(param.len())
    {
        let [tw, tg, tm, tv] = [param, grad, m, v].map(|t| rec.flat_texture(&t.buf, t.len()));
        return rec.dispatch(
            "optim_tex",
            "adam4_tex",
            &params,
            &[
                param.into(),
                (&tg).into(),
                m.into(),
                v.into(),
                (&step.buf).into(),
                (&tw).into(),
                (&tm).into(),
                (&tv).into(),
            ],
            groups,
        );
    }
    rec.dispatch(
        "optim",
        entry,
        &params,
        &[
            param.into(),
            grad.into(),
            m.into(),
            v.into(),
            (&step.buf).into(),
        ],
        groups,
    )
}

/// out = l1 * sum|w| (the L1 term's value, for reporting the loss); `out` has one element.
pub fn l1_penalty(rec: &mut Recorder, param: &Tensor, out: &Tensor, l1: f32) -> Result<()> {
    if out.len() != 1 {
        bail!(
            "l1_penalty: the output must hold one value, it has shape {:?}",
            out.shape
        );
    }
    reduce::sum_rows_mapped(rec, Map::Abs, param, None, out, l1)
}

/// out = 0.5 * l2 * sum w^2: the loss term whose gradient is l2 * w, i.e. what Adam's coupled
/// weight_decay = l2 adds to the gradient (for reporting the loss). `out` has one element.
pub fn l2_penalty(rec: &mut Recorder, param: &Tensor, out: &Tensor, l2: f32) -> Result<()> {
    if out.len() != 1 {
        bail!(
            "l2_penalty: the output must hold one value, it has shape {:?}",
            out.shape
        );
    }
    reduce::sum_rows_mapped(rec, Map::Square, param, None, out, 0.5 * l2)
}

/// Benchmarks: one Adam step over the VAE's 17,102,224 parameters as one tensor (plain, with
/// weight decay and L1, and AdamW) and over the AE's 741, and the L1 penalty over the VAE's.
/// `batch` does not change these shapes.
pub fn bench_cases(cases: &mut BenchCases, _batch: usize) -> Result<()> {
    let gpu = cases.gpu;
    let step = StepState::new(gpu, StepValues::first(1e-3));
    for (what, n) in [("VAE", 17_102_224usize), ("AE", 741)] {
        let w = gpu.upload(&vec![0.01f32; n], &[n])?;
        let g = gpu.upload(&vec![0.001f32; n], &[n])?;
        let m = gpu.zeros(&[n]);
        let v = gpu.zeros(&[n]);
        // plain Adam, then (VAE) the regularized updates training runs: Adam with weight decay
        // and L1 (--reg l1l2: coupled, in the gradient) and AdamW (decoupled decay)
        let mut configs = vec![("adam step", AdamConfig::default())];
        if what == "VAE" {
            let reg = AdamConfig {
                weight_decay: 1e-5,
                l1: 1e-5,
                ..AdamConfig::default()
            };
            let adamw = AdamConfig {
                weight_decay: 1e-2,
                decoupled: true,
                ..AdamConfig::default()
            };
            configs.push(("adam step with weight decay and l1", reg));
            configs.push(("adamw step", adamw));
        }
        for (label, cfg) in configs {
            cases.add(
                format!("{label} ({what}, {n} params)"),
                16.0 * n as f64,
                28.0 * n as f64, // read w g m v, write w m v
                |rec| adam(rec, &cfg, &w, &g, &m, &v, &step),
            )?;
        }
        if what == "VAE" {
            let out = gpu.zeros(&[1]);
            cases.add(
                format!("l1 penalty ({what}, {n} params)"),
                2.0 * n as f64,
                4.0 * n as f64,
                |rec| l1_penalty(rec, &w, &out, 1e-5),
            )?;
        }
    }
    Ok(())
}
