//! Tokens for a signed-in user: an access token carrying the user's
//! identity and delegated scopes, an id token for the client, and a refresh
//! token the store keeps a hash of. The authorization-code and refresh-token
//! grants both end here.

use axum::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use siemgate_identity::grant::{OneTime, client_info};
use siemgate_identity::token::{v1_issuer, v2_issuer};
use siemgate_identity::{Claims, IdClaims, issue};
use siemgate_model::Span;
use siemgate_store::{App, RefreshGrant, Sealed, Tenant, User};

use super::Version;
use super::error::AadError;
use super::scope::Requested;
use crate::{AppState, now};

/// How long a refresh token may lie unused; Azure AD's default is 90 days.
pub const REFRESH_LIFETIME: Span = Span::from_hours(90 * 24);

/// Who signed in, for which app, asking for what.
#[derive(Debug)]
pub struct Delegation<'a> {
    pub tenant: &'a Tenant,
    pub app: &'a App,
    pub user: &'a User,
    pub requested: &'a Requested,
    /// The authorize request's nonce, repeated in the id token.
    pub nonce: Option<&'a str>,
    pub version: Version,
    /// MSAL asks for `client_info` with `client_info=1`.
    pub client_info: bool,
}

/// Issues the tokens `d` entitles the client to and answers with them.
pub async fn respond(state: &AppState, d: Delegation<'_>) -> Result<Response, AadError> {
    let lifetime = state.config().token_lifetime_seconds;
    let iat = now().unix_seconds();
    let tid = d.tenant.id.to_string();
    let client_id = d.app.client_id.to_string();
    let oid = d.user.id.to_string();
    let v1 = d.version == Version::V1;
    let iss = if v1 { v1_issuer(&tid) } else { v2_issuer(&state.config().public_url, &tid) };
    let ver = if v1 { "1.0" } else { "2.0" };
    let claims = Claims {
        aud: d.requested.resource.clone(),
        iss: iss.clone(),
        iat,
        nbf: iat - 300,
        exp: iat + lifetime,
        tid: tid.clone(),
        appid: v1.then(|| client_id.clone()),
        azp: (!v1).then(|| client_id.clone()),
        oid: oid.clone(),
        sub: oid.clone(),
        roles: Vec::new(),
        scp: Some(d.requested.permissions()),
        name: Some(d.user.display_name.clone()),
        upn: v1.then(|| d.user.username.clone()),
        preferred_username: (!v1).then(|| d.user.username.clone()),
        ver: ver.into(),
    };
    let signer = state.keyring().signer();
    let signing_failed = |e| {
        tracing::error!(error = %e, "signing a token failed");
        AadError::internal()
    };
    let access_token = issue(&signer, &claims).map_err(signing_failed)?;
    state.metrics().token_issued();

    let id_token = if v1 || d.requested.wants("openid") {
        let id = IdClaims {
            aud: client_id.clone(),
            iss,
            iat,
            nbf: iat - 300,
            exp: iat + lifetime,
            nonce: d.nonce.map(str::to_owned),
            name: d.user.display_name.clone(),
            oid: oid.clone(),
            preferred_username: (!v1).then(|| d.user.username.clone()),
            upn: v1.then(|| d.user.username.clone()),
            unique_name: v1.then(|| d.user.username.clone()),
            sub: oid.clone(),
            tid: tid.clone(),
            ver: ver.into(),
        };
        Some(issue(&signer, &id).map_err(signing_failed)?)
    } else {
        None
    };

    let refresh_token = if d.requested.wants("offline_access") {
        let drawn = OneTime::generate().map_err(|_| AadError::internal())?;
        let issued = now();
        let grant = RefreshGrant {
            hash: Sealed(drawn.hash),
            client_id: d.app.client_id,
            user: d.user.id,
            scope: d.requested.to_scope_string(),
            resource: d.requested.resource.clone(),
            issued,
            expires: issued.add_ticks(REFRESH_LIFETIME.ticks()),
        };
        state.store().save_refresh_token(grant).await.map_err(|e| {
            tracing::error!(error = %e, "saving a refresh token failed");
            AadError::internal()
        })?;
        Some(drawn.text)
    } else {
        None
    };
    tracing::info!(
        tenant = %d.tenant.id, app = %d.app.client_id, user = %d.user.id,
        "issued tokens for a signed-in user"
    );

    let mut body = serde_json::Map::new();
    body.insert("token_type".into(), "Bearer".into());
    if v1 {
        body.insert("scope".into(), d.requested.permissions().into());
        body.insert("expires_in".into(), lifetime.to_string().into());
        body.insert("ext_expires_in".into(), lifetime.to_string().into());
        body.insert("expires_on".into(), claims.exp.to_string().into());
        body.insert("not_before".into(), claims.nbf.to_string().into());
        body.insert("resource".into(), d.requested.resource.clone().into());
    } else {
        body.insert("scope".into(), d.requested.granted_v2().into());
        body.insert("expires_in".into(), lifetime.into());
        body.insert("ext_expires_in".into(), lifetime.into());
    }
    body.insert("access_token".into(), access_token.into());
    if let Some(refresh_token) = refresh_token {
        body.insert("refresh_token".into(), refresh_token.into());
    }
    if let Some(id_token) = id_token {
        body.insert("id_token".into(), id_token.into());
    }
    if d.client_info {
        body.insert("client_info".into(), client_info(&oid, &tid).into());
    }
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}
