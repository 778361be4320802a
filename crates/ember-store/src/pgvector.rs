//! `PgVectorStore`: collections in PostgreSQL with the pgvector extension (feature `postgres`).
//!
//! Layout (format 1): a catalog table `ember_collections (name, table_name, config jsonb, format)`
//! and one table per collection, `ember_c_<n> (id text COLLATE "C" PRIMARY KEY, text text,
//! metadata jsonb, embedding vector(<dimension>))`. Vectors are stored as `vector` (`f32`), so a
//! document reads back exactly as written. A collection configured with `IndexKind::Hnsw` gets an
//! HNSW index (`vector_<distance>_ops`, or over `embedding::halfvec` at `float16` precision);
//! a flat one has none, so PostgreSQL scans exactly.
//!
//! Searches order by pgvector's distance (`<=>` cosine, `<#>` negative inner product, `<->` L2,
//! `<+>` L1), fetch a few more candidates than asked, and rescore them with ember's own
//! `FlatIndex`, so scores are exactly the embedded store's (`ember_core::Similarity`, higher is
//! better) and an exact search ranks as the embedded store's does. HNSW searches use pgvector
//! 0.8's iterative scans (`hnsw.iterative_scan = relaxed_order`) so filters still fill `k`, and
//! fall back to an exact scan when the index still returns fewer rows than asked.
//!
//! Filters are the embedded store's language, translated by [`Filter::to_sql`] with every value
//! bound as a parameter. Upserts are one transaction per batch (`INSERT … ON CONFLICT (id) DO
//! UPDATE`), so an interrupted batch leaves nothing behind. Operations that are safe to repeat
//! (reads, upserts) are retried with backoff when the connection fails; deletes and DDL are
//! retried only when they never reached the server. Errors name the server's URL (without its
//! password) and the operation.

mod lexical;
mod pool;
mod retry;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ember_core::Similarity;
use ember_index::sparse::Analyzer;
use ember_index::{DenseIndex, FlatIndex};
use postgres::types::ToSql;
use postgres::{Client, Row};
use serde_json::{Map, Value};

use self::pool::{GetError, Pool, Tls};
use self::retry::{db_error, Failure, Retry};
use crate::collection::CollectionInfo;
use crate::config::{validate_name, CollectionConfig, IndexKind, Precision};
use crate::document::{Document, Hit};
use crate::error::StoreError;
use crate::filter::sql::SqlParam;
use crate::filter::Filter;
use crate::vector_store::{check_document, BackendError, PgConnectOptions, SslMode, VectorCollection, VectorStore};

/// The layout version written in the catalog; a collection of another version is refused.
const FORMAT: i32 = 1;
/// pgvector's limits: `vector` columns, and HNSW indexes over `vector` / `halfvec`.
const MAX_DIMENSION: usize = 16_000;
const MAX_HNSW_DIMENSION: usize = 2_000;
const MAX_HNSW_HALF_DIMENSION: usize = 4_000;
/// pgvector's largest `hnsw.ef_search`.
const MAX_EF_SEARCH: usize = 1_000;
/// The embedded HNSW's default `ef`.
const DEFAULT_EF_SEARCH: usize = 64;
/// Rows per INSERT statement within an upsert's transaction.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Collections in a PostgreSQL database with pgvector. Cheap to clone; handles share one pool.
#[derive(Debug, Clone)]
pub struct PgVectorStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    pool: Pool,
    /// For messages: the URL without its password.
    url: String,
    retries: u32,
    /// pgvector ≥ 0.8 (iterative index scans).
    iterative_scans: bool,
    /// The schema holding ember's tables (the connection's `current_schema()` when it connected),
    /// as a quoted identifier. Every table name is qualified with it, so a dropped table is an
    /// error rather than a same-named table further down the `search_path`.
    schema: String,
}

impl Shared {
    fn catalog(&self) -> String {
        format!("{}.ember_collections", self.schema)
    }

    fn qualified(&self, table: &str) -> String {
        format!("{}.{table}", self.schema)
    }
}

