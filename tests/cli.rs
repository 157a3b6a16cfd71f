//! The command line as a user meets it: help, info, and clear errors (exit code 1, no panic).
use std::process::Command;

fn facegpu(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_facegpu"))
        .args(args)
        .output()
        .expect("run facegpu");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn info_lists_adapters_and_the_chosen_one() {
    let (code, out, err) = facegpu(&["info"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("adapter 0:") && out.contains("chosen with --backend"),
        "{out}"
    );
    assert!(
        out.contains("max storage binding") && out.contains("timestamp queries"),
        "{out}"
    );
}

#[test]
fn info_json_is_valid_json() {
    let (code, out, err) = facegpu(&["info", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("info --json prints JSON");
    assert!(
        v["adapters"].as_array().is_some_and(|a| !a.is_empty()),
        "{v}"
    );
    let a = &v["adapters"][0];
    assert!(a["max_storage_buffer_binding_size"].as_u64().unwrap() > 0);
    // the seed AE's largest tensor is 8x64x64 floats an image (its first layer's output)
    let limit = a["max_storage_buffer_binding_size"]
        .as_u64()
        .unwrap()
        .min(a["max_buffer_size"].as_u64().unwrap());
    let ae_max = limit / (8 * 64 * 64 * 4);
    assert_eq!(a["largest_batch"]["ae"].as_u64(), Some(ae_max), "{a}");
    let (_, text, _) = facegpu(&["info"]);
    assert!(
        text.contains(&format!("largest --batch: ae {ae_max}")),
        "{text}"
    );
}

#[test]
fn missing_backend_is_a_clear_error_not_a_panic() {
    // Metal and DX12 never exist on Linux: the error says so and names the backends that do
    let (code, _, err) = facegpu(&["info", "--backend", "metal"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("facegpu: error:")
            && err.contains("only on macOS")
            && err.contains("--backend vulkan"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_wgpu_backend_env_is_explained() {
    let out = Command::new(env!("CARGO_BIN_EXE_facegpu"))
        .args(["info"])
        .env("WGPU_BACKEND", "nonsense")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("WGPU_BACKEND"), "{err}");
}

/// `--backend cpu` picks the software adapter where one is installed, and where none is (a GPU
/// machine without lavapipe, seen on an NVIDIA H200) says so and how to get one, exit code 1.
#[test]
fn cpu_backend_picks_a_software_adapter() {
    let (code, out, err) = facegpu(&["info", "--json"]);
    assert_eq!(code, 0, "{err}");
    let all: serde_json::Value = serde_json::from_str(&out).unwrap();
    let has_software = all["adapters"]
        .as_array()
        .expect("adapters list")
        .iter()
        .any(|a| a["device_type"] == "Cpu");
    let (code, out, err) = facegpu(&["info", "--backend", "cpu", "--json"]);
    if !has_software {
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            err.contains("no software adapter") && err.contains("mesa-vulkan-drivers"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        return;
    }
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let chosen = v["chosen"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        chosen.contains("llvmpipe")
            || chosen.contains("lavapipe")
            || chosen.contains("swiftshader")
            || chosen.contains("warp"),
        "{chosen}"
    );
}

/// `bench tune` refuses a batch of 0 with a clear error (its measuring and caching is tested in
/// tests/linear.rs, where the kernels it times are already compiled).
#[test]
fn bench_tune_refuses_an_empty_batch() {
    let (code, out, err) = facegpu(&["bench", "tune", "--batch", "0"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("--batch"), "{err}");
}

/// A batch too large for the adapter is refused before anything is allocated for it (it used
/// to abort the process allocating a 6.5 TB batch), with the largest batch that fits.
#[test]
fn bench_train_refuses_a_batch_too_large_for_the_adapter() {
    let (code, out, err) = facegpu(&["bench", "train", "--models", "ae", "--batch", "100000000"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("--batch 100000000 is too large") && err.contains("use --batch"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// train

/// Negative numbers reach the program's own checks (not clap's "unexpected argument '-1'"),
/// `--patience 0` is refused, and a bad --out is named before any data is loaded.
#[test]
fn train_and_eval_explain_bad_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afile");
    std::fs::write(&file, b"not a folder").unwrap();
    let file_s = file.to_str().unwrap();
    let nope = dir.path().join("none.safetensors");
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();
    for (args, want) in [
        (
            vec!["train", "--lr", "-1"],
            "--lr must be a positive number, got -1",
        ),
        (
            vec!["train", "--noise", "-0.1"],
            "--noise must be a sigma >= 0, got -0.1",
        ),
        (vec!["train", "--l2", "-1e-5"], "--l2 must be >= 0"),
        (vec!["train", "--patience", "0"], "N >= 1"),
        (
            vec![
                "train",
                "--split",
                "1,0,0",
                "--synthetic-count",
                "16",
                "--out",
                out_s,
            ],
            "--split 1,0,0 leaves no validation faces",
        ),
        (
            vec![
                "eval",
                "--noise",
                "-0.1",
                "--checkpoint",
                nope.to_str().unwrap(),
            ],
            "--noise must be a sigma >= 0, got -0.1",
        ),
        (vec!["train", "--out", file_s], "is a file, not a folder"),
        // found before the evaluation or the drawing, not after it
        (
            vec![
                "eval",
                "--checkpoint",
                nope.to_str().unwrap(),
                "--out",
                file_s,
            ],
            "is a file, not a folder",
        ),
        (
            vec!["synth", "--count", "1", "--out", file_s],
            "is a file, not a folder",
        ),
        (vec!["data", "--out", file_s], "is a file, not a folder"),
    ] {
        let (code, out, err) = facegpu(&args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in: {err}");
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
    }
    let (_, _, err) = facegpu(&["train", "--out", file_s]);
    assert!(err.contains(file_s), "{err}");
    assert!(file.is_file());
}

/// Flags the run would not use are named in one warning line each.
#[test]
fn train_warns_about_flags_without_effect() {
    // --epochs 0 ends the command right after the warnings
    let (code, _, err) = facegpu(&[
        "train",
        "--kl-weight",
        "2",
        "--l1",
        "1e-4",
        "--reg",
        "l2",
        "--l2",
        "1e-4",
        "--no-clip",
        "--epochs",
        "0",
    ]);
    assert_eq!(code, 1, "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warnings.len(), 3, "{err}");
    for w in ["--kl-weight", "--l1", "--no-clip"] {
        assert!(warnings.iter().any(|l| l.contains(w)), "{w}: {err}");
    }
    assert!(err.contains("--epochs must be at least 1"), "{err}");
    let (_, _, err) = facegpu(&[
        "train",
        "--model",
        "vae",
        "--kl-weight",
        "2",
        "--epochs",
        "0",
    ]);
    assert!(!err.contains("warning:"), "{err}");
}

/// A run's settings, as `facegpu train` saves them in config.json.
fn saved_config(dir: &std::path::Path) {
    let o = facegpu::train::TrainOptions {
        synthetic_count: 40,
        epochs: 2,
        batch: 8,
        seed: 3,
        ..facegpu::train::TrainOptions::new("ae", dir)
    };
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&o).unwrap(),
    )
    .unwrap();
}

/// With --resume the run keeps its settings: a flag that differs from the saved value is an
/// error naming the flag and that value; the same value, --epochs and --patience are accepted.
#[test]
fn resume_refuses_flags_that_change_the_run() {
    let dir = tempfile::tempdir().unwrap();
    saved_config(dir.path());
    let d = dir.path().to_str().unwrap();
    let other = tempfile::tempdir().unwrap();
    let (code, _, err) = facegpu(&[
        "train",
        "--resume",
        d,
        "--lr",
        "0.01",
        "--model",
        "vae",
        "--batch",
        "8",
        "--noise",
        "0.1",
        "--out",
        other.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    for want in [
        "--lr 0.01 (the run has 0.001)",
        "--model vae (the run has ae)",
        "--noise 0.1 (the run has no noise)",
        "--out",
        "config.json",
    ] {
        assert!(err.contains(want), "want {want:?} in: {err}");
    }
    assert!(
        !err.contains("--batch"),
        "--batch 8 is the run's own: {err}"
    );
    // the same values, --epochs and --patience pass the check (and stop at the missing
    // checkpoint: this folder holds only a config)
    let (code, _, err) = facegpu(&[
        "train",
        "--resume",
        d,
        "--lr",
        "1e-3",
        "--seed",
        "3",
        "--epochs",
        "5",
        "--patience",
        "2",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        !err.contains("differ") && err.contains("no checkpoint to continue from"),
        "{err}"
    );
}

/// Ctrl-C writes a resumable checkpoint and exits with 130; `--resume DIR` then finishes the
/// run's own epochs (2 here, not the default 10) and keeps its config; asking for fewer epochs
/// than are done is an error.
#[test]
fn interrupted_run_exits_130_and_resumes_to_its_own_epochs() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_facegpu"))
        .args([
            "train",
            "--synthetic-count",
            "40",
            "--batch",
            "8",
            "--epochs",
            "2",
            "--seed",
            "3",
            "--out",
            d,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // the Ctrl-C handler is in place before this line is printed
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut err = String::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        err += &l;
        err += "\n";
        if l.starts_with("facegpu: training") {
            break;
        }
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for l in lines {
        err += &l.unwrap();
        err += "\n";
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted: saved") && err.contains(&format!("--resume {d}")),
        "{err}"
    );
    assert!(dir.path().join("last.optim.safetensors").is_file());

    let (code, out, err) = facegpu(&["train", "--resume", d]);
    assert_eq!(code, 0, "{out}{err}");
    let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "2 epochs, not 10: {csv}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["epochs"], 2, "{cfg}");

    let (code, _, err) = facegpu(&["train", "--resume", d, "--epochs", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--epochs 1") && err.contains("already done 2 epochs"),
        "{err}"
    );
}
