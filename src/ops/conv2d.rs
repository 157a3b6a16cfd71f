//! Conv2d with PyTorch's semantics (NCHW, weight [c_out, c_in, kh, kw], bias [c_out], one
//! stride and one zero padding for both dims), forward and backward side by side
//! (shaders/conv2d.wgsl).
//!
//! - forward: direct gather conv, bias and activation fused in the epilogue.
//! - backward_input: dx is a *transposed* conv of g = dy * act'(y) with the same weight tensor,
//!   so it runs conv_transpose2d.wgsl's gather kernel (no atomics, no scatter).
//! - backward_weight: per-chunk partial sums in registers, then a fixed-order sum: deterministic.
//!
//! The kernel size, stride, padding, activation and channel blocks are WGSL override constants:
//! each layer shape gets its own pipeline with fully unrolled tap loops.

use anyhow::{bail, ensure, Result};

use super::Activation;
use crate::gpu::kernels::{Bind, FaceBatch, FACE_BINDINGS};
use crate::gpu::timing::{BenchCases, KernelBench};
use crate::gpu::{grid_1d, Gpu, Recorder, Tensor};

#[derive(Clone, Copy, Debug)]
pub struct Conv2dShape {
    pub batch: usize,
    pub c_in: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Conv2dShape {
    pub fn h_out(&self) -> usize {
        (self.h_in + 2 * self.pad).saturating_sub(self.kh) / self.stride.max(1) + 1
    }
    pub fn w_out(&self) -> usize {
        (self.w_in + 2 * self.pad).saturating_sub(self.kw) / self.stride.max(1) + 1
    }
    pub fn in_shape(&self) -> [usize; 4] {
        [self.batch, self.c_in, self.h_in, self.w_in]
    }
    pub fn out_shape(&self) -> [usize; 4] {
        [self.batch, self.c_out, self.h_out(), self.w_out()]
    }
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.c_out, self.c_in, self.kh, self.kw]
    }

    /// Multiply-adds that land inside the padded input (the useful work of each pass).
    pub fn macs(&self) -> f64 {
        let ty = valid_taps(self.h_out(), self.h_in, self.kh, self.stride, self.pad);
        let tx = valid_taps(self.w_out(), self.w_in, self.kw, self.stride, self.pad);
        (self.batch * self.c_in * self.c_out) as f64 * ty as f64 * tx as f64
    }

    fn check(&self) -> Result<()> {
        let s = self;
        ensure!(
            s.batch > 0 && s.c_in > 0 && s.c_out > 0 && s.h_in > 0 && s.w_in > 0,
            "conv2d {s:?}: batch, channels and image size must be positive"
        );
        ensure!(
            s.kh > 0 && s.kw > 0 && s.stride > 0,
            "conv2d {s:?}: kernel size and stride must be positive"
        );
        ensure!(
            s.h_in + 2 * s.pad >= s.kh && s.w_in + 2 * s.pad >= s.kw,
            "conv2d {s:?}: the kernel is larger than the padded input; pad more or use a smaller kernel"
        );
        Geom::conv(s).check("conv2d")
    }
}

/// Pairs (o, k) with o*stride - pad + k inside [0, n_in): taps that touch real input.
pub(crate) fn valid_taps(n_out: usize, n_in: usize, k: usize, stride: usize, pad: usize) -> usize {
    let mut c = 0;
    for o in 0..n_out {
        for kk in 0..k {
            let i = (o * stride + kk) as isize - pad as isize;
            if i >= 0 && (i as usize) < n_in {
                c += 1;
            }
        }
    }
    c
}

/// The geometry every conv kernel takes: the "input" and "output" sides of the kernel being
/// run (for a backward pass these are the gradient tensors), kernel, stride, padding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geom {
    pub batch: usize,
    pub c_in: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub c_out: usize,
    pub h_out: usize,
    pub w_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
}

/// Mirrors `Params` in conv2d.wgsl and conv_transpose2d.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    batch: u32,
    c_in: u32,
    h_in: u32,
    w_in: u32,
    c_out: u32,
    h_out: u32,
    w_out: u32,
    chunks: u32,
    stride_part: u32,
    /// the first output channel of a group (the hand-written software kernels run layers
    /// with more than 8 output channels once per group of 8); 0 otherwise
    co_off: u32,
    _pad: [u32; 2],
}

/// Workgroup size of every conv kernel.
pub(crate) const WG: usize = 64;
/// Output channels one invocation keeps in registers (MAXCB in the shaders).
pub(crate) const MAXCB: usize = 8;
/// Weight-gradient accumulators per invocation (MAXW in the shaders).
pub(crate) const MAXW: usize = 160;
/// Outputs of one transposed-conv invocation, S*S*CB (MAXACC in conv_transpose2d.wgsl).
pub(crate) const MAXACC: usize = 64;
/// Largest stride the transposed-conv kernels take (one S x S output block per invocation).
pub(crate) const MAX_STRIDE: usize = 8;

impl Geom {
    /// 3x3, stride 2, padding 1 with the input exactly twice the output: the shape the
    /// hand-written software conv kernels (`*_s2k3_cpu`) take.
    pub(crate) fn s2k3_halves(&self) -> bool {
        (self.kh, self.kw, self.stride, self.pad) == (3, 3, 2, 1)
            && self.h_in == 2 * self.h_out
            && self.w_in == 2 * self.w_out
    }

    /// 3x3, stride 1, padding 1 with the output the size of the input: the shape the
    /// hand-written kernels also take (override S1; `ae-wide`'s first and last layers).
    pub(crate) fn s1k3_same(&self) -> bool {
        (self.kh, self.kw, self.stride, self.pad) == (3, 3, 1, 1)
            && self.h_in == self.h_out
            && self.w_in == self.w_out
    }

    /// The same with the output twice the input (a transposed conv's forward geometry).
    pub(crate) fn s2k3_doubles(&self) -> bool {
        (self.kh, self.kw, self.stride, self.pad) == (3, 3, 2, 1)
            && self.h_out == 2 * self.h_in
            && self.w_out == 2 * self.w_in
    }

    pub fn conv(s: &Conv2dShape) -> Geom {
        Geom {
            batch: s.batch,
            c_in: s.c_in,
            h_in: s.h_in,
            w_in: s.w_in,
            c_out: s.c_out,
            h_out: s.h_out(),
            w_out: s.w_out(),
            kh: s.kh,
            kw: s.kw,
            stride: s.stride,
            pad: s.pad,
        }
    }

    /// The same layer seen from the output side (input and output swapped).
    pub fn swapped(&self) -> Geom {
        Geom {
            c_in: self.c_out,
            h_in: self.h_out,
            w_in: self.w_out,
            c_out: self.c_in,
            h_out: self.h_in,
            w_out: self.w_in,
            ..*self
        }
    }

    pub fn in_len(&self) -> usize {
        self.batch * self.c_in * self.h_in * self.w_in
    }
    pub fn out_len(&self) -> usize {
        self.batch * self.c_out * self.h_out * self.w_out
    }

    /// [`Geom::params`] of the group of output channels from `co_off` (the kernels run once per
    /// group of 8).
    pub fn group_params(&self, chunks: usize, stride_part: usize, co_off: usize) -> Params {
        Params {
            co_off: co_off as u32,
            ..self.params(chunks, stride_part)
        }
    }

