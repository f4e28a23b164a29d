//! Links that reproduce an experiment, in the page: opening one (restore the spec, ask
//! for a file it names by hash, re-run it), the teacher's lesson, locked and hidden
//! controls, the embed mode, and the "Copy link" / "Embed" buttons. The format itself
//! is `mnemo_core::link`.

use mnemo_core::ExperimentSpec;
use mnemo_core::link::{LinkPayload, attach_corpus, decode, encode};
use wasm_bindgen::{JsCast, JsValue};
use yew::prelude::*;

/// What the page knows about links.
#[derive(Default)]
pub struct ShareState {
    /// The link the page was opened with, once decoded (and its file attached).
    pub opened: Option<LinkPayload>,
    /// Why the link could not be opened (the page then starts as usual).
    pub error: Option<String>,
    /// Why an attached file was refused.
    pub file_error: Option<String>,
    /// The link's run has been started (it runs once).
    pub started: bool,
    /// The last link made with "Copy link".
    pub link: Option<String>,
    /// The last iframe snippet made with "Embed".
    pub embed: Option<String>,
}

fn location() -> Option<web_sys::Location> {
    web_sys::window().map(|w| w.location())
}

impl ShareState {
    /// Read the page's own address: a `#v1.…` fragment opens an experiment.
    pub fn from_location() -> Self {
        let hash = location().and_then(|l| l.hash().ok()).unwrap_or_default();
        let mut state = ShareState::default();
        if hash.len() > 1 {
            match decode(&hash) {
                Ok(p) => state.opened = Some(p),
                Err(e) => {
                    state.error = Some(format!(
                        "This link could not be opened: {e}. Mnemo starts with its usual settings instead."
                    ))
                }
            }
        }
        state
    }

    /// The file the opened link names and still waits for: (name, bytes).
    pub fn waiting_for_file(&self) -> Option<(String, usize)> {
        let c = self.opened.as_ref()?.corpus.as_ref()?;
        Some((c.name.clone(), c.bytes))
    }

    /// Attach the file the link names; on a mismatch nothing changes.
    pub fn attach(&mut self, text: &str) -> Result<(), String> {
        let Some(p) = &mut self.opened else {
            return Ok(());
        };
        let mut candidate = p.clone();
        attach_corpus(&mut candidate, text).map_err(|e| e.to_string())?;
        *p = candidate;
        Ok(())
    }

    /// Whether a control (a settings key such as `model.d_model`, or `all`) is locked.
    pub fn locked(&self, key: &str) -> bool {
        self.opened
            .as_ref()
            .is_some_and(|p| p.lock.iter().any(|l| l == key || l == "all"))
    }

    /// Whether a panel or control group is hidden (embed mode hides all but the view).
    pub fn hidden(&self, name: &str) -> bool {
        self.opened.as_ref().is_some_and(|p| {
            p.hide.iter().any(|h| h == name)
                || (p.embed && p.view.as_deref().unwrap_or("train") != name && name != "progress")
        })
    }

    /// Whether the page shows one view with minimal chrome.
    pub fn embedded(&self) -> bool {
        self.opened.as_ref().is_some_and(|p| p.embed)
    }

    /// Make the link for `spec` opened in `view`, put it in the address bar and try the
    /// clipboard.
    pub fn make_link(&mut self, spec: &ExperimentSpec, view: &str, embed: bool) -> String {
        let mut p = LinkPayload::new(spec.clone());
        p.view = Some(view.to_string());
        p.run = true;
        p.embed = embed;
        // A teacher's settings carry over to links made from their link.
        if let Some(o) = &self.opened {
            p.lesson = o.lesson.clone();
            p.guide = o.guide.clone();
            p.lock = o.lock.clone();
            p.hide = o.hide.clone();
        }
        let url = url_for(&p);
        if !embed
            && let Some(l) = location()
            && let Some((_, fragment)) = url.split_once('#')
        {
            let _ = l.set_hash(fragment);
        }
        copy_to_clipboard(&url);
        url
    }
}

