// Per-step state that changes between replays of a recorded program (written by the host with
// one small queue write before each submit). Include with `//!include step`, then bind it:
//   @group(0) @binding(N) var<storage, read> st: StepState;
struct StepState {
    t: u32,       // optimizer step, 1-based (Adam bias correction)
    epoch: u32,   // epoch index (fresh noise per epoch)
    lr: f32,      // learning rate of this step
    _pad: u32,
}
