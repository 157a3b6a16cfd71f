//! nn.Linear forward and both backward passes against the float64 reference, and the backward
//! passes against central finite differences of L = sum(dy * y), for each kernel variant the
//! adapter supports, with split-K off (1 chunk) and on (several chunks), on odd shapes.
//!
//! Error bound (every reference check): |got - want| <= 1e-5 |want| + 1e-5 sqrt(K) where K is
//! the reduction length. Inputs lie in [-1, 1], so float32 rounding of a K-term sum grows like
//! sqrt(K) * 6e-8 per unit term; the bound leaves ~100x headroom and still catches any missing
//! or doubled term (which errs by ~1e-2 or more).
mod common;
mod reference;

use common::*;
use facegpu::ops::linear::{self, LinearShape, Options, Pass, Variant};
use facegpu::ops::Activation;
use reference::linear as r;

const ACTS: [Activation; 3] = [Activation::None, Activation::Relu, Activation::Sigmoid];

fn variants() -> Vec<Variant> {
    let mut v = vec![Variant::Tiled];
    if linear::cpu_supported(gpu()) {
        v.push(Variant::Registers);
    } else {
        eprintln!("adapter lacks subgroups of >= 8 lanes: Registers variant not tested");
    }
    v
}

/// Splits: off, and a split that leaves several chunks for K >= 3 kernel steps.
const SPLITS: [usize; 2] = [1, 3];

fn bound(k: usize) -> (f64, f64) {
    (1e-5, 1e-5 * (k as f64).sqrt())
}

/// Values rounded to f32 so that the reference sees exactly what the GPU sees.
fn data(rng: &mut Rng, n: usize) -> Vec<f64> {
    rng.vec(n, -1.0, 1.0)
        .into_iter()
        .map(|v| v as f32 as f64)
        .collect()
}

struct Case {
    s: LinearShape,
    act: Activation,
    x: Vec<f64>,
    w: Vec<f64>,
    b: Vec<f64>,
    dy: Vec<f64>,
    /// reference forward output, rounded to f32 (the backward kernels' y input)
    y: Vec<f64>,
}

fn case(batch: usize, d_in: usize, d_out: usize, act: Activation, seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let x = data(&mut rng, batch * d_in);
    let w = data(&mut rng, d_out * d_in);
    let b = data(&mut rng, d_out);
    let dy = data(&mut rng, batch * d_out);
    let y: Vec<f64> = r::forward(act.code(), &x, &w, &b, batch, d_in, d_out)
        .into_iter()
        .map(|v| v as f32 as f64)
        .collect();
    Case {
        s: LinearShape { batch, d_in, d_out },
        act,
        x,
        w,
        b,
        dy,
        y,
    }
}

fn gpu_forward(c: &Case, o: Options) -> Vec<f64> {
    let s = c.s;
    let x = upload(&c.x, &[s.batch, s.d_in]);
    let w = upload(&c.w, &[s.d_out, s.d_in]);
    let b = upload(&c.b, &[s.d_out]);
    let y = poisoned(&[s.batch, s.d_out]);
    let mut rec = gpu().record();
    linear::forward_opt(&mut rec, &s, &x, &w, &b, &y, c.act, o).unwrap();
    rec.run().unwrap();
    read(&y)
}

fn gpu_backward_input(c: &Case, o: Options) -> Vec<f64> {
    let s = c.s;
    let y = upload(&c.y, &[s.batch, s.d_out]);
    let dy = upload(&c.dy, &[s.batch, s.d_out]);
    let w = upload(&c.w, &[s.d_out, s.d_in]);
    let dx = poisoned(&[s.batch, s.d_in]);
    let mut rec = gpu().record();
    linear::backward_input_opt(&mut rec, &s, c.act, &y, &dy, &w, &dx, o).unwrap();
    rec.run().unwrap();
    read(&dx)
}

fn gpu_backward_weight(c: &Case, o: Options) -> (Vec<f64>, Vec<f64>) {
    let s = c.s;
    let y = upload(&c.y, &[s.batch, s.d_out]);
    let dy = upload(&c.dy, &[s.batch, s.d_out]);
    let x = upload(&c.x, &[s.batch, s.d_in]);
    let dw = poisoned(&[s.d_out, s.d_in]);
    let db = poisoned(&[s.d_out]);
    let mut rec = gpu().record();
    linear::backward_weight_opt(&mut rec, &s, c.act, &y, &dy, &x, &dw, &db, o).unwrap();
    rec.run().unwrap();
    (read(&dw), read(&db))
}

fn opts(v: Variant, split: usize) -> Options {
    Options {
        variant: Some(v),
        split_k: Some(split),
        textures: None,
    }
}

