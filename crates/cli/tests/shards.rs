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

/// A one-layer TinyMem noise model trained for one epoch on 200 texts: (spec, checkpoint).
fn tiny_noise_model(dir: &Path) -> (PathBuf, PathBuf) {
    let out = mnemo()
        .args(["spec", "--tinymem-noise", "--epochs", "1", "--layers", "1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let src = &mut spec["data"]["source"];
    src["main_sequences"] = 200.into();
    src["aux_sequences"] = 20.into();
    src["test_sequences"] = 10.into();
    src["noised_sequences"] = 10.into();
    spec["model"]["d_model"] = 32.into();
    spec["training"]["batch_size"] = 64.into();
    let path = dir.join("noise.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    let train = dir.join("train");
    let o = run(
        &["train", "--quiet"],
        &[("--spec", &path), ("--out", &train)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut cks: Vec<PathBuf> = std::fs::read_dir(train.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cks.sort();
    (path, cks.pop().unwrap())
}

/// `text` without the last column of each line (a CSV whose last column is `seconds`).
fn without_last_column(text: &str) -> String {
    text.lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `mitigation.json` without the rows' `seconds`, which are measured times.
fn json_without_seconds(path: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for r in v["results"].as_array_mut().unwrap() {
        assert!(r["seconds"].as_f64().unwrap() >= 0.0);
        r.as_object_mut().unwrap().remove("seconds");
    }
    v
}

/// Mitigate's shards merge into the unsharded files, byte for byte except for the measured
/// seconds: `mitigation.csv` is compared without its `seconds` column, `mitigation.json`
/// without the rows' `seconds`, and `seconds.svg` (the chart of the times) not at all.
#[test]
fn mitigate_shards_merge_into_the_unsharded_files_apart_from_the_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (spec, ck) = tiny_noise_model(d);
    let args = [
        "mitigate",
        "--quiet",
        "--methods",
        "durable,zero-out,balanced-subnet",
        "--ratios",
        "0.01,0.05",
    ];
    let whole = d.join("whole");
    let o = run(
        &args,
        &[("--spec", &spec), ("--checkpoint", &ck), ("--out", &whole)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let shards: Vec<PathBuf> = (1..=3).map(|i| d.join(format!("s{i}"))).collect();
    for (i, s) in shards.iter().enumerate() {
        let shard = format!("{}/3", i + 1);
        let mut a = args.to_vec();
        a.extend(["--shard", &shard]);
        let o = run(
            &a,
            &[("--spec", &spec), ("--checkpoint", &ck), ("--out", s)],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(s.join("shard.json")).unwrap()).unwrap();
        assert_eq!(manifest["command"], "mitigate");
        assert_eq!(manifest["total_jobs"], 6, "three methods at two ratios");
        assert_eq!(manifest["jobs"], serde_json::json!([i, i + 3]));
    }
    let merged = d.join("merged");
    let o = run(
        &["merge"],
        &[
            ("", &shards[1]),
            ("", &shards[2]),
            ("", &shards[0]),
            ("--out", &merged),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("merged 6 runs from 3 shards"),
        "{}",
        stderr(&o)
    );
    let names = |p: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&whole), names(&merged));
    for f in names(&whole) {
        let (a, b) = (whole.join(&f), merged.join(&f));
        match f.as_str() {
            "seconds.svg" => {}
            "mitigation.csv" => {
                let (ta, tb) = (
                    std::fs::read_to_string(&a).unwrap(),
                    std::fs::read_to_string(&b).unwrap(),
                );
                assert_eq!(ta.lines().count(), 7, "header and six rows");
                assert!(ta.lines().next().unwrap().ends_with(",seconds"));
                assert_eq!(without_last_column(&ta), without_last_column(&tb));
            }
            "mitigation.json" => assert_eq!(json_without_seconds(&a), json_without_seconds(&b)),
            _ => assert!(
                std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
                "{f} differs"
            ),
        }
    }
    assert_eq!(
        json_without_seconds(&merged.join("mitigation.json"))["results"]
            .as_array()
            .unwrap()
            .len(),
        6
    );

    // A shard of another model (the same spec, another checkpoint) is refused by name.
    let other_ck = d.join("other.safetensors");
    let mut bytes = std::fs::read(&ck).unwrap();
    let low = bytes.len() - 4;
    bytes[low] ^= 1; // the lowest bit of the last f32 weight: still a valid checkpoint
    std::fs::write(&other_ck, bytes).unwrap();
    let other = d.join("other");
    let mut a = args.to_vec();
    a.extend(["--shard", "2/3"]);
    let o = run(
        &a,
        &[
            ("--spec", &spec),
            ("--checkpoint", &other_ck),
            ("--out", &other),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let bad = d.join("bad");
    let o = run(
        &["merge"],
        &[
            ("", &shards[0]),
            ("", &other),
            ("", &shards[2]),
            ("--out", &bad),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("shard 2/3 (") && e.contains("is from another spec or other options"),
        "{e}"
    );
    // A missing shard.
    let o = run(
        &["merge"],
        &[("", &shards[0]), ("", &shards[1]), ("--out", &bad)],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("shard 3/3 is missing"),
        "{}",
        stderr(&o)
    );
    assert!(!bad.exists());
    // Shards that disagree on the untouched model's measures.
    let forged = d.join("forged");
    std::fs::create_dir(&forged).unwrap();
    for f in std::fs::read_dir(&shards[2]).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), forged.join(f.file_name())).unwrap();
    }
    let mut summary = std::fs::read(forged.join("summary.cbor")).unwrap();
    let last = summary.len() - 1;
    summary[last] ^= 1;
    std::fs::write(forged.join("summary.cbor"), summary).unwrap();
    let o = run(
        &["merge"],
        &[
            ("", &shards[0]),
            ("", &shards[1]),
            ("", &forged),
            ("--out", &bad),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("summary.cbor differs from"),
        "{}",
        stderr(&o)
    );
    assert!(!bad.exists());
}

/// Influence's shards (each a share of the distinct case-deletion retrains) merge into
/// the unsharded files byte for byte, apart from `influence.json`'s `timings_s` (measured
/// seconds), which is compared without them, and the checkpoints, compared as weights.
#[test]
fn influence_shards_merge_into_the_unsharded_files_apart_from_the_timings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/influence/tied.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    spec["influence"]["deletion_k"] = serde_json::json!([1, 2]);
    spec["influence"]["deletion_tests"] = 2.into();
    let spec_path = d.join("influence.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let whole = d.join("whole");
    let o = run(
        &["influence", "--quiet"],
        &[("--spec", &spec_path), ("--out", &whole)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let shards: Vec<PathBuf> = (1..=3).map(|i| d.join(format!("s{i}"))).collect();
    let mut distinct = 0;
    for (i, s) in shards.iter().enumerate() {
        let shard = format!("{}/3", i + 1);
        let o = run(
            &["influence", "--quiet", "--shard", &shard],
            &[("--spec", &spec_path), ("--out", s)],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(s.join("shard.json")).unwrap()).unwrap();
        assert_eq!(manifest["command"], "influence");
        distinct = manifest["total_jobs"].as_u64().unwrap();
    }
    // 2 tests x 2 k x (4 methods + 3 random draws) = 28 jobs, fewer distinct retrains
    // (methods that remove the same texts), but more than one per shard.
    assert!((4..28).contains(&distinct), "{distinct}");
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
        stderr(&o).contains(&format!(
            "merged 28 deletion rows ({distinct} distinct retrains) from 3 shards"
        )),
        "{}",
        stderr(&o)
    );
    let names = |p: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&whole), names(&merged));
    let without_timings = |p: &Path| {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        assert!(v["timings_s"]["case_deletion"].as_f64().unwrap() > 0.0);
        v.as_object_mut().unwrap().remove("timings_s");
        v
    };
    for f in names(&whole) {
        let (a, b) = (whole.join(&f), merged.join(&f));
        if f == "influence.json" {
            assert_eq!(without_timings(&a), without_timings(&b));
        } else if f == "checkpoints" {
            // The same weights, step and shape; the bytes may differ in the order of the
            // safetensors metadata entries (a hash map's), as between two unsharded runs.
            assert_eq!(names(&a), names(&b));
            for ck in names(&a) {
                let read = |p: &Path| {
                    mnemo_core::Checkpoint::from_safetensors(&std::fs::read(p.join(&ck)).unwrap())
                        .unwrap()
                };
                assert!(read(&a) == read(&b), "{ck} differs");
            }
        } else {
            assert!(
                std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
                "{f} differs"
            );
        }
    }
    assert_eq!(
        std::fs::read_to_string(merged.join("deletion.csv"))
            .unwrap()
            .lines()
            .count(),
        1 + 28
    );
    // A shard of another spec (another seed) is refused by name; a missing one too.
    let mut other_spec = spec.clone();
    other_spec["seed"] = 12.into();
    let other_path = d.join("other.json");
    std::fs::write(&other_path, other_spec.to_string()).unwrap();
    let other = d.join("other");
    let o = run(
        &["influence", "--quiet", "--shard", "3/3"],
        &[("--spec", &other_path), ("--out", &other)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let bad = d.join("bad");
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
    let o = run(
        &["merge"],
        &[("", &shards[1]), ("", &shards[2]), ("--out", &bad)],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("shard 1/3 is missing"),
        "{}",
        stderr(&o)
    );
    assert!(!bad.exists());
}

/// Every file under `a` (recursively) has a byte-identical twin in `b`, and neither has
/// others; returns how many files.
fn assert_same_tree(a: &Path, b: &Path) -> usize {
    let mut entries: Vec<(String, bool)> = std::fs::read_dir(a)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.file_type().unwrap().is_dir(),
            )
        })
        .collect();
    entries.sort();
    let mut other: Vec<String> = std::fs::read_dir(b)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    other.sort();
    assert_eq!(
        entries.iter().map(|e| e.0.clone()).collect::<Vec<_>>(),
        other
    );
    let mut n = 0;
    for (name, dir) in entries {
        if dir {
            n += assert_same_tree(&a.join(&name), &b.join(&name));
        } else {
            assert!(
                std::fs::read(a.join(&name)).unwrap() == std::fs::read(b.join(&name)).unwrap(),
                "{name} differs between {} and {}",
                a.display(),
                b.display()
            );
            n += 1;
        }
    }
    n
}

/// The size sweep's shards (a share of the widths each) merge into the unsharded files,
/// byte for byte (no file holds a time).
#[test]
fn sizes_shards_merge_into_the_unsharded_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = mnemo().args(["spec", "--profile"]).output().unwrap();
    assert!(out.status.success());
    let spec = d.join("profile.json");
    std::fs::write(&spec, &out.stdout).unwrap();
    let args = ["sizes", "--quiet", "--widths", "32,48,64"];
    let whole = d.join("whole");
    let o = run(&args, &[("--spec", &spec), ("--out", &whole)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shards: Vec<PathBuf> = (1..=2).map(|i| d.join(format!("s{i}"))).collect();
    for (i, s) in shards.iter().enumerate() {
        let shard = format!("{}/2", i + 1);
        let mut a = args.to_vec();
        a.extend(["--shard", &shard]);
        let o = run(&a, &[("--spec", &spec), ("--out", s)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(s.join("shard.json")).unwrap()).unwrap();
        assert_eq!(manifest["command"], "sizes");
        assert_eq!(manifest["total_jobs"], 3);
    }
    let merged = d.join("merged");
    let o = run(
        &["merge"],
        &[("", &shards[1]), ("", &shards[0]), ("--out", &merged)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("merged 3 widths from 2 shards"),
        "{}",
        stderr(&o)
    );
    // 3 shared files and 11 per width.
    assert_eq!(assert_same_tree(&whole, &merged), 3 + 3 * 11);
    let csv = std::fs::read_to_string(merged.join("persistent.csv")).unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "d_model,event_time,memorisation,lower,upper"
    );
    for w in ["32", "48", "64"] {
        assert!(csv.lines().any(|l| l.starts_with(&format!("{w},"))), "{w}");
    }
    let svg = std::fs::read_to_string(merged.join("persistent.svg")).unwrap();
    assert!(
        svg.contains("d_model 48"),
        "the overlay's legend names each width"
    );
    // Shards of other widths are refused; bad widths before any work.
    let other = d.join("other");
    let o = run(
        &["sizes", "--quiet", "--widths", "32,48", "--shard", "2/2"],
        &[("--spec", &spec), ("--out", &other)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let bad = d.join("bad");
    let o = run(
        &["merge"],
        &[("", &shards[0]), ("", &other), ("--out", &bad)],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is from another spec or other options"),
        "{}",
        stderr(&o)
    );
    for (w, msg) in [
        ("16", "--widths 16: model.d_model = 16 is outside"),
        ("32,x", "--widths: \"x\" is not a whole number"),
        ("32,32", "--widths: 32 is given twice"),
    ] {
        let o = run(
            &["sizes", "--quiet", "--widths", w],
            &[("--spec", &spec), ("--out", &bad)],
        );
        assert_eq!(o.status.code(), Some(2), "{w}");
        assert!(stderr(&o).contains(msg), "{}", stderr(&o));
    }
    assert!(!bad.exists());
}

#[test]
fn slurm_takes_every_shardable_command() {
    let dir = tempfile::tempdir().unwrap();
    let spec = cf_spec(dir.path());
    for cmd in ["mitigate", "influence", "sizes"] {
        let out = dir.path().join(cmd);
        let o = run(
            &["slurm", "--command", cmd, "--shards", "3"],
            &[("--spec", &spec), ("--out", &out)],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let array = std::fs::read_to_string(out.join("array.sbatch")).unwrap();
        assert!(
            array.contains(&format!(
                " {cmd} --quiet --spec {}/spec.json --shard \"$SLURM_ARRAY_TASK_ID/3\"",
                std::fs::canonicalize(&out).unwrap().display()
            )),
            "{array}"
        );
    }
}
