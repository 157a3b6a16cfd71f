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
    /// How many synthetic faces to draw when there is no --dataset [default: 2000].
    #[arg(long, allow_negative_numbers = true)]
    synthetic_count: Option<usize>,
    /// Train/val/test fractions [default: 0.7,0.1,0.2].
    #[arg(long, allow_hyphen_values = true)]
    split: Option<SplitFractions>,
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
    fn synthetic_count(&self) -> usize {
        self.synthetic_count
            .unwrap_or(facegpu::data::dataset::DEFAULT_SYNTHETIC_COUNT)
    }
    fn split(&self) -> SplitFractions {
        self.split.unwrap_or_default()
    }
}

/// Training options. Those that define a run are Options so that `--resume` can tell a flag
/// given on the command line from its default (and refuse one that differs from the run's).
/// Numbers accept a leading minus (floats also `-1e-5`: allow_hyphen_values), so `--lr -1`
/// reaches the validation that explains it instead of clap's "unexpected argument".
#[derive(clap::Args)]
struct TrainArgs {
    /// ae, vae, ae-wide or conv-vae [default: ae].
    #[arg(long)]
    model: Option<String>,
    #[command(flatten)]
    data: DataSel,
    /// Epochs in all [default: 10; with --resume: the run's own count].
    #[arg(long, allow_negative_numbers = true)]
    epochs: Option<usize>,
    /// Images per step [default: 128].
    #[arg(long, allow_negative_numbers = true)]
    batch: Option<usize>,
    /// Adam's learning rate [default: 1e-3].
    #[arg(long, allow_hyphen_values = true)]
    lr: Option<f32>,
    /// Seed of the weights, split, shuffles and noise [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    seed: Option<u64>,
    /// Weight regularization: L2 is Adam's weight decay, L1 adds l1*sum|w| to the loss
    /// [default: none].
    #[arg(long, value_enum)]
    reg: Option<facegpu::train::Reg>,
    /// L1 weight, used by --reg l1 and l1l2 [default: 1e-5].
    #[arg(long, allow_hyphen_values = true)]
    l1: Option<f32>,
    /// L2 weight (Adam's weight decay), used by --reg l2 and l1l2 [default: 1e-5].
    #[arg(long, allow_hyphen_values = true)]
    l2: Option<f32>,
    /// Train on inputs with Gaussian noise of this sigma.
    #[arg(long, allow_hyphen_values = true)]
    noise: Option<f32>,
    /// Keep noisy inputs unclipped (default: clipped to [0, 1]).
    #[arg(long)]
    no_clip: bool,
    /// Noisy input, clean target.
    #[arg(long)]
    denoise: bool,
    /// Weight of the KL term (the VAEs) [default: 1].
    #[arg(long, allow_hyphen_values = true)]
    kl_weight: Option<f32>,
    /// Stop after N >= 1 epochs without a better validation loss.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    patience: Option<usize>,
    /// Output folder (checkpoints, metrics.csv, loss.png, config.json, reconstructions.png)
    /// [default: runs/train].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this folder with its own settings; only --epochs (to change the
    /// total), --patience, --backend and the cache flags may be given with it.
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
    #[arg(long, allow_hyphen_values = true)]
    noise: Option<f32>,
    #[arg(long)]
    no_clip: bool,
    /// Seed of the evaluation noise (default: the checkpoint's).
    #[arg(long, allow_negative_numbers = true)]
    seed: Option<u64>,
    /// VAE: sample z instead of using z = mu.
    #[arg(long)]
    sample: bool,
    #[arg(long, default_value_t = 128, allow_negative_numbers = true)]
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
        Ok(code) => code,
        Err(e) => {
            eprintln!("facegpu: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status of a training run stopped by Ctrl-C after writing its resumable checkpoint
/// (128 + SIGINT, as shells report a command ended by Ctrl-C).
const EXIT_INTERRUPTED: u8 = 130;

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Cmd::Train(a) = cli.cmd {
        return train(a);
    }
    run_other(cli.cmd).map(|()| ExitCode::SUCCESS)
}

fn run_other(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Info { json, backend } => info(json, backend.backend),
        Cmd::Train(a) => train(a).map(|_| ()),
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
            // the tuned products are the seed VAE's
            facegpu::model::registry::model("vae")?.check_batch(&gpu, batch)?;
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

/// The largest `--batch` of each model on an adapter with these limits (`Gpu::check_batch`).
fn largest_batches(r: &context::AdapterReport) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let limit =
        facegpu::gpu::tensor::tensor_limit(r.max_storage_buffer_binding_size, r.max_buffer_size);
    facegpu::model::registry::MODEL_NAMES
        .iter()
        .map(|&m| Ok((m, facegpu::model::registry::model(m)?.max_batch(limit)?)))
        .collect()
}

fn info(json: bool, backend: BackendChoice) -> anyhow::Result<()> {
    let reports = context::adapter_reports();
    let chosen = Gpu::new(backend).map(|g| g.describe());
    if json {
        let mut adapters = Vec::new();
        for r in &reports {
            let mut v = serde_json::to_value(r)?;
            v["largest_batch"] = serde_json::Value::Object(
                largest_batches(r)?
                    .into_iter()
                    .map(|(m, n)| (m.to_string(), n.into()))
                    .collect(),
            );
            adapters.push(v);
        }
        let v = serde_json::json!({
            "adapters": adapters,
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
        // the GL backend leaves `driver` empty and puts the version in `driver_info`
        let driver = [r.driver.as_str(), r.driver_info.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let driver = if driver.is_empty() {
            "(not reported)".to_string()
        } else {
            driver
        };
        println!(
            "  backend {} | type {} | driver {driver}",
            r.backend, r.device_type
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
        let batches: Vec<String> = largest_batches(r)?
            .into_iter()
            .map(|(m, n)| format!("{m} {n}"))
            .collect();
        println!("  largest --batch: {}", batches.join(" | "));
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

fn train(a: TrainArgs) -> anyhow::Result<ExitCode> {
    let (opts, resume) = match &a.resume {
        Some(dir) => (resume_options(&a, dir)?, true),
        None => {
            let opts = new_options(&a);
            for w in ineffective_flags(&a, &opts) {
                eprintln!("facegpu: warning: {w}");
            }
            (opts, false)
        }
    };
    // bad options are reported before the adapter starts
    opts.validate()?;
    let gpu = Gpu::new(a.backend.backend)?;
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    // Ctrl-C: finish the step in flight, write a resumable checkpoint, exit with 130
    let _ = ctrlc::set_handler(move || s2.store(true, Ordering::SeqCst));
    eprintln!(
        "facegpu: training {} on {} ({})",
        opts.model,
        opts.dataset
            .as_ref()
            .map_or("synthetic faces".to_string(), |d| d.display().to_string()),
        gpu.describe()
    );
    let summary = facegpu::train::train(&gpu, &opts, resume, &mut Bars { bar: None }, stop)?;
    if summary.interrupted {
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    println!(
        "best validation loss {:.6} at epoch {}; outputs in {}",
        summary.best_val_loss,
        summary.best_epoch,
        summary.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The options of a new run: the flags given, defaults for the rest.
fn new_options(a: &TrainArgs) -> facegpu::train::TrainOptions {
    let d = facegpu::train::TrainOptions::new(
        a.model.as_deref().unwrap_or("ae"),
        a.out.clone().unwrap_or_else(|| "runs/train".into()),
    );
    facegpu::train::TrainOptions {
        cache: a.data.cache(),
        dataset: a.data.dataset.clone(),
        synthetic_count: a.data.synthetic_count(),
        epochs: a.epochs.unwrap_or(d.epochs),
        batch: a.batch.unwrap_or(d.batch),
        lr: a.lr.unwrap_or(d.lr),
        seed: a.seed.unwrap_or(d.seed),
        reg: a.reg.unwrap_or(d.reg),
        l1: a.l1.unwrap_or(d.l1),
        l2: a.l2.unwrap_or(d.l2),
        noise: a.noise,
        clip: !a.no_clip,
        denoise: a.denoise,
        kl_weight: a.kl_weight.unwrap_or(d.kl_weight),
        patience: a.patience,
        split: a.data.split().as_array(),
        strict: a.data.strict,
        ..d
    }
}

/// Flags given that the run will not use (one line each, printed as warnings).
fn ineffective_flags(a: &TrainArgs, o: &facegpu::train::TrainOptions) -> Vec<String> {
    use facegpu::train::Reg;
    let mut w = Vec::new();
    if a.l1.is_some() && !matches!(o.reg, Reg::L1 | Reg::L1l2) {
        w.push(format!(
            "--l1 has no effect with --reg {} (it weighs the L1 term of --reg l1 and l1l2)",
            reg_name(o.reg)
        ));
    }
    if a.l2.is_some() && !matches!(o.reg, Reg::L2 | Reg::L1l2) {
        w.push(format!(
            "--l2 has no effect with --reg {} (it is the weight decay of --reg l2 and l1l2)",
            reg_name(o.reg)
        ));
    }
    if a.kl_weight.is_some() && facegpu::model::registry::model(&o.model).is_ok_and(|s| !s.is_vae())
    {
        w.push(format!(
            "--kl-weight has no effect on {}: an autoencoder has no KL term (vae and conv-vae do)",
            o.model
        ));
    }
    if a.no_clip && o.noise.is_none() {
        w.push("--no-clip has no effect without --noise SIGMA".into());
    }
    w
}

fn reg_name(r: facegpu::train::Reg) -> String {
    use clap::ValueEnum;
    r.to_possible_value()
        .map_or_else(|| format!("{r:?}"), |v| v.get_name().to_string())
}

/// The options of the run in `dir` (its config.json) for `--resume`. Flags that define the run
/// are refused when they differ from the saved value (a resumed run keeps its settings);
/// --epochs changes the total, --patience the early stop; --backend and the cache flags
/// concern this machine only.
fn resume_options(
    a: &TrainArgs,
    dir: &std::path::Path,
) -> anyhow::Result<facegpu::train::TrainOptions> {
    use std::fmt::Display;
    let cfg = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg).map_err(|e| {
        anyhow::anyhow!(
            "--resume {}: cannot read {} ({e}); point it at the --out folder of a run",
            dir.display(),
            cfg.display()
        )
    })?;
    let mut o: facegpu::train::TrainOptions = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a facegpu config: {e}", cfg.display()))?;
    let mut clashes: Vec<String> = Vec::new();
    // a flag given with --resume must equal the run's value
    fn check(clashes: &mut Vec<String>, flag: &str, given: Option<String>, saved: String) {
        if let Some(g) = given {
            if g != saved {
                clashes.push(format!("{flag} {g} (the run has {saved})"));
            }
        }
    }
    fn show<T: Display>(v: Option<&T>) -> Option<String> {
        v.map(|v| v.to_string())
    }
    let same_dir = |p: &std::path::Path, q: &std::path::Path| {
        p == q || matches!((p.canonicalize(), q.canonicalize()), (Ok(x), Ok(y)) if x == y)
    };
    check(&mut clashes, "--model", a.model.clone(), o.model.clone());
    let saved_dataset = o
        .dataset
        .as_ref()
        .map_or("synthetic faces, no --dataset".to_string(), |d| {
            d.display().to_string()
        });
    match (&a.data.dataset, &o.dataset) {
        (Some(g), Some(s)) if same_dir(g, s) => {}
        (Some(g), _) => clashes.push(format!(
            "--dataset {} (the run has {saved_dataset})",
            g.display()
        )),
        _ => {}
    }
    check(
        &mut clashes,
        "--synthetic-count",
        show(a.data.synthetic_count.as_ref()),
        o.synthetic_count.to_string(),
    );
    let saved_split = facegpu::data::SplitFractions::new(o.split[0], o.split[1], o.split[2])
        .map_or_else(|_| format!("{:?}", o.split), |f| f.to_string());
    check(
        &mut clashes,
        "--split",
        show(a.data.split.as_ref()),
        saved_split,
    );
    check(
        &mut clashes,
        "--batch",
        show(a.batch.as_ref()),
        o.batch.to_string(),
    );
    check(&mut clashes, "--lr", show(a.lr.as_ref()), o.lr.to_string());
    check(
        &mut clashes,
        "--seed",
        show(a.seed.as_ref()),
        o.seed.to_string(),
    );
    check(&mut clashes, "--reg", a.reg.map(reg_name), reg_name(o.reg));
    check(&mut clashes, "--l1", show(a.l1.as_ref()), o.l1.to_string());
    check(&mut clashes, "--l2", show(a.l2.as_ref()), o.l2.to_string());
    check(
        &mut clashes,
        "--noise",
        show(a.noise.as_ref()),
        o.noise.map_or("no noise".into(), |s| s.to_string()),
    );
    check(
        &mut clashes,
        "--kl-weight",
        show(a.kl_weight.as_ref()),
        o.kl_weight.to_string(),
    );
    if a.no_clip && o.clip {
        clashes.push("--no-clip (the run clips its noisy inputs)".into());
    }
    if a.denoise && !o.denoise {
        clashes.push("--denoise (the run does not denoise)".into());
    }
    if a.data.strict && !o.strict {
        clashes.push("--strict (the run was not strict)".into());
    }
    if let Some(out) = &a.out {
        if !same_dir(out, dir) {
            clashes.push(format!(
                "--out {} (a resumed run writes into its own folder, {})",
                out.display(),
                dir.display()
            ));
        }
    }
    if !clashes.is_empty() {
        anyhow::bail!(
            "--resume {} continues the run with the settings saved in {}; these flags differ from them: {}. \
             Drop them (only --epochs, --patience, --backend and the cache flags may change), or start a new run with another --out",
            dir.display(),
            cfg.display(),
            clashes.join("; ")
        );
    }
    if let Some(e) = a.epochs {
        o.epochs = e; // train() refuses fewer than the epochs already done
    }
    if a.patience.is_some() {
        o.patience = a.patience;
    }
    o.out = dir.to_path_buf();
    o.cache = a.data.cache();
    Ok(o)
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
        synthetic_count: a.data.synthetic_count(),
        dataset: a.data.dataset.clone(),
        strict: a.data.strict,
        ..Default::default()
    };
    facegpu::fsutil::ensure_output_dir(&a.out, "--out")?;
    let r = facegpu::data::data_report(
        &opts,
        a.data.split(),
        a.seed,
        Some(&a.out.join("faces.png")),
    )?;
    print!("{r}");
    Ok(())
}
