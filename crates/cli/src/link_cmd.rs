//! `mnemo link` and `mnemo run --link`: the browser's experiment links on the command line.

use std::fs;
use std::path::{Path, PathBuf};

use mnemo_core::link::{LinkPayload, attach_corpus, decode, encode};

use crate::{Backend, CliError, TrainArgs, io_err, read_spec};

/// `mnemo link`: encode a spec, or decode a link.
pub fn link(
    spec: Option<PathBuf>,
    decode_from: Option<String>,
    view: Option<String>,
    autorun: bool,
    embed: bool,
    base: Option<String>,
) -> Result<(), CliError> {
    if let Some(link) = decode_from {
        let p = decode(&link)?;
        crate::emit(&p.spec.to_json())?;
        if let Some(c) = &p.corpus {
            eprintln!(
                "the link trains on a file that is not inside it: {} bytes, SHA-256 {}{} (pass it to `mnemo run --corpus FILE`)",
                c.bytes,
                c.sha256,
                if c.name.is_empty() {
                    String::new()
                } else {
                    format!(", uploaded as “{}”", c.name)
                }
            );
        }
        if let Some(v) = &p.view {
            eprintln!("view: {v}{}", if p.run { " (runs on opening)" } else { "" });
        }
        return Ok(());
    }
    let path = spec.ok_or(CliError::Output(
        "pass --spec SPEC.json to make a link or --decode LINK to read one".into(),
    ))?;
    let mut payload = LinkPayload::new(read_spec(&path)?);
    payload.view = view;
    payload.run = autorun;
    payload.embed = embed;
    let fragment = encode(&payload, "");
    // Check the link reads back (a view name the page does not know is refused here).
    decode(&fragment)?;
    match base {
        Some(b) => println!("{}#{fragment}", b.trim_end_matches('#')),
        None => println!("{fragment}"),
    }
    Ok(())
}

/// `mnemo run --link`: decode the link, then train and run every analysis it names.
pub fn run(
    link: String,
    corpus: Option<PathBuf>,
    out: PathBuf,
    backend: Backend,
    quiet: bool,
) -> Result<(), CliError> {
    let mut p = decode(&link)?;
    if p.corpus.is_some() {
        let path = corpus.ok_or(CliError::Output(
            "the link trains on a file that is not inside it: pass it with --corpus FILE".into(),
        ))?;
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let name = path.display().to_string();
        let text = mnemo_core::upload::decode_text(&name, &bytes)
            .map_err(|e| CliError::Output(e.to_string()))?;
        attach_corpus(&mut p, &text)?;
    }
    fs::create_dir_all(&out).map_err(io_err(&out))?;
    let spec_path = out.join("link-spec.json");
    fs::write(&spec_path, p.spec.to_json()).map_err(io_err(&spec_path))?;
    let args = |dir: &Path| TrainArgs {
        spec: spec_path.clone(),
        out: dir.to_path_buf(),
        backend,
        quiet,
    };
    if p.spec.profile.is_some() {
        eprintln!("== memorisation profile");
        crate::did_cmd::profile(args(&out))?;
    } else {
        eprintln!("== training");
        crate::train(args(&out))?;
    }
    if p.spec.counterfactual.is_some() {
        eprintln!("== counterfactual memorisation");
        crate::cf_cmd::counterfactual(
            spec_path.clone(),
            out.join("counterfactual"),
            None,
            backend.into(),
            quiet,
            None,
            None,
        )?;
    }
    if p.spec.extraction.is_some() {
        eprintln!("== extraction");
        let last = last_checkpoint(&out.join("checkpoints"))?;
        crate::extract_cmd::run(args(&out.join("extraction")), Some(last), None, None, None)?;
    }
    Ok(())
}

fn last_checkpoint(dir: &Path) -> Result<PathBuf, CliError> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    files
        .pop()
        .ok_or_else(|| CliError::Output(format!("{}: no checkpoint", dir.display())))
}