/// `name` as a quoted SQL identifier.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl PgVectorStore {
    /// Connect to the server and make sure ember's catalog is there (creating it, and the
    /// `vector` extension, when missing).
    pub fn connect(options: &PgConnectOptions) -> Result<PgVectorStore, StoreError> {
        let url = options.redacted_url();
        let mut config: postgres::Config = options
            .url
            .parse()
            .map_err(|e| BackendError::InvalidLocation { location: url.clone(), reason: format!("{e}") })?;
        config.ssl_mode(match options.ssl_mode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            SslMode::Require => postgres::config::SslMode::Require,
        });
        config.connect_timeout(Duration::from_secs(options.connect_timeout_s));
        config.keepalives(true);
        if config.get_application_name().is_none() {
            config.application_name("ember");
        }
        let wait = Duration::from_secs(options.connect_timeout_s.saturating_mul(3));
        let pool = Pool::new(config, Tls::for_mode(options.ssl_mode), options.pool_size, wait);
        let mut shared = Shared { pool, url, retries: options.retries, iterative_scans: false, schema: String::new() };
        let version: Option<String> = shared.run("connect", Retry::Idempotent, |client| {
            let installed = client.query_opt("SELECT extversion FROM pg_extension WHERE extname = 'vector'", &[])?;
            Ok(installed.map(|row| row.get(0)))
        })?;
        let version = match version {
            Some(v) => v,
            None => shared
                .run("create extension vector", Retry::BeforeSending, |client| {
                    client.batch_execute("CREATE EXTENSION IF NOT EXISTS vector")?;
                    Ok(client.query_one("SELECT extversion FROM pg_extension WHERE extname = 'vector'", &[])?.get(0))
                })
                .map_err(|e| match e {
                    StoreError::Backend(BackendError::Database { url, source, .. }) => {
                        StoreError::Backend(BackendError::Database {
                            url,
                            operation: "CREATE EXTENSION vector (pgvector is not installed in this database; \
                                        install it, or have a superuser run CREATE EXTENSION vector)"
                                .into(),
                            source,
                        })
                    }
                    e => e,
                })?,
        };
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if (major, minor) < (0, 7) {
            return Err(BackendError::SchemaMismatch {
                url: shared.url.clone(),
                collection: "*".into(),
                reason: format!("pgvector {version} is too old (ember needs 0.7 or later)"),
            }
            .into());
        }
        shared.iterative_scans = (major, minor) >= (0, 8);
        let schema: Option<String> = shared
            .run("connect", Retry::Idempotent, |client| Ok(client.query_one("SELECT current_schema()", &[])?.get(0)))?;
        let Some(schema) = schema else {
            return Err(BackendError::SchemaMismatch {
                url: shared.url.clone(),
                collection: "*".into(),
                reason: "no schema of the search_path exists (current_schema() is NULL); create one or set \
                         options=-c search_path=… in the URL"
                    .into(),
            }
            .into());
        };
        shared.schema = quote_identifier(&schema);
        let catalog = shared.catalog();
        let sequence = shared.qualified("ember_collection_ids");
        shared.run("create the catalog", Retry::Idempotent, |client| {
            let mut tx = client.transaction()?;
            tx.batch_execute(&format!(
                "SELECT pg_advisory_xact_lock(hashtext('ember_collections'));
                 CREATE TABLE IF NOT EXISTS {catalog} (
                     name text COLLATE \"C\" PRIMARY KEY,
                     table_name text NOT NULL UNIQUE,
                     config jsonb NOT NULL,
                     format integer NOT NULL,
                     created_at timestamptz NOT NULL DEFAULT now());
                 CREATE SEQUENCE IF NOT EXISTS {sequence};"
            ))?;
            tx.commit()?;
            Ok(())
        })?;
        Ok(PgVectorStore { shared: Arc::new(shared) })
    }

    fn open(&self, name: &str, table: String, config: Value, format: i32) -> Result<PgVectorCollection, StoreError> {
        let mismatch = |reason: String| -> StoreError {
            BackendError::SchemaMismatch { url: self.shared.url.clone(), collection: name.to_string(), reason }.into()
        };
        if format != FORMAT {
            return Err(mismatch(format!("its catalog entry has format {format}; this build reads format {FORMAT}")));
        }
        let config: CollectionConfig =
            serde_json::from_value(config).map_err(|e| mismatch(format!("its catalog config does not parse: {e}")))?;
        let qualified = self.shared.qualified(&table);
        let columns: Vec<(String, String)> = self.shared.run("open collection", Retry::Idempotent, |client| {
            let rows = client.query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
                &[&qualified],
            )?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })?;
        if columns.is_empty() {
            return Err(mismatch(format!("its table {table} is missing")));
        }
        let mut want = vec![
            ("id", "text".to_string()),
            ("text", "text".to_string()),
            ("metadata", "jsonb".to_string()),
            ("embedding", format!("vector({})", config.dimension)),
        ];
        want.extend(lexical::wanted_columns(&config));
        for (column, ty) in want {
            match columns.iter().find(|(c, _)| c == column) {
                Some((_, found)) if *found == ty => {}
                Some((_, found)) => {
                    return Err(mismatch(format!("column {table}.{column} is {found}, expected {ty}")));
                }
                None => return Err(mismatch(format!("column {table}.{column} ({ty}) is missing"))),
            }
        }
        if config.text_index.is_some() {
            lexical::check_text_tables(&self.shared, &table).map_err(|e| match e {
                lexical::Missing::Table(t) => mismatch(format!("its text index table {t} is missing")),
                lexical::Missing::Store(e) => e,
            })?;
        }
        PgVectorCollection::new(Arc::clone(&self.shared), name, qualified, config)
    }
}

