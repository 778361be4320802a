//! Talking to Milvus: the client and the small tokio runtime it runs on, which failures are the
//! connection's (and may be retried), and the retry loop with backoff around an operation.

use std::future::Future;
use std::time::Duration;

use base64::Engine;
use milvus::proto::milvus::milvus_service_client::MilvusServiceClient;
use milvus::proto::milvus::ShowCollectionsRequest;
use milvus::v2::error::Error as MilvusError;
use milvus::v2::prelude::{ClientV2, ConnectConfig, RetryConfig, TelemetryConfig};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::error::StoreError;
use crate::vector_store::{BackendError, MilvusConnectOptions};

/// Which operations may be run again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// Safe to repeat after any connection failure: reads, upserts (one request, applied whole
    /// or not at all, whose repetition changes nothing) and deletes by id (their count is read
    /// before they are sent).
    Idempotent,
    /// Repeated only when the request never reached the server (the connection was refused).
    BeforeSending,
}

/// The client, the runtime that drives it, and what messages need.
pub(super) struct Connection {
    runtime: tokio::runtime::Runtime,
    client: ClientV2,
    /// The protocol's own client, for `ShowCollections`: the SDK's `list_collections` refuses a
    /// response without collection ids, which milvus-lite sends.
    raw: MilvusServiceClient<Channel>,
    /// `authorization` metadata for `raw` (base64 of the token, as the SDK sends it).
    authorization: Option<String>,
    database: Option<String>,
    /// The server's location without credentials.
    pub(super) url: String,
    retries: u32,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("url", &self.url).field("retries", &self.retries).finish()
    }
}

/// Whether `e` is the connection's failure (unreachable server, reset stream, timeout) rather
/// than the server refusing the request.
pub(super) fn is_connection_error(e: &MilvusError) -> bool {
    match e {
        MilvusError::Grpc(status) => matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled | tonic::Code::Unknown
        ),
        MilvusError::Timeout(_) | MilvusError::Cancelled(_) => true,
        MilvusError::RetryExhausted { source, .. } => is_connection_error(source),
        _ => false,
    }
}

/// Whether the request surely never reached the server (nothing listened, or the connection
/// could not be made), so even a non-idempotent request may be sent again.
fn never_sent(e: &MilvusError) -> bool {
    match e {
        MilvusError::Grpc(status) => {
            let message = format!("{status:?}").to_lowercase();
            status.code() == tonic::Code::Unavailable
                && (message.contains("connection refused") || message.contains("connect error"))
        }
        MilvusError::Timeout(message) => message.to_lowercase().contains("connect"),
        MilvusError::RetryExhausted { source, .. } => never_sent(source),
        _ => false,
    }
}

