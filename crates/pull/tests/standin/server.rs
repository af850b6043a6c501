//! A stand-in for Microsoft's hosts that misbehaves on cue: an Azure-AD-like
//! token endpoint and `GET /api/alerts` over an in-memory list of detections,
//! with a script of faults the test sets before the puller runs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use siemgate_model::{KEYS, Span, Timestamp};
use siemgate_pull::api::Api;
use siemgate_pull::endpoint::{DEFAULT_RESOURCE, Endpoint, Hosts, TokenVersion};
use siemgate_pull::token::Tokens;

pub const TENANT: &str = "8f5a1c3e-2b4d-4e6f-9a0b-1c2d3e4f5a6b";
pub const CLIENT_ID: &str = "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a";
pub const SECRET: &str = "Qx8~right.secret-for-the-stand-in";

/// What the stand-in does to one request to `/api/alerts`, in script order.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answers normally: a placeholder to reach a later request.
    Pass,
    /// Answers `code` with an API error body and, if given, `Retry-After`.
    Status { code: u16, retry_after: Option<u64>, message: &'static str },
    /// Sends the first half of the array, then drops the connection.
    CutOff,
    /// Sends half the array, then nothing more for a minute.
    Stall,
    /// A 200 with an HTML page, as a captive proxy might send.
    Html,
    /// The window's records followed by one without a FullId.
    MissingFullId,
    /// Forgets every token issued so far, as if the signing keys rotated, so
    /// the request's own token is refused.
    RotateKeys,
    /// Answers normally; then detection `number` arrives, stamped
    /// `after_until` past this request's window end: inside the puller's lag.
    Arrive { number: usize, after_until: Span },
}

impl Fault {
    pub fn status(code: u16, message: &'static str) -> Fault {
        Fault::Status { code, retry_after: None, message }
    }
}

/// One request to `/api/alerts` as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub status: u16,
    /// Detections in the answer, whole or not.
    pub served: usize,
}

struct Detection {
    json: Value,
    full_id: String,
    processed: Timestamp,
}

struct Inner {
    detections: Vec<Detection>,
    until_inclusive: bool,
    faults: VecDeque<Fault>,
    token_lifetime: u64,
    /// Tokens the API accepts, with when each expires.
    valid: HashMap<String, Instant>,
    tokens_issued: usize,
    seen: Vec<Seen>,
}

type Shared = Arc<Mutex<Inner>>;

/// A running stand-in on 127.0.0.1.
#[derive(Clone)]
pub struct StandIn {
    pub origin: String,
    inner: Shared,
}

impl StandIn {
    pub async fn start() -> StandIn {
        let inner = Arc::new(Mutex::new(Inner {
            detections: Vec::new(),
            until_inclusive: false,
            faults: VecDeque::new(),
            token_lifetime: 3599,
            valid: HashMap::new(),
            tokens_issued: 0,
            seen: Vec::new(),
        }));
        let app = axum::Router::new()
            .route("/{tenant}/oauth2/token", post(token))
            .route("/api/alerts", get(alerts))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        StandIn { origin, inner }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// Adds detection `number`, processed at `processed`, visible at once.
    pub fn add(&self, number: usize, processed: Timestamp) {
        self.lock().detections.push(detection(number, processed));
    }

    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults.extend(faults);
    }

    /// Whether `untilTimeUtc` includes its instant (the API says it does not).
    pub fn until_inclusive(&self, inclusive: bool) {
        self.lock().until_inclusive = inclusive;
    }

    /// The `expires_in` of tokens issued from now on, in seconds; the API
    /// refuses a token after that.
    pub fn token_lifetime(&self, seconds: u64) {
        self.lock().token_lifetime = seconds;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    pub fn tokens_issued(&self) -> usize {
        self.lock().tokens_issued
    }

    /// The API as the puller reaches it with `secret`.
    pub fn api(&self, secret: &str) -> Api {
        let hosts = Hosts::Custom { url: self.origin.clone(), token_url: None };
        let (alerts_url, token_url) = hosts.urls(TENANT, TokenVersion::V1);
        let endpoint = Endpoint {
            tenant: TENANT.to_string(),
            client_id: CLIENT_ID.to_string(),
            client_secret: secret.to_string(),
            alerts_url: alerts_url.clone(),
            token_url,
            resource: DEFAULT_RESOURCE.to_string(),
            token_version: TokenVersion::V1,
            ca_file: None,
            proxy: None,
            gzip: false,
        };
        let http = siemgate_pull::http::client(&endpoint).unwrap();
        Api::new(http.clone(), Tokens::new(http, endpoint), alerts_url)
    }
}

/// The FullId of detection `number`: `AlertId:IocUniqueId`.
pub fn full_id(number: usize) -> String {
    format!("da6389{number:012}_{}:{:0>43}=", -1_000_000 - number as i64, number)
}

/// A detection with all 50 keys in the API's order: `""` where absent, as
/// the API sends them, and the values a SIEM would show filled in.
fn detection(number: usize, processed: Timestamp) -> Detection {
    let id = full_id(number);
    let (alert_id, ioc) = id.split_once(':').unwrap();
    let time = processed.to_string();
    let mut json = serde_json::Map::new();
    for key in KEYS {
        let value = match key {
            "AlertTime" | "LastProcessedTimeUtc" => json!(time),
            "AlertTitle" => json!("Suspicious PowerShell command line"),
            "Severity" => json!("Medium"),
            "AlertId" => json!(alert_id),
            "IocUniqueId" => json!(ioc),
            "FullId" => json!(id),
            "MachineName" => json!(format!("pc{number}")),
            "DeviceID" => json!(format!("{number:040x}")),
            "AlertPart" => json!(0),
            "ReportID" => json!(number),
            "RemediationIsSuccess" | "WasExecutingWhileDetected" => Value::Null,
            _ => json!(""),
        };
        json.insert(key.to_string(), value);
    }
    Detection { json: Value::Object(json), full_id: id, processed }
}

async fn token(
    State(inner): State<Shared>,
    Path(_tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    if field("grant_type") != "client_credentials" || field("resource") != DEFAULT_RESOURCE {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS900144: The request body must contain the expected parameters.",
        );
    }
    if field("client_id") != CLIENT_ID || field("client_secret") != SECRET {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in \
             the request is the client secret value, not the client secret ID.",
        );
    }
    let mut inner = inner.lock().unwrap();
    inner.tokens_issued += 1;
    let value = format!("eyJ0eXAi.stand-in-token-{}", inner.tokens_issued);
    let lifetime = inner.token_lifetime;
    inner.valid.insert(value.clone(), Instant::now() + Duration::from_secs(lifetime));
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime.to_string(),
        "ext_expires_in": lifetime.to_string(),
        "resource": DEFAULT_RESOURCE,
        "access_token": value,
    }))
    .into_response()
}

