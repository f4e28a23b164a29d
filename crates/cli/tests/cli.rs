#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! The `mnemo` binary end to end: what it writes, and how it refuses bad input.

use std::path::Path;
use std::process::Command;

fn mnemo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mnemo"))
}

fn tiny_spec(dir: &Path) -> std::path::PathBuf {
    let out = mnemo().args(["spec", "--example"]).output().unwrap();
    assert!(out.status.success());
    let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    spec["training"]["duration"] = serde_json::json!({ "steps": 6 });
    spec["training"]["checkpoint_every"] = 3.into();
    spec["data"]["source"]["instances"] = 20.into();
    let path = dir.join("spec.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    path
}

#[test]
fn train_writes_checkpoints_order_losses_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    let spec = tiny_spec(dir.path());
    let out = dir.path().join("run");
    let res = mnemo()
        .args(["train", "--quiet", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let mut cks: Vec<String> = std::fs::read_dir(out.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    cks.sort();
    assert_eq!(
        cks,
        [
            "step_000000.safetensors",
            "step_000003.safetensors",
            "step_000006.safetensors"
        ]
    );
    let order = std::fs::read_to_string(out.join("order.csv")).unwrap();
    let mut lines = order.lines();
    assert_eq!(lines.next(), Some("step,instance_id"));
    // 6 steps of batch 8.
    assert_eq!(lines.clone().count(), 48);
    assert!(lines.next().unwrap().starts_with("1,"));
    let loss = std::fs::read_to_string(out.join("loss.csv")).unwrap();
    let rows: Vec<&str> = loss.lines().collect();
    assert_eq!(rows[0], "step,loss");
    assert_eq!(rows.len(), 7);
    let first: f32 = rows[1].split(',').nth(1).unwrap().parse().unwrap();
    assert!(first > 1.0 && first.is_finite());
    let svg = std::fs::read_to_string(out.join("loss.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Training loss"));
    // Held-out instances never appear in the order.
    let instances = std::fs::read_to_string(out.join("instances.csv")).unwrap();
    let held: Vec<String> = instances
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(1) == Some("heldout"))
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert!(!held.is_empty());
    for row in order.lines().skip(1) {
        let id = row.split(',').nth(1).unwrap();
        assert!(!held.iter().any(|h| h == id));
    }
}

#[test]
fn bad_specs_get_a_message_and_a_nonzero_exit_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("{ not json", "not valid JSON"),
        (r#"{"version": 99}"#, "version 99 is not supported"),
        ("", "not valid JSON"),
    ];
    for (text, expected) in cases {
        let path = dir.path().join("bad.json");
        std::fs::write(&path, text).unwrap();
        let res = mnemo()
            .args(["train", "--spec"])
            .arg(&path)
            .arg("--out")
            .arg(dir.path().join("o"))
            .output()
            .unwrap();
        assert_eq!(res.status.code(), Some(2));
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(err.contains(expected), "{err}");
        assert!(!err.contains("panicked"));
    }
    let mut spec: serde_json::Value =
        serde_json::from_slice(&mnemo().args(["spec", "--example"]).output().unwrap().stdout)
            .unwrap();
    spec["model"]["n_layers"] = 40.into();
    let path = dir.path().join("big.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    let res = mnemo()
        .args(["spec", "--check"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&res.stderr)
            .contains("model.n_layers = 40 is outside the allowed range 1..=8")
    );
    let res = mnemo()
        .args(["train", "--spec", "/nonexistent/spec.json", "--out", "x"])
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
}

#[test]
fn example_specs_are_valid_and_help_documents_commands() {
    for flag in ["--example", "--tinymem"] {
        let out = mnemo().args(["spec", flag]).output().unwrap();
        assert!(out.status.success());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        std::fs::write(&p, &out.stdout).unwrap();
        let check = mnemo().args(["spec", "--check"]).arg(&p).output().unwrap();
        assert!(check.status.success());
        assert_eq!(
            check.stdout, out.stdout,
            "normalising a normal spec changes nothing"
        );
    }
    let help = mnemo().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for cmd in ["train", "spec", "bench"] {
        assert!(text.contains(cmd), "{text}");
    }
}
