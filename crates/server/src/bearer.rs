//! The resource side of the identity provider: who is calling, from the
//! `Authorization: Bearer` header of a SIEM API request.
//!
//! A token is accepted when the [`Verifier`] finds it genuine (RS256, a key
//! this server publishes, current, for an accepted audience, from this
//! issuer) and its tenant is one the store knows and has not disabled or
//! deleted. Refusals answer in the API's error shape with a
//! `WWW-Authenticate` challenge (RFC 6750 section 3) naming what was wrong.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use siemgate_identity::{Claims, TokenError};
use siemgate_store::{Tenant, TenantState};

use crate::{AppState, now};

/// A caller whose token checked out.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Tenant,
    pub claims: Claims,
}

impl Caller {
    /// True when the token carries application role `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.claims.roles.iter().any(|r| r == role)
    }
}

/// Why a request's bearer token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    #[error(
        "no bearer token: send `Authorization: Bearer <token>` with a token from this server's \
         token endpoint"
    )]
    Missing,
    #[error("the Authorization header is not `Bearer <token>`")]
    NotBearer,
    #[error("{0}; get a new token from this server's token endpoint")]
    Token(#[from] TokenError),
    #[error("the token's tenant {0} is not known to this server")]
    UnknownTenant(String),
    #[error("tenant {tenant} is {state}; its detections cannot be read or sent")]
    TenantUnavailable { tenant: String, state: &'static str },
    #[error("the server could not check the token")]
    Internal,
}

impl BearerError {
    fn status(&self) -> StatusCode {
        match self {
            BearerError::TenantUnavailable { .. } => StatusCode::FORBIDDEN,
            BearerError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The stable code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            BearerError::Missing | BearerError::NotBearer => "Unauthorized",
            BearerError::Token(TokenError::Expired(_)) => "ExpiredToken",
            BearerError::Token(_) => "InvalidToken",
            BearerError::UnknownTenant(_) => "UnknownTenant",
            BearerError::TenantUnavailable { .. } => "Forbidden",
            BearerError::Internal => "InternalServerError",
        }
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.to_string();
        let body = serde_json::json!({ "error": { "code": self.code(), "message": message } });
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750 3: no error attribute when no token came at all.
            let challenge = match self {
                BearerError::Missing => "Bearer realm=\"siemgate\"".to_owned(),
                _ => format!(
                    "Bearer realm=\"siemgate\", error=\"invalid_token\", error_description=\"{}\"",
                    message.replace(['"', '\\'], "'")
                ),
            };
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// How long a tenant read from the store is trusted. A store lookup per
/// request measured as a sixth of a `limit=20` request's cost; in exchange,
/// a tenant disabled or deleted (here or on another server sharing the
/// store) is refused within this time, not at once.
pub const TENANT_CACHE_TTL: Duration = Duration::from_secs(1);

/// Tenants recently read from the store, by the id in their tokens.
#[derive(Debug, Default)]
pub(crate) struct TenantCache {
    entries: Mutex<HashMap<String, (Tenant, Instant)>>,
}

/// Tenants remembered at most; past this the cache starts over.
const MAX_CACHED_TENANTS: usize = 10_000;

impl TenantCache {
    fn get(&self, id: &str) -> Option<Tenant> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (tenant, read) = entries.get(id)?;
        (read.elapsed() < TENANT_CACHE_TTL).then(|| tenant.clone())
    }

    fn put(&self, id: &str, tenant: Tenant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_CACHED_TENANTS {
            entries.clear();
        }
        entries.insert(id.to_owned(), (tenant, Instant::now()));
    }
}

impl AppState {
    /// The caller named by `headers`' bearer token, or why there is none.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, BearerError> {
        let value = headers.get(header::AUTHORIZATION).ok_or(BearerError::Missing)?;
        let value = value.to_str().map_err(|_| BearerError::NotBearer)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(BearerError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(BearerError::NotBearer);
        }
        let token = token.trim();
        let verified = self.verifier().verify(token, now());
        let claims = match verified {
            Err(TokenError::UnknownKey(_)) if self.read_keys_for_unknown_kid().await => {
                self.verifier().verify(token, now())
            }
            verified => verified,
        }?;
        let tenant = match self.inner.tenants.get(&claims.tid) {
            Some(tenant) => tenant,
            None => {
                let found = self.store().find_tenant(&claims.tid).await.map_err(|e| {
                    tracing::error!(error = %e, "looking up a token's tenant failed");
                    BearerError::Internal
                })?;
                let tenant = found
                    .filter(|t| t.id.to_string() == claims.tid)
                    .ok_or_else(|| BearerError::UnknownTenant(claims.tid.clone()))?;
                self.inner.tenants.put(&claims.tid, tenant.clone());
                tenant
            }
        };
        match tenant.state {
            TenantState::Active => Ok(Caller { tenant, claims }),
            state => Err(BearerError::TenantUnavailable {
                tenant: tenant.id.to_string(),
                state: state.as_str(),
            }),
        }
    }
}