    pub fn params(&self, chunks: usize, stride_part: usize) -> Params {
        Params {
            batch: self.batch as u32,
            c_in: self.c_in as u32,
            h_in: self.h_in as u32,
            w_in: self.w_in as u32,
            c_out: self.c_out as u32,
            h_out: self.h_out as u32,
            w_out: self.w_out as u32,
            chunks: chunks as u32,
            stride_part: stride_part as u32,
            co_off: 0,
            _pad: [0; 2],
        }
    }

    /// Limits of the kernels' 32-bit indexing and grids, as errors the caller can act on.
    pub fn check(&self, what: &str) -> Result<()> {
        let g = self;
        let biggest = g.in_len().max(g.out_len());
        ensure!(
            biggest < u32::MAX as usize / 2,
            "{what}: a tensor of {biggest} values is too large for the kernels' 32-bit indexing; split the batch"
        );
        ensure!(
            g.batch <= 65535,
            "{what}: batch {} exceeds 65535 (one grid dimension); split the batch",
            g.batch
        );
        let plane = (g.h_in * g.w_in).max(g.h_out * g.w_out);
        ensure!(
            plane.div_ceil(WG) <= 65535,
            "{what}: images of {plane} pixels exceed the kernels' grid (65535 x {WG} pixels per plane)"
        );
        ensure!(
            g.stride <= MAX_STRIDE,
            "{what}: stride {} is larger than the supported {MAX_STRIDE}",
            g.stride
        );
        ensure!(
            g.kh * g.kw <= MAXW,
            "{what}: a {}x{} kernel has more than {MAXW} taps, more than the weight-gradient kernel holds",
            g.kh,
            g.kw
        );
        Ok(())
    }

    fn overrides(&self, act: Activation) -> Vec<(&'static str, f64)> {
        vec![
            ("KH", self.kh as f64),
            ("KW", self.kw as f64),
            ("S", self.stride as f64),
            ("P", self.pad as f64),
            ("ACT", act.code() as f64),
        ]
    }
}

/// Splits `c` channels into the fewest blocks of at most `cap`, evenly: (block size, blocks).
pub(crate) fn channel_blocks(c: usize, cap: usize) -> (usize, usize) {
    let blocks = c.div_ceil(cap.max(1));
    let size = c.div_ceil(blocks);
    (size, c.div_ceil(size))
}

fn check_len(what: &str, t: &Tensor, want: usize, shape: &[usize]) -> Result<()> {
    if t.len() != want {
        bail!(
            "{what}: expected {want} values (shape {shape:?}) but the tensor has shape {:?}",
            t.shape
        );
    }
    Ok(())
}

/// Floats in the CPU kernels' uniform weight buffer (QW vec4s in the shaders): 16 KiB.
pub(crate) const UBO_FLOATS: usize = 4096;
/// Multiply-adds per invocation above which the fully unrolled CPU kernels take too long to
/// compile (seconds per pipeline on lavapipe).
const CPU_MAX_UNROLL: usize = 2048;

/// Whether conv2d.wgsl conv_forward_cpu takes geometry `g` with `wn` weight (+ bias) floats:
/// software adapters only (on GPUs the generic kernel is the better fit), rows of quads in and out, all
/// output channels in one invocation, a 4-pixel footprint of at most 16 and a short unroll.
fn cpu_path_fits(gpu: &Gpu, g: &Geom, wn: usize) -> bool {
    gpu.is_cpu()
        && g.w_out.is_multiple_of(4)
        && g.w_in.is_multiple_of(4)
        && g.c_out <= MAXCB
        && 3 * g.stride + g.kw <= 16
        && wn <= UBO_FLOATS
        && 4 * g.c_out * g.c_in * g.kh * g.kw <= CPU_MAX_UNROLL
}

/// The input channels per invocation (CIB) with which conv2d.wgsl conv_wgrad_cpu takes
/// geometry `g` (the conv view: "in" is the footprint side, "out" the quads side), or None:
/// software adapters only, rows of quads in and out, at most 8 output channels, 3x3 taps, a
/// footprint of at most 4 vec4s per row (WCO, WCI, WTAP, WKH, WNV). `transposed` (db summed
/// over the footprint side) also needs the owned footprint values (rows ky in [P, P+S), S*4
/// columns from P) to cover the footprint side exactly once.
fn cpu_wgrad_fits(gpu: &Gpu, g: &Geom, transposed: bool) -> Option<usize> {
    let off = (4 - g.pad % 4) % 4;
    let (s, p) = (g.stride, g.pad);
    let fits = gpu.is_cpu()
        && g.w_out.is_multiple_of(4)
        && g.w_in.is_multiple_of(4)
        && g.c_out <= MAXCB
        && g.kh <= 3
        && g.kh * g.kw <= 9
        && (off + 3 * s + g.kw).div_ceil(4) <= 4
        && (!transposed
            || (p + s <= g.kh && p + s <= g.kw && g.h_in <= s * g.h_out && g.w_in <= s * g.w_out));
    fits.then(|| g.c_in.div_ceil(g.c_in.div_ceil(4)))
}

/// Weight gradient by conv2d.wgsl conv_wgrad_cpu when it takes geometry `g` (conv view, see
/// cpu_wgrad_fits); Ok(false) when it does not. Conv2d: quads side a = dy (act' from aa = y),
/// footprint side b = x. ConvTranspose2d (`transposed`): a = x, footprint b = dy (act' from
/// ba = y), db over the footprint side. dw is [g.c_out, g.c_in, kh, kw] either way.
#[allow(clippy::too_many_arguments)]
pub(crate) fn wgrad_cpu(
    rec: &mut Recorder,
    g: &Geom,
    act: Activation,
    transposed: bool,
    a: &Tensor,
    aa: &Tensor,
    b: &Tensor,
    ba: &Tensor,
    dw: &Tensor,
    db: &Tensor,
) -> Result<bool> {
    // 3x3 stride 2 pad 1 with the footprint side exactly twice the quads side, or stride 1
    // with both the same size (S1): the hand-written kernel (CO * CIB <= 8 slots); else the
    // generated-loop one where it fits
    let k3 = rec.gpu.is_cpu() && (g.s2k3_halves() || g.s1k3_same()) && g.w_out.is_multiple_of(4);
    if k3 && g.c_out > 8 && g.c_in * 8 * 9 + g.c_in.max(8) <= UBO_FLOATS {
        // once per group of 8 quads-side channels (conv-vae's and ae-wide's 16- and 32-channel
        // layers, where the generic kernel or the matrix products took 0.1-0.4 s a step)
        return wgrad_s2k3_groups(rec, g, act, transposed, [a, aa, b, ba], dw, db);
    }
    let (entry, cib, consts) = if k3 && g.c_out <= 8 {
        let cib = if g.c_out <= 4 { 2.min(g.c_in) } else { 1 };
        let consts = vec![
            ("ACT", act.code() as f64),
            ("CI", g.c_in as f64),
            ("CO", g.c_out as f64),
            ("CIB2", cib as f64),
            ("TRANSPOSED", transposed as u32 as f64),
            ("S1", g.s1k3_same() as u32 as f64),
        ];
        ("conv_wgrad_s2k3_cpu", cib, consts)
    } else if !transposed
        && g.c_out > MAXCB
        && cpu_wgrad_fits(rec.gpu, &Geom { c_out: MAXCB, ..*g }, false).is_some()
    {
        // more than 8 output channels (ae-wide's first layer, 1 -> 16 at stride 1, where the
        // generic kernel took ~0.9 s a step): once per group of 8
        return wgrad_cpu_groups(rec, g, act, [a, aa, b, ba], dw, db);
    } else if let Some(cib) = cpu_wgrad_fits(rec.gpu, g, transposed) {
        let mut consts = g.overrides(act);
        consts.extend([
            ("CI", g.c_in as f64),
            ("CO", g.c_out as f64),
            ("CIB", cib as f64),
            ("TRANSPOSED", transposed as u32 as f64),
        ]);
        ("conv_wgrad_cpu", cib, consts)
    } else {
        return Ok(false);
    };
    let n_w = g.c_out * g.c_in * g.kh * g.kw;
    let n_b = if transposed { g.c_in } else { g.c_out };
    let ncib = g.c_in.div_ceil(cib);
    let chunks = wgrad_chunks(rec.gpu, g.batch * g.h_out * g.w_out / 4, ncib);
    // each chunk's partials padded to whole vec4s for wgrad_reduce4
    let stride = (n_w + n_b).next_multiple_of(4);
    let part = rec.gpu.storage((stride * chunks * 4) as u64);
    let (shader, [a, aa, b, ba]) = wgrad_binds(rec, act, [a, aa, b, ba]);
    rec.dispatch_with(
        shader,
        entry,
        &consts,
        &g.params(chunks, stride),
        &[a, aa, b, (&part).into(), ba],
        [chunks.div_ceil(WG) as u32, 1, ncib as u32],
    )?;
    reduce4_partials(rec, &part, chunks, stride, n_w, n_b, dw, db)?;
    Ok(true)
}

