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
    for flag in ["--example", "--tinymem", "--softprompt"] {
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
    for cmd in ["train", "spec", "bench", "extract", "softprompt"] {
        assert!(text.contains(cmd), "{text}");
    }
}

fn fixture(name: &str) -> std::path::PathBuf {
    // Resolved at run time: the target directory is shared between clones, so a path
    // baked in at compile time may name another checkout.
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../../tests/fixtures/did")
        .join(name)
}

#[test]
fn did_reproduces_the_differences_reference_from_a_panel_csv() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("did");
    let res = mnemo()
        .args(["did", "--draws", "200", "--panel"])
        .arg(fixture("panel_a.csv"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    for f in [
        "att_gt.csv",
        "event.csv",
        "instantaneous.csv",
        "residual.csv",
        "simple.csv",
        "result.json",
        "profile.svg",
        "persistent.svg",
        "instantaneous.svg",
        "residual.svg",
        "simple.svg",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let att = std::fs::read_to_string(out.join("att_gt.csv")).unwrap();
    let mut rows = att.lines();
    assert_eq!(
        rows.next(),
        Some("cohort,checkpoint,att,memorisation,se,lower,upper,significant")
    );
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("reference_a.json")).unwrap())
            .unwrap();
    let cells = reference["cells"].as_array().unwrap();
    let rows: Vec<Vec<String>> = rows
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), cells.len());
    for cell in cells {
        let (g, c) = (
            cell["cohort"].as_u64().unwrap(),
            cell["checkpoint"].as_u64().unwrap(),
        );
        let row = rows
            .iter()
            .find(|r| r[0] == g.to_string() && r[1] == c.to_string())
            .unwrap();
        let att: f64 = row[2].parse().unwrap();
        let mem: f64 = row[3].parse().unwrap();
        let se: f64 = row[4].parse().unwrap();
        assert!((att - cell["att"].as_f64().unwrap()).abs() < 1e-9);
        assert!((se - cell["se"].as_f64().unwrap()).abs() < 1e-9);
        assert_eq!(mem, -att);
    }
    let event = std::fs::read_to_string(out.join("event.csv")).unwrap();
    assert!(event.starts_with("event,att,memorisation,se,lower,upper\n"));
}

#[test]
fn a_malformed_panel_names_the_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("instance,cohort,checkpoint\n", "header"),
        (
            "instance,cohort,checkpoint,outcome\na,1,0,1.0\na,1,1,x\n",
            "line 3",
        ),
        (
            "instance,cohort,checkpoint,outcome\na,1,0,1.0\na,1,0,2.0\n",
            "line 3",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let panel = dir.path().join(format!("p{i}.csv"));
        std::fs::write(&panel, text).unwrap();
        let out = dir.path().join(format!("out{i}"));
        let res = mnemo()
            .args(["did", "--panel"])
            .arg(&panel)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(res.status.code(), Some(2));
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(err.contains(expected), "case {i}: {err}");
        assert!(!out.exists(), "nothing is written for a bad panel");
    }
}

#[test]
fn profile_trains_builds_the_panel_and_writes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let spec = mnemo().args(["spec", "--profile"]).output().unwrap();
    assert!(spec.status.success());
    let path = dir.path().join("profile.json");
    std::fs::write(&path, &spec.stdout).unwrap();
    let out = dir.path().join("run");
    let res = mnemo()
        .args(["profile", "--quiet", "--spec"])
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let panel = std::fs::read_to_string(out.join("panel.csv")).unwrap();
    let mut lines = panel.lines();
    assert_eq!(lines.next(), Some("instance,cohort,checkpoint,outcome"));
    // 8 cohorts of 40 plus 80 held out, at 9 checkpoints.
    assert_eq!(lines.count(), (8 * 40 + 80) * 9);
    for f in [
        "att_gt.csv",
        "event.csv",
        "profile.svg",
        "order.csv",
        "loss.csv",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // The panel written is the panel estimated: `mnemo did` on it gives the same cells.
    let again = dir.path().join("again");
    let res = mnemo()
        .args(["did", "--panel"])
        .arg(out.join("panel.csv"))
        .arg("--out")
        .arg(&again)
        .args(["--seed", "42"])
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let a = std::fs::read_to_string(out.join("att_gt.csv")).unwrap();
    let b = std::fs::read_to_string(again.join("att_gt.csv")).unwrap();
    let cols = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(
        cols(&a),
        cols(&b),
        "ATT and SE agree between profile and did"
    );
}

