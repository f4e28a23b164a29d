//! The trainer's optimiser: burn's AdamW, wrapped so that a saved state reads back in
//! any build (see [`ResumableAdamW`]).

use burn::optim::{
    AdamW, AdamWConfig, AdamWState, ModuleOptimizer, Optimizer, RecordState, StateSink, StateSource,
};
use burn::tensor::{Device, Tensor};

/// The trainer's optimiser for these settings (fresh state): burn's AdamW, wrapped so
/// that a saved state can be read back in any build (see [`KeptState`]).
pub(crate) fn adamw(t: &crate::spec::TrainingConfig) -> ModuleOptimizer {
    ResumableAdamW(
        AdamWConfig::new()
            .with_beta_1(t.betas.0 as f32)
            .with_beta_2(t.betas.1 as f32)
            .with_epsilon(crate::train::ADAMW_EPSILON)
            .with_weight_decay(t.weight_decay as f32)
            .build(),
    )
    .into()
}

/// burn's AdamW with a state that is read back from a record onto the CPU device.
///
/// burn materialises a loaded optimiser state on `Device::default()` and moves it to each
/// parameter's device at its next step. In a build with WebGPU compiled in, the default
/// device is WebGPU, which cannot be created on a machine without an adapter (the
/// browser's CPU path): loading would panic there. This wrapper reads the state onto the
/// CPU backend instead; the step then moves it where the parameter lives, as burn does.
/// The update itself is burn's AdamW, unchanged.
#[derive(Clone)]
struct ResumableAdamW(AdamW);

/// [`ResumableAdamW`]'s per-parameter state: AdamW's.
#[derive(Clone)]
struct KeptState<const D: usize>(AdamWState<D>);

impl<const D: usize> RecordState for KeptState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        self.0.state_flatten(prefix, out)
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        // The CPU backend this build has (a build with neither reads onto `device`).
        #[cfg(feature = "flex")]
        let cpu = Device::flex();
        #[cfg(all(not(feature = "flex"), feature = "ndarray"))]
        let cpu = Device::ndarray();
        #[cfg(not(any(feature = "flex", feature = "ndarray")))]
        let cpu = device.clone();
        let _ = device;
        AdamWState::<D>::state_unflatten(prefix, src, &cpu).map(KeptState)
    }
}

impl Optimizer for ResumableAdamW {
    type State<const D: usize> = KeptState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (tensor, state) = self.0.step(lr, tensor, grad, state.map(|s| s.0));
        (tensor, state.map(KeptState))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        KeptState(AdamW::to_device(state.0, device))
    }
}
