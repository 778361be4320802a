#![allow(clippy::unwrap_used)]
//! The sentence-transformers pipeline beyond the parity models, on tiny random checkpoints: CLS
//! pooling, Dense, prompts (named, literal, excluded from pooling), Matryoshka truncation,
//! normalisation on/off, every pooling mode, MPNet at other sizes, sharded and bfloat16
//! checkpoints, and the folder layout sentence-transformers 6 saves. Token ids must match exactly,
//! vectors at cosine ≥ 0.9999 and max abs diff ≤ 1e-4. Fixtures (checkpoints and reference
//! outputs) are made by scripts/gen_pipeline_fixtures.py; see tests/fixtures/pipeline/README.md.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use ember_core::{EmbedOptions, PoolingMode, Similarity};
use ember_models::{LoadOptions, SentenceEmbedder};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct PipelineFixture {
    name: String,
    /// Folders under fixtures/pipeline/ copied in order into one model folder.
    layers: Vec<String>,
    /// Which real tokenizer.json goes beside them: `minilm` or `mpnet`.
    tokenizer: String,
    info: ExpectedInfo,
    runs: Vec<Run>,
}

#[derive(Debug, Deserialize)]
struct ExpectedInfo {
    dimension: usize,
    /// sentence-transformers' mode names, in its concatenation order.
    pooling: Vec<String>,
    normalize: bool,
    max_seq_length: usize,
    prompts: BTreeMap<String, String>,
    default_prompt_name: Option<String>,
    similarity: Similarity,
}

#[derive(Debug, Deserialize)]
struct Run {
    name: String,
    options: RunOptions,
    /// The sentence-transformers call that produced the reference.
    st_call: String,
    cases: Vec<ParityCase>,
}

#[derive(Debug, Deserialize)]
struct RunOptions {
    prompt_name: Option<String>,
    prompt: Option<String>,
    normalize: Option<bool>,
    dimensions: Option<usize>,
}

impl RunOptions {
    fn embed_options(&self) -> EmbedOptions {
        EmbedOptions {
            prompt_name: self.prompt_name.clone(),
            prompt: self.prompt.clone(),
            normalize: self.normalize,
            dimensions: self.dimensions,
            ..EmbedOptions::default()
        }
    }
}

fn pipeline_fixture(name: &str) -> PipelineFixture {
    let path = fixtures().join("pipeline").join(format!("{name}.json"));
    let fx: PipelineFixture = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(fx.name, name);
    fx
}

/// A model folder assembled in a temp dir, removed on drop.
struct ModelDir(PathBuf);

