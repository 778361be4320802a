//! `MilvusStore`: collections in a Milvus server (feature `milvus`), through the official
//! `milvus-sdk-rust` client (gRPC).
//!
//! Layout (format 1): one Milvus collection per ember collection, named `ember_<name>` (`_`, `-`
//! and `.` escaped, see `rows::milvus_name`), with the fields `id` (`VarChar`, primary key, at
//! most 4096 bytes), `text` (`VarChar`, at most 65,535 bytes), `metadata` (`JSON`), `dense`
//! (`FloatVector` of the collection's dimension) and, when the collection has a learned sparse
//! field, `sparse` (`SparseFloatVector`). Vectors are stored as `f32`, so a document reads back
//! exactly as written. The ember `CollectionConfig` and the layout version live in the
//! collection's properties (`ember.config`, `ember.format`), so reopening recovers them; the
//! schema is checked against them on open. The dense field has a `FLAT` index (exact) or an
//! `HNSW` one (`M`, `efConstruction` from the collection's index config) with the metric of its
//! distance (cosine → `COSINE`, dot → `IP`, euclidean → `L2`; Milvus has no L1 for float
//! vectors, so manhattan collections are refused); the sparse field a `SPARSE_INVERTED_INDEX`
//! (`IP`). Every request is `Strong`ly consistent: a read sees every acknowledged write.
//!
//! Searches ask Milvus for a few more candidates than wanted and rescore them with ember's own
//! kernels (`FlatIndex`, and the sparse `InvertedIndex`), so scores are exactly the embedded
//! store's and an exact search ranks as the embedded store's does. HNSW searches pass `ef`
//! (the effort, at least the number of candidates).
//!
//! Filters: what maps onto Milvus's JSON expressions without doubt (equality and `in` on
//! strings and booleans, combined by `and` / `or`; `filter/milvus.rs`) is pushed down as a
//! prefilter that every matching document passes, and ember applies `Filter::matches` (the
//! embedded store's own code) to the candidates, so results are the filter's exactly. A
//! filtered search asks for more candidates (×4 each round) until enough pass or the collection
//! is exhausted, and past Milvus's largest `limit` (16,384) it scans the collection and scores
//! exactly; see docs/scaling.md.
//!
//! Upserts are one `Upsert` request per batch (applied whole or not at all) and are retried
//! with backoff when the connection fails; deletes read which ids exist, then delete them by id
//! (retried too: deleting twice changes nothing). Creating and dropping collections are retried
//! only when the server was never reached. Errors name the server's URL (without credentials)
//! and the operation.

mod connection;
mod rows;

use std::collections::HashMap;
use std::sync::Arc;

use ember_core::Similarity;
use ember_index::{DenseIndex, FlatIndex, InvertedIndex, InvertedIndexParams, Scored};
use milvus::v2::prelude::{
    CollectionSchema, ConsistencyLevel, CreateCollectionRequest, DataType, DeleteRequest, DescribeCollectionRequest,
    DropCollectionRequest, FieldSchema, HasCollectionRequest, HybridSearchRequest, Ids, IndexParam, IndexType,
    InsertRequest, LoadCollectionRequest, MetricType, QueryRequest, RRFRerank, SearchRequest, SearchVectors,
    SingleResult, SubSearchRequest, UpsertRequest, WeightedRerank,
};

use self::connection::{Connection, Retry};
use self::rows::{DENSE, ID, MAX_ID_BYTES, MAX_TEXT_BYTES, METADATA, PLACEHOLDER_TERM, SPARSE, TEXT};
use crate::collection::{sparse_problem, CollectionInfo};
use crate::config::{validate_name, CollectionConfig, IndexKind};
use crate::document::{Document, Hit};
use crate::error::StoreError;
use crate::filter::Filter;
use crate::vector_store::{check_document, BackendError, MilvusConnectOptions, VectorCollection, VectorStore};

/// The layout version recorded in a collection's properties; another version is refused.
const FORMAT: u32 = 1;
const FORMAT_KEY: &str = "ember.format";
const CONFIG_KEY: &str = "ember.config";
/// Milvus's largest vector dimension.
const MAX_DIMENSION: usize = 32_768;
/// Milvus's largest `limit` (top-k) of one search.
const MAX_TOPK: usize = 16_384;
/// The embedded HNSW's default `ef`.
const DEFAULT_EF: usize = 64;

