//! One request to `GET /api/alerts`: the query, the bearer token (renewed
//! once on a 401) and the answer's status sorted into "go on", "try again"
//! and "stop".

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use siemgate_model::Timestamp;

use crate::error::PullError;
use crate::token::{Tokens, chain};

/// The filters of a request, as the API names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub machine_groups: Vec<String>,
    pub device_tag: Option<String>,
    pub cloud_tags: Vec<String>,
}

/// What one request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub since: Timestamp,
    pub until: Timestamp,
    /// Only the newest N: for one-shot pulls that ask for it, never for
    /// following, since it drops the oldest records of a window.
    pub limit: Option<u32>,
    pub filters: Filters,
}

impl Query {
    /// The query string's pairs, times written with all seven fractional
    /// digits and a `Z`.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            ("sinceTimeUtc", self.since.to_string()),
            ("untilTimeUtc", self.until.to_string()),
        ];
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        for group in &self.filters.machine_groups {
            pairs.push(("machinegroups", group.clone()));
        }
        if let Some(tag) = &self.filters.device_tag {
            pairs.push(("DeviceCreatedMachineTags", tag.clone()));
        }
        for tag in &self.filters.cloud_tags {
            pairs.push(("CloudCreatedMachineTags", tag.clone()));
        }
        pairs
    }
}

/// The SIEM API of one tenant.
#[derive(Debug)]
pub struct Api {
    http: reqwest::Client,
    tokens: Tokens,
    alerts_url: String,
}

impl Api {
    pub fn new(http: reqwest::Client, tokens: Tokens, alerts_url: String) -> Api {
        Api { http, tokens, alerts_url }
    }

    pub fn alerts_url(&self) -> &str {
        &self.alerts_url
    }

    /// Sends `query` and returns the answer once its status says a body of
    /// detections follows.
    pub async fn alerts(&self, query: &Query) -> Result<Response, PullError> {
        let pairs = query.pairs();
        let mut renewed = false;
        loop {
            let token = self.tokens.get().await?;
            let response = self
                .http
                .get(&self.alerts_url)
                .query(&pairs)
                .bearer_auth(&token)
                .send()
                .await
                .map_err(|e| {
                    PullError::retry(
                        format!("cannot reach {}: {}", self.alerts_url, chain(&e)),
                        None,
                    )
                })?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !renewed {
                // A token that should still be good was refused; the server
                // may have rotated its keys. One fresh token, then give up.
                tracing::info!("the API refused the token; fetching a new one");
                self.tokens.refused(&token).await;
                renewed = true;
                continue;
            }
            return check(response).await;
        }
    }
}

async fn check(response: Response) -> Result<Response, PullError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let after = retry_after(response.headers());
    let url = response.url().path().to_string();
    let body = response.text().await.unwrap_or_default();
    let told = describe(&body);
    let what = format!("{url} answered {status}{told}");
    match status.as_u16() {
        401 => Err(PullError::Auth(format!(
            "{what}; a freshly issued token was refused too: check that the app has the \
             SIEM role and that the token's resource is the API's"
        ))),
        408 | 429 | 500..=599 => Err(PullError::retry(what, after)),
        _ => Err(PullError::Refused(what)),
    }
}

/// `: message` from an API error body: `{"error":{"message":..}}` as
/// siemgate and Microsoft's services write it, else the text itself.
fn describe(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("message"))
            .or_else(|| v.get("error_description"))
            .and_then(|m| m.as_str())
    });
    match message {
        Some(m) => format!(": {}", clip(m)),
        None if body.trim().is_empty() => String::new(),
        None => format!(": {}", clip(body.trim())),
    }
}

/// The first 300 characters of a server's text, enough to say what it meant.
pub(crate) fn clip(text: &str) -> String {
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// A `Retry-After` in seconds (the HTTP-date form is read as "a minute").
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    match value.parse::<u64>() {
        Ok(seconds) => Some(Duration::from_secs(seconds)),
        Err(_) => Some(Duration::from_secs(60)),
    }
}

/// A request that got no answer: worth retrying, unless the server's
/// certificate is not trusted, which no retry will change.
pub(crate) fn unreachable(url: &str, e: &reqwest::Error) -> PullError {
    let text = format!("cannot reach {url}: {}", chain(e));
    if text.contains("certificate") {
        return PullError::Refused(format!(
            "{text}; if the server's certificate comes from a private CA, give its PEM \
             file with --ca-file"
        ));
    }
    PullError::retry(text, None)
}
