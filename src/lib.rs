//! facegpu: neural compressors for face images, every numeric step in WGSL compute shaders.
//!
//! Modules: [`gpu`] (runtime), [`ops`] (host side of each kernel family), [`data`] (faces:
//! folders, cache, splits, synthetic faces, GPU batches), [`model`] (checkpoints), [`report`]
//! (plots, image grids, tables), [`bench`], [`metrics_cmd`] (metrics of image files),
//! [`fsutil`] (atomic writes).

pub mod bench;
pub mod data;
pub mod eval;
pub mod fsutil;
pub mod gpu;
pub mod metrics_cmd;
pub mod model;
pub mod ops;
pub mod report;
pub mod train;
