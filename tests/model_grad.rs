//! Whole-model gradients: the recorded backward pass of a model (every layer's backward kernel
//! chained through the graph, heads, reparameterization and KL) against central finite
//! differences of the recorded forward loss, for a conv AE and a conv VAE; a training step's record
//! (the loss folded into the last layer) against the separate passes.
mod common;

use common::{gpu, Rng};
use facegpu::model::graph::{Graph, Latent};
use facegpu::model::params::Params;
use facegpu::model::registry;
use facegpu::model::spec::ModelSpec;
use facegpu::ops::step::{StepState, StepValues};

/// `model` (seed-1 weights) on a batch of 2 random images from `rng`, with a sampled latent (eps
/// is drawn from (seed, step), so every forward sees the same eps) and step 1.
fn model_on_random_batch(model: &str, rng: &mut Rng) -> (ModelSpec, Params, Graph, StepState) {
    let g = gpu();
    let spec = registry::model(model).unwrap();
    let params = Params::init(g, &spec, 1).unwrap();
    let batch = 2;
    let x = g
        .upload(
            &common::to_f32(&rng.vec(batch * 128 * 128, 0.0, 1.0)),
            &[batch, 1, 128, 128],
        )
        .unwrap();
    let graph = Graph::new(g, &spec, &params, batch, x.clone(), x, Latent::Sample).unwrap();
    let step = StepState::new(g, StepValues::first(0.0));
    (spec, params, graph, step)
}

fn check_model(model: &str) {
    let g = gpu();
    let mut rng = Rng::new(11);
    let (spec, params, graph, step) = model_on_random_batch(model, &mut rng);
    let forward = {
        let mut rec = g.record();
        graph
            .record_forward(&mut rec, &params, 3, &step, 1.0)
            .unwrap();
        rec.finish().unwrap()
    };
    let both = {
        let mut rec = g.record();
        graph
            .record_forward(&mut rec, &params, 3, &step, 1.0)
            .unwrap();
        graph.record_backward(&mut rec, &params, 1.0).unwrap();
        rec.finish().unwrap()
    };
    let loss = || -> f64 {
        forward.run(g).unwrap();
        let r = g.read(&graph.recon_loss).unwrap()[0] as f64;
        let k = if spec.is_vae() {
            g.read(&graph.kl_loss).unwrap()[0] as f64
        } else {
            0.0
        };
        r + k
    };
    both.run(g).unwrap();
    let base = loss();
    assert!(base.is_finite() && base > 0.0);
    for p in &params.list {
        let grad = g.read(&p.grad).unwrap();
        let value = g.read(&p.value).unwrap();
        // three elements per tensor: the largest gradient and two seeded picks
        let big = (0..grad.len())
            .max_by(|&a, &b| grad[a].abs().total_cmp(&grad[b].abs()))
            .unwrap();
        let picks = [
            big,
            rng.next_u64() as usize % grad.len(),
            rng.next_u64() as usize % grad.len(),
        ];
        for &i in &picks {
            // float32 loss: steps of 2e-3 keep the difference above rounding while few ReLUs
            // change side (at 1e-2 a decoder bias crosses enough kinks to miss by 4x); the
            // tolerance is 5% of the gradient plus 2e-4 of the loss scale
            let h = 2e-3f32.max(value[i].abs() * 2e-3);
            let mut v = value.clone();
            v[i] = value[i] + h;
            g.write(&p.value, &v).unwrap();
            let up = loss();
            v[i] = value[i] - h;
            g.write(&p.value, &v).unwrap();
            let down = loss();
            g.write(&p.value, &value).unwrap();
            let fd = (up - down) / (2.0 * h as f64);
            let got = grad[i] as f64;
            assert!(
                (got - fd).abs() <= 0.05 * fd.abs().max(got.abs()) + 2e-4 * base.max(1e-3),
                "{model} {}[{i}]: backward {got:e}, finite differences {fd:e} (loss {base})",
                p.name
            );
        }
    }
}

