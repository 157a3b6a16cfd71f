//! Training end to end on small synthetic sets: the loss falls, the same seed gives the same
//! numbers on the same adapter, resume (after a finished epoch or an interrupt mid-epoch) is
//! exact, every model trains, and the outputs a user is promised are written.
mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::gpu;
use facegpu::model::checkpoint;
use facegpu::train::{self, EpochRecord, Progress, Quiet, Reg, TrainOptions};

fn opts(model: &str, out: &Path) -> TrainOptions {
    TrainOptions {
        synthetic_count: 160,
        epochs: 2,
        batch: 16,
        seed: 7,
        ..TrainOptions::new(model, out)
    }
}

fn run(o: &TrainOptions) -> train::TrainSummary {
    common::train_quietly(o)
}

/// A quiet run, fresh or resumed, that may fail.
fn attempt(o: &TrainOptions, resume: bool) -> anyhow::Result<train::TrainSummary> {
    train::train(
        gpu(),
        o,
        resume,
        &mut Quiet,
        Arc::new(AtomicBool::new(false)),
    )
}

fn losses(h: &[EpochRecord]) -> Vec<(f64, f64)> {
    h.iter().map(|r| (r.train_loss, r.val_loss)).collect()
}

fn weights(path: &Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    checkpoint::load(path).unwrap().tensors
}

#[test]
fn ae_learns_and_writes_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts("ae", dir.path());
    o.epochs = 4;
    o.seed = 7;
    o.lr = 1e-2;
    let s = run(&o);
    assert_eq!(s.epochs.len(), 4);
    let (first, last) = (&s.epochs[0], &s.epochs[3]);
    // a network that learns nothing keeps its epoch-1 loss (about 0.057 here); 741 parameters
    // on 112 faces, 28 steps at lr 1e-2, cut it by about two thirds (0.019 measured on lavapipe)
    assert!(
        last.train_loss < 0.6 * first.train_loss,
        "{:?}",
        losses(&s.epochs)
    );
    assert!(last.val_loss < first.val_loss, "{:?}", losses(&s.epochs));
    for f in [
        "init.safetensors",
        "last.safetensors",
        "best.safetensors",
        "last.optim.safetensors",
        "metrics.csv",
        "loss.png",
        "config.json",
        "split.json",
        "reconstructions.png",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    // best is the epoch with the lowest validation loss
    let best = checkpoint::load(&dir.path().join("best.safetensors")).unwrap();
    assert_eq!(best.meta.epoch, s.best_epoch);
    let min = s
        .epochs
        .iter()
        .map(|r| r.val_loss)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(s.best_val_loss, min);
    // init.safetensors holds the parameters before step 1: the seed's initialization, epoch 0
    let init = checkpoint::load(&dir.path().join("init.safetensors")).unwrap();
    assert_eq!((init.meta.epoch, init.meta.step), (0, 0));
    let spec = facegpu::model::registry::model("ae").unwrap();
    let drawn = facegpu::model::params::Params::init(gpu(), &spec, o.seed)
        .unwrap()
        .to_host(gpu())
        .unwrap();
    assert_eq!(init.tensors, drawn);
    assert_ne!(init.tensors, weights(&dir.path().join("last.safetensors")));

    // resuming for fewer epochs than are done is an error, not a silent no-op
    let mut fewer = o.clone();
    fewer.epochs = 3;
    let e = format!("{:#}", attempt(&fewer, true).unwrap_err());
    assert!(
        e.contains("--epochs 3") && e.contains("already done 4 epochs"),
        "{e}"
    );
    // weights and optimizer state from different saves (a kill between the two writes: here
    // the optimizer state of epoch 3 beside the weights of epoch 4) are refused, naming both
    let optim = dir.path().join("last.optim.safetensors");
    let mut st = checkpoint::load_optim(&optim).unwrap();
    st.epoch -= 1;
    st.t -= 7;
    checkpoint::save_optim(&optim, &st).unwrap();
    let mut more = o.clone();
    more.epochs = 5;
    let e = format!("{:#}", attempt(&more, true).unwrap_err());
    assert!(
        e.contains("last.safetensors (epoch 4, 28 steps)")
            && e.contains("last.optim.safetensors (epoch 3, 21 steps)")
            && e.contains("not written together"),
        "{e}"
    );
}

