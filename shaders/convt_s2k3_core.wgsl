// The software-adapter ConvTranspose2d kernels for 3x3 stride 2 padding 1 (convt_s2k3_cpu,
// convt_s2k3_all_cpu), without their input loads: conv_transpose2d.wgsl reads the input from
// storage buffers, conv_transpose2d_tex.wgsl from an rgba32float texture copy (texel i = vec4 i
// of the buffer). Each defines s_in4(i): input vec4 i (times act' of the activation input at
// binding 3 with GRAD_IN), the input at binding 1, ld_oa(i): vec4 i of the OUT_ACT source
// at binding 5, and ld_x0(i): vec4 i of the layer below's input at binding 6
// (convt_s2k3_all_wgrad_cpu). Also the declarations convt_forward_cpu
// shares: CI, CO, the weights (then the bias) in a uniform buffer, the output.

override CI: u32 = 1u;
override CO: u32 = 1u;
// convt_s2k3_all_cpu computes output channels p.co_off .. p.co_off + CO of p.c_out, so a layer
// with more than 8 of them runs it once per group of 8 (one pipeline for all groups of 8)
const TQW: u32 = 1024u;

@group(0) @binding(2) var<uniform> tw: array<vec4<f32>, TQW>;
@group(0) @binding(4) var<storage, read_write> ty: array<vec4<f32>>;

// LOSS (training, the network's last layer; convt_s2k3_cpu only): the MSE loss folded into the
// epilogue. Instead of y it stores the layer's g = LOSS_K (y - t) act'(y) (loss.wgsl's
// mse_grad4 with LOSS_K = 2 * scale), t the target read as the OUT_ACT source (ld_oa), and
// writes each invocation's sum of (y - t)^2 to binding 6, summed afterwards into the loss. That
// saves storing y, the loss pass reading y and t, and the gradient pass reading them again.
override LOSS: bool = false;
override LOSS_K: f32 = 0.0;
var<private> loss_acc: f32;

fn tw_at(i: u32) -> f32 {
    return tw[i >> 2u][i & 3u];
}

// ---------------------------------------------------------------------------------------------
// convt_s2k3_cpu: convt_forward for software adapters at 3x3, stride 2, padding 1, output 2x the
// input, w_in % 8 == 0 and few output channels (S * c_out < 8, where convt_forward_cpu has too
// little work per load): the AE's last decoder layer and the first encoder layer's
// backward_input. Written out by hand, with no private arrays, so nothing depends on Mesa
// unrolling loops (a loop it leaves rolled sends its arrays to memory: several times slower).
// Output row 2i takes tap ky = 1 from input row i; row 2i + 1 takes ky = 2 from row i and ky = 0
// from row i + 1; the same for columns. Each invocation owns 4 output rows by 16 columns of one
// output channel, from input rows 2*qy .. 2*qy + 2 and columns 8*qg .. 8*qg + 8 (three vec4
// loads per row; on llvmpipe each load instruction is a per-lane loop, so fewer, wider loads
// are what counts). Grid: x = (row quad, column block) pairs of one output plane,
// y = output channel, z = batch.

// Even (e) and odd (o) output columns of an output row pair (0: row 2i, 1: row 2i + 1).
struct S2Block {
    e0: vec4<f32>,
    o0: vec4<f32>,
    e1: vec4<f32>,
    o1: vec4<f32>,
}

// Adds the taps of one input channel (weights at wb): a0 / a1 = 4 input values of rows i and
// i + 1, s0 / s1 = the same shifted by one column.
fn s2_taps(b: S2Block, a0: vec4<f32>, s0: vec4<f32>, a1: vec4<f32>, s1: vec4<f32>, wb: u32) -> S2Block {
    var r = b;
    r.e0 += a0 * tw_at(wb + 4u);
    r.o0 += a0 * tw_at(wb + 5u) + s0 * tw_at(wb + 3u);
    r.e1 += a0 * tw_at(wb + 7u) + a1 * tw_at(wb + 1u);
    r.o1 += a0 * tw_at(wb + 8u) + s0 * tw_at(wb + 6u) + a1 * tw_at(wb + 2u) + s1 * tw_at(wb + 0u);
    return r;
}

fn s2_act(v: vec4<f32>, b: f32) -> vec4<f32> {
    if (GRAD_IN) { return v; }
    return vec4<f32>(act_fwd(v.x + b), act_fwd(v.y + b), act_fwd(v.z + b), act_fwd(v.w + b));
}

// Stores output row pair b at output row 2*i (quad index r of its first quad), if in range.
fn s2_store(b: S2Block, r: u32, row: u32, wq: u32, bias: f32) {
    let e0 = s2_act(b.e0, bias);
    let o0 = s2_act(b.o0, bias);
    let e1 = s2_act(b.e1, bias);
    let o1 = s2_act(b.o1, bias);
    if (row < p.h_out) {
        ty[r] = s2_out_act(vec4<f32>(e0.x, o0.x, e0.y, o0.y), r);
        ty[r + 1u] = s2_out_act(vec4<f32>(e0.z, o0.z, e0.w, o0.w), r + 1u);
    }
    if (row + 1u < p.h_out) {
        ty[r + wq] = s2_out_act(vec4<f32>(e1.x, o1.x, e1.y, o1.y), r + wq);
        ty[r + wq + 1u] = s2_out_act(vec4<f32>(e1.z, o1.z, e1.w, o1.w), r + wq + 1u);
    }
}

