//! ConvTranspose2d with PyTorch's semantics (NCHW, weight [c_in, c_out, kh, kw], bias [c_out],
//! stride, padding and output_padding, one value for both dims; h_out = (h_in-1)*stride - 2*pad
//! + kh + output_padding), forward and backward side by side (shaders/conv_transpose2d.wgsl).
//!
//! - forward: gather form (each output pixel sums the input taps that reach it; no atomics),
//!   bias and activation fused in the epilogue.
//! - backward_input: dx is a plain conv of g = dy * act'(y) with the same weight tensor, so it
//!   runs conv2d.wgsl's direct kernel.
//! - backward_weight: per-chunk partial sums in registers, then a fixed-order sum: deterministic.

use anyhow::{ensure, Result};

use super::conv2d::{
    bench_fill, channel_blocks, cpu_inputs_faces, push_face_binds, reduce_partials,
    then_separately, weights_ubo, wgrad_blocks, wgrad_chunks, Geom, Then, MAXACC, MAXCB,
    UBO_FLOATS, WG,
};
use super::Activation;
use crate::gpu::kernels::Bind;
use crate::gpu::timing::{BenchCases, KernelBench};
use crate::gpu::{Gpu, Recorder, Tensor};

#[derive(Clone, Copy, Debug)]
pub struct ConvTranspose2dShape {
    pub batch: usize,
    pub c_in: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub output_padding: usize,
}

impl ConvTranspose2dShape {
    pub fn h_out(&self) -> usize {
        ((self.h_in.max(1) - 1) * self.stride + self.kh + self.output_padding)
            .saturating_sub(2 * self.pad)
    }
    pub fn w_out(&self) -> usize {
        ((self.w_in.max(1) - 1) * self.stride + self.kw + self.output_padding)
            .saturating_sub(2 * self.pad)
    }
    pub fn in_shape(&self) -> [usize; 4] {
        [self.batch, self.c_in, self.h_in, self.w_in]
    }
    pub fn out_shape(&self) -> [usize; 4] {
        [self.batch, self.c_out, self.h_out(), self.w_out()]
    }
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.c_in, self.c_out, self.kh, self.kw]
    }

    /// Multiply-adds whose target lands inside the output (the useful work of each pass).
    pub fn macs(&self) -> f64 {
        // the conv that this is the transpose of has the same valid (input, output, tap) triples
        let ty = super::conv2d::valid_taps(self.h_in, self.h_out(), self.kh, self.stride, self.pad);
        let tx = super::conv2d::valid_taps(self.w_in, self.w_out(), self.kw, self.stride, self.pad);
        (self.batch * self.c_in * self.c_out) as f64 * ty as f64 * tx as f64
    }

    fn geom(&self) -> Geom {
        Geom {
            batch: self.batch,
            c_in: self.c_in,
            h_in: self.h_in,
            w_in: self.w_in,
            c_out: self.c_out,
            h_out: self.h_out(),
            w_out: self.w_out(),
            kh: self.kh,
            kw: self.kw,
            stride: self.stride,
            pad: self.pad,
        }
    }

    fn check(&self) -> Result<()> {
        let s = self;
        ensure!(
            s.batch > 0 && s.c_in > 0 && s.c_out > 0 && s.h_in > 0 && s.w_in > 0,
            "conv_transpose2d {s:?}: batch, channels and image size must be positive"
        );
        ensure!(
            s.kh > 0 && s.kw > 0 && s.stride > 0,
            "conv_transpose2d {s:?}: kernel size and stride must be positive"
        );
        ensure!(
            s.output_padding < s.stride,
            "conv_transpose2d {s:?}: output_padding must be smaller than stride (as in PyTorch)"
        );
        ensure!(
            (s.h_in - 1) * s.stride + s.kh + s.output_padding > 2 * s.pad
                && (s.w_in - 1) * s.stride + s.kw + s.output_padding > 2 * s.pad,
            "conv_transpose2d {s:?}: padding removes the whole output; use less padding"
        );
        self.geom().check("conv_transpose2d")
    }
}

fn check_len(what: &str, t: &Tensor, want: usize, shape: &[usize]) -> Result<()> {
    ensure!(
        t.len() == want,
        "{what}: expected {want} values (shape {shape:?}) but the tensor has shape {:?}",
        t.shape
    );
    Ok(())
}

/// [`check_len`] for each (name, tensor, shape) of `op`: the tensor must hold the shape's values.
fn check_lens(op: &str, tensors: &[(&str, &Tensor, Vec<usize>)]) -> Result<()> {
    for (what, t, shape) in tensors {
        check_len(&format!("{op} {what}"), t, shape.iter().product(), shape)?;
    }
    Ok(())
}

/// Multiply-adds per invocation above which the unrolled CPU kernel compiles too slowly.
const CPU_MAX_UNROLL: usize = 2048;

/// Whether conv_transpose2d.wgsl convt_forward_cpu takes geometry `g` with `wn` weight (+ bias)
/// floats: software adapters only, output rows of quads, a stride that divides 4 (so tap
/// phases are compile-time constants), all output channels of S rows in 8 to 16 vec4 registers.
fn cpu_path_fits(gpu: &Gpu, g: &Geom, wn: usize) -> bool {
    let s = g.stride;
    // input columns one quad of outputs reads: floor((3+P)/S) - floor((P-KW+1)/S) + 1
    let fdiv = |a: isize| a.div_euclid(s as isize);
    let cols = fdiv(3 + g.pad as isize) - fdiv(g.pad as isize - g.kw as isize + 1) + 1;
    gpu.is_cpu()
        && g.w_out.is_multiple_of(4)
        && matches!(s, 1 | 2 | 4)
        && s * g.c_out <= 16
        // fewer accumulators measured slower than the generic kernel on llvmpipe
        && s * g.c_out >= 8
        && cols <= 16
        && wn <= UBO_FLOATS
        && 4 * s * g.c_out * g.c_in * g.kh.div_ceil(s) * g.kw <= CPU_MAX_UNROLL
}