/// Same seed, same adapter: the same losses and the same weights, bit for bit.
#[test]
fn same_seed_same_numbers() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut oa = opts("ae", a.path());
    oa.noise = Some(0.1);
    let mut ob = oa.clone();
    ob.out = b.path().to_path_buf();
    let (sa, sb) = (run(&oa), run(&ob));
    assert_eq!(losses(&sa.epochs), losses(&sb.epochs));
    assert_eq!(
        weights(&a.path().join("last.safetensors")),
        weights(&b.path().join("last.safetensors"))
    );
    // and another seed gives other numbers
    let c = tempfile::tempdir().unwrap();
    let mut oc = oa.clone();
    oc.seed = 8;
    oc.out = c.path().to_path_buf();
    assert_ne!(losses(&run(&oc).epochs), losses(&sa.epochs));
}

/// Stops the run (as Ctrl-C does) after a given optimizer step.
struct StopAt {
    step: u64,
    flag: Arc<AtomicBool>,
}
impl Progress for StopAt {
    fn after_step(&mut self, step: u64) {
        if step == self.step {
            self.flag.store(true, Ordering::SeqCst);
        }
    }
}

/// An interrupted run (mid-epoch) resumed to the end equals an uninterrupted one: losses and
/// weights bit for bit, for the AE with noise and for the VAE (sampled z).
#[test]
fn resume_after_interrupt_is_exact() {
    for model in ["ae", "vae"] {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut o = opts(model, a.path());
        o.epochs = 3;
        o.noise = Some(0.1);
        if model == "vae" {
            o.synthetic_count = 96;
        }
        let full = run(&o);
        let mut ob = o.clone();
        ob.out = b.path().to_path_buf();
        // 7 steps per epoch (112 faces / 16): stop in the middle of epoch 2
        let flag = Arc::new(AtomicBool::new(false));
        let steps = (o.synthetic_count * 7 / 10) / o.batch;
        let mut p = StopAt {
            step: steps as u64 + 3,
            flag: flag.clone(),
        };
        let part = train::train(gpu(), &ob, false, &mut p, flag).unwrap();
        assert!(part.interrupted);
        assert_eq!(part.epochs.len(), 1);
        let rest = attempt(&ob, true).unwrap();
        assert_eq!(losses(&rest.epochs), losses(&full.epochs), "{model}");
        // --resume leaves the run's initial weights as they were
        assert_eq!(
            weights(&a.path().join("init.safetensors")),
            weights(&b.path().join("init.safetensors")),
            "{model}"
        );
        assert_eq!(
            weights(&a.path().join("last.safetensors")),
            weights(&b.path().join("last.safetensors")),
            "{model}"
        );
    }
}

/// Every model trains on the embedded faces, with each regularizer, and its checkpoint loads
/// back into the same shapes.
#[test]
fn every_model_and_regularizer_trains() {
    for (model, reg) in [
        ("ae", Reg::L1l2),
        ("ae-wide", Reg::L1),
        ("vae", Reg::L2),
        ("conv-vae", Reg::None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(model, dir.path());
        o.epochs = 1;
        o.synthetic_count = 64;
        o.reg = reg;
        o.denoise = model == "ae-wide";
        if o.denoise {
            o.noise = Some(0.1);
        }
        let s = run(&o);
        let r = &s.epochs[0];
        assert!(
            r.train_loss.is_finite() && r.val_loss.is_finite(),
            "{model}: {r:?}"
        );
        let ck = checkpoint::load(&dir.path().join("last.safetensors")).unwrap();
        let spec = facegpu::model::registry::model(model).unwrap();
        assert_eq!(ck.num_params(), spec.parameter_count(), "{model}");
        assert_eq!(ck.meta.model, model);
    }
}

#[test]
fn bad_options_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts("ae", dir.path());
    o.model = "resnet".into();
    let e = attempt(&o, false).unwrap_err().to_string();
    assert!(e.contains("unknown model") && e.contains("ae, vae"), "{e}");
    let mut o = opts("ae", dir.path());
    o.batch = 1000;
    let e = format!("{:#}", attempt(&o, false).unwrap_err());
    assert!(e.contains("--batch"), "{e}");
    let mut o = opts("ae", dir.path());
    o.noise = Some(-0.1);
    let e = attempt(&o, false).unwrap_err().to_string();
    assert!(e.contains("--noise"), "{e}");
    let other = tempfile::tempdir().unwrap();
    let e = format!(
        "{:#}",
        attempt(&opts("ae", other.path()), true).unwrap_err()
    );
    assert!(e.contains("--resume"), "{e}");
    // --patience 0 would stop after epoch 1 whatever the loss did
    let mut o = opts("ae", dir.path());
    o.patience = Some(0);
    let e = format!("{:#}", attempt(&o, false).unwrap_err());
    assert!(e.contains("--patience") && e.contains("N >= 1"), "{e}");
    // an --out that is a file, or lies under one, is named before any data is loaded
    let file = dir.path().join("afile");
    std::fs::write(&file, b"x").unwrap();
    for out in [file.clone(), file.join("run")] {
        let o = opts("ae", &out);
        let e = format!("{:#}", attempt(&o, false).unwrap_err());
        assert!(
            e.contains(&format!("--out {}", out.display()))
                && e.contains(&format!(
                    "{} is a file, not a folder",
                    if out == file {
                        "it".into()
                    } else {
                        file.display().to_string()
                    }
                )),
            "{e}"
        );
    }
}

