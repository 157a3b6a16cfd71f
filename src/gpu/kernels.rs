//! Pipelines (compiled once per process), and recorded programs: a sequence of kernel
//! dispatches and copies that goes to the GPU in one command buffer and one submit, and can be
//! replayed without rebuilding bind groups (a training step is one such program).

use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use wgpu::util::DeviceExt;

use super::{shaders, Gpu};

/// Workgroups for `n` invocations at `wg` per group, split over x and y past the 65535 limit.
/// Shaders rebuild the index with `linear_index` from shaders/common.wgsl.
pub fn grid_1d(n: u64, wg: u32) -> [u32; 3] {
    let groups = n.div_ceil(wg as u64).max(1);
    if groups <= 65535 {
        [groups as u32, 1, 1]
    } else {
        let y = groups.div_ceil(65535);
        [groups.div_ceil(y) as u32, y as u32, 1]
    }
}

/// Kernels that may read a buffer through its aliasing flat texture ([`super::alias`]) while
/// writing it: each invocation reads only the elements it then writes.
const ELEMENTWISE_IN_PLACE: &[&str] = &["adam4_tex"];

/// Width in texels of [`Recorder::flat_texture`] copies (`FLAT_W` in shaders/flat_texture.wgsl).
pub const FLAT_TEXTURE_WIDTH: usize = 4096;

/// Rows of [`Recorder::flat_texture`]'s copy of `len` floats: enough for them, rounded up to a
/// power of two. Why: llvmpipe (Mesa 22.3) compiles a kernel once per combination of
/// power-of-two-or-not sizes of the textures it binds, and each compile of a large kernel takes
/// seconds; with every flat copy a power of two in both directions a kernel compiles once
/// (the VAE's first training steps: 82 -> 56 s of compiling, measured in the divergence test).
/// The cost: at most twice the texture memory, of which only the copied rows are touched.
pub fn flat_texture_rows(len: usize) -> usize {
    (len / 4)
        .div_ceil(FLAT_TEXTURE_WIDTH)
        .max(1)
        .next_power_of_two()
}

impl Gpu {
    /// An rgba32float 2D (or 2D-array, `layers` > 1) texture that kernels read and buffer copies
    /// fill: what the texture-reading kernels on CPU adapters bind, as read-only storage
    /// textures (on llvmpipe a storage-texture load skips the sampled path's per-lane mip-level
    /// lookups: 0.6 ns per texel in cache where a sampled `textureLoad` takes 1.4, measured).
    pub fn copy_texture(&self, label: &str, width: u32, height: u32, layers: u32) -> wgpu::Texture {
        self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: layers,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Float,
            usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        })
    }

    /// A 1x1 rgba32float storage texture for a binding a kernel declares but does not read
    /// (an input that shaders/faces.wgsl reads from the faces' store instead).
    pub fn placeholder_texture(&self) -> wgpu::TextureView {
        self.copy_texture("unread input", 1, 1, 1)
            .create_view(&Default::default())
    }

    /// Whether `len` floats can be read through [`Recorder::flat_texture`]: whole texels, and
    /// rows (rounded up to a power of two) within the adapter's texture height.
    pub fn flat_texture_fits(&self, len: usize) -> bool {
        len.is_multiple_of(4)
            && len > 0
            && flat_texture_rows(len) <= self.limits.max_texture_dimension_2d as usize
    }

    /// The pipeline for `entry` in shaders/`shader`.wgsl with override `constants`, compiled on
    /// first use.
    pub fn pipeline(
        &self,
        shader: &str,
        entry: &str,
        constants: &[(&str, f64)],
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let key = format!("{shader}:{entry}:{constants:?}");
        if let Some(p) = self.pipelines.lock().unwrap().get(&key) {
            return Ok(p.clone());
        }
        let module = {
            let mut modules = self.modules.lock().unwrap();
            match modules.get(shader) {
                Some(m) => m.clone(),
                None => {
                    let src = shaders::source(shader)?;
                    let m = self
                        .device
                        .create_shader_module(wgpu::ShaderModuleDescriptor {
                            label: Some(shader),
                            source: wgpu::ShaderSource::Wgsl(src.into()),
                        });
                    modules.insert(shader.to_string(), m.clone());
                    m
                }
            }
        };
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let p = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&key),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    ..Default::default()
                },
                cache: None,
            });
        if let Some(err) = pollster::block_on(scope.pop()) {
            anyhow::bail!("compiling kernel {key} failed: {err}");
        }
        let p = Arc::new(p);
        self.pipelines.lock().unwrap().insert(key, p.clone());
        Ok(p)
    }

    /// Starts recording a program.
    pub fn record(&self) -> Recorder<'_> {
        Recorder {
            gpu: self,
            ops: Vec::new(),
            params: Vec::new(),
            flat_copies: Vec::new(),
            faces: None,
            elidable: Vec::new(),
        }
    }
}