/// convt_s2k3_core.wgsl's kernels reading storage buffers / texture copies.
const S2K3_SHADERS: (&str, &str) = ("conv_transpose2d", "conv_transpose2d_tex");
/// The texture file's kernels with inputs that can be the batch read from the faces' store.
const FACES_SHADER: &str = "conv_transpose2d_faces";

/// A software-adapter kernel with the weights in a uniform buffer.
struct UboKernel {
    entry: &'static str,
    /// geometry overrides (KH, KW, S, P): the generated-loop convt_forward_cpu
    geometry: bool,
    grid: [u32; 3],
    /// invocations per output plane that the kernel runs (convt_s2k3_cpu's LOSS partials)
    items: usize,
}

/// The uniform-weight kernel for geometry `g` with `wn` weight (+ bias) floats, if any: for 3x3
/// stride 2 pad 1 with output_padding 1 the hand-written kernels, for few output channels (one
/// per workgroup row) or 4..8 (all per invocation); else the generated-loop one where it fits.
fn ubo_kernel(gpu: &Gpu, g: &Geom, wn: usize) -> Option<UboKernel> {
    let s2k3 = gpu.is_cpu() && g.s2k3_doubles() && wn <= UBO_FLOATS;
    let (entry, geometry, items, channels) = if s2k3 && g.w_in.is_multiple_of(8) && 2 * g.c_out < 8
    {
        let items = g.h_in.div_ceil(2) * g.w_in / 8;
        ("convt_s2k3_cpu", false, items, g.c_out)
    } else if s2k3 && g.w_in.is_multiple_of(4) && (4..=8).contains(&g.c_out) {
        ("convt_s2k3_all_cpu", false, g.h_in * g.w_in / 4, 1)
    } else if cpu_path_fits(gpu, g, wn) {
        let items = g.h_out.div_ceil(g.stride) * g.w_out / 4;
        ("convt_forward_cpu", true, items, 1)
    } else {
        return None;
    };
    Some(UboKernel {
        entry,
        geometry,
        grid: [items.div_ceil(WG) as u32, channels as u32, g.batch as u32],
        items,
    })
}

/// Records a hand-written software kernel that takes all of a group's output channels per
/// invocation (`entry` of the buffer / texture shader pair `shaders`), once per group of up to
/// 8, with the weights in [`group_weights_ubo`]'s layout, the OUT_ACT epilogue of `then`, the
/// overrides `extra` and `items` invocations per image.
#[allow(clippy::too_many_arguments)]
fn per_channel_group(
    rec: &mut Recorder,
    g: &Geom,
    (shaders, entry): ((&'static str, &'static str), &str),
    act: Activation,
    grad_in: bool,
    ([x, xa, w, b], out, then): ([&Tensor; 4], &Tensor, Then),
    extra: &[(&str, f64)],
    items: usize,
) -> Result<()> {
    let (out_act, oa) = match then {
        Some((a, t)) => (a, t),
        None => (Activation::None, xa),
    };
    let (shader, ins) = super::conv2d::cpu_inputs(rec, &[x, xa, oa], shaders);
    let [xb, xab, oab] = <[Bind; 3]>::try_from(ins).expect("three inputs");
    let mut consts = vec![
        ("ACT", act.code() as f64),
        ("GRAD_IN", grad_in as u32 as f64),
        ("CI", g.c_in as f64),
        ("OUT_ACT", out_act.code() as f64),
    ];
    consts.extend_from_slice(extra);
    super::conv2d::dispatch_channel_groups(
        rec,
        g,
        (shader, entry),
        &consts,
        &[xb, xab, out.into(), oab],
        [items.div_ceil(WG) as u32, 1, g.batch as u32],
        |rec, rows| group_weights_ubo(rec, g, w, (!grad_in).then_some(b), rows),
    )
}

/// The uniform weight buffer of output channels `rows` (co0 .. co0 + cb) of a ConvTranspose2d weight
/// [c_in, c_out, 3, 3] (and bias): per input channel its cb x 9 weights, then the cb biases, as
/// convt_s2k3_all_cpu reads a layer of cb output channels.
fn group_weights_ubo(
    rec: &mut Recorder,
    g: &Geom,
    w: &Tensor,
    b: Option<&Tensor>,
    rows: std::ops::Range<usize>,
) -> wgpu::Buffer {
    let (co0, cb) = (rows.start, rows.len());
    let u = super::conv2d::empty_weights_ubo(rec);
    let row = (cb * 9 * 4) as u64;
    for ci in 0..g.c_in {
        let src = ((ci * g.c_out + co0) * 9 * 4) as u64;
        rec.copy(&w.buf, src, &u, ci as u64 * row, row);
    }
    if let Some(b) = b {
        rec.copy(
            &b.buf,
            (co0 * 4) as u64,
            &u,
            g.c_in as u64 * row,
            (cb * 4) as u64,
        );
    }
    u
}

