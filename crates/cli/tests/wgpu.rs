#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! The CLI's wgpu backend against the CPU: `mnemo profile` (training, then evaluating
//! every panel instance at every checkpoint) on `--backend wgpu` and `--backend cpu`
//! gives the same training losses and the same evaluation outcomes within a tolerance.
//!
//! In CI the adapter is Mesa's software Vulkan driver (lavapipe, installed by
//! scripts/setup). Without any adapter the test says so and passes, unless
//! `MNEMO_REQUIRE_WGPU=1` (scripts/test sets it), when a missing adapter fails it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Largest difference allowed between a wgpu and a CPU training loss (nats/token).
/// Measured on lavapipe (Mesa 22.3, LLVM 15.0.6, Debian 12): at most 1.29e-5 over the
/// 6 steps.
const LOSS_TOLERANCE: f64 = 1e-4;
/// Largest difference allowed between a wgpu and a CPU panel outcome (mean surprisal in
/// bits/token of one instance at one checkpoint). Measured on lavapipe: at most 2.36e-5
/// over the 72 cells.
const OUTCOME_TOLERANCE: f64 = 1e-4;

fn mnemo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mnemo"))
}

/// The profile demo, shrunk: 60 facts (48 trained, 12 held out), batch 8, one epoch (6
/// steps), a checkpoint every 2 steps (3 cohorts), 4 instances a cohort and 6 held-out
/// ones in the panel, no bootstrap.
fn tiny_profile(dir: &Path) -> PathBuf {
    let out = mnemo().args(["spec", "--profile"]).output().unwrap();
    assert!(out.status.success());
    let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    spec["data"]["source"]["instances"] = 60.into();
    spec["training"]["batch_size"] = 8.into();
    spec["training"]["warmup_steps"] = 2.into();
    spec["training"]["checkpoint_every"] = 2.into();
    spec["profile"]["per_cohort"] = 4.into();
    spec["profile"]["heldout"] = 6.into();
    spec["profile"]["bootstrap"] = 0.into();
    let path = dir.join("spec.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    path
}

fn profile(spec: &Path, out: &Path, backend: &str) -> Output {
    mnemo()
        .args(["profile", "--quiet", "--backend", backend, "--spec"])
        .arg(spec)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// `step -> loss` from loss.csv.
fn losses(run: &Path) -> Vec<(u32, f64)> {
    let text = std::fs::read_to_string(run.join("loss.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("step,loss"));
    lines
        .map(|l| {
            let (s, v) = l.split_once(',').unwrap();
            (s.parse().unwrap(), v.parse().unwrap())
        })
        .collect()
}

/// `(instance, checkpoint) -> outcome` from panel.csv.
fn panel(run: &Path) -> HashMap<(String, String), f64> {
    let text = std::fs::read_to_string(run.join("panel.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("instance,cohort,checkpoint,outcome"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            ((f[0].to_string(), f[2].to_string()), f[3].parse().unwrap())
        })
        .collect()
}

fn device_of(run: &Path) -> String {
    let text = std::fs::read_to_string(run.join("result.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["device"].as_str().unwrap().to_string()
}

#[test]
fn wgpu_trains_and_evaluates_as_the_cpu_does() {
    let dir = tempfile::tempdir().unwrap();
    let spec = tiny_profile(dir.path());
    let gpu = dir.path().join("wgpu");
    let res = profile(&spec, &gpu, "wgpu");
    let stderr = String::from_utf8_lossy(&res.stderr);
    if !res.status.success() && stderr.contains("has no usable device") {
        assert!(
            std::env::var("MNEMO_REQUIRE_WGPU").as_deref() != Ok("1"),
            "MNEMO_REQUIRE_WGPU=1 but wgpu found no adapter (install mesa-vulkan-drivers): {stderr}"
        );
        eprintln!(
            "SKIPPED: no wgpu adapter on this machine ({})",
            stderr.trim()
        );
        return;
    }
    assert!(res.status.success(), "{stderr}");
    assert_eq!(res.status.code(), Some(0));
    let cpu = dir.path().join("cpu");
    let res = profile(&spec, &cpu, "cpu");
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );

    assert_eq!(device_of(&cpu), "cpu (flex)");
    let name = device_of(&gpu);
    assert!(name.starts_with("wgpu: "), "{name}");
    assert!(stderr.contains(&format!("device: {name}")), "{stderr}");

    // The same data order: the order is drawn from the seed, not the device.
    assert_eq!(
        std::fs::read_to_string(gpu.join("order.csv")).unwrap(),
        std::fs::read_to_string(cpu.join("order.csv")).unwrap()
    );
    let (lg, lc) = (losses(&gpu), losses(&cpu));
    assert_eq!(lg.len(), 6);
    assert_eq!(
        lg.iter().map(|l| l.0).collect::<Vec<_>>(),
        lc.iter().map(|l| l.0).collect::<Vec<_>>()
    );
    let loss_diff = lg
        .iter()
        .zip(&lc)
        .map(|(a, b)| (a.1 - b.1).abs())
        .fold(0.0, f64::max);
    let (pg, pc) = (panel(&gpu), panel(&cpu));
    // 3 cohorts of 4 plus 6 held out, at the checkpoints of steps 0, 2, 4 and 6.
    assert_eq!(pc.len(), (3 * 4 + 6) * 4);
    let mut keys: Vec<_> = pc.keys().collect();
    keys.sort();
    let gk = {
        let mut k: Vec<_> = pg.keys().collect();
        k.sort();
        k
    };
    assert_eq!(keys, gk);
    let outcome_diff = pc
        .iter()
        .map(|(k, v)| (pg[k] - v).abs())
        .fold(0.0, f64::max);
    eprintln!("{name}: largest loss difference {loss_diff:e}, outcome difference {outcome_diff:e}");
    assert!(loss_diff <= LOSS_TOLERANCE, "loss differs by {loss_diff}");
    assert!(
        outcome_diff <= OUTCOME_TOLERANCE,
        "outcome differs by {outcome_diff}"
    );
    // The training moved the model: losses differ from step to step on both.
    assert!((lc[0].1 - lc[5].1).abs() > 10.0 * LOSS_TOLERANCE);
}

#[test]
fn cuda_is_refused_clearly_when_not_compiled_in() {
    if cfg!(feature = "cuda") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = tiny_profile(dir.path());
    let res = mnemo()
        .args(["train", "--quiet", "--backend", "cuda", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&res.stderr).trim(),
        "error: backend cuda is not compiled into this build (build with --features cuda)"
    );
}
