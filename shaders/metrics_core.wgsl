// Fused per-image quality metrics: MSE, PSNR, SSIM (scikit-image's defaults) and Gaussian SSIM
// (Wang et al. 2004), for a batch of images [n,1,h,w] of the original x and the reconstruction y.
//
// Files: metrics_core.wgsl (this: parameters, the SSIM formula, the finishing pass),
// metrics_box_core.wgsl (the box-only first pass), metrics.wgsl (the Gaussian first pass and
// the image loads from storage buffers) and metrics_tex.wgsl (the box-only pass's loads from
// textures, which CPU adapters read several times faster; see src/ops/metrics.rs). The
// kernels call row26 / texel_x / texel_y / pixel_s, which the including file defines.
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
// - The Gaussian pass's window sums are direct sums (no running sums that drift); the box
//   pass carries its vertical sums down at most 16 rows before summing them afresh (drift of a
//   few roundings, ~1e-7 in SSIM, within the tests' 2e-6). SSIM values are summed per row, per
//   block of rows and then per invocation, so each sum adds few terms.
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
    gauss: u32,    // 1: the partials hold Gaussian SSIM sums; 0: write NaN (box-only pass)
    // Gaussian taps g[0..11] (normalised in float64 on the host), in 3 vec4s.
    g: array<vec4<f32>, 3>,
}

@group(0) @binding(0) var<uniform> p: Params;
// partials [n, bands * blocks, 3]: sum of squared errors, sum of SSIM, sum of Gaussian SSIM
@group(0) @binding(3) var<storage, read_write> part: array<f32>;

const K: u32 = 16u;         // output columns per invocation (the 16 unrolled `k` in step)
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
    layer: u32, // the image's index in the batch
    img: u32,   // its first element
    r_lo: i32,  // first output row of the band
    r_hi: i32,  // one past the last output row
    c0: i32,    // first output column
    sigma: f32,
}

// Invocation id's tile: image, band of p.rows output rows, block of k output columns, and the
// shift sigma = s at its middle (any value works; a local one keeps the sums small).
fn tile_of(id: u32, k: u32) -> Tile {
    let per_img = p.bands * p.blocks;
    let img = id / per_img;
    let band = (id % per_img) / p.blocks;
    let blk = (id % per_img) % p.blocks;
    var t: Tile;
    t.layer = img;
    t.img = img * p.h * p.w;
    t.r_lo = i32(band * p.rows);
    t.r_hi = i32(min(band * p.rows + p.rows, p.h));
    t.c0 = i32(blk * k);
    t.sigma = pixel_s(t, (t.r_lo + t.r_hi) / 2, t.c0 + i32(k / 2u));
    return t;
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
    out[o + 3u] = select(bitcast<f32>(0x7fc00000u), total.z / ((h - 10.0) * (w - 10.0)), p.gauss != 0u);
}