/// The SQL of one similarity: pgvector's distance operator and HNSW operator class suffix.
fn operator(similarity: Similarity) -> (&'static str, &'static str) {
    match similarity {
        Similarity::Cosine => ("<=>", "cosine"),
        Similarity::Dot => ("<#>", "ip"),
        Similarity::Euclidean => ("<->", "l2"),
        Similarity::Manhattan => ("<+>", "l1"),
    }
}

/// Whether the collection's HNSW index is over `halfvec` (float16 precision).
fn half_index(config: &CollectionConfig) -> bool {
    matches!(config.index, IndexKind::Hnsw { .. }) && config.precision == Precision::Float16
}

fn check_pg_config(config: &CollectionConfig) -> Result<(), StoreError> {
    let invalid = |reason: String| StoreError::InvalidConfig { reason };
    if config.multivector.is_some() {
        return Err(invalid("the postgres backend does not store a multi-vector field yet".into()));
    }
    if config.dimension > MAX_DIMENSION {
        return Err(invalid(format!(
            "pgvector stores vectors of at most {MAX_DIMENSION} dimensions (got {})",
            config.dimension
        )));
    }
    if let IndexKind::Hnsw { .. } = config.index {
        let limit = if half_index(config) { MAX_HNSW_HALF_DIMENSION } else { MAX_HNSW_DIMENSION };
        if config.dimension > limit {
            return Err(invalid(format!(
                "pgvector's HNSW index takes at most {MAX_HNSW_DIMENSION} dimensions ({MAX_HNSW_HALF_DIMENSION} at \
                 float16 precision), got {}; use a flat index or float16 precision",
                config.dimension
            )));
        }
        if let IndexKind::Hnsw { m, ef_construction } = config.index {
            if !(2..=100).contains(&m) || ef_construction < 2 * m || ef_construction > 1000 {
                return Err(invalid(format!(
                    "pgvector's HNSW needs 2 <= m <= 100 and 2·m <= ef_construction <= 1000 (got m={m}, \
                     ef_construction={ef_construction})"
                )));
            }
        }
    }
    Ok(())
}

