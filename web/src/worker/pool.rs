//! Helper workers for a job whose parts are independent (the members of a counterfactual
//! ensemble, the retrains of case deletion): the worker running the job starts them,
//! hands each a part, and reads their answers between its own steps ([`drive`]). Each helper is the same program as the page's
//! worker, so a part computes the same numbers wherever it runs. Dropping the pool stops
//! every helper (after Cancel, a part in progress is lost; finished parts are kept by the
//! job).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::rc::Rc;

use mnemo_core::BackendKind;
use web_sys::Worker;

use wasm_bindgen_futures::spawn_local;

use super::{cancelled, memory_mib, now_ms, sleep_ms, yield_now};
use crate::connection::{Listener, send, start_worker};
use crate::protocol::{FromWorker, ToWorker};

/// The most workers a job uses (the header offers up to this many).
pub const MAX_WORKERS: usize = 16;

/// A helper's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelperState {
    /// Started, its program still loading.
    Loading,
    /// Ready for a part.
    Idle,
    /// Working on a part.
    Busy,
}

struct Helper {
    worker: Worker,
    state: HelperState,
    _listeners: Vec<Listener>,
}

/// Helper workers and the messages they have sent, in order of arrival.
pub struct Pool {
    helpers: Vec<Helper>,
    inbox: Rc<RefCell<VecDeque<(usize, FromWorker)>>>,
}

impl Pool {
    /// Start `n` helpers (none for `n == 0`).
    pub fn start(n: usize) -> Result<Pool, String> {
        let inbox: Rc<RefCell<VecDeque<(usize, FromWorker)>>> = Rc::default();
        let mut pool = Pool {
            helpers: Vec::with_capacity(n),
            inbox: inbox.clone(),
        };
        for h in 0..n {
            let inbox = inbox.clone();
            let (worker, listeners) = start_worker(move |m| inbox.borrow_mut().push_back((h, m)))?;
            pool.helpers.push(Helper {
                worker,
                state: HelperState::Loading,
                _listeners: listeners,
            });
        }
        Ok(pool)
    }

    /// Helpers in the pool.
    pub fn len(&self) -> usize {
        self.helpers.len()
    }

    /// Whether the pool has no helpers.
    pub fn is_empty(&self) -> bool {
        self.helpers.is_empty()
    }

    /// The helpers ready for a part.
    pub fn idle(&self) -> Vec<usize> {
        (0..self.helpers.len())
            .filter(|&h| self.helpers[h].state == HelperState::Idle)
            .collect()
    }

    /// Give helper `h` a part.
    pub fn assign(&mut self, h: usize, job: &ToWorker) {
        if let Some(helper) = self.helpers.get_mut(h) {
            send(Some(&helper.worker), job);
            helper.state = HelperState::Busy;
        }
    }

    /// Mark helper `h` ready (it said so, or it finished its part).
    pub fn set_idle(&mut self, h: usize) {
        if let Some(helper) = self.helpers.get_mut(h) {
            helper.state = HelperState::Idle;
        }
    }

    /// The messages received since the last call, each with its helper's index.
    pub fn take(&self) -> Vec<(usize, FromWorker)> {
        self.inbox.borrow_mut().drain(..).collect()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for h in &self.helpers {
            h.worker.set_onmessage(None);
            h.worker.set_onerror(None);
            h.worker.terminate();
        }
    }
}

/// A job's independent parts, as [`drive`] sees them: each part can go to a helper as a
/// message, or run here one step at a time.
// The worker is single-threaded: the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Parts {
    /// A part's result.
    type Out;
    /// Parts in all.
    fn count(&self) -> usize;
    /// The message that has a helper compute part `j`.
    fn message(&self, j: usize) -> ToWorker;
    /// A helper's answer as `(part, result, the helper's memory in MiB)`, if it is one.
    fn answer(&self, msg: FromWorker) -> Option<(usize, Self::Out, f64)>;
    /// Begin part `j` here.
    fn begin(&mut self, j: usize) -> Result<(), String>;
    /// One step of the part begun here; its index and result once it is done.
    async fn step(&mut self) -> Result<Option<(usize, Self::Out)>, String>;
}

/// What [`drive`] did.
pub struct Driven<T> {
    /// `(part, result)` of every part done, in order of completion.
    pub done: Vec<(usize, T)>,
    /// Cut short by Cancel.
    pub stopped: bool,
}

