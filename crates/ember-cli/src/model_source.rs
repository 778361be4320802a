//! Where models come from: the command-line flags shared by every subcommand that loads a model,
//! and the Hugging Face environment variables (read here, at the edge, and nowhere else).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use clap::ValueEnum;
use ember_models::{resolve, DeviceSpec, HubOptions, LoadOptions, SentenceEmbedder};

/// The default model: small, fast, and what sentence-transformers' quickstart uses.
pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// A local model directory, a hub id (`org/name`) or a catalog alias (`minilm`).
    #[arg(long, short = 'm', default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Hub revision (branch, tag or commit).
    #[arg(long, default_value = "main")]
    pub revision: String,
}

/// Where and in which precision the model runs.
#[derive(Debug, Args, Clone, Default)]
pub struct RuntimeArgs {
    /// Device: `cpu`, or `cuda` / `cuda:N` in a build with the `cuda` feature.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub device: DeviceSpec,
    /// Compute dtype of the weights. f16/bf16 are for GPUs: on the CPU they leave ember's fast
    /// f32 kernels for candle's generic ones.
    #[arg(long, value_enum, default_value_t = ComputeDtype::F32)]
    pub dtype: ComputeDtype,
}

/// `--dtype` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ComputeDtype {
    #[default]
    F32,
    F16,
    Bf16,
}

impl ComputeDtype {
    pub fn candle(self) -> candle_core::DType {
        match self {
            ComputeDtype::F32 => candle_core::DType::F32,
            ComputeDtype::F16 => candle_core::DType::F16,
            ComputeDtype::Bf16 => candle_core::DType::BF16,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ComputeDtype::F32 => "f32",
            ComputeDtype::F16 => "f16",
            ComputeDtype::Bf16 => "bf16",
        }
    }
}

fn parse_device(s: &str) -> Result<DeviceSpec, String> {
    s.parse().map_err(|e: ember_models::device::ParseDeviceError| e.to_string())
}

/// Hub options from HF_ENDPOINT, HF_HOME, HF_HUB_OFFLINE and HF_TOKEN.
pub fn hub_options(revision: &str) -> HubOptions {
    let home = std::env::var_os("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("huggingface")
    });
    let mut hub = HubOptions::with_home(&home);
    if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
        hub.endpoint = endpoint.trim_end_matches('/').to_string();
    }
    hub.offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "yes"));
    hub.token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty());
    hub.revision = revision.to_string();
    hub
}

/// Resolve and load the model named by `args` on the CPU in f32.
pub fn load(args: &ModelArgs) -> anyhow::Result<SentenceEmbedder> {
    load_on(args, &RuntimeArgs::default())
}

/// Resolve and load the model named by `args` on `runtime`'s device and dtype.
pub fn load_on(args: &ModelArgs, runtime: &RuntimeArgs) -> anyhow::Result<SentenceEmbedder> {
    // Open the device first: a build without CUDA says so before any download.
    let device = runtime.device.open()?;
    let dir = resolve(&args.model, &hub_options(&args.revision))?;
    let options = LoadOptions { device, dtype: runtime.dtype.candle() };
    let model = SentenceEmbedder::load(&args.model, &dir, &options)
        .with_context(|| format!("loading model '{}' from {}", args.model, dir.display()))?;
    Ok(model)
}
