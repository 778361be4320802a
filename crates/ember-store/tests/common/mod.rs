//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use ember_core::Similarity;
use ember_store::{CollectionConfig, Document, IndexKind, Precision};
use serde_json::{Map, Value};

pub fn config(dimension: usize) -> CollectionConfig {
    CollectionConfig {
        model_id: "test/model".into(),
        dimension,
        distance: Similarity::Cosine,
        precision: Precision::Float32,
        index: IndexKind::Flat,
        text_index: None,
        sparse: None,
        multivector: None,
    }
}

pub fn meta(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("metadata is an object")
}

/// A deterministic, distinct vector for a seed (splitmix64 → [-1, 1)).
pub fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..dim)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

pub fn doc(id: &str, seed: u64, dim: usize, metadata: Value) -> Document {
    Document {
        id: id.into(),
        text: format!("text of {id} ✓"),
        vector: vector(seed, dim),
        metadata: meta(metadata),
        ..Document::default()
    }
}

pub fn collection_dir(store: &Path, name: &str) -> PathBuf {
    store.join("collections").join(name)
}

pub fn files_with(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    out.sort();
    out
}

/// Copy a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
