//! Faces on the GPU: a split's u8 pixels uploaded once (resident) or streamed in windows, a
//! per-epoch order drawn from (seed, epoch) on the host (one small upload per epoch), and one
//! kernel (shaders/batch.wgsl) that gathers batch k by index, turns u8 into f32 in [0, 1] and
//! optionally adds Gaussian noise keyed by (seed, stream, face id, pixel).
//!
//! Use in a training loop (the gather is part of the recorded, replayed step):
//! ```ignore
//! let mut b = Batcher::new(&gpu, &ds, &split.train, BatcherConfig::train(64, seed, Some(noise)))?;
//! let mut rec = gpu.record();
//! b.record(&mut rec)?;                  // writes b.clean (and b.noisy) [64, 1, 128, 128]
//! model_forward(&mut rec, b.input(), ...)?; ...
//! let step = rec.finish()?;
//! for epoch in 0..epochs {
//!     b.begin_epoch(&gpu, epoch)?;        // shuffle for this epoch: one small upload
//!     for k in 0..b.batches() {
//!         b.set_batch(&gpu, k)?;          // 16-byte write (+ a window upload when streaming)
//!         step.submit(&gpu);
//!     }
//! }
//! ```

use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{bail, Context as _, Result};

use super::dataset::Pixels;
use super::split::epoch_order;
use super::{Dataset, PIXELS};
use crate::gpu::kernels::{flat_texture_rows, Bind, FaceBatch, FLAT_TEXTURE_WIDTH};
use crate::gpu::{grid_1d, Gpu, Program, Recorder, Tensor};
pub use crate::ops::noise::NoiseSpec;
use crate::ops::noise::{self, EVAL_STREAM};

const WORDS: usize = PIXELS / 4;

/// Where the split's pixels live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Residency {
    /// Resident when the split fits `max_resident_bytes` and the GPU has room; else streamed.
    Auto,
    /// Always resident (an error if the GPU cannot hold it).
    Resident,
    /// Always streamed in windows.
    Stream,
}

/// How batches are drawn.
#[derive(Clone, Debug)]
pub struct BatcherConfig {
    pub batch: usize,
    /// Seeds the per-epoch shuffle and the noise.
    pub seed: u64,
    /// Shuffle each epoch (training); otherwise faces come in split order (evaluation).
    pub shuffle: bool,
    /// Leave out the last partial batch (training: every batch full). Without it the last
    /// batch has fewer valid slots; the others are zero.
    pub drop_last: bool,
    /// Also write a noisy copy of each batch.
    pub noise: Option<NoiseSpec>,
    /// Fresh noise per epoch (training); otherwise noise fixed by the seed (evaluation).
    pub fresh_noise_per_epoch: bool,
    pub residency: Residency,
    /// `Auto` keeps a split resident up to this many bytes (default 4 GiB: 70,000 faces are
    /// 1.1 GiB).
    pub max_resident_bytes: u64,
    /// Largest buffer per chunk (default: the adapter's binding limit, at most 1 GiB); tests
    /// set it small to exercise many chunks.
    pub max_chunk_bytes: Option<u64>,
    /// Faces per streamed window (rounded to whole batches; two windows are on the GPU).
    pub stream_window: usize,
}

impl BatcherConfig {
    /// Training: shuffled each epoch, full batches, fresh noise per epoch.
    pub fn train(batch: usize, seed: u64, noise: Option<NoiseSpec>) -> BatcherConfig {
        BatcherConfig {
            batch,
            seed,
            shuffle: true,
            drop_last: true,
            noise,
            fresh_noise_per_epoch: true,
            residency: Residency::Auto,
            max_resident_bytes: 4 << 30,
            max_chunk_bytes: None,
            stream_window: 4096,
        }
    }
    /// Evaluation: split order, every face once (last batch may be short), noise fixed by the
    /// seed.
    pub fn eval(batch: usize, seed: u64, noise: Option<NoiseSpec>) -> BatcherConfig {
        BatcherConfig {
            shuffle: false,
            drop_last: false,
            fresh_noise_per_epoch: false,
            ..BatcherConfig::train(batch, seed, noise)
        }
    }
}

/// What changes per step, read by the gather kernel (shaders/batch.wgsl `BatchState`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BatchValues {
    pub start: u32,
    pub valid: u32,
    pub stream: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    first_row: u32,
    rows: u32,
    chunk0: u32,
    sigma: f32,
    clip: u32,
    key_lo: u32,
    key_hi: u32,
}

struct Chunk {
    buf: wgpu::Buffer,
    first_row: usize,
    rows: usize,
}

