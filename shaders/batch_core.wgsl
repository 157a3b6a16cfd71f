// Batch gather: faces stored as u8 on the GPU (4 pixels per u32 word) -> an f32 batch
// [batch, 1, 128, 128] in [0, 1], and optionally a noisy copy, in one pass.
//
// The store may span several buffers ("chunks": one binding cannot hold 70,000 faces on most
// adapters); the host records one dispatch per chunk and each writes the slots whose face
// lives in its chunk. A recorded program never changes, so what varies per step comes from
// the small BatchState buffer: the batch's first position in `order`, how many slots are
// valid (the last batch of an evaluation may be short) and the noise stream (the epoch).
//!include common
//!include rng

struct Params {
    batch: u32,      // slots in the output tensor
    first_row: u32,  // first store row held by this chunk
    rows: u32,       // rows held by this chunk
    chunk0: u32,     // 1 for the chunk that zero-fills slots past `valid`
    sigma: f32,
    clip: u32,
    key_lo: u32,
    key_hi: u32,
}

struct BatchState {
    start: u32,   // position in `order` of slot 0
    valid: u32,   // slots holding a face; the rest are written as 0
    stream: u32,  // noise stream: the epoch in training, fixed in evaluation
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// st and lut are uniforms: on software adapters a storage-buffer load is a per-lane loop
@group(0) @binding(1) var<uniform> st: BatchState;
// (store row, face id) per position of the epoch; the face id (index in the dataset) keys the noise
@group(0) @binding(2) var<storage, read> order: array<u32>;
// binding 3, the faces' u8 pixels (4 per u32 word), is declared by the including file with
// face_quad(i): words 4i .. 4i + 3 (16 pixels)
// i / 255 as the host computes it (correctly rounded), so u8 -> f32 is bit-exact everywhere
@group(0) @binding(4) var<uniform> lut: array<vec4<f32>, 64>;
// [batch, 16384] as vec4s: one store per 4 pixels
@group(0) @binding(5) var<storage, read_write> clean: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> noisy: array<vec4<f32>>;

const WG: u32 = 256u;
const WORDS: u32 = 4096u;    // u32 words per face
const QUADS: u32 = 1024u;    // vec4<u32> (16 pixels) per face: one invocation each

fn unit(word: u32) -> vec4<f32> {
    let b = vec4<u32>(word & 255u, (word >> 8u) & 255u, (word >> 16u) & 255u, word >> 24u);
    return vec4<f32>(lut[b.x >> 2u][b.x & 3u], lut[b.y >> 2u][b.y & 3u], lut[b.z >> 2u][b.z & 3u], lut[b.w >> 2u][b.w & 3u]);
}

// The 16 pixels this invocation handles: (slot, quad index, store row), or row = 0xFFFFFFFF
// when the slot is past `valid` and 0xFFFFFFFE when its face lives in another chunk.
fn locate(t: u32) -> vec3<u32> {
    let slot = t / QUADS;
    let w = t % QUADS;
    if (slot >= st.valid) { return vec3<u32>(slot, w, 0xFFFFFFFFu); }
    let row = order[2u * (st.start + slot)];
    if (row < p.first_row || row >= p.first_row + p.rows) { return vec3<u32>(slot, w, 0xFFFFFFFEu); }
    return vec3<u32>(slot, w, row - p.first_row);
}

// the 4 vec4s of clean floats for face quad d, stored at q .. q + 3 and returned
struct Words {
    c0: vec4<f32>,
    c1: vec4<f32>,
    c2: vec4<f32>,
    c3: vec4<f32>,
}

fn store_clean(q: u32, d: vec4<u32>) -> Words {
    let c = Words(unit(d.x), unit(d.y), unit(d.z), unit(d.w));
    clean[q] = c.c0;
    clean[q + 1u] = c.c1;
    clean[q + 2u] = c.c2;
    clean[q + 3u] = c.c3;
    return c;
}

@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_index(gid, nwg, WG);
    if (t >= p.batch * QUADS) { return; }
    let l = locate(t);
    let q = l.x * WORDS + 4u * l.y;
    if (l.z == 0xFFFFFFFFu) {
        if (p.chunk0 != 0u) {
            let z = vec4<f32>(0.0);
            for (var j = 0u; j < 4u; j++) {
                clean[q + j] = z;
            }
        }
        return;
    }
    if (l.z == 0xFFFFFFFEu) { return; }
    store_clean(q, face_quad(l.z * QUADS + l.y));
}

// pixels 4w..4w+3 share one Philox call: the same values as normal_at(key, pixel, id, stream)
fn noisy_word(c: vec4<f32>, w: u32, id: u32) -> vec4<f32> {
    let z = normal4(vec4<u32>(w, id, st.stream, 0x66616365u), vec2<u32>(p.key_lo, p.key_hi));
    var v = c + p.sigma * z;
    if (p.clip != 0u) { v = clamp(v, vec4<f32>(0.0), vec4<f32>(1.0)); }
    return v;
}

@compute @workgroup_size(256)
fn gather_noisy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_index(gid, nwg, WG);
    if (t >= p.batch * QUADS) { return; }
    let l = locate(t);
    let q = l.x * WORDS + 4u * l.y;
    if (l.z == 0xFFFFFFFFu) {
        if (p.chunk0 != 0u) {
            let z = vec4<f32>(0.0);
            for (var j = 0u; j < 4u; j++) {
                clean[q + j] = z;
                noisy[q + j] = z;
            }
        }
        return;
    }
    if (l.z == 0xFFFFFFFEu) { return; }
    let c = store_clean(q, face_quad(l.z * QUADS + l.y));
    let id = order[2u * (st.start + l.x) + 1u];
    let w = 4u * l.y;
    noisy[q] = noisy_word(c.c0, w, id);
    noisy[q + 1u] = noisy_word(c.c1, w + 1u, id);
    noisy[q + 2u] = noisy_word(c.c2, w + 2u, id);
    noisy[q + 3u] = noisy_word(c.c3, w + 3u, id);
}
