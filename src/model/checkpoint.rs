//! Checkpoints: model weights in a safetensors file with PyTorch's parameter names and layouts
//! (so `model.load_state_dict(safetensors.torch.load_file(path), strict=True)` works on the seed
//! models in tools/seed_models.py), plus a JSON description in the safetensors `__metadata__`.
//! The optimizer state for an exact resume lives in a companion file `<stem>.optim.safetensors`.
//!
//! Layouts are PyTorch's: Conv2d weight [out, in, kh, kw]; ConvTranspose2d weight
//! [in, out, kh, kw]; Linear weight [out, in]; all f32, row-major, little-endian.
//!
//! `__metadata__` keys (all values strings, as safetensors requires):
//! - `format`: "facegpu-checkpoint" or "facegpu-optim"; `format_version`: "1"
//! - `model`: the model name, repeated in plain text for quick inspection from Python
//! - `facegpu`: [`CheckpointMeta`] as JSON (checkpoints) / `optim`: t, epoch, extra as JSON
//! - `tensor_order`: JSON list of names in the order the caller gave them (the file itself stores
//!   tensors sorted by name), so a load returns them in the saved order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::TensorInfo;
use safetensors::{Dtype, SafeTensorError, SafeTensors, View};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;

/// Value of the `format` metadata key of a model checkpoint.
pub const FORMAT_CHECKPOINT: &str = "facegpu-checkpoint";
/// Value of the `format` metadata key of an optimizer-state file.
pub const FORMAT_OPTIM: &str = "facegpu-optim";
/// Bumped when the metadata layout changes incompatibly.
pub const FORMAT_VERSION: &str = "1";

/// One named f32 tensor: (PyTorch name, shape, row-major data).
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Parameters of the seeds' convolutional autoencoder, in `state_dict()` order (741 in all).
/// encoder = Sequential(Conv2d(1,8,3,s2,p1), ReLU, Conv2d(8,4,3,s2,p1), ReLU);
/// decoder = Sequential(ConvTranspose2d(4,8,3,s2,p1,op1), ReLU, ConvTranspose2d(8,1,3,s2,p1,op1), Sigmoid).
pub const AE_PARAMS: &[(&str, &[usize])] = &[
    ("encoder.0.weight", &[8, 1, 3, 3]),
    ("encoder.0.bias", &[8]),
    ("encoder.2.weight", &[4, 8, 3, 3]),
    ("encoder.2.bias", &[4]),
    ("decoder.0.weight", &[4, 8, 3, 3]),
    ("decoder.0.bias", &[8]),
    ("decoder.2.weight", &[8, 1, 3, 3]),
    ("decoder.2.bias", &[1]),
];

/// Parameters of the seeds' fully connected VAE, in `state_dict()` order (17,102,224 in all).
/// fc1 16384->512, relu; fc_mu, fc_logvar 512->200; fc3 200->512, relu; fc4 512->16384, sigmoid.
pub const VAE_PARAMS: &[(&str, &[usize])] = &[
    ("fc1.weight", &[512, 16384]),
    ("fc1.bias", &[512]),
    ("fc_mu.weight", &[200, 512]),
    ("fc_mu.bias", &[200]),
    ("fc_logvar.weight", &[200, 512]),
    ("fc_logvar.bias", &[200]),
    ("fc3.weight", &[512, 200]),
    ("fc3.bias", &[512]),
    ("fc4.weight", &[16384, 512]),
    ("fc4.bias", &[16384]),
];

/// PyTorch parameter names and shapes of a seed model ("ae" or "vae"), in `state_dict()` order.
pub fn pytorch_names(model: &str) -> Option<Vec<(&'static str, Vec<usize>)>> {
    let table = match model {
        "ae" => AE_PARAMS,
        "vae" => VAE_PARAMS,
        _ => return None,
    };
    Some(table.iter().map(|(n, s)| (*n, s.to_vec())).collect())
}

/// A model's weights and how they came to be.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub tensors: Vec<NamedTensor>,
    pub meta: CheckpointMeta,
}

/// What a checkpoint records besides its weights (stored as JSON in `__metadata__["facegpu"]`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CheckpointMeta {
    /// Model name, e.g. "ae" or "vae".
    pub model: String,
    /// Epochs completed when the weights were taken.
    pub epoch: usize,
    /// Seed of the run (weight init, shuffling, noise).
    pub seed: u64,
    /// The training options (the CLI's, as JSON).
    pub options: serde_json::Value,
    /// How the data was split (sources, counts, seed), as JSON.
    pub split: serde_json::Value,
    /// `CARGO_PKG_VERSION` of the writer.
    pub facegpu_version: String,
    /// Optimizer steps taken.
    #[serde(default)]
    pub step: u64,
    /// Latest metrics, e.g. {"train_loss": .., "val_loss": ..}.
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// The adapter that trained it (name, backend), for the record.
    #[serde(default)]
    pub adapter: String,
    /// Seconds since the Unix epoch when it was written (0 when unknown).
    #[serde(default)]
    pub created_unix: u64,
}

