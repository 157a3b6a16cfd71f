// adam4 reading its four inputs from flat texture copies (flat_texture.wgsl) and writing w, m
// and v to their buffers, for CPU adapters, where Adam over a large layer is bound by its loads.
//!include optim_core

@group(0) @binding(1) var<storage, read_write> w4: array<vec4<f32>>;
@group(0) @binding(2) var tg: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var<storage, read_write> m4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v4: array<vec4<f32>>;
@group(0) @binding(6) var tw: texture_storage_2d<rgba32float, read>;
@group(0) @binding(7) var tm: texture_storage_2d<rgba32float, read>;
@group(0) @binding(8) var tv: texture_storage_2d<rgba32float, read>;

//!include flat_texture

// p.n counts vec4s
@compute @workgroup_size(256)
fn adam4_tex(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = linear_index(gid, nwg, WG);
    if (j >= p.n) { return; }
    let at = flat_texel(j);
    let r = adam_update(textureLoad(tw, at), textureLoad(tg, at), textureLoad(tm, at), textureLoad(tv, at));
    w4[j] = r.w;
    m4[j] = r.m;
    v4[j] = r.v;
}
