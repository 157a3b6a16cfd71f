//! `facegpu bench`: kernel, training and metric benchmarks, each naming the adapter.

use anyhow::Result;
use serde::Serialize;

use crate::gpu::timing::{time_program, KernelBench};
use crate::gpu::Gpu;

/// One measured kernel.
#[derive(Serialize, Clone, Debug)]
pub struct KernelRow {
    pub name: String,
    pub ms_per_call: f64,
    pub gflops: f64,
    pub gbps: f64,
    /// "timestamps" (GPU timestamp queries) or "wall" (submit-and-wait clock, amortised).
    pub clock: &'static str,
}

#[derive(Serialize, Clone, Debug)]
pub struct KernelReport {
    pub adapter: String,
    pub batch: usize,
    pub rows: Vec<KernelRow>,
}

/// The benchmark cases of every kernel family at the AE's and the VAE's shapes.
pub fn kernel_cases(gpu: &Gpu, batch: usize) -> Result<Vec<KernelBench>> {
    let mut all = Vec::new();
    all.extend(crate::ops::activation::bench_programs(gpu, batch)?);
    Ok(all)
}

/// Times each case: warm-up, then the median of `rounds` batches of `reps` back-to-back runs.
pub fn bench_kernels(
    gpu: &Gpu,
    batch: usize,
    filter: Option<&str>,
    mut progress: impl FnMut(&KernelRow),
) -> Result<KernelReport> {
    let mut rows = Vec::new();
    for case in kernel_cases(gpu, batch)? {
        if filter.is_some_and(|f| !case.name.contains(f)) {
            continue;
        }
        // aim for roughly 0.2 s per round from one probe run
        let probe = time_program(gpu, &case.program, 1, 1)?;
        let reps = ((0.2 / probe.seconds().max(1e-6)) as u32).clamp(1, 200);
        let t = time_program(gpu, &case.program, reps, 5)?;
        let s = t.seconds();
        let row = KernelRow {
            name: case.name,
            ms_per_call: s * 1e3,
            gflops: case.flops / s * 1e-9,
            gbps: case.bytes / s * 1e-9,
            clock: if t.gpu_s.is_some() {
                "timestamps"
            } else {
                "wall"
            },
        };
        progress(&row);
        rows.push(row);
    }
    Ok(KernelReport {
        adapter: gpu.describe(),
        batch,
        rows,
    })
}

impl std::fmt::Display for KernelReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "adapter: {}  (batch {})", self.adapter, self.batch)?;
        writeln!(f, "| kernel | ms/call | GFLOP/s | GB/s |")?;
        writeln!(f, "|---|---:|---:|---:|")?;
        for r in &self.rows {
            writeln!(
                f,
                "| {} | {:.3} | {:.2} | {:.2} |",
                r.name, r.ms_per_call, r.gflops, r.gbps
            )?;
        }
        Ok(())
    }
}
