//! siemgate's HTTP side. The identity provider is served today; the SIEM API
//! and the portal pages join it on the same router.
//!
//! [`serve`] takes an already bound listener (plain or [`tls`]) and a shutdown signal, so tests
//! start a real server on port 0 and stop it cleanly.

mod html;
pub mod identity;
pub mod keyring;
mod throttle;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use siemgate_model::Timestamp;
use siemgate_store::Store;

pub use keyring::Keyring;

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
}

impl ServerConfig {
    pub fn new(public_url: &str) -> ServerConfig {
        ServerConfig {
            public_url: public_url.trim_end_matches('/').to_owned(),
            audiences: DEFAULT_AUDIENCES.iter().map(|a| a.to_string()).collect(),
            token_lifetime_seconds: 3599,
        }
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
    config: ServerConfig,
    failures: throttle::Failures,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, keyring: Keyring, config: ServerConfig) -> AppState {
        let failures = throttle::Failures::default();
        AppState { inner: Arc::new(Shared { store, keyring, config, failures }) }
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
}

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(identity::routes())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
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
{
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// The wall clock at the store's precision.
fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}
