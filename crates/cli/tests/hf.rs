#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! `mnemo export-hf`, `mnemo eval` and `mnemo profile --checkpoints`, end to end: the
//! profile demo is trained, every checkpoint is exported as a Hugging Face GPT-2 folder,
//! and the series is profiled from the folders with the run's own data order. The demo's
//! known effect (training on a fact makes it better predicted right away; nothing before)
//! must show in the profile of the imported series.

use std::path::{Path, PathBuf};
use std::process::Command;

fn mnemo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mnemo"))
}

fn ok(cmd: &mut Command) -> String {
    let res = cmd.output().unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    String::from_utf8_lossy(&res.stderr).into_owned()
}

fn fails(cmd: &mut Command) -> String {
    let res = cmd.output().unwrap();
    assert_eq!(res.status.code(), Some(2), "expected exit code 2");
    String::from_utf8_lossy(&res.stderr).into_owned()
}

/// The texts of instances.csv, in id order (one per line of the data file).
fn texts(run: &Path) -> Vec<String> {
    let mut r = csv::Reader::from_path(run.join("instances.csv")).unwrap();
    let mut rows: Vec<(u32, String)> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[0].parse().unwrap(), rec[3].to_string())
        })
        .collect();
    rows.sort();
    rows.into_iter().map(|(_, t)| t).collect()
}

