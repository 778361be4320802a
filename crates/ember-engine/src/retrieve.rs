//! Retrieval: one entry point for every search mode. A [`SearchRequest`] names the mode (dense,
//! BM25, learned sparse, multi-vector, or hybrid over several of them), the fusion, the depth of
//! each list, a filter and an optional rerank stage; [`retrieve`] embeds the query once per model
//! (one forward pass when the dense model also supplies the sparse / token outputs), runs each
//! list on the store, fuses them ([`crate::fusion`]), reranks, and explains when asked.
//!
//! The CLI, the server and `ember eval` call this same code, so the evaluation measures what is
//! served. [`retrieve_embedded`] takes an already embedded query (the evaluation embeds every
//! query in batches, with its cache).

use std::collections::HashMap;
use std::str::FromStr;

use ember_core::{rank_by_score, EmbedOptions, OutputKinds, RerankOptions, Reranker, SparseVector, TokenVectors};
use ember_store::{Filter, Hit, VectorCollection};
use serde::Serialize;

use crate::error::EngineError;
use crate::fusion::{fuse, Fusion, SourceHit};
use crate::ingest::{plan_outputs, Models};
use crate::search::role_options;

/// One retriever whose ranked list can be searched alone or fused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The dense vector index (cosine / dot / L2 per the collection).
    Dense,
    /// BM25 over the text index.
    Bm25,
    /// Learned sparse vectors (SPLADE, BGE-M3 lexical weights), dot product.
    Sparse,
    /// Token vectors, MaxSim. In a hybrid search it scores the union of the other lists'
    /// candidates (late-interaction rescoring) and is fused as one more list.
    MultiVector,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Dense => "dense",
            Source::Bm25 => "bm25",
            Source::Sparse => "sparse",
            Source::MultiVector => "multivector",
        }
    }
}

impl FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dense" => Ok(Source::Dense),
            "bm25" | "text" => Ok(Source::Bm25),
            "sparse" => Ok(Source::Sparse),
            "multivector" | "multi-vector" | "colbert" => Ok(Source::MultiVector),
            _ => Err(format!("unknown retrieval source '{s}' (dense, bm25, sparse or multivector)")),
        }
    }
}

/// What a search runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Dense,
    Bm25,
    Sparse,
    MultiVector,
    /// Several sources fused (see [`SearchRequest::sources`]).
    Hybrid,
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hybrid" => Ok(Mode::Hybrid),
            other => match other.parse::<Source>() {
                Ok(Source::Dense) => Ok(Mode::Dense),
                Ok(Source::Bm25) => Ok(Mode::Bm25),
                Ok(Source::Sparse) => Ok(Mode::Sparse),
                Ok(Source::MultiVector) => Ok(Mode::MultiVector),
                Err(_) => Err(format!("unknown search mode '{s}' (dense, bm25, sparse, multivector or hybrid)")),
            },
        }
    }
}

/// The depth of every list unless a request sets one: at least this many candidates.
pub const DEFAULT_DEPTH: usize = 100;

/// A rerank stage: the `top_n` best fused hits are scored against the query by `reranker` (on
/// their text) and reordered by that score; the rest follow in fused order.
#[derive(Clone, Copy)]
pub struct RerankStage<'a> {
    pub reranker: &'a dyn Reranker,
    pub top_n: usize,
}

impl std::fmt::Debug for RerankStage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RerankStage").field("reranker", &self.reranker.model_id()).field("top_n", &self.top_n).finish()
    }
}

/// One search.
#[derive(Debug, Clone, Copy)]
pub struct SearchRequest<'a> {
    pub query: &'a str,
    pub k: usize,
    pub mode: Mode,
    /// Hybrid only: the lists to fuse, in order (the order `weights` follow). Empty: dense and
    /// BM25 (when the collection has a text index), sparse (when it has a sparse field) and
    /// multi-vector (when it has token vectors).
    pub sources: &'a [Source],
    pub fusion: Fusion,
    /// One weight per source (empty: 1 each).
    pub weights: &'a [f32],
    /// Candidates taken from each list (default `max(k, 100)`).
    pub depth: Option<usize>,
    pub filter: Option<&'a Filter>,
    /// HNSW search effort (`ef`) for the dense list.
    pub effort: Option<usize>,
    pub rerank: Option<RerankStage<'a>>,
    /// Record each hit's rank and score in every list, its fused rank and score, and its rerank
    /// score.
    pub explain: bool,
}

impl<'a> SearchRequest<'a> {
    /// A plain request: `mode`, `k` hits, defaults for everything else.
    pub fn new(query: &'a str, k: usize, mode: Mode) -> Self {
        SearchRequest {
            query,
            k,
            mode,
            sources: &[],
            fusion: Fusion::default(),
            weights: &[],
            depth: None,
            filter: None,
            effort: None,
            rerank: None,
            explain: false,
        }
    }

    fn depth(&self) -> usize {
        self.depth.unwrap_or(self.k.max(DEFAULT_DEPTH)).max(self.k)
    }
}

/// A query as each list needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryEmbedding {
    pub dense: Option<Vec<f32>>,
    pub sparse: Option<SparseVector>,
    pub multivector: Option<TokenVectors>,
}