/// A binding: a whole storage buffer, a byte range of one, or a texture view.
#[derive(Clone, Debug)]
pub enum Bind {
    Buffer {
        buf: wgpu::Buffer,
        offset: u64,
        size: Option<u64>,
    },
    Texture(wgpu::TextureView),
    /// No resource: the binding number is left out (a kernel that does not declare it).
    Skip,
}

impl From<&wgpu::Buffer> for Bind {
    fn from(b: &wgpu::Buffer) -> Bind {
        Bind::Buffer {
            buf: b.clone(),
            offset: 0,
            size: None,
        }
    }
}
impl From<&super::Tensor> for Bind {
    fn from(t: &super::Tensor) -> Bind {
        (&t.buf).into()
    }
}
impl From<&wgpu::TextureView> for Bind {
    fn from(v: &wgpu::TextureView) -> Bind {
        Bind::Texture(v.clone())
    }
}

/// A buffer-to-texture copy: `extent` texels (rows of `bytes_per_row` bytes from `src_off`,
/// `extent.height` rows per layer) to row `y0` on.
#[derive(Clone, Debug)]
struct TextureCopy {
    src: wgpu::Buffer,
    src_off: u64,
    dst: wgpu::Texture,
    y0: u32,
    bytes_per_row: u32,
    extent: wgpu::Extent3d,
}

impl TextureCopy {
    fn bytes(&self) -> u64 {
        self.bytes_per_row as u64
            * self.extent.height as u64
            * self.extent.depth_or_array_layers as u64
    }

    fn encode(&self, enc: &mut wgpu::CommandEncoder) {
        enc.copy_buffer_to_texture(
            wgpu::TexelCopyBufferInfo {
                buffer: &self.src,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: self.src_off,
                    bytes_per_row: Some(self.bytes_per_row),
                    rows_per_image: Some(self.extent.height),
                },
            },
            wgpu::TexelCopyTextureInfo {
                texture: &self.dst,
                mip_level: 0,
                origin: wgpu::Origin3d {
                    x: 0,
                    y: self.y0,
                    z: 0,
                },
                aspect: wgpu::TextureAspect::All,
            },
            self.extent,
        );
    }
}

enum Pending {
    Dispatch {
        label: String,
        /// (shader, entry, override constants): the pipeline, made by `finish`, so that a
        /// recording that is dropped compiles nothing (`data::Batcher::record_step`)
        kernel: (String, String, Vec<(String, f64)>),
        params: Option<(u64, u64)>,
        binds: Vec<Bind>,
        groups: [u32; 3],
    },
    Copy {
        src: wgpu::Buffer,
        src_off: u64,
        dst: wgpu::Buffer,
        dst_off: u64,
        size: u64,
    },
    ToTexture(TextureCopy),
}

