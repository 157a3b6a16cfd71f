// The software-adapter kernels of Conv2d (and ConvTranspose2d's weight gradient), without their
// input loads: conv2d.wgsl reads the inputs from storage buffers, conv2d_tex.wgsl from
// rgba32float texture copies (texel i = vec4 i of the buffer). Each defines
//   ld_x(i), ld_xa(i)   conv_forward*_cpu: input vec4 i, and the activation output act' is taken of (GRAD_IN)
//   ld_dy(i), ld_y(i)   conv_wgrad*_cpu quads side: output gradient and the output act' is taken of
//   ld_f(i), ld_fa(i)   conv_wgrad*_cpu footprint side, and its act' source (TRANSPOSED)
// with bindings: forward 1 x, 3 xa; weight gradient 1 dy, 2 y, 3 footprint, 5 its act' source.
// ---------------------------------------------------------------------------------------------
// conv_forward_cpu: the same op as conv_forward for software adapters and small layers (the
// host picks it when gpu.is_cpu(), w_in and w_out % 4 == 0, c_out <= 8 and the weights fit QW). On
// llvmpipe every storage-buffer access is a per-lane scalar loop while a uniform-buffer load at
// a constant offset is one scalar load, so: the weights (then the bias) sit in a uniform buffer,
// every loop has a compile-time trip count (CI, CO and the geometry are overrides) so the
// weight offsets become constants, each invocation computes 4 adjacent output pixels of one row
// for ALL output channels (each input value of its footprint is loaded once) and stores them as
// vec4s; the input rows are read as vec4s too (w_in % 4 == 0). Grid: x = pixel quads of one output plane, z = batch.

override CI: u32 = 1u;
override CO: u32 = 1u;
// conv_forward_cpu, conv_forward_s2k3_cpu and conv_wgrad_s2k3_cpu compute output (quads-side)
// channels p.co_off .. p.co_off + CO of p.c_out, so a layer with more than 8 of them runs them
// once per group of 8 (one pipeline for all groups of 8)
// footprint of 4 adjacent outputs along a row: 3*S + KW <= FWMAX
const FWMAX: u32 = 16u;
const QW: u32 = 1024u;

@group(0) @binding(2) var<uniform> uw: array<vec4<f32>, QW>;
@group(0) @binding(4) var<storage, read_write> uy: array<vec4<f32>>;

fn uw_at(i: u32) -> f32 {
    return uw[i >> 2u][i & 3u];
}

fn u_in(i: u32) -> vec4<f32> {
    if (GRAD_IN) {
        let a = ld_xa(i);
        return ld_x(i) * vec4<f32>(act_grad(a.x), act_grad(a.y), act_grad(a.z), act_grad(a.w));
    }
    return ld_x(i);
}

