//! ember's own API: collections, their documents and search (the engine's pipelines, the same
//! as the CLI's), and the chunker. Error body: `{"error": {"code": "...", "message": "...",
//! "field": ...}}`.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/v1/collections` | every collection |
//! | POST | `/v1/collections` | create one: `{"name", "model"?, "text_index"?}` (BM25 analyzer, default english) |
//! | GET, DELETE | `/v1/collections/{name}` | one collection's summary; drop it |
//! | POST | `/v1/collections/{name}/documents` | upsert `{"documents": [{"id", "text", "metadata"?}], "chunk"?}` |
//! | DELETE | `/v1/collections/{name}/documents` | delete `{"ids": [...]}` |
//! | GET | `/v1/collections/{name}/documents/{id}` | one document |
//! | POST | `/v1/collections/{name}/search` | `{"query", "k"?, "filter"?, "mode"?, "sources"?, "fusion"?, "rrf_k"?, "weights"?, "depth"?, "ef"?, "rerank"?, "rerank_top"?, "explain"?}` |
//! | POST | `/v1/chunk` | `{"text", "max_tokens"?, "overlap"?, "format"?, "model"?}` |
//!
//! Documents are stored as given (one vector each, embedded with the model's document prompt);
//! a text over the model's limit is refused unless `"truncate": true`. With `"chunk": true` (or
//! chunking options) they go through the engine's ingest pipeline instead, as `ember ingest`
//! does: cut with the model's tokenizer, stored as `<id>#<n>` with offsets, unchanged documents
//! skipped.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use ember_chunk::{ChunkConfig, Chunker, TextFormat, TokenCounter};
use ember_core::{Embedder, OutputKinds, Similarity};
use ember_engine::fusion::{Fusion, DEFAULT_RRF_K};
use ember_engine::{
    ingest_with, retrieve, role_options, IngestOptions, Mode, Models, RerankStage, SearchRequest as Retrieval, Source,
    SourceDocument, SourceFormat,
};
use ember_models::TokenCount;
use ember_store::{
    AnalyzerConfig, Bm25Params, CollectionConfig, CollectionInfo, Document, Filter, IndexKind, MultiVectorConfig,
    Precision, SparseFieldConfig, TextIndexConfig, VectorCollection,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::batcher::{EmbedRequest, Input};
use crate::error::{ApiError, ErrorKind, Failure, Flavour};
use crate::json::Body;
use crate::models::ServedModel;
use crate::routes::blocking;
use crate::state::AppState;

/// ember's error body.
#[derive(Debug)]
pub struct Native;

impl Flavour for Native {
    fn error_body(e: &ApiError) -> Value {
        let code = match e.kind {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "too_large",
            ErrorKind::Unprocessable => "invalid",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::NotSupported => "not_supported",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        };
        json!({"error": {"code": code, "message": e.message, "field": e.param}})
    }
}

type Error = Failure<Native>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/collections", get(list).post(create))
        .route("/v1/collections/{name}", get(info).delete(drop_collection))
        .route("/v1/collections/{name}/documents", post(upsert).delete(delete_documents))
        .route("/v1/collections/{name}/documents/{*id}", get(get_document))
        .route("/v1/collections/{name}/search", post(search_collection))
        .route("/v1/chunk", post(chunk))
}

/// 404 for unknown routes, in ember's shape.
pub async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> Error {
    ApiError::not_found(format!("no endpoint {method} {}", uri.path())).into()
}

#[derive(Debug, Serialize)]
pub struct CollectionSummary {
    pub name: String,
    pub model: String,
    /// The served model name that embeds for it, if this server serves its model.
    pub served_as: Option<String>,
    pub dimension: usize,
    pub distance: Similarity,
    pub count: usize,
    pub disk_bytes: u64,
}

