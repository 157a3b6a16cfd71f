// conv_transpose2d_tex_core.wgsl with the layer below's output recomputed where a kernel reads
// it (below.wgsl, RECOMP): the same kernels and entries as conv_transpose2d_tex.wgsl.
//!include faces_off
//!include below
//!include conv_transpose2d_tex_core
