//! `POST /{tenant}/oauth2/token` (v1) and `POST /{tenant}/oauth2/v2.0/token`
//! (v2): client credentials, authorization codes and refresh tokens
//! exchanged for tokens.
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
use siemgate_identity::grant::{ChallengeMethod, hash, pkce_matches};
use siemgate_identity::token::{v1_issuer, v2_issuer};
use siemgate_identity::{Claims, SecretHash, issue};
use siemgate_store::{App, CodeRedemption, Tenant, User};

use super::delegated::{self, Delegation};
use super::error::AadError;
use super::scope::Requested;
use super::{Version, resolve_tenant};
use crate::{AppState, now};

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
    // Names are trimmed: the reference page's Bash script breaks its form
    // over two lines inside quotes, which leaves spaces before `grant_type`.
    let form: HashMap<String, String> = form_urlencoded::parse(&body)
        .map(|(name, value)| (name.trim().to_owned(), value.into_owned()))
        .collect();
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
        "authorization_code" => authorization_code(state, &tenant, headers, form, version).await,
        "refresh_token" => refresh_token(state, &tenant, headers, form, version).await,
        other => Err(AadError::unsupported_grant(other)),
    }
}

/// The app making the request, once its secret checks out. Failures count
/// towards the client id's throttle.
async fn authenticate(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<App, AadError> {
    let (client_id, secret) = client_auth(headers, form)?;
    if let Some(retry_after) = state.failures().blocked(&client_id) {
        return Err(AadError::throttled(&client_id, retry_after));
    }
    let app = find_app(state, tenant, &client_id).await?;
    let secret = secret.ok_or_else(|| AadError::missing("client_secret"))?;
    if let Err(e) = check_secret(&app, &secret) {
        state.failures().record(&client_id);
        return Err(e);
    }
    state.failures().clear(&client_id);
    Ok(app)
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
    let audience = audience(state, form, version)?;
    let app = authenticate(state, tenant, headers, form).await?;
    issue_token(state, tenant, &app, &audience, version)
}

/// A code from the sign-in page, for the tokens it stands for. The code is
/// spent before anything bound to it is checked, so a code presented with a
/// wrong verifier or redirect URI cannot be tried again.
async fn authorization_code(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    version: Version,
) -> Result<Response, AadError> {
    let app = authenticate(state, tenant, headers, form).await?;
    let code = form.get("code").ok_or_else(|| AadError::missing("code"))?;
    // v1 names the audience here, not necessarily at /authorize, and Azure AD
    // issues the token for the resource this request names.
    let asked = match version {
        Version::V1 => form.get("resource").map(|r| Requested::v1(r, &state.config().audiences)),
        Version::V2 => None,
    }
    .transpose()?;
    let redeemed = state.store().redeem_auth_code(hash(code)).await.map_err(store_failed)?;
    let code = match redeemed {
        CodeRedemption::Fresh(code) => code,
        CodeRedemption::Reused => return Err(AadError::reused_code()),
        CodeRedemption::Unknown => return Err(AadError::invalid_code()),
    };
    if code.expires <= now() {
        return Err(AadError::expired_code());
    }
    if code.client_id != app.client_id {
        return Err(AadError::code_for_another_client(&app.client_id.to_string()));
    }
    if form.get("redirect_uri") != Some(&code.redirect_uri) {
        return Err(AadError::redirect_mismatch());
    }
    if let Some(challenge) = &code.code_challenge {
        let method = ChallengeMethod::parse(code.challenge_method.as_deref())
            .ok_or_else(AadError::pkce_mismatch)?;
        let verifier =
            form.get("code_verifier").ok_or_else(|| AadError::missing("code_verifier"))?;
        if !pkce_matches(method, challenge, verifier) {
            return Err(AadError::pkce_mismatch());
        }
    }
    let user = signed_in_user(state, tenant, code.user).await?;
    let requested = match asked {
        Some(asked) => asked,
        None => stored_request(state, &code.scope, &code.resource, version)?,
    };
    delegated::respond(
        state,
        Delegation {
            tenant,
            app: &app,
            user: &user,
            requested: &requested,
            nonce: code.nonce.as_deref(),
            version,
            client_info: wants_client_info(form),
        },
    )
    .await
}

/// A refresh token for new tokens and a new refresh token; the one
/// presented is spent.
async fn refresh_token(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    version: Version,
) -> Result<Response, AadError> {
    let app = authenticate(state, tenant, headers, form).await?;
    let presented = form.get("refresh_token").ok_or_else(|| AadError::missing("refresh_token"))?;
    let grant = state
        .store()
        .take_refresh_token(hash(presented))
        .await
        .map_err(store_failed)?
        .ok_or_else(AadError::invalid_refresh_token)?;
    if grant.client_id != app.client_id {
        return Err(AadError::invalid_refresh_token());
    }
    if grant.expires <= now() {
        return Err(AadError::expired_refresh_token());
    }
    let user = signed_in_user(state, tenant, grant.user).await?;
    // A client may ask for another accepted resource with the same sign-in.
    let asked = match version {
        Version::V1 => form.get("resource").map(|r| Requested::v1(r, &state.config().audiences)),
        Version::V2 => form.get("scope").map(|s| {
            Requested::parse_v2(s, &state.config().audiences, &grant.resource).map(|mut r| {
                // Offline access was granted at sign-in; a refresh keeps it.
                if !r.wants("offline_access") {
                    r.oidc.push("offline_access");
                }
                r
            })
        }),
    };
    let requested = match asked {
        Some(asked) => asked?,
        None => stored_request(state, &grant.scope, &grant.resource, version)?,
    };
    delegated::respond(
        state,
        Delegation {
            tenant,
            app: &app,
            user: &user,
            requested: &requested,
            nonce: None,
            version,
            client_info: wants_client_info(form),
        },
    )
    .await
}

/// The request a code or refresh token was issued for, as it kept it.
fn stored_request(
    state: &AppState,
    scope: &str,
    resource: &str,
    version: Version,
) -> Result<Requested, AadError> {
    let accepted = &state.config().audiences;
    match version {
        Version::V1 => Requested::v1(resource, accepted),
        Version::V2 => Requested::parse_v2(scope, accepted, resource),
    }
}

/// The user a grant was made for, if still a user of this tenant.
async fn signed_in_user(
    state: &AppState,
    tenant: &Tenant,
    id: uuid::Uuid,
) -> Result<User, AadError> {
    let user = state.store().find_user_by_id(id).await.map_err(store_failed)?;
    user.filter(|u| u.tenant == tenant.id).ok_or_else(AadError::user_gone)
}

fn wants_client_info(form: &HashMap<String, String>) -> bool {
    form.get("client_info").is_some_and(|v| v == "1")
}

fn store_failed(e: siemgate_store::StoreError) -> AadError {
    tracing::error!(error = %e, "the store failed during a token request");
    AadError::internal()
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

pub(super) async fn find_app(
    state: &AppState,
    tenant: &Tenant,
    client_id: &str,
) -> Result<App, AadError> {
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
        name: None,
        upn: None,
        preferred_username: None,
        ver: match version {
            Version::V1 => "1.0".into(),
            Version::V2 => "2.0".into(),
        },
    };
    let token = issue(&state.keyring().signer(), &claims).map_err(|e| {
        tracing::error!(error = %e, "signing a token failed");
        AadError::internal()
    })?;
    state.metrics().token_issued();
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
