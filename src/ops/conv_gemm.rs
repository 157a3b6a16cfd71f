//! Convolutions as matrix products, for layers with many channels (on software adapters and on
//! GPUs, where the products are the tiled linear kernels).
//!
//! The direct conv kernels keep one output block per invocation; with 16 or 32 channels their
//! accumulators and tap loops no longer fit lavapipe's registers and they fall to ~0.2 GFLOP/s.
//! Here a conv is `im2col` (shaders/conv_gemm.wgsl) then a product by the linear kernels
//! (register-blocked, ~10 GFLOP/s on lavapipe), and its adjoint is a product then `col2im`:
//!
//! | op                        | product (a linear pass)                       | around it             |
//! |---------------------------|-----------------------------------------------|-----------------------|
//! | conv forward              | t = W col(x)^T (forward, pixels as columns)   | im2col, from_cm +b+act|
//! | transposed conv forward   | colT = W^T rows(x)^T (forward)                | to_rows, col2im +b+act|
//! | conv weight gradient      | dW = rows(g)^T col(x), db (backward_weight)   | to_rows, im2col       |
//! | transposed conv weight g. | dW = rows(x)^T col(g) (backward_weight)       | to_rows, im2col, chan_sums |
//!
//! The products put the long side (images x pixels) where the linear kernels spread their
//! lanes: with it on the other side only 4 of 64 lanes had work (16x slower).
//! Each layer's backward_input is the other kind's forward with g = dy * act'(y) formed on the
//! way in (GRAD_IN). The batch is split into chunks of images so that a column matrix fits one
//! storage binding; weight gradients are summed over chunks in order (deterministic).

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;

use super::conv2d::{reduce_partials, Geom};
use super::linear::{self, LinearShape};
use super::Activation;
use crate::gpu::{grid_1d, Gpu, Recorder, Tensor};

/// Mirrors `Params` in conv_gemm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n0: u32,
    nb: u32,
    _p: [u32; 2],
}

/// The chunk (images n0 .. n0 + nb) and the override constants C, H, W (the NCHW side), HO, WO
/// (a conv's output plane) of one mover dispatch.
#[derive(Clone, Copy)]
struct Shape {
    n0: usize,
    nb: usize,
    c: usize,
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
}

/// Largest column matrix per chunk: one storage binding, at most 128 MiB (memory stays modest).
static MAX_COL_BYTES: AtomicUsize = AtomicUsize::new(128 << 20);

/// Lowers (or restores) the column-matrix limit, so that tests can run small layers in
/// several chunks. Affects layers recorded afterwards, in every thread.
#[doc(hidden)]
pub fn set_col_limit(bytes: usize) {
    MAX_COL_BYTES.store(bytes.max(4), Ordering::Relaxed);
}

/// Whether a conv (conv view `g`: input side `in`, output side `out`) goes through products:
/// GPUs and software adapters with the linear CPU kernels, and enough channels on both sides of
/// the product that it beats the direct kernels (measured on lavapipe: 16->32 3x3 was ~30x
/// faster this way; on an NVIDIA H200, `ae-wide` trained 2.1x and `conv-vae` 2.3x faster).
pub(crate) fn fits(gpu: &Gpu, g: &Geom) -> bool {
    (!gpu.is_cpu() || linear::cpu_supported(gpu))
        && g.c_in.max(g.c_out) >= 16
        && g.c_in * g.kh * g.kw >= 9
        && g.c_out >= 4
}

/// Whether a weight gradient (conv view `g`) goes through products: as [`fits`], and a
/// product row of at least 64 taps (the linear kernel spreads its lanes over them; with 1->16
/// channels, 9 taps, the direct kernel was ~5x faster).
pub(crate) fn wgrad_fits(gpu: &Gpu, g: &Geom) -> bool {
    fits(gpu, g) && g.c_in * g.kh * g.kw >= 64
}

/// Images per chunk so that `row_floats` per image (a column matrix) fits MAX_COL_BYTES and
/// the binding limit; chunks are as even as possible.
fn chunking(gpu: &Gpu, batch: usize, row_floats: usize) -> (usize, usize) {
    let cap = (gpu.limits.max_storage_buffer_binding_size as usize)
        .min(MAX_COL_BYTES.load(Ordering::Relaxed));
    let per_chunk = (cap / (row_floats * 4).max(1)).clamp(1, batch.max(1));
    let chunks = batch.div_ceil(per_chunk);
    (batch.div_ceil(chunks), chunks)
}

