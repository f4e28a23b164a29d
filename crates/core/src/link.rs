//! Links that reproduce an experiment: the whole spec, the view to open and a teacher's
//! settings, in a URL fragment. The format is versioned text: `v1.` followed by the
//! base64url (no padding) of the raw-deflate-compressed JSON of a [`LinkPayload`].
//!
//! Uploaded text up to [`TEXT_IN_LINK`] bytes travels inside the link; a larger text
//! travels as its SHA-256 and length ([`CorpusRef`]) and the page asks for the file, which
//! must hash to the same value ([`attach_corpus`]).
//!
//! A link is untrusted input. [`decode`] refuses (never panics on) anything over
//! [`LINK_CHARS`] characters, anything that inflates beyond [`INFLATED_BYTES`], unknown
//! versions, unknown fields and every value outside the limits of [`crate::spec::limits`]
//! (the same checks as the form and the CLI), naming the field. Links written by older
//! versions keep decoding: each version has its own reader.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::spec::{DataSource, ExperimentSpec, SpecError};

/// The link version this build writes.
pub const LINK_VERSION: u32 = 1;
/// Uploaded text up to this many bytes travels inside the link.
pub const TEXT_IN_LINK: usize = 32 * 1024;
/// The longest fragment accepted, in characters.
pub const LINK_CHARS: usize = 256 * 1024;
/// The most a link may inflate to, in bytes (a bound against compression bombs).
pub const INFLATED_BYTES: usize = 4 * 1024 * 1024;
/// The views a link may open.
pub const VIEWS: [&str; 9] = [
    "train",
    "profile",
    "counterfactual",
    "extraction",
    "softprompt",
    "influence",
    "mitigation",
    "geometry",
    "exposure",
];
/// Most names in `hide` or `lock`.
pub const MAX_CONTROLS: usize = 64;

/// A text too large for the link: the page asks for the file and checks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusRef {
    /// Lower-case hex SHA-256 of the text's UTF-8 bytes.
    pub sha256: String,
    /// Its length in bytes.
    pub bytes: usize,
    /// The file name it was uploaded as (shown as text only).
    #[serde(default)]
    pub name: String,
}

/// Everything a link carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkPayload {
    /// The experiment. When `corpus` is set, its text source is empty until the file
    /// is attached.
    pub spec: ExperimentSpec,
    /// The text the spec trains on, when it was too large for the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corpus: Option<CorpusRef>,
    /// The analysis view to open (`train`, `profile`, `counterfactual`, `extraction`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// Re-run the experiment as soon as the link opens.
    #[serde(default)]
    pub run: bool,
    /// Show only the view, with minimal chrome, for an iframe.
    #[serde(default)]
    pub embed: bool,
    /// A teacher's lesson text shown above the view (plain text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lesson: Option<String>,
    /// A guided lesson to open at its first step (its id: `web/lessons/ID.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guide: Option<String>,
    /// Controls shown but not editable (names of settings, e.g. `model.d_model`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lock: Vec<String>,
    /// Controls and panels hidden (e.g. `data`, `model`, `backend`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hide: Vec<String>,
}

impl LinkPayload {
    /// A payload that opens `spec` in `view` and does nothing else special.
    pub fn new(spec: ExperimentSpec) -> Self {
        LinkPayload {
            spec,
            corpus: None,
            view: None,
            run: false,
            embed: false,
            lesson: None,
            guide: None,
            lock: Vec::new(),
            hide: Vec::new(),
        }
    }
}

/// Why a link could not be read.
#[derive(Debug, Error, PartialEq)]
pub enum LinkError {
    /// Nothing after the `#`.
    #[error("the link carries no experiment (nothing after #)")]
    Empty,
    /// Too long to be one of ours.
    #[error("the link is {0} characters long; Mnemo links are at most {LINK_CHARS}")]
    TooLong(usize),
    /// No `vN.` prefix.
    #[error("this is not a Mnemo experiment link (it should start with v1.)")]
    NoVersion,
    /// A version this build cannot read.
    #[error(
        "link version {0} is newer than this Mnemo (it reads version {LINK_VERSION}); reload the page to update"
    )]
    UnsupportedVersion(u32),
    /// Not base64url.
    #[error("the link is damaged (not base64url): {0}")]
    Base64(String),
    /// Not deflate data.
    #[error("the link is damaged (its compressed data does not inflate)")]
    Inflate,
    /// Inflates past [`INFLATED_BYTES`] (a compression bomb, or not one of ours).
    #[error("the link inflates beyond {INFLATED_BYTES} bytes; Mnemo links are far smaller")]
    InflatesTooFar,
    /// Not the JSON of a payload.
    #[error("the link's contents are not a Mnemo experiment: {0}")]
    Json(String),
    /// The spec inside is invalid.
    #[error("the link's experiment is invalid: {0}")]
    Spec(#[from] SpecError),
    /// Other payload fields are invalid.
    #[error("the link's {field} is invalid: {message}")]
    Field {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The attached file is not the one the link names.
    #[error(
        "this file is not the one the link was made with (expected {expected_bytes} bytes with SHA-256 {expected}, got {got_bytes} bytes with {got})"
    )]
    WrongFile {
        /// SHA-256 the link names.
        expected: String,
        /// Its length in bytes.
        expected_bytes: usize,
        /// SHA-256 of the file given.
        got: String,
        /// The file's length.
        got_bytes: usize,
    },
}