// OUT_ACT (conv_head_core.wgsl): output vec4 i times act' of ld_oa(i); LOSS: g, as above
fn s2_out_act(v: vec4<f32>, i: u32) -> vec4<f32> {
    if (GRAD_IN && OUT_ACT != 0u) { return v * act_grad4_code(OUT_ACT, ld_oa(i)); }
    if (!GRAD_IN && LOSS) {
        let d = v - ld_oa(i);
        loss_acc += dot(d, d);
        return LOSS_K * d * act_grad4_code(ACT, v);
    }
    return v;
}

// LOSS: the partial sums of (y - t)^2, one per invocation [batch][c_out][qh * nb]
@group(0) @binding(6) var<storage, read_write> tloss: array<f32>;

// row pairs A (output rows 2*y0, +1) and B (2*y0 + 2, +3) by column blocks L (output columns
// 16*qg .. +7) and R (+8 .. +15)
struct S2x4 {
    al: S2Block,
    ar: S2Block,
    bl: S2Block,
    br: S2Block,
}

// input channel ci's taps (input rows y0 .. y0 + 2) added to output channel co's blocks
fn s2_ci(o: S2x4, n: u32, y0: u32, qg: u32, wiq: u32, co: u32, ci: u32) -> S2x4 {
    let z = vec4<f32>(0.0);
    let ok1 = y0 + 1u < p.h_in;
    let ok2 = y0 + 2u < p.h_in;
    let ok_c = 2u * qg + 2u < wiq;
    let plane = (n * CI + ci) * p.h_in;
    let i0 = (plane + y0) * wiq + 2u * qg;
    let i1 = (plane + min(y0 + 1u, p.h_in - 1u)) * wiq + 2u * qg;
    let i2 = (plane + min(y0 + 2u, p.h_in - 1u)) * wiq + 2u * qg;
    // row k: vec4s u (columns 8*qg ..), v (+4 ..) and the first value of the next (c)
    let u0 = s_in4(i0);
    let v0 = s_in4(i0 + 1u);
    let c0 = select(0.0, s_in4(select(i0, i0 + 2u, ok_c)).x, ok_c);
    let u1 = select(z, s_in4(i1), ok1);
    let v1 = select(z, s_in4(i1 + 1u), ok1);
    let c1 = select(0.0, s_in4(select(i1, i1 + 2u, ok_c)).x, ok_c && ok1);
    let u2 = select(z, s_in4(i2), ok2);
    let v2 = select(z, s_in4(i2 + 1u), ok2);
    let c2 = select(0.0, s_in4(select(i2, i2 + 2u, ok_c)).x, ok_c && ok2);
    return s2_rows(o, S2Rows(u0, v0, c0, u1, v1, c1, u2, v2, c2), (ci * CO + co) * 9u);
}

// Input rows y0 .. y0 + 2 of one channel at columns 8*qg .. 8*qg + 8: vec4s u (columns 8*qg ..),
// v (+4 ..) and the first value of the next (c), zeros outside the input
struct S2Rows {
    u0: vec4<f32>,
    v0: vec4<f32>,
    c0: f32,
    u1: vec4<f32>,
    v1: vec4<f32>,
    c1: f32,
    u2: vec4<f32>,
    v2: vec4<f32>,
    c2: f32,
}

// input channel ci's rows, the layer below's output recomputed from its input (below.wgsl) at
// the item (y0 = 2*qy: the layer below's input row qy, quad qg): convt_s2k3_loss_wgrad_cpu
fn s2_rows_below(x: BelowIn4, y0: u32, qg: u32, wiq: u32, ci: u32) -> S2Rows {
    let z = vec4<f32>(0.0);
    let ok1 = y0 + 1u < p.h_in;
    let ok2 = y0 + 2u < p.h_in;
    let ok_c = 2u * qg + 2u < wiq;
    let b = below_out(x, ci, CI);
    return S2Rows(
        b.r0a, b.r0b, select(0.0, b.c.x, ok_c),
        select(z, b.r1a, ok1), select(z, b.r1b, ok1), select(0.0, b.c.y, ok_c && ok1),
        select(z, b.r2a, ok2), select(z, b.r2b, ok2), select(0.0, b.c.z, ok_c && ok2),
    );
}

