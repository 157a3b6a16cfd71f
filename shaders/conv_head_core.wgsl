// Parameters, override constants and the uniform binding shared by the Conv2d and
// ConvTranspose2d shaders (conv2d*.wgsl, conv_transpose2d*.wgsl).
//!include common

struct Params {
    batch: u32,
    c_in: u32,
    h_in: u32,
    w_in: u32,
    c_out: u32,
    h_out: u32,
    w_out: u32,
    // conv_wgrad / convt_wgrad: invocations per weight block (pixel chunks); reduce: number of
    // partials
    chunks: u32,
    // reduce: values per partial
    stride_part: u32,
    // the first output channel a grouped software kernel computes (conv2d.rs: groups of 8)
    co_off: u32,
    _p1: u32,
    _p2: u32,
}

override KH: u32 = 3u;
override KW: u32 = 3u;
override S: u32 = 1u;
override P: u32 = 0u;
// output channels per invocation (<= MAXCB; convt_forward: S*S*CB <= MAXACC)
override CB: u32 = 8u;
// input channels per invocation (conv_wgrad, convt_wgrad)
override CIB: u32 = 1u;
// ACT (act.wgsl): applied to the output (forward) or as act' to the input (GRAD_IN)
//!include act
override GRAD_IN: bool = false;
// With GRAD_IN, the act' (code as ACT) of the previous layer applied to the result, from that
// layer's output (= this layer's input) at binding 5: the backward pass then hands the previous
// layer g = dx * act'(x), formed here instead of by both of its backward kernels. Only the
// software-adapter 3x3 stride-2 kernels (conv_forward_s2k3_cpu, convt_s2k3_*_cpu) take it.
override OUT_ACT: u32 = 0u;

const WG: u32 = 64u;
const MAXCB: u32 = 8u;
const MAXW: u32 = 160u;

@group(0) @binding(0) var<uniform> p: Params;

// The items a weight-gradient lane sums (kernels that walk items, p.chunks lanes): (first, end,
// step). Each group of 8 lanes (one SIMD vector on CPU adapters) walks its own contiguous run of
// the `total` items, its lanes on adjacent items, so its loads stream through memory; with items
// lane, lane + p.chunks, ... every step jumped to another page and llvmpipe waited on memory.
// A last group of fewer than 8 lanes steps by its lane count, so every item is summed once.
fn lane_items(lane: u32, total: u32) -> vec3<u32> {
    let groups = (p.chunks + 7u) / 8u;
    let g = lane / 8u;
    let step = min(8u, p.chunks - 8u * g);
    let len = (total + groups - 1u) / groups;
    let lo = min(g * len, total);
    return vec3<u32>(lo + lane % 8u, min(lo + len, total), step);
}