/// Lower-case hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Encode a payload as a fragment (without the `#`). Text over [`TEXT_IN_LINK`] bytes is
/// replaced by its [`CorpusRef`] (`file_name` is recorded with it).
pub fn encode(payload: &LinkPayload, file_name: &str) -> String {
    let mut payload = payload.clone();
    if let DataSource::Text { text, .. } = &mut payload.spec.data.source
        && text.len() > TEXT_IN_LINK
    {
        payload.corpus = Some(CorpusRef {
            sha256: sha256_hex(text),
            bytes: text.len(),
            name: file_name.to_string(),
        });
        text.clear();
    }
    let json = serde_json::to_vec(&payload).unwrap_or_default();
    let deflated = miniz_oxide::deflate::compress_to_vec(&json, 9);
    format!("v{LINK_VERSION}.{}", URL_SAFE_NO_PAD.encode(deflated))
}

/// Decode a link: a whole URL, a fragment with or without `#`, or the bare `v1.…` text.
pub fn decode(link: &str) -> Result<LinkPayload, LinkError> {
    let link = link.trim();
    let fragment = match link.find('#') {
        Some(i) => &link[i + 1..],
        None => link,
    };
    if fragment.is_empty() {
        return Err(LinkError::Empty);
    }
    if fragment.len() > LINK_CHARS {
        return Err(LinkError::TooLong(fragment.len()));
    }
    // Parameters a page may add after the payload (`&…`) are not part of it.
    let fragment = fragment.split('&').next().unwrap_or_default();
    let (version, body) = fragment.split_once('.').ok_or(LinkError::NoVersion)?;
    let version: u32 = version
        .strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .ok_or(LinkError::NoVersion)?;
    match version {
        1 => decode_v1(body),
        0 => Err(LinkError::NoVersion),
        v => Err(LinkError::UnsupportedVersion(v)),
    }
}

fn decode_v1(body: &str) -> Result<LinkPayload, LinkError> {
    let deflated = URL_SAFE_NO_PAD
        .decode(body.as_bytes())
        .map_err(|e| LinkError::Base64(e.to_string()))?;
    let json = miniz_oxide::inflate::decompress_to_vec_with_limit(&deflated, INFLATED_BYTES)
        .map_err(|e| match e.status {
            miniz_oxide::inflate::TINFLStatus::HasMoreOutput => LinkError::InflatesTooFar,
            _ => LinkError::Inflate,
        })?;
    let text = std::str::from_utf8(&json).map_err(|e| LinkError::Json(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| LinkError::Json(e.to_string()))?;
    // The spec goes through the same reader as a spec file (version, unknown fields,
    // limits); the rest is checked here.
    let spec_json = value
        .get("spec")
        .ok_or_else(|| LinkError::Json("no spec".into()))?
        .to_string();
    let spec = ExperimentSpec::from_json(&spec_json)?;
    let mut payload: LinkPayload =
        serde_json::from_value(value).map_err(|e| LinkError::Json(e.to_string()))?;
    payload.spec = spec;
    check(&payload)?;
    Ok(payload)
}

fn check(p: &LinkPayload) -> Result<(), LinkError> {
    let field = |field: &'static str, message: String| LinkError::Field { field, message };
    if let Some(v) = &p.view
        && !VIEWS.contains(&v.as_str())
    {
        return Err(field("view", format!("unknown view “{}”", clip(v))));
    }
    if let Some(l) = &p.lesson
        && l.len() > 4000
    {
        return Err(field("lesson", format!("{} bytes; at most 4000", l.len())));
    }
    if let Some(g) = &p.guide
        && (g.is_empty()
            || g.len() > 64
            || !g
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        return Err(field("guide", format!("“{}” is not a lesson id", clip(g))));
    }
    for (name, list) in [("lock", &p.lock), ("hide", &p.hide)] {
        let name: &'static str = name;
        if list.len() > MAX_CONTROLS {
            return Err(field(
                name,
                format!("{} entries; at most {MAX_CONTROLS}", list.len()),
            ));
        }
        if let Some(bad) = list.iter().find(|c| {
            c.is_empty()
                || c.len() > 64
                || !c
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch))
        }) {
            return Err(field(
                name,
                format!("“{}” is not a control name", clip(bad)),
            ));
        }
    }
    if let Some(c) = &p.corpus {
        let text_empty =
            matches!(&p.spec.data.source, DataSource::Text { text, .. } if text.is_empty());
        if !text_empty {
            return Err(field(
                "corpus",
                "names a file but the experiment has no empty text source".into(),
            ));
        }
        if c.sha256.len() != 64 || !c.sha256.chars().all(|ch| ch.is_ascii_hexdigit()) {
            return Err(field("corpus.sha256", "not a SHA-256 in hex".into()));
        }
        if c.bytes == 0 || c.bytes > crate::spec::limits::TEXT_BYTES {
            return Err(field(
                "corpus.bytes",
                format!(
                    "{} is outside 1..={}",
                    c.bytes,
                    crate::spec::limits::TEXT_BYTES
                ),
            ));
        }
        if c.name.len() > 255 {
            return Err(field("corpus.name", "longer than 255 bytes".into()));
        }
    }
    Ok(())
}

/// At most 40 characters of untrusted text, for messages.
fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Put the attached file's text into a payload that names it, after checking its hash.
pub fn attach_corpus(payload: &mut LinkPayload, text: &str) -> Result<(), LinkError> {
    let Some(c) = &payload.corpus else {
        return Ok(());
    };
    let got = sha256_hex(text);
    if got != c.sha256.to_ascii_lowercase() {
        return Err(LinkError::WrongFile {
            expected: c.sha256.clone(),
            expected_bytes: c.bytes,
            got,
            got_bytes: text.len(),
        });
    }
    if let DataSource::Text { text: t, .. } = &mut payload.spec.data.source {
        *t = text.to_string();
    }
    payload.corpus = None;
    Ok(())
}
