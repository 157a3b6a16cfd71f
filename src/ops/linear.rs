//! nn.Linear: y = act(x W^T + b), x [batch, d_in], W [d_out, d_in], b [d_out], and its two
//! backward passes. All three are one matmul shape, C[i][j] = sum_k S(i,k) P(k,j):
//!
//! | pass            | C            | S(i,k)              | P(k,j)          | K     |
//! |-----------------|--------------|---------------------|-----------------|-------|
//! | forward         | y [b][o]     | x[b][k]             | W[o][k]         | d_in  |
//! | backward_input  | dx [b][i]    | g[b][k]             | W[k][i]         | d_out |
//! | backward_weight | dW [o][i]    | g[k][o] (k = batch) | x[k][i]         | batch |
//!
//! where g = dy * act'(y) is formed on the fly from the forward output y wherever S is loaded
//! (never stored; it costs one extra load per value and the two backward kernels each form it).
//!
//! Two kernel variants sit behind the same functions:
//! - [`Variant::Registers`] for software adapters (lavapipe): each invocation keeps a TM x TN
//!   block of C in registers, with no barriers. On lavapipe every storage-buffer load is a
//!   per-lane scalar loop, so the S values a subgroup shares are loaded once cooperatively (lane
//!   l loads k + l) and handed out with `subgroupBroadcast`; where rows start on whole texels,
//!   S and P are read from rgba32float copies instead, bound as read-only storage textures (a
//!   texel load of 4 floats costs less than one storage-buffer float load), the `_tex` entries. Mesa only keeps explicit variables
//!   in registers, so the kernels are fully unrolled text made by [`cpu_wgsl`] and stored in
//!   shaders/linear_cpu.wgsl (tests/linear.rs checks the file is current).
//! - [`Variant::Tiled`] for GPUs: 64x64 output tiles staged through workgroup memory, 4x4 per
//!   thread (shaders/linear.wgsl).
//!
//! Long reductions are split over K ("split-K"): each chunk writes a partial C to a scratch
//! buffer and `splitk_reduce` sums the partials in chunk order, then adds the bias and the
//! activation. No atomics, fixed order: results are bitwise reproducible for a given adapter and
//! plan. The bias gradient is summed inside the weight-gradient kernel (S is g there).

use anyhow::{bail, ensure, Context as _, Result};

use super::Activation;
use crate::gpu::timing::BenchCases;
use crate::gpu::{Gpu, Recorder, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearShape {
    pub batch: usize,
    pub d_in: usize,
    pub d_out: usize,
}

/// Which kernel family computes a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Variant {
    /// Register-blocked, barrier-free, unrolled (software adapters; needs subgroups).
    Registers,
    /// Workgroup-memory tiles (GPUs, and any adapter without subgroups).
    Tiled,
}

/// Overrides for tests and benchmarks; the default picks by adapter.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub variant: Option<Variant>,
    /// Number of K chunks (1 = no split). Rounded so that chunks hold whole kernel steps.
    pub split_k: Option<usize>,
    /// Register kernels: read S and P (x or g, and the weights or x) from texture copies
    /// (`Some(true)`, where [`textures_fit`]) or the buffers; `None`: textures wherever they fit.
    pub textures: Option<bool>,
}

/// The three passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    Forward,
    BackwardInput,
    BackwardWeight,
}

impl Pass {
    fn tag(self) -> &'static str {
        match self {
            Pass::Forward => "fwd",
            Pass::BackwardInput => "bin",
            Pass::BackwardWeight => "bw",
        }
    }
    /// (M, N, K) of C = S P for this pass.
    pub fn mnk(self, s: &LinearShape) -> (usize, usize, usize) {
        match self {
            Pass::Forward => (s.batch, s.d_out, s.d_in),
            Pass::BackwardInput => (s.batch, s.d_in, s.d_out),
            Pass::BackwardWeight => (s.d_out, s.d_in, s.batch),
        }
    }
}

/// Register block (rows of S, columns of P) per invocation of the CPU kernels, per pass.
/// On lavapipe (Mesa 22.3) every storage load is a per-lane branchy loop, so the loads per FMA
/// decide the speed: per 8 k a lane does TM + 8 TN loads and 8 TM TN FMAs. 64 x 8 (21 FMAs per
/// load) measured ~2x 32 x 4 at 128x512x2048; 128 x 8 was ~1.2x better still but takes ~3 s to
/// compile per pipeline (too slow for the tests); 64 x 16 and 16 x 8 were slower.
pub const CPU_BLOCK: [(Pass, usize, usize); 3] = [
    (Pass::Forward, 64, 8),
    (Pass::BackwardInput, 64, 8),
    (Pass::BackwardWeight, 64, 8),
];
/// Lanes per subgroup the CPU kernels' cooperative S loads assume (k advances 8 per step).
const CPU_KSTEP: usize = 8;
/// One subgroup per workgroup: the VAE's narrow products (200 or 512 outputs wide) then make 4-8
/// workgroups where 64-lane ones made 1-2 for llvmpipe's threads to share (measured 1.3-2x on
/// them, the large ones unchanged; `bench kernels --filter linear`).
const CPU_WG: usize = 8;
/// Width in texels of the texture copies the `_tex` kernels read.
const PTEX_WIDTH: usize = crate::gpu::kernels::FLAT_TEXTURE_WIDTH;
/// Operands under this many floats are read from a copy even where the tensor is its own
/// texture (gpu::alias): measured on lavapipe, the 200 -> 512 layer's backward products ran
/// 1.2x slower reading through the alias than copy plus read (the reason is not known); the
/// large products are faster through it (49 against 52-54 ms for 16384 -> 512).
const ALIAS_MIN: usize = 1 << 20;
/// Tiled kernel: output tile and K step.
const TILE: usize = 64;
const TILE_K: usize = 16;
const REDUCE_WG: u32 = 256;

