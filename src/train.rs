//! `facegpu train`: the loop. One recorded program per training step (gather, forward, loss,
//! backward, Adam) replayed for every batch; the loss is summed on the GPU and read back only
//! for the progress bar and at the end of each epoch. Validation, checkpoints (initial, best and
//! last, atomic), metrics.csv, loss.png, a reconstruction grid, Ctrl-C and exact resume.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::data::batcher::{Batcher, BatcherConfig, NoiseSpec};
use crate::data::split::{Split, SplitFractions, SplitInfo};
use crate::data::{self, Dataset};
use crate::gpu::{Gpu, Program, Tensor};
use crate::model::checkpoint::{self, Checkpoint, CheckpointMeta, OptimState};
use crate::model::graph::{Graph, Latent};
use crate::model::params::Params;
use crate::model::registry;
use crate::model::spec::ModelSpec;
use crate::ops::elementwise;
use crate::ops::optim::AdamConfig;
use crate::ops::step::{StepState, StepValues};
use crate::{fsutil, report};

/// Regularization of the weights, as the seeds had it: L2 is Adam's (coupled) weight decay,
/// L1 adds l1 * sum|w| to the loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Reg {
    None,
    L1,
    L2,
    L1l2,
}

/// Everything that defines a training run (saved as config.json and in every checkpoint).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainOptions {
    pub model: String,
    /// None: the embedded synthetic faces.
    pub dataset: Option<PathBuf>,
    pub synthetic_count: usize,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub seed: u64,
    pub reg: Reg,
    pub l1: f32,
    pub l2: f32,
    /// Gaussian noise sigma on the inputs (None: clean inputs).
    pub noise: Option<f32>,
    /// Clip noisy inputs to [0, 1].
    pub clip: bool,
    /// Noisy input, clean target (otherwise the target is the input itself).
    pub denoise: bool,
    pub kl_weight: f32,
    /// Stop after this many epochs without a better validation loss.
    pub patience: Option<usize>,
    pub split: [f64; 3],
    pub strict: bool,
    pub out: PathBuf,
    /// Where the decoded-dataset cache lives (a property of this machine, not of the run).
    #[serde(skip)]
    pub cache: data::CacheChoice,
}

impl TrainOptions {
    /// A run of `model` into `out` with every other setting at its default: what
    /// `facegpu train --model MODEL --out OUT` does (the embedded synthetic faces, 10 epochs,
    /// batch 128, Adam at lr 1e-3, seed 0, no regularizer or noise, split 70/10/20).
    pub fn new(model: &str, out: impl Into<PathBuf>) -> TrainOptions {
        TrainOptions {
            model: model.into(),
            dataset: None,
            synthetic_count: data::dataset::DEFAULT_SYNTHETIC_COUNT,
            epochs: 10,
            batch: 128,
            lr: 1e-3,
            seed: 0,
            reg: Reg::None,
            l1: 1e-5,
            l2: 1e-5,
            noise: None,
            clip: true,
            denoise: false,
            kl_weight: 1.0,
            patience: None,
            split: SplitFractions::default().as_array(),
            strict: false,
            out: out.into(),
            cache: Default::default(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        registry::model(&self.model)?;
        if self.batch == 0 {
            bail!("--batch must be at least 1");
        }
        if self.epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        if self.patience == Some(0) {
            bail!("--patience 0 would stop after the first epoch whatever the loss does: give N >= 1 (stop after N epochs without a better validation loss), or leave --patience out");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("--lr must be a positive number, got {}", self.lr);
        }
        if let Some(s) = self.noise {
            if !(s.is_finite() && s >= 0.0) {
                bail!("--noise must be a sigma >= 0, got {s}");
            }
        }
        if self.denoise && self.noise.is_none() {
            bail!("--denoise needs --noise SIGMA (the noisy input to clean up)");
        }
        for (name, v) in [
            ("--l1", self.l1),
            ("--l2", self.l2),
            ("--kl-weight", self.kl_weight),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bail!("{name} must be >= 0, got {v}");
            }
        }
        SplitFractions::new(self.split[0], self.split[1], self.split[2])?;
        Ok(())
    }

    pub fn adam(&self) -> AdamConfig {
        let (l1, l2) = match self.reg {
            Reg::None => (0.0, 0.0),
            Reg::L1 => (self.l1, 0.0),
            Reg::L2 => (0.0, self.l2),
            Reg::L1l2 => (self.l1, self.l2),
        };
        AdamConfig {
            lr: self.lr,
            weight_decay: l2,
            l1,
            ..AdamConfig::default()
        }
    }

    pub fn data_options(&self) -> data::DataOptions {
        data::DataOptions {
            dataset: self.dataset.clone(),
            strict: self.strict,
            synthetic_count: self.synthetic_count,
            cache: self.cache.clone(),
            ..Default::default()
        }
    }

    fn noise_spec(&self) -> Option<NoiseSpec> {
        self.noise.map(|sigma| NoiseSpec {
            sigma,
            clip: self.clip,
        })
    }
}

/// One finished epoch, as metrics.csv has it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub images_per_s: f64,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainSummary {
    pub epochs: Vec<EpochRecord>,
    pub best_epoch: usize,
    pub best_val_loss: f64,
    pub stopped_early: bool,
    pub interrupted: bool,
    pub out: PathBuf,
}

