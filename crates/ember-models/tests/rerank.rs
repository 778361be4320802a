#![allow(clippy::unwrap_used)]
//! Rerankers against their reference implementations on tiny random checkpoints: BERT and XLM-R
//! cross-encoders against sentence-transformers' `CrossEncoder.predict`, and a Qwen3 yes/no
//! reranker (tied and untied output embeddings) against the Qwen3-Reranker model card's
//! transformers code. Token ids must match exactly, scores within 1e-4, order identical.
//! Fixtures are made by scripts/gen_reranker_fixtures.py; see tests/fixtures/rerank/README.md.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use ember_core::{rank_by_score, RerankOptions, Reranker};
use ember_models::rerank::RerankModel;
use ember_models::{LoadOptions, ModelError};
use serde::Deserialize;

const TOLERANCE: f32 = 1e-4;

#[derive(Debug, Deserialize)]
struct Fixture {
    max_length: Option<usize>,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    query: String,
    documents: Vec<String>,
    #[serde(default)]
    instruction: Option<String>,
    #[serde(default)]
    max_length: Option<usize>,
    scores: Vec<f32>,
    raw_scores: Vec<f32>,
    #[serde(default)]
    max_length_16_raw_scores: Vec<f32>,
    input_ids: Vec<Vec<u32>>,
    #[serde(default)]
    token_type_ids: Vec<Option<Vec<u32>>>,
    truncated: Vec<bool>,
}

fn fixture(name: &str) -> Fixture {
    let path = fixtures().join("rerank").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A runnable copy of `fixtures/rerank/<name>` in a temporary folder: the shards that a sharded
/// fixture shares with another fixture (`../…` in its index) copied at the same relative place,
/// and the real tokenizer (`minilm` or `xlmr-tokenizer`) beside it when the fixture has none.
fn model_dir(name: &str, tokenizer: Option<(&str, &str)>) -> Option<PathBuf> {
    let src = fixtures().join("rerank").join(name);
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("ember-rerank-{}-{n}-{name}", std::process::id()));
    let dir = root.join("rerank").join(name);
    let _ = std::fs::remove_dir_all(&root);
    copy_dir(&src, &dir);
    let index = src.join("model.safetensors.index.json");
    if index.exists() {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&index).unwrap()).unwrap();
        for shard in v["weight_map"].as_object().unwrap().values() {
            let shard = shard.as_str().unwrap();
            let target = dir.join(shard);
            if !target.exists() {
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::copy(src.join(shard), &target).unwrap();
            }
        }
    }
    if let Some((key, folder)) = tokenizer {
        let tok = real_model(key, folder)?;
        std::fs::copy(tok.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    }
    Some(dir)
}

fn load(dir: &Path) -> RerankModel {
    RerankModel::load(&dir.to_string_lossy(), dir, &LoadOptions::default()).unwrap()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    let diff = max_abs_diff(got, want);
    assert!(diff <= TOLERANCE, "{what}: max abs diff {diff:e}\n got {got:?}\nwant {want:?}");
    let order = |s: &[f32]| rank_by_score(s).into_iter().map(|(i, _)| i).collect::<Vec<_>>();
    assert_eq!(order(got), order(want), "{what}: order differs");
    eprintln!("{what}: max abs diff {diff:e}");
}

