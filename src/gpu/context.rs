//! Adapter choice and the device: `--backend`, WGPU_BACKEND / WGPU_ADAPTER_NAME, the software
//! fallback, and the adapter's own limits instead of wgpu's conservative defaults.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _, Result};

/// What the user asked for with `--backend`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
pub enum BackendChoice {
    /// A real GPU if there is one, else the software adapter (with a notice).
    Auto,
    Vulkan,
    Metal,
    Dx12,
    Gl,
    /// The software adapter (lavapipe / llvmpipe).
    Cpu,
}

impl BackendChoice {
    fn backends(self) -> wgpu::Backends {
        match self {
            BackendChoice::Auto | BackendChoice::Cpu => wgpu::Backends::all(),
            BackendChoice::Vulkan => wgpu::Backends::VULKAN,
            BackendChoice::Metal => wgpu::Backends::METAL,
            BackendChoice::Dx12 => wgpu::Backends::DX12,
            BackendChoice::Gl => wgpu::Backends::GL,
        }
    }
}

/// How to get a software adapter, for error messages.
pub const NO_ADAPTER_HELP: &str =
    "install a Vulkan driver; with no GPU, Mesa's software driver works \
(Debian/Ubuntu: `sudo apt-get install mesa-vulkan-drivers libvulkan1`), then run `facegpu info`";

/// The features facegpu uses when the adapter has them.
fn wanted_features() -> wgpu::Features {
    wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP
}

/// One opened device with its adapter's description and a pipeline cache.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    pub(crate) pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
    pub(crate) modules: Mutex<HashMap<String, wgpu::ShaderModule>>,
    /// Tensor buffers that flat textures alias (lavapipe only; see [`super::alias`]).
    pub(crate) aliases: Option<super::alias::Registry>,
}

fn instance_for(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    // wgpu's DEBUG flag (on in debug builds, so in `cargo test`) makes naga write a line number
    // into the SPIR-V for every statement, counting newlines from the top of the source each
    // time: a fifth of the VAE test's CPU time went there (perf). WGPU_DEBUG=1 turns it back on.
    if std::env::var_os("WGPU_DEBUG").is_none() {
        desc.flags.remove(wgpu::InstanceFlags::DEBUG);
    }
    wgpu::Instance::new(desc)
}

/// Worker threads per core that [`spread_software_threads`] gives llvmpipe.
pub const SOFTWARE_THREADS_PER_CORE: usize = 4;

/// Gives Mesa's software adapter (llvmpipe / lavapipe) several worker threads per core
/// (LP_NUM_THREADS, when the user has not set it). llvmpipe splits each dispatch's workgroups
/// into one contiguous share per worker thread, one thread per core by default; on a machine
/// shared with other work, a share whose thread is preempted holds up the whole dispatch while
/// the other cores idle. Smaller shares even that out: measured with `facegpu bench` on 2 cores
/// (README, Speed). Other drivers ignore the variable.
///
/// Call it first thing in `main`, before any thread starts: it sets a process environment
/// variable, which the driver reads when the adapter is enumerated.
pub fn spread_software_threads() {
    if std::env::var_os("LP_NUM_THREADS").is_some() {
        return;
    }
    std::env::set_var(
        "LP_NUM_THREADS",
        (cores() * SOFTWARE_THREADS_PER_CORE).to_string(),
    );
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// llvmpipe's worker threads as LP_NUM_THREADS sets them (else one per core), for reports.
pub fn software_threads() -> usize {
    std::env::var("LP_NUM_THREADS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(cores)
}

/// Every adapter wgpu can see for the given backends.
pub fn all_adapters(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance_for(backends).enumerate_adapters(backends))
}

fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn backend_rank(b: wgpu::Backend) -> u32 {
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    }
}

