//! Plain float64 CPU references for every kernel family: slow, obvious, and the yardstick the
//! GPU kernels are tested against. One file per family, named as its shader.
#![allow(dead_code)]
pub mod activation;
pub mod conv2d;
pub mod conv_transpose2d;
pub mod elementwise;
pub mod linear;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod reduce;
pub mod vae;