fn summary(info: &CollectionInfo, state: &AppState) -> CollectionSummary {
    CollectionSummary {
        name: info.name.clone(),
        model: info.config.model_id.clone(),
        served_as: state.models().by_model_id(&info.config.model_id).map(|m| m.name.clone()),
        dimension: info.config.dimension,
        distance: info.config.distance,
        count: info.count,
        disk_bytes: info.disk_bytes,
    }
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    let store = state.store()?.clone();
    let infos = blocking(move || Ok(store.list()?)).await?;
    let collections: Vec<CollectionSummary> = infos.iter().map(|i| summary(i, &state)).collect();
    Ok(Json(json!({ "collections": collections })))
}

#[derive(Debug, Deserialize)]
pub struct CreateRequest {
    pub name: String,
    pub model: Option<String>,
    /// The BM25 text index: `english` (default), `plain`, `chinese` or `none`.
    pub text_index: Option<String>,
    /// A served model (name or id) with a sparse output whose vectors the collection keeps for
    /// sparse and hybrid search: a SPLADE model, or `model` itself when it has a sparse head
    /// (BGE-M3).
    pub sparse_model: Option<String>,
    /// Keep the model's token vectors (ColBERT, BGE-M3) for multi-vector search.
    #[serde(default)]
    pub multivector: bool,
}

fn text_index(name: Option<&str>) -> Result<Option<TextIndexConfig>, ApiError> {
    let analyzer = match name.unwrap_or("english") {
        "english" => AnalyzerConfig::english(),
        "plain" => AnalyzerConfig::plain(),
        "chinese" => AnalyzerConfig::chinese(),
        "none" => return Ok(None),
        other => {
            return Err(ApiError::invalid_field(
                "text_index",
                format!("unknown text index '{other}' (english, plain, chinese or none)"),
            ))
        }
    };
    Ok(Some(TextIndexConfig { analyzer, bm25: Bm25Params::default() }))
}

async fn create(
    State(state): State<AppState>,
    Body(request, _): Body<CreateRequest, Native>,
) -> Result<(StatusCode, Json<CollectionSummary>), Error> {
    let store = state.store()?.clone();
    let served = state.models().select(request.model.as_deref())?;
    let text_index = text_index(request.text_index.as_deref())?;
    let sparse = match request.sparse_model.as_deref() {
        None => None,
        Some(name) => {
            let model = state.models().select(Some(name)).map_err(|e| e.with_param("sparse_model"))?.model();
            if !model.outputs().sparse {
                return Err(ApiError::invalid_field(
                    "sparse_model",
                    format!("model '{name}' has no sparse output (it produces: {})", model.outputs().names()),
                )
                .into());
            }
            Some(SparseFieldConfig { model_id: model.model_id().to_string() })
        }
    };
    let multivector = if request.multivector {
        let model = served.model();
        let Some(dimension) = model.heads().colbert_dimension() else {
            return Err(ApiError::invalid_field(
                "multivector",
                format!("model '{}' has no token vectors (it produces: {})", model.model_id(), model.outputs().names()),
            )
            .into());
        };
        Some(MultiVectorConfig { dimension })
    } else {
        None
    };
    let config = CollectionConfig {
        model_id: served.model().model_id().to_string(),
        dimension: served.model().dimension(),
        distance: Similarity::Cosine,
        precision: Precision::Float32,
        index: IndexKind::Flat,
        text_index,
        sparse,
        multivector,
    };
    let name = request.name;
    let info = blocking(move || Ok(store.create_collection(&name, config)?.info()?)).await?;
    Ok((StatusCode::CREATED, Json(summary(&info, &state))))
}

/// The collection and the served model that embeds for it.
async fn open(state: &AppState, name: String) -> Result<(Arc<dyn VectorCollection>, ServedModel), ApiError> {
    let store = state.store()?.clone();
    let collection = blocking(move || Ok(store.collection(&name)?)).await?;
    let model_id = collection.config().model_id.clone();
    let served = served_model(state, collection.name(), &model_id, "vectors")?;
    Ok((collection, served))
}

fn served_model(state: &AppState, collection: &str, model_id: &str, what: &str) -> Result<ServedModel, ApiError> {
    state.models().by_model_id(model_id).cloned().ok_or_else(|| {
        ApiError::new(
            ErrorKind::Conflict,
            format!(
                "collection '{collection}' holds {what} of model '{model_id}', which this server does not serve \
                 (serving: {}); start ember serve with --model {model_id}",
                state.models().names().join(", ")
            ),
        )
    })
}

