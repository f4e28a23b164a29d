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

/// Start the training worker, its messages going to the shell.
pub fn spawn_worker(link: &html::Scope<App>) -> Result<(Worker, Vec<Listener>), String> {
    let l = link.clone();
    start_worker(move |m| l.send_message(Msg::Worker(m)))
}

/// Start a training worker (the page's, or a helper of a pool started by a worker);
/// `on_message` gets what it posts, an unreadable message or a crash as
/// [`FromWorker::Failed`].
pub fn start_worker(
    on_message: impl Fn(FromWorker) + 'static,
) -> Result<(Worker, Vec<Listener>), String> {
    let opts = WorkerOptions::new();
    opts.set_type(WorkerType::Classic);
    let worker =
        Worker::new_with_options("./worker_loader.js", &opts).map_err(|e| format!("{e:?}"))?;
    let on_message = std::rc::Rc::new(on_message);
    let on = on_message.clone();
    let on_data = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
        let e: MessageEvent = e.unchecked_into();
        on(
            serde_wasm_bindgen::from_value::<FromWorker>(e.data()).unwrap_or_else(|err| {
                FromWorker::Failed {
                    message: format!("unreadable message from the worker: {err}"),
                }
            }),
        )
    });
    worker.set_onmessage(Some(on_data.as_ref().unchecked_ref()));
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_e: web_sys::Event| {
        on_message(FromWorker::Failed {
            message: "the training worker stopped unexpectedly (see the browser console)".into(),
        });
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    Ok((worker, vec![on_data, on_error]))
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
