//! Talking to PostgreSQL through the pool: one attempt's failure, which operations may be
//! retried, and the retry loop with backoff around an operation.

use super::*;

/// A failure inside one attempt of an operation.
pub(super) enum Failure {
    Pg(postgres::Error),
    Store(StoreError),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Failure::Pg(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// Safe to run again after any connection failure (reads; upserts, whose transaction either
    /// committed whole or not at all, and whose repetition changes nothing).
    Idempotent,
    /// Retried only when the server was never reached (a connection that could not be opened, or
    /// a pooled one found dead before the operation was sent).
    BeforeSending,
}

/// Whether the connection (not the statement) failed: the server is gone, restarting or
/// terminated this session.
pub(super) fn is_connection_error(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let code = code.code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

pub(super) fn db_error(url: &str, operation: &str, e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    BackendError::Database { url: url.to_string(), operation: operation.to_string(), source: Box::new(e) }.into()
}

impl Shared {
    /// Run `f` on a pooled connection, retrying connection failures as `retry` allows, with
    /// exponential backoff (50 ms, 100 ms, … up to 2 s).
    pub(super) fn run<T>(
        &self,
        operation: &str,
        retry: Retry,
        mut f: impl FnMut(&mut Client) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let mut attempt: u32 = 0;
        let mut dead_pooled = 0;
        let unavailable = |attempts: u32, source: Box<dyn std::error::Error + Send + Sync>| -> StoreError {
            BackendError::Unavailable { url: self.url.clone(), operation: operation.to_string(), attempts, source }
                .into()
        };
        loop {
            attempt += 1;
            let may_retry = attempt <= self.retries;
            let backoff = Duration::from_millis(50u64 << (attempt - 1).min(5)).min(Duration::from_secs(2));
            let mut conn = match self.pool.get() {
                Ok(conn) => conn,
                Err(GetError::Connect(e)) if is_connection_error(&e) || e.as_db_error().is_none() => {
                    if may_retry {
                        std::thread::sleep(backoff);
                        continue;
                    }
                    return Err(unavailable(attempt, Box::new(e)));
                }
                Err(GetError::Connect(e)) => return Err(db_error(&self.url, operation, e)),
                Err(GetError::Timeout(wait)) => {
                    return Err(unavailable(
                        attempt,
                        format!("no pooled connection became free within {} s", wait.as_secs()).into(),
                    ))
                }
            };
            if retry == Retry::BeforeSending && conn.reused && conn.client().is_valid(Duration::from_secs(5)).is_err() {
                // Dead since its last use (the server restarted, or ended the session): nothing
                // was sent, so this does not count as a try.
                conn.discard();
                self.pool.clear_idle();
                attempt -= 1;
                dead_pooled += 1;
                if dead_pooled > 3 {
                    return Err(unavailable(attempt.max(1), "pooled connections keep dying".into()));
                }
                continue;
            }
            match f(conn.client()) {
                Ok(v) => return Ok(v),
                Err(Failure::Store(e)) => return Err(e),
                Err(Failure::Pg(e)) if is_connection_error(&e) => {
                    conn.discard();
                    self.pool.clear_idle();
                    if retry == Retry::Idempotent && may_retry {
                        std::thread::sleep(backoff);
                        continue;
                    }
                    return Err(unavailable(attempt, Box::new(e)));
                }
                Err(Failure::Pg(e)) => return Err(db_error(&self.url, operation, e)),
            }
        }
    }
}
