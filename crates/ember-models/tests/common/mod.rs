//! Test support: real checkpoints fetched by the project's own script, reference fixtures.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The directory of a real test model (`minilm`, `mpnet`, `xlmr-tokenizer`), fetched with
/// `scripts/fetch-models.sh` when missing. Under CI a model that cannot be had fails the test;
/// elsewhere the test is skipped with a loud message (returns None).
pub fn real_model(key: &str, dir_name: &str) -> Option<PathBuf> {
    let base = std::env::var_os("EMBER_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/ember-test-models"));
    let dir = base.join(dir_name);
    if !dir.join(".complete").exists() {
        let status = Command::new("bash")
            .arg(repo_root().join("scripts/fetch-models.sh"))
            .arg(key)
            .env("EMBER_MODELS_DIR", &base)
            .status();
        let ok = status.map(|s| s.success()).unwrap_or(false) && dir.join(".complete").exists();
        if !ok {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("test model {dir_name} could not be fetched with scripts/fetch-models.sh {key}");
            }
            eprintln!(
                "\n*** SKIPPED: test model {dir_name} is unavailable (scripts/fetch-models.sh {key} failed) ***\n"
            );
            return None;
        }
    }
    Some(dir)
}

#[derive(Debug, Deserialize)]
pub struct ParityFixture {
    pub model: String,
    pub max_seq_length: usize,
    pub dim: usize,
    pub normalized: bool,
    pub cases: Vec<ParityCase>,
    #[serde(default)]
    pub token_embeddings_first: Vec<Vec<f32>>,
}

#[derive(Debug, Deserialize)]
pub struct ParityCase {
    pub text: String,
    pub input_ids: Vec<u32>,
    pub embedding: Vec<f32>,
}

pub fn parity_fixture(name: &str) -> ParityFixture {
    let path = fixtures().join("parity").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    ember_core::cosine(a, b)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// A copy of the tiny random XLM-R checkpoint with the real XLM-R tokenizer beside it.
pub fn tiny_xlmr_dir() -> Option<PathBuf> {
    let tok = real_model("xlmr-tokenizer", "xlmr-tokenizer")?;
    let dir = std::env::temp_dir().join(format!("ember-tiny-xlmr-{}", std::process::id()));
    copy_dir(&fixtures().join("tiny-xlmr"), &dir);
    std::fs::copy(tok.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    Some(dir)
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