impl VectorStore for PgVectorStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn location(&self) -> String {
        self.shared.url.clone()
    }

    fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<Arc<dyn VectorCollection>, StoreError> {
        validate_name(name)?;
        config.validate()?;
        check_pg_config(&config)?;
        let config_json =
            serde_json::to_value(&config).map_err(|e| StoreError::InvalidConfig { reason: e.to_string() })?;
        let catalog = self.shared.catalog();
        let sequence = self.shared.qualified("ember_collection_ids");
        let table = self.shared.run("create collection", Retry::BeforeSending, |client| {
            let mut tx = client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock(hashtext('ember_collections'))", &[])?;
            if tx.query_opt(&format!("SELECT 1 FROM {catalog} WHERE name = $1"), &[&name])?.is_some() {
                return Err(StoreError::AlreadyExists { name: name.to_string() }.into());
            }
            let id: i64 = tx.query_one("SELECT nextval($1::text::regclass)", &[&sequence])?.get(0);
            // Identifiers come from the schema, the sequence and numbers in the config, never
            // from user text.
            let bare = format!("ember_c_{id}");
            let table = self.shared.qualified(&bare);
            let dim = config.dimension;
            let extra = lexical::extra_columns(&config);
            tx.batch_execute(&format!(
                "CREATE TABLE {table} (id text COLLATE \"C\" PRIMARY KEY, text text NOT NULL, \
                 metadata jsonb NOT NULL, embedding vector({dim}) NOT NULL{extra})"
            ))?;
            if config.text_index.is_some() {
                lexical::create_text_tables(&mut tx, &self.shared, &bare)?;
            }
            if let IndexKind::Hnsw { m, ef_construction } = config.index {
                let (_, ops) = operator(config.distance);
                let (column, opclass) = if half_index(&config) {
                    (format!("(embedding::halfvec({dim}))"), format!("halfvec_{ops}_ops"))
                } else {
                    ("embedding".to_string(), format!("vector_{ops}_ops"))
                };
                tx.batch_execute(&format!(
                    "CREATE INDEX {bare}_hnsw ON {table} USING hnsw ({column} {opclass}) \
                     WITH (m = {m}, ef_construction = {ef_construction})"
                ))?;
            }
            tx.execute(
                &format!("INSERT INTO {catalog} (name, table_name, config, format) VALUES ($1, $2, $3, $4)"),
                &[&name, &bare, &config_json, &FORMAT],
            )?;
            tx.commit()?;
            Ok(table)
        })?;
        Ok(Arc::new(PgVectorCollection::new(Arc::clone(&self.shared), name, table, config)?))
    }

    fn collection(&self, name: &str) -> Result<Arc<dyn VectorCollection>, StoreError> {
        validate_name(name)?;
        let sql = format!("SELECT table_name, config, format FROM {} WHERE name = $1", self.shared.catalog());
        let row =
            self.shared.run("open collection", Retry::Idempotent, |client| Ok(client.query_opt(&sql, &[&name])?))?;
        match row {
            Some(row) => Ok(Arc::new(self.open(name, row.get(0), row.get(1), row.get(2))?)),
            None => Err(StoreError::NotFound { name: name.to_string(), available: self.names()? }),
        }
    }

    fn drop_collection(&self, name: &str) -> Result<(), StoreError> {
        validate_name(name)?;
        let catalog = self.shared.catalog();
        let found = self.shared.run("drop collection", Retry::BeforeSending, |client| {
            let mut tx = client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock(hashtext('ember_collections'))", &[])?;
            let Some(row) = tx.query_opt(&format!("SELECT table_name FROM {catalog} WHERE name = $1"), &[&name])?
            else {
                return Ok(false);
            };
            let table: String = row.get(0);
            if !table.starts_with("ember_c_") || !table[8..].bytes().all(|b| b.is_ascii_digit()) {
                return Err(StoreError::Backend(BackendError::SchemaMismatch {
                    url: self.shared.url.clone(),
                    collection: name.to_string(),
                    reason: format!("its catalog names the table {table:?}, which ember did not create"),
                })
                .into());
            }
            tx.batch_execute(&format!(
                "DROP TABLE IF EXISTS {}, {}, {}",
                self.shared.qualified(&table),
                self.shared.qualified(&lexical::terms_table(&table)),
                self.shared.qualified(&lexical::stats_table(&table))
            ))?;
            tx.execute(&format!("DELETE FROM {catalog} WHERE name = $1"), &[&name])?;
            tx.commit()?;
            Ok(true)
        })?;
        if found {
            Ok(())
        } else {
            Err(StoreError::NotFound { name: name.to_string(), available: self.names()? })
        }
    }

    fn names(&self) -> Result<Vec<String>, StoreError> {
        self.shared.run("list collections", Retry::Idempotent, |client| {
            let rows = client.query(&format!("SELECT name FROM {} ORDER BY name", self.shared.catalog()), &[])?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }
}

/// One collection in PostgreSQL; see the module documentation.
#[derive(Debug)]
pub struct PgVectorCollection {
    shared: Arc<Shared>,
    name: String,
    /// `"<schema>".ember_c_<n>`: made by this module from the schema and a sequence number, safe
    /// to write into SQL.
    table: String,
    config: CollectionConfig,
    /// The text index's analyzer (collections with a text index).
    analyzer: Option<Analyzer>,
}

/// Bind a translated filter's parameters.
fn filter_params(params: &[SqlParam]) -> Vec<Box<dyn ToSql + Sync>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync> {
            match p {
                SqlParam::Text(s) => Box::new(s.clone()),
                SqlParam::TextArray(a) => Box::new(a.clone()),
                SqlParam::Float(f) => Box::new(*f),
                SqlParam::Bool(b) => Box::new(*b),
            }
        })
        .collect()
}

