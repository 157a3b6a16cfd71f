// Fused per-image quality metrics: MSE, PSNR, SSIM (scikit-image's defaults) and Gaussian SSIM
// (Wang et al. 2004), for a batch of images [n,1,h,w] of the original x and the reconstruction y.
//
// Pass 1 (metrics_partials): one invocation per (image, band of R output rows, block of K
// output columns). It walks down the input rows the band needs, computes the horizontal window
// sums for its K columns once per row, keeps the last 11 rows of them in registers (a ring of
// 11 slots, unrolled so every slot index is a constant) and adds each finished output row's
// SSIM values and squared errors into three partial sums. No barriers, no shared memory: the
// software adapter runs it as straight register code.
// Pass 2 (metrics_finish): one invocation per image sums the partials in a fixed order and
// writes [mse, psnr, ssim, ssim_gaussian].
//
// Numerics (f32 matching scikit-image's float64 within ~1e-7):
// - SSIM is computed from s = x + y and d = x - y instead of x and y:
//   2 ux uy = (us^2 - ud^2)/2, ux^2 + uy^2 = (us^2 + ud^2)/2,
//   2 vxy = (vs - vd)/2, vx + vy = (vs + vd)/2.
//   The contrast-structure term then depends on vs only through vd/(2 B2^2), which is small
//   when the distortion is mild, so the rounding error of vs = E[s^2] - E[s]^2 barely matters,
//   and vd is computed from the small values d.
// - s is shifted by a value sigma taken from the middle of the invocation's own tile, so the
//   sums of (s - sigma)^2 stay small where the image is smooth.
// - Window sums are direct sums (no running sums that drift); SSIM values are summed per row,
//   per block of 11 rows and then per invocation, so each sum adds few terms.
//
// Windows (both only where the whole window lies inside the image, which is why scikit-image's
// reflect padding never matters: it crops exactly the border whose windows would use it):
// - ssim: 7x7 uniform, sample covariance (x 49/48), mean over rows/cols [3, n-4].
// - ssim_gaussian: 11x11 separable Gaussian, sigma 1.5 (truncate 3.5 -> radius 5), population
//   covariance, mean over rows/cols [5, n-6].

