//! Caches of a model's outputs keyed by model and text, so that re-running a task or comparing
//! modes does not re-embed a corpus: dense vectors ([`EmbeddingCache`]) and learned sparse vectors
//! ([`SparseCache`]), one record-log format written once ([`OutputCache`]).
//!
//! One append-only file per (model, options): an 8-byte magic, a format version, the vector
//! dimension (0 for sparse vectors), then records of a 16-byte BLAKE3 key of the text followed by
//! the output's bytes ([`CachedOutput`]). A torn last record (a run killed mid-write) is dropped on
//! open; a file of another format or dimension is started over rather than misread.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ember_core::{EmbedOptions, Embedder, OutputKinds, SparseVector};

use crate::error::{EvalError, Result};

const VERSION: u32 = 1;
const HEADER: usize = 16;
const KEY: usize = 16;

/// A model output a cache file can hold.
pub trait CachedOutput: Clone + Sized {
    /// The file's magic.
    const MAGIC: &'static [u8; 8];
    /// The file's extension.
    const EXTENSION: &'static str;
    /// Prefixed to the model key before hashing it into the file name (keeps kinds apart).
    const NAMESPACE: &'static str;

    /// One record's payload (after the key) at the start of `bytes`, and its length; `None` when
    /// `bytes` holds only part of one (a torn tail).
    fn decode(bytes: &[u8], dim: usize) -> Option<(Self, usize)>;

    fn encode(&self, out: &mut Vec<u8>);

    /// The model's outputs for `texts`, in order; each checked against `dim`.
    fn compute(embedder: &dyn Embedder, texts: &[&str], options: &EmbedOptions, dim: usize) -> Result<Vec<Self>>;
}

