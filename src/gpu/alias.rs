//! Tensor buffers that a texture aliases, on lavapipe: a kernel writes the buffer, the next
//! reads the same memory as a read-only storage texture, and no copy runs between them.
//!
//! Why: texture-reading kernels on CPU adapters read [`super::Recorder::flat_texture`] copies
//! (a storage-buffer load costs llvmpipe several times a texel load), and lavapipe does those
//! buffer-to-texture copies on its one queue thread while the compute threads wait: about
//! 9 ms of the seed AE's 60 ms step (`bench train --profile`). llvmpipe lays out a 2D texture
//! linearly, so a [`FLAT_TEXTURE_WIDTH`]-texel-wide rgba32float image bound to the buffer's
//! memory holds float i at texel i / 4, exactly the flat copy's layout.
//!
//! Only on lavapipe (Vulkan, llvmpipe driver), where commands run one after another on the
//! queue thread and image layouts are not acted on, and only where the driver reports the
//! layout needed (row pitch, layer pitch: checked for every image, and on a probe at start). `FACEGPU_NO_ALIAS=1` turns it
//! off (to compare, or should a driver differ). wgpu tracks the buffer and the texture as two
//! resources; kernels only ever write the buffer and read the texture.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ash::vk;
use ash::vk::Handle;
use wgpu::hal::api::Vulkan;

use super::kernels::{flat_texture_rows, FLAT_TEXTURE_WIDTH};

/// Floats below which a tensor is not aliased: one texture row. Smaller copies cost little,
/// and each aliased image takes at least 4 rows (llvmpipe aligns heights to 4).
pub const MIN_ALIAS_FLOATS: usize = FLAT_TEXTURE_WIDTH * 4;

/// The aliased buffers alive on one device, by their Vulkan buffer handle.
#[derive(Default)]
pub struct Registry {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    entries: HashMap<u64, Entry>,
    /// Handles of buffers destroyed since the last look (their callback cannot drop a wgpu
    /// view itself: it runs inside wgpu's own destruction).
    dead: Vec<u64>,
}

/// One aliased buffer: its memory, the flat view made with it, and other images made over
/// the same memory on request (the metrics' per-image 2D arrays).
#[derive(Clone)]
struct Entry {
    floats: usize,
    memory: Arc<Memory>,
    flat: wgpu::TextureView,
    shaped: Vec<([u32; 3], wgpu::TextureFormat, wgpu::Texture)>,
}

impl State {
    /// Drops the entries of destroyed buffers; returns them so they drop outside the lock.
    fn purge(&mut self) -> Vec<Entry> {
        let dead = std::mem::take(&mut self.dead);
        dead.iter().filter_map(|h| self.entries.remove(h)).collect()
    }
}

/// One allocation that a buffer and its images share; freed once all are destroyed.
struct Memory {
    device: ash::Device,
    memory: vk::DeviceMemory,
    size: u64,
    type_index: u32,
}

impl Drop for Memory {
    fn drop(&mut self) {
        unsafe { self.device.free_memory(self.memory, None) };
    }
}

/// Whether the device takes a 2D (array) texture of `extent` (the driver is not asked to
/// make one it does not support).
fn within_limits(device: &wgpu::Device, extent: [u32; 3]) -> bool {
    let l = device.limits();
    extent[0] <= l.max_texture_dimension_2d
        && extent[1] <= l.max_texture_dimension_2d
        && extent[2] <= l.max_texture_array_layers
        && extent.iter().all(|&e| e > 0)
}

fn hal_handle(buf: &wgpu::Buffer) -> Option<u64> {
    let hal = unsafe { buf.as_hal::<Vulkan>() }?;
    Some(unsafe { hal.raw_handle() }.as_raw())
}