#[test]
fn counterfactual_writes_the_documented_tables_and_refuses_bad_settings() {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("cf.json");
    let out = mnemo().args(["spec", "--counterfactual"]).output().unwrap();
    assert!(out.status.success());
    let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Small and quick: 3 models, 5 epochs.
    spec["training"]["duration"] = serde_json::json!({"epochs": 5});
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let out_dir = dir.path().join("cf");
    let res = mnemo()
        .args(["counterfactual", "--quiet", "--models", "3", "--spec"])
        .arg(&spec_path)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(stderr.contains("3 models"), "{stderr}");
    let table = std::fs::read_to_string(out_dir.join("counterfactual.csv")).unwrap();
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap(),
        "instance,mem,in_mean,out_mean,n_in,n_out,se,text"
    );
    // 48 unique facts and the canary (8 copies, one row).
    assert_eq!(lines.clone().count(), 49);
    for line in lines {
        let f: Vec<&str> = line.splitn(8, ',').collect();
        let (n_in, n_out): (usize, usize) = (f[4].parse().unwrap(), f[5].parse().unwrap());
        assert_eq!(n_in + n_out, 3, "{line}");
        if n_in == 0 || n_out == 0 {
            assert_eq!(f[1], "undefined", "{line}");
        } else {
            let (mem, a, b): (f64, f64, f64) = (
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            );
            assert!((mem - (a - b)).abs() < 1e-12, "{line}");
        }
    }
    let infl = std::fs::read_to_string(out_dir.join("influence.csv")).unwrap();
    assert!(infl.starts_with("probe,instance,infl,in_mean,out_mean,n_in,n_out,se\n"));
    assert_eq!(
        infl.lines().count(),
        1 + 5 * 49,
        "5 held-out probes x 49 texts"
    );
    for svg in ["mem_histogram.svg", "in_out.svg"] {
        assert!(
            std::fs::read_to_string(out_dir.join(svg))
                .unwrap()
                .starts_with("<svg")
        );
    }

    // Too many models: a message naming the setting, exit 2, nothing written.
    let bad_dir = dir.path().join("bad");
    let res = mnemo()
        .args(["counterfactual", "--quiet", "--models", "65", "--spec"])
        .arg(&spec_path)
        .arg("--out")
        .arg(&bad_dir)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("counterfactual.models = 65"));
    assert!(!bad_dir.exists());
}

/// `instances.csv` of a run: id -> (split, token count).
fn instances(run: &Path) -> std::collections::HashMap<u32, (String, usize)> {
    let text = std::fs::read_to_string(run.join("instances.csv")).unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[0].parse().unwrap(),
                (rec[1].to_string(), rec[2].parse().unwrap()),
            )
        })
        .collect()
}