@compute @workgroup_size(64)
fn conv_forward_cpu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let wq = p.w_out / 4u;
    let q = gid.x;
    if (q >= p.h_out * wq) { return; }
    let n = wid.z;
    let oy = q / wq;
    let ox0 = (q % wq) * 4u;
    // the footprint starts at ix0 = 4*S*qx - P: its offset within a vec4 is a constant
    let off = (4u - P % 4u) % 4u;
    let v0 = (i32(ox0 * S) - i32(P) - i32(off)) / 4;
    let nv = (off + 3u * S + KW + 3u) / 4u;
    let wiq = i32(p.w_in / 4u);
    var acc: array<vec4<f32>, MAXCB>;
    for (var ci = 0u; ci < CI; ci++) {
        for (var ky = 0u; ky < KH; ky++) {
            let iy = i32(oy * S + ky) - i32(P);
            let row_ok = iy >= 0 && iy < i32(p.h_in);
            let rbase = ((n * CI + ci) * p.h_in + u32(clamp(iy, 0, i32(p.h_in) - 1))) * u32(wiq);
            // loops over private arrays run over the whole array (the real bound is a
            // condition): Mesa then unrolls them and the arrays live in registers
            var row: array<vec4<f32>, FWMAX / 4u + 2u>;
            for (var c = 0u; c < FWMAX / 4u + 2u; c++) {
                if (c < nv) {
                    let v = v0 + i32(c);
                    let ok = row_ok && v >= 0 && v < wiq;
                    row[c] = select(vec4<f32>(0.0), u_in(rbase + u32(clamp(v, 0, wiq - 1))), ok);
                }
            }
            for (var kx = 0u; kx < KW; kx++) {
                let a = off + kx;
                let v = vec4<f32>(
                    row[a / 4u][a % 4u],
                    row[(a + S) / 4u][(a + S) % 4u],
                    row[(a + 2u * S) / 4u][(a + 2u * S) % 4u],
                    row[(a + 3u * S) / 4u][(a + 3u * S) % 4u]
                );
                for (var co = 0u; co < MAXCB; co++) {
                    if (co < CO) {
                        acc[co] += v * uw_at(((co * CI + ci) * KH + ky) * KW + kx);
                    }
                }
            }
        }
    }
    let plane = p.h_out * wq;
    for (var co = 0u; co < MAXCB; co++) {
        if (co < CO) {
            var v = acc[co];
            if (!GRAD_IN) {
                let b = uw_at(CO * CI * KH * KW + co);
                v = vec4<f32>(act_fwd(v.x + b), act_fwd(v.y + b), act_fwd(v.z + b), act_fwd(v.w + b));
            }
            uy[(n * p.c_out + p.co_off + co) * plane + q] = v;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// conv_wgrad_cpu: conv_wgrad for software adapters (the host picks it when gpu.is_cpu(), w_in
// and w_out % 4 == 0, c_out <= 8, KH <= 3, KH*KW <= 9). Why: see conv_forward_cpu. Each item is
// 4 adjacent output pixels: g for all output channels is read as vec4s, the input footprint of
// CIB input channels as vec4 rows, and every (co, ci, tap) accumulates a dot product. Every loop
// runs over a whole private array (real bounds are conditions) so Mesa unrolls it and the
// arrays live in registers. Same partial layout as conv_wgrad (summed by wgrad_reduce).
// With TRANSPOSED it is ConvTranspose2d's weight gradient (the same sum with the roles swapped:
// the quads side is the transposed conv's input x, the footprint side its output gradient
// g = dy * act'(y), and db sums g: each footprint value is counted by the one quad that owns it,
// rows ky in [P, P+S) and columns t in [P, P+4S) of the footprint; the host checks that these
// cover g exactly once). Grid: x = chunks, z = input channel block.

const WCO: u32 = 8u;
const WCI: u32 = 4u;
const WTAP: u32 = 9u;
const WKH: u32 = 3u;
const WNV: u32 = 4u;
override TRANSPOSED: bool = false;

// quads side (conv: dy, y; transposed: x, x) and footprint side (conv: x, x; transposed: dy, y)
@group(0) @binding(4) var<storage, read_write> vpart: array<f32>;

fn act_grad4(y: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(act_grad(y.x), act_grad(y.y), act_grad(y.z), act_grad(y.w));
}

@compute @workgroup_size(64)
fn conv_wgrad_cpu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let chunk = gid.x;
    if (chunk >= p.chunks) { return; }
    let ci0 = wid.z * CIB;
    let wq = p.w_out / 4u;
    let wiq = i32(p.w_in / 4u);
    let plane = p.h_out * wq;
    let off = (4u - P % 4u) % 4u;
    let nv = (off + 3u * S + KW + 3u) / 4u;
    var acc: array<array<array<f32, WTAP>, WCI>, WCO>;
    var db: array<vec4<f32>, WCO>;
    var dbt: array<f32, WCI>;
    let run = lane_items(chunk, p.batch * plane);
    for (var q = run.x; q < run.y; q += run.z) {
        let n = q / plane;
        let r = q % plane;
        let oy = r / wq;
        let qx = r % wq;
        var g: array<vec4<f32>, WCO>;
        for (var co = 0u; co < WCO; co++) {
            if (co < CO) {
                // channel co of the group p.co_off .. p.co_off + CO (groups of up to 8)
                let i = (n * p.c_out + p.co_off + co) * plane + r;
                if (TRANSPOSED) {
                    g[co] = ld_dy(i);
                } else {
                    g[co] = ld_dy(i) * act_grad4(ld_y(i));
                    db[co] += g[co];
                }
            }
        }
        // 4*qx*S - P - off is a multiple of 4
        let v0 = (i32(4u * qx * S) - i32(P) - i32(off)) / 4;
        var xin: array<array<array<vec4<f32>, WNV>, WKH>, WCI>;
        for (var c = 0u; c < WCI; c++) {
            if (c < CIB) {
                let ci = min(ci0 + c, CI - 1u);
                for (var ky = 0u; ky < WKH; ky++) {
                    if (ky < KH) {
                        let iy = i32(oy * S + ky) - i32(P);
                        let row_ok = iy >= 0 && iy < i32(p.h_in);
                        let rbase = ((n * CI + ci) * p.h_in + u32(clamp(iy, 0, i32(p.h_in) - 1))) * u32(wiq);
                        for (var e = 0u; e < WNV; e++) {
                            if (e < nv) {
                                let v = v0 + i32(e);
                                let ok = row_ok && v >= 0 && v < wiq;
                                let j = rbase + u32(clamp(v, 0, wiq - 1));
                                var xv = ld_f(j);
                                if (TRANSPOSED) { xv *= act_grad4(ld_fa(j)); }
                                xin[c][ky][e] = select(vec4<f32>(0.0), xv, ok);
                            }
                        }
                    }
                }
            }
        }
        if (TRANSPOSED) {
            // the footprint values this quad owns: rows ky in [P, P+S), flat columns
            // off + [P, P + 4S)
            for (var c = 0u; c < WCI; c++) {
                for (var ky = 0u; ky < WKH; ky++) {
                    if (c < CIB && ky >= P && ky < P + S) {
                        for (var e = 0u; e < WNV; e++) {
                            var m: array<f32, 4>;
                            for (var i = 0u; i < 4u; i++) {
                                let f = 4u * e + i;
                                m[i] = select(0.0, 1.0, f >= off + P && f < off + P + 4u * S);
                            }
                            dbt[c] += dot(xin[c][ky][e], vec4<f32>(m[0], m[1], m[2], m[3]));
                        }
                    }
                }
            }
        }
        for (var co = 0u; co < WCO; co++) {
            if (co < CO) {
                for (var c = 0u; c < WCI; c++) {
                    if (c < CIB) {
                        for (var t = 0u; t < WTAP; t++) {
                            if (t < KH * KW) {
                                let ky = t / KW;
                                let a = off + t % KW;
                                let xv = vec4<f32>(
                                    xin[c][ky][a / 4u][a % 4u],
                                    xin[c][ky][(a + S) / 4u][(a + S) % 4u],
                                    xin[c][ky][(a + 2u * S) / 4u][(a + 2u * S) % 4u],
                                    xin[c][ky][(a + 3u * S) / 4u][(a + 3u * S) % 4u]
                                );
                                acc[co][c][t] += dot(g[co], xv);
                            }
                        }
                    }
                }
            }
        }
    }
    let kk = KH * KW;
    // (the host pads the stride to a multiple of 4 for wgrad_reduce4)
    let base = chunk * p.stride_part;
    if (TRANSPOSED) {
        for (var c = 0u; c < WCI; c++) {
            let ci = ci0 + c;
            if (c < CIB && ci < CI) {
                vpart[base + CO * CI * kk + ci] = dbt[c];
            }
        }
    }
    for (var co = 0u; co < WCO; co++) {
        if (co < CO) {
            for (var c = 0u; c < WCI; c++) {
                let ci = ci0 + c;
                if (c < CIB && ci < CI) {
                    for (var t = 0u; t < WTAP; t++) {
                        if (t < kk) {
                            vpart[base + (co * CI + ci) * kk + t] = acc[co][c][t];
                        }
                    }
                }
            }
            if (ci0 == 0u && !TRANSPOSED) {
                let d = db[co];
                vpart[base + CO * CI * kk + co] = d.x + d.y + d.z + d.w;
            }
        }
    }
}


// ---------------------------------------------------------------------------------------------
// conv_wgrad_s2k3_cpu: conv_wgrad_cpu (same op, same TRANSPOSED variant, same partial layout)
// written out by hand for 3x3, stride 2, padding 1 with the footprint side exactly twice the
// quads side, no private arrays and no loops but the walk over items, so nothing depends on
// Mesa unrolling. An item is one quad of output columns ox = 4*qx + j of row oy; footprint row
// 2*oy - 1 + ky gives, per tap kx, the 4 values at columns 8*qx - 1 + 2j + kx, from the vec4s
// U (columns 8*qx ..), V (+4 ..) and the last value of the vec4 before U. Each invocation sums
// the taps of all CO quad channels for CIB <= 2 footprint channels (slots k = c * CO + co,
// CO * CIB <= 8). Grid: x = chunks, z = footprint channel block.

override CIB2: u32 = 1u;
// S1: the same sums for 3x3, stride 1, padding 1 with both sides the same size (ae-wide's
// stride-1 layers): footprint rows oy - 1 .. oy + 1, 3 vec4 loads each (row3_s1), and with
// TRANSPOSED each quad owns its own columns of footprint row oy
override S1: bool = false;

struct Row3 {
    k0: vec4<f32>,
    k1: vec4<f32>,
    k2: vec4<f32>,
}

struct Foot {
    r0: Row3,
    r1: Row3,
    r2: Row3,
}

// per tap, the sum over the quads' 4 columns: scalar accumulators (72 for 8 slots, where vec4
// ones took 288) leave llvmpipe fewer values to spill; measured ~1.1x the AE's training step
struct Taps9 {
    t0: f32,
    t1: f32,
    t2: f32,
    t3: f32,
    t4: f32,
    t5: f32,
    t6: f32,
    t7: f32,
    t8: f32,
}

fn taps9_add(a: Taps9, g: vec4<f32>, f: Foot) -> Taps9 {
    var r = a;
    r.t0 += dot(g, f.r0.k0);
    r.t1 += dot(g, f.r0.k1);
    r.t2 += dot(g, f.r0.k2);
    r.t3 += dot(g, f.r1.k0);
    r.t4 += dot(g, f.r1.k1);
    r.t5 += dot(g, f.r1.k2);
    r.t6 += dot(g, f.r2.k0);
    r.t7 += dot(g, f.r2.k1);
    r.t8 += dot(g, f.r2.k2);
    return r;
}

fn hsum(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

// footprint value vec4 i (act' applied on the footprint side when TRANSPOSED)
fn foot4(i: u32) -> vec4<f32> {
    if (TRANSPOSED) { return ld_f(i) * act_grad4(ld_fa(i)); }
    return ld_f(i);
}

// the three taps of one footprint row (rbase: the row's first vec4), zeros when !ok
fn row3(rbase: u32, qx: u32, ok: bool) -> Row3 {
    let z = vec4<f32>(0.0);
    let u = select(z, foot4(rbase + 2u * qx), ok);
    let v = select(z, foot4(rbase + 2u * qx + 1u), ok);
    let pw = select(0.0, foot4(rbase + max(2u * qx, 1u) - 1u).w, ok && qx > 0u);
    return Row3(vec4<f32>(pw, u.y, u.w, v.y), vec4<f32>(u.x, u.z, v.x, v.z), vec4<f32>(u.y, u.w, v.y, v.w));
}

// S1 (stride 1, the footprint side the size of the quads side): the three taps of footprint row
// rbase at the quad's columns 4*qx - 1 + kx ..: its vec4 U, the last value of the one before and
// the first of the one after
fn row3_s1(rbase: u32, qx: u32, wiq: u32, ok: bool) -> Row3 {
    let z = vec4<f32>(0.0);
    let u = select(z, foot4(rbase + qx), ok);
    let pw = select(0.0, foot4(rbase + max(qx, 1u) - 1u).w, ok && qx > 0u);
    let nx = select(0.0, foot4(rbase + min(qx + 1u, wiq - 1u)).x, ok && qx + 1u < wiq);
    return Row3(vec4<f32>(pw, u.x, u.y, u.z), u, vec4<f32>(u.y, u.z, u.w, nx));
}

fn foot(n: u32, ci: u32, oy: u32, qx: u32, wiq: u32) -> Foot {
    let plane = (n * CI + ci) * p.h_in;
    if (S1) {
        // footprint rows oy - 1 .. oy + 1
        let hl = p.h_in - 1u;
        return Foot(
            row3_s1((plane + max(oy, 1u) - 1u) * wiq, qx, wiq, oy > 0u),
            row3_s1((plane + oy) * wiq, qx, wiq, true),
            row3_s1((plane + min(oy + 1u, hl)) * wiq, qx, wiq, oy + 1u < p.h_in),
        );
    }
    let r1 = 2u * oy;
    return Foot(
        row3((plane + max(r1, 1u) - 1u) * wiq, qx, oy > 0u),
        row3((plane + r1) * wiq, qx, true),
        row3((plane + r1 + 1u) * wiq, qx, true),
    );
}

fn quad_g(i: u32) -> vec4<f32> {
    if (TRANSPOSED) { return ld_dy(i); }
    return ld_dy(i) * act_grad4(ld_y(i));
}

fn pick8(i: u32, a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, d: vec4<f32>, e: vec4<f32>, f: vec4<f32>, g: vec4<f32>, h: vec4<f32>) -> vec4<f32> {
    let lo = select(select(a, b, i == 1u), select(c, d, i == 3u), i >= 2u);
    let hi = select(select(e, f, i == 5u), select(g, h, i == 7u), i >= 6u);
    return select(lo, hi, i >= 4u);
}

fn slot_add(s: Taps9, k: u32, g: array<vec4<f32>, 8>, fa: Foot, fb: Foot) -> Taps9 {
    if (k >= CO * CIB2) { return s; }
    let gk = pick8(k % CO, g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]);
    if (k / CO == 0u) { return taps9_add(s, gk, fa); }
    return taps9_add(s, gk, fb);
}

fn slot_store(s: Taps9, k: u32, ci0: u32, base: u32) {
    let co = k % CO;
    let ci = ci0 + k / CO;
    if (k >= CO * CIB2 || ci >= CI) { return; }
    let o = base + (co * CI + ci) * 9u;
    vpart[o] = s.t0;
    vpart[o + 1u] = s.t1;
    vpart[o + 2u] = s.t2;
    vpart[o + 3u] = s.t3;
    vpart[o + 4u] = s.t4;
    vpart[o + 5u] = s.t5;
    vpart[o + 6u] = s.t6;
    vpart[o + 7u] = s.t7;
    vpart[o + 8u] = s.t8;
}

@compute @workgroup_size(64)
fn conv_wgrad_s2k3_cpu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let chunk = gid.x;
    if (chunk >= p.chunks) { return; }
    let ci0 = wid.z * CIB2;
    let cia = ci0;
    let cib = min(ci0 + 1u, CI - 1u);
    let wq = p.w_out / 4u;
    let wiq = p.w_in / 4u;
    let plane = p.h_out * wq;
    let z = vec4<f32>(0.0);
    let z9 = Taps9(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    var s0 = z9;
    var s1 = z9;
    var s2 = z9;
    var s3 = z9;
    var s4 = z9;
    var s5 = z9;
    var s6 = z9;
    var s7 = z9;
    var db = array<vec4<f32>, 8>(z, z, z, z, z, z, z, z);
    var dbt = vec2<f32>(0.0);
    let run = lane_items(chunk, p.batch * plane);
    for (var q = run.x; q < run.y; q += run.z) {
        let n = q / plane;
        let r = q % plane;
        let oy = r / wq;
        let qx = r % wq;
        var g = array<vec4<f32>, 8>(z, z, z, z, z, z, z, z);
        let gi = (n * p.c_out + p.co_off) * plane + r;
        if (CO > 0u) { g[0] = quad_g(gi); }
        if (CO > 1u) { g[1] = quad_g(gi + plane); }
        if (CO > 2u) { g[2] = quad_g(gi + 2u * plane); }
        if (CO > 3u) { g[3] = quad_g(gi + 3u * plane); }
        if (CO > 4u) { g[4] = quad_g(gi + 4u * plane); }
        if (CO > 5u) { g[5] = quad_g(gi + 5u * plane); }
        if (CO > 6u) { g[6] = quad_g(gi + 6u * plane); }
        if (CO > 7u) { g[7] = quad_g(gi + 7u * plane); }
        if (!TRANSPOSED) {
            db[0] += g[0];
            db[1] += g[1];
            db[2] += g[2];
            db[3] += g[3];
            db[4] += g[4];
            db[5] += g[5];
            db[6] += g[6];
            db[7] += g[7];
        }
        let fa = foot(n, cia, oy, qx, wiq);
        var fb = fa;
        if (CIB2 > 1u) { fb = foot(n, cib, oy, qx, wiq); }
        if (TRANSPOSED && S1) {
            // owned footprint values: row oy, columns 4*qx .. 4*qx + 3 (k1)
            dbt.x += hsum(fa.r1.k1);
            dbt.y += hsum(fb.r1.k1);
        } else if (TRANSPOSED) {
            // owned footprint values: rows 2*oy, 2*oy + 1, columns 8*qx .. 8*qx + 7 (k1 holds
            // the even columns, k2 the odd ones)
            dbt.x += hsum(fa.r1.k1 + fa.r1.k2 + fa.r2.k1 + fa.r2.k2);
            dbt.y += hsum(fb.r1.k1 + fb.r1.k2 + fb.r2.k1 + fb.r2.k2);
        }
        s0 = slot_add(s0, 0u, g, fa, fb);
        s1 = slot_add(s1, 1u, g, fa, fb);
        s2 = slot_add(s2, 2u, g, fa, fb);
        s3 = slot_add(s3, 3u, g, fa, fb);
        s4 = slot_add(s4, 4u, g, fa, fb);
        s5 = slot_add(s5, 5u, g, fa, fb);
        s6 = slot_add(s6, 6u, g, fa, fb);
        s7 = slot_add(s7, 7u, g, fa, fb);
    }
    let base = chunk * p.stride_part;
    slot_store(s0, 0u, ci0, base);
    slot_store(s1, 1u, ci0, base);
    slot_store(s2, 2u, ci0, base);
    slot_store(s3, 3u, ci0, base);
    slot_store(s4, 4u, ci0, base);
    slot_store(s5, 5u, ci0, base);
    slot_store(s6, 6u, ci0, base);
    slot_store(s7, 7u, ci0, base);
    let nw = CO * CI * 9u;
    if (TRANSPOSED) {
        vpart[base + nw + cia] = dbt.x;
        if (CIB2 > 1u && ci0 + 1u < CI) { vpart[base + nw + ci0 + 1u] = dbt.y; }
    } else if (ci0 == 0u) {
        if (CO > 0u) { vpart[base + nw] = hsum(db[0]); }
        if (CO > 1u) { vpart[base + nw + 1u] = hsum(db[1]); }
        if (CO > 2u) { vpart[base + nw + 2u] = hsum(db[2]); }
        if (CO > 3u) { vpart[base + nw + 3u] = hsum(db[3]); }
        if (CO > 4u) { vpart[base + nw + 4u] = hsum(db[4]); }
        if (CO > 5u) { vpart[base + nw + 5u] = hsum(db[5]); }
        if (CO > 6u) { vpart[base + nw + 6u] = hsum(db[6]); }
        if (CO > 7u) { vpart[base + nw + 7u] = hsum(db[7]); }
    }
}

// ---------------------------------------------------------------------------------------------
// conv_forward_s2k3_cpu: conv_forward_cpu (same op, same GRAD_IN variant) written out by hand
// for 3x3, stride 2, padding 1 with the input exactly twice the output, no private-array loops
// (so nothing depends on Mesa unrolling). Each invocation owns 2 output rows by 2 quads of
// columns for all (<= 8) output channels; per input channel it reads input rows 4*qy - 1 ..
// 4*qy + 3 as 5 vec4 loads each (the last value of the vec4 before, then 4 vec4s), 25 loads
// for 16 outputs per channel, where one quad at a time takes 9 loads for 4. Tap vectors as in
// conv_wgrad_s2k3_cpu. Grid: x = (row pair, quad pair) pairs of one output plane, z = batch.

struct Out8 {
    c0: vec4<f32>,
    c1: vec4<f32>,
    c2: vec4<f32>,
    c3: vec4<f32>,
    c4: vec4<f32>,
    c5: vec4<f32>,
    c6: vec4<f32>,
    c7: vec4<f32>,
}

// row of quads A (columns 16*g .. +3 of the input: U0, V0) and B (U1, V1)
struct Row2q {
    a: Row3,
    b: Row3,
}

fn in_row2q(rbase: u32, g: u32, ok: bool) -> Row2q {
    let z = vec4<f32>(0.0);
    let i = rbase + 4u * g;
    // the batch read from the faces' store (faces.wgsl): the 4 vec4s are one texel there
    var f = Face16(z, z, z, z);
    var pw = 0.0;
    if (FACES0 && !GRAD_IN) {
        f = face16(i);
        pw = face_last(max(i, 1u) - 1u);
    } else {
        f = Face16(u_in(i), u_in(i + 1u), u_in(i + 2u), u_in(i + 3u));
        pw = u_in(max(i, 1u) - 1u).w;
    }
    let u0 = select(z, f.a, ok);
    let v0 = select(z, f.b, ok);
    let u1 = select(z, f.c, ok);
    let v1 = select(z, f.d, ok);
    pw = select(0.0, pw, ok && g > 0u);
    return Row2q(
        Row3(vec4<f32>(pw, u0.y, u0.w, v0.y), vec4<f32>(u0.x, u0.z, v0.x, v0.z), vec4<f32>(u0.y, u0.w, v0.y, v0.w)),
        Row3(vec4<f32>(v0.w, u1.y, u1.w, v1.y), vec4<f32>(u1.x, u1.z, v1.x, v1.z), vec4<f32>(u1.y, u1.w, v1.y, v1.w)),
    );
}

// TW: the weights are a transposed conv's, [CI][CO][3][3] per group (conv_transpose2d.rs
// group_weights_ubo), used flipped in both directions: the correlation that a stride-1 padding-1
// ConvTranspose2d (and so Conv2d's input gradient) computes. A compile-time choice, so every
// weight offset stays a constant.
override TW: bool = false;

// weight tap k of the 9 at wb (tap 8 - k with TW)
fn w_tap(wb: u32, k: u32) -> f32 {
    return uw_at(select(wb + k, wb + 8u - k, TW));
}

// sum over the 9 taps of footprint f with the weights at wb
fn tap9(f: Foot, wb: u32) -> vec4<f32> {
    return f.r0.k0 * w_tap(wb, 0u) + f.r0.k1 * w_tap(wb, 1u) + f.r0.k2 * w_tap(wb, 2u)
        + f.r1.k0 * w_tap(wb, 3u) + f.r1.k1 * w_tap(wb, 4u) + f.r1.k2 * w_tap(wb, 5u)
        + f.r2.k0 * w_tap(wb, 6u) + f.r2.k1 * w_tap(wb, 7u) + f.r2.k2 * w_tap(wb, 8u);
}

// the first of the 9 weights of output channel co and input channel ci
fn w_base(co: u32, ci: u32) -> u32 {
    if (TW) { return (ci * CO + co) * 9u; }
    return (co * CI + ci) * 9u;
}

fn out8_add(o: Out8, f: Foot, ci: u32) -> Out8 {
    var r = o;
    if (CO > 0u) { r.c0 += tap9(f, w_base(0u, ci)); }
    if (CO > 1u) { r.c1 += tap9(f, w_base(1u, ci)); }
    if (CO > 2u) { r.c2 += tap9(f, w_base(2u, ci)); }
    if (CO > 3u) { r.c3 += tap9(f, w_base(3u, ci)); }
    if (CO > 4u) { r.c4 += tap9(f, w_base(4u, ci)); }
    if (CO > 5u) { r.c5 += tap9(f, w_base(5u, ci)); }
    if (CO > 6u) { r.c6 += tap9(f, w_base(6u, ci)); }
    if (CO > 7u) { r.c7 += tap9(f, w_base(7u, ci)); }
    return r;
}

fn out_act(v: vec4<f32>, co: u32, i: u32) -> vec4<f32> {
    if (GRAD_IN) {
        if (OUT_ACT == 0u) { return v; }
        return v * act_grad4_code(OUT_ACT, ld_fa(i));
    }
    let b = uw_at(CO * CI * 9u + co);
    return vec4<f32>(act_fwd(v.x + b), act_fwd(v.y + b), act_fwd(v.z + b), act_fwd(v.w + b));
}

// stores the quads of all channels at quad index i of plane 0 (planes `plane` apart)
fn out8_store(o: Out8, i: u32, plane: u32) {
    if (CO > 0u) { uy[i] = out_act(o.c0, 0u, i); }
    if (CO > 1u) { uy[i + plane] = out_act(o.c1, 1u, i + plane); }
    if (CO > 2u) { uy[i + 2u * plane] = out_act(o.c2, 2u, i + 2u * plane); }
    if (CO > 3u) { uy[i + 3u * plane] = out_act(o.c3, 3u, i + 3u * plane); }
    if (CO > 4u) { uy[i + 4u * plane] = out_act(o.c4, 4u, i + 4u * plane); }
    if (CO > 5u) { uy[i + 5u * plane] = out_act(o.c5, 5u, i + 5u * plane); }
    if (CO > 6u) { uy[i + 6u * plane] = out_act(o.c6, 6u, i + 6u * plane); }
    if (CO > 7u) { uy[i + 7u * plane] = out_act(o.c7, 7u, i + 7u * plane); }
}

// v times the act' bits k .. k + 3 of word w (1 or 0 each)
fn mask_mul(v: vec4<f32>, w: u32, k: u32) -> vec4<f32> {
    let one = vec4<f32>(1.0);
    let zero = vec4<f32>(0.0);
    let b = (vec4<u32>(w) >> vec4<u32>(k, k + 1u, k + 2u, k + 3u)) & vec4<u32>(1u);
    return v * select(zero, one, b != vec4<u32>(0u));
}

// out8_store with BMASK: channel c's act' from bits (c % 2) * 16 + k .. of word c / 2 of m
fn out8_store_mask(o: Out8, i: u32, plane: u32, m: vec4<u32>, k: u32) {
    if (CO > 0u) { uy[i] = mask_mul(o.c0, m.x, k); }
    if (CO > 1u) { uy[i + plane] = mask_mul(o.c1, m.x, k + 16u); }
    if (CO > 2u) { uy[i + 2u * plane] = mask_mul(o.c2, m.y, k); }
    if (CO > 3u) { uy[i + 3u * plane] = mask_mul(o.c3, m.y, k + 16u); }
    if (CO > 4u) { uy[i + 4u * plane] = mask_mul(o.c4, m.z, k); }
    if (CO > 5u) { uy[i + 5u * plane] = mask_mul(o.c5, m.z, k + 16u); }
    if (CO > 6u) { uy[i + 6u * plane] = mask_mul(o.c6, m.w, k); }
    if (CO > 7u) { uy[i + 7u * plane] = mask_mul(o.c7, m.w, k + 16u); }
}

// an invocation's four output quads: top-left, top-right, bottom-left, bottom-right
struct Out8x4 {
    tl: Out8,
    tr: Out8,
    bl: Out8,
    br: Out8,
}

// input channel ci's taps (input rows y0 - 1 .. y0 + 3) added to the four quads
fn s2k3_ci(o: Out8x4, n: u32, y0: u32, g: u32, wiq: u32, ci: u32) -> Out8x4 {
    let plane = (n * CI + ci) * p.h_in;
    let hl = p.h_in - 1u;
    let r0 = in_row2q((plane + min(max(y0, 1u) - 1u, hl)) * wiq, g, y0 > 0u);
    let r1 = in_row2q((plane + min(y0, hl)) * wiq, g, y0 < p.h_in);
    let r2 = in_row2q((plane + min(y0 + 1u, hl)) * wiq, g, y0 + 1u < p.h_in);
    let r3 = in_row2q((plane + min(y0 + 2u, hl)) * wiq, g, y0 + 2u < p.h_in);
    let r4 = in_row2q((plane + min(y0 + 3u, hl)) * wiq, g, y0 + 3u < p.h_in);
    return Out8x4(
        out8_add(o.tl, Foot(r0.a, r1.a, r2.a), ci),
        out8_add(o.tr, Foot(r0.b, r1.b, r2.b), ci),
        out8_add(o.bl, Foot(r2.a, r3.a, r4.a), ci),
        out8_add(o.br, Foot(r2.b, r3.b, r4.b), ci),
    );
}

// S1: stride 1 with the input the size of the output (ae-wide's first and last layers, and with
// TW their input gradients): the same items (2 output rows by 2 quads), input rows 2*qy - 1 ..
// 2*qy + 2, each read as 4 vec4 loads for the 2 quads (their 2 vec4s, the last value of the one
// before and the first of the one after)
fn in_row2q_s1(rbase: u32, g: u32, wiq: u32, ok: bool) -> Row2q {
    let z = vec4<f32>(0.0);
    let i = rbase + 2u * g;
    let u0 = select(z, u_in(i), ok);
    let u1 = select(z, u_in(i + 1u), ok);
    let pw = select(0.0, u_in(max(i, 1u) - 1u).w, ok && g > 0u);
    let nx = select(0.0, u_in(min(i + 2u, rbase + wiq - 1u)).x, ok && 2u * g + 2u < wiq);
    return Row2q(
        Row3(vec4<f32>(pw, u0.x, u0.y, u0.z), u0, vec4<f32>(u0.y, u0.z, u0.w, u1.x)),
        Row3(vec4<f32>(u0.w, u1.x, u1.y, u1.z), u1, vec4<f32>(u1.y, u1.z, u1.w, nx)),
    );
}

fn s1k3_ci(o: Out8x4, n: u32, y0: u32, g: u32, wiq: u32, ci: u32) -> Out8x4 {
    let plane = (n * CI + ci) * p.h_in;
    let hl = p.h_in - 1u;
    let r0 = in_row2q_s1((plane + max(y0, 1u) - 1u) * wiq, g, wiq, y0 > 0u);
    let r1 = in_row2q_s1((plane + min(y0, hl)) * wiq, g, wiq, y0 < p.h_in);
    let r2 = in_row2q_s1((plane + min(y0 + 1u, hl)) * wiq, g, wiq, y0 + 1u < p.h_in);
    let r3 = in_row2q_s1((plane + min(y0 + 2u, hl)) * wiq, g, wiq, y0 + 2u < p.h_in);
    return Out8x4(
        out8_add(o.tl, Foot(r0.a, r1.a, r2.a), ci),
        out8_add(o.tr, Foot(r0.b, r1.b, r2.b), ci),
        out8_add(o.bl, Foot(r1.a, r2.a, r3.a), ci),
        out8_add(o.br, Foot(r1.b, r2.b, r3.b), ci),
    );
}

fn k3_ci(o: Out8x4, n: u32, y0: u32, g: u32, wiq: u32, ci: u32) -> Out8x4 {
    if (S1) { return s1k3_ci(o, n, y0, g, wiq, ci); }
    return s2k3_ci(o, n, y0, g, wiq, ci);
}

@compute @workgroup_size(64)
fn conv_forward_s2k3_cpu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let wq = p.w_out / 4u;
    let ng = wq / 2u;
    let qh = (p.h_out + 1u) / 2u;
    if (gid.x >= qh * ng) { return; }
    let n = wid.z;
    if (FACES0) { face_image(n); }
    let qy = gid.x / ng;
    let g = gid.x % ng;
    let wiq = p.w_in / 4u;
    let y0 = select(4u * qy, 2u * qy, S1);
    let z = vec4<f32>(0.0);
    let z8 = Out8(z, z, z, z, z, z, z, z);
    var o = Out8x4(z8, z8, z8, z8);
    // up to 8 input channels written out, so that every weight offset is a constant (as in
    // convt_s2k3_core.wgsl's s2x8_item: llvmpipe loads a loop-varying uniform lane by lane)
    if (CI <= 8u) {
        if (CI > 0u) { o = k3_ci(o, n, y0, g, wiq, 0u); }
        if (CI > 1u) { o = k3_ci(o, n, y0, g, wiq, 1u); }
        if (CI > 2u) { o = k3_ci(o, n, y0, g, wiq, 2u); }
        if (CI > 3u) { o = k3_ci(o, n, y0, g, wiq, 3u); }
        if (CI > 4u) { o = k3_ci(o, n, y0, g, wiq, 4u); }
        if (CI > 5u) { o = k3_ci(o, n, y0, g, wiq, 5u); }
        if (CI > 6u) { o = k3_ci(o, n, y0, g, wiq, 6u); }
        if (CI > 7u) { o = k3_ci(o, n, y0, g, wiq, 7u); }
    } else {
        // more channels: a loop (unrolled, 16 or 32 channels took llvmpipe seconds more to compile)
        for (var ci = 0u; ci < CI; ci++) {
            o = k3_ci(o, n, y0, g, wiq, ci);
        }
    }
    let plane = p.h_out * wq;
    let oy = 2u * qy;
    let i = (n * p.c_out + p.co_off) * plane + oy * wq + 2u * g;
    if (BMASK) {
        // act' of the output from the bits stored for this item (below.wgsl)
        let m = below_mask(n * qh * ng + gid.x);
        out8_store_mask(o.tl, i, plane, m, 0u);
        out8_store_mask(o.tr, i + 1u, plane, m, 4u);
        if (oy + 1u < p.h_out) {
            out8_store_mask(o.bl, i + wq, plane, m, 8u);
            out8_store_mask(o.br, i + wq + 1u, plane, m, 12u);
        }
        return;
    }
    out8_store(o.tl, i, plane);
    out8_store(o.tr, i + 1u, plane);
    if (oy + 1u < p.h_out) {
        out8_store(o.bl, i + wq, plane);
        out8_store(o.br, i + wq + 1u, plane);
    }
}