/// The Vulkan format of the two 16-byte texel formats aliases come in.
fn vk_format(format: wgpu::TextureFormat) -> Option<vk::Format> {
    match format {
        wgpu::TextureFormat::Rgba32Float => Some(vk::Format::R32G32B32A32_SFLOAT),
        wgpu::TextureFormat::Rgba32Uint => Some(vk::Format::R32G32B32A32_UINT),
        _ => None,
    }
}

/// An unbound linear image (16-byte texels) of `extent` whose rows and layers lie back to back
/// (texel (x, y, layer) at ((layer * height + y) * width + x) * 16 bytes), and its memory
/// requirements; None where the driver lays it out otherwise.
fn packed_image(
    raw: &ash::Device,
    extent: [u32; 3],
    format: wgpu::TextureFormat,
) -> Option<(vk::Image, vk::MemoryRequirements)> {
    let [width, height, layers] = extent;
    let info = vk::ImageCreateInfo::default()
        .image_type(vk::ImageType::TYPE_2D)
        .format(vk_format(format)?)
        .extent(vk::Extent3D {
            width,
            height,
            depth: 1,
        })
        .mip_levels(1)
        .array_layers(layers)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(vk::ImageTiling::LINEAR)
        .usage(
            vk::ImageUsageFlags::STORAGE
                | vk::ImageUsageFlags::TRANSFER_SRC
                | vk::ImageUsageFlags::TRANSFER_DST,
        )
        .sharing_mode(vk::SharingMode::EXCLUSIVE)
        .initial_layout(vk::ImageLayout::UNDEFINED);
    let image = unsafe { raw.create_image(&info, None) }.ok()?;
    let layout = unsafe {
        raw.get_image_subresource_layout(
            image,
            vk::ImageSubresource {
                aspect_mask: vk::ImageAspectFlags::COLOR,
                mip_level: 0,
                array_layer: 0,
            },
        )
    };
    let row = u64::from(width) * 16;
    let packed = layout.offset == 0
        && layout.row_pitch == row
        && (layers == 1 || layout.array_pitch == row * u64::from(height));
    if !packed {
        unsafe { raw.destroy_image(image, None) };
        return None;
    }
    Some((image, unsafe { raw.get_image_memory_requirements(image) }))
}

/// Binds `image` (of `extent`) to `memory` at offset 0 and hands it to wgpu as a texture that
/// kernels bind as a read-only storage texture. wgpu owns neither the image nor the memory:
/// the callback destroys the image and lets go of the memory.
fn wrap_image(
    device: &wgpu::Device,
    hal_device: &wgpu::hal::vulkan::Device,
    image: vk::Image,
    memory: &Arc<Memory>,
    extent: [u32; 3],
    format: wgpu::TextureFormat,
) -> Option<wgpu::Texture> {
    let raw = hal_device.raw_device().clone();
    if unsafe { raw.bind_image_memory(image, memory.memory, 0) }.is_err() {
        unsafe { raw.destroy_image(image, None) };
        return None;
    }
    let size = wgpu::Extent3d {
        width: extent[0],
        height: extent[1],
        depth_or_array_layers: extent[2],
    };
    let label = Some("aliased texture");
    let mem = memory.clone();
    let hal_texture = unsafe {
        hal_device.texture_from_raw(
            image,
            &wgpu::hal::TextureDescriptor {
                label,
                size,
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage: wgpu::TextureUses::STORAGE_READ_ONLY | wgpu::TextureUses::COPY_DST,
                memory_flags: wgpu::hal::MemoryFlags::empty(),
                view_formats: vec![],
            },
            Some(Box::new(move || {
                raw.destroy_image(image, None);
                drop(mem);
            })),
            wgpu::hal::vulkan::TextureMemory::External,
        )
    };
    Some(unsafe {
        device.create_texture_from_hal::<Vulkan>(
            hal_texture,
            &wgpu::TextureDescriptor {
                label,
                size,
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            },
            // wgpu then moves it to the storage layout before its first use
            wgpu::TextureUses::UNINITIALIZED,
        )
    })
}

