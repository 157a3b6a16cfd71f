//! Per-step state (shaders/step.wgsl): the values that change between replays of a recorded
//! training step (optimizer step t, epoch, learning rate), so the program itself never changes.

use crate::gpu::Gpu;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepValues {
    pub t: u32,
    pub epoch: u32,
    pub lr: f32,
    pub _pad: u32,
}

impl StepValues {
    /// The first optimizer step (t = 1, epoch 0) at learning rate `lr`: what a program that is
    /// timed or run once (evaluation, benchmarks, tests) binds; lr 0 where no update runs.
    pub fn first(lr: f32) -> StepValues {
        StepValues {
            t: 1,
            epoch: 0,
            lr,
            _pad: 0,
        }
    }
}

/// A 16-byte storage buffer kernels bind read-only.
pub struct StepState {
    pub buf: wgpu::Buffer,
}

impl StepState {
    pub fn new(gpu: &Gpu, v: StepValues) -> StepState {
        let s = StepState {
            buf: gpu.storage(16),
        };
        s.set(gpu, v);
        s
    }
    /// Takes effect for work submitted after this call.
    pub fn set(&self, gpu: &Gpu, v: StepValues) {
        gpu.queue.write_buffer(&self.buf, 0, bytemuck::bytes_of(&v));
    }
}
