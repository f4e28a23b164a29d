//! Native devices for a [`BackendKind`]: the CPU backends, wgpu (Vulkan on Linux, Metal on
//! macOS, DX12 on Windows) and CUDA, each only where this build has its feature.
//!
//! A GPU device is made once per process and probed with a tiny tensor read, so a build
//! without the backend, a machine without an adapter or without a CUDA driver gives a
//! [`DeviceError`] instead of a panic deep inside a run.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, OnceLock};

use thiserror::Error;

use crate::backend::{BackendKind, Device};

/// Why a native device could not be made.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DeviceError {
    /// The backend's cargo feature was not compiled in.
    #[error("backend {backend} is not compiled into this build (build with --features {feature})")]
    NotCompiled {
        /// The backend's name.
        backend: &'static str,
        /// The cargo feature that adds it.
        feature: &'static str,
    },
    /// The backend is compiled in but has no usable device on this machine.
    #[error("backend {backend} has no usable device here: {message}")]
    Unavailable {
        /// The backend's name.
        backend: &'static str,
        /// What the backend said.
        message: String,
    },
}

/// A native device and the description every output names it by (e.g. `cpu (flex)`,
/// `wgpu: llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)`, `cuda: device 0`).
#[derive(Debug, Clone)]
pub struct NativeDevice {
    /// The burn device.
    pub device: Device,
    /// The device's description.
    pub name: String,
}

/// The cargo feature name of a backend, as `--features` takes it.
pub fn feature(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Flex => "flex",
        BackendKind::Ndarray => "ndarray",
        BackendKind::Wgpu => "wgpu",
        BackendKind::Cuda => "cuda",
    }
}

/// The native device of `kind`. GPU devices are created and probed on the first call;
/// later calls return the same device (burn's runtimes can be initialised only once per
/// process) or the same error.
pub fn device(kind: BackendKind) -> Result<NativeDevice, DeviceError> {
    match kind {
        BackendKind::Flex | BackendKind::Ndarray => {
            let device = kind.cpu_device().ok_or(not_compiled(kind))?;
            Ok(NativeDevice {
                device,
                name: format!("cpu ({})", feature(kind)),
            })
        }
        BackendKind::Wgpu => cached(&WGPU, wgpu_device),
        BackendKind::Cuda => cached(&CUDA, cuda_device),
    }
}

type Slot = OnceLock<Result<NativeDevice, DeviceError>>;
static WGPU: Slot = OnceLock::new();
static CUDA: Slot = OnceLock::new();

fn cached(
    slot: &'static Slot,
    make: fn() -> Result<NativeDevice, DeviceError>,
) -> Result<NativeDevice, DeviceError> {
    slot.get_or_init(make).clone()
}

fn not_compiled(kind: BackendKind) -> DeviceError {
    DeviceError::NotCompiled {
        backend: feature(kind),
        feature: feature(kind),
    }
}

/// Run `f`, turning a panic into its message. The panic hook is silenced meanwhile so a
/// failed probe prints only the error the caller reports.
#[cfg_attr(
    not(any(feature = "wgpu", feature = "webgpu", feature = "cuda")),
    allow(dead_code)
)]
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Mutex<()> = Mutex::new(());
    let _lock = HOOK.lock().unwrap_or_else(|e| e.into_inner());
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the backend panicked".to_string())
    })
}

/// Read one small tensor back from `device`: the first operation that needs the driver.
#[cfg_attr(
    not(any(feature = "wgpu", feature = "webgpu", feature = "cuda")),
    allow(dead_code)
)]
fn probe(device: &Device) -> Result<(), String> {
    let data = guarded(|| {
        burn::tensor::Tensor::<1>::from_floats([1.0, 2.0], device)
            .sum()
            .try_into_data()
    })?
    .map_err(|e| format!("{e:?}"))?;
    let sum = data
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?
        .first()
        .copied();
    if sum == Some(3.0) {
        Ok(())
    } else {
        Err(format!("the probe read back {sum:?} instead of 3"))
    }
}

#[cfg(any(feature = "wgpu", feature = "webgpu"))]
fn wgpu_device() -> Result<NativeDevice, DeviceError> {
    let unavailable = |message: String| DeviceError::Unavailable {
        backend: "wgpu",
        message,
    };
    let (device, setup) = guarded(|| Device::wgpu_options().init_with_setup())
        .map_err(unavailable)?
        .map_err(|e| unavailable(e.to_string()))?;
    let info = setup.adapter.get_info();
    probe(&device).map_err(unavailable)?;
    Ok(NativeDevice {
        device,
        name: format!("wgpu: {} ({:?})", info.name, info.backend),
    })
}

#[cfg(not(any(feature = "wgpu", feature = "webgpu")))]
fn wgpu_device() -> Result<NativeDevice, DeviceError> {
    Err(not_compiled(BackendKind::Wgpu))
}

#[cfg(feature = "cuda")]
fn cuda_device() -> Result<NativeDevice, DeviceError> {
    let device = guarded(|| Device::cuda(0)).map_err(|message| DeviceError::Unavailable {
        backend: "cuda",
        message,
    })?;
    probe(&device).map_err(|message| DeviceError::Unavailable {
        backend: "cuda",
        message,
    })?;
    Ok(NativeDevice {
        device,
        name: "cuda: device 0".to_string(),
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda_device() -> Result<NativeDevice, DeviceError> {
    Err(not_compiled(BackendKind::Cuda))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_device_is_named_and_cuda_refused_without_its_feature() {
        let cpu = device(BackendKind::Flex).expect("flex is compiled into the tests");
        assert_eq!(cpu.name, "cpu (flex)");
        if !cfg!(feature = "cuda") {
            let err = device(BackendKind::Cuda).unwrap_err();
            assert_eq!(
                err.to_string(),
                "backend cuda is not compiled into this build (build with --features cuda)"
            );
        }
    }

    #[test]
    fn a_panic_becomes_its_message() {
        let r: Result<(), String> = guarded(|| panic!("no adapter {}", 7));
        assert_eq!(r.unwrap_err(), "no adapter 7");
    }
}