fn aad_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": format!(
            "{description}\r\nTrace ID: 3c4d5e6f-0000-4000-8000-000000000001\r\n\
             Correlation ID: 9a8b7c6d-0000-4000-8000-000000000002\r\n\
             Timestamp: 2026-01-01 00:00:00Z"
        ),
        "error_codes": [7000215],
        "trace_id": "3c4d5e6f-0000-4000-8000-000000000001",
        "correlation_id": "9a8b7c6d-0000-4000-8000-000000000002",
    });
    (status, axum::Json(body)).into_response()
}

fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

async fn alerts(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let mut inner = shared.lock().unwrap();
    let param = |name: &str| {
        let (_, value) = params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))?;
        Timestamp::parse(value).ok()
    };
    let mut seen = Seen {
        at: Instant::now(),
        since: param("sinceTimeUtc"),
        until: param("untilTimeUtc"),
        status: 200,
        served: 0,
    };

    if matches!(inner.faults.front(), Some(Fault::RotateKeys)) {
        inner.faults.pop_front();
        inner.valid.clear();
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let good = inner.valid.get(token).is_some_and(|expires| Instant::now() < *expires);
    if !good {
        seen.status = 401;
        inner.seen.push(seen);
        let mut response = api_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "the bearer token is expired or was not signed by a current key",
        );
        let challenge = "Bearer error=\"invalid_token\"".parse().unwrap();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        return response;
    }

    let fault = inner.faults.pop_front();
    if let Some(Fault::Status { code, retry_after, message }) = fault {
        seen.status = code;
        inner.seen.push(seen);
        let status = StatusCode::from_u16(code).unwrap();
        let mut response = api_error(status, status.canonical_reason().unwrap_or(""), message);
        if let Some(after) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, after.into());
        }
        return response;
    }
    let (Some(since), Some(until)) = (seen.since, seen.until) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "give sinceTimeUtc and untilTimeUtc",
        );
    };
    let mut window: Vec<&Detection> = inner
        .detections
        .iter()
        .filter(|d| {
            d.processed >= since
                && (d.processed < until || inner.until_inclusive && d.processed == until)
        })
        .collect();
    window.sort_by(|a, b| (a.processed, &a.full_id).cmp(&(b.processed, &b.full_id)));
    let mut records: Vec<Value> = window.into_iter().map(|d| d.json.clone()).collect();
    seen.served = records.len();
    inner.seen.push(seen);

    if let Some(Fault::Arrive { number, after_until }) = &fault {
        let late = detection(*number, until.add_ticks(after_until.ticks()));
        inner.detections.push(late);
    }
    drop(inner);

    let ok = |body: Body| {
        ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
    };
    match fault {
        Some(Fault::Html) => (
            [(header::CONTENT_TYPE, "text/html")],
            "<!DOCTYPE html><html><body><h1>Sign in to continue</h1></body></html>",
        )
            .into_response(),
        Some(Fault::MissingFullId) => {
            let mut broken = records.first().cloned().unwrap_or_else(|| detection(0, since).json);
            broken.as_object_mut().unwrap().remove("FullId");
            records.push(broken);
            ok(Body::from(serde_json::to_vec(&records).unwrap()))
        }
        Some(Fault::CutOff) => ok(half_then(records, None)),
        Some(Fault::Stall) => ok(half_then(records, Some(Duration::from_secs(60)))),
        _ => ok(Body::from(serde_json::to_vec(&records).unwrap())),
    }
}

/// A body that sends the first half of `records`' array, then, after a
/// pause long enough for the client to read it, fails (dropping the
/// connection mid-body) or, given `stall`, waits that long first.
fn half_then(records: Vec<Value>, stall: Option<Duration>) -> Body {
    let bytes = serde_json::to_vec(&records).unwrap();
    let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
    let pause = stall.unwrap_or(Duration::from_millis(50));
    let steps = futures_util::stream::unfold(0, move |step| {
        let half = half.clone();
        async move {
            match step {
                0 => Some((Ok(half), 1)),
                1 => {
                    tokio::time::sleep(pause).await;
                    Some((Err(std::io::Error::other("the stand-in dropped the connection")), 2))
                }
                _ => None,
            }
        }
    });
    Body::from_stream(steps)
}
