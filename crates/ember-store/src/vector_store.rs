//! The storage interface every backend implements: [`VectorStore`] (named collections) and
//! [`VectorCollection`] (one collection's documents). The embedded [`Store`] implements it by
//! delegation; `PgVectorStore` (feature `postgres`) keeps collections in PostgreSQL + pgvector.
//! Both pass the one conformance suite in `tests/conformance.rs`.
//!
//! The interface is synchronous, object-safe and mirrors the embedded [`Collection`]: callers hold
//! an `Arc<dyn VectorStore>` and `Arc<dyn VectorCollection>` handles. Retrieval modes a backend
//! may lack (text/BM25, sparse or multi-vector search, added later) get default methods that
//! fail with [`BackendError::Unsupported`], so adding one never breaks a backend.
//!
//! [`StoreLocation`] parses what a user types (`--store ./data`, `--store postgres://…`) and
//! [`open_store`] opens it; a backend not compiled into this build fails at run time with
//! "postgres is not enabled in this build", and the types keep one shape whatever the features.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use crate::collection::{Collection, CollectionInfo};
use crate::config::{CollectionConfig, StoreOptions};
use crate::document::{Document, Hit};
use crate::error::StoreError;
use crate::filter::Filter;
use crate::store::Store;

/// Failures that only external backends have: the server, its schema, features of this build.
#[derive(Debug, Error)]
pub enum BackendError {
    #[error("{backend} is not enabled in this build (rebuild ember with the `{feature}` cargo feature)")]
    NotEnabled { backend: &'static str, feature: &'static str },
    #[error("invalid store location {location:?}: {reason}")]
    InvalidLocation { location: String, reason: String },
    #[error(
        "{operation} on {url} failed after {attempts} attempt(s): the server is unreachable or went away: {source}"
    )]
    Unavailable {
        /// The server's address, without any password.
        url: String,
        operation: String,
        attempts: u32,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{operation} on {url} failed: {source}")]
    Database {
        url: String,
        operation: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("collection '{collection}' on {url} does not have the schema ember expects: {reason}")]
    SchemaMismatch { url: String, collection: String, reason: String },
    #[error("the {backend} backend does not support {operation}")]
    Unsupported { backend: &'static str, operation: &'static str },
}

/// The checks every external backend makes on a document before writing it: a non-empty id, a
/// vector of the collection's dimension with finite values, and no sparse or token vectors the
/// collection has no field for. Backends add their own limits after these.
pub(crate) fn check_document(collection: &str, config: &CollectionConfig, doc: &Document) -> Result<(), StoreError> {
    let invalid =
        |reason: String| StoreError::InvalidDocument { collection: collection.to_string(), id: doc.id.clone(), reason };
    if doc.id.is_empty() {
        return Err(invalid("the id is empty".into()));
    }
    if doc.vector.len() != config.dimension {
        return Err(StoreError::DimensionMismatch {
            collection: collection.to_string(),
            expected: config.dimension,
            got: doc.vector.len(),
        });
    }
    if let Some(i) = doc.vector.iter().position(|x| !x.is_finite()) {
        return Err(invalid(format!("vector[{i}] is {}", doc.vector[i])));
    }
    if !doc.sparse.is_empty() && config.sparse.is_none() {
        return Err(invalid("it has a sparse vector but the collection has no sparse field".into()));
    }
    if !doc.multivector.is_empty() && config.multivector.is_none() {
        return Err(invalid("it has token vectors but the collection has no multivector field".into()));
    }
    Ok(())
}

/// A place holding named collections.
pub trait VectorStore: Send + Sync + fmt::Debug {
    /// The backend's name: `embedded`, `postgres`.
    fn backend(&self) -> &'static str;

    /// Where the collections live, safe to print (a directory, or a URL without its password).
    fn location(&self) -> String;

    /// Create a collection; [`StoreError::AlreadyExists`] if the name is taken.
    fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<Arc<dyn VectorCollection>, StoreError>;

    /// A handle on an existing collection; [`StoreError::NotFound`] (listing the names there are)
    /// otherwise.
    fn collection(&self, name: &str) -> Result<Arc<dyn VectorCollection>, StoreError>;

