//! The training worker's entry point: everything is in `mnemo_web::worker`.

fn main() {
    #[cfg(target_arch = "wasm32")]
    {
        mnemo_web::ctors::run_static_constructors();
        mnemo_web::worker::start();
    }
}