enum Mode {
    Resident,
    /// Two windows of `window` rows; position j of the epoch lives in row j % (2 * window).
    Stream {
        window: usize,
        loaded: [Option<(u32, usize)>; 2],
        prefetch: Option<(u32, usize, JoinHandle<Vec<u8>>)>,
    },
}

/// A split on the GPU and the kernel that makes batches of it. See the module notes.
pub struct Batcher {
    /// The clean batch, [batch, 1, 128, 128] in [0, 1].
    pub clean: Tensor,
    /// The noisy batch (same shape) when `noise` is set.
    pub noisy: Option<Tensor>,
    /// The per-step state buffer (16 bytes) the gather reads.
    pub state: wgpu::Buffer,
    order: wgpu::Buffer,
    lut: wgpu::Buffer,
    chunks: Vec<Chunk>,
    mode: Mode,
    /// Dataset index of each face of the split.
    ids: Vec<u32>,
    /// This epoch's order: positions -> split index.
    perm: Vec<u32>,
    epoch: u32,
    cfg: BatcherConfig,
    pixels: Arc<Pixels>,
}

/// The exact f32 value of each byte: i / 255 correctly rounded (what the host computes).
pub fn byte_to_unit_lut() -> [f32; 256] {
    std::array::from_fn(|i| i as f32 / 255.0)
}

impl Batcher {
    /// Puts split `rows` (dataset indices) of `ds` on the GPU and prepares epoch 0.
    pub fn new(gpu: &Gpu, ds: &Dataset, rows: &[usize], cfg: BatcherConfig) -> Result<Batcher> {
        let n = rows.len();
        if n == 0 {
            bail!("this split has no faces: add images or change --split");
        }
        if cfg.batch == 0 {
            bail!("--batch must be at least 1");
        }
        if cfg.drop_last && n < cfg.batch {
            bail!(
                "the split has {n} faces, fewer than one batch of {}: lower --batch or add images",
                cfg.batch
            );
        }
        if n > u32::MAX as usize / 2 {
            bail!("{n} faces are more than one split can index");
        }
        if let Some(&bad) = rows.iter().find(|&&i| i >= ds.len()) {
            bail!("split index {bad} is past the dataset's {} faces", ds.len());
        }
        let ids: Vec<u32> = rows.iter().map(|&i| i as u32).collect();
        let limit = gpu
            .limits
            .max_storage_buffer_binding_size
            .min(gpu.limits.max_buffer_size)
            .min(1 << 30);
        let chunk_cap = cfg.max_chunk_bytes.unwrap_or(limit).min(limit) as usize / PIXELS;
        if chunk_cap == 0 {
            bail!("the adapter cannot bind even one face ({PIXELS} bytes) per buffer");
        }
        let bytes = (n * PIXELS) as u64;
        let want_resident = match cfg.residency {
            Residency::Resident => true,
            Residency::Stream => false,
            Residency::Auto => bytes <= cfg.max_resident_bytes,
        };
        let pixels = ds.shared_pixels();
        let mut chunks = Vec::new();
        let mut mode = None;
        if want_resident {
            match upload_resident(gpu, &pixels, &ids, chunk_cap) {
                Ok(c) => {
                    chunks = c;
                    mode = Some(Mode::Resident);
                }
                Err(e) if cfg.residency == Residency::Resident => return Err(e),
                Err(e) => log::warn!("streaming the split instead of keeping it resident: {e:#}"),
            }
        }
        let mode = match mode {
            Some(m) => m,
            None => {
                if cfg.batch > chunk_cap {
                    bail!(
                        "a batch of {} faces does not fit one buffer of this adapter ({} faces): lower --batch",
                        cfg.batch, chunk_cap
                    );
                }
                let window = cfg
                    .stream_window
                    .max(cfg.batch)
                    .next_multiple_of(cfg.batch)
                    .min(chunk_cap / cfg.batch * cfg.batch);
                chunks = (0..2)
                    .map(|k| Chunk {
                        buf: gpu.storage((window * PIXELS) as u64),
                        first_row: k * window,
                        rows: window,
                    })
                    .collect();
                Mode::Stream {
                    window,
                    loaded: [None, None],
                    prefetch: None,
                }
            }
        };
        let shape = [cfg.batch, 1, 128, 128];
        let lut = gpu.uniform_init(bytemuck::cast_slice(&byte_to_unit_lut()));
        let mut b = Batcher {
            clean: gpu.zeros(&shape),
            noisy: cfg.noise.map(|_| gpu.zeros(&shape)),
            state: gpu.uniform_init(&[0; 16]),
            order: gpu.storage((2 * n * 4) as u64),
            lut,
            chunks,
            mode,
            ids,
            perm: Vec::new(),
            epoch: 0,
            cfg,
            pixels,
        };
        b.begin_epoch(gpu, 0)?;
        b.set_batch(gpu, 0)?;
        Ok(b)
    }

