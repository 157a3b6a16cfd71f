//! facegpu's command line: parse, call the library, print. Errors end in a message and a
//! non-zero exit, never a panic.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use facegpu::data::{CacheChoice, SplitFractions};
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
    /// Train a model (default: the seed AE on embedded synthetic faces).
    Train(TrainArgs),
    /// Evaluate a checkpoint on its own test split, clean and with --noise.
    Eval(EvalArgs),
    /// Print results.json files of `eval --out` side by side.
    Compare {
        #[arg(required = true)]
        results: Vec<PathBuf>,
    },
    /// MSE, PSNR and SSIM of two images, or of two folders of same-named images.
    Metrics {
        reference: PathBuf,
        distorted: PathBuf,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Look at a dataset: count, sizes, formats, skipped files, split sizes, a grid of faces.
    Data(DataArgs),
    /// Write synthetic faces (the embedded default dataset) as PNGs.
    Synth {
        #[arg(long, default_value_t = 64)]
        count: usize,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Measure speed: `kernels` (every kernel at the AE's and VAE's shapes), `train` (whole
    /// training steps per model), `metrics` (the fused metrics pass).
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Time per call, GFLOP/s and GB/s of every kernel, forward and backward, at batch 128 (on
    /// software adapters also the share of the bound each kernel is limited by)
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
    /// Steady-state training images/s of each model (whole steps: gather, forward, loss,
    /// backward, Adam) at batch 128.
    Train {
        /// Models to time (default: all four).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        #[arg(long, default_value_t = 128)]
        batch: usize,
        /// Steps per timed round (3 rounds, the median is reported).
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// Also list where a step's time goes: each dispatch and the copies between them, timed
        /// inside the step (timestamps; else each kernel on its own).
        #[arg(long)]
        profile: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Measure this adapter's kernel choices (the linear layers' K split per VAE layer and
    /// pass) and cache the fastest for later runs (FACEGPU_AUTOTUNE_FILE, else
    /// $XDG_CACHE_HOME/facegpu/autotune.json; FACEGPU_AUTOTUNE=off ignores the cache).
    Tune {
        #[arg(long, default_value_t = 128)]
        batch: usize,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Images/s of the fused MSE/PSNR/SSIM pass alone.
    Metrics {
        #[arg(long, default_value_t = 128)]
        batch: usize,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backend: BackendArg,
    },
}

#[derive(clap::Args)]
struct DataSel {
    /// Folder of face images (searched recursively). Without it: synthetic faces.
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// Any unreadable or non-image file is an error instead of being skipped.
    #[arg(long)]
    strict: bool,
    /// How many synthetic faces to draw when there is no --dataset.
    #[arg(long, default_value_t = facegpu::data::dataset::DEFAULT_SYNTHETIC_COUNT)]
    synthetic_count: usize,
    /// Train/val/test fractions.
    #[arg(long, default_value = "0.7,0.1,0.2")]
    split: SplitFractions,
    /// Where to keep the decoded-dataset cache (default: ~/.cache/facegpu).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Decode the folder every time; write no cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
}

impl DataSel {
    fn cache(&self) -> CacheChoice {
        match (&self.cache_dir, self.no_cache) {
            (_, true) => CacheChoice::Off,
            (Some(d), _) => CacheChoice::Dir(d.clone()),
            (None, false) => CacheChoice::Default,
        }
    }
}

#[derive(clap::Args)]
struct TrainArgs {
    /// ae, vae, ae-wide or conv-vae.
    #[arg(long, default_value = "ae")]
    model: String,
    #[command(flatten)]
    data: DataSel,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Weight regularization: L2 is Adam's weight decay, L1 adds l1*sum|w| to the loss.
    #[arg(long, value_enum, default_value = "none")]
    reg: facegpu::train::Reg,
    #[arg(long, default_value_t = 1e-5)]
    l1: f32,
    #[arg(long, default_value_t = 1e-5)]
    l2: f32,
    /// Train on inputs with Gaussian noise of this sigma.
    #[arg(long)]
    noise: Option<f32>,
    /// Keep noisy inputs unclipped (default: clipped to [0, 1]).
    #[arg(long)]
    no_clip: bool,
    /// Noisy input, clean target.
    #[arg(long)]
    denoise: bool,
    /// Weight of the KL term (VAE).
    #[arg(long, default_value_t = 1.0)]
    kl_weight: f32,
    /// Stop after this many epochs without a better validation loss.
    #[arg(long)]
    patience: Option<usize>,
    /// Output folder (checkpoints, metrics.csv, loss.png, config.json, reconstructions.png).
    #[arg(long, default_value = "runs/train")]
    out: PathBuf,
    /// Continue the run in this folder (its config; --epochs may raise the total).
    #[arg(long)]
    resume: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendArg,
}

#[derive(clap::Args)]
struct EvalArgs {
    /// A checkpoint written by `facegpu train` (e.g. runs/train/best.safetensors).
    #[arg(long, default_value = "runs/train/best.safetensors")]
    checkpoint: PathBuf,
    /// Use this folder instead of the checkpoint's dataset (its split must still match).
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// train, val or test.
    #[arg(long, default_value = "test")]
    split: String,
    /// Add Gaussian noise of this sigma (fixed by the seed) to the inputs.
    #[arg(long)]
    noise: Option<f32>,
    #[arg(long)]
    no_clip: bool,
    /// Seed of the evaluation noise (default: the checkpoint's).
    #[arg(long)]
    seed: Option<u64>,
    /// VAE: sample z instead of using z = mu.
    #[arg(long)]
    sample: bool,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Write results.json, per_image.csv, histograms and a grid here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: BackendArg,
}

#[derive(clap::Args)]
struct DataArgs {
    #[command(flatten)]
    data: DataSel,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to write the grid of sample faces.
    #[arg(long, default_value = "runs/data")]
    out: PathBuf,
}

/// wgpu's GL backend probes for a Wayland display, and without XDG_RUNTIME_DIR libwayland
/// prints "error: XDG_RUNTIME_DIR is invalid or not set" at every probe (headless machines,
/// CI). An empty private folder makes the probe fail quietly. Runs first, before any thread.
#[cfg(unix)]
fn quiet_wayland_probe() {
    use std::os::unix::fs::DirBuilderExt;
    if std::env::var_os("XDG_RUNTIME_DIR").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        return;
    }
    let dir = std::env::temp_dir().join(format!("facegpu-runtime-{}", uid()));
    let made = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    if made.is_ok() || dir.is_dir() {
        std::env::set_var("XDG_RUNTIME_DIR", &dir);
    }
}

/// The user's id, from the owner of /proc/self (no libc dependency for one number).
#[cfg(unix)]
fn uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

fn main() -> ExitCode {
    #[cfg(unix)]
    quiet_wayland_probe();
    context::spread_software_threads();
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
        Cmd::Train(a) => train(a),
        Cmd::Eval(a) => eval(a),
        Cmd::Compare { results } => {
            print!("{}", facegpu::eval::compare(&results)?);
            Ok(())
        }
        Cmd::Metrics {
            reference,
            distorted,
            json,
            backend,
        } => {
            let gpu = Gpu::new(backend.backend)?;
            let r = facegpu::metrics_cmd::run(&gpu, &reference, &distorted, 64)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", facegpu::metrics_cmd::format_text(&r));
            }
            Ok(())
        }
        Cmd::Data(a) => data(a),
        Cmd::Synth { count, out, seed } => {
            let r = facegpu::data::write_synth(count, seed, &out)?;
            println!("{r}");
            Ok(())
        }
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
                    let bound = r
                        .bound_pct
                        .map_or(String::new(), |b| format!(" {b:>4.0}% of bound"));
                    eprintln!(
                        "  {:<60} {:>9.3} ms {:>8.2} GFLOP/s {:>7.2} GB/s{bound}",
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
        Cmd::Bench {
            what:
                BenchCmd::Train {
                    models,
                    batch,
                    steps,
                    profile,
                    json,
                    backend,
                },
        } => {
            let gpu = Gpu::new(backend.backend)?;
            let all = ["ae", "vae", "ae-wide", "conv-vae"];
            let names: Vec<&str> = if models.is_empty() {
                all.to_vec()
            } else {
                models.iter().map(|s| s.as_str()).collect()
            };
            let report = facegpu::bench::bench_train(&gpu, &names, batch, steps, profile, |r| {
                if !json {
                    eprintln!(
                        "  {:<10} {:>8.0} images/s  {:>8.2} ms/step",
                        r.model, r.images_per_s, r.ms_per_step
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
        Cmd::Bench {
            what: BenchCmd::Tune { batch, backend },
        } => {
            anyhow::ensure!(batch > 0, "--batch must be at least 1");
            let gpu = Gpu::new(backend.backend)?;
            println!("adapter: {}  (batch {batch})", gpu.describe());
            for (key, chunks) in facegpu::ops::linear::autotune(&gpu, batch)? {
                println!("  {key} = {chunks}");
            }
            if let Some(p) = facegpu::gpu::autotune::cache_path() {
                println!("cached in {}", p.display());
            }
            Ok(())
        }
        Cmd::Bench {
            what:
                BenchCmd::Metrics {
                    batch,
                    json,
                    backend,
                },
        } => {
            let gpu = Gpu::new(backend.backend)?;
            let report = facegpu::bench::bench_metrics(&gpu, batch)?;
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

struct Bars {
    bar: Option<indicatif::ProgressBar>,
}

impl facegpu::train::Progress for Bars {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        let bar = indicatif::ProgressBar::new(steps as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
                .unwrap()
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, epochs));
        self.bar = Some(bar);
    }
    fn step(&mut self, done: usize, loss: f64, ips: f64) {
        if let Some(b) = &self.bar {
            b.set_position(done as u64);
            b.set_message(format!("loss {loss:.6} | {ips:.0} images/s"));
        }
    }
    fn epoch_end(&mut self, r: &facegpu::train::EpochRecord, best: bool) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        println!(
            "epoch {:>3}: train loss {:.6}  val loss {:.6}{}  {:.0} images/s  {:.1} s",
            r.epoch,
            r.train_loss,
            r.val_loss,
            if best { " (best)" } else { "" },
            r.images_per_s,
            r.seconds
        );
    }
    fn note(&mut self, line: &str) {
        if let Some(b) = &self.bar {
            b.suspend(|| eprintln!("facegpu: {line}"));
        } else {
            eprintln!("facegpu: {line}");
        }
    }
}

fn train(a: TrainArgs) -> anyhow::Result<()> {
    use facegpu::train::TrainOptions;
    let gpu = Gpu::new(a.backend.backend)?;
    let (opts, resume) = match &a.resume {
        Some(dir) => {
            let cfg = dir.join("config.json");
            let text = std::fs::read_to_string(&cfg).map_err(|e| {
                anyhow::anyhow!(
                    "--resume {}: cannot read {} ({e}); point it at the --out folder of a run",
                    dir.display(),
                    cfg.display()
                )
            })?;
            let mut o: TrainOptions = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is not a facegpu config: {e}", cfg.display()))?;
            o.epochs = a.epochs.max(o.epochs);
            o.out = dir.clone();
            o.cache = a.data.cache();
            (o, true)
        }
        None => (
            TrainOptions {
                cache: a.data.cache(),
                model: a.model,
                dataset: a.data.dataset,
                synthetic_count: a.data.synthetic_count,
                epochs: a.epochs,
                batch: a.batch,
                lr: a.lr,
                seed: a.seed,
                reg: a.reg,
                l1: a.l1,
                l2: a.l2,
                noise: a.noise,
                clip: !a.no_clip,
                denoise: a.denoise,
                kl_weight: a.kl_weight,
                patience: a.patience,
                split: a.data.split.as_array(),
                strict: a.data.strict,
                out: a.out,
            },
            false,
        ),
    };
    eprintln!(
        "facegpu: training {} on {} ({})",
        opts.model,
        opts.dataset
            .as_ref()
            .map_or("synthetic faces".to_string(), |d| d.display().to_string()),
        gpu.describe()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    // Ctrl-C: finish the step in flight, write a resumable checkpoint, exit cleanly
    let _ = ctrlc::set_handler(move || s2.store(true, Ordering::SeqCst));
    let summary = facegpu::train::train(&gpu, &opts, resume, &mut Bars { bar: None }, stop)?;
    if !summary.interrupted {
        println!(
            "best validation loss {:.6} at epoch {}; outputs in {}",
            summary.best_val_loss,
            summary.best_epoch,
            summary.out.display()
        );
    }
    Ok(())
}

fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let part = facegpu::data::split::Part::parse(&a.split)?;
    let gpu = Gpu::new(a.backend.backend)?;
    let opts = facegpu::eval::EvalOptions {
        checkpoint: a.checkpoint,
        dataset: a.dataset,
        part,
        noise: a.noise,
        clip: !a.no_clip,
        seed: a.seed,
        sample: a.sample,
        batch: a.batch,
        out: a.out,
    };
    let r = facegpu::eval::evaluate(&gpu, &opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", facegpu::eval::markdown(&r));
    }
    Ok(())
}

fn data(a: DataArgs) -> anyhow::Result<()> {
    let opts = facegpu::data::DataOptions {
        cache: a.data.cache(),
        dataset: a.data.dataset,
        strict: a.data.strict,
        synthetic_count: a.data.synthetic_count,
        ..Default::default()
    };
    std::fs::create_dir_all(&a.out).map_err(|e| {
        anyhow::anyhow!("cannot create the output folder {} ({e})", a.out.display())
    })?;
    let r =
        facegpu::data::data_report(&opts, a.data.split, a.seed, Some(&a.out.join("faces.png")))?;
    print!("{r}");
    Ok(())
}
