//! `GET /api/alerts`: a tenant's detections in a window, streamed straight
//! from the rendered JSON the store keeps.

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use siemgate_identity::roles;
use siemgate_model::AlertsQuery;
use siemgate_store::Framing;

use super::error::ApiError;
use crate::{AppState, now};

pub async fn get(state: AppState, request: Request<Body>) -> Response {
    // The head alone: a body is not `Sync`, and nothing is read from it.
    let (head, _) = request.into_parts();
    match answer(&state, &head).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn answer(state: &AppState, request: &Parts) -> Result<Response, ApiError> {
    let caller = super::admit(state, &request.headers, roles::SIEM_READ, "read detections").await?;
    let raw = request.uri.query().unwrap_or_default();
    let query = AlertsQuery::from_pairs(form_urlencoded::parse(raw.as_bytes()), now())
        .map_err(|e| ApiError::BadParameter(e.to_string()))?;
    let stream =
        state.store().stream(caller.tenant.id, &query, Framing::JsonArray).await.map_err(|e| {
            tracing::error!(error = %e, "opening a window failed");
            ApiError::Internal
        })?;
    // A store failure mid-body ends the response early; the client sees
    // an incomplete array, never a wrong one.
    let counted = state.clone();
    let body = stream.map(move |chunk| {
        chunk
            .map(|c| {
                counted.metrics().served(c.detections as u64);
                c.bytes
            })
            .map_err(|e| {
                tracing::error!(error = %e, "a window failed mid-stream");
                std::io::Error::other(e.to_string())
            })
    });
    let mut response = Body::from_stream(body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    Ok(response)
}