/// The software weight-gradient kernels' shader and input bindings (quads side a and its act'
/// source aa, footprint side b and its act' source ba): with no activation the act' sources are
/// not read, so the operands themselves are bound in their place (no extra copies).
fn wgrad_binds(
    rec: &mut Recorder,
    act: Activation,
    [a, aa, b, ba]: [&Tensor; 4],
) -> (&'static str, [Bind; 4]) {
    let (aa, ba) = if act == Activation::None {
        (a, b)
    } else {
        (aa, ba)
    };
    let (shader, ins) = cpu_inputs(rec, &[a, aa, b, ba], CPU_SHADERS);
    (shader, <[Bind; 4]>::try_from(ins).expect("four inputs"))
}

/// [`wgrad_cpu`]'s conv_wgrad_cpu for a Conv2d with more than 8 output channels: per group of
/// up to 8 (p.co_off picks the group's channels of dy), the kernel and its reduction into
/// temporaries, copied into the group's rows of dw and its biases.
fn wgrad_cpu_groups(
    rec: &mut Recorder,
    g: &Geom,
    act: Activation,
    [a, aa, b, ba]: [&Tensor; 4],
    dw: &Tensor,
    db: &Tensor,
) -> Result<bool> {
    let (shader, [a, aa, b, ba]) = wgrad_binds(rec, act, [a, aa, b, ba]);
    let taps = g.c_in * g.kh * g.kw;
    for co0 in (0..g.c_out).step_by(MAXCB) {
        let cb = MAXCB.min(g.c_out - co0);
        let Some(cib) = cpu_wgrad_fits(rec.gpu, &Geom { c_out: cb, ..*g }, false) else {
            bail!("conv2d: a group of {cb} output channels no longer fits conv_wgrad_cpu");
        };
        let ncib = g.c_in.div_ceil(cib);
        let chunks = wgrad_chunks(rec.gpu, g.batch * g.h_out * g.w_out / 4, ncib);
        let (n_w, n_b) = (cb * taps, cb);
        let stride = (n_w + n_b).next_multiple_of(4);
        let part = rec.gpu.storage((stride * chunks * 4) as u64);
        let mut consts = g.overrides(act);
        consts.extend([
            ("CI", g.c_in as f64),
            ("CO", cb as f64),
            ("CIB", cib as f64),
            ("TRANSPOSED", 0.0),
        ]);
        rec.dispatch_with(
            shader,
            "conv_wgrad_cpu",
            &consts,
            &g.group_params(chunks, stride, co0),
            &[a.clone(), aa.clone(), b.clone(), (&part).into(), ba.clone()],
            [chunks.div_ceil(WG) as u32, 1, ncib as u32],
        )?;
        let part = (&part, chunks, stride);
        reduce_group_into(
            rec,
            part,
            (n_w, n_b),
            dw,
            (co0 * taps) as u64,
            db,
            Some(co0 as u64),
        )?;
    }
    Ok(true)
}

/// Sums a channel group's weight-gradient partials (`part` = (buffer, chunks, stride)) into
/// temporaries of n_w weights and n_b biases, then copies them into `dw` from float `w_at` and,
/// with `b_at`, into `db` from float `b_at`.
fn reduce_group_into(
    rec: &mut Recorder,
    (part, chunks, stride): (&wgpu::Buffer, usize, usize),
    (n_w, n_b): (usize, usize),
    dw: &Tensor,
    w_at: u64,
    db: &Tensor,
    b_at: Option<u64>,
) -> Result<()> {
    let dw_g = rec.gpu.zeros(&[n_w]);
    let db_g = rec.gpu.zeros(&[n_b]);
    reduce4_partials(rec, part, chunks, stride, n_w, n_b, &dw_g, &db_g)?;
    rec.copy(&dw_g.buf, 0, &dw.buf, w_at * 4, dw_g.bytes());
    if let Some(at) = b_at {
        rec.copy(&db_g.buf, 0, &db.buf, at * 4, db_g.bytes());
    }
    Ok(())
}

/// [`wgrad_cpu`]'s hand-written 3x3 stride-2 kernel for more than 8 quads-side channels: per
/// group of up to 8, the kernel (one footprint-side channel per workgroup row z; p.co_off picks the
/// group's channels of the quads side) and its reduction into temporaries, copied into the
/// group's rows of dw and, for a Conv2d, its biases (a ConvTranspose2d's bias is summed over the
/// footprint side, the same in every group: group 0's is kept).
fn wgrad_s2k3_groups(
    rec: &mut Recorder,
    g: &Geom,
    act: Activation,
    transposed: bool,
    [a, aa, b, ba]: [&Tensor; 4],
    dw: &Tensor,
    db: &Tensor,
) -> Result<bool> {
    let (shader, [a, aa, b, ba]) = wgrad_binds(rec, act, [a, aa, b, ba]);
    let chunks = wgrad_chunks(rec.gpu, g.batch * g.h_out * g.w_out / 4, g.c_in);
    let taps = g.c_in * 9;
    for co0 in (0..g.c_out).step_by(8) {
        let cb = 8.min(g.c_out - co0);
        let n_w = cb * taps;
        let n_b = if transposed { g.c_in } else { cb };
        let stride = (n_w + n_b).next_multiple_of(4);
        let part = rec.gpu.storage((stride * chunks * 4) as u64);
        let consts = [
            ("ACT", act.code() as f64),
            ("CI", g.c_in as f64),
            ("CO", cb as f64),
            ("CIB2", 1.0),
            ("TRANSPOSED", transposed as u32 as f64),
            ("S1", g.s1k3_same() as u32 as f64),
        ];
        rec.dispatch_with(
            shader,
            "conv_wgrad_s2k3_cpu",
            &consts,
            &g.group_params(chunks, stride, co0),
            &[a.clone(), aa.clone(), b.clone(), (&part).into(), ba.clone()],
            [chunks.div_ceil(WG) as u32, 1, g.c_in as u32],
        )?;
        // a ConvTranspose2d's bias (summed over the footprint side) is the same in every group
        let b_at = if !transposed {
            Some(co0 as u64)
        } else {
            (co0 == 0).then_some(0)
        };
        let part = (&part, chunks, stride);
        reduce_group_into(rec, part, (n_w, n_b), dw, (co0 * taps) as u64, db, b_at)?;
    }
    Ok(true)
}

