//! `ember eval`: MTEB/BEIR-style evaluation of one or more models on one or more datasets.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use ember_core::Embedder;
use ember_engine::{Mode, Source};
use ember_eval::task::retrieval::EngineRetrieval;
use ember_eval::task::{labelled, pairs, retrieval};
use ember_eval::{
    detect, load_beir, load_labelled, load_pairs, load_reranking, load_squad, EmbedStep, EmbeddingCache, EvalOptions,
    Layout, SparseCache, SparseStep, TaskKind,
};
use ember_store::{AnalyzerConfig, TextIndexConfig};

use crate::model_source::{self, ModelArgs};
use crate::retrieval_args::{Retrieval, RetrievalArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    Retrieval,
    Sts,
    PairClassification,
    Classification,
    Clustering,
    Reranking,
    Squad,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Models to evaluate (repeat to compare): local directories, hub ids or catalog aliases.
    /// Optional for `--mode bm25`, and for `--mode sparse` with `--sparse-model`.
    #[arg(long = "model", short = 'm')]
    pub models: Vec<String>,
    /// The model of the learned sparse list (`--mode sparse`, or `sparse` among hybrid
    /// `--sources`): a SPLADE model, or one with a sparse head (BGE-M3). Without it, each
    /// `--model` with sparse output is its own sparse model.
    #[arg(long)]
    pub sparse_model: Option<String>,
    /// Datasets (repeat for several): a BEIR directory (corpus.jsonl, queries.jsonl,
    /// qrels/<split>.tsv); a directory with <split>.tsv or a .tsv file of sentence pairs
    /// (sentence1, sentence2, score) or of labelled texts (text, label; classification also reads
    /// train.tsv); a directory with <split>.jsonl or a .jsonl file of reranking instances
    /// ({query, positive, negative}); or a SQuAD .json file.
    #[arg(long = "dataset", short = 'd', required = true)]
    pub datasets: Vec<PathBuf>,
    /// The task; detected from the dataset's layout when not given (pairs default to STS).
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Retrieval: `--mode dense|bm25|sparse|hybrid`, `--fusion`, `--rrf-k`, `--weights`, `--depth`
    /// (every mode runs through the search engine, on a scratch collection).
    #[command(flatten)]
    pub retrieval: RetrievalArgs,
    /// The BM25 analyzer of `--mode bm25|hybrid`: english or plain.
    #[arg(long, default_value = "english")]
    pub analyzer: String,
    /// Retrieval (`--mode …`): keep the scratch collection in this store instead of an embedded
    /// scratch store, e.g. `postgres://…` to measure PostgreSQL + pgvector. It is created for the
    /// run and dropped afterwards.
    #[arg(long)]
    pub store: Option<String>,
    /// Retrieval depth.
    #[arg(long, default_value_t = 1000)]
    pub top_k: usize,
    /// Drop each query's own document id from its results (ArguAna).
    #[arg(long)]
    pub ignore_identical_ids: bool,
    /// Prompt name for queries (default: `query` when the model has it).
    #[arg(long)]
    pub query_prompt_name: Option<String>,
    /// Prompt name for documents (default: `document` when the model has it).
    #[arg(long)]
    pub document_prompt_name: Option<String>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Where embedding caches live.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Embed everything afresh and store nothing.
    #[arg(long)]
    pub no_cache: bool,
    /// Write a markdown report here, with .json and .svg beside it.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print one JSON object per result (main_score and every metric).
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value = "main")]
    pub revision: String,
}

fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("ember/eval")
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    if args.top_k == 0 {
        bail!("--top-k must be at least 1");
    }
    let search = args.retrieval.parse()?;
    let text_index = TextIndexConfig::new(match args.analyzer.as_str() {
        "english" => AnalyzerConfig::english(),
        "plain" => AnalyzerConfig::plain(),
        other => bail!("--analyzer {other}: english or plain"),
    });
    let store = match &args.store {
        Some(location) => {
            let parsed = ember_store::StoreLocation::parse(location)?;
            // Its errors name the server (without a password).
            Some(ember_store::open_store(&parsed, ember_store::StoreOptions::default()).context("opening --store")?)
        }
        None => None,
    };
    let wants_sparse = uses(&search, Source::Sparse);
    if args.sparse_model.is_some() && !wants_sparse {
        bail!("--sparse-model applies to --mode sparse, or --mode hybrid with sparse among --sources");
    }
    if args.models.is_empty() && search.mode == Mode::Sparse && args.sparse_model.is_none() {
        bail!("--mode sparse needs --sparse-model (a SPLADE model) or a --model with sparse output");
    }
    if args.models.is_empty() && search.mode != Mode::Bm25 && search.mode != Mode::Sparse {
        bail!("--model is needed (only --mode bm25, and --mode sparse with --sparse-model, run without one)");
    }
    // Check every dataset before loading any model.
    let mut plans = Vec::new();
    for path in &args.datasets {
        let layout = detect(path, &args.split)?;
        let task = match (args.task, layout) {
            (None, Layout::Beir) | (Some(TaskArg::Retrieval), Layout::Beir) => TaskKind::Retrieval,
            (None, Layout::PairTsv) | (Some(TaskArg::Sts), Layout::PairTsv) => TaskKind::Sts,
            (Some(TaskArg::PairClassification), Layout::PairTsv) => TaskKind::PairClassification,
            (None, Layout::Squad) | (Some(TaskArg::Squad), Layout::Squad) => TaskKind::Squad,
            (None, Layout::LabelledTsv) | (Some(TaskArg::Clustering), Layout::LabelledTsv) => TaskKind::Clustering,
            (Some(TaskArg::Classification), Layout::LabelledTsv) => TaskKind::Classification,
            (None, Layout::Reranking) | (Some(TaskArg::Reranking), Layout::Reranking) => TaskKind::Reranking,
            (Some(t), l) => bail!("--task {t:?} does not fit {} (a {l:?} dataset)", path.display()),
        };
        plans.push((path.clone(), task));
    }
    let cache_dir = args.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let sparse_model = match &args.sparse_model {
        Some(name) => {
            let model = model_source::load(&ModelArgs { model: name.clone(), revision: args.revision.clone() })?;
            if !model.outputs().sparse {
                bail!("--sparse-model {name} produces no sparse vectors (it produces: {})", model.outputs().names());
            }
            Some((name.as_str(), model))
        }
        None => None,
    };
    let open_sparse_cache = |name: &str| -> anyhow::Result<Option<SparseCache>> {
        if args.no_cache {
            return Ok(None);
        }
        Ok(Some(SparseCache::open(&cache_dir, &format!("{name}@{}", args.revision))?))
    };
    let mut results = Vec::new();
    if args.models.is_empty() {
        let label = sparse_model.as_ref().filter(|_| search.mode == Mode::Sparse).map_or("bm25", |(name, _)| name);
        let mut sparse_cache = match &sparse_model {
            Some((name, _)) => open_sparse_cache(name)?,
            None => None,
        };
        for (path, task) in &plans {
            if *task != TaskKind::Retrieval {
                bail!("{} is a {task} dataset; without --model only BM25 or sparse retrieval can run", path.display());
            }
            let ds = load_beir(path, &args.split)?;
            let options = EvalOptions {
                top_k: args.top_k,
                ignore_identical_ids: args.ignore_identical_ids,
                batch_size: args.batch_size,
                ..EvalOptions::default()
            };
            let sparse = sparse_model
                .as_ref()
                .map(|(_, m)| SparseStep::new(m as &dyn Embedder, sparse_cache.as_mut(), args.batch_size));
            let result =
                engine_run(label, &ds, None, sparse, &options, &search, &text_index, &cache_dir, store.clone())
                    .with_context(|| format!("evaluating {label} on {}", path.display()))?;
            print_result(&result, args.json)?;
            results.push(result);
        }
    }
    for name in &args.models {
        let model = model_source::load(&ModelArgs { model: name.clone(), revision: args.revision.clone() })?;
        let prompts = model.prompt_names();
        let pick = |given: &Option<String>, default: &str| {
            given.clone().or_else(|| prompts.iter().any(|p| p == default).then(|| default.to_string()))
        };
        let options = EvalOptions {
            query_prompt: pick(&args.query_prompt_name, "query"),
            document_prompt: pick(&args.document_prompt_name, "document"),
            top_k: args.top_k,
            ignore_identical_ids: args.ignore_identical_ids,
            batch_size: args.batch_size,
        };
        let mut cache = if args.no_cache {
            None
        } else {
            let key = format!("{name}@{}", args.revision);
            Some(EmbeddingCache::open(&cache_dir, &key, model.dimension())?)
        };
        // The sparse list's model: --sparse-model, else this model when it has sparse output.
        let (label, sparse_provider, sparse_name): (String, Option<&dyn Embedder>, &str) = match &sparse_model {
            Some((sparse_name, m)) => (format!("{name}+{sparse_name}"), Some(m), sparse_name),
            None if wants_sparse => {
                if !model.outputs().sparse {
                    bail!(
                        "model '{name}' produces no sparse vectors (it produces: {}); give --sparse-model (a SPLADE \
                         model) for the sparse list",
                        model.outputs().names()
                    );
                }
                (name.clone(), Some(&model), name.as_str())
            }
            None => (name.clone(), None, name.as_str()),
        };
        let mut sparse_cache = match sparse_provider {
            Some(_) => open_sparse_cache(sparse_name)?,
            None => None,
        };
        for (path, task) in &plans {
            let step = EmbedStep::new(&model, cache.as_mut());
            let split = &args.split;
            let result = match task {
                TaskKind::Retrieval => {
                    let sparse = sparse_provider.map(|m| SparseStep::new(m, sparse_cache.as_mut(), args.batch_size));
                    let ds = load_beir(path, split)?;
                    engine_run(
                        &label,
                        &ds,
                        Some(step),
                        sparse,
                        &options,
                        &search,
                        &text_index,
                        &cache_dir,
                        store.clone(),
                    )
                }
                TaskKind::Squad => retrieval::run(name, &load_squad(path)?, step, &options, *task),
                TaskKind::Sts | TaskKind::PairClassification => {
                    pairs::run(name, &load_pairs(path, split)?, step, &options, *task)
                }
                TaskKind::Classification => {
                    let train = load_labelled(&path.join("train.tsv"), "train")?;
                    labelled::classification(name, &train, &load_labelled(path, split)?, step, &options)
                }
                TaskKind::Clustering => labelled::clustering(name, &load_labelled(path, split)?, step, &options),
                TaskKind::Reranking => labelled::reranking(name, &load_reranking(path, split)?, step, &options),
            }
            .with_context(|| format!("evaluating {label} on {}", path.display()))?;
            print_result(&result, args.json)?;
            results.push(result);
        }
    }
    if let Some(report) = &args.report {
        ember_eval::report::write(report, &results)?;
        eprintln!("report written to {}", report.display());
    }
    Ok(())
}