/// Progress callbacks, so the CLI draws bars and tests stay quiet.
pub trait Progress {
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _steps: usize) {}
    fn step(&mut self, _done: usize, _loss: f64, _images_per_s: f64) {}
    /// After every submitted step (cheap; no readback): `step` is the 1-based optimizer step.
    fn after_step(&mut self, _step: u64) {}
    fn epoch_end(&mut self, _rec: &EpochRecord, _best: bool) {}
    fn note(&mut self, _line: &str) {}
}

pub struct Quiet;
impl Progress for Quiet {}

/// Scalar sums on the GPU, read once per epoch (or per progress update).
struct Sums {
    recon: Tensor,
    kl: Tensor,
}

impl Sums {
    fn new(gpu: &Gpu) -> Sums {
        Sums {
            recon: gpu.zeros(&[1]),
            kl: gpu.zeros(&[1]),
        }
    }
    /// Adds weight * (this batch's losses), in a fixed order.
    fn record(&self, rec: &mut crate::gpu::Recorder, g: &Graph, weight: f32) -> Result<()> {
        elementwise::accumulate(rec, weight, &g.recon_loss, &self.recon)?;
        if g.spec.is_vae() {
            elementwise::accumulate(rec, weight, &g.kl_loss, &self.kl)?;
        }
        Ok(())
    }
    fn set(&self, gpu: &Gpu, recon: f32, kl: f32) -> Result<()> {
        gpu.write(&self.recon, &[recon])?;
        gpu.write(&self.kl, &[kl])
    }
    fn reset(&self, gpu: &Gpu) -> Result<()> {
        self.set(gpu, 0.0, 0.0)
    }
    fn read(&self, gpu: &Gpu) -> Result<(f64, f64)> {
        Ok((
            gpu.read(&self.recon)?[0] as f64,
            gpu.read(&self.kl)?[0] as f64,
        ))
    }
}

/// The training state that a resume restores.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Position {
    /// Next optimizer step (1-based).
    t: u64,
    /// Epoch in progress (0-based) and the next batch of it.
    epoch: usize,
    batch: usize,
    /// Loss sums of the epoch in progress so far.
    recon_sum: f32,
    kl_sum: f32,
    history: Vec<EpochRecord>,
    best_val: Option<f64>,
    best_epoch: usize,
    since_best: usize,
}

/// A forward-only graph over a split for the validation loss (and the reconstruction grid).
struct Evaluator {
    batcher: Batcher,
    full: Graph,
    // kept so the tail batch's graph (and its buffers) lives as long as its program
    _tail: Option<(Graph, usize)>,
    full_prog: Program,
    tail_prog: Option<Program>,
    sums: Sums,
}

