// conv_transpose2d_tex_core.wgsl with below.wgsl: the same kernels and entries as
// conv_transpose2d_tex.wgsl, and convt_s2k3_loss_wgrad_cpu, which recomputes its input from
// the layer below's.
//!include faces_off
//!include below
//!include conv_transpose2d_tex_core