/// All three passes of `c` against the reference for every variant and split.
fn check_reference(c: &Case) {
    check_reference_with(c, None)
}

/// [`check_reference`] with the register kernels' S and P read as `textures` says.
fn check_reference_with(c: &Case, textures: Option<bool>) {
    let s = c.s;
    let code = c.act.code();
    let y_ref = r::forward(code, &c.x, &c.w, &c.b, s.batch, s.d_in, s.d_out);
    let dx_ref = r::backward_input(code, &c.y, &c.dy, &c.w, s.batch, s.d_in, s.d_out);
    let (dw_ref, db_ref) = r::backward_weight(code, &c.y, &c.dy, &c.x, s.batch, s.d_in, s.d_out);
    for v in variants() {
        for split in SPLITS {
            let o = Options {
                textures,
                ..opts(v, split)
            };
            let chunks: Vec<usize> = [Pass::Forward, Pass::BackwardInput, Pass::BackwardWeight]
                .iter()
                .map(|&p| linear::plan(gpu(), &s, p, o).chunks)
                .collect();
            let tag = format!("{s:?} {:?} {v:?} split {split} (chunks {chunks:?})", c.act);
            let (rt, at) = bound(s.d_in);
            assert_close(&format!("y {tag}"), &gpu_forward(c, o), &y_ref, rt, at);
            let (rt, at) = bound(s.d_out);
            assert_close(
                &format!("dx {tag}"),
                &gpu_backward_input(c, o),
                &dx_ref,
                rt,
                at,
            );
            let (dw, db) = gpu_backward_weight(c, o);
            let (rt, at) = bound(s.batch);
            assert_close(&format!("dW {tag}"), &dw, &dw_ref, rt, at);
            assert_close(&format!("db {tag}"), &db, &db_ref, rt, at);
        }
    }
}

#[test]
fn odd_shapes_match_reference() {
    // batch 1 and 3, sizes not multiples of 4, 8 (kernel K step), 32 (register block) or 64
    // (tile); 20 x 13 x 9 so that the weight gradient's K (= batch) also splits.
    let shapes = [
        (1, 7, 5),
        (3, 37, 19),
        (5, 300, 33),
        (20, 13, 9),
        (3, 70, 130),
    ];
    for (i, &(bt, di, dd)) in shapes.iter().enumerate() {
        for (a, &act) in ACTS.iter().enumerate() {
            check_reference(&case(bt, di, dd, act, (10 * i + a) as u64));
        }
    }
}

/// Bounds: [`bound`] against the reference, [`check_fd`]'s against finite differences.
#[test]
fn operands_from_textures_and_from_buffers_match_reference() {
    // the register kernels read S and P from texture copies where rows start on whole texels;
    // both ways must match. 5 x 300 -> 36: K = 300 ends half-way through a step of 8, and each
    // copy is one partial texture row; 3 x 300 -> 64: P spans a full row of 4096 texels and a
    // partial one (19,200 floats); 9 x 68 -> 200: M = 200 is not a multiple of the 64-row block.
    if !variants().contains(&Variant::Registers) {
        return;
    }
    let cases = [
        (5, 300, 36, Activation::Sigmoid),
        (3, 300, 64, Activation::None),
        (9, 68, 200, Activation::Relu),
    ];
    for (i, &(bt, di, dd, act)) in cases.iter().enumerate() {
        let c = case(bt, di, dd, act, 100 + i as u64);
        let s = c.s;
        for pass in [Pass::Forward, Pass::BackwardInput, Pass::BackwardWeight] {
            let (m, n, k) = pass.mnk(&s);
            assert!(
                linear::textures_fit(gpu(), pass, m, n, k),
                "{s:?} {pass:?} should take the texture path"
            );
        }
        for textures in [Some(true), Some(false)] {
            check_reference_with(&c, textures);
        }
        // the texture kernels (cpu_bwd_in_tex, cpu_bwd_w_tex, and g formed by form_g4_tex
        // where there is an activation) against finite differences too
        for split in SPLITS {
            let o = Options {
                textures: Some(true),
                ..opts(Variant::Registers, split)
            };
            let dx = gpu_backward_input(&c, o);
            let (dw, db) = gpu_backward_weight(&c, o);
            check_fd(
                &c,
                &format!("textures split {split}"),
                &dx,
                &dw,
                &db,
                i as u64,
            );
        }
    }
}

/// Finite-difference samples of dx and dW in [`check_fd`] (db: up to this many as well).
const FD_SAMPLES: usize = 24;

