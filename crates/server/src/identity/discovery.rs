//! What clients read before they ask for a token: the OpenID configuration
//! documents, the signing keys, and MSAL's instance discovery.
//!
//! Every URL in these documents is built from the server's configured public
//! URL, never from the request: MSAL drops the port when it asks for instance
//! discovery, and a document built from that request would send it to port 443.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::resolve_tenant;
use crate::AppState;

/// The tenant segment of the documents' URLs: the tenant's GUID, or the
/// `{tenantid}` placeholder for `common` and `organizations`.
async fn tenant_segment(state: &AppState, key: &str) -> Result<String, Response> {
    if key.eq_ignore_ascii_case("common") || key.eq_ignore_ascii_case("organizations") {
        return Ok("{tenantid}".to_owned());
    }
    resolve_tenant(state, key).await.map(|t| t.id.to_string()).map_err(IntoResponse::into_response)
}

pub async fn v1(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    let tid = match tenant_segment(&state, &tenant).await {
        Ok(tid) => tid,
        Err(response) => return response,
    };
    let base = &state.config().public_url;
    Json(serde_json::json!({
        "issuer": format!("https://sts.windows.net/{tid}/"),
        "authorization_endpoint": format!("{base}/{tid}/oauth2/authorize"),
        "token_endpoint": format!("{base}/{tid}/oauth2/token"),
        "jwks_uri": format!("{base}/{tid}/discovery/keys"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "subject_types_supported": ["pairwise"],
        "scopes_supported": ["openid"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "tenant_region_scope": "WW",
    }))
    .into_response()
}

pub async fn v2(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    let tid = match tenant_segment(&state, &tenant).await {
        Ok(tid) => tid,
        Err(response) => return response,
    };
    let base = &state.config().public_url;
    Json(serde_json::json!({
        "issuer": format!("{base}/{tid}/v2.0"),
        "authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
        "jwks_uri": format!("{base}/{tid}/discovery/v2.0/keys"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "subject_types_supported": ["pairwise"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "name", "preferred_username", "nonce"],
        "tenant_region_scope": "WW",
    }))
    .into_response()
}

pub async fn keys(State(state): State<AppState>) -> Response {
    Json(state.keyring().jwks()).into_response()
}

pub async fn instance(State(state): State<AppState>) -> Response {
    let base = &state.config().public_url;
    let host = base.split("://").nth(1).unwrap_or(base).to_owned();
    Json(serde_json::json!({
        "tenant_discovery_endpoint": format!("{base}/{{tenant}}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": [{
            "preferred_network": host,
            "preferred_cache": host,
            "aliases": [host],
        }],
    }))
    .into_response()
}