/// Sums `chunks` partials padded to `stride` (a multiple of 4) values, n_w weights then n_b
/// biases each, in a fixed order into dw and db, 4 values per invocation (wgrad_reduce4).
#[allow(clippy::too_many_arguments)]
pub(crate) fn reduce4_partials(
    rec: &mut Recorder,
    part: &wgpu::Buffer,
    chunks: usize,
    stride: usize,
    n_w: usize,
    n_b: usize,
    dw: &Tensor,
    db: &Tensor,
) -> Result<()> {
    let p = Params {
        c_in: n_w as u32,
        c_out: n_b as u32,
        chunks: chunks as u32,
        stride_part: stride as u32,
        ..bytemuck::Zeroable::zeroed()
    };
    let len = stride * chunks;
    let (entry, src): (_, Bind) = if rec.texture_reads() && rec.gpu.flat_texture_fits(len) {
        ("wgrad_reduce4_tex", (&rec.flat_texture(part, len)).into())
    } else {
        ("wgrad_reduce4", part.into())
    };
    rec.dispatch(
        "conv2d",
        entry,
        &p,
        &[src, dw.into(), db.into()],
        grid_1d((stride / 4) as u64, WG as u32),
    )
}

/// conv2d_cpu_core.wgsl's kernels reading storage buffers / texture copies.
pub(crate) const CPU_SHADERS: (&str, &str) = ("conv2d", "conv2d_tex");

/// The shader of a software-adapter kernel family that comes in two files, `shaders` = (reads
/// storage buffers, reads textures), and the input bindings: the texture file with flat copies
/// of `inputs` where every input fits one and texture reads are on,
/// else the buffer file with the buffers.
pub(crate) fn cpu_inputs(
    rec: &mut Recorder,
    inputs: &[&Tensor],
    shaders: (&'static str, &'static str),
) -> (&'static str, Vec<Bind>) {
    if !rec.texture_reads() || !inputs.iter().all(|t| rec.gpu.flat_texture_fits(t.len())) {
        return (shaders.0, inputs.iter().map(|t| (*t).into()).collect());
    }
    // (a buffer read twice, as x and xa, is copied once: Recorder::flat_texture reuses copies)
    let binds = inputs
        .iter()
        .map(|t| (&rec.flat_texture(&t.buf, t.len())).into())
        .collect();
    (shaders.1, binds)
}

/// [`cpu_inputs`] for kernels whose inputs at `face_slots` may be the training batch that
/// `Recorder::read_faces` lets kernels read straight from the faces' store (shaders/faces.wgsl):
/// where one is, the family's faces file (`faces_shader`, the texture file's kernels with
/// faces.wgsl) with override FACESk set for each such slot k, an unread placeholder texture in
/// that slot (and in `unread_slots`, those the kernel does not read with these overrides), and
/// the face bindings to append with [`push_face_binds`]; else `cpu_inputs`.
pub(crate) fn cpu_inputs_faces(
    rec: &mut Recorder,
    inputs: &[&Tensor],
    shaders: (&'static str, &'static str),
    faces_shader: &'static str,
    (face_slots, unread_slots): (&[usize], &[usize]),
) -> FaceInputs {
    let (shader, mut binds) = cpu_inputs(rec, inputs, shaders);
    let faces = face_slots
        .iter()
        .find_map(|&k| rec.faces_for(inputs[k]).cloned());
    let Some(faces) = faces.filter(|_| shader == shaders.1) else {
        return FaceInputs {
            shader,
            binds,
            consts: Vec::new(),
            faces: None,
        };
    };
    let mut consts = Vec::new();
    for (k, t) in inputs.iter().enumerate() {
        let read = face_slots.contains(&k);
        if t.buf == faces.tensor.buf && (read || unread_slots.contains(&k)) {
            if read {
                let name = FACE_OVERRIDES[k].expect("faces.wgsl has an override for this slot");
                consts.push((name, 1.0));
            }
            binds[k] = (&rec.gpu.placeholder_texture()).into();
        }
    }
    FaceInputs {
        shader: faces_shader,
        binds,
        consts,
        faces: Some(faces),
    }
}

