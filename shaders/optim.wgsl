// Adam / AdamW kernels reading and writing storage buffers (the update is in optim_core.wgsl):
// `adam4` updates 4 parameters per invocation (lengths that are a multiple of 4), `adam` one.
//!include optim_core

@group(0) @binding(1) var<storage, read_write> w1: array<f32>;
@group(0) @binding(2) var<storage, read> g1: array<f32>;
@group(0) @binding(3) var<storage, read_write> m1: array<f32>;
@group(0) @binding(4) var<storage, read_write> v1: array<f32>;

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG);
    if (i >= p.n) { return; }
    let r = adam_update(vec4<f32>(w1[i]), vec4<f32>(g1[i]), vec4<f32>(m1[i]), vec4<f32>(v1[i]));
    w1[i] = r.w.x;
    m1[i] = r.m.x;
    v1[i] = r.v.x;
}

// p.n counts vec4s
@group(0) @binding(1) var<storage, read_write> w4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn adam4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = linear_index(gid, nwg, WG);
    if (j >= p.n) { return; }
    let r = adam_update(w4[j], g4[j], m4[j], v4[j]);
    w4[j] = r.w;
    m4[j] = r.m;
    v4[j] = r.v;
}