/// The chunks of one layer's batch and the scratch matrices they share: `col` holds `k`
/// values per pixel, `rows` `side` values per pixel, for `hw` pixels per image.
struct Work {
    batch: usize,
    nb: usize,
    chunks: usize,
    col: Scratch,
    rows: Scratch,
}

impl Work {
    fn new(gpu: &Gpu, batch: usize, hw: usize, k: usize, side: usize) -> Work {
        let (nb, chunks) = chunking(gpu, batch, hw * k);
        Work {
            batch,
            nb,
            chunks,
            col: Scratch::new(gpu, nb * hw * k),
            rows: Scratch::new(gpu, nb * hw * side),
        }
    }

    /// (chunk index, first image, images) of each chunk, in order.
    fn each(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        (0..self.chunks).map(|c| {
            let n0 = c * self.nb;
            (c, n0, self.nb.min(self.batch - n0))
        })
    }
}

/// A scratch matrix of `rows x cols` floats and views of it for shorter (last) chunks.
struct Scratch {
    buf: wgpu::Buffer,
}

impl Scratch {
    fn new(gpu: &Gpu, floats: usize) -> Scratch {
        Scratch {
            buf: gpu.storage((floats.max(1) * 4) as u64),
        }
    }
    /// Zero-filled: a product's bias that must stay 0 whatever the chunk.
    fn zeroed(gpu: &Gpu, floats: usize) -> Scratch {
        Scratch {
            buf: gpu.zeros(&[floats.max(1)]).buf,
        }
    }
    fn view(&self, shape: [usize; 2]) -> Tensor {
        Tensor {
            buf: self.buf.clone(),
            shape: shape.to_vec(),
        }
    }
}

/// Override switches of conv_gemm.wgsl: g = x act'(xa) on the way in, bias + act on the way
/// out, a transposed column matrix.
#[derive(Clone, Copy, Default)]
struct Flags {
    grad_in: bool,
    bias: bool,
    col_t: bool,
}

const PLAIN: Flags = Flags {
    grad_in: false,
    bias: false,
    col_t: false,
};
const GRAD: Flags = Flags {
    grad_in: true,
    ..PLAIN
};

#[allow(clippy::too_many_arguments)]
fn move_op(
    rec: &mut Recorder,
    entry: &str,
    g: &Geom,
    act: Activation,
    flags: Flags,
    p: Shape,
    src: &Tensor,
    aux: &Tensor,
    dst: &Tensor,
    items: usize,
) -> Result<()> {
    let consts = [
        ("KH", g.kh as f64),
        ("KW", g.kw as f64),
        ("S", g.stride as f64),
        ("P", g.pad as f64),
        ("ACT", act.code() as f64),
        ("GRAD_IN", flags.grad_in as u32 as f64),
        ("BIAS", flags.bias as u32 as f64),
        ("COL_T", flags.col_t as u32 as f64),
        ("C", p.c as f64),
        ("H", p.h as f64),
        ("W", p.w as f64),
        ("HO", p.ho as f64),
        ("WO", p.wo as f64),
    ];
    let p = Params {
        n0: p.n0 as u32,
        nb: p.nb as u32,
        _p: [0; 2],
    };
    rec.dispatch_with(
        "conv_gemm",
        entry,
        &consts,
        &p,
        &[src.into(), aux.into(), dst.into()],
        grid_1d(items as u64, 64),
    )
}

/// Params for the conv `g` on images n0 .. n0 + nb, the NCHW side being its input.
fn conv_params(g: &Geom, n0: usize, nb: usize) -> Shape {
    Shape {
        n0,
        nb,
        c: g.c_in,
        h: g.h_in,
        w: g.w_in,
        ho: g.h_out,
        wo: g.w_out,
    }
}

/// Params for to_rows/from_rows/chan_sums on a tensor of `c` channels of `h x w`.
fn plane_params(c: usize, h: usize, w: usize, n0: usize, nb: usize) -> Shape {
    Shape {
        n0,
        nb,
        c,
        h,
        w,
        ho: 1,
        wo: 1,
    }
}