/// A folder of image files (here PNGs drawn by `facegpu synth`) trains like the embedded set:
/// the split lists name the files, nothing says "synthetic" in the config's dataset, and a
/// resume that spells the folder's path another way continues it.
#[test]
fn trains_on_a_folder_of_images() {
    let faces = tempfile::tempdir().unwrap();
    facegpu::data::write_synth(40, 5, faces.path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts("ae", dir.path());
    o.dataset = Some(faces.path().to_path_buf());
    o.cache = facegpu::data::CacheChoice::Off;
    o.epochs = 1;
    o.batch = 8;
    let s = run(&o);
    assert!(s.epochs[0].train_loss.is_finite());
    let split: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("split.json")).unwrap())
            .unwrap();
    let train: Vec<&str> = split["train"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // about 70% of the 40 faces; every listed file exists in the folder
    let count = |k: &str| split[k].as_array().unwrap().len();
    assert_eq!(count("train") + count("val") + count("test"), 40);
    assert!((27..=29).contains(&train.len()), "{}", train.len());
    assert!(train.iter().all(|p| Path::new(p).is_file()), "{train:?}");
    assert_eq!(split["info"]["synthetic"], serde_json::Value::Bool(false));
    // a resume may name the same folder another way ("DIR/."): the split is the same
    let mut more = o.clone();
    more.dataset = Some(faces.path().join("."));
    more.epochs = 2;
    let r = attempt(&more, true).unwrap();
    assert_eq!(r.epochs.len(), 2);
    // without the optimizer state the run cannot continue exactly: refused, saying so
    std::fs::remove_file(dir.path().join("last.optim.safetensors")).unwrap();
    more.epochs = 3;
    let e = attempt(&more, true).unwrap_err().to_string();
    assert!(
        e.contains("last.optim.safetensors is missing") && e.contains("without --resume"),
        "{e}"
    );
}

/// A loss that stops being a number ends training with a message that says what happened and
/// which checkpoint is left: none but the initial weights when it happens in epoch 1, else
/// last.safetensors of the last finished epoch.
#[test]
fn divergence_stops_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // the VAE's exp(logvar) overflows once Adam's steps are absurd
    let mut o = opts("vae", dir.path());
    o.lr = 1e30;
    o.epochs = 3;
    o.synthetic_count = 64;
    let e = attempt(&o, false).unwrap_err().to_string();
    assert!(e.contains("diverged") && e.contains("--lr"), "{e}");
    assert!(
        e.contains("in epoch 1")
            && e.contains("no epoch finished")
            && e.contains("only init.safetensors"),
        "{e}"
    );
    // one good epoch, then a resume at an absurd rate: last.safetensors of epoch 1 is left
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts("vae", dir.path());
    o.epochs = 1;
    o.synthetic_count = 64;
    run(&o);
    o.epochs = 3;
    o.lr = 1e30;
    let e = attempt(&o, true).unwrap_err().to_string();
    let last = dir.path().join("last.safetensors");
    assert!(
        e.contains("in epoch 2")
            && e.contains(&format!(
                "last good checkpoint is {} (epoch 1)",
                last.display()
            )),
        "{e}"
    );
}
