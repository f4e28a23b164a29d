//! Runs kept in the browser's IndexedDB (through the `rexie` crate): every experiment the
//! page starts is a run with its spec, status, losses, results and, for plain training
//! on the CPU, its latest resume point.
//!
//! Three object stores, keyed by the run's id: `runs` (the small [`RunMeta`] the list
//! shows), `data` (the [`RunData`]: spec, losses, results) and `resume` (the bytes of a
//! [`mnemo_core::ResumePoint`]); and, since version 2, `lessons`: a student's progress
//! through each guided lesson ([`mnemo_core::lesson::Progress`], keyed by the lesson's
//! id), each answer naming the run it was read from. Every save writes what it changes in **one transaction**,
//! so a full quota or a closed tab leaves the last complete state, never half of a new
//! one. Values are JSON text (`{id, json}`) or bytes (`{id, bytes}`), so the format is
//! Mnemo's serde format and versioned with it.

use std::rc::Rc;

use mnemo_core::lesson::Progress;
use mnemo_core::{BackendKind, ExperimentSpec};
use mnemo_measures::counterfactual::CounterfactualResult;
use mnemo_measures::did::DidResult;
use mnemo_measures::exposure::ExposureResult;
use mnemo_measures::geometry::GeometryResult;
use rexie::{ObjectStore, Rexie, TransactionMode};
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

use crate::protocol::{ExtractionView, InfluenceView, MitigationView, SoftPromptView};
use mnemo_measures::influence::DeletionResult;

const DB: &str = "mnemo";
const RUNS: &str = "runs";
const DATA: &str = "data";
const RESUME: &str = "resume";
const LESSONS: &str = "lessons";

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Running in this page.
    Running,
    /// Finished.
    Done,
    /// Stopped by the user.
    Cancelled,
    /// Stopped by an error.
    Failed,
    /// Found running when a page opened: the page that ran it was closed or reloaded.
    Interrupted,
}

impl RunStatus {
    /// As the list shows it.
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// What the list of runs shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// Unique id (creation time and a counter).
    pub id: String,
    /// The user's name for it (the spec's name at first).
    pub name: String,
    /// The view it belongs to (`train`, `profile`, ...).
    pub view: String,
    /// Milliseconds since the epoch when it started.
    pub created_ms: f64,
    /// Status.
    pub status: RunStatus,
    /// Training steps done.
    pub step: usize,
    /// Training steps in all.
    pub total_steps: usize,
    /// Backend.
    pub backend: BackendKind,
    /// Step of the kept resume point, if any.
    pub resume_step: Option<usize>,
}

/// A result kept with its run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RunResult {
    /// Memorisation profiles with their labels, and the last one's seconds evaluating
    /// the panel and estimating.
    Profiles(Vec<(String, DidResult)>, f64, f64),
    /// A counterfactual ensemble, its seconds, and whether Cancel cut it short.
    Counterfactual(Box<CounterfactualResult>, f64, bool),
    /// Extraction and its seconds.
    Extraction(Box<ExtractionView>, f64),
    /// Extraction with soft prompts; seconds training the constant prompt, the
    /// generator, and measuring; whether Cancel cut training short.
    SoftPrompt(Box<SoftPromptView>, [f64; 3], bool),
    /// Influence scores and the gradient pass's seconds.
    Influence(Box<InfluenceView>, f64),
    /// Case deletion, its seconds, and whether Cancel cut it short.
    Deletion(Box<DeletionResult>, f64, bool),
    /// A mitigation run and whether Cancel cut it short.
    Mitigation(Box<MitigationView>, bool),
    /// A geometry-of-memorisation run and its seconds.
    Geometry(Box<GeometryResult>, f64),
    /// Canary exposure and its seconds scoring.
    Exposure(Box<ExposureResult>, f64),
    /// Canary exposure after an unlearning method (its label), and the seconds.
    ExposureAfter(String, Box<ExposureResult>, f64),
}

impl RunResult {
    fn kind(&self) -> &'static str {
        match self {
            RunResult::Profiles(..) => "profile",
            RunResult::Counterfactual(..) => "counterfactual",
            RunResult::Extraction(..) => "extraction",
            RunResult::SoftPrompt(..) => "softprompt",
            RunResult::Influence(..) => "influence",
            RunResult::Deletion(..) => "deletion",
            RunResult::Mitigation(..) => "mitigation",
            RunResult::Geometry(..) => "geometry",
            RunResult::Exposure(..) => "exposure",
            RunResult::ExposureAfter(..) => "exposure-after",
        }
    }
}

