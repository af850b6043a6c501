//! `GET /{tenant}/oauth2/authorize` and `/{tenant}/oauth2/v2.0/authorize`:
//! the sign-in page of the authorization-code flow, and its `POST`, which
//! checks the user's password and sends the browser back to the app with a
//! code.
//!
//! The rules of RFC 6749 4.1.2.1 decide where a problem is reported: while
//! the app or its redirect URI is in doubt, only on this page (redirecting
//! to an unchecked URI would make the server an open redirector); once both
//! are known, back to the app as `error` and `error_description`.
//!
//! The form carries the anti-forgery token of [`crate::html`].

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use siemgate_identity::grant::{ChallengeMethod, OneTime};
use siemgate_identity::password::{hash_password, verify_password};
use siemgate_model::Span;
use siemgate_store::{App, AuthCode, Sealed, Tenant, User};

use super::error::AadError;
use super::scope::Requested;
use super::{Version, resolve_tenant};
use crate::html::{self, document, escape, page};
use crate::{AppState, now, throttle};

/// How long a code may wait to be redeemed. Azure AD allows ten minutes.
const CODE_LIFETIME: Span = Span::from_seconds(600);

/// The authorize parameters a sign-in carries from the page to its `POST`.
const CARRIED: [&str; 11] = [
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "resource",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "prompt",
];

pub async fn page_v1(
    state: State<AppState>,
    tenant: Path<String>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    page_get(state, tenant, headers, query, Version::V1).await
}

pub async fn page_v2(
    state: State<AppState>,
    tenant: Path<String>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    page_get(state, tenant, headers, query, Version::V2).await
}

pub async fn sign_in_v1(
    state: State<AppState>,
    tenant: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sign_in(state, tenant, headers, body, Version::V1).await
}

pub async fn sign_in_v2(
    state: State<AppState>,
    tenant: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sign_in(state, tenant, headers, body, Version::V2).await
}

/// An authorize request whose app and redirect URI are known to be good.
struct Checked {
    tenant: Tenant,
    app: App,
    redirect_uri: String,
    state: Option<String>,
    requested: Requested,
    nonce: Option<String>,
    challenge: Option<(String, ChallengeMethod)>,
}

/// Why an authorize request cannot go on.
enum Refusal {
    /// Shown on the page: the app or its redirect URI cannot be trusted.
    Page(StatusCode, String),
    /// Sent back to the app's redirect URI.
    Redirect { redirect_uri: String, state: Option<String>, error: AadError },
}

async fn page_get(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    version: Version,
) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes());
    let checked = match check(&state, &tenant, &params, version).await {
        Ok(checked) => checked,
        Err(refusal) => return refuse(refusal),
    };
    if params.get("prompt").is_some_and(|p| p == "none") {
        // There are no sessions to sign in silently with.
        return refuse(Refusal::Redirect {
            redirect_uri: checked.redirect_uri,
            state: checked.state,
            error: AadError::login_required(),
        });
    }
    let login_hint = params.get("login_hint").map(String::as_str).unwrap_or("");
    match html::form_token_or_new(&headers).map_err(|_| AadError::internal()) {
        Ok(csrf) => {
            form_page(&state, &checked, &params, &csrf, login_hint, None, StatusCode::OK, version)
        }
        Err(e) => e.into_response(),
    }
}

async fn sign_in(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
    version: Version,
) -> Response {
    let form = parse_form(&body);
    let checked = match check(&state, &tenant, &form, version).await {
        Ok(checked) => checked,
        Err(refusal) => return refuse(refusal),
    };
    let username = form.get("username").map(|u| u.trim()).unwrap_or("");
    let again = |message: &str, status: StatusCode, csrf: &str| {
        form_page(&state, &checked, &form, csrf, username, Some(message), status, version)
    };

    let presented = form.get("csrf").map(String::as_str).unwrap_or("");
    if !html::form_token_matches(&headers, presented) {
        return match new_csrf_token() {
            Ok(fresh) => again(
                "This sign-in form has expired or was not opened in this browser. Enter your \
                 user name and password again.",
                StatusCode::FORBIDDEN,
                &fresh,
            ),
            Err(e) => e.into_response(),
        };
    }

    let throttle_key = throttle::user_key(checked.tenant.id, username);
    if let Some(wait) = state.failures().blocked(&throttle_key) {
        let message = AadError::user_locked(wait);
        return again(message.description(), StatusCode::TOO_MANY_REQUESTS, presented);
    }
    let password = form.get("password").cloned().unwrap_or_default();
    let user = match authenticate_user(&state, &checked.tenant, username, password).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            state.failures().record(&throttle_key);
            tracing::info!(tenant = %checked.tenant.id, "sign-in refused: bad user name or password");
            let message = AadError::bad_credentials();
            return again(message.description(), StatusCode::UNAUTHORIZED, presented);
        }
        Err(e) => return e.into_response(),
    };
    state.failures().clear(&throttle_key);

    match issue_code(&state, &checked, &user).await {
        Ok(code) => {
            tracing::info!(
                tenant = %checked.tenant.id, app = %checked.app.client_id, user = %user.id,
                "signed in; redirecting with a code"
            );
            let mut pairs = vec![("code", code.as_str())];
            if let Some(s) = &checked.state {
                pairs.push(("state", s));
            }
            let session = uuid::Uuid::new_v4().to_string();
            pairs.push(("session_state", &session));
            redirect(&checked.redirect_uri, &pairs)
        }
        Err(e) => e.into_response(),
    }
}

