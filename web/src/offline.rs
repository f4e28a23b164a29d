//! The footer's version stamp and offline use: the page registers the bundle's service
//! worker (`sw.js`, written by `scripts/stamp-offline`), which keeps a copy of every file
//! after the first visit, so Mnemo opens and trains without a network. When a new build
//! has been installed beside the running one, a notice says so: it takes effect on the
//! next visit, or at once with "Use it now" (not while a job runs: reloading would end it).

use std::cell::RefCell;
use std::rc::Rc;

use mnemo_core::link::LINK_VERSION;
use mnemo_core::spec::SPEC_VERSION;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    ServiceWorker, ServiceWorkerContainer, ServiceWorkerRegistration, ServiceWorkerState,
};
use yew::prelude::*;

/// What the page knows of its offline copy.
#[derive(Debug, Clone, PartialEq)]
pub enum OfflineState {
    /// The service worker is being registered.
    Starting,
    /// The files are being saved.
    Saving,
    /// Every file is kept: the page opens without a network.
    Ready,
    /// A newer build is installed and waits for the next visit.
    Update,
    /// No offline copy, and why.
    Unavailable(String),
}

/// The version stamp: the package version, the commit and the link and spec versions read.
pub fn stamp() -> String {
    format!(
        "Mnemo {} ({}) · opens links up to v{LINK_VERSION} and specs up to v{SPEC_VERSION}",
        env!("CARGO_PKG_VERSION"),
        env!("MNEMO_COMMIT"),
    )
}

#[derive(Properties, PartialEq)]
pub struct Props {
    /// A job runs (reloading now would end it).
    pub running: bool,
}

/// The stamp, the offline state and, when a new version waits, the notice.
#[function_component(Offline)]
pub fn offline(props: &Props) -> Html {
    let state = use_state(|| OfflineState::Starting);
    let online = use_state(|| web_sys::window().is_none_or(|w| w.navigator().on_line()));
    let waiting = use_mut_ref(|| None::<ServiceWorker>);
    {
        let set = state.setter();
        let waiting = waiting.clone();
        let online = online.setter();
        use_effect_with((), move |_| {
            watch_network(online);
            register(set, waiting);
        });
    }
    let use_now = {
        let waiting = waiting.clone();
        Callback::from(move |_: MouseEvent| take_over(waiting.borrow().as_ref()))
    };
    let (code, text) = match &*state {
        OfflineState::Starting => ("starting", "Offline use: checking…".to_string()),
        OfflineState::Saving => ("saving", "Saving Mnemo for offline use…".to_string()),
        OfflineState::Ready | OfflineState::Update => (
            "ready",
            "Saved for offline use: this page opens without a network.".to_string(),
        ),
        OfflineState::Unavailable(why) => ("unavailable", format!("No offline copy: {why}.")),
    };
    html! {
        <>
            <small id="version" class="mono">{ stamp() }</small>
            <small id="offline-state" data-state={code} data-online={online.to_string()}>
                { if *online { text } else { "You are offline: Mnemo runs from its saved copy.".to_string() } }
            </small>
            if !*online {
                <div id="offline-notice" class="toast" role="status">
                    { "You are offline: Mnemo runs from its saved copy, and your runs stay in this browser." }
                </div>
            }
            if *state == OfflineState::Update {
                <div id="update-ready" class="toast" role="status">
                    { "A new version of Mnemo is ready. It opens on your next visit. " }
                    <button id="update-now" onclick={use_now} disabled={props.running}
                        title={if props.running { "after the running job: reloading now would end it" } else { "reload the page with the new version" }}>
                        { "Use it now" }</button>
                </div>
            }
        </>
    }
}

/// `navigator.serviceWorker`, where the browser has it (not in an insecure context).
fn container() -> Option<ServiceWorkerContainer> {
    let nav = web_sys::window()?.navigator();
    js_sys::Reflect::get(&nav, &"serviceWorker".into())
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
        .map(JsCast::unchecked_into)
}