/// The link that opens `payload` on this copy of Mnemo (the page's own address).
pub fn url_for(payload: &LinkPayload) -> String {
    let base = location()
        .and_then(|l| Some(format!("{}{}", l.origin().ok()?, l.pathname().ok()?)))
        .unwrap_or_default();
    format!("{base}#{}", encode(payload, ""))
}

/// Best effort: `navigator.clipboard.writeText` when the page may use it; the link is
/// shown in a field either way.
pub fn copy_to_clipboard(text: &str) {
    let Some(nav) = web_sys::window().map(|w| w.navigator()) else {
        return;
    };
    let Ok(clip) = js_sys::Reflect::get(&nav, &"clipboard".into()) else {
        return;
    };
    if clip.is_undefined() || clip.is_null() {
        return;
    }
    if let Ok(write) = js_sys::Reflect::get(&clip, &"writeText".into())
        && let Ok(f) = write.dyn_into::<js_sys::Function>()
    {
        // The promise may reject (no permission): await it so the rejection is handled;
        // the field still shows the link.
        if let Ok(p) = f.call1(&clip, &JsValue::from_str(text))
            && let Ok(p) = p.dyn_into::<js_sys::Promise>()
        {
            wasm_bindgen_futures::spawn_local(async move {
                let _ = wasm_bindgen_futures::JsFuture::from(p).await;
            });
        }
    }
}

/// The iframe snippet for an embed link.
pub fn iframe(url: &str) -> String {
    format!(
        "<iframe src=\"{}\" width=\"820\" height=\"900\" style=\"border:0\" title=\"Mnemo\" loading=\"lazy\"></iframe>",
        url.replace('"', "%22")
    )
}

/// The Share panel: "Copy link" and "Embed" (`on_link` gets `true` for the embed).
pub fn panel(state: &ShareState, on_link: Callback<bool>) -> Html {
    let copy = on_link.reform(|_: MouseEvent| false);
    let embed = on_link.reform(|_: MouseEvent| true);
    html! {
        <section class="panel" id="share-panel">
            <h2>{ "Share" }</h2>
            <p class="help">{ "A link holds the whole experiment (data, model, schedule, seed, the analysis and its settings): whoever opens it re-runs it and gets the same numbers on the same kind of backend." }</p>
            <div class="row actions">
                <button id="copy-link" onclick={copy}>{ "Copy link" }</button>
                <button id="embed-button" onclick={embed}>{ "Embed" }</button>
            </div>
            if let Some(l) = &state.link { <input id="share-link" class="mono wide" type="text" readonly=true value={l.clone()} /> }
            if let Some(e) = &state.embed { <textarea id="embed-snippet" class="mono wide" rows="3" readonly=true value={e.clone()} /> }
        </section>
    }
}

/// What an opened link shows above the views: the teacher's lesson (as text), and the
/// request for a file too large to travel inside the link (`on_file` gets the pick).
pub fn notices(state: &ShareState, on_file: Callback<web_sys::File>) -> Html {
    let onchange = Callback::from(move |e: Event| {
        let i: web_sys::HtmlInputElement = e.target_unchecked_into();
        let f = i.files().and_then(|f| f.get(0));
        i.set_value("");
        if let Some(f) = f {
            on_file.emit(f);
        }
    });
    html! {
        <>
        if let Some(lesson) = state.opened.as_ref().and_then(|p| p.lesson.clone()) {
            <section id="lesson" class="notice">{ lesson }</section>
        }
        if let Some((name, bytes)) = state.waiting_for_file() {
            <section id="link-file" class="notice">
                <p>{ format!("This link trains on a text of {bytes} bytes{} that was too large to travel inside it. Attach that file to run the experiment; Mnemo checks that it is the same file.",
                    if name.is_empty() { String::new() } else { format!(" (“{name}”)") }) }</p>
                <input id="link-file-input" type="file" accept=".txt,text/plain" {onchange} />
                if let Some(e) = &state.file_error { <p id="link-file-error" class="error" role="alert">{ e }</p> }
            </section>
        }
        </>
    }
}