impl CheckpointMeta {
    /// Metadata with this crate's version and the current time; options/split/metrics null.
    pub fn new(model: &str, epoch: usize, seed: u64) -> Self {
        let created_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        CheckpointMeta {
            model: model.to_string(),
            epoch,
            seed,
            options: serde_json::Value::Null,
            split: serde_json::Value::Null,
            facegpu_version: env!("CARGO_PKG_VERSION").to_string(),
            step: 0,
            metrics: serde_json::Value::Null,
            adapter: String::new(),
            created_unix,
        }
    }
}

impl Checkpoint {
    /// The tensor called `name`: (shape, data).
    pub fn tensor(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.tensors
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, s, d)| (s.as_slice(), d.as_slice()))
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.tensors.iter().map(|(_, _, d)| d.len()).sum()
    }
}

/// Optimizer state for an exact resume (Adam m and v per parameter, step t, epoch, and whatever
/// else the trainer needs in `extra`: rng position, batch index, metrics history).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimState {
    pub t: u64,
    pub epoch: usize,
    pub tensors: Vec<NamedTensor>,
    pub extra: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct OptimHeader {
    t: u64,
    epoch: usize,
    #[serde(default)]
    extra: serde_json::Value,
}

/// The companion optimizer-state path of a checkpoint: `dir/model.safetensors` ->
/// `dir/model.optim.safetensors`.
pub fn optim_path(checkpoint: &Path) -> PathBuf {
    let stem = checkpoint
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    checkpoint.with_file_name(format!("{stem}.optim.safetensors"))
}

/// Write a checkpoint atomically (temp file, fsync, rename).
pub fn save(path: &Path, ck: &Checkpoint) -> Result<()> {
    let meta_json = serde_json::to_string(&ck.meta).context("serializing checkpoint metadata")?;
    let mut md = HashMap::new();
    md.insert("format".to_string(), FORMAT_CHECKPOINT.to_string());
    md.insert("model".to_string(), ck.meta.model.clone());
    md.insert("facegpu".to_string(), meta_json);
    write_tensors(path, &ck.tensors, md)
        .with_context(|| format!("saving checkpoint {}", path.display()))
}

/// Read a checkpoint written by [`save`].
pub fn load(path: &Path) -> Result<Checkpoint> {
    let (md, tensors) = read_tensors(path, FORMAT_CHECKPOINT)?;
    let json = md.get("facegpu").ok_or_else(|| {
        anyhow!(
            "{} is not a facegpu checkpoint: its metadata has no \"facegpu\" entry; re-save it with facegpu",
            path.display()
        )
    })?;
    let meta: CheckpointMeta = serde_json::from_str(json).map_err(|e| {
        anyhow!(
            "{} is not a readable facegpu checkpoint: its \"facegpu\" metadata is not valid ({e})",
            path.display()
        )
    })?;
    Ok(Checkpoint { tensors, meta })
}

/// [`load`], then check it holds `model` with exactly the `expected` names and shapes (like
/// PyTorch's `load_state_dict(strict=True)`). Tensors come back in `expected` order.
pub fn load_expecting(
    path: &Path,
    model: &str,
    expected: &[(String, Vec<usize>)],
) -> Result<Checkpoint> {
    let mut ck = load(path)?;
    if ck.meta.model != model {
        bail!(
            "{} holds a \"{}\" checkpoint, not \"{model}\": pass a {model} checkpoint, or select model {} to use this one",
            path.display(),
            ck.meta.model,
            ck.meta.model
        );
    }
    let mut by_name: HashMap<String, (Vec<usize>, Vec<f32>)> =
        ck.tensors.drain(..).map(|(n, s, d)| (n, (s, d))).collect();
    let mut ordered = Vec::with_capacity(expected.len());
    for (name, shape) in expected {
        let (s, d) = by_name.remove(name).ok_or_else(|| {
            anyhow!(
                "{}: tensor \"{name}\" (shape {shape:?}) is missing from this {model} checkpoint; it was written by a different version of the model",
                path.display()
            )
        })?;
        if &s != shape {
            bail!(
                "{}: tensor \"{name}\" has shape {s:?}, the {model} model expects {shape:?}; the checkpoint was written for a different model configuration",
                path.display()
            );
        }
        ordered.push((name.clone(), s, d));
    }
    if !by_name.is_empty() {
        let mut extra: Vec<_> = by_name.keys().cloned().collect();
        extra.sort();
        bail!(
            "{}: unexpected tensors {extra:?} in this {model} checkpoint; it was written for a different model configuration",
            path.display()
        );
    }
    ck.tensors = ordered;
    Ok(ck)
}