/// Keep `online` up to date with the browser's `online` and `offline` events.
fn watch_network(online: UseStateSetter<bool>) {
    let Some(w) = web_sys::window() else { return };
    for (event, value) in [("online", true), ("offline", false)] {
        let set = online.clone();
        let f = Closure::<dyn Fn()>::new(move || set.set(value));
        let _ = w.add_event_listener_with_callback(event, f.as_ref().unchecked_ref());
        // The page's lifetime: the listener is never removed.
        f.forget();
    }
}

fn register(set: UseStateSetter<OfflineState>, waiting: Rc<RefCell<Option<ServiceWorker>>>) {
    let Some(c) = container() else {
        let why = if web_sys::window().is_some_and(|w| w.is_secure_context()) {
            "this browser does not keep pages for offline use"
        } else {
            "the page is not served over https (or from localhost)"
        };
        set.set(OfflineState::Unavailable(why.into()));
        return;
    };
    let promise = c.register("./sw.js");
    wasm_bindgen_futures::spawn_local(async move {
        match JsFuture::from(promise).await {
            Ok(reg) => watch(&c, &reg.unchecked_into(), &set, &waiting),
            Err(e) => {
                let why = e
                    .dyn_ref::<js_sys::Error>()
                    .map_or_else(|| format!("{e:?}"), |e| String::from(e.message()));
                set.set(OfflineState::Unavailable(format!(
                    "the offline copy could not be registered ({why})"
                )));
            }
        }
    });
}

/// Follow the registration: a version waiting behind a controlling one is an update; the
/// first version becomes ready when it is active.
fn watch(
    c: &ServiceWorkerContainer,
    reg: &ServiceWorkerRegistration,
    set: &UseStateSetter<OfflineState>,
    waiting: &Rc<RefCell<Option<ServiceWorker>>>,
) {
    let controlled = c.controller().is_some();
    if let Some(w) = reg.waiting().filter(|_| controlled) {
        *waiting.borrow_mut() = Some(w);
        set.set(OfflineState::Update);
    } else if reg.installing().is_some() {
        set.set(OfflineState::Saving);
    } else if reg.active().is_some() {
        set.set(OfflineState::Ready);
    }
    if let Some(w) = reg.installing() {
        follow(c, w, set, waiting);
    }
    let (c2, reg2, set2, waiting2) = (c.clone(), reg.clone(), set.clone(), waiting.clone());
    let found = Closure::<dyn Fn()>::new(move || {
        if let Some(w) = reg2.installing() {
            follow(&c2, w, &set2, &waiting2);
        }
    });
    reg.set_onupdatefound(Some(found.as_ref().unchecked_ref()));
    found.forget();
}

/// Follow one installing version to its end.
fn follow(
    c: &ServiceWorkerContainer,
    w: ServiceWorker,
    set: &UseStateSetter<OfflineState>,
    waiting: &Rc<RefCell<Option<ServiceWorker>>>,
) {
    let (c, set, waiting, sw) = (c.clone(), set.clone(), waiting.clone(), w.clone());
    let changed = Closure::<dyn Fn()>::new(move || match sw.state() {
        ServiceWorkerState::Installed if c.controller().is_some() => {
            *waiting.borrow_mut() = Some(sw.clone());
            set.set(OfflineState::Update);
        }
        ServiceWorkerState::Activated if waiting.borrow().is_none() => {
            set.set(OfflineState::Ready);
        }
        ServiceWorkerState::Redundant if c.controller().is_none() => set.set(
            OfflineState::Unavailable("saving the files failed (is the disk full?)".into()),
        ),
        _ => {}
    });
    w.set_onstatechange(Some(changed.as_ref().unchecked_ref()));
    changed.forget();
}

/// "Use it now": the waiting version takes over, then the page reloads with it.
fn take_over(waiting: Option<&ServiceWorker>) {
    let (Some(w), Some(c)) = (waiting, container()) else {
        return;
    };
    let reload = Closure::<dyn Fn()>::new(|| {
        if let Some(w) = web_sys::window() {
            let _ = w.location().reload();
        }
    });
    c.set_oncontrollerchange(Some(reload.as_ref().unchecked_ref()));
    reload.forget();
    let _ = w.post_message(&JsValue::from_str("skip-waiting"));
}