/// What [`cpu_inputs_faces`] chose: the shader file, the input bindings, the FACESk overrides
/// and the face batch whose bindings [`push_face_binds`] appends (None: no input is one).
pub(crate) struct FaceInputs {
    pub shader: &'static str,
    pub binds: Vec<Bind>,
    pub consts: Vec<(&'static str, f64)>,
    pub faces: Option<FaceBatch>,
}

/// faces.wgsl's override per input slot (the slots the callers read faces at).
const FACE_OVERRIDES: [Option<&str>; 4] = [Some("FACES0"), None, Some("FACES2"), Some("FACES3")];

/// Appends `faces`' bindings (7, 8, 9; skipping any up to 6 that `binds` lacks), where
/// `inserted` more bindings go in before them later ([`dispatch_channel_groups`]: 1, the weights).
pub(crate) fn push_face_binds(binds: &mut Vec<Bind>, faces: Option<&FaceBatch>, inserted: usize) {
    if let Some(f) = faces {
        let first = *FACE_BINDINGS.start() as usize;
        binds.resize(first - 1 - inserted, Bind::Skip);
        binds.extend([(&f.words).into(), (&f.order).into(), (&f.state).into()]);
    }
}

/// A uniform buffer holding `w` then `b`, refreshed by a copy each time the program runs (so
/// weight updates between replays are seen).
pub(crate) fn weights_ubo(rec: &mut Recorder, w: &Tensor, b: Option<&Tensor>) -> wgpu::Buffer {
    let u = empty_weights_ubo(rec);
    rec.copy(&w.buf, 0, &u, 0, w.bytes());
    if let Some(b) = b {
        rec.copy(&b.buf, 0, &u, w.bytes(), b.bytes());
    }
    u
}

pub(crate) fn empty_weights_ubo(rec: &Recorder) -> wgpu::Buffer {
    rec.gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("conv weights"),
        size: (UBO_FLOATS * 4) as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// [`weights_ubo`] of output channels `rows` only, for a Conv2d weight [c_out, ...] and bias
/// [c_out]: their weights, then their biases.
pub(crate) fn weights_ubo_rows(
    rec: &mut Recorder,
    w: &Tensor,
    b: Option<&Tensor>,
    rows: std::ops::Range<usize>,
) -> wgpu::Buffer {
    let u = empty_weights_ubo(rec);
    let per_row = w.bytes() / w.shape[0] as u64;
    let wn = per_row * rows.len() as u64;
    rec.copy(&w.buf, per_row * rows.start as u64, &u, 0, wn);
    if let Some(b) = b {
        rec.copy(&b.buf, 4 * rows.start as u64, &u, wn, 4 * rows.len() as u64);
    }
    u
}

/// A backward input gradient's result multiplied by act' of the previous layer (`Some((act,
/// its output))`), so that layer's backward starts from g = dx * act'(x): see
/// [`backward_input_then`]. The 3x3 stride-2 software-adapter kernels do it in their epilogue
/// (OUT_ACT); every other path writes a temporary and forms the product by a separate pass.
pub type Then<'a> = Option<(Activation, &'a Tensor)>;

/// Records `kernel(out')` and then out = out' * act'(t) for `then` = Some((act, t)) by a
/// separate pass (the paths without the fused epilogue).
pub(crate) fn then_separately(
    rec: &mut Recorder,
    then: Then,
    out: &Tensor,
    kernel: impl FnOnce(&mut Recorder, &Tensor) -> Result<()>,
) -> Result<()> {
    match then {
        Some((act, t)) if act != Activation::None => {
            let tmp = rec.gpu.zeros(&out.shape);
            kernel(rec, &tmp)?;
            // linear's g = dy * act'(y): it reads texture copies (or aliases) on CPU adapters,
            // where the activation kernel's storage-buffer loads took ae-wide 0.27 s a step
            let textures = rec.texture_reads();
            super::linear::form_g_into(rec, act, t, &tmp, &out.buf, textures)
        }
        _ => kernel(rec, out),
    }
}

/// Direct gather conv (conv2d.wgsl conv_forward, or conv_forward_cpu on software adapters) of geometry `g`. Forward: `out = act(conv(x,
/// w) + b)`. With `grad_in`: `out = conv(x * act'(xa), w)` (b unused), for the backward passes,
/// and with `then` (grad_in only) out *= act'(t) afterwards ([`Then`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gather_conv(
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
    ensure!(
        grad_in || then.is_none(),
        "conv: `then` is for backward passes only"
    );
    // the act' source is read by backward passes with an activation only
    let xa = if grad_in && act != Activation::None {
        xa
    } else {
        x
    };
    let mut consts = g.overrides(act);
    consts.push(("GRAD_IN", grad_in as u32 as f64));
    let wn = w.len() + if grad_in { 0 } else { b.len() };
    // 3x3 stride 2 pad 1, input twice the output (or stride 1, the same size: S1), output rows
    // of quad pairs: the hand-written kernel, once per group of up to 8 output channels
    let groups = g.c_out.div_ceil(8);
    if rec.gpu.is_cpu()
        && (g.s2k3_halves() || g.s1k3_same())
        && g.w_out.is_multiple_of(8)
        // more than 8 output channels in groups (conv-vae's and ae-wide's 16- and 32-channel
        // layers, where the matrix-product path ran at 0.5-5 GFLOP/s and im2col moved 9
        // values per input); the input-channel loop is not unrolled beyond 32
        && (g.c_out <= 8 || g.c_in <= 32)
        && wn.div_ceil(groups) <= UBO_FLOATS
    {
        // binding 5: the OUT_ACT source (the kernel declares it whatever OUT_ACT is)
        let (out_act, oa) = match then {
            Some((a, t)) => (a, t),
            None => (Activation::None, xa),
        };
        let items = g.h_out.div_ceil(2) * g.w_out / 8;
        // x may be the batch, read from the faces' store (the network's first layer); the
        // forward reads no act' sources (xa, oa: x in their place)
        let unread: &[usize] = if grad_in { &[] } else { &[1, 2] };
        let ins = cpu_inputs_faces(
            rec,
            &[x, xa, oa],
            CPU_SHADERS,
            "conv2d_faces",
            (&[0], unread),
        );
        let [xb, xab, oab] = <[Bind; 3]>::try_from(ins.binds).expect("three inputs");
        consts.extend([
            ("CI", g.c_in as f64),
            ("OUT_ACT", out_act.code() as f64),
            ("S1", g.s1k3_same() as u32 as f64),
        ]);
        consts.extend(ins.consts);
        let mut binds = vec![xb, xab, out.into(), oab];
        push_face_binds(&mut binds, ins.faces.as_ref(), 1);
        return dispatch_channel_groups(
            rec,
            g,
            (ins.shader, "conv_forward_s2k3_cpu"),
            &consts,
            &binds,
            [items.div_ceil(WG) as u32, 1, g.batch as u32],
            |rec, rows| weights_ubo_rows(rec, w, (!grad_in).then_some(b), rows),
        );
    }
    if then.is_some() {
        return then_separately(rec, then, out, |rec, out| {
            gather_conv(rec, g, act, grad_in, x, w, b, xa, out, None)
        });
    }
    // once per group of up to 8 output channels (ae-wide's 1 -> 16 first layer)
    let group = Geom {
        c_out: g.c_out.min(MAXCB),
        ..*g
    };
    let group_wn = (w.len() + if grad_in { 0 } else { b.len() }) / g.c_out * group.c_out;
    if cpu_path_fits(rec.gpu, &group, group_wn) {
        let (shader, ins) = cpu_inputs(rec, &[x, xa], CPU_SHADERS);
        let [xb, xab] = <[Bind; 2]>::try_from(ins).expect("two inputs");
        consts.push(("CI", g.c_in as f64));
        return dispatch_channel_groups(
            rec,
            g,
            (shader, "conv_forward_cpu"),
            &consts,
            &[xb, xab, out.into()],
            [
                (g.h_out * g.w_out / 4).div_ceil(WG) as u32,
                1,
                g.batch as u32,
            ],
            |rec, rows| weights_ubo_rows(rec, w, (!grad_in).then_some(b), rows),
        );
    }
    if super::conv_gemm::fits(rec.gpu, g) {
        return super::conv_gemm::conv(rec, g, act, grad_in, x, w, b, xa, out);
    }
    let (cb, nblk) = channel_blocks(g.c_out, MAXCB);
    consts.push(("CB", cb as f64));
    rec.dispatch_with(
        "conv2d",
        "conv_forward",
        &consts,
        &g.params(0, 0),
        &[x.into(), w.into(), b.into(), xa.into(), out.into()],
        [
            (g.h_out * g.w_out).div_ceil(WG) as u32,
            nblk as u32,
            g.batch as u32,
        ],
    )
}

/// Dispatches `entry` once per group of up to 8 (MAXCB) of g's output channels: override CO =
/// the group's size, the group's first channel in the parameters (`co_off`), its weights at
/// binding 2 from `ubo(rec, channels)`, `binds` at 1 and 3, 4, ... The hand-written software
/// kernels hold at most 8 output channels per invocation.
pub(crate) fn dispatch_channel_groups(
    rec: &mut Recorder,
    g: &Geom,
    (shader, entry): (&str, &str),
    consts: &[(&str, f64)],
    binds: &[Bind],
    grid: [u32; 3],
    ubo: impl Fn(&mut Recorder, std::ops::Range<usize>) -> wgpu::Buffer,
) -> Result<()> {
    for co0 in (0..g.c_out).step_by(MAXCB) {
        let rows = co0..(co0 + MAXCB).min(g.c_out);
        let mut consts = consts.to_vec();
        consts.push(("CO", rows.len() as f64));
        let u = ubo(rec, rows);
        let mut all = binds.to_vec();
        all.insert(1, (&u).into());
        rec.dispatch_with(
            shader,
            entry,
            &consts,
            &g.group_params(0, 0, co0),
            &all,
            grid,
        )?;
    }
    Ok(())
}

