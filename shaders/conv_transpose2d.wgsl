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

//!include conv_head_core

const MAXACC: u32 = 64u;

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

// (CI, CO, the uniform weights tw and the output ty are declared in convt_s2k3_core.wgsl)
const TACC: u32 = 16u;
const TROW: u32 = 16u;

@group(0) @binding(1) var<storage, read> tx: array<f32>;
@group(0) @binding(3) var<storage, read> txa: array<f32>;

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
// convt_s2k3_cpu / convt_s2k3_all_cpu (convt_s2k3_core.wgsl) reading storage buffers

@group(0) @binding(1) var<storage, read> sx4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> sxa4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> soa4: array<vec4<f32>>;

fn s_in4(i: u32) -> vec4<f32> {
    if (GRAD_IN) {
        let a = sxa4[i];
        return sx4[i] * vec4<f32>(act_grad(a.x), act_grad(a.y), act_grad(a.z), act_grad(a.w));
    }
    return sx4[i];
}

fn ld_oa(i: u32) -> vec4<f32> { return soa4[i]; }

// convt_s2k3_all_wgrad_cpu: the layer below's input (binding 6, which only that entry binds)
@group(0) @binding(6) var<storage, read> sx0: array<vec4<f32>>;
fn ld_x0(i: u32) -> vec4<f32> { return sx0[i]; }

//!include faces_off
//!include below_off
//!include convt_s2k3_core
