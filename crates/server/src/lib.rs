//! siemgate's HTTP side: the identity provider, the SIEM API, the portal
//! pages and the operator's endpoints (health, readiness, metrics, OpenAPI),
//! on one router.
//!
//! [`serve`] takes an already bound listener (plain or [`tls`]) and a shutdown signal, so tests
//! start a real server on port 0 and stop it cleanly.

pub mod api;
pub mod bearer;
mod html;
pub mod identity;
pub mod keyring;
pub mod metrics;
mod observe;
mod openapi;
pub mod portal;
mod rate_limit;
mod throttle;
pub mod tls;

use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use siemgate_identity::Verifier;
use siemgate_model::{Span, Timestamp};
use siemgate_store::Store;

pub use keyring::{Keyring, KeyringError};

/// The resources the SIEM API accepts tokens for: Azure AD Graph, which the
/// reference page uses, and the API's own older resource.
pub const DEFAULT_AUDIENCES: [&str; 2] =
    ["https://graph.windows.net", "https://WDATPAlertExport.Seville.onmicrosoft.com"];

/// How the server presents itself.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The URL clients reach the server at, without a trailing slash; every
    /// link and discovery document is built from it.
    pub public_url: String,
    /// Audiences tokens may be issued for and are accepted with.
    pub audiences: Vec<String>,
    /// How long an access token lives.
    pub token_lifetime_seconds: i64,
    /// The largest `POST /api/detections` body taken.
    pub ingest_limit_bytes: usize,
    /// Requests a second each app may make to the SIEM API; `None` for no limit.
    pub rate_limit_per_app: Option<f64>,
}

impl ServerConfig {
    pub fn new(public_url: &str) -> ServerConfig {
        ServerConfig {
            public_url: public_url.trim_end_matches('/').to_owned(),
            audiences: DEFAULT_AUDIENCES.iter().map(|a| a.to_string()).collect(),
            token_lifetime_seconds: 3599,
            ingest_limit_bytes: api::DEFAULT_INGEST_LIMIT,
            rate_limit_per_app: None,
        }
    }

    /// How long a retired key stays published: as long as its last token
    /// (and the clock skew allowed with it) can still be valid.
    pub fn key_lifetime(&self) -> Span {
        Span::from_seconds(self.token_lifetime_seconds + CLOCK_SKEW_SECONDS)
    }
}

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn Store>,
    keyring: Keyring,
    verifier: RwLock<Verifier>,
    config: ServerConfig,
    failures: throttle::Failures,
    metrics: metrics::Metrics,
    tenants: bearer::TenantCache,
    rate_limit: Option<rate_limit::RateLimit>,
    /// `/openapi.json`, rendered once.
    openapi: bytes::Bytes,
    /// The second in which a token naming an unknown key last made this
    /// server read its keys again.
    unknown_key_read: AtomicI64,
}

/// How far the clocks of this server and of the servers sharing its store
/// may disagree when a token's times are checked.
const CLOCK_SKEW_SECONDS: i64 = 60;

impl AppState {
    pub fn new(store: Arc<dyn Store>, keyring: Keyring, config: ServerConfig) -> AppState {
        let failures = throttle::Failures::default();
        let verifier = RwLock::new(Verifier::new(
            keyring.published(),
            config.audiences.clone(),
            &config.public_url,
            CLOCK_SKEW_SECONDS,
        ));
        let rate_limit = config.rate_limit_per_app.map(rate_limit::RateLimit::new);
        let openapi = serde_json::to_vec_pretty(&openapi::document(&config.public_url))
            .unwrap_or_default()
            .into();
        let shared = Shared {
            store,
            keyring,
            verifier,
            config,
            failures,
            metrics: metrics::Metrics::default(),
            tenants: bearer::TenantCache::default(),
            rate_limit,
            openapi,
            unknown_key_read: AtomicI64::new(0),
        };
        AppState { inner: Arc::new(shared) }
    }

