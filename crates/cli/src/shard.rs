//! Shards: a command's independent jobs (ensemble members, unlearning methods, deletion
//! retrains, model widths) spread over processes or machines with `--shard I/N`, and
//! `mnemo merge`, which puts shard folders back together into exactly the files an
//! unsharded run writes.
//!
//! Job `j` (0-based, in the order the unsharded run does them) belongs to shard
//! `j % N + 1` (round-robin, so shards get jobs of every kind and about as many each).
//! A shard folder holds `shard.json` (the [`Manifest`]), `spec.json` (the spec the jobs
//! ran with) and `jobs.cbor`: the job results as CBOR, which keeps every `f64` bit for
//! bit (JSON text would round some on the way back), so the merged tables are
//! byte-identical to an unsharded run's.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use mnemo_core::ExperimentSpec;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{CliError, io_err};

/// Version of the shard folder layout.
pub const FORMAT: u32 = 1;

/// Shard `index` of `count` (1 <= index <= count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    /// Shards in all.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not I/N with 1 <= I <= N (for example 2/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether job `j` (0-based) is this shard's.
    pub fn owns(&self, j: usize) -> bool {
        j % self.count + 1 == self.index
    }

    /// This shard's jobs among `total`, ascending.
    pub fn jobs(&self, total: usize) -> Vec<usize> {
        (0..total).filter(|&j| self.owns(j)).collect()
    }
}

/// `shard.json`: what a shard folder holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`FORMAT`]).
    pub format: u32,
    /// The command that wrote it (`counterfactual`, `mitigate`, `influence`, `sizes`).
    pub command: String,
    /// [`digest`] of the spec and the options that change results.
    pub digest: String,
    /// This shard's index (1-based).
    pub shard: usize,
    /// Shards in all.
    pub shards: usize,
    /// Jobs of the whole run.
    pub total_jobs: usize,
    /// This shard's jobs (0-based), ascending.
    pub jobs: Vec<usize>,
    /// The device its jobs ran on (`cpu (flex)`, `wgpu: ...`), as every JSON output names
    /// it; the merged files name the shards' devices.
    #[serde(default)]
    pub device: Option<String>,
}

/// SHA-256 (hex) of the command, the spec's JSON and the options that change results:
/// shards agree on it exactly when they are parts of one run.
pub fn digest(command: &str, spec: &ExperimentSpec, options: &serde_json::Value) -> String {
    let mut h = Sha256::new();
    h.update(command.as_bytes());
    h.update(b"\n");
    h.update(spec.to_json().as_bytes());
    h.update(b"\n");
    h.update(options.to_string().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Write a shard folder: the manifest, the spec and `results` (job index, result).
pub fn write<T: Serialize>(
    out: &Path,
    command: &str,
    spec: &ExperimentSpec,
    options: &serde_json::Value,
    shard: Shard,
    total_jobs: usize,
    results: &[(usize, T)],
) -> Result<(), CliError> {
    fs::create_dir_all(out).map_err(io_err(out))?;
    let manifest = Manifest {
        format: FORMAT,
        command: command.to_string(),
        digest: digest(command, spec, options),
        shard: shard.index,
        shards: shard.count,
        total_jobs,
        jobs: results.iter().map(|r| r.0).collect(),
        device: crate::device_name(),
    };
    let mut bytes = Vec::new();
    ciborium::into_writer(results, &mut bytes)
        .map_err(|e| CliError::Output(format!("encoding the job results: {e}")))?;
    let path = out.join("jobs.cbor");
    fs::write(&path, bytes).map_err(io_err(&path))?;
    let path = out.join("spec.json");
    fs::write(&path, spec.to_json()).map_err(io_err(&path))?;
    let path = out.join("options.json");
    fs::write(&path, options.to_string()).map_err(io_err(&path))?;
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| CliError::Output(format!("shard manifest: {e}")))?;
    // The manifest last: a folder with one is complete.
    let path = out.join("shard.json");
    fs::write(&path, text).map_err(io_err(&path))?;
    eprintln!(
        "shard {shard}: {} of {total_jobs} jobs; wrote {} (combine the shards with `mnemo merge`)",
        manifest.jobs.len(),
        out.display()
    );
    Ok(())
}

/// Write `value` as `name` (CBOR) into the shard folder `out`: results every shard
/// computes alike (the untouched model's measures, shared tables). Call it before
/// [`write`], which writes the manifest last; [`ShardSet::shared`] checks the shards
/// agree on it byte for byte.
pub fn write_shared<T: Serialize>(out: &Path, name: &str, value: &T) -> Result<(), CliError> {
    fs::create_dir_all(out).map_err(io_err(out))?;
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes)
        .map_err(|e| CliError::Output(format!("encoding {name}: {e}")))?;
    let path = out.join(name);
    fs::write(&path, bytes).map_err(io_err(&path))
}