/// Conv `g`: out = act(conv(x, w) + b), or with `grad_in` out = conv(x * act'(xa), w) (b unused).
/// The same contract as conv2d::gather_conv.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv(
    rec: &mut Recorder,
    g: &Geom,
    act: Activation,
    grad_in: bool,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    xa: &Tensor,
    out: &Tensor,
) -> Result<()> {
    let k = g.c_in * g.kh * g.kw;
    let hw = g.h_out * g.w_out;
    let work = Work::new(rec.gpu, g.batch, hw, k, g.c_out);
    let nb = work.nb;
    // the product runs with the long side (pixels) as its columns, where the linear kernels
    // spread their lanes; its own bias is per column, so zero, and b comes in from_cm
    let zeros = Scratch::zeroed(rec.gpu, nb * hw);
    for (_, n0, m) in work.each() {
        let (colv, tv) = (
            work.col.view([m * hw, k]),
            work.rows.view([g.c_out, m * hw]),
        );
        let flags = Flags { grad_in, ..PLAIN };
        let p = conv_params(g, n0, m);
        move_op(
            rec,
            "im2col",
            g,
            act,
            flags,
            p,
            x,
            xa,
            &colv,
            m * hw * g.c_in,
        )?;
        let s = LinearShape {
            batch: g.c_out,
            d_in: k,
            d_out: m * hw,
        };
        let zv = zeros.view([m * hw, 1]);
        linear::forward(rec, &s, w, &colv, &zv, &tv, Activation::None)?;
        let p = plane_params(g.c_out, g.h_out, g.w_out, n0, m);
        let flags = Flags {
            bias: !grad_in,
            ..PLAIN
        };
        move_op(
            rec,
            "from_cm",
            g,
            act,
            flags,
            p,
            &tv,
            b,
            out,
            m * hw * g.c_out,
        )?;
    }
    Ok(())
}

/// Transposed conv `gt` (its own view: x [batch, gt.c_in, h_in, w_in] -> out [.., gt.c_out,
/// h_out, w_out], w [gt.c_in, gt.c_out, kh, kw]): out = act(convT(x, w) + b), or with
/// `grad_in` out = convT(x * act'(xa), w). The same contract as conv_transpose2d::gather_convt.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_transpose(
    rec: &mut Recorder,
    gt: &Geom,
    act: Activation,
    grad_in: bool,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    xa: &Tensor,
    out: &Tensor,
) -> Result<()> {
    // the conv this is the adjoint of: from out's side (c_in = gt.c_out) to x's side
    let cg = gt.swapped();
    let k = cg.c_in * cg.kh * cg.kw;
    let hw = gt.h_in * gt.w_in;
    let work = Work::new(rec.gpu, gt.batch, hw, k, gt.c_in);
    let nb = work.nb;
    let zeros = Scratch::zeroed(rec.gpu, nb * hw);
    // colT [k][r] = W^T rows^T: the long side (pixels) as the product's columns, W^T [k][c_in]
    let wt = rec.gpu.zeros(&[k, gt.c_in]);
    let p = plane_params(gt.c_in, 1, k, 0, 1);
    move_op(rec, "to_rows", gt, act, PLAIN, p, w, w, &wt, k * gt.c_in)?;
    for (_, n0, m) in work.each() {
        let (colv, rowsv) = (
            work.col.view([k, m * hw]),
            work.rows.view([m * hw, gt.c_in]),
        );
        let p = plane_params(gt.c_in, gt.h_in, gt.w_in, n0, m);
        let flags = Flags { grad_in, ..PLAIN };
        move_op(
            rec,
            "to_rows",
            gt,
            act,
            flags,
            p,
            x,
            xa,
            &rowsv,
            m * hw * gt.c_in,
        )?;
        let s = LinearShape {
            batch: k,
            d_in: gt.c_in,
            d_out: m * hw,
        };
        let zv = zeros.view([m * hw, 1]);
        linear::forward(rec, &s, &wt, &rowsv, &zv, &colv, Activation::None)?;
        let p = conv_params(&cg, n0, m);
        let n = m * cg.c_in * cg.h_in * cg.w_in;
        let flags = Flags {
            bias: !grad_in,
            col_t: true,
            ..PLAIN
        };
        move_op(rec, "col2im", &cg, act, flags, p, &colv, b, out, n)?;
    }
    Ok(())
}

