//! facegpu: neural compressors for face images, every numeric step in WGSL compute shaders.
//!
//! Modules: [`gpu`] (runtime), [`ops`] (host side of each kernel family), [`model`]
//! (checkpoints), [`report`] (plots, image grids, tables), [`fsutil`] (atomic writes).

pub mod bench;
pub mod fsutil;
pub mod gpu;
pub mod model;
pub mod ops;
pub mod report;
pub mod metrics_cmd;
