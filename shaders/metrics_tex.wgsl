// The box-only metrics pass (metrics_box_core.wgsl) reading textures: the batch is copied into
// two rgba32float 2D-array textures (a layer per image, 4 pixels per texel) bound as read-only
// storage textures. On CPU adapters (Mesa 22's llvmpipe) a texel load of 4 floats costs less
// than one storage-buffer float load, and this pass is bound by its loads (see src/ops/metrics.rs).
//!include metrics_core
//!include metrics_box_core

@group(0) @binding(1) var tx: texture_storage_2d_array<rgba32float, read>;
@group(0) @binding(2) var ty: texture_storage_2d_array<rgba32float, read>;

// s = x + y at pixel (r, c): the shift sigma
fn pixel_s(t: Tile, r: i32, c: i32) -> f32 {
    let v = vec2<i32>(c / 4, r);
    let k = u32(c % 4);
    return textureLoad(tx, v, t.layer)[k] + textureLoad(ty, v, t.layer)[k];
}

// Texel i (pixels c0 - 4 + 4i .. c0 - 1 + 4i) of row r of x or y, the row and texel clamped into
// the image (clamped values only reach masked-out windows)
fn texel_x(t: Tile, r: i32, i: i32) -> vec4<f32> {
    let v = vec2<i32>(clamp(t.c0 / 4 - 1 + i, 0, i32(p.w / 4u) - 1), clamp(r, 0, i32(p.h) - 1));
    return textureLoad(tx, v, t.layer);
}
fn texel_y(t: Tile, r: i32, i: i32) -> vec4<f32> {
    let v = vec2<i32>(clamp(t.c0 / 4 - 1 + i, 0, i32(p.w / 4u) - 1), clamp(r, 0, i32(p.h) - 1));
    return textureLoad(ty, v, t.layer);
}
