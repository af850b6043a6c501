//! The portal's sign-in page for a tenant's users, its `POST`, the sign-out
//! and the portal's home page.
//!
//! The organization is found from the part of the user name after `@` (a
//! tenant domain), or from the optional organization field, which wins when
//! it is filled in: users whose names carry no domain of their tenant type
//! its name or domain there. The form carries the anti-forgery token of
//! [`crate::html`]; failed sign-ins count against the same per-user budget
//! as those of the authorization page, so the two pages together give no
//! more guesses than one.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use siemgate_store::{Tenant, TenantState, User};

use super::session::{self, issue_session, session_cookie};
use super::{PortalError, local_path, see_other};
use crate::html::{self, document, escape, page};
use crate::identity::authenticate_user;
use crate::{AppState, throttle};

/// Where the browser goes after signing in when it came with no (usable) `return`.
const HOME: &str = "/portal";

/// What a form page shows again when it comes back.
struct Form<'a> {
    username: &'a str,
    organization: &'a str,
    return_to: &'a str,
}

/// `GET /portal`: who is signed in, and what the portal is for.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match session::viewer(&state, &headers, HOME).await {
        Ok(viewer) => viewer,
        Err(to_sign_in) => return to_sign_in,
    };
    let main = format!(
        "{nav}<h1>siemgate portal</h1><p>You are signed in as {name} of {tenant}.</p>\
         <p class=\"muted\">The links in your organization's detections \
         (<code>LinkToWDATP</code>, <code>IncidentLinkToWDATP</code> and their MTP twins) \
         open an alert's page here.</p>",
        nav = super::nav(&viewer),
        name = escape(&viewer.user.display_name),
        tenant = escape(&viewer.tenant.name),
    );
    page(StatusCode::OK, html::wide_document("siemgate portal", &main))
}

/// `GET /portal/signin?return=/alert/...`: the form.
pub async fn page_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes());
    let return_to = params.get("return").and_then(|r| local_path(r)).unwrap_or(HOME);
    let form = Form { username: "", organization: "", return_to };
    match html::form_token_or_new(&headers) {
        Ok(token) => form_page(&state, &form, &token, None, StatusCode::OK),
        Err(e) => {
            tracing::error!(error = %e, "drawing an anti-forgery token failed");
            PortalError::Internal.into_response()
        }
    }
}

/// `POST /portal/signin`: checks the form and the password, then sets the
/// session cookie and sends the browser back where it was going.
pub async fn sign_in(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let fields = parse_form(&body);
    let field = |name: &str| fields.get(name).map(|v| v.trim()).unwrap_or("");
    let form = Form {
        username: field("username"),
        organization: field("organization"),
        return_to: local_path(field("return")).unwrap_or(HOME),
    };
    let presented = field("csrf");
    if !html::form_token_matches(&headers, presented) {
        return match html::new_form_token() {
            Ok(fresh) => {
                let message = "This sign-in form has expired or was not opened in this browser. \
                               Enter your user name and password again.";
                form_page(&state, &form, &fresh, Some(message), StatusCode::FORBIDDEN)
            }
            Err(_) => PortalError::Internal.into_response(),
        };
    }
    let password = fields.get("password").cloned().unwrap_or_default();
    match check(&state, &form, password).await {
        Ok((tenant, user)) => signed_in(&state, &form, &tenant, &user),
        Err(Refused::Again(status, message)) => {
            form_page(&state, &form, presented, Some(&message), status)
        }
        Err(Refused::Fault) => PortalError::Internal.into_response(),
    }
}

/// `POST /portal/signout`: the session cookie goes. The token in it stays
/// valid until it expires; it is the browser that forgets it.
pub async fn sign_out(State(state): State<AppState>) -> Response {
    session::sign_out(&state)
}

/// Why a sign-in did not go through.
enum Refused {
    /// Shown on the form, which comes back with this status.
    Again(StatusCode, String),
    /// A fault; the log has the cause.
    Fault,
}