/// Where one hit stood in one list.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ListPosition {
    pub source: Source,
    /// `None` when the list does not hold the hit.
    pub hit: Option<SourceHit>,
}

/// Why a hit ranks where it does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// One entry per list, in the request's source order.
    pub lists: Vec<ListPosition>,
    /// 1-based rank after fusion (before any rerank).
    pub fused_rank: usize,
    /// The fused score (for a single list, that list's score).
    pub fused_score: f32,
    /// The reranker's score, for hits that went through the rerank stage.
    pub rerank_score: Option<f32>,
}

impl Explanation {
    /// The JSON form `ember search --json` and the server print: `{"fused_rank", "fused_score",
    /// "lists": {"<source>": {"rank", "score", "contribution"} | null}, "rerank_score"}`.
    pub fn to_json(&self) -> serde_json::Value {
        let lists: serde_json::Map<String, serde_json::Value> = self
            .lists
            .iter()
            .map(|l| {
                let v = l.hit.map_or(
                    serde_json::Value::Null,
                    |h| serde_json::json!({"rank": h.rank, "score": h.score, "contribution": h.contribution}),
                );
                (l.source.name().to_string(), v)
            })
            .collect();
        serde_json::json!({
            "fused_rank": self.fused_rank,
            "fused_score": self.fused_score,
            "lists": lists,
            "rerank_score": self.rerank_score,
        })
    }
}

/// One result: the hit (its `score` is the final one: rerank score, else fused, else the list's)
/// and, when explaining, why.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievedHit {
    pub hit: Hit,
    pub explanation: Option<Explanation>,
}

/// The results of one search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResponse {
    /// The lists that were searched, in order.
    pub sources: Vec<Source>,
    pub hits: Vec<RetrievedHit>,
}

/// The lists a request searches on `collection`.
pub fn resolve_sources(
    collection: &dyn VectorCollection,
    request: &SearchRequest<'_>,
) -> Result<Vec<Source>, EngineError> {
    let single = |s| Ok(vec![s]);
    match request.mode {
        Mode::Dense => single(Source::Dense),
        Mode::Bm25 => single(Source::Bm25),
        Mode::Sparse => single(Source::Sparse),
        Mode::MultiVector => single(Source::MultiVector),
        Mode::Hybrid if !request.sources.is_empty() => {
            let mut seen = Vec::new();
            for &s in request.sources {
                if seen.contains(&s) {
                    return Err(invalid(collection, format!("source '{}' is named twice", s.name())));
                }
                seen.push(s);
            }
            Ok(seen)
        }
        Mode::Hybrid => {
            let config = collection.config();
            let mut sources = vec![Source::Dense];
            if config.text_index.is_some() {
                sources.push(Source::Bm25);
            }
            if config.sparse.is_some() {
                sources.push(Source::Sparse);
            }
            if config.multivector.is_some() {
                sources.push(Source::MultiVector);
            }
            if sources.len() < 2 {
                return Err(invalid(
                    collection,
                    "hybrid search needs a second list, and the collection has only dense vectors (no BM25 text \
                     index, sparse or multivector field); create it with a text index (`ember ingest \
                     --text-index english`)"
                        .into(),
                ));
            }
            Ok(sources)
        }
    }
}

fn invalid(collection: &dyn VectorCollection, reason: String) -> EngineError {
    EngineError::InvalidRequest { collection: collection.name().to_string(), reason }
}

/// Embed `query` for `sources`: one call to the dense model for every output it supplies, one to
/// a separate sparse model. BM25 needs no model.
pub fn embed_query(
    collection: &dyn VectorCollection,
    models: Models<'_>,
    sources: &[Source],
    query: &str,
) -> Result<QueryEmbedding, EngineError> {
    let want = OutputKinds {
        dense: sources.contains(&Source::Dense),
        sparse: sources.contains(&Source::Sparse),
        multivector: sources.contains(&Source::MultiVector),
    };
    let plan = plan_outputs(collection, models, want)?;
    let mut out = QueryEmbedding::default();
    if let Some((embedder, kinds)) = plan.main {
        let options = role_options(embedder, "query");
        let e = embedder.embed_outputs(&[query], kinds, &options).map_err(EngineError::Embed)?;
        out.dense = e.dense.and_then(|v| v.into_iter().next());
        out.sparse = e.sparse.and_then(|v| v.into_iter().next());
        out.multivector = e.multivector.and_then(|v| v.into_iter().next());
    }
    if let Some(sparse) = plan.sparse {
        let options: EmbedOptions = role_options(sparse, "query");
        let e = sparse.embed_outputs(&[query], OutputKinds::SPARSE, &options).map_err(EngineError::Embed)?;
        out.sparse = e.sparse.and_then(|v| v.into_iter().next());
    }
    Ok(out)
}

/// Search `collection` as `request` says, embedding the query with `models`.
pub fn retrieve(
    collection: &dyn VectorCollection,
    models: Models<'_>,
    request: &SearchRequest<'_>,
) -> Result<SearchResponse, EngineError> {
    let sources = resolve_sources(collection, request)?;
    let query = embed_query(collection, models, &sources, request.query)?;
    retrieve_embedded(collection, request, &query)
}