/// Tokens, truncation flags, activated and raw scores, and (cross-encoders) the max_length option.
fn check_parity(name: &str, model: &RerankModel, fx: &Fixture) {
    if let Some(n) = fx.max_length {
        assert_eq!(model.max_length(), n, "{name}: max length");
    }
    for (c, case) in fx.cases.iter().enumerate() {
        let docs: Vec<&str> = case.documents.iter().map(String::as_str).collect();
        let options = RerankOptions {
            instruction: case.instruction.clone(),
            max_length: case.max_length.filter(|_| case.max_length != fx.max_length),
            ..RerankOptions::default()
        };
        let rows = model.tokenize(&case.query, &docs, &options).unwrap();
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row.ids, case.input_ids[i], "{name} case {c} document {i}: token ids");
            if let Some(Some(types)) = case.token_type_ids.get(i) {
                assert_eq!(&row.type_ids, types, "{name} case {c} document {i}: token type ids");
            }
            assert_eq!(row.truncated, case.truncated[i], "{name} case {c} document {i}: truncated");
        }
        let out = model.score(&case.query, &docs, &options).unwrap();
        assert_close(&format!("{name} case {c} scores"), &out.scores, &case.scores);
        assert_eq!(out.truncated, case.truncated.iter().filter(|t| **t).count());
        assert_eq!(out.tokens, case.input_ids.iter().map(Vec::len).sum::<usize>());
        let raw = RerankOptions { activation: Some(false), ..options.clone() };
        assert_close(
            &format!("{name} case {c} raw"),
            &model.score(&case.query, &docs, &raw).unwrap().scores,
            &case.raw_scores,
        );
        // One pair per pass gives the same scores as padded batches.
        let single = RerankOptions { batch_size: Some(1), ..options.clone() };
        assert_close(
            &format!("{name} case {c} batch 1"),
            &model.score(&case.query, &docs, &single).unwrap().scores,
            &case.scores,
        );
        if !case.max_length_16_raw_scores.is_empty() {
            let short = RerankOptions { max_length: Some(16), activation: Some(false), ..RerankOptions::default() };
            let got = model.score(&case.query, &docs, &short).unwrap();
            assert_close(&format!("{name} case {c} max_length 16"), &got.scores, &case.max_length_16_raw_scores);
        }
    }
}

#[test]
fn bert_cross_encoder_matches_sentence_transformers() {
    let Some(dir) = model_dir("tiny-bert-reranker", Some(("minilm", "all-MiniLM-L6-v2"))) else { return };
    let model = load(&dir);
    let info = model.info();
    assert_eq!(
        (info.kind, info.architecture, info.num_labels, info.activation.as_str()),
        ("cross-encoder", "bert", 1, "sigmoid")
    );
    check_parity("tiny-bert-reranker", &model, &fixture("tiny-bert-reranker"));
}

#[test]
fn bert_two_label_classifier_reports_label_one() {
    let Some(dir) = model_dir("tiny-bert-reranker-2labels", Some(("minilm", "all-MiniLM-L6-v2"))) else { return };
    let fx = fixture("tiny-bert-reranker-2labels");
    let model = load(&dir);
    assert_eq!(model.info().num_labels, 2);
    assert_eq!(model.info().activation, "softmax");
    check_parity("tiny-bert-reranker-2labels", &model, &fx);
}

#[test]
fn xlmr_cross_encoder_matches_sentence_transformers() {
    let Some(dir) = model_dir("tiny-xlmr-reranker", Some(("xlmr-tokenizer", "xlmr-tokenizer"))) else { return };
    let fx = fixture("tiny-xlmr-reranker");
    let model = load(&dir);
    assert_eq!(model.info().architecture, "xlm-roberta");
    check_parity("tiny-xlmr-reranker", &model, &fx);
}

#[test]
fn qwen3_reranker_matches_the_model_card() {
    for name in ["tiny-qwen3-reranker", "tiny-qwen3-reranker-untied"] {
        let dir = model_dir(name, None).unwrap();
        let model = load(&dir);
        let info = model.info();
        assert_eq!((info.kind, info.architecture, info.max_length), ("llm", "qwen3", 8192));
        check_parity(name, &model, &fixture(name));
    }
}

#[test]
fn an_activation_in_config_json_is_followed() {
    // ms-marco cross-encoders save `Identity`: CrossEncoder.predict then returns raw logits.
    let Some(dir) = model_dir("tiny-bert-reranker", Some(("minilm", "all-MiniLM-L6-v2"))) else { return };
    let config = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    v["sentence_transformers"] = serde_json::json!({"activation_fn": "torch.nn.modules.linear.Identity"});
    std::fs::write(&config, v.to_string()).unwrap();
    let model = load(&dir);
    let fx = fixture("tiny-bert-reranker");
    let case = &fx.cases[0];
    let docs: Vec<&str> = case.documents.iter().map(String::as_str).collect();
    let default = model.score(&case.query, &docs, &RerankOptions::default()).unwrap();
    assert_close("identity by config", &default.scores, &case.raw_scores);
    let forced = RerankOptions { activation: Some(true), ..RerankOptions::default() };
    assert_close("activation forced on", &model.score(&case.query, &docs, &forced).unwrap().scores, &case.scores);
}