    /// Faces in the split.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    /// Batches per epoch.
    pub fn batches(&self) -> usize {
        if self.cfg.drop_last {
            self.len() / self.cfg.batch
        } else {
            self.len().div_ceil(self.cfg.batch)
        }
    }
    pub fn batch_size(&self) -> usize {
        self.cfg.batch
    }
    pub fn config(&self) -> &BatcherConfig {
        &self.cfg
    }
    /// True when the whole split lives on the GPU.
    pub fn is_resident(&self) -> bool {
        matches!(self.mode, Mode::Resident)
    }
    /// GPU buffers holding faces (resident: ceil(n / faces per buffer); streamed: 2).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
    /// The model's input: the noisy batch if there is one, else the clean one.
    pub fn input(&self) -> &Tensor {
        self.noisy.as_ref().unwrap_or(&self.clean)
    }
    /// The noise stream batches of the current epoch use.
    pub fn stream(&self) -> u32 {
        if self.cfg.fresh_noise_per_epoch {
            self.epoch
        } else {
            EVAL_STREAM
        }
    }

    /// Records the gather (one dispatch per chunk) into a program; it reads the batch to make
    /// from the state buffer, so the program can be replayed for every batch.
    pub fn record(&self, rec: &mut Recorder) -> Result<()> {
        self.record_gather(rec).map(|_| ())
    }

    /// A training step's program: the batch, then `body` (forward, backward, update). Where
    /// every kernel that reads the batch can read it straight from the faces' store
    /// ([`Batcher::record_elidable`]), the gather is left out; else (some kernel reads the
    /// float batch) the step is recorded again with the gather and no kernel reading the
    /// faces, which would decode them for nothing.
    pub fn record_step(
        &self,
        gpu: &Gpu,
        body: impl Fn(&mut Recorder) -> Result<()>,
    ) -> Result<Program> {
        let mut rec = gpu.record();
        let faces = self.record_elidable(&mut rec)?;
        body(&mut rec)?;
        if !faces || rec.drops_elidable(&self.clean.buf) {
            return rec.finish();
        }
        let mut rec = gpu.record();
        self.record(&mut rec)?;
        body(&mut rec)?;
        rec.finish()
    }

    /// [`Batcher::record`] for a program that reads `clean` only inside itself (a training
    /// step): where the kernels can read the batch straight from the faces' store (software
    /// adapters with texture aliases, one chunk, no noise, whole batches), they are told so
    /// ([`Recorder::read_faces`]; returns true), and the gather is dropped when the program is
    /// finished if no kernel read `clean` after all. `clean` is then never written: read
    /// nothing from it.
    pub fn record_elidable(&self, rec: &mut Recorder) -> Result<bool> {
        let words = self.record_gather(rec)?;
        // (shaders/faces.wgsl reads every slot as a face: batches are whole with drop_last)
        if let (Some(words), None, [_], true) =
            (words, &self.noisy, &self.chunks[..], self.cfg.drop_last)
        {
            rec.elide_if_unread(&self.clean.buf);
            rec.read_faces(FaceBatch {
                tensor: self.clean.clone(),
                words,
                order: self.order.clone(),
                state: self.state.clone(),
            });
            return Ok(true);
        }
        Ok(false)
    }

