//! The data and model settings (part of the shell, reachable from every view): the
//! source (built-in facts or the user's text, typed, pasted, dropped or uploaded), how
//! it is split and tokenised, the model and the schedule. Every field is checked as the
//! user types; the shell learns the form's experiment (or that a field is invalid)
//! through `on_change` and shares it with the views.

use std::rc::Rc;

use mnemo_core::ExperimentSpec;
use mnemo_core::upload::{UPLOAD_CAP, UploadedTexts};
use web_sys::{File, HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

use crate::download::download_text;
use crate::form::{FIELDS, Form, Source};
use crate::hub::Chrome;
use crate::views::input_value;

/// The settings' properties.
#[derive(Properties, PartialEq)]
pub struct Props {
    /// The experiment to show; a new `generation` puts it in the form.
    pub load: Rc<ExperimentSpec>,
    /// Counts the loads.
    pub generation: u32,
    /// A job is running: nothing can change.
    pub disabled: bool,
    /// What the opened link locks and hides.
    pub chrome: Chrome,
    /// The form's experiment, or `None` while a field is invalid.
    pub on_change: Callback<Option<ExperimentSpec>>,
}

/// Messages of the settings.
pub enum Msg {
    /// Data source radio.
    SetSource(Source),
    /// Text area.
    SetText(String),
    /// Split select.
    SetSplit(String),
    /// Window length.
    SetWindow(String),
    /// Tokenizer select.
    SetTokenizer(String),
    /// Held-out percentage.
    SetHeldout(String),
    /// A numeric field.
    SetField(&'static str, String),
    /// A file was picked or dropped.
    FileChosen(File),
    /// A file was read (or refused).
    FileRead(Result<(String, UploadedTexts), String>),
    /// Drag state of the drop zone.
    Dragging(bool),
    /// Download the form's experiment.
    DownloadSpec,
}

/// The settings panel.
pub struct Settings {
    form: Form,
    generation: u32,
    upload: Option<Result<String, String>>,
    dragging: bool,
}

fn read_file(file: File, link: html::Scope<Settings>) {
    wasm_bindgen_futures::spawn_local(async move {
        let name = file.name();
        let result = crate::upload::read_text(&file).await.and_then(|text| {
            mnemo_core::upload::read_texts(&name, &text)
                .map(|t| (name.clone(), t))
                .map_err(|e| e.to_string())
        });
        link.send_message(Msg::FileRead(result));
    });
}

fn select_value(e: &Event) -> String {
    let s: HtmlSelectElement = e.target_unchecked_into();
    s.value()
}

impl Component for Settings {
    type Message = Msg;
    type Properties = Props;

    fn create(ctx: &Context<Self>) -> Self {
        let form = Form::from_spec(&ctx.props().load);
        ctx.props().on_change.emit(form.to_spec().ok());
        Settings {
            form,
            generation: ctx.props().generation,
            upload: None,
            dragging: false,
        }
    }

    fn changed(&mut self, ctx: &Context<Self>, _old: &Props) -> bool {
        if ctx.props().generation != self.generation {
            self.generation = ctx.props().generation;
            self.form = Form::from_spec(&ctx.props().load);
            ctx.props().on_change.emit(self.form.to_spec().ok());
        }
        true
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::SetSource(s) => self.form.source = s,
            Msg::SetText(t) => self.form.text = t,
            Msg::SetSplit(s) => self.form.split = s,
            Msg::SetWindow(w) => self.form.window = w,
            Msg::SetTokenizer(t) => self.form.tokenizer = t,
            Msg::SetHeldout(h) => self.form.heldout = h,
            Msg::SetField(k, v) => {
                self.form.fields.insert(k, v);
            }
            Msg::FileChosen(file) => {
                self.dragging = false;
                read_file(file, ctx.link().clone());
                return true;
            }
            Msg::FileRead(Ok((name, texts))) => {
                let text = texts.text;
                self.upload = Some(Ok(match texts.records {
                    Some(n) => {
                        // One record per line: split by lines.
                        self.form.split = "lines".into();
                        format!(
                            "Loaded “{name}”: {n} records from its text column, one instance each."
                        )
                    }
                    None => {
                        let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
                        format!(
                            "Loaded “{name}”: {} characters, {lines} non-empty lines.",
                            text.chars().count()
                        )
                    }
                }));
                self.form.text = text;
                self.form.source = Source::Text;
            }
            Msg::FileRead(Err(message)) => {
                self.dragging = false;
                self.upload = Some(Err(message));
                return true;
            }
            Msg::Dragging(d) => {
                self.dragging = d;
                return true;
            }
            Msg::DownloadSpec => {
                if let Ok(spec) = self.form.to_spec()
                    && let Err(e) =
                        download_text("mnemo-spec.json", "application/json", &spec.to_json())
                {
                    web_sys::console::warn_1(&e.into());
                }
                return false;
            }
        }
        ctx.props().on_change.emit(self.form.to_spec().ok());
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let props = ctx.props();
        let spec = self.form.to_spec();
        let errors = spec.as_ref().err().cloned().unwrap_or_default();
        let running = props.disabled;
        let data_locked = props.chrome.locks("data");
        let field = |key: &'static str, label: &'static str, help: &'static str| {
            let value = self.form.fields.get(key).cloned().unwrap_or_default();
            let err = errors.get(key).cloned();
            let oninput = link.callback(move |e: InputEvent| Msg::SetField(key, input_value(&e)));
            let id = format!("f-{}", key.replace('.', "-"));
            html! {
                <label class={classes!("field", err.is_some().then_some("invalid"))}>
                    <span>{ label }</span>
                    <input id={id} type="text" inputmode="decimal" value={value} {oninput} disabled={running || props.chrome.locks(key)}
                           aria-invalid={if err.is_some() { "true" } else { "false" }} />
                    <small class={if err.is_some() { "error" } else { "help" }}>{ err.unwrap_or_else(|| help.to_string()) }</small>
                </label>
            }
        };
        let ondrop = link.callback(|e: DragEvent| {
            e.prevent_default();
            match e
                .data_transfer()
                .and_then(|d| d.files())
                .and_then(|f| f.get(0))
            {
                Some(file) => Msg::FileChosen(file),
                None => Msg::Dragging(false),
            }
        });
        let ondragover = link.callback(|e: DragEvent| {
            e.prevent_default();
            Msg::Dragging(true)
        });
        let ondragleave = link.callback(|_: DragEvent| Msg::Dragging(false));
        let onfile = link.batch_callback(|e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let file = input.files().and_then(|f| f.get(0));
            input.set_value("");
            file.map(Msg::FileChosen)
        });
        let heldout_err = errors.get("data.heldout_fraction").cloned();
        html! {
            <>
            <section class={classes!("panel", props.chrome.hides("data").then_some("hidden"))} id="data-panel">
                <h2>{ "Data" }</h2>
                <div class="row">
                    <label><input type="radio" name="source" checked={self.form.source == Source::Builtin} disabled={running || data_locked}
                        onchange={link.callback(|_| Msg::SetSource(Source::Builtin))} />{ " Built-in: invented facts" }</label>
                    <label><input id="source-text" type="radio" name="source" checked={self.form.source == Source::Text} disabled={running || data_locked}
                        onchange={link.callback(|_| Msg::SetSource(Source::Text))} />{ " My text" }</label>
                </div>
                <div class={classes!("dropzone", self.dragging.then_some("dragging"))} {ondrop} {ondragover} {ondragleave}>
                    <textarea id="text-input" rows="6" placeholder="Paste or type text here, or drop a .txt file on this box: one instance per line or paragraph."
                        value={self.form.text.clone()} disabled={running || data_locked}
                        oninput={link.callback(|e: InputEvent| { let t: HtmlTextAreaElement = e.target_unchecked_into(); Msg::SetText(t.value()) })}
                        onfocus={link.callback(|_| Msg::SetSource(Source::Text))} />
                    <div class="row">
                        <label class="file">{ "Upload a text file " }
                            <input id="file-input" type="file" accept=".txt,.csv,.jsonl,.ndjson,text/plain,text/csv" onchange={onfile} disabled={running || data_locked} />
                        </label>
                        <small class="help">{ format!("Plain UTF-8 text, or a .csv / .jsonl table with a “text” column; up to {} MiB.", UPLOAD_CAP / 1024 / 1024) }</small>
                    </div>
                </div>
                { match &self.upload {
                    Some(Ok(m)) => html! { <p id="upload-message" class="ok" role="status">{ m }</p> },
                    Some(Err(m)) => html! { <p id="upload-message" class="error" role="alert">{ m }</p> },
                    None => html! {},
                } }
                if let Some(e) = errors.get("data") { <p class="error">{ e }</p> }
                <div class="row">
                    <label class="field"><span>{ "Instances" }</span>
                        <select id="split-select" disabled={running || data_locked} onchange={link.callback(|e: Event| Msg::SetSplit(select_value(&e)))}>
                            <option value="lines" selected={self.form.split == "lines"}>{ "one per line" }</option>
                            <option value="paragraphs" selected={self.form.split == "paragraphs"}>{ "one per paragraph" }</option>
                            <option value="windows" selected={self.form.split == "windows"}>{ "fixed-length windows" }</option>
                        </select>
                    </label>
                    if self.form.split == "windows" {
                        <label class="field"><span>{ "Window (characters)" }</span>
                            <input type="text" value={self.form.window.clone()} disabled={running || data_locked}
                                oninput={link.callback(|e: InputEvent| Msg::SetWindow(input_value(&e)))} />
                            if let Some(e) = errors.get("data.source.split.length") { <small class="error">{ e }</small> }
                        </label>
                    }
                    <label class="field"><span>{ "Tokenizer" }</span>
                        <select disabled={running || data_locked} onchange={link.callback(|e: Event| Msg::SetTokenizer(select_value(&e)))}>
                            <option value="char" selected={self.form.tokenizer == "char"}>{ "characters" }</option>
                            <option value="byte" selected={self.form.tokenizer == "byte"}>{ "bytes (UTF-8)" }</option>
                        </select>
                    </label>
                    <label class={classes!("field", heldout_err.is_some().then_some("invalid"))}><span>{ "Held out (%)" }</span>
                        <input type="text" value={self.form.heldout.clone()} disabled={running || data_locked}
                            oninput={link.callback(|e: InputEvent| Msg::SetHeldout(input_value(&e)))} />
                        <small class={if heldout_err.is_some() { "error" } else { "help" }}>
                            { heldout_err.clone().unwrap_or_else(|| "never trained on".into()) }</small>
                    </label>
                </div>
            </section>
            <section class={classes!("panel", props.chrome.hides("model").then_some("hidden"))} id="model-panel">
                <h2>{ "Model and training" }</h2>
                <div class="grid">
                    { for FIELDS.iter().map(|(k, l, h)| field(k, l, h)) }
                </div>
                <div class="row actions">
                    <button onclick={link.callback(|_| Msg::DownloadSpec)} disabled={spec.is_err()}>{ "Download spec" }</button>
                </div>
            </section>
            </>
        }
    }
}