    /// Reads the signing keys from the store again and verifies with the
    /// keys published now. True when they changed.
    pub async fn refresh_keys(&self) -> Result<bool, KeyringError> {
        let changed =
            self.keyring().reload(self.store(), now(), self.config().key_lifetime()).await?;
        if changed {
            let published = self.keyring().published();
            self.inner.verifier.write().unwrap_or_else(PoisonError::into_inner).set_keys(published);
        }
        Ok(changed)
    }

    /// Reads the keys again because a token named a key not loaded here,
    /// most likely one just made by another server sharing the store, so
    /// that its tokens verify here at once rather than at the next periodic
    /// read. At most once a second, so that tokens naming made-up keys cannot
    /// turn every request into a store read; true when the keys were read.
    pub(crate) async fn read_keys_for_unknown_kid(&self) -> bool {
        let second = now().unix_seconds();
        let last = self.inner.unknown_key_read.load(Ordering::Relaxed);
        let turn = second > last
            && self
                .inner
                .unknown_key_read
                .compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if !turn {
            return false;
        }
        if let Err(e) = self.refresh_keys().await {
            tracing::warn!(error = %e, "reading the signing keys failed");
        }
        true
    }

    fn verifier(&self) -> std::sync::RwLockReadGuard<'_, Verifier> {
        self.inner.verifier.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn store(&self) -> &dyn Store {
        &*self.inner.store
    }

    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    fn failures(&self) -> &throttle::Failures {
        &self.inner.failures
    }

    /// This process's counters, as `/metrics` reports them.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// Takes one request from `client`'s allowance; the wait when it is spent.
    fn rate_limited(&self, client: &str) -> Option<std::time::Duration> {
        let limit = self.inner.rate_limit.as_ref()?;
        limit.take(client, std::time::Instant::now()).err()
    }
}

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .merge(identity::routes())
        .merge(portal::routes())
        .fallback(api::fallback)
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe::observe))
        .with_state(state)
}

/// `ready` while the store answers; a load balancer sends no traffic otherwise.
async fn ready(state: axum::extract::State<AppState>) -> impl IntoResponse {
    match state.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::error!(error = %e, "the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "the store does not answer")
        }
    }
}

async fn metrics(state: axum::extract::State<AppState>) -> impl IntoResponse {
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], state.metrics().render())
}

async fn openapi(state: axum::extract::State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], state.inner.openapi.clone())
}

/// Serves `state` on `listener` (a [`tokio::net::TcpListener`] for plain HTTP, a
/// [`tls::TlsListener`] for HTTPS) until `shutdown` completes, then lets the
/// requests in flight finish.
pub async fn serve<L>(
    listener: L,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
    L::Io: NoDelay,
{
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|io| io.no_delay());
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// A connection whose small writes go out at once. An API answer is a few
/// kilobytes written as the store streams them; with Nagle's algorithm on,
/// the last piece waits for the client's delayed acknowledgement, some
/// 40 ms on Linux, which measured as the whole latency of `limit=20`.
pub trait NoDelay {
    fn no_delay(&mut self);
}

impl NoDelay for tokio::net::TcpStream {
    fn no_delay(&mut self) {
        if let Err(e) = self.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY could not be set");
        }
    }
}

impl NoDelay for tokio_rustls::server::TlsStream<tokio::net::TcpStream> {
    fn no_delay(&mut self) {
        self.get_mut().0.no_delay();
    }
}

/// Reads the signing keys again every `period`, so that a rotation made
/// elsewhere (`siemgate keys rotate`, another server on the same store) is
/// published and verified here within that time. Runs until dropped.
pub async fn refresh_keys_every(state: AppState, period: std::time::Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match state.refresh_keys().await {
            Ok(true) => tracing::info!("signing keys changed in the store; now publishing them"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading the signing keys failed; keeping the last ones")
            }
        }
    }
}

/// The wall clock at the store's precision.
fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}
