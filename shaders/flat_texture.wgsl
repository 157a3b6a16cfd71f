// Flat texture copies (Recorder::flat_texture on the host): a buffer's floats in an rgba32float
// 2D texture FLAT_W texels wide, texel i holding floats 4i .. 4i + 3, bound as a read-only
// storage texture. CPU adapters read those instead of storage buffers: on llvmpipe (Mesa 22.3) a
// storage-buffer load costs about 4 ns per float whatever its width, a storage-texture load
// 0.6-1.3 ns for 4 floats (a sampled texture's textureLoad 1.4-1.9: it looks up the mip level's
// offsets lane by lane).
const FLAT_W: u32 = 4096u; // = FLAT_TEXTURE_WIDTH in src/gpu/kernels.rs

fn flat_texel(i: u32) -> vec2<i32> {
    return vec2<i32>(i32(i % FLAT_W), i32(i / FLAT_W));
}
