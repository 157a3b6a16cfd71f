// Mean squared error. The forward (a scalar) is the deterministic sum in reduce.wgsl with its
// (p - t)^2 map (src/ops/loss.rs); the backward is this elementwise kernel, in a vec4 form for
// lengths that are a multiple of 4 (lavapipe runs it ~1.5x faster) and a scalar one otherwise.
// With ACT (act.wgsl) set, the gradient is also multiplied by act'(pred): pred is the last
// layer's activation output, and the result is that layer's g (its backward then needs no act').
//!include common
//!include act

struct Params { n: u32, k: f32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;

// dpred = k (p - t) act'(p) with k = 2 * scale: d/dp of scale * (p - t)^2 (times act').
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> tgt: array<f32>;
@group(0) @binding(3) var<storage, read_write> dpred: array<f32>;

@compute @workgroup_size(256)
fn mse_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG);
    if (i >= p.n) { return; }
    dpred[i] = p.k * (pred[i] - tgt[i]) * act_grad(pred[i]);
}

// p.n counts vec4s
@group(0) @binding(1) var<storage, read> pred4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> tgt4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dpred4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn mse_grad4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG);
    if (i >= p.n) { return; }
    dpred4[i] = p.k * (pred4[i] - tgt4[i]) * act_grad4_code(ACT, pred4[i]);
}

// mse_grad4 reading flat texture copies of pred and tgt (flat_texture.wgsl), for CPU adapters.
@group(0) @binding(1) var tpred: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var ttgt: texture_storage_2d<rgba32float, read>;

//!include flat_texture

@compute @workgroup_size(256)
fn mse_grad4_tex(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG);
    if (i >= p.n) { return; }
    let at = flat_texel(i);
    let pr = textureLoad(tpred, at);
    dpred4[i] = p.k * (pr - textureLoad(ttgt, at)) * act_grad4_code(ACT, pr);
}
