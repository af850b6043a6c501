//! Access tokens from Azure AD's client-credentials grant (or any server
//! that speaks it), cached and renewed before they expire.
//!
//! A token is renewed when four fifths of its life have passed (at most five
//! minutes before it expires), so a long pull never starts with a token about
//! to lapse; and once more when the API answers 401 to a token that should
//! still be good, since the server may have rotated its keys.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::endpoint::{Endpoint, TokenVersion};
use crate::error::PullError;

/// How long before expiry a token is renewed, at most.
const RENEW_MARGIN: Duration = Duration::from_secs(300);

/// Gets tokens for one app and keeps the current one.
#[derive(Debug)]
pub struct Tokens {
    http: reqwest::Client,
    endpoint: Endpoint,
    current: Mutex<Option<Current>>,
}

#[derive(Debug)]
struct Current {
    value: String,
    renew_at: Instant,
}

/// The fields of a token response this client reads. Azure AD's v1 endpoint
/// sends `expires_in` as a string, v2 as a number.
#[derive(Deserialize)]
struct Granted {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// An OAuth error body, as Azure AD writes it.
#[derive(Deserialize)]
struct Refusal {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl Tokens {
    pub fn new(http: reqwest::Client, endpoint: Endpoint) -> Tokens {
        Tokens { http, endpoint, current: Mutex::new(None) }
    }

    /// A token good for a while yet: the cached one, or a new one.
    pub async fn get(&self) -> Result<String, PullError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref()
            && Instant::now() < c.renew_at
        {
            return Ok(c.value.clone());
        }
        let fresh = self.fetch().await?;
        let value = fresh.value.clone();
        *current = Some(fresh);
        Ok(value)
    }

    /// Forgets `token` after the API refused it, so the next `get` fetches
    /// a new one; a token renewed meanwhile by another request is kept.
    pub async fn refused(&self, token: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| c.value == token) {
            *current = None;
        }
    }

    async fn fetch(&self) -> Result<Current, PullError> {
        let e = &self.endpoint;
        let scope;
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", e.client_id.as_str()),
            ("client_secret", e.client_secret.as_str()),
        ];
        match e.token_version {
            TokenVersion::V1 => form.push(("resource", e.resource.as_str())),
            TokenVersion::V2 => {
                scope = format!("{}/.default", e.resource.trim_end_matches('/'));
                form.push(("scope", scope.as_str()));
            }
        }
        let asked = Instant::now();
        let response = self
            .http
            .post(&e.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|err| crate::api::unreachable(&e.token_url, &err))?;
        let status = response.status();
        let after = crate::api::retry_after(response.headers());
        let body = response.bytes().await.map_err(|err| {
            PullError::retry(
                format!("the token endpoint's answer broke off: {}", chain(&err)),
                None,
            )
        })?;
        if status.is_success() {
            return parse_grant(&body, asked, &e.token_url);
        }
        let told = describe_refusal(&body);
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(PullError::retry(
                format!("the token endpoint answered {status}{told}"),
                after,
            ));
        }
        Err(PullError::Auth(format!(
            "the token endpoint {} refused the app {}: {status}{told}",
            e.token_url, e.client_id
        )))
    }
}

fn parse_grant(body: &[u8], asked: Instant, url: &str) -> Result<Current, PullError> {
    let granted: Granted = serde_json::from_slice(body).map_err(|err| {
        PullError::Auth(format!(
            "the token endpoint {url} answered something other than a token: {err}"
        ))
    })?;
    let lifetime = granted
        .expires_in
        .and_then(|v| match v {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(3600));
    let margin = RENEW_MARGIN.min(lifetime / 5);
    Ok(Current { value: granted.access_token, renew_at: asked + lifetime - margin })
}

/// `: <error_description>` from an OAuth error body, without the trace and
/// correlation ids Azure AD appends on later lines.
fn describe_refusal(body: &[u8]) -> String {
    match serde_json::from_slice::<Refusal>(body) {
        Ok(r) => {
            let description = r.error_description.unwrap_or_default();
            let first = description.lines().next().unwrap_or("").trim();
            if first.is_empty() {
                format!(": {}", r.error)
            } else {
                format!(": {} ({})", first, r.error)
            }
        }
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() { String::new() } else { format!(": {}", crate::api::clip(text)) }
        }
    }
}

/// An error and its causes on one line: reqwest's own message alone often
/// says only "error sending request".
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_ads_descriptions_are_shown_without_trace_lines() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1\r\nCorrelation ID: 2"}"#;
        assert_eq!(
            describe_refusal(body),
            ": AADSTS7000215: Invalid client secret provided. (invalid_client)"
        );
        assert_eq!(describe_refusal(b"<html>no</html>"), ": <html>no</html>");
    }

    #[test]
    fn a_token_is_renewed_before_it_expires() {
        let now = Instant::now();
        let t = parse_grant(br#"{"access_token":"a","expires_in":"3599"}"#, now, "u").unwrap();
        assert_eq!(t.renew_at - now, Duration::from_secs(3299));
        let t = parse_grant(br#"{"access_token":"a","expires_in":10}"#, now, "u").unwrap();
        assert_eq!(t.renew_at - now, Duration::from_secs(8));
    }
}
