// Convolutions as matrix products (im2col / col2im), for layers with many channels: the linear
// kernels (linear_cpu.wgsl on software adapters, linear.wgsl's tiled ones on GPUs) do the
// arithmetic at matmul speed, and these
// kernels only move values between NCHW tensors and the products' row-major matrices.
// Geometry is always a conv's: input [n, c, h, w] -> output planes ho x wo, KH x KW taps,
// stride S, padding P; a transposed conv uses the conv it is the adjoint of.
//   im2col     col[r][k], r = (image, output pixel), k = (ci, ky, kx): the input value under
//              that tap (times act'(xa) with GRAD_IN), 0 in the padding
//   col2im     the adjoint: x[n, ci, iy, ix] = sum of the col entries im2col reads it into;
//              with BIAS, act(v + b[ci]) (a transposed conv's forward); COL_T: col is [k][r]
//   to_rows    rows[(image, pixel)][c] = x[n, c, pixel] (times act'(xa) with GRAD_IN): NCHW -> NHWC
//   from_cm    x[n, c, pixel] = t[c][(image, pixel)] (a product's transposed output), with
//              BIAS act(v + b[c])
//   chan_sums  part[n][c] = sum over the plane of x * act'(xa): a transposed conv's bias gradient
//              per image, summed over images by conv2d.wgsl wgrad_reduce
// The images n0 .. n0 + nb of the NCHW side are one chunk; the matrices hold that chunk only.
//!include common

struct Params {
    // first image of the chunk and images in it
    n0: u32,
    nb: u32,
    _p0: u32,
    _p1: u32,
}

// channels and plane of the NCHW side (conv input for im2col/col2im), conv output plane
// (im2col/col2im): override constants, so that the index divisions are by constants
override C: u32 = 1u;
override H: u32 = 1u;
override W: u32 = 1u;
override HO: u32 = 1u;
override WO: u32 = 1u;

override KH: u32 = 3u;
override KW: u32 = 3u;
override S: u32 = 1u;
override P: u32 = 0u;
//!include act
override GRAD_IN: bool = false;
override BIAS: bool = false;
// col2im: the column matrix is stored transposed, [k][r]
override COL_T: bool = false;

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
// im2col/to_rows/chan_sums: act' source (GRAD_IN); col2im: bias (BIAS)
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

fn src_at(i: u32) -> f32 {
    if (GRAD_IN) { return src[i] * act_grad(aux[i]); }
    return src[i];
}

// one invocation per (row, input channel): its KH x KW taps, so the index arithmetic is shared
@compute @workgroup_size(64)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_index(gid, nwg, WG);
    let hwo = HO * WO;
    if (idx >= p.nb * hwo * C) { return; }
    let r = idx / C;
    let ci = idx % C;
    let pix = r % hwo;
    let plane = (p.n0 + r / hwo) * C + ci;
    let iy0 = i32((pix / WO) * S) - i32(P);
    let ix0 = i32((pix % WO) * S) - i32(P);
    let out0 = idx * KH * KW;
    for (var ky = 0u; ky < KH; ky++) {
        let iy = iy0 + i32(ky);
        let row_ok = iy >= 0 && iy < i32(H);
        let row = (plane * H + u32(clamp(iy, 0, i32(H) - 1))) * W;
        for (var kx = 0u; kx < KW; kx++) {
            let ix = ix0 + i32(kx);
            let ok = row_ok && ix >= 0 && ix < i32(W);
            dst[out0 + ky * KW + kx] = select(0.0, src_at(row + u32(clamp(ix, 0, i32(W) - 1))), ok);
        }
    }
}

@compute @workgroup_size(64)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_index(gid, nwg, WG);
    let hw = H * W;
    if (idx >= p.nb * C * hw) { return; }
    let nl = idx / (C * hw);
    let ci = (idx / hw) % C;
    let iy = (idx % hw) / W;
    let ix = idx % W;
    let kk = C * KH * KW;
    var v = 0.0;
    for (var ky = 0u; ky < KH; ky++) {
        // output row oy reads input row oy * S - P + ky
        let ty = i32(iy + P) - i32(ky);
        if (ty < 0 || ty % i32(S) != 0 || ty / i32(S) >= i32(HO)) { continue; }
        let oy = u32(ty) / S;
        for (var kx = 0u; kx < KW; kx++) {
            let tx = i32(ix + P) - i32(kx);
            if (tx < 0 || tx % i32(S) != 0 || tx / i32(S) >= i32(WO)) { continue; }
            let ox = u32(tx) / S;
            let r = nl * HO * WO + oy * WO + ox;
            let k = (ci * KH + ky) * KW + kx;
            if (COL_T) {
                v += src[k * p.nb * HO * WO + r];
            } else {
                v += src[r * kk + k];
            }
        }
    }
    if (BIAS) { v = act_fwd(v + aux[ci]); }
    dst[p.n0 * C * hw + idx] = v;
}

@compute @workgroup_size(64)
fn to_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_index(gid, nwg, WG);
    let hw = H * W;
    if (idx >= p.nb * hw * C) { return; }
    let r = idx / C;
    let ch = idx % C;
    let n = p.n0 + r / hw;
    dst[idx] = src_at((n * C + ch) * hw + r % hw);
}

@compute @workgroup_size(64)
fn from_cm(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_index(gid, nwg, WG);
    let hw = H * W;
    if (idx >= p.nb * C * hw) { return; }
    let nl = idx / (C * hw);
    let ch = (idx / hw) % C;
    var v = src[ch * p.nb * hw + nl * hw + idx % hw];
    if (BIAS) { v = act_fwd(v + aux[ch]); }
    dst[p.n0 * C * hw + idx] = v;
}

// one invocation per (image, channel) of the whole batch (n0 = 0, nb = batch)
@compute @workgroup_size(64)
fn chan_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_index(gid, nwg, WG);
    if (idx >= p.nb * C) { return; }
    let hw = H * W;
    let base = idx * hw;
    // four running sums shorten the dependency chain; combined in a fixed order
    var s = vec4<f32>(0.0);
    var i = 0u;
    for (; i + 4u <= hw; i += 4u) {
        s += vec4<f32>(src_at(base + i), src_at(base + i + 1u), src_at(base + i + 2u), src_at(base + i + 3u));
    }
    for (; i < hw; i++) {
        s.x += src_at(base + i);
    }
    dst[idx] = (s.x + s.y) + (s.z + s.w);
}
