#![allow(clippy::unwrap_used)]
//! Parity with sentence-transformers: token ids exactly, vectors at cosine ≥ 0.9999 and max abs
//! diff ≤ 1e-4 (f32), for real checkpoints and a tiny random XLM-R. Fixtures are recorded by
//! scripts/gen_parity_fixtures.py.

mod common;

use std::path::Path;

use common::*;
use ember_core::EmbedOptions;
use ember_models::{LoadOptions, SentenceEmbedder};

fn check_parity(fixture_name: &str, dir: &Path) {
    let fx = parity_fixture(fixture_name);
    let model = SentenceEmbedder::load(&fx.model, dir, &LoadOptions::default()).unwrap();
    let info = model.info();
    assert_eq!(info.dimension, fx.dim);
    assert_eq!(info.max_seq_length, fx.max_seq_length);
    assert_eq!(info.normalize, fx.normalized);
    let texts: Vec<&str> = fx.cases.iter().map(|c| c.text.as_str()).collect();
    let opts = EmbedOptions::default();

    let tokens = model.tokenize(&texts, &opts).unwrap();
    for (case, got) in fx.cases.iter().zip(&tokens) {
        assert_eq!(got.ids, case.input_ids, "{fixture_name}: token ids of {:?}", case.text);
    }

    let out = model.embed_texts(&texts, &opts).unwrap();
    assert_eq!(out.vectors.len(), fx.cases.len());
    assert_eq!(out.truncated, tokens.iter().filter(|t| t.truncated).count());
    assert!(out.truncated >= 1, "the fixture has an input longer than max_seq_length");
    let mut worst = (1.0f32, 0.0f32);
    for (case, v) in fx.cases.iter().zip(&out.vectors) {
        let cos = cosine(v, &case.embedding);
        let diff = max_abs_diff(v, &case.embedding);
        assert!(cos >= 0.9999 && diff <= 1e-4, "{fixture_name}: {:?}: cosine {cos}, max abs diff {diff}", case.text);
        worst = (worst.0.min(cos), worst.1.max(diff));
    }
    eprintln!("{fixture_name}: {} inputs, worst cosine {}, worst max abs diff {:e}", fx.cases.len(), worst.0, worst.1);

    // Invariant: an input embedded alone equals the same input inside a padded batch.
    for (i, text) in texts.iter().enumerate().step_by(5) {
        let single = model.embed_texts(&[*text], &opts).unwrap();
        let diff = max_abs_diff(&single.vectors[0], &out.vectors[i]);
        assert!(diff <= 1e-5, "{fixture_name}: batch and single differ by {diff} for {text:?}");
    }
}

#[test]
fn all_minilm_l6_v2_matches_sentence_transformers() {
    let Some(dir) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    check_parity("all-MiniLM-L6-v2", &dir);
}

#[test]
fn all_mpnet_base_v2_matches_sentence_transformers() {
    let Some(dir) = real_model("mpnet", "all-mpnet-base-v2") else { return };
    check_parity("all-mpnet-base-v2", &dir);
}

#[test]
fn tiny_xlm_roberta_f16_checkpoint_matches_sentence_transformers() {
    let Some(dir) = tiny_xlmr_dir() else { return };
    check_parity("tiny-xlmr", &dir);
}

#[test]
fn minilm_sanity_pair() {
    let Some(dir) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let model = SentenceEmbedder::load("all-MiniLM-L6-v2", &dir, &LoadOptions::default()).unwrap();
    let out = model
        .embed_texts(&["A man is eating food.", "A man is eating a piece of bread."], &EmbedOptions::default())
        .unwrap();
    let cos = cosine(&out.vectors[0], &out.vectors[1]);
    assert!((cos - 0.7553).abs() < 5e-5, "cosine {cos}");
}