    /// Delete a collection and its data; existing handles then fail with [`StoreError::Dropped`].
    fn drop_collection(&self, name: &str) -> Result<(), StoreError>;

    /// Every collection's name, sorted.
    fn names(&self) -> Result<Vec<String>, StoreError>;

    /// Every collection's summary, by name.
    /// Wait for background work (flushes, compactions) to finish: what a graceful shutdown calls
    /// last. Backends whose writes are done when acknowledged have nothing to wait for.
    fn wait_for_maintenance(&self) {}

    /// Whether collections here can keep ember's BM25 text index (the CLI gives new collections
    /// one by default where they can).
    fn keeps_text_index(&self) -> bool {
        true
    }

    fn list(&self) -> Result<Vec<CollectionInfo>, StoreError> {
        self.names()?.iter().map(|name| self.collection(name)?.info()).collect()
    }
}

/// One collection: documents (id, text, vector, JSON metadata) searched by dense similarity with
/// metadata filters applied during the search.
pub trait VectorCollection: Send + Sync + fmt::Debug {
    /// The backend holding it: `embedded`, `postgres`.
    fn backend(&self) -> &'static str;

    fn name(&self) -> &str;

    fn config(&self) -> &CollectionConfig;

    /// Insert or replace documents by id, all or nothing: a batch with an invalid document is
    /// refused whole, and a batch interrupted by a failure leaves nothing of itself behind.
    /// Repeating an upsert leaves the collection as one upsert does. Within a batch, the last
    /// document with an id wins.
    fn upsert(&self, docs: Vec<Document>) -> Result<(), StoreError>;

    /// Delete documents by id; returns how many of the ids existed.
    fn delete(&self, ids: &[&str]) -> Result<usize, StoreError>;

    /// The document stored under `id`.
    fn get(&self, id: &str) -> Result<Option<Document>, StoreError>;

