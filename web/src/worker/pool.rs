//! Helper workers for a job whose parts are independent (the members of a counterfactual
//! ensemble): the worker running the job starts them, hands each a part, and reads
//! their answers between its own steps. Each helper is the same program as the page's
//! worker, so a part computes the same numbers wherever it runs. Dropping the pool stops
//! every helper (after Cancel, a part in progress is lost; finished parts are kept by the
//! job).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use web_sys::Worker;

use crate::connection::{Listener, send, start_worker};
use crate::protocol::{FromWorker, ToWorker};

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
