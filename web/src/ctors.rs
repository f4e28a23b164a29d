//! Static constructors, run once.
//!
//! burn's GPU compiler (cubecl) registers types with static constructors. A wasm binary
//! with constructors and a `main` is a "command" to wasm-ld, which then wraps *every*
//! export in a call to `__wasm_call_ctors`: each JS -> wasm call (every event handler,
//! every value crossing the boundary, thousands while a result message is decoded) re-ran
//! all of them, about 1 ms each time. When the program calls `__wasm_call_ctors` itself,
//! wasm-ld leaves the exports alone; so `main` calls it once, first.

/// Run the static constructors. Call once, at the very start of `main`.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
pub fn run_static_constructors() {
    unsafe extern "C" {
        fn __wasm_call_ctors();
    }
    // SAFETY: the linker-synthesised constructor function takes no arguments; it is
    // called exactly once, before any other code of this module runs.
    unsafe { __wasm_call_ctors() }
}