/// Partials per first-level group where GPUs reduce in two levels (see [`reduce_partials`]).
pub const REDUCE_GROUP: usize = 64;

/// Sums `chunks` partials of `n_w + n_b` values in a fixed order into dw (n_w) and db (n_b).
/// GPUs with more than 4 groups' worth of chunks reduce in two levels (groups of
/// [`REDUCE_GROUP`], then the groups): one lane per value adding all 32,768 partials of the AE's
/// first-layer weight gradient took 1.9 ms of a 7.2 ms step on an NVIDIA H200. Software
/// adapters keep one level (their weight gradients write at most 4,096 partials).
pub(crate) fn reduce_partials(
    rec: &mut Recorder,
    part: &wgpu::Buffer,
    chunks: usize,
    n_w: usize,
    n_b: usize,
    dw: &Tensor,
    db: &Tensor,
) -> Result<()> {
    let group = (!rec.gpu.is_cpu() && chunks > 4 * REDUCE_GROUP).then_some(REDUCE_GROUP);
    reduce_partials_in_groups(rec, part, chunks, group, n_w, n_b, dw, db)
}

/// [`reduce_partials`] with the levels chosen by the caller: `group` Some(G) first sums each
/// run of G partials (in order) into one, then sums those; None sums all in one level. Public
/// for the tests, which check both on any adapter.
#[allow(clippy::too_many_arguments)]
pub fn reduce_partials_in_groups(
    rec: &mut Recorder,
    part: &wgpu::Buffer,
    chunks: usize,
    group: Option<usize>,
    n_w: usize,
    n_b: usize,
    dw: &Tensor,
    db: &Tensor,
) -> Result<()> {
    let stride = n_w + n_b;
    // chunks partials of stride values, n_b of them biases
    let p = Params {
        batch: 0,
        c_in: 0,
        h_in: 0,
        w_in: 0,
        c_out: n_b as u32,
        h_out: 0,
        w_out: 0,
        chunks: chunks as u32,
        stride_part: stride as u32,
        co_off: 0,
        _pad: [0; 2],
    };
    if let Some(g) = group.filter(|&g| g >= 1 && chunks > g) {
        let groups = chunks.div_ceil(g);
        let sums = rec.gpu.storage((groups * stride * 4) as u64);
        rec.dispatch_with(
            "conv2d",
            "wgrad_reduce_groups",
            &[("GROUP", g as f64)],
            &p,
            &[part.into(), (&sums).into()],
            grid_1d((groups * stride) as u64, WG as u32),
        )?;
        return reduce_partials_in_groups(rec, &sums, groups, None, n_w, n_b, dw, db);
    }
    let len = stride * chunks;
    let src: Bind = if rec.texture_reads() && rec.gpu.flat_texture_fits(len) {
        (&rec.flat_texture(part, len)).into()
    } else {
        part.into()
    };
    let entry = match src {
        Bind::Texture(_) => "wgrad_reduce_tex",
        _ => "wgrad_reduce",
    };
    rec.dispatch(
        "conv2d",
        entry,
        &p,
        &[src, dw.into(), db.into()],
        grid_1d(stride as u64, WG as u32),
    )
}

/// How many chunks (invocations per weight block) a weight gradient over `items` pixels uses:
/// enough lanes to fill the device, few enough that the partials stay small.
pub(crate) fn wgrad_chunks(gpu: &Gpu, items: usize, blocks: usize) -> usize {
    // software adapters: many short workgroups (64 of 64 lanes), so llvmpipe's threads stay
    // balanced (with 8 long ones, a descheduled thread left the other core idle: 1.5-2x slower);
    // not more: the partial sums' reduction grows with them (the AE step's four weight
    // gradients with their reductions: ~41 ms at 128 workgroups, ~37 at 64, llvmpipe)
    let lanes: usize = if gpu.is_cpu() { 4096 } else { 32768 };
    let per_block = lanes.div_ceil(blocks).next_multiple_of(WG);
    // at least 16 items per invocation, so the partial sums stay a small fraction of the traffic
    per_block.min(items.div_ceil(16)).max(1)
}

/// The weight-gradient kernel's blocks: (CB, output blocks, CIB, input blocks) with
/// CB*CIB*taps <= cap.
pub(crate) fn wgrad_blocks(c_out: usize, c_in: usize, taps: usize, cap: usize) -> [usize; 4] {
    let cb_cap = (cap / taps).clamp(1, MAXCB);
    let (cb, ncb) = channel_blocks(c_out, cb_cap);
    let (cib, ncib) = channel_blocks(c_in, (cap / (taps * cb)).max(1));
    [cb, ncb, cib, ncib]
}

/// Whether this adapter runs layer `s` as matrix products (ops::conv_gemm) where no
/// hand-written kernel takes it; the weight gradient too when a column has >= 64 taps.
pub fn uses_products(gpu: &Gpu, s: &Conv2dShape) -> bool {
    super::conv_gemm::fits(gpu, &Geom::conv(s))
}

/// y = act(conv(x, w) + b)   (activation fused in the epilogue)
pub fn forward(
    rec: &mut Recorder,
    s: &Conv2dShape,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    y: &Tensor,
    act: Activation,
) -> Result<()> {
    s.check()?;
    let g = Geom::conv(s);
    check_len("conv2d forward x", x, g.in_len(), &s.in_shape())?;
    check_len(
        "conv2d forward w",
        w,
        s.weight_shape().iter().product(),
        &s.weight_shape(),
    )?;
    check_len("conv2d forward b", b, s.c_out, &[s.c_out])?;
    check_len("conv2d forward y", y, g.out_len(), &s.out_shape())?;
    gather_conv(rec, &g, act, false, x, w, b, x, y, None)
}

/// `then`'s tensor (the previous layer's output) must be dx's size.
pub(crate) fn check_then(op: &str, then: Then, dx: &Tensor) -> Result<()> {
    if let Some((_, t)) = then {
        ensure!(
            t.len() == dx.len(),
            "{op} backward_input_then: the tensor whose act' multiplies dx must be dx's size ({} values), got {:?}",
            dx.len(),
            t.shape
        );
    }
    Ok(())
}

/// dx from dy, where the gradient reaching the pre-activation is g = dy * act'(y) computed on
/// the fly from the forward OUTPUT y (relu' = [y>0], sigmoid' = y(1-y), none = 1). Overwrites dx.
pub fn backward_input(
    rec: &mut Recorder,
    s: &Conv2dShape,
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
    s: &Conv2dShape,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
    then: Then,
) -> Result<()> {
    s.check()?;
    check_then("conv2d", then, dx)?;
    let g = Geom::conv(s);
    check_input_grad(s, &g, y, dy, w)?;
    check_len("conv2d backward_input dx", dx, g.in_len(), &s.in_shape())?;
    // dx = convT(g, w): the conv weight [c_out, c_in, ..] is the transposed conv's [c_in', c_out', ..]
    // and its output size is the conv's input size (rows the conv never reached get zeros).
    super::conv_transpose2d::gather_convt(rec, &g.swapped(), act, true, dy, w, w, y, dx, then)
}