/// How Milvus's native hybrid search fuses its per-field lists.
#[derive(Debug, Clone, PartialEq)]
pub enum FusionRanker {
    /// Reciprocal rank fusion: Σ 1 / (k + rank).
    Rrf { k: u32 },
    /// A weighted sum of each list's (normalised) scores, one weight per list.
    Weighted { weights: Vec<f32> },
}

/// Collections in a Milvus server. Cheap to clone; handles share one client.
#[derive(Debug, Clone)]
pub struct MilvusStore {
    connection: Arc<Connection>,
}

impl MilvusStore {
    /// Connect to the server (waiting for it to answer, within `connect_timeout`).
    pub fn connect(options: &MilvusConnectOptions) -> Result<MilvusStore, StoreError> {
        Ok(MilvusStore { connection: Arc::new(Connection::connect(options)?) })
    }

    /// A handle on an existing collection with the Milvus-only methods
    /// ([`MilvusCollection::hybrid_search_native`]).
    pub fn milvus_collection(&self, name: &str) -> Result<MilvusCollection, StoreError> {
        validate_name(name)?;
        self.open(name)
    }

    fn exists(&self, milvus_name: &str, operation: &str) -> Result<bool, StoreError> {
        let request = HasCollectionRequest::builder()
            .collection_name(milvus_name)
            .build()
            .map_err(|e| self.connection.database_error(operation, e))?;
        self.connection.run(operation, Retry::Idempotent, |client| {
            let request = request.clone();
            async move { client.has_collection(request).await.map(|r| r.exists()) }
        })
    }

    fn open(&self, name: &str) -> Result<MilvusCollection, StoreError> {
        let milvus_name = rows::milvus_name(name);
        let operation = format!("open collection '{name}'");
        if !self.exists(&milvus_name, &operation)? {
            return Err(StoreError::NotFound { name: name.to_string(), available: self.names()? });
        }
        let request = DescribeCollectionRequest::builder()
            .collection_name(&milvus_name)
            .build()
            .map_err(|e| self.connection.database_error(&operation, e))?;
        let described = self.connection.run(&operation, Retry::Idempotent, |client| {
            let request = request.clone();
            async move { client.describe_collection(request).await }
        })?;
        let desc = described.description();
        let mismatch = |reason: String| -> StoreError {
            BackendError::SchemaMismatch { url: self.connection.url.clone(), collection: name.to_string(), reason }
                .into()
        };
        let properties = desc.get_properties();
        let format = properties.get(FORMAT_KEY).ok_or_else(|| {
            mismatch(format!(
                "the Milvus collection {milvus_name} has no '{FORMAT_KEY}' property (ember did not create it)"
            ))
        })?;
        if format.parse::<u32>().ok() != Some(FORMAT) {
            return Err(mismatch(format!("it has format {format}; this build reads format {FORMAT}")));
        }
        let config: CollectionConfig = properties
            .get(CONFIG_KEY)
            .ok_or_else(|| mismatch(format!("its '{CONFIG_KEY}' property is missing")))
            .and_then(|c| {
                serde_json::from_str(c).map_err(|e| mismatch(format!("its '{CONFIG_KEY}' does not parse: {e}")))
            })?;
        let fields = desc.get_schema().get_fields();
        let field = |n: &str| fields.iter().find(|f| f.get_name() == n);
        let mut want = vec![
            (ID, DataType::VarChar, None),
            (TEXT, DataType::VarChar, None),
            (METADATA, DataType::Json, None),
            (DENSE, DataType::FloatVector, Some(config.dimension)),
        ];
        if config.sparse.is_some() {
            want.push((SPARSE, DataType::SparseFloatVector, None));
        }
        for (n, ty, dim) in want {
            let Some(f) = field(n) else {
                return Err(mismatch(format!("field {n} ({ty:?}) is missing")));
            };
            if f.get_data_type() != ty {
                return Err(mismatch(format!("field {n} is {:?}, expected {ty:?}", f.get_data_type())));
            }
            if let Some(dim) = dim {
                if f.get_dimension() as usize != dim {
                    return Err(mismatch(format!(
                        "field {n} has dimension {}, expected {dim} (the collection's config)",
                        f.get_dimension()
                    )));
                }
            }
        }
        if !field(ID).is_some_and(|f| f.is_primary_key()) {
            return Err(mismatch(format!("field {ID} is not the primary key")));
        }
        let load = LoadCollectionRequest::builder()
            .collection_name(&milvus_name)
            .build()
            .map_err(|e| self.connection.database_error(&operation, e))?;
        self.connection.run(&operation, Retry::Idempotent, |client| {
            let load = load.clone();
            async move { client.load_collection(load).await }
        })?;
        Ok(MilvusCollection { connection: Arc::clone(&self.connection), name: name.to_string(), milvus_name, config })
    }
}

