// The layer below's output recomputed where a kernel reads it, so that the layer below never
// stores it: the seed AE's last layer in a training step on software adapters (host
// conv_transpose2d.rs `Below`, `forward_mse_wgrad`). The layer below is a ConvTranspose2d 3x3
// stride 2 padding 1 (output 2x its input, BCI <= 4 input channels, up to 8 output channels,
// activation BACT: a ReLU), the first decoder layer, whose output y (8 x 64 x 64 an image) its
// forward kernel (convt_s2k3_core.wgsl convt_s2k3_all_cpu) would store: 4.2M floats a batch of
// 128, each a per-lane scalar store on llvmpipe, read back by the last layer's forward and
// backward. The last layer's forward (convt_s2k3_loss_wgrad_cpu) recomputes the y it reads
// from the layer's input x (4 x 32 x 32, a quarter of y's texel loads), with the same sums in
// the same order as convt_s2k3_all_cpu, so the same floats, and keeps what the backward needs
// of y: the layer's weight gradient, and relu'(y) as bits (BMASK, below). A kernel file
// includes this (conv2d_below.wgsl, conv_transpose2d_below*.wgsl) or below_off.wgsl, the same
// names compiled out.
//!include flat_texture

// the layer below's input channels (<= 4) and activation (act.wgsl's codes)
override BCI: u32 = 4u;
override BACT: u32 = 1u;

// x, the layer below's input, as a flat texture (flat_texture.wgsl)
@group(0) @binding(10) var below_x: texture_storage_2d<rgba32float, read>;
// its weights [BCI][BCO][3][3], then its BCO biases (conv2d.rs weights_ubo)
@group(0) @binding(11) var<uniform> below_w: array<vec4<f32>, 1024>;

// BMASK: the layer below's act' at its output (a ReLU's, one bit a value), as the last layer's
// forward stored it (convt_s2k3_core.wgsl convt_s2k3_loss_wgrad_cpu, one vec4<u32> an item),
// read by that layer's input gradient (conv2d_cpu_core.wgsl conv_forward_s2k3_cpu) in place of
// the output itself: a flat texture over the words (read as floats, used as bits)
override BMASK: bool = false;
@group(0) @binding(14) var below_m: texture_storage_2d<rgba32float, read>;

fn below_mask(item: u32) -> vec4<u32> {
    return bitcast<vec4<u32>>(textureLoad(below_m, flat_texel(item)));
}

fn bw_at(i: u32) -> f32 {
    return below_w[i >> 2u][i & 3u];
}

// One input channel's values for an item at input row r, quad q (as convt_s2k3_all_cpu's
// s2x8_ci loads them): a0 / a1 = columns 4q .. 4q + 3 of rows r and r + 1, s0 / s1 the same
// shifted by one column (zeros past the edges)
struct BelowIn {
    a0: vec4<f32>,
    s0: vec4<f32>,
    a1: vec4<f32>,
    s1: vec4<f32>,
}

struct BelowIn4 {
    c0: BelowIn,
    c1: BelowIn,
    c2: BelowIn,
    c3: BelowIn,
}

// channel ci of image n, rows r, r + 1 and quad q of an h x (4 wq) input
fn below_in(n: u32, r: u32, q: u32, h: u32, wq: u32, ci: u32) -> BelowIn {
    let has_next_col = q + 1u < wq;
    let has_next_row = r + 1u < h;
    let z = vec4<f32>(0.0);
    let plane = (n * BCI + ci) * h;
    let i0 = (plane + r) * wq + q;
    let i1 = (plane + min(r + 1u, h - 1u)) * wq + q;
    let a0 = textureLoad(below_x, flat_texel(i0));
    let b0 = select(0.0, textureLoad(below_x, flat_texel(select(i0, i0 + 1u, has_next_col))).x, has_next_col);
    let a1 = select(z, textureLoad(below_x, flat_texel(i1)), has_next_row);
    let b1 = select(0.0, textureLoad(below_x, flat_texel(select(i1, i1 + 1u, has_next_col))).x, has_next_col && has_next_row);
    return BelowIn(a0, vec4<f32>(a0.y, a0.z, a0.w, b0), a1, vec4<f32>(a1.y, a1.z, a1.w, b1));
}

// no inputs (zeros)
fn below_none() -> BelowIn4 {
    let z = vec4<f32>(0.0);
    let zi = BelowIn(z, z, z, z);
    return BelowIn4(zi, zi, zi, zi);
}