fn f32_at(b: &[u8]) -> f32 {
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn u32_at(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Dense vectors: `dim` f32 LE.
impl CachedOutput for Vec<f32> {
    const MAGIC: &'static [u8; 8] = b"EMBRVCAC";
    const EXTENSION: &'static str = "vec";
    const NAMESPACE: &'static str = "";

    fn decode(bytes: &[u8], dim: usize) -> Option<(Self, usize)> {
        let len = 4 * dim;
        let v = bytes.get(..len)?.chunks_exact(4).map(f32_at).collect();
        Some((v, len))
    }

    fn encode(&self, out: &mut Vec<u8>) {
        for x in self {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }

    fn compute(embedder: &dyn Embedder, texts: &[&str], options: &EmbedOptions, dim: usize) -> Result<Vec<Self>> {
        let out = embedder.embed(texts, options).map_err(|e| EvalError::Embed(e.to_string()))?;
        if let Some(v) = out.vectors.iter().find(|v| v.len() != dim) {
            return Err(EvalError::Core(ember_core::CoreError::DimensionMismatch { left: dim, right: v.len() }));
        }
        Ok(out.vectors)
    }
}

/// Learned sparse vectors: the pair count (u32 LE), then `(term id u32, weight f32)` pairs.
impl CachedOutput for SparseVector {
    const MAGIC: &'static [u8; 8] = b"EMBRSPAC";
    const EXTENSION: &'static str = "spv";
    const NAMESPACE: &'static str = "sparse:";

    fn decode(bytes: &[u8], _dim: usize) -> Option<(Self, usize)> {
        let n = u32_at(bytes.get(..4)?) as usize;
        let len = 4 + 8 * n;
        let v = bytes.get(4..len)?.chunks_exact(8).map(|b| (u32_at(b), f32_at(&b[4..]))).collect();
        Some((v, len))
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.len() as u32).to_le_bytes());
        for (id, w) in self {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    fn compute(embedder: &dyn Embedder, texts: &[&str], options: &EmbedOptions, _dim: usize) -> Result<Vec<Self>> {
        embed_sparse(embedder, texts, options)
    }
}

/// A cache file opened for one model and one set of options.
#[derive(Debug)]
pub struct OutputCache<T> {
    path: PathBuf,
    dim: usize,
    outputs: HashMap<[u8; KEY], T>,
    file: File,
}

/// Dense vectors of one model.
pub type EmbeddingCache = OutputCache<Vec<f32>>;

/// Learned sparse vectors (SPLADE) of one model.
pub type SparseCache = OutputCache<SparseVector>;

/// The key of a text under the options that change its output (batch size does not).
fn key(options: &EmbedOptions, text: &str) -> [u8; KEY] {
    let mut h = blake3::Hasher::new();
    let fingerprint = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}\0",
        options.prompt_name, options.prompt, options.normalize, options.dimensions, options.max_length
    );
    h.update(fingerprint.as_bytes());
    h.update(text.as_bytes());
    let mut out = [0u8; KEY];
    out.copy_from_slice(&h.finalize().as_bytes()[..KEY]);
    out
}

impl EmbeddingCache {
    /// Open (or create) the cache of `model_key` under `dir`. `model_key` must change whenever the
    /// vectors would (model id and revision, prompt, dimensions, normalisation).
    pub fn open(dir: &Path, model_key: &str, dim: usize) -> Result<Self> {
        Self::open_file(dir, model_key, dim)
    }
}

impl SparseCache {
    /// Open (or create) the sparse cache of `model_key` under `dir` (a file distinct from every
    /// dense cache's).
    pub fn open(dir: &Path, model_key: &str) -> Result<Self> {
        Self::open_file(dir, model_key, 0)
    }
}

impl<T: CachedOutput> OutputCache<T> {
    fn open_file(dir: &Path, model_key: &str, dim: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
        let name = blake3::hash(format!("{}{model_key}", T::NAMESPACE).as_bytes()).to_hex();
        let path = dir.join(format!("{}.{}", &name[..24], T::EXTENSION));
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(T::MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&(dim as u32).to_le_bytes());
        let mut outputs = HashMap::new();
        let mut valid_len = HEADER;
        if path.exists() {
            let mut bytes = Vec::new();
            File::open(&path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(|e| EvalError::io(&path, e))?;
            if bytes.get(..HEADER) == Some(&header[..]) {
                let mut at = HEADER;
                while let Some(k) = bytes.get(at..at + KEY) {
                    let Some((output, len)) = T::decode(&bytes[at + KEY..], dim) else { break };
                    let mut key = [0u8; KEY];
                    key.copy_from_slice(k);
                    outputs.insert(key, output);
                    at += KEY + len;
                }
                valid_len = at;
            } else {
                // Another format or dimension: start over rather than misread.
                std::fs::remove_file(&path).map_err(|e| EvalError::io(&path, e))?;
            }
        }
        let mut file =
            OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(|e| EvalError::io(&path, e))?;
        let len = file.metadata().map_err(|e| EvalError::io(&path, e))?.len();
        if len == 0 {
            file.write_all(&header).map_err(|e| EvalError::io(&path, e))?;
        } else if len > valid_len as u64 {
            file.set_len(valid_len as u64).map_err(|e| EvalError::io(&path, e))?;
        }
        Ok(OutputCache { path, dim, outputs, file })
    }

    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    /// Outputs for `texts` in order, computing (and storing, durably) only those not cached.
    /// Returns the outputs and how many came from the cache.
    pub fn embed(
        &mut self,
        embedder: &dyn Embedder,
        texts: &[&str],
        options: &EmbedOptions,
    ) -> Result<(Vec<T>, usize)> {
        let keys: Vec<[u8; KEY]> = texts.iter().map(|t| key(options, t)).collect();
        let mut missing: Vec<usize> = Vec::new();
        let mut seen = HashSet::new();
        for (i, k) in keys.iter().enumerate() {
            if !self.outputs.contains_key(k) && seen.insert(*k) {
                missing.push(i);
            }
        }
        if !missing.is_empty() {
            let todo: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
            let computed = T::compute(embedder, &todo, options, self.dim)?;
            if computed.len() != todo.len() {
                return Err(EvalError::Embed(format!(
                    "model '{}' returned {} outputs for {} texts",
                    embedder.model_id(),
                    computed.len(),
                    todo.len()
                )));
            }
            let mut buf = Vec::new();
            for (&i, output) in missing.iter().zip(computed) {
                buf.extend_from_slice(&keys[i]);
                output.encode(&mut buf);
                self.outputs.insert(keys[i], output);
            }
            self.file.write_all(&buf).and_then(|_| self.file.sync_data()).map_err(|e| EvalError::io(&self.path, e))?;
        }
        let hits = texts.len() - missing.len();
        let mut found = Vec::with_capacity(keys.len());
        for k in &keys {
            found.push(
                self.outputs.get(k).cloned().ok_or_else(|| {
                    EvalError::Embed(format!("cache {}: an output was not stored", self.path.display()))
                })?,
            );
        }
        Ok((found, hits))
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
