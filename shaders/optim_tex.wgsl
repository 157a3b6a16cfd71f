// adam4 reading its four inputs from rgba32float texture copies (TW texels wide, texel j = the
// buffer's vec4 j) and writing w, m and v to their buffers. Why: on llvmpipe (Mesa 22.3) a
// storage-buffer load costs about 4 ns per float whatever its width, a texel load about 3 ns
// for 4 floats, and Adam over a large layer is bound by its loads (src/ops/optim.rs).
//!include optim_core

@group(0) @binding(1) var<storage, read_write> w4: array<vec4<f32>>;
@group(0) @binding(2) var tg: texture_2d<f32>;
@group(0) @binding(3) var<storage, read_write> m4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v4: array<vec4<f32>>;
@group(0) @binding(6) var tw: texture_2d<f32>;
@group(0) @binding(7) var tm: texture_2d<f32>;
@group(0) @binding(8) var tv: texture_2d<f32>;

const TW: u32 = 4096u;

// p.n counts vec4s
@compute @workgroup_size(256)
fn adam4_tex(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = linear_index(gid, nwg, WG);
    if (j >= p.n) { return; }
    let at = vec2<i32>(i32(j % TW), i32(j / TW));
    let r = adam_update(textureLoad(tw, at, 0), textureLoad(tg, at, 0), textureLoad(tm, at, 0), textureLoad(tv, at, 0));
    w4[j] = r.w;
    m4[j] = r.m;
    v4[j] = r.v;
}
