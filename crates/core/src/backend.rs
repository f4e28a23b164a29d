//! Which burn device a run uses. Models and tensors carry a runtime device in burn 0.22;
//! this enum is the serialisable name of that choice.

pub use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// The compute backends Mnemo knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn's pure-Rust CPU backend (`flex`), the default everywhere.
    #[default]
    Flex,
    /// burn's ndarray CPU backend (native benchmarks only).
    Ndarray,
    /// burn's wgpu backend: WebGPU in the browser, Vulkan/Metal natively.
    Wgpu,
    /// burn's CUDA backend (native builds with the `cuda` feature).
    Cuda,
}

impl BackendKind {
    /// Whether a run on this backend can write resume points (see [`crate::resume`]):
    /// the optimiser's state is read back synchronously, which WebGPU in a browser cannot
    /// do.
    pub fn resumable(self) -> bool {
        !matches!(self, BackendKind::Wgpu)
    }

    /// Human-readable label, as the interface shows it.
    pub fn label(self) -> &'static str {
        match self {
            BackendKind::Flex => "CPU (flex)",
            BackendKind::Ndarray => "CPU (ndarray)",
            BackendKind::Wgpu => "WebGPU",
            BackendKind::Cuda => "CUDA",
        }
    }

    /// Whether this build can create the backend's device synchronously. WebGPU in the
    /// browser needs an asynchronous initialisation done by the shell.
    pub fn available(self) -> bool {
        match self {
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::Ndarray => cfg!(feature = "ndarray"),
            BackendKind::Wgpu => cfg!(any(feature = "wgpu", feature = "webgpu")),
            BackendKind::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The CPU device for this kind, when it is a CPU backend compiled into this build.
    pub fn cpu_device(self) -> Option<Device> {
        match self {
            #[cfg(feature = "flex")]
            BackendKind::Flex => Some(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            BackendKind::Ndarray => Some(Device::ndarray()),
            _ => None,
        }
    }
}
