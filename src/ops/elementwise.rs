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
    let groups = grid_1d(a.len() as u64, 256);
    scaled_add(rec, "axpy", "axpy", groups, scale, a, y)
}

/// y += scale * a for short vectors (loss scalars), summed in a fixed order.
pub fn accumulate(rec: &mut Recorder, scale: f32, a: &Tensor, y: &Tensor) -> Result<()> {
    scaled_add(
        rec,
        "accumulate",
        "accumulate_serial",
        [1, 1, 1],
        scale,
        a,
        y,
    )
}

/// y += scale * a by `entry` of elementwise.wgsl over `groups` (`what` names it in errors).
fn scaled_add(
    rec: &mut Recorder,
    what: &str,
    entry: &str,
    groups: [u32; 3],
    scale: f32,
    a: &Tensor,
    y: &Tensor,
) -> Result<()> {
    ensure!(
        a.len() == y.len(),
        "{what}: lengths {} and {} differ",
        a.len(),
        y.len()
    );
    let p = Params {
        n: a.len() as u32,
        scale,
        _pad: [0; 2],
    };
    rec.dispatch("elementwise", entry, &p, &[a.into(), y.into()], groups)
}
