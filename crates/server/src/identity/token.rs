//! `POST /{tenant}/oauth2/token` (v1) and `POST /{tenant}/oauth2/v2.0/token`
//! (v2): client credentials exchanged for an access token.
//!
//! The two versions differ where clients notice: v1 names the audience with
//! `resource` and writes numbers as strings; v2 asks for `<resource>/.default`
//! as its `scope` and writes numbers as numbers (see the auth-client notes).

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use siemgate_identity::token::{v1_issuer, v2_issuer};
use siemgate_identity::{Claims, SecretHash, issue};
use siemgate_store::{App, Tenant};

use super::error::AadError;
use super::resolve_tenant;
use crate::{AppState, now};

/// Which token endpoint was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

pub async fn v1(
    state: State<AppState>,
    tenant: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(state, tenant, headers, body, Version::V1).await
}

pub async fn v2(
    state: State<AppState>,
    tenant: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(state, tenant, headers, body, Version::V2).await
}

async fn token(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
    version: Version,
) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    match grant(&state, &tenant, &headers, &form, version).await {
        Ok(response) => response,
        Err(e) => {
            tracing::info!(tenant, code = e.code(), "token request refused");
            e.into_response()
        }
    }
}

async fn grant(
    state: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    version: Version,
) -> Result<Response, AadError> {
    let tenant = resolve_tenant(state, tenant).await?;
    let grant = form.get("grant_type").ok_or_else(|| AadError::missing("grant_type"))?;
    match grant.as_str() {
        "client_credentials" => client_credentials(state, &tenant, headers, form, version).await,
        other => Err(AadError::unsupported_grant(other)),
    }
}

/// The client id and secret, from the body or from HTTP Basic (RFC 6749 2.3.1).
fn client_auth(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(String, Option<String>), AadError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .map(|encoded| -> Result<(String, String), AadError> {
            let bad = || {
                AadError::bad_request("The Authorization header is not valid HTTP Basic.".into())
            };
            let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
            let unescape = |s: &str| {
                form_urlencoded::parse(format!("v={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Ok((unescape(id), unescape(secret)))
        })
        .transpose()?;
    match basic {
        Some((id, secret)) => Ok((id, Some(secret))),
        None => {
            let id = form.get("client_id").ok_or_else(|| AadError::missing("client_id"))?;
            Ok((id.clone(), form.get("client_secret").cloned()))
        }
    }
}

async fn client_credentials(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    version: Version,
) -> Result<Response, AadError> {
    let (client_id, secret) = client_auth(headers, form)?;
    if let Some(retry_after) = state.failures().blocked(&client_id) {
        return Err(AadError::throttled(&client_id, retry_after));
    }
    let audience = audience(state, form, version)?;
    let app = find_app(state, tenant, &client_id).await?;
    let secret = secret.ok_or_else(|| AadError::missing("client_secret"))?;
    if let Err(e) = check_secret(&app, &secret) {
        state.failures().record(&client_id);
        return Err(e);
    }
    state.failures().clear(&client_id);
    issue_token(state, tenant, &app, &audience, version)
}

/// The audience asked for: v1's `resource`, or v2's `scope` without `/.default`.
fn audience(
    state: &AppState,
    form: &HashMap<String, String>,
    version: Version,
) -> Result<String, AadError> {
    let accepted = &state.config().audiences;
    let known =
        |aud: &str| accepted.iter().any(|a| a.trim_end_matches('/') == aud.trim_end_matches('/'));
    match version {
        Version::V1 => {
            let resource = form.get("resource").ok_or_else(|| AadError::missing("resource"))?;
            if known(resource) {
                Ok(resource.clone())
            } else {
                Err(AadError::bad_resource(resource, accepted))
            }
        }
        Version::V2 => {
            let scope = form.get("scope").ok_or_else(|| AadError::missing("scope"))?;
            match scope.trim().strip_suffix("/.default") {
                Some(aud) if known(aud) => Ok(aud.to_owned()),
                _ => Err(AadError::bad_scope(scope, accepted)),
            }
        }
    }
}

async fn find_app(state: &AppState, tenant: &Tenant, client_id: &str) -> Result<App, AadError> {
    let unknown = || AadError::unknown_app(client_id, &tenant.id.to_string());
    let id = uuid::Uuid::parse_str(client_id).map_err(|_| unknown())?;
    let app = state.store().find_app(id).await.map_err(|e| {
        tracing::error!(error = %e, "looking up an app failed");
        AadError::internal()
    })?;
    app.filter(|app| app.tenant == tenant.id).ok_or_else(unknown)
}

/// Accepts the secret if it matches one of the app's secrets that has not expired.
fn check_secret(app: &App, presented: &str) -> Result<(), AadError> {
    let now = now();
    let client_id = app.client_id.to_string();
    let mut expired_match = false;
    for secret in &app.secrets {
        let matches = SecretHash::from_bytes(&secret.hash.0).is_some_and(|h| h.matches(presented));
        if matches && secret.expires > now {
            return Ok(());
        }
        expired_match |= matches;
    }
    Err(if expired_match {
        AadError::expired_secret(&client_id)
    } else {
        AadError::bad_secret(&client_id)
    })
}

fn issue_token(
    state: &AppState,
    tenant: &Tenant,
    app: &App,
    audience: &str,
    version: Version,
) -> Result<Response, AadError> {
    let lifetime = state.config().token_lifetime_seconds;
    let iat = now().unix_seconds();
    let tid = tenant.id.to_string();
    let client_id = app.client_id.to_string();
    let claims = Claims {
        aud: audience.to_owned(),
        iss: match version {
            Version::V1 => v1_issuer(&tid),
            Version::V2 => v2_issuer(&state.config().public_url, &tid),
        },
        iat,
        // Five minutes' grace for clients whose clocks run behind, as Azure AD allows.
        nbf: iat - 300,
        exp: iat + lifetime,
        tid,
        appid: (version == Version::V1).then(|| client_id.clone()),
        azp: (version == Version::V2).then(|| client_id.clone()),
        oid: client_id.clone(),
        sub: client_id,
        roles: app.roles.clone(),
        scp: None,
        ver: match version {
            Version::V1 => "1.0".into(),
            Version::V2 => "2.0".into(),
        },
    };
    let token = issue(&state.keyring().signer(), &claims).map_err(|e| {
        tracing::error!(error = %e, "signing a token failed");
        AadError::internal()
    })?;
    tracing::info!(tenant = %tenant.id, app = %app.client_id, "issued a token");
    let body = match version {
        Version::V1 => serde_json::json!({
            "token_type": "Bearer",
            "expires_in": lifetime.to_string(),
            "ext_expires_in": lifetime.to_string(),
            "expires_on": claims.exp.to_string(),
            "not_before": claims.nbf.to_string(),
            "resource": audience,
            "access_token": token,
        }),
        Version::V2 => serde_json::json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }),
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}