impl Drop for ModelDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fixture's layers copied into one temp folder with the real tokenizer.json beside them;
/// None (test skipped loudly by `real_model`) when the tokenizer cannot be fetched.
fn assemble(fx: &PipelineFixture) -> Option<ModelDir> {
    let tokenizer = match fx.tokenizer.as_str() {
        "minilm" => real_model("minilm", "all-MiniLM-L6-v2")?,
        "mpnet" => real_model("mpnet", "all-mpnet-base-v2")?,
        other => panic!("unknown tokenizer {other:?} in fixture {}", fx.name),
    };
    let dir = std::env::temp_dir().join(format!("ember-pipeline-{}-{}", fx.name, std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for layer in &fx.layers {
        copy_dir(&fixtures().join("pipeline").join(layer), &dir);
    }
    std::fs::copy(tokenizer.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    Some(ModelDir(dir))
}

fn load(fx: &PipelineFixture, dir: &Path) -> SentenceEmbedder {
    SentenceEmbedder::load(&fx.name, dir, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{}: loading {} failed: {e}", fx.name, dir.display()))
}

fn check_info(fx: &PipelineFixture, model: &SentenceEmbedder) {
    let info = model.info();
    let name = &fx.name;
    let pooling: Vec<PoolingMode> = fx.info.pooling.iter().map(|m| m.parse().unwrap()).collect();
    assert_eq!(info.pooling, pooling, "{name}: pooling");
    assert_eq!(info.dimension, fx.info.dimension, "{name}: dimension");
    assert_eq!(info.normalize, fx.info.normalize, "{name}: normalize");
    assert_eq!(info.max_seq_length, fx.info.max_seq_length, "{name}: max_seq_length");
    assert_eq!(info.prompts, fx.info.prompts, "{name}: prompts");
    assert_eq!(info.default_prompt_name, fx.info.default_prompt_name, "{name}: default_prompt_name");
    assert_eq!(info.similarity, fx.info.similarity, "{name}: similarity");
}

/// Load the fixture's model, check `info()`, and every run's token ids and vectors; returns the
/// vectors of each run, by run name.
fn check_pipeline(name: &str) -> Option<BTreeMap<String, Vec<Vec<f32>>>> {
    let fx = pipeline_fixture(name);
    let dir = assemble(&fx)?;
    let model = load(&fx, &dir.0);
    check_info(&fx, &model);
    let mut all = BTreeMap::new();
    for run in &fx.runs {
        let what = format!("{name} [{}: {}]", run.name, run.st_call);
        let texts: Vec<&str> = run.cases.iter().map(|c| c.text.as_str()).collect();
        let opts = run.options.embed_options();

        let tokens = model.tokenize(&texts, &opts).unwrap();
        for (case, got) in run.cases.iter().zip(&tokens) {
            assert_eq!(got.ids, case.input_ids, "{what}: token ids of {:?}", case.text);
        }

        let out = model.embed_texts(&texts, &opts).unwrap();
        assert_eq!(out.vectors.len(), run.cases.len(), "{what}");
        assert!(out.truncated >= 1, "{what}: the fixture has an input longer than max_seq_length");
        let mut worst = (1.0f32, 0.0f32);
        for (case, v) in run.cases.iter().zip(&out.vectors) {
            assert_eq!(v.len(), case.embedding.len(), "{what}: dimension for {:?}", case.text);
            let cos = cosine(v, &case.embedding);
            let diff = max_abs_diff(v, &case.embedding);
            assert!(
                cos >= 0.9999 && diff <= 1e-4,
                "{what}: {:?}: cosine {cos}, max abs diff {diff}\n  expected {:?}\n  got      {:?}",
                case.text,
                &case.embedding[..case.embedding.len().min(6)],
                &v[..v.len().min(6)],
            );
            worst = (worst.0.min(cos), worst.1.max(diff));
        }
        eprintln!("{what}: {} inputs, worst cosine {}, worst max abs diff {:e}", run.cases.len(), worst.0, worst.1);

        // Invariants: other batch sizes and single inputs give the same vectors.
        let small = EmbedOptions { batch_size: Some(5), ..opts.clone() };
        let batched = model.embed_texts(&texts, &small).unwrap();
        for ((a, b), text) in batched.vectors.iter().zip(&out.vectors).zip(&texts) {
            let diff = max_abs_diff(a, b);
            assert!(diff <= 1e-5, "{what}: batch size 5 vs default differ by {diff} for {text:?}");
        }
        for (i, text) in texts.iter().enumerate().step_by(4) {
            let single = model.embed_texts(&[*text], &opts).unwrap();
            let diff = max_abs_diff(&single.vectors[0], &out.vectors[i]);
            assert!(diff <= 1e-5, "{what}: batch and single differ by {diff} for {text:?}");
        }
        all.insert(run.name.clone(), out.vectors);
    }
    Some(all)
}

#[test]
fn cls_pooling_dense_normalize_prompts_and_truncation() {
    let Some(v) = check_pipeline("tiny-bert-cls-dense") else { return };
    // The runs really differ from one another (each option has an effect the reference saw).
    let d = &v["default"];
    assert!(max_abs_diff(&v["prompt_name=query"][0], &d[0]) > 1e-2);
    assert!(max_abs_diff(&v["prompt_name=query"][0], &v["prompt_name=document"][0]) > 1e-2);
    let raw = &v["without Normalize"][0];
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 0.1, "unnormalised vector has norm {norm}");
    assert_eq!(v["truncate_dim=8 + normalize"][0].len(), 8);
}

#[test]
fn cls_dense_model_rejects_unknown_prompt_name() {
    let fx = pipeline_fixture("tiny-bert-cls-dense");
    let Some(dir) = assemble(&fx) else { return };
    let model = load(&fx, &dir.0);
    let opts = EmbedOptions { prompt_name: Some("passage".into()), ..EmbedOptions::default() };
    let e = model.embed_texts(&["x"], &opts).unwrap_err().to_string();
    assert!(e.contains("passage") && e.contains("document") && e.contains("query"), "{e}");
}

#[test]
fn pooling_max() {
    check_pipeline("tiny-bert-pooling-max");
}

#[test]
fn pooling_mean_sqrt_len_tokens() {
    check_pipeline("tiny-bert-pooling-mean-sqrt-len");
}

#[test]
fn pooling_weightedmean() {
    check_pipeline("tiny-bert-pooling-weightedmean");
}

#[test]
fn pooling_lasttoken() {
    check_pipeline("tiny-bert-pooling-lasttoken");
}

#[test]
fn pooling_cls_and_mean_concatenated() {
    check_pipeline("tiny-bert-pooling-cls-mean");
}

#[test]
fn pooling_mean_excludes_prompt() {
    check_pipeline("tiny-bert-pooling-mean-exclude-prompt");
}

#[test]
fn pooling_weightedmean_excludes_prompt_keeping_positions() {
    check_pipeline("tiny-bert-pooling-weightedmean-exclude-prompt");
}

#[test]
fn pooling_cls_and_mean_exclude_prompt() {
    check_pipeline("tiny-bert-pooling-cls-mean-exclude-prompt");
}

#[test]
fn folder_saved_by_sentence_transformers_6() {
    check_pipeline("tiny-bert-st6-format");
}

#[test]
fn sharded_f32_checkpoint_equals_single_file_f16() {
    let Some(sharded) = check_pipeline("tiny-bert-sharded") else { return };
    let Some(single) = check_pipeline("tiny-bert-cls-dense") else { return };
    for (a, b) in sharded["default"].iter().zip(&single["default"]) {
        let diff = max_abs_diff(a, b);
        assert!(diff <= 1e-6, "sharded vs single-file differ by {diff}");
    }
    let fx = pipeline_fixture("tiny-bert-sharded");
    let dir = assemble(&fx).unwrap();
    assert!(!dir.0.join("model.safetensors").exists());
    let files = load(&fx, &dir.0).info().files;
    for f in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"] {
        assert!(files.iter().any(|x| x == f), "{f} not in {files:?}");
    }
}

#[test]
fn bf16_checkpoint() {
    let Some(bf16) = check_pipeline("tiny-bert-bf16") else { return };
    // bfloat16 rounding moves the vectors well beyond the tolerance: the bf16 weights were read.
    let fx = pipeline_fixture("tiny-bert-cls-dense");
    let worst =
        bf16["default"].iter().zip(&fx.runs[0].cases).map(|(v, c)| max_abs_diff(v, &c.embedding)).fold(0.0, f32::max);
    assert!(worst > 1e-3, "bf16 vectors equal the f16 ones ({worst})");
}

#[test]
fn tiny_mpnet_with_relative_attention() {
    check_pipeline("tiny-mpnet");
}
