//! The portal pages that a detection's link fields open: an alert with all
//! its detections (`LinkToWDATP`, `LinkToMTP`), and the alert in its
//! device's context (`IncidentLinkToWDATP`, `IncidentLinkToMTP`).
//!
//! Only a signed-in user of a tenant sees them, and only the tenant's own
//! alerts: another tenant's alert is the same 404 as one that does not
//! exist. Every detection field is someone else's text (command lines, file
//! names, URLs) and is escaped; URLs are shown as text, never as links.

mod alert;
mod fields;
mod incident;
mod session;
mod signin;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use siemgate_model::ids::AlertId;
use siemgate_store::StoreError;

use crate::AppState;
use crate::html::{document, escape, page};

pub use session::PORTAL_AUDIENCE;

/// The spellings of the alert page's path. Links from the real product
/// and from hand-edited bookmarks differ in letter case; these are the ones
/// seen.
const ALERT_PATHS: [&str; 3] = ["/alert/{alert_id}", "/Alert/{alert_id}", "/alerts/{alert_id}"];

/// The spellings of the alert-context page's path.
const INCIDENT_PATHS: [&str; 4] =
    ["/incidents/byalert", "/incidents/byAlert", "/Incidents/ByAlert", "/incidents/ByAlert"];

/// The portal's routes.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new()
        .route("/portal", get(signin::home))
        .route("/portal/signin", get(signin::page_get).post(signin::sign_in))
        .route("/portal/signout", post(signin::sign_out));
    for path in ALERT_PATHS {
        router = router.route(path, get(alert::page_get));
    }
    for path in INCIDENT_PATHS {
        router = router.route(path, get(incident::page_get));
    }
    router
}

/// Why a portal page cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// No alert by that id in the viewer's tenant; whether another tenant
    /// has one is never told.
    #[error("there is no alert {0:?} in your organization; check the link you followed")]
    NoAlert(String),
    /// A fault; the log has the cause.
    #[error("the server could not show this page; its log has the cause")]
    Internal,
}

impl PortalError {
    /// Logs a store failure and hides it behind [`PortalError::Internal`].
    fn store(e: StoreError) -> PortalError {
        tracing::error!(error = %e, "reading the store for a portal page failed");
        PortalError::Internal
    }

    fn page(&self) -> Response {
        let (status, heading) = match self {
            PortalError::NoAlert(_) => (StatusCode::NOT_FOUND, "Alert not found"),
            PortalError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
        };
        let main = format!(
            "<h1>{heading}</h1><p class=\"error\" role=\"alert\">{}</p>\
             <p class=\"muted\"><a href=\"/portal\">Portal home</a></p>",
            escape(&self.to_string())
        );
        page(status, document(heading, &main))
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        self.page()
    }
}

/// The detections of the viewer's tenant's alert `alert_id`, by `AlertPart`.
/// An id of the wrong shape, an unknown alert and another tenant's alert
/// are all the same [`PortalError::NoAlert`].
async fn load_alert(
    state: &AppState,
    viewer: &session::Viewer,
    alert_id: &str,
) -> Result<Vec<fields::Record>, PortalError> {
    if AlertId::parse(alert_id).is_none() {
        return Err(PortalError::NoAlert(alert_id.to_owned()));
    }
    let bodies = state
        .store()
        .alert_detections(viewer.tenant.id, alert_id)
        .await
        .map_err(PortalError::store)?;
    let records: Vec<fields::Record> = bodies
        .iter()
        .map(|b| fields::Record::parse(b))
        .collect::<Option<_>>()
        .ok_or(PortalError::Internal)?;
    if records.is_empty() {
        return Err(PortalError::NoAlert(alert_id.to_owned()));
    }
    Ok(records)
}

/// The request's path and query, to come back to after signing in.
fn return_path(uri: &Uri) -> String {
    uri.path_and_query().map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned())
}

/// A 303 to `location`, a path on this server.
fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `target` when it is a path on this server that is safe to send the
/// browser to after signing in; `None` for anything that could leave it
/// (`https://...`, `//host`, `/\host`) or that a header cannot carry.
fn local_path(target: &str) -> Option<&str> {
    let mut chars = target.chars();
    let local = chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && !target.chars().any(|c| c == '\\' || c.is_control() || c == ' ')
        && HeaderValue::from_str(target).is_ok();
    local.then_some(target)
}

/// The bar at the top of every page of a signed-in user.
fn nav(viewer: &session::Viewer) -> String {
    format!(
        "<nav><a href=\"/portal\">siemgate</a><span class=\"muted\">{user} · {tenant} \
         <form method=\"post\" action=\"/portal/signout\" style=\"display:inline\">\
         <button type=\"submit\">Sign out</button></form></span></nav>",
        user = escape(&viewer.user.username),
        tenant = escape(&viewer.tenant.name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_server_are_returned_to() {
        for good in ["/alert/da1_1", "/incidents/byalert?alertId=da1_1&source=SIEM", "/portal"] {
            assert_eq!(local_path(good), Some(good));
        }
        for bad in [
            "https://evil.example",
            "//evil.example/x",
            "/\\evil.example",
            "/a\\b",
            "javascript:alert(1)",
            "evil.example",
            "",
            "/a\r\nSet-Cookie: x=1",
            "/a b",
        ] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
    }
}