// ---------------------------------------------------------------------------------------------
// conv_forward_s2k3_wgrad_cpu: conv_forward_s2k3_cpu as the input gradient of a ConvTranspose2d
// with one output channel (GRAD_IN, CI = 1: the footprint is that layer's output gradient g;
// OUT_ACT: times act' of the layer's input x, read at binding 5), fused with the same layer's
// weight gradient (conv_wgrad_s2k3_cpu's TRANSPOSED sums: x quads against footprints of g).
// Both read the same values: the footprints of g, and x, which the OUT_ACT epilogue loads
// anyway. Each invocation walks items lane, lane + p.chunks, ... (an item is one of
// conv_forward_s2k3_cpu's invocations: 2 output rows by 2 quads, all CO channels), stores their
// outputs and adds CO x 9 weight sums and the bias sum (each value of g once: the footprint
// rows and columns an item owns), stored as partials at binding 6 (p.stride_part floats per
// lane: weights co * 9 + tap, the bias, zeros), summed by conv2d.wgsl's wgrad_reduce4. That
// saves the weight gradient's own pass over g and x (the seed AE's last layer). Needs
// h_in = 2 h_out, w_in = 2 w_out, h_out even and w_out % 8 == 0 (the host checks).

@group(0) @binding(6) var<storage, read_write> fpart: array<f32>;