/// Everything else a run keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunData {
    /// The experiment.
    pub spec: ExperimentSpec,
    /// Loss by step.
    pub losses: Vec<(usize, f32)>,
    /// Results, at most one of each kind.
    pub results: Vec<RunResult>,
}

impl RunData {
    /// Keep `r`, replacing a result of the same kind.
    pub fn set_result(&mut self, r: RunResult) {
        self.results.retain(|x| x.kind() != r.kind());
        self.results.push(r);
    }
}

/// Why the runs could not be kept or read.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// IndexedDB is missing or refused (some private windows, disabled storage).
    Unavailable(String),
    /// The browser's storage quota for this page is used up.
    Full,
    /// Anything else.
    Other(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(
                f,
                "runs are not kept in this browser ({why}); a private window or disabled site storage does this. Everything else works; download what you want to keep."
            ),
            StoreError::Full => f.write_str(
                "the browser's storage for this page is full, so the latest state was not kept (the last complete one was). Delete old runs to make room.",
            ),
            StoreError::Other(e) => write!(f, "the runs store failed: {e}"),
        }
    }
}

fn err(e: rexie::Error) -> StoreError {
    let text = format!("{e:?}");
    if text.contains("QuotaExceeded") {
        StoreError::Full
    } else {
        StoreError::Other(text)
    }
}

fn json_value(id: &str, value: &impl Serialize) -> Result<JsValue, StoreError> {
    let json = serde_json::to_string(value).map_err(|e| StoreError::Other(e.to_string()))?;
    let o = js_sys::Object::new();
    let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&o, &k.into(), v);
    set("id", &id.into())
        .and_then(|_| set("json", &json.into()))
        .map_err(|e| StoreError::Other(format!("{e:?}")))?;
    Ok(o.into())
}

fn from_json<T: for<'de> Deserialize<'de>>(v: &JsValue) -> Result<T, StoreError> {
    let json = js_sys::Reflect::get(v, &"json".into())
        .ok()
        .and_then(|j| j.as_string())
        .ok_or_else(|| StoreError::Other("a stored record has no JSON".into()))?;
    serde_json::from_str(&json).map_err(|e| StoreError::Other(format!("a stored record: {e}")))
}

/// The open database.
#[derive(Clone)]
pub struct Store(Rc<Rexie>);

impl PartialEq for Store {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl Store {
    /// Open (and on first use create) the database.
    pub async fn open() -> Result<Store, StoreError> {
        let has_idb = js_sys::Reflect::get(&js_sys::global(), &"indexedDB".into())
            .map(|v| !v.is_undefined() && !v.is_null())
            .unwrap_or(false);
        if !has_idb {
            return Err(StoreError::Unavailable("no IndexedDB".into()));
        }
        Rexie::builder(DB)
            .version(2)
            .add_object_store(ObjectStore::new(RUNS).key_path("id"))
            .add_object_store(ObjectStore::new(DATA).key_path("id"))
            .add_object_store(ObjectStore::new(RESUME).key_path("id"))
            .add_object_store(ObjectStore::new(LESSONS).key_path("id"))
            .build()
            .await
            .map(|r| Store(Rc::new(r)))
            .map_err(|e| StoreError::Unavailable(format!("IndexedDB refused to open: {e:?}")))
    }

    /// Every run, newest first. Runs found `running` are the ones a closed or reloaded
    /// page left behind: they are marked `interrupted` (and stored so).
    pub async fn list_at_open(&self) -> Result<Vec<RunMeta>, StoreError> {
        let mut runs = self.list().await?;
        for r in runs.iter_mut().filter(|r| r.status == RunStatus::Running) {
            r.status = RunStatus::Interrupted;
            self.save(r, None, None).await?;
        }
        Ok(runs)
    }

    /// Every run, newest first.
    pub async fn list(&self) -> Result<Vec<RunMeta>, StoreError> {
        let tx = self
            .0
            .transaction(&[RUNS], TransactionMode::ReadOnly)
            .map_err(err)?;
        let all = tx
            .store(RUNS)
            .map_err(err)?
            .get_all(None, None)
            .await
            .map_err(err)?;
        let mut runs: Vec<RunMeta> = all.iter().filter_map(|v| from_json(v).ok()).collect();
        runs.sort_by(|a, b| b.created_ms.total_cmp(&a.created_ms));
        Ok(runs)
    }