/// Checks the request's tenant, app, redirect URI, response type, scopes and
/// PKCE parameters, in the order that decides where errors go.
async fn check(
    state: &AppState,
    tenant: &str,
    params: &HashMap<String, String>,
    version: Version,
) -> Result<Checked, Refusal> {
    let on_page = |e: AadError| Refusal::Page(StatusCode::BAD_REQUEST, e.description().to_owned());
    let tenant = resolve_tenant(state, tenant).await.map_err(on_page)?;
    let client_id =
        params.get("client_id").ok_or_else(|| on_page(AadError::missing("client_id")))?;
    let app = super::token::find_app(state, &tenant, client_id).await.map_err(on_page)?;
    let redirect_uri =
        params.get("redirect_uri").ok_or_else(|| on_page(AadError::missing("redirect_uri")))?;
    if !redirect_allowed(&app, redirect_uri) {
        return Err(Refusal::Page(
            StatusCode::BAD_REQUEST,
            AadError::redirect_not_registered(redirect_uri, &app.client_id.to_string())
                .description()
                .to_owned(),
        ));
    }
    let back = |error: AadError| Refusal::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: params.get("state").cloned(),
        error,
    };
    match params.get("response_type").map(String::as_str) {
        Some("code") => {}
        Some(other) => return Err(back(AadError::unsupported_response_type(other))),
        None => return Err(back(AadError::missing("response_type"))),
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(back(AadError::bad_request(
            "Only response_mode=query is supported; leave response_mode out.".into(),
        )));
    }
    let accepted = &state.config().audiences;
    let default_resource = accepted.first().map(String::as_str).unwrap_or_default();
    let requested = match version {
        Version::V1 => Requested::v1(
            params.get("resource").map(String::as_str).unwrap_or(default_resource),
            accepted,
        ),
        Version::V2 => {
            let scope = params.get("scope").ok_or_else(|| back(AadError::missing("scope")))?;
            Requested::parse_v2(scope, accepted, default_resource)
        }
    }
    .map_err(back)?;
    let challenge = match (params.get("code_challenge"), params.get("code_challenge_method")) {
        (None, None) => None,
        (None, Some(_)) => return Err(back(AadError::missing("code_challenge"))),
        (Some(challenge), method) => {
            let method = ChallengeMethod::parse(method.map(String::as_str)).ok_or_else(|| {
                back(AadError::bad_request("code_challenge_method must be S256 or plain.".into()))
            })?;
            let well_formed = (43..=128).contains(&challenge.len())
                && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !well_formed {
                return Err(back(AadError::bad_request(
                    "code_challenge must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', \
                     '_' or '~' (RFC 7636)."
                        .into(),
                )));
            }
            Some((challenge.clone(), method))
        }
    };
    Ok(Checked {
        tenant,
        app,
        redirect_uri: redirect_uri.clone(),
        state: params.get("state").cloned(),
        requested,
        nonce: params.get("nonce").cloned(),
        challenge,
    })
}

/// True when `uri` is one of the app's redirect URIs. A loopback `http`
/// URI matches on any port (RFC 8252 7.3), as native apps listen on a port
/// they pick when they start.
fn redirect_allowed(app: &App, uri: &str) -> bool {
    app.redirect_uris.iter().any(|registered| {
        registered == uri
            || matches!((loopback(registered), loopback(uri)), (Some(a), Some(b)) if a == b)
    })
}

/// The host and path of an `http` loopback URI, without its port.
fn loopback(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("http://")?;
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?.to_owned(),
        None => authority.split(':').next()?.to_owned(),
    };
    ["localhost", "127.0.0.1", "::1"].contains(&host.as_str()).then(|| (host, path.to_owned()))
}

/// The user with `username` and `password`, or `None`. An unknown name
/// costs as much as a wrong password, so timing does not tell them apart.
pub(crate) async fn authenticate_user(
    state: &AppState,
    tenant: &Tenant,
    username: &str,
    password: String,
) -> Result<Option<User>, AadError> {
    let user = state.store().find_user(tenant.id, username).await.map_err(|e| {
        tracing::error!(error = %e, "looking up a user failed");
        AadError::internal()
    })?;
    let phc = match &user {
        Some(user) => String::from_utf8_lossy(&user.password_hash.0).into_owned(),
        None => decoy_hash().to_owned(),
    };
    let matches = tokio::task::spawn_blocking(move || verify_password(&phc, &password))
        .await
        .map_err(|_| AadError::internal())?;
    Ok(user.filter(|_| matches))
}