thread_local! {
    static TEXTURE_READS: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with the kernels that can read texture copies of their inputs (the software conv
/// kernels, Adam) reading storage buffers (`false`) or texture copies (`true`) on this thread,
/// instead of the default (textures on CPU adapters, wherever they fit). For tests and
/// benchmarks that compare the two.
pub fn with_texture_reads<R>(on: bool, f: impl FnOnce() -> R) -> R {
    let before = TEXTURE_READS.with(|t| t.replace(Some(on)));
    let r = f();
    TEXTURE_READS.with(|t| t.set(before));
    r
}

/// Whether kernels with a texture-reading variant should use it on `gpu`: on CPU adapters
/// unless [`with_texture_reads`] says otherwise.
pub fn texture_reads(gpu: &Gpu) -> bool {
    TEXTURE_READS.with(|t| t.get()).unwrap_or(gpu.is_cpu())
}

/// Collects dispatches; `finish` turns them into a replayable [`Program`].
pub struct Recorder<'g> {
    pub gpu: &'g Gpu,
    ops: Vec<Pending>,
    params: Vec<u8>,
    /// Flat texture copies still equal to their buffer at this point of the recording: (buffer,
    /// floats copied, view). A buffer bound as a buffer by a later dispatch (it may write it) or
    /// written by a copy drops out, so a later read copies it again.
    flat_copies: Vec<(wgpu::Buffer, usize, wgpu::TextureView)>,
    /// The batch the kernels that can may read straight from the faces' store ([`FaceBatch`]).
    faces: Option<FaceBatch>,
    /// Ops that only write a buffer, dropped by `finish` when no later op reads it: (index in
    /// `ops`, the buffer).
    elidable: Vec<(usize, wgpu::Buffer)>,
}

/// A training batch that kernels can read straight from the faces' u8 store (shaders/faces.wgsl)
/// instead of from `tensor`, the float batch a gather would write: the store's words as an
/// rgba32uint texture, the epoch's order and the per-step state the gather reads. Made by
/// `data::Batcher::record_elidable`.
#[derive(Clone, Debug)]
pub struct FaceBatch {
    pub tensor: super::Tensor,
    pub words: wgpu::TextureView,
    pub order: wgpu::Buffer,
    pub state: wgpu::Buffer,
}

/// The bindings of [`FaceBatch`] in shaders/faces.wgsl: 7, 8 and 9.
pub const FACE_BINDINGS: std::ops::RangeInclusive<u32> = 7..=9;

impl<'g> Recorder<'g> {
    /// Records one dispatch of `entry` in shaders/`shader`.wgsl. `params` (any Pod struct
    /// matching the shader's `Params`, or `&()` for none) binds at 0, `binds` at 1, 2, ...
    /// (The pipeline is made, or taken from the cache, by [`Recorder::finish`].)
    pub fn dispatch<P: bytemuck::Pod>(
        &mut self,
        shader: &str,
        entry: &str,
        params: &P,
        binds: &[Bind],
        groups: [u32; 3],
    ) -> Result<()> {
        self.dispatch_with(shader, entry, &[], params, binds, groups)
    }

    /// As [`Recorder::dispatch`], with WGSL override constants (tile sizes, variants).
    pub fn dispatch_with<P: bytemuck::Pod>(
        &mut self,
        shader: &str,
        entry: &str,
        constants: &[(&str, f64)],
        params: &P,
        binds: &[Bind],
        groups: [u32; 3],
    ) -> Result<()> {
        // checked here, where the error can be a Result: wgpu's own check comes at submit
        let max = self.gpu.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            bail!(
                "{shader}:{entry} needs {groups:?} workgroups, over this adapter's limit of {max} per dimension ({}); a smaller --batch needs fewer",
                self.gpu.info.name
            );
        }
        let bytes = bytemuck::bytes_of(params);
        let params = if bytes.is_empty() {
            None
        } else {
            let align = self.gpu.limits.min_uniform_buffer_offset_alignment.max(16) as usize;
            let off = self.params.len().next_multiple_of(align);
            self.params.resize(off, 0);
            self.params.extend_from_slice(bytes);
            // uniform structs are padded to 16 bytes in WGSL
            let size = (bytes.len() as u64).next_multiple_of(16);
            self.params.resize(off + size as usize, 0);
            Some((off as u64, size))
        };
        if groups.contains(&0) {
            return Ok(()); // nothing to do (empty tensor)
        }
        for b in binds {
            if let Bind::Buffer { buf, .. } = b {
                self.flat_copies.retain(|(c, _, _)| c != buf);
                // a texture aliasing a buffer the kernel writes shows the writes: only a kernel
                // where each invocation reads just what it writes may bind both
                let aliased = self.gpu.texture_alias(buf);
                if let Some(v) = aliased {
                    let both = binds
                        .iter()
                        .any(|t| matches!(t, Bind::Texture(tv) if *tv == v));
                    if both && !ELEMENTWISE_IN_PLACE.contains(&entry) {
                        bail!(
                            "{shader}:{entry} binds a buffer and the texture aliasing it; \
                             it is not in ELEMENTWISE_IN_PLACE (src/gpu/kernels.rs)"
                        );
                    }
                }
            }
        }
        self.ops.push(Pending::Dispatch {
            label: format!("{shader}:{entry} {groups:?}"),
            kernel: (
                shader.to_string(),
                entry.to_string(),
                constants.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
            ),
            params,
            binds: binds.to_vec(),
            groups,
        });
        Ok(())
    }

    /// Records a buffer-to-buffer copy.
    pub fn copy(
        &mut self,
        src: &wgpu::Buffer,
        src_off: u64,
        dst: &wgpu::Buffer,
        dst_off: u64,
        size: u64,
    ) {
        if size > 0 {
            self.flat_copies.retain(|(c, _, _)| c != dst);
            self.ops.push(Pending::Copy {
                src: src.clone(),
                src_off,
                dst: dst.clone(),
                dst_off,
                size,
            });
        }
    }

    /// Records a copy of `src` (from its start, rows of `bytes_per_row` bytes, a multiple of 256)
    /// into all of `dst` (one layer per image).
    pub fn copy_to_texture(&mut self, src: &wgpu::Buffer, dst: &wgpu::Texture, bytes_per_row: u32) {
        self.ops.push(Pending::ToTexture(TextureCopy {
            src: src.clone(),
            src_off: 0,
            dst: dst.clone(),
            y0: 0,
            bytes_per_row,
            extent: dst.size(),
        }));
    }

    /// Records a copy of `rows` rows of `width` texels (rows `bytes_per_row` apart in `src`,
    /// from byte `src_off`) into rows `y0 ..` of the 2D texture `dst`.
    #[allow(clippy::too_many_arguments)]
    pub fn copy_to_texture_rows(
        &mut self,
        src: &wgpu::Buffer,
        src_off: u64,
        bytes_per_row: u32,
        dst: &wgpu::Texture,
        y0: u32,
        width: u32,
        rows: u32,
    ) {
        self.ops.push(Pending::ToTexture(TextureCopy {
            src: src.clone(),
            src_off,
            dst: dst.clone(),
            y0,
            bytes_per_row,
            extent: wgpu::Extent3d {
                width,
                height: rows,
                depth_or_array_layers: 1,
            },
        }));
    }

    /// Whether kernels with a texture-reading variant should use it: on CPU adapters (see
    /// [`Recorder::flat_texture`]) unless [`with_texture_reads`] says otherwise.
    pub fn texture_reads(&self) -> bool {
        texture_reads(self.gpu)
    }

    /// Lets the kernels that can (see [`Recorder::faces_for`]) read `faces.tensor` straight from
    /// the faces' store.
    pub fn read_faces(&mut self, faces: FaceBatch) {
        self.faces = Some(faces);
    }

    /// The face batch `t` stands for, where [`Recorder::read_faces`] named it.
    pub fn faces_for(&self, t: &super::Tensor) -> Option<&FaceBatch> {
        self.faces.as_ref().filter(|f| f.tensor.buf == t.buf)
    }

    /// Marks the op recorded last (one that only writes `buf`) as dropped by `finish` if no
    /// later op reads `buf`: as a buffer, through its flat texture alias, or by a copy. (A
    /// shaped alias, [`Gpu::texture_alias_shaped`], is another view that this cannot see: do
    /// not mark a buffer that one reads.)
    pub fn elide_if_unread(&mut self, buf: &wgpu::Buffer) {
        if let Some(last) = self.ops.len().checked_sub(1) {
            self.elidable.push((last, buf.clone()));
        }
    }

    /// Whether `finish` would drop the ops marked with [`Recorder::elide_if_unread`] for `buf`
    /// (true when none is marked).
    pub fn drops_elidable(&self, buf: &wgpu::Buffer) -> bool {
        self.elidable
            .iter()
            .filter(|(_, b)| b == buf)
            .all(|(i, b)| !self.read_after(*i, b))
    }

    /// Whether an op after `from` reads `buf` (or may: a buffer binding can be a read).
    fn read_after(&self, from: usize, buf: &wgpu::Buffer) -> bool {
        let alias = self.gpu.texture_alias(buf);
        self.ops[from + 1..].iter().any(|op| match op {
            Pending::Dispatch { binds, .. } => binds.iter().any(|b| match b {
                Bind::Buffer { buf: b, .. } => b == buf,
                Bind::Texture(v) => alias.as_ref() == Some(v),
                Bind::Skip => false,
            }),
            Pending::Copy { src, .. } => src == buf,
            Pending::ToTexture(c) => c.src == *buf,
        })
    }

    /// A flat rgba32float copy of the first `len` floats of `buf` (len a multiple of 4; see
    /// [`Gpu::flat_texture_fits`]), [`FLAT_TEXTURE_WIDTH`] texels wide: texel i holds floats
    /// 4i .. 4i + 4. Why: on llvmpipe (Mesa 22.3) a storage-buffer load costs ~4 ns per float
    /// whatever its width, a storage-texture load ~0.6-1.3 ns for 4 floats and the copy ~0.7 ns
    /// per float, so kernels bound by their loads read such copies on CPU adapters.
    /// A copy made earlier in the recording is reused while nothing has bound or written `buf`
    /// since (a forward input read again by the weight gradient, a loss target, ...).
    /// On lavapipe a tensor buffer made large enough is its own flat texture: no copy at all.
    pub fn flat_texture(&mut self, buf: &wgpu::Buffer, len: usize) -> wgpu::TextureView {
        if let Some((n, view)) = self.gpu.aliases.as_ref().and_then(|a| a.view_len(buf)) {
            if n >= len {
                return view;
            }
        }
        self.flat_texture_copy(buf, len)
    }

    /// [`Recorder::flat_texture`], always as a copy.
    pub fn flat_texture_copy(&mut self, buf: &wgpu::Buffer, len: usize) -> wgpu::TextureView {
        if let Some((_, _, view)) = self
            .flat_copies
            .iter()
            .find(|(b, n, _)| b == buf && *n >= len)
        {
            return view.clone();
        }
        let w = FLAT_TEXTURE_WIDTH;
        let texels = len / 4;
        let (full, rest) = (texels / w, texels % w);
        let tex = self
            .gpu
            .copy_texture("flat copy", w as u32, flat_texture_rows(len) as u32, 1);
        // whole rows, then the last partial row (a copy covers only what the buffer holds)
        let bpr = (w * 16) as u32;
        if full > 0 {
            self.copy_to_texture_rows(buf, 0, bpr, &tex, 0, w as u32, full as u32);
        }
        if rest > 0 {
            let off = (full * w * 16) as u64;
            self.copy_to_texture_rows(buf, off, bpr, &tex, full as u32, rest as u32, 1);
        }
        let view = tex.create_view(&Default::default());
        self.flat_copies.push((buf.clone(), len, view.clone()));
        view
    }

    /// Builds bind groups and the parameter buffer once; the program can then run many times.
    pub fn finish(mut self) -> Result<Program> {
        let gpu = self.gpu;
        let mut dropped: Vec<usize> = std::mem::take(&mut self.elidable)
            .into_iter()
            .filter(|(i, buf)| !self.read_after(*i, buf))
            .map(|(i, _)| i)
            .collect();
        dropped.sort_unstable();
        for i in dropped.into_iter().rev() {
            self.ops.remove(i);
        }
        let uniform = (!self.params.is_empty()).then(|| {
            gpu.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("params"),
                    contents: &self.params,
                    usage: wgpu::BufferUsages::UNIFORM,
                })
        });
        let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut ops = Vec::with_capacity(self.ops.len());
        for op in self.ops {
            ops.push(match op {
                Pending::Dispatch {
                    label,
                    kernel: (shader, entry, constants),
                    params,
                    binds,
                    groups,
                } => {
                    let constants: Vec<(&str, f64)> =
                        constants.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                    let pipeline = gpu.pipeline(&shader, &entry, &constants)?;
                    let layout = pipeline.get_bind_group_layout(0);
                    let mut entries = Vec::new();
                    if let (Some((off, size)), Some(u)) = (params, &uniform) {
                        entries.push(wgpu::BindGroupEntry {
                            binding: 0,
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: u,
                                offset: off,
                                size: wgpu::BufferSize::new(size),
                            }),
                        });
                    }
                    for (i, b) in binds.iter().enumerate() {
                        if matches!(b, Bind::Skip) {
                            continue;
                        }
                        entries.push(wgpu::BindGroupEntry {
                            binding: i as u32 + 1,
                            resource: match b {
                                Bind::Buffer { buf, offset, size } => {
                                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                        buffer: buf,
                                        offset: *offset,
                                        size: size.and_then(wgpu::BufferSize::new),
                                    })
                                }
                                Bind::Texture(view) => wgpu::BindingResource::TextureView(view),
                                Bind::Skip => unreachable!("skipped above"),
                            },
                        });
                    }
                    // a scope per bind group, so that a mismatch names its kernel
                    let one = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
                    let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: None,
                        layout: &layout,
                        entries: &entries,
                    });
                    if let Some(err) = pollster::block_on(one.pop()) {
                        anyhow::bail!("binding the buffers of {label} failed: {err}");
                    }
                    Op::Dispatch {
                        label,
                        pipeline,
                        bind_group,
                        groups,
                    }
                }
                Pending::Copy {
                    src,
                    src_off,
                    dst,
                    dst_off,
                    size,
                } => Op::Copy {
                    src,
                    src_off,
                    dst,
                    dst_off,
                    size,
                },
                Pending::ToTexture(c) => Op::ToTexture(c),
            });
        }
        if let Some(err) = pollster::block_on(scope.pop()) {
            anyhow::bail!("binding kernel buffers failed: {err}");
        }
        Ok(Program {
            ops,
            _uniform: uniform,
        })
    }

    /// Finishes, submits and waits: the one-shot path for tests and small jobs.
    pub fn run(self) -> Result<()> {
        let gpu = self.gpu;
        let p = self.finish()?;
        p.submit(gpu);
        gpu.wait().context("running a recorded program")
    }
}