// the taps of one input channel's rows (weights at wb) added to output channel co's blocks
fn s2_rows(o: S2x4, x: S2Rows, wb: u32) -> S2x4 {
    let u0 = x.u0;
    let v0 = x.v0;
    let c0 = x.c0;
    let u1 = x.u1;
    let v1 = x.v1;
    let c1 = x.c1;
    let u2 = x.u2;
    let v2 = x.v2;
    let c2 = x.c2;
    // shifted by one column
    let su0 = vec4<f32>(u0.y, u0.z, u0.w, v0.x);
    let sv0 = vec4<f32>(v0.y, v0.z, v0.w, c0);
    let su1 = vec4<f32>(u1.y, u1.z, u1.w, v1.x);
    let sv1 = vec4<f32>(v1.y, v1.z, v1.w, c1);
    let su2 = vec4<f32>(u2.y, u2.z, u2.w, v2.x);
    let sv2 = vec4<f32>(v2.y, v2.z, v2.w, c2);
    return S2x4(
        s2_taps(o.al, u0, su0, u1, su1, wb),
        s2_taps(o.ar, v0, sv0, v1, sv1, wb),
        s2_taps(o.bl, u1, su1, u2, su2, wb),
        s2_taps(o.br, v1, sv1, v2, sv2, wb),
    );
}

@compute @workgroup_size(64)
fn convt_s2k3_cpu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let wiq = p.w_in / 4u;
    let nb = wiq / 2u;
    let qh = (p.h_in + 1u) / 2u;
    if (gid.x >= qh * nb) { return; }
    // one output channel: a constant, so the weight offsets are too
    let co = select(wid.y, 0u, CO == 1u);
    let n = wid.z;
    if (FACES2) { face_image(n); }
    let qy = gid.x / nb;
    let qg = gid.x % nb;
    let y0 = 2u * qy;
    let z = vec4<f32>(0.0);
    let zb = S2Block(z, z, z, z);
    var o = S2x4(zb, zb, zb, zb);
    // up to 8 input channels written out, so that every weight offset is a constant where co
    // is (one output channel): llvmpipe loads a loop-varying uniform lane by lane
    if (CI <= 8u) {
        if (CI > 0u) { o = s2_ci(o, n, y0, qg, wiq, co, 0u); }
        if (CI > 1u) { o = s2_ci(o, n, y0, qg, wiq, co, 1u); }
        if (CI > 2u) { o = s2_ci(o, n, y0, qg, wiq, co, 2u); }
        if (CI > 3u) { o = s2_ci(o, n, y0, qg, wiq, co, 3u); }
        if (CI > 4u) { o = s2_ci(o, n, y0, qg, wiq, co, 4u); }
        if (CI > 5u) { o = s2_ci(o, n, y0, qg, wiq, co, 5u); }
        if (CI > 6u) { o = s2_ci(o, n, y0, qg, wiq, co, 6u); }
        if (CI > 7u) { o = s2_ci(o, n, y0, qg, wiq, co, 7u); }
    } else {
        // more channels: a loop (unrolled, 16 or 32 channels took llvmpipe seconds more to compile)
        for (var ci = 0u; ci < CI; ci++) {
            o = s2_ci(o, n, y0, qg, wiq, co, ci);
        }
    }
    let bias = tw_at(CI * CO * 9u + co);
    let wq = p.w_out / 4u;
    let r = ((n * CO + co) * p.h_out + 2u * y0) * wq + 4u * qg;
    s2_store(o.al, r, 2u * y0, wq, bias);
    s2_store(o.ar, r + 2u, 2u * y0, wq, bias);
    s2_store(o.bl, r + 2u * wq, 2u * y0 + 2u, wq, bias);
    s2_store(o.br, r + 2u * wq + 2u, 2u * y0 + 2u, wq, bias);
    if (LOSS) {
        tloss[(n * CO + co) * qh * nb + gid.x] = loss_acc;
    }
}

// ---------------------------------------------------------------------------------------------
// convt_s2k3_loss_wgrad_cpu: a training step's last layer (convt_s2k3_cpu with LOSS and one
// output channel) with its input recomputed from the layer below's input (below.wgsl),
// and the two things the layer's backward pass would read that input for done here, where the
// input is in registers: the layer's weight gradient, and the layer below's act' (a ReLU: one
// bit a value) for the input gradient that forms the layer below's g. Then nothing reads the
// input x: the layer below's forward is dropped and the backward pass has only the input
// gradient left (conv2d_cpu_core.wgsl conv_forward_s2k3_cpu with BMASK).
// The weight gradient is the forward's taps with g in place of the weights: each output's g
// times each input value the forward multiplied into it, summed per tap (each output belongs
// to one item, each (input, tap) to one of its taps). Each invocation walks items lane,
// ... (lane_items; an item is one of convt_s2k3_cpu's invocations: output rows 4*qy .. + 3,
// columns 16*qg .. + 15), stores g and its sum of (y - t)^2 like convt_s2k3_cpu, and per item
// the 128 bits act'(x) > 0 of the x it owns (rows 2*qy, 2*qy + 1, columns 8*qg .. 8*qg + 7, all
// CI channels) as one vec4<u32> at binding 13 (channel c, row r, quad j, column k: bit
// (c % 2) * 16 + 8 r + 4 j + k of word c / 2); at the end its CI x 9 weight sums and the bias sum
// at binding 12 (p.stride_part floats a lane, for wgrad_reduce4) and its loss sum at binding 6.
// Needs CO = 1, CI <= 8, h_in even, w_in % 8 == 0 (the host checks).

@group(0) @binding(12) var<storage, read_write> lw_part: array<f32>;
@group(0) @binding(13) var<storage, read_write> lw_mask: array<vec4<u32>>;

