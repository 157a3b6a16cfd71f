// The training batch read straight from the faces' u8 store, so that no gather pass writes it
// as floats first (software adapters; batcher.rs `Batcher::record_elidable`, kernels.rs
// `FaceBatch`). A kernel file that includes this (conv2d_faces.wgsl, conv_transpose2d_faces.wgsl)
// reads input slot k through face4 where override FACESk is set; faces_off.wgsl is the same
// names compiled out. face4(i) is vec4 i of the [batch, 1, 128, 128] float batch the gather
// (batch_core.wgsl) would have written: the same faces, in the same order, the same floats.
//!include flat_texture

struct FaceState {
    start: u32,   // position in the epoch's order of slot 0 (batch_core.wgsl BatchState)
    valid: u32,   // (the rest of BatchState, unread here)
    stream: u32,
    _pad: u32,
}

// the faces' u8 pixels as words, 16 pixels a texel (gpu::alias over the store's buffer)
@group(0) @binding(7) var faces_t: texture_storage_2d<rgba32uint, read>;
// (store row, face id) per position of the epoch
@group(0) @binding(8) var<storage, read> face_order: array<u32>;
@group(0) @binding(9) var<uniform> face_st: FaceState;

override FACES0: bool = false;
override FACES2: bool = false;
override FACES3: bool = false;

// 16 pixels, one texel of the store, as 4 vec4s
struct Face16 {
    a: vec4<f32>,
    b: vec4<f32>,
    c: vec4<f32>,
    d: vec4<f32>,
}

// the first texel of the image the loads read, set by face_image (a storage load is a per-lane
// loop on llvmpipe, and llvmpipe runs both sides of a branch: so once per item, not per load)
var<private> face_base: u32 = 0u;

// Called by each faces-reading kernel where it starts on image n (slot n of the batch; every
// slot holds a face: the host reads faces only for batches that drop a short last one).
fn face_image(n: u32) {
    face_base = face_order[2u * (face_st.start + n)] * 1024u;
}

// k / 255 correctly rounded, as the host's table (batcher.rs byte_to_unit_lut) holds it: 1/255
// split into H / 2^23 (H = floor(2^23 / 255), so k H < 2^24 and that part is exact) and the
// rest, LO, rounded; the sum's error is far smaller than the distance from any k / 255 to a
// rounding boundary, so it rounds the same (checked for all 256 bytes, with and without an fma;
// the tests compare with the gathered batch). Not k * (1/255) corrected by its residual:
// llvmpipe reassociates float arithmetic and folded the correction away.
// (signed: llvmpipe converts i32 to float in one instruction, u32 in several)
fn face_unit(k: vec4<i32>) -> vec4<f32> {
    let hi = vec4<f32>(k * 32896) * (1.0 / 8388608.0);
    return hi + vec4<f32>(k) * bitcast<f32>(0x33808081u);
}

// the 4 pixels of one u32 word, first pixel in the low byte (as the gather reads them)
fn face_word(word: u32) -> vec4<f32> {
    let w = bitcast<i32>(word);
    return face_unit(vec4<i32>(w & 255, (w >> 8u) & 255, (w >> 16u) & 255, (w >> 24u) & 255));
}

// the texel of vec4 i of the image set by face_image (i counts from the batch's start: 4096
// vec4s an image, 4 a texel)
fn face_texel(i: u32) -> vec4<u32> {
    return textureLoad(faces_t, flat_texel(face_base + ((i & 4095u) >> 2u)));
}

// vec4 i of the image set by face_image
fn face4(i: u32) -> vec4<f32> {
    return face_word(face_texel(i)[i & 3u]);
}

// vec4s i .. i + 3 (i a multiple of 4): one texel
fn face16(i: u32) -> Face16 {
    let t = face_texel(i);
    return Face16(face_word(t.x), face_word(t.y), face_word(t.z), face_word(t.w));
}

// the last value of vec4 i
fn face_last(i: u32) -> f32 {
    return face_word(face_texel(i)[i & 3u]).w;
}