/// Why shard folders cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// No `shard.json`.
    #[error("{0} is not a shard folder (no shard.json; is the shard's job finished?)")]
    NotAShard(PathBuf),
    /// Unreadable manifest.
    #[error("{path}: not a shard manifest: {message}")]
    BadManifest {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Shards of different commands.
    #[error("{path} is a shard of `{found}`, but {first} is one of `{expected}`")]
    Command {
        /// The odd one.
        path: PathBuf,
        /// Its command.
        found: String,
        /// The first shard.
        first: PathBuf,
        /// The first shard's command.
        expected: String,
    },
    /// Shards of different runs.
    #[error(
        "shard {shard}/{shards} ({path}) is from another spec or other options than {first} (spec digest {found:.12}... vs {expected:.12}...)"
    )]
    Digest {
        /// Its index.
        shard: usize,
        /// Shards in all.
        shards: usize,
        /// The odd one.
        path: PathBuf,
        /// The first shard.
        first: PathBuf,
        /// Its digest.
        found: String,
        /// The first shard's digest.
        expected: String,
    },
    /// Shards of different splits.
    #[error("{path} is shard {shard}/{shards}, but {first} is one of {expected} shards")]
    Count {
        /// The odd one.
        path: PathBuf,
        /// Its index.
        shard: usize,
        /// Its count.
        shards: usize,
        /// The first shard.
        first: PathBuf,
        /// The first shard's count.
        expected: usize,
    },
    /// The same shard twice.
    #[error("shard {shard}/{shards} is given twice ({a} and {b})")]
    Duplicate {
        /// Index.
        shard: usize,
        /// Count.
        shards: usize,
        /// One folder.
        a: PathBuf,
        /// The other.
        b: PathBuf,
    },
    /// A shard not given.
    #[error("shard {shard}/{shards} is missing")]
    Missing {
        /// Index.
        shard: usize,
        /// Count.
        shards: usize,
    },
    /// A folder whose contents do not match its manifest.
    #[error("{path}: {message}")]
    Damaged {
        /// The folder.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Shard folders checked to make one whole run.
pub struct ShardSet {
    /// The command they ran.
    pub command: String,
    /// The spec they ran with.
    pub spec: ExperimentSpec,
    /// Jobs of the whole run.
    pub total_jobs: usize,
    /// The folders, shard 1 first.
    pub dirs: Vec<PathBuf>,
    /// The devices the shards ran on, each once, in shard order.
    pub devices: Vec<String>,
}

fn damaged(path: &Path, message: impl Into<String>) -> CliError {
    CliError::Merge(MergeError::Damaged {
        path: path.to_path_buf(),
        message: message.into(),
    })
}

/// Read and check the manifests of `dirs`: one command, one spec digest, one shard
/// count, every shard exactly once, the spec and options in each folder matching its
/// digest.
pub fn open(dirs: &[PathBuf]) -> Result<ShardSet, CliError> {
    let mut manifests = Vec::new();
    for dir in dirs {
        let path = dir.join("shard.json");
        if !path.is_file() {
            return Err(MergeError::NotAShard(dir.clone()).into());
        }
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| MergeError::BadManifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if m.format != FORMAT {
            return Err(MergeError::BadManifest {
                path,
                message: format!("layout version {} (this mnemo reads {FORMAT})", m.format),
            }
            .into());
        }
        manifests.push((dir.clone(), m));
    }
    let Some((first, head)) = manifests.first().cloned() else {
        return Err(CliError::Output("merge: no shard folders given".into()));
    };
    let mut by_index: BTreeMap<usize, PathBuf> = BTreeMap::new();
    for (dir, m) in &manifests {
        if m.command != head.command {
            return Err(MergeError::Command {
                path: dir.clone(),
                found: m.command.clone(),
                first: first.clone(),
                expected: head.command.clone(),
            }
            .into());
        }
        if m.shards != head.shards {
            return Err(MergeError::Count {
                path: dir.clone(),
                shard: m.shard,
                shards: m.shards,
                first: first.clone(),
                expected: head.shards,
            }
            .into());
        }
        if m.digest != head.digest {
            return Err(MergeError::Digest {
                shard: m.shard,
                shards: m.shards,
                path: dir.clone(),
                first: first.clone(),
                found: m.digest.clone(),
                expected: head.digest.clone(),
            }
            .into());
        }
        if let Some(a) = by_index.insert(m.shard, dir.clone()) {
            return Err(MergeError::Duplicate {
                shard: m.shard,
                shards: m.shards,
                a,
                b: dir.clone(),
            }
            .into());
        }
        let shard = Shard {
            index: m.shard,
            count: m.shards,
        };
        if m.shard == 0 || m.shard > m.shards || m.jobs != shard.jobs(m.total_jobs) {
            return Err(damaged(
                dir,
                format!(
                    "shard.json lists other jobs than shard {shard} of {} has",
                    m.total_jobs
                ),
            ));
        }
    }
    for i in 1..=head.shards {
        if !by_index.contains_key(&i) {
            return Err(MergeError::Missing {
                shard: i,
                shards: head.shards,
            }
            .into());
        }
    }
    let spec_path = first.join("spec.json");
    let spec = crate::read_spec(&spec_path)?;
    let opt_path = first.join("options.json");
    let options: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&opt_path).map_err(io_err(&opt_path))?)
            .map_err(|e| damaged(&opt_path, e.to_string()))?;
    if digest(&head.command, &spec, &options) != head.digest {
        return Err(damaged(
            &first,
            "spec.json or options.json was changed after the shard ran (the digest differs)",
        ));
    }
    let mut devices: Vec<String> = Vec::new();
    for &i in by_index.keys() {
        let device = manifests
            .iter()
            .find(|(_, m)| m.shard == i)
            .and_then(|(_, m)| m.device.clone());
        if let Some(d) = device
            && !devices.contains(&d)
        {
            devices.push(d);
        }
    }
    Ok(ShardSet {
        command: head.command,
        spec,
        total_jobs: head.total_jobs,
        dirs: by_index.into_values().collect(),
        devices,
    })
}

