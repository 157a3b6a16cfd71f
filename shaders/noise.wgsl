// Gaussian noise on an f32 tensor: y = x + sigma * N(0,1), clipped to [0, 1] unless clip = 0.
// The value for element e of row r is normal_at(key, e, row_base + r, stream) from rng.wgsl:
// it depends on (seed, image id, stream, pixel) only, never on batch layout, so evaluation
// noise is fixed by the seed and training noise is fresh per (seed, epoch, image). The batch
// gather (batch.wgsl) draws the very same values.
//!include common
//!include rng

struct Params {
    n: u32,          // elements in x and y
    row_len: u32,    // elements per image (128*128 for faces)
    row_base: u32,   // id of the first row (the image's index in the dataset)
    stream: u32,     // epoch in training, a fixed stream in evaluation
    sigma: f32,
    clip: u32,
    key_lo: u32,
    key_hi: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;

// One invocation per 4 consecutive elements of a row: one Philox call gives all four.
@compute @workgroup_size(256)
fn add_noise(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_index(gid, nwg, WG);
    let quads = (p.row_len + 3u) / 4u;
    let rows = p.n / p.row_len;
    if (t >= rows * quads) { return; }
    let row = t / quads;
    let q = t % quads;
    let z = normal4(vec4<u32>(q, p.row_base + row, p.stream, 0x66616365u), vec2<u32>(p.key_lo, p.key_hi));
    for (var k = 0u; k < 4u; k = k + 1u) {
        let e = q * 4u + k;
        if (e < p.row_len) {
            let i = row * p.row_len + e;
            var v = x[i] + p.sigma * z[k];
            if (p.clip != 0u) { v = clamp(v, 0.0, 1.0); }
            y[i] = v;
        }
    }
}
