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
    assert!(
        v["adapters"][0]["max_storage_buffer_binding_size"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn missing_backend_is_a_clear_error_not_a_panic() {
    // Metal and DX12 never exist on Linux.
    let (code, _, err) = facegpu(&["info", "--backend", "metal"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("facegpu: error:") && err.contains("mesa-vulkan-drivers"),
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

#[test]
fn cpu_backend_picks_a_software_adapter() {
    let (code, out, err) = facegpu(&["info", "--backend", "cpu", "--json"]);
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
