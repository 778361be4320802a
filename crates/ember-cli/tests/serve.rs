//! `ember serve` end to end: the real binary on 127.0.0.1:0, driven by the official `openai`
//! Python SDK, answers the same vectors as `ember embed`; SIGTERM lets a request in flight finish.
//!
//! The SDK comes from the project's Python environment (scripts/setup-python.sh --client installs
//! it when missing). Without it the test fails under CI=true and is skipped, loudly, elsewhere.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::server::*;
use common::*;
use serde_json::Value;

/// The venv's python with `openai` importable, installing it with the project's script if needed.
fn python_with_openai() -> Option<PathBuf> {
    let venv = std::env::var_os("EMBER_PYENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/ember-pyenv"));
    let python = venv.join("bin/python");
    let has_openai = || Command::new(&python).args(["-c", "import openai"]).output().is_ok_and(|o| o.status.success());
    if !has_openai() {
        let ok = Command::new("bash")
            .arg(repo_root().join("scripts/setup-python.sh"))
            .arg("--client")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok || !has_openai() {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "the openai SDK is not available in {} and scripts/setup-python.sh --client could not install it",
                venv.display()
            );
            eprintln!("\n*** SKIPPED: the openai Python SDK is unavailable ({}) ***\n", venv.display());
            return None;
        }
    }
    Some(python)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

#[test]
fn openai_sdk_against_ember_serve_equals_ember_embed() {
    let Some(model) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let Some(python) = python_with_openai() else { return };
    let model = model.to_str().unwrap();
    let dir = temp("serve-e2e");
    let texts = [
        "A man is eating food.",
        "The girl is carrying a baby.",
        "Ünïcödé, emoji 🚀 and 中文 in one line.",
        "A longer line about batching queues, token budgets and the model thread that runs them all.",
    ];
    std::fs::write(dir.join("texts.txt"), texts.join("\n") + "\n").unwrap();

    let o = ember(&["embed", "--model", model, "--input", dir.join("texts.txt").to_str().unwrap()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let cli: Vec<Vec<f32>> =
        String::from_utf8(o.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(cli.len(), texts.len());

    let data = dir.join("data");
    let server = start_server(&[
        "--model",
        &format!("minilm={model}"),
        "--model",
        model,
        "--data-dir",
        data.to_str().unwrap(),
        "--api-key",
        "k3y",
    ]);
    let script = repo_root().join("crates/ember-cli/tests/serve/openai_client.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(format!("http://{}/v1", server.addr))
        .arg("k3y")
        .arg(dir.join("texts.txt"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "client failed:\n{}\nserver:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log.lock().unwrap()
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("openai SDK {}", got["openai_version"]);
    for key in ["default", "float"] {
        let rows = got[key].as_array().unwrap();
        assert_eq!(rows.len(), texts.len(), "{key}");
        for (i, row) in rows.iter().enumerate() {
            let c = cosine(&floats(row), &cli[i]);
            assert!(c >= 0.9999, "{key} input {i}: cosine {c}");
        }
    }
    assert_eq!(got["indices"], serde_json::json!([0, 1, 2, 3]));
    assert!(got["usage"]["prompt_tokens"].as_u64().unwrap() > 20);
    assert!(cosine(&floats(&got["single"]), &cli[0]) >= 0.9999);
    let d = floats(&got["dimensions"]);
    assert_eq!(d.len(), 128);
    assert!(cosine(&d, &cli[0][..128]) >= 0.9999);
    assert_eq!(got["models"], serde_json::json!(["all-MiniLM-L6-v2", "minilm"]));
    assert_eq!(got["not_found"]["status"], 404);
    assert_eq!(got["not_found"]["code"], "model_not_found");
    assert!(got["not_found"]["message"].as_str().unwrap().contains("available models: minilm, all-MiniLM-L6-v2"));
    assert_eq!(got["unauthorized"]["status"], 401);
    assert_eq!(got["bad_request"]["status"], 400);
    assert_eq!(got["bad_request"]["param"], "input[0]");

    // A client that hangs up takes its waiting inputs out of the queue.
    let inputs: Vec<String> = (0..400).map(|i| format!("gone {i} {}", "word ".repeat(150))).collect();
    let body = serde_json::json!({ "input": inputs }).to_string();
    let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
    write!(
        s,
        "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(s);
    let cancelled = (0..100).find_map(|_| {
        std::thread::sleep(Duration::from_millis(50));
        let (_, metrics) = http(&server.addr, "GET", "/metrics", "");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("ember_queue_cancelled_total{model=\"minilm\"} "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|&n| n > 0.0)
    });
    assert!(cancelled.is_some(), "no queued input was cancelled after the client left");

    // SIGTERM while a request is in flight: the request is answered, then the server exits 0.
    let inputs: Vec<String> = (0..300).map(|i| format!("sentence {i} {}", "word ".repeat(100))).collect();
    let body = serde_json::json!({ "inputs": inputs, "truncate": true }).to_string();
    let addr = server.addr.clone();
    let inflight = std::thread::spawn(move || http(&addr, "POST", "/embed", &body));
    // Let the request reach the server (300 inputs of ~100 tokens take seconds on two cores).
    std::thread::sleep(Duration::from_millis(300));
    let mut server = server;
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let (status, body) = inflight.join().unwrap();
    assert_eq!(status, 200, "{body}");
    let vectors: Vec<Vec<f32>> = serde_json::from_str(&body).unwrap();
    assert_eq!(vectors.len(), 300);
    let exit = server.child.wait().unwrap();
    let log = server.log.lock().unwrap().clone();
    assert!(exit.success(), "exit {exit:?}; stderr:\n{log}");
    assert!(log.contains("ember: stopped"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn serve_reports_bad_flags() {
    let o = ember(&["serve", "--model", "=x", "--port", "0"], None);
    assert_error(&o, &["expected NAME=MODEL or MODEL"]);
    let Some(model) = real_model("minilm", "all-MiniLM-L6-v2") else { return };
    let o = ember(&["serve", "--model", model.to_str().unwrap(), "--max-queue", "0", "--port", "0"], None);
    assert_error(&o, &["max_queue must be at least 1"]);
}