fn logprobs(dir: &Path) -> Vec<(u32, usize, u32, f64)> {
    let text = std::fs::read_to_string(dir.join("logprobs.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("text,position,token,logprob"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn an_exported_checkpoint_series_gives_the_profile_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = mnemo().args(["spec", "--profile"]).output().unwrap();
    let spec_path = d.join("profile.json");
    std::fs::write(&spec_path, &spec.stdout).unwrap();
    let run = d.join("run");
    ok(mnemo()
        .args(["train", "--quiet", "--spec"])
        .arg(&spec_path)
        .arg("--out")
        .arg(&run));
    let mut folders: Vec<PathBuf> = Vec::new();
    for k in 0..=8 {
        let step = 24 * k;
        let out = d.join(format!("hf/step-{step}"));
        ok(mnemo()
            .args(["export-hf", "--checkpoint"])
            .arg(run.join(format!("checkpoints/step_{step:06}.safetensors")))
            .arg("--spec")
            .arg(&spec_path)
            .arg("--out")
            .arg(&out));
        for f in ["config.json", "model.safetensors", "tokenizer.json"] {
            assert!(out.join(f).exists(), "{f}");
        }
        folders.push(out);
    }
    let data = d.join("data.txt");
    std::fs::write(&data, texts(&run).join("\n") + "\n").unwrap();

    // Evaluation: the imported folder and the Mnemo checkpoint give the same
    // log-probabilities (Mnemo's own tokens end with EOS, the export's tokenizer adds
    // only BOS: the rows they share must agree).
    let last = folders.last().unwrap();
    ok(mnemo()
        .args(["eval", "--hf"])
        .arg(last)
        .arg("--texts")
        .arg(&data)
        .arg("--out")
        .arg(d.join("eval-hf")));
    ok(mnemo()
        .args(["eval", "--checkpoint"])
        .arg(run.join("checkpoints/step_000192.safetensors"))
        .arg("--spec")
        .arg(&spec_path)
        .arg("--texts")
        .arg(&data)
        .arg("--out")
        .arg(d.join("eval-mnemo")));
    let a = logprobs(&d.join("eval-hf"));
    let b = logprobs(&d.join("eval-mnemo"));
    let n_texts = texts(&run).len();
    assert_eq!(b.len(), a.len() + n_texts, "one EOS row more per text");
    let by_key: std::collections::HashMap<(u32, usize), (u32, f64)> =
        b.iter().map(|r| ((r.0, r.1), (r.2, r.3))).collect();
    for (t, p, tok, lp) in &a {
        let (tok2, lp2) = by_key[&(*t, *p)];
        assert_eq!(*tok, tok2);
        assert!(
            (lp - lp2).abs() < 1e-5,
            "text {t} position {p}: {lp} vs {lp2}"
        );
    }
    let surprisal = std::fs::read_to_string(d.join("eval-hf/surprisal.csv")).unwrap();
    assert_eq!(surprisal.lines().count(), n_texts + 1);

    // The profile of the imported series, with the run's own order.csv.
    let list = folders
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let out = d.join("series");
    let log = ok(mnemo()
        .args(["profile", "--checkpoints", &list, "--order"])
        .arg(run.join("order.csv"))
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out));
    assert!(log.contains("s each"), "{log}");
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    // Every trained fact (8 cohorts of 48) and every held-out one (96) is in the panel.
    assert_eq!(result["instances"], 480, "{}", result["instances"]);
    assert_eq!(result["never_trained"], 96);
    let event = result["event"].as_array().unwrap();
    let at = |e: i64| {
        event
            .iter()
            .find(|a| a["key"] == e)
            .map(|a| {
                (
                    a["memorisation"].as_f64().unwrap(),
                    a["significant"] == true,
                )
            })
            .unwrap()
    };
    let (inst, significant) = at(0);
    assert!(inst > 0.04 && significant, "instantaneous {inst}");
    for e in -3..0 {
        assert!(at(e).0.abs() < 0.03, "placebo e={e}: {}", at(e).0);
    }
    for f in ["profile.svg", "att_gt.csv", "panel.csv"] {
        assert!(out.join(f).exists(), "{f}");
    }

    // Bad input: a message, exit code 2, nothing written.
    let bad_order = d.join("bad.csv");
    std::fs::write(&bad_order, "id,when\n1,2\n").unwrap();
    let none = d.join("none");
    let msg = fails(
        mnemo()
            .args(["profile", "--checkpoints", &list, "--order"])
            .arg(&bad_order)
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&none),
    );
    assert!(
        msg.contains("line 1") && msg.contains("instance,step"),
        "{msg}"
    );
    std::fs::write(&bad_order, "instance,step\n100000,2\n").unwrap();
    let msg = fails(
        mnemo()
            .args(["profile", "--checkpoints", &list, "--order"])
            .arg(&bad_order)
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&none),
    );
    assert!(msg.contains("line 2") && msg.contains("100000"), "{msg}");
    let msg = fails(
        mnemo()
            .args(["profile", "--checkpoints"])
            .arg(format!("{},{}", d.join("nowhere/step-1").display(), list))
            .arg("--order")
            .arg(run.join("order.csv"))
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&none),
    );
    assert!(msg.contains("increase") || msg.contains("nowhere"), "{msg}");
    assert!(!none.exists());
    let msg = fails(
        mnemo()
            .args(["eval", "--hf"])
            .arg(&run)
            .arg("--texts")
            .arg(&data)
            .arg("--out")
            .arg(&none),
    );
    assert!(msg.contains("config.json"), "{msg}");
    assert!(!none.exists());

    // Extraction on the spec's texts with the imported model.
    let x = d.join("x");
    ok(mnemo()
        .args(["extract", "--quiet", "--spec"])
        .arg(&spec_path)
        .arg("--hf")
        .arg(last)
        .args(["--prefix", "4", "--suffix", "4", "--out"])
        .arg(&x));
    let rows = std::fs::read_to_string(x.join("extraction.csv")).unwrap();
    assert_eq!(rows.lines().count(), 384 + 1);
}

/// The mitigation table without its timing column.
fn mitigation_rows(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("mitigation.csv"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            f[..f.len() - 1].join(",")
        })
        .collect()
}