// One channel's outputs at the item's 4 quads (at i, i + 1, i + wq, i + wq + 1): stored times
// act'(x), and x added against the 4 footprints into the channel's weight sums.
fn fused_channel(s: Taps9, i: u32, wq: u32, o0: vec4<f32>, o1: vec4<f32>, o2: vec4<f32>, o3: vec4<f32>, f0: Foot, f1: Foot, f2: Foot, f3: Foot) -> Taps9 {
    let a = ld_fa(i);
    let b = ld_fa(i + 1u);
    let c = ld_fa(i + wq);
    let d = ld_fa(i + wq + 1u);
    uy[i] = o0 * act_grad4_code(OUT_ACT, a);
    uy[i + 1u] = o1 * act_grad4_code(OUT_ACT, b);
    uy[i + wq] = o2 * act_grad4_code(OUT_ACT, c);
    uy[i + wq + 1u] = o3 * act_grad4_code(OUT_ACT, d);
    var r = taps9_add(s, a, f0);
    r = taps9_add(r, b, f1);
    r = taps9_add(r, c, f2);
    return taps9_add(r, d, f3);
}

fn fused_store(s: Taps9, co: u32, base: u32) {
    if (co >= CO) { return; }
    let o = base + co * 9u;
    fpart[o] = s.t0;
    fpart[o + 1u] = s.t1;
    fpart[o + 2u] = s.t2;
    fpart[o + 3u] = s.t3;
    fpart[o + 4u] = s.t4;
    fpart[o + 5u] = s.t5;
    fpart[o + 6u] = s.t6;
    fpart[o + 7u] = s.t7;
    fpart[o + 8u] = s.t8;
}

