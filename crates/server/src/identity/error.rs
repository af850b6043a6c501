//! Errors of the token endpoints, in Azure AD's shape.
//!
//! Client libraries show `error_description` to their users, and users paste
//! its `AADSTS` code into a search engine, so each refusal carries the code
//! Azure AD uses for the same situation and a description that says what to
//! fix. The wording is our own.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use siemgate_model::Timestamp;
use uuid::Uuid;

/// One refusal of a token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AadError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
    retry_after: Option<u64>,
}

impl AadError {
    fn new(status: StatusCode, error: &'static str, code: u32, description: String) -> Self {
        AadError { status, error, code, description, retry_after: None }
    }

    /// The `AADSTS` number.
    pub fn code(&self) -> u32 {
        self.code
    }

    pub fn unknown_tenant(tenant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check the tenant id or domain in the URL; \
                 `siemgate tenant list` shows the tenants this server knows."
            ),
        )
    }

    pub fn tenant_disabled(tenant: &str, state: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            7000112,
            format!(
                "Tenant '{tenant}' is {state}; its apps cannot obtain tokens until it is enabled."
            ),
        )
    }

    pub fn unknown_app(client_id: &str, tenant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{tenant}'. Check the client id, and that the app is registered in this tenant."
            ),
        )
    }

    pub fn bad_secret(client_id: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided for app '{client_id}'. Send the secret's value \
                 (shown once when it was added), not its id."
            ),
        )
    }

    pub fn expired_secret(client_id: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            format!(
                "The client secret presented for app '{client_id}' has expired. Add a new one \
                 with `siemgate app secret add {client_id}`."
            ),
        )
    }

    pub fn missing(parameter: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }

    pub fn unsupported_grant(grant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!(
                "The grant type '{grant}' is not supported; use client_credentials, \
                 authorization_code or refresh_token."
            ),
        )
    }

    pub fn bad_resource(resource: &str, accepted: &[String]) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant. This \
                 server issues tokens for: {}.",
                accepted.join(", ")
            ),
        )
    }

    pub fn bad_scope(scope: &str, accepted: &[String]) -> Self {
        let examples: Vec<String> = accepted.iter().map(|a| format!("{a}/.default")).collect();
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows \
                 must ask for a resource's .default scope: {}.",
                examples.join(", ")
            ),
        )
    }

    pub fn invalid_code() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            "The provided authorization code is not valid. Codes are single-use and short-lived; \
             sign in again to get a new one."
                .into(),
        )
    }

    pub fn reused_code() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            54005,
            "The authorization code was already redeemed. A code works once; the tokens \
             obtained with it have been revoked, so sign in again."
                .into(),
        )
    }

    pub fn expired_code() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70008,
            "The authorization code has expired. Redeem codes within minutes of signing in.".into(),
        )
    }

    pub fn code_for_another_client(client_id: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            format!("The authorization code was issued to another app, not to '{client_id}'."),
        )
    }

    pub fn redirect_mismatch() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            500112,
            "The redirect_uri does not match the one sent with the authorization request; send \
             the same value to both endpoints."
                .into(),
        )
    }

    pub fn pkce_mismatch() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            501481,
            "The code_verifier does not match the code_challenge sent with the authorization \
             request."
                .into(),
        )
    }

    pub fn invalid_refresh_token() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            "The refresh token is not valid: it was already used, revoked (its app or user was \
             removed, or the password changed), or issued to another app. Sign in again."
                .into(),
        )
    }

    pub fn expired_refresh_token() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity. Sign in again.".into(),
        )
    }

    pub fn several_resources(scope: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            28000,
            format!(
                "The scope {scope} names more than one resource; ask for one resource's scopes \
                 per request."
            ),
        )
    }

    pub fn user_gone() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            50034,
            "The user this grant was made for no longer exists in the tenant.".into(),
        )
    }

    pub fn bad_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            50126,
            "Error validating credentials: the user name or the password is wrong.".into(),
        )
    }

    pub fn user_locked(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_grant",
            50053,
            format!(
                "Too many failed sign-ins for this user name. Wait {retry_after} seconds before \
                 trying again."
            ),
        );
        e.retry_after = Some(retry_after);
        e
    }

    pub fn login_required() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "login_required",
            50058,
            "prompt=none was asked for, but signing in here always needs the user; send the \
             request without prompt=none."
                .into(),
        )
    }

    pub fn redirect_not_registered(redirect_uri: &str, client_id: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50011,
            format!(
                "The redirect URI '{redirect_uri}' is not registered for app '{client_id}'. \
                 Register it with `siemgate app add --redirect-uri` (or ask the server's \
                 operator to)."
            ),
        )
    }

    pub fn unsupported_response_type(response_type: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
            70005,
            format!("response_type '{response_type}' is not supported; use response_type=code."),
        )
    }

    pub fn bad_request(description: String) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", 900144, description)
    }

    pub fn throttled(client_id: &str, retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            50196,
            format!(
                "Too many failed sign-ins for app '{client_id}'. Wait {retry_after} seconds, \
                 and check the secret before trying again."
            ),
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// The `error` value (`invalid_grant`, ...).
    pub fn error(&self) -> &'static str {
        self.error
    }

    /// The description, without the code and trace lines.
    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            90100,
            "The server could not complete the request; its log has the cause.".into(),
        )
    }
}

impl IntoResponse for AadError {
    fn into_response(self) -> Response {
        let trace_id = Uuid::new_v4();
        let correlation_id = Uuid::new_v4();
        let now = Timestamp::from_system_time(std::time::SystemTime::now());
        let body = serde_json::json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {now}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": now.to_string(),
            "trace_id": trace_id.to_string(),
            "correlation_id": correlation_id.to_string(),
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
