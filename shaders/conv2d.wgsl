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
//!include conv_head_core

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
// p.chunks partials of p.stride_part values; p.c_out = number of bias entries (wgrad_reduce4:
// p.c_in = number of weight entries).

@group(0) @binding(1) var<storage, read> rpart: array<f32>;
@group(0) @binding(2) var<storage, read_write> rdw: array<f32>;
@group(0) @binding(3) var<storage, read_write> rdb: array<f32>;

// value i of the summed partials: dw for i < n_w, then db
fn wgrad_put(i: u32, total: f32) {
    let n_w = p.stride_part - p.c_out;
    if (i < n_w) {
        rdw[i] = total;
    } else {
        rdb[i - n_w] = total;
    }
}

// sum of value i over partials first .. end, in order: four independent running sums,
// combined in a fixed order, shorten the dependency chain
fn sum_partials(first: u32, end: u32, i: u32) -> f32 {
    var s = vec4<f32>(0.0);
    var c = first;
    for (; c + 4u <= end; c += 4u) {
        s += vec4<f32>(
            rpart[c * p.stride_part + i],
            rpart[(c + 1u) * p.stride_part + i],
            rpart[(c + 2u) * p.stride_part + i],
            rpart[(c + 3u) * p.stride_part + i],
        );
    }
    for (; c < end; c++) {
        s.x += rpart[c * p.stride_part + i];
    }
    return (s.x + s.y) + (s.z + s.w);
}

@compute @workgroup_size(64)
fn wgrad_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG);
    if (i >= p.stride_part) { return; }
    wgrad_put(i, sum_partials(0u, p.chunks, i));
}

// wgrad_reduce_groups: the first of two levels where one level would be a long serial loop (a
// GPU's weight gradient writes tens of thousands of partials; each wgrad_reduce lane would add
// them all up alone). Lane j = g * stride + i sums partials g * GROUP .. (g + 1) * GROUP of
// value i in chunk order into rsum[g][i]; wgrad_reduce then sums the groups in order. Fixed
// order, no atomics: the same numbers every run.
override GROUP: u32 = 64u;
@group(0) @binding(2) var<storage, read_write> rsum: array<f32>;

@compute @workgroup_size(64)
fn wgrad_reduce_groups(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = linear_index(gid, nwg, WG);
    let groups = (p.chunks + GROUP - 1u) / GROUP;
    if (j >= groups * p.stride_part) { return; }
    let g = j / p.stride_part;
    let i = j % p.stride_part;
    rsum[j] = sum_partials(g * GROUP, min(g * GROUP + GROUP, p.chunks), i);
}

// wgrad_reduce reading a flat texture copy of the partials (flat_texture.wgsl; value j is
// component j % 4 of texel j / 4), for CPU adapters. Same additions in the same order.
//!include flat_texture
@group(0) @binding(1) var rpart_t: texture_storage_2d<rgba32float, read>;

fn part_at(j: u32) -> f32 {
    return textureLoad(rpart_t, flat_texel(j / 4u))[j % 4u];
}

@compute @workgroup_size(64)
fn wgrad_reduce_tex(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg, WG);
    if (i >= p.stride_part) { return; }
    var s = vec4<f32>(0.0);
    var c = 0u;
    for (; c + 4u <= p.chunks; c += 4u) {
        s += vec4<f32>(
            part_at(c * p.stride_part + i),
            part_at((c + 1u) * p.stride_part + i),
            part_at((c + 2u) * p.stride_part + i),
            part_at((c + 3u) * p.stride_part + i),
        );
    }
    for (; c < p.chunks; c++) {
        s.x += part_at(c * p.stride_part + i);
    }
    wgrad_put(i, (s.x + s.y) + (s.z + s.w));
}

// wgrad_reduce4 / wgrad_reduce4_tex: wgrad_reduce / wgrad_reduce_tex for partials whose stride
// p.stride_part is a multiple of 4 (the software-adapter weight gradients pad it): 4 values per
// invocation, one vec4 (texel) load each per chunk where the others load one per value. The
// same additions in the same order as wgrad_reduce. p.c_in = n_w, p.c_out = n_b; values from
// n_w + n_b on are padding.
@group(0) @binding(1) var<storage, read> rpart4: array<vec4<f32>>;

fn part4_at(t: u32) -> vec4<f32> {
    return textureLoad(rpart_t, flat_texel(t));
}

fn wgrad_put4(i4: u32, total: vec4<f32>) {
    for (var j = 0u; j < 4u; j++) {
        let i = 4u * i4 + j;
        if (i < p.c_in) {
            rdw[i] = total[j];
        } else if (i < p.c_in + p.c_out) {
            rdb[i - p.c_in] = total[j];
        }
    }
}

@compute @workgroup_size(64)
fn wgrad_reduce4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i4 = linear_index(gid, nwg, WG);
    let s4 = p.stride_part / 4u;
    if (i4 >= s4) { return; }
    var a = array<vec4<f32>, 4>();
    var c = 0u;
    for (; c + 4u <= p.chunks; c += 4u) {
        a[0] += rpart4[c * s4 + i4];
        a[1] += rpart4[(c + 1u) * s4 + i4];
        a[2] += rpart4[(c + 2u) * s4 + i4];
        a[3] += rpart4[(c + 3u) * s4 + i4];
    }
    for (; c < p.chunks; c++) {
        a[0] += rpart4[c * s4 + i4];
    }
    wgrad_put4(i4, (a[0] + a[1]) + (a[2] + a[3]));
}

@compute @workgroup_size(64)
fn wgrad_reduce4_tex(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i4 = linear_index(gid, nwg, WG);
    let s4 = p.stride_part / 4u;
    if (i4 >= s4) { return; }
    var a = array<vec4<f32>, 4>();
    var c = 0u;
    for (; c + 4u <= p.chunks; c += 4u) {
        a[0] += part4_at(c * s4 + i4);
        a[1] += part4_at((c + 1u) * s4 + i4);
        a[2] += part4_at((c + 2u) * s4 + i4);
        a[3] += part4_at((c + 3u) * s4 + i4);
    }
    for (; c < p.chunks; c++) {
        a[0] += part4_at(c * s4 + i4);
    }
    wgrad_put4(i4, (a[0] + a[1]) + (a[2] + a[3]));
}

// ---------------------------------------------------------------------------------------------
// The software-adapter kernels (conv2d_cpu_core.wgsl) reading their inputs from storage buffers.

@group(0) @binding(1) var<storage, read> ux: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> uxa: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> vdy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> vy: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> vx: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> vxa: array<vec4<f32>>;

fn ld_x(i: u32) -> vec4<f32> { return ux[i]; }
fn ld_xa(i: u32) -> vec4<f32> { return uxa[i]; }
fn ld_dy(i: u32) -> vec4<f32> { return vdy[i]; }
fn ld_y(i: u32) -> vec4<f32> { return vy[i]; }
fn ld_f(i: u32) -> vec4<f32> { return vx[i]; }
fn ld_fa(i: u32) -> vec4<f32> { return vxa[i]; }

//!include faces_off
//!include below_off
//!include conv2d_cpu_core