impl Evaluator {
    fn new(
        gpu: &Gpu,
        spec: &ModelSpec,
        params: &Params,
        ds: &Dataset,
        rows: &[usize],
        opts: &TrainOptions,
        step: &StepState,
    ) -> Result<Evaluator> {
        let batch = opts.batch.min(rows.len()).max(1);
        let batcher = Batcher::new(
            gpu,
            ds,
            rows,
            BatcherConfig::eval(batch, opts.seed, opts.noise_spec()),
        )?;
        let (input, target) = io_tensors(&batcher, opts);
        let full = Graph::new(gpu, spec, params, batch, input, target, Latent::Mean)?;
        let sums = Sums::new(gpu);
        let r = rows.len() % batch;
        let tail = if r > 0 {
            let i = gpu.zeros(&[r, 1, 128, 128]);
            let t = if same(&full.input, &full.target) {
                i.clone()
            } else {
                gpu.zeros(&[r, 1, 128, 128])
            };
            Some((Graph::new(gpu, spec, params, r, i, t, Latent::Mean)?, r))
        } else {
            None
        };
        let record = |g: &Graph, copy_from: Option<&Graph>| -> Result<Program> {
            let mut rec = gpu.record();
            batcher.record(&mut rec)?;
            if let Some(f) = copy_from {
                rec.copy(&f.input.buf, 0, &g.input.buf, 0, g.input.bytes());
                if !same(&g.input, &g.target) {
                    rec.copy(&f.target.buf, 0, &g.target.buf, 0, g.target.bytes());
                }
            }
            g.record_forward(&mut rec, params, opts.seed, step, opts.kl_weight)?;
            // losses are means over the batch: weight by its size, divide by the count at the end
            sums.record(&mut rec, g, g.batch as f32)?;
            rec.finish()
        };
        let full_prog = record(&full, None)?;
        let tail_prog = match &tail {
            Some((g, _)) => Some(record(g, Some(&full))?),
            None => None,
        };
        Ok(Evaluator {
            batcher,
            full,
            _tail: tail,
            full_prog,
            tail_prog,
            sums,
        })
    }

    /// Mean loss over the split (reconstruction + weighted KL), one readback.
    fn loss(&mut self, gpu: &Gpu) -> Result<f64> {
        self.sums.reset(gpu)?;
        self.batcher.begin_epoch(gpu, 0)?;
        for k in 0..self.batcher.batches() {
            self.batcher.set_batch(gpu, k)?;
            let last = k + 1 == self.batcher.batches();
            match (&self.tail_prog, last) {
                (Some(p), true) => p.submit(gpu),
                _ => self.full_prog.submit(gpu),
            };
        }
        let (r, k) = self.sums.read(gpu)?;
        Ok((r + k) / self.batcher.len() as f64)
    }
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    a.buf == b.buf
}

/// Network input and target for a batcher under the options: noisy or clean input; the target
/// is the clean face with --denoise, else the input itself.
fn io_tensors(b: &Batcher, opts: &TrainOptions) -> (Tensor, Tensor) {
    let input = b.noisy.clone().unwrap_or_else(|| b.clean.clone());
    let target = if opts.denoise {
        b.clean.clone()
    } else {
        input.clone()
    };
    (input, target)
}

/// Files a run writes into `--out`.
pub const LAST: &str = "last.safetensors";
pub const BEST: &str = "best.safetensors";
/// The parameters before the first step (epoch 0), so another framework can start from the very
/// same weights (tools/torch_train_ae.py --init). Not rewritten on --resume.
pub const INIT: &str = "init.safetensors";