/// Transposed gather conv (conv_transpose2d.wgsl convt_forward, or convt_forward_cpu on
/// software adapters) of geometry `g` (weight
/// [c_in, c_out, kh, kw]). Forward: `out = act(convT(x, w) + b)`. With `grad_in`:
/// `out = convT(x * act'(xa), w)` (b unused), for the backward passes, and with `then` (grad_in
/// only) out *= act'(t) afterwards (conv2d::Then).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gather_convt(
    rec: &mut Recorder,
    g: &Geom,
    act: Activation,
    grad_in: bool,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    xa: &Tensor,
    out: &Tensor,
    then: Then,
) -> Result<()> {
    anyhow::ensure!(
        grad_in || then.is_none(),
        "conv_transpose2d: `then` is for backward passes only"
    );
    // the act' source is read by backward passes with an activation only
    let xa = if grad_in && act != Activation::None {
        xa
    } else {
        x
    };
    let wn = w.len() + if grad_in { 0 } else { b.len() };
    // 3x3 stride 1 pad 1, output the size of the input (ae-wide's last layer's input gradient):
    // a correlation with the weight flipped and its channel roles swapped, which Conv2d's
    // hand-written kernel computes with S1 and TW, once per group of up to 8 output channels
    if rec.gpu.is_cpu()
        && g.s1k3_same()
        && g.w_out.is_multiple_of(8)
        && (g.c_out <= 8 || g.c_in <= 32)
        && g.c_in * 8 * 9 + 8 <= UBO_FLOATS
    {
        let kernel = (super::conv2d::CPU_SHADERS, "conv_forward_s2k3_cpu");
        let items = g.h_out.div_ceil(2) * g.w_out / 8;
        let io = ([x, xa, w, b], out, then);
        return per_channel_group(
            rec,
            g,
            kernel,
            act,
            grad_in,
            io,
            &[("S1", 1.0), ("TW", 1.0)],
            items,
        );
    }
    // 3x3 stride 2 pad 1 with more than 8 output channels: the all-channels kernel once per
    // group of 8 (conv-vae's middle layers, whose matrix-product path stored 9 values per
    // output for col2im to add up)
    if rec.gpu.is_cpu()
        && g.s2k3_doubles()
        && g.w_in.is_multiple_of(4)
        && g.c_out > 8
        && g.c_in * 8 * 9 + 8 <= UBO_FLOATS
    {
        let items = g.h_in * g.w_in / 4;
        let io = ([x, xa, w, b], out, then);
        return per_channel_group(
            rec,
            g,
            (S2K3_SHADERS, "convt_s2k3_all_cpu"),
            act,
            grad_in,
            io,
            &[],
            items,
        );
    }
    if let Some(UboKernel {
        entry,
        geometry,
        grid,
        ..
    }) = ubo_kernel(rec.gpu, g, wn)
    {
        if geometry && then.is_some() {
            // convt_forward_cpu has no OUT_ACT epilogue
            return then_separately(rec, then, out, |rec, out| {
                gather_convt(rec, g, act, grad_in, x, w, b, xa, out, None)
            });
        }
        let ubo = weights_ubo(rec, w, (!grad_in).then_some(b));
        let mut consts = Vec::new();
        if geometry {
            consts.extend([
                ("KH", g.kh as f64),
                ("KW", g.kw as f64),
                ("S", g.stride as f64),
                ("P", g.pad as f64),
            ]);
        }
        consts.extend([
            ("ACT", act.code() as f64),
            ("GRAD_IN", grad_in as u32 as f64),
            ("CI", g.c_in as f64),
            ("CO", g.c_out as f64),
        ]);
        // the 3x3 stride-2 kernels (convt_s2k3_core.wgsl) can read texture copies and take
        // OUT_ACT, its source at binding 5 (declared whatever OUT_ACT is)
        let (shader, binds) = if geometry {
            (
                "conv_transpose2d",
                vec![x.into(), (&ubo).into(), xa.into(), out.into()],
            )
        } else {
            let (out_act, oa) = match then {
                Some((a, t)) => (a, t),
                None => (Activation::None, xa),
            };
            consts.push(("OUT_ACT", out_act.code() as f64));
            let (shader, ins) = super::conv2d::cpu_inputs(rec, &[x, xa, oa], S2K3_SHADERS);
            let [xb, xab, oab] = <[Bind; 3]>::try_from(ins).expect("three inputs");
            let mut binds = vec![xb, (&ubo).into(), xab, out.into(), oab];
            if entry == "convt_s2k3_cpu" {
                // LOSS's partial sums (declared whatever LOSS is)
                binds.push((&rec.gpu.storage(16)).into());
            }
            (shader, binds)
        };
        return rec.dispatch_with(shader, entry, &consts, &g.params(0, 0), &binds, grid);
    }
    if then.is_some() {
        return then_separately(rec, then, out, |rec, out| {
            gather_convt(rec, g, act, grad_in, x, w, b, xa, out, None)
        });
    }
    if super::conv_gemm::fits(rec.gpu, &g.swapped()) {
        return super::conv_gemm::conv_transpose(rec, g, act, grad_in, x, w, b, xa, out);
    }
    let s2 = g.stride * g.stride;
    let (cb, nblk) = channel_blocks(g.c_out, (MAXACC / s2).clamp(1, MAXCB));
    let blocks = g.h_out.div_ceil(g.stride) * g.w_out.div_ceil(g.stride);
    let consts = [
        ("KH", g.kh as f64),
        ("KW", g.kw as f64),
        ("S", g.stride as f64),
        ("P", g.pad as f64),
        ("ACT", act.code() as f64),
        ("CB", cb as f64),
        ("GRAD_IN", grad_in as u32 as f64),
    ];
    rec.dispatch_with(
        "conv_transpose2d",
        "convt_forward",
        &consts,
        &g.params(0, 0),
        &[x.into(), w.into(), b.into(), xa.into(), out.into()],
        [blocks.div_ceil(WG) as u32, nblk as u32, g.batch as u32],
    )
}
/// conv2d::backward_input_into_wgrad_below's kernel, for the transposed geometry `g` of the
/// layer's input gradient (x = dy, xa = its act' source): Ok(false) where convt_s2k3_all_cpu
/// would not take `g`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn convt_into_wgrad_below(
    rec: &mut Recorder,
    g: &Geom,
    act: Activation,
    x: &Tensor,
    w: &Tensor,
    xa: &Tensor,
    then: (Activation, &Tensor),
    x0: &Tensor,
    dw0: &Tensor,
    db0: &Tensor,
) -> Result<bool> {
    match ubo_kernel(rec.gpu, g, w.len()) {
        Some(k) if k.entry == "convt_s2k3_all_cpu" => {}
        _ => return Ok(false),
    }
    let xa = if act != Activation::None { xa } else { x };
    let ubo = weights_ubo(rec, w, None);
    let consts = [
        ("ACT", act.code() as f64),
        ("GRAD_IN", 1.0),
        ("CI", g.c_in as f64),
        ("CO", g.c_out as f64),
        ("OUT_ACT", then.0.code() as f64),
    ];
    let items = g.batch * g.h_in * g.w_in / 4;
    let chunks = wgrad_chunks(rec.gpu, items, 1);
    // below's partials: CO x 9 weights, CO biases, padded to whole vec4s for wgrad_reduce4
    let (n_w, n_b) = (g.c_out * 9, g.c_out);
    let stride = (n_w + n_b).next_multiple_of(4);
    let part = rec.gpu.storage((stride * chunks * 4) as u64);
    // x0 may be the batch, read from the faces' store (below is the network's first layer)
    let ins = cpu_inputs_faces(
        rec,
        &[x, xa, then.1, x0],
        S2K3_SHADERS,
        FACES_SHADER,
        (&[3], &[]),
    );
    let [xb, xab, oab, x0b] = <[Bind; 4]>::try_from(ins.binds).expect("four inputs");
    let mut binds = vec![xb, (&ubo).into(), xab, (&part).into(), oab, x0b];
    push_face_binds(&mut binds, ins.faces.as_ref(), 0);
    rec.dispatch_with(
        ins.shader,
        "convt_s2k3_all_wgrad_cpu",
        &[&consts[..], &ins.consts].concat(),
        &g.params(chunks, stride),
        &binds,
        [chunks.div_ceil(WG) as u32, 1, 1],
    )?;
    super::conv2d::reduce4_partials(rec, &part, chunks, stride, n_w, n_b, dw0, db0)?;
    Ok(true)
}