#[test]
fn ae_backward_matches_finite_differences() {
    check_model("ae");
}

#[test]
fn conv_vae_backward_matches_finite_differences() {
    check_model("conv-vae");
}

/// A training step's record (`record_forward_backward`: on software adapters the AE's last layer
/// forms the loss and its gradient in one pass and leaves `output` unwritten; its forward also
/// recomputes its input, the first decoder layer's output, from that layer's input, and forms
/// its own weight gradient and the ReLU bits its input gradient needs, so the first decoder
/// layer's forward is dropped) against the separate forward and backward: the same gradients
/// bit for bit but the last layer's weight gradient, which, like the loss, is summed in another
/// order.
#[test]
fn training_record_matches_separate_passes() {
    let g = gpu();
    let (_, params, graph, step) = model_on_random_batch("ae", &mut Rng::new(12));
    let run = |fused: bool| -> (f32, Vec<Vec<u32>>) {
        g.write(&graph.output, &vec![f32::NAN; graph.output.len()])
            .unwrap();
        let mut rec = g.record();
        if fused {
            graph
                .record_forward_backward(&mut rec, &params, 3, &step, 1.0)
                .unwrap();
        } else {
            graph
                .record_forward(&mut rec, &params, 3, &step, 1.0)
                .unwrap();
            graph.record_backward(&mut rec, &params, 1.0).unwrap();
        }
        let prog = rec.finish().unwrap();
        let labels = prog.labels();
        // the first decoder layer's forward (the only all-channels transposed-conv forward)
        let dec0_forward = labels.iter().any(|l| l.contains(":convt_s2k3_all_cpu "));
        let recomputing = labels.iter().filter(|l| l.contains("_below")).count();
        if fused && g.is_cpu() {
            assert!(!dec0_forward && recomputing == 2, "{labels:?}");
        } else {
            assert!(recomputing == 0, "{labels:?}");
            assert!(dec0_forward || !g.is_cpu(), "{labels:?}");
        }
        prog.run(g).unwrap();
        let out = g.read(&graph.output).unwrap();
        // the fold happens on software adapters (and only there: elsewhere `output` is written)
        assert_eq!(
            out.iter().all(|v| v.is_nan()),
            fused && g.is_cpu(),
            "fused {fused}: output written?"
        );
        let grads = params
            .list
            .iter()
            .map(|p| {
                g.read(&p.grad)
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect()
            })
            .collect();
        (g.read(&graph.recon_loss).unwrap()[0], grads)
    };
    let (l0, g0) = run(false);
    let (l1, g1) = run(true);
    assert!(
        l0 > 0.0 && (l1 - l0).abs() <= 1e-6 * l0,
        "loss {l1} vs {l0}"
    );
    // the last layer's weight gradient is summed in another order where the step folds it into
    // the forward (software adapters): within 1e-5 of its largest value; every other gradient
    // is the same bit for bit
    let last = graph.spec.decoder.last().expect("decoder").name;
    for (p, (a, b)) in params.list.iter().zip(g0.iter().zip(&g1)) {
        if p.name.starts_with(&format!("{last}.")) && g.is_cpu() {
            let (a, b): (Vec<f32>, Vec<f32>) = (
                a.iter().map(|v| f32::from_bits(*v)).collect(),
                b.iter().map(|v| f32::from_bits(*v)).collect(),
            );
            let top = a.iter().fold(0f32, |m, v| m.max(v.abs()));
            let worst = a
                .iter()
                .zip(&b)
                .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            eprintln!("{}: largest {top:e}, largest difference {worst:e}", p.name);
            assert!(
                top > 0.0 && worst <= 1e-5 * top,
                "{}: {worst} against {top}",
                p.name
            );
        } else {
            assert!(a == b, "{}: gradients differ", p.name);
        }
    }
}
