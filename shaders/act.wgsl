// The activation a layer's kernels fuse, shared with `//!include act`. ACT is an override
// constant set per pipeline: 0 none, 1 relu, 2 sigmoid.
override ACT: u32 = 0u;

fn act_fwd(v: f32) -> f32 {
    if (ACT == 1u) { return max(v, 0.0); }
    if (ACT == 2u) { return 1.0 / (1.0 + exp(-v)); }
    return v;
}

// act' from the activation's output y: relu' = [y > 0], sigmoid' = y (1 - y)
fn act_grad(y: f32) -> f32 {
    return act_grad_code(ACT, y);
}

// act' of the activation with code `code` (same codes as ACT), for kernels that apply a second
// activation's derivative (OUT_ACT in conv_head_core.wgsl)
fn act_grad_code(code: u32, y: f32) -> f32 {
    if (code == 1u) { return select(0.0, 1.0, y > 0.0); }
    if (code == 2u) { return y * (1.0 - y); }
    return 1.0;
}

fn act_grad4_code(code: u32, y: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(act_grad_code(code, y.x), act_grad_code(code, y.y), act_grad_code(code, y.z), act_grad_code(code, y.w));
}
