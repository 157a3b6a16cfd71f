// conv2d_tex_core.wgsl with inputs that can be the training batch read straight from the
// faces' u8 store (faces.wgsl): the same kernels and entries as conv2d_tex.wgsl.
//!include faces
//!include below_off
//!include conv2d_tex_core