impl Registry {
    /// A registry for `device` when it is lavapipe and an aliased probe image has the flat
    /// layout; else None (callers then copy as before).
    pub fn for_device(device: &wgpu::Device, info: &wgpu::AdapterInfo) -> Option<Registry> {
        let lavapipe = info.backend == wgpu::Backend::Vulkan
            && info.device_type == wgpu::DeviceType::Cpu
            && (info.driver.contains("llvmpipe") || info.name.contains("llvmpipe"));
        if !lavapipe || std::env::var_os("FACEGPU_NO_ALIAS").is_some_and(|v| v != "0") {
            return None;
        }
        let reg = Registry::default();
        // the probe: one aliased pair, its layout checked inside `create`
        reg.create(
            device,
            (MIN_ALIAS_FLOATS * 4) as u64,
            super::tensor::TENSOR_USAGE,
        )?;
        Some(reg)
    }

    fn entry(&self, buf: &wgpu::Buffer) -> Option<Entry> {
        self.entry_of(hal_handle(buf)?)
    }

    fn entry_of(&self, handle: u64) -> Option<Entry> {
        let (found, dropped) = {
            let mut st = self.state.lock().unwrap();
            let dropped = st.purge();
            (st.entries.get(&handle).cloned(), dropped)
        };
        drop(dropped);
        found
    }

    /// The flat texture view aliasing `buf`, when `buf` was made by [`Registry::create`].
    pub fn view(&self, buf: &wgpu::Buffer) -> Option<wgpu::TextureView> {
        self.entry(buf).map(|e| e.flat)
    }

    /// [`Registry::view`] and the floats the buffer holds.
    pub fn view_len(&self, buf: &wgpu::Buffer) -> Option<(usize, wgpu::TextureView)> {
        self.entry(buf).map(|e| (e.floats, e.flat))
    }

    /// A texture of `extent` = [width, height, layers] and `format` (rgba32float or
    /// rgba32uint) over `buf`'s memory, rows and layers back to back (a batch of images, 4
    /// pixels per texel, a layer each; or u8 faces read as words), made on first request and
    /// kept with the buffer. None when `buf` is not aliased, the texture would reach past its
    /// memory or the driver lays it out otherwise.
    pub fn texture(
        &self,
        device: &wgpu::Device,
        buf: &wgpu::Buffer,
        extent: [u32; 3],
        format: wgpu::TextureFormat,
    ) -> Option<wgpu::Texture> {
        if !within_limits(device, extent) {
            return None;
        }
        let handle = hal_handle(buf)?;
        let entry = self.entry_of(handle)?;
        let same = |(e, f, _): &&([u32; 3], wgpu::TextureFormat, wgpu::Texture)| {
            *e == extent && *f == format
        };
        if let Some((_, _, t)) = entry.shaped.iter().find(same) {
            return Some(t.clone());
        }
        let hal_device = unsafe { device.as_hal::<Vulkan>() }?;
        let raw = hal_device.raw_device().clone();
        let (image, req) = packed_image(&raw, extent, format)?;
        if req.size > entry.memory.size
            || req.memory_type_bits & (1 << entry.memory.type_index) == 0
        {
            unsafe { raw.destroy_image(image, None) };
            return None;
        }
        let tex = wrap_image(device, &hal_device, image, &entry.memory, extent, format)?;
        drop(hal_device);
        if let Some(e) = self.state.lock().unwrap().entries.get_mut(&handle) {
            e.shaped.push((extent, format, tex.clone()));
        }
        Some(tex)
    }