fn metric(distance: Similarity) -> Option<MetricType> {
    match distance {
        Similarity::Cosine => Some(MetricType::Cosine),
        Similarity::Dot => Some(MetricType::Ip),
        Similarity::Euclidean => Some(MetricType::L2),
        Similarity::Manhattan => None,
    }
}

fn check_milvus_config(config: &CollectionConfig) -> Result<(), StoreError> {
    let invalid = |reason: String| StoreError::InvalidConfig { reason };
    if config.text_index.is_some() {
        return Err(invalid(
            "the milvus backend does not keep ember's BM25 text index (create the collection with `--text-index none`)"
                .into(),
        ));
    }
    if config.multivector.is_some() {
        return Err(invalid("the milvus backend does not store a multi-vector field".into()));
    }
    if metric(config.distance).is_none() {
        return Err(invalid(
            "Milvus has no manhattan (L1) metric for float vectors; use cosine, dot or euclidean".into(),
        ));
    }
    if config.dimension > MAX_DIMENSION {
        return Err(invalid(format!(
            "Milvus stores vectors of at most {MAX_DIMENSION} dimensions (got {})",
            config.dimension
        )));
    }
    if let IndexKind::Hnsw { m, ef_construction } = config.index {
        if !(2..=2048).contains(&m) || ef_construction > 2_000_000 {
            return Err(invalid(format!(
                "Milvus's HNSW needs 2 <= M <= 2048 and efConstruction <= 2,000,000 (got m={m}, \
                 ef_construction={ef_construction})"
            )));
        }
    }
    Ok(())
}

impl VectorStore for MilvusStore {
    /// Milvus's own BM25 uses its own analyzer; ember's text index is refused here.
    fn keeps_text_index(&self) -> bool {
        false
    }

    fn backend(&self) -> &'static str {
        "milvus"
    }

    fn location(&self) -> String {
        self.connection.url.clone()
    }

    fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<Arc<dyn VectorCollection>, StoreError> {
        validate_name(name)?;
        config.validate()?;
        check_milvus_config(&config)?;
        let milvus_name = rows::milvus_name(name);
        let operation = format!("create collection '{name}'");
        if self.exists(&milvus_name, &operation)? {
            return Err(StoreError::AlreadyExists { name: name.to_string() });
        }
        let config_json =
            serde_json::to_string(&config).map_err(|e| StoreError::InvalidConfig { reason: e.to_string() })?;
        let mut schema = CollectionSchema::new()
            .enable_dynamic_field(false)
            .add_field(
                FieldSchema::new()
                    .name(ID)
                    .data_type(DataType::VarChar)
                    .primary_key(true)
                    .max_length(MAX_ID_BYTES as u32),
            )
            .add_field(FieldSchema::new().name(TEXT).data_type(DataType::VarChar).max_length(MAX_TEXT_BYTES as u32))
            .add_field(FieldSchema::new().name(METADATA).data_type(DataType::Json))
            .add_field(
                FieldSchema::new().name(DENSE).data_type(DataType::FloatVector).dimension(config.dimension as u32),
            );
        let Some(metric) = metric(config.distance) else {
            return Err(StoreError::InvalidConfig { reason: "no Milvus metric for this distance".into() });
        };
        let dense_index = match config.index {
            IndexKind::Flat => IndexParam::new().field_name(DENSE).index_type(IndexType::Flat).metric_type(metric),
            // As pymilvus sends them: one `params` JSON object (Milvus also reads flat keys;
            // milvus-lite reads only this).
            IndexKind::Hnsw { m, ef_construction } => {
                let params = serde_json::json!({"M": m, "efConstruction": ef_construction}).to_string();
                IndexParam::new()
                    .field_name(DENSE)
                    .index_type(IndexType::Hnsw)
                    .metric_type(metric)
                    .extra_params(HashMap::from([("params".to_string(), params)]))
            }
        };
        let mut indexes = vec![dense_index];
        if config.sparse.is_some() {
            schema = schema.add_field(FieldSchema::new().name(SPARSE).data_type(DataType::SparseFloatVector));
            indexes.push(
                IndexParam::new()
                    .field_name(SPARSE)
                    .index_type(IndexType::SparseInvertedIndex)
                    .metric_type(MetricType::Ip),
            );
        }
        let request = CreateCollectionRequest::builder()
            .collection_name(&milvus_name)
            .schema(schema)
            .index_params(indexes)
            .consistency_level(ConsistencyLevel::Strong)
            .properties(HashMap::from([
                (FORMAT_KEY.to_string(), FORMAT.to_string()),
                (CONFIG_KEY.to_string(), config_json),
            ]))
            .build()
            .map_err(|e| self.connection.database_error(&operation, e))?;
        self.connection.run(&operation, Retry::BeforeSending, |client| {
            let request = request.clone();
            async move { client.create_collection(request).await }
        })?;
        Ok(Arc::new(self.open(name)?))
    }

    fn collection(&self, name: &str) -> Result<Arc<dyn VectorCollection>, StoreError> {
        validate_name(name)?;
        Ok(Arc::new(self.open(name)?))
    }

    fn drop_collection(&self, name: &str) -> Result<(), StoreError> {
        validate_name(name)?;
        let milvus_name = rows::milvus_name(name);
        let operation = format!("drop collection '{name}'");
        if !self.exists(&milvus_name, &operation)? {
            return Err(StoreError::NotFound { name: name.to_string(), available: self.names()? });
        }
        let request = DropCollectionRequest::builder()
            .collection_name(&milvus_name)
            .build()
            .map_err(|e| self.connection.database_error(&operation, e))?;
        self.connection.run(&operation, Retry::BeforeSending, |client| {
            let request = request.clone();
            async move { client.drop_collection(request).await }
        })
    }

    fn names(&self) -> Result<Vec<String>, StoreError> {
        let listed = self.connection.collection_names("list collections")?;
        let mut names: Vec<String> = listed.iter().filter_map(|n| rows::ember_name(n)).collect();
        names.sort();
        Ok(names)
    }
}

