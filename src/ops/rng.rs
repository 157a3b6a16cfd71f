//! Host mirror of shaders/rng.wgsl (Philox4x32-10 + Box-Muller), so tests can check GPU random
//! numbers bit for bit, and host code can draw the same streams.

/// Splits a 64-bit seed into the Philox key.
pub fn key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

pub fn philox4x32(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for _ in 0..10 {
        let (h0, l0) = mulhilo(0xD2511F53, c[0]);
        let (h1, l1) = mulhilo(0xCD9E8D57, c[2]);
        c = [h1 ^ c[1] ^ k[0], l1, h0 ^ c[3] ^ k[1], l0];
        k = [k[0].wrapping_add(0x9E3779B9), k[1].wrapping_add(0xBB67AE85)];
    }
    c
}

pub fn u32_to_unit(x: u32) -> f64 {
    ((x >> 8) as f64 + 1.0) / 16777216.0
}

/// Float64 version of `normal_at` in rng.wgsl (the GPU's f32 log/cos/sin differ by a few ulp).
pub fn normal_at(key: [u32; 2], i: u32, c1: u32, c2: u32) -> f64 {
    let r = philox4x32([i >> 2, c1, c2, 0x66616365], key);
    let u: Vec<f64> = r.iter().map(|&x| u32_to_unit(x)).collect();
    let a = (-2.0 * u[0].ln()).sqrt();
    let b = (-2.0 * u[2].ln()).sqrt();
    let t1 = std::f64::consts::TAU * u[1];
    let t2 = std::f64::consts::TAU * u[3];
    [a * t1.cos(), a * t1.sin(), b * t2.cos(), b * t2.sin()][(i & 3) as usize]
}
