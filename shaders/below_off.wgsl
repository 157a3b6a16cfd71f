// below.wgsl's names for kernel files that recompute nothing: BMASK false, and stubs for the
// functions that only convt_s2k3_loss_wgrad_cpu calls (run from the *_below files alone).
const BMASK: bool = false;

fn below_mask(item: u32) -> vec4<u32> {
    return vec4<u32>(0u);
}

struct BelowIn4 {
    x: f32,
}

fn below_in4(n: u32, r: u32, q: u32, h: u32, wq: u32) -> BelowIn4 {
    return BelowIn4(0.0);
}

struct BelowOut {
    r0a: vec4<f32>,
    r0b: vec4<f32>,
    r1a: vec4<f32>,
    r1b: vec4<f32>,
    r2a: vec4<f32>,
    r2b: vec4<f32>,
    c: vec3<f32>,
}

fn below_out(x: BelowIn4, co: u32, bco: u32) -> BelowOut {
    let z = vec4<f32>(0.0);
    return BelowOut(z, z, z, z, z, z, vec3<f32>(0.0));
}
