//! One span per request and the request's line in the log and in the
//! metrics: method, route, tenant and app (recorded by the handlers once the
//! caller is known), status and latency.
//!
//! The route is the router's pattern (`/{tenant}/oauth2/token`), never the
//! path as sent, so the log and the metrics do not grow with every tenant
//! and alert id, and the query string (which may carry a sign-in's
//! parameters) is never written.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::AppState;

/// Wraps every request in its span and counts it when its head is answered.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // `MatchedPath` is a shared string: cloning it costs no allocation.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = match &matched {
        Some(matched) => matched.as_str(),
        None => crate::api::route_name(request.uri().path()).unwrap_or("unmatched"),
    };
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route = %route,
        tenant = tracing::field::Empty,
        app = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    state.metrics().request(route, status, latency);
    span.in_scope(|| {
        let latency_ms = latency.as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::error!(status, latency_ms, "answered");
        } else {
            tracing::info!(status, latency_ms, "answered");
        }
    });
    response
}

/// Records the caller's tenant and app on the current request's span.
pub fn record_caller(tenant: &str, app: &str) {
    let span = tracing::Span::current();
    span.record("tenant", tenant);
    span.record("app", app);
}