// The weight sums of one input channel's taps: the forward's s2_taps with g (block b) in place
// of the weights
fn lw_taps(a: W10, b: S2Block, a0: vec4<f32>, s0: vec4<f32>, a1: vec4<f32>, s1: vec4<f32>) -> W10 {
    var r = a;
    r.t4 += dot(b.e0, a0);
    r.t5 += dot(b.o0, a0);
    r.t3 += dot(b.o0, s0);
    r.t7 += dot(b.e1, a0);
    r.t1 += dot(b.e1, a1);
    r.t8 += dot(b.o1, a0);
    r.t6 += dot(b.o1, s0);
    r.t2 += dot(b.o1, a1);
    r.t0 += dot(b.o1, s1);
    return r;
}

// one input channel's rows x against the item's four blocks of g (as s2_rows adds them)
fn lw_rows(a: W10, g: S2x4, x: S2Rows) -> W10 {
    let su0 = vec4<f32>(x.u0.y, x.u0.z, x.u0.w, x.v0.x);
    let sv0 = vec4<f32>(x.v0.y, x.v0.z, x.v0.w, x.c0);
    let su1 = vec4<f32>(x.u1.y, x.u1.z, x.u1.w, x.v1.x);
    let sv1 = vec4<f32>(x.v1.y, x.v1.z, x.v1.w, x.c1);
    let su2 = vec4<f32>(x.u2.y, x.u2.z, x.u2.w, x.v2.x);
    let sv2 = vec4<f32>(x.v2.y, x.v2.z, x.v2.w, x.c2);
    var r = lw_taps(a, g.al, x.u0, su0, x.u1, su1);
    r = lw_taps(r, g.ar, x.v0, sv0, x.v1, sv1);
    r = lw_taps(r, g.bl, x.u1, su1, x.u2, su2);
    return lw_taps(r, g.br, x.v1, sv1, x.v2, sv2);
}

// Stores block b's g (as s2_store does with LOSS, rows always in range) and returns it in the
// block's layout (even and odd columns)
fn lw_store(b: S2Block, r: u32, wq: u32, bias: f32) -> S2Block {
    let e0 = s2_act(b.e0, bias);
    let o0 = s2_act(b.o0, bias);
    let e1 = s2_act(b.e1, bias);
    let o1 = s2_act(b.o1, bias);
    let q00 = s2_out_act(vec4<f32>(e0.x, o0.x, e0.y, o0.y), r);
    let q01 = s2_out_act(vec4<f32>(e0.z, o0.z, e0.w, o0.w), r + 1u);
    let q10 = s2_out_act(vec4<f32>(e1.x, o1.x, e1.y, o1.y), r + wq);
    let q11 = s2_out_act(vec4<f32>(e1.z, o1.z, e1.w, o1.w), r + wq + 1u);
    ty[r] = q00;
    ty[r + 1u] = q01;
    ty[r + wq] = q10;
    ty[r + wq + 1u] = q11;
    return S2Block(
        vec4<f32>(q00.x, q00.z, q01.x, q01.z),
        vec4<f32>(q00.y, q00.w, q01.y, q01.w),
        vec4<f32>(q10.x, q10.z, q11.x, q11.z),
        vec4<f32>(q10.y, q10.w, q11.y, q11.w),
    );
}

fn lw_hsum(b: S2Block) -> f32 {
    let v = (b.e0 + b.o0) + (b.e1 + b.o1);
    return (v.x + v.y) + (v.z + v.w);
}

// bits k of the 4 values of v with act' > 0 (a ReLU's: v > 0)
fn lw_bits4(v: vec4<f32>) -> u32 {
    return select(0u, 1u, v.x > 0.0) | select(0u, 2u, v.y > 0.0) | select(0u, 4u, v.z > 0.0) | select(0u, 8u, v.w > 0.0);
}

// the 16 bits of one channel's owned x: rows 0, 1 by quads 0, 1
fn lw_bits16(x: S2Rows) -> u32 {
    return lw_bits4(x.u0) | (lw_bits4(x.v0) << 4u) | (lw_bits4(x.u1) << 8u) | (lw_bits4(x.v1) << 12u);
}

