//! An embedding cache keyed by model and text, so that re-running a task or comparing modes does
//! not re-embed a corpus.
//!
//! One append-only file per (model, options): an 8-byte magic, a format version, the vector
//! dimension, then records of a 16-byte BLAKE3 key of the text followed by the vector (f32 LE).
//! A torn last record (a run killed mid-write) is dropped on open.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ember_core::{EmbedOptions, Embedder, OutputKinds, SparseVector};

use crate::error::{EvalError, Result};

const MAGIC: &[u8; 8] = b"EMBRVCAC";
const VERSION: u32 = 1;
const HEADER: usize = 16;

/// A cache file opened for one model and one set of options.
#[derive(Debug)]
pub struct EmbeddingCache {
    path: PathBuf,
    dim: usize,
    vectors: HashMap<[u8; 16], Vec<f32>>,
    file: File,
}

/// The key of a text under the options that change its vector (batch size does not).
fn key(options: &EmbedOptions, text: &str) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    let fingerprint = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}\0",
        options.prompt_name, options.prompt, options.normalize, options.dimensions, options.max_length
    );
    h.update(fingerprint.as_bytes());
    h.update(text.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

impl EmbeddingCache {
    /// Open (or create) the cache of `model_key` under `dir`. `model_key` must change whenever the
    /// vectors would (model id and revision, prompt, dimensions, normalisation).
    pub fn open(dir: &Path, model_key: &str, dim: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
        let name = blake3::hash(model_key.as_bytes()).to_hex();
        let path = dir.join(format!("{}.vec", &name[..24]));
        let mut vectors = HashMap::new();
        let record = 16 + 4 * dim;
        let mut valid_len = HEADER as u64;
        if path.exists() {
            let mut bytes = Vec::new();
            File::open(&path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(|e| EvalError::io(&path, e))?;
            let header_ok = bytes.len() >= HEADER
                && &bytes[..8] == MAGIC
                && bytes[8..12] == VERSION.to_le_bytes()
                && bytes[12..16] == (dim as u32).to_le_bytes();
            if header_ok {
                for rec in bytes[HEADER..].chunks_exact(record) {
                    let mut k = [0u8; 16];
                    k.copy_from_slice(&rec[..16]);
                    let v = rec[16..].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                    vectors.insert(k, v);
                }
                valid_len += (vectors.len() * record) as u64;
            } else {
                // Another format or dimension: start over rather than misread.
                std::fs::remove_file(&path).map_err(|e| EvalError::io(&path, e))?;
            }
        }
        let mut file =
            OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(|e| EvalError::io(&path, e))?;
        let len = file.metadata().map_err(|e| EvalError::io(&path, e))?.len();
        if len == 0 {
            let mut header = Vec::with_capacity(HEADER);
            header.extend_from_slice(MAGIC);
            header.extend_from_slice(&VERSION.to_le_bytes());
            header.extend_from_slice(&(dim as u32).to_le_bytes());
            file.write_all(&header).map_err(|e| EvalError::io(&path, e))?;
        } else if len > valid_len {
            file.set_len(valid_len).map_err(|e| EvalError::io(&path, e))?;
        }
        Ok(EmbeddingCache { path, dim, vectors, file })
    }

    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Vectors for `texts` in order, embedding (and storing) only those not cached. Returns the
    /// vectors and how many came from the cache.
    pub fn embed(
        &mut self,
        embedder: &dyn Embedder,
        texts: &[&str],
        options: &EmbedOptions,
    ) -> Result<(Vec<Vec<f32>>, usize)> {
        let keys: Vec<[u8; 16]> = texts.iter().map(|t| key(options, t)).collect();
        let mut missing: Vec<usize> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, k) in keys.iter().enumerate() {
            if !self.vectors.contains_key(k) && seen.insert(*k) {
                missing.push(i);
            }
        }
        if !missing.is_empty() {
            let todo: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
            let out = embedder.embed(&todo, options).map_err(|e| EvalError::Embed(e.to_string()))?;
            let mut buf = Vec::with_capacity(missing.len() * (16 + 4 * self.dim));
            for (&i, v) in missing.iter().zip(out.vectors) {
                if v.len() != self.dim {
                    return Err(EvalError::Core(ember_core::CoreError::DimensionMismatch {
                        left: self.dim,
                        right: v.len(),
                    }));
                }
                buf.extend_from_slice(&keys[i]);
                for x in &v {
                    buf.extend_from_slice(&x.to_le_bytes());
                }
                self.vectors.insert(keys[i], v);
            }
            self.file.write_all(&buf).and_then(|_| self.file.sync_data()).map_err(|e| EvalError::io(&self.path, e))?;
        }
        let hits = texts.len() - missing.len();
        let vectors = keys.iter().map(|k| self.vectors.get(k).cloned().unwrap_or_default()).collect();
        Ok((vectors, hits))
    }
}

const SPARSE_MAGIC: &[u8; 8] = b"EMBRSPAC";

/// Learned sparse vectors (SPLADE) cached like [`EmbeddingCache`]'s dense ones: after the same
/// 16-byte header (dimension 0), records of the 16-byte key, the pair count (u32 LE) and that many
/// `(term id u32, weight f32)` pairs. A torn last record is dropped on open.
#[derive(Debug)]
pub struct SparseCache {
    path: PathBuf,
    vectors: HashMap<[u8; 16], SparseVector>,
    file: File,
}

/// The records of a sparse cache file after its header, and how many bytes they span (a torn
/// tail is not counted).
fn sparse_records(bytes: &[u8]) -> (HashMap<[u8; 16], SparseVector>, usize) {
    let mut vectors = HashMap::new();
    let mut at = 0;
    while bytes.len() >= at + 20 {
        let n = u32::from_le_bytes([bytes[at + 16], bytes[at + 17], bytes[at + 18], bytes[at + 19]]) as usize;
        let end = at + 20 + 8 * n;
        if bytes.len() < end {
            break;
        }
        let mut k = [0u8; 16];
        k.copy_from_slice(&bytes[at..at + 16]);
        let v = bytes[at + 20..end]
            .chunks_exact(8)
            .map(|b| (u32::from_le_bytes([b[0], b[1], b[2], b[3]]), f32::from_le_bytes([b[4], b[5], b[6], b[7]])))
            .collect();
        vectors.insert(k, v);
        at = end;
    }
    (vectors, at)
}

impl SparseCache {
    /// Open (or create) the sparse cache of `model_key` under `dir` (a key distinct from every
    /// dense cache's: the file name hashes `sparse:` and the key).
    pub fn open(dir: &Path, model_key: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
        let name = blake3::hash(format!("sparse:{model_key}").as_bytes()).to_hex();
        let path = dir.join(format!("{}.spv", &name[..24]));
        let mut vectors = HashMap::new();
        let mut valid_len = HEADER as u64;
        if path.exists() {
            let mut bytes = Vec::new();
            File::open(&path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(|e| EvalError::io(&path, e))?;
            let header_ok = bytes.len() >= HEADER
                && &bytes[..8] == SPARSE_MAGIC
                && bytes[8..12] == VERSION.to_le_bytes()
                && bytes[12..16] == 0u32.to_le_bytes();
            if header_ok {
                let (read, len) = sparse_records(&bytes[HEADER..]);
                vectors = read;
                valid_len += len as u64;
            } else {
                std::fs::remove_file(&path).map_err(|e| EvalError::io(&path, e))?;
            }
        }
        let mut file =
            OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(|e| EvalError::io(&path, e))?;
        let len = file.metadata().map_err(|e| EvalError::io(&path, e))?.len();
        if len == 0 {
            let mut header = Vec::with_capacity(HEADER);
            header.extend_from_slice(SPARSE_MAGIC);
            header.extend_from_slice(&VERSION.to_le_bytes());
            header.extend_from_slice(&0u32.to_le_bytes());
            file.write_all(&header).map_err(|e| EvalError::io(&path, e))?;
        } else if len > valid_len {
            file.set_len(valid_len).map_err(|e| EvalError::io(&path, e))?;
        }
        Ok(SparseCache { path, vectors, file })
    }

    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Sparse vectors for `texts` in order, encoding (and storing) only those not cached. Returns
    /// the vectors and how many came from the cache.
    pub fn embed(
        &mut self,
        embedder: &dyn Embedder,
        texts: &[&str],
        options: &EmbedOptions,
    ) -> Result<(Vec<SparseVector>, usize)> {
        let keys: Vec<[u8; 16]> = texts.iter().map(|t| key(options, t)).collect();
        let mut missing: Vec<usize> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, k) in keys.iter().enumerate() {
            if !self.vectors.contains_key(k) && seen.insert(*k) {
                missing.push(i);
            }
        }
        if !missing.is_empty() {
            let todo: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
            let out = embed_sparse(embedder, &todo, options)?;
            let mut buf = Vec::new();
            for (&i, v) in missing.iter().zip(out) {
                buf.extend_from_slice(&keys[i]);
                buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
                for (id, w) in &v {
                    buf.extend_from_slice(&id.to_le_bytes());
                    buf.extend_from_slice(&w.to_le_bytes());
                }
                self.vectors.insert(keys[i], v);
            }
            self.file.write_all(&buf).and_then(|_| self.file.sync_data()).map_err(|e| EvalError::io(&self.path, e))?;
        }
        let hits = texts.len() - missing.len();
        let vectors = keys.iter().map(|k| self.vectors.get(k).cloned().unwrap_or_default()).collect();
        Ok((vectors, hits))
    }
}

/// `embedder`'s sparse vectors for `texts` (an error naming what it produces when it has none).
pub fn embed_sparse(embedder: &dyn Embedder, texts: &[&str], options: &EmbedOptions) -> Result<Vec<SparseVector>> {
    let out =
        embedder.embed_outputs(texts, OutputKinds::SPARSE, options).map_err(|e| EvalError::Embed(e.to_string()))?;
    match out.sparse {
        Some(v) if v.len() == texts.len() => Ok(v),
        _ => Err(EvalError::Embed(format!(
            "model '{}' returned no sparse vector for some of {} texts",
            embedder.model_id(),
            texts.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ember_core::embedder::BoxError;
    use ember_core::Embeddings;

    use super::*;

    /// Deterministic fake: the vector is [len, first byte]; counts texts embedded.
    struct Counting(AtomicUsize);
    impl Embedder for Counting {
        fn model_id(&self) -> &str {
            "counting"
        }
        fn dimension(&self) -> usize {
            2
        }
        fn embed(&self, texts: &[&str], _: &EmbedOptions) -> Result<Embeddings, BoxError> {
            self.0.fetch_add(texts.len(), Ordering::SeqCst);
            let vectors =
                texts.iter().map(|t| vec![t.len() as f32, *t.as_bytes().first().unwrap_or(&0) as f32]).collect();
            Ok(Embeddings { vectors, tokens: 0, truncated: 0 })
        }
    }

    #[test]
    fn second_run_embeds_nothing_and_a_torn_tail_is_dropped() {
        let dir = std::env::temp_dir().join(format!("ember-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let model = Counting(AtomicUsize::new(0));
        let opts = EmbedOptions::default();
        let mut c = EmbeddingCache::open(&dir, "m", 2).unwrap();
        let (v, hits) = c.embed(&model, &["ab", "c", "ab"], &opts).unwrap();
        assert_eq!((v, hits), (vec![vec![2.0, 97.0], vec![1.0, 99.0], vec![2.0, 97.0]], 1));
        assert_eq!(model.0.load(Ordering::SeqCst), 2);
        drop(c);

        // Simulate a write killed half-way.
        let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(&[1, 2, 3, 4, 5]).unwrap();
        drop(f);

        let mut c = EmbeddingCache::open(&dir, "m", 2).unwrap();
        assert_eq!(c.len(), 2);
        let (v, hits) = c.embed(&model, &["c", "ab", "new"], &opts).unwrap();
        assert_eq!(hits, 2);
        assert_eq!(v[2], vec![3.0, 110.0]);
        assert_eq!(model.0.load(Ordering::SeqCst), 3);
        // Other options (a prompt) are other keys.
        let prompted = EmbedOptions { prompt: Some("q: ".into()), ..EmbedOptions::default() };
        let (_, hits) = c.embed(&model, &["c"], &prompted).unwrap();
        assert_eq!(hits, 0);
        drop(c);
        assert_eq!(EmbeddingCache::open(&dir, "m", 2).unwrap().len(), 4);
        // Another model key is another file.
        assert!(EmbeddingCache::open(&dir, "other", 2).unwrap().is_empty());
    }

    /// Fake SPLADE: one term per byte (id = byte, weight = position + 1); counts texts encoded.
    struct SparseCounting(AtomicUsize);
    impl Embedder for SparseCounting {
        fn model_id(&self) -> &str {
            "sparse-counting"
        }
        fn dimension(&self) -> usize {
            256
        }
        fn outputs(&self) -> OutputKinds {
            OutputKinds::SPARSE
        }
        fn embed(&self, _: &[&str], _: &EmbedOptions) -> Result<Embeddings, BoxError> {
            Err("no dense output".into())
        }
        fn embed_outputs(
            &self,
            texts: &[&str],
            _: OutputKinds,
            _: &EmbedOptions,
        ) -> Result<ember_core::MultiEmbeddings, BoxError> {
            self.0.fetch_add(texts.len(), Ordering::SeqCst);
            let sparse = texts
                .iter()
                .map(|t| t.bytes().enumerate().map(|(i, b)| (u32::from(b), i as f32 + 1.0)).collect())
                .collect();
            Ok(ember_core::MultiEmbeddings { sparse: Some(sparse), ..Default::default() })
        }
    }

    #[test]
    fn sparse_cache_serves_a_rerun_and_drops_a_torn_tail() {
        let dir = std::env::temp_dir().join(format!("ember-sparse-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let model = SparseCounting(AtomicUsize::new(0));
        let opts = EmbedOptions::default();
        let mut c = SparseCache::open(&dir, "s").unwrap();
        let (v, hits) = c.embed(&model, &["ab", "", "ab"], &opts).unwrap();
        assert_eq!(v, vec![vec![(97, 1.0), (98, 2.0)], vec![], vec![(97, 1.0), (98, 2.0)]]);
        assert_eq!(hits, 1);
        assert_eq!(model.0.load(Ordering::SeqCst), 2);
        drop(c);
        let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(&[7; 19]).unwrap();
        drop(f);
        let mut c = SparseCache::open(&dir, "s").unwrap();
        assert_eq!(c.len(), 2);
        let (v, hits) = c.embed(&model, &["", "ab", "c"], &opts).unwrap();
        assert_eq!((hits, v[2].clone()), (2, vec![(99, 1.0)]));
        assert_eq!(model.0.load(Ordering::SeqCst), 3);
        drop(c);
        assert_eq!(SparseCache::open(&dir, "s").unwrap().len(), 3);
        // A dense model's vectors are not sparse ones: an error naming what it produces.
        let err = embed_sparse(&Counting(AtomicUsize::new(0)), &["x"], &opts).unwrap_err().to_string();
        assert!(err.contains("it produces: dense"), "{err}");
    }
}