/// Runs one dispatch once, so that a profile does not time its first (cold) run.
fn run_warm(gpu: &Gpu, run: &dyn Fn(&mut wgpu::ComputePass)) -> Result<()> {
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        run(&mut pass);
    }
    gpu.queue.submit([enc.finish()]);
    gpu.wait()
}

enum Op {
    Dispatch {
        /// "shader:entry [groups]", for profiles
        label: String,
        pipeline: Arc<wgpu::ComputePipeline>,
        bind_group: wgpu::BindGroup,
        groups: [u32; 3],
    },
    Copy {
        src: wgpu::Buffer,
        src_off: u64,
        dst: wgpu::Buffer,
        dst_off: u64,
        size: u64,
    },
    ToTexture(TextureCopy),
}

impl Op {
    /// Encodes a copy (buffer to buffer, or buffer to texture); dispatches are encoded in passes.
    fn encode_transfer(&self, enc: &mut wgpu::CommandEncoder) {
        match self {
            Op::Copy {
                src,
                src_off,
                dst,
                dst_off,
                size,
            } => enc.copy_buffer_to_buffer(src, *src_off, dst, *dst_off, *size),
            Op::ToTexture(c) => c.encode(enc),
            Op::Dispatch { .. } => unreachable!("dispatches are encoded in compute passes"),
        }
    }
}

