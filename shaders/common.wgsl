// Shared helpers, included with `//!include common`.

// Linear invocation index for grids made by the host's grid_1d (x and y split, WG per group).
fn linear_index(gid: vec3<u32>, nwg: vec3<u32>, wg: u32) -> u32 {
    return gid.x + gid.y * nwg.x * wg;
}