/// [`backward_input_then`] with `then` = (act0, y0) fused with [`backward_weight`] of the layer
/// below, `below` (input `x0`, output y0 = this layer's input, its g never needed elsewhere): on
/// software adapters, when this layer's input gradient runs on the 3x3 stride-2 transposed-conv
/// kernel with all channels per invocation and `below` is a 1-channel 3x3 stride-2 pad-1 conv
/// whose input is exactly twice its output (the seed AE's first layer, which needs no input
/// gradient), below's g = dx * act0'(y0) is never stored: the kernel adds it straight into
/// below's weight and bias sums (shaders/convt_s2k3_core.wgsl, convt_s2k3_all_wgrad_cpu), and
/// dw0, db0 are overwritten. Returns Ok(false), recording nothing, where that does not apply:
/// the caller then records the two separately. Same sums as the separate path up to float
/// rounding (another summation order).
#[allow(clippy::too_many_arguments)]
pub fn backward_input_into_wgrad_below(
    rec: &mut Recorder,
    s: &Conv2dShape,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    w: &Tensor,
    then: (Activation, &Tensor),
    below: &Conv2dShape,
    x0: &Tensor,
    dw0: &Tensor,
    db0: &Tensor,
) -> Result<bool> {
    s.check()?;
    below.check()?;
    let g = Geom::conv(s);
    let fits =
        below.c_in == 1 && Geom::conv(below).s2k3_halves() && below.out_shape() == s.in_shape();
    if !fits {
        return Ok(false);
    }
    check_input_grad(s, &g, y, dy, w)?;
    check_len(
        "conv2d backward_input then",
        then.1,
        g.in_len(),
        &s.in_shape(),
    )?;
    check_len(
        "conv2d below x0",
        x0,
        below.in_shape().iter().product(),
        &below.in_shape(),
    )?;
    check_len(
        "conv2d below dw",
        dw0,
        below.weight_shape().iter().product(),
        &below.weight_shape(),
    )?;
    check_len("conv2d below db", db0, below.c_out, &[below.c_out])?;
    super::conv_transpose2d::convt_into_wgrad_below(
        rec,
        &g.swapped(),
        act,
        dy,
        w,
        y,
        then,
        x0,
        dw0,
        db0,
    )
}

/// A ConvTranspose2d's input gradient fused with its weight gradient
/// (`conv_forward_s2k3_wgrad_cpu`), for `g` = the transposed layer's input gradient as a conv
/// (g.c_in: the layer's one output channel; dy its output gradient, y its output for act',
/// x its input): dx = conv(g', w) * then_act'(x) and the layer's dw, db, in one pass over g'
/// and x. Ok(false), nothing recorded, where the kernel does not take `g`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn convt_grads_fused(
    rec: &mut Recorder,
    g: &Geom,
    act: Activation,
    dy: &Tensor,
    y: &Tensor,
    w: &Tensor,
    x: &Tensor,
    then_act: Activation,
    grads: (&Tensor, &Tensor, &Tensor),
) -> Result<bool> {
    let fits = rec.gpu.is_cpu()
        && g.c_in == 1
        && g.c_out <= MAXCB
        && g.s2k3_halves()
        && g.h_out.is_multiple_of(2)
        && g.w_out.is_multiple_of(8)
        && w.len() <= UBO_FLOATS;
    if !fits {
        return Ok(false);
    }
    let (dx, dw, db) = grads;
    // the act' source of the footprint, read by the kernel only with an activation
    let ya = if act != Activation::None { y } else { dy };
    let mut consts = g.overrides(act);
    consts.extend([
        ("GRAD_IN", 1.0),
        ("CI", 1.0),
        ("CO", g.c_out as f64),
        ("OUT_ACT", then_act.code() as f64),
    ]);
    let items = g.batch * (g.h_out / 2) * (g.w_out / 8);
    let chunks = wgrad_chunks(rec.gpu, items, 1);
    // partials: c_out x 9 weights, the bias, padded to whole vec4s for wgrad_reduce4
    let (n_w, n_b) = (g.c_out * 9, 1);
    let stride = (n_w + n_b).next_multiple_of(4);
    let part = rec.gpu.storage((stride * chunks * 4) as u64);
    let ubo = weights_ubo(rec, w, None);
    let (shader, ins) = cpu_inputs(rec, &[dy, ya, x], CPU_SHADERS);
    let [dyb, yab, xb] = <[Bind; 3]>::try_from(ins).expect("three inputs");
    rec.dispatch_with(
        shader,
        "conv_forward_s2k3_wgrad_cpu",
        &consts,
        &g.params(chunks, stride),
        &[dyb, (&ubo).into(), yab, dx.into(), xb, (&part).into()],
        [chunks.div_ceil(WG) as u32, 1, 1],
    )?;
    reduce4_partials(rec, &part, chunks, stride, n_w, n_b, dw, db)?;
    Ok(true)
}

/// conv_transpose2d::backward_input_masked's kernel, for the layer's input gradient as a conv of
/// geometry `g`: conv_forward_s2k3_cpu (GRAD_IN) with act' of its output from the bits in
/// `mask` (BMASK, shaders/below.wgsl) rather than from the output's own values. Ok(false) where
/// that kernel does not take `g` (software adapters reading textures, 3x3 stride 2 halving, at
/// most 8 output channels, w_out % 8 == 0).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_input_masked(
    rec: &mut Recorder,
    g: &Geom,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
    mask: &Tensor,
) -> Result<bool> {
    let fits = rec.gpu.is_cpu()
        && rec.texture_reads()
        && g.s2k3_halves()
        && g.w_out.is_multiple_of(8)
        && g.h_out.is_multiple_of(2)
        && g.c_out <= MAXCB
        && g.c_in <= MAXCB
        && w.len() <= UBO_FLOATS
        && [dy, y, mask]
            .iter()
            .all(|t| rec.gpu.flat_texture_fits(t.len()));
    if !fits {
        return Ok(false);
    }
    // the act' source of the input (dy's), read only with an activation
    let ya = if act != Activation::None { y } else { dy };
    let mut consts = g.overrides(act);
    consts.extend([
        ("GRAD_IN", 1.0),
        ("CI", g.c_in as f64),
        ("OUT_ACT", 0.0),
        ("S1", 0.0),
        ("BMASK", 1.0),
    ]);
    let (shader, ins) = cpu_inputs(rec, &[dy, ya, ya], CPU_SHADERS);
    ensure!(
        shader == CPU_SHADERS.1,
        "conv2d backward_input_masked: {shader} reads no textures"
    );
    let mut binds = ins;
    binds.insert(2, dx.into());
    // the bits at binding 14 (13 here: dispatch_channel_groups inserts the weights at 2)
    binds.resize(12, Bind::Skip);
    binds.push((&rec.flat_texture(&mask.buf, mask.len())).into());
    let items = g.h_out.div_ceil(2) * g.w_out / 8;
    dispatch_channel_groups(
        rec,
        g,
        ("conv2d_below", "conv_forward_s2k3_cpu"),
        &consts,
        &binds,
        [items.div_ceil(WG) as u32, 1, g.batch as u32],
        |rec, rows| weights_ubo_rows(rec, w, None, rows),
    )?;
    Ok(true)
}

