// conv_transpose2d.wgsl's 3x3 stride-2 software-adapter kernels reading flat texture copies
// (conv_transpose2d_tex_core.wgsl).
//!include faces_off
//!include below_off
//!include conv_transpose2d_tex_core
