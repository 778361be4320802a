//! Model resolution against a local HTTP server laid out like the Hugging Face hub
//! (`/{repo}/resolve/{revision}/{file}` with `etag`, `x-repo-commit` and `Content-Range`),
//! bound to 127.0.0.1:0. Then the hub cache and offline mode.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use ember_core::EmbedOptions;
use ember_models::{resolve, HubOptions, LoadOptions, ModelError, SentenceEmbedder};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Serve `root/<org>/<name>/<file>` for `GET /<org>/<name>/resolve/<rev>/<file>`; count requests.
fn serve(root: PathBuf) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let root = root.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap();
                let mut range: Option<(u64, Option<u64>)> = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        let (a, b) = v.trim().split_once('-').unwrap();
                        range = Some((a.parse().unwrap(), b.parse().ok()));
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
                let file = (parts.len() == 5 && parts[2] == "resolve")
                    .then(|| root.join(parts[0]).join(parts[1]).join(parts[4]))
                    .filter(|p| p.is_file());
                let Some(file) = file else {
                    let _ =
                        stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    return;
                };
                let mut body = Vec::new();
                std::fs::File::open(&file).unwrap().read_to_end(&mut body).unwrap();
                let size = body.len() as u64;
                let (start, end) = match range {
                    Some((a, b)) => (a, b.unwrap_or(size - 1).min(size - 1)),
                    None => (0, size.saturating_sub(1)),
                };
                let chunk = &body[start as usize..=end as usize];
                let head = format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{end}/{size}\r\netag: \"{:x}\"\r\nx-repo-commit: {COMMIT}\r\nConnection: close\r\n\r\n",
                    chunk.len(),
                    size
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(chunk);
            });
        }
    });
    (format!("http://{addr}"), hits)
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ember-hub-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn hub(endpoint: &str, cache: &Path) -> HubOptions {
    HubOptions {
        endpoint: endpoint.to_string(),
        cache_dir: cache.to_path_buf(),
        offline: false,
        revision: "main".to_string(),
        token: None,
    }
}

#[test]
fn downloads_from_a_hub_shaped_server_then_works_offline_from_the_cache() {
    let Some(model) = tiny_xlmr_dir() else { return };
    let root = temp("root");
    copy_dir(&model, &root.join("ember-test/tiny-xlmr"));
    let (endpoint, hits) = serve(root);
    let cache = temp("cache");

    let dir = resolve("ember-test/tiny-xlmr", &hub(&endpoint, &cache)).unwrap();
    assert!(dir.starts_with(cache.join("models--ember-test--tiny-xlmr/snapshots").join(COMMIT)), "{dir:?}");
    for f in ["config.json", "tokenizer.json", "model.safetensors", "modules.json", "1_Pooling/config.json"] {
        assert!(dir.join(f).exists(), "{f} was not downloaded");
    }
    let fx = parity_fixture("tiny-xlmr");
    let m = SentenceEmbedder::load("ember-test/tiny-xlmr", &dir, &LoadOptions::default()).unwrap();
    let v = m.embed_texts(&[fx.cases[0].text.as_str()], &EmbedOptions::default()).unwrap();
    assert!(max_abs_diff(&v.vectors[0], &fx.cases[0].embedding) <= 1e-4);

    // Offline, the cache answers and the server is not asked again.
    let before = hits.load(Ordering::SeqCst);
    let offline = HubOptions { offline: true, ..hub("http://127.0.0.1:9", &cache) };
    assert_eq!(resolve("ember-test/tiny-xlmr", &offline).unwrap(), dir);
    assert_eq!(hits.load(Ordering::SeqCst), before);

    // Offline and not cached: a clear error.
    let e = resolve("ember-test/absent", &offline).unwrap_err();
    assert!(matches!(e, ModelError::NotFound(_)), "{e}");
    assert!(e.to_string().contains("ember-test/absent"));
}

#[test]
fn a_missing_repository_names_the_file_and_endpoint() {
    let (endpoint, _) = serve(temp("empty"));
    let e = resolve("nobody/nothing", &hub(&endpoint, &temp("cache2"))).unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("nobody/nothing") && e.contains(&endpoint), "{e}");
}

#[test]
fn a_local_directory_without_config_is_rejected() {
    let d = temp("noconfig");
    let e = resolve(d.to_str().unwrap(), &hub("http://127.0.0.1:9", &temp("c3"))).unwrap_err();
    assert!(matches!(e, ModelError::NotAModelDir(_)), "{e}");
}
