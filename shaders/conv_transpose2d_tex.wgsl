// conv_transpose2d.wgsl's 3x3 stride-2 software-adapter kernels (convt_s2k3_core.wgsl) reading
// their input from rgba32float texture copies, TW texels wide (texel i = vec4 i of the buffer):
// on llvmpipe (Mesa 22.3) a storage-buffer load costs about 4 ns per float whatever its width,
// a texel load about 3 ns for 4 floats, and these kernels are bound by their loads.
//!include conv_head_core

@group(0) @binding(1) var tx4: texture_2d<f32>;
@group(0) @binding(3) var txa4: texture_2d<f32>;

const TW: u32 = 4096u;
fn texel(i: u32) -> vec2<i32> { return vec2<i32>(i32(i % TW), i32(i / TW)); }

fn s_in4(i: u32) -> vec4<f32> {
    let x = textureLoad(tx4, texel(i), 0);
    if (GRAD_IN) {
        let a = textureLoad(txa4, texel(i), 0);
        return x * vec4<f32>(act_grad(a.x), act_grad(a.y), act_grad(a.z), act_grad(a.w));
    }
    return x;
}

//!include convt_s2k3_core
