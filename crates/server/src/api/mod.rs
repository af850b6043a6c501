//! The SIEM API: `GET /api/alerts`, as the Defender for Endpoint SIEM API
//! answers it, and `POST /api/detections`, siemgate's way in.
//!
//! ASP.NET matches paths without regard to letter case and with or without
//! a trailing slash, and one of the reference page's samples uses
//! `/api/alert`; axum matches exactly, so every API path is normalised here,
//! in the router's fallback, before it is dispatched.

mod alerts;
mod detections;
pub mod error;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::bearer::Caller;
use error::ApiError;

/// The largest `POST /api/detections` body taken, by default.
pub const DEFAULT_INGEST_LIMIT: usize = 32 * 1024 * 1024;

/// The API route a path names in any of its spellings, for logs and metrics.
pub fn route_name(path: &str) -> Option<&'static str> {
    match path.trim_end_matches('/').to_ascii_lowercase().as_str() {
        "/api/alerts" | "/api/alert" => Some("/api/alerts"),
        "/api/detections" => Some("/api/detections"),
        _ => None,
    }
}

/// Dispatches a request no other route matched: the API's paths in any
/// spelling, and a JSON 404 for everything else.
pub async fn fallback(State(state): State<AppState>, request: Request<Body>) -> Response {
    let path = request.uri().path().trim_end_matches('/').to_ascii_lowercase();
    let method = request.method().clone();
    match (path.as_str(), method) {
        ("/api/alerts" | "/api/alert", Method::GET | Method::HEAD) => {
            alerts::get(state, request).await
        }
        ("/api/detections", Method::POST) => detections::post(state, request).await,
        ("/api/alerts" | "/api/alert", _) => {
            ApiError::MethodNotAllowed("/api/alerts answers GET only".into()).into_response()
        }
        ("/api/detections", _) => {
            ApiError::MethodNotAllowed("/api/detections takes POST only".into()).into_response()
        }
        _ => ApiError::NotFound(format!(
            "no such route {}; the SIEM API is GET /api/alerts",
            request.uri().path()
        ))
        .into_response(),
    }
}

/// The caller of an API request, once its token checks out, it holds
/// `role`, and its app is within its rate limit. The caller's tenant and app
/// go on the request's span.
async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    role: &str,
    to: &str,
) -> Result<Caller, ApiError> {
    let caller = state.authenticate(headers).await?;
    let client = caller.claims.client_id().unwrap_or(&caller.claims.oid).to_owned();
    crate::observe::record_caller(&caller.tenant.id.to_string(), &client);
    require_role(&caller, role, to)?;
    if let Some(wait) = state.rate_limited(&client) {
        state.metrics().rate_limited();
        return Err(ApiError::RateLimited(wait));
    }
    Ok(caller)
}

/// Refuses a caller whose token lacks application role `role`, saying how
/// to grant it.
fn require_role(caller: &Caller, role: &str, to: &str) -> Result<(), ApiError> {
    if caller.has_role(role) {
        return Ok(());
    }
    let client = caller.claims.client_id().unwrap_or("CLIENT_ID");
    Err(ApiError::MissingRole(if caller.claims.scp.is_some() {
        format!(
            "this is a signed-in user's token; to {to}, an app needs its own token (client \
             credentials) and the {role} role"
        )
    } else {
        format!("app {client} may not {to}; grant it with `siemgate app grant {client} {role}`")
    }))
}
