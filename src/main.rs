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