/// A hash no password is known for, checked when the user does not exist.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let decoy = OneTime::generate().map(|t| t.text).unwrap_or_else(|_| "decoy-password".into());
        hash_password(&decoy).unwrap_or_default()
    })
}

async fn issue_code(state: &AppState, checked: &Checked, user: &User) -> Result<String, AadError> {
    let drawn = OneTime::generate().map_err(|_| AadError::internal())?;
    let issued = now();
    let code = AuthCode {
        hash: Sealed(drawn.hash),
        client_id: checked.app.client_id,
        user: user.id,
        redirect_uri: checked.redirect_uri.clone(),
        scope: checked.requested.to_scope_string(),
        resource: checked.requested.resource.clone(),
        nonce: checked.nonce.clone(),
        code_challenge: checked.challenge.as_ref().map(|(c, _)| c.clone()),
        challenge_method: checked.challenge.as_ref().map(|(_, m)| m.as_str().to_owned()),
        issued,
        expires: issued.add_ticks(CODE_LIFETIME.ticks()),
    };
    state.store().save_auth_code(code).await.map_err(|e| {
        tracing::error!(error = %e, "saving an authorization code failed");
        AadError::internal()
    })?;
    Ok(drawn.text)
}

fn refuse(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(status, message) => {
            let main = format!(
                "<h1>Sign-in cannot continue</h1><p class=\"error\" role=\"alert\">{}</p>\
                 <p class=\"muted\">Tell the people who run the application you came from.</p>",
                escape(&message)
            );
            page(status, document("Sign-in error", &main))
        }
        Refusal::Redirect { redirect_uri, state, error } => {
            let description = format!("AADSTS{}: {}", error.code(), error.description());
            let mut pairs = vec![("error", error.error()), ("error_description", &description)];
            if let Some(s) = &state {
                pairs.push(("state", s));
            }
            redirect(&redirect_uri, &pairs)
        }
    }
}

/// A 302 to `uri` with `pairs` added to its query.
fn redirect(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{separator}{}", query.finish());
    match HeaderValue::from_str(&location) {
        Ok(location) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, location);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => refuse(Refusal::Page(
            StatusCode::BAD_REQUEST,
            "The redirect URI cannot be used in an HTTP header.".into(),
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn form_page(
    state: &AppState,
    checked: &Checked,
    params: &HashMap<String, String>,
    csrf: &str,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
    version: Version,
) -> Response {
    let action = match version {
        Version::V1 => format!("/{}/oauth2/authorize", checked.tenant.id),
        Version::V2 => format!("/{}/oauth2/v2.0/authorize", checked.tenant.id),
    };
    let mut hidden = String::new();
    for name in CARRIED {
        if let Some(value) = params.get(name) {
            hidden.push_str(&format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(value)
            ));
        }
    }
    hidden.push_str(&format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", escape(csrf)));
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let main = format!(
        "<h1>Sign in to {tenant}</h1>\
         <p class=\"muted\">{app} asks you to sign in.</p>{error}\
         <form method=\"post\" action=\"{action}\">{hidden}\
         <label for=\"username\">User name</label>\
         <input type=\"text\" id=\"username\" name=\"username\" value=\"{username}\" \
          autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" \
          autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>",
        tenant = escape(&checked.tenant.name),
        app = escape(&checked.app.name),
        action = escape(&action),
        username = escape(username),
    );
    let mut response = page(status, document("Sign in", &main));
    html::set_form_token(&mut response, csrf, state.config().public_url.starts_with("https://"));
    response
}

fn new_csrf_token() -> Result<String, AadError> {
    html::new_form_token().map_err(|_| AadError::internal())
}

fn parse_form(bytes: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_match_on_any_port_and_nothing_else_does() {
        let app = App {
            client_id: uuid::Uuid::nil(),
            tenant: uuid::Uuid::nil(),
            name: "a".into(),
            roles: vec![],
            redirect_uris: vec!["http://localhost/cb".into(), "https://app.example/cb".into()],
            secrets: vec![],
            created: now(),
        };
        assert!(redirect_allowed(&app, "https://app.example/cb"));
        assert!(redirect_allowed(&app, "http://localhost:53117/cb"));
        assert!(!redirect_allowed(&app, "http://localhost:53117/other"));
        assert!(!redirect_allowed(&app, "https://app.example/cb/../x"));
        assert!(!redirect_allowed(&app, "https://app.example:444/cb"));
        assert!(!redirect_allowed(&app, "http://localhost.evil.example/cb"));
        assert!(!redirect_allowed(&app, "http://127.0.0.1:80/cb"), "another loopback name");
    }
}
