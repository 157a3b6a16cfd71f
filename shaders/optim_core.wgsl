// Adam / AdamW with PyTorch's update rule (torch.optim.Adam / AdamW, amsgrad off), plus an L1
// (elastic-net) term in the gradient: the parameters and the update of 4 weights. The step t
// and the learning rate come from the StepState buffer so a recorded training step replays
// unchanged. The kernels that call adam_update are in optim.wgsl (reading storage buffers) and
// optim_tex.wgsl (reading texture copies, for CPU adapters).
//!include common
//!include step

struct Params {
    n: u32,
    decoupled: u32,   // 1: AdamW (w *= 1 - lr wd first); 0: Adam (g += wd w)
    beta2: f32,
    omb1: f32,        // 1 - beta1, computed in float64 on the host
    omb2: f32,        // 1 - beta2
    eps: f32,
    wd: f32,
    l1: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(5) var<storage, read> st: StepState;

const WG: u32 = 256u;

// 1 - (1 - c)^t by binary powering with c(a + b) = c(a) + c(b) (1 - c(a)): only products and
// sums of positive terms, so it stays accurate to a few ulp even where 1 - beta2^t is ~1e-3
// (pow and exp/log lose most digits there, and GPU log is only absolutely accurate near 1).
fn one_minus_pow(c: f32, t: u32) -> f32 {
    var acc = 0.0;
    var base = c;
    var e = t;
    while (e != 0u) {
        if ((e & 1u) != 0u) { acc = acc + base * (1.0 - acc); }
        base = base + base * (1.0 - base);
        e = e >> 1u;
    }
    return acc;
}

struct Adam { w: vec4<f32>, m: vec4<f32>, v: vec4<f32> }

// The update of up to 4 parameters, as torch's _single_tensor_adam.
fn adam_update(w0: vec4<f32>, grad: vec4<f32>, m0: vec4<f32>, v0: vec4<f32>) -> Adam {
    let lr = st.lr;
    let t = max(st.t, 1u);
    var w = w0;
    // the loss holds l1 * sum|w|: its gradient joins the data gradient (sign(0) = 0, as torch)
    var g = grad + p.l1 * sign(w);
    if (p.decoupled != 0u) {
        w = w * (1.0 - lr * p.wd);                // AdamW: param.mul_(1 - lr * wd)
    } else {
        g = g + p.wd * w;                         // Adam: grad = grad.add(param, alpha=wd)
    }
    let m = m0 + p.omb1 * (g - m0);               // exp_avg.lerp_(grad, 1 - beta1)
    let v = v0 * p.beta2 + p.omb2 * g * g;        // exp_avg_sq.mul_(beta2).addcmul_(g, g, 1 - beta2)
    // the same in every invocation (t is uniform)
    let step_size = lr / one_minus_pow(p.omb1, t);
    let bc2_sqrt = sqrt(one_minus_pow(p.omb2, t));
    let denom = sqrt(v) / bc2_sqrt + p.eps;
    return Adam(w - step_size * (m / denom), m, v);  // param.addcdiv_(m, denom, -step_size)
}