/// The served model that computes the collection's sparse vectors when it is not its dense
/// model (a SPLADE model beside a dense one); `None` when the collection has no sparse field or
/// its dense model computes them (BGE-M3).
fn sparse_model(state: &AppState, collection: &dyn VectorCollection) -> Result<Option<ServedModel>, ApiError> {
    let config = collection.config();
    match &config.sparse {
        Some(field) if field.model_id != config.model_id => {
            served_model(state, collection.name(), &field.model_id, "sparse vectors").map(Some)
        }
        _ => Ok(None),
    }
}

async fn info(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<CollectionSummary>, Error> {
    let store = state.store()?.clone();
    let info = blocking(move || Ok(store.collection(&name)?.info()?)).await?;
    Ok(Json(summary(&info, &state)))
}

async fn drop_collection(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, Error> {
    let store = state.store()?.clone();
    let dropped = name.clone();
    blocking(move || Ok(store.drop_collection(&name)?)).await?;
    Ok(Json(json!({ "dropped": dropped })))
}

#[derive(Debug, Deserialize)]
pub struct NewDocument {
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
pub struct UpsertRequest {
    pub documents: Vec<NewDocument>,
    /// Cut texts over the model's limit instead of refusing them.
    #[serde(default)]
    pub truncate: bool,
    /// Chunk each document as `ember ingest` does (`true`, or `{"max_tokens", "overlap",
    /// "format"}`): chunks are stored as `<id>#<n>`, unchanged documents are skipped.
    pub chunk: Option<ChunkSpec>,
}

/// `"chunk": true` or `"chunk": {"max_tokens": 128, "overlap": 16, "format": "markdown"}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ChunkSpec {
    Flag(bool),
    Options(ChunkOptions),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkOptions {
    pub max_tokens: Option<usize>,
    #[serde(default)]
    pub overlap: usize,
    pub format: Option<String>,
}

async fn upsert(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(request, _): Body<UpsertRequest, Native>,
) -> Result<Json<Value>, Error> {
    if request.documents.is_empty() {
        return Err(ApiError::invalid_field("documents", "the list is empty").into());
    }
    let mut seen = HashSet::new();
    for (i, d) in request.documents.iter().enumerate() {
        if d.id.is_empty() {
            return Err(ApiError::invalid_field(&format!("documents[{i}].id"), "an id cannot be empty").into());
        }
        if !seen.insert(d.id.as_str()) {
            return Err(ApiError::invalid_field(
                &format!("documents[{i}].id"),
                format!("'{}' appears more than once in this request", d.id),
            )
            .into());
        }
    }
    let (collection, served) = open(&state, name).await?;
    let chunking = match request.chunk {
        None | Some(ChunkSpec::Flag(false)) => None,
        Some(ChunkSpec::Flag(true)) => Some(ChunkOptions::default()),
        Some(ChunkSpec::Options(o)) => Some(o),
    };
    let sparse = sparse_model(&state, collection.as_ref())?;
    if let Some(options) = chunking {
        return ingest_chunked(collection, served, sparse, request.documents, options).await.map_err(Failure::from);
    }
    let options = role_options(served.model().as_ref(), "document");
    let config = collection.config().clone();
    let texts: Vec<String> = request.documents.iter().map(|d| d.text.clone()).collect();
    let truncate = request.truncate;
    let request_for = move |texts: &[String]| EmbedRequest {
        inputs: texts.iter().map(|t| Input::Text(t.clone())).collect(),
        options: options.clone(),
        truncate,
    };
    // Every field the collection has, from one forward pass of its model (plus one of its
    // separate sparse model), through the models' queues.
    let kinds = OutputKinds {
        dense: true,
        sparse: config.sparse.is_some() && sparse.is_none(),
        multivector: config.multivector.is_some(),
    };
    let queue = served.queue.clone();
    let embedded = blocking(move || {
        let mut main = queue.embed_outputs_blocking(request_for(&texts), kinds)?;
        if let Some(s) = &sparse {
            main.sparse = s.queue.embed_outputs_blocking(request_for(&texts), OutputKinds::SPARSE)?.sparse;
        }
        Ok(main)
    })
    .await
    .map_err(|e| rename_input(e, "documents", ".text"))?;
    let upserted = request.documents.len();
    let mut dense = embedded.dense.unwrap_or_default().into_iter();
    let mut sparse_vectors = embedded.sparse.map(Vec::into_iter);
    let mut token_vectors = embedded.multivector.map(Vec::into_iter);
    let docs: Vec<Document> = request
        .documents
        .into_iter()
        .map(|d| Document {
            id: d.id,
            text: d.text,
            vector: dense.next().unwrap_or_default(),
            metadata: d.metadata,
            sparse: sparse_vectors.as_mut().and_then(Iterator::next).unwrap_or_default(),
            multivector: token_vectors.as_mut().and_then(Iterator::next).unwrap_or_default(),
        })
        .collect();
    blocking(move || Ok(collection.upsert(docs)?)).await?;
    Ok(Json(json!({ "upserted": upserted, "tokens": embedded.tokens, "truncated": embedded.truncated })))
}

/// Documents through the engine's ingest pipeline: chunked with the model's tokenizer, embedded
/// through the model's queue, stored durably; unchanged documents skipped.
async fn ingest_chunked(
    collection: Arc<dyn VectorCollection>,
    served: ServedModel,
    sparse: Option<ServedModel>,
    documents: Vec<NewDocument>,
    options: ChunkOptions,
) -> Result<Json<Value>, ApiError> {
    let format = parse_format(options.format.as_deref())?;
    let model = served.model().clone();
    let max_tokens = options.max_tokens.unwrap_or_else(|| model.max_seq_length().saturating_sub(2).max(1));
    let config = ChunkConfig::new(max_tokens).with_overlap(options.overlap);
    if let Err(e) = config.validate() {
        let field = if max_tokens == 0 { "chunk.max_tokens" } else { "chunk.overlap" };
        return Err(ApiError::invalid_field(field, e));
    }
    let sources: Vec<SourceDocument> = documents
        .into_iter()
        .map(|d| SourceDocument {
            source: d.id.clone(),
            id: d.id,
            text: d.text,
            format: if format == TextFormat::Markdown { SourceFormat::Markdown } else { SourceFormat::Plain },
            metadata: d.metadata,
        })
        .collect();
    let embedder = served.queued_embedder();
    let sparse = sparse.map(|m| m.queued_embedder());
    let report = blocking(move || {
        let counter = ModelTokens(model.token_count()?);
        let options = IngestOptions { max_tokens, overlap_tokens: options.overlap, ..IngestOptions::default() };
        let models = Models { dense: Some(&embedder), sparse: sparse.as_ref().map(|m| m as &dyn Embedder) };
        Ok(ingest_with(collection.as_ref(), models, &counter, &sources, &options, &mut |_| {})?)
    })
    .await?;
    Ok(Json(json!({
        "documents": report.documents,
        "added": report.added,
        "replaced": report.replaced,
        "unchanged": report.unchanged,
        "chunks_written": report.chunks_written,
        "chunks_deleted": report.chunks_deleted,
        "tokens": report.tokens,
        "truncated": report.truncated,
    })))
}

fn parse_format(format: Option<&str>) -> Result<TextFormat, ApiError> {
    match format {
        None | Some("plain") | Some("text") => Ok(TextFormat::Plain),
        Some("markdown") | Some("md") => Ok(TextFormat::Markdown),
        Some(other) => Err(ApiError::invalid_field("format", format!("'{other}' is not 'plain' or 'markdown'"))),
    }
}

/// Queue errors name `input[i]`; here the inputs are `documents[i].text`.
fn rename_input(mut e: ApiError, field: &str, suffix: &str) -> ApiError {
    if let Some(p) = &e.param {
        if let Some(rest) = p.strip_prefix("input[") {
            e.param = Some(format!("{field}[{rest}{suffix}"));
            e.message = e.message.replacen("input ", "document ", 1);
        }
    }
    e
}

#[derive(Debug, Deserialize)]
pub struct DeleteRequest {
    pub ids: Vec<String>,
}

async fn delete_documents(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(request, _): Body<DeleteRequest, Native>,
) -> Result<Json<Value>, Error> {
    let store = state.store()?.clone();
    let deleted = blocking(move || {
        let ids: Vec<&str> = request.ids.iter().map(String::as_str).collect();
        Ok(store.collection(&name)?.delete(&ids)?)
    })
    .await?;
    Ok(Json(json!({ "deleted": deleted })))
}

#[derive(Debug, Deserialize)]
pub struct GetQuery {
    #[serde(default)]
    pub include_vector: bool,
}

async fn get_document(
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    Query(query): Query<GetQuery>,
) -> Result<Json<Value>, Error> {
    let store = state.store()?.clone();
    let lookup = id.clone();
    let collection = name.clone();
    let doc = blocking(move || Ok(store.collection(&collection)?.get(&lookup)?)).await?;
    let doc = doc.ok_or_else(|| ApiError::not_found(format!("collection '{name}' has no document '{id}'")))?;
    let mut out = json!({ "id": doc.id, "text": doc.text, "metadata": doc.metadata });
    if query.include_vector {
        out["vector"] = json!(doc.vector);
    }
    Ok(Json(out))
}

/// A search: the CLI's `ember search` options as JSON. `mode`: dense (default), bm25, sparse,
/// multivector or hybrid; `fusion`: rrf (k = `rrf_k`, default 60; weighted when `weights`
/// differ), min_max or dbsf; `rerank`: the name of a reranker this server serves (`--reranker`),
/// applied to the best `rerank_top` (default 100) fused hits.
#[derive(Debug, Deserialize)]
pub struct SearchRequest {
    pub query: String,
    #[serde(default = "default_k")]
    pub k: usize,
    pub filter: Option<String>,
    pub mode: Option<String>,
    #[serde(default)]
    pub sources: Vec<String>,
    pub fusion: Option<String>,
    pub rrf_k: Option<f32>,
    #[serde(default)]
    pub weights: Vec<f32>,
    pub depth: Option<usize>,
    pub ef: Option<usize>,
    pub rerank: Option<String>,
    pub rerank_top: Option<usize>,
    #[serde(default)]
    pub explain: bool,
}

fn default_k() -> usize {
    10
}

/// The most hits one search returns.
pub const MAX_K: usize = 10_000;

/// The request's retrieval options, validated into the engine's types.
struct SearchPlan {
    mode: Mode,
    sources: Vec<Source>,
    fusion: Fusion,
    filter: Option<Filter>,
}

fn plan_search(request: &SearchRequest) -> Result<SearchPlan, ApiError> {
    if request.k == 0 || request.k > MAX_K {
        return Err(ApiError::invalid_field("k", format!("{} is not between 1 and {MAX_K}", request.k)));
    }
    if request.depth == Some(0) {
        return Err(ApiError::invalid_field("depth", "must be at least 1"));
    }
    let filter = match request.filter.as_deref() {
        Some(f) => Some(Filter::parse(f).map_err(|e| ApiError::invalid_field("filter", e))?),
        None => None,
    };
    let mode = match request.mode.as_deref() {
        Some(m) => m.parse::<Mode>().map_err(|e| ApiError::invalid_field("mode", e))?,
        None => Mode::Dense,
    };
    let sources = request.sources.iter().map(|s| s.parse::<Source>()).collect::<Result<Vec<_>, _>>();
    let sources = sources.map_err(|e| ApiError::invalid_field("sources", e))?;
    if mode != Mode::Hybrid && (!sources.is_empty() || !request.weights.is_empty()) {
        return Err(ApiError::invalid_field("mode", "sources and weights apply to mode hybrid"));
    }
    let fusion = match request.fusion.as_deref() {
        Some(f) => f.parse::<Fusion>().map_err(|e| ApiError::invalid_field("fusion", e.to_string()))?,
        None => Fusion::default(),
    };
    let fusion = match (fusion, request.rrf_k) {
        (Fusion::Rrf { .. }, k) => Fusion::Rrf { k: k.unwrap_or(DEFAULT_RRF_K) },
        (_, Some(_)) => return Err(ApiError::invalid_field("rrf_k", "applies to fusion rrf")),
        (other, None) => other,
    };
    Ok(SearchPlan { mode, sources, fusion, filter })
}

async fn search_collection(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(request, _): Body<SearchRequest, Native>,
) -> Result<Json<Value>, Error> {
    let plan = plan_search(&request)?;
    let reranker = match request.rerank.as_deref() {
        Some(r) => Some(state.rerankers().select(Some(r)).map_err(|e| e.with_param("rerank"))?.queue.model().clone()),
        None => None,
    };
    let (collection, served) = open(&state, name).await?;
    let embedder = served.queued_embedder();
    let sparse = sparse_model(&state, collection.as_ref())?.map(|m| m.queued_embedder());
    let hits = blocking(move || {
        let retrieval = Retrieval {
            query: &request.query,
            k: request.k,
            mode: plan.mode,
            sources: &plan.sources,
            fusion: plan.fusion,
            weights: &request.weights,
            depth: request.depth,
            filter: plan.filter.as_ref(),
            effort: request.ef,
            rerank: reranker.as_deref().map(|r| RerankStage { reranker: r, top_n: request.rerank_top.unwrap_or(100) }),
            explain: request.explain,
        };
        let models = Models { dense: Some(&embedder), sparse: sparse.as_ref().map(|m| m as &dyn Embedder) };
        Ok(retrieve(collection.as_ref(), models, &retrieval)?.hits)
    })
    .await?;
    let hits: Vec<Value> = hits
        .into_iter()
        .map(|h| {
            let mut out = json!({
                "id": h.hit.id,
                "score": h.hit.score,
                "text": h.hit.document.text,
                "metadata": h.hit.document.metadata,
            });
            if let Some(e) = &h.explanation {
                out["explain"] = e.to_json();
            }
            out
        })
        .collect();
    Ok(Json(json!({ "hits": hits })))
}

#[derive(Debug, Deserialize)]
pub struct ChunkRequest {
    pub text: String,
    pub max_tokens: Option<usize>,
    #[serde(default)]
    pub overlap: usize,
    pub format: Option<String>,
    pub model: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ChunkOut {
    pub text: String,
    /// Character offsets (Unicode scalar values) into the text.
    pub start: usize,
    pub end: usize,
    pub byte_start: usize,
    pub byte_end: usize,
    pub tokens: usize,
    pub headings: Vec<String>,
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

async fn chunk(
    State(state): State<AppState>,
    Body(request, _): Body<ChunkRequest, Native>,
) -> Result<Json<Value>, Error> {
    let served = state.models().select(request.model.as_deref())?;
    let format = parse_format(request.format.as_deref())?;
    let model = served.model().clone();
    // [CLS] and [SEP] (or <s> and </s>) take two of the model's positions.
    let max_tokens = request.max_tokens.unwrap_or_else(|| model.max_seq_length().saturating_sub(2).max(1));
    let config = ChunkConfig::new(max_tokens).with_overlap(request.overlap).with_format(format);
    if let Err(e) = config.validate() {
        let field = if max_tokens == 0 { "max_tokens" } else { "overlap" };
        return Err(ApiError::invalid_field(field, e).into());
    }
    let name = served.name.clone();
    let chunks = blocking(move || {
        let counter = ModelTokens(model.token_count()?);
        let chunker = Chunker::new(counter, config).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(chunker
            .chunk(&request.text)
            .into_iter()
            .map(|c| ChunkOut {
                text: c.text,
                start: c.char_range.start,
                end: c.char_range.end,
                byte_start: c.byte_range.start,
                byte_end: c.byte_range.end,
                tokens: c.token_count,
                headings: c.headings,
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "model": name, "max_tokens": max_tokens, "chunks": chunks })))
}
