// nn.Linear matmuls for GPUs, and the split-K reduction both variants share.
// Every pass is C[i][j] = sum_k S(i,k) P(k,j) (see src/ops/linear.rs for the table):
//   tiled_fwd  y  = act(x W^T + b):  S = x [m][k],           P = W [n][k]
//   tiled_bin  dx = g W:             S = g [m][k],           P = W [k][n]
//   tiled_bw   dW = g^T x, db:       S = g [k][m] (k=batch), P = x [k][n]
// with g = dy * act'(y) formed while loading. 64x64 output tiles staged through workgroup
// memory in steps of 16 k, 16x16 threads with 4x4 outputs each (rows ly + 16r, columns
// lx + 16c, so that neighbouring threads read neighbouring words). wid.z is the K chunk: with
// p.split != 0 each chunk writes raw partial sums to out[chunk][m][n] and splitk_reduce adds
// them in chunk order (deterministic, no atomics), then the bias and activation.
// The 4x4 block is four named vec4 accumulators, updated inline in each kernel (the same
// seven lines three times, on purpose): written as an array behind a pointer into a helper
// function, the same kernels ran 27-30x slower on an NVIDIA H200 (Vulkan; 331 against 9,000+
// GFLOP/s). The tiles' rows are padded to 65 words, so that the loaders' transposing stores
// (k fastest in memory, row fastest in the tile) do not hit one memory bank 16 times.
//!include common

struct Params { m: u32, n: u32, k: u32, kc: u32, split: u32, _p0: u32, _p1: u32, _p2: u32 }

//!include act

const T: u32 = 64u;
const TK: u32 = 16u;
// tile row stride: T + 1 (see above)
const TP: u32 = 65u;
// S tile ts[kk][i] and P tile tp[kk][j]
var<workgroup> ts: array<f32, 1040>;
var<workgroup> tp: array<f32, 1040>;

@group(0) @binding(0) var<uniform> p: Params;

// The 4 S values (rows ly + 16r) and 4 P values (columns lx + 16c) a thread multiplies at kk.
fn s4(kk: u32, ly: u32) -> vec4<f32> {
    let b = kk * TP + ly;
    return vec4<f32>(ts[b], ts[b + 16u], ts[b + 32u], ts[b + 48u]);
}
fn p4(kk: u32, lx: u32) -> vec4<f32> {
    let b = kk * TP + lx;
    return vec4<f32>(tp[b], tp[b + 16u], tp[b + 32u], tp[b + 48u]);
}

// Tile loaders: element e of 1024 (thread li loads e = li + 256 q). Layout decides which index
// runs fastest so that a warp reads consecutive words.
fn rc_kfast(e: u32) -> vec2<u32> { return vec2<u32>(e / TK, e % TK); } // (row, kk), k contiguous
fn rc_rfast(e: u32) -> vec2<u32> { return vec2<u32>(e % T, e / T); }   // (row, kk), row contiguous

// ---------------------------------------------------------------------------------------------
// forward

@group(0) @binding(1) var<storage, read> fx: array<f32>;
@group(0) @binding(2) var<storage, read> fw: array<f32>;
@group(0) @binding(3) var<storage, read> fb: array<f32>;
@group(0) @binding(4) var<storage, read_write> fout: array<f32>;

