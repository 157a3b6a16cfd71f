// conv_transpose2d.wgsl's 3x3 stride-2 software-adapter kernels (convt_s2k3_core.wgsl) reading
// their input from flat texture copies (flat_texture.wgsl): these kernels are bound by their
// loads. Included by conv_transpose2d_tex.wgsl, and by conv_transpose2d_faces.wgsl, where the
// OUT_ACT source (slot 2: the loss target) or the layer below's input (slot 3) can be the faces
// (faces.wgsl).
//!include conv_head_core

@group(0) @binding(1) var tx4: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var txa4: texture_storage_2d<rgba32float, read>;
@group(0) @binding(5) var toa4: texture_storage_2d<rgba32float, read>;

//!include flat_texture

fn s_in4(i: u32) -> vec4<f32> {
    let x = textureLoad(tx4, flat_texel(i));
    if (GRAD_IN) {
        let a = textureLoad(txa4, flat_texel(i));
        return x * vec4<f32>(act_grad(a.x), act_grad(a.y), act_grad(a.z), act_grad(a.w));
    }
    return x;
}

fn ld_oa(i: u32) -> vec4<f32> {
    if (FACES2) { return face4(i); }
    return textureLoad(toa4, flat_texel(i));
}

// convt_s2k3_all_wgrad_cpu: the layer below's input (binding 6, which only that entry binds)
@group(0) @binding(6) var tx0: texture_storage_2d<rgba32float, read>;
fn ld_x0(i: u32) -> vec4<f32> {
    if (FACES3) { return face4(i); }
    return textureLoad(tx0, flat_texel(i));
}

//!include convt_s2k3_core
