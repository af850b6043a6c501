//! The portal session: who is signed in, carried in a cookie that any
//! server sharing the store can check without asking the others.
//!
//! The cookie holds an RS256 token signed with the store's signing key, like
//! the access tokens, but for an audience of its own ([`PORTAL_AUDIENCE`])
//! that the SIEM API never accepts, and that no client can ask the token
//! endpoint for. It is `SameSite=Lax` rather than `Strict`: an analyst opens
//! the portal by clicking a detection's link in a SIEM, a cross-site
//! navigation on which a `Strict` cookie would not be sent.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use siemgate_identity::token::v2_issuer;
use siemgate_identity::{Claims, TokenError, Verifier, issue};
use siemgate_store::{Tenant, TenantState, User};

use super::{PortalError, see_other};
use crate::{AppState, CLOCK_SKEW_SECONDS, html, now};

/// The audience of session tokens. Not a resource a token can be asked for.
pub const PORTAL_AUDIENCE: &str = "urn:siemgate:portal";

/// The session cookie.
const SESSION_COOKIE: &str = "siemgate_session";

/// How long a session lasts: a working day.
const SESSION_SECONDS: i64 = 8 * 3600;

/// The signed-in user of a portal request.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub tenant: Tenant,
    pub user: User,
}

/// The session token for `user` of `tenant`, to be set as the cookie.
pub fn issue_session(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
) -> Result<String, PortalError> {
    let issued = now().unix_seconds();
    let tid = tenant.id.to_string();
    let claims = Claims {
        aud: PORTAL_AUDIENCE.into(),
        iss: v2_issuer(&state.config().public_url, &tid),
        iat: issued,
        nbf: issued,
        exp: issued + SESSION_SECONDS,
        tid,
        appid: None,
        azp: None,
        oid: user.id.to_string(),
        sub: user.id.to_string(),
        roles: Vec::new(),
        scp: None,
        name: Some(user.display_name.clone()),
        upn: None,
        preferred_username: Some(user.username.clone()),
        ver: "2.0".into(),
    };
    issue(&state.keyring().signer(), &claims).map_err(|e| {
        tracing::error!(error = %e, "signing a portal session failed");
        PortalError::Internal
    })
}

/// A `Set-Cookie` value that holds `token`, or removes the cookie when `None`.
pub fn session_cookie(state: &AppState, token: Option<&str>) -> Option<HeaderValue> {
    let secure = if secure(state) { "; Secure" } else { "" };
    let (value, max_age) = match token {
        Some(token) => (token, SESSION_SECONDS),
        None => ("", 0),
    };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    );
    HeaderValue::from_str(&cookie).ok()
}

/// True when the server is reached over HTTPS, so cookies are `Secure`.
pub fn secure(state: &AppState) -> bool {
    state.config().public_url.starts_with("https://")
}

/// The signed-in user, or the response that sends the browser to sign in
/// and then back to `return_to` (this request's path and query).
pub async fn viewer(
    state: &AppState,
    headers: &HeaderMap,
    return_to: &str,
) -> Result<Viewer, Response> {
    let to_sign_in = || {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("return", return_to)
            .finish();
        see_other(&format!("/portal/signin?{query}"))
    };
    let Some(token) = html::cookie(headers, SESSION_COOKIE) else {
        return Err(to_sign_in());
    };
    let claims = match verify(state, &token).await {
        Ok(claims) => claims,
        Err(e) => {
            tracing::debug!(error = %e, "portal session refused; signing in again");
            return Err(to_sign_in());
        }
    };
    match signed_in(state, &claims).await {
        Ok(Some(viewer)) => Ok(viewer),
        Ok(None) => Err(to_sign_in()),
        Err(e) => Err(e.page()),
    }
}

/// The claims of a genuine, current session token from a server sharing
/// this store. A token signed with a key this server has not loaded yet
/// (just rotated on another server) makes it read the keys again.
async fn verify(state: &AppState, token: &str) -> Result<Claims, TokenError> {
    let verified = verifier(state).verify(token, now());
    match verified {
        Err(TokenError::UnknownKey(_)) if state.read_keys_for_unknown_kid().await => {
            verifier(state).verify(token, now())
        }
        verified => verified,
    }
}

fn verifier(state: &AppState) -> Verifier {
    let audiences = vec![PORTAL_AUDIENCE.to_owned()];
    let public_url = &state.config().public_url;
    Verifier::new(state.keyring().published(), audiences, public_url, CLOCK_SKEW_SECONDS)
}

/// The session's user, if the user still exists in a tenant still active.
async fn signed_in(state: &AppState, claims: &Claims) -> Result<Option<Viewer>, PortalError> {
    let Ok(user_id) = uuid::Uuid::parse_str(&claims.oid) else { return Ok(None) };
    let user = state.store().find_user_by_id(user_id).await.map_err(PortalError::store)?;
    let Some(user) = user.filter(|u| u.tenant.to_string() == claims.tid) else {
        return Ok(None);
    };
    let tenant = state.store().find_tenant(&claims.tid).await.map_err(PortalError::store)?;
    Ok(tenant
        .filter(|t| t.id == user.tenant && t.state == TenantState::Active)
        .map(|tenant| Viewer { tenant, user }))
}

/// Signs the browser out: the cookie goes, and the browser goes to the
/// sign-in page.
pub fn sign_out(state: &AppState) -> Response {
    let mut response = see_other("/portal/signin");
    if let Some(cookie) = session_cookie(state, None) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