/// Write optimizer state atomically (see [`optim_path`] for where it usually goes).
pub fn save_optim(path: &Path, st: &OptimState) -> Result<()> {
    let header = OptimHeader {
        t: st.t,
        epoch: st.epoch,
        extra: st.extra.clone(),
    };
    let mut md = HashMap::new();
    md.insert("format".to_string(), FORMAT_OPTIM.to_string());
    md.insert(
        "optim".to_string(),
        serde_json::to_string(&header).context("serializing optimizer metadata")?,
    );
    write_tensors(path, &st.tensors, md)
        .with_context(|| format!("saving optimizer state {}", path.display()))
}

/// Read optimizer state written by [`save_optim`].
pub fn load_optim(path: &Path) -> Result<OptimState> {
    let (md, tensors) = read_tensors(path, FORMAT_OPTIM)?;
    let json = md.get("optim").ok_or_else(|| {
        anyhow!(
            "{} is not a facegpu optimizer state: its metadata has no \"optim\" entry",
            path.display()
        )
    })?;
    let h: OptimHeader = serde_json::from_str(json).map_err(|e| {
        anyhow!(
            "{} is not a readable facegpu optimizer state: its \"optim\" metadata is not valid ({e})",
            path.display()
        )
    })?;
    Ok(OptimState {
        t: h.t,
        epoch: h.epoch,
        tensors,
        extra: h.extra,
    })
}

/// Checks that optimizer state `st` (read from `optim`) was written together with the weights
/// whose metadata is `meta` (read from `weights`). `facegpu train` writes the two files one
/// after the other, with `meta.step` = optimizer steps taken and `st.t` = the next step (so
/// `st.t == meta.step + 1`) and the same epoch; a run killed between the two writes leaves a
/// pair that disagrees, and resuming from it would silently not be exact.
pub fn check_pair(
    weights: &Path,
    meta: &CheckpointMeta,
    optim: &Path,
    st: &OptimState,
) -> Result<()> {
    if st.t == meta.step + 1 && st.epoch == meta.epoch {
        return Ok(());
    }
    bail!(
        "{} (epoch {}, {} steps) and {} (epoch {}, {} steps) were not written together: \
         the run was stopped between writing the two, so it cannot be resumed exactly; \
         start it again with a new --out (the weights in {} can still be evaluated with `facegpu eval --checkpoint`)",
        weights.display(),
        meta.epoch,
        meta.step,
        optim.display(),
        st.epoch,
        st.t.saturating_sub(1),
        weights.display()
    )
}

// ---------------------------------------------------------------------------------------------
// safetensors plumbing shared by both file kinds

/// A borrowed f32 tensor as safetensors bytes (no copy on little-endian hosts).
struct F32View<'a> {
    shape: &'a [usize],
    data: &'a [f32],
}

impl View for F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        if cfg!(target_endian = "little") {
            std::borrow::Cow::Borrowed(bytemuck::cast_slice(self.data))
        } else {
            std::borrow::Cow::Owned(self.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        }
    }
    fn data_len(&self) -> usize {
        self.data.len() * 4
    }
}

fn write_tensors(
    path: &Path,
    tensors: &[NamedTensor],
    mut md: HashMap<String, String>,
) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for (name, shape, data) in tensors {
        if !seen.insert(name.as_str()) {
            bail!("tensor name \"{name}\" appears twice");
        }
        let n: usize = shape.iter().product();
        if n != data.len() {
            bail!(
                "tensor \"{name}\" has shape {shape:?} ({n} values) but {} values were given",
                data.len()
            );
        }
    }
    md.insert("format_version".to_string(), FORMAT_VERSION.to_string());
    let order: Vec<&str> = tensors.iter().map(|(n, _, _)| n.as_str()).collect();
    md.insert("tensor_order".to_string(), serde_json::to_string(&order)?);
    let views = tensors.iter().map(|(n, s, d)| {
        (
            n.as_str(),
            F32View {
                shape: s.as_slice(),
                data: d.as_slice(),
            },
        )
    });
    let bytes = safetensors::serialize(views, Some(md)).map_err(|e| anyhow!("{e}"))?;
    write_atomic(path, &bytes)
}