@compute @workgroup_size(64)
fn convt_s2k3_loss_wgrad_cpu(@builtin(global_invocation_id) gid: vec3<u32>) {
    let lane = gid.x;
    if (lane >= p.chunks) { return; }
    let wiq = p.w_in / 4u;
    let nb = wiq / 2u;
    let per_img = (p.h_in / 2u) * nb;
    let wq = p.w_out / 4u;
    let bias = tw_at(CI * 9u);
    let zw = W10(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    var s0 = zw;
    var s1 = zw;
    var s2 = zw;
    var s3 = zw;
    var s4 = zw;
    var s5 = zw;
    var s6 = zw;
    var s7 = zw;
    var db = 0.0;
    loss_acc = 0.0;
    let run = lane_items(lane, p.batch * per_img);
    for (var q = run.x; q < run.y; q += run.z) {
        let n = q / per_img;
        let qy = (q % per_img) / nb;
        let qg = q % nb;
        if (FACES2) { face_image(n); }
        let y0 = 2u * qy;
        let x = below_in4(n, qy, qg, p.h_in / 2u, wiq / 2u);
        let z = S2Rows(vec4<f32>(0.0), vec4<f32>(0.0), 0.0, vec4<f32>(0.0), vec4<f32>(0.0), 0.0, vec4<f32>(0.0), vec4<f32>(0.0), 0.0);
        var x0 = z;
        var x1 = z;
        var x2 = z;
        var x3 = z;
        var x4 = z;
        var x5 = z;
        var x6 = z;
        var x7 = z;
        let zb = S2Block(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
        var o = S2x4(zb, zb, zb, zb);
        if (CI > 0u) { x0 = s2_rows_below(x, y0, qg, wiq, 0u); o = s2_rows(o, x0, 0u); }
        if (CI > 1u) { x1 = s2_rows_below(x, y0, qg, wiq, 1u); o = s2_rows(o, x1, 9u); }
        if (CI > 2u) { x2 = s2_rows_below(x, y0, qg, wiq, 2u); o = s2_rows(o, x2, 18u); }
        if (CI > 3u) { x3 = s2_rows_below(x, y0, qg, wiq, 3u); o = s2_rows(o, x3, 27u); }
        if (CI > 4u) { x4 = s2_rows_below(x, y0, qg, wiq, 4u); o = s2_rows(o, x4, 36u); }
        if (CI > 5u) { x5 = s2_rows_below(x, y0, qg, wiq, 5u); o = s2_rows(o, x5, 45u); }
        if (CI > 6u) { x6 = s2_rows_below(x, y0, qg, wiq, 6u); o = s2_rows(o, x6, 54u); }
        if (CI > 7u) { x7 = s2_rows_below(x, y0, qg, wiq, 7u); o = s2_rows(o, x7, 63u); }
        let r = (n * p.h_out + 2u * y0) * wq + 4u * qg;
        let g = S2x4(
            lw_store(o.al, r, wq, bias),
            lw_store(o.ar, r + 2u, wq, bias),
            lw_store(o.bl, r + 2u * wq, wq, bias),
            lw_store(o.br, r + 2u * wq + 2u, wq, bias),
        );
        db += (lw_hsum(g.al) + lw_hsum(g.ar)) + (lw_hsum(g.bl) + lw_hsum(g.br));
        if (CI > 0u) { s0 = lw_rows(s0, g, x0); }
        if (CI > 1u) { s1 = lw_rows(s1, g, x1); }
        if (CI > 2u) { s2 = lw_rows(s2, g, x2); }
        if (CI > 3u) { s3 = lw_rows(s3, g, x3); }
        if (CI > 4u) { s4 = lw_rows(s4, g, x4); }
        if (CI > 5u) { s5 = lw_rows(s5, g, x5); }
        if (CI > 6u) { s6 = lw_rows(s6, g, x6); }
        if (CI > 7u) { s7 = lw_rows(s7, g, x7); }
        lw_mask[q] = vec4<u32>(
            lw_bits16(x0) | (lw_bits16(x1) << 16u),
            lw_bits16(x2) | (lw_bits16(x3) << 16u),
            lw_bits16(x4) | (lw_bits16(x5) << 16u),
            lw_bits16(x6) | (lw_bits16(x7) << 16u),
        );
    }
    let base = lane * p.stride_part;
    lw_part_store(s0, 0u, base);
    lw_part_store(s1, 1u, base);
    lw_part_store(s2, 2u, base);
    lw_part_store(s3, 3u, base);
    lw_part_store(s4, 4u, base);
    lw_part_store(s5, 5u, base);
    lw_part_store(s6, 6u, base);
    lw_part_store(s7, 7u, base);
    lw_part[base + CI * 9u] = db;
    // the padding up to p.stride_part: zeros, so the reduction's whole vec4s add nothing
    for (var k = CI * 9u + 1u; k < p.stride_part; k++) {
        lw_part[base + k] = 0.0;
    }
    tloss[lane] = loss_acc;
}

fn lw_part_store(a: W10, ci: u32, base: u32) {
    if (ci >= CI) { return; }
    let o = base + ci * 9u;
    lw_part[o] = a.t0;
    lw_part[o + 1u] = a.t1;
    lw_part[o + 2u] = a.t2;
    lw_part[o + 3u] = a.t3;
    lw_part[o + 4u] = a.t4;
    lw_part[o + 5u] = a.t5;
    lw_part[o + 6u] = a.t6;
    lw_part[o + 7u] = a.t7;
    lw_part[o + 8u] = a.t8;
}

// ---------------------------------------------------------------------------------------------
// convt_s2k3_all_cpu: convt_s2k3_cpu for 4..8 output channels, all of them per invocation (so
// each input value is loaded once per invocation rather than once per channel): output rows
// 2*qy, 2*qy + 1 by columns 8*qg .. 8*qg + 7 from input rows qy, qy + 1 and columns 4*qg ..
// 4*qg + 4 (two vec4 loads per row). Needs w_in % 4 == 0. Grid: x = (input row, input quad)
// pairs of one input plane, z = batch.

struct S2x8 {
    b0: S2Block,
    b1: S2Block,
    b2: S2Block,
    b3: S2Block,
    b4: S2Block,
    b5: S2Block,
    b6: S2Block,
    b7: S2Block,
}

fn s2x8_add(o: S2x8, a0: vec4<f32>, s0: vec4<f32>, a1: vec4<f32>, s1: vec4<f32>, ci: u32) -> S2x8 {
    var r = o;
    let wb = ci * CO * 9u;
    if (CO > 0u) { r.b0 = s2_taps(r.b0, a0, s0, a1, s1, wb); }
    if (CO > 1u) { r.b1 = s2_taps(r.b1, a0, s0, a1, s1, wb + 9u); }
    if (CO > 2u) { r.b2 = s2_taps(r.b2, a0, s0, a1, s1, wb + 18u); }
    if (CO > 3u) { r.b3 = s2_taps(r.b3, a0, s0, a1, s1, wb + 27u); }
    if (CO > 4u) { r.b4 = s2_taps(r.b4, a0, s0, a1, s1, wb + 36u); }
    if (CO > 5u) { r.b5 = s2_taps(r.b5, a0, s0, a1, s1, wb + 45u); }
    if (CO > 6u) { r.b6 = s2_taps(r.b6, a0, s0, a1, s1, wb + 54u); }
    if (CO > 7u) { r.b7 = s2_taps(r.b7, a0, s0, a1, s1, wb + 63u); }
    return r;
}

// input channel ci's taps added to all output channels: input rows qy, qy + 1, columns 4*qg ..
// 4*qg + 4 of image n
fn s2x8_ci(o: S2x8, n: u32, qy: u32, qg: u32, wiq: u32, ci: u32) -> S2x8 {
    let has_next_col = qg + 1u < wiq;
    let has_next_row = qy + 1u < p.h_in;
    let z = vec4<f32>(0.0);
    let plane = (n * CI + ci) * p.h_in;
    let i0 = (plane + qy) * wiq + qg;
    let i1 = (plane + min(qy + 1u, p.h_in - 1u)) * wiq + qg;
    let a0 = s_in4(i0);
    let b0 = select(0.0, s_in4(select(i0, i0 + 1u, has_next_col)).x, has_next_col);
    let a1 = select(z, s_in4(i1), has_next_row);
    let b1 = select(0.0, s_in4(select(i1, i1 + 1u, has_next_col)).x, has_next_col && has_next_row);
    let s0 = vec4<f32>(a0.y, a0.z, a0.w, b0);
    let s1 = vec4<f32>(a1.y, a1.z, a1.w, b1);
    return s2x8_add(o, a0, s0, a1, s1, ci);
}

// all output channels of one invocation, over every input channel. Up to 8 input channels are
// written out, so that every weight offset is a constant: llvmpipe loads a uniform at an offset
// that varies with a loop lane by lane (a rolled loop over 4 channels spent most of its
// instructions there; written out, the seed AE's dec0 forward ran ~1.6x as fast).
fn s2x8_item(n: u32, qy: u32, qg: u32, wiq: u32) -> S2x8 {
    let z = vec4<f32>(0.0);
    let zb = S2Block(z, z, z, z);
    var acc = S2x8(zb, zb, zb, zb, zb, zb, zb, zb);
    if (CI <= 8u) {
        if (CI > 0u) { acc = s2x8_ci(acc, n, qy, qg, wiq, 0u); }
        if (CI > 1u) { acc = s2x8_ci(acc, n, qy, qg, wiq, 1u); }
        if (CI > 2u) { acc = s2x8_ci(acc, n, qy, qg, wiq, 2u); }
        if (CI > 3u) { acc = s2x8_ci(acc, n, qy, qg, wiq, 3u); }
        if (CI > 4u) { acc = s2x8_ci(acc, n, qy, qg, wiq, 4u); }
        if (CI > 5u) { acc = s2x8_ci(acc, n, qy, qg, wiq, 5u); }
        if (CI > 6u) { acc = s2x8_ci(acc, n, qy, qg, wiq, 6u); }
        if (CI > 7u) { acc = s2x8_ci(acc, n, qy, qg, wiq, 7u); }
    } else {
        // more channels: a loop (unrolled, 16 or 32 channels took llvmpipe seconds more to compile)
        for (var ci = 0u; ci < CI; ci++) {
            acc = s2x8_ci(acc, n, qy, qg, wiq, ci);
        }
    }
    return acc;
}

@compute @workgroup_size(64)
fn convt_s2k3_all_cpu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let wiq = p.w_in / 4u;
    if (gid.x >= p.h_in * wiq) { return; }
    let n = wid.z;
    let qy = gid.x / wiq;
    let qg = gid.x % wiq;
    let acc = s2x8_item(n, qy, qg, wiq);
    let wq = p.w_out / 4u;
    let plane = p.h_out * wq;
    let r = ((n * p.c_out + p.co_off) * p.h_out + 2u * qy) * wq + 2u * qg;
    let nb = CI * CO * 9u;
    if (CO > 0u) { s2_store(acc.b0, r, 2u * qy, wq, tw_at(nb)); }
    if (CO > 1u) { s2_store(acc.b1, r + plane, 2u * qy, wq, tw_at(nb + 1u)); }
    if (CO > 2u) { s2_store(acc.b2, r + 2u * plane, 2u * qy, wq, tw_at(nb + 2u)); }
    if (CO > 3u) { s2_store(acc.b3, r + 3u * plane, 2u * qy, wq, tw_at(nb + 3u)); }
    if (CO > 4u) { s2_store(acc.b4, r + 4u * plane, 2u * qy, wq, tw_at(nb + 4u)); }
    if (CO > 5u) { s2_store(acc.b5, r + 5u * plane, 2u * qy, wq, tw_at(nb + 5u)); }
    if (CO > 6u) { s2_store(acc.b6, r + 6u * plane, 2u * qy, wq, tw_at(nb + 6u)); }
    if (CO > 7u) { s2_store(acc.b7, r + 7u * plane, 2u * qy, wq, tw_at(nb + 7u)); }
}

// ---------------------------------------------------------------------------------------------
// convt_s2k3_all_wgrad_cpu: convt_s2k3_all_cpu as a Conv2d's input gradient (GRAD_IN, OUT_ACT:
// g0 = convT(g1, w) * act'(y0), y0 the layer's input = the layer below's output) fused with the
// weight gradient of that layer below when it is a 1-channel 3x3 stride-2 pad-1 conv whose input
// x0 (binding 6) is exactly twice g0's size: the seed AE's first layer, which needs no input
// gradient. g0 is never stored: each invocation adds its taps against x0 into CO x 9 weight sums
// and CO bias sums over items lane, lane + p.chunks, ... (an item is one of convt_s2k3_all_cpu's
// invocations: output rows 2*qy, 2*qy + 1 by columns 8*qg .. 8*qg + 7, all channels), and stores
// them as conv_wgrad_s2k3_cpu's partials at binding 4 (p.stride_part floats per lane, weights
// co * 9 + tap, then the biases), summed by conv2d.wgsl's wgrad_reduce4. That saves storing g0
// (a per-lane loop of scalar stores on llvmpipe), its texture copy and the weight gradient's
// reading it back. Needs h_out = 2 h_in, w_out = 2 w_in (the host checks).

// x0 at columns 2 * ox - 1 + kx (k0, k1, k2 by kx) for the 4 outputs ox = 4 * qx .. + 3 of one
// footprint row, from the vec4s at 2 * qx, 2 * qx + 1 and the last value of the one before
// (conv2d_cpu_core.wgsl's row3, reading x0); zeros when !ok
struct X0Row {
    k0: vec4<f32>,
    k1: vec4<f32>,
    k2: vec4<f32>,
}

fn x0_row(rbase: u32, qx: u32, ok: bool) -> X0Row {
    let z = vec4<f32>(0.0);
    let u = select(z, ld_x0(rbase + 2u * qx), ok);
    let v = select(z, ld_x0(rbase + 2u * qx + 1u), ok);
    let pw = select(0.0, ld_x0(rbase + max(2u * qx, 1u) - 1u).w, ok && qx > 0u);
    return X0Row(vec4<f32>(pw, u.y, u.w, v.y), vec4<f32>(u.x, u.z, v.x, v.z), vec4<f32>(u.y, u.w, v.y, v.w));
}

// the 5 footprint rows 4 * qy - 1 .. 4 * qy + 3 of an item, each for its two output quads
struct X0Foot {
    r0a: X0Row, r0b: X0Row,
    r1a: X0Row, r1b: X0Row,
    r2a: X0Row, r2b: X0Row,
    r3a: X0Row, r3b: X0Row,
    r4a: X0Row, r4b: X0Row,
}

// per output channel: the 9 tap sums and the bias sum
struct W10 {
    t0: f32, t1: f32, t2: f32, t3: f32, t4: f32, t5: f32, t6: f32, t7: f32, t8: f32,
    b: f32,
}

fn w10_quad(a: W10, g: vec4<f32>, f0: X0Row, f1: X0Row, f2: X0Row) -> W10 {
    var r = a;
    r.t0 += dot(g, f0.k0);
    r.t1 += dot(g, f0.k1);
    r.t2 += dot(g, f0.k2);
    r.t3 += dot(g, f1.k0);
    r.t4 += dot(g, f1.k1);
    r.t5 += dot(g, f1.k2);
    r.t6 += dot(g, f2.k0);
    r.t7 += dot(g, f2.k1);
    r.t8 += dot(g, f2.k2);
    r.b += (g.x + g.y) + (g.z + g.w);
    return r;
}

// adds one channel's g0 (its S2Block b; i: the vec4 index of its first output quad, as in
// s2_store) to its sums
fn w10_add(a: W10, b: S2Block, i: u32, wq: u32, f: X0Foot) -> W10 {
    let g00 = vec4<f32>(b.e0.x, b.o0.x, b.e0.y, b.o0.y) * act_grad4_code(OUT_ACT, ld_oa(i));
    let g01 = vec4<f32>(b.e0.z, b.o0.z, b.e0.w, b.o0.w) * act_grad4_code(OUT_ACT, ld_oa(i + 1u));
    let g10 = vec4<f32>(b.e1.x, b.o1.x, b.e1.y, b.o1.y) * act_grad4_code(OUT_ACT, ld_oa(i + wq));
    let g11 = vec4<f32>(b.e1.z, b.o1.z, b.e1.w, b.o1.w) * act_grad4_code(OUT_ACT, ld_oa(i + wq + 1u));
    var r = w10_quad(a, g00, f.r0a, f.r1a, f.r2a);
    r = w10_quad(r, g01, f.r0b, f.r1b, f.r2b);
    r = w10_quad(r, g10, f.r2a, f.r3a, f.r4a);
    r = w10_quad(r, g11, f.r2b, f.r3b, f.r4b);
    return r;
}

fn w10_store(a: W10, co: u32, base: u32) {
    if (co >= CO) { return; }
    // weights co * 9 + tap, then the biases after all CO * 9
    let o = base + co * 9u;
    tpart[o] = a.t0;
    tpart[o + 1u] = a.t1;
    tpart[o + 2u] = a.t2;
    tpart[o + 3u] = a.t3;
    tpart[o + 4u] = a.t4;
    tpart[o + 5u] = a.t5;
    tpart[o + 6u] = a.t6;
    tpart[o + 7u] = a.t7;
    tpart[o + 8u] = a.t8;
    tpart[base + CO * 9u + co] = a.b;
}

// the partial sums [p.chunks][p.stride_part] (binding 4, where the other entries store y)
@group(0) @binding(4) var<storage, read_write> tpart: array<f32>;

@compute @workgroup_size(64)
fn convt_s2k3_all_wgrad_cpu(@builtin(global_invocation_id) gid: vec3<u32>) {
    let lane = gid.x;
    if (lane >= p.chunks) { return; }
    let wiq = p.w_in / 4u;
    let per_img = p.h_in * wiq;
    let wq = p.w_out / 4u;
    let plane = p.h_out * wq;
    let xq = p.w_out / 2u; // x0's row in vec4s: 2 * w_out / 4
    let zw = W10(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    var s0 = zw;
    var s1 = zw;
    var s2 = zw;
    var s3 = zw;
    var s4 = zw;
    var s5 = zw;
    var s6 = zw;
    var s7 = zw;
    let run = lane_items(lane, p.batch * per_img);
    for (var q = run.x; q < run.y; q += run.z) {
        let n = q / per_img;
        if (FACES3) { face_image(n); }
        let qy = (q % per_img) / wiq;
        let qg = q % wiq;
        let acc = s2x8_item(n, qy, qg, wiq);
        // x0 rows 4 * qy - 1 .. 4 * qy + 3 (one channel, 2 * h_out rows), quads 2 * qg, + 1
        let xb = n * 2u * p.h_out + 4u * qy;
        let top = qy > 0u;
        let f = X0Foot(
            x0_row((max(xb, 1u) - 1u) * xq, 2u * qg, top), x0_row((max(xb, 1u) - 1u) * xq, 2u * qg + 1u, top),
            x0_row(xb * xq, 2u * qg, true), x0_row(xb * xq, 2u * qg + 1u, true),
            x0_row((xb + 1u) * xq, 2u * qg, true), x0_row((xb + 1u) * xq, 2u * qg + 1u, true),
            x0_row((xb + 2u) * xq, 2u * qg, true), x0_row((xb + 2u) * xq, 2u * qg + 1u, true),
            x0_row((xb + 3u) * xq, 2u * qg, true), x0_row((xb + 3u) * xq, 2u * qg + 1u, true),
        );
        let r = (n * CO * p.h_out + 2u * qy) * wq + 2u * qg;
        if (CO > 0u) { s0 = w10_add(s0, acc.b0, r, wq, f); }
        if (CO > 1u) { s1 = w10_add(s1, acc.b1, r + plane, wq, f); }
        if (CO > 2u) { s2 = w10_add(s2, acc.b2, r + 2u * plane, wq, f); }
        if (CO > 3u) { s3 = w10_add(s3, acc.b3, r + 3u * plane, wq, f); }
        if (CO > 4u) { s4 = w10_add(s4, acc.b4, r + 4u * plane, wq, f); }
        if (CO > 5u) { s5 = w10_add(s5, acc.b5, r + 5u * plane, wq, f); }
        if (CO > 6u) { s6 = w10_add(s6, acc.b6, r + 6u * plane, wq, f); }
        if (CO > 7u) { s7 = w10_add(s7, acc.b7, r + 7u * plane, wq, f); }
    }
    let base = lane * p.stride_part;
    w10_store(s0, 0u, base);
    w10_store(s1, 1u, base);
    w10_store(s2, 2u, base);
    w10_store(s3, 3u, base);
    w10_store(s4, 4u, base);
    w10_store(s5, 5u, base);
    w10_store(s6, 6u, base);
    w10_store(s7, 7u, base);
    // the padding up to p.stride_part: zeros, so the reduction's whole vec4s add nothing
    for (var k = CO * 10u; k < p.stride_part; k++) {
        tpart[base + k] = 0.0;
    }
}
