//! The `ember` binary end to end: output equals the sentence-transformers reference, options
//! behave as documented, and bad input gets a clear error and a non-zero exit, never a panic.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn models_base() -> PathBuf {
    std::env::var_os("EMBER_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/ember-test-models"))
}

/// A real test model, fetched by the project's script when missing (see ember-models' tests).
fn real_model(key: &str, dir_name: &str) -> Option<PathBuf> {
    let dir = models_base().join(dir_name);
    if !dir.join(".complete").exists() {
        let ok = Command::new("bash")
            .arg(repo_root().join("scripts/fetch-models.sh"))
            .arg(key)
            .status()
            .is_ok_and(|s| s.success());
        if !ok || !dir.join(".complete").exists() {
            assert!(std::env::var("CI").map_or(true, |v| v != "true"), "could not fetch {dir_name}");
            eprintln!("\n*** SKIPPED: test model {dir_name} is unavailable ***\n");
            return None;
        }
    }
    Some(dir)
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ember-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The tiny XLM-R fixture with the real XLM-R tokenizer, in a fresh directory.
fn tiny_model(name: &str) -> Option<PathBuf> {
    let tok = real_model("xlmr-tokenizer", "xlmr-tokenizer")?;
    let d = temp(name);
    copy_dir(&repo_root().join("crates/ember-models/tests/fixtures/tiny-xlmr"), &d);
    std::fs::copy(tok.join("tokenizer.json"), d.join("tokenizer.json")).unwrap();
    Some(d)
}

fn ember(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember"));
    cmd.args(args).env("HF_HUB_OFFLINE", "1").env("HF_HOME", temp("hf-home"));
    if let Some(input) = stdin {
        let path = temp("stdin").join("in.txt");
        std::fs::write(&path, input).unwrap();
        cmd.stdin(std::fs::File::open(path).unwrap());
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails the test unless the command exited non-zero with a message containing every `needle`
/// and without a panic.
fn assert_error(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success; stderr: {err}");
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}

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
