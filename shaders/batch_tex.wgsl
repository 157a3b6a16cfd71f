// The batch gather (batch_core.wgsl) reading the faces through an rgba32uint texture over
// their buffer's own memory (gpu::alias, lavapipe): a texel load there costs about a quarter
// of a storage-buffer load, which llvmpipe runs lane by lane.
//!include batch_core
//!include flat_texture

@group(0) @binding(3) var data_t: texture_storage_2d<rgba32uint, read>;

fn face_quad(i: u32) -> vec4<u32> {
    return textureLoad(data_t, flat_texel(i));
}
