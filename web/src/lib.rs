//! Mnemo in the browser: the yew app (main thread) and the web worker that trains.
//! Everything here is a thin shell over `mnemo-core`; this crate only exists for wasm32.
//!
//! The page is a [`shell`] (header, navigation, worker connection, runs, settings,
//! share) over one module per analysis in [`views`]; the worker is a dispatcher over one
//! module per job in [`worker`]; [`hub`] is what they share.
#![cfg(target_arch = "wasm32")]

pub mod banner;
pub mod chart;
pub mod connection;
pub mod ctors;
pub mod download;
pub mod form;
pub mod hub;
pub mod lessons;
pub mod offline;
pub mod protocol;
pub mod runs;
pub mod settings;
pub mod share;
pub mod shell;
pub mod store;
pub mod upload;
pub mod views;
pub mod worker;
