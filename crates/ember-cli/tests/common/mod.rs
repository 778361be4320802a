//! Shared by the binary's integration tests: real test models (fetched by the project's own
//! script), temp dirs, and running `ember`.
#![allow(dead_code, clippy::unwrap_used)]

pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub fn models_base() -> PathBuf {
    std::env::var_os("EMBER_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/ember-test-models"))
}

/// A real test model, fetched by the project's script when missing (see ember-models' tests).
pub fn real_model(key: &str, dir_name: &str) -> Option<PathBuf> {
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

pub fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ember-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn copy_dir(from: &Path, to: &Path) {
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
pub fn tiny_model(name: &str) -> Option<PathBuf> {
    let tok = real_model("xlmr-tokenizer", "xlmr-tokenizer")?;
    let d = temp(name);
    copy_dir(&repo_root().join("crates/ember-models/tests/fixtures/tiny-xlmr"), &d);
    std::fs::copy(tok.join("tokenizer.json"), d.join("tokenizer.json")).unwrap();
    Some(d)
}

pub fn ember(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember"));
    cmd.args(args).env("HF_HUB_OFFLINE", "1").env("HF_HOME", temp("hf-home"));
    if let Some(input) = stdin {
        let path = temp("stdin").join("in.txt");
        std::fs::write(&path, input).unwrap();
        cmd.stdin(std::fs::File::open(path).unwrap());
    }
    cmd.output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails the test unless the command exited non-zero with a message containing every `needle`
/// and without a panic.
pub fn assert_error(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, got success; stderr: {err}");
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}

/// The address of an external store server for these tests, from `var` (set by `script`, which
/// `.ci/run` runs). Under `CI=true` a missing server fails the test; elsewhere the test is
/// skipped, loudly.
pub fn server_url(var: &str, script: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CI=true but {var} is not set ({script} starts a server)"
            );
            eprintln!("\n!!! SKIPPING a test on an external store: {var} is not set (run {script}).\n");
            None
        }
    }
}

/// PostgreSQL + pgvector for these tests.
pub fn postgres_url() -> Option<String> {
    server_url("EMBER_TEST_POSTGRES_URL", "scripts/setup-postgres.sh")
}
