// The box-only metrics pass (metrics_box_core.wgsl) reading textures: the batch is copied into
// two rgba32float 2D-array textures (a layer per image, 4 pixels per texel) bound as read-only
// storage textures. On CPU adapters (Mesa 22's llvmpipe) a texel load of 4 floats costs less
// than one storage-buffer float load, and this pass is bound by its loads (see src/ops/metrics.rs).
//!include metrics_core
//!include metrics_box_core

@group(0) @binding(1) var tx: texture_storage_2d_array<rgba32float, read>;
@group(0) @binding(2) var ty: texture_storage_2d_array<rgba32float, read>;

// (e, e^2, d, d^2) of one pixel from its two values
fn quant(t: Tile, a: f32, b: f32) -> vec4<f32> {
    let e = (a + b) - t.sigma;
    let d = a - b;
    return vec4<f32>(e, e * e, d, d * d);
}

// s = x + y at pixel (r, c): the shift sigma
fn pixel_s(t: Tile, r: i32, c: i32) -> f32 {
    let v = vec2<i32>(c / 4, r);
    let k = u32(c % 4);
    return textureLoad(tx, v, t.layer)[k] + textureLoad(ty, v, t.layer)[k];
}

// row r's quantities at columns c0 - 3 .. c0 + 34,
// from the texels that hold them (columns clamped into the image as in metrics.wgsl: clamped
// values only reach masked-out windows)
fn row38(t: Tile, r: i32, q: ptr<function, array<vec4<f32>, 38>>) {
    let rr = clamp(r, 0, i32(p.h) - 1);
    let wl = i32(p.w / 4u) - 1;
    let c4 = t.c0 / 4 - 1;
    let x0 = textureLoad(tx, vec2<i32>(clamp(c4 + 0, 0, wl), rr), t.layer);
    let y0 = textureLoad(ty, vec2<i32>(clamp(c4 + 0, 0, wl), rr), t.layer);
    let x1 = textureLoad(tx, vec2<i32>(clamp(c4 + 1, 0, wl), rr), t.layer);
    let y1 = textureLoad(ty, vec2<i32>(clamp(c4 + 1, 0, wl), rr), t.layer);
    let x2 = textureLoad(tx, vec2<i32>(clamp(c4 + 2, 0, wl), rr), t.layer);
    let y2 = textureLoad(ty, vec2<i32>(clamp(c4 + 2, 0, wl), rr), t.layer);
    let x3 = textureLoad(tx, vec2<i32>(clamp(c4 + 3, 0, wl), rr), t.layer);
    let y3 = textureLoad(ty, vec2<i32>(clamp(c4 + 3, 0, wl), rr), t.layer);
    let x4 = textureLoad(tx, vec2<i32>(clamp(c4 + 4, 0, wl), rr), t.layer);
    let y4 = textureLoad(ty, vec2<i32>(clamp(c4 + 4, 0, wl), rr), t.layer);
    let x5 = textureLoad(tx, vec2<i32>(clamp(c4 + 5, 0, wl), rr), t.layer);
    let y5 = textureLoad(ty, vec2<i32>(clamp(c4 + 5, 0, wl), rr), t.layer);
    let x6 = textureLoad(tx, vec2<i32>(clamp(c4 + 6, 0, wl), rr), t.layer);
    let y6 = textureLoad(ty, vec2<i32>(clamp(c4 + 6, 0, wl), rr), t.layer);
    let x7 = textureLoad(tx, vec2<i32>(clamp(c4 + 7, 0, wl), rr), t.layer);
    let y7 = textureLoad(ty, vec2<i32>(clamp(c4 + 7, 0, wl), rr), t.layer);
    let x8 = textureLoad(tx, vec2<i32>(clamp(c4 + 8, 0, wl), rr), t.layer);
    let y8 = textureLoad(ty, vec2<i32>(clamp(c4 + 8, 0, wl), rr), t.layer);
    let x9 = textureLoad(tx, vec2<i32>(clamp(c4 + 9, 0, wl), rr), t.layer);
    let y9 = textureLoad(ty, vec2<i32>(clamp(c4 + 9, 0, wl), rr), t.layer);
    (*q)[0] = quant(t, x0.y, y0.y);
    (*q)[1] = quant(t, x0.z, y0.z);
    (*q)[2] = quant(t, x0.w, y0.w);
    (*q)[3] = quant(t, x1.x, y1.x);
    (*q)[4] = quant(t, x1.y, y1.y);
    (*q)[5] = quant(t, x1.z, y1.z);
    (*q)[6] = quant(t, x1.w, y1.w);
    (*q)[7] = quant(t, x2.x, y2.x);
    (*q)[8] = quant(t, x2.y, y2.y);
    (*q)[9] = quant(t, x2.z, y2.z);
    (*q)[10] = quant(t, x2.w, y2.w);
    (*q)[11] = quant(t, x3.x, y3.x);
    (*q)[12] = quant(t, x3.y, y3.y);
    (*q)[13] = quant(t, x3.z, y3.z);
    (*q)[14] = quant(t, x3.w, y3.w);
    (*q)[15] = quant(t, x4.x, y4.x);
    (*q)[16] = quant(t, x4.y, y4.y);
    (*q)[17] = quant(t, x4.z, y4.z);
    (*q)[18] = quant(t, x4.w, y4.w);
    (*q)[19] = quant(t, x5.x, y5.x);
    (*q)[20] = quant(t, x5.y, y5.y);
    (*q)[21] = quant(t, x5.z, y5.z);
    (*q)[22] = quant(t, x5.w, y5.w);
    (*q)[23] = quant(t, x6.x, y6.x);
    (*q)[24] = quant(t, x6.y, y6.y);
    (*q)[25] = quant(t, x6.z, y6.z);
    (*q)[26] = quant(t, x6.w, y6.w);
    (*q)[27] = quant(t, x7.x, y7.x);
    (*q)[28] = quant(t, x7.y, y7.y);
    (*q)[29] = quant(t, x7.z, y7.z);
    (*q)[30] = quant(t, x7.w, y7.w);
    (*q)[31] = quant(t, x8.x, y8.x);
    (*q)[32] = quant(t, x8.y, y8.y);
    (*q)[33] = quant(t, x8.z, y8.z);
    (*q)[34] = quant(t, x8.w, y8.w);
    (*q)[35] = quant(t, x9.x, y9.x);
    (*q)[36] = quant(t, x9.y, y9.y);
    (*q)[37] = quant(t, x9.z, y9.z);
}