/// Run `parts` on `workers` workers (this one and `workers - 1` helpers; at most
/// [`MAX_WORKERS`]; one on WebGPU, whose one device the parts would share, or when helpers
/// cannot start): each helper is handed the next part when it is free, and this worker
/// runs parts itself, reading the helpers' answers between its steps. `progress(done,
/// workers, memory)` after each part (`memory[0]` is this worker's heap, then each
/// helper's as it reports, MiB). It yields about every 50 ms so Cancel is seen; Cancel
/// stops the helpers (their parts in progress are lost) and keeps the parts done.
pub async fn drive<P: Parts>(
    parts: &mut P,
    workers: usize,
    backend: BackendKind,
    mut progress: impl FnMut(usize, usize, &[f64]),
) -> Result<Driven<P::Out>, String> {
    let total = parts.count();
    let workers = match backend {
        BackendKind::Wgpu => 1,
        _ => workers.clamp(1, MAX_WORKERS).min(total.max(1)),
    };
    let mut pool = match Pool::start(workers - 1) {
        Ok(p) => p,
        Err(e) => {
            web_sys::console::warn_1(&format!("no helper workers ({e}); working alone").into());
            Pool::start(0)?
        }
    };
    let workers = pool.len() + 1;
    let mut memory = vec![memory_mib()];
    progress(0, workers, &memory);
    let mut next = 0usize;
    let mut done = Vec::with_capacity(total);
    let mut own = false;
    let mut last_yield = now_ms();
    while done.len() < total {
        for (h, msg) in pool.take() {
            match msg {
                FromWorker::Ready => pool.set_idle(h),
                FromWorker::Failed { message } => {
                    return Err(format!("helper worker {}: {message}", h + 1));
                }
                other => {
                    if let Some((j, out, mib)) = parts.answer(other) {
                        done.push((j, out));
                        if memory.len() < h + 2 {
                            memory.resize(h + 2, 0.0);
                        }
                        memory[h + 1] = mib;
                        pool.set_idle(h);
                        progress(done.len(), workers, &memory);
                    }
                }
            }
        }
        for h in pool.idle() {
            if next < total {
                pool.assign(h, &parts.message(next));
                next += 1;
            }
        }
        if !own && next < total {
            parts.begin(next)?;
            own = true;
            next += 1;
        }
        let mut finished = false;
        if own {
            if let Some((j, out)) = parts.step().await? {
                done.push((j, out));
                own = false;
                memory[0] = memory_mib();
                progress(done.len(), workers, &memory);
                finished = true;
            }
        } else {
            // Every part handed out: wait for the helpers' answers.
            sleep_ms(10).await;
        }
        // After each part and otherwise about every 50 ms: often enough for Cancel and
        // the helpers' answers, rarely enough that the timer's clamping costs nothing.
        if finished || now_ms() - last_yield > 50.0 {
            yield_now().await;
            last_yield = now_ms();
        }
        if cancelled() {
            return Ok(Driven {
                stopped: done.len() < total,
                done,
            });
        }
    }
    Ok(Driven {
        done,
        stopped: false,
    })
}

/// A part this worker runs whole, as a task of its own (it must yield between its steps):
/// [`Parts::begin`] starts it, [`Parts::step`] looks whether it is done, and [`drive`]
/// hands the helpers their parts meanwhile. For parts that are one long `async` call
/// (an unlearning method, a training run with its panel).
pub struct OwnTask<T> {
    slot: Rc<RefCell<Option<(usize, T)>>>,
}

impl<T> Default for OwnTask<T> {
    fn default() -> Self {
        OwnTask {
            slot: Rc::default(),
        }
    }
}

impl<T: 'static> OwnTask<T> {
    /// Run part `j`'s `work` as a task.
    pub fn start(&self, j: usize, work: impl Future<Output = T> + 'static) {
        let slot = self.slot.clone();
        spawn_local(async move {
            let out = work.await;
            *slot.borrow_mut() = Some((j, out));
        });
    }

    /// The part and its outcome once the task has ended; otherwise `None` after a short
    /// sleep (so [`drive`]'s loop does not spin).
    pub async fn finished(&self) -> Option<(usize, T)> {
        let done = self.slot.borrow_mut().take();
        if done.is_none() {
            sleep_ms(20).await;
        }
        done
    }
}

/// Results that reach the page in their parts' order: a finished part waits for those
/// before it.
pub struct InOrder<T> {
    ready: BTreeMap<usize, T>,
    next: usize,
}

impl<T> Default for InOrder<T> {
    fn default() -> Self {
        InOrder {
            ready: BTreeMap::new(),
            next: 0,
        }
    }
}

impl<T> InOrder<T> {
    /// Keep part `j`'s result and `emit(part, result)` every one that is now next.
    pub fn push(&mut self, j: usize, result: T, mut emit: impl FnMut(usize, T)) {
        self.ready.insert(j, result);
        while let Some(r) = self.ready.remove(&self.next) {
            emit(self.next, r);
            self.next += 1;
        }
    }
}
