//! The `ember` binary end to end: output equals the sentence-transformers reference, options
//! behave as documented, and bad input gets a clear error and a non-zero exit, never a panic.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}
#[derive(Deserialize)]
struct Case {
    text: String,
    embedding: Vec<f32>,
}

fn rows(stdout: &[u8]) -> Vec<Vec<f32>> {
    String::from_utf8(stdout.to_vec()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn embed_jsonl_output_equals_sentence_transformers_in_input_order() {
    let Some(model) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let fx: Fixture = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("crates/ember-models/tests/fixtures/parity/all-MiniLM-L6-v2.json"))
            .unwrap(),
    )
    .unwrap();
    // Single-line texts only: a plain-lines input cannot carry a newline.
    let cases: Vec<&Case> = fx.cases.iter().filter(|c| !c.text.contains('\n') && !c.text.contains('\r')).collect();
    let input: String = cases.iter().map(|c| format!("{}\n", c.text)).collect();
    let dir = temp("order");
    std::fs::write(dir.join("texts.txt"), &input).unwrap();
    let o =
        ember(&["embed", "--model", model.to_str().unwrap(), "--input", dir.join("texts.txt").to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = rows(&o.stdout);
    assert_eq!(got.len(), cases.len());
    for (c, v) in cases.iter().zip(&got) {
        assert!(ember_core::cosine(v, &c.embedding) >= 0.9999, "{:?}", c.text);
    }
    assert!(stderr(&o).contains("1 truncated to 256 tokens"), "{}", stderr(&o));

    // JSON lines with a text field, through stdin, give the same vectors.
    let jsonl: String = cases.iter().map(|c| format!("{}\n", serde_json::json!({"id": 1, "text": c.text}))).collect();
    let o = ember(&["embed", "-m", model.to_str().unwrap(), "--input-format", "jsonl"], Some(jsonl.as_bytes()));
    assert!(o.status.success(), "{}", stderr(&o));
    let again = rows(&o.stdout);
    for (a, b) in got.iter().zip(&again) {
        assert!(ember_core::cosine(a, b) > 0.999999);
    }
}

#[test]
fn dimensions_precision_and_npy_output() {
    let Some(model) = tiny_model("opts") else { return };
    let m = model.to_str().unwrap();
    let text = b"first line\nsecond line\nthird\n";
    let full = rows(&ember(&["embed", "-m", m], Some(text)).stdout);
    let o = ember(&["embed", "-m", m, "--dimensions", "8"], Some(text));
    assert!(o.status.success(), "{}", stderr(&o));
    let cut = rows(&o.stdout);
    for (f, c) in full.iter().zip(&cut) {
        assert_eq!(c.len(), 8);
        let mut expect = f[..8].to_vec();
        ember_core::l2_normalize(&mut expect);
        for (x, y) in c.iter().zip(&expect) {
            assert!((x - y).abs() < 1e-6);
        }
    }
    let o = ember(&["embed", "-m", m, "--no-normalize"], Some(text));
    let raw = rows(&o.stdout);
    let norm: f32 = raw[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 1e-3, "--no-normalize still gave a unit vector");

    let o = ember(&["embed", "-m", m, "--precision", "ubinary"], Some(text));
    let bits = rows(&o.stdout);
    assert_eq!(bits[0].len(), 2);
    let expect: f32 =
        full[0][..8].iter().enumerate().map(|(i, &x)| if x > 0.0 { (128 >> i) as f32 } else { 0.0 }).sum();
    assert_eq!(bits[0][0], expect);

    let out = temp("npy").join("v.npy");
    let o = ember(&["embed", "-m", m, "--format", "npy", "-o", out.to_str().unwrap()], Some(text));
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert!(std::str::from_utf8(&bytes[10..10 + hlen]).unwrap().contains("'shape': (3, 16)"));
    let first = f32::from_le_bytes(bytes[10 + hlen..14 + hlen].try_into().unwrap());
    assert_eq!(first, full[0][0]);
}

#[test]
fn empty_input_gives_empty_output() {
    let Some(model) = tiny_model("empty") else { return };
    let o = ember(&["embed", "-m", model.to_str().unwrap()], Some(b""));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
}

#[test]
fn invalid_utf8_names_the_line() {
    let Some(model) = tiny_model("utf8") else { return };
    let o = ember(&["embed", "-m", model.to_str().unwrap()], Some(b"fine\nalso fine\nbroken \xc3\x28 here\n"));
    assert_error(&o, &["-:3: invalid UTF-8"]);
}

#[test]
fn dimensions_above_the_model_are_rejected() {
    let Some(model) = tiny_model("dims") else { return };
    let o = ember(&["embed", "-m", model.to_str().unwrap(), "--dimensions", "17"], Some(b"x\n"));
    assert_error(&o, &["--dimensions 17", "16"]);
}

#[test]
fn unknown_prompt_name_lists_the_known_ones() {
    let Some(model) = tiny_model("prompt") else { return };
    let o = ember(&["embed", "-m", model.to_str().unwrap(), "--prompt-name", "nope"], Some(b"x\n"));
    assert_error(&o, &["unknown prompt name 'nope'"]);
}

#[test]
fn missing_and_corrupt_files_are_named() {
    let Some(model) = tiny_model("corrupt") else { return };
    let m = model.to_str().unwrap();
    // Truncated weights.
    let weights = model.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    assert_error(&ember(&["embed", "-m", m], Some(b"x\n")), &["model.safetensors"]);
    // Garbage weights.
    std::fs::write(&weights, b"not a safetensors file").unwrap();
    assert_error(&ember(&["embed", "-m", m], Some(b"x\n")), &["model.safetensors"]);
    // No weights at all.
    std::fs::remove_file(&weights).unwrap();
    assert_error(&ember(&["embed", "-m", m], Some(b"x\n")), &["no model.safetensors"]);
    std::fs::write(&weights, &bytes).unwrap();
    // Corrupt tokenizer.
    std::fs::write(model.join("tokenizer.json"), b"{\"version\": ").unwrap();
    assert_error(&ember(&["embed", "-m", m], Some(b"x\n")), &["tokenizer.json"]);
    // Corrupt config.
    std::fs::write(model.join("config.json"), b"{").unwrap();
    assert_error(&ember(&["embed", "-m", m], Some(b"x\n")), &["config.json"]);
    // Unknown model name, offline.
    assert_error(&ember(&["embed", "-m", "nobody/nothing"], Some(b"x\n")), &["nobody/nothing", "not found"]);
}

#[test]
fn unsupported_architecture_is_named_with_the_supported_list() {
    let Some(model) = tiny_model("arch") else { return };
    let config = model.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap().replace("\"xlm-roberta\"", "\"gpt_neox\"");
    std::fs::write(&config, text).unwrap();
    let o = ember(&["models", "info", "-m", model.to_str().unwrap()], None);
    assert_error(&o, &["unsupported architecture 'gpt_neox'", "bert, mpnet, xlm-roberta"]);
}

#[test]
fn similarity_and_models_info() {
    let Some(model) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let m = model.to_str().unwrap();
    let o = ember(&["similarity", "-m", m, "A man is eating food.", "A man is eating a piece of bread."], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: f32 = String::from_utf8(o.stdout).unwrap().trim().parse().unwrap();
    assert!((s - 0.7553).abs() < 1e-4, "{s}");
    let o = ember(&["models", "info", "-m", m, "--json"], None);
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(info["architecture"], "bert");
    assert_eq!(info["dimension"], 384);
    assert_eq!(info["max_seq_length"], 256);
    assert_eq!(info["pooling"], serde_json::json!(["mean"]));
    assert_eq!(info["parameters"], 22_713_728);
}

#[test]
fn devices_are_parsed_and_cuda_says_when_it_is_not_built_in() {
    // No model is needed: the device is opened before the model is looked up.
    let o = ember(&["embed", "-m", "no/such-model", "--device", "tpu"], Some(b"x\n"));
    assert_eq!(o.status.code(), Some(2), "a usage error: {}", stderr(&o));
    assert!(stderr(&o).contains("unknown device 'tpu' (expected cpu, cuda or cuda:N)"), "{}", stderr(&o));
    if cfg!(feature = "cuda") {
        return;
    }
    let corpus = repo_root().join("bench/corpus/sentences.txt");
    let bench = ["bench", "embed", "--corpus", corpus.to_str().unwrap(), "--device", "cuda:1", "--dtype", "f16"];
    for args in [&["embed", "--device", "cuda"][..], &bench[..]] {
        let o = ember(&[args, &["-m", "no/such-model"]].concat(), Some(b"x\n"));
        assert_error(&o, &["CUDA is not enabled in this build", "--features cuda"]);
    }
}