fn below_in4(n: u32, r: u32, q: u32, h: u32, wq: u32) -> BelowIn4 {
    var x = below_none();
    if (BCI > 0u) { x.c0 = below_in(n, r, q, h, wq, 0u); }
    if (BCI > 1u) { x.c1 = below_in(n, r, q, h, wq, 1u); }
    if (BCI > 2u) { x.c2 = below_in(n, r, q, h, wq, 2u); }
    if (BCI > 3u) { x.c3 = below_in(n, r, q, h, wq, 3u); }
    return x;
}

// Output channel co of the layer below (BCO of them) at an item, before the bias: e / o the even
// / odd columns 8q .. 8q + 7 of rows 2r (e0, o0), 2r + 1 (e1, o1) and 2r + 2 (e2, o2), and c the
// even column 8q + 8 of the three rows
struct BelowSums {
    e0: vec4<f32>,
    o0: vec4<f32>,
    e1: vec4<f32>,
    o1: vec4<f32>,
    e2: vec4<f32>,
    o2: vec4<f32>,
    c: vec3<f32>,
}

// input channel ci's taps added, exactly as convt_s2k3_core.wgsl's s2_taps adds them (rows 2r + 2
// and column 8q + 8 as its items at r + 1 and q + 1 do)
fn below_taps(b: BelowSums, x: BelowIn, wb: u32) -> BelowSums {
    var r = b;
    r.e0 += x.a0 * bw_at(wb + 4u);
    r.o0 += x.a0 * bw_at(wb + 5u) + x.s0 * bw_at(wb + 3u);
    r.e1 += x.a0 * bw_at(wb + 7u) + x.a1 * bw_at(wb + 1u);
    r.o1 += x.a0 * bw_at(wb + 8u) + x.s0 * bw_at(wb + 6u) + x.a1 * bw_at(wb + 2u) + x.s1 * bw_at(wb + 0u);
    r.e2 += x.a1 * bw_at(wb + 4u);
    r.o2 += x.a1 * bw_at(wb + 5u) + x.s1 * bw_at(wb + 3u);
    r.c.x += x.s0.w * bw_at(wb + 4u);
    r.c.y += x.s0.w * bw_at(wb + 7u) + x.s1.w * bw_at(wb + 1u);
    r.c.z += x.s1.w * bw_at(wb + 4u);
    return r;
}

fn below_act(v: f32) -> f32 {
    if (BACT == 1u) { return max(v, 0.0); }
    if (BACT == 2u) { return 1.0 / (1.0 + exp(-v)); }
    return v;
}

fn below_act4(v: vec4<f32>, b: f32) -> vec4<f32> {
    return vec4<f32>(below_act(v.x + b), below_act(v.y + b), below_act(v.z + b), below_act(v.w + b));
}

// The layer below's output channel co at an item, as stored (vec4s in memory order): rows 2r,
// 2r + 1, 2r + 2 at columns 8q .. 8q + 3 (a) and 8q + 4 .. 8q + 7 (b), and column 8q + 8 (c)
struct BelowOut {
    r0a: vec4<f32>,
    r0b: vec4<f32>,
    r1a: vec4<f32>,
    r1b: vec4<f32>,
    r2a: vec4<f32>,
    r2b: vec4<f32>,
    c: vec3<f32>,
}

// output channel co (of bco) from the item's inputs x (what the kernel does not use of it is
// left out by the compiler)
fn below_out(x: BelowIn4, co: u32, bco: u32) -> BelowOut {
    let z = vec4<f32>(0.0);
    var s = BelowSums(z, z, z, z, z, z, vec3<f32>(0.0));
    if (BCI > 0u) { s = below_taps(s, x.c0, co * 9u); }
    if (BCI > 1u) { s = below_taps(s, x.c1, (bco + co) * 9u); }
    if (BCI > 2u) { s = below_taps(s, x.c2, (2u * bco + co) * 9u); }
    if (BCI > 3u) { s = below_taps(s, x.c3, (3u * bco + co) * 9u); }
    let b = bw_at(BCI * bco * 9u + co);
    let e0 = below_act4(s.e0, b);
    let o0 = below_act4(s.o0, b);
    let e1 = below_act4(s.e1, b);
    let o1 = below_act4(s.o1, b);
    let e2 = below_act4(s.e2, b);
    let o2 = below_act4(s.o2, b);
    return BelowOut(
        vec4<f32>(e0.x, o0.x, e0.y, o0.y),
        vec4<f32>(e0.z, o0.z, e0.w, o0.w),
        vec4<f32>(e1.x, o1.x, e1.y, o1.y),
        vec4<f32>(e1.z, o1.z, e1.w, o1.w),
        vec4<f32>(e2.x, o2.x, e2.y, o2.y),
        vec4<f32>(e2.z, o2.z, e2.w, o2.w),
        vec3<f32>(below_act(s.c.x + b), below_act(s.c.y + b), below_act(s.c.z + b)),
    );
}
