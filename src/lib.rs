//! facegpu: neural compressors for face images, every numeric step in WGSL compute shaders.
//!
//! Modules: [`gpu`] (runtime), [`ops`] (host side of each kernel family).

pub mod gpu;
pub mod ops;
pub mod metrics_cmd;