/// One collection in Milvus; see the module documentation.
#[derive(Debug)]
pub struct MilvusCollection {
    connection: Arc<Connection>,
    name: String,
    milvus_name: String,
    config: CollectionConfig,
}

impl MilvusCollection {
    /// Run a request on this collection: the operation's name says which collection, and a
    /// failure because the collection is gone is [`StoreError::Dropped`].
    fn run<T, F, Fut>(&self, operation: &str, retry: Retry, f: F) -> Result<T, StoreError>
    where
        F: FnMut(milvus::v2::ClientV2) -> Fut,
        Fut: std::future::Future<Output = Result<T, milvus::v2::error::Error>>,
    {
        let operation = format!("{operation} (collection '{}')", self.name);
        self.connection.run(&operation, retry, f).map_err(|e| self.dropped_or(e))
    }

    /// A server error on a collection that no longer exists is [`StoreError::Dropped`].
    fn dropped_or(&self, e: StoreError) -> StoreError {
        if !matches!(e, StoreError::Backend(BackendError::Database { .. })) {
            return e;
        }
        let Ok(request) = HasCollectionRequest::builder().collection_name(&self.milvus_name).build() else { return e };
        match self.connection.run("check the collection", Retry::Idempotent, |client| {
            let request = request.clone();
            async move { client.has_collection(request).await.map(|r| r.exists()) }
        }) {
            Ok(false) => StoreError::Dropped { name: self.name.clone() },
            _ => e,
        }
    }

    fn request_error(&self, operation: &str, e: milvus::v2::error::Error) -> StoreError {
        self.connection.database_error(&format!("{operation} (collection '{}')", self.name), e)
    }

    fn has_sparse(&self) -> bool {
        self.config.sparse.is_some()
    }

    fn check_query(&self, query: &[f32]) -> Result<(), StoreError> {
        if query.len() != self.config.dimension {
            return Err(StoreError::DimensionMismatch {
                collection: self.name.clone(),
                expected: self.config.dimension,
                got: query.len(),
            });
        }
        if let Some(i) = query.iter().position(|x| !x.is_finite()) {
            return Err(self.invalid_query(format!("query[{i}] is {}", query[i])));
        }
        Ok(())
    }

