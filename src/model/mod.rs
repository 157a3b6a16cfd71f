//! Models: architectures as data (spec, registry), parameters, and the unrolled graph that
//! records forward, backward and update kernels.

pub mod checkpoint;
pub mod graph;
pub mod params;
pub mod registry;
pub mod spec;