/// A document from the columns [`PgVectorCollection::columns`] names, in that order.
fn row_document(row: &Row, sparse: bool) -> Result<Document, Failure> {
    let metadata: Value = row.try_get(2)?;
    let vector: pgvector::Vector = row.try_get(3)?;
    let sparse = if sparse { lexical::read_sparse(row.try_get(4)?) } else { Vec::new() };
    Ok(Document {
        id: row.try_get(0)?,
        text: row.try_get(1)?,
        vector: vector.to_vec(),
        metadata: match metadata {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        sparse,
        ..Document::default()
    })
}

/// PostgreSQL text cannot hold NUL; find one in a document.
fn nul_in(doc: &Document) -> Option<&'static str> {
    fn in_value(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().any(in_value),
            Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || in_value(v)),
            _ => false,
        }
    }
    if doc.id.contains('\0') {
        Some("the id")
    } else if doc.text.contains('\0') {
        Some("the text")
    } else if doc.metadata.iter().any(|(k, v)| k.contains('\0') || in_value(v)) {
        Some("the metadata")
    } else {
        None
    }
}

impl PgVectorCollection {
    fn new(shared: Arc<Shared>, name: &str, table: String, config: CollectionConfig) -> Result<Self, StoreError> {
        let analyzer = config
            .text_index
            .as_ref()
            .map(|t| Analyzer::new(t.analyzer.clone()))
            .transpose()
            .map_err(|e| StoreError::InvalidConfig { reason: format!("text index: {e}") })?;
        Ok(PgVectorCollection { shared, name: name.to_string(), table, config, analyzer })
    }

    /// The columns a document is read from (see [`row_document`]).
    fn columns(&self, prefix: &str) -> String {
        let p = prefix;
        let sparse = if self.config.sparse.is_some() { format!(", {p}sparse") } else { String::new() };
        format!("{p}id, {p}text, {p}metadata, {p}embedding{sparse}")
    }

    fn read_rows(&self, rows: &[Row], operation: &str) -> Result<Vec<Document>, StoreError> {
        let sparse = self.config.sparse.is_some();
        rows.iter().map(|r| row_document(r, sparse)).collect::<Result<Vec<_>, Failure>>().map_err(|e| match e {
            Failure::Pg(e) => db_error(&self.shared.url, operation, e),
            Failure::Store(e) => e,
        })
    }

