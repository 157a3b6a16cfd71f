//! Deterministic sums (shaders/reduce.wgsl): fixed-order passes of strided partial sums, no float
//! atomics, so a loss reads the same bits on every run. Losses, the KL term and the weight
//! penalties reuse the first pass with an elementwise map ([`Map`]) instead of storing terms.

use anyhow::{bail, Result};

use crate::gpu::kernels::Bind;
use crate::gpu::timing::BenchCases;
use crate::gpu::{grid_1d, Recorder, Tensor};

/// Values each invocation of a pass adds up. 256 keeps a 2M-element sum at three passes
/// (2M -> 8192 -> 32 -> 1) with enough invocations in the first to fill a GPU; a vec4 first
/// pass adds 64 vec4s.
const CHUNK: usize = 256;

/// The elementwise map the first pass applies (the shader's `MAP` override).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Map {
    /// x
    Identity = 0,
    /// (a - b)^2
    SquaredDiff = 1,
    /// 1 + b - a^2 - exp(b), with a = mu, b = logvar
    KlTerm = 2,
    /// |a|
    Abs = 3,
    /// a^2
    Square = 4,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    n: u32,
    m: u32,
    scale: f32,
}

/// out = scale * sum(x); out has one element.
pub fn sum(rec: &mut Recorder, x: &Tensor, out: &Tensor, scale: f32) -> Result<()> {
    check_out(out, 1, "sum")?;
    sum_rows_mapped(rec, Map::Identity, x, None, out, scale)
}

/// out[r] = scale * sum_j x[r, j] for x viewed as [out.len(), x.len() / out.len()].
pub fn sum_rows(rec: &mut Recorder, x: &Tensor, out: &Tensor, scale: f32) -> Result<()> {
    sum_rows_mapped(rec, Map::Identity, x, None, out, scale)
}

fn check_out(out: &Tensor, want: usize, what: &str) -> Result<()> {
    if out.len() != want {
        bail!(
            "{what}: the output must hold {want} value(s), it has shape {:?}",
            out.shape
        );
    }
    Ok(())
}

/// out[r] = scale * sum_j map(a[r, j], b[r, j]), rows = out.len(). `b` is required by the two-
/// operand maps (SquaredDiff, KlTerm) and must match `a` in length.
pub fn sum_rows_mapped(
    rec: &mut Recorder,
    map: Map,
    a: &Tensor,
    b: Option<&Tensor>,
    out: &Tensor,
    scale: f32,
) -> Result<()> {
    let rows = out.len();
    let total = a.len();
    if rows == 0 {
        bail!("sum: the output tensor is empty");
    }
    if !total.is_multiple_of(rows) {
        bail!(
            "sum: input shape {:?} ({total} values) does not split into {rows} rows (output shape {:?})",
            a.shape,
            out.shape
        );
    }
    if total >= (1 << 31) {
        bail!("sum: {total} values is more than one reduction handles (2^31); split the tensor");
    }
    let two = matches!(map, Map::SquaredDiff | Map::KlTerm);
    let b = match (two, b) {
        (true, Some(b)) if b.len() == total => b,
        (true, Some(b)) => bail!(
            "sum {map:?}: operands differ in size ({:?} vs {:?})",
            a.shape,
            b.shape
        ),
        (true, None) => bail!("sum {map:?} needs a second operand"),
        (false, _) => a,
    };
    let mut n = total / rows;
    let mut src: Bind = a.into();
    let mut src2: Bind = b.into();
    let mut map = map;
    // the first pass reads vec4s when every row starts on a multiple of 4
    let mut vec4 = n.is_multiple_of(4) && n > 0;
    loop {
        let (len, chunk) = if vec4 { (n / 4, CHUNK / 4) } else { (n, CHUNK) };
        let m = len.div_ceil(chunk).max(1);
        let last = m == 1;
        let dst: Bind = if last {
            out.into()
        } else {
            (&rec.gpu.storage((rows * m * 4) as u64)).into()
        };
        let params = Params {
            rows: rows as u32,
            n: len as u32,
            m: m as u32,
            scale: if last { scale } else { 1.0 },
        };
        // CPU adapters: the first vec4 pass reads texture copies (it is bound by its loads)
        let mut entry = if vec4 { "sum_pass4" } else { "sum_pass" };
        if vec4 && rec.texture_reads() && rec.gpu.flat_texture_fits(total) {
            let ta = rec.flat_texture(&a.buf, total);
            src = (&ta).into();
            src2 = if two {
                (&rec.flat_texture(&b.buf, total)).into()
            } else {
                (&ta).into()
            };
            entry = "sum_pass4_tex";
        }
        rec.dispatch_with(
            "reduce",
            entry,
            &[("MAP", map as u32 as f64)],
            &params,
            &[src.clone(), src2, dst.clone()],
            grid_1d((rows * m) as u64, 64),
        )?;
        if last {
            return Ok(());
        }
        src = dst.clone();
        src2 = dst;
        map = Map::Identity;
        vec4 = false;
        n = m;
    }
}

/// Benchmarks at the seed shapes: the sum over a batch of 128x128 images and the per-image sums.
pub fn bench_cases(cases: &mut BenchCases, batch: usize) -> Result<()> {
    let gpu = cases.gpu;
    let n = batch * 16384;
    let x = gpu.upload(&vec![0.5f32; n], &[batch, 16384])?;
    let one = gpu.zeros(&[1]);
    let rows = gpu.zeros(&[batch]);
    cases.add(
        format!("reduce sum ({batch}x16384 -> 1)"),
        n as f64,
        4.0 * n as f64,
        |rec| sum(rec, &x, &one, 1.0),
    )?;
    cases.add(
        format!("reduce sum_rows ({batch}x16384 -> {batch})"),
        n as f64,
        4.0 * (n + batch) as f64,
        |rec| sum_rows(rec, &x, &rows, 1.0),
    )
}
