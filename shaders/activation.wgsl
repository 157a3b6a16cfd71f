// Elementwise activations, forward and backward side by side. Most layers fuse these into
// their own epilogue (conv, linear); these standalone kernels serve the rest and the tests.
//!include common

struct Params { n: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(256)
fn relu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG);
    if (i >= p.n) { return; }
    y[i] = max(x[i], 0.0);
}

@compute @workgroup_size(256)
fn sigmoid_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG);
    if (i >= p.n) { return; }
    y[i] = 1.0 / (1.0 + exp(-x[i]));
}

// Backward passes take the layer's *output* y (binding 1) and dy (binding 3), and write dx
// (binding 2): relu' = [y > 0], sigmoid' = y (1 - y). Using the output means the forward
// input need not be kept.
@group(0) @binding(3) var<storage, read> dy: array<f32>;

@compute @workgroup_size(256)
fn relu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG);
    if (i >= p.n) { return; }
    y[i] = select(0.0, dy[i], x[i] > 0.0);
}

@compute @workgroup_size(256)
fn sigmoid_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG);
    if (i >= p.n) { return; }
    let s = x[i];
    y[i] = dy[i] * s * (1.0 - s);
}