    /// Map "the table is gone" to [`StoreError::Dropped`].
    fn dropped_or(&self, e: StoreError) -> StoreError {
        if let StoreError::Backend(BackendError::Database { source, .. }) = &e {
            if let Some(pg) = source.downcast_ref::<postgres::Error>() {
                if pg.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE) {
                    return StoreError::Dropped { name: self.name.clone() };
                }
            }
        }
        e
    }

    fn run<T>(
        &self,
        operation: &str,
        retry: Retry,
        f: impl FnMut(&mut Client) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let operation = format!("{operation} (collection '{}')", self.name);
        self.shared.run(&operation, retry, f).map_err(|e| self.dropped_or(e))
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
            return Err(StoreError::InvalidQuery {
                collection: self.name.clone(),
                reason: format!("query[{i}] is {}", query[i]),
            });
        }
        Ok(())
    }
}

impl VectorCollection for PgVectorCollection {
    fn backend(&self) -> &'static str {
        "postgres"
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
            if !doc.sparse.is_empty() {
                if let Some(reason) = lexical::stored_sparse_problem(&doc.sparse) {
                    return Err(invalid(&doc.id, format!("sparse vector: {reason}")));
                }
            }
            if let Some(what) = nul_in(doc) {
                return Err(invalid(&doc.id, format!("{what} holds a NUL character, which PostgreSQL cannot store")));
            }
        }
        if docs.is_empty() {
            return Ok(());
        }
        // The last document with an id wins, as in the embedded store (and ON CONFLICT refuses
        // to update one row twice in a statement).
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(docs.len());
        for (i, d) in docs.iter().enumerate() {
            last.insert(d.id.as_str(), i);
        }
        let kept: Vec<&Document> =
            docs.iter().enumerate().filter(|(i, d)| last[d.id.as_str()] == *i).map(|(_, d)| d).collect();
        // Analyzed in Rust with the collection's analyzer, before the transaction.
        let analyzed = match (&self.analyzer, &self.config.text_index) {
            (Some(analyzer), Some(text)) => Some(
                kept.iter()
                    .map(|d| lexical::analyze_document(analyzer, &text.bm25, d))
                    .collect::<Result<Vec<_>, (String, String)>>()
                    .map_err(|(id, reason)| invalid(&id, reason))?,
            ),
            _ => None,
        };
        let has_sparse = self.config.sparse.is_some();
        let (mut columns, mut arrays) = ("id, text, metadata, embedding".to_string(), String::new());
        arrays.push_str("$1::text[], $2::text[], $3::jsonb[], $4::vector[]");
        let mut next = 5;
        if analyzed.is_some() {
            columns.push_str(", text_len");
            arrays.push_str(&format!(", ${next}::int4[]"));
            next += 1;
        }
        if has_sparse {
            columns.push_str(", sparse");
            arrays.push_str(&format!(", ${next}::sparsevec[]"));
        }
        let updates: Vec<String> = columns.split(", ").skip(1).map(|c| format!("{c} = EXCLUDED.{c}")).collect();
        let sql = format!(
            "INSERT INTO {t} ({columns}) SELECT * FROM unnest({arrays}) ON CONFLICT (id) DO UPDATE SET {}",
            updates.join(", "),
            t = self.table
        );
        let ids: Vec<&str> = kept.iter().map(|d| d.id.as_str()).collect();
        self.run("upsert", Retry::Idempotent, |client| {
            let mut tx = client.transaction()?;
            let text = match &analyzed {
                Some(analyzed) => Some(lexical::TextWrite::begin(&mut tx, self, &ids, analyzed)?),
                None => None,
            };
            let statement = tx.prepare(&sql)?;
            for (at, chunk) in kept.chunks(ROWS_PER_STATEMENT).enumerate() {
                let ids: Vec<&str> = chunk.iter().map(|d| d.id.as_str()).collect();
                let texts: Vec<&str> = chunk.iter().map(|d| d.text.as_str()).collect();
                let metadata: Vec<Value> = chunk.iter().map(|d| Value::Object(d.metadata.clone())).collect();
                let vectors: Vec<pgvector::Vector> =
                    chunk.iter().map(|d| pgvector::Vector::from(d.vector.clone())).collect();
                let mut params: Vec<Box<dyn ToSql + Sync>> =
                    vec![Box::new(ids), Box::new(texts), Box::new(metadata), Box::new(vectors)];
                if let Some(analyzed) = &analyzed {
                    let from = at * ROWS_PER_STATEMENT;
                    let lens: Vec<i32> = analyzed[from..from + chunk.len()].iter().map(|a| a.len as i32).collect();
                    params.push(Box::new(lens));
                }
                if has_sparse {
                    let sparse: Vec<Option<pgvector::SparseVector>> =
                        chunk.iter().map(|d| lexical::write_sparse(&d.sparse)).collect();
                    params.push(Box::new(sparse));
                }
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
                tx.execute(&statement, &refs)?;
            }
            if let (Some(text), Some(analyzed)) = (text, &analyzed) {
                text.finish(&mut tx, self, &ids, analyzed)?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn delete(&self, ids: &[&str]) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = ids.iter().copied().filter(|id| !id.contains('\0')).collect();
        if self.config.text_index.is_some() {
            return self.run("delete", Retry::BeforeSending, |client| {
                let mut tx = client.transaction()?;
                let deleted = lexical::delete_with_text(&mut tx, self, &ids)?;
                tx.commit()?;
                Ok(deleted)
            });
        }
        let sql = format!("DELETE FROM {} WHERE id = ANY($1::text[])", self.table);
        self.run("delete", Retry::BeforeSending, |client| Ok(client.execute(&sql, &[&ids])? as usize))
    }

    fn get(&self, id: &str) -> Result<Option<Document>, StoreError> {
        if id.contains('\0') {
            return Ok(None);
        }
        let sql = format!("SELECT {} FROM {} WHERE id = $1", self.columns(""), self.table);
        let sparse = self.config.sparse.is_some();
        self.run("get", Retry::Idempotent, |client| {
            client.query_opt(&sql, &[&id])?.map(|row| row_document(&row, sparse)).transpose()
        })
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
        // k-th hit then does not depend on pgvector's rounding.
        let want = k.saturating_add(k.max(10));
        let limit = i64::try_from(want).unwrap_or(i64::MAX);
        let dim = self.config.dimension;
        let (op, _) = operator(self.config.distance);
        let (column, probe) = if half_index(&self.config) {
            (format!("(embedding::halfvec({dim}))"), format!("$1::vector({dim})::halfvec({dim})"))
        } else {
            ("embedding".to_string(), "$1::vector".to_string())
        };
        let translated = filter.map(|f| f.to_sql("metadata", 3));
        let where_clause = translated.as_ref().map_or(String::new(), |t| format!("WHERE {}", t.sql));
        let sql = format!(
            "SELECT {c} FROM {t} {where_clause} ORDER BY {column} {op} {probe} LIMIT $2",
            c = self.columns(""),
            t = self.table
        );
        let hnsw = matches!(self.config.index, IndexKind::Hnsw { .. });
        let ef = effort.unwrap_or(DEFAULT_EF_SEARCH).max(want.min(MAX_EF_SEARCH)).clamp(1, MAX_EF_SEARCH);
        let bound = translated.as_ref().map(|t| filter_params(&t.params)).unwrap_or_default();
        let probe_vector = pgvector::Vector::from(query.to_vec());
        let rows = self.run("search", Retry::Idempotent, |client| {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&probe_vector, &limit];
            params.extend(bound.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)));
            if !hnsw {
                return Ok(client.query(&sql, &params)?);
            }
            let mut tx = client.transaction()?;
            tx.batch_execute(&format!("SET LOCAL hnsw.ef_search = {ef}"))?;
            if self.shared.iterative_scans {
                tx.batch_execute("SET LOCAL hnsw.iterative_scan = relaxed_order")?;
            }
            let mut rows = tx.query(&sql, &params)?;
            if rows.len() < want {
                // The graph gave up before enough rows passed the filter: scan exactly.
                tx.batch_execute("SET LOCAL enable_indexscan = off")?;
                rows = tx.query(&sql, &params)?;
            }
            tx.commit()?;
            Ok(rows)
        })?;
        let mut docs = self.read_rows(&rows, "search (reading rows)")?;
        // Ties break by id, as the candidates are inserted in id order.
        docs.sort_by(|a, b| a.id.cmp(&b.id));
        let mut index = FlatIndex::new(dim, self.config.distance);
        for (i, d) in docs.iter().enumerate() {
            index.insert(i, &d.vector).map_err(|source| StoreError::Index { collection: self.name.clone(), source })?;
        }
        let scored = index
            .search(query, k, None)
            .map_err(|source| StoreError::Index { collection: self.name.clone(), source })?;
        let mut docs: Vec<Option<Document>> = docs.into_iter().map(Some).collect();
        Ok(scored
            .into_iter()
            .filter_map(|s| {
                let document = docs.get_mut(s.id)?.take()?;
                Some(Hit { id: document.id.clone(), score: s.score, document })
            })
            .collect())
    }

    fn scan(&self, filter: Option<&Filter>) -> Result<Vec<Document>, StoreError> {
        let translated = filter.map(|f| f.to_sql("metadata", 1));
        let where_clause = translated.as_ref().map_or(String::new(), |t| format!("WHERE {}", t.sql));
        let sql = format!("SELECT {} FROM {} {where_clause} ORDER BY id", self.columns(""), self.table);
        let sparse = self.config.sparse.is_some();
        let bound = translated.as_ref().map(|t| filter_params(&t.params)).unwrap_or_default();
        self.run("scan", Retry::Idempotent, |client| {
            let params: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect();
            client.query(&sql, &params)?.iter().map(|r| row_document(r, sparse)).collect()
        })
    }

    fn scan_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<Document>, StoreError> {
        // `id` is `COLLATE "C"`: byte order, the embedded store's, served by the primary key.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // PostgreSQL text holds no NUL, so no id does: the ids after "ab\0…" are those after "ab".
        let after = after.map(|a| a.split('\0').next().unwrap_or(""));
        let columns = self.columns("");
        let sparse = self.config.sparse.is_some();
        let (sql, after) = match after {
            Some(after) => {
                (format!("SELECT {columns} FROM {} WHERE id > $2 ORDER BY id LIMIT $1", self.table), Some(after))
            }
            None => (format!("SELECT {columns} FROM {} ORDER BY id LIMIT $1", self.table), None),
        };
        self.run("scan page", Retry::Idempotent, |client| {
            let rows = match after {
                Some(after) => client.query(&sql, &[&limit, &after])?,
                None => client.query(&sql, &[&limit])?,
            };
            rows.iter().map(|r| row_document(r, sparse)).collect()
        })
    }

    fn count(&self) -> Result<usize, StoreError> {
        let sql = format!("SELECT count(*) FROM {}", self.table);
        self.run("count", Retry::Idempotent, |client| Ok(client.query_one(&sql, &[])?.get::<_, i64>(0) as usize))
    }

    fn search_text(&self, query: &str, k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>, StoreError> {
        self.text_search(query, k, filter)
    }

    fn search_sparse(&self, query: &[(u32, f32)], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>, StoreError> {
        self.sparse_search(query, k, filter)
    }

    fn info(&self) -> Result<CollectionInfo, StoreError> {
        // The collection's table, and its text index's tables when it has them.
        let sql = format!(
            "SELECT count(*), (pg_total_relation_size($1::text::regclass) \
             + COALESCE(pg_total_relation_size(to_regclass($2)), 0) \
             + COALESCE(pg_total_relation_size(to_regclass($3)), 0))::bigint FROM {}",
            self.table
        );
        let (terms, stats) = (lexical::terms_table(&self.table), lexical::stats_table(&self.table));
        let (count, bytes) = self.run("info", Retry::Idempotent, |client| {
            let row = client.query_one(&sql, &[&self.table, &terms, &stats])?;
            Ok((row.get::<_, i64>(0), row.get::<_, i64>(1)))
        })?;
        Ok(CollectionInfo {
            name: self.name.clone(),
            config: self.config.clone(),
            count: count as usize,
            disk_bytes: bytes as u64,
            segments: 0,
            wal_bytes: 0,
            maintenance_error: None,
        })
    }
}
