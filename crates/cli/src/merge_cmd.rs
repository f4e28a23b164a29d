//! `mnemo merge` (shard folders back into one run's files) and `mnemo slurm` (a Slurm job
//! array that runs a command in shards, then merges them).

use std::fs;
use std::path::{Path, PathBuf};

use crate::shard::{self, ShardSet};
use crate::{CliError, cf_cmd, emit, influence_cmd, io_err, mitigate_cmd, read_spec, sizes_cmd};

/// Writes a command's unsharded files from its checked shard folders.
type MergeFn = fn(&ShardSet, &Path) -> Result<(), CliError>;

/// The commands that take `--shard`, with the merge of their shard folders.
const SHARDABLE: &[(&str, MergeFn)] = &[
    (cf_cmd::COMMAND, cf_cmd::merge),
    (mitigate_cmd::COMMAND, mitigate_cmd::merge),
    (influence_cmd::COMMAND, influence_cmd::merge),
    (sizes_cmd::COMMAND, sizes_cmd::merge),
];

fn shardable_names() -> String {
    SHARDABLE.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
}

/// Arguments of `mnemo merge`.
#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shard folders (written with `--shard I/N`), all N of them, in any order.
    #[arg(value_name = "SHARD_DIR", required = true)]
    pub shards: Vec<PathBuf>,
    /// Output directory: the files the unsharded run writes.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `mnemo merge`.
pub fn merge(args: MergeArgs) -> Result<(), CliError> {
    let set = shard::open(&args.shards)?;
    let Some((_, merge)) = SHARDABLE.iter().find(|c| c.0 == set.command) else {
        return Err(CliError::Output(format!(
            "merge: shards of `{}`, which this mnemo cannot merge (it merges {})",
            set.command,
            shardable_names()
        )));
    };
    // The merged JSON names the device the shards ran on, as the unsharded run's does.
    if !set.devices.is_empty() {
        crate::set_device_name(set.devices.join(" + "));
    }
    merge(&set, &args.out)
}

/// Arguments of `mnemo slurm`.
#[derive(clap::Args)]
pub struct SlurmArgs {
    /// The experiment spec (copied into DIR).
    #[arg(long, value_name = "SPEC.json")]
    pub spec: PathBuf,
    /// The command to shard: counterfactual, mitigate, influence or sizes.
    #[arg(long, value_name = "COMMAND")]
    pub command: String,
    /// Shards (array tasks), 1 to 10000.
    #[arg(long, value_name = "N")]
    pub shards: usize,
    /// Slurm partition of every job.
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    /// GPUs per array task (`#SBATCH --gpus`).
    #[arg(long, value_name = "G")]
    pub gpus: Option<u32>,
    /// Time limit of every job, in Slurm's format (e.g. 1:00:00).
    #[arg(long, value_name = "T")]
    pub time: Option<String>,
    /// Folder for the scripts, the shards (DIR/shards/I), the logs and the merged result
    /// (DIR/result).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Further options of the command, after `--` (e.g. `-- --models 16`).
    #[arg(last = true, value_name = "OPTIONS")]
    pub options: Vec<String>,
}

/// `s` quoted for bash.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The three scripts of `mnemo slurm`: (array.sbatch, merge.sbatch, submit.sh), for the
/// mnemo binary `exe` and the absolute folder `dir` (which holds spec.json).
pub fn scripts(args: &SlurmArgs, exe: &Path, dir: &Path) -> (String, String, String) {
    let n = args.shards;
    let cmd = &args.command;
    let d = dir.display().to_string();
    let mut common = String::new();
    if let Some(p) = &args.partition {
        common += &format!("#SBATCH --partition={p}\n");
    }
    if let Some(t) = &args.time {
        common += &format!("#SBATCH --time={t}\n");
    }
    let gpus = args
        .gpus
        .map(|g| format!("#SBATCH --gpus={g}\n"))
        .unwrap_or_default();
    let extra: String = args
        .options
        .iter()
        .map(|o| format!(" {}", quote(o)))
        .collect();
    let exe = quote(&exe.display().to_string());
    let array = format!(
        "#!/bin/bash\n\
         #SBATCH --job-name=mnemo-{cmd}\n\
         #SBATCH --array=1-{n}\n\
         #SBATCH --output={d}/logs/shard-%a.out\n\
         {common}{gpus}\
         set -euo pipefail\n\
         exec {exe} {cmd} --quiet --spec {spec}{extra} --shard \"$SLURM_ARRAY_TASK_ID/{n}\" --out {shards}/\"$SLURM_ARRAY_TASK_ID\"\n",
        spec = quote(&format!("{d}/spec.json")),
        shards = quote(&format!("{d}/shards")),
    );
    let dirs: String = (1..=n)
        .map(|i| format!(" {}", quote(&format!("{d}/shards/{i}"))))
        .collect();
    let merge = format!(
        "#!/bin/bash\n\
         #SBATCH --job-name=mnemo-{cmd}-merge\n\
         #SBATCH --output={d}/logs/merge.out\n\
         {common}\
         set -euo pipefail\n\
         exec {exe} merge{dirs} --out {result}\n",
        result = quote(&format!("{d}/result")),
    );
    let submit = format!(
        "#!/bin/bash\n\
         # Submit the {n} shards of `mnemo {cmd}` as a job array, then the merge once all succeed.\n\
         set -euo pipefail\n\
         cd {qd}\n\
         array=$(sbatch --parsable array.sbatch)\n\
         array=${{array%%;*}}\n\
         merge=$(sbatch --parsable --dependency=afterok:\"$array\" merge.sbatch)\n\
         merge=${{merge%%;*}}\n\
         echo \"array job $array ({n} shards), merge job $merge; result in {d}/result\"\n",
        qd = quote(&d),
    );
    (array, merge, submit)
}