#[test]
fn mitigate_on_an_exported_tinymem_model_gives_the_checkpoints_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = mnemo()
        .args(["spec", "--tinymem-noise", "--epochs", "1", "--layers", "1"])
        .output()
        .unwrap();
    let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let src = &mut spec["data"]["source"];
    src["main_sequences"] = 200.into();
    src["aux_sequences"] = 20.into();
    src["test_sequences"] = 10.into();
    src["noised_sequences"] = 10.into();
    spec["model"]["d_model"] = 32.into();
    spec["training"]["batch_size"] = 64.into();
    let spec_path = d.join("tm.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let run = d.join("run");
    ok(mnemo()
        .args(["train", "--quiet", "--spec"])
        .arg(&spec_path)
        .arg("--out")
        .arg(&run));
    let mut cks: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cks.sort();
    let ck = cks.pop().unwrap();
    let hf = d.join("hf");
    ok(mnemo()
        .args(["export-hf", "--checkpoint"])
        .arg(&ck)
        .arg("--spec")
        .arg(&spec_path)
        .arg("--out")
        .arg(&hf));
    let methods = ["--methods", "zero-out,finetune-clean", "--ratios", "0.1"];
    let a = d.join("a");
    ok(mnemo()
        .args(["mitigate", "--quiet", "--spec"])
        .arg(&spec_path)
        .arg("--checkpoint")
        .arg(&ck)
        .args(methods)
        .arg("--out")
        .arg(&a));
    let b = d.join("b");
    ok(mnemo()
        .args(["mitigate", "--quiet", "--spec"])
        .arg(&spec_path)
        .arg("--hf")
        .arg(&hf)
        .args(methods)
        .arg("--out")
        .arg(&b));
    let rows = mitigation_rows(&a);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows[0].starts_with("method,kind,setting,memorised_before"));
    assert_eq!(rows, mitigation_rows(&b));
    // Methods that train a new model from the spec are refused with --hf, before work.
    let c = d.join("c");
    let msg = fails(
        mnemo()
            .args(["mitigate", "--spec"])
            .arg(&spec_path)
            .arg("--hf")
            .arg(&hf)
            .args(["--methods", "spectral-norm", "--out"])
            .arg(&c),
    );
    assert!(
        msg.contains("spectral-norm") && msg.contains("--hf"),
        "{msg}"
    );
    assert!(!c.exists());
}

#[test]
fn influence_scores_with_imported_checkpoints_and_skips_case_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/influence");
    let spec = fixtures.join("tied.json");
    let mut folders = Vec::new();
    for step in [8, 20] {
        let out = d.join(format!("step-{step}"));
        ok(mnemo()
            .args(["export-hf", "--checkpoint"])
            .arg(fixtures.join(format!("tied/checkpoints/step_{step:06}.safetensors")))
            .arg("--spec")
            .arg(&spec)
            .arg("--out")
            .arg(&out));
        folders.push(out.display().to_string());
    }
    let out = d.join("inf");
    ok(mnemo()
        .args(["influence", "--quiet", "--spec"])
        .arg(&spec)
        .args(["--hf", &folders.join(","), "--out"])
        .arg(&out));
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    assert_eq!(read("deletion.csv").lines().count(), 1, "header only");
    let rows: Vec<Vec<String>> = read("influence.csv")
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    let tests: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let methods: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[2].as_str()).collect();
    // Tests 12 and 0 plus two held-out ones; the four methods.
    assert_eq!(tests.len(), 4, "{tests:?}");
    assert!(tests.contains("12") && tests.contains("0"));
    assert_eq!(methods.len(), 4, "{methods:?}");
    let n_train = read("instances.csv")
        .lines()
        .filter(|l| l.split(',').nth(1) == Some("train"))
        .count();
    assert_eq!(rows.len(), 4 * 4 * n_train);
    // Test 12 is a text repeated as training texts 12, 13 and 14: the three copies are
    // its strongest proponents under TracIn, with one score (as in the fixture's
    // reference.csv, where they tie at the top too).
    let score = |train: &str| {
        rows.iter()
            .find(|r| r[0] == "12" && r[1] == train && r[2] == "tracin")
            .map(|r| r[3].parse::<f64>().unwrap())
            .unwrap()
    };
    assert_eq!(score("12"), score("13"));
    assert_eq!(score("12"), score("14"));
    let best = rows
        .iter()
        .filter(|r| r[0] == "12" && r[2] == "tracin")
        .max_by(|a, b| {
            a[3].parse::<f64>()
                .unwrap()
                .total_cmp(&b[3].parse::<f64>().unwrap())
        })
        .unwrap();
    assert_eq!(best[3].parse::<f64>().unwrap(), score("12"), "{best:?}");
}
