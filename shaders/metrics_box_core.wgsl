// The box-only first pass of the fused metrics (MSE and the 7x7 SSIM, no Gaussian SSIM): the
// 7-row version of metrics.wgsl's metrics_partials, 32 columns per invocation, the running
// horizontal sum. Its image loads (row38, pixel_s) come from the including file.
//!include metrics_core

const KB: u32 = 32u; // output columns per invocation (the unrolled k below)
struct BoxRing {
    b: array<array<vec4<f32>, 32>, 7>,
}
fn box_step(ring: ptr<function, BoxRing>, slot: u32, t: Tile, r: i32) -> vec2<f32> {
    if (r >= t.r_hi + 3) {
        return vec2<f32>(0.0);
    }
    var q: array<vec4<f32>, 38>;
    row38(t, r, &q);
    var hs = q[0] + q[1] + q[2] + q[3] + q[4] + q[5] + q[6];
    (*ring).b[slot][0] = hs;
    hs += q[7] - q[0];
    (*ring).b[slot][1] = hs;
    hs += q[8] - q[1];
    (*ring).b[slot][2] = hs;
    hs += q[9] - q[2];
    (*ring).b[slot][3] = hs;
    hs += q[10] - q[3];
    (*ring).b[slot][4] = hs;
    hs += q[11] - q[4];
    (*ring).b[slot][5] = hs;
    hs += q[12] - q[5];
    (*ring).b[slot][6] = hs;
    hs += q[13] - q[6];
    (*ring).b[slot][7] = hs;
    hs += q[14] - q[7];
    (*ring).b[slot][8] = hs;
    hs += q[15] - q[8];
    (*ring).b[slot][9] = hs;
    hs += q[16] - q[9];
    (*ring).b[slot][10] = hs;
    hs += q[17] - q[10];
    (*ring).b[slot][11] = hs;
    hs += q[18] - q[11];
    (*ring).b[slot][12] = hs;
    hs += q[19] - q[12];
    (*ring).b[slot][13] = hs;
    hs += q[20] - q[13];
    (*ring).b[slot][14] = hs;
    hs += q[21] - q[14];
    (*ring).b[slot][15] = hs;
    hs += q[22] - q[15];
    (*ring).b[slot][16] = hs;
    hs += q[23] - q[16];
    (*ring).b[slot][17] = hs;
    hs += q[24] - q[17];
    (*ring).b[slot][18] = hs;
    hs += q[25] - q[18];
    (*ring).b[slot][19] = hs;
    hs += q[26] - q[19];
    (*ring).b[slot][20] = hs;
    hs += q[27] - q[20];
    (*ring).b[slot][21] = hs;
    hs += q[28] - q[21];
    (*ring).b[slot][22] = hs;
    hs += q[29] - q[22];
    (*ring).b[slot][23] = hs;
    hs += q[30] - q[23];
    (*ring).b[slot][24] = hs;
    hs += q[31] - q[24];
    (*ring).b[slot][25] = hs;
    hs += q[32] - q[25];
    (*ring).b[slot][26] = hs;
    hs += q[33] - q[26];
    (*ring).b[slot][27] = hs;
    hs += q[34] - q[27];
    (*ring).b[slot][28] = hs;
    hs += q[35] - q[28];
    (*ring).b[slot][29] = hs;
    hs += q[36] - q[29];
    (*ring).b[slot][30] = hs;
    hs += q[37] - q[30];
    (*ring).b[slot][31] = hs;
    var o = vec2<f32>(0.0);
    if (r >= t.r_lo && r < t.r_hi) {
        let w = i32(p.w);
        o.x = select(0.0, q[3].w, t.c0 + 0 < w)
            + select(0.0, q[4].w, t.c0 + 1 < w)
            + select(0.0, q[5].w, t.c0 + 2 < w)
            + select(0.0, q[6].w, t.c0 + 3 < w)
            + select(0.0, q[7].w, t.c0 + 4 < w)
            + select(0.0, q[8].w, t.c0 + 5 < w)
            + select(0.0, q[9].w, t.c0 + 6 < w)
            + select(0.0, q[10].w, t.c0 + 7 < w)
            + select(0.0, q[11].w, t.c0 + 8 < w)
            + select(0.0, q[12].w, t.c0 + 9 < w)
            + select(0.0, q[13].w, t.c0 + 10 < w)
            + select(0.0, q[14].w, t.c0 + 11 < w)
            + select(0.0, q[15].w, t.c0 + 12 < w)
            + select(0.0, q[16].w, t.c0 + 13 < w)
            + select(0.0, q[17].w, t.c0 + 14 < w)
            + select(0.0, q[18].w, t.c0 + 15 < w)
            + select(0.0, q[19].w, t.c0 + 16 < w)
            + select(0.0, q[20].w, t.c0 + 17 < w)
            + select(0.0, q[21].w, t.c0 + 18 < w)
            + select(0.0, q[22].w, t.c0 + 19 < w)
            + select(0.0, q[23].w, t.c0 + 20 < w)
            + select(0.0, q[24].w, t.c0 + 21 < w)
            + select(0.0, q[25].w, t.c0 + 22 < w)
            + select(0.0, q[26].w, t.c0 + 23 < w)
            + select(0.0, q[27].w, t.c0 + 24 < w)
            + select(0.0, q[28].w, t.c0 + 25 < w)
            + select(0.0, q[29].w, t.c0 + 26 < w)
            + select(0.0, q[30].w, t.c0 + 27 < w)
            + select(0.0, q[31].w, t.c0 + 28 < w)
            + select(0.0, q[32].w, t.c0 + 29 < w)
            + select(0.0, q[33].w, t.c0 + 30 < w)
            + select(0.0, q[34].w, t.c0 + 31 < w);
    }
    let ro = r - 3;
    if (ro >= t.r_lo && ro < t.r_hi && ro >= 3 && ro <= i32(p.h) - 4) {
        o.y += box_px(ring, 0u, t);
        o.y += box_px(ring, 1u, t);
        o.y += box_px(ring, 2u, t);
        o.y += box_px(ring, 3u, t);
        o.y += box_px(ring, 4u, t);
        o.y += box_px(ring, 5u, t);
        o.y += box_px(ring, 6u, t);
        o.y += box_px(ring, 7u, t);
        o.y += box_px(ring, 8u, t);
        o.y += box_px(ring, 9u, t);
        o.y += box_px(ring, 10u, t);
        o.y += box_px(ring, 11u, t);
        o.y += box_px(ring, 12u, t);
        o.y += box_px(ring, 13u, t);
        o.y += box_px(ring, 14u, t);
        o.y += box_px(ring, 15u, t);
        o.y += box_px(ring, 16u, t);
        o.y += box_px(ring, 17u, t);
        o.y += box_px(ring, 18u, t);
        o.y += box_px(ring, 19u, t);
        o.y += box_px(ring, 20u, t);
        o.y += box_px(ring, 21u, t);
        o.y += box_px(ring, 22u, t);
        o.y += box_px(ring, 23u, t);
        o.y += box_px(ring, 24u, t);
        o.y += box_px(ring, 25u, t);
        o.y += box_px(ring, 26u, t);
        o.y += box_px(ring, 27u, t);
        o.y += box_px(ring, 28u, t);
        o.y += box_px(ring, 29u, t);
        o.y += box_px(ring, 30u, t);
        o.y += box_px(ring, 31u, t);
    }
    return o;
}
fn box_px(ring: ptr<function, BoxRing>, k: u32, t: Tile) -> f32 {
    let c = t.c0 + i32(k);
    if (c < 3 || c > i32(p.w) - 4) {
        return 0.0;
    }
    let v = (((*ring).b[0][k] + (*ring).b[1][k]) + ((*ring).b[2][k] + (*ring).b[3][k]) + (((*ring).b[4][k] + (*ring).b[5][k]) + (*ring).b[6][k])) * (1.0 / 49.0);
    return ssim_sd(v.x, v.z, v.y, v.w, t.sigma, SAMPLE);
}
@compute @workgroup_size(64)
fn metrics_partials_box(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = gid.x + gid.y * nwg.x * WG;
    if (id >= p.n * p.bands * p.blocks) {
        return;
    }
    let t = tile_of(id, KB);

    var ring: BoxRing;
    var total = vec2<f32>(0.0);
    var r = t.r_lo - 3;
    loop {
        if (r >= t.r_hi + 3) {
            break;
        }

        var blk_acc = vec2<f32>(0.0);

        blk_acc += box_step(&ring, 0u, t, r + 0);
        blk_acc += box_step(&ring, 1u, t, r + 1);
        blk_acc += box_step(&ring, 2u, t, r + 2);
        blk_acc += box_step(&ring, 3u, t, r + 3);
        blk_acc += box_step(&ring, 4u, t, r + 4);
        blk_acc += box_step(&ring, 5u, t, r + 5);
        blk_acc += box_step(&ring, 6u, t, r + 6);
        total += blk_acc;
        r += 7;
    }
    let o = id * 3u;
    part[o] = total.x;
    part[o + 1u] = total.y;
    part[o + 2u] = 0.0;
}