@compute @workgroup_size(16, 16)
fn tiled_fwd(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let i0 = wid.y * T;
    let j0 = wid.x * T;
    let kb = wid.z * p.kc;
    let ke = min(kb + p.kc, p.k);
    let li = lid.y * 16u + lid.x;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = kb; k0 < ke; k0 += TK) {
        for (var q = 0u; q < 4u; q++) {
            let rk = rc_kfast(li + 256u * q);
            let k = k0 + rk.y;
            let kc = min(k, p.k - 1u);
            let i = i0 + rk.x;
            ts[rk.y * TP + rk.x] = select(0.0, fx[min(i, p.m - 1u) * p.k + kc], i < p.m && k < ke);
            let j = j0 + rk.x;
            tp[rk.y * TP + rk.x] = select(0.0, fw[min(j, p.n - 1u) * p.k + kc], j < p.n && k < ke);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let a = s4(kk, lid.y);
            let b = p4(kk, lid.x);
            acc0 += a.x * b;
            acc1 += a.y * b;
            acc2 += a.z * b;
            acc3 += a.w * b;
        }
        workgroupBarrier();
    }
    let part = wid.z * p.m * p.n;
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < 4u; r++) {
        let i = i0 + lid.y + 16u * r;
        for (var c = 0u; c < 4u; c++) {
            let j = j0 + lid.x + 16u * c;
            if (i < p.m && j < p.n) {
                let v = acc[r][c];
                fout[part + i * p.n + j] = select(act_fwd(v + fb[j]), v, p.split != 0u);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// backward_input

@group(0) @binding(1) var<storage, read> idy: array<f32>;
@group(0) @binding(2) var<storage, read> iy: array<f32>;
@group(0) @binding(3) var<storage, read> iw: array<f32>;
@group(0) @binding(4) var<storage, read_write> iout: array<f32>;

fn g_in(i: u32) -> f32 {
    if (ACT == 0u) { return idy[i]; }
    return idy[i] * act_grad(iy[i]);
}

@compute @workgroup_size(16, 16)
fn tiled_bin(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let i0 = wid.y * T;
    let j0 = wid.x * T;
    let kb = wid.z * p.kc;
    let ke = min(kb + p.kc, p.k);
    let li = lid.y * 16u + lid.x;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = kb; k0 < ke; k0 += TK) {
        for (var q = 0u; q < 4u; q++) {
            let e = li + 256u * q;
            let rs = rc_kfast(e);
            let ks = k0 + rs.y;
            let i = i0 + rs.x;
            ts[rs.y * TP + rs.x] = select(0.0, g_in(min(i, p.m - 1u) * p.k + min(ks, p.k - 1u)), i < p.m && ks < ke);
            let rp = rc_rfast(e);
            let kp = k0 + rp.y;
            let j = j0 + rp.x;
            tp[rp.y * TP + rp.x] = select(0.0, iw[min(kp, p.k - 1u) * p.n + min(j, p.n - 1u)], j < p.n && kp < ke);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let a = s4(kk, lid.y);
            let b = p4(kk, lid.x);
            acc0 += a.x * b;
            acc1 += a.y * b;
            acc2 += a.z * b;
            acc3 += a.w * b;
        }
        workgroupBarrier();
    }
    let part = wid.z * p.m * p.n;
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < 4u; r++) {
        let i = i0 + lid.y + 16u * r;
        for (var c = 0u; c < 4u; c++) {
            let j = j0 + lid.x + 16u * c;
            if (i < p.m && j < p.n) { iout[part + i * p.n + j] = acc[r][c]; }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// backward_weight (and the bias gradient: the x = 0 column of workgroups sums S over k)

@group(0) @binding(1) var<storage, read> wdy: array<f32>;
@group(0) @binding(2) var<storage, read> wy: array<f32>;
@group(0) @binding(3) var<storage, read> wx: array<f32>;
@group(0) @binding(4) var<storage, read_write> wout: array<f32>;
@group(0) @binding(5) var<storage, read_write> wdbo: array<f32>;

fn g_w(i: u32) -> f32 {
    if (ACT == 0u) { return wdy[i]; }
    return wdy[i] * act_grad(wy[i]);
}

@compute @workgroup_size(16, 16)
fn tiled_bw(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let i0 = wid.y * T;
    let j0 = wid.x * T;
    let kb = wid.z * p.kc;
    let ke = min(kb + p.kc, p.k);
    let li = lid.y * 16u + lid.x;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var dsum = vec4<f32>(0.0);
    for (var k0 = kb; k0 < ke; k0 += TK) {
        for (var q = 0u; q < 4u; q++) {
            let rk = rc_rfast(li + 256u * q);
            let k = k0 + rk.y;
            let kc = min(k, p.k - 1u);
            let i = i0 + rk.x;
            ts[rk.y * TP + rk.x] = select(0.0, g_w(kc * p.m + min(i, p.m - 1u)), i < p.m && k < ke);
            let j = j0 + rk.x;
            tp[rk.y * TP + rk.x] = select(0.0, wx[kc * p.n + min(j, p.n - 1u)], j < p.n && k < ke);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let a = s4(kk, lid.y);
            let b = p4(kk, lid.x);
            acc0 += a.x * b;
            acc1 += a.y * b;
            acc2 += a.z * b;
            acc3 += a.w * b;
        }
        if (wid.x == 0u && lid.x == 0u) {
            for (var kk = 0u; kk < TK; kk++) { dsum += s4(kk, lid.y); }
        }
        workgroupBarrier();
    }
    let part = wid.z * p.m * p.n;
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r = 0u; r < 4u; r++) {
        let i = i0 + lid.y + 16u * r;
        for (var c = 0u; c < 4u; c++) {
            let j = j0 + lid.x + 16u * c;
            if (i < p.m && j < p.n) { wout[part + i * p.n + j] = acc[r][c]; }
        }
        if (wid.x == 0u && lid.x == 0u && i < p.m) { wdbo[wid.z * p.m + i] = dsum[r]; }
    }
}

// ---------------------------------------------------------------------------------------------
// out[e] = sum over chunks c (in order) of part[c][e], then + bias[e % n] and act when asked.

struct RParams { len: u32, n: u32, chunks: u32, bias: u32 }
@group(0) @binding(0) var<uniform> rp: RParams;
@group(0) @binding(1) var<storage, read> rpart: array<f32>;
@group(0) @binding(2) var<storage, read> rbias: array<f32>;
@group(0) @binding(3) var<storage, read_write> rout: array<f32>;

@compute @workgroup_size(256)
fn splitk_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = linear_index(gid, nwg, 256u);
    if (e >= rp.len) { return; }
    var v = 0.0;
    for (var c = 0u; c < rp.chunks; c++) { v += rpart[c * rp.len + e]; }
    if (rp.bias != 0u) { v = act_fwd(v + rbias[e % rp.n]); }
    rout[e] = v;
}

// g = dy * act'(y), stored once before the register (CPU) kernels when there is an activation:
// on lavapipe each load is costly, and forming g inside the matmul loads two values per S.
struct GParams { len: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> gp: GParams;
@group(0) @binding(1) var<storage, read> gdy: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> gout: array<f32>;

@compute @workgroup_size(256)
fn form_g(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = linear_index(gid, nwg, 256u);
    if (e >= gp.len) { return; }
    gout[e] = gdy[e] * act_grad(gy[e]);
}

// form_g over vec4s (gp.len counts them) reading flat texture copies of dy and y
// (flat_texture.wgsl), for CPU adapters.
//!include flat_texture
@group(0) @binding(1) var gtdy: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var gty: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var<storage, read_write> gout4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn form_g4_tex(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = linear_index(gid, nwg, 256u);
    if (e >= gp.len) { return; }
    let at = flat_texel(e);
    let y = textureLoad(gty, at);
    gout4[e] = textureLoad(gtdy, at) * vec4<f32>(act_grad(y.x), act_grad(y.y), act_grad(y.z), act_grad(y.w));
}
