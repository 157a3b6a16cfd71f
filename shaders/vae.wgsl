// VAE latent sampling (reparameterisation) and the KL term's gradient, forward and backward side
// by side. The KL value itself is the deterministic sum in reduce.wgsl with its KL map. Each
// kernel has a vec4 form (the "4" entries, n counted in vec4s) for lengths that are a multiple
// of 4, and a scalar form otherwise.
//
// eps for element i of the [batch, latent] tensor at optimizer step t is
// normal_at(key, i, t, stream) (Philox, shaders/rng.wgsl): it depends on (seed, i, t) alone, not
// on the dispatch layout, and a replayed training step draws fresh noise because t is read
// from the StepState buffer. The vec4 form takes elements 4j..4j+3 from one normal4 call, the
// same values normal_at gives.
//!include common
//!include rng
//!include step

const WG: u32 = 256u;
const NORMAL_TAG: u32 = 0x66616365u; // normal_at's fourth counter word

struct RepParams { n: u32, k0: u32, k1: u32, stream: u32 }
@group(0) @binding(0) var<uniform> rp: RepParams;

// z = mu + eps * exp(0.5 logvar); eps is kept for the backward.
@group(0) @binding(1) var<storage, read> f_mu: array<f32>;
@group(0) @binding(2) var<storage, read> f_logvar: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_z: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_eps: array<f32>;
@group(0) @binding(5) var<storage, read> st: StepState;

@compute @workgroup_size(256)
fn reparam_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG);
    if (i >= rp.n) { return; }
    let e = normal_at(vec2<u32>(rp.k0, rp.k1), i, st.t, rp.stream);
    f_eps[i] = e;
    f_z[i] = f_mu[i] + e * exp(0.5 * f_logvar[i]);
}

@group(0) @binding(1) var<storage, read> f_mu4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> f_logvar4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> f_z4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> f_eps4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn reparam_forward4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = linear_index(gid, nwg, WG);
    if (j >= rp.n) { return; }
    let e = normal4(vec4<u32>(j, st.t, rp.stream, NORMAL_TAG), vec2<u32>(rp.k0, rp.k1));
    f_eps4[j] = e;
    f_z4[j] = f_mu4[j] + e * exp(0.5 * f_logvar4[j]);
}

// dmu = dz; dlogvar = dz * eps * 0.5 * exp(0.5 logvar). Overwrites: the KL part is added after.
@group(0) @binding(1) var<storage, read> b_dz: array<f32>;
@group(0) @binding(2) var<storage, read> b_logvar: array<f32>;
@group(0) @binding(3) var<storage, read> b_eps: array<f32>;
@group(0) @binding(4) var<storage, read_write> b_dmu: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_dlogvar: array<f32>;

@compute @workgroup_size(256)
fn reparam_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG);
    if (i >= rp.n) { return; }
    let d = b_dz[i];
    b_dmu[i] = d;
    b_dlogvar[i] = d * b_eps[i] * 0.5 * exp(0.5 * b_logvar[i]);
}

@group(0) @binding(1) var<storage, read> b_dz4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b_logvar4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b_eps4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> b_dmu4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> b_dlogvar4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn reparam_backward4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = linear_index(gid, nwg, WG);
    if (j >= rp.n) { return; }
    let d = b_dz4[j];
    b_dmu4[j] = d;
    b_dlogvar4[j] = d * b_eps4[j] * 0.5 * exp(0.5 * b_logvar4[j]);
}

// KL = -0.5 sum(1 + logvar - mu^2 - exp(logvar)), times scale:
// dmu += scale * mu; dlogvar += scale * 0.5 * (exp(logvar) - 1).
struct KlParams { n: u32, scale: f32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> kp: KlParams;
@group(0) @binding(1) var<storage, read> k_mu: array<f32>;
@group(0) @binding(2) var<storage, read> k_logvar: array<f32>;
@group(0) @binding(3) var<storage, read_write> k_dmu: array<f32>;
@group(0) @binding(4) var<storage, read_write> k_dlogvar: array<f32>;

@compute @workgroup_size(256)
fn kl_grad_accumulate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG);
    if (i >= kp.n) { return; }
    k_dmu[i] = k_dmu[i] + kp.scale * k_mu[i];
    k_dlogvar[i] = k_dlogvar[i] + kp.scale * 0.5 * (exp(k_logvar[i]) - 1.0);
}

@group(0) @binding(1) var<storage, read> k_mu4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k_logvar4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> k_dmu4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> k_dlogvar4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn kl_grad_accumulate4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = linear_index(gid, nwg, WG);
    if (j >= kp.n) { return; }
    k_dmu4[j] = k_dmu4[j] + kp.scale * k_mu4[j];
    k_dlogvar4[j] = k_dlogvar4[j] + kp.scale * 0.5 * (exp(k_logvar4[j]) - 1.0);
}

// Test kernel for tests/rng.rs: element i gets normal_at(key, i, c1, c2) and the four raw u32s
// of philox4x32((i, c1, c2, i * 0x9E3779B9), key). `reverse` walks the elements backwards and
// RNG_WG sets the workgroup size, so the test can show values do not depend on the layout.
struct RngParams { n: u32, k0: u32, k1: u32, c1: u32, c2: u32, reverse: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> gp: RngParams;
@group(0) @binding(1) var<storage, read_write> g_normal: array<f32>;
@group(0) @binding(2) var<storage, read_write> g_raw: array<u32>;
override RNG_WG: u32 = 64u;

@compute @workgroup_size(RNG_WG)
fn rng_test(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = linear_index(gid, nwg, RNG_WG);
    if (g >= gp.n) { return; }
    let i = select(g, gp.n - 1u - g, gp.reverse != 0u);
    let key = vec2<u32>(gp.k0, gp.k1);
    g_normal[i] = normal_at(key, i, gp.c1, gp.c2);
    let r = philox4x32(vec4<u32>(i, gp.c1, gp.c2, i * 0x9E3779B9u), key);
    g_raw[4u * i] = r.x;
    g_raw[4u * i + 1u] = r.y;
    g_raw[4u * i + 2u] = r.z;
    g_raw[4u * i + 3u] = r.w;
}

// Known-answer test kernel for tests/rng.rs: case j reads counter (4 words) and key (2 words)
// at kat_in[6j..6j+6] and writes philox4x32(counter, key) to kat_out[4j..4j+4].
@group(0) @binding(1) var<storage, read> kat_in: array<u32>;
@group(0) @binding(2) var<storage, read_write> kat_out: array<u32>;

@compute @workgroup_size(64)
fn rng_kat(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j >= arrayLength(&kat_out) / 4u) { return; }
    let c = vec4<u32>(kat_in[6u * j], kat_in[6u * j + 1u], kat_in[6u * j + 2u], kat_in[6u * j + 3u]);
    let r = philox4x32(c, vec2<u32>(kat_in[6u * j + 4u], kat_in[6u * j + 5u]));
    kat_out[4u * j] = r.x;
    kat_out[4u * j + 1u] = r.y;
    kat_out[4u * j + 2u] = r.z;
    kat_out[4u * j + 3u] = r.w;
}
