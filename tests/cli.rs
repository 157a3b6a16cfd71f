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

/// `bench tune` measures the linear layers' K split on this adapter and caches it: the file it
/// names holds, under this adapter, one whole number of chunks >= 1 per VAE layer and pass.
#[test]
fn bench_tune_caches_its_choices() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("autotune.json");
    let out = Command::new(env!("CARGO_BIN_EXE_facegpu"))
        .args(["bench", "tune", "--batch", "4"])
        .env("FACEGPU_AUTOTUNE_FILE", &file)
        .output()
        .expect("run facegpu");
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{so}{se}");
    assert!(so.contains(&file.display().to_string()), "{so}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("the cache file")).unwrap();
    let sections = v.as_object().expect("a JSON object");
    assert_eq!(sections.len(), 1, "{v}");
    let entries = sections.values().next().unwrap().as_object().unwrap();
    // the VAE's 4 layer shapes (mu and logvar share one) x 3 passes
    assert_eq!(entries.len(), 12, "{v}");
    for (k, c) in entries {
        assert!(k.starts_with("linear.") && k.ends_with(".chunks"), "{k}");
        assert!(c.as_u64().is_some_and(|c| c >= 1), "{k} = {c}");
    }
}