    /// Records the gather; returns the last chunk's words texture where it read one.
    fn record_gather(&self, rec: &mut Recorder) -> Result<Option<wgpu::TextureView>> {
        let mut last_words = None;
        let key = noise::key(self.cfg.seed);
        let (sigma, clip) = self
            .cfg
            .noise
            .map_or((0.0, 0), |s| (s.sigma, s.clip as u32));
        for (k, c) in self.chunks.iter().enumerate() {
            let params = Params {
                batch: self.cfg.batch as u32,
                first_row: c.first_row as u32,
                rows: c.rows as u32,
                chunk0: (k == 0) as u32,
                sigma,
                clip,
                key_lo: key[0],
                key_hi: key[1],
            };
            // on lavapipe the chunk's memory read as words through a texture (gpu::alias)
            let extent = [
                FLAT_TEXTURE_WIDTH as u32,
                flat_texture_rows(c.rows * PIXELS / 4) as u32,
                1,
            ];
            let words = rec
                .texture_reads()
                .then(|| {
                    rec.gpu
                        .texture_alias_shaped(&c.buf, extent, wgpu::TextureFormat::Rgba32Uint)
                })
                .flatten();
            last_words = words.map(|t| t.create_view(&Default::default()));
            let (shader, data): (_, Bind) = match &last_words {
                Some(v) => ("batch_tex", v.into()),
                None => ("batch", (&c.buf).into()),
            };
            let mut binds = vec![
                (&self.state).into(),
                (&self.order).into(),
                data,
                (&self.lut).into(),
                (&self.clean).into(),
            ];
            let entry = match &self.noisy {
                Some(t) => {
                    binds.push(t.into());
                    "gather_noisy"
                }
                None => "gather",
            };
            rec.dispatch(
                shader,
                entry,
                &params,
                &binds,
                grid_1d((self.cfg.batch * WORDS / 4) as u64, 256), // 4 words per invocation
            )?;
        }
        Ok(last_words)
    }

    /// Starts epoch `epoch`: draws its order from (seed, epoch) (identity without shuffle)
    /// and uploads it (8 bytes per face).
    pub fn begin_epoch(&mut self, gpu: &Gpu, epoch: u32) -> Result<()> {
        let n = self.len();
        if epoch == EVAL_STREAM && self.cfg.fresh_noise_per_epoch {
            bail!("epoch {epoch} is reserved for evaluation noise");
        }
        self.perm = if self.cfg.shuffle {
            epoch_order(n, self.cfg.seed, epoch)
        } else {
            (0..n as u32).collect()
        };
        self.epoch = epoch;
        let two_windows = match &mut self.mode {
            Mode::Resident => None,
            Mode::Stream {
                window,
                loaded,
                prefetch,
            } => {
                *loaded = [None, None];
                *prefetch = None;
                Some(2 * *window)
            }
        };
        let mut order = Vec::with_capacity(2 * n);
        for (j, &s) in self.perm.iter().enumerate() {
            let row = match two_windows {
                None => s,
                Some(w2) => (j % w2) as u32,
            };
            order.push(row);
            order.push(self.ids[s as usize]);
        }
        gpu.queue
            .write_buffer(&self.order, 0, bytemuck::cast_slice(&order));
        if two_windows.is_some() {
            self.start_prefetch(0);
        }
        Ok(())
    }

    /// Points the recorded gather at batch `k` of the current epoch (and, when streaming,
    /// queues the window it lives in). Takes effect for work submitted after this call.
    /// Returns the number of valid slots.
    pub fn set_batch(&mut self, gpu: &Gpu, k: usize) -> Result<usize> {
        if k >= self.batches() {
            bail!("batch {k} of an epoch of {} batches", self.batches());
        }
        let b = self.cfg.batch;
        let start = k * b;
        let valid = b.min(self.len() - start);
        if let Mode::Stream { window, .. } = self.mode {
            let w = start / window;
            self.ensure_window(gpu, w)?;
        }
        let v = BatchValues {
            start: start as u32,
            valid: valid as u32,
            stream: self.stream(),
            _pad: 0,
        };
        gpu.queue
            .write_buffer(&self.state, 0, bytemuck::bytes_of(&v));
        Ok(valid)
    }

    /// Dataset indices of the faces in batch `k` of the current epoch (slot order).
    pub fn batch_ids(&self, k: usize) -> Vec<usize> {
        let b = self.cfg.batch;
        let start = (k * b).min(self.len());
        let end = (start + b).min(self.len());
        self.perm[start..end]
            .iter()
            .map(|&s| self.ids[s as usize] as usize)
            .collect()
    }

    fn window_faces(&self, w: usize) -> Vec<u32> {
        let Mode::Stream { window, .. } = self.mode else {
            return Vec::new();
        };
        let start = (w * window).min(self.len());
        let end = (start + window).min(self.len());
        self.perm[start..end]
            .iter()
            .map(|&s| self.ids[s as usize])
            .collect()
    }

    /// Assembles window `w` of this epoch on a background thread (overlapping the GPU's work
    /// on the current window and the disk reads of a memory-mapped cache).
    fn start_prefetch(&mut self, w: usize) {
        let faces = self.window_faces(w);
        let epoch = self.epoch;
        let pixels = self.pixels.clone();
        if let Mode::Stream { prefetch, .. } = &mut self.mode {
            if faces.is_empty() {
                *prefetch = None;
                return;
            }
            let h = std::thread::spawn(move || assemble(&pixels, &faces));
            *prefetch = Some((epoch, w, h));
        }
    }

