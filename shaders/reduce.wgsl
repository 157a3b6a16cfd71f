// Deterministic sums: no float atomics, no workgroup barriers, a fixed order at every level, so
// the same inputs give the same bits on every run.
//
// One pass turns each row of n values into m partials: invocation j of row r sums
// in[r*n + j], in[r*n + j + m], in[r*n + j + 2m], ... (neighbouring invocations read neighbouring
// addresses: coalesced on GPUs; on lavapipe the vec4 loads matter more than the order). The host
// (src/ops/reduce.rs) repeats passes, each over the previous partials, until m = 1; the last
// pass applies `scale`. When a row's length is a multiple of 4 the first pass reads vec4s
// (sum_pass4, n and m counted in vec4s) and folds its 4 lanes as (x + y) + (z + w).
//
// The first pass may apply an elementwise map (override MAP) so a loss or penalty never stores
// its per-element terms: 0 x, 1 (x-y)^2 (MSE), 2 1+y-x^2-exp(y) (KL, x=mu, y=logvar),
// 3 |x| (L1), 4 x^2 (L2). Later passes use MAP 0.
//!include common

struct Params { rows: u32, n: u32, m: u32, scale: f32 }

@group(0) @binding(0) var<uniform> p: Params;

override MAP: u32 = 0u;
const WG: u32 = 64u;

fn term4(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    switch MAP {
        case 1u: { let d = a - b; return d * d; }
        case 2u: { return 1.0 + b - a * a - exp(b); }
        case 3u: { return abs(a); }
        case 4u: { return a * a; }
        default: { return a; }
    }
}

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>; // second operand (the host binds a again when there is none)
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn sum_pass(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = linear_index(gid, nwg, WG);
    if (g >= p.rows * p.m) { return; }
    let r = g / p.m;
    let j = g - r * p.m;
    let base = r * p.n;
    var s = 0.0;
    for (var i = j; i < p.n; i = i + p.m) {
        s = s + term4(vec4<f32>(a[base + i]), vec4<f32>(b[base + i])).x;
    }
    out[g] = s * p.scale;
}

@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn sum_pass4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = linear_index(gid, nwg, WG);
    if (g >= p.rows * p.m) { return; }
    let r = g / p.m;
    let j = g - r * p.m;
    let base = r * p.n;
    var s = vec4<f32>(0.0);
    for (var i = j; i < p.n; i = i + p.m) {
        s = s + term4(a4[base + i], b4[base + i]);
    }
    out[g] = ((s.x + s.y) + (s.z + s.w)) * p.scale;
}

// sum_pass4 reading flat texture copies of a and b (flat_texture.wgsl), for CPU adapters.
@group(0) @binding(1) var ta: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var tb: texture_storage_2d<rgba32float, read>;

//!include flat_texture

@compute @workgroup_size(64)
fn sum_pass4_tex(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = linear_index(gid, nwg, WG);
    if (g >= p.rows * p.m) { return; }
    let r = g / p.m;
    let j = g - r * p.m;
    let base = r * p.n;
    var s = vec4<f32>(0.0);
    for (var i = j; i < p.n; i = i + p.m) {
        s = s + term4(textureLoad(ta, flat_texel(base + i)), textureLoad(tb, flat_texel(base + i)));
    }
    out[g] = ((s.x + s.y) + (s.z + s.w)) * p.scale;
}