/// Trains as `opts` says, or continues the run in `opts.out` when `resume` is set.
pub fn train(
    gpu: &Gpu,
    opts: &TrainOptions,
    resume: bool,
    progress: &mut dyn Progress,
    stop: Arc<AtomicBool>,
) -> Result<TrainSummary> {
    opts.validate()?;
    let spec = registry::model(&opts.model)?;
    spec.check_batch(gpu, opts.batch)?;
    // a bad --out is found now, not after the data has been loaded
    if resume && !opts.out.is_dir() {
        bail!(
            "--resume {}: no such folder; point it at the --out folder of a run",
            opts.out.display()
        );
    }
    fsutil::ensure_output_dir(&opts.out, if resume { "--resume" } else { "--out" })?;
    let ds = data::load(&opts.data_options())?;
    let fractions = SplitFractions::new(opts.split[0], opts.split[1], opts.split[2])?;
    let split = Split::new(&ds, fractions, opts.seed)?;
    if split.val.is_empty() {
        bail!(
            "--split {},{},{} leaves no validation faces, and training needs them (the validation loss each epoch picks the best checkpoint): give val a fraction above 0, e.g. --split 0.7,0.1,0.2",
            opts.split[0],
            opts.split[1],
            opts.split[2]
        );
    }
    if split.train.len() < opts.batch {
        bail!(
            "the training split has {} faces, fewer than --batch {}: lower --batch or use more faces",
            split.train.len(),
            opts.batch
        );
    }

    // parameters and position: fresh, or from the last checkpoint of this run
    let (params, mut pos) = if resume {
        let last = opts.out.join(LAST);
        let ck = checkpoint::load(&last).with_context(|| {
            format!(
                "--resume: no checkpoint to continue from in {}",
                opts.out.display()
            )
        })?;
        if ck.meta.model != spec.name {
            bail!(
                "--resume: {} holds model {:?}, not {:?}",
                last.display(),
                ck.meta.model,
                spec.name
            );
        }
        // the same split (names and parts), wherever the folder is and however its path is
        // spelled (the recorded `source` is not compared)
        if let Ok(saved) = serde_json::from_value::<SplitInfo>(ck.meta.split.clone()) {
            let diffs = saved.differences(&split.info);
            if !diffs.is_empty() {
                bail!(
                    "--resume: the dataset's split changed since {} was written: {}",
                    last.display(),
                    diffs.join("; ")
                );
            }
        }
        let params = Params::from_host(gpu, &spec, &ck.tensors)?;
        let optim = checkpoint::optim_path(&last);
        if !optim.is_file() {
            bail!(
                "--resume {}: the optimizer state {} is missing, so the run cannot continue exactly (Adam's moments and the position are in it); restore that file, or start the run again without --resume",
                opts.out.display(),
                optim.display()
            );
        }
        let st = checkpoint::load_optim(&optim)?;
        // weights and optimizer state are two files: both must come from the same save
        checkpoint::check_pair(&last, &ck.meta, &optim, &st)?;
        params.moments_from_host(gpu, &st.tensors)?;
        let pos: Position = serde_json::from_value(st.extra.clone())
            .context("optimizer state has no training position")?;
        if pos.epoch > opts.epochs {
            bail!(
                "--epochs {}: the run in {} has already done {} epochs; give --epochs {} or more, or leave --epochs out to finish the run's own count",
                opts.epochs,
                opts.out.display(),
                pos.epoch,
                pos.epoch
            );
        }
        (params, pos)
    } else {
        (
            Params::init(gpu, &spec, opts.seed)?,
            Position {
                t: 1,
                ..Default::default()
            },
        )
    };

    write_json(&opts.out.join("config.json"), opts)?;
    write_split_lists(&opts.out.join("split.json"), &ds, &split)?;
    if !resume {
        save_init(gpu, &opts.out.join(INIT), &spec, &params, opts, &split)?;
    }
    // (the synthetic-faces banner is printed by data::load)

    let step_state = StepState::new(
        gpu,
        StepValues {
            t: pos.t as u32,
            epoch: pos.epoch as u32,
            lr: opts.lr,
            _pad: 0,
        },
    );
    let mut batcher = Batcher::new(
        gpu,
        &ds,
        &split.train,
        BatcherConfig::train(opts.batch, opts.seed, opts.noise_spec()),
    )?;
    let (input, target) = io_tensors(&batcher, opts);
    let graph = Graph::new(
        gpu,
        &spec,
        &params,
        opts.batch,
        input,
        target,
        Latent::Sample,
    )?;
    let sums = Sums::new(gpu);
    let adam = opts.adam();
    let step_prog = batcher.record_step(gpu, |rec| {
        graph.record_forward_backward(rec, &params, opts.seed, &step_state, opts.kl_weight)?;
        sums.record(rec, &graph, 1.0)?;
        graph.record_update(rec, &params, &adam, &step_state)
    })?;
    let mut val = Evaluator::new(gpu, &spec, &params, &ds, &split.val, opts, &step_state)?;

    let steps = batcher.batches();
    let mut interrupted = false;
    let mut stopped_early = false;
    // what last.safetensors holds: (epochs done, batch of the next), None when not written
    let mut saved_at = resume.then_some((pos.epoch, pos.batch));
    if resume && pos.epoch >= opts.epochs {
        progress.note(&format!(
            "the run in {} is already complete ({} epochs done); give --epochs N above {} to train longer",
            opts.out.display(),
            pos.epoch,
            pos.epoch
        ));
    }
    while pos.epoch < opts.epochs {
        let epoch = pos.epoch;
        progress.epoch_start(epoch, opts.epochs, steps);
        batcher.begin_epoch(gpu, epoch as u32)?;
        sums.set(gpu, pos.recon_sum, pos.kl_sum)?;
        let t0 = Instant::now();
        let first = pos.batch;
        let mut last_report = Instant::now();
        for k in first..steps {
            batcher.set_batch(gpu, k)?;
            step_state.set(
                gpu,
                StepValues {
                    t: pos.t as u32,
                    epoch: epoch as u32,
                    lr: opts.lr,
                    _pad: 0,
                },
            );
            step_prog.submit(gpu);
            progress.after_step(pos.t);
            pos.t += 1;
            pos.batch = k + 1;
            if stop.load(Ordering::SeqCst) {
                interrupted = true;
                break;
            }
            if last_report.elapsed().as_secs_f64() > 0.5 || k + 1 == steps {
                let (r, kl) = sums.read(gpu)?; // waits for the queue
                let loss = (r + kl) / (k + 1) as f64;
                check_finite(loss, epoch, &opts.out, saved_at)?;
                let ips = ((k + 1 - first) * opts.batch) as f64 / t0.elapsed().as_secs_f64();
                progress.step(k + 1, loss, ips);
                last_report = Instant::now();
            }
        }
        let (r, kl) = sums.read(gpu)?;
        pos.recon_sum = r as f32;
        pos.kl_sum = kl as f32;
        if interrupted {
            // never save a diverged state as the one to resume from
            check_finite((r + kl) / pos.batch as f64, epoch, &opts.out, saved_at)?;
            save(
                gpu,
                &opts.out.join(LAST),
                &spec,
                &params,
                opts,
                &split,
                &pos,
            )?;
            progress.note(&format!(
                "interrupted: saved {} (epoch {}, batch {}); continue with `facegpu train --resume {}`",
                opts.out.join(LAST).display(),
                epoch + 1,
                pos.batch,
                opts.out.display()
            ));
            break;
        }
        let seconds = t0.elapsed().as_secs_f64();
        let train_loss = (r + kl) / steps as f64;
        check_finite(train_loss, epoch, &opts.out, saved_at)?;
        let val_loss = val.loss(gpu)?;
        check_finite(val_loss, epoch, &opts.out, saved_at)?;
        let rec = EpochRecord {
            epoch: epoch + 1,
            train_loss,
            val_loss,
            images_per_s: ((steps - first) * opts.batch) as f64 / seconds,
            seconds,
        };
        let best = pos.best_val.is_none_or(|b| val_loss < b);
        pos.history.push(rec.clone());
        pos.epoch += 1;
        pos.batch = 0;
        pos.recon_sum = 0.0;
        pos.kl_sum = 0.0;
        if best {
            pos.best_val = Some(val_loss);
            pos.best_epoch = epoch + 1;
            pos.since_best = 0;
        } else {
            pos.since_best += 1;
        }
        save(
            gpu,
            &opts.out.join(LAST),
            &spec,
            &params,
            opts,
            &split,
            &pos,
        )?;
        saved_at = Some((pos.epoch, 0));
        if best {
            // temp file, fsync, rename: a crash leaves the previous best or this one
            fsutil::copy_atomic(&opts.out.join(LAST), &opts.out.join(BEST))?;
        }
        write_curves(&opts.out, &spec, &pos.history, ds.is_synthetic())?;
        progress.epoch_end(&rec, best);
        if opts.patience.is_some_and(|p| pos.since_best >= p) {
            stopped_early = true;
            progress.note(&format!(
                "no better validation loss for {} epochs: stopping early",
                pos.since_best
            ));
            break;
        }
    }
    if !interrupted {
        write_grid(gpu, &opts.out, &mut val, ds.is_synthetic())?;
    }
    Ok(TrainSummary {
        best_epoch: pos.best_epoch,
        best_val_loss: pos.best_val.unwrap_or(f64::NAN),
        epochs: pos.history,
        stopped_early,
        interrupted,
        out: opts.out.clone(),
    })
}

