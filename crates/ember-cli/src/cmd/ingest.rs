//! `ember ingest PATH --collection NAME`: read files, chunk them with the model's tokenizer,
//! embed and store them durably; re-runs skip unchanged documents.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ember_chunk::TokenCounter;
use ember_core::{Embedder, OutputKinds};
use ember_engine::{
    ingest_with, open_or_create_in, read_sources, CollectionSettings, IngestOptions, IngestProgress, Models, SourceScan,
};
use ember_models::TokenCount;
use ember_store::{
    AnalyzerConfig, Bm25Params, IndexKind, MultiVectorConfig, Precision, SparseFieldConfig, TextIndexConfig,
    VectorStore,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::model_source::{self, ModelArgs, DEFAULT_MODEL};
use crate::store_source::{stable_model_ref, StoreArgs};

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files or directories (.txt, .md, .jsonl with `id`/`text` and metadata fields).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The collection to write to (created on first use).
    #[arg(long, short = 'c')]
    pub collection: String,
    /// Model (local directory, hub id or alias); an existing collection keeps its own.
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// Token budget per chunk (default: the model's max length minus its special tokens).
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Tokens repeated between consecutive chunks.
    #[arg(long, default_value_t = 0)]
    pub overlap: usize,
    /// Chunks embedded and committed per batch.
    #[arg(long, default_value_t = 128)]
    pub batch_chunks: usize,
    /// Index of a new collection: `flat` (exact) or `hnsw` (approximate graph).
    #[arg(long, value_enum, default_value_t = IndexArg::Flat)]
    pub index: IndexArg,
    /// HNSW links per node (new collections with `--index hnsw`).
    #[arg(long, default_value_t = 16)]
    pub hnsw_m: usize,
    /// HNSW candidate list while building.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// Search precision of a new flat collection: `int8` and `binary` scan a quantized copy, then
    /// rescore the best candidates with the full vectors.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Float32)]
    pub precision: PrecisionArg,
    /// BM25 text index of a new collection: `english` (Porter stemming, English stopwords),
    /// `plain` (lowercased words), `chinese` (jieba) or `none`. Default: `english` (`none` on
    /// Milvus, which keeps no ember text index).
    #[arg(long, value_enum)]
    pub text_index: Option<TextIndexArg>,
    /// BM25 term-frequency saturation of a new text index.
    #[arg(long, default_value_t = 1.2)]
    pub k1: f32,
    /// BM25 length normalisation of a new text index (0 to 1).
    #[arg(long, default_value_t = 0.75)]
    pub b: f32,
    /// Give a new collection a learned sparse field computed by this model (SPLADE; or the
    /// dense model itself when it has a sparse head, e.g. BGE-M3).
    #[arg(long)]
    pub sparse_model: Option<String>,
    /// Give a new collection a multi-vector (ColBERT) field filled with the model's token vectors
    /// from the same forward pass (BGE-M3), searched by MaxSim (`ember search --mode multivector`).
    #[arg(long)]
    pub multivector: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TextIndexArg {
    English,
    Plain,
    Chinese,
    None,
}

impl IngestArgs {
    /// The text index asked for; by default English where `store` can keep one, none elsewhere.
    fn text_index(&self, store: &dyn VectorStore) -> Option<TextIndexConfig> {
        let default = if store.keeps_text_index() { TextIndexArg::English } else { TextIndexArg::None };
        let analyzer = match self.text_index.unwrap_or(default) {
            TextIndexArg::English => AnalyzerConfig::english(),
            TextIndexArg::Plain => AnalyzerConfig::plain(),
            TextIndexArg::Chinese => AnalyzerConfig::chinese(),
            TextIndexArg::None => return None,
        };
        Some(TextIndexConfig { analyzer, bm25: Bm25Params { k1: self.k1, b: self.b, ..Bm25Params::default() } })
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum IndexArg {
    Flat,
    Hnsw,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PrecisionArg {
    Float32,
    Float16,
    Int8,
    Binary,
}

/// The model's tokenizer as the chunker's budget unit.
struct ModelTokens(TokenCount);

impl TokenCounter for ModelTokens {
    fn count(&self, text: &str) -> usize {
        self.0.count(text)
    }
    fn offsets(&self, text: &str) -> Option<Vec<std::ops::Range<usize>>> {
        self.0.offsets(text)
    }
}

pub fn run(args: IngestArgs) -> anyhow::Result<()> {
    let store = args.store.open_any()?;
    let existing = store.collection(&args.collection).ok().map(|c| c.config().model_id.clone());
    let model_ref = match (&args.model, existing) {
        (Some(m), _) => stable_model_ref(m),
        (None, Some(stored)) => stored,
        (None, None) => DEFAULT_MODEL.to_string(),
    };
    let mut scan = SourceScan::default();
    for path in &args.paths {
        let more = read_sources(path)?;
        scan.documents.extend(more.documents);
        scan.warnings.extend(more.warnings);
        scan.unsupported_files += more.unsupported_files;
    }
    for w in &scan.warnings {
        eprintln!("warning: {w}");
    }
    let model = model_source::load(&ModelArgs { model: model_ref, revision: args.revision.clone() })?;
    let settings = CollectionSettings {
        index: match args.index {
            IndexArg::Flat => IndexKind::Flat,
            IndexArg::Hnsw => IndexKind::Hnsw { m: args.hnsw_m, ef_construction: args.ef_construction },
        },
        precision: match args.precision {
            PrecisionArg::Float32 => Precision::Float32,
            PrecisionArg::Float16 => Precision::Float16,
            PrecisionArg::Int8 => Precision::Int8,
            PrecisionArg::Binary => Precision::Binary,
        },
        text_index: args.text_index(store.as_ref()),
        sparse: args.sparse_model.as_deref().map(|m| SparseFieldConfig { model_id: stable_model_ref(m) }),
        multivector: if args.multivector { Some(multivector_field(&model)?) } else { None },
    };
    // The sparse field's model: the existing collection's, else the one asked for. Checked before
    // a collection is created, so a model without sparse output leaves nothing behind.
    let field_model = match store.collection(&args.collection) {
        Ok(c) => c.config().sparse.as_ref().map(|f| f.model_id.clone()),
        Err(_) => settings.sparse.as_ref().map(|f| f.model_id.clone()),
    };
    let sparse_model = match &field_model {
        Some(id) if id != model.model_id() => {
            Some(model_source::load(&ModelArgs { model: id.clone(), revision: args.revision.clone() })?)
        }
        _ => None,
    };
    if let Some(id) = &field_model {
        let provider: &dyn Embedder = sparse_model.as_ref().map_or(&model as &dyn Embedder, |m| m);
        if !provider.outputs().sparse {
            anyhow::bail!(
                "sparse model '{id}' produces no sparse vectors (it produces: {}); use a SPLADE or BGE-M3 checkpoint",
                provider.outputs().names()
            );
        }
    }
    let collection = open_or_create_in(store.as_ref(), &args.collection, &model, settings)?;
    let models = Models { dense: Some(&model), sparse: sparse_model.as_ref().map(|m| m as &dyn Embedder) };
    let counter = ModelTokens(model.token_count()?);
    // [CLS] and [SEP] (or <s> and </s>) take two of the model's positions.
    let max_tokens = args.max_tokens.unwrap_or_else(|| model.max_seq_length().saturating_sub(2).max(1));
    let options = IngestOptions { max_tokens, overlap_tokens: args.overlap, batch_chunks: args.batch_chunks };
    let bar = if std::io::stderr().is_terminal() && !args.json {
        let bar = ProgressBar::new(scan.documents.iter().map(|d| d.text.len() as u64).sum());
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} [{elapsed_precise}, eta {eta}]")
                .context("progress bar template")?,
        );
        Some(bar)
    } else {
        None
    };
    let mut on_progress = |p: &IngestProgress| {
        if let Some(bar) = &bar {
            bar.set_position(p.bytes_done as u64);
            bar.set_message(format!(
                "{}/{} documents, {} chunks",
                p.documents_done, p.documents_total, p.chunks_written
            ));
        }
    };
    let report = ingest_with(collection.as_ref(), models, &counter, &scan.documents, &options, &mut on_progress)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    for id in &report.duplicate_ids {
        eprintln!("warning: document id '{id}' appears more than once; only the first was ingested");
    }
    let info = collection.info()?;
    if args.json {
        let json = serde_json::json!({
            "collection": info.name,
            "documents": report.documents,
            "added": report.added,
            "replaced": report.replaced,
            "unchanged": report.unchanged,
            "chunks_written": report.chunks_written,
            "chunks_deleted": report.chunks_deleted,
            "skipped_files": scan.warnings.len(),
            "tokens": report.tokens,
            "truncated": report.truncated,
            "bytes": report.bytes,
            "seconds": report.total_seconds,
            "embed_seconds": report.embed_seconds,
            "store_seconds": report.store_seconds,
            "chunk_seconds": report.chunk_seconds,
            "count": info.count,
        });
        println!("{json}");
    } else {
        let secs = report.total_seconds.max(1e-9);
        eprintln!(
            "{}: {} documents ({} added, {} replaced, {} unchanged), {} chunks written, {} deleted, \
             {} now stored; {:.1} docs/s, {:.2} MB/s, {:.0}% of the time embedding",
            info.name,
            report.documents,
            report.added,
            report.replaced,
            report.unchanged,
            report.chunks_written,
            report.chunks_deleted,
            info.count,
            report.documents as f64 / secs,
            report.bytes as f64 / 1e6 / secs,
            100.0 * report.embed_seconds / secs,
        );
        if report.truncated > 0 {
            eprintln!("warning: {} chunks were longer than the model's limit and were truncated", report.truncated);
        }
    }
    Ok(())
}

/// The multi-vector field of a new collection: the token vectors' length, read off the model's
/// own output for a probe text (a model without token vectors is refused, naming what it has).
fn multivector_field(model: &dyn Embedder) -> anyhow::Result<MultiVectorConfig> {
    if !model.outputs().multivector {
        anyhow::bail!(
            "--multivector needs a model with token vectors (ColBERT / BGE-M3); '{}' produces: {}",
            model.model_id(),
            model.outputs().names()
        );
    }
    let probe = model
        .embed_outputs(&["probe"], OutputKinds::MULTIVECTOR, &Default::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let dimension = probe.multivector.and_then(|v| v.first().and_then(|t| t.first().map(Vec::len))).unwrap_or(0);
    if dimension == 0 {
        anyhow::bail!("model '{}' returned no token vectors for a probe text", model.model_id());
    }
    Ok(MultiVectorConfig { dimension })
}
