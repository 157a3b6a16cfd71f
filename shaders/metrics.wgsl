// Fused per-image quality metrics read from storage buffers: the Gaussian first pass (below),
// the box-only first pass (metrics_box_core.wgsl) and the finishing pass (metrics_core.wgsl),
// with their image loads. On CPU adapters the box-only pass reads textures (metrics_tex.wgsl).
//!include metrics_core
//!include metrics_box_core

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;

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

// s = x + y at pixel (r, c): the shift sigma
fn pixel_s(t: Tile, r: i32, c: i32) -> f32 {
    let i = t.img + u32(r) * p.w + u32(c);
    return x[i] + y[i];
}

// row r's quantities at columns c0 - 5 .. c0 + 20 (Gaussian pass) and c0 - 3 .. c0 + 34 (box)
fn row26(t: Tile, r: i32, q: ptr<function, array<vec4<f32>, 26>>) {
    let c = t.c0 - 5;
    (*q)[0] = quant(t, r, c + 0);
    (*q)[1] = quant(t, r, c + 1);
    (*q)[2] = quant(t, r, c + 2);
    (*q)[3] = quant(t, r, c + 3);
    (*q)[4] = quant(t, r, c + 4);
    (*q)[5] = quant(t, r, c + 5);
    (*q)[6] = quant(t, r, c + 6);
    (*q)[7] = quant(t, r, c + 7);
    (*q)[8] = quant(t, r, c + 8);
    (*q)[9] = quant(t, r, c + 9);
    (*q)[10] = quant(t, r, c + 10);
    (*q)[11] = quant(t, r, c + 11);
    (*q)[12] = quant(t, r, c + 12);
    (*q)[13] = quant(t, r, c + 13);
    (*q)[14] = quant(t, r, c + 14);
    (*q)[15] = quant(t, r, c + 15);
    (*q)[16] = quant(t, r, c + 16);
    (*q)[17] = quant(t, r, c + 17);
    (*q)[18] = quant(t, r, c + 18);
    (*q)[19] = quant(t, r, c + 19);
    (*q)[20] = quant(t, r, c + 20);
    (*q)[21] = quant(t, r, c + 21);
    (*q)[22] = quant(t, r, c + 22);
    (*q)[23] = quant(t, r, c + 23);
    (*q)[24] = quant(t, r, c + 24);
    (*q)[25] = quant(t, r, c + 25);
}
// 4 pixels of row r of x or y, columns c0 - 4 + 4i .. c0 - 1 + 4i, the row and each column
// clamped into the image (the box-only pass's loads)
fn texel_x(t: Tile, r: i32, i: i32) -> vec4<f32> {
    let row = t.img + u32(clamp(r, 0, i32(p.h) - 1)) * p.w;
    let c = t.c0 - 4 + 4 * i;
    let wl = i32(p.w) - 1;
    return vec4<f32>(x[row + u32(clamp(c, 0, wl))], x[row + u32(clamp(c + 1, 0, wl))],
        x[row + u32(clamp(c + 2, 0, wl))], x[row + u32(clamp(c + 3, 0, wl))]);
}
fn texel_y(t: Tile, r: i32, i: i32) -> vec4<f32> {
    let row = t.img + u32(clamp(r, 0, i32(p.h) - 1)) * p.w;
    let c = t.c0 - 4 + 4 * i;
    let wl = i32(p.w) - 1;
    return vec4<f32>(y[row + u32(clamp(c, 0, wl))], y[row + u32(clamp(c + 1, 0, wl))],
        y[row + u32(clamp(c + 2, 0, wl))], y[row + u32(clamp(c + 3, 0, wl))]);
}

// Ring of horizontal window sums of the last 11 input rows, per slot and output column:
// Gaussian-weighted (g) and box (b) sums of (e, e^2, d, d^2), e = s - sigma.
// Every index below is a constant once the helpers are inlined (the main loop calls `step`
// with literal slots and no helper loops over an index), so the ring lives in registers:
// software adapters turn a dynamically indexed private array into slow per-lane memory.
struct Ring {
    g: array<array<vec4<f32>, 16>, 11>,
    b: array<array<vec4<f32>, 16>, 11>,
}