/// A recorded, replayable sequence of GPU work.
pub struct Program {
    ops: Vec<Op>,
    _uniform: Option<wgpu::Buffer>,
}

impl Program {
    /// Each dispatch's label ("shader:entry [groups]"), in order.
    pub fn labels(&self) -> Vec<&str> {
        self.ops
            .iter()
            .filter_map(|o| match o {
                Op::Dispatch { label, .. } => Some(label.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn dispatches(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| matches!(o, Op::Dispatch { .. }))
            .count()
    }

    /// Appends the program to `enc`: consecutive dispatches share one compute pass.
    pub fn encode(
        &self,
        enc: &mut wgpu::CommandEncoder,
        timestamps: Option<(&wgpu::QuerySet, u32, u32)>,
    ) {
        match timestamps {
            Some((q, b, e)) => self.encode_stamps(enc, q, Some(b), Some(e)),
            None => self.encode_inner(enc, None),
        }
    }

    /// Encodes with a timestamp at the start of the first pass and/or the end of the last.
    pub fn encode_stamps(
        &self,
        enc: &mut wgpu::CommandEncoder,
        q: &wgpu::QuerySet,
        begin: Option<u32>,
        end: Option<u32>,
    ) {
        self.encode_inner(enc, Some((q, begin, end)))
    }

    fn encode_inner(
        &self,
        enc: &mut wgpu::CommandEncoder,
        timestamps: Option<(&wgpu::QuerySet, Option<u32>, Option<u32>)>,
    ) {
        let mut i = 0;
        let mut first_pass = true;
        while i < self.ops.len() {
            match &self.ops[i] {
                op @ (Op::Copy { .. } | Op::ToTexture(_)) => {
                    op.encode_transfer(enc);
                    i += 1;
                }
                Op::Dispatch { .. } => {
                    let end = (i..self.ops.len())
                        .find(|&j| !matches!(self.ops[j], Op::Dispatch { .. }))
                        .unwrap_or(self.ops.len());
                    let last_pass = !self.ops[end..]
                        .iter()
                        .any(|o| matches!(o, Op::Dispatch { .. }));
                    // wgpu rejects timestamp writes with neither index: a middle pass gets none
                    let ts = timestamps
                        .map(|(q, b, e)| {
                            (
                                q,
                                if first_pass { b } else { None },
                                if last_pass { e } else { None },
                            )
                        })
                        .filter(|(_, b, e)| b.is_some() || e.is_some())
                        .map(|(q, b, e)| wgpu::ComputePassTimestampWrites {
                            query_set: q,
                            beginning_of_pass_write_index: b,
                            end_of_pass_write_index: e,
                        });
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: None,
                        timestamp_writes: ts,
                    });
                    for op in &self.ops[i..end] {
                        if let Op::Dispatch {
                            pipeline,
                            bind_group,
                            groups,
                            ..
                        } = op
                        {
                            pass.set_pipeline(pipeline);
                            pass.set_bind_group(0, bind_group, &[]);
                            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                        }
                    }
                    first_pass = false;
                    i = end;
                }
            }
        }
    }

    /// Where a step's time goes, measured inside the step itself: the program encoded once with
    /// every dispatch in its own compute pass stamped at its start and end, run `runs` times;
    /// per entry the median. The copies (buffer and texture) between two dispatches are one
    /// entry ("copies: N ops, M MB"), timed as the gap between the stamps around them. None
    /// when the adapter has no timestamp queries.
    pub fn profile_in_step(&self, gpu: &Gpu, runs: u32) -> Result<Option<Vec<(String, f64)>>> {
        if !gpu.has_timestamps() {
            return Ok(None);
        }
        let n = self.dispatches() as u32;
        if n == 0 {
            return Ok(Some(Vec::new()));
        }
        let query = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("profile_in_step"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * n,
        });
        let bytes = 16 * n as u64;
        let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profile stamps"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let stamps = gpu.storage(bytes);
        // labels: a copies entry before a dispatch wherever copies precede it (not before the first)
        let mut labels = Vec::new();
        let (mut ops, mut mb, mut k) = (0usize, 0f64, 0u32);
        for op in &self.ops {
            match op {
                Op::Copy { size, .. } => {
                    ops += 1;
                    mb += *size as f64 / 1e6;
                }
                Op::ToTexture(c) => {
                    ops += 1;
                    mb += c.bytes() as f64 / 1e6;
                }
                Op::Dispatch { label, .. } => {
                    if ops > 0 && k > 0 {
                        labels.push((Some(k), format!("copies: {ops} ops, {mb:.1} MB")));
                    }
                    labels.push((None, label.clone()));
                    (ops, mb) = (0, 0.0);
                    k += 1;
                }
            }
        }
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); labels.len()];
        for _ in 0..runs.max(1) + 1 {
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            let mut k = 0u32;
            for op in &self.ops {
                match op {
                    Op::Copy { .. } | Op::ToTexture(_) => op.encode_transfer(&mut enc),
                    Op::Dispatch {
                        pipeline,
                        bind_group,
                        groups,
                        ..
                    } => {
                        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: None,
                            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                                query_set: &query,
                                beginning_of_pass_write_index: Some(2 * k),
                                end_of_pass_write_index: Some(2 * k + 1),
                            }),
                        });
                        pass.set_pipeline(pipeline);
                        pass.set_bind_group(0, bind_group, &[]);
                        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                        k += 1;
                    }
                }
            }
            enc.resolve_query_set(&query, 0..2 * n, &resolve, 0);
            enc.copy_buffer_to_buffer(&resolve, 0, &stamps, 0, bytes);
            gpu.queue.submit([enc.finish()]);
            gpu.wait()?;
            let b = gpu.read_bytes(&stamps, 0, bytes)?;
            let t: &[u64] = bytemuck::cast_slice(&b);
            let period = gpu.queue.get_timestamp_period() as f64 * 1e-9;
            let mut d = 0usize;
            for (i, (gap_before, _)) in labels.iter().enumerate() {
                let s = match gap_before {
                    // from the end of the dispatch before to the start of dispatch k
                    Some(k) => t[2 * *k as usize].saturating_sub(t[2 * *k as usize - 1]),
                    None => {
                        d += 1;
                        t[2 * d - 1].saturating_sub(t[2 * d - 2])
                    }
                };
                samples[i].push(s as f64 * period);
            }
        }
        Ok(Some(
            labels
                .into_iter()
                .zip(samples)
                .map(|((_, l), mut v)| {
                    v.remove(0); // the first run warms up
                    (l, crate::gpu::timing::median(&mut v))
                })
                .collect(),
        ))
    }

    /// Time of each dispatch on its own (wall clock around `reps` back-to-back copies in one
    /// submit, minus an empty submit's round trip), in program order: where a step's time goes.
    pub fn profile(&self, gpu: &Gpu, reps: u32) -> Result<Vec<(String, f64)>> {
        let reps = reps.max(1);
        let time = |f: &dyn Fn(&mut wgpu::ComputePass)| -> Result<f64> {
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                for _ in 0..reps {
                    f(&mut pass);
                }
            }
            let t0 = std::time::Instant::now();
            gpu.queue.submit([enc.finish()]);
            gpu.wait()?;
            Ok(t0.elapsed().as_secs_f64())
        };
        let empty = time(&|_| {})?;
        let mut out = Vec::new();
        for op in &self.ops {
            if let Op::Dispatch {
                label,
                pipeline,
                bind_group,
                groups,
            } = op
            {
                let run = |pass: &mut wgpu::ComputePass| {
                    pass.set_pipeline(pipeline);
                    pass.set_bind_group(0, bind_group, &[]);
                    pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                };
                run_warm(gpu, &run)?;
                let s = ((time(&run)? - empty) / reps as f64).max(0.0);
                out.push((label.clone(), s));
            }
        }
        Ok(out)
    }

    /// Submits the program once (does not wait).
    pub fn submit(&self, gpu: &Gpu) -> wgpu::SubmissionIndex {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        self.encode(&mut enc, None);
        gpu.queue.submit([enc.finish()])
    }

    /// Submits and waits.
    pub fn run(&self, gpu: &Gpu) -> Result<()> {
        self.submit(gpu);
        gpu.wait()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flat copies hold their floats in whole rows, and their row count is a power of two, so
    /// llvmpipe compiles each texture-reading kernel once whatever the lengths it is bound with.
    #[test]
    fn flat_texture_rows_are_enough_and_a_power_of_two() {
        let row = FLAT_TEXTURE_WIDTH * 4; // floats per row
        for len in [
            4,
            8,
            row - 4,
            row,
            row + 4,
            3 * row,
            5 * row + 8,
            512 * 200,
            16384 * 512,
        ] {
            let rows = flat_texture_rows(len);
            assert!(rows.is_power_of_two(), "{len}: {rows} rows");
            assert!(
                rows * row >= len,
                "{len}: {rows} rows hold only {}",
                rows * row
            );
            assert!(
                rows == 1 || (rows / 2) * row < len,
                "{len}: {rows} rows, half would do"
            );
        }
    }
}