    /// Write `meta`, and `data` and `resume` when given, in one transaction.
    pub async fn save(
        &self,
        meta: &RunMeta,
        data: Option<&RunData>,
        resume: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let mut stores = vec![RUNS];
        if data.is_some() {
            stores.push(DATA);
        }
        if resume.is_some() {
            stores.push(RESUME);
        }
        let tx = self
            .0
            .transaction(&stores, TransactionMode::ReadWrite)
            .map_err(err)?;
        let put = async {
            tx.store(RUNS)
                .map_err(err)?
                .put(&json_value(&meta.id, meta)?, None)
                .await
                .map_err(err)?;
            if let Some(d) = data {
                tx.store(DATA)
                    .map_err(err)?
                    .put(&json_value(&meta.id, d)?, None)
                    .await
                    .map_err(err)?;
            }
            if let Some(bytes) = resume {
                let o = js_sys::Object::new();
                let _ = js_sys::Reflect::set(&o, &"id".into(), &meta.id.as_str().into());
                let _ = js_sys::Reflect::set(
                    &o,
                    &"bytes".into(),
                    &js_sys::Uint8Array::from(bytes).into(),
                );
                tx.store(RESUME)
                    .map_err(err)?
                    .put(&o.into(), None)
                    .await
                    .map_err(err)?;
            }
            Ok::<(), StoreError>(())
        }
        .await;
        match put {
            Ok(()) => tx.done().await.map(|_| ()).map_err(err),
            Err(e) => {
                let _ = tx.abort().await;
                Err(e)
            }
        }
    }

    /// A run's data.
    pub async fn data(&self, id: &str) -> Result<RunData, StoreError> {
        let tx = self
            .0
            .transaction(&[DATA], TransactionMode::ReadOnly)
            .map_err(err)?;
        let v = tx
            .store(DATA)
            .map_err(err)?
            .get(id.into())
            .await
            .map_err(err)?
            .ok_or_else(|| StoreError::Other("the run's data is missing".into()))?;
        from_json(&v)
    }

    /// A run's resume point, if one was kept.
    pub async fn resume_bytes(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self
            .0
            .transaction(&[RESUME], TransactionMode::ReadOnly)
            .map_err(err)?;
        let v = tx
            .store(RESUME)
            .map_err(err)?
            .get(id.into())
            .await
            .map_err(err)?;
        Ok(
            v.and_then(|v| js_sys::Reflect::get(&v, &"bytes".into()).ok())
                .filter(|b| b.is_instance_of::<js_sys::Uint8Array>())
                .map(|b| js_sys::Uint8Array::new(&b).to_vec()),
        )
    }

    /// Every lesson's kept progress.
    pub async fn lessons(&self) -> Result<Vec<Progress>, StoreError> {
        let tx = self
            .0
            .transaction(&[LESSONS], TransactionMode::ReadOnly)
            .map_err(err)?;
        let all = tx
            .store(LESSONS)
            .map_err(err)?
            .get_all(None, None)
            .await
            .map_err(err)?;
        Ok(all.iter().filter_map(|v| from_json(v).ok()).collect())
    }

    /// Keep a lesson's progress (replacing what was kept for that lesson).
    pub async fn save_lesson(&self, progress: &Progress) -> Result<(), StoreError> {
        let tx = self
            .0
            .transaction(&[LESSONS], TransactionMode::ReadWrite)
            .map_err(err)?;
        tx.store(LESSONS)
            .map_err(err)?
            .put(&json_value(&progress.lesson, progress)?, None)
            .await
            .map_err(err)?;
        tx.done().await.map(|_| ()).map_err(err)
    }

    /// Delete a run everywhere, in one transaction.
    pub async fn delete(&self, id: &str) -> Result<(), StoreError> {
        let tx = self
            .0
            .transaction(&[RUNS, DATA, RESUME], TransactionMode::ReadWrite)
            .map_err(err)?;
        for s in [RUNS, DATA, RESUME] {
            tx.store(s)
                .map_err(err)?
                .delete(id.into())
                .await
                .map_err(err)?;
        }
        tx.done().await.map(|_| ()).map_err(err)
    }
}