/// `mnemo slurm`.
pub fn slurm(args: SlurmArgs) -> Result<(), CliError> {
    if !SHARDABLE.iter().any(|c| c.0 == args.command) {
        return Err(CliError::Output(format!(
            "--command {}: not a command that takes --shard (those are {})",
            args.command,
            shardable_names()
        )));
    }
    if !(1..=10_000).contains(&args.shards) {
        return Err(CliError::Output(format!(
            "--shards {}: must be 1 to 10000",
            args.shards
        )));
    }
    let spec = read_spec(&args.spec)?;
    let out = &args.out;
    fs::create_dir_all(out.join("logs")).map_err(io_err(out))?;
    let dir = fs::canonicalize(out).map_err(io_err(out))?;
    if dir.to_string_lossy().contains(char::is_whitespace) {
        return Err(CliError::Output(format!(
            "--out {}: Slurm's #SBATCH --output lines cannot hold a path with spaces; choose another folder",
            dir.display()
        )));
    }
    let exe = std::env::current_exe()
        .and_then(fs::canonicalize)
        .map_err(io_err(Path::new("the mnemo binary")))?;
    let (array, merge, submit) = scripts(&args, &exe, &dir);
    let spec_path = dir.join("spec.json");
    fs::write(&spec_path, spec.to_json()).map_err(io_err(&spec_path))?;
    for (name, text) in [
        ("array.sbatch", array),
        ("merge.sbatch", merge),
        ("submit.sh", submit),
    ] {
        let path = dir.join(name);
        fs::write(&path, text).map_err(io_err(&path))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).map_err(io_err(&path))?;
        }
    }
    emit(&format!(
        "wrote {d}/array.sbatch ({n} array tasks), {d}/merge.sbatch and {d}/submit.sh\n\
         submit on the cluster's login node with:\n  bash {d}/submit.sh\n\
         the merged files land in {d}/result; logs in {d}/logs",
        d = dir.display(),
        n = args.shards
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_have_the_array_the_dependency_and_the_options() {
        let args = SlurmArgs {
            spec: PathBuf::from("cf.json"),
            command: "counterfactual".into(),
            shards: 4,
            partition: Some("gpu".into()),
            gpus: Some(1),
            time: Some("0:30:00".into()),
            out: PathBuf::from("unused"),
            options: vec!["--models".into(), "8".into()],
        };
        let (array, merge, submit) = scripts(&args, Path::new("/opt/mnemo"), Path::new("/runs/cf"));
        assert_eq!(
            array.lines().collect::<Vec<_>>(),
            [
                "#!/bin/bash",
                "#SBATCH --job-name=mnemo-counterfactual",
                "#SBATCH --array=1-4",
                "#SBATCH --output=/runs/cf/logs/shard-%a.out",
                "#SBATCH --partition=gpu",
                "#SBATCH --time=0:30:00",
                "#SBATCH --gpus=1",
                "set -euo pipefail",
                "exec /opt/mnemo counterfactual --quiet --spec /runs/cf/spec.json --models 8 \
                 --shard \"$SLURM_ARRAY_TASK_ID/4\" --out /runs/cf/shards/\"$SLURM_ARRAY_TASK_ID\"",
            ]
        );
        assert_eq!(
            merge.lines().collect::<Vec<_>>(),
            [
                "#!/bin/bash",
                "#SBATCH --job-name=mnemo-counterfactual-merge",
                "#SBATCH --output=/runs/cf/logs/merge.out",
                "#SBATCH --partition=gpu",
                "#SBATCH --time=0:30:00",
                "set -euo pipefail",
                "exec /opt/mnemo merge /runs/cf/shards/1 /runs/cf/shards/2 \
                 /runs/cf/shards/3 /runs/cf/shards/4 --out /runs/cf/result",
            ]
        );
        let lines: Vec<&str> = submit.lines().collect();
        assert!(lines.contains(&"cd /runs/cf"), "{submit}");
        assert!(lines.contains(&"array=$(sbatch --parsable array.sbatch)"));
        assert!(
            lines.contains(
                &"merge=$(sbatch --parsable --dependency=afterok:\"$array\" merge.sbatch)"
            )
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
