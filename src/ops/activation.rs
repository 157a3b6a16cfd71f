//! ReLU and sigmoid as standalone kernels (shaders/activation.wgsl). Conv and linear layers
//! fuse the same functions into their epilogues; see [`Activation`].

use anyhow::Result;

use crate::gpu::{grid_1d, Recorder, Tensor};

/// An activation a layer applies to its output. `code()` is the value kernels' `act` param takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Activation {
    None,
    Relu,
    Sigmoid,
}

impl Activation {
    pub fn code(self) -> u32 {
        match self {
            Activation::None => 0,
            Activation::Relu => 1,
            Activation::Sigmoid => 2,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    _pad: [u32; 3],
}

fn params(n: usize) -> Params {
    Params {
        n: n as u32,
        _pad: [0; 3],
    }
}

/// y = act(x). `Activation::None` records nothing.
pub fn forward(rec: &mut Recorder, act: Activation, x: &Tensor, y: &Tensor) -> Result<()> {
    let entry = match act {
        Activation::None => return Ok(()),
        Activation::Relu => "relu_forward",
        Activation::Sigmoid => "sigmoid_forward",
    };
    rec.dispatch(
        "activation",
        entry,
        &params(x.len()),
        &[x.into(), y.into()],
        grid_1d(x.len() as u64, 256),
    )
}

/// dx = dy * act'(.) computed from the forward *output* y.
pub fn backward(
    rec: &mut Recorder,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<()> {
    let entry = match act {
        Activation::None => return Ok(()),
        Activation::Relu => "relu_backward",
        Activation::Sigmoid => "sigmoid_backward",
    };
    rec.dispatch(
        "activation",
        entry,
        &params(y.len()),
        &[y.into(), dx.into(), dy.into()],
        grid_1d(y.len() as u64, 256),
    )
}

/// The standalone activation kernels at the AE's largest activation (batch x 8 x 64 x 64).
pub fn bench_cases(cases: &mut crate::gpu::timing::BenchCases, batch: usize) -> Result<()> {
    let gpu = cases.gpu;
    let n = batch * 8 * 64 * 64;
    let x = gpu.upload(
        &(0..n)
            .map(|i| ((i % 97) as f32 - 48.0) / 16.0)
            .collect::<Vec<_>>(),
        &[n],
    )?;
    let y = gpu.zeros(&[n]);
    let dx = gpu.zeros(&[n]);
    for act in [Activation::Relu, Activation::Sigmoid] {
        cases.add(
            format!("{act:?} forward ({batch}x8x64x64)").to_lowercase(),
            n as f64,
            8.0 * n as f64,
            |rec| forward(rec, act, &x, &y),
        )?;
        cases.add(
            format!("{act:?} backward ({batch}x8x64x64)").to_lowercase(),
            2.0 * n as f64,
            12.0 * n as f64,
            |rec| backward(rec, act, &y, &x, &dx),
        )?;
    }
    Ok(())
}
