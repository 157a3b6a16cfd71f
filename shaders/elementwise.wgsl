// Small elementwise kernels the model graph needs between layers: adding two gradients that
// meet at one activation (the VAE's two heads), and accumulating a scalar loss into a running
// sum on the GPU so nothing is read back per step.
//!include common

struct Params { n: u32, scale: f32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;

// y += scale * a
@compute @workgroup_size(256)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG);
    if (i >= p.n) { return; }
    y[i] = y[i] + p.scale * a[i];
}

// y[0..n] += scale * a[0..n] by one invocation, in order: for scalars (running loss sums),
// where a fixed order keeps the sum bit-identical across runs.
@compute @workgroup_size(1)
fn accumulate_serial() {
    for (var i = 0u; i < p.n; i = i + 1u) {
        y[i] = y[i] + p.scale * a[i];
    }
}