// Horizontal Gaussian and box sums for output column k of the row held in q (18 positions,
// column c0 - 5 + j at j).
fn h_gauss(q: ptr<function, array<vec4<f32>, 26>>, k: u32) -> vec4<f32> {
    return gw(0u) * ((*q)[k] + (*q)[k + 10u]) + gw(1u) * ((*q)[k + 1u] + (*q)[k + 9u])
        + gw(2u) * ((*q)[k + 2u] + (*q)[k + 8u]) + gw(3u) * ((*q)[k + 3u] + (*q)[k + 7u])
        + gw(4u) * ((*q)[k + 4u] + (*q)[k + 6u]) + gw(5u) * (*q)[k + 5u];
}
fn h_box(q: ptr<function, array<vec4<f32>, 26>>, k: u32) -> vec4<f32> {
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
    var q: array<vec4<f32>, 26>;
    row26(t, r, &q);
    (*ring).g[slot][0] = h_gauss(&q, 0u);
    (*ring).g[slot][1] = h_gauss(&q, 1u);
    (*ring).g[slot][2] = h_gauss(&q, 2u);
    (*ring).g[slot][3] = h_gauss(&q, 3u);
    (*ring).g[slot][4] = h_gauss(&q, 4u);
    (*ring).g[slot][5] = h_gauss(&q, 5u);
    (*ring).g[slot][6] = h_gauss(&q, 6u);
    (*ring).g[slot][7] = h_gauss(&q, 7u);
    (*ring).g[slot][8] = h_gauss(&q, 8u);
    (*ring).g[slot][9] = h_gauss(&q, 9u);
    (*ring).g[slot][10] = h_gauss(&q, 10u);
    (*ring).g[slot][11] = h_gauss(&q, 11u);
    (*ring).g[slot][12] = h_gauss(&q, 12u);
    (*ring).g[slot][13] = h_gauss(&q, 13u);
    (*ring).g[slot][14] = h_gauss(&q, 14u);
    (*ring).g[slot][15] = h_gauss(&q, 15u);
    (*ring).b[slot][0] = h_box(&q, 0u);
    (*ring).b[slot][1] = h_box(&q, 1u);
    (*ring).b[slot][2] = h_box(&q, 2u);
    (*ring).b[slot][3] = h_box(&q, 3u);
    (*ring).b[slot][4] = h_box(&q, 4u);
    (*ring).b[slot][5] = h_box(&q, 5u);
    (*ring).b[slot][6] = h_box(&q, 6u);
    (*ring).b[slot][7] = h_box(&q, 7u);
    (*ring).b[slot][8] = h_box(&q, 8u);
    (*ring).b[slot][9] = h_box(&q, 9u);
    (*ring).b[slot][10] = h_box(&q, 10u);
    (*ring).b[slot][11] = h_box(&q, 11u);
    (*ring).b[slot][12] = h_box(&q, 12u);
    (*ring).b[slot][13] = h_box(&q, 13u);
    (*ring).b[slot][14] = h_box(&q, 14u);
    (*ring).b[slot][15] = h_box(&q, 15u);
    var o = vec3<f32>(0.0);
    // squared errors of this input row's own pixels (the tiles partition the image)
    if (r >= t.r_lo && r < t.r_hi) {
        let w = i32(p.w);
        o.x = select(0.0, q[5].w, t.c0 + 0 < w)
            + select(0.0, q[6].w, t.c0 + 1 < w)
            + select(0.0, q[7].w, t.c0 + 2 < w)
            + select(0.0, q[8].w, t.c0 + 3 < w)
            + select(0.0, q[9].w, t.c0 + 4 < w)
            + select(0.0, q[10].w, t.c0 + 5 < w)
            + select(0.0, q[11].w, t.c0 + 6 < w)
            + select(0.0, q[12].w, t.c0 + 7 < w)
            + select(0.0, q[13].w, t.c0 + 8 < w)
            + select(0.0, q[14].w, t.c0 + 9 < w)
            + select(0.0, q[15].w, t.c0 + 10 < w)
            + select(0.0, q[16].w, t.c0 + 11 < w)
            + select(0.0, q[17].w, t.c0 + 12 < w)
            + select(0.0, q[18].w, t.c0 + 13 < w)
            + select(0.0, q[19].w, t.c0 + 14 < w)
            + select(0.0, q[20].w, t.c0 + 15 < w);
    }
    let ro = r - 5;
    if (ro >= t.r_lo && ro < t.r_hi) {
        o += out_px(ring, slot, 0u, t, ro)
            + out_px(ring, slot, 1u, t, ro)
            + out_px(ring, slot, 2u, t, ro)
            + out_px(ring, slot, 3u, t, ro)
            + out_px(ring, slot, 4u, t, ro)
            + out_px(ring, slot, 5u, t, ro)
            + out_px(ring, slot, 6u, t, ro)
            + out_px(ring, slot, 7u, t, ro)
            + out_px(ring, slot, 8u, t, ro)
            + out_px(ring, slot, 9u, t, ro)
            + out_px(ring, slot, 10u, t, ro)
            + out_px(ring, slot, 11u, t, ro)
            + out_px(ring, slot, 12u, t, ro)
            + out_px(ring, slot, 13u, t, ro)
            + out_px(ring, slot, 14u, t, ro)
            + out_px(ring, slot, 15u, t, ro);
    }
    return o;
}

@compute @workgroup_size(64)
fn metrics_partials(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = gid.x + gid.y * nwg.x * WG;
    if (id >= p.n * p.bands * p.blocks) {
        return;
    }
    let t = tile_of(id, K);

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