struct Params {
    n: u32,      // images
    h: u32,
    w: u32,
    rows: u32,   // output rows per band (R)
    bands: u32,  // ceil(h / R)
    blocks: u32, // ceil(w / K)
    inf_bits: u32, // 0x7f800000: +inf for PSNR of identical images (no inf constants in WGSL)
    _p1: u32,
    // Gaussian taps g[0..11] (normalised in float64 on the host), in 3 vec4s.
    g: array<vec4<f32>, 3>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
// partials [n, bands * blocks, 3]: sum of squared errors, sum of SSIM, sum of Gaussian SSIM
@group(0) @binding(3) var<storage, read_write> part: array<f32>;

const K: u32 = 4u;          // output columns per invocation (the 4 `k` of the helpers below)
const WG: u32 = 64u;
const C1: f32 = 0.0001;     // (0.01 * data_range)^2, data_range 1
const C2: f32 = 0.0009;     // (0.03 * data_range)^2
const SAMPLE: f32 = 49.0 / 48.0;

fn gw(t: u32) -> f32 {
    return p.g[t / 4u][t % 4u];
}

// SSIM of one window from the means (us, ud) and the raw second moments (ms2 = E[(s-sigma)^2]
// around the shift, md2 = E[d^2]); es = E[s - sigma], cov = 1 or 49/48.
fn ssim_sd(es: f32, ud: f32, ms2: f32, md2: f32, sigma: f32, cov: f32) -> f32 {
    let us = es + sigma;
    let vs = cov * (ms2 - es * es);
    let vd = cov * (md2 - ud * ud);
    let us2 = us * us;
    let ud2 = ud * ud;
    let num = (0.5 * (us2 - ud2) + C1) * (0.5 * (vs - vd) + C2);
    let den = (0.5 * (us2 + ud2) + C1) * (0.5 * (vs + vd) + C2);
    return num / den;
}

struct Tile {
    img: u32,   // first element of the image
    r_lo: i32,  // first output row of the band
    r_hi: i32,  // one past the last output row
    c0: i32,    // first output column
    sigma: f32,
}

// Ring of horizontal window sums of the last 11 input rows, per slot and output column:
// Gaussian-weighted (g) and box (b) sums of (e, e^2, d, d^2), e = s - sigma.
// Every index below is a constant once the helpers are inlined (the main loop calls `step`
// with literal slots and no helper loops over an index), so the ring lives in registers:
// software adapters turn a dynamically indexed private array into slow per-lane memory.
struct Ring {
    g: array<array<vec4<f32>, 4>, 11>,
    b: array<array<vec4<f32>, 4>, 11>,
}

// (e, e^2, d, d^2) of input pixel (r, c), clamped into the image (clamped values only reach
// windows whose output is masked out).
fn quant(t: Tile, r: i32, c: i32) -> vec4<f32> {
    let rr = u32(clamp(r, 0, i32(p.h) - 1));
    let cc = u32(clamp(c, 0, i32(p.w) - 1));
    let i = t.img + rr * p.w + cc;
    let a = x[i];
    let b = y[i];
    let e = (a + b) - t.sigma;
    let d = a - b;
    return vec4<f32>(e, e * e, d, d * d);
}

// Horizontal Gaussian and box sums for output column k of the row held in q (14 positions,
// column c0 - 5 + j at j).
fn h_gauss(q: ptr<function, array<vec4<f32>, 14>>, k: u32) -> vec4<f32> {
    return gw(0u) * ((*q)[k] + (*q)[k + 10u]) + gw(1u) * ((*q)[k + 1u] + (*q)[k + 9u])
        + gw(2u) * ((*q)[k + 2u] + (*q)[k + 8u]) + gw(3u) * ((*q)[k + 3u] + (*q)[k + 7u])
        + gw(4u) * ((*q)[k + 4u] + (*q)[k + 6u]) + gw(5u) * (*q)[k + 5u];
}
fn h_box(q: ptr<function, array<vec4<f32>, 14>>, k: u32) -> vec4<f32> {
    return (*q)[k + 2u] + (*q)[k + 3u] + (*q)[k + 4u] + (*q)[k + 5u] + (*q)[k + 6u]
        + (*q)[k + 7u] + (*q)[k + 8u];
}

// Vertical sums for column k once `slot` holds the newest row: slot + 1 (mod 11) is the
// oldest of the 11, slot + 6 the output row.
fn v_gauss(ring: ptr<function, Ring>, slot: u32, k: u32) -> vec4<f32> {
    return gw(0u) * ((*ring).g[(slot + 1u) % 11u][k] + (*ring).g[slot][k])
        + gw(1u) * ((*ring).g[(slot + 2u) % 11u][k] + (*ring).g[(slot + 10u) % 11u][k])
        + gw(2u) * ((*ring).g[(slot + 3u) % 11u][k] + (*ring).g[(slot + 9u) % 11u][k])
        + gw(3u) * ((*ring).g[(slot + 4u) % 11u][k] + (*ring).g[(slot + 8u) % 11u][k])
        + gw(4u) * ((*ring).g[(slot + 5u) % 11u][k] + (*ring).g[(slot + 7u) % 11u][k])
        + gw(5u) * (*ring).g[(slot + 6u) % 11u][k];
}
fn v_box(ring: ptr<function, Ring>, slot: u32, k: u32) -> vec4<f32> {
    return (*ring).b[(slot + 3u) % 11u][k] + (*ring).b[(slot + 4u) % 11u][k]
        + (*ring).b[(slot + 5u) % 11u][k] + (*ring).b[(slot + 6u) % 11u][k]
        + (*ring).b[(slot + 7u) % 11u][k] + (*ring).b[(slot + 8u) % 11u][k]
        + (*ring).b[(slot + 9u) % 11u][k];
}

// Output pixel (ro, c0 + k): both SSIMs where their windows fit (x is left 0).
fn out_px(ring: ptr<function, Ring>, slot: u32, k: u32, t: Tile, ro: i32) -> vec3<f32> {
    let h = i32(p.h);
    let w = i32(p.w);
    let c = t.c0 + i32(k);
    var o = vec3<f32>(0.0);
    if (ro >= 3 && ro <= h - 4 && c >= 3 && c <= w - 4) {
        let v = v_box(ring, slot, k) * (1.0 / 49.0);
        o.y = ssim_sd(v.x, v.z, v.y, v.w, t.sigma, SAMPLE);
    }
    if (ro >= 5 && ro <= h - 6 && c >= 5 && c <= w - 6) {
        let v = v_gauss(ring, slot, k);
        o.z = ssim_sd(v.x, v.z, v.y, v.w, t.sigma, 1.0);
    }
    return o;
}

// Pushes input row r into ring slot `slot` and, once the ring holds rows r-10..r, returns
// output row r-5's sums (x: squared errors, y: SSIM, z: Gaussian SSIM).
fn step(ring: ptr<function, Ring>, slot: u32, t: Tile, r: i32) -> vec3<f32> {
    if (r >= t.r_hi + 5) {
        return vec3<f32>(0.0);
    }
    var q: array<vec4<f32>, 14>;
    let c = t.c0 - 5;
    q[0] = quant(t, r, c);
    q[1] = quant(t, r, c + 1);
    q[2] = quant(t, r, c + 2);
    q[3] = quant(t, r, c + 3);
    q[4] = quant(t, r, c + 4);
    q[5] = quant(t, r, c + 5);
    q[6] = quant(t, r, c + 6);
    q[7] = quant(t, r, c + 7);
    q[8] = quant(t, r, c + 8);
    q[9] = quant(t, r, c + 9);
    q[10] = quant(t, r, c + 10);
    q[11] = quant(t, r, c + 11);
    q[12] = quant(t, r, c + 12);
    q[13] = quant(t, r, c + 13);
    (*ring).g[slot][0] = h_gauss(&q, 0u);
    (*ring).g[slot][1] = h_gauss(&q, 1u);
    (*ring).g[slot][2] = h_gauss(&q, 2u);
    (*ring).g[slot][3] = h_gauss(&q, 3u);
    (*ring).b[slot][0] = h_box(&q, 0u);
    (*ring).b[slot][1] = h_box(&q, 1u);
    (*ring).b[slot][2] = h_box(&q, 2u);
    (*ring).b[slot][3] = h_box(&q, 3u);
    var o = vec3<f32>(0.0);
    // squared errors of this input row's own pixels (the tiles partition the image)
    if (r >= t.r_lo && r < t.r_hi) {
        let w = i32(p.w);
        o.x = select(0.0, q[5].w, t.c0 < w) + select(0.0, q[6].w, t.c0 + 1 < w)
            + select(0.0, q[7].w, t.c0 + 2 < w) + select(0.0, q[8].w, t.c0 + 3 < w);
    }
    let ro = r - 5;
    if (ro >= t.r_lo && ro < t.r_hi) {
        o += out_px(ring, slot, 0u, t, ro) + out_px(ring, slot, 1u, t, ro)
            + out_px(ring, slot, 2u, t, ro) + out_px(ring, slot, 3u, t, ro);
    }
    return o;
}

@compute @workgroup_size(64)
fn metrics_partials(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = gid.x + gid.y * nwg.x * WG;
    let per_img = p.bands * p.blocks;
    if (id >= p.n * per_img) {
        return;
    }
    let img = id / per_img;
    let tile = id % per_img;
    let band = tile / p.blocks;
    let blk = tile % p.blocks;
    var t: Tile;
    t.img = img * p.h * p.w;
    t.r_lo = i32(band * p.rows);
    t.r_hi = i32(min(band * p.rows + p.rows, p.h));
    t.c0 = i32(blk * K);
    // shift: s at the middle of the tile (any value works; a local one keeps sums small)
    t.sigma = 0.0;
    t.sigma = quant(t, (t.r_lo + t.r_hi) / 2, t.c0 + 2).x;

    var ring: Ring;
    var total = vec3<f32>(0.0);
    var r = t.r_lo - 5;
    loop {
        if (r >= t.r_hi + 5) {
            break;
        }
        // 11 rows per trip so each ring slot is a constant index
        var blk_acc = vec3<f32>(0.0);
        blk_acc += step(&ring, 0u, t, r);
        blk_acc += step(&ring, 1u, t, r + 1);
        blk_acc += step(&ring, 2u, t, r + 2);
        blk_acc += step(&ring, 3u, t, r + 3);
        blk_acc += step(&ring, 4u, t, r + 4);
        blk_acc += step(&ring, 5u, t, r + 5);
        blk_acc += step(&ring, 6u, t, r + 6);
        blk_acc += step(&ring, 7u, t, r + 7);
        blk_acc += step(&ring, 8u, t, r + 8);
        blk_acc += step(&ring, 9u, t, r + 9);
        blk_acc += step(&ring, 10u, t, r + 10);
        total += blk_acc;
        r += 11;
    }
    let o = id * 3u;
    part[o] = total.x;
    part[o + 1u] = total.y;
    part[o + 2u] = total.z;
}

// metrics_finish binds the partials at 1 and out [n, 4] (mse, psnr, ssim, ssim_gaussian) at 2;
// WGSL allows the same binding number for variables no entry point uses together.
@group(0) @binding(1) var<storage, read> fin_part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn metrics_finish(@builtin(global_invocation_id) gid: vec3<u32>) {
    let img = gid.x;
    if (img >= p.n) {
        return;
    }
    let per_img = p.bands * p.blocks;
    let base = img * per_img * 3u;
    // sums of 16 partials, then of those: few terms per addition, fixed order
    var total = vec3<f32>(0.0);
    for (var i0 = 0u; i0 < per_img; i0 += 16u) {
        var s = vec3<f32>(0.0);
        for (var i = i0; i < min(i0 + 16u, per_img); i++) {
            let o = base + i * 3u;
            s += vec3<f32>(fin_part[o], fin_part[o + 1u], fin_part[o + 2u]);
        }
        total += s;
    }
    let h = f32(p.h);
    let w = f32(p.w);
    let mse = total.x / (h * w);
    // 10 log10(1 / mse) = -10 log10(2) log2(mse)
    let psnr = select(bitcast<f32>(p.inf_bits), -3.0102999566398120 * log2(mse), mse > 0.0);
    let o = img * 4u;
    out[o] = mse;
    out[o + 1u] = psnr;
    out[o + 2u] = total.y / ((h - 6.0) * (w - 6.0));
    out[o + 3u] = total.z / ((h - 10.0) * (w - 10.0));
}