    fn invalid_query(&self, reason: String) -> StoreError {
        StoreError::InvalidQuery { collection: self.name.clone(), reason }
    }

    fn result_documents(&self, result: &SingleResult, operation: &str) -> Result<Vec<Document>, StoreError> {
        rows::documents(result.get_output_fields(), result.len(), self.has_sparse())
            .map_err(|reason| self.malformed(operation, reason))
    }

    fn malformed(&self, operation: &str, reason: String) -> StoreError {
        BackendError::Database {
            url: self.connection.url.clone(),
            operation: format!("{operation} (collection '{}')", self.name),
            source: reason.into(),
        }
        .into()
    }

    /// The documents under `ids` (those that exist), in no particular order. (A query on
    /// `id in [...]`: the SDK's `Get` sends a filter template, which milvus-lite does not parse.)
    fn get_many(&self, ids: &[&str]) -> Result<Vec<Document>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(1000) {
            let list: Vec<String> = chunk.iter().map(|id| rows::quote(id)).collect();
            out.extend(self.query(&format!("{ID} in [{}]", list.join(", ")), "get")?);
        }
        Ok(out)
    }

    /// The documents matching a Milvus boolean expression, in no particular order.
    fn query(&self, filter: &str, operation: &str) -> Result<Vec<Document>, StoreError> {
        let request = QueryRequest::builder()
            .collection_name(&self.milvus_name)
            .filter(filter)
            .output_fields(rows::output_fields(self.has_sparse()))
            .consistency_level(ConsistencyLevel::Strong)
            .build()
            .map_err(|e| self.request_error(operation, e))?;
        let response = self.run(operation, Retry::Idempotent, |client| {
            let request = request.clone();
            async move { client.query(request).await }
        })?;
        let results = response.results();
        rows::documents(results.get_output_fields(), results.get_row_count() as usize, self.has_sparse())
            .map_err(|reason| self.malformed(operation, reason))
    }

    /// Every document passing `prefilter` (all without one), in no particular order (one
    /// query; see docs/scaling.md for its limits).
    fn all_documents(&self, operation: &str, prefilter: Option<&str>) -> Result<Vec<Document>, StoreError> {
        match prefilter {
            Some(p) => self.query(&format!("{ID} != \"\" and {p}"), operation),
            None => self.query(&format!("{ID} != \"\""), operation),
        }
    }

    /// One Milvus search of `limit` candidates on `field`, with their documents.
    fn candidates(
        &self,
        field: &str,
        vectors: SearchVectors,
        limit: usize,
        ef: Option<usize>,
        prefilter: Option<&str>,
    ) -> Result<Vec<Document>, StoreError> {
        let mut builder = SearchRequest::builder()
            .collection_name(&self.milvus_name)
            .vector_field(field)
            .vectors(vectors)
            .limit(limit as i64)
            .output_fields(rows::output_fields(self.has_sparse()))
            .consistency_level(ConsistencyLevel::Strong);
        if let Some(ef) = ef {
            builder = builder.extra_params(HashMap::from([("ef".to_string(), ef.to_string())]));
        }
        if let Some(p) = prefilter {
            builder = builder.filter(p);
        }
        let request = builder.build().map_err(|e| self.request_error("search", e))?;
        let response = self.run("search", Retry::Idempotent, |client| {
            let request = request.clone();
            async move { client.search(request).await }
        })?;
        let mut docs = Vec::new();
        for result in response.results().iter() {
            docs.extend(self.result_documents(result, "search")?);
        }
        Ok(docs)
    }

    /// Candidates for the best `want` documents passing `filter`: Milvus's best `want` among
    /// those passing the filter's prefilter (`Filter::to_milvus_prefilter`, a superset), then ×4
    /// more while too few pass the filter itself, and every document when Milvus's `limit` would
    /// be exceeded. `search(limit, prefilter)` runs one Milvus search.
    fn filtered_candidates(
        &self,
        want: usize,
        filter: Option<&Filter>,
        mut search: impl FnMut(usize, Option<&str>) -> Result<Vec<Document>, StoreError>,
    ) -> Result<Vec<Document>, StoreError> {
        let passes = |d: &Document| filter.is_none_or(|f| f.matches(&d.metadata));
        let prefilter = filter.and_then(|f| f.to_milvus_prefilter(METADATA));
        let mut limit = want;
        loop {
            if limit > MAX_TOPK {
                let mut all = self.all_documents("search (exact scan)", prefilter.as_deref())?;
                all.retain(passes);
                return Ok(all);
            }
            let found = search(limit, prefilter.as_deref())?;
            let exhausted = found.len() < limit;
            let kept: Vec<Document> = found.into_iter().filter(passes).collect();
            if kept.len() >= want || exhausted {
                return Ok(kept);
            }
            limit = limit.saturating_mul(4);
        }
    }
}