/// The layer below a ConvTranspose2d (the layer whose output is its input), for the software
/// kernel that recomputes that output where it reads it (shaders/below.wgsl,
/// [`forward_mse_wgrad`]) rather than read it: then nothing in a training step reads it, and
/// the layer's own forward pass is dropped from the step (`Recorder::elide_if_unread`). The seed
/// AE's first decoder layer under its last: 3x3, stride 2, padding 1, output twice the input,
/// at most 4 input and 8 output channels, a ReLU.
#[derive(Clone, Copy)]
pub struct Below<'a> {
    pub shape: ConvTranspose2dShape,
    /// its input, weight and bias
    pub x: &'a Tensor,
    pub w: &'a Tensor,
    pub b: &'a Tensor,
    pub act: Activation,
}

impl Below<'_> {
    /// Whether the software kernels can recompute this layer's output, of `c` channels of h x w
    /// where the kernel reads it: on software adapters reading texture copies, a ReLU layer
    /// (its act' is kept as bits: [`forward_mse_wgrad`]).
    pub(crate) fn fits(&self, rec: &Recorder, (c, h, w): (usize, usize, usize)) -> bool {
        let g = self.shape.geom();
        self.act == Activation::Relu
            && rec.gpu.is_cpu()
            && rec.texture_reads()
            && g.s2k3_doubles()
            && g.c_in <= 4
            && g.c_out <= MAXCB
            && g.w_in.is_multiple_of(4)
            && (g.c_out, g.h_out, g.w_out) == (c, h, w)
            && self.x.len() == g.in_len()
            && rec.gpu.flat_texture_fits(self.x.len())
            && self.w.len() + self.b.len() <= UBO_FLOATS
    }

    /// Appends the bindings below.wgsl reads (10: the input, 11: the weights and bias) to
    /// `binds` (bindings from 1; a kernel file without faces leaves 7 to 9 out); returns the
    /// overrides.
    pub(crate) fn push_binds(
        &self,
        rec: &mut Recorder,
        binds: &mut Vec<Bind>,
    ) -> [(&'static str, f64); 2] {
        let tex = rec.flat_texture(&self.x.buf, self.x.len());
        let ubo = weights_ubo(rec, self.w, Some(self.b));
        binds.resize(9, Bind::Skip);
        binds.extend([(&tex).into(), (&ubo).into()]);
        [
            ("BCI", self.shape.c_in as f64),
            ("BACT", self.act.code() as f64),
        ]
    }
}

/// Floats of the act' bits [`forward_mse_wgrad`] stores for layer `s`'s input: a vec4 of 128
/// bits per item of 2 input rows by 8 columns (all channels).
pub fn act_mask_len(s: &ConvTranspose2dShape) -> usize {
    4 * s.batch * (s.h_in / 2) * (s.w_in / 8)
}

