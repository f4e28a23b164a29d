//! Mnemo in the browser: the yew app (main thread) and the web worker that trains.
//! Everything here is a thin shell over `mnemo-core`; this crate only exists for wasm32.
#![cfg(target_arch = "wasm32")]

pub mod app;
pub mod chart;
pub mod ctors;
pub mod download;
pub mod form;
pub mod protocol;
pub mod store;
pub mod upload;
