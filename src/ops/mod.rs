//! The host side of each kernel family, forward and backward side by side. Each module here
//! has a shader in shaders/ with the same name, a float64 reference in tests/reference/ and a
//! test in tests/ with the same name.

pub mod activation;
pub mod conv2d;
pub mod conv_gemm;
pub mod conv_transpose2d;
pub mod linear;
pub use activation::Activation;
pub mod elementwise;
pub mod loss;
pub mod metrics;
pub mod noise;
pub mod optim;
pub mod reduce;
pub mod rng;
pub mod step;
pub mod vae;