/// Fails when the loss is no longer a number, naming the checkpoint that is left: `saved_at`
/// is what last.safetensors holds (epochs done, batch of the next), None before any save.
fn check_finite(
    loss: f64,
    epoch: usize,
    out: &Path,
    saved_at: Option<(usize, usize)>,
) -> Result<()> {
    if loss.is_finite() {
        return Ok(());
    }
    let left = match saved_at {
        None => format!(
            "no epoch finished, so no checkpoint was written: only {} (the weights before the first step) is in {}",
            INIT,
            out.display()
        ),
        Some((done, 0)) => format!(
            "the last good checkpoint is {} (epoch {done})",
            out.join(LAST).display()
        ),
        Some((done, batch)) => format!(
            "the last good checkpoint is {} (epoch {}, batch {batch}, saved when interrupted)",
            out.join(LAST).display(),
            done + 1
        ),
    };
    bail!(
        "the loss became {loss} in epoch {}: training diverged (try a lower --lr); {left}",
        epoch + 1
    )
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    fsutil::write_atomic(path, serde_json::to_string_pretty(v)?.as_bytes())
}

/// The split as file lists (for tools/torch_train_ae.py and for the record).
fn write_split_lists(path: &Path, ds: &Dataset, split: &Split) -> Result<()> {
    let names = |rows: &[usize]| {
        rows.iter()
            .map(|&i| ds.names[i].clone())
            .collect::<Vec<_>>()
    };
    let root = match &ds.source {
        data::dataset::Source::Folder { dir, .. } => Some(dir.clone()),
        _ => None,
    };
    let paths = |rows: &[usize]| -> Vec<String> {
        names(rows)
            .into_iter()
            .map(|n| {
                root.as_ref()
                    .map_or(n.clone(), |r| r.join(&n).display().to_string())
            })
            .collect()
    };
    let v = serde_json::json!({
        "info": split.info,
        "train": paths(&split.train),
        "val": paths(&split.val),
        "test": paths(&split.test),
    });
    write_json(path, &v)
}

