//! A training step on lavapipe reads its batch straight from the faces' u8 store
//! (shaders/faces.wgsl, `Batcher::record_elidable`): the first layer's forward, the loss target
//! and the first layer's weight gradient decode the bytes themselves, and the gather that would
//! write the batch as floats is dropped. The numbers are the gathered batch's, bit for bit (same
//! seed, same adapter).
mod common;

use common::{gpu, upload, Rng};
use facegpu::data::{Batcher, BatcherConfig, Dataset, Residency, Source};
use facegpu::gpu::{Gpu, Program};
use facegpu::model::graph::{Graph, Latent};
use facegpu::model::{params::Params, registry};
use facegpu::ops::conv2d::{self, Conv2dShape};
use facegpu::ops::optim::AdamConfig;
use facegpu::ops::step::{StepState, StepValues};
use facegpu::ops::Activation;

fn aliasing() -> bool {
    if !gpu().aliases_tensors() {
        eprintln!(
            "skipped: this adapter does not alias tensors (lavapipe only, FACEGPU_NO_ALIAS unset)"
        );
    }
    gpu().aliases_tensors()
}

/// `n` faces of random bytes, held in memory; each face's first row holds every byte value.
fn random_faces(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let mut pixels: Vec<u8> = (0..n * 16384)
        .map(|_| (rng.next_u64() >> 56) as u8)
        .collect();
    for face in pixels.chunks_mut(16384) {
        for (i, p) in face.iter_mut().take(256).enumerate() {
            *p = (i * 97 % 256) as u8;
        }
    }
    Dataset::from_pixels(
        pixels,
        (0..n).map(|i| format!("f{i:02}.png")).collect(),
        Source::Folder { dir: "mem".into() },
    )
    .unwrap()
}

fn batcher(gpu: &Gpu, ds: &Dataset, batch: usize) -> Batcher {
    let rows: Vec<usize> = (0..ds.len()).collect();
    let mut cfg = BatcherConfig::train(batch, 7, None);
    cfg.residency = Residency::Resident;
    Batcher::new(gpu, ds, &rows, cfg).unwrap()
}

fn labels(prog: &Program, gpu: &Gpu) -> Vec<String> {
    prog.profile(gpu, 1)
        .unwrap()
        .into_iter()
        .map(|p| p.0)
        .collect()
}

/// Where `a` and `b` first differ in their bits (or `a` holds a NaN: an unwritten output).
fn first_difference(a: &[f32], b: &[f32]) -> Option<String> {
    assert_eq!(a.len(), b.len());
    let i = a
        .iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits() || x.is_nan())?;
    Some(format!("element {i}: {} against {}", a[i], b[i]))
}

#[test]
fn the_first_layer_reads_the_faces_as_the_gather_writes_them() {
    if !aliasing() {
        return;
    }
    let gpu = gpu();
    let ds = random_faces(20, 1);
    let s = Conv2dShape {
        batch: 8,
        c_in: 1,
        h_in: 128,
        w_in: 128,
        c_out: 8,
        kh: 3,
        kw: 3,
        stride: 2,
        pad: 1,
    };
    let mut rng = Rng::new(2);
    let w = upload(&rng.vec(72, -0.5, 0.5), &[8, 1, 3, 3]);
    let b = upload(&rng.vec(8, -0.1, 0.1), &[8]);
    // the same conv of the same batches, elided (faces) or not (gather)
    let run = |elide: bool| {
        let mut bt = batcher(gpu, &ds, 8);
        let y = gpu.zeros(&[8, 8, 64, 64]);
        let mut rec = gpu.record();
        if elide {
            bt.record_elidable(&mut rec).unwrap();
        } else {
            bt.record(&mut rec).unwrap();
        }
        conv2d::forward(
            &mut rec,
            &s,
            &bt.clean.clone(),
            &w,
            &b,
            &y,
            // no activation: a ReLU would hide differences in the outputs it zeroes
            Activation::None,
        )
        .unwrap();
        let prog = rec.finish().unwrap();
        let mut out = Vec::new();
        bt.begin_epoch(gpu, 1).unwrap();
        for k in 0..bt.batches() {
            bt.set_batch(gpu, k).unwrap();
            gpu.fill(&y, f32::NAN);
            prog.run(gpu).unwrap();
            out.push(gpu.read(&y).unwrap());
        }
        (labels(&prog, gpu), out)
    };
    let (faces_labels, faces) = run(true);
    let (gather_labels, gathered) = run(false);
    assert!(
        faces_labels.iter().all(|l| !l.contains("gather"))
            && faces_labels.iter().any(|l| l.starts_with("conv2d_faces:")),
        "the gather is dropped and the conv reads the faces: {faces_labels:?}"
    );
    assert!(
        gather_labels.iter().any(|l| l.contains("gather")),
        "{gather_labels:?}"
    );
    assert_eq!(faces.len(), 2);
    for (k, (a, b)) in faces.iter().zip(&gathered).enumerate() {
        if let Some(d) = first_difference(a, b) {
            panic!("batch {k}, faces read directly against gathered: {d}");
        }
    }
}

/// One training program per way of reading the batch: the gather, or the faces' store.
struct Run {
    batcher: Batcher,
    params: Params,
    graph: Graph,
    step: StepState,
    prog: Program,
}

