//! On lavapipe, large tensor buffers are also flat textures (src/gpu/alias.rs): a kernel reads
//! what the one before it wrote with no copy between them. What a kernel reads through an
//! alias is what was written in the same program, new tensors are zero, and training gives the
//! same numbers, bit for bit, with and without aliases (same seed, same adapter).
mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use common::{gpu, read, upload, Rng};
use facegpu::data::{Batcher, BatcherConfig, Dataset, NoiseSpec, Residency, Source};
use facegpu::gpu::{BackendChoice, Gpu};
use facegpu::ops::{elementwise, metrics, reduce};
use facegpu::train::{self, Quiet, Reg, TrainOptions};

fn aliasing() -> bool {
    if !gpu().aliases_tensors() {
        eprintln!(
            "skipped: this adapter does not alias tensors (lavapipe only, FACEGPU_NO_ALIAS unset)"
        );
    }
    gpu().aliases_tensors()
}

#[test]
fn aliased_tensors_start_at_zero_and_read_as_written() {
    if !aliasing() {
        return;
    }
    let gpu = gpu();
    // three whole texture rows and part of a fourth: rows not a power of two
    let n = 3 * 16384 + 4 * 123;
    let y = gpu.zeros(&[n]);
    assert!(
        gpu.texture_alias(&y.buf).is_some(),
        "a tensor of {n} floats is aliased"
    );
    assert!(read(&y).iter().all(|&v| v == 0.0), "a new tensor is zero");
    let small = gpu.zeros(&[1000]);
    assert!(
        gpu.texture_alias(&small.buf).is_none(),
        "small tensors are plain buffers"
    );
    // more than 16,384 rows of 4096 texels (lavapipe's texture limit): a plain buffer (its
    // pages are never touched, so this costs no memory)
    let huge = gpu.zeros(&[(1 << 28) + 4]);
    assert!(
        gpu.texture_alias(&huge.buf).is_none(),
        "a 1 GiB tensor is a plain buffer"
    );
    drop(huge);

    // y += 2a by one kernel, then the sum of y by a kernel that reads y's alias, one program:
    // a stale or separate texture would give 0 or the old sum
    let a = Rng::new(5).vec(n, -1.0, 1.0);
    let ta = upload(&a, &[n]);
    let out = gpu.zeros(&[1]);
    let mut rec = gpu.record();
    elementwise::axpy(&mut rec, 2.0, &ta, &y).unwrap();
    reduce::sum(&mut rec, &y, &out, 1.0).unwrap();
    rec.run().unwrap();
    let want: f64 = a.iter().map(|v| 2.0 * v).sum();
    let got = read(&out)[0];
    // float32 sums of 50k terms of size ~1: error ~1e-3 absolute
    assert!(
        (got - want).abs() < 1e-2,
        "sum through the alias {got} != {want}"
    );
}

/// The metrics' box pass reads a batch through a 2D-array texture over the tensor's memory:
/// the same numbers as reading the buffers (one kernel, two ways of loading).
#[test]
fn metrics_read_batches_through_array_aliases() {
    if !aliasing() {
        return;
    }
    let (n, h, w) = (5, 128, 128);
    let mut rng = Rng::new(9);
    let a = rng.vec(n * h * w, 0.0, 1.0);
    let b: Vec<f64> = a
        .iter()
        .map(|v| (v + rng.uniform(-0.1, 0.1)).clamp(0.0, 1.0))
        .collect();
    let (ta, tb) = (upload(&a, &[n, 1, h, w]), upload(&b, &[n, 1, h, w]));
    let extent = [(w / 4) as u32, h as u32, n as u32];
    assert!(
        gpu()
            .texture_alias_shaped(&ta.buf, extent, wgpu::TextureFormat::Rgba32Float)
            .is_some(),
        "the batch is aliased"
    );
    let run = |reads| {
        let out = gpu().zeros(&[n, 4]);
        gpu().fill(&out, f32::NAN);
        let mut rec = gpu().record();
        let opts = metrics::Options {
            gaussian: false,
            reads,
        };
        metrics::record_opts(&mut rec, &ta, &tb, &out, opts).unwrap();
        rec.run().unwrap();
        read(&out)
    };
    let (tex, buf) = (run(metrics::Reads::Textures), run(metrics::Reads::Buffers));
    for i in 0..n {
        for j in 0..3 {
            assert_eq!(
                tex[i * 4 + j].to_bits(),
                buf[i * 4 + j].to_bits(),
                "image {i} value {j}"
            );
        }
    }
}

