// ConvTranspose2d (PyTorch nn.ConvTranspose2d, NCHW, weight [c_in, c_out, kh, kw]) kernels:
//   convt_forward  gather form (no atomics): out = act(convT(x, w) + b), or with GRAD_IN the
//                  same op on g = x * act'(xa) (Conv2d's backward_input is a transposed conv of
//                  its output gradient with the same weight tensor).
//   convt_wgrad    ConvTranspose2d weight/bias gradient, partial sums per chunk of pixels,
//                  summed by conv2d.wgsl's wgrad_reduce.
// ConvTranspose2d's backward_input is conv2d.wgsl's conv_forward.
//
// out[n, co, oy, ox] = sum x[n, ci, iy, ix] w[ci, co, ky, kx] over oy = iy*S - P + ky (same in x).
// Each invocation owns an S x S block of output pixels (oy = qy*S + py): for phase py the taps
// that reach it are ky = py + P - d*S with input row iy = qy + d, so which (d, py, ky) combine is
// fixed at compile time (S, P, KH, KW are overrides), every input value loaded is used by all
// the outputs of the block it reaches, and no lane wastes time on taps that do not land.

struct Params {
    batch: u32,
    c_in: u32,
    h_in: u32,
    w_in: u32,
    c_out: u32,
    h_out: u32,
    w_out: u32,
    // convt_wgrad: invocations per weight block (chunks of pixel blocks)
    chunks: u32,
    stride_part: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

override KH: u32 = 3u;
override KW: u32 = 3u;
override S: u32 = 1u;
override P: u32 = 0u;
// output channels per invocation; S*S*CB <= MAXACC
override CB: u32 = 8u;
// input channels per invocation (convt_wgrad)
override CIB: u32 = 1u;
// ACT (act.wgsl): applied to the output (forward) or as act' to the input (GRAD_IN)
//!include act
override GRAD_IN: bool = false;

const WG: u32 = 64u;
const MAXCB: u32 = 8u;
const MAXACC: u32 = 64u;
const MAXW: u32 = 160u;

@group(0) @binding(0) var<uniform> p: Params;

// ceil(a / b) for b > 0 and any sign of a
fn ceil_div(a: i32, b: i32) -> i32 {
    return select(-((-a) / b), (a + b - 1) / b, a > 0);
}

// Input offsets d (iy = qy + d) that reach some phase of an output block.
fn d_lo(k: u32) -> i32 {
    return ceil_div(i32(P) - i32(k) + 1, i32(S));
}
fn d_hi() -> i32 {
    return i32((S - 1u + P) / S);
}

// ---------------------------------------------------------------------------------------------
// convt_forward: invocation per (n, channel block, S x S output block); grid x = output blocks of
// one plane, y = channel block, z = batch (uniform weight addresses).

@group(0) @binding(1) var<storage, read> fx: array<f32>;
@group(0) @binding(2) var<storage, read> fw: array<f32>;
@group(0) @binding(3) var<storage, read> fb: array<f32>;
@group(0) @binding(4) var<storage, read> fxa: array<f32>;
@group(0) @binding(5) var<storage, read_write> fy: array<f32>;

fn fwd_in(i: u32) -> f32 {
    if (GRAD_IN) { return fx[i] * act_grad(fxa[i]); }
    return fx[i];
}

@compute @workgroup_size(64)
fn convt_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let qh = (p.h_out + S - 1u) / S;
    let qw = (p.w_out + S - 1u) / S;
    if (gid.x >= qh * qw) { return; }
    let qy = gid.x / qw;
    let qx = gid.x % qw;
    let co0 = wid.y * CB;
    let n = wid.z;
    let kk = KH * KW;
    var acc: array<f32, MAXACC>;
    for (var ci = 0u; ci < p.c_in; ci++) {
        let xbase = (n * p.c_in + ci) * p.h_in * p.w_in;
        let wci = ci * p.c_out;
        for (var dy = d_lo(KH); dy <= d_hi(); dy++) {
            let iy = i32(qy) + dy;
            let row_ok = iy >= 0 && iy < i32(p.h_in);
            let row = xbase + u32(clamp(iy, 0, i32(p.h_in) - 1)) * p.w_in;
            for (var dx = d_lo(KW); dx <= d_hi(); dx++) {
                let ix = i32(qx) + dx;
                let ok = row_ok && ix >= 0 && ix < i32(p.w_in);
                let v = select(0.0, fwd_in(row + u32(clamp(ix, 0, i32(p.w_in) - 1))), ok);
                for (var py = 0u; py < S; py++) {
                    let ky = i32(py + P) - dy * i32(S);
                    if (ky < 0 || ky >= i32(KH)) { continue; }
                    for (var px = 0u; px < S; px++) {
                        let kx = i32(px + P) - dx * i32(S);
                        if (kx < 0 || kx >= i32(KW)) { continue; }
                        let tap = u32(ky) * KW + u32(kx);
                        for (var j = 0u; j < CB; j++) {
                            let co = min(co0 + j, p.c_out - 1u);
                            acc[(py * S + px) * CB + j] += v * fw[(wci + co) * kk + tap];
                        }
                    }
                }
            }
        }
    }
    for (var py = 0u; py < S; py++) {
        let oy = qy * S + py;
        for (var px = 0u; px < S; px++) {
            let ox = qx * S + px;
            for (var j = 0u; j < CB; j++) {
                let co = co0 + j;
                if (oy < p.h_out && ox < p.w_out && co < p.c_out) {
                    var v = acc[(py * S + px) * CB + j];
                    if (!GRAD_IN) { v = act_fwd(v + fb[co]); }
                    fy[((n * p.c_out + co) * p.h_out + oy) * p.w_out + ox] = v;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// convt_wgrad: dw[ci, co, ky, kx] = sum_{n, iy, ix} x[n, ci, iy, ix] g[n, co, iy*S-P+ky, ix*S-P+kx]
// and db[co] = sum g, with g = dy * act'(y). The walk is over S x S blocks of g (each g value
// read once, so db comes for free); invocation (weight block, chunk) takes blocks chunk,
// chunk + chunks, ... and writes part[chunk][...] = [dw (c_in*c_out*KH*KW) | db (c_out)].
// Grid: x = chunks, y = output channel block, z = input channel block.

@group(0) @binding(1) var<storage, read> gdy: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read> gx: array<f32>;
@group(0) @binding(4) var<storage, read_write> gpart: array<f32>;

@compute @workgroup_size(64)
fn convt_wgrad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let chunk = gid.x;
    if (chunk >= p.chunks) { return; }
    let co0 = wid.y * CB;
    let ci0 = wid.z * CIB;
    let qh = (p.h_out + S - 1u) / S;
    let qw = (p.w_out + S - 1u) / S;
    let nq = qh * qw;
    let hwi = p.h_in * p.w_in;
    let kk = KH * KW;
    var acc: array<f32, MAXW>;
    var db: array<f32, MAXCB>;
    var g: array<f32, MAXACC>;
    for (var q = chunk; q < p.batch * nq; q += p.chunks) {
        let n = q / nq;
        let qy = (q % nq) / qw;
        let qx = (q % nq) % qw;
        for (var py = 0u; py < S; py++) {
            let oy = qy * S + py;
            for (var px = 0u; px < S; px++) {
                let ox = qx * S + px;
                for (var j = 0u; j < CB; j++) {
                    let co = co0 + j;
                    let ok = oy < p.h_out && ox < p.w_out && co < p.c_out;
                    let i = ((n * p.c_out + min(co, p.c_out - 1u)) * p.h_out + min(oy, p.h_out - 1u)) * p.w_out + min(ox, p.w_out - 1u);
                    let gv = select(0.0, gdy[i] * act_grad(gy[i]), ok);
                    g[(py * S + px) * CB + j] = gv;
                    db[j] += gv;
                }
            }
        }
        for (var c = 0u; c < CIB; c++) {
            let ci = min(ci0 + c, p.c_in - 1u);
            let xbase = (n * p.c_in + ci) * hwi;
            for (var dy = d_lo(KH); dy <= d_hi(); dy++) {
                let iy = i32(qy) + dy;
                let row_ok = iy >= 0 && iy < i32(p.h_in);
                let row = xbase + u32(clamp(iy, 0, i32(p.h_in) - 1)) * p.w_in;
                for (var dx = d_lo(KW); dx <= d_hi(); dx++) {
                    let ix = i32(qx) + dx;
                    let ok = row_ok && ix >= 0 && ix < i32(p.w_in);
                    let v = select(0.0, gx[row + u32(clamp(ix, 0, i32(p.w_in) - 1))], ok);
                    for (var py = 0u; py < S; py++) {
                        let ky = i32(py + P) - dy * i32(S);
                        if (ky < 0 || ky >= i32(KH)) { continue; }
                        for (var px = 0u; px < S; px++) {
                            let kx = i32(px + P) - dx * i32(S);
                            if (kx < 0 || kx >= i32(KW)) { continue; }
                            let tap = u32(ky) * KW + u32(kx);
                            for (var j = 0u; j < CB; j++) {
                                acc[(j * CIB + c) * kk + tap] += v * g[(py * S + px) * CB + j];
                            }
                        }
                    }
                }
            }
        }
    }
    let stride = p.c_in * p.c_out * kk + p.c_out;
    let base = chunk * stride;
    for (var j = 0u; j < CB; j++) {
        let co = co0 + j;
        if (co < p.c_out) {
            for (var c = 0u; c < CIB; c++) {
                let ci = ci0 + c;
                if (ci < p.c_in) {
                    for (var k = 0u; k < kk; k++) {
                        gpart[base + (ci * p.c_out + co) * kk + k] = acc[(j * CIB + c) * kk + k];
                    }
                }
            }
            if (ci0 == 0u) {
                gpart[base + p.c_in * p.c_out * kk + co] = db[j];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// convt_forward_cpu: the same op as convt_forward for software adapters (the host picks it when
// gpu.is_cpu(), w_out % 4 == 0, S divides 4, S * c_out <= 16 and the weights fit TQW). Why: see
// conv2d.wgsl conv_forward_cpu (weights in a uniform buffer at constant offsets, all output
// channels per invocation, vec4 stores). Each invocation owns S output rows (oy = qy*S + py) by
// 4 adjacent columns (ox = 4*qc + j): since S divides 4, which taps reach each (py, j) and at
// which input offset is known at compile time, so no lane evaluates taps that do not land.
// Grid: x = (row block, quad) pairs of one output plane, z = batch.

override CI: u32 = 1u;
override CO: u32 = 1u;
const TQW: u32 = 1024u;
const TACC: u32 = 16u;
const TROW: u32 = 16u;

@group(0) @binding(1) var<storage, read> tx: array<f32>;
@group(0) @binding(2) var<uniform> tw: array<vec4<f32>, TQW>;
@group(0) @binding(3) var<storage, read> txa: array<f32>;
@group(0) @binding(4) var<storage, read_write> ty: array<vec4<f32>>;

fn tw_at(i: u32) -> f32 {
    return tw[i >> 2u][i & 3u];
}

fn t_in(i: u32) -> f32 {
    if (GRAD_IN) { return tx[i] * act_grad(txa[i]); }
    return tx[i];
}

// floor(a / S) for any sign of a
fn floor_div_s(a: i32) -> i32 {
    return select(-((-a + i32(S) - 1) / i32(S)), a / i32(S), a >= 0);
}

@compute @workgroup_size(64)
fn convt_forward_cpu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let wq = p.w_out / 4u;
    let qh = (p.h_out + S - 1u) / S;
    if (gid.x >= qh * wq) { return; }
    let n = wid.z;
    let qy = gid.x / wq;
    let qc = gid.x % wq;
    // output column 4*qc + j takes tap kx from input column 4*qc/S + floor((j + P - kx)/S)
    let e_lo = floor_div_s(i32(P) - i32(KW) + 1);
    let ne = u32(floor_div_s(3 + i32(P)) - e_lo) + 1u;
    let ix0 = i32(4u * qc / S) + e_lo;
    var acc: array<vec4<f32>, TACC>;
    for (var ci = 0u; ci < CI; ci++) {
        let xbase = (n * CI + ci) * p.h_in * p.w_in;
        for (var dy = d_lo(KH); dy <= d_hi(); dy++) {
            let iy = i32(qy) + dy;
            let row_ok = iy >= 0 && iy < i32(p.h_in);
            let rbase = xbase + u32(clamp(iy, 0, i32(p.h_in) - 1)) * p.w_in;
            // the loops over private arrays run over the whole array (the real bound is a
            // condition): Mesa then unrolls them and the arrays live in registers
            var row: array<f32, TROW>;
            for (var e = 0u; e < TROW; e++) {
                if (e < ne) {
                    let ix = ix0 + i32(e);
                    let ok = row_ok && ix >= 0 && ix < i32(p.w_in);
                    row[e] = select(0.0, t_in(rbase + u32(clamp(ix, 0, i32(p.w_in) - 1))), ok);
                }
            }
            for (var kx = 0u; kx < KW; kx++) {
                // the 4 outputs' input values for tap kx (0 where kx does not land)
                var v: array<f32, 4>;
                for (var j = 0u; j < 4u; j++) {
                    let t = i32(j + P) - i32(kx);
                    let hit = (t - floor_div_s(t) * i32(S)) == 0;
                    v[j] = select(0.0, row[u32(clamp(floor_div_s(t) - e_lo, 0, i32(TROW) - 1))], hit);
                }
                let vv = vec4<f32>(v[0], v[1], v[2], v[3]);
                // all (py, co) pairs: k = py * CO + co
                for (var k = 0u; k < TACC; k++) {
                    let py = k / CO;
                    let co = k % CO;
                    let ky = i32(py + P) - dy * i32(S);
                    if (py < S && ky >= 0 && ky < i32(KH)) {
                        acc[k] += vv * tw_at(((ci * CO + co) * KH + u32(ky)) * KW + kx);
                    }
                }
            }
        }
    }
    let plane = p.h_out * wq;
    for (var k = 0u; k < TACC; k++) {
        let py = k / CO;
        let co = k % CO;
        let oy = qy * S + py;
        if (py < S && oy < p.h_out) {
            var v = acc[k];
            if (!GRAD_IN) {
                let b = tw_at(CI * CO * KH * KW + co);
                v = vec4<f32>(act_fwd(v.x + b), act_fwd(v.y + b), act_fwd(v.z + b), act_fwd(v.w + b));
            }
            ty[(n * CO + co) * plane + oy * wq + qc] = v;
        }
    }
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

@group(0) @binding(1) var<storage, read> sx4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> sxa4: array<vec4<f32>>;

fn s_in4(i: u32) -> vec4<f32> {
    if (GRAD_IN) {
        let a = sxa4[i];
        return sx4[i] * vec4<f32>(act_grad(a.x), act_grad(a.y), act_grad(a.z), act_grad(a.w));
    }
    return sx4[i];
}

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
        ty[r] = vec4<f32>(e0.x, o0.x, e0.y, o0.y);
        ty[r + 1u] = vec4<f32>(e0.z, o0.z, e0.w, o0.w);
    }
    if (row + 1u < p.h_out) {
        ty[r + wq] = vec4<f32>(e1.x, o1.x, e1.y, o1.y);
        ty[r + wq + 1u] = vec4<f32>(e1.z, o1.z, e1.w, o1.w);
    }
}

@compute @workgroup_size(64)
fn convt_s2k3_cpu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let wiq = p.w_in / 4u;
    let nb = wiq / 2u;
    let qh = (p.h_in + 1u) / 2u;
    if (gid.x >= qh * nb) { return; }
    let co = wid.y;
    let n = wid.z;
    let qy = gid.x / nb;
    let qg = gid.x % nb;
    let y0 = 2u * qy;
    let ok1 = y0 + 1u < p.h_in;
    let ok2 = y0 + 2u < p.h_in;
    let ok_c = 2u * qg + 2u < wiq;
    let z = vec4<f32>(0.0);
    // row pairs A (output rows 2*y0, +1) and B (2*y0 + 2, +3) by column blocks L (output columns
    // 16*qg .. +7) and R (+8 .. +15)
    var al = S2Block(z, z, z, z);
    var ar = S2Block(z, z, z, z);
    var bl = S2Block(z, z, z, z);
    var br = S2Block(z, z, z, z);
    for (var ci = 0u; ci < CI; ci++) {
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
        // shifted by one column
        let su0 = vec4<f32>(u0.y, u0.z, u0.w, v0.x);
        let sv0 = vec4<f32>(v0.y, v0.z, v0.w, c0);
        let su1 = vec4<f32>(u1.y, u1.z, u1.w, v1.x);
        let sv1 = vec4<f32>(v1.y, v1.z, v1.w, c1);
        let su2 = vec4<f32>(u2.y, u2.z, u2.w, v2.x);
        let sv2 = vec4<f32>(v2.y, v2.z, v2.w, c2);
        let wb = (ci * CO + co) * 9u;
        al = s2_taps(al, u0, su0, u1, su1, wb);
        ar = s2_taps(ar, v0, sv0, v1, sv1, wb);
        bl = s2_taps(bl, u1, su1, u2, su2, wb);
        br = s2_taps(br, v1, sv1, v2, sv2, wb);
    }
    let bias = tw_at(CI * CO * 9u + co);
    let wq = p.w_out / 4u;
    let r = ((n * CO + co) * p.h_out + 2u * y0) * wq + 4u * qg;
    s2_store(al, r, 2u * y0, wq, bias);
    s2_store(ar, r + 2u, 2u * y0, wq, bias);
    s2_store(bl, r + 2u * wq, 2u * y0 + 2u, wq, bias);
    s2_store(br, r + 2u * wq + 2u, 2u * y0 + 2u, wq, bias);
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

@compute @workgroup_size(64)
fn convt_s2k3_all_cpu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let wiq = p.w_in / 4u;
    if (gid.x >= p.h_in * wiq) { return; }
    let n = wid.z;
    let qy = gid.x / wiq;
    let qg = gid.x % wiq;
    let has_next_col = qg + 1u < wiq;
    let has_next_row = qy + 1u < p.h_in;
    let z = vec4<f32>(0.0);
    let zb = S2Block(z, z, z, z);
    var acc = S2x8(zb, zb, zb, zb, zb, zb, zb, zb);
    for (var ci = 0u; ci < CI; ci++) {
        let plane = (n * CI + ci) * p.h_in;
        let i0 = (plane + qy) * wiq + qg;
        let i1 = (plane + min(qy + 1u, p.h_in - 1u)) * wiq + qg;
        let a0 = s_in4(i0);
        let b0 = select(0.0, s_in4(select(i0, i0 + 1u, has_next_col)).x, has_next_col);
        let a1 = select(z, s_in4(i1), has_next_row);
        let b1 = select(0.0, s_in4(select(i1, i1 + 1u, has_next_col)).x, has_next_col && has_next_row);
        let s0 = vec4<f32>(a0.y, a0.z, a0.w, b0);
        let s1 = vec4<f32>(a1.y, a1.z, a1.w, b1);
        acc = s2x8_add(acc, a0, s0, a1, s1, ci);
    }
    let wq = p.w_out / 4u;
    let plane = p.h_out * wq;
    let r = (n * CO * p.h_out + 2u * qy) * wq + 2u * qg;
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
