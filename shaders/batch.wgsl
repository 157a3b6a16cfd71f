// The batch gather (batch_core.wgsl) reading the faces from their storage buffer.
//!include batch_core

// 4 words (16 pixels) per load: on software adapters each storage load is a per-lane loop
@group(0) @binding(3) var<storage, read> data: array<vec4<u32>>;

fn face_quad(i: u32) -> vec4<u32> {
    return data[i];
}