/// Read a safetensors file of f32 tensors whose `format` metadata is `want`; returns its
/// metadata and tensors (in the saved order).
fn read_tensors(path: &Path, want: &str) -> Result<(HashMap<String, String>, Vec<NamedTensor>)> {
    let what = if want == FORMAT_OPTIM {
        "optimizer state"
    } else {
        "checkpoint"
    };
    let bytes = std::fs::read(path).map_err(|e| read_error(path, what, e))?;
    let (_, header) =
        SafeTensors::read_metadata(&bytes).map_err(|e| parse_error(path, &bytes, e))?;
    let md = header.metadata().clone().unwrap_or_default();
    match md.get("format").map(String::as_str) {
        Some(f) if f == want => {}
        Some(FORMAT_OPTIM) => bail!(
            "{} is a facegpu optimizer state, not a checkpoint: pass the model file beside it ({})",
            path.display(),
            path.display().to_string().replace(".optim.safetensors", ".safetensors")
        ),
        Some(FORMAT_CHECKPOINT) => bail!(
            "{} is a facegpu model checkpoint, not an optimizer state: pass its companion {}",
            path.display(),
            optim_path(path).display()
        ),
        _ => bail!(
            "{} is a safetensors file but not a facegpu {what} (no \"format\": \"{want}\" in its metadata); \
             pass a file written by facegpu (e.g. by `facegpu train --out DIR`)",
            path.display()
        ),
    }
    if let Some(v) = md.get("format_version") {
        if v != FORMAT_VERSION {
            bail!(
                "{} has {what} format version {v}, this facegpu ({}) reads version {FORMAT_VERSION}; use a matching facegpu",
                path.display(),
                env!("CARGO_PKG_VERSION")
            );
        }
    }
    let st = SafeTensors::deserialize(&bytes).map_err(|e| parse_error(path, &bytes, e))?;
    let mut order: Vec<String> = header.offset_keys();
    if let Some(saved) = md
        .get("tensor_order")
        .and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
    {
        // Only trust the saved order if it names exactly the tensors present.
        let mut a = saved.clone();
        let mut b = order.clone();
        a.sort();
        b.sort();
        if a == b {
            order = saved;
        }
    }
    let mut tensors = Vec::with_capacity(order.len());
    for name in order {
        let info: &TensorInfo = header
            .info(&name)
            .ok_or_else(|| anyhow!("{}: tensor \"{name}\" listed but absent", path.display()))?;
        if info.dtype != Dtype::F32 {
            bail!(
                "{}: tensor \"{name}\" is {:?}, facegpu {what}s hold f32 only",
                path.display(),
                info.dtype
            );
        }
        let view = st.tensor(&name).map_err(|e| parse_error(path, &bytes, e))?;
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        tensors.push((name, info.shape.clone(), data));
    }
    Ok((md, tensors))
}

fn read_error(path: &Path, what: &str, e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        return anyhow!(
            "{what} {} not found: check the path, or train a model first with `facegpu train --out DIR`",
            path.display()
        );
    }
    if path.is_dir() {
        let mut found: Vec<String> = std::fs::read_dir(path)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".safetensors"))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        return anyhow!(
            "{} is a directory; pass the {what} file inside it{}",
            path.display(),
            if found.is_empty() {
                " (it holds no .safetensors files)".to_string()
            } else {
                format!(" (it holds {})", found.join(", "))
            }
        );
    }
    anyhow!("cannot read {what} {}: {e}", path.display())
}

fn parse_error(path: &Path, bytes: &[u8], e: SafeTensorError) -> anyhow::Error {
    let len = bytes.len();
    match e {
        SafeTensorError::HeaderTooSmall => anyhow!(
            "{} is not a safetensors file ({len} bytes, too short to hold a header); it is empty or truncated",
            path.display()
        ),
        SafeTensorError::InvalidHeaderLength | SafeTensorError::MetadataIncompleteBuffer => {
            anyhow!(
                "{} is truncated or corrupt ({len} bytes; its header promises {}): the write or copy was interrupted; use another checkpoint or retrain",
                path.display(),
                promised(bytes).unwrap_or_else(|| "a different size".into())
            )
        }
        SafeTensorError::HeaderTooLarge
        | SafeTensorError::InvalidHeader(_)
        | SafeTensorError::InvalidHeaderDeserialization(_) => anyhow!(
            "{} is not a safetensors file ({e}); pass a checkpoint written by facegpu",
            path.display()
        ),
        e => anyhow!("{} is corrupt: {e}", path.display()),
    }
}

/// The file size a safetensors header promises, when the header itself is readable.
fn promised(bytes: &[u8]) -> Option<String> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let Some(header) = bytes.get(8..8usize.checked_add(n)?) else {
        return Some(format!("a {n}-byte header, more than the file holds"));
    };
    let v: HashMap<String, serde_json::Value> = serde_json::from_slice(header).ok()?;
    let end = v
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter_map(|(_, t)| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0) as usize;
    Some(format!("{} bytes", 8 + n + end))
}
