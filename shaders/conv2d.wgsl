// Conv2d (PyTorch nn.Conv2d, NCHW, weight [c_out, c_in, kh, kw]) kernels:
//   conv_forward  direct gather conv: out = act(conv(x, w) + b), or with GRAD_IN the same conv
//                 of g = x * act'(xa) (ConvTranspose2d's backward_input is a plain conv of its
//                 output gradient with the same weight tensor).
//   conv_wgrad    Conv2d weight/bias gradient, partial sums per chunk of pixels.
//   wgrad_reduce  sums those partials in a fixed order (deterministic, no atomics); also used
//                 by conv_transpose2d.wgsl's convt_wgrad.
// Conv2d's backward_input is conv_transpose2d.wgsl's gather kernel.
//
// Speed on software adapters (lavapipe): each invocation keeps a block of outputs in registers
// and has no barriers. The kernel size, stride, padding and block sizes are override constants
// so that the tap loops unroll and the accumulator arrays become registers.
//!include common

struct Params {
    batch: u32,
    c_in: u32,
    h_in: u32,
    w_in: u32,
    c_out: u32,
    h_out: u32,
    w_out: u32,
    // conv_wgrad: invocations per weight block (pixel chunks); reduce: number of partials
    chunks: u32,
    // reduce: values per partial
    stride_part: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

override KH: u32 = 3u;
override KW: u32 = 3u;
override S: u32 = 1u;
override P: u32 = 0u;
// output channels per invocation (<= MAXCB)
override CB: u32 = 8u;
// input channels per invocation (conv_wgrad)
override CIB: u32 = 1u;
// 0 none, 1 relu, 2 sigmoid: applied to the output (forward) or as act' to the input (GRAD_IN)
override ACT: u32 = 0u;
override GRAD_IN: bool = false;

const WG: u32 = 64u;
const MAXCB: u32 = 8u;
const MAXW: u32 = 160u;

@group(0) @binding(0) var<uniform> p: Params;

fn act_fwd(v: f32) -> f32 {
    if (ACT == 1u) { return max(v, 0.0); }
    if (ACT == 2u) { return 1.0 / (1.0 + exp(-v)); }
    return v;
}

// act' from the activation's output y: relu' = [y > 0], sigmoid' = y (1 - y)
fn act_grad(y: f32) -> f32 {
    if (ACT == 1u) { return select(0.0, 1.0, y > 0.0); }
    if (ACT == 2u) { return y * (1.0 - y); }
    return 1.0;
}

// ---------------------------------------------------------------------------------------------
// conv_forward: one invocation per (n, channel block, oy, ox); CB output channels in registers.
// Grid: x = pixels of one output plane, y = channel block, z = batch. The channel block and the
// image come from the workgroup id, so weight addresses are uniform (scalar loads on lavapipe).

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
fn conv_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let hw = p.h_out * p.w_out;
    let pix = gid.x;
    if (pix >= hw) { return; }
    let co0 = wid.y * CB;
    let n = wid.z;
    let oy = pix / p.w_out;
    let ox = pix % p.w_out;
    let iy0 = i32(oy * S) - i32(P);
    let ix0 = i32(ox * S) - i32(P);
    let wstride = p.c_in * KH * KW;
    let wlast = p.c_out * wstride - 1u;
    var acc: array<f32, MAXCB>;
    for (var ci = 0u; ci < p.c_in; ci++) {
        let xbase = (n * p.c_in + ci) * p.h_in * p.w_in;
        let wbase = (co0 * p.c_in + ci) * KH * KW;
        for (var ky = 0u; ky < KH; ky++) {
            let iy = iy0 + i32(ky);
            let row_ok = iy >= 0 && iy < i32(p.h_in);
            let row = xbase + u32(clamp(iy, 0, i32(p.h_in) - 1)) * p.w_in;
            for (var kx = 0u; kx < KW; kx++) {
                let ix = ix0 + i32(kx);
                let ok = row_ok && ix >= 0 && ix < i32(p.w_in);
                let v = select(0.0, fwd_in(row + u32(clamp(ix, 0, i32(p.w_in) - 1))), ok);
                let wi = wbase + ky * KW + kx;
                for (var j = 0u; j < CB; j++) {
                    acc[j] += v * fw[min(wi + j * wstride, wlast)];
                }
            }
        }
    }
    for (var j = 0u; j < CB; j++) {
        let co = co0 + j;
        if (co < p.c_out) {
            var v = acc[j];
            if (!GRAD_IN) { v = act_fwd(v + fb[co]); }
            fy[(n * p.c_out + co) * hw + pix] = v;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// conv_wgrad: dw[co, ci, ky, kx] = sum_{n, oy, ox} g[n, co, oy, ox] x[n, ci, oy*S-P+ky, ox*S-P+kx]
// and db[co] = sum g, with g = dy * act'(y). Invocation (weight block, chunk) walks the pixels
// chunk, chunk + chunks, ... (adjacent invocations read adjacent pixels) and writes its sums to
// part[chunk][...] laid out as [dw (c_out*c_in*KH*KW) | db (c_out)]. Grid: x = chunks,
// y = output channel block, z = input channel block (uniform weight-block indices).

@group(0) @binding(1) var<storage, read> gdy: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read> gx: array<f32>;
@group(0) @binding(4) var<storage, read_write> gpart: array<f32>;

@compute @workgroup_size(64)
fn conv_wgrad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let chunk = gid.x;
    if (chunk >= p.chunks) { return; }
    let co0 = wid.y * CB;
    let ci0 = wid.z * CIB;
    let hw = p.h_out * p.w_out;
    let hwi = p.h_in * p.w_in;
    let npix = p.batch * hw;
    let kk = KH * KW;
    var acc: array<f32, MAXW>;
    var db: array<f32, MAXCB>;
    var g: array<f32, MAXCB>;
    for (var q = chunk; q < npix; q += p.chunks) {
        let n = q / hw;
        let pix = q % hw;
        let oy = pix / p.w_out;
        let ox = pix % p.w_out;
        for (var j = 0u; j < CB; j++) {
            let co = co0 + j;
            let i = (n * p.c_out + min(co, p.c_out - 1u)) * hw + pix;
            g[j] = select(0.0, gdy[i] * act_grad(gy[i]), co < p.c_out);
            db[j] += g[j];
        }
        let iy0 = i32(oy * S) - i32(P);
        let ix0 = i32(ox * S) - i32(P);
        for (var c = 0u; c < CIB; c++) {
            let ci = min(ci0 + c, p.c_in - 1u);
            let xbase = (n * p.c_in + ci) * hwi;
            for (var ky = 0u; ky < KH; ky++) {
                let iy = iy0 + i32(ky);
                let row_ok = iy >= 0 && iy < i32(p.h_in);
                let row = xbase + u32(clamp(iy, 0, i32(p.h_in) - 1)) * p.w_in;
                for (var kx = 0u; kx < KW; kx++) {
                    let ix = ix0 + i32(kx);
                    let ok = row_ok && ix >= 0 && ix < i32(p.w_in);
                    let v = select(0.0, gx[row + u32(clamp(ix, 0, i32(p.w_in) - 1))], ok);
                    for (var j = 0u; j < CB; j++) {
                        let a = (j * CIB + c) * kk + ky * KW + kx;
                        acc[a] += g[j] * v;
                    }
                }
            }
        }
    }
    let stride = p.c_out * p.c_in * kk + p.c_out;
    let base = chunk * stride;
    for (var j = 0u; j < CB; j++) {
        let co = co0 + j;
        if (co < p.c_out) {
            for (var c = 0u; c < CIB; c++) {
                let ci = ci0 + c;
                if (ci < p.c_in) {
                    for (var k = 0u; k < kk; k++) {
                        gpart[base + (co * p.c_in + ci) * kk + k] = acc[(j * CIB + c) * kk + k];
                    }
                }
            }
            if (ci0 == 0u) {
                gpart[base + p.c_out * p.c_in * kk + co] = db[j];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// wgrad_reduce: out[i] = sum_c part[c][i] in chunk order; i < n_w goes to dw, the rest to db.
// p.chunks partials of p.stride_part values; p.c_out = number of bias entries.

@group(0) @binding(1) var<storage, read> rpart: array<f32>;
@group(0) @binding(2) var<storage, read_write> rdw: array<f32>;
@group(0) @binding(3) var<storage, read_write> rdb: array<f32>;

@compute @workgroup_size(64)
fn wgrad_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG);
    if (i >= p.stride_part) { return; }
    // four independent partial sums, combined in a fixed order, shorten the dependency chain
    var s = vec4<f32>(0.0);
    var c = 0u;
    for (; c + 4u <= p.chunks; c += 4u) {
        s += vec4<f32>(
            rpart[c * p.stride_part + i],
            rpart[(c + 1u) * p.stride_part + i],
            rpart[(c + 2u) * p.stride_part + i],
            rpart[(c + 3u) * p.stride_part + i],
        );
    }
    for (; c < p.chunks; c++) {
        s.x += rpart[c * p.stride_part + i];
    }
    let total = (s.x + s.y) + (s.z + s.w);
    let n_w = p.stride_part - p.c_out;
    if (i < n_w) {
        rdw[i] = total;
    } else {
        rdb[i - n_w] = total;
    }
}


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
// footprint of 4 adjacent outputs along a row: 3*S + KW <= FWMAX
const FWMAX: u32 = 16u;
const QW: u32 = 1024u;

@group(0) @binding(1) var<storage, read> ux: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> uw: array<vec4<f32>, QW>;
@group(0) @binding(3) var<storage, read> uxa: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> uy: array<vec4<f32>>;

fn uw_at(i: u32) -> f32 {
    return uw[i >> 2u][i & 3u];
}

fn u_in(i: u32) -> vec4<f32> {
    if (GRAD_IN) {
        let a = uxa[i];
        return ux[i] * vec4<f32>(act_grad(a.x), act_grad(a.y), act_grad(a.z), act_grad(a.w));
    }
    return ux[i];
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
            uy[(n * CO + co) * plane + q] = v;
        }
    }
}
