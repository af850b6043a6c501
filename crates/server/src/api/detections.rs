//! `POST /api/detections`: a JSON array or NDJSON of detections, stored as
//! one batch: whole or not at all, and durable before the answer.

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use siemgate_identity::roles;
use siemgate_model::prepare::prepare;
use siemgate_model::records::RecordReader;
use siemgate_model::{PrepareOptions, Prepared};

use super::error::ApiError;
use crate::AppState;

pub async fn post(state: AppState, request: Request<Body>) -> Response {
    match answer(&state, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn answer(state: &AppState, request: Request<Body>) -> Result<Response, ApiError> {
    let caller = super::admit(state, request.headers(), roles::INGEST, "send detections").await?;
    let limit = state.config().ingest_limit_bytes;
    let body = axum::body::to_bytes(request.into_body(), limit).await.map_err(|_| {
        ApiError::TooLarge(format!(
            "the request body is over {limit} bytes; send the detections in several requests"
        ))
    })?;

    let options = PrepareOptions {
        portal_url: state.config().public_url.clone(),
        keep_processed_time: false,
    };
    let batch = tokio::task::spawn_blocking(move || read_batch(&body, &options))
        .await
        .map_err(|_| ApiError::Internal)??;
    if batch.is_empty() {
        return Err(ApiError::BadDetection(
            "the body holds no detections; send a JSON array or NDJSON of detections".into(),
        ));
    }
    let count = batch.len();
    let report = state.store().ingest(caller.tenant.id, batch).await.map_err(|e| {
        tracing::error!(error = %e, "storing a batch failed");
        ApiError::Internal
    })?;
    state.metrics().stored(report.stored, report.duplicates);
    tracing::info!(
        tenant = %caller.tenant.id, received = count, stored = report.stored,
        duplicates = report.duplicates, "ingested"
    );
    let answer = serde_json::json!({
        "received": count,
        "stored": report.stored,
        "duplicates": report.duplicates,
    });
    Ok((StatusCode::OK, Json(answer)).into_response())
}

/// Every record of `body`, checked and rendered; the first bad one refuses
/// the whole batch, naming its position.
fn read_batch(body: &[u8], options: &PrepareOptions) -> Result<Vec<Prepared>, ApiError> {
    let mut batch = Vec::new();
    for item in RecordReader::new(body) {
        let (at, detection) = item.map_err(|e| refuse(e.to_string()))?;
        let prepared = prepare(detection, options).map_err(|e| refuse(format!("{at}: {e}")))?;
        batch.push(prepared);
    }
    Ok(batch)
}

fn refuse(reason: String) -> ApiError {
    ApiError::BadDetection(format!("{reason}; nothing of this request was stored"))
}
