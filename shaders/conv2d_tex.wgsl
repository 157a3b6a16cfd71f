// conv2d.wgsl's software-adapter kernels reading flat texture copies (conv2d_tex_core.wgsl).
//!include faces_off
//!include below_off
//!include conv2d_tex_core
