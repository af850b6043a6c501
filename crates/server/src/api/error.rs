//! `ApiError`: every refusal of the SIEM API and of ingest, as a status and
//! a JSON body `{"error":{"code":"...","message":"..."}}` a person can act on.
//! A 5xx says little; the log holds the cause.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::bearer::BearerError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Bearer(#[from] BearerError),
    #[error("{0}")]
    MissingRole(String),
    #[error("{0}")]
    BadParameter(String),
    #[error("{0}")]
    BadDetection(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("this app's rate limit is spent; retry after {} s", retry_seconds(.0))]
    RateLimited(std::time::Duration),
    #[error("the server failed to answer; its log says why")]
    Internal,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Bearer(_) => StatusCode::UNAUTHORIZED,
            ApiError::MissingRole(_) => StatusCode::FORBIDDEN,
            ApiError::BadParameter(_) | ApiError::BadDetection(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code in the body, for scripts to branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Bearer(e) => e.code(),
            ApiError::MissingRole(_) => "Forbidden",
            ApiError::BadParameter(_) => "InvalidParameter",
            ApiError::BadDetection(_) => "InvalidDetection",
            ApiError::TooLarge(_) => "PayloadTooLarge",
            ApiError::NotFound(_) => "NotFound",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::RateLimited(_) => "TooManyRequests",
            ApiError::Internal => "InternalServerError",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Bearer(e) = self {
            // The bearer refusal carries its own status and challenge.
            return e.into_response();
        }
        let body =
            serde_json::json!({ "error": { "code": self.code(), "message": self.to_string() } });
        let mut response = (self.status(), Json(body)).into_response();
        if let ApiError::RateLimited(wait) = self {
            response.headers_mut().insert(header::RETRY_AFTER, retry_seconds(&wait).into());
        }
        response
    }
}

/// Whole seconds to wait, rounded up: `Retry-After` takes no fractions.
fn retry_seconds(wait: &std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}