/// dx, dW, db of case `c` against central differences of the float64 loss L = sum(dy *
/// act(x W^T + b)) at FD_SAMPLES elements each (the first, the last, the rest at seeded
/// random places). Bound: rel 1e-4 + abs 1e-5 (float32 sums of at most a few hundred terms
/// of size <= 1 err by ~1e-6; the differences, h = 1e-6, by ~1e-9).
fn check_fd(c: &Case, tag: &str, dx: &[f64], dw: &[f64], db: &[f64], seed: u64) {
    let tag = format!("{:?} {:?} {tag}: finite differences", c.s, c.act);
    let seed = 1000 + 10 * seed;
    check_grad_fd_sampled(
        &format!("dx {tag}"),
        &|x| loss(c, x, &c.w, &c.b),
        &c.x,
        dx,
        FD_SAMPLES,
        seed,
        1e-4,
        1e-5,
    );
    check_grad_fd_sampled(
        &format!("dW {tag}"),
        &|w| loss(c, &c.x, w, &c.b),
        &c.w,
        dw,
        FD_SAMPLES,
        seed + 1,
        1e-4,
        1e-5,
    );
    check_grad_fd_sampled(
        &format!("db {tag}"),
        &|b| loss(c, &c.x, &c.w, b),
        &c.b,
        db,
        FD_SAMPLES,
        seed + 2,
        1e-4,
        1e-5,
    );
}

#[test]
fn split_k_plans_split() {
    // the tests above only mean "split on" if the plan really has several chunks
    let s = LinearShape {
        batch: 5,
        d_in: 300,
        d_out: 33,
    };
    for v in variants() {
        assert!(linear::plan(gpu(), &s, Pass::Forward, opts(v, 3)).chunks >= 2);
        assert!(linear::plan(gpu(), &s, Pass::BackwardInput, opts(v, 3)).chunks >= 2);
        assert_eq!(linear::plan(gpu(), &s, Pass::Forward, opts(v, 1)).chunks, 1);
    }
}

/// L = sum(dy * act(x W^T + b)) in float64; its gradients are what the kernels compute.
fn loss(c: &Case, x: &[f64], w: &[f64], b: &[f64]) -> f64 {
    let s = c.s;
    r::forward(c.act.code(), x, w, b, s.batch, s.d_in, s.d_out)
        .iter()
        .zip(&c.dy)
        .map(|(y, d)| y * d)
        .sum()
}

#[test]
fn gradients_match_finite_differences() {
    // FD bound: rel 1e-3 + abs 1e-4 (float32 kernel result vs float64 central difference with
    // h = 1e-6, whose own error is ~1e-9; relu kinks are avoided by |pre-activation| >> h).
    for (i, &(bt, di, dd)) in [(1, 7, 5), (3, 37, 19)].iter().enumerate() {
        for (a, &act) in ACTS.iter().enumerate() {
            let c = case(bt, di, dd, act, 100 + (10 * i + a) as u64);
            for v in variants() {
                for split in SPLITS {
                    let o = opts(v, split);
                    let tag = format!("{:?} {act:?} {v:?} split {split}", c.s);
                    let dx = gpu_backward_input(&c, o);
                    let (dw, db) = gpu_backward_weight(&c, o);
                    check_grad_fd(
                        &format!("dx {tag}"),
                        &|x| loss(&c, x, &c.w, &c.b),
                        &c.x,
                        &dx,
                        16,
                        1e-3,
                        1e-4,
                    );
                    check_grad_fd(
                        &format!("dW {tag}"),
                        &|w| loss(&c, &c.x, w, &c.b),
                        &c.w,
                        &dw,
                        16,
                        1e-3,
                        1e-4,
                    );
                    check_grad_fd(
                        &format!("db {tag}"),
                        &|b| loss(&c, &c.x, &c.w, b),
                        &c.b,
                        &db,
                        16,
                        1e-3,
                        1e-4,
                    );
                }
            }
        }
    }
}