/// [`forward_mse_grad`] with the layer's input x recomputed from the layer below's input
/// (`below`), and from x in registers the two things the backward pass would read x for: the
/// layer's weight gradient (into `dw`, `db`) and act' of x (the layer below's ReLU, as bits into
/// `mask`: [`backward_input_masked`] reads them). Then no kernel of the step reads x, and the
/// layer below's forward pass is dropped (`Recorder::elide_if_unread`, in model::graph).
/// Software adapters, one output channel, up to 8 input channels, 3x3 stride 2 padding 1
/// doubling (the seed AE's last layer: `convt_s2k3_loss_wgrad_cpu`); elsewhere it records
/// nothing and returns Ok(false).
#[allow(clippy::too_many_arguments)]
pub fn forward_mse_wgrad(
    rec: &mut Recorder,
    s: &ConvTranspose2dShape,
    w: &Tensor,
    b: &Tensor,
    act: Activation,
    (target, g, loss, scale): (&Tensor, &Tensor, &Tensor, f32),
    below: &Below,
    (dw, db, mask): (&Tensor, &Tensor, &Tensor),
) -> Result<bool> {
    s.check()?;
    let geo = s.geom();
    let wn: usize = s.weight_shape().iter().product();
    check_lens(
        "conv_transpose2d forward_mse_wgrad",
        &[
            ("w", w, s.weight_shape().to_vec()),
            ("b", b, vec![s.c_out]),
            ("target", target, s.out_shape().to_vec()),
            ("g", g, s.out_shape().to_vec()),
            ("loss", loss, vec![1]),
            ("dw", dw, s.weight_shape().to_vec()),
            ("db", db, vec![s.c_out]),
            ("mask", mask, vec![act_mask_len(s)]),
        ],
    )?;
    let fits = matches!(ubo_kernel(rec.gpu, &geo, wn + s.c_out), Some(k) if k.entry == "convt_s2k3_cpu")
        && s.c_out == 1
        && s.c_in <= MAXCB
        && s.h_in.is_multiple_of(2)
        && rec.gpu.flat_texture_fits(target.len())
        && below.fits(rec, (s.c_in, s.h_in, s.w_in));
    if !fits {
        return Ok(false);
    }
    let ubo = weights_ubo(rec, w, Some(b));
    let consts = [
        ("ACT", act.code() as f64),
        ("GRAD_IN", 0.0),
        ("CI", s.c_in as f64),
        ("CO", 1.0),
        ("OUT_ACT", 0.0),
        ("LOSS", 1.0),
        ("LOSS_K", (2.0 * scale) as f64),
    ];
    let items = act_mask_len(s) / 4;
    let chunks = wgrad_chunks(rec.gpu, items, 1);
    // per lane: c_in x 9 weight sums, the bias sum, padded to whole vec4s for wgrad_reduce4
    let (n_w, n_b) = (s.c_in * 9, 1);
    let stride = (n_w + n_b).next_multiple_of(4);
    let part = rec.gpu.storage((stride * chunks * 4) as u64);
    let loss_part = rec.gpu.zeros(&[chunks]);
    // the kernel reads no x (its bindings 1 and 3 are left out); the target may be the batch,
    // read from the faces' store
    let ins = cpu_inputs_faces(
        rec,
        &[target, target, target],
        S2K3_SHADERS,
        FACES_SHADER,
        (&[2], &[0, 1]),
    );
    let shader = match ins.shader {
        FACES_SHADER => "conv_transpose2d_below_faces",
        sh if sh == S2K3_SHADERS.1 => "conv_transpose2d_below",
        sh => anyhow::bail!("conv_transpose2d forward_mse_wgrad: {sh} reads no textures"),
    };
    let tb = ins.binds[2].clone();
    let mut binds = vec![
        Bind::Skip,
        (&ubo).into(),
        Bind::Skip,
        g.into(),
        tb,
        (&loss_part).into(),
    ];
    push_face_binds(&mut binds, ins.faces.as_ref(), 0);
    let below_consts = below.push_binds(rec, &mut binds);
    binds.extend([(&part).into(), mask.into()]);
    rec.dispatch_with(
        shader,
        "convt_s2k3_loss_wgrad_cpu",
        &[&consts[..], &ins.consts, &below_consts].concat(),
        &geo.params(chunks, stride),
        &binds,
        [chunks.div_ceil(WG) as u32, 1, 1],
    )?;
    super::reduce::sum(rec, &loss_part, loss, scale)?;
    super::conv2d::reduce4_partials(rec, &part, chunks, stride, n_w, n_b, dw, db)?;
    Ok(true)
}

/// [`backward_input_then`] with `then` = (ReLU, x) where act' of x is read from the bits
/// [`forward_mse_wgrad`] stored in `mask` (x itself is not read): dx = conv(dy * act'(y), w) *
/// relu'(x). Software adapters where that kernel ran (conv2d.wgsl conv_forward_s2k3_cpu with
/// BMASK); elsewhere Ok(false), nothing recorded.
#[allow(clippy::too_many_arguments)]
pub fn backward_input_masked(
    rec: &mut Recorder,
    s: &ConvTranspose2dShape,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
    mask: &Tensor,
) -> Result<bool> {
    s.check()?;
    let g = s.geom();
    check_lens(
        "conv_transpose2d backward_input_masked",
        &[
            ("y", y, s.out_shape().to_vec()),
            ("dy", dy, s.out_shape().to_vec()),
            ("w", w, s.weight_shape().to_vec()),
            ("dx", dx, s.in_shape().to_vec()),
            ("mask", mask, vec![act_mask_len(s)]),
        ],
    )?;
    // dx = conv(g, w): the weight [c_in, c_out, ..] is the conv's [c_out', c_in', ..]
    super::conv2d::backward_input_masked(rec, &g.swapped(), act, y, dy, w, dx, mask)
}

/// Whether this adapter runs layer `s` as matrix products (ops::conv_gemm) where no
/// hand-written kernel takes it; the weight gradient too when a column has >= 64 taps.
pub fn uses_products(gpu: &Gpu, s: &ConvTranspose2dShape) -> bool {
    super::conv_gemm::fits(gpu, &s.geom().swapped())
}

