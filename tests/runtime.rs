//! The runtime itself: every shader parses and validates with naga; adapters are found; a
//! recorded program replays; tensors round-trip; grids split past 65535 workgroups.
mod common;

use common::*;
use facegpu::gpu::{grid_1d, shaders};

#[test]
fn every_shader_validates_with_naga() {
    let mut count = 0;
    for name in shaders::names() {
        // NAME_core.wgsl files are kernels without their loads; they validate inside the files
        // that include them
        if name.ends_with("_core") {
            continue;
        }
        let src = shaders::source(name).unwrap();
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(&src)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}.wgsl does not validate: {e:?}"));
        count += 1;
    }
    assert!(
        count >= 2,
        "expected the shaders/ folder to be embedded, found {count} files"
    );
}

#[test]
fn flat_texture_width_matches_the_shaders() {
    // kernels index Recorder::flat_texture copies with FLAT_W; the host lays them out with
    // FLAT_TEXTURE_WIDTH
    let src = shaders::source("flat_texture").unwrap();
    let want = format!(
        "const FLAT_W: u32 = {}u;",
        facegpu::gpu::kernels::FLAT_TEXTURE_WIDTH
    );
    assert!(
        src.contains(&want),
        "shaders/flat_texture.wgsl lacks `{want}`"
    );
}

#[test]
fn unknown_shader_is_a_clear_error() {
    let err = gpu()
        .pipeline("no_such_shader", "main", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("no_such_shader"), "{err}");
}

#[test]
fn tensor_round_trip_and_poison() {
    let v: Vec<f32> = (0..1001).map(|i| i as f32 * 0.5 - 3.0).collect();
    let t = gpu().upload(&v, &[7, 143]).unwrap();
    assert_eq!(gpu().read(&t).unwrap(), v);
    gpu().fill(&t, f32::NAN);
    assert!(gpu().read(&t).unwrap().iter().all(|x| x.is_nan()));
    assert!(
        gpu().upload(&v, &[2, 2]).is_err(),
        "a shape that does not match the data is refused"
    );
}

#[test]
fn grid_splits_large_dispatches() {
    assert_eq!(grid_1d(1, 256), [1, 1, 1]);
    assert_eq!(grid_1d(256 * 65535, 256), [65535, 1, 1]);
    let g = grid_1d(256 * 65536, 256);
    assert!(
        g[0] <= 65535 && g[1] >= 2 && (g[0] as u64 * g[1] as u64) >= 65536,
        "{g:?}"
    );
}

#[test]
fn program_replays_without_rebuilding() {
    use facegpu::ops::activation::{self, Activation};
    let x = upload(&[-1.0, 2.0, -3.0], &[3]);
    let y = poisoned(&[3]);
    let mut rec = gpu().record();
    activation::forward(&mut rec, Activation::Relu, &x, &y).unwrap();
    let prog = rec.finish().unwrap();
    prog.run(gpu()).unwrap();
    assert_eq!(read(&y), vec![0.0, 2.0, 0.0]);
    // new inputs, same program: the bind groups refer to the buffers, not the values
    gpu().write(&x, &[4.0, -5.0, 6.0]).unwrap();
    prog.run(gpu()).unwrap();
    assert_eq!(read(&y), vec![4.0, 0.0, 6.0]);
}

/// Timing a program of several passes (copies split passes) works whether or not the adapter
/// has timestamp queries: only the first and last passes carry stamps, and the result is the
/// same as running it untimed.
#[test]
fn timing_a_multi_pass_program() {
    use facegpu::ops::elementwise;
    let g = gpu();
    let a = g.upload(&[1.0f32; 100], &[100]).unwrap();
    let b = g.zeros(&[100]);
    let c = g.zeros(&[100]);
    let mut rec = g.record();
    elementwise::accumulate(&mut rec, 1.0, &a, &b).unwrap(); // b += a
    rec.copy(&b.buf, 0, &c.buf, 0, 400); // a copy ends the first pass
    elementwise::accumulate(&mut rec, 2.0, &a, &c).unwrap(); // c += 2a
    rec.copy(&c.buf, 0, &b.buf, 0, 400);
    elementwise::accumulate(&mut rec, 1.0, &a, &b).unwrap(); // b += a
    let prog = rec.finish().unwrap();
    let t = facegpu::gpu::timing::time_program(g, &prog, 3, 2).unwrap();
    assert!(t.wall_s > 0.0 && t.gpu_s.is_none_or(|s| s >= 0.0));
    // 1 warm-up + 2 rounds x 3 reps = 7 runs; each run adds 1 + 2 + 1 to b: every pass ran
    let want = (7 * (1 + 2 + 1)) as f32;
    assert_eq!(g.read(&b).unwrap(), vec![want; 100]);
}

