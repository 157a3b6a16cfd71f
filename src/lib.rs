//! facegpu: neural compressors for face images, every numeric step in WGSL compute shaders.
//!
//! Modules: [`gpu`] (runtime), [`ops`] (host side of each kernel family), [`data`] (faces:
//! folders, cache, splits, synthetic faces, GPU batches).

pub mod gpu;
pub mod ops;
pub mod data;