#[test]
fn no_documents_give_no_scores() {
    let dir = model_dir("tiny-qwen3-reranker", None).unwrap();
    let model = load(&dir);
    let out = model.score("query", &[], &RerankOptions::default()).unwrap();
    assert!(out.scores.is_empty());
    assert_eq!((out.tokens, out.truncated), (0, 0));
}

#[test]
fn a_max_length_shorter_than_the_prompt_template_is_a_clear_error() {
    let dir = model_dir("tiny-qwen3-reranker", None).unwrap();
    let model = load(&dir);
    let options = RerankOptions { max_length: Some(5), ..RerankOptions::default() };
    let e = model.score("q", &["d"], &options).unwrap_err().to_string();
    assert!(e.contains("max_length 5 leaves no room"), "{e}");
}

fn load_err(dir: &Path) -> String {
    match RerankModel::load("bad", dir, &LoadOptions::default()) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_unknown_architecture_is_named() {
    let dir = model_dir("tiny-qwen3-reranker", None).unwrap();
    let config = dir.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap().replace("Qwen3ForCausalLM", "LlamaForCausalLM");
    std::fs::write(&config, text).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("'LlamaForCausalLM'") && e.contains("BertForSequenceClassification"), "{e}");
    // An embedding checkpoint is not a reranker either.
    let e = load_err(&fixtures().join("tiny-xlmr"));
    assert!(e.contains("'XLMRobertaModel'") && e.contains("not a reranker"), "{e}");
}

#[test]
fn missing_classifier_weights_are_named() {
    let Some(dir) = model_dir("tiny-xlmr-reranker", Some(("xlmr-tokenizer", "xlmr-tokenizer"))) else { return };
    // The head's shard says nothing of the output projection.
    let shard = dir.join("classifier.safetensors");
    let tensors = candle_core::safetensors::load(&shard, &candle_core::Device::Cpu).unwrap();
    let kept: std::collections::HashMap<String, candle_core::Tensor> =
        tensors.into_iter().filter(|(k, _)| !k.starts_with("classifier.out_proj")).collect();
    candle_core::safetensors::save(&kept, &shard).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("no tensor 'classifier.out_proj.weight'") && e.contains("classification head"), "{e}");
}

#[test]
fn a_corrupt_checkpoint_is_an_error_naming_the_file() {
    let dir = model_dir("tiny-qwen3-reranker", None).unwrap();
    let file = dir.join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("model.safetensors"), "{e}");
    std::fs::write(&file, b"not a safetensors file").unwrap();
    let e = load_err(&dir);
    assert!(e.contains("model.safetensors"), "{e}");
    // Missing weights altogether.
    std::fs::remove_file(&file).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("no model.safetensors"), "{e}");
}

#[test]
fn a_tokenizer_without_the_chat_tokens_is_refused() {
    let dir = model_dir("tiny-qwen3-reranker", None).unwrap();
    let path = dir.join("tokenizer.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["model"]["vocab"].as_object_mut().unwrap().remove("<|im_start|>").unwrap();
    v["added_tokens"].as_array_mut().unwrap().retain(|t| t["content"] != "<|im_start|>");
    std::fs::write(&path, v.to_string()).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("no token '<|im_start|>'") && e.contains("Qwen3-Reranker tokenizer"), "{e}");
}

#[test]
fn the_hub_loader_resolves_a_local_directory() {
    let dir = model_dir("tiny-qwen3-reranker", None).unwrap();
    let hub = ember_models::HubOptions { offline: true, ..ember_models::HubOptions::with_home(&std::env::temp_dir()) };
    let model = ember_models::load_reranker(&dir.to_string_lossy(), &hub, &LoadOptions::default()).unwrap();
    assert_eq!(model.model_id(), dir.to_string_lossy());
    let e = ember_models::load_reranker("ember-test/no-such-reranker", &hub, &LoadOptions::default()).err().unwrap();
    assert!(matches!(e, ModelError::NotFound(_)), "{e}");
}