/// The candidates' order as hits: sorted by id (ties then break by id), scored by `score`.
fn rescored(
    mut docs: Vec<Document>,
    score: impl FnOnce(&[Document]) -> Result<Vec<Scored>, StoreError>,
) -> Result<Vec<Hit>, StoreError> {
    docs.sort_by(|a, b| a.id.cmp(&b.id));
    docs.dedup_by(|a, b| a.id == b.id);
    let scored = score(&docs)?;
    let mut docs: Vec<Option<Document>> = docs.into_iter().map(Some).collect();
    Ok(scored
        .into_iter()
        .filter_map(|s| {
            let document = docs.get_mut(s.id)?.take()?;
            Some(Hit { id: document.id.clone(), score: s.score, document })
        })
        .collect())
}

impl VectorCollection for MilvusCollection {
    fn backend(&self) -> &'static str {
        "milvus"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> &CollectionConfig {
        &self.config
    }

    fn upsert(&self, docs: Vec<Document>) -> Result<(), StoreError> {
        let invalid = |id: &str, reason: String| StoreError::InvalidDocument {
            collection: self.name.clone(),
            id: id.to_string(),
            reason,
        };
        for doc in &docs {
            check_document(&self.name, &self.config, doc)?;
            if doc.id.len() > MAX_ID_BYTES {
                return Err(invalid(
                    &doc.id,
                    format!("the id is {} bytes; Milvus keys hold at most {MAX_ID_BYTES}", doc.id.len()),
                ));
            }
            if doc.text.len() > MAX_TEXT_BYTES {
                return Err(invalid(
                    &doc.id,
                    format!(
                        "the text is {} bytes; the Milvus text field holds at most {MAX_TEXT_BYTES}",
                        doc.text.len()
                    ),
                ));
            }
            if !doc.sparse.is_empty() {
                if let Some(reason) = sparse_problem(&doc.sparse, true) {
                    return Err(invalid(&doc.id, format!("sparse vector: {reason}")));
                }
                if doc.sparse.iter().any(|(t, _)| *t >= PLACEHOLDER_TERM) {
                    return Err(invalid(
                        &doc.id,
                        format!(
                            "sparse vector: term ids from {PLACEHOLDER_TERM} up are reserved by the milvus backend"
                        ),
                    ));
                }
            }
        }
        if docs.is_empty() {
            return Ok(());
        }
        // The last document with an id wins, as in the embedded store.
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(docs.len());
        for (i, d) in docs.iter().enumerate() {
            last.insert(d.id.as_str(), i);
        }
        let kept: Vec<&Document> =
            docs.iter().enumerate().filter(|(i, d)| last[d.id.as_str()] == *i).map(|(_, d)| d).collect();
        let columns = rows::columns(&kept, self.has_sparse());
        let insert = InsertRequest::builder()
            .collection_name(&self.milvus_name)
            .columns(columns)
            .build()
            .map_err(|e| self.request_error("upsert", e))?;
        let request = UpsertRequest::builder().insert(insert).build().map_err(|e| self.request_error("upsert", e))?;
        self.run("upsert", Retry::Idempotent, |client| {
            let request = request.clone();
            async move { client.upsert(request).await }
        })
        .map(drop)
    }

    fn delete(&self, ids: &[&str]) -> Result<usize, StoreError> {
        let mut unique: Vec<&str> =
            ids.iter().copied().filter(|id| !id.is_empty() && id.len() <= MAX_ID_BYTES).collect();
        unique.sort_unstable();
        unique.dedup();
        let existing: Vec<String> = self.get_many(&unique)?.into_iter().map(|d| d.id).collect();
        if existing.is_empty() {
            return Ok(0);
        }
        // By expression: the SDK sends deletes by id as a filter template, which milvus-lite does
        // not parse.
        for chunk in existing.chunks(1000) {
            let list: Vec<String> = chunk.iter().map(|id| rows::quote(id)).collect();
            let request = DeleteRequest::builder()
                .collection_name(&self.milvus_name)
                .filter(format!("{ID} in [{}]", list.join(", ")))
                .build()
                .map_err(|e| self.request_error("delete", e))?;
            self.run("delete", Retry::Idempotent, |client| {
                let request = request.clone();
                async move { client.delete(request).await }
            })?;
        }
        Ok(existing.len())
    }