/// Saves the initial weights (no optimizer state) atomically, as a checkpoint of epoch 0.
fn save_init(
    gpu: &Gpu,
    path: &Path,
    spec: &ModelSpec,
    params: &Params,
    opts: &TrainOptions,
    split: &Split,
) -> Result<()> {
    save_weights(gpu, path, spec, params, opts, split, 0, |_| Ok(()))
}

/// Saves weights (+ optimizer state and position) atomically.
fn save(
    gpu: &Gpu,
    path: &Path,
    spec: &ModelSpec,
    params: &Params,
    opts: &TrainOptions,
    split: &Split,
    pos: &Position,
) -> Result<()> {
    save_weights(gpu, path, spec, params, opts, split, pos.epoch, |meta| {
        meta.step = pos.t.saturating_sub(1);
        meta.metrics = serde_json::to_value(pos.history.last())?;
        Ok(())
    })?;
    let st = OptimState {
        t: pos.t,
        epoch: pos.epoch,
        tensors: params.moments_to_host(gpu)?,
        extra: serde_json::to_value(pos)?,
    };
    checkpoint::save_optim(&checkpoint::optim_path(path), &st)
}

/// The weights as a checkpoint of `epoch` with the run's metadata (`more` adds to it).
#[allow(clippy::too_many_arguments)]
fn save_weights(
    gpu: &Gpu,
    path: &Path,
    spec: &ModelSpec,
    params: &Params,
    opts: &TrainOptions,
    split: &Split,
    epoch: usize,
    more: impl FnOnce(&mut CheckpointMeta) -> Result<()>,
) -> Result<()> {
    let mut meta = CheckpointMeta::new(spec.name, epoch, opts.seed);
    meta.options = crate::eval::recorded_options(opts)?;
    meta.split = serde_json::to_value(&split.info)?;
    meta.adapter = gpu.describe();
    more(&mut meta)?;
    checkpoint::save(
        path,
        &Checkpoint {
            tensors: params.to_host(gpu)?,
            meta,
        },
    )
}