const BAD_CREDENTIALS: &str = "The user name or password is incorrect. Check them, and the \
                               organization if your user name has no domain of it.";

/// The tenant and user the form's credentials belong to.
async fn check(
    state: &AppState,
    form: &Form<'_>,
    password: String,
) -> Result<(Tenant, User), Refused> {
    let again = |status, message: &str| Refused::Again(status, message.to_owned());
    if form.username.is_empty() || password.is_empty() {
        return Err(again(StatusCode::BAD_REQUEST, "Enter your user name and password."));
    }
    let tenant = find_tenant(state, form).await?;
    let tenant = match tenant {
        Some(t) if t.state == TenantState::Active => t,
        Some(t) if t.state == TenantState::Disabled => {
            let message = "Your organization is disabled on this server; ask its operator.";
            return Err(again(StatusCode::FORBIDDEN, message));
        }
        _ => return Err(again(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS)),
    };
    let throttle_key = throttle::user_key(tenant.id, form.username);
    if let Some(wait) = state.failures().blocked(&throttle_key) {
        let message = format!(
            "Too many failed sign-ins for this user name. Wait {wait} seconds before trying again."
        );
        return Err(Refused::Again(StatusCode::TOO_MANY_REQUESTS, message));
    }
    match authenticate_user(state, &tenant, form.username, password).await {
        Ok(Some(user)) => {
            state.failures().clear(&throttle_key);
            Ok((tenant, user))
        }
        Ok(None) => {
            state.failures().record(&throttle_key);
            tracing::info!(tenant = %tenant.id, "portal sign-in refused: bad user name or password");
            Err(again(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS))
        }
        Err(_) => Err(Refused::Fault),
    }
}

/// The tenant the organization field names, or else the user name's domain.
async fn find_tenant(state: &AppState, form: &Form<'_>) -> Result<Option<Tenant>, Refused> {
    let key = if form.organization.is_empty() {
        form.username.rsplit_once('@').map(|(_, domain)| domain).unwrap_or("")
    } else {
        form.organization
    };
    if key.is_empty() {
        return Ok(None);
    }
    state.store().find_tenant(key).await.map_err(|e| {
        tracing::error!(error = %e, "looking up a tenant failed");
        Refused::Fault
    })
}

fn signed_in(state: &AppState, form: &Form<'_>, tenant: &Tenant, user: &User) -> Response {
    let token = match issue_session(state, tenant, user) {
        Ok(token) => token,
        Err(e) => return e.into_response(),
    };
    tracing::info!(tenant = %tenant.id, user = %user.id, "signed in to the portal");
    let mut response = see_other(form.return_to);
    if let Some(cookie) = session_cookie(state, Some(&token)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn form_page(
    state: &AppState,
    form: &Form<'_>,
    token: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let main = format!(
        "<h1>Sign in to the siemgate portal</h1>\
         <p class=\"muted\">Sign in with your organization's account to see its alerts.</p>\
         {error}<form method=\"post\" action=\"/portal/signin\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
         <input type=\"hidden\" name=\"return\" value=\"{return_to}\">\
         <label for=\"username\">User name</label>\
         <input type=\"text\" id=\"username\" name=\"username\" value=\"{username}\" \
          autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" \
          autocomplete=\"current-password\" required>\
         <label for=\"organization\">Organization <span class=\"muted\">(only if your user \
          name has no domain of it)</span></label>\
         <input type=\"text\" id=\"organization\" name=\"organization\" \
          value=\"{organization}\">\
         <button type=\"submit\">Sign in</button></form>",
        token = escape(token),
        return_to = escape(form.return_to),
        username = escape(form.username),
        organization = escape(form.organization),
    );
    let mut response = page(status, document("Sign in", &main));
    html::set_form_token(&mut response, token, session::secure(state));
    response
}

fn parse_form(bytes: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(bytes).into_owned().collect()
}