/// [`retrieve`] with the query already embedded (what each list needs of it).
pub fn retrieve_embedded(
    collection: &dyn VectorCollection,
    request: &SearchRequest<'_>,
    query: &QueryEmbedding,
) -> Result<SearchResponse, EngineError> {
    let sources = resolve_sources(collection, request)?;
    if request.k == 0 {
        return Ok(SearchResponse { sources, hits: Vec::new() });
    }
    // One list and no rerank: its first k are the answer, so take no more.
    let depth = if sources.len() == 1 && request.rerank.is_none() { request.k } else { request.depth() };
    let lists = search_lists(collection, request, query, &sources, depth)?;
    let mut docs: HashMap<String, Hit> = HashMap::new();
    let ranked: Vec<Vec<(String, f32)>> = lists
        .into_iter()
        .map(|list| {
            list.into_iter()
                .map(|hit| {
                    let entry = (hit.id.clone(), hit.score);
                    docs.entry(hit.id.clone()).or_insert(hit);
                    entry
                })
                .collect()
        })
        .collect();
    let fused = fuse(&ranked, request.weights, request.fusion)?;
    let single = sources.len() == 1;
    let mut hits: Vec<RetrievedHit> = fused
        .into_iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let mut hit = docs.remove(&f.id)?;
            // One list keeps its own scores; fused lists score by the fusion.
            let fused_score = if single { hit.score } else { f.score };
            hit.score = fused_score;
            let explanation = request.explain.then(|| Explanation {
                lists: sources.iter().zip(&f.sources).map(|(&source, &hit)| ListPosition { source, hit }).collect(),
                fused_rank: i + 1,
                fused_score,
                rerank_score: None,
            });
            Some(RetrievedHit { hit, explanation })
        })
        .collect();
    if let Some(stage) = request.rerank {
        hits = rerank(stage, request.query, hits)?;
    }
    hits.truncate(request.k);
    Ok(SearchResponse { sources, hits })
}

/// Each source's ranked list, best first, `depth` long.
fn search_lists(
    collection: &dyn VectorCollection,
    request: &SearchRequest<'_>,
    query: &QueryEmbedding,
    sources: &[Source],
    depth: usize,
) -> Result<Vec<Vec<Hit>>, EngineError> {
    let filter = request.filter;
    let missing = |what: &str| invalid(collection, format!("the query has no {what} embedding"));
    let mut lists: Vec<Option<Vec<Hit>>> = vec![None; sources.len()];
    for (slot, &source) in lists.iter_mut().zip(sources) {
        *slot = match source {
            Source::Dense => {
                let v = query.dense.as_deref().ok_or_else(|| missing("dense"))?;
                Some(collection.search_with_effort(v, depth, filter, request.effort)?)
            }
            Source::Bm25 => Some(collection.search_text(request.query, depth, filter)?),
            Source::Sparse => {
                let v = query.sparse.as_deref().ok_or_else(|| missing("sparse"))?;
                Some(collection.search_sparse(v, depth, filter)?)
            }
            Source::MultiVector => None,
        };
    }
    // Multi-vector last: alone it scores every document, beside other lists their candidates.
    if let Some(at) = sources.iter().position(|&s| s == Source::MultiVector) {
        let tokens = query.multivector.as_deref().ok_or_else(|| missing("multivector"))?;
        let candidates: Option<Vec<String>> =
            (sources.len() > 1).then(|| lists.iter().flatten().flatten().map(|h| h.id.clone()).collect());
        lists[at] = Some(collection.search_multivector(tokens, depth, filter, candidates.as_deref())?);
    }
    Ok(lists.into_iter().map(Option::unwrap_or_default).collect())
}

/// Score the `top_n` first hits with the reranker and put them in its order (ties: fused order);
/// hits past `top_n` follow unchanged. No candidates, no model call.
fn rerank(stage: RerankStage<'_>, query: &str, mut hits: Vec<RetrievedHit>) -> Result<Vec<RetrievedHit>, EngineError> {
    let n = stage.top_n.min(hits.len());
    if n == 0 {
        return Ok(hits);
    }
    let rest = hits.split_off(n);
    let texts: Vec<&str> = hits.iter().map(|h| h.hit.document.text.as_str()).collect();
    let scores = stage.reranker.score(query, &texts, &RerankOptions::default()).map_err(EngineError::Rerank)?;
    if scores.scores.len() != n {
        return Err(EngineError::Rerank(
            format!("the reranker returned {} scores for {n} documents", scores.scores.len()).into(),
        ));
    }
    let mut slots: Vec<Option<RetrievedHit>> = hits.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(n + rest.len());
    for (i, score) in rank_by_score(&scores.scores) {
        let Some(mut hit) = slots[i].take() else { continue };
        hit.hit.score = score;
        if let Some(e) = &mut hit.explanation {
            e.rerank_score = Some(score);
        }
        out.push(hit);
    }
    out.extend(rest);
    Ok(out)
}