/// `linear::backward` (what training runs): both products of a layer, g = dy * act'(y) formed
/// once for the two where both use the register kernels, with texture reads on and off, and
/// without dx (a first layer), against the reference ([`bound`]) and finite differences
/// ([`check_fd`]'s bound). Shapes of the tests above, so no new kernel variants compile.
#[test]
fn backward_of_a_layer_matches_reference() {
    for (i, &(bt, di, dd, act)) in [
        (5, 300, 36, Activation::Sigmoid),
        (9, 68, 200, Activation::Relu),
        (3, 37, 19, Activation::Relu),
    ]
    .iter()
    .enumerate()
    {
        let c = case(bt, di, dd, act, 200 + i as u64);
        let s = c.s;
        let code = act.code();
        let dx_ref = r::backward_input(code, &c.y, &c.dy, &c.w, s.batch, s.d_in, s.d_out);
        let (dw_ref, db_ref) =
            r::backward_weight(code, &c.y, &c.dy, &c.x, s.batch, s.d_in, s.d_out);
        for textures in [false, true] {
            for with_dx in [true, false] {
                let tag = format!("{s:?} {act:?} textures {textures} dx {with_dx}");
                let y = upload(&c.y, &[s.batch, s.d_out]);
                let dy = upload(&c.dy, &[s.batch, s.d_out]);
                let x = upload(&c.x, &[s.batch, s.d_in]);
                let w = upload(&c.w, &[s.d_out, s.d_in]);
                let (dw, db) = (poisoned(&[s.d_out, s.d_in]), poisoned(&[s.d_out]));
                let dx = poisoned(&[s.batch, s.d_in]);
                facegpu::gpu::with_texture_reads(textures, || {
                    let mut rec = gpu().record();
                    let dxo = with_dx.then_some(&dx);
                    linear::backward(&mut rec, &s, act, &y, &dy, &x, &w, &dw, &db, dxo).unwrap();
                    rec.run().unwrap();
                });
                let (rt, at) = bound(s.batch);
                let (dw, db) = (read(&dw), read(&db));
                assert_close(&format!("dW {tag}"), &dw, &dw_ref, rt, at);
                assert_close(&format!("db {tag}"), &db, &db_ref, rt, at);
                if with_dx {
                    let (rt, at) = bound(s.d_out);
                    let dx = read(&dx);
                    assert_close(&format!("dx {tag}"), &dx, &dx_ref, rt, at);
                    let what = format!("linear::backward textures {textures}");
                    check_fd(&c, &what, &dx, &dw, &db, 20 + i as u64);
                } else {
                    assert!(read(&dx).iter().all(|v| v.is_nan()), "dx written: {tag}");
                }
            }
        }
    }
}

#[test]
fn vae_like_shape_matches_reference() {
    // the encoder's long reduction (d_in 16384) at small batch, default plan and forced splits;
    // W (2^20 floats) is read through the texture over its own memory on lavapipe (gpu::alias)
    let c = case(4, 16384, 64, Activation::Relu, 7);
    check_reference(&c);
    let y_ref = r::forward(c.act.code(), &c.x, &c.w, &c.b, 4, 16384, 64);
    let (rt, at) = bound(16384);
    assert_close(
        "y default plan",
        &gpu_forward(&c, Options::default()),
        &y_ref,
        rt,
        at,
    );
}