/// y = act(convT(x, w) + b)   (activation fused in the epilogue)
pub fn forward(
    rec: &mut Recorder,
    s: &ConvTranspose2dShape,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    y: &Tensor,
    act: Activation,
) -> Result<()> {
    s.check()?;
    let g = s.geom();
    let wn: usize = s.weight_shape().iter().product();
    check_len("conv_transpose2d forward x", x, g.in_len(), &s.in_shape())?;
    check_len("conv_transpose2d forward w", w, wn, &s.weight_shape())?;
    check_len("conv_transpose2d forward b", b, s.c_out, &[s.c_out])?;
    check_len("conv_transpose2d forward y", y, g.out_len(), &s.out_shape())?;
    gather_convt(rec, &g, act, false, x, w, b, x, y, None)
}

/// The network's last layer in a training step, with the MSE loss folded into its epilogue:
/// instead of y = act(convT(x, w) + b) it writes the layer's g = 2 scale (y - target) act'(y)
/// (what `loss::mse_grad_act` makes of y) into `g`, and scale * sum((y - target)^2) (what
/// `loss::mse` makes of it) into `loss`. Software adapters' 3x3 stride-2 kernel for one to three
/// output channels only: elsewhere it records nothing and returns Ok(false), and the caller runs
/// `forward`, `loss::mse` and `loss::mse_grad_act`.
#[allow(clippy::too_many_arguments)]
pub fn forward_mse_grad(
    rec: &mut Recorder,
    s: &ConvTranspose2dShape,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    act: Activation,
    target: &Tensor,
    g: &Tensor,
    loss: &Tensor,
    scale: f32,
) -> Result<bool> {
    s.check()?;
    let geo = s.geom();
    check_len(
        "conv_transpose2d forward_mse_grad x",
        x,
        geo.in_len(),
        &s.in_shape(),
    )?;
    let wn: usize = s.weight_shape().iter().product();
    check_len(
        "conv_transpose2d forward_mse_grad w",
        w,
        wn,
        &s.weight_shape(),
    )?;
    check_len(
        "conv_transpose2d forward_mse_grad b",
        b,
        s.c_out,
        &[s.c_out],
    )?;
    for (what, t) in [("target", target), ("g", g)] {
        check_len(
            &format!("conv_transpose2d forward_mse_grad {what}"),
            t,
            geo.out_len(),
            &s.out_shape(),
        )?;
    }
    check_len("conv_transpose2d forward_mse_grad loss", loss, 1, &[1])?;
    let k = match ubo_kernel(rec.gpu, &geo, w.len() + b.len()) {
        Some(k) if k.entry == "convt_s2k3_cpu" => k,
        _ => return Ok(false),
    };
    let ubo = weights_ubo(rec, w, Some(b));
    let consts = [
        ("ACT", act.code() as f64),
        ("GRAD_IN", 0.0),
        ("CI", s.c_in as f64),
        ("CO", s.c_out as f64),
        ("OUT_ACT", 0.0),
        ("LOSS", 1.0),
        ("LOSS_K", (2.0 * scale) as f64),
    ];
    // the target is read where the backward passes read the OUT_ACT source; it may be the
    // batch, read from the faces' store
    let ins = cpu_inputs_faces(
        rec,
        &[x, x, target],
        S2K3_SHADERS,
        FACES_SHADER,
        (&[2], &[]),
    );
    let [xb, xab, tb] = <[Bind; 3]>::try_from(ins.binds).expect("three inputs");
    let partials = rec.gpu.zeros(&[s.batch * s.c_out * k.items]);
    let mut binds = vec![xb, (&ubo).into(), xab, g.into(), tb, (&partials).into()];
    push_face_binds(&mut binds, ins.faces.as_ref(), 0);
    rec.dispatch_with(
        ins.shader,
        k.entry,
        &[&consts[..], &ins.consts].concat(),
        &geo.params(0, 0),
        &binds,
        k.grid,
    )?;
    super::reduce::sum(rec, &partials, loss, scale)?;
    Ok(true)
}

/// dx from dy, where the gradient reaching the pre-activation is g = dy * act'(y) computed on
/// the fly from the forward OUTPUT y (relu' = [y>0], sigmoid' = y(1-y), none = 1). Overwrites dx.
pub fn backward_input(
    rec: &mut Recorder,
    s: &ConvTranspose2dShape,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
) -> Result<()> {
    backward_input_then(rec, s, act, y, dy, w, dx, None)
}

/// [`backward_input`], then dx *= act'(t) for `then` = Some((act, t)): with the previous
/// layer's activation and output (this layer's input), dx is that layer's g = dL/dx * act'(x),
/// so its own backward runs with `Activation::None` and loads no act' source. Fused into the
/// kernel's epilogue on the software adapter's 3x3 stride-2 path, a separate pass elsewhere.
#[allow(clippy::too_many_arguments)]
pub fn backward_input_then(
    rec: &mut Recorder,
    s: &ConvTranspose2dShape,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
    then: Then,
) -> Result<()> {
    s.check()?;
    super::conv2d::check_then("conv_transpose2d", then, dx)?;
    let g = s.geom();
    let wn: usize = s.weight_shape().iter().product();
    check_len(
        "conv_transpose2d backward_input y",
        y,
        g.out_len(),
        &s.out_shape(),
    )?;
    check_len(
        "conv_transpose2d backward_input dy",
        dy,
        g.out_len(),
        &s.out_shape(),
    )?;
    check_len(
        "conv_transpose2d backward_input w",
        w,
        wn,
        &s.weight_shape(),
    )?;
    check_len(
        "conv_transpose2d backward_input dx",
        dx,
        g.in_len(),
        &s.in_shape(),
    )?;
    // dx = conv(g, w): the weight [c_in, c_out, ..] is the conv's [c_out', c_in', ..]
    super::conv2d::gather_conv(rec, &g.swapped(), act, true, dy, w, w, y, dx, then)
}

