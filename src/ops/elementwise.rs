//! Elementwise helpers between layers (shaders/elementwise.wgsl).

use anyhow::{ensure, Result};

use crate::gpu::{grid_1d, Recorder, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    scale: f32,
    _pad: [u32; 2],
}

/// y += scale * a (same length).
pub fn axpy(rec: &mut Recorder, scale: f32, a: &Tensor, y: &Tensor) -> Result<()> {
    ensure!(
        a.len() == y.len(),
        "axpy: lengths {} and {} differ",
        a.len(),
        y.len()
    );
    let p = Params {
        n: a.len() as u32,
        scale,
        _pad: [0; 2],
    };
    rec.dispatch(
        "elementwise",
        "axpy",
        &p,
        &[a.into(), y.into()],
        grid_1d(a.len() as u64, 256),
    )
}

/// y += scale * a for short vectors (loss scalars), summed in a fixed order.
pub fn accumulate(rec: &mut Recorder, scale: f32, a: &Tensor, y: &Tensor) -> Result<()> {
    ensure!(
        a.len() == y.len(),
        "accumulate: lengths {} and {} differ",
        a.len(),
        y.len()
    );
    let p = Params {
        n: a.len() as u32,
        scale,
        _pad: [0; 2],
    };
    rec.dispatch(
        "elementwise",
        "accumulate_serial",
        &p,
        &[a.into(), y.into()],
        [1, 1, 1],
    )
}