/// The VAE's own layer shapes at batch 2: enc.fc 16384 -> 512 (relu) and dec.out 512 -> 16384
/// (sigmoid), forward and the training path's backward (`linear::backward`, dx included) with
/// the default plan, and with K forced into 1 and 7 chunks: against the float64 reference,
/// bound [`bound`] of each pass's K (16384 for enc.fc's forward and dec.out's dx, where the
/// split-K chunks and their reduction do the work), its absolute part scaled by the largest
/// term: weights are drawn at PyTorch's scale (|w| <= 1/sqrt(d_in), so that sigmoid does not
/// saturate and the gradients stay nonzero), which makes the terms of y and dx at most
/// 1/sqrt(d_in) (x, dy in [-1, 1], act' <= 1); those of dW and db at most 1.
#[test]
fn vae_layer_shapes_match_reference() {
    for (i, &(d_in, d_out, act)) in [
        (16384, 512, Activation::Relu),
        (512, 16384, Activation::Sigmoid),
    ]
    .iter()
    .enumerate()
    {
        let batch = 2;
        let mut c = case(batch, d_in, d_out, act, 300 + i as u64);
        let scale = 1.0 / (d_in as f64).sqrt();
        for w in c.w.iter_mut() {
            *w = (*w * scale) as f32 as f64;
        }
        let s = c.s;
        let code = act.code();
        c.y = r::forward(code, &c.x, &c.w, &c.b, batch, d_in, d_out)
            .into_iter()
            .map(|v| v as f32 as f64)
            .collect();
        let y_ref = r::forward(code, &c.x, &c.w, &c.b, batch, d_in, d_out);
        let dx_ref = r::backward_input(code, &c.y, &c.dy, &c.w, batch, d_in, d_out);
        let (dw_ref, db_ref) = r::backward_weight(code, &c.y, &c.dy, &c.x, batch, d_in, d_out);
        let g = r::grad_out(code, &c.y, &c.dy);
        assert!(
            g.iter().filter(|v| v.abs() > 1e-3).count() > g.len() / 4,
            "{s:?}: most of g should be well away from 0"
        );
        for split in [None, Some(1), Some(7)] {
            let o = Options {
                split_k: split,
                ..Options::default()
            };
            let chunks: Vec<usize> = [Pass::Forward, Pass::BackwardInput, Pass::BackwardWeight]
                .iter()
                .map(|&p| linear::plan(gpu(), &s, p, o).chunks)
                .collect();
            if split == Some(7) {
                let p = if d_in > d_out {
                    Pass::Forward
                } else {
                    Pass::BackwardInput
                };
                assert!(linear::plan(gpu(), &s, p, o).chunks > 1, "{s:?} {p:?}");
            }
            let tag = format!("{s:?} {act:?} split {split:?} (chunks {chunks:?})");
            let (rt, at) = bound(d_in);
            assert_close(
                &format!("y {tag}"),
                &gpu_forward(&c, o),
                &y_ref,
                rt,
                at * scale,
            );
            let (dx, dw, db) = if split.is_none() {
                // what training runs
                let y = upload(&c.y, &[batch, d_out]);
                let dy = upload(&c.dy, &[batch, d_out]);
                let x = upload(&c.x, &[batch, d_in]);
                let w = upload(&c.w, &[d_out, d_in]);
                let (dw, db) = (poisoned(&[d_out, d_in]), poisoned(&[d_out]));
                let dx = poisoned(&[batch, d_in]);
                let mut rec = gpu().record();
                linear::backward(&mut rec, &s, act, &y, &dy, &x, &w, &dw, &db, Some(&dx)).unwrap();
                rec.run().unwrap();
                (read(&dx), read(&dw), read(&db))
            } else {
                let (dw, db) = gpu_backward_weight(&c, o);
                (gpu_backward_input(&c, o), dw, db)
            };
            let (rt, at) = bound(d_out);
            assert_close(&format!("dx {tag}"), &dx, &dx_ref, rt, at * scale);
            let (rt, at) = bound(batch);
            assert_close(&format!("dW {tag}"), &dw, &dw_ref, rt, at);
            assert_close(&format!("db {tag}"), &db, &db_ref, rt, at);
        }
    }
}

#[test]
fn split_k_is_deterministic() {
    // fixed-order chunk sums: two runs agree bit for bit
    let c = case(3, 2000, 19, Activation::Sigmoid, 9);
    for v in variants() {
        let o = opts(v, 5);
        assert!(linear::plan(gpu(), &c.s, Pass::Forward, o).chunks > 1);
        let a = gpu_forward(&c, o);
        let b = gpu_forward(&c, o);
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{v:?}"
        );
    }
}

#[test]
fn bad_shapes_are_errors() {
    let s = LinearShape {
        batch: 2,
        d_in: 3,
        d_out: 4,
    };
    let x = gpu().zeros(&[2, 3]);
    let w = gpu().zeros(&[4, 4]);
    let b = gpu().zeros(&[4]);
    let y = gpu().zeros(&[2, 4]);
    let mut rec = gpu().record();
    let e = linear::forward(&mut rec, &s, &x, &w, &b, &y, Activation::None).unwrap_err();
    assert!(e.to_string().contains("W"), "{e}");
}

#[test]
fn cpu_shader_file_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/linear_cpu.wgsl");
    let want = linear::cpu_wgsl();
    if std::env::var_os("FACEGPU_REGEN").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "shaders/linear_cpu.wgsl is stale: run FACEGPU_REGEN=1 cargo test --test linear cpu_shader"
    );
}

/// The K-split tuner (`facegpu bench tune`) measures one choice per VAE layer shape and pass,
/// each a whole number of chunks >= 1, and writes them under this adapter's name into the cache
/// file (here a temporary one, so this process's own choices stay as they are).
#[test]
fn autotune_measures_and_stores_every_vae_layer_and_pass() {
    let found = linear::autotune_measure(gpu(), 4).unwrap();
    // the VAE's 4 layer shapes (mu and logvar share one) x 3 passes
    assert_eq!(found.len(), 12, "{found:?}");
    assert!(
        found
            .iter()
            .all(|(k, c)| k.starts_with("linear.") && *c >= 1),
        "{found:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("autotune.json");
    let entries: Vec<(String, serde_json::Value)> = found
        .iter()
        .map(|(k, c)| (k.clone(), (*c).into()))
        .collect();
    facegpu::gpu::autotune::store_at(&file, gpu(), &entries).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let sect = &v[facegpu::gpu::autotune::adapter_key(gpu())];
    for (k, c) in &found {
        assert_eq!(sect[k].as_u64(), Some(*c as u64), "{k} in {v}");
    }
}
