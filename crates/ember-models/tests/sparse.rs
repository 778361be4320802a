//! Learned-sparse and multi-vector outputs against their reference implementations:
//! SPLADE (splade-tiny, transformers' BertForMaskedLM) and BGE-M3 (a tiny random checkpoint in
//! BGE-M3's layout, FlagEmbedding 1.4.2's `BGEM3FlagModel`). Fixtures:
//! `tests/fixtures/sparse/*.json`, made by `scripts/fixtures/{splade,bge_m3}_reference.py`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ember_core::{EmbedOptions, Embedder, ModeWeights, OutputKinds, PairScores, ScoreMode, SparseVector, TextOutputs};
use ember_models::{LoadOptions, ModelError, SentenceEmbedder};
use serde::Deserialize;

const ALL: OutputKinds = OutputKinds { dense: true, sparse: true, multivector: true };

#[derive(Deserialize)]
struct SpladeFixture {
    max_length: usize,
    cases: Vec<SpladeCase>,
}

#[derive(Deserialize)]
struct SpladeCase {
    text: String,
    input_ids: Vec<u32>,
    sparse: Vec<(u32, f32)>,
}

#[derive(Deserialize)]
struct M3Fixture {
    special_token_ids_dropped: Vec<u32>,
    cases: Vec<M3Case>,
    pairs: Vec<M3Pair>,
    scores_model_card_weights: M3Scores,
    scores_default_weights: M3Scores,
}