/// [`backward_input_then`] (with `then` = (then_act, x)) and [`backward_weight`] in one pass,
/// where a hand-written kernel takes the layer: one output channel, 3x3, stride 2, padding 1,
/// output twice the input (output_padding 1), at most 8 input channels, on software adapters
/// (the seed AE's last layer). Both gradients read the same values, the output gradient's
/// footprints and the input x, so the weight gradient's own pass is saved. Elsewhere it
/// records nothing and returns Ok(false): the caller runs the two.
#[allow(clippy::too_many_arguments)]
pub fn backward_fused(
    rec: &mut Recorder,
    s: &ConvTranspose2dShape,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    x: &Tensor,
    w: &Tensor,
    then_act: Activation,
    dx: &Tensor,
    dw: &Tensor,
    db: &Tensor,
) -> Result<bool> {
    s.check()?;
    let g = s.geom();
    let wn: usize = s.weight_shape().iter().product();
    for (what, t, want, shape) in [
        ("y", y, g.out_len(), s.out_shape().to_vec()),
        ("dy", dy, g.out_len(), s.out_shape().to_vec()),
        ("x", x, g.in_len(), s.in_shape().to_vec()),
        ("dx", dx, g.in_len(), s.in_shape().to_vec()),
        ("w", w, wn, s.weight_shape().to_vec()),
        ("dw", dw, wn, s.weight_shape().to_vec()),
        ("db", db, s.c_out, vec![s.c_out]),
    ] {
        check_len(
            &format!("conv_transpose2d backward_fused {what}"),
            t,
            want,
            &shape,
        )?;
    }
    // dx = conv(g, w): the weight [c_in, c_out, ..] is the conv's [c_out', c_in', ..]
    super::conv2d::convt_grads_fused(rec, &g.swapped(), act, dy, y, w, x, then_act, (dx, dw, db))
}

/// dw and db (both overwritten), with g as above.
#[allow(clippy::too_many_arguments)]
pub fn backward_weight(
    rec: &mut Recorder,
    s: &ConvTranspose2dShape,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    x: &Tensor,
    dw: &Tensor,
    db: &Tensor,
) -> Result<()> {
    s.check()?;
    let g = s.geom();
    let wn: usize = s.weight_shape().iter().product();
    check_len(
        "conv_transpose2d backward_weight y",
        y,
        g.out_len(),
        &s.out_shape(),
    )?;
    check_len(
        "conv_transpose2d backward_weight dy",
        dy,
        g.out_len(),
        &s.out_shape(),
    )?;
    check_len(
        "conv_transpose2d backward_weight x",
        x,
        g.in_len(),
        &s.in_shape(),
    )?;
    check_len(
        "conv_transpose2d backward_weight dw",
        dw,
        wn,
        &s.weight_shape(),
    )?;
    check_len(
        "conv_transpose2d backward_weight db",
        db,
        s.c_out,
        &[s.c_out],
    )?;
    // the same sum as a conv weight gradient with the roles swapped (x the conv's output side)
    if super::conv2d::wgrad_cpu(rec, &g.swapped(), act, true, x, x, dy, y, dw, db)? {
        return Ok(());
    }
    if super::conv_gemm::wgrad_fits(rec.gpu, &g.swapped()) {
        return super::conv_gemm::conv_transpose_wgrad(rec, &g, act, dy, y, x, dw, db);
    }
    let taps = s.kh * s.kw;
    let s2 = s.stride * s.stride;
    // the S x S block of g values also lives in registers: CB*S*S <= MAXACC
    let [cb, ncb, cib, ncib] = wgrad_blocks(s.c_out, s.c_in, taps, 128);
    let (cb, ncb) = if cb * s2 > MAXACC {
        channel_blocks(s.c_out, (MAXACC / s2).max(1))
    } else {
        (cb, ncb)
    };
    let items = s.batch * g.h_out.div_ceil(s.stride) * g.w_out.div_ceil(s.stride);
    let chunks = wgrad_chunks(rec.gpu, items, ncb * ncib);
    let part = rec.gpu.storage(((wn + s.c_out) * chunks * 4) as u64);
    let consts = [
        ("KH", g.kh as f64),
        ("KW", g.kw as f64),
        ("S", g.stride as f64),
        ("P", g.pad as f64),
        ("ACT", act.code() as f64),
        ("CB", cb as f64),
        ("CIB", cib as f64),
    ];
    rec.dispatch_with(
        "conv_transpose2d",
        "convt_wgrad",
        &consts,
        &g.params(chunks, wn + s.c_out),
        &[dy.into(), y.into(), x.into(), (&part).into()],
        [chunks.div_ceil(WG) as u32, ncb as u32, ncib as u32],
    )?;
    reduce_partials(rec, &part, chunks, wn, s.c_out, dw, db)
}