    /// A buffer of `bytes` (a multiple of 16, at least [`MIN_ALIAS_FLOATS`] floats) whose
    /// memory an rgba32float texture [`FLAT_TEXTURE_WIDTH`] texels wide also binds. None when
    /// the driver refuses any step or lays the image out otherwise.
    pub fn create(
        &self,
        device: &wgpu::Device,
        bytes: u64,
        usage: wgpu::BufferUsages,
    ) -> Option<wgpu::Buffer> {
        let floats = (bytes / 4) as usize;
        if !bytes.is_multiple_of(16) || floats < MIN_ALIAS_FLOATS {
            return None;
        }
        let rows = flat_texture_rows(floats);
        let extent = [
            FLAT_TEXTURE_WIDTH as u32,
            rows.min(u32::MAX as usize) as u32,
            1,
        ];
        if !within_limits(device, extent) {
            return None; // more rows than a texture holds: a plain buffer, read through copies
        }
        let hal_device = unsafe { device.as_hal::<Vulkan>() }?;
        let raw = hal_device.raw_device().clone();
        let instance = hal_device.shared_instance().raw_instance();

        let buffer_info = vk::BufferCreateInfo::default()
            .size(bytes)
            .usage(
                vk::BufferUsageFlags::STORAGE_BUFFER
                    | vk::BufferUsageFlags::TRANSFER_SRC
                    | vk::BufferUsageFlags::TRANSFER_DST,
            )
            .sharing_mode(vk::SharingMode::EXCLUSIVE);
        let buffer = unsafe { raw.create_buffer(&buffer_info, None) }.ok()?;
        let flat = wgpu::TextureFormat::Rgba32Float;
        let Some((image, ireq)) = packed_image(&raw, extent, flat) else {
            unsafe { raw.destroy_buffer(buffer, None) };
            return None;
        };
        let give_up = |raw: &ash::Device| unsafe {
            raw.destroy_image(image, None);
            raw.destroy_buffer(buffer, None);
        };
        let breq = unsafe { raw.get_buffer_memory_requirements(buffer) };
        let props = unsafe {
            instance.get_physical_device_memory_properties(hal_device.raw_physical_device())
        };
        let types = breq.memory_type_bits & ireq.memory_type_bits;
        let Some(type_index) = (0..props.memory_type_count).find(|&i| types & (1 << i) != 0) else {
            give_up(&raw);
            return None;
        };
        let size = breq.size.max(ireq.size);
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(size)
            .memory_type_index(type_index);
        let Ok(memory) = (unsafe { raw.allocate_memory(&alloc, None) }) else {
            give_up(&raw);
            return None;
        };
        let memory = Arc::new(Memory {
            device: raw.clone(),
            memory,
            size,
            type_index,
        });
        if unsafe { raw.bind_buffer_memory(buffer, memory.memory, 0) }.is_err() {
            give_up(&raw);
            return None;
        }
        let Some(texture) = wrap_image(device, &hal_device, image, &memory, extent, flat) else {
            unsafe { raw.destroy_buffer(buffer, None) };
            return None;
        };

        // wgpu owns neither the buffer nor the memory: the callback destroys the buffer, lets
        // go of the memory and marks the entry for removal
        let handle = buffer.as_raw();
        let (dev, mem, state) = (raw.clone(), memory.clone(), self.state.clone());
        let hal_buffer = unsafe {
            wgpu::hal::vulkan::Buffer::from_raw_externally_owned(
                buffer,
                Box::new(move || {
                    dev.destroy_buffer(buffer, None);
                    drop(mem);
                    state.lock().unwrap().dead.push(handle);
                }),
            )
        };
        drop(hal_device);
        let buf = unsafe {
            device.create_buffer_from_hal::<Vulkan>(
                hal_buffer,
                &wgpu::BufferDescriptor {
                    label: Some("aliased tensor"),
                    size: bytes,
                    usage,
                    mapped_at_creation: false,
                },
            )
        };
        let entry = Entry {
            floats,
            memory,
            flat: texture.create_view(&Default::default()),
            shaped: Vec::new(),
        };
        let dropped = {
            let mut st = self.state.lock().unwrap();
            let dropped = st.purge();
            st.entries.insert(handle, entry);
            dropped
        };
        drop(dropped);
        Some(buf)
    }
}
