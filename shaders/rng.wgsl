// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011): the value at a counter
// depends only on (key, counter), never on dispatch layout or thread order, so results are
// reproducible on every adapter. Include with `//!include rng`.

// 32x32 -> 64-bit multiply as (hi, lo); WGSL has no mulhi.
fn philox_mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xFFFFu; let a_hi = a >> 16u;
    let b_lo = b & 0xFFFFu; let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    let mid = (ll >> 16u) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    let lo = (mid << 16u) | (ll & 0xFFFFu);
    return vec2<u32>(hi, lo);
}

fn philox4x32(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var r = 0u; r < 10u; r = r + 1u) {
        let p0 = philox_mulhilo(0xD2511F53u, c.x);
        let p1 = philox_mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}

// Uniform in (0, 1]: never 0, so log() is safe.
fn u32_to_unit(x: u32) -> f32 {
    return (f32(x >> 8u) + 1.0) * (1.0 / 16777216.0);
}

// Four standard normal values from one Philox call (Box-Muller on two pairs).
fn normal4(counter: vec4<u32>, key: vec2<u32>) -> vec4<f32> {
    let r = philox4x32(counter, key);
    let u1 = u32_to_unit(r.x); let u2 = u32_to_unit(r.y);
    let u3 = u32_to_unit(r.z); let u4 = u32_to_unit(r.w);
    let a = sqrt(-2.0 * log(u1)); let b = sqrt(-2.0 * log(u3));
    let t1 = 6.283185307179586 * u2; let t2 = 6.283185307179586 * u4;
    return vec4<f32>(a * cos(t1), a * sin(t1), b * cos(t2), b * sin(t2));
}

// One standard normal value for element `i` of stream (key, c1, c2): elements 4j..4j+3 share
// a Philox call, so neighbouring invocations may recompute it; the value depends on i alone.
fn normal_at(key: vec2<u32>, i: u32, c1: u32, c2: u32) -> f32 {
    let v = normal4(vec4<u32>(i >> 2u, c1, c2, 0x66616365u), key);
    return v[i & 3u];
}