    fn get(&self, id: &str) -> Result<Option<Document>, StoreError> {
        if id.is_empty() || id.len() > MAX_ID_BYTES {
            return Ok(None);
        }
        Ok(self.get_many(&[id])?.into_iter().find(|d| d.id == id))
    }

    fn search_with_effort(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&Filter>,
        effort: Option<usize>,
    ) -> Result<Vec<Hit>, StoreError> {
        self.check_query(query)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        // A few more candidates than asked, rescored with ember's kernels: the order near the
        // k-th hit then does not depend on Milvus's rounding.
        let want = k.saturating_add(k.max(10));
        let hnsw = matches!(self.config.index, IndexKind::Hnsw { .. });
        let docs = self.filtered_candidates(want, filter, |limit, prefilter| {
            let ef = hnsw.then(|| effort.unwrap_or(DEFAULT_EF).max(limit));
            self.candidates(DENSE, SearchVectors::Float(vec![query.to_vec()]), limit, ef, prefilter)
        })?;
        let (dim, distance) = (self.config.dimension, self.config.distance);
        rescored(docs, |docs| {
            let index_error = |source| StoreError::Index { collection: self.name.clone(), source };
            let mut index = FlatIndex::new(dim, distance);
            for (i, d) in docs.iter().enumerate() {
                index.insert(i, &d.vector).map_err(index_error)?;
            }
            index.search(query, k, None).map_err(index_error)
        })
    }

    fn scan(&self, filter: Option<&Filter>) -> Result<Vec<Document>, StoreError> {
        let prefilter = filter.and_then(|f| f.to_milvus_prefilter(METADATA));
        let mut docs = self.all_documents("scan", prefilter.as_deref())?;
        if let Some(f) = filter {
            docs.retain(|d| f.matches(&d.metadata));
        }
        docs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(docs)
    }

    fn count(&self) -> Result<usize, StoreError> {
        let request = QueryRequest::builder()
            .collection_name(&self.milvus_name)
            .output_fields(["count(*)"])
            .consistency_level(ConsistencyLevel::Strong)
            .build()
            .map_err(|e| self.request_error("count", e))?;
        let response = self.run("count", Retry::Idempotent, |client| {
            let request = request.clone();
            async move { client.query(request).await }
        })?;
        response
            .results()
            .get_output_field("count(*)")
            .and_then(|f| f.as_int64())
            .and_then(|v| v.first().copied())
            .map(|n| n.max(0) as usize)
            .ok_or_else(|| self.malformed("count", "the result has no count(*)".into()))
    }

    fn info(&self) -> Result<CollectionInfo, StoreError> {
        Ok(CollectionInfo {
            name: self.name.clone(),
            config: self.config.clone(),
            count: self.count()?,
            disk_bytes: 0,
            segments: 0,
            wal_bytes: 0,
            maintenance_error: None,
        })
    }