/// `(instance, prefix_len, suffix_len, exact, fraction)` rows of an extraction CSV,
/// after checking its header.
fn extraction_rows(path: &Path) -> Vec<(u32, usize, usize, bool, f64)> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.starts_with("instance,prefix_len,suffix_len,exact,fraction\n"),
        "{text}"
    );
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "{l}");
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn extract_trains_measures_both_splits_and_a_checkpoint_gives_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let spec = tiny_spec(dir.path());
    let out = dir.path().join("run");
    let start = std::time::Instant::now();
    let res = mnemo()
        .args(["extract", "--quiet", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{err}");
    eprintln!(
        "extract (train 6 steps + extract 20 instances): {:.2} s",
        start.elapsed().as_secs_f64()
    );
    // The training outputs, as `mnemo train` writes them, then the extraction files.
    for f in [
        "checkpoints/step_000006.safetensors",
        "order.csv",
        "instances.csv",
        "extraction.csv",
        "extraction_heldout.csv",
        "extraction.json",
        "extraction.svg",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let inst = instances(&out);
    let train = extraction_rows(&out.join("extraction.csv"));
    let held = extraction_rows(&out.join("extraction_heldout.csv"));
    let n_train = inst.values().filter(|(s, _)| s == "train").count();
    assert_eq!((train.len(), held.len()), (n_train, inst.len() - n_train));
    assert!(!held.is_empty());
    // Facts are ~50 tokens, shorter than the default 50 + 50: every split is scaled down
    // to the whole sequence, in proportion.
    for (rows, split) in [(&train, "train"), (&held, "heldout")] {
        for &(id, k, s, exact, fraction) in rows.iter() {
            let (ref sp, n) = inst[&id];
            assert_eq!(sp, split, "instance {id}");
            assert_eq!(k + s, n, "instance {id}: the split uses all {n} tokens");
            assert!(k == n / 2 && s == n - n / 2, "{k} {s} of {n}");
            assert!((0.0..=1.0).contains(&fraction));
            assert_eq!(exact, fraction == 1.0);
        }
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("extraction.json")).unwrap())
            .unwrap();
    assert_eq!(summary["prefix"], 50);
    assert_eq!(summary["suffix"], 50);
    assert_eq!(summary["scaled"], 20);
    assert_eq!(summary["skipped"], 0);
    assert_eq!(summary["train_rates"]["n"], n_train);
    let exact = summary["train_rates"]["exact_rate"].as_f64().unwrap();
    let count = train.iter().filter(|r| r.3).count();
    assert!((exact - count as f64 / n_train as f64).abs() < 1e-12);
    let frac = summary["heldout_rates"]["fractional_rate"]
        .as_f64()
        .unwrap();
    assert!((0.0..=1.0).contains(&frac));
    let used: usize = summary["lengths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["train"].as_u64().unwrap() + l["heldout"].as_u64().unwrap())
        .sum::<u64>() as usize;
    assert_eq!(used, 20);
    let svg = std::fs::read_to_string(out.join("extraction.svg")).unwrap();
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains(&format!("training (n = {n_train}): exact ")));
    assert!(err.contains("20 of 20 instances scaled down"), "{err}");
    assert!(err.contains("training instances (n = "), "{err}");

    // The saved final checkpoint measured again: the same rows.
    let again = dir.path().join("again");
    let res = mnemo()
        .args(["extract", "--spec"])
        .arg(&spec)
        .arg("--checkpoint")
        .arg(out.join("checkpoints/step_000006.safetensors"))
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(
        !again.join("order.csv").exists(),
        "no training with a checkpoint"
    );
    for f in [
        "extraction.csv",
        "extraction_heldout.csv",
        "extraction.json",
    ] {
        assert_eq!(
            std::fs::read_to_string(out.join(f)).unwrap(),
            std::fs::read_to_string(again.join(f)).unwrap(),
            "{f}"
        );
    }

    // --prefix and --suffix override the default; these fit every fact, nothing scaled.
    let short = dir.path().join("short");
    let res = mnemo()
        .args(["extract", "--prefix", "4", "--suffix", "6", "--spec"])
        .arg(&spec)
        .arg("--checkpoint")
        .arg(out.join("checkpoints/step_000006.safetensors"))
        .arg("--out")
        .arg(&short)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    for (_, k, s, _, _) in extraction_rows(&short.join("extraction.csv")) {
        assert_eq!((k, s), (4, 6));
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(short.join("extraction.json")).unwrap())
            .unwrap();
    assert_eq!(
        (summary["prefix"].clone(), summary["scaled"].clone()),
        (4.into(), 0.into())
    );
}

#[test]
fn extract_refuses_missing_damaged_and_foreign_checkpoints_and_bad_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let spec = tiny_spec(dir.path());
    let run = dir.path().join("run");
    let res = mnemo()
        .args(["train", "--quiet", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(res.status.success());
    let ck = run.join("checkpoints/step_000006.safetensors");
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a checkpoint").unwrap();
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    let mut narrow = base.clone();
    narrow["model"]["d_model"] = 32.into();
    let narrow_path = dir.path().join("narrow.json");
    std::fs::write(&narrow_path, narrow.to_string()).unwrap();
    let mut other = base.clone();
    other["data"]["source"] = serde_json::json!({
        "kind": "text", "text": "abc\nbca\ncab\nacb", "split": { "mode": "lines" }
    });
    let other_path = dir.path().join("other.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    let missing = dir.path().join("missing.safetensors");
    let cases: Vec<(std::path::PathBuf, Vec<String>, &str)> = vec![
        (
            spec.clone(),
            vec!["--checkpoint".into(), missing.display().to_string()],
            "missing.safetensors",
        ),
        (
            spec.clone(),
            vec!["--checkpoint".into(), garbage.display().to_string()],
            "not a readable safetensors file",
        ),
        (
            narrow_path,
            vec!["--checkpoint".into(), ck.display().to_string()],
            "does not fit the spec: the checkpoint's model (2 layer(s), d_model 64",
        ),
        (
            other_path,
            vec!["--checkpoint".into(), ck.display().to_string()],
            "does not fit the spec: the checkpoint's vocabulary",
        ),
        (
            spec.clone(),
            vec!["--prefix".into(), "0".into()],
            "extraction.prefix = 0 is outside the allowed range 1..=256",
        ),
        (
            spec.clone(),
            vec![
                "--checkpoint".into(),
                ck.display().to_string(),
                "--suffix".into(),
                "257".into(),
            ],
            "extraction.suffix = 257 is outside the allowed range 1..=256",
        ),
    ];
    for (i, (spec, extra, expected)) in cases.into_iter().enumerate() {
        let out = dir.path().join(format!("out{i}"));
        let res = mnemo()
            .args(["extract", "--quiet", "--spec"])
            .arg(&spec)
            .args(&extra)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "case {i}: {err}");
        assert!(err.contains(expected), "case {i}: {err}");
        assert!(!err.contains("panicked"), "case {i}: {err}");
        // Refused before anything was trained or written.
        assert!(!out.exists(), "case {i}: nothing is written");
    }
}

#[test]
fn link_encodes_decodes_and_runs_and_refuses_damaged_links() {
    let dir = tempfile::tempdir().unwrap();
    let spec = tiny_spec(dir.path());
    let out = mnemo()
        .args([
            "link",
            "--view",
            "train",
            "--base",
            "https://example.org/mnemo/",
            "--spec",
        ])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(url.starts_with("https://example.org/mnemo/#v1."), "{url}");
    // Decoding gives back the spec, normalised.
    let out = mnemo().args(["link", "--decode", &url]).output().unwrap();
    assert!(out.status.success());
    let decoded: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    assert_eq!(decoded["model"], original["model"]);
    assert_eq!(
        decoded["training"]["duration"],
        original["training"]["duration"]
    );
    // Running the link trains the spec.
    let run_dir = dir.path().join("run");
    let res = mnemo()
        .args(["run", "--quiet", "--link", &url, "--out"])
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(run_dir.join("loss.csv"))
            .unwrap()
            .lines()
            .count(),
        1 + 6
    );
    // Damaged links: a message and exit 2, never a panic.
    for bad in [
        "#v1.%%%",
        "https://x/#v7.abc",
        "#nothing",
        &url[..url.len() - 9],
    ] {
        let res = mnemo().args(["link", "--decode", bad]).output().unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{bad}: {err}");
        assert!(err.starts_with("error: link: "), "{bad}: {err}");
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn bench_export_init_writes_the_initial_state_a_reference_needs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("init");
    let res = mnemo()
        .args([
            "bench",
            "export-init",
            "--steps",
            "1",
            "--check-steps",
            "2",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    // The weights are the step-0 checkpoint of the benchmark model.
    let bytes = std::fs::read(out.join("init.safetensors")).unwrap();
    let ck = mnemo_core::Checkpoint::from_safetensors(&bytes).unwrap();
    assert_eq!(ck.step, 0);
    assert_eq!(
        (ck.config.n_layers, ck.config.d_model, ck.config.n_heads),
        (2, 128, 4)
    );
    assert_eq!(ck.config.context, 150);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("bench.json")).unwrap()).unwrap();
    assert_eq!(doc["batch_size"], 32);
    assert_eq!(doc["total_steps"], 2, "one warm-up step and one timed");
    assert_eq!(doc["order"].as_array().unwrap().len(), 2);
    assert_eq!(doc["lr"].as_array().unwrap().len(), 2);
    assert_eq!(doc["instances"].as_array().unwrap().len(), 256);
    // The first batch is the first step's instances, shifted by one token, all scored.
    let first = &doc["first_batch"];
    assert_eq!(first["n_tokens"], 32 * 150);
    let id = doc["order"][0][0].as_u64().unwrap() as usize;
    let tokens = doc["instances"][id].as_array().unwrap();
    assert_eq!(tokens.len(), 151);
    assert_eq!(first["inputs"][0].as_array().unwrap()[..], tokens[..150]);
    assert_eq!(first["targets"][0].as_array().unwrap()[..], tokens[1..]);
    let losses = doc["mnemo_losses"].as_array().unwrap();
    assert_eq!(losses.len(), 2);
    // Near ln(vocab) from the small initial weights.
    let l0 = losses[0].as_f64().unwrap();
    let vocab = doc["vocab"].as_f64().unwrap();
    assert!((l0 - vocab.ln()).abs() < 0.2, "{l0} vs ln {vocab}");
    assert_eq!(
        doc["mnemo_first_eval_surprisal"].as_array().unwrap().len(),
        32
    );
    let text = std::fs::read_to_string(out.join("text.txt")).unwrap();
    assert_eq!(text.chars().count(), 149 * 256);
}

#[test]
fn bench_train_json_reports_training_evaluation_and_memory() {
    let res = mnemo()
        .args([
            "bench",
            "train",
            "--steps",
            "1",
            "--model",
            "demo",
            "--backend",
            "flex",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["model"], "demo");
    assert_eq!(row["backend"], "flex");
    assert_eq!(row["timed_steps"], 4);
    for key in [
        "train_tokens_per_s",
        "ms_per_step",
        "eval_sequences_per_s",
        "eval_tokens_per_s",
    ] {
        assert!(row[key].as_f64().unwrap() > 0.0, "{key}: {row}");
    }
    assert_eq!(row["eval_batch"], 8);
    if cfg!(target_os = "linux") {
        assert!(row["peak_rss_mib"].as_f64().unwrap() > 1.0);
    }
    if !cfg!(feature = "ndarray") {
        let res = mnemo()
            .args(["bench", "train", "--backend", "ndarray", "--json"])
            .output()
            .unwrap();
        assert!(!res.status.success());
        assert!(String::from_utf8_lossy(&res.stderr).contains("not compiled into this build"));
    }
}

/// The soft-prompt demo spec, shrunk: 16 facts, 20 training steps, 3 prompt steps.
fn softprompt_spec(dir: &Path) -> std::path::PathBuf {
    let out = mnemo().args(["spec", "--softprompt"]).output().unwrap();
    assert!(out.status.success());
    let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    spec["training"]["duration"] = serde_json::json!({ "steps": 20 });
    spec["data"]["source"]["instances"] = 16.into();
    spec["softprompt"]["steps"] = 3.into();
    spec["softprompt"]["batch_size"] = 4.into();
    let path = dir.join("softprompt.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    path
}

#[test]
fn softprompt_trains_then_writes_the_tables_and_charts_and_a_checkpoint_gives_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let spec = softprompt_spec(dir.path());
    let out = dir.path().join("run");
    let res = mnemo()
        .args(["softprompt", "--quiet", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{err}");
    for f in [
        "checkpoints/step_000020.safetensors",
        "order.csv",
        "softprompt.csv",
        "pairs.csv",
        "prompt_loss.csv",
        "softprompt.json",
        "softprompt.svg",
        "prompt_loss.svg",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // 16 facts, all trained on: 8 pairs train the prompts, 8 test them.
    let table = std::fs::read_to_string(out.join("softprompt.csv")).unwrap();
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0],
        ["method", "exact_rate", "fractional_rate", "relative_gain"]
    );
    assert_eq!(rows.len(), 4);
    let methods: Vec<&str> = rows[1..].iter().map(|r| r[0]).collect();
    assert_eq!(methods, ["none", "constant", "dynamic"]);
    assert_eq!(rows[1][3], "undefined", "no gain of no prompt over itself");
    let rate = |r: &[&str], i: usize| -> f64 { r[i].parse().unwrap() };
    let base_exact = rate(&rows[1], 1);
    for r in &rows[1..] {
        for i in [1, 2] {
            assert!((0.0..=1.0).contains(&rate(r, i)), "{r:?}");
        }
    }
    for r in &rows[2..] {
        if base_exact == 0.0 {
            assert_eq!(r[3], "undefined");
        } else {
            let gain: f64 = r[3].parse().unwrap();
            assert!((gain - (rate(r, 1) - base_exact) / base_exact).abs() < 1e-9);
        }
    }
    let pairs = std::fs::read_to_string(out.join("pairs.csv")).unwrap();
    let mut lines = pairs.lines();
    assert_eq!(lines.next(), Some("pair,method,exact,fraction"));
    let per_method: Vec<(String, bool, f64)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 4, "{l}");
            (
                f[1].to_string(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(per_method.len(), 3 * 8);
    for (_, exact, fraction) in &per_method {
        assert_eq!(*exact, *fraction == 1.0);
    }
    // The table's fractional rates are the token-weighted means of the pairs' fractions
    // (all suffixes have the same length here, 32 tokens).
    for r in &rows[1..] {
        let fr: Vec<f64> = per_method
            .iter()
            .filter(|p| p.0 == r[0])
            .map(|p| p.2)
            .collect();
        assert_eq!(fr.len(), 8);
        let mean = fr.iter().sum::<f64>() / 8.0;
        assert!((mean - rate(r, 2)).abs() < 1e-9, "{r:?}");
    }
    let losses = std::fs::read_to_string(out.join("prompt_loss.csv")).unwrap();
    let lines: Vec<&str> = losses.lines().collect();
    assert_eq!(lines[0], "method,step,loss");
    assert_eq!(lines.len(), 1 + 2 * 3);
    assert!(lines[1].starts_with("constant,1,") && lines[6].starts_with("dynamic,3,"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("softprompt.json")).unwrap())
            .unwrap();
    assert_eq!(summary["lengths"]["prefix"], 16);
    assert_eq!(summary["test_pairs"], 8);
    for svg in ["softprompt.svg", "prompt_loss.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(text.starts_with("<svg") && !text.contains("NaN"), "{svg}");
    }
    assert!(err.contains("8 training / 8 test pairs"), "{err}");

    // The saved checkpoint again: no training, the same tables.
    let again = dir.path().join("again");
    let res = mnemo()
        .args(["softprompt", "--quiet", "--spec"])
        .arg(&spec)
        .arg("--checkpoint")
        .arg(out.join("checkpoints/step_000020.safetensors"))
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(!again.join("order.csv").exists());
    for f in ["softprompt.csv", "pairs.csv", "prompt_loss.csv"] {
        assert_eq!(
            std::fs::read_to_string(out.join(f)).unwrap(),
            std::fs::read_to_string(again.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn softprompt_refuses_bad_settings_before_training_or_writing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = softprompt_spec(dir.path());
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    let variant = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = base.clone();
        edit(&mut v);
        let path = dir.path().join(name);
        std::fs::write(&path, v.to_string()).unwrap();
        path
    };
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a checkpoint").unwrap();
    let cases: Vec<(std::path::PathBuf, Vec<String>, &str)> = vec![
        (
            variant("len.json", &|v| v["softprompt"]["prompt_len"] = 0.into()),
            vec![],
            "softprompt.prompt_len = 0 is outside the allowed range 1..=128",
        ),
        (
            variant("steps.json", &|v| v["softprompt"]["steps"] = 0.into()),
            vec![],
            "softprompt.steps = 0 is outside the allowed range",
        ),
        (
            variant("lr.json", &|v| v["softprompt"]["embed_lr"] = 5.into()),
            vec![],
            "softprompt.embed_lr = 5 is outside the allowed range",
        ),
        (
            variant("unknown.json", &|v| v["softprompt"]["surprise"] = 1.into()),
            vec![],
            "unknown field `surprise`",
        ),
        (
            // Three copies of one text: a single pair, nothing to train and test with.
            variant("one.json", &|v| {
                v["data"]["source"] = serde_json::json!({
                    "kind": "text", "text": "same line\nsame line\nsame line",
                    "split": { "mode": "lines" }
                })
            }),
            vec![],
            "soft prompts need at least 2 distinct training instances",
        ),
        (
            spec.clone(),
            vec!["--checkpoint".into(), garbage.display().to_string()],
            "not a readable safetensors file",
        ),
    ];
    for (i, (spec, extra, expected)) in cases.into_iter().enumerate() {
        let out = dir.path().join(format!("out{i}"));
        let res = mnemo()
            .args(["softprompt", "--quiet", "--spec"])
            .arg(&spec)
            .args(&extra)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "case {i}: {err}");
        assert!(err.contains(expected), "case {i}: {err}");
        assert!(!err.contains("panicked"), "case {i}: {err}");
        assert!(!out.exists(), "case {i}: nothing is written");
    }
}

fn influence_spec(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> std::path::PathBuf {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/influence/tied.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    spec["influence"]["deletion_k"] = serde_json::json!([1, 2]);
    spec["influence"]["deletion_tests"] = 2.into();
    edit(&mut spec);
    let path = dir.join("influence.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    path
}

#[test]
fn influence_writes_every_table_and_refuses_bad_settings_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let spec = influence_spec(dir.path(), |_| {});
    let out = dir.path().join("inf");
    let res = mnemo()
        .args(["influence", "--quiet", "--spec"])
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
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    let first = |f: &str| read(f).lines().next().unwrap().to_string();
    assert_eq!(first("instances.csv"), "instance,split,tokens,text");
    assert_eq!(first("checkpoints.csv"), "step,learning_rate,file");
    assert_eq!(first("influence.csv"), "test,train,method,score");
    assert_eq!(first("tokens.csv"), "test,train,token,score");
    assert_eq!(
        first("deletion.csv"),
        "method,k,draw,test,loss_before,loss_after"
    );
    // 4 tests x 13 training texts x 4 methods.
    assert_eq!(read("influence.csv").lines().count(), 1 + 4 * 13 * 4);
    for m in ["tracin", "tracin_last", "tracin_we", "tracin_we_topk"] {
        assert!(read("influence.csv").contains(&format!(",{m},")));
    }
    // 2 tests x 2 k x (4 methods + 3 random draws).
    assert_eq!(read("deletion.csv").lines().count(), 1 + 2 * 2 * 7);
    let ck = read("checkpoints.csv");
    let files: Vec<&str> = ck
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    assert_eq!(files.len(), 2);
    for f in files {
        assert!(out.join(f).exists(), "{f}");
    }
    // BOS first in the token ids: every text starts with the same id.
    let inst = read("instances.csv");
    let mut r = csv::Reader::from_reader(inst.as_bytes());
    let firsts: std::collections::BTreeSet<String> = r
        .records()
        .map(|rec| rec.unwrap()[2].split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(firsts.len(), 1, "{firsts:?}");
    let json: serde_json::Value = serde_json::from_str(&read("influence.json")).unwrap();
    assert!(json["timings_s"]["gradient_pass"].as_f64().unwrap() > 0.0);
    assert_eq!(json["deletion"].as_array().unwrap().len(), 5 * 2);
    for svg in ["agreement.svg", "deletion.svg"] {
        assert!(read(svg).starts_with("<svg"), "{svg}");
    }
    assert!(read("agreement.svg").contains("TracIn-WE-TopK"));

    // Bad settings: exit code 2, nothing written.
    for (i, edit) in [
        serde_json::json!({ "tests": [999] }),
        serde_json::json!({ "deletion_k": [13] }),
        serde_json::json!({ "checkpoints": [10_000] }),
        serde_json::json!({ "tests": [], "heldout_tests": 0 }),
    ]
    .into_iter()
    .enumerate()
    {
        let spec = influence_spec(dir.path(), |s| {
            for (k, v) in edit.as_object().unwrap() {
                s["influence"][k] = v.clone();
            }
        });
        let bad = dir.path().join(format!("bad{i}"));
        let res = mnemo()
            .args(["influence", "--quiet", "--spec"])
            .arg(&spec)
            .arg("--out")
            .arg(&bad)
            .output()
            .unwrap();
        assert_eq!(res.status.code(), Some(2), "{edit}");
        assert!(!bad.exists(), "{edit}: nothing may be written");
    }
    let res = mnemo().args(["spec", "--influence"]).output().unwrap();
    let demo: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert!(demo["influence"]["deletion_k"].is_array());
}

/// A small TinyMem spec (the generators unchanged, tiny counts and model) trained for
/// one epoch, for `mnemo mitigate`'s plumbing.
fn tiny_tinymem(dir: &std::path::Path, backdoor: bool) -> (std::path::PathBuf, std::path::PathBuf) {
    let flag = if backdoor {
        "--tinymem-backdoor"
    } else {
        "--tinymem-noise"
    };
    let out = mnemo()
        .args(["spec", flag, "--epochs", "1", "--layers", "1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let src = &mut spec["data"]["source"];
    src["main_sequences"] = 200.into();
    src["aux_sequences"] = 20.into();
    src["test_sequences"] = 10.into();
    if !backdoor {
        src["noised_sequences"] = 10.into();
    }
    spec["model"]["d_model"] = 32.into();
    spec["training"]["batch_size"] = 64.into();
    let path = dir.join(if backdoor { "bd.json" } else { "noise.json" });
    std::fs::write(&path, spec.to_string()).unwrap();
    let run = dir.join(if backdoor { "bd" } else { "noise" });
    let res = mnemo()
        .args(["train", "--quiet", "--spec"])
        .arg(&path)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let mut cks: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cks.sort();
    (path, cks.pop().unwrap())
}

#[test]
fn mitigate_writes_its_files_and_refuses_bad_input_before_work() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, ck) = tiny_tinymem(dir.path(), false);
    let out = dir.path().join("m");
    let bad: [&[&str]; 4] = [
        &["--methods", "forget-all"],
        &["--methods", "durable", "--ratios", "0"],
        &["--methods", "durable", "--ratios", "1.5"],
        &["--methods", "durable", "--ratios", "x"],
    ];
    for args in bad {
        let res = mnemo()
            .args(["mitigate", "--spec"])
            .arg(&spec)
            .arg("--checkpoint")
            .arg(&ck)
            .args(args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(res.status.code(), Some(2), "{args:?}");
        assert!(!out.exists(), "no work before the input is checked");
    }
    // A checkpoint that does not fit the spec (another width).
    let mut other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    other["model"]["d_model"] = 64.into();
    let other_path = dir.path().join("other.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    let res = mnemo()
        .args(["mitigate", "--spec"])
        .arg(&other_path)
        .arg("--checkpoint")
        .arg(&ck)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("does not fit"));
    // A built-in name that does not exist.
    let res = mnemo()
        .args(["mitigate", "--builtin", "nope", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));

    let res = mnemo()
        .args(["mitigate", "--quiet", "--spec"])
        .arg(&spec)
        .arg("--checkpoint")
        .arg(&ck)
        .args([
            "--methods",
            "durable,balanced-subnet",
            "--ratios",
            "0.01,0.05",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let csv = std::fs::read_to_string(out.join("mitigation.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "method,kind,setting,memorised_before,memorised_after,clean_after,accuracy_before,accuracy_after,perplexity_after,seconds"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 4, "two methods at two ratios");
    assert!(rows[0].starts_with("durable,weight,ratio=0.01,"));
    assert!(rows[3].starts_with("balanced-subnet,weight,ratio=0.05 "));
    let seqs = std::fs::read_to_string(out.join("sequences.csv")).unwrap();
    assert!(seqs.starts_with("sequence,method,memorised_before,memorised_after"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("mitigation.json")).unwrap())
            .unwrap();
    assert_eq!(json["data"], "noise");
    assert_eq!(json["results"].as_array().unwrap().len(), 4);
    for svg in [
        "tradeoff.svg",
        "memorised.svg",
        "accuracy.svg",
        "perplexity.svg",
        "seconds.svg",
    ] {
        assert!(
            std::fs::read_to_string(out.join(svg))
                .unwrap()
                .starts_with("<svg")
        );
    }
}

#[test]
fn mitigate_runs_the_methods_a_spec_section_names() {
    let out = mnemo()
        .args(["spec", "--mitigation", "tinymem-backdoor-2l"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["mitigation"]["model"], "tinymem-backdoor-2l");
    let methods = printed["mitigation"]["methods"].as_array().unwrap();
    assert_eq!(
        methods.len(),
        17,
        "3 regularisers, 3 fine-tunes, 5 neuron- and 6 weight-level methods"
    );
    assert_eq!(methods[0]["regulariser"]["method"], "loss-truncation");
    assert_eq!(methods[16]["method"], "balanced-subnet");
    let res = mnemo()
        .args(["spec", "--mitigation", "nope"])
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));

    let dir = tempfile::tempdir().unwrap();
    let (spec, ck) = tiny_tinymem(dir.path(), true);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    let mut method = printed["mitigation"]["methods"][14].clone();
    assert_eq!(method["method"], "second-order");
    method["ratio"] = 0.002.into();
    v["mitigation"] = serde_json::json!({ "methods": [method], "retain": 8 });
    let with = dir.path().join("with.json");
    std::fs::write(&with, v.to_string()).unwrap();
    let out = dir.path().join("m");
    let res = mnemo()
        .args(["mitigate", "--quiet", "--spec"])
        .arg(&with)
        .arg("--checkpoint")
        .arg(&ck)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let csv = std::fs::read_to_string(out.join("mitigation.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{csv}");
    assert!(
        rows[0].starts_with("second-order,weight,ratio=0.002,"),
        "{csv}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("mitigation.json")).unwrap())
            .unwrap();
    assert_eq!(json["data"], "backdoor");
    assert_eq!(json["retain_set"], 8);
}

#[test]
fn lid_matches_the_skdim_fixture_and_refuses_bad_point_files() {
    let dir = tempfile::tempdir().unwrap();
    // The circle fixture's first two columns are the points; its last column is skdim's
    // MLE with k = 20.
    let fix = std::fs::read_to_string(fixture("../geometry/circle.csv")).unwrap();
    let mut pts = String::new();
    let mut want = Vec::new();
    for line in fix.lines() {
        let v: Vec<&str> = line.split(',').collect();
        pts.push_str(&format!("{},{}\n", v[0], v[1]));
        want.push(v[4].parse::<f64>().unwrap());
    }
    let points = dir.path().join("points.csv");
    std::fs::write(&points, &pts).unwrap();
    let out = dir.path().join("lid");
    let res = mnemo()
        .args(["lid", "--estimator", "mle", "--k", "20", "--points"])
        .arg(&points)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(String::from_utf8_lossy(&res.stdout).contains("300 points in 2 dimensions"));
    let csv = std::fs::read_to_string(out.join("lid.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), "point,lid");
    for (i, (line, w)) in lines.zip(&want).enumerate() {
        let (p, v) = line.split_once(',').unwrap();
        assert_eq!(p, i.to_string());
        let v: f64 = v.parse().unwrap();
        assert!((v - w).abs() < 1e-9 * w.max(1.0), "point {i}: {v} vs {w}");
    }
    let lpca = mnemo()
        .args(["lid", "--estimator", "lpca", "--k", "20", "--points"])
        .arg(&points)
        .arg("--out")
        .arg(dir.path().join("lpca"))
        .output()
        .unwrap();
    assert!(lpca.status.success());

    for (name, text, needle) in [
        ("ragged.csv", "0,1\n1,2\n3\n", "line 3"),
        ("word.csv", "0,1\n1,x\n", "line 2"),
        ("few.csv", "0,1\n1,2\n2,3\n", "needs at least 21"),
        ("empty.csv", "\n", "no points"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let res = mnemo()
            .args(["lid", "--estimator", "mle", "--points"])
            .arg(&path)
            .arg("--out")
            .arg(dir.path().join("bad"))
            .output()
            .unwrap();
        assert_eq!(res.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(err.contains(needle), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    let wide = dir.path().join("wide.csv");
    std::fs::write(&wide, vec!["1"; 300].join(",") + "\n").unwrap();
    let res = mnemo()
        .args(["lid", "--estimator", "lpca", "--points"])
        .arg(&wide)
        .arg("--out")
        .arg(dir.path().join("bad"))
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("more than the limit"));
    assert!(
        !dir.path().join("bad").exists(),
        "nothing written on bad input"
    );
}

#[test]
fn geometry_trains_and_writes_the_documented_tables_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    let res = mnemo().args(["spec", "--geometry"]).output().unwrap();
    assert!(res.status.success());
    let mut spec: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
    assert_eq!(spec["geometry"]["data"]["manifold"], "lollipop");
    // A short run on the sphere (3-D: three projections).
    spec["geometry"]["data"]["manifold"] = "sphere".into();
    spec["geometry"]["data"]["points"] = 60.into();
    spec["geometry"]["training"]["steps"] = 30.into();
    spec["geometry"]["samples"] = 16.into();
    spec["geometry"]["sample_steps"] = 10.into();
    spec["geometry"]["curve_points"] = 3.into();
    let path = dir.path().join("spec.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    let out = dir.path().join("geo");
    let res = mnemo()
        .args(["geometry", "--quiet", "--spec"])
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(stdout.contains("trained in"), "{stdout}");
    let n_train = 60 + 1 + 19; // points, one isolated, one point duplicated 20 times
    let training = std::fs::read_to_string(out.join("training.csv")).unwrap();
    let mut lines = training.lines();
    assert_eq!(
        lines.next().unwrap(),
        "point,x0,x1,x2,true_lid,lpca,mle,flipd,normal_bundle,class"
    );
    assert_eq!(lines.count(), n_train);
    let samples = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    assert!(samples.starts_with("sample,x0,x1,x2,flipd,copy_of\n"));
    assert_eq!(samples.lines().count(), 17);
    let curve = std::fs::read_to_string(out.join("flipd_curve.csv")).unwrap();
    assert!(curve.starts_with("point,t0,flipd\n"));
    assert_eq!(curve.lines().count(), 1 + 3 * n_train);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("geometry.json")).unwrap()).unwrap();
    assert_eq!(json["result"]["dim"], 3);
    for svg in [
        "scatter_flipd_x0x1.svg",
        "scatter_flipd_x0x2.svg",
        "scatter_true_x1x2.svg",
        "flipd_curve.svg",
        "estimators.svg",
    ] {
        assert!(
            std::fs::read_to_string(out.join(svg))
                .unwrap()
                .starts_with("<svg"),
            "{svg}"
        );
    }
    // A bad geometry setting: exit 2 with the field named, nothing trained.
    spec["geometry"]["model"]["time_dim"] = 7.into();
    std::fs::write(&path, spec.to_string()).unwrap();
    let res = mnemo()
        .args(["geometry", "--quiet", "--spec"])
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("bad"))
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("time_dim"));
}

#[test]
fn mitigate_trains_a_new_model_per_regulariser() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, ck) = tiny_tinymem(dir.path(), false);
    let out = dir.path().join("r");
    let res = mnemo()
        .args(["mitigate", "--quiet", "--spec"])
        .arg(&spec)
        .arg("--checkpoint")
        .arg(&ck)
        .args([
            "--methods",
            "loss-truncation,spectral-norm,example-tied-dropout,finetune-both",
            "--ratios",
            "0.01,0.05",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let csv = std::fs::read_to_string(out.join("mitigation.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "a sweep does not multiply them: {csv}");
    assert!(
        rows[0].starts_with("loss-truncation,regulariser,c=0.4 window=10000,"),
        "{csv}"
    );
    assert!(
        rows[1].starts_with("spectral-norm,regulariser,lambda=0.01,"),
        "{csv}"
    );
    assert!(
        rows[2].starts_with("example-tied-dropout,regulariser,shared=0.2 tied=0.1,"),
        "{csv}"
    );
    assert!(
        rows[3].starts_with("finetune-both,fine-tune,epochs=5 lr=0.001,"),
        "{csv}"
    );
}

#[test]
fn a_reader_closing_the_pipe_early_is_no_panic() {
    // `mnemo spec --example | head -c 1`: the reader is gone before the spec is written.
    let mut child = mnemo()
        .args(["spec", "--mitigation", "tinymem-noise-2l"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn exposure_ranks_the_canaries_then_unlearns_them_and_ranks_again() {
    let dir = tempfile::tempdir().unwrap();
    let out = mnemo().args(["spec", "--canary"]).output().unwrap();
    assert!(out.status.success());
    let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    spec["data"]["canaries"] = serde_json::json!({
        "format": "my PIN is {d} {d}",
        "repetitions": [1, 16]
    });
    spec["training"]["duration"] = serde_json::json!({ "epochs": 4 });
    let path = dir.path().join("canary.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    // Refused before any training: a method that trains, an unknown one.
    for (method, message) in [
        ("finetune-clean", "finetune-clean trains the model"),
        ("nope", "nope"),
    ] {
        let res = mnemo()
            .args(["exposure", "--spec"])
            .arg(&path)
            .arg("--out")
            .arg(dir.path().join("refused"))
            .args(["--unlearn", method])
            .output()
            .unwrap();
        assert!(!res.status.success());
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(err.contains(message) && !err.contains("panicked"), "{err}");
        assert!(!dir.path().join("refused/exposure.csv").exists());
    }
    let run = dir.path().join("run");
    let res = mnemo()
        .args(["exposure", "--spec"])
        .arg(&path)
        .arg("--out")
        .arg(&run)
        .args(["--unlearn", "balanced-subnet", "--ratio", "0.2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{err}");
    assert!(
        err.contains("after unlearning with balanced-subnet (ratio 0.2)"),
        "{err}"
    );
    for name in ["exposure.csv", "exposure_after.csv"] {
        let csv = std::fs::read_to_string(run.join(name)).unwrap();
        let lines: Vec<&str> = csv.trim().lines().collect();
        assert_eq!(
            lines[0],
            "canary,repetitions,rank,candidates,exposure,method"
        );
        assert_eq!(lines.len(), 3, "{name}");
        for l in &lines[1..] {
            let e: f64 = l.split(',').nth(4).unwrap().parse().unwrap();
            // At most log2 |R|, 100 PINs.
            assert!((0.0..=100f64.log2() + 1e-9).contains(&e), "{name}: {l}");
        }
    }
    let svg = std::fs::read_to_string(run.join("exposure.svg")).unwrap();
    assert!(svg.contains("after balanced-subnet"));
    assert!(run.join("exposure_after.json").exists());
}