impl Run {
    /// `model` trained on `ds` from seed 3: with the gather, or as `train` records its step
    /// (`Batcher::record_step`: the faces read directly wherever every reader of the batch can).
    fn new(gpu: &'static Gpu, ds: &Dataset, model: &str, direct: bool) -> Run {
        let spec = registry::model(model).unwrap();
        let batcher = batcher(gpu, ds, 8);
        let params = Params::init(gpu, &spec, 3).unwrap();
        let clean = batcher.clean.clone();
        let graph =
            Graph::new(gpu, &spec, &params, 8, clean.clone(), clean, Latent::Sample).unwrap();
        let step = StepState::new(gpu, StepValues::first(1e-3));
        let body = |rec: &mut facegpu::gpu::Recorder| {
            graph.record_forward_backward(rec, &params, 3, &step, 1.0)?;
            graph.record_update(rec, &params, &AdamConfig::default(), &step)
        };
        let prog = if direct {
            batcher.record_step(gpu, body).unwrap()
        } else {
            let mut rec = gpu.record();
            batcher.record(&mut rec).unwrap();
            body(&mut rec).unwrap();
            rec.finish().unwrap()
        };
        Run {
            batcher,
            params,
            graph,
            step,
            prog,
        }
    }

    /// Trains two epochs; the loss of every step and the weights after each epoch.
    fn train(&mut self, gpu: &Gpu) -> Vec<Vec<f32>> {
        let mut seen = Vec::new();
        let mut t = 1;
        for epoch in 0..2 {
            self.batcher.begin_epoch(gpu, epoch).unwrap();
            for k in 0..self.batcher.batches() {
                self.batcher.set_batch(gpu, k).unwrap();
                self.step.set(
                    gpu,
                    StepValues {
                        t,
                        epoch,
                        lr: 1e-3,
                        _pad: 0,
                    },
                );
                self.prog.run(gpu).unwrap();
                seen.push(gpu.read(&self.graph.recon_loss).unwrap());
                t += 1;
            }
            for p in &self.params.list {
                seen.push(gpu.read(&p.value).unwrap());
            }
        }
        seen
    }
}

#[test]
fn training_steps_reading_the_faces_match_the_gathered_ones_bit_for_bit() {
    if !aliasing() {
        return;
    }
    let gpu = gpu();
    let ds = random_faces(20, 5);
    for model in ["ae", "conv-vae", "ae-wide"] {
        let mut direct = Run::new(gpu, &ds, model, true);
        let mut gathered = Run::new(gpu, &ds, model, false);
        let (direct_labels, gathered_labels) =
            (labels(&direct.prog, gpu), labels(&gathered.prog, gpu));
        let faces_kernels = direct_labels
            .iter()
            .filter(|l| l.contains("_faces:"))
            .count();
        if direct_labels.iter().any(|l| l.contains("gather")) {
            // some kernel reads the float batch: then none decodes the faces
            assert_eq!(faces_kernels, 0, "{model}: {direct_labels:?}");
            assert_eq!(direct_labels, gathered_labels, "{model}");
        } else {
            assert!(faces_kernels > 0, "{model}: {direct_labels:?}");
            assert_eq!(direct_labels.len() + 1, gathered_labels.len(), "{model}");
        }
        if model == "ae" {
            // the seed AE's first-layer forward and weight gradient and its folded loss
            assert_eq!(faces_kernels, 3, "{direct_labels:?}");
        }
        let (a, b) = (direct.train(gpu), gathered.train(gpu));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            if let Some(d) = first_difference(x, y) {
                panic!("{model}: value set {i} (losses per step, weights per epoch) differs: {d}");
            }
        }
        eprintln!("{model}: {faces_kernels} kernels read the faces, same bits as gathered");
    }
}

#[test]
fn the_gather_stays_where_another_kernel_reads_the_batch() {
    if !aliasing() {
        return;
    }
    let gpu = gpu();
    let ds = random_faces(20, 6);
    let mut b = batcher(gpu, &ds, 8);
    let loss = gpu.zeros(&[1]);
    let zeros = gpu.zeros(&[8, 1, 128, 128]);
    let mut rec = gpu.record();
    b.record_elidable(&mut rec).unwrap();
    // the MSE against zeros reads the batch itself: the sum of squares of the faces
    facegpu::ops::loss::mse(&mut rec, &b.clean.clone(), &zeros, &loss, 1.0).unwrap();
    let prog = rec.finish().unwrap();
    assert!(
        labels(&prog, gpu).iter().any(|l| l.contains("gather")),
        "{:?}",
        labels(&prog, gpu)
    );
    b.begin_epoch(gpu, 0).unwrap();
    b.set_batch(gpu, 0).unwrap();
    prog.run(gpu).unwrap();
    let want: f64 = b
        .batch_ids(0)
        .iter()
        .flat_map(|&i| ds.image(i).iter().map(|&p| (p as f64 / 255.0).powi(2)))
        .sum();
    let got = gpu.read(&loss).unwrap()[0] as f64;
    assert!(
        (got - want).abs() <= 1e-4 * want,
        "sum of squares {got}, want {want}"
    );
}