fn parse_env_backend(s: &str) -> Option<BackendChoice> {
    match s.trim().to_ascii_lowercase().as_str() {
        "vulkan" | "vk" => Some(BackendChoice::Vulkan),
        "metal" | "mtl" => Some(BackendChoice::Metal),
        "dx12" | "d3d12" => Some(BackendChoice::Dx12),
        "gl" | "gles" | "opengl" => Some(BackendChoice::Gl),
        "cpu" => Some(BackendChoice::Cpu),
        "auto" | "" => Some(BackendChoice::Auto),
        _ => None,
    }
}

impl Gpu {
    /// Opens the adapter `choice` names. `auto` also honours WGPU_BACKEND; WGPU_ADAPTER_NAME
    /// (a case-insensitive substring) narrows any choice.
    pub fn new(choice: BackendChoice) -> Result<Gpu> {
        let mut choice = choice;
        if choice == BackendChoice::Auto {
            if let Ok(env) = std::env::var("WGPU_BACKEND") {
                choice = parse_env_backend(&env).with_context(|| {
                    format!(
                        "WGPU_BACKEND={env:?} is not a backend; use one of vulkan, metal, dx12, gl or cpu (a list such as vulkan,gl is not taken: --backend auto already tries them all)"
                    )
                })?;
            }
        }
        let name_filter = std::env::var("WGPU_ADAPTER_NAME")
            .ok()
            .map(|s| s.to_ascii_lowercase());
        // GL only when nothing better exists: probing EGL is noisy and slow on headless machines.
        let mut adapters = all_adapters(choice.backends() & !wgpu::Backends::GL);
        if adapters.is_empty() && choice.backends().contains(wgpu::Backends::GL) {
            adapters = all_adapters(wgpu::Backends::GL);
        }
        if let Some(f) = &name_filter {
            adapters.retain(|a| a.get_info().name.to_ascii_lowercase().contains(f));
        }
        if choice == BackendChoice::Cpu {
            adapters.retain(|a| a.get_info().device_type == wgpu::DeviceType::Cpu);
        }
        adapters.sort_by_key(|a| {
            let i = a.get_info();
            (type_rank(i.device_type), backend_rank(i.backend))
        });
        let Some(adapter) = adapters.into_iter().next() else {
            // the fix depends on what was asked for: a name filter or a platform's own API
            // need another choice, not another driver
            match (choice, &name_filter) {
                (_, Some(f)) => bail!(
                    "no adapter whose name contains {f:?} (WGPU_ADAPTER_NAME){}: `facegpu info` lists the adapters and their names; unset WGPU_ADAPTER_NAME to take any",
                    if choice == BackendChoice::Auto { String::new() } else { format!(" for backend {choice:?}") }
                ),
                (BackendChoice::Metal, _) if !cfg!(target_vendor = "apple") => bail!(
                    "no adapter found for backend Metal: Metal exists only on macOS and iOS; here use --backend vulkan, gl or cpu (or auto)"
                ),
                (BackendChoice::Dx12, _) if !cfg!(windows) => bail!(
                    "no adapter found for backend Dx12: DirectX 12 exists only on Windows; here use --backend vulkan, gl or cpu (or auto)"
                ),
                (BackendChoice::Cpu, _) => {
                    bail!("no software adapter (lavapipe/llvmpipe) found: {NO_ADAPTER_HELP}")
                }
                (BackendChoice::Auto, _) => {
                    bail!("no GPU or software adapter found: {NO_ADAPTER_HELP}")
                }
                (c, _) => bail!("no adapter found for backend {c:?}: {NO_ADAPTER_HELP}"),
            }
        };
        let info = adapter.get_info();
        if choice == BackendChoice::Auto && info.device_type == wgpu::DeviceType::Cpu {
            eprintln!(
                "facegpu: no GPU found; using the software adapter {} ({:?}), which is slow but exact",
                info.name, info.backend
            );
        }
        Self::open(adapter)
    }

