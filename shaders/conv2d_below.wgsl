// conv2d_tex_core.wgsl with below.wgsl: the same kernels and entries as conv2d_tex.wgsl, where
// conv_forward_s2k3_cpu can take act' of its output from the bits the last layer's forward
// stored (BMASK).
//!include faces_off
//!include below
//!include conv2d_tex_core