impl ShardSet {
    /// The shared result `name` (see [`write_shared`]): the same bytes in every shard
    /// folder, or an error naming the first that differs.
    pub fn shared<T: DeserializeOwned>(&self, name: &str) -> Result<T, CliError> {
        let mut first: Option<(PathBuf, Vec<u8>)> = None;
        for dir in &self.dirs {
            let path = dir.join(name);
            let bytes = fs::read(&path).map_err(io_err(&path))?;
            match &first {
                None => first = Some((path, bytes)),
                Some((p, b)) if *b != bytes => {
                    return Err(damaged(
                        dir,
                        format!(
                            "{name} differs from {}'s: the shards computed their shared results differently (another build or machine?)",
                            p.display()
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        let (path, bytes) =
            first.ok_or_else(|| CliError::Output("merge: no shard folders given".into()))?;
        ciborium::from_reader(bytes.as_slice())
            .map_err(|e| damaged(&path, format!("unreadable {name}: {e}")))
    }

    /// Every job's result, in job order.
    pub fn results<T: DeserializeOwned>(&self) -> Result<Vec<T>, CliError> {
        let mut all: Vec<Option<T>> = (0..self.total_jobs).map(|_| None).collect();
        for dir in &self.dirs {
            let path = dir.join("jobs.cbor");
            let bytes = fs::read(&path).map_err(io_err(&path))?;
            let jobs: Vec<(usize, T)> = ciborium::from_reader(bytes.as_slice())
                .map_err(|e| damaged(&path, format!("unreadable job results: {e}")))?;
            for (j, r) in jobs {
                match all.get_mut(j) {
                    Some(slot @ None) => *slot = Some(r),
                    _ => return Err(damaged(&path, format!("unexpected or repeated job {j}"))),
                }
            }
        }
        all.into_iter()
            .enumerate()
            .map(|(j, r)| {
                r.ok_or_else(|| CliError::Output(format!("merge: no shard holds job {j}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_i_of_n_and_refuses_the_rest() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!("1/1".parse::<Shard>(), Ok(Shard { index: 1, count: 1 }));
        for bad in ["0/4", "5/4", "4", "a/4", "2/0", "-1/4", "2/4/1", ""] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains(&format!("`{bad}`")), "{e}");
        }
    }

    #[test]
    fn round_robin_gives_every_job_to_exactly_one_shard() {
        let jobs: Vec<Vec<usize>> = (1..=3)
            .map(|i| Shard { index: i, count: 3 }.jobs(8))
            .collect();
        assert_eq!(jobs, vec![vec![0, 3, 6], vec![1, 4, 7], vec![2, 5]]);
        assert_eq!(Shard { index: 4, count: 4 }.jobs(2), Vec::<usize>::new());
    }

    #[test]
    fn the_digest_changes_with_command_spec_and_options() {
        let spec = ExperimentSpec::counterfactual_demo();
        let opts = serde_json::json!({});
        let d = digest("counterfactual", &spec, &opts);
        assert_eq!(d.len(), 64);
        assert_eq!(d, digest("counterfactual", &spec, &opts));
        assert_ne!(d, digest("mitigate", &spec, &opts));
        assert_ne!(
            d,
            digest("counterfactual", &spec, &serde_json::json!({"x": 1}))
        );
        let mut other = spec.clone();
        other.seed += 1;
        assert_ne!(d, digest("counterfactual", &other, &opts));
    }
}
