//! The padding-free CPU path ([`crate::cpu`]) equals candle's padded path on real weights.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use super::{forward_padded, ArchConfig, Encoder};
use crate::cpu::testing::max_abs_diff;
use crate::weights;

fn load(dir: &Path) -> Box<dyn Encoder> {
    let arch = ArchConfig::load(&dir.join("config.json")).expect("config.json");
    let files = weights::weight_files(dir).expect("weights");
    let tensors = weights::load_tensors(&files, DType::F32, &Device::Cpu).expect("tensors");
    let vb =
        weights::encoder_var_builder(tensors, arch.embedding_key(), DType::F32, &Device::Cpu, dir).expect("prefix");
    arch.build(vb, &Device::Cpu).expect("encoder")
}

/// Sequences of the given lengths with ids drawn from `[start, vocab)`, first id `first`.
fn sequences(lengths: &[usize], first: u32, vocab: u32) -> Vec<u32> {
    let mut state = 12345u32;
    lengths
        .iter()
        .flat_map(|&n| {
            (0..n)
                .map(|i| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    if i == 0 {
                        first
                    } else {
                        1000 + (state >> 8) % (vocab - 1000)
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn check(dir: &Path, first: u32, vocab: u32, tolerance: f32) {
    let encoder = load(dir);
    for lengths in [vec![1], vec![9], vec![3, 17, 1, 40, 8], vec![128, 5]] {
        let ids = sequences(&lengths, first, vocab);
        let fast = encoder.forward_packed(&ids, &lengths, &Device::Cpu).expect("fast path");
        let candle = forward_padded(encoder.as_ref(), &ids, &lengths, &Device::Cpu).expect("candle path");
        let diff = max_abs_diff(&fast, &candle);
        assert!(diff <= tolerance, "{}: lengths {lengths:?}: max abs diff {diff}", dir.display());
    }
}

fn test_model(name: &str) -> Option<PathBuf> {
    let base = std::env::var_os("EMBER_MODELS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ember-test-models")))?;
    let dir = base.join(name);
    if dir.join("model.safetensors").exists() {
        Some(dir)
    } else {
        eprintln!("*** SKIPPED: {} is missing (scripts/fetch-models.sh fetches it) ***", dir.display());
        None
    }
}

#[test]
fn tiny_xlm_roberta_fast_path_equals_candle() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-xlmr");
    check(&dir, 0, 250_002, 1e-5);
}

#[test]
fn minilm_fast_path_equals_candle() {
    if let Some(dir) = test_model("all-MiniLM-L6-v2") {
        check(&dir, 101, 30_522, 1e-4);
    }
}

#[test]
fn mpnet_fast_path_equals_candle() {
    if let Some(dir) = test_model("all-mpnet-base-v2") {
        check(&dir, 0, 30_527, 1e-4);
    }
}
