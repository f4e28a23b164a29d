//! The analysis views, one module each. A view is a yew component that owns its state,
//! its messages, its charts, its exports and its part of a link; what it shares with
//! the others comes through the shell's [`Hub`] context.
//!
//! Adding a view: a module here and one line in [`VIEWS`].

use yew::html::Scope;
use yew::prelude::*;

use crate::hub::{Hub, ViewEvent, ViewId};

pub mod counterfactual;
pub mod exposure;
pub mod extraction;
pub mod geometry;
pub mod influence;
pub mod lessons;
pub mod mitigation;
pub mod profile;
pub mod runs;
pub mod softprompt;
pub mod tokens;
pub mod train;

/// Size of a chart canvas.
pub const CHART_SIZE: (u32, u32) = (760, 340);

/// A view the navigation offers.
pub struct ViewInfo {
    /// Its id (links, kept runs and the address name it).
    pub id: ViewId,
    /// Its tab's label.
    pub label: &'static str,
    /// The component.
    pub render: fn() -> Html,
}

/// Every view, in the navigation's order.
pub const VIEWS: &[ViewInfo] = &[
    ViewInfo {
        id: train::ID,
        label: "Train",
        render: || html! { <train::TrainView /> },
    },
    ViewInfo {
        id: profile::ID,
        label: "Profile",
        render: || html! { <profile::ProfileView /> },
    },
    ViewInfo {
        id: counterfactual::ID,
        label: "Counterfactual",
        render: || html! { <counterfactual::CfView /> },
    },
    ViewInfo {
        id: extraction::ID,
        label: "Extraction",
        render: || html! { <extraction::ExView /> },
    },
    ViewInfo {
        id: softprompt::ID,
        label: "Soft prompts",
        render: || html! { <softprompt::SpView /> },
    },
    ViewInfo {
        id: influence::ID,
        label: "Influence",
        render: || html! { <influence::InfluencePanel /> },
    },
    ViewInfo {
        id: mitigation::ID,
        label: "Mitigation",
        render: || html! { <mitigation::MitigationPanel /> },
    },
    ViewInfo {
        id: geometry::ID,
        label: "Geometry",
        render: || html! { <geometry::GeometryPanel /> },
    },
    ViewInfo {
        id: exposure::ID,
        label: "Exposure",
        render: || html! { <exposure::ExposureView /> },
    },
    ViewInfo {
        id: lessons::ID,
        label: "Lessons",
        render: || html! { <lessons::LessonsView /> },
    },
    ViewInfo {
        id: runs::ID,
        label: "Your runs",
        render: || html! { <runs::RunsView /> },
    },
];

/// The view named `id`, if there is one.
pub fn find(id: &str) -> Option<&'static ViewInfo> {
    VIEWS.iter().find(|v| v.id == id)
}

/// Connect a view to the hub: its current value (re-sent through `on_hub` when it
/// changes, keep the handle) and its events (through `on_event`).
pub fn connect<C: Component>(
    link: &Scope<C>,
    id: ViewId,
    on_hub: fn(Hub) -> C::Message,
    on_event: fn(ViewEvent) -> C::Message,
) -> (Hub, ContextHandle<Hub>) {
    let (hub, handle) = link
        .context::<Hub>(link.callback(on_hub))
        .expect("views live inside the shell's hub provider");
    hub.register(id, link.callback(on_event));
    (hub, handle)
}

/// A labelled text field with its help or error underneath.
pub fn text_field(
    id: &'static str,
    label: &'static str,
    value: &str,
    check: Result<(), String>,
    help: &str,
    disabled: bool,
    oninput: Callback<InputEvent>,
) -> Html {
    let err = check.err();
    html! {
        <label class={classes!("field", err.is_some().then_some("invalid"))}><span>{ label }</span>
            <input id={id} type="text" inputmode="numeric" value={value.to_string()} {disabled} {oninput}
                aria-invalid={if err.is_some() { "true" } else { "false" }} />
            <small class={if err.is_some() { "error" } else { "help" }}>{ err.unwrap_or_else(|| help.to_string()) }</small>
        </label>
    }
}

/// The value of the input an event came from.
pub fn input_value(e: &InputEvent) -> String {
    let i: web_sys::HtmlInputElement = e.target_unchecked_into();
    i.value()
}

/// An export button.
pub fn export_button<C: Component>(
    link: &Scope<C>,
    what: &'static str,
    label: &'static str,
    msg: fn(&'static str) -> C::Message,
) -> Html {
    html! { <button onclick={link.callback(move |_| msg(what))}>{ label }</button> }
}