/// The seed autoencoder's decoder transposed convs (3x3, stride 2, pad 1, output_padding 1).
pub fn ae_shapes(batch: usize) -> [(&'static str, ConvTranspose2dShape, Activation); 2] {
    let c = |c_in, h, c_out| ConvTranspose2dShape {
        batch,
        c_in,
        h_in: h,
        w_in: h,
        c_out,
        kh: 3,
        kw: 3,
        stride: 2,
        pad: 1,
        output_padding: 1,
    };
    [
        ("ae.dec0", c(4, 32, 8), Activation::Relu),
        ("ae.dec1", c(8, 64, 1), Activation::Sigmoid),
    ]
}

/// One program per (layer, pass) at the seed AE's transposed-conv shapes, random inputs.
pub fn bench_programs(gpu: &Gpu, batch: usize) -> Result<Vec<KernelBench>> {
    let mut cases = BenchCases::new(gpu, None);
    bench_cases(&mut cases, batch)?;
    Ok(cases.cases)
}

/// The bench cases of [`bench_programs`], and the fused passes training runs where the
/// adapter has them: dec0's input gradient times relu' of the latent, dec1's forward with the
/// MSE gradient folded in, dec1's two gradients in one pass.
pub fn bench_cases(cases: &mut BenchCases, batch: usize) -> Result<()> {
    let gpu = cases.gpu;
    for (name, s, act) in ae_shapes(batch) {
        let x = bench_fill(gpu, &s.in_shape(), 1)?;
        let w = bench_fill(gpu, &s.weight_shape(), 2)?;
        let b = bench_fill(gpu, &[s.c_out], 3)?;
        let y = bench_fill(gpu, &s.out_shape(), 4)?;
        let dy = bench_fill(gpu, &s.out_shape(), 5)?;
        let dx = gpu.zeros(&s.in_shape());
        let dw = gpu.zeros(&s.weight_shape());
        let db = gpu.zeros(&[s.c_out]);
        let (nx, nw, ny) = (x.bytes() as f64, w.bytes() as f64, y.bytes() as f64);
        let nb = b.bytes() as f64;
        let flops = 2.0 * s.macs();
        let desc = format!(
            "{} op{}",
            super::conv2d::bench_desc(
                [s.batch, s.c_in, s.h_in, s.w_in],
                [s.c_out, s.h_out(), s.w_out()],
                [s.kh, s.kw],
                s.stride,
                s.pad
            ),
            s.output_padding
        );
        cases.add(
            format!("conv_transpose2d forward {name} ({desc})"),
            flops,
            nx + nw + nb + ny,
            |rec| forward(rec, &s, &x, &w, &b, &y, act),
        )?;
        cases.add(
            format!("conv_transpose2d backward_input {name} ({desc})"),
            flops,
            2.0 * ny + nw + nx,
            |rec| backward_input(rec, &s, act, &y, &dy, &w, &dx),
        )?;
        cases.add(
            format!("conv_transpose2d backward_weight {name} ({desc})"),
            flops,
            2.0 * ny + nx + nw + nb,
            |rec| backward_weight(rec, &s, act, &y, &dy, &x, &dw, &db),
        )?;
        if name == "ae.dec0" {
            // as training runs it: dx times relu' of the layer's input (the latent, x here)
            cases.add(
                format!("conv_transpose2d backward_input then relu' {name} ({desc})"),
                flops,
                2.0 * ny + nw + 2.0 * nx,
                |rec| {
                    backward_input_then(
                        rec,
                        &s,
                        act,
                        &y,
                        &dy,
                        &w,
                        &dx,
                        Some((Activation::Relu, &x)),
                    )
                },
            )?;
        }
        if name == "ae.dec1" {
            // the last layer's forward writing the MSE gradient (and the loss) instead of y
            let (g, loss) = (gpu.zeros(&s.out_shape()), gpu.zeros(&[1]));
            let scale = 1.0 / s.out_shape().iter().product::<usize>() as f32;
            cases.add_if(
                format!("conv_transpose2d forward with the mse loss and gradient {name} ({desc})"),
                flops,
                nx + nw + nb + 2.0 * ny,
                |rec| forward_mse_grad(rec, &s, &x, &w, &b, act, &y, &g, &loss, scale),
            )?;
            // as training runs it on software adapters: its input recomputed from ae.dec0's
            // input, its weight gradient and relu' of its input as bits in the same pass, and
            // the input gradient that reads those bits
            let (_, s0, act0) = ae_shapes(batch)[0];
            let below = Below {
                shape: s0,
                x: &bench_fill(gpu, &s0.in_shape(), 6)?,
                w: &bench_fill(gpu, &s0.weight_shape(), 7)?,
                b: &bench_fill(gpu, &[s0.c_out], 8)?,
                act: act0,
            };
            let mask = gpu.zeros(&[act_mask_len(&s)]);
            let n0 = below.x.bytes() as f64;
            let nm = mask.bytes() as f64;
            cases.add_if(
                format!("conv_transpose2d forward with the mse loss, the weight gradient and the input recomputed {name} ({desc})"),
                2.0 * flops + 2.0 * s0.macs() * 4.0 / 3.0,
                n0 + nw + nb + 2.0 * ny + nm,
                |rec| {
                    forward_mse_wgrad(
                        rec,
                        &s,
                        &w,
                        &b,
                        act,
                        (&y, &g, &loss, scale),
                        &below,
                        (&dw, &db, &mask),
                    )
                },
            )?;
            cases.add_if(
                format!("conv_transpose2d backward_input masked {name} ({desc})"),
                flops,
                ny + nw + nx + nm,
                |rec| backward_input_masked(rec, &s, Activation::None, &y, &dy, &w, &dx, &mask),
            )?;
        }
        // both gradients in one pass, as training runs them where the kernel takes the layer
        // (dx times relu'(x), as for a layer after a ReLU)
        cases.add_if(
            format!("conv_transpose2d backward_fused (input and weight) {name} ({desc})"),
            2.0 * flops,
            2.0 * ny + 2.0 * nx + 2.0 * nw + nb,
            |rec| {
                backward_fused(
                    rec,
                    &s,
                    act,
                    &y,
                    &dy,
                    &x,
                    &w,
                    Activation::Relu,
                    &dx,
                    &dw,
                    &db,
                )
            },
        )?;
    }
    Ok(())
}