    fn search_sparse(&self, query: &[(u32, f32)], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>, StoreError> {
        if !self.has_sparse() {
            return Err(StoreError::MissingField {
                collection: self.name.clone(),
                field: "sparse field",
                hint: "create the collection with a sparse model (`ember ingest --sparse-model`)",
            });
        }
        if let Some(reason) = sparse_problem(query, false) {
            return Err(self.invalid_query(format!("sparse query: {reason}")));
        }
        // No stored document holds a reserved term (the placeholder is not a real term).
        let query: Vec<(u32, f32)> = query.iter().copied().filter(|(t, _)| *t < PLACEHOLDER_TERM).collect();
        let probe: std::collections::BTreeMap<u32, f32> = query.iter().copied().filter(|(_, w)| *w > 0.0).collect();
        if k == 0 || probe.is_empty() {
            return Ok(Vec::new());
        }
        let want = k.saturating_add(k.max(10));
        let docs = self.filtered_candidates(want, filter, |limit, prefilter| {
            self.candidates(SPARSE, SearchVectors::SparseFloat(vec![probe.clone()]), limit, None, prefilter)
        })?;
        rescored(docs, |docs| {
            let sparse_error = |source| StoreError::SparseIndex { collection: self.name.clone(), source };
            let mut index = InvertedIndex::new(InvertedIndexParams::dot()).map_err(sparse_error)?;
            for (i, d) in docs.iter().enumerate() {
                index.insert_sparse(i, &d.sparse).map_err(sparse_error)?;
            }
            index.search_sparse(&query, k, None).map_err(sparse_error)
        })
    }
}

impl MilvusCollection {
    /// Milvus's own hybrid search: the best `limit` documents of the dense and the sparse list
    /// (each of `per_list` candidates, filtered by ember's filter on the fused result), fused by
    /// the server with `ranker`. Returns `(id, fused score)` pairs, best first, as the server
    /// ranks them. The engine's hybrid search does not use this (it fuses the per-list searches
    /// itself, the same way for every backend); it is here for callers that want the server to
    /// fuse, and its RRF is tested against ember's.
    pub fn hybrid_search_native(
        &self,
        dense: &[f32],
        sparse: &[(u32, f32)],
        per_list: usize,
        limit: usize,
        ranker: &FusionRanker,
    ) -> Result<Vec<(String, f32)>, StoreError> {
        self.check_query(dense)?;
        if !self.has_sparse() {
            return Err(StoreError::MissingField {
                collection: self.name.clone(),
                field: "sparse field",
                hint: "create the collection with a sparse model (`ember ingest --sparse-model`)",
            });
        }
        if let Some(reason) = sparse_problem(sparse, false) {
            return Err(self.invalid_query(format!("sparse query: {reason}")));
        }
        if limit == 0 || per_list == 0 {
            return Ok(Vec::new());
        }
        let probe: std::collections::BTreeMap<u32, f32> =
            sparse.iter().copied().filter(|(t, w)| *t < PLACEHOLDER_TERM && *w > 0.0).collect();
        let per_list = per_list.min(MAX_TOPK) as i64;
        let ef = matches!(self.config.index, IndexKind::Hnsw { .. }).then(|| DEFAULT_EF.max(per_list as usize));
        let mut dense_request = SubSearchRequest::builder()
            .vector_field(DENSE)
            .vectors(SearchVectors::Float(vec![dense.to_vec()]))
            .limit(per_list);
        if let Some(ef) = ef {
            dense_request = dense_request.extra_params(HashMap::from([("ef".to_string(), ef.to_string())]));
        }
        let mut subs = vec![dense_request.build().map_err(|e| self.request_error("hybrid search", e))?];
        let has_sparse_list = !probe.is_empty();
        if has_sparse_list {
            subs.push(
                SubSearchRequest::builder()
                    .vector_field(SPARSE)
                    .vectors(SearchVectors::SparseFloat(vec![probe]))
                    .limit(per_list)
                    .build()
                    .map_err(|e| self.request_error("hybrid search", e))?,
            );
        }
        let builder = HybridSearchRequest::builder()
            .collection_name(&self.milvus_name)
            .sub_requests(subs)
            .limit(limit.min(MAX_TOPK) as i64)
            .output_fields([ID])
            .consistency_level(ConsistencyLevel::Strong);
        let lists = if has_sparse_list { 2 } else { 1 };
        let builder = match ranker {
            FusionRanker::Rrf { k } => builder.rerank(RRFRerank::new().k(*k as i64)),
            FusionRanker::Weighted { weights } => {
                if weights.len() != 2 {
                    return Err(self.invalid_query(format!(
                        "a weighted fusion of the dense and sparse lists takes 2 weights, got {}",
                        weights.len()
                    )));
                }
                // Without a sparse list (the query has no term), the dense list alone.
                builder.rerank(WeightedRerank::new().weights(weights[..lists].to_vec()))
            }
        };
        let request = builder.build().map_err(|e| self.request_error("hybrid search", e))?;
        let response = self.run("hybrid search", Retry::Idempotent, |client| {
            let request = request.clone();
            async move { client.hybrid_search(request).await }
        })?;
        let mut out = Vec::new();
        for result in response.results().iter() {
            let Ids::VarChar(ids) = result.get_ids() else {
                return Err(self.malformed("hybrid search", "the result's ids are not strings".into()));
            };
            out.extend(ids.iter().cloned().zip(result.get_scores().iter().copied()));
        }
        Ok(out)
    }
}