/// The batch gather reads the faces' u8 words through an rgba32uint texture over the store's
/// memory: every byte value (random faces), clean and noisy, the same bits as the buffer path.
#[test]
fn the_gather_reads_faces_through_a_word_texture() {
    if !aliasing() {
        return;
    }
    let plain = Gpu::new(BackendChoice::Auto).unwrap().without_aliases();
    let n = 20; // >= 16 faces: the store is aliased
    let mut rng = Rng::new(4);
    let pixels: Vec<u8> = (0..n * 16384)
        .map(|_| (rng.next_u64() >> 56) as u8)
        .collect();
    let ds = Dataset::from_pixels(
        pixels,
        (0..n).map(|i| format!("f{i:02}.png")).collect(),
        Source::Folder { dir: "mem".into() },
    )
    .unwrap();
    let rows: Vec<usize> = (0..n).collect();
    let gather = |gpu: &Gpu| {
        let noise = NoiseSpec {
            sigma: 0.1,
            clip: true,
        };
        let mut cfg = BatcherConfig::eval(8, 3, Some(noise));
        cfg.residency = Residency::Resident;
        let mut b = Batcher::new(gpu, &ds, &rows, cfg).unwrap();
        let mut rec = gpu.record();
        b.record(&mut rec).unwrap();
        let prog = rec.finish().unwrap();
        let labels: Vec<String> = prog
            .profile(gpu, 1)
            .unwrap()
            .into_iter()
            .map(|p| p.0)
            .collect();
        let mut out = Vec::new();
        for k in 0..b.batches() {
            b.set_batch(gpu, k).unwrap();
            prog.run(gpu).unwrap();
            out.push(gpu.read(&b.clean).unwrap());
            out.push(gpu.read(b.noisy.as_ref().unwrap()).unwrap());
        }
        (labels, out)
    };
    let (tex_labels, tex) = gather(gpu());
    let (buf_labels, buf) = gather(&plain);
    assert!(
        tex_labels.iter().any(|l| l.starts_with("batch_tex:")),
        "{tex_labels:?}"
    );
    assert!(
        buf_labels.iter().all(|l| !l.starts_with("batch_tex:")),
        "{buf_labels:?}"
    );
    for (i, (a, b)) in tex.iter().zip(&buf).enumerate() {
        assert!(
            a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "output {i}"
        );
    }
    // and the values are pixel / 255
    let first: Vec<f32> = ds.image(0).iter().map(|&v| v as f32 / 255.0).collect();
    assert_eq!(&tex[0][..16384], &first[..]);
}

#[test]
fn training_is_the_same_with_and_without_aliases() {
    if !aliasing() {
        return;
    }
    let plain: &'static Gpu = Box::leak(Box::new(
        Gpu::new(BackendChoice::Auto).unwrap().without_aliases(),
    ));
    assert!(!plain.aliases_tensors());
    let run = |gpu: &Gpu, out: &std::path::Path| {
        let o = TrainOptions {
            synthetic_count: 160,
            epochs: 1,
            batch: 16,
            seed: 3,
            reg: Reg::L1l2,
            noise: Some(0.1),
            ..TrainOptions::new("ae", out)
        };
        let s = train::train(gpu, &o, false, &mut Quiet, Arc::new(AtomicBool::new(false))).unwrap();
        let w = facegpu::model::checkpoint::load(&out.join("last.safetensors")).unwrap();
        (
            s.epochs
                .iter()
                .map(|e| (e.train_loss, e.val_loss))
                .collect::<Vec<_>>(),
            w.tensors,
        )
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let with = run(gpu(), a.path());
    let without = run(plain, b.path());
    assert_eq!(with.0, without.0, "losses");
    assert_eq!(with.1, without.1, "weights");
}
