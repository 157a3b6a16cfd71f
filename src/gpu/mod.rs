//! The GPU runtime: adapter choice, typed tensors, the shader registry, recorded programs and timing.
//!
//! Conventions every kernel follows (so the host side stays small):
//! - `@group(0) @binding(0)` is a uniform `Params` struct (when the kernel has parameters),
//!   bindings 1.. are storage buffers in the order the host passes them.
//! - 1-D grids larger than 65535 workgroups are split over x and y by [`grid_1d`]; a shader
//!   recovers its linear index as `gid.x + gid.y * nwg.x * WG` (see shaders/common.wgsl).

pub mod alias;
pub mod autotune;
pub mod context;
pub mod kernels;
pub mod shaders;
pub mod tensor;
pub mod timing;

pub use context::{BackendChoice, Gpu};
pub use kernels::{grid_1d, with_texture_reads, Program, Recorder};
pub use tensor::Tensor;