fn cpu_block(pass: Pass) -> (usize, usize) {
    let (_, tm, tn) = CPU_BLOCK.iter().find(|(p, _, _)| *p == pass).unwrap();
    (*tm, *tn)
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct MmParams {
    m: u32,
    n: u32,
    k: u32,
    /// K per chunk (a multiple of the kernel's K step)
    kc: u32,
    /// 1: write raw partial sums for splitk_reduce; 0: write the finished output
    split: u32,
    /// the forward activation code (0 none, 1 relu, 2 sigmoid): the register kernels apply relu
    /// from here and only sigmoid through the ACT override (see `record_matmul`)
    act: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ReduceParams {
    /// values per partial
    len: u32,
    /// bias period (columns), forward only
    n: u32,
    chunks: u32,
    /// 1: add bias[e % n] and apply ACT
    bias: u32,
}

/// How one pass will run: variant and K chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub variant: Variant,
    pub chunks: usize,
    /// Register kernels: S and P from textures where [`textures_fit`].
    pub textures: bool,
}

/// The variant an adapter gets by default.
pub fn default_variant(gpu: &Gpu) -> Variant {
    if gpu.is_cpu() && cpu_supported(gpu) {
        Variant::Registers
    } else {
        Variant::Tiled
    }
}

/// The CPU kernels need subgroup broadcasts over at least 8 lanes.
pub fn cpu_supported(gpu: &Gpu) -> bool {
    gpu.features.contains(wgpu::Features::SUBGROUP)
        && gpu.info.subgroup_min_size as usize >= CPU_KSTEP
}

fn kstep(v: Variant) -> usize {
    match v {
        Variant::Registers => CPU_KSTEP,
        Variant::Tiled => TILE_K,
    }
}

/// The static choice of K chunks: split long reductions so that partial sums stay in cache
/// (CPU) or so that enough workgroups exist (GPU). Chunks never get shorter than 256.
fn default_chunks(gpu: &Gpu, v: Variant, m: usize, n: usize, k: usize) -> usize {
    let c = match v {
        Variant::Registers => k.div_ceil(2048),
        Variant::Tiled => {
            let tiles = m.div_ceil(TILE) * n.div_ceil(TILE);
            let want = (4 * 132usize).div_ceil(tiles.max(1)); // enough for a large GPU
            want.min(k / 256).max(1)
        }
    };
    clamp_chunks(gpu, m, n, k, v, c)
}

/// Keeps chunks >= 1, whole K steps per chunk, and the partials within one binding.
fn clamp_chunks(gpu: &Gpu, m: usize, n: usize, k: usize, v: Variant, c: usize) -> usize {
    let steps = k.div_ceil(kstep(v)).max(1);
    let mut c = c.clamp(1, steps);
    let max_bind = gpu.limits.max_storage_buffer_binding_size as usize;
    while c > 1 && c * m * n * 4 > max_bind {
        c -= 1;
    }
    // re-derive so that no chunk is empty
    let kc = chunk_len(k, c, v);
    k.div_ceil(kc.max(1)).max(1)
}

fn chunk_len(k: usize, chunks: usize, v: Variant) -> usize {
    let step = kstep(v);
    k.div_ceil(chunks.max(1)).div_ceil(step) * step
}

/// The plan `forward`/`backward_*` would use for `pass` on this adapter.
pub fn plan(gpu: &Gpu, s: &LinearShape, pass: Pass, opts: Options) -> Plan {
    let variant = match opts.variant {
        Some(Variant::Registers) if !cpu_supported(gpu) => Variant::Tiled,
        Some(v) => v,
        None => default_variant(gpu),
    };
    let (m, n, k) = pass.mnk(s);
    let chunks = match opts.split_k {
        Some(c) => clamp_chunks(gpu, m, n, k, variant, c),
        None => crate::gpu::autotune::linear_chunks(gpu, pass.tag(), variant, m, n, k)
            .map(|c| clamp_chunks(gpu, m, n, k, variant, c))
            .unwrap_or_else(|| default_chunks(gpu, variant, m, n, k)),
    };
    Plan {
        variant,
        chunks,
        textures: opts
            .textures
            .unwrap_or_else(|| crate::gpu::kernels::texture_reads(gpu)),
    }
}

fn check(t: &Tensor, what: &str, want: usize, shape: &LinearShape) -> Result<()> {
    if t.len() != want {
        bail!(
            "linear {shape:?}: {what} holds {} values (shape {:?}) but the layer needs {want}",
            t.len(),
            t.shape
        );
    }
    Ok(())
}

fn check_shape(s: &LinearShape) -> Result<()> {
    let big = [s.batch, s.d_in, s.d_out]
        .iter()
        .any(|&v| v > u32::MAX as usize / 8);
    if big || s.batch * s.d_in.max(s.d_out) > u32::MAX as usize / 4 {
        bail!("linear {s:?}: too large for 32-bit indexing; split the batch");
    }
    Ok(())
}

fn act_const(act: Activation) -> [(&'static str, f64); 1] {
    [("ACT", act.code() as f64)]
}

/// y = act(x W^T + b). Overwrites y.
pub fn forward(
    rec: &mut Recorder,
    s: &LinearShape,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    y: &Tensor,
    act: Activation,
) -> Result<()> {
    forward_opt(rec, s, x, w, b, y, act, Options::default())
}

/// [`forward`] with the variant and split forced.
#[allow(clippy::too_many_arguments)]
pub fn forward_opt(
    rec: &mut Recorder,
    s: &LinearShape,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    y: &Tensor,
    act: Activation,
    opts: Options,
) -> Result<()> {
    check_shape(s)?;
    check(x, "x", s.batch * s.d_in, s)?;
    check(w, "W", s.d_out * s.d_in, s)?;
    check(b, "b", s.d_out, s)?;
    check(y, "y", s.batch * s.d_out, s)?;
    let pl = plan(rec.gpu, s, Pass::Forward, opts);
    let (m, n, k) = Pass::Forward.mnk(s);
    let c = act_const(act);
    let out = matmul_out(rec, pl, m * n, y)?;
    let binds = [x.into(), w.into(), b.into(), (&out).into()];
    record_matmul(rec, Pass::Forward, pl, m, n, k, &c, &binds)?;
    if pl.chunks > 1 {
        reduce(rec, &c, &out, y, b, m * n, n, pl.chunks, true)?;
    }
    Ok(())
}

/// dx = g W with g = dy * act'(y) from the forward output y (relu' = [y > 0], sigmoid' =
/// y (1 - y), none = 1). Overwrites dx. g is formed on the fly, not stored.
pub fn backward_input(
    rec: &mut Recorder,
    s: &LinearShape,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
) -> Result<()> {
    backward_input_opt(rec, s, act, y, dy, w, dx, Options::default())
}

#[allow(clippy::too_many_arguments)]
pub fn backward_input_opt(
    rec: &mut Recorder,
    s: &LinearShape,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
    opts: Options,
) -> Result<()> {
    backward_input_with(rec, s, act, y, dy, w, dx, opts, None)
}

#[allow(clippy::too_many_arguments)]
fn backward_input_with(
    rec: &mut Recorder,
    s: &LinearShape,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
    opts: Options,
    formed: Option<&wgpu::Buffer>,
) -> Result<()> {
    check_shape(s)?;
    check(y, "y", s.batch * s.d_out, s)?;
    check(dy, "dy", s.batch * s.d_out, s)?;
    check(w, "W", s.d_out * s.d_in, s)?;
    check(dx, "dx", s.batch * s.d_in, s)?;
    let pl = plan(rec.gpu, s, Pass::BackwardInput, opts);
    let (m, n, k) = Pass::BackwardInput.mnk(s);
    let c = act_const(act);
    let out = matmul_out(rec, pl, m * n, dx)?;
    let (g, mc) = stored_g(rec, pl, act, y, dy, formed)?;
    let binds = [(&g).into(), y.into(), w.into(), (&out).into()];
    record_matmul(rec, Pass::BackwardInput, pl, m, n, k, &mc, &binds)?;
    if pl.chunks > 1 {
        reduce(rec, &c, &out, dx, dx, m * n, n, pl.chunks, false)?;
    }
    Ok(())
}

/// dW = g^T x and db = sum over the batch of g, g = dy * act'(y). Both overwritten.
#[allow(clippy::too_many_arguments)]
pub fn backward_weight(
    rec: &mut Recorder,
    s: &LinearShape,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    x: &Tensor,
    dw: &Tensor,
    db: &Tensor,
) -> Result<()> {
    backward_weight_opt(rec, s, act, y, dy, x, dw, db, Options::default())
}

#[allow(clippy::too_many_arguments)]
pub fn backward_weight_opt(
    rec: &mut Recorder,
    s: &LinearShape,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    x: &Tensor,
    dw: &Tensor,
    db: &Tensor,
    opts: Options,
) -> Result<()> {
    backward_weight_with(rec, s, act, y, dy, x, dw, db, opts, None)
}

#[allow(clippy::too_many_arguments)]
fn backward_weight_with(
    rec: &mut Recorder,
    s: &LinearShape,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    x: &Tensor,
    dw: &Tensor,
    db: &Tensor,
    opts: Options,
    formed: Option<&wgpu::Buffer>,
) -> Result<()> {
    check_shape(s)?;
    check(y, "y", s.batch * s.d_out, s)?;
    check(dy, "dy", s.batch * s.d_out, s)?;
    check(x, "x", s.batch * s.d_in, s)?;
    check(dw, "dW", s.d_out * s.d_in, s)?;
    check(db, "db", s.d_out, s)?;
    let pl = plan(rec.gpu, s, Pass::BackwardWeight, opts);
    let (m, n, k) = Pass::BackwardWeight.mnk(s);
    let c = act_const(act);
    let out = matmul_out(rec, pl, m * n, dw)?;
    let dbout = matmul_out(rec, pl, m, db)?;
    let (g, mc) = stored_g(rec, pl, act, y, dy, formed)?;
    let binds = [
        (&g).into(),
        y.into(),
        x.into(),
        (&out).into(),
        (&dbout).into(),
    ];
    record_matmul(rec, Pass::BackwardWeight, pl, m, n, k, &mc, &binds)?;
    if pl.chunks > 1 {
        reduce(rec, &c, &out, dw, dw, m * n, n, pl.chunks, false)?;
        reduce(rec, &c, &dbout, db, db, m, m, pl.chunks, false)?;
    }
    Ok(())
}

/// Both backward products of one layer: dW, db ([`backward_weight`]) and, when `dx` is given,
/// dx ([`backward_input`]). Where both use the register kernels, g = dy * act'(y) is formed once
/// for the two.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    rec: &mut Recorder,
    s: &LinearShape,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    x: &Tensor,
    w: &Tensor,
    dw: &Tensor,
    db: &Tensor,
    dx: Option<&Tensor>,
) -> Result<()> {
    let opts = Options::default();
    let (pw, pi) = (
        plan(rec.gpu, s, Pass::BackwardWeight, opts),
        plan(rec.gpu, s, Pass::BackwardInput, opts),
    );
    let share = dx.is_some()
        && act != Activation::None
        && pw.variant == Variant::Registers
        && pi.variant == Variant::Registers;
    let formed = if share {
        check(y, "y", s.batch * s.d_out, s)?;
        check(dy, "dy", s.batch * s.d_out, s)?;
        Some(form_g(rec, act, y, dy, pw.textures)?)
    } else {
        None
    };
    backward_weight_with(rec, s, act, y, dy, x, dw, db, opts, formed.as_ref())?;
    if let Some(dx) = dx {
        backward_input_with(rec, s, act, y, dy, w, dx, opts, formed.as_ref())?;
    }
    Ok(())
}

/// What the backward matmuls read as dy, and their ACT: for the register kernels with an
/// activation, g = dy * act'(y) is stored first by `form_g` (one cheap pass; or `formed`, when
/// [`backward`] made it for both products) and the matmul runs with ACT = none, which halves its
/// S loads (on lavapipe the loads set the speed). The tiled kernels form g while staging tiles,
/// where it costs little.
fn stored_g(
    rec: &mut Recorder,
    pl: Plan,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    formed: Option<&wgpu::Buffer>,
) -> Result<(wgpu::Buffer, [(&'static str, f64); 1])> {
    if pl.variant != Variant::Registers || act == Activation::None {
        return Ok((dy.buf.clone(), act_const(act)));
    }
    if let Some(g) = formed {
        return Ok((g.clone(), act_const(Activation::None)));
    }
    Ok((
        form_g(rec, act, y, dy, pl.textures)?,
        act_const(Activation::None),
    ))
}

/// g = dy * act'(y) in a new buffer: `form_g`, or with `textures` `form_g4_tex` reading texture
/// copies where the length allows.
fn form_g(
    rec: &mut Recorder,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    textures: bool,
) -> Result<wgpu::Buffer> {
    let g = rec.gpu.storage((dy.len() * 4) as u64);
    form_g_into(rec, act, y, dy, &g, textures)?;
    Ok(g)
}

/// [`form_g`] into `g` (at least dy's length): also what a conv's backward pass runs for
/// `then` where its kernel has no epilogue for it (conv2d::then_separately).
pub(crate) fn form_g_into(
    rec: &mut Recorder,
    act: Activation,
    y: &Tensor,
    dy: &Tensor,
    g: &wgpu::Buffer,
    textures: bool,
) -> Result<()> {
    let len = dy.len();
    let tex = len.is_multiple_of(4) && textures && rec.gpu.flat_texture_fits(len);
    let (entry, items, binds) = if tex {
        let tdy = rec.flat_texture(&dy.buf, len);
        let ty = rec.flat_texture(&y.buf, len);
        (
            "form_g4_tex",
            len / 4,
            [(&tdy).into(), (&ty).into(), g.into()],
        )
    } else {
        ("form_g", len, [dy.into(), y.into(), g.into()])
    };
    let params = ReduceParams {
        len: items as u32,
        n: 0,
        chunks: 0,
        bias: 0,
    };
    rec.dispatch_with(
        "linear",
        entry,
        &act_const(act),
        &params,
        &binds,
        crate::gpu::grid_1d(items as u64, REDUCE_WG),
    )?;
    Ok(())
}

/// Where the matmul writes: the output itself, or a scratch buffer of `chunks` partials.
fn matmul_out(rec: &Recorder, pl: Plan, len: usize, out: &Tensor) -> Result<wgpu::Buffer> {
    if pl.chunks <= 1 {
        return Ok(out.buf.clone());
    }
    let bytes = (pl.chunks * len * 4) as u64;
    if bytes > rec.gpu.limits.max_storage_buffer_binding_size {
        bail!("linear: split-K scratch of {bytes} bytes exceeds the adapter's binding limit");
    }
    Ok(rec.gpu.storage(bytes))
}

#[allow(clippy::too_many_arguments)]
fn record_matmul(
    rec: &mut Recorder,
    pass: Pass,
    pl: Plan,
    m: usize,
    n: usize,
    k: usize,
    consts: &[(&str, f64)],
    binds: &[crate::gpu::kernels::Bind],
) -> Result<()> {
    let kc = chunk_len(k, pl.chunks, pl.variant);
    let act = consts
        .iter()
        .find(|(name, _)| *name == "ACT")
        .map_or(0, |&(_, code)| code as u32);
    let params = MmParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        kc: kc as u32,
        split: (pl.chunks > 1) as u32,
        act,
        _pad: [0; 2],
    };
    // The register kernels take relu from the uniform (a branch-free select) and only sigmoid
    // from the ACT override: llvmpipe takes ~16 s to compile one of them (measured: cpu_fwd_tex
    // at 16x512 -> 200), and an override per activation made the VAE compile its forward kernel
    // three times. Sigmoid stays an override because llvmpipe runs both sides of every branch:
    // a uniform sigmoid branch cost the ACT-none layers ~25% (its exp per output). Their
    // backward passes always run with ACT none (g is formed first: `stored_g`).
    let sigmoid = [("ACT", Activation::Sigmoid.code() as f64)];
    let consts = match pl.variant {
        Variant::Registers => {
            ensure!(
                pass == Pass::Forward || act == 0,
                "linear: the register kernels' backward passes take a formed g (ACT none)"
            );
            if act == Activation::Sigmoid.code() {
                &sigmoid[..]
            } else {
                &[][..]
            }
        }
        Variant::Tiled => consts,
    };
    let z = pl.chunks as u32;
    let mut binds = binds.to_vec();
    let (shader, entry, groups) = match pl.variant {
        Variant::Registers => {
            let (tm, tn) = cpu_block(pass);
            let gx = n.div_ceil(tn).div_ceil(CPU_WG);
            let gy = m.div_ceil(tm);
            // S is binding 1; P is binding 2 in the forward pass (W), 3 in the backward ones
            let at = if pass == Pass::Forward { 1 } else { 2 };
            let tex = pl.textures && textures_fit(rec.gpu, pass, m, n, k);
            let entry = if tex {
                for (i, len) in [(0, m * k), (at, n * k)] {
                    let crate::gpu::kernels::Bind::Buffer { buf, .. } = &binds[i] else {
                        bail!("linear: S and P must be buffer bindings");
                    };
                    let view = if len < ALIAS_MIN {
                        rec.flat_texture_copy(&buf.clone(), len)
                    } else {
                        rec.flat_texture(&buf.clone(), len)
                    };
                    binds[i] = (&view).into();
                }
                if pass != Pass::Forward {
                    binds.remove(1); // y: g is already formed (stored_g)
                }
                format!("cpu_{}_tex", pass.tag())
            } else {
                format!("cpu_{}", pass.tag())
            };
            ("linear_cpu", entry, [gx, gy])
        }
        Variant::Tiled => (
            "linear",
            format!("tiled_{}", pass.tag()),
            [n.div_ceil(TILE), m.div_ceil(TILE)],
        ),
    };
    let max = rec.gpu.limits.max_compute_workgroups_per_dimension as usize;
    if groups[0] > max || groups[1] > max {
        bail!("linear: {m}x{n} output needs {groups:?} workgroups, over the adapter's {max}; split the layer");
    }
    rec.dispatch_with(
        shader,
        &entry,
        consts,
        &params,
        &binds,
        [groups[0] as u32, groups[1] as u32, z],
    )
    .with_context(|| format!("linear {} ({m}x{n}x{k})", pass.tag()))
}

/// Whether the register kernels can read `pass`'s S and P from texture copies: their rows must
/// start on whole texels (P: k forward, n backward; S: k forward and backward_input, m for
/// the weight gradient, all multiples of 4) and the copies must fit the adapter's texture height.
pub fn textures_fit(gpu: &Gpu, pass: Pass, m: usize, n: usize, k: usize) -> bool {
    let (p_row, s_row) = match pass {
        Pass::Forward => (k, k),
        Pass::BackwardInput => (n, k),
        Pass::BackwardWeight => (n, m),
    };
    p_row % 4 == 0 && s_row % 4 == 0 && gpu.flat_texture_fits(n * k) && gpu.flat_texture_fits(m * k)
}

/// out = sum of `chunks` partials in order (+ bias[e % n] and ACT when `bias`).
#[allow(clippy::too_many_arguments)]
fn reduce(
    rec: &mut Recorder,
    consts: &[(&str, f64)],
    parts: &wgpu::Buffer,
    out: &Tensor,
    bias: &Tensor,
    len: usize,
    n: usize,
    chunks: usize,
    with_bias: bool,
) -> Result<()> {
    let params = ReduceParams {
        len: len as u32,
        n: n as u32,
        chunks: chunks as u32,
        bias: with_bias as u32,
    };
    // the bias binding is unused without bias; bind the output there (read-only view is fine
    // only when it is not also written: use a separate buffer then)
    let bias_bind: crate::gpu::kernels::Bind = if with_bias {
        bias.into()
    } else {
        (&rec.gpu.storage(4)).into()
    };
    rec.dispatch_with(
        "linear",
        "splitk_reduce",
        consts,
        &params,
        &[parts.into(), bias_bind, out.into()],
        crate::gpu::grid_1d(len as u64, REDUCE_WG),
    )
}

// ------------------------------------------------------------------------------------------
// Benchmarks

/// The VAE's linear layers at `batch`: (name, d_in, d_out, act).
fn vae_layers() -> [(&'static str, usize, usize, Activation); 4] {
    [
        ("enc.fc 16384->512", 16384, 512, Activation::Relu),
        ("mu/logvar 512->200", 512, 200, Activation::None),
        ("dec.fc 200->512", 200, 512, Activation::Relu),
        ("dec.out 512->16384", 512, 16384, Activation::Sigmoid),
    ]
}

fn random(gpu: &Gpu, n: usize, seed: u64, scale: f32) -> Result<Tensor> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect();
    gpu.upload(&v, &[n])
}

/// The bench cases of `facegpu bench kernels`: each (VAE layer, pass) at `batch`, inputs filled
/// with random values; flops count 2 per multiply-add of the matmul, bytes what a minimal
/// implementation reads and writes.
pub fn bench_cases(cases: &mut BenchCases, batch: usize) -> Result<()> {
    let opts = Options::default();
    let gpu = cases.gpu;
    for (li, (name, d_in, d_out, act)) in vae_layers().into_iter().enumerate() {
        let s = LinearShape { batch, d_in, d_out };
        let seed = 100 * li as u64;
        let x = random(gpu, batch * d_in, seed + 1, 1.0)?;
        let w = random(gpu, d_out * d_in, seed + 2, 1.0 / (d_in as f32).sqrt())?;
        let b = random(gpu, d_out, seed + 3, 0.1)?;
        let y = random(gpu, batch * d_out, seed + 4, 1.0)?;
        let dy = random(gpu, batch * d_out, seed + 5, 1.0)?;
        let dx = gpu.zeros(&[batch * d_in]);
        let dw = gpu.zeros(&[d_out * d_in]);
        let db = gpu.zeros(&[d_out]);
        let flops = 2.0 * (batch * d_in * d_out) as f64;
        let f = 4.0;
        let g_bytes = if act == Activation::None { 1.0 } else { 2.0 } * f * (batch * d_out) as f64;
        for pass in [Pass::Forward, Pass::BackwardInput, Pass::BackwardWeight] {
            let pl = plan(gpu, &s, pass, opts);
            let name = format!(
                "linear {} {name} (batch {batch}, {:?}, {} chunk{})",
                match pass {
                    Pass::Forward => "forward",
                    Pass::BackwardInput => "backward_input",
                    Pass::BackwardWeight => "backward_weight",
                },
                pl.variant,
                pl.chunks,
                if pl.chunks == 1 { "" } else { "s" }
            );
            let bytes = match pass {
                Pass::Forward => f * (batch * d_in + d_out * d_in + d_out + batch * d_out) as f64,
                Pass::BackwardInput => g_bytes + f * (d_out * d_in + batch * d_in) as f64,
                Pass::BackwardWeight => g_bytes + f * (batch * d_in + d_out * d_in + d_out) as f64,
            };
            cases.add(name, flops, bytes, |rec| match pass {
                Pass::Forward => forward_opt(rec, &s, &x, &w, &b, &y, act, opts),
                Pass::BackwardInput => backward_input_opt(rec, &s, act, &y, &dy, &w, &dx, opts),
                Pass::BackwardWeight => {
                    backward_weight_opt(rec, &s, act, &y, &dy, &x, &dw, &db, opts)
                }
            })?;
        }
    }
    Ok(())
}

/// Measures the number of K chunks for each VAE layer and pass at `batch` on this adapter
/// (candidates 1, 2, 4, ... while chunks stay >= 256 long), keeps the fastest in the autotune
/// cache (src/gpu/autotune.rs) and returns (key, chunks). A cache that cannot be written is
/// reported on stderr and the choices still returned; later runs then use the static choice.
pub fn autotune(gpu: &Gpu, batch: usize) -> Result<Vec<(String, usize)>> {
    let found = autotune_measure(gpu, batch)?;
    let entries: Vec<(String, serde_json::Value)> = found
        .iter()
        .map(|(k, c)| (k.clone(), serde_json::Value::from(*c)))
        .collect();
    if let Err(e) = crate::gpu::autotune::store(gpu, &entries) {
        eprintln!(
            "facegpu: linear autotune results not cached ({e:#}); static choices stay in use"
        );
    }
    Ok(found)
}

/// The measurements of [`autotune`] without storing them: (key, fastest chunks) per VAE layer
/// shape and pass.
pub fn autotune_measure(gpu: &Gpu, batch: usize) -> Result<Vec<(String, usize)>> {
    let mut found = Vec::new();
    for (_, d_in, d_out, act) in vae_layers() {
        let s = LinearShape { batch, d_in, d_out };
        for pass in [Pass::Forward, Pass::BackwardInput, Pass::BackwardWeight] {
            let variant = plan(gpu, &s, pass, Options::default()).variant;
            let (m, n, k) = pass.mnk(&s);
            let mut cands = vec![1usize];
            while k / (cands.last().unwrap() * 2) >= 256 && cands.len() < 7 {
                cands.push(cands.last().unwrap() * 2);
            }
            let mut best = (f64::INFINITY, 1usize);
            let mut tried = Vec::new();
            for c in cands {
                let opts = Options {
                    variant: Some(variant),
                    split_k: Some(c),
                    textures: None,
                };
                let chunks = plan(gpu, &s, pass, opts).chunks;
                if tried.contains(&chunks) {
                    continue;
                }
                tried.push(chunks);
                let prog = one_program(gpu, &s, pass, act, opts)?;
                let t = crate::gpu::timing::time_program(gpu, &prog, 1, 3)?.seconds();
                if t < best.0 {
                    best = (t, chunks);
                }
            }
            let key = crate::gpu::autotune::linear_key(pass.tag(), variant, m, n, k);
            found.push((key, best.1));
        }
    }
    Ok(found)
}

/// One pass of one layer as a program on random inputs (for timing).
fn one_program(
    gpu: &Gpu,
    s: &LinearShape,
    pass: Pass,
    act: Activation,
    opts: Options,
) -> Result<crate::gpu::Program> {
    let (b, di, dd) = (s.batch, s.d_in, s.d_out);
    let mut rec = gpu.record();
    match pass {
        Pass::Forward => {
            let x = random(gpu, b * di, 1, 1.0)?;
            let w = random(gpu, dd * di, 2, 1.0 / (di as f32).sqrt())?;
            let bias = random(gpu, dd, 3, 0.1)?;
            let y = gpu.zeros(&[b * dd]);
            forward_opt(&mut rec, s, &x, &w, &bias, &y, act, opts)?;
        }
        Pass::BackwardInput => {
            let y = random(gpu, b * dd, 4, 1.0)?;
            let dy = random(gpu, b * dd, 5, 1.0)?;
            let w = random(gpu, dd * di, 2, 1.0 / (di as f32).sqrt())?;
            let dx = gpu.zeros(&[b * di]);
            backward_input_opt(&mut rec, s, act, &y, &dy, &w, &dx, opts)?;
        }
        Pass::BackwardWeight => {
            let y = random(gpu, b * dd, 4, 1.0)?;
            let dy = random(gpu, b * dd, 5, 1.0)?;
            let x = random(gpu, b * di, 1, 1.0)?;
            let dw = gpu.zeros(&[dd * di]);
            let db = gpu.zeros(&[dd]);
            backward_weight_opt(&mut rec, s, act, &y, &dy, &x, &dw, &db, opts)?;
        }
    }
    rec.finish()
}

// ------------------------------------------------------------------------------------------
// The CPU kernels' source (shaders/linear_cpu.wgsl is this function's output).

/// Generates shaders/linear_cpu.wgsl: one fully unrolled entry point per pass.
///
/// Per invocation: rows i0..i0+TM of C (shared by the subgroup), columns j0..j0+TN (its own).
/// Per step of 8 k: lane l loads S(i, k + l) for its subgroup's TM rows; each lane loads its
/// 8 x TN values of P; then for each of the 8 k, S(i, k) = subgroupBroadcast(a_i, kk) and
/// TM x TN multiply-adds. Out-of-range k load zero (S) and are masked (P); out-of-range rows
/// and columns read clamped addresses and are not stored.
pub fn cpu_wgsl() -> String {
    let mut o = String::new();
    o += "// GENERATED by facegpu::ops::linear::cpu_wgsl() (src/ops/linear.rs); do not edit by hand.\n";
    o += "// Register-blocked linear-layer matmuls for software adapters (lavapipe): no barriers, every\n";
    o += "// loop over the block unrolled by hand so that the accumulators stay in registers, S values\n";
    o += "// loaded once per subgroup and shared with subgroupBroadcast. See src/ops/linear.rs.\n";
    // naga 30 rejects `enable subgroups;` (unimplemented) but accepts the subgroup builtins
    // when the device has Features::SUBGROUP, which plan() checks before choosing this shader.
    o += "\n";
    o += "struct Params { m: u32, n: u32, k: u32, kc: u32, split: u32, act: u32, _p1: u32, _p2: u32 }\n";
    o += "@group(0) @binding(0) var<uniform> p: Params;\n";
    o += "//!include act\n\n";
    o += "// relu when the uniform says so (p.act 1); sigmoid comes from the ACT override (linear.rs)\n";
    o += "fn relu_if(v: f32) -> f32 { return select(v, max(v, 0.0), p.act == 1u); }\n\n";
    o += "// forward: S = x [m][k], P = W [n][k], then bias; out = y or partials [chunk][m][n]\n";
    o += "@group(0) @binding(1) var<storage, read> fx: array<f32>;\n";
    o += "@group(0) @binding(2) var<storage, read> fw: array<f32>;\n";
    o += "@group(0) @binding(3) var<storage, read> fb: array<f32>;\n";
    o += "@group(0) @binding(4) var<storage, read_write> fout: array<f32>;\n\n";
    o += "// backward_input: S = g [m][k] from dy and y, P = W [k][n]; out = dx or partials\n";
    o += "@group(0) @binding(1) var<storage, read> idy: array<f32>;\n";
    o += "@group(0) @binding(2) var<storage, read> iy: array<f32>;\n";
    o += "@group(0) @binding(3) var<storage, read> iw: array<f32>;\n";
    o += "@group(0) @binding(4) var<storage, read_write> iout: array<f32>;\n\n";
    o += "// backward_weight: S = g [k][m] (k = batch), P = x [k][n]; out = dW, dbo = db (or partials)\n";
    o += "@group(0) @binding(1) var<storage, read> wdy: array<f32>;\n";
    o += "@group(0) @binding(2) var<storage, read> wy: array<f32>;\n";
    o += "@group(0) @binding(3) var<storage, read> wx: array<f32>;\n";
    o += "@group(0) @binding(4) var<storage, read_write> wout: array<f32>;\n";
    o += "@group(0) @binding(5) var<storage, read_write> wdbo: array<f32>;\n\n";
    o += "fn g_in(i: u32) -> f32 {\n    if (ACT == 0u) { return idy[i]; }\n    return idy[i] * act_grad(iy[i]);\n}\n\n";
    o += "fn g_w(i: u32) -> f32 {\n    if (ACT == 0u) { return wdy[i]; }\n    return wdy[i] * act_grad(wy[i]);\n}\n\n";
    o += "// the _tex entries read S and P from rgba32float copies (read-only storage textures), PTW\n";
    o += "// texels wide (texel i = values 4i .. 4i + 4): on lavapipe a texel load of 4 floats costs less\n";
    o += "// than one storage-buffer float load.\n";
    o += "// S is x (forward) or g (backward: the register plan stores g first wherever ACT needs y).\n";
    o += "// Bindings: 1 S, 2 P, then forward 3 b, 4 y; backward 3 out (4 db for the weight gradient).\n";
    o += "@group(0) @binding(1) var st: texture_storage_2d<rgba32float, read>;\n";
    o += "@group(0) @binding(2) var pt: texture_storage_2d<rgba32float, read>;\n";
    o += "@group(0) @binding(3) var<storage, read_write> tout: array<f32>;\n";
    o += "@group(0) @binding(4) var<storage, read_write> tdbo: array<f32>;\n";
    o += &format!("const PTW: u32 = {PTEX_WIDTH}u;\n");
    o += "fn texel(i: u32) -> vec2<i32> { return vec2<i32>(i32(i % PTW), i32(i / PTW)); }\n";
    o += "fn p4(i: u32) -> vec4<f32> { return textureLoad(pt, texel(i)); }\n";
    o += "fn s4(i: u32) -> vec4<f32> { return textureLoad(st, texel(i)); }\n\n";
    for tex in [false, true] {
        for (pass, tm, tn) in CPU_BLOCK {
            o += &cpu_entry(pass, tm, tn, tex);
        }
    }
    o
}

fn cpu_entry(pass: Pass, tm: usize, tn: usize, tex: bool) -> String {
    use std::fmt::Write as _;
    let ks = CPU_KSTEP;
    let mut o = String::new();
    let w = &mut o;
    let tag = if tex {
        format!("{}_tex", pass.tag())
    } else {
        pass.tag().to_string()
    };
    let _ = writeln!(
        w,
        "// {tag}: {tm} x {tn} outputs per invocation, {ks} k per step"
    );
    let _ = writeln!(w, "@compute @workgroup_size({CPU_WG})");
    let _ = writeln!(w, "fn cpu_{tag}(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {{");
    let _ = writeln!(w, "    let j0 = gid.x * {tn}u;");
    let _ = writeln!(w, "    let i0 = wid.y * {tm}u;");
    let _ = writeln!(w, "    let kb = wid.z * p.kc;");
    let _ = writeln!(w, "    let ke = min(kb + p.kc, p.k);");
    let _ = writeln!(w, "    let il = p.m - 1u;");
    let _ = writeln!(w, "    let jl = p.n - 1u;");
    // S addressing: row bases (the _tex entries address S by texel instead)
    for r in (0..tm).filter(|_| !tex) {
        match pass {
            Pass::Forward | Pass::BackwardInput => {
                let _ = writeln!(w, "    let sr{r} = min(i0 + {r}u, il) * p.k;");
            }
            Pass::BackwardWeight => {
                let _ = writeln!(w, "    let sr{r} = min(i0 + {r}u, il);");
            }
        }
    }
    for t in 0..tn {
        match pass {
            Pass::Forward => {
                let _ = writeln!(w, "    let pc{t} = min(j0 + {t}u, jl) * p.k;");
            }
            _ => {
                let _ = writeln!(w, "    let pc{t} = min(j0 + {t}u, jl);");
            }
        }
    }
    for r in 0..tm {
        let decl: Vec<String> = (0..tn).map(|t| format!("var c{r}_{t} = 0.0;")).collect();
        let _ = writeln!(w, "    {}", decl.join(" "));
    }
    if pass == Pass::BackwardWeight {
        for r in 0..tm {
            let _ = writeln!(w, "    var d{r} = 0.0;");
        }
    }
    let row_major_s = tex && pass != Pass::BackwardWeight;
    if row_major_s {
        // S rows run along k: lane l loads texel l % 2 (k + 4 (l % 2) ..) of row 4g + l / 2
        let _ = writeln!(w, "    let sh = sl / 2u;");
        let _ = writeln!(w, "    let so = sl % 2u;");
    }
    let _ = writeln!(w, "    for (var k = kb; k < ke; k += {ks}u) {{");
    if row_major_s {
        let _ = writeln!(
            w,
            "        // this lane's share of S: a texel of every group of 4 rows"
        );
        let _ = writeln!(w, "        let sok = k + 4u * so < ke;");
        for g in 0..tm / 4 {
            let _ = writeln!(
                w,
                "        let t{g} = select(vec4<f32>(0.0), s4((min(i0 + {}u + sh, il) * p.k + k) / 4u + so), sok);",
                4 * g
            );
        }
    } else {
        let _ = writeln!(w, "        // this lane's share of S: k + lane");
        let _ = writeln!(w, "        let kl = k + sl;");
        let _ = writeln!(w, "        let sok = kl < ke;");
        let _ = writeln!(w, "        let kq = min(kl, ke - 1u);");
        if tex {
            // S = g [k][m]: rows i0 .. i0 + tm of this lane's k are tm / 4 texels (i0 and p.m
            // are multiples of 4; rows past m read other values, which are never stored)
            for h in 0..tm / 4 {
                let _ = writeln!(
                    w,
                    "        let t{h} = select(vec4<f32>(0.0), s4((kq * p.m + i0) / 4u + {h}u), sok);"
                );
            }
        } else {
            for r in 0..tm {
                let load = match pass {
                    Pass::Forward => format!("fx[sr{r} + kq]"),
                    Pass::BackwardInput => format!("g_in(sr{r} + kq)"),
                    Pass::BackwardWeight => format!("g_w(kq * p.m + sr{r})"),
                };
                let _ = writeln!(w, "        let a{r} = select(0.0, {load}, sok);");
            }
        }
    }
    let _ = writeln!(
        w,
        "        // this lane's P values for the {ks} k of the step"
    );
    if tex && pass == Pass::Forward {
        // row pc_t of W [n][k]: k .. k + 8 are two texels (k and p.k are multiples of 4)
        for t in 0..tn {
            let _ = writeln!(w, "        let q{t} = (pc{t} + k) / 4u;");
            for h in 0..ks / 4 {
                let _ = writeln!(w, "        let p{t}_{h} = p4(q{t} + {h}u);");
            }
        }
    }
    for kk in 0..ks {
        let _ = writeln!(w, "        let ok{kk} = k + {kk}u < ke;");
        let _ = writeln!(w, "        let k{kk} = min(k + {kk}u, ke - 1u);");
        if tex && pass != Pass::Forward {
            // row k_kk of [k][n]: columns j0 .. j0 + tn are tn / 4 texels (j0 and p.n are
            // multiples of 4; columns past n read other values, which are never stored)
            let _ = writeln!(w, "        let r{kk} = (k{kk} * p.n + j0) / 4u;");
            for h in 0..tn / 4 {
                let _ = writeln!(w, "        let p{kk}_{h} = p4(r{kk} + {h}u);");
            }
        }
        let comp = ["x", "y", "z", "w"];
        let loads: Vec<String> = (0..tn)
            .map(|t| {
                let load = match (pass, tex) {
                    (Pass::Forward, false) => format!("fw[pc{t} + k{kk}]"),
                    (Pass::BackwardInput, false) => format!("iw[k{kk} * p.n + pc{t}]"),
                    (Pass::BackwardWeight, false) => format!("wx[k{kk} * p.n + pc{t}]"),
                    (Pass::Forward, true) => format!("p{t}_{}.{}", kk / 4, comp[kk % 4]),
                    (_, true) => format!("p{kk}_{}.{}", t / 4, comp[t % 4]),
                };
                format!("let b{kk}_{t} = select(0.0, {load}, ok{kk});")
            })
            .collect();
        let _ = writeln!(w, "        {}", loads.join(" "));
    }
    // Row by row, each accumulator takes its ks multiply-adds in a row (k ascending, as in
    // the reference order): LLVM then keeps one accumulator in a register for ks FMAs
    // instead of reloading it from the stack for each; measured ~4x on the pure-ALU part.
    let comp = ["x", "y", "z", "w"];
    // S value (row r, k + kk) as an expression over this block's broadcasts
    let s_of = |r: usize, kk: usize| -> String {
        if !tex {
            format!("s{kk}")
        } else if row_major_s {
            format!("{}.{}", ["u", "v"][kk / 4], comp[kk % 4])
        } else {
            format!("u{kk}.{}", comp[r % 4])
        }
    };
    let fmas = |w: &mut String, r: usize| {
        for t in 0..tn {
            let mut line = String::from("           ");
            for kk in 0..ks {
                let _ = write!(line, " c{r}_{t} += {} * b{kk}_{t};", s_of(r, kk));
            }
            let _ = writeln!(w, "{line}");
        }
        if pass == Pass::BackwardWeight {
            let mut line = String::from("           ");
            for kk in 0..ks {
                let _ = write!(line, " d{r} += {};", s_of(r, kk));
            }
            let _ = writeln!(w, "{line}");
        }
    };
    if !tex {
        for r in 0..tm {
            let s: Vec<String> = (0..ks)
                .map(|kk| format!("let s{kk} = subgroupBroadcast(a{r}, {kk}u);"))
                .collect();
            let _ = writeln!(w, "        {{ {}", s.join(" "));
            fmas(w, r);
            let _ = writeln!(w, "        }}");
        }
    } else if row_major_s {
        // row r's 8 k are the texels of lanes 2 (r % 4) and 2 (r % 4) + 1 in group r / 4
        for r in 0..tm {
            let (g, q) = (r / 4, r % 4);
            let _ = writeln!(
                w,
                "        {{ let u = subgroupBroadcast(t{g}, {}u); let v = subgroupBroadcast(t{g}, {}u);",
                2 * q,
                2 * q + 1
            );
            fmas(w, r);
            let _ = writeln!(w, "        }}");
        }
    } else {
        // lane kk holds k + kk; its texel h covers rows 4h .. 4h + 4
        for h in 0..tm / 4 {
            let s: Vec<String> = (0..ks)
                .map(|kk| format!("let u{kk} = subgroupBroadcast(t{h}, {kk}u);"))
                .collect();
            let _ = writeln!(w, "        {{ {}", s.join(" "));
            for r in 4 * h..4 * h + 4 {
                fmas(w, r);
            }
            let _ = writeln!(w, "        }}");
        }
    }
    let _ = writeln!(w, "    }}");
    // epilogue
    let out = match (pass, tex) {
        (Pass::Forward, _) => "fout",
        (_, true) => "tout",
        (Pass::BackwardInput, false) => "iout",
        (Pass::BackwardWeight, false) => "wout",
    };
    let dbo = if tex { "tdbo" } else { "wdbo" };
    let _ = writeln!(w, "    let part = wid.z * p.m * p.n;");
    for r in 0..tm {
        let _ = writeln!(w, "    if (i0 + {r}u < p.m) {{");
        let _ = writeln!(w, "        let row = part + (i0 + {r}u) * p.n;");
        for t in 0..tn {
            let v = if pass == Pass::Forward {
                format!(
                    "select(act_fwd(relu_if(c{r}_{t} + fb[j0 + {t}u])), c{r}_{t}, p.split != 0u)"
                )
            } else {
                format!("c{r}_{t}")
            };
            let _ = writeln!(
                w,
                "        if (j0 + {t}u < p.n) {{ {out}[row + j0 + {t}u] = {v}; }}"
            );
        }
        let _ = writeln!(w, "    }}");
    }
    if pass == Pass::BackwardWeight {
        let _ = writeln!(
            w,
            "    // the bias gradient: column 0's invocation writes the row sums of g"
        );
        let _ = writeln!(w, "    if (gid.x == 0u) {{");
        for r in 0..tm {
            let _ = writeln!(
                w,
                "        if (i0 + {r}u < p.m) {{ {dbo}[wid.z * p.m + i0 + {r}u] = d{r}; }}"
            );
        }
        let _ = writeln!(w, "    }}");
    }
    let _ = writeln!(w, "}}\n");
    o
}
