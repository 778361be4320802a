//! Where a model runs: the CPU, or a CUDA GPU when this build has the `cuda` feature.
//!
//! The choice is a plain value ([`DeviceSpec`], parsed from `cpu`, `cuda` or `cuda:N`) whatever
//! the build; only [`DeviceSpec::open`] depends on the feature, and without it a CUDA device is
//! refused with [`ModelError::NotEnabled`].

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

use crate::error::{ModelError, Result};

/// A device named by the user, not yet opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    /// The CUDA GPU with this ordinal.
    Cuda(usize),
}

impl DeviceSpec {
    /// Open the device. Creating a CUDA device initialises the driver, a stream and cuBLAS.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(ordinal) => open_cuda(ordinal),
        }
    }
}

/// Open CUDA device `ordinal` the way ember uses it: one stream, every tensor of a model on it.
#[cfg(feature = "cuda")]
#[allow(unsafe_code)]
fn open_cuda(ordinal: usize) -> Result<Device> {
    use candle_core::cuda_backend::cudarc::driver::{result, sys};

    let fail =
        |message: String| ModelError::DeviceUnavailable { device: DeviceSpec::Cuda(ordinal).to_string(), message };
    let device = Device::new_cuda(ordinal).map_err(|e| fail(crate::error::without_backtrace(e).to_string()))?;
    let cuda = device.as_cuda_device().map_err(|e| fail(e.to_string()))?;
    // SAFETY: candle records a CUDA event per tensor use so that tensors can be shared between
    // streams; ember never does that (a model runs on the stream of the thread that calls it,
    // each forward pass ends by copying its result to the host, which waits for the stream, and
    // `SentenceEmbedder::load` waits for the weights to be on the device before returning), so
    // the events only cost driver calls on every kernel launch.
    unsafe { cuda.disable_event_tracking() };
    // Freed device memory goes back to the stream-ordered pool; by default the pool hands it back
    // to the driver at every synchronisation (each batch), and the next batch maps it again.
    // Keep it (PyTorch's caching allocator does the same).
    let dev = cuda.cuda_stream().context().cu_device();
    let mut threshold = u64::MAX;
    // SAFETY: `dev` is the device candle just opened; the attribute takes a pointer to a u64.
    unsafe {
        let pool = result::device::get_default_mem_pool(dev).map_err(|e| fail(e.to_string()))?;
        sys::cuMemPoolSetAttribute(
            pool,
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            (&mut threshold as *mut u64).cast(),
        )
        .result()
        .map_err(|e| fail(e.to_string()))?;
    }
    Ok(device)
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(_ordinal: usize) -> Result<Device> {
    Err(ModelError::NotEnabled { what: "CUDA", feature: "cuda" })
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The text of a `--device` value that is neither `cpu`, `cuda` nor `cuda:N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDeviceError(String);

impl fmt::Display for ParseDeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown device '{}' (expected cpu, cuda or cuda:N)", self.0)
    }
}

impl std::error::Error for ParseDeviceError {}

impl FromStr for DeviceSpec {
    type Err = ParseDeviceError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            _ => lower
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(|| ParseDeviceError(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        for (text, spec) in [("cpu", DeviceSpec::Cpu), ("cuda:0", DeviceSpec::Cuda(0)), ("cuda:3", DeviceSpec::Cuda(3))]
        {
            assert_eq!(text.parse::<DeviceSpec>(), Ok(spec));
            assert_eq!(spec.to_string(), text);
        }
        assert_eq!("CUDA".parse::<DeviceSpec>(), Ok(DeviceSpec::Cuda(0)));
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
        assert!("tpu".parse::<DeviceSpec>().is_err());
    }

    #[test]
    fn cpu_always_opens() {
        assert!(DeviceSpec::Cpu.open().is_ok_and(|d| d.is_cpu()));
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_so() {
        let e = DeviceSpec::Cuda(0).open().expect_err("no CUDA in this build");
        assert!(e.to_string().contains("CUDA is not enabled in this build"), "{e}");
    }
}
