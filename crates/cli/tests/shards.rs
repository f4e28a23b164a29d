#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! `--shard I/N` and `mnemo merge`: shards merged give the unsharded run's files byte for
//! byte; bad shard sets are refused by name with exit code 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mnemo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mnemo"))
}

fn run(args: &[&str], paths: &[(&str, &Path)]) -> Output {
    let mut c = mnemo();
    c.args(args);
    for (flag, p) in paths {
        if !flag.is_empty() {
            c.arg(flag);
        }
        c.arg(p);
    }
    c.output().unwrap()
}

/// The counterfactual demo, small: 5 epochs.
fn cf_spec(dir: &Path) -> PathBuf {
    let out = mnemo().args(["spec", "--counterfactual"]).output().unwrap();
    assert!(out.status.success());
    let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    spec["training"]["duration"] = serde_json::json!({"epochs": 5});
    let path = dir.join("cf.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    path
}

/// Every file of `a` has a byte-identical twin in `b`, and neither has others.
fn assert_same_files(a: &Path, b: &Path) {
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let files = names(a);
    assert_eq!(files, names(b));
    for f in &files {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn counterfactual_shards_merge_into_the_unsharded_files_and_bad_sets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = cf_spec(d);
    let cf = ["counterfactual", "--quiet", "--models", "4"];
    let whole = d.join("whole");
    let o = run(&cf, &[("--spec", &spec), ("--out", &whole)]);
    assert!(o.status.success(), "{}", stderr(&o));

    let shards: Vec<PathBuf> = (1..=3).map(|i| d.join(format!("s{i}"))).collect();
    for (i, s) in shards.iter().enumerate() {
        let shard = format!("{}/3", i + 1);
        let mut args = cf.to_vec();
        args.extend(["--shard", &shard]);
        let o = run(&args, &[("--spec", &spec), ("--out", s)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(s.join("shard.json")).unwrap()).unwrap();
        assert_eq!(manifest["command"], "counterfactual");
        assert_eq!(manifest["total_jobs"], 4);
        // Round-robin: members 0 and 3, then 1, then 2.
        let jobs = [
            serde_json::json!([0, 3]),
            serde_json::json!([1]),
            serde_json::json!([2]),
        ];
        assert_eq!(manifest["jobs"], jobs[i]);
    }
    // In any order.
    let merged = d.join("merged");
    let o = run(
        &["merge"],
        &[
            ("", &shards[2]),
            ("", &shards[0]),
            ("", &shards[1]),
            ("--out", &merged),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("merged 4 members from 3 shards"),
        "{}",
        stderr(&o)
    );
    assert_same_files(&whole, &merged);
    let table = std::fs::read_to_string(merged.join("counterfactual.csv")).unwrap();
    assert_eq!(table.lines().count(), 50, "49 texts and the header");

    // A missing shard, by name; nothing written.
    let bad = d.join("bad");
    let o = run(
        &["merge"],
        &[("", &shards[0]), ("", &shards[2]), ("--out", &bad)],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("error: merge: shard 2/3 is missing"),
        "{}",
        stderr(&o)
    );
    assert!(!bad.exists());
    // The same shard twice.
    let o = run(
        &["merge"],
        &[
            ("", &shards[0]),
            ("", &shards[1]),
            ("", &shards[0]),
            ("--out", &bad),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("shard 1/3 is given twice"),
        "{}",
        stderr(&o)
    );
    // A shard of another run: 2 models (shard 3/3 of them has no member to train).
    let other = d.join("other");
    let o = run(
        &[
            "counterfactual",
            "--quiet",
            "--models",
            "2",
            "--shard",
            "3/3",
        ],
        &[("--spec", &spec), ("--out", &other)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(
        &["merge"],
        &[
            ("", &shards[0]),
            ("", &shards[1]),
            ("", &other),
            ("--out", &bad),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("shard 3/3 (") && e.contains("is from another spec or other options"),
        "{e}"
    );
    // A folder that is no shard.
    let o = run(&["merge"], &[("", &whole), ("--out", &bad)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is not a shard folder"),
        "{}",
        stderr(&o)
    );
    // A spec edited after the shard ran.
    let edited = d.join("edited");
    std::fs::create_dir(&edited).unwrap();
    for f in ["shard.json", "jobs.cbor", "options.json"] {
        std::fs::copy(shards[0].join(f), edited.join(f)).unwrap();
    }
    let text = std::fs::read_to_string(shards[0].join("spec.json")).unwrap();
    std::fs::write(
        edited.join("spec.json"),
        text.replace("\"seed\": ", "\"seed\": 1"),
    )
    .unwrap();
    let o = run(
        &["merge"],
        &[
            ("", &edited),
            ("", &shards[1]),
            ("", &shards[2]),
            ("--out", &bad),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("was changed after the shard ran"),
        "{}",
        stderr(&o)
    );
    assert!(!bad.exists());

    // Bad --shard values: exit 2 naming the value, before any work.
    for v in ["0/3", "4/3", "two", "1/0"] {
        let o = run(
            &["counterfactual", "--quiet", "--shard", v],
            &[("--spec", &spec), ("--out", &bad)],
        );
        assert_eq!(o.status.code(), Some(2), "{v}");
        assert!(
            stderr(&o).contains(&format!("`{v}` is not I/N")),
            "{}",
            stderr(&o)
        );
    }
    assert!(!bad.exists());
}

#[test]
fn slurm_writes_the_array_merge_and_submit_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let spec = cf_spec(dir.path());
    let out = dir.path().join("slurm");
    let o = run(
        &[
            "slurm",
            "--command",
            "counterfactual",
            "--shards",
            "4",
            "--time",
            "0:10:00",
        ],
        &[("--spec", &spec), ("--out", &out)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let abs = std::fs::canonicalize(&out).unwrap();
    assert!(
        stdout.contains(&format!("bash {}/submit.sh", abs.display())),
        "{stdout}"
    );
    let array = std::fs::read_to_string(out.join("array.sbatch")).unwrap();
    assert!(array.contains("#SBATCH --array=1-4\n"), "{array}");
    assert!(array.contains("#SBATCH --time=0:10:00\n"), "{array}");
    assert!(array.contains(env!("CARGO_BIN_EXE_mnemo")), "{array}");
    assert!(out.join("spec.json").is_file() && out.join("merge.sbatch").is_file());
    // A command without shards is refused.
    let o = run(
        &["slurm", "--command", "train", "--shards", "4"],
        &[("--spec", &spec), ("--out", &dir.path().join("x"))],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--command train: not a command that takes --shard"));
}
