//! The shell's connection to the training worker and to the address bar.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};
use yew::html;

use crate::hub::ViewId;
use crate::protocol::{FromWorker, ToWorker};
use crate::shell::{App, Msg};
use crate::views;

/// An event listener kept alive as long as the page.
pub type Listener = Closure<dyn FnMut(web_sys::Event)>;

pub fn spawn_worker(link: &html::Scope<App>) -> Result<(Worker, Vec<Listener>), String> {
    let opts = WorkerOptions::new();
    opts.set_type(WorkerType::Classic);
    let worker =
        Worker::new_with_options("./worker_loader.js", &opts).map_err(|e| format!("{e:?}"))?;
    let l = link.clone();
    let on_message = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
        let e: MessageEvent = e.unchecked_into();
        l.send_message(Msg::Worker(
            serde_wasm_bindgen::from_value::<FromWorker>(e.data()).unwrap_or_else(|err| {
                FromWorker::Failed {
                    message: format!("unreadable message from the worker: {err}"),
                }
            }),
        ))
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let l = link.clone();
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_e: web_sys::Event| {
        l.send_message(Msg::Worker(FromWorker::Failed {
            message: "the training worker stopped unexpectedly (see the browser console)".into(),
        }));
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    Ok((worker, vec![on_message, on_error]))
}

/// The view the address names (`?view=…`), if it names one.
pub fn view_in_address() -> Option<ViewId> {
    let search = web_sys::window()?.location().search().ok()?;
    let id = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| kv.strip_prefix("view="))?;
    views::find(id).map(|v| v.id)
}

/// Post `msg` to `worker`; a message that cannot go is logged (not expected: every
/// message is plain data), never dropped silently.
pub fn send(worker: Option<&Worker>, msg: &ToWorker) {
    let Some(w) = worker else { return };
    let sent = serde_wasm_bindgen::to_value(msg)
        .map_err(|e| e.to_string())
        .and_then(|v| w.post_message(&v).map_err(|e| format!("{e:?}")));
    if let Err(e) = sent {
        web_sys::console::error_1(&format!("cannot send {msg:?} to the worker: {e}").into());
    }
}
