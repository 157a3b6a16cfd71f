//! GPU Philox (shaders/rng.wgsl, through the test kernels in shaders/vae.wgsl) against the host
//! mirror (src/ops/rng.rs) and Random123's known answers: raw u32 bit for bit; normals within
//! 1e-5 absolute (the GPU's float32 log/cos/sin against float64; |x| < 6); a 2^20 sample's
//! moments and CDF near N(0, 1) (bounds ~5 standard errors); values independent of the workgroup
//! size and of the order invocations take elements in.
mod common;

use common::*;
use facegpu::gpu::grid_1d;
use facegpu::ops::rng;

struct Draw {
    normal: Vec<f32>,
    raw: Vec<u32>,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct RngParams {
    n: u32,
    k0: u32,
    k1: u32,
    c1: u32,
    c2: u32,
    reverse: u32,
    _pad: [u32; 2],
}

fn gpu_draw(n: usize, seed: u64, c1: u32, c2: u32, wg: u32, reverse: bool) -> Draw {
    let g = gpu();
    let normal = poisoned(&[n]);
    let raw = g.storage(16 * n as u64);
    // poison the raw words too
    g.queue
        .write_buffer(&raw, 0, &vec![0xAAu8; (16 * n).next_multiple_of(4)]);
    let k = rng::key(seed);
    let p = RngParams {
        n: n as u32,
        k0: k[0],
        k1: k[1],
        c1,
        c2,
        reverse: reverse as u32,
        _pad: [0; 2],
    };
    let mut rec = g.record();
    rec.dispatch_with(
        "vae",
        "rng_test",
        &[("RNG_WG", wg as f64)],
        &p,
        &[(&normal).into(), (&raw).into()],
        grid_1d(n as u64, wg),
    )
    .unwrap();
    rec.run().unwrap();
    Draw {
        normal: g.read(&normal).unwrap(),
        raw: bytemuck::cast_slice(&g.read_bytes(&raw, 0, 16 * n as u64).unwrap()).to_vec(),
    }
}

fn host_raw(i: u32, seed: u64, c1: u32, c2: u32) -> [u32; 4] {
    rng::philox4x32([i, c1, c2, i.wrapping_mul(0x9E3779B9)], rng::key(seed))
}

/// Random123's kat_vectors for Philox4x32-10: (counter, key, result).
const KAT: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
    (
        [0; 4],
        [0; 2],
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
    ),
    (
        [0xffffffff; 4],
        [0xffffffff; 2],
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
    ),
    (
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
        [0xa4093822, 0x299f31d0],
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ),
];

#[test]
fn host_and_gpu_philox_match_known_answers() {
    let mut input = Vec::new();
    for (c, k, want) in KAT {
        assert_eq!(rng::philox4x32(c, k), want, "host Philox, counter {c:x?}");
        input.extend_from_slice(&c);
        input.extend_from_slice(&k);
    }
    let g = gpu();
    let inb = g.upload_bytes(bytemuck::cast_slice(&input));
    let out = g.storage(16 * KAT.len() as u64);
    let mut rec = g.record();
    rec.dispatch(
        "vae",
        "rng_kat",
        &(),
        &[(&inb).into(), (&out).into()],
        [1, 1, 1],
    )
    .unwrap();
    rec.run().unwrap();
    let got: Vec<u32> = bytemuck::cast_slice(&g.read_bytes(&out, 0, 48).unwrap()).to_vec();
    for (j, (c, _, want)) in KAT.iter().enumerate() {
        assert_eq!(&got[4 * j..4 * j + 4], want, "GPU Philox, counter {c:x?}");
    }
}

#[test]
fn gpu_matches_host_mirror() {
    // odd sizes, keys with high bits set, counters in every word
    for (n, seed, c1, c2) in [
        (1, 0u64, 0u32, 0u32),
        (7, 1, 1, 2),
        (1000, 0xdead_beef_0123_4567, 77, 0x7265_7061),
        (70_001, u64::MAX, u32::MAX, 12345),
    ] {
        let d = gpu_draw(n, seed, c1, c2, 64, false);
        for i in 0..n {
            let want = host_raw(i as u32, seed, c1, c2);
            assert_eq!(
                &d.raw[4 * i..4 * i + 4],
                &want,
                "raw Philox at i={i} seed={seed:#x} c=({c1}, {c2})"
            );
        }
        let want: Vec<f64> = (0..n)
            .map(|i| rng::normal_at(rng::key(seed), i as u32, c1, c2))
            .collect();
        assert_close(
            &format!("normal_at n={n} seed={seed:#x}"),
            &to_f64(&d.normal),
            &want,
            0.0,
            1e-5,
        );
    }
}

#[test]
fn large_sample_looks_standard_normal() {
    let n = 1 << 20;
    let d = gpu_draw(n, 2024, 5, 0, 256, false);
    let x = to_f64(&d.normal);
    let nf = n as f64;
    let mean = x.iter().sum::<f64>() / nf;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (nf - 1.0);
    // standard errors: mean 1/sqrt(n) ~ 0.001, variance sqrt(2/n) ~ 0.0014
    assert!(mean.abs() < 0.005, "mean {mean}");
    assert!((var - 1.0).abs() < 0.007, "variance {var}");
    let skew = x.iter().map(|v| v.powi(3)).sum::<f64>() / nf; // se sqrt(15/n) ~ 0.004
    let kurt = x.iter().map(|v| v.powi(4)).sum::<f64>() / nf; // 3, se sqrt(96/n) ~ 0.01
    assert!(skew.abs() < 0.02, "third moment {skew}");
    assert!((kurt - 3.0).abs() < 0.05, "fourth moment {kurt}");
    // CDF at a few points against Φ (binomial se <= 0.0005)
    for (q, phi) in [
        (-2.0, 0.022750131948179),
        (-1.0, 0.158655253931457),
        (0.0, 0.5),
        (1.0, 0.841344746068543),
        (2.0, 0.977249868051821),
    ] {
        let frac = x.iter().filter(|&&v| v < q).count() as f64 / nf;
        assert!(
            (frac - phi).abs() < 0.0025,
            "P(x < {q}) = {frac}, want {phi}"
        );
    }
    assert!(
        x.iter().all(|v| v.abs() < 6.0),
        "|x| >= 6 is impossible with 24-bit uniforms"
    );
    // the raw words are uniform: each bit set about half the time
    for bit in 0..32 {
        let ones = d.raw.iter().filter(|&&w| w >> bit & 1 == 1).count() as f64;
        let frac = ones / d.raw.len() as f64;
        assert!(
            (frac - 0.5).abs() < 0.003,
            "bit {bit} set in {frac} of words"
        );
    }
}

#[test]
fn values_do_not_depend_on_dispatch_layout() {
    let n = 10_007;
    let base = gpu_draw(n, 99, 3, 4, 64, false);
    for (wg, reverse) in [(1, false), (256, false), (64, true), (32, true)] {
        let d = gpu_draw(n, 99, 3, 4, wg, reverse);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&d.normal),
            bits(&base.normal),
            "normals, wg={wg} reverse={reverse}"
        );
        assert_eq!(d.raw, base.raw, "raw, wg={wg} reverse={reverse}");
    }
    // a prefix of a bigger draw is the smaller draw
    let big = gpu_draw(3 * n, 99, 3, 4, 128, false);
    assert_eq!(
        big.normal[..n]
            .iter()
            .map(|x| x.to_bits())
            .collect::<Vec<_>>(),
        base.normal.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
}
