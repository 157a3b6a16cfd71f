//! Timing a program: GPU timestamps where the adapter has them, else the wall clock around
//! submits that are waited for. Either way `reps` copies go into one submit so that the
//! ~1 ms submit-and-wait round trip of software adapters is amortised.

use std::time::Instant;

use anyhow::Result;

use super::{Gpu, Program, Recorder};

/// Seconds per run of a program.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Timing {
    /// Wall clock per run, submit and wait included (amortised over the batch).
    pub wall_s: f64,
    /// GPU timestamps per run, when the adapter supports them.
    pub gpu_s: Option<f64>,
}

impl Timing {
    /// The best estimate of the kernel time: timestamps if present, else wall clock.
    pub fn seconds(&self) -> f64 {
        self.gpu_s.unwrap_or(self.wall_s)
    }
}

/// Runs `program` once to warm up, then `rounds` batches of `reps` runs; returns the median
/// batch, per run.
pub fn time_program(gpu: &Gpu, program: &Program, reps: u32, rounds: u32) -> Result<Timing> {
    program.run(gpu)?;
    let query = gpu.has_timestamps().then(|| {
        gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timing"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        })
    });
    let resolve = gpu.storage(16);
    let resolve_buf = query.as_ref().map(|_| {
        gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    });
    let mut walls = Vec::new();
    let mut gpus = Vec::new();
    for _ in 0..rounds.max(1) {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        for r in 0..reps.max(1) {
            let ts = query.as_ref().map(|q| (q, 0u32, 1u32));
            // only the first and last copies are stamped: begin of the first, end of the last
            let stamp = match ts {
                Some((q, b, e)) if reps == 1 => Some((q, b, e)),
                Some((q, b, _)) if r == 0 => Some((q, b, u32::MAX)),
                Some((q, _, e)) if r == reps - 1 => Some((q, u32::MAX, e)),
                _ => None,
            };
            encode_stamped(program, &mut enc, stamp);
        }
        if let (Some(q), Some(rb)) = (&query, &resolve_buf) {
            enc.resolve_query_set(q, 0..2, rb, 0);
            enc.copy_buffer_to_buffer(rb, 0, &resolve, 0, 16);
        }
        let t0 = Instant::now();
        gpu.queue.submit([enc.finish()]);
        gpu.wait()?;
        walls.push(t0.elapsed().as_secs_f64() / reps.max(1) as f64);
        if query.is_some() {
            let b = gpu.read_bytes(&resolve, 0, 16)?;
            let t: &[u64] = bytemuck::cast_slice(&b);
            let ns = t[1].saturating_sub(t[0]) as f64 * gpu.queue.get_timestamp_period() as f64;
            if ns > 0.0 {
                gpus.push(ns * 1e-9 / reps.max(1) as f64);
            }
        }
    }
    Ok(Timing {
        wall_s: median(&mut walls),
        gpu_s: (!gpus.is_empty()).then(|| median(&mut gpus)),
    })
}

/// `u32::MAX` in a slot means "no stamp there".
fn encode_stamped(
    program: &Program,
    enc: &mut wgpu::CommandEncoder,
    stamp: Option<(&wgpu::QuerySet, u32, u32)>,
) {
    match stamp {
        None => program.encode(enc, None),
        Some((q, b, e)) => program.encode_stamps(
            enc,
            q,
            (b != u32::MAX).then_some(b),
            (e != u32::MAX).then_some(e),
        ),
    }
}

pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// One benchmark case a kernel family offers to `facegpu bench kernels`: a recorded program
/// (inputs already filled) with the work it does per run, for GFLOP/s and GB/s.
pub struct KernelBench {
    /// e.g. "conv2d forward ae.enc0 (128x1x128x128 -> 8x64x64, 3x3 s2)"
    pub name: String,
    /// Useful floating-point operations per run (2 per multiply-add).
    pub flops: f64,
    /// Bytes a minimal implementation must read and write per run.
    pub bytes: f64,
    pub program: Program,
}

/// The cases of `facegpu bench kernels`, collected family by family. A case is recorded (so its
/// shaders compiled: seconds each on a software adapter) only when the filter keeps its name.
pub struct BenchCases<'g, 'f> {
    pub gpu: &'g Gpu,
    filter: Option<&'f str>,
    pub cases: Vec<KernelBench>,
    /// The name of every case offered, kept or not.
    pub offered: Vec<String>,
}

impl<'g, 'f> BenchCases<'g, 'f> {
    /// Keeps the cases whose name contains `filter` (all with None).
    pub fn new(gpu: &'g Gpu, filter: Option<&'f str>) -> Self {
        BenchCases {
            gpu,
            filter,
            cases: Vec::new(),
            offered: Vec::new(),
        }
    }

    /// Records case `name` (`flops` and `bytes` per run) when the filter keeps it.
    pub fn add(
        &mut self,
        name: String,
        flops: f64,
        bytes: f64,
        record: impl FnOnce(&mut Recorder<'g>) -> Result<()>,
    ) -> Result<()> {
        self.add_if(name, flops, bytes, |rec| record(rec).map(|()| true))
    }

    /// As [`Self::add`] for a kernel that may not take this shape on this adapter: `record`
    /// says whether it recorded anything, and the case is left out when it did not.
    pub fn add_if(
        &mut self,
        name: String,
        flops: f64,
        bytes: f64,
        record: impl FnOnce(&mut Recorder<'g>) -> Result<bool>,
    ) -> Result<()> {
        self.offered.push(name.clone());
        if !self.filter.is_none_or(|f| name.contains(f)) {
            return Ok(());
        }
        let mut rec = self.gpu.record();
        if record(&mut rec)? {
            let program = rec.finish()?;
            self.cases.push(KernelBench {
                name,
                flops,
                bytes,
                program,
            });
        }
        Ok(())
    }
}