fn write_curves(
    out: &Path,
    spec: &ModelSpec,
    history: &[EpochRecord],
    synthetic: bool,
) -> Result<()> {
    let rows: Vec<Vec<String>> = history
        .iter()
        .map(|r| {
            vec![
                r.epoch.to_string(),
                format!("{:.8}", r.train_loss),
                format!("{:.8}", r.val_loss),
                format!("{:.1}", r.images_per_s),
                format!("{:.3}", r.seconds),
            ]
        })
        .collect();
    report::table::write_csv(
        &out.join("metrics.csv"),
        &["epoch", "train_loss", "val_loss", "images_per_s", "seconds"],
        &rows,
    )?;
    let train: Vec<(f64, f64)> = history
        .iter()
        .map(|r| (r.epoch as f64, r.train_loss))
        .collect();
    let val: Vec<(f64, f64)> = history
        .iter()
        .map(|r| (r.epoch as f64, r.val_loss))
        .collect();
    let title = format!(
        "{} loss{}",
        spec.name,
        if synthetic { " (synthetic faces)" } else { "" }
    );
    report::plot::loss_curves(
        &out.join("loss.png"),
        &title,
        &[("train", &train), ("validation", &val)],
    )
}

/// Validation faces (input) and their reconstructions, as a PNG grid.
fn write_grid(gpu: &Gpu, out: &Path, val: &mut Evaluator, synthetic: bool) -> Result<()> {
    val.batcher.begin_epoch(gpu, 0)?;
    val.batcher.set_batch(gpu, 0)?;
    val.full_prog.run(gpu)?;
    let n = val.full.batch.min(8);
    let px = 128 * 128;
    let input = gpu.read(&val.full.input)?;
    let clean = gpu.read(&val.batcher.clean)?;
    let output = gpu.read(&val.full.output)?;
    let pick = |v: &[f32]| {
        (0..n)
            .map(|i| v[i * px..(i + 1) * px].to_vec())
            .collect::<Vec<_>>()
    };
    let (c, i, o) = (pick(&clean), pick(&input), pick(&output));
    let mut rows: Vec<(&str, Vec<&[f32]>)> =
        vec![("original", c.iter().map(|v| v.as_slice()).collect())];
    if val.batcher.noisy.is_some() {
        rows.push(("noisy input", i.iter().map(|v| v.as_slice()).collect()));
    }
    rows.push(("reconstruction", o.iter().map(|v| v.as_slice()).collect()));
    let caption = if synthetic {
        "validation faces - SYNTHETIC faces: real results need real faces"
    } else {
        "validation faces"
    };
    report::grid::image_grid(&out.join("reconstructions.png"), &rows, caption)
}