#[derive(Deserialize)]
struct M3Case {
    text: String,
    input_ids: Vec<u32>,
    dense: Vec<f32>,
    sparse: Vec<(u32, f32)>,
    colbert: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct M3Pair {
    query: String,
    passage: String,
}

#[derive(Deserialize)]
struct M3Scores {
    weights: Option<Vec<f32>>,
    dense: Vec<f32>,
    sparse: Vec<f32>,
    colbert: Vec<f32>,
    #[serde(rename = "sparse+dense")]
    sparse_dense: Vec<f32>,
    #[serde(rename = "colbert+sparse+dense")]
    colbert_sparse_dense: Vec<f32>,
}

fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = common::fixtures().join("sparse").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ember-sparse-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The tiny BGE-M3 checkpoint: the committed heads and configuration, the tiny XLM-R encoder's
/// weights and the real XLM-R tokenizer.
fn tiny_bge_m3_dir() -> Option<PathBuf> {
    let tok = common::real_model("xlmr-tokenizer", "xlmr-tokenizer")?;
    let dir = temp_dir("bge-m3");
    common::copy_dir(&common::fixtures().join("tiny-bge-m3"), &dir);
    std::fs::copy(common::fixtures().join("tiny-xlmr/model.safetensors"), dir.join("model.safetensors")).unwrap();
    std::fs::copy(tok.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    Some(dir)
}

fn load(dir: &Path) -> Result<SentenceEmbedder, ModelError> {
    SentenceEmbedder::load(&dir.to_string_lossy(), dir, &LoadOptions::default())
}

/// Largest weight difference over the union of ids (a missing id weighs 0), and the ids only one
/// side has.
fn compare_sparse(got: &SparseVector, want: &[(u32, f32)]) -> (f32, Vec<u32>) {
    let g: BTreeMap<u32, f32> = got.iter().copied().collect();
    let w: BTreeMap<u32, f32> = want.iter().copied().collect();
    let mut diff = 0f32;
    let mut only = Vec::new();
    for id in g.keys().chain(w.keys()) {
        let (a, b) = (g.get(id), w.get(id));
        if a.is_none() || b.is_none() {
            only.push(*id);
        }
        diff = diff.max((a.copied().unwrap_or(0.0) - b.copied().unwrap_or(0.0)).abs());
    }
    (diff, only)
}

fn assert_sparse_valid(v: &SparseVector) {
    assert!(v.windows(2).all(|p| p[0].0 < p[1].0), "ids not strictly ascending");
    assert!(v.iter().all(|&(_, w)| w > 0.0 && w.is_finite()), "weights must be > 0");
}

// ---------------------------------------------------------------------------------------------
// SPLADE

#[test]
fn splade_tiny_matches_transformers() {
    let Some(dir) = common::real_model("splade-tiny", "splade-tiny") else { return };
    let model = load(&dir).unwrap();
    assert_eq!(model.outputs(), OutputKinds::SPARSE);
    assert_eq!(Embedder::outputs(&model), OutputKinds::SPARSE);
    assert_eq!(model.info().heads, "splade");
    assert_eq!(model.info().outputs, vec!["sparse".to_string()]);
    assert_eq!(Embedder::dimension(&model), 30522);
    let fx: SpladeFixture = fixture("splade-tiny.json");
    assert_eq!(model.max_seq_length(), fx.max_length);
    let texts: Vec<&str> = fx.cases.iter().map(|c| c.text.as_str()).collect();
    let ids = model.tokenize(&texts, &EmbedOptions::default()).unwrap();
    for (t, c) in ids.iter().zip(&fx.cases) {
        assert_eq!(t.ids, c.input_ids, "token ids of {:?}", c.text);
    }
    // one batch with every text, and each text alone
    let out = model.embed_outputs_texts(&texts, OutputKinds::SPARSE, &EmbedOptions::default()).unwrap();
    assert!(out.dense.is_none() && out.multivector.is_none());
    assert_eq!(out.truncated, 1);
    let sparse = out.sparse.unwrap();
    let mut worst = 0f32;
    for (got, case) in sparse.iter().zip(&fx.cases) {
        assert_sparse_valid(got);
        let (diff, only) = compare_sparse(got, &case.sparse);
        assert!(only.is_empty(), "{:?}: ids only on one side: {only:?}", case.text);
        assert!(diff <= 1e-4, "{:?}: max abs diff {diff}", case.text);
        worst = worst.max(diff);
        let single = model.embed_outputs_texts(&[&case.text], OutputKinds::SPARSE, &EmbedOptions::default()).unwrap();
        let (d, only) = compare_sparse(&single.sparse.unwrap()[0], &case.sparse);
        assert!(only.is_empty() && d <= 1e-4, "{:?} alone: {d} {only:?}", case.text);
    }
    eprintln!("splade-tiny: max abs weight diff vs transformers {worst:.2e} over {} texts", texts.len());

    // "The capital of France is Paris." expands to capital, paris, france
    let mut top = sparse[0].clone();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    let words: Vec<String> = top.iter().take(5).map(|&(id, _)| model.vocabulary_token(id).unwrap()).collect();
    for w in ["capital", "paris", "france"] {
        assert!(words.iter().any(|t| t == w), "{w} not in top terms {words:?}");
    }
    assert_eq!(Embedder::vocabulary_token(&model, top[0].0), Some(words[0].clone()));
}

#[test]
fn splade_is_sparse_only_and_says_so() {
    let Some(dir) = common::real_model("splade-tiny", "splade-tiny") else { return };
    let model = load(&dir).unwrap();
    let err = model.embed_texts(&["hello"], &EmbedOptions::default()).unwrap_err();
    assert!(matches!(err, ModelError::Unsupported(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("cannot produce dense output (it produces: sparse)"), "{msg}");
    let err = Embedder::embed_outputs(&model, &["hello"], ALL, &EmbedOptions::default()).unwrap_err();
    let unsupported = err.downcast_ref::<ember_core::UnsupportedOutput>().expect("an UnsupportedOutput");
    assert_eq!(unsupported.available, "sparse");
    assert_eq!(unsupported.requested, "dense,multivector");
    // the server's token path refuses too, rather than returning meaningless vectors
    assert!(model.embed_tokens(&[&[101, 102]], &[0]).is_err());
}

// ---------------------------------------------------------------------------------------------
// BGE-M3

fn m3_case_checks(model: &SentenceEmbedder, fx: &M3Fixture) -> (f32, f32, f32, f32) {
    let texts: Vec<&str> = fx.cases.iter().map(|c| c.text.as_str()).collect();
    let out =
        model.embed_outputs_texts(&texts, ALL, &EmbedOptions { batch_size: Some(4), ..Default::default() }).unwrap();
    let (dense, sparse, colbert) = (out.dense.unwrap(), out.sparse.unwrap(), out.multivector.unwrap());
    let (mut min_cos, mut max_dense, mut max_sparse, mut min_col_cos) = (1f32, 0f32, 0f32, 1f32);
    for (i, case) in fx.cases.iter().enumerate() {
        let cos = common::cosine(&dense[i], &case.dense);
        min_cos = min_cos.min(cos);
        max_dense = max_dense.max(common::max_abs_diff(&dense[i], &case.dense));
        assert_sparse_valid(&sparse[i]);
        assert!(sparse[i].iter().all(|(id, _)| !fx.special_token_ids_dropped.contains(id)));
        let (diff, only) = compare_sparse(&sparse[i], &case.sparse);
        assert!(only.is_empty(), "{:?}: sparse ids only on one side: {only:?}", case.text);
        max_sparse = max_sparse.max(diff);
        assert_eq!(colbert[i].len(), case.colbert.len(), "{:?}: colbert rows", case.text);
        assert_eq!(colbert[i].len(), case.input_ids.len() - 1);
        for (g, w) in colbert[i].iter().zip(&case.colbert) {
            min_col_cos = min_col_cos.min(common::cosine(g, w));
            assert!((ember_core::dot(g, g).sqrt() - 1.0).abs() < 1e-5, "colbert vectors are unit length");
        }
    }
    (min_cos, max_dense, max_sparse, min_col_cos)
}

#[test]
fn bge_m3_matches_flagembedding() {
    let Some(dir) = tiny_bge_m3_dir() else { return };
    let model = load(&dir).unwrap();
    assert_eq!(model.outputs(), ALL);
    let info = model.info();
    assert_eq!((info.heads.as_str(), info.outputs.len()), ("bge-m3", 3));
    let fx: M3Fixture = fixture("tiny-bge-m3.json");
    let texts: Vec<&str> = fx.cases.iter().map(|c| c.text.as_str()).collect();
    let ids = model.tokenize(&texts, &EmbedOptions::default()).unwrap();
    for (t, c) in ids.iter().zip(&fx.cases) {
        assert_eq!(t.ids, c.input_ids, "token ids of {:?}", c.text);
    }
    let (min_cos, max_dense, max_sparse, min_col_cos) = m3_case_checks(&model, &fx);
    eprintln!(
        "tiny-bge-m3 vs FlagEmbedding: dense min cos {min_cos:.7} (max abs {max_dense:.2e}), sparse max abs \
         {max_sparse:.2e}, colbert min cos {min_col_cos:.7}"
    );
    assert!(min_cos >= 0.9999 && max_dense <= 1e-4, "dense: cos {min_cos}, abs {max_dense}");
    assert!(max_sparse <= 1e-4, "sparse: {max_sparse}");
    assert!(min_col_cos >= 0.9999, "colbert: {min_col_cos}");
}

#[test]
fn bge_m3_scores_match_compute_score() {
    let Some(dir) = tiny_bge_m3_dir() else { return };
    let model = load(&dir).unwrap();
    let fx: M3Fixture = fixture("tiny-bge-m3.json");
    let mut worst = 0f32;
    for scores in [&fx.scores_model_card_weights, &fx.scores_default_weights] {
        let weights = match &scores.weights {
            Some(w) => ModeWeights { dense: w[0], sparse: w[1], colbert: w[2] },
            None => ModeWeights::EQUAL,
        };
        for (n, pair) in fx.pairs.iter().enumerate() {
            let q = model.embed_outputs_texts(&[&pair.query], ALL, &EmbedOptions::default()).unwrap();
            let p = model.embed_outputs_texts(&[&pair.passage], ALL, &EmbedOptions::default()).unwrap();
            let s = PairScores::compute(TextOutputs::of(&q, 0), TextOutputs::of(&p, 0));
            let want = [
                (ScoreMode::Dense, scores.dense[n]),
                (ScoreMode::Sparse, scores.sparse[n]),
                (ScoreMode::Colbert, scores.colbert[n]),
                (ScoreMode::SparseDense, scores.sparse_dense[n]),
                (ScoreMode::ColbertSparseDense, scores.colbert_sparse_dense[n]),
            ];
            for (mode, expected) in want {
                let got = s.get(mode, weights).unwrap();
                let diff = (got - expected).abs();
                worst = worst.max(diff);
                assert!(diff <= 1e-4, "pair {n} {mode}: ember {got}, FlagEmbedding {expected}");
            }
        }
    }
    eprintln!("tiny-bge-m3 compute_score: max abs diff {worst:.2e}");
}

#[test]
fn bge_m3_one_pass_equals_each_output_alone() {
    let Some(dir) = tiny_bge_m3_dir() else { return };
    let model = load(&dir).unwrap();
    let texts = ["What is BGE M3?", "Defination of BM25", ""];
    let opts = EmbedOptions::default();
    let all = model.embed_outputs_texts(&texts, ALL, &opts).unwrap();
    let dense = model.embed_outputs_texts(&texts, OutputKinds::DENSE, &opts).unwrap();
    let sparse = model.embed_outputs_texts(&texts, OutputKinds::SPARSE, &opts).unwrap();
    let colbert = model.embed_outputs_texts(&texts, OutputKinds::MULTIVECTOR, &opts).unwrap();
    assert_eq!(all.dense, dense.dense);
    assert_eq!(all.sparse, sparse.sparse);
    assert_eq!(all.multivector, colbert.multivector);
    assert_eq!((dense.sparse, dense.multivector, sparse.dense), (None, None, None));
    assert_eq!(all.dense.as_ref().unwrap()[0], model.embed_texts(&texts, &opts).unwrap().vectors[0]);
    // the empty text: <s></s>, no sparse terms (both special), one ColBERT vector (</s>)
    assert_eq!(all.sparse.as_ref().unwrap()[2], Vec::new());
    assert_eq!(all.multivector.as_ref().unwrap()[2].len(), 1);
    assert_eq!(all.tokens, model.tokenize(&texts, &opts).unwrap().iter().map(|t| t.ids.len()).sum::<usize>());
}

/// `sparse_linear.safetensors` / `colbert_linear.safetensors` with the same tensors serve as well as
/// the torch pickles, and win over them.
#[test]
fn bge_m3_heads_load_from_safetensors_too() {
    let Some(dir) = tiny_bge_m3_dir() else { return };
    let before = load(&dir).unwrap().embed_outputs_texts(&["What is BGE M3?"], ALL, &EmbedOptions::default()).unwrap();
    for stem in ["sparse_linear", "colbert_linear"] {
        let pt = dir.join(format!("{stem}.pt"));
        let tensors: std::collections::HashMap<String, candle_core::Tensor> =
            candle_core::pickle::read_all(&pt).unwrap().into_iter().collect();
        candle_core::safetensors::save(&tensors, dir.join(format!("{stem}.safetensors"))).unwrap();
        // a corrupt pickle beside it is never read
        std::fs::write(&pt, b"not a pickle").unwrap();
    }
    let after = load(&dir).unwrap().embed_outputs_texts(&["What is BGE M3?"], ALL, &EmbedOptions::default()).unwrap();
    assert_eq!(before, after);
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn missing_or_corrupt_head_files_are_named() {
    let Some(dir) = tiny_bge_m3_dir() else { return };
    // one head without the other
    std::fs::rename(dir.join("colbert_linear.pt"), dir.join("colbert_linear.bak")).unwrap();
    let msg = load(&dir).unwrap_err().to_string();
    assert!(msg.contains("colbert_linear.pt") && msg.contains("missing"), "{msg}");
    std::fs::rename(dir.join("colbert_linear.bak"), dir.join("colbert_linear.pt")).unwrap();

    let good = std::fs::read(dir.join("sparse_linear.pt")).unwrap();
    // garbage, a truncated zip, an empty file
    for bad in [b"garbage bytes, not a torch file".to_vec(), good[..good.len() / 2].to_vec(), Vec::new()] {
        std::fs::write(dir.join("sparse_linear.pt"), &bad).unwrap();
        let err = load(&dir).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ModelError::Weights { .. }), "{err:?}");
        assert!(msg.contains("sparse_linear.pt"), "{msg}");
    }
    // a head of the wrong shape: colbert_linear's weights as sparse_linear
    std::fs::copy(dir.join("colbert_linear.pt"), dir.join("sparse_linear.pt")).unwrap();
    let msg = load(&dir).unwrap_err().to_string();
    assert!(msg.contains("sparse_linear.pt") && msg.contains("expected [1, 16]"), "{msg}");
    std::fs::write(dir.join("sparse_linear.pt"), &good).unwrap();
    assert!(load(&dir).is_ok());
}

#[test]
fn splade_checkpoint_with_a_partial_head_is_refused() {
    let Some(src) = common::real_model("splade-tiny", "splade-tiny") else { return };
    let dir = temp_dir("splade-partial-head");
    common::copy_dir(&src, &dir);
    let path = dir.join("model.safetensors");
    let all = candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap();
    // the bias of the decoder missing: refused, naming the tensor and the file
    let mut tensors = all.clone();
    tensors.remove("cls.predictions.bias");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let msg = load(&dir).unwrap_err().to_string();
    assert!(msg.contains("BertForMaskedLM") && msg.contains("'cls.predictions.bias'"), "{msg}");
    assert!(msg.contains("model.safetensors"), "{msg}");
    // no MLM head at all: an encoder saved from an MLM (as all-mpnet-base-v2 is), pooled densely
    let mut tensors = all;
    tensors.retain(|k, _| !k.starts_with("cls."));
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let model = load(&dir).unwrap();
    assert_eq!(model.outputs(), OutputKinds::DENSE);
    assert_eq!(model.embed_texts(&["x"], &EmbedOptions::default()).unwrap().vectors[0].len(), 128);
}

#[test]
fn dense_models_name_the_outputs_they_lack() {
    let Some(dir) = common::tiny_xlmr_dir() else { return };
    let model = load(&dir).unwrap();
    assert_eq!(model.outputs(), OutputKinds::DENSE);
    assert_eq!(model.info().heads, "none");
    let err = model.embed_outputs_texts(&["x"], OutputKinds::SPARSE, &EmbedOptions::default()).unwrap_err();
    assert!(err.to_string().ends_with("cannot produce sparse output (it produces: dense)"), "{err}");
    let out = model.embed_outputs_texts(&["x", ""], OutputKinds::DENSE, &EmbedOptions::default()).unwrap();
    assert_eq!(out.dense.unwrap(), model.embed_texts(&["x", ""], &EmbedOptions::default()).unwrap().vectors);
}

/// sentence-transformers' SparseEncoder layout (`MLMTransformer` + `SpladePooling`, as SPLADE
/// models on the hub ship it) loads as the same SPLADE model; a pooling ember does not implement
/// is refused.
#[test]
fn splade_in_sentence_transformers_sparse_encoder_layout() {
    let Some(src) = common::real_model("splade-tiny", "splade-tiny") else { return };
    let dir = temp_dir("splade-st");
    common::copy_dir(&src, &dir);
    std::fs::write(
        dir.join("modules.json"),
        r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.sparse_encoder.models.MLMTransformer"},
            {"idx":1,"name":"1","path":"1_SpladePooling","type":"sentence_transformers.sparse_encoder.models.SpladePooling"}]"#,
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("1_SpladePooling")).unwrap();
    let pooling = dir.join("1_SpladePooling/config.json");
    std::fs::write(
        &pooling,
        r#"{"pooling_strategy":"max","activation_function":"relu","word_embedding_dimension":30522}"#,
    )
    .unwrap();
    let text = ["The capital of France is Paris."];
    let want = load(&src).unwrap().embed_outputs_texts(&text, OutputKinds::SPARSE, &EmbedOptions::default()).unwrap();
    let model = load(&dir).unwrap();
    assert_eq!(model.outputs(), OutputKinds::SPARSE);
    assert_eq!(model.embed_outputs_texts(&text, OutputKinds::SPARSE, &EmbedOptions::default()).unwrap(), want);
    std::fs::write(&pooling, r#"{"pooling_strategy":"sum","activation_function":"relu"}"#).unwrap();
    let msg = load(&dir).unwrap_err().to_string();
    assert!(msg.contains("1_SpladePooling") && msg.contains("'sum'"), "{msg}");
}