// the sum of the footprint values a row's quad owns: columns 8*qx .. 8*qx + 7 (k1 holds the even
// ones, k2 the odd)
fn owned(r: Row3) -> f32 {
    return hsum(r.k1 + r.k2);
}

@compute @workgroup_size(64)
fn conv_forward_s2k3_wgrad_cpu(@builtin(global_invocation_id) gid: vec3<u32>) {
    let lane = gid.x;
    if (lane >= p.chunks) { return; }
    let wq = p.w_out / 4u;
    let ng = wq / 2u;
    let per_img = (p.h_out / 2u) * ng;
    let wiq = p.w_in / 4u;
    let plane = p.h_out * wq;
    let z = vec4<f32>(0.0);
    let z8 = Out8(z, z, z, z, z, z, z, z);
    let z9 = Taps9(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    var s0 = z9;
    var s1 = z9;
    var s2 = z9;
    var s3 = z9;
    var s4 = z9;
    var s5 = z9;
    var s6 = z9;
    var s7 = z9;
    var bias = 0.0;
    let run = lane_items(lane, p.batch * per_img);
    for (var q = run.x; q < run.y; q += run.z) {
        let n = q / per_img;
        let qy = (q % per_img) / ng;
        let g = q % ng;
        // input rows y0 - 1 .. y0 + 3 of the one input channel (all inside but the first)
        let y0 = 4u * qy;
        let ip = n * p.h_in;
        let r0 = in_row2q((ip + max(y0, 1u) - 1u) * wiq, g, y0 > 0u);
        let r1 = in_row2q((ip + y0) * wiq, g, true);
        let r2 = in_row2q((ip + y0 + 1u) * wiq, g, true);
        let r3 = in_row2q((ip + y0 + 2u) * wiq, g, true);
        let r4 = in_row2q((ip + y0 + 3u) * wiq, g, true);
        // footprints: top-left, top-right, bottom-left, bottom-right quad
        let ftl = Foot(r0.a, r1.a, r2.a);
        let ftr = Foot(r0.b, r1.b, r2.b);
        let fbl = Foot(r2.a, r3.a, r4.a);
        let fbr = Foot(r2.b, r3.b, r4.b);
        let tl = out8_add(z8, ftl, 0u);
        let tr = out8_add(z8, ftr, 0u);
        let bl = out8_add(z8, fbl, 0u);
        let br = out8_add(z8, fbr, 0u);
        let i = (n * p.c_out + p.co_off) * plane + 2u * qy * wq + 2u * g;
        if (CO > 0u) { s0 = fused_channel(s0, i, wq, tl.c0, tr.c0, bl.c0, br.c0, ftl, ftr, fbl, fbr); }
        if (CO > 1u) { s1 = fused_channel(s1, i + plane, wq, tl.c1, tr.c1, bl.c1, br.c1, ftl, ftr, fbl, fbr); }
        if (CO > 2u) { s2 = fused_channel(s2, i + 2u * plane, wq, tl.c2, tr.c2, bl.c2, br.c2, ftl, ftr, fbl, fbr); }
        if (CO > 3u) { s3 = fused_channel(s3, i + 3u * plane, wq, tl.c3, tr.c3, bl.c3, br.c3, ftl, ftr, fbl, fbr); }
        if (CO > 4u) { s4 = fused_channel(s4, i + 4u * plane, wq, tl.c4, tr.c4, bl.c4, br.c4, ftl, ftr, fbl, fbr); }
        if (CO > 5u) { s5 = fused_channel(s5, i + 5u * plane, wq, tl.c5, tr.c5, bl.c5, br.c5, ftl, ftr, fbl, fbr); }
        if (CO > 6u) { s6 = fused_channel(s6, i + 6u * plane, wq, tl.c6, tr.c6, bl.c6, br.c6, ftl, ftr, fbl, fbr); }
        if (CO > 7u) { s7 = fused_channel(s7, i + 7u * plane, wq, tl.c7, tr.c7, bl.c7, br.c7, ftl, ftr, fbl, fbr); }
        // the item owns input rows y0 .. y0 + 3 of its 16 columns
        bias += (owned(r1.a) + owned(r2.a) + owned(r3.a) + owned(r4.a))
            + (owned(r1.b) + owned(r2.b) + owned(r3.b) + owned(r4.b));
    }
    let base = lane * p.stride_part;
    fused_store(s0, 0u, base);
    fused_store(s1, 1u, base);
    fused_store(s2, 2u, base);
    fused_store(s3, 3u, base);
    fused_store(s4, 4u, base);
    fused_store(s5, 5u, base);
    fused_store(s6, 6u, base);
    fused_store(s7, 7u, base);
    fpart[base + CO * 9u] = bias;
    // the padding up to p.stride_part: zeros, so the reduction's whole vec4s add nothing
    for (var k = CO * 9u + 1u; k < p.stride_part; k++) {
        fpart[base + k] = 0.0;
    }
}