/// The input gradient's operands: y and dy of the output's size, w of the weights'.
fn check_input_grad(s: &Conv2dShape, g: &Geom, y: &Tensor, dy: &Tensor, w: &Tensor) -> Result<()> {
    check_len("conv2d backward_input y", y, g.out_len(), &s.out_shape())?;
    check_len("conv2d backward_input dy", dy, g.out_len(), &s.out_shape())?;
    check_len(
        "conv2d backward_input w",
        w,
        s.weight_shape().iter().product(),
        &s.weight_shape(),
    )
}

/// dw and db (both overwritten), with g as above.
#[allow(clippy::too_many_arguments)]
pub fn backward_weight(
    rec: &mut Recorder,
    s: &Conv2dShape,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    x: &Tensor,
    dw: &Tensor,
    db: &Tensor,
) -> Result<()> {
    s.check()?;
    let g = Geom::conv(s);
    check_len("conv2d backward_weight y", y, g.out_len(), &s.out_shape())?;
    check_len("conv2d backward_weight dy", dy, g.out_len(), &s.out_shape())?;
    check_len("conv2d backward_weight x", x, g.in_len(), &s.in_shape())?;
    check_len(
        "conv2d backward_weight dw",
        dw,
        s.weight_shape().iter().product(),
        &s.weight_shape(),
    )?;
    check_len("conv2d backward_weight db", db, s.c_out, &[s.c_out])?;
    let taps = s.kh * s.kw;
    let n_w = s.c_out * s.c_in * taps;
    if wgrad_cpu(rec, &g, act, false, dy, y, x, x, dw, db)? {
        return Ok(());
    }
    if super::conv_gemm::wgrad_fits(rec.gpu, &g) {
        return super::conv_gemm::conv_wgrad(rec, &g, act, dy, y, x, dw, db);
    }
    let [cb, ncb, cib, ncib] = wgrad_blocks(s.c_out, s.c_in, taps, 128);
    let chunks = wgrad_chunks(rec.gpu, s.batch * g.h_out * g.w_out, ncb * ncib);
    let part = rec.gpu.storage(((n_w + s.c_out) * chunks * 4) as u64);
    let mut consts = g.overrides(act);
    consts.push(("CB", cb as f64));
    consts.push(("CIB", cib as f64));
    rec.dispatch_with(
        "conv2d",
        "conv_wgrad",
        &consts,
        &g.params(chunks, n_w + s.c_out),
        &[dy.into(), y.into(), x.into(), (&part).into()],
        [chunks.div_ceil(WG) as u32, ncb as u32, ncib as u32],
    )?;
    reduce_partials(rec, &part, chunks, n_w, s.c_out, dw, db)
}

/// Uniform random values in [-1, 1) from a fixed seed, for benchmarks.
pub(crate) fn bench_fill(gpu: &Gpu, shape: &[usize], seed: u64) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let mut state = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    gpu.upload(&v, shape)
}

/// The seed autoencoder's encoder convs (3x3, stride 2, pad 1) at `batch`.
pub fn ae_shapes(batch: usize) -> [(&'static str, Conv2dShape, Activation); 2] {
    let c = |c_in, h, c_out| Conv2dShape {
        batch,
        c_in,
        h_in: h,
        w_in: h,
        c_out,
        kh: 3,
        kw: 3,
        stride: 2,
        pad: 1,
    };
    [
        ("ae.enc0", c(1, 128, 8), Activation::Relu),
        ("ae.enc1", c(8, 64, 4), Activation::Relu),
    ]
}

/// One program per (layer, pass) at the seed AE's conv shapes, inputs filled with random values.
pub fn bench_programs(gpu: &Gpu, batch: usize) -> Result<Vec<KernelBench>> {
    let mut cases = BenchCases::new(gpu, None);
    bench_cases(&mut cases, batch)?;
    Ok(cases.cases)
}

/// The bench cases of [`bench_programs`], and the fused pass training runs for the seed AE's
/// enc1 (its input gradient times relu' of enc0's output, with enc0's weight gradient).
pub fn bench_cases(cases: &mut BenchCases, batch: usize) -> Result<()> {
    let gpu = cases.gpu;
    let [(_, s0, act0), _] = ae_shapes(batch);
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
        let desc = shape_desc(&s);
        cases.add(
            format!("conv2d forward {name} ({desc})"),
            flops,
            nx + nw + nb + ny,
            |rec| forward(rec, &s, &x, &w, &b, &y, act),
        )?;
        cases.add(
            format!("conv2d backward_input {name} ({desc})"),
            flops,
            2.0 * ny + nw + nx,
            |rec| backward_input(rec, &s, act, &y, &dy, &w, &dx),
        )?;
        cases.add(
            format!("conv2d backward_weight {name} ({desc})"),
            flops,
            2.0 * ny + nx + nw + nb,
            |rec| backward_weight(rec, &s, act, &y, &dy, &x, &dw, &db),
        )?;
        if name == "ae.enc1" {
            // dx = enc0's output gradient times relu'(x), never stored: enc0's weight gradient
            // is summed from it in the same pass (reads enc0's input x0 too)
            let x0 = bench_fill(gpu, &s0.in_shape(), 6)?;
            let dw0 = gpu.zeros(&s0.weight_shape());
            let db0 = gpu.zeros(&[s0.c_out]);
            let n0 = x0.bytes() as f64 + 4.0 * (dw0.len() + db0.len()) as f64;
            cases.add_if(
                format!(
                    "conv2d backward_input {name} fused with ae.enc0 backward_weight ({desc}; {})",
                    shape_desc(&s0)
                ),
                flops + 2.0 * s0.macs(),
                2.0 * ny + nw + nx + n0,
                |rec| {
                    backward_input_into_wgrad_below(
                        rec,
                        &s,
                        act,
                        &y,
                        &dy,
                        &w,
                        (act0, &x),
                        &s0,
                        &x0,
                        &dw0,
                        &db0,
                    )
                },
            )?;
        }
    }
    Ok(())
}

/// "NxCxHxW -> CxHxW, KHxKW sS pP": a conv-like layer's shape as the bench tables name it
/// (ConvTranspose2d appends its output padding).
pub(crate) fn bench_desc(
    input: [usize; 4],
    output: [usize; 3],
    kernel: [usize; 2],
    stride: usize,
    pad: usize,
) -> String {
    let [n, ci, hi, wi] = input;
    let [co, ho, wo] = output;
    let [kh, kw] = kernel;
    format!("{n}x{ci}x{hi}x{wi} -> {co}x{ho}x{wo}, {kh}x{kw} s{stride} p{pad}")
}

fn shape_desc(s: &Conv2dShape) -> String {
    bench_desc(
        [s.batch, s.c_in, s.h_in, s.w_in],
        [s.c_out, s.h_out(), s.w_out()],
        [s.kh, s.kw],
        s.stride,
        s.pad,
    )
}
