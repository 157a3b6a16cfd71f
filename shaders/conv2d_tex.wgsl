// conv2d.wgsl's software-adapter kernels (conv2d_cpu_core.wgsl) reading their inputs from
// rgba32float texture copies, TW texels wide (texel i = vec4 i of the buffer): on llvmpipe (Mesa
// 22.3) a storage-buffer load costs about 4 ns per float whatever its width, a texel load about
// 3 ns for 4 floats, and these kernels are bound by their loads (src/ops/conv2d.rs).
//!include conv_head_core

@group(0) @binding(1) var tx: texture_2d<f32>;
@group(0) @binding(2) var ty: texture_2d<f32>;
@group(0) @binding(3) var txa: texture_2d<f32>;
@group(0) @binding(5) var tfa: texture_2d<f32>;

const TW: u32 = 4096u;
fn texel(i: u32) -> vec2<i32> { return vec2<i32>(i32(i % TW), i32(i / TW)); }

fn ld_x(i: u32) -> vec4<f32> { return textureLoad(tx, texel(i), 0); }
fn ld_xa(i: u32) -> vec4<f32> { return textureLoad(txa, texel(i), 0); }
fn ld_dy(i: u32) -> vec4<f32> { return textureLoad(tx, texel(i), 0); }
fn ld_y(i: u32) -> vec4<f32> { return textureLoad(ty, texel(i), 0); }
fn ld_f(i: u32) -> vec4<f32> { return textureLoad(txa, texel(i), 0); }
fn ld_fa(i: u32) -> vec4<f32> { return textureLoad(tfa, texel(i), 0); }

//!include conv2d_cpu_core
