//! A typed GPU tensor: an f32 storage buffer and its shape. Upload, readback, poison.

use anyhow::{bail, Result};
use wgpu::util::DeviceExt;

use super::Gpu;

/// Usage every tensor buffer gets: bindable as storage, copyable both ways.
pub(crate) const TENSOR_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// An f32 tensor living in a GPU buffer (row-major, PyTorch's dimension order).
#[derive(Clone, Debug)]
pub struct Tensor {
    pub buf: wgpu::Buffer,
    pub shape: Vec<usize>,
}

impl Tensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn bytes(&self) -> u64 {
        (self.len() * 4) as u64
    }
}

/// wgpu refuses zero-sized bindings; every buffer holds at least one element.
fn padded(bytes: u64) -> u64 {
    bytes.max(4).next_multiple_of(4)
}

/// The most bytes one tensor may hold on an adapter with these limits: kernels bind every
/// tensor whole, so it must fit one storage-buffer binding as well as one buffer.
pub fn tensor_limit(max_storage_buffer_binding_size: u64, max_buffer_size: u64) -> u64 {
    max_storage_buffer_binding_size.min(max_buffer_size)
}

/// The largest batch whose tensor of `per_image` = [c, h, w] floats for each image fits in
/// `limit_bytes` (see [`Gpu::max_tensor_bytes`]).
pub fn max_batch_within(limit_bytes: u64, per_image: [usize; 3]) -> u64 {
    limit_bytes / (per_image.iter().product::<usize>() as u64 * 4).max(1)
}

impl Gpu {
    /// The most bytes one tensor may hold here ([`tensor_limit`]).
    pub fn max_tensor_bytes(&self) -> u64 {
        tensor_limit(
            self.limits.max_storage_buffer_binding_size,
            self.limits.max_buffer_size,
        )
    }

    /// Refuses a `--batch` whose largest tensor, `per_image` = [c, h, w] for each image (`what`
    /// names it), would not fit [`Self::max_tensor_bytes`], before anything is allocated for it:
    /// past the limit wgpu would fail deep inside a kernel's binding, or abort the process.
    pub fn check_batch(&self, batch: usize, per_image: [usize; 3], what: &str) -> Result<()> {
        let limit = self.max_tensor_bytes();
        let image_bytes = per_image.iter().product::<usize>() as u64 * 4;
        let max = max_batch_within(limit, per_image);
        if (batch as u64) <= max {
            return Ok(());
        }
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        let [c, h, w] = per_image;
        if max == 0 {
            bail!(
                "{what} ({c}x{h}x{w} floats for one image, {:.1} MiB) is larger than this adapter's limit of {:.0} MiB per storage buffer ({}): this adapter cannot run it",
                mib(image_bytes),
                mib(limit),
                self.info.name
            );
        }
        bail!(
            "--batch {batch} is too large here: {what} would be a [{batch}, {c}, {h}, {w}] tensor of {:.1} MiB, over this adapter's limit of {:.0} MiB per storage buffer ({}); use --batch {max} or less",
            mib(image_bytes.saturating_mul(batch as u64)),
            mib(limit),
            self.info.name
        )
    }

    /// A zero-filled tensor.
    pub fn zeros(&self, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let buf = self.storage(n as u64 * 4);
        Tensor {
            buf,
            shape: shape.to_vec(),
        }
    }

    /// A tensor holding `data`.
    pub fn upload(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            bail!(
                "upload: shape {shape:?} holds {n} values but {} were given",
                data.len()
            );
        }
        let bytes: &[u8] = bytemuck::cast_slice(data);
        if let Some(buf) = self.aliased(bytes.len() as u64) {
            self.queue.write_buffer(&buf, 0, bytes);
            return Ok(Tensor {
                buf,
                shape: shape.to_vec(),
            });
        }
        Ok(Tensor {
            buf: self.buffer_init(bytes, TENSOR_USAGE),
            shape: shape.to_vec(),
        })
    }

    /// A raw storage buffer holding `bytes` (u8 images, u32 indices, ...), padded to 4 bytes.
    pub fn upload_bytes(&self, bytes: &[u8]) -> wgpu::Buffer {
        if bytes.len().is_multiple_of(4) && !bytes.is_empty() {
            self.buffer_init(bytes, TENSOR_USAGE)
        } else {
            let mut v = bytes.to_vec();
            v.resize(padded(bytes.len() as u64) as usize, 0);
            self.buffer_init(&v, TENSOR_USAGE)
        }
    }

    /// A uniform buffer holding `bytes` (a multiple of 16), rewritable with queue writes. On
    /// software adapters a load from a uniform buffer is one scalar load, not a per-lane loop.
    pub fn uniform_init(&self, bytes: &[u8]) -> wgpu::Buffer {
        self.buffer_init(
            bytes,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        )
    }

    /// An uninitialised (zeroed) raw storage buffer of at least `bytes` bytes.
    pub fn storage(&self, bytes: u64) -> wgpu::Buffer {
        if let Some(buf) = self.aliased(bytes) {
            // wgpu takes a buffer made outside it as initialised: zero it here (a fill on the
            // queue, not a host-side zero vector: dataset chunks reach 1 GiB)
            let mut enc = self.device.create_command_encoder(&Default::default());
            enc.clear_buffer(&buf, 0, None);
            self.queue.submit([enc.finish()]);
            return buf;
        }
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: padded(bytes),
            usage: TENSOR_USAGE,
            mapped_at_creation: false,
        })
    }

    /// A tensor buffer of `bytes` that a flat texture aliases (see [`super::alias`]), where
    /// this adapter supports that and the size suits; contents undefined.
    fn aliased(&self, bytes: u64) -> Option<wgpu::Buffer> {
        self.aliases
            .as_ref()?
            .create(&self.device, bytes, TENSOR_USAGE)
    }

    fn buffer_init(&self, bytes: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytes,
                usage,
            })
    }

    /// Overwrites a tensor (e.g. with NaN before a kernel runs, so unwritten elements show).
    pub fn fill(&self, t: &Tensor, value: f32) {
        let v = vec![value; t.len().max(1)];
        self.queue.write_buffer(&t.buf, 0, bytemuck::cast_slice(&v));
    }

    /// Replaces a tensor's contents with `data` (same length).
    pub fn write(&self, t: &Tensor, data: &[f32]) -> Result<()> {
        if data.len() != t.len() {
            bail!(
                "write: tensor holds {} values, {} given",
                t.len(),
                data.len()
            );
        }
        if !data.is_empty() {
            self.queue
                .write_buffer(&t.buf, 0, bytemuck::cast_slice(data));
        }
        Ok(())
    }

    /// Reads a tensor back (waits for all submitted work).
    pub fn read(&self, t: &Tensor) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(&t.buf, 0, t.bytes())?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    /// Reads `size` bytes at `offset` of any COPY_SRC buffer.
    pub fn read_bytes(&self, buf: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
        if size == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: size.next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(buf, offset, &staging, 0, size.next_multiple_of(4));
        self.queue.submit([enc.finish()]);
        let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            tx.send(r).ok();
        });
        self.wait()?;
        match pollster::block_on(rx.receive()) {
            Some(Ok(())) => {}
            _ => bail!("reading a buffer back from the GPU failed"),
        }
        let data = staging.get_mapped_range(..)?.to_vec();
        staging.unmap();
        Ok(data[..size as usize].to_vec())
    }
}
