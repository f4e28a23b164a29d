//! Mnemo's analyses of memorisation: one module per method of `METHODS.md`.
//!
//! This crate sits between the engine core and the shells. It computes on plain values
//! (panels of numbers in, result structs out) and names no browser API.

#![warn(missing_docs)]

pub mod counterfactual;
pub mod did;
pub mod eval;
pub mod export;
pub mod exposure;
pub mod extraction;
pub mod geometry;
pub mod influence;
#[cfg(not(target_family = "wasm"))]
pub mod pool;
pub mod profile;
pub mod softprompt;
pub mod tinymem;
pub mod unlearn;