    fn ensure_window(&mut self, gpu: &Gpu, w: usize) -> Result<()> {
        let epoch = self.epoch;
        let Mode::Stream {
            loaded, prefetch, ..
        } = &mut self.mode
        else {
            return Ok(());
        };
        let slot = w % 2;
        if loaded[slot] == Some((epoch, w)) {
            return Ok(());
        }
        let data = match prefetch.take() {
            Some((e, pw, h)) if e == epoch && pw == w => h
                .join()
                .map_err(|_| anyhow::anyhow!("the window prefetch thread failed"))?,
            _ => {
                let faces = self.window_faces(w);
                assemble(&self.pixels, &faces)
            }
        };
        let Mode::Stream { loaded, .. } = &mut self.mode else {
            unreachable!()
        };
        // The GPU may still be reading the other window; this one was last read two windows
        // ago, and queue order puts this write after that work.
        gpu.queue.write_buffer(&self.chunks[slot].buf, 0, &data);
        loaded[slot] = Some((epoch, w));
        self.start_prefetch(w + 1);
        Ok(())
    }
}

/// Pixels of `faces` (dataset indices), one after the other.
fn assemble(pixels: &Pixels, faces: &[u32]) -> Vec<u8> {
    let src = pixels.as_slice();
    let mut out = Vec::with_capacity(faces.len() * PIXELS);
    for &i in faces {
        let i = i as usize;
        out.extend_from_slice(&src[i * PIXELS..(i + 1) * PIXELS]);
    }
    out
}

/// Uploads faces `ids` into buffers of at most `chunk_cap` faces each; an out-of-memory error
/// is returned (not raised), so `Auto` can fall back to streaming.
fn upload_resident(
    gpu: &Gpu,
    pixels: &Pixels,
    ids: &[u32],
    chunk_cap: usize,
) -> Result<Vec<Chunk>> {
    let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let mut chunks = Vec::new();
    let n = ids.len();
    let mut first = 0;
    while first < n {
        let rows = chunk_cap.min(n - first);
        chunks.push(Chunk {
            buf: gpu.storage((rows * PIXELS) as u64),
            first_row: first,
            rows,
        });
        first += rows;
    }
    if let Some(e) = pollster::block_on(scope.pop()) {
        bail!(
            "the GPU has no room for {n} faces ({} MiB): {e}",
            (n * PIXELS) >> 20
        );
    }
    // Fill in pieces of at most 32 MiB, flushing each, so staging memory stays small.
    let piece = (32 << 20) / PIXELS;
    let src = pixels.as_slice();
    for c in &chunks {
        let mut r = 0;
        while r < c.rows {
            let m = piece.min(c.rows - r);
            let mut buf = Vec::with_capacity(m * PIXELS);
            for &i in &ids[c.first_row + r..c.first_row + r + m] {
                let i = i as usize;
                buf.extend_from_slice(&src[i * PIXELS..(i + 1) * PIXELS]);
            }
            gpu.queue.write_buffer(&c.buf, (r * PIXELS) as u64, &buf);
            gpu.queue.submit([]);
            r += m;
        }
    }
    gpu.wait().context("uploading faces to the GPU")?;
    Ok(chunks)
}

/// The gather kernel at a batch of faces, with and without noise (a resident split of 1024
/// synthetic-sized faces).
pub fn bench_cases(cases: &mut crate::gpu::timing::BenchCases, batch: usize) -> Result<()> {
    let gpu = cases.gpu;
    let n = batch.max(1024);
    let px: Vec<u8> = (0..n * PIXELS).map(|i| (i % 251) as u8).collect();
    let names = (0..n).map(|i| format!("bench/{i}")).collect();
    let ds = Dataset::from_pixels(px, names, super::Source::Synthetic { seed: 0, count: n })?;
    let rows: Vec<usize> = (0..n).collect();
    for noise in [
        None,
        Some(NoiseSpec {
            sigma: 0.1,
            clip: true,
        }),
    ] {
        let outs = if noise.is_some() { 2.0 } else { 1.0 };
        let name = format!(
            "batch gather{} ({batch}x1x128x128 from u8)",
            if noise.is_some() { " + noise" } else { "" }
        );
        cases.add(
            name,
            0.0,
            (batch * PIXELS) as f64 * (1.0 + 4.0 * outs),
            |rec| Batcher::new(gpu, &ds, &rows, BatcherConfig::train(batch, 0, noise))?.record(rec),
        )?;
    }
    Ok(())
}