/// Conv `g` weight gradient: dw = sum g col(x), db = sum g with g = dy * act'(y). Overwrites both.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_wgrad(
    rec: &mut Recorder,
    g: &Geom,
    act: Activation,
    dy: &Tensor,
    y: &Tensor,
    x: &Tensor,
    dw: &Tensor,
    db: &Tensor,
) -> Result<()> {
    let rows = Side {
        t: dy,
        aux: y,
        flags: GRAD,
        c: g.c_out,
        h: g.h_out,
        w: g.w_out,
    };
    wgrad_product(rec, g, act, rows, (x, x, PLAIN), dw, db)
}

/// An NCHW tensor (`t`, times act'(`aux`) with GRAD) read as rows of `c` channels per pixel.
#[derive(Clone, Copy)]
struct Side<'a> {
    t: &'a Tensor,
    aux: &'a Tensor,
    flags: Flags,
    c: usize,
    h: usize,
    w: usize,
}

/// dw = rows^T col summed over the chunks in order, rows from `rows`, col = im2col by conv `cg`
/// of `col_src` (tensor, act' source, flags); `db` gets the product's bias gradient (column
/// sums of rows). Overwrites both.
#[allow(clippy::too_many_arguments)]
fn wgrad_product(
    rec: &mut Recorder,
    cg: &Geom,
    act: Activation,
    rows: Side,
    col_src: (&Tensor, &Tensor, Flags),
    dw: &Tensor,
    db: &Tensor,
) -> Result<()> {
    let k = cg.c_in * cg.kh * cg.kw;
    let hw = cg.h_out * cg.w_out;
    let work = Work::new(rec.gpu, cg.batch, hw, k, rows.c);
    let (dw_c, db_c) = (rec.gpu.zeros(&dw.shape), rec.gpu.zeros(&db.shape));
    for (c, n0, m) in work.each() {
        let colv = work.col.view([m * hw, k]);
        let rowsv = work.rows.view([m * hw, rows.c]);
        let p = plane_params(rows.c, rows.h, rows.w, n0, m);
        let n = m * hw * rows.c;
        move_op(
            rec, "to_rows", cg, act, rows.flags, p, rows.t, rows.aux, &rowsv, n,
        )?;
        let p = conv_params(cg, n0, m);
        let (b, baux, bflags) = col_src;
        move_op(
            rec,
            "im2col",
            cg,
            act,
            bflags,
            p,
            b,
            baux,
            &colv,
            m * hw * cg.c_in,
        )?;
        let s = LinearShape {
            batch: m * hw,
            d_in: k,
            d_out: rows.c,
        };
        let (tw, tb) = if c == 0 { (dw, db) } else { (&dw_c, &db_c) };
        linear::backward_weight(rec, &s, Activation::None, &rowsv, &rowsv, &colv, tw, tb)?;
        if c > 0 {
            super::elementwise::axpy(rec, 1.0, &dw_c, dw)?;
            super::elementwise::axpy(rec, 1.0, &db_c, db)?;
        }
    }
    Ok(())
}

/// Transposed conv `gt` (its own view) weight gradient: dw[ci, co, ky, kx] = sum x[ci] g[co]
/// under that tap, db[co] = sum g, g = dy * act'(y). Overwrites both.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_transpose_wgrad(
    rec: &mut Recorder,
    gt: &Geom,
    act: Activation,
    dy: &Tensor,
    y: &Tensor,
    x: &Tensor,
    dw: &Tensor,
    db: &Tensor,
) -> Result<()> {
    // the product's own bias gradient (sums of x) is not wanted
    let unused = rec.gpu.zeros(&[gt.c_in]);
    let rows = Side {
        t: x,
        aux: x,
        flags: PLAIN,
        c: gt.c_in,
        h: gt.h_in,
        w: gt.w_in,
    };
    wgrad_product(rec, &gt.swapped(), act, rows, (dy, y, GRAD), dw, &unused)?;
    // db: per-image channel sums of g, then summed over images in order
    let part = rec.gpu.storage((gt.batch * gt.c_out * 4).max(4) as u64);
    let part_t = Tensor {
        buf: part.clone(),
        shape: vec![gt.batch, gt.c_out],
    };
    let p = plane_params(gt.c_out, gt.h_out, gt.w_out, 0, gt.batch);
    move_op(
        rec,
        "chan_sums",
        gt,
        act,
        GRAD,
        p,
        dy,
        y,
        &part_t,
        gt.batch * gt.c_out,
    )?;
    let no_dw = rec.gpu.zeros(&[1]);
    reduce_partials(rec, &part, gt.batch, 0, gt.c_out, &no_dw, db)
}