/// The in-step profile names every dispatch in program order, puts the copies between two
/// dispatches in their own entry, and runs the whole program each time (warm-up + `runs`), so
/// its effects are those of running it that often.
#[test]
fn profile_inside_a_step_lists_dispatches_and_copies() {
    use facegpu::ops::elementwise;
    let g = gpu();
    let a = g.upload(&[1.0f32; 100], &[100]).unwrap();
    let b = g.zeros(&[100]);
    let c = g.zeros(&[100]);
    let mut rec = g.record();
    elementwise::accumulate(&mut rec, 1.0, &a, &b).unwrap(); // b += a
    rec.copy(&b.buf, 0, &c.buf, 0, 400);
    rec.copy(&b.buf, 0, &c.buf, 0, 200);
    elementwise::accumulate(&mut rec, 2.0, &a, &c).unwrap(); // c += 2a
    elementwise::accumulate(&mut rec, 1.0, &a, &b).unwrap(); // b += a
    let prog = rec.finish().unwrap();
    let Some(p) = prog.profile_in_step(g, 3).unwrap() else {
        assert!(!g.has_timestamps(), "timestamps present but no profile");
        return;
    };
    let names: Vec<&str> = p.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names[0].contains("accumulate"), "{names:?}");
    assert_eq!(names[1], "copies: 2 ops, 0.0 MB", "{names:?}");
    assert!(
        names[2].contains("accumulate") && names[3].contains("accumulate"),
        "{names:?}"
    );
    assert!(p.iter().all(|(_, s)| s.is_finite() && *s >= 0.0), "{p:?}");
    // 1 warm-up + 3 runs, each adding 2 to b
    assert_eq!(g.read(&b).unwrap(), vec![8.0; 100]);
}

/// `facegpu bench kernels --filter TEXT` records and times only the cases whose name contains
/// TEXT (here one cheap kernel at batch 2), every case has its own name, the fused passes
/// training runs are among them, and a filter that matches nothing is an error that lists the
/// names.
#[test]
fn bench_kernels_times_only_the_filtered_cases() {
    let g = gpu();
    let r = facegpu::bench::bench_kernels(g, 2, Some("mse forward"), |_| {}).unwrap();
    assert_eq!(r.rows.len(), 1, "{:?}", r.rows);
    let row = &r.rows[0];
    assert!(row.name.starts_with("mse forward (2x16384"), "{}", row.name);
    assert!(
        row.ms_per_call > 0.0 && row.gflops > 0.0 && row.gbps > 0.0,
        "{row:?}"
    );
    assert!(r.adapter.contains(&g.describe()));

    let all = facegpu::bench::kernel_cases(g, 2, Some("matches no kernel")).unwrap();
    assert!(all.cases.is_empty());
    let mut names = all.offered.clone();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all.offered.len(), "duplicate bench names");
    for part in [
        "conv2d backward_input ae.enc1 fused with ae.enc0 backward_weight",
        "conv_transpose2d forward with the mse loss and gradient ae.dec1",
        "conv_transpose2d backward_fused (input and weight) ae.dec1",
        "adamw step (VAE",
        "linear backward_weight dec.out",
        "batch gather + noise",
    ] {
        assert!(
            all.offered.iter().any(|n| n.contains(part)),
            "no bench case named like {part:?}"
        );
    }
    let e = facegpu::bench::bench_kernels(g, 2, Some("matches no kernel"), |_| {}).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("\"matches no kernel\"") && msg.contains("mse forward"),
        "{msg}"
    );
}

/// No adapter whose name matches WGPU_ADAPTER_NAME: the error names the filter and where the
/// names are listed, exits 1 and does not panic.
#[test]
fn missing_adapter_errors_name_the_fix() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facegpu"))
        .args(["bench", "metrics", "--batch", "1"])
        .env("WGPU_ADAPTER_NAME", "no such adapter here")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("\"no such adapter here\"") && err.contains("facegpu info"),
        "{err}"
    );
}

/// A `--batch` whose largest tensor would not fit one storage-buffer binding is refused with
/// the largest batch that fits (past it wgpu failed inside a kernel's binding, or the process
/// aborted allocating the batch); that largest batch itself is accepted.
#[test]
fn batches_too_large_for_the_adapter_are_refused_with_the_limit() {
    use facegpu::model::registry;
    let g = gpu();
    for &name in registry::MODEL_NAMES {
        let spec = registry::model(name).unwrap();
        let (dims, _) = spec.largest_tensor().unwrap();
        let max = (g.max_tensor_bytes() / (dims.iter().product::<usize>() as u64 * 4)) as usize;
        assert!(max >= 1, "{name}: one image must fit");
        spec.check_batch(g, max).unwrap();
        let err = spec.check_batch(g, max + 1).unwrap_err().to_string();
        assert!(
            err.contains(&format!("--batch {} is too large", max + 1))
                && err.contains(&format!("use --batch {max} or less"))
                && err.contains(name),
            "{name}: {err}"
        );
    }
    // the seed AE's largest tensor is its first layer's output (8x64x64, twice the input);
    // the seed VAE's is the input itself
    let ae = registry::model("ae").unwrap().largest_tensor().unwrap();
    assert_eq!(ae, ([8, 64, 64], Some("encoder.0")));
    let vae = registry::model("vae").unwrap().largest_tensor().unwrap();
    assert_eq!(vae, ([1, 128, 128], None));
}

/// A dispatch past the adapter's workgroup limit is an error when it is recorded, naming the
/// kernel and the limit, not a wgpu validation failure at submit.
#[test]
fn dispatches_past_the_workgroup_limit_are_refused() {
    let max = gpu().limits.max_compute_workgroups_per_dimension;
    let x = upload(&[1.0], &[1]);
    let y = poisoned(&[1]);
    let mut rec = gpu().record();
    let err = rec
        .dispatch(
            "activation",
            "relu_forward",
            &[1u32, 0, 0, 0],
            &[(&x).into(), (&y).into()],
            [max + 1, 1, 1],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("activation:relu_forward") && err.contains(&format!("limit of {max}")),
        "{err}"
    );
}
