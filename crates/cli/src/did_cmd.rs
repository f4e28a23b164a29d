//! `mnemo did` and `mnemo profile`: memorisation profiles by difference-in-differences.
//! Every output is computed in memory first and written only when all of it succeeded,
//! so an error never leaves half a result behind.

use std::fs;
use std::path::{Path, PathBuf};

use mnemo_measures::did::{DidResult, Panel};
use mnemo_plots::did::{
    instantaneous_chart, persistent_chart, profile_heatmap, residual_chart, simple_chart, svg_of,
};

use crate::CliError;

/// Every file a profile writes, as (name, contents): the tables, the whole result as
/// JSON, and an SVG per chart.
pub fn outputs(result: &DidResult) -> Result<Vec<(&'static str, String)>, CliError> {
    let mut files = mnemo_measures::export::tables(result)?;
    let size = (800, 480);
    files.extend([
        (
            "result.json",
            serde_json::to_string_pretty(result).map_err(|e| CliError::Output(e.to_string()))?,
        ),
        ("profile.svg", svg_of(size, |a| profile_heatmap(a, result))),
        (
            "persistent.svg",
            svg_of(size, |a| persistent_chart(a, &[(String::new(), result)])),
        ),
        (
            "instantaneous.svg",
            svg_of(size, |a| instantaneous_chart(a, result)),
        ),
        ("residual.svg", svg_of(size, |a| residual_chart(a, result))),
        ("simple.svg", svg_of(size, |a| simple_chart(a, result))),
    ]);
    Ok(files)
}

/// Write `files` into `out` (created if missing).
pub fn write_all(out: &Path, files: &[(&str, String)]) -> Result<(), CliError> {
    fs::create_dir_all(out).map_err(|source| CliError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    for (name, contents) in files {
        let path = out.join(name);
        fs::write(&path, contents).map_err(|source| CliError::Io { path, source })?;
    }
    Ok(())
}

/// Read a panel CSV.
pub fn read_panel(path: &PathBuf) -> Result<Panel, CliError> {
    let file = fs::File::open(path).map_err(|source| CliError::Io {
        path: path.clone(),
        source,
    })?;
    Panel::from_csv(file).map_err(|e| CliError::Panel {
        path: path.clone(),
        message: e.to_string(),
    })
}
