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
    if (ACT == 1u) { return select(0.0, 1.0, y > 0.0); }
    if (ACT == 2u) { return y * (1.0 - y); }
    return 1.0;
}
