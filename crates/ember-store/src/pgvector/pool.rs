//! A small blocking connection pool: up to `size` open connections, handed out one caller at a
//! time and returned on drop unless the connection broke. (r2d2 would do; this is 80 lines and
//! lets the store tell "could not connect" from "the query failed" for its retry policy.)

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::vector_store::SslMode;

#[derive(Clone)]
pub(crate) enum Tls {
    None,
    Rustls(MakeRustlsConnect),
}

impl Tls {
    pub(crate) fn for_mode(mode: SslMode) -> Tls {
        match mode {
            SslMode::Disable => Tls::None,
            SslMode::Prefer | SslMode::Require => {
                let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
                let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
                match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
                    Ok(builder) => {
                        Tls::Rustls(MakeRustlsConnect::new(builder.with_root_certificates(roots).with_no_client_auth()))
                    }
                    // ring always offers TLS 1.2 and 1.3; without them, connect in plain text only
                    // (`require` then fails to connect, as it must).
                    Err(_) => Tls::None,
                }
            }
        }
    }
}

pub(crate) struct Pool {
    config: Config,
    tls: Tls,
    size: usize,
    wait: Duration,
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    idle: Vec<Client>,
    open: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("size", &self.size).finish()
    }
}

/// A connection on loan; back to the pool on drop unless it was closed.
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    client: Option<Client>,
    /// Whether it came from the idle list (it may have died since it was used).
    pub reused: bool,
}

/// Why no connection was handed out.
#[derive(Debug)]
pub(crate) enum GetError {
    Connect(postgres::Error),
    Timeout(Duration),
}

impl Pool {
    pub(crate) fn new(config: Config, tls: Tls, size: usize, wait: Duration) -> Pool {
        Pool {
            config,
            tls,
            size: size.max(1),
            wait,
            state: Mutex::new(PoolState { idle: Vec::new(), open: 0 }),
            returned: Condvar::new(),
        }
    }

    pub(crate) fn get(&self) -> Result<Pooled<'_>, GetError> {
        let deadline = Instant::now() + self.wait;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            while let Some(client) = state.idle.pop() {
                if client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok(Pooled { pool: self, client: Some(client), reused: true });
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                let connected = match &self.tls {
                    Tls::None => self.config.connect(NoTls),
                    Tls::Rustls(tls) => self.config.connect(tls.clone()),
                };
                return match connected {
                    Ok(client) => Ok(Pooled { pool: self, client: Some(client), reused: false }),
                    Err(e) => {
                        self.state.lock().unwrap_or_else(PoisonError::into_inner).open -= 1;
                        self.returned.notify_one();
                        Err(GetError::Connect(e))
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(GetError::Timeout(self.wait));
            }
            state = self.returned.wait_timeout(state, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// Close every idle connection (after the server went away, they are all dead).
    pub(crate) fn clear_idle(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let n = state.idle.len();
        state.idle.clear();
        state.open -= n;
    }
}

impl Pooled<'_> {
    pub(crate) fn client(&mut self) -> &mut Client {
        // Present until drop.
        self.client.as_mut().expect("a pooled connection is present until it is dropped")
    }

    /// Drop the connection instead of returning it.
    pub(crate) fn discard(mut self) {
        self.client = None;
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let mut state = self.pool.state.lock().unwrap_or_else(PoisonError::into_inner);
        match self.client.take() {
            Some(client) if !client.is_closed() => state.idle.push(client),
            _ => state.open -= 1,
        }
        drop(state);
        self.pool.returned.notify_one();
    }
}