    /// Opens a device on `adapter` with the adapter's full limits.
    pub fn open(adapter: wgpu::Adapter) -> Result<Gpu> {
        let info = adapter.get_info();
        let features = adapter.features() & wanted_features();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("facegpu"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .with_context(|| {
            format!(
                "could not open a device on adapter {} ({:?})",
                info.name, info.backend
            )
        })?;
        let aliases = super::alias::Registry::for_device(&device, &info);
        Ok(Gpu {
            aliases,
            device,
            queue,
            info,
            limits,
            features,
            pipelines: Mutex::new(HashMap::new()),
            modules: Mutex::new(HashMap::new()),
        })
    }

    /// True for software adapters (lavapipe, llvmpipe, WARP): they want register-blocked kernels
    /// without workgroup barriers rather than shared-memory tiles.
    pub fn is_cpu(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Whether large tensor buffers are also flat textures (lavapipe; see [`super::alias`]).
    pub fn aliases_tensors(&self) -> bool {
        self.aliases.is_some()
    }

    /// The flat texture aliasing `buf`, if it has one.
    pub fn texture_alias(&self, buf: &wgpu::Buffer) -> Option<wgpu::TextureView> {
        self.aliases.as_ref()?.view(buf)
    }

    /// A texture of `extent` = [width, height, layers] and `format` (rgba32float or
    /// rgba32uint; rows and layers back to back) over `buf`'s own memory, if `buf` is aliased
    /// ([`super::alias`]).
    pub fn texture_alias_shaped(
        &self,
        buf: &wgpu::Buffer,
        extent: [u32; 3],
        format: wgpu::TextureFormat,
    ) -> Option<wgpu::Texture> {
        self.aliases
            .as_ref()?
            .texture(&self.device, buf, extent, format)
    }

    /// This device with tensors made as plain buffers, read through texture copies again
    /// (to compare both paths; `FACEGPU_NO_ALIAS=1` does it for a whole run).
    pub fn without_aliases(mut self) -> Gpu {
        self.aliases = None;
        self
    }

    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// A one-line name for reports: "llvmpipe (LLVM 15.0.6, 256 bits) / Vulkan / Mesa 22.3.6",
    /// llvmpipe's worker threads (they change its speed; see [`spread_software_threads`]) and
    /// whether tensors are their own textures ([`super::alias`]).
    pub fn describe(&self) -> String {
        let mut name = describe(&self.info);
        if self.is_cpu() && self.info.name.contains("llvmpipe") {
            name += &format!(" / {} worker threads", software_threads());
        }
        if self.aliases_tensors() {
            name += " / textures over tensors";
        }
        name
    }

    /// Waits until everything submitted so far has finished.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("waiting for the GPU failed: {e}"))
    }
}

pub fn describe(info: &wgpu::AdapterInfo) -> String {
    let driver = [info.driver.as_str(), info.driver_info.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "{} / {:?} / {}",
        info.name,
        info.backend,
        if driver.is_empty() {
            "unknown driver"
        } else {
            &driver
        }
    )
}

/// What `facegpu info` prints for one adapter.
#[derive(serde::Serialize)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroup_size: [u32; 3],
    pub max_compute_workgroups_per_dimension: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub max_storage_buffers_per_shader_stage: u32,
    pub timestamp_queries: bool,
    pub subgroups: bool,
    pub shader_f16: bool,
}

pub fn adapter_reports() -> Vec<AdapterReport> {
    all_adapters(wgpu::Backends::all())
        .iter()
        .map(|a| {
            let i = a.get_info();
            let l = a.limits();
            let f = a.features();
            AdapterReport {
                name: i.name.clone(),
                backend: format!("{:?}", i.backend),
                device_type: format!("{:?}", i.device_type),
                driver: i.driver.clone(),
                driver_info: i.driver_info.clone(),
                max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
                max_buffer_size: l.max_buffer_size,
                max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
                max_compute_workgroup_size: [
                    l.max_compute_workgroup_size_x,
                    l.max_compute_workgroup_size_y,
                    l.max_compute_workgroup_size_z,
                ],
                max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
                max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
                max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
                timestamp_queries: f.contains(wgpu::Features::TIMESTAMP_QUERY),
                subgroups: f.contains(wgpu::Features::SUBGROUP),
                shader_f16: f.contains(wgpu::Features::SHADER_F16),
            }
        })
        .collect()
}
