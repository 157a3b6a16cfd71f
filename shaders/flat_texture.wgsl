// Flat texture copies (Recorder::flat_texture on the host): a buffer's floats in an rgba32float
// 2D texture FLAT_W texels wide, texel i holding floats 4i .. 4i + 3. CPU adapters read those
// instead of storage buffers: on llvmpipe (Mesa 22.3) a storage-buffer load costs about 4 ns per
// float whatever its width, a texel load about 3 ns for 4 floats.
const FLAT_W: u32 = 4096u; // = FLAT_TEXTURE_WIDTH in src/gpu/kernels.rs

fn flat_texel(i: u32) -> vec2<i32> {
    return vec2<i32>(i32(i % FLAT_W), i32(i / FLAT_W));
}