    /// The `k` documents most similar to `query` among those matching `filter`, best first, with
    /// `ember_core::Similarity` scores (higher is more similar). `k` hits come back whenever `k`
    /// documents match.
    fn search(&self, query: &[f32], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>, StoreError> {
        self.search_with_effort(query, k, filter, None)
    }

    /// [`search`](Self::search) with the effort of an approximate index (HNSW's `ef`).
    fn search_with_effort(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&Filter>,
        effort: Option<usize>,
    ) -> Result<Vec<Hit>, StoreError>;

    /// Every document matching `filter` (all without one), ordered by id (byte order).
    fn scan(&self, filter: Option<&Filter>) -> Result<Vec<Document>, StoreError>;

    /// Up to `limit` documents in ascending id order (byte order) with an id strictly greater
    /// than `after` (from the first without it); an empty page after the last. Walking a
    /// collection with it (`after` = the last id of the previous page) reads every document once.
    /// The default pages through [`scan`](Self::scan): it works for any backend, but reads the
    /// whole collection for every page; backends override it with a range read that holds one
    /// page in memory (the embedded store, pgvector).
    fn scan_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<Document>, StoreError> {
        let docs = self.scan(None)?;
        let start = after.map_or(0, |after| docs.partition_point(|d| d.id.as_str() <= after));
        Ok(docs.into_iter().skip(start).take(limit).collect())
    }

    /// How many documents the collection holds.
    fn count(&self) -> Result<usize, StoreError>;

    fn info(&self) -> Result<CollectionInfo, StoreError>;

    /// The `k` best documents for `query` by BM25 over the collection's text index.
    fn search_text(&self, query: &str, k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>, StoreError> {
        let _ = (query, k, filter);
        Err(BackendError::Unsupported { backend: self.backend(), operation: "BM25 text search" }.into())
    }

    /// The `k` best documents for a learned sparse `query` (dot product).
    fn search_sparse(&self, query: &[(u32, f32)], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>, StoreError> {
        let _ = (query, k, filter);
        Err(BackendError::Unsupported { backend: self.backend(), operation: "sparse vector search" }.into())
    }

    /// The `k` best documents by MaxSim over token vectors, among `candidates` when given.
    fn search_multivector(
        &self,
        query: &[Vec<f32>],
        k: usize,
        filter: Option<&Filter>,
        candidates: Option<&[String]>,
    ) -> Result<Vec<Hit>, StoreError> {
        let _ = (query, k, filter, candidates);
        Err(BackendError::Unsupported { backend: self.backend(), operation: "multi-vector search" }.into())
    }
}

impl VectorStore for Store {
    fn wait_for_maintenance(&self) {
        Store::wait_for_maintenance(self);
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn location(&self) -> String {
        self.dir().display().to_string()
    }

    fn create_collection(&self, name: &str, config: CollectionConfig) -> Result<Arc<dyn VectorCollection>, StoreError> {
        Ok(Arc::new(Store::create_collection(self, name, config)?))
    }

    fn collection(&self, name: &str) -> Result<Arc<dyn VectorCollection>, StoreError> {
        Ok(Arc::new(Store::collection(self, name)?))
    }

    fn drop_collection(&self, name: &str) -> Result<(), StoreError> {
        Store::drop_collection(self, name)
    }

    fn names(&self) -> Result<Vec<String>, StoreError> {
        Store::names(self)
    }

    fn list(&self) -> Result<Vec<CollectionInfo>, StoreError> {
        Store::list(self)
    }
}

impl VectorCollection for Collection {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn name(&self) -> &str {
        Collection::name(self)
    }

    fn config(&self) -> &CollectionConfig {
        Collection::config(self)
    }

    fn upsert(&self, docs: Vec<Document>) -> Result<(), StoreError> {
        Collection::upsert(self, docs)
    }

    fn delete(&self, ids: &[&str]) -> Result<usize, StoreError> {
        Collection::delete(self, ids)
    }

    fn get(&self, id: &str) -> Result<Option<Document>, StoreError> {
        Collection::get(self, id)
    }

    fn search_with_effort(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&Filter>,
        effort: Option<usize>,
    ) -> Result<Vec<Hit>, StoreError> {
        Collection::search_with_effort(self, query, k, filter, effort)
    }

    fn scan(&self, filter: Option<&Filter>) -> Result<Vec<Document>, StoreError> {
        Collection::scan(self, filter)
    }

    fn scan_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<Document>, StoreError> {
        Collection::scan_page(self, after, limit)
    }

    fn count(&self) -> Result<usize, StoreError> {
        Ok(Collection::len(self))
    }

    fn info(&self) -> Result<CollectionInfo, StoreError> {
        Ok(Collection::info(self))
    }

    fn search_text(&self, query: &str, k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>, StoreError> {
        Collection::search_text(self, query, k, filter)
    }

    fn search_sparse(&self, query: &[(u32, f32)], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>, StoreError> {
        Collection::search_sparse(self, query, k, filter)
    }

    fn search_multivector(
        &self,
        query: &[Vec<f32>],
        k: usize,
        filter: Option<&Filter>,
        candidates: Option<&[String]>,
    ) -> Result<Vec<Hit>, StoreError> {
        Collection::search_multivector(self, query, k, filter, candidates)
    }
}

/// Whether TLS is used to reach PostgreSQL (libpq's `sslmode`, the values this build supports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, else plain (libpq's default).
    #[default]
    Prefer,
    /// TLS or no connection. The server's certificate is checked against the system's roots
    /// (stricter than libpq's `require`, which checks nothing).
    Require,
}

/// How to reach a PostgreSQL + pgvector server: the URL as typed (it may hold a password, so it is
/// never printed; see [`PgConnectOptions::redacted_url`]) and ember's own settings taken out of
/// its query string.
#[derive(Clone, PartialEq, Eq)]
pub struct PgConnectOptions {
    /// `postgres://user:password@host:port/db?…` without ember's own parameters.
    pub url: String,
    pub ssl_mode: SslMode,
    /// Connections kept open (`pool_size=`, default 8).
    pub pool_size: usize,
    /// Tries of an operation that is safe to repeat, when the server is unreachable or drops the
    /// connection (`retries=`, default 3 retries after the first try).
    pub retries: u32,
    /// Seconds to wait for a connection (`connect_timeout=`, default 10).
    pub connect_timeout_s: u64,
}

impl fmt::Debug for PgConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConnectOptions")
            .field("url", &self.redacted_url())
            .field("ssl_mode", &self.ssl_mode)
            .field("pool_size", &self.pool_size)
            .field("retries", &self.retries)
            .field("connect_timeout_s", &self.connect_timeout_s)
            .finish()
    }
}

impl PgConnectOptions {
    /// Parse `postgres://` / `postgresql://` URLs. Query parameters ember reads: `sslmode`
    /// (`disable`, `prefer`, `require`), `pool_size`, `retries`, `connect_timeout`; every other
    /// one is passed to the driver (`application_name`, `options`, …).
    pub fn parse(location: &str) -> Result<PgConnectOptions, BackendError> {
        let invalid = |reason: String| BackendError::InvalidLocation { location: redact(location), reason };
        let rest = location
            .strip_prefix("postgres://")
            .or_else(|| location.strip_prefix("postgresql://"))
            .ok_or_else(|| invalid("a PostgreSQL location starts with postgres:// or postgresql://".into()))?;
        let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = base.split('/').next().unwrap_or("");
        let host_part = authority.rsplit('@').next().unwrap_or("");
        if host_part.is_empty() && !query.contains("host=") {
            return Err(invalid("no host (postgres://user@host:port/database)".into()));
        }
        let mut options = PgConnectOptions {
            url: String::new(),
            ssl_mode: SslMode::Prefer,
            pool_size: 8,
            retries: 3,
            connect_timeout_s: 10,
        };
        let mut passed = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let number = |what: &str, min: u64| -> Result<u64, BackendError> {
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n >= min)
                    .ok_or_else(|| invalid(format!("{what}={value:?} is not a whole number >= {min}")))
            };
            match key {
                "sslmode" => {
                    options.ssl_mode = match value {
                        "disable" => SslMode::Disable,
                        "prefer" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        other => {
                            return Err(invalid(format!(
                                "sslmode={other:?} is not supported (use disable, prefer or require)"
                            )))
                        }
                    };
                }
                "pool_size" => options.pool_size = number("pool_size", 1)? as usize,
                "retries" => options.retries = number("retries", 0)?.min(100) as u32,
                "connect_timeout" => options.connect_timeout_s = number("connect_timeout", 1)?,
                _ => passed.push(pair),
            }
        }
        options.url = if passed.is_empty() {
            location.split('?').next().unwrap_or("").to_string()
        } else {
            format!("{}?{}", location.split('?').next().unwrap_or(""), passed.join("&"))
        };
        Ok(options)
    }

    /// The URL with any password replaced by `***`, for messages.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

/// `scheme://user:secret@host/…` → `scheme://user:***@host/…`; also hides a `password=` or
/// `token=` parameter.
pub(crate) fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let (base, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match base.find('/') {
        Some(i) => (&base[..i], &base[i..]),
        None => (base, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let query = query.map(|q| {
        q.split('&')
            .map(|p| {
                if p.starts_with("password=") {
                    "password=***".to_string()
                } else if p.starts_with("token=") {
                    "token=***".to_string()
                } else {
                    p.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    let mut out = String::new();
    if let Some(s) = scheme {
        out.push_str(s);
        out.push_str("://");
    }
    out.push_str(&authority);
    out.push_str(path);
    if let Some(q) = query {
        out.push('?');
        out.push_str(&q);
    }
    out
}

/// How to reach a Milvus server: the endpoint, the database, the credentials (never printed; see
/// [`MilvusConnectOptions::redacted_url`]) and ember's own settings.
#[derive(Clone, PartialEq, Eq)]
pub struct MilvusConnectOptions {
    /// `host:port` (port 19530 when not given).
    pub address: String,
    /// Whether the gRPC channel uses TLS (`milvus+https://…` or `?tls=true`).
    pub tls: bool,
    /// The Milvus database (`milvus://host:port/db`); the server's default one when `None`.
    pub database: Option<String>,
    /// `user:password` from the URL, or a `token=` (an API key), sent as Milvus's auth token.
    pub token: Option<String>,
    /// Retries of an operation that is safe to repeat when the server is unreachable or drops
    /// the connection (`retries=`, default 3 retries after the first try).
    pub retries: u32,
    /// Seconds to wait for the server when connecting (`connect_timeout=`, default 10).
    pub connect_timeout_s: u64,
    /// Seconds one request may take (`timeout=`, default 60).
    pub timeout_s: u64,
    user: Option<String>,
}

impl fmt::Debug for MilvusConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MilvusConnectOptions")
            .field("url", &self.redacted_url())
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("retries", &self.retries)
            .field("connect_timeout_s", &self.connect_timeout_s)
            .field("timeout_s", &self.timeout_s)
            .finish()
    }
}

impl MilvusConnectOptions {
    /// Parse `milvus://[user:password@]host[:port][/database][?…]` (`milvus+https://` for TLS).
    /// Query parameters: `tls` (`true`/`false`), `token` (an API key, instead of
    /// `user:password`), `retries`, `connect_timeout`, `timeout` (seconds).
    pub fn parse(location: &str) -> Result<MilvusConnectOptions, BackendError> {
        let invalid = |reason: String| BackendError::InvalidLocation { location: redact(location), reason };
        let (tls, rest) = if let Some(rest) = location.strip_prefix("milvus+https://") {
            (true, rest)
        } else if let Some(rest) = location.strip_prefix("milvus://") {
            (false, rest)
        } else {
            return Err(invalid("a Milvus location starts with milvus:// or milvus+https://".into()));
        };
        let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = base.split_once('/').unwrap_or((base, ""));
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() || host.starts_with(':') {
            return Err(invalid("no host (milvus://host:19530)".into()));
        }
        let address = match host.rsplit_once(':') {
            Some((_, port)) if !host.ends_with(']') => {
                if port.parse::<u16>().map_or(true, |p| p == 0) {
                    return Err(invalid(format!("port {port:?} is not a number from 1 to 65535")));
                }
                host.to_string()
            }
            _ => format!("{host}:19530"),
        };
        let database = path.trim_end_matches('/');
        if database.contains('/') {
            return Err(invalid(format!("{database:?} is not a database name (milvus://host:port/database)")));
        }
        let (user, token) = match userinfo {
            Some(u) if u.contains(':') => (u.split(':').next().map(str::to_string), Some(u.to_string())),
            Some(u) if !u.is_empty() => {
                return Err(invalid(format!("user {u:?} has no password (milvus://user:password@host:port)")))
            }
            _ => (None, None),
        };
        let mut options = MilvusConnectOptions {
            address,
            tls,
            database: (!database.is_empty()).then(|| database.to_string()),
            token,
            retries: 3,
            connect_timeout_s: 10,
            timeout_s: 60,
            user,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let number = |what: &str, min: u64| -> Result<u64, BackendError> {
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n >= min)
                    .ok_or_else(|| invalid(format!("{what}={value:?} is not a whole number >= {min}")))
            };
            match key {
                "tls" => {
                    options.tls = match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => return Err(invalid(format!("tls={other:?} is not true or false"))),
                    }
                }
                "token" if !value.is_empty() => {
                    if options.token.is_some() {
                        return Err(invalid("give user:password or token=, not both".into()));
                    }
                    options.token = Some(value.to_string());
                }
                "retries" => options.retries = number("retries", 0)?.min(100) as u32,
                "connect_timeout" => options.connect_timeout_s = number("connect_timeout", 1)?,
                "timeout" => options.timeout_s = number("timeout", 1)?,
                other => {
                    return Err(invalid(format!(
                        "unknown parameter {other:?} (known: tls, token, retries, connect_timeout, timeout)"
                    )))
                }
            }
        }
        Ok(options)
    }

    /// The endpoint the SDK connects to: `http://host:port` or `https://host:port`.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.address)
    }

    /// The location without credentials, for messages: `milvus://user:***@host:port/db`.
    pub fn redacted_url(&self) -> String {
        let scheme = if self.tls { "milvus+https" } else { "milvus" };
        let auth = match (&self.user, &self.token) {
            (Some(user), _) => format!("{user}:***@"),
            (None, Some(_)) => "***@".to_string(),
            (None, None) => String::new(),
        };
        let db = self.database.as_deref().map(|d| format!("/{d}")).unwrap_or_default();
        format!("{scheme}://{auth}{}{db}", self.address)
    }
}

/// Where collections live, as a user names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded store in a data directory.
    Embedded(PathBuf),
    /// PostgreSQL + pgvector (`postgres://…`).
    Postgres(PgConnectOptions),
    /// A Milvus server (`milvus://…`, `milvus+https://…`).
    Milvus(MilvusConnectOptions),
}

impl StoreLocation {
    /// `postgres://…` / `postgresql://…` is PostgreSQL; `milvus://…` / `milvus+https://…` is
    /// Milvus; `file://DIR` or a path is the embedded store; another `scheme://` is refused,
    /// naming the schemes ember knows.
    pub fn parse(location: &str) -> Result<StoreLocation, BackendError> {
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            return Ok(StoreLocation::Postgres(PgConnectOptions::parse(location)?));
        }
        if location.starts_with("milvus://") || location.starts_with("milvus+https://") {
            return Ok(StoreLocation::Milvus(MilvusConnectOptions::parse(location)?));
        }
        if let Some(path) = location.strip_prefix("file://") {
            return Ok(StoreLocation::Embedded(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = location.split_once("://") {
            return Err(BackendError::InvalidLocation {
                location: redact(location),
                reason: format!(
                    "unknown store scheme '{scheme}://' (known: postgres://, postgresql://, milvus://, milvus+https://, \
                     file://, or a directory)"
                ),
            });
        }
        if location.is_empty() {
            return Err(BackendError::InvalidLocation {
                location: String::new(),
                reason: "empty (give a directory or a postgres:// URL)".into(),
            });
        }
        Ok(StoreLocation::Embedded(PathBuf::from(location)))
    }
}

/// Open the store at `location`: the embedded store (with `options`), a PostgreSQL server
/// (connects, creates ember's catalog table when missing and checks its version) or a Milvus
/// server (connects and checks that it answers).
pub fn open_store(location: &StoreLocation, options: StoreOptions) -> Result<Arc<dyn VectorStore>, StoreError> {
    match location {
        StoreLocation::Embedded(dir) => Ok(Arc::new(Store::open_with(dir, options)?)),
        StoreLocation::Postgres(pg) => open_postgres(pg),
        StoreLocation::Milvus(milvus) => open_milvus(milvus),
    }
}

#[cfg(feature = "milvus")]
fn open_milvus(options: &MilvusConnectOptions) -> Result<Arc<dyn VectorStore>, StoreError> {
    Ok(Arc::new(crate::milvus::MilvusStore::connect(options)?))
}

#[cfg(not(feature = "milvus"))]
fn open_milvus(_: &MilvusConnectOptions) -> Result<Arc<dyn VectorStore>, StoreError> {
    Err(BackendError::NotEnabled { backend: "milvus", feature: "milvus" }.into())
}

#[cfg(feature = "postgres")]
fn open_postgres(pg: &PgConnectOptions) -> Result<Arc<dyn VectorStore>, StoreError> {
    Ok(Arc::new(crate::pgvector::PgVectorStore::connect(pg)?))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(_: &PgConnectOptions) -> Result<Arc<dyn VectorStore>, StoreError> {
    Err(BackendError::NotEnabled { backend: "postgres", feature: "postgres" }.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(StoreLocation::parse("./data").unwrap(), StoreLocation::Embedded("./data".into()));
        assert_eq!(StoreLocation::parse("file:///tmp/x").unwrap(), StoreLocation::Embedded("/tmp/x".into()));
        let StoreLocation::Postgres(pg) =
            StoreLocation::parse("postgres://ann:s3cret@db:5433/kb?sslmode=require&pool_size=4&application_name=x")
                .unwrap()
        else {
            panic!("not postgres")
        };
        assert_eq!(pg.ssl_mode, SslMode::Require);
        assert_eq!(pg.pool_size, 4);
        assert_eq!(pg.retries, 3);
        assert_eq!(pg.url, "postgres://ann:s3cret@db:5433/kb?application_name=x");
        assert_eq!(pg.redacted_url(), "postgres://ann:***@db:5433/kb?application_name=x");
        assert!(!format!("{pg:?}").contains("s3cret"));
        let pg = PgConnectOptions::parse("postgresql://u@h/d").unwrap();
        assert_eq!((pg.ssl_mode, pg.pool_size, pg.url.as_str()), (SslMode::Prefer, 8, "postgresql://u@h/d"));
    }

    #[test]
    fn bad_locations_say_what_is_wrong_without_the_password() {
        for (location, needle) in [
            ("qdrant://host:6334", "unknown store scheme 'qdrant://'"),
            ("milvus://", "no host"),
            ("milvus://u:pw@h:0", "port \"0\" is not a number"),
            ("milvus://u:pw@h:1/a/b", "is not a database name"),
            ("milvus://u:pw@h?tls=maybe", "tls=\"maybe\""),
            ("milvus://u:pw@h?retries=-1", "retries=\"-1\""),
            ("milvus://u:pw@h?sslmode=require", "unknown parameter \"sslmode\""),
            ("milvus://u:pw@h?token=x", "not both"),
            ("milvus://ann@h", "has no password"),
            ("", "empty"),
            ("postgres://u:pw@h/d?sslmode=verify-full", "sslmode=\"verify-full\" is not supported"),
            ("postgres://u:pw@h/d?pool_size=0", "pool_size=\"0\" is not a whole number >= 1"),
            ("postgres://u:pw@h/d?retries=x", "retries=\"x\""),
            ("postgres:///d", "no host"),
        ] {
            let err = StoreLocation::parse(location).expect_err(location).to_string();
            assert!(err.contains(needle), "{location}: {err}");
            assert!(!err.contains(":pw@"), "{location}: the password leaked: {err}");
        }
        assert_eq!(redact("postgres://u:pw@h/d?password=x&a=b"), "postgres://u:***@h/d?password=***&a=b");
        assert_eq!(redact("postgres://u@h"), "postgres://u@h");
    }

    #[test]
    fn milvus_locations_parse_and_never_print_credentials() {
        let StoreLocation::Milvus(m) =
            StoreLocation::parse("milvus://ann:s3cret@db.example:19531/kb?retries=1").unwrap()
        else {
            panic!("not milvus")
        };
        assert_eq!(m.address, "db.example:19531");
        assert_eq!(m.endpoint(), "http://db.example:19531");
        assert_eq!(m.database.as_deref(), Some("kb"));
        assert_eq!(m.token.as_deref(), Some("ann:s3cret"));
        assert_eq!((m.retries, m.connect_timeout_s, m.timeout_s), (1, 10, 60));
        assert_eq!(m.redacted_url(), "milvus://ann:***@db.example:19531/kb");
        assert!(!format!("{m:?}").contains("s3cret"));
        let m = MilvusConnectOptions::parse("milvus://127.0.0.1").unwrap();
        assert_eq!(
            (m.address.as_str(), m.tls, m.database.clone(), m.token.clone()),
            ("127.0.0.1:19530", false, None, None)
        );
        let m = MilvusConnectOptions::parse("milvus+https://in01.zillizcloud.com:443?token=abc&timeout=5").unwrap();
        assert_eq!((m.endpoint().as_str(), m.timeout_s), ("https://in01.zillizcloud.com:443", 5));
        assert_eq!(m.redacted_url(), "milvus+https://***@in01.zillizcloud.com:443");
        assert!(!format!("{m:?}").contains("abc"));
        let m = MilvusConnectOptions::parse("milvus://h:1?tls=true").unwrap();
        assert_eq!(m.endpoint(), "https://h:1");
    }

    #[cfg(not(feature = "milvus"))]
    #[test]
    fn milvus_without_the_feature_is_a_clear_error() {
        let location = StoreLocation::parse("milvus://127.0.0.1:1").unwrap();
        let err = open_store(&location, StoreOptions::default()).unwrap_err().to_string();
        assert_eq!(err, "milvus is not enabled in this build (rebuild ember with the `milvus` cargo feature)");
    }

    #[cfg(not(feature = "postgres"))]
    #[test]
    fn postgres_without_the_feature_is_a_clear_error() {
        let location = StoreLocation::parse("postgres://u@127.0.0.1:1/d").unwrap();
        let err = open_store(&location, StoreOptions::default()).unwrap_err().to_string();
        assert_eq!(err, "postgres is not enabled in this build (rebuild ember with the `postgres` cargo feature)");
    }
}