fn print_result(result: &ember_eval::TaskResult, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(result)?);
        return Ok(());
    }
    println!(
        "{} on {} ({}): {} = {:.2}  [{:.1} s, {} texts, {} from cache]",
        result.model,
        result.dataset,
        result.task,
        result.main_metric,
        result.main_score * 100.0,
        result.seconds,
        result.texts,
        result.cache_hits
    );
    for (k, v) in &result.metrics {
        println!("    {k:<20} {:.4}", v);
    }
    Ok(())
}

/// Whether `search` ranks with `source` (hybrid without --sources: dense and BM25).
fn uses(search: &Retrieval, source: Source) -> bool {
    match search.mode {
        Mode::Hybrid if search.sources.is_empty() => matches!(source, Source::Dense | Source::Bm25),
        Mode::Hybrid => search.sources.contains(&source),
        Mode::Dense => source == Source::Dense,
        Mode::Bm25 => source == Source::Bm25,
        Mode::Sparse => source == Source::Sparse,
        Mode::MultiVector => source == Source::MultiVector,
    }
}

/// Retrieval through the engine (the code `ember search` runs), on a scratch store under
/// `cache_dir` that is removed afterwards.
#[allow(clippy::too_many_arguments)]
fn engine_run(
    name: &str,
    ds: &ember_eval::RetrievalDataset,
    step: Option<EmbedStep>,
    sparse: Option<SparseStep>,
    options: &EvalOptions,
    search: &Retrieval,
    text_index: &TextIndexConfig,
    cache_dir: &std::path::Path,
    store: Option<std::sync::Arc<dyn ember_store::VectorStore>>,
) -> Result<ember_eval::TaskResult, ember_eval::EvalError> {
    let scratch = cache_dir.join(format!("scratch-{}", std::process::id()));
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .map_err(|source| ember_eval::EvalError::Io { path: scratch.clone(), source })?;
    }
    let engine = EngineRetrieval {
        mode: search.mode,
        sources: search.sources.clone(),
        fusion: search.fusion,
        weights: search.weights.clone(),
        depth: search.depth,
        text_index: text_index.clone(),
        scratch: &scratch,
        store,
    };
    let result = retrieval::run_engine(name, ds, step, sparse, options, &engine);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