impl Connection {
    /// Connect to the server (retrying an unreachable one as `options.retries` allows).
    pub(super) fn connect(options: &MilvusConnectOptions) -> Result<Connection, StoreError> {
        let url = options.redacted_url();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ember-milvus")
            .enable_all()
            .build()
            .map_err(|e| BackendError::Database {
                url: url.clone(),
                operation: "start the Milvus client's runtime".into(),
                source: Box::new(e),
            })?;
        let mut config = ConnectConfig::new()
            .uri(options.endpoint())
            .connect_timeout(Duration::from_secs(options.connect_timeout_s))
            .rpc_timeout(Duration::from_secs(options.timeout_s))
            // ember retries, by its own rules (which operations are safe to repeat); the SDK's
            // default is 75 attempts per call.
            .retry(RetryConfig::new().max_attempts(1))
            .telemetry(TelemetryConfig::new().enabled(false));
        if let Some(token) = &options.token {
            config = config.token(token.clone());
        }
        if let Some(database) = &options.database {
            config = config.database(database.clone());
        }
        if options.tls {
            config = config.secure(true);
        }
        let mut attempt: u32 = 0;
        let client = loop {
            attempt += 1;
            match runtime.block_on(ClientV2::new(&config)) {
                Ok(client) => break client,
                Err(e) if attempt <= options.retries && (is_connection_error(&e) || is_unreachable(&e)) => {
                    std::thread::sleep(backoff(attempt));
                }
                Err(e) if is_connection_error(&e) || is_unreachable(&e) => {
                    return Err(BackendError::Unavailable {
                        url,
                        operation: "connect".into(),
                        attempts: attempt,
                        source: Box::new(e),
                    }
                    .into())
                }
                Err(e) => {
                    return Err(BackendError::Database { url, operation: "connect".into(), source: Box::new(e) }.into())
                }
            }
        };
        let invalid = |reason: String| BackendError::InvalidLocation { location: url.clone(), reason };
        let mut endpoint = Endpoint::from_shared(options.endpoint())
            .map_err(|e| invalid(format!("not a gRPC endpoint: {e}")))?
            .connect_timeout(Duration::from_secs(options.connect_timeout_s))
            .timeout(Duration::from_secs(options.timeout_s));
        if options.tls {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| invalid(format!("TLS setup failed: {e}")))?;
        }
        let raw = runtime.block_on(async { MilvusServiceClient::new(endpoint.connect_lazy()) });
        let authorization = options.token.as_ref().map(|t| base64::engine::general_purpose::STANDARD.encode(t));
        Ok(Connection {
            runtime,
            client,
            raw,
            authorization,
            database: options.database.clone(),
            url,
            retries: options.retries,
        })
    }

    /// Every collection's name in the database (`ShowCollections`).
    pub(super) fn collection_names(&self, operation: &str) -> Result<Vec<String>, StoreError> {
        self.run(operation, Retry::Idempotent, |_| {
            let mut raw = self.raw.clone();
            let mut request = tonic::Request::new(ShowCollectionsRequest {
                db_name: self.database.clone().unwrap_or_default(),
                ..Default::default()
            });
            let authorization = self.authorization.as_ref().and_then(|a| a.parse().ok());
            if let Some(value) = authorization {
                request.metadata_mut().insert("authorization", value);
            }
            if let Some(db) = self.database.as_ref().and_then(|d| d.parse().ok()) {
                request.metadata_mut().insert("dbname", db);
            }
            async move {
                let response = raw.show_collections(request).await?.into_inner();
                match response.status {
                    Some(status) if status.code != 0 => Err(MilvusError::Unexpected(format!(
                        "ShowCollections failed (code {}): {}",
                        status.code, status.reason
                    ))),
                    _ => Ok(response.collection_names),
                }
            }
        })
    }

    /// Run one request, retrying connection failures as `retry` allows with exponential backoff
    /// (50 ms, 100 ms, … up to 2 s). Errors name the server and `operation`.
    pub(super) fn run<T, F, Fut>(&self, operation: &str, retry: Retry, mut f: F) -> Result<T, StoreError>
    where
        F: FnMut(ClientV2) -> Fut,
        Fut: Future<Output = Result<T, MilvusError>>,
    {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            match self.runtime.block_on(f(self.client.clone())) {
                Ok(v) => return Ok(v),
                Err(e) if is_connection_error(&e) => {
                    let may_retry = attempt <= self.retries && (retry == Retry::Idempotent || never_sent(&e));
                    if may_retry {
                        std::thread::sleep(backoff(attempt));
                        continue;
                    }
                    return Err(BackendError::Unavailable {
                        url: self.url.clone(),
                        operation: operation.to_string(),
                        attempts: attempt,
                        source: Box::new(e),
                    }
                    .into());
                }
                Err(e) => return Err(self.database_error(operation, e)),
            }
        }
    }

    pub(super) fn database_error(&self, operation: &str, e: MilvusError) -> StoreError {
        BackendError::Database { url: self.url.clone(), operation: operation.to_string(), source: Box::new(e) }.into()
    }
}

/// A connect that gave up waiting for the server (the SDK reports it as a validation or
/// unexpected error, not a gRPC status).
fn is_unreachable(e: &MilvusError) -> bool {
    let message = e.to_string().to_lowercase();
    ["connect", "unavailable", "timed out", "transport"].iter().any(|m| message.contains(m))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64 << (attempt.saturating_sub(1)).min(5)).min(Duration::from_secs(2))
}
