// conv2d.wgsl's software-adapter kernels (conv2d_cpu_core.wgsl) reading their inputs from flat
// texture copies (flat_texture.wgsl): these kernels are bound by their loads. Included by
// conv2d_tex.wgsl, and by conv2d_faces.wgsl, where input x (slot 0) can be the faces (faces.wgsl).
//!include conv_head_core

@group(0) @binding(1) var tx: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var ty: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var txa: texture_storage_2d<rgba32float, read>;
@group(0) @binding(5) var tfa: texture_storage_2d<rgba32float, read>;

//!include flat_texture

fn ld_x(i: u32) -> vec4<f32> {
    if (FACES0) { return face4(i); }
    return textureLoad(tx, flat_texel(i));
}
fn ld_xa(i: u32) -> vec4<f32> { return textureLoad(txa, flat_texel(i)); }
fn ld_dy(i: u32) -> vec4<f32> { return textureLoad(tx, flat_texel(i)); }
fn ld_y(i: u32) -> vec4<f32> { return textureLoad(ty, flat_texel(i)); }
fn ld_f(i: u32) -> vec4<f32> { return textureLoad(txa, flat_texel(i)); }
fn ld_fa(i: u32) -> vec4<f32> { return textureLoad(tfa, flat_texel(i)); }

//!include conv2d_cpu_core
