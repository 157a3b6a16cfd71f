//! facegpu's command line: parse, call the library, print. Errors end in a message and a
//! non-zero exit, never a panic.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use facegpu::gpu::{context, BackendChoice, Gpu};

#[derive(Parser)]
#[command(
    name = "facegpu",
    version,
    about = "Train, evaluate and run neural compressors for 128x128 grayscale faces on any GPU (WGSL via wgpu)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone, Copy)]
struct BackendArg {
    /// Which adapter computes: auto prefers a real GPU and falls back to the software adapter
    /// (cpu = lavapipe/llvmpipe). WGPU_BACKEND and WGPU_ADAPTER_NAME also work.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendChoice,
}

#[derive(Subcommand)]
enum Cmd {
    /// List every adapter with its backend, type, driver, limits and features.
    Info {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Measure speed: `kernels` (every kernel at the AE's and VAE's shapes).
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Time per call, GFLOP/s and GB/s of every kernel, forward and backward, at batch 128.
    Kernels {
        #[arg(long, default_value_t = 128)]
        batch: usize,
        /// Only the kernels whose name contains this text.
        #[arg(long)]
        filter: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backend: BackendArg,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("error,wgpu_hal=off"),
    )
    .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("facegpu: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Info { json, backend } => info(json, backend.backend),
        Cmd::Bench {
            what:
                BenchCmd::Kernels {
                    batch,
                    filter,
                    json,
                    backend,
                },
        } => {
            let gpu = Gpu::new(backend.backend)?;
            let report = facegpu::bench::bench_kernels(&gpu, batch, filter.as_deref(), |r| {
                if !json {
                    eprintln!(
                        "  {:<60} {:>9.3} ms {:>8.2} GFLOP/s {:>7.2} GB/s",
                        r.name, r.ms_per_call, r.gflops, r.gbps
                    )
                }
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            Ok(())
        }
    }
}

fn info(json: bool, backend: BackendChoice) -> anyhow::Result<()> {
    let reports = context::adapter_reports();
    let chosen = Gpu::new(backend).map(|g| g.describe());
    if json {
        let v = serde_json::json!({
            "adapters": reports,
            "chosen": chosen.as_ref().ok(),
            "error": chosen.as_ref().err().map(|e| e.to_string()),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return chosen.map(|_| ());
    }
    if reports.is_empty() {
        println!("no adapters found");
    }
    for (i, r) in reports.iter().enumerate() {
        println!("adapter {i}: {}", r.name);
        println!(
            "  backend {} | type {} | driver {} {}",
            r.backend, r.device_type, r.driver, r.driver_info
        );
        println!(
            "  max storage binding {} MiB | max buffer {} MiB | max workgroup invocations {} | max workgroup size {:?}",
            r.max_storage_buffer_binding_size >> 20,
            r.max_buffer_size >> 20,
            r.max_compute_invocations_per_workgroup,
            r.max_compute_workgroup_size
        );
        println!(
            "  timestamp queries {} | subgroups {} | shader f16 {}",
            yes(r.timestamp_queries),
            yes(r.subgroups),
            yes(r.shader_f16)
        );
    }
    println!("chosen with --backend {backend:?}: {}", chosen?);
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
