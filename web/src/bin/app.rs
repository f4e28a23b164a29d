//! The page: a yew app that talks to the training worker.

fn main() {
    #[cfg(target_arch = "wasm32")]
    {
        mnemo_web::ctors::run_static_constructors();
        console_error_panic_hook::set_once();
        yew::Renderer::<mnemo_web::shell::App>::new().render();
    }
}
