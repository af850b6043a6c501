//! The Splunk HTTP Event Collector sink: detections go out in batched POSTs,
//! and with indexer acknowledgement on, a window is committed only once
//! Splunk says every batch of it is indexed, not merely received.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, StatusCode};
use serde::Deserialize;
use siemgate_model::Timestamp;
use siemgate_model::time::TICKS_PER_SECOND;
use tokio::time::Instant;

use crate::record::Record;
use crate::sink::{Mark, Sink, SinkError};

/// The sourcetype events carry unless told otherwise. It names the data (the
/// SIEM API's detections as JSON) so that Splunk admins can hang their own
/// props on it; no add-on's sourcetype is borrowed, since those expect other
/// APIs' field layouts.
pub const DEFAULT_SOURCETYPE: &str = "ms:defender:siem:detection";

/// The batch size unless told otherwise: under the 1 MB that older Splunk
/// releases accept per request (`max_content_length`), and large enough that
/// one request carries a few hundred detections.
pub const DEFAULT_BATCH_BYTES: usize = 1_000_000;

/// How long `commit` waits for acknowledgements unless told otherwise.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(120);

/// Attempts at one request when Splunk is busy or unreachable.
const ATTEMPTS: u32 = 5;
/// The wait after the first failed attempt; it doubles after each.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// No single request may hang the puller for longer than this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The first pause between acknowledgement polls; it doubles up to the max.
/// Splunk indexes within a second or two on a healthy cluster.
const FIRST_ACK_POLL: Duration = Duration::from_millis(100);
const MAX_ACK_POLL: Duration = Duration::from_secs(2);

/// How to reach a Splunk HTTP Event Collector and label what is sent to it.
#[derive(Clone)]
pub struct HecConfig {
    /// The collector's base URL, such as `https://splunk.example.com:8088`.
    /// A URL that already ends in `/services/collector/event` is accepted too.
    pub url: String,
    /// The HEC token; sent as `Authorization: Splunk <token>` and never logged.
    pub token: String,
    /// The index to write to; the token's default index when `None`.
    pub index: Option<String>,
    /// The `source` of each event; the token's default when `None`.
    pub source: Option<String>,
    /// The `sourcetype` of each event, [`DEFAULT_SOURCETYPE`] by default.
    pub sourcetype: String,
    /// The `host` of each event; the token's default when `None`.
    pub host: Option<String>,
    /// A batch is sent once adding the next event would take it past this
    /// many bytes; a single larger event goes alone.
    pub batch_bytes: usize,
    /// Wait at each commit until Splunk acknowledges that every batch is
    /// indexed. The token must have indexer acknowledgement enabled.
    pub ack: bool,
    /// How long a commit waits for acknowledgements before failing, so the
    /// window is sent again.
    pub ack_timeout: Duration,
    /// A PEM file of CA certificates to trust besides the usual roots, for a
    /// Splunk whose certificate a private CA signed.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate, for a self-signed Splunk test install only:
    /// anyone between here and Splunk could read the token and the data.
    pub insecure: bool,
}

impl HecConfig {
    /// A configuration with the defaults: no index, source or host, the
    /// default sourcetype and batch size, no acknowledgement, verified TLS.
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> HecConfig {
        HecConfig {
            url: url.into(),
            token: token.into(),
            index: None,
            source: None,
            sourcetype: DEFAULT_SOURCETYPE.to_string(),
            host: None,
            batch_bytes: DEFAULT_BATCH_BYTES,
            ack: false,
            ack_timeout: DEFAULT_ACK_TIMEOUT,
            ca_file: None,
            insecure: false,
        }
    }
}

/// Shows everything but the token, so a config can be logged whole.
impl fmt::Debug for HecConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HecConfig")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("index", &self.index)
            .field("source", &self.source)
            .field("sourcetype", &self.sourcetype)
            .field("host", &self.host)
            .field("batch_bytes", &self.batch_bytes)
            .field("ack", &self.ack)
            .field("ack_timeout", &self.ack_timeout)
            .field("ca_file", &self.ca_file)
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// Sends detections to Splunk's HTTP Event Collector.
#[derive(Debug)]
pub struct HecSink {
    client: Client,
    event_url: String,
    ack_url: String,
    /// `Splunk <token>`, marked sensitive so that no debug output shows it.
    auth: HeaderValue,
    /// The token itself, only to scrub it from anything Splunk answers.
    token: Redacted,
    /// The request channel, present when acknowledgement is on.
    channel: Option<HeaderValue>,
    /// The event's fields after `time`, up to and including `"event":`.
    fields: Vec<u8>,
    batch: Vec<u8>,
    batch_bytes: usize,
    ack_timeout: Duration,
    /// Acknowledgement ids of batches sent since the last commit.
    pending_acks: Vec<u64>,
}

/// A string kept out of debug output.
struct Redacted(String);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl HecSink {
    /// Checks the configuration and builds the HTTP client; sends nothing yet.
    pub fn new(config: &HecConfig) -> Result<HecSink, SinkError> {
        let base = base_url(&config.url)?;
        let mut auth =
            HeaderValue::from_str(&format!("Splunk {}", config.token)).map_err(|_| {
                refused("the HEC token has characters that cannot go in an HTTP header; check it")
            })?;
        auth.set_sensitive(true);
        let channel = config.ack.then(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .expect("a UUID is a valid header value")
        });
        Ok(HecSink {
            client: client(config)?,
            event_url: format!("{base}/services/collector/event"),
            ack_url: format!("{base}/services/collector/ack"),
            auth,
            token: Redacted(config.token.clone()),
            channel,
            fields: event_fields(config),
            batch: Vec::with_capacity(config.batch_bytes.min(16 << 20)),
            batch_bytes: config.batch_bytes.max(1),
            ack_timeout: config.ack_timeout,
            pending_acks: Vec::new(),
        })
    }

    /// Adds one record to the batch, sending the batch first if the record
    /// would take it past the configured size.
    async fn add(&mut self, record: &Record<'_>) -> Result<(), SinkError> {
        let start = self.batch.len();
        write_event(&mut self.batch, record, &self.fields);
        if start > 0 && self.batch.len() > self.batch_bytes {
            let event = self.batch.split_off(start);
            self.send_batch().await?;
            self.batch = event;
        }
        if self.batch.len() >= self.batch_bytes {
            self.send_batch().await?;
        }
        Ok(())
    }

    /// Sends the batch and, with acknowledgement on, keeps its ack id.
    async fn send_batch(&mut self) -> Result<(), SinkError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let body = bytes::Bytes::from(std::mem::take(&mut self.batch));
        let answer: EventAnswer = self.post(&self.event_url, body).await?;
        if self.channel.is_some() {
            let Some(id) = answer.ack_id else {
                return Err(refused(
                    "splunk sent no ackId: indexer acknowledgement is off for this HEC token; \
                     enable it on the token or turn ack off here",
                ));
            };
            self.pending_acks.push(id);
        }
        Ok(())
    }

    /// Polls the ack endpoint until every pending id is acknowledged or the
    /// ack timeout passes; the last poll is made at the deadline.
    async fn await_acks(&mut self) -> Result<(), SinkError> {
        let sent = self.pending_acks.len();
        let deadline = Instant::now() + self.ack_timeout;
        let mut pause = FIRST_ACK_POLL;
        while !self.pending_acks.is_empty() {
            self.poll_acks().await?;
            let now = Instant::now();
            if self.pending_acks.is_empty() {
                break;
            }
            if now >= deadline {
                return Err(SinkError::Refused(format!(
                    "splunk did not acknowledge {} of {sent} batches within {:?}; \
                     the window will be sent again",
                    self.pending_acks.len(),
                    self.ack_timeout
                )));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_ACK_POLL);
        }
        Ok(())
    }

    /// Asks once about the pending ack ids and drops those now indexed.
    async fn poll_acks(&mut self) -> Result<(), SinkError> {
        let query = serde_json::json!({ "acks": self.pending_acks });
        let answer: AckAnswer = self.post(&self.ack_url, query.to_string().into()).await?;
        let indexed = |id: &u64| answer.acks.get(&id.to_string()).copied().unwrap_or(false);
        self.pending_acks.retain(|id| !indexed(id));
        Ok(())
    }

    /// POSTs `body`, retrying while Splunk is busy or unreachable, and reads
    /// the JSON answer.
    async fn post<T: for<'de> Deserialize<'de>>(
        &self,
        url: &str,
        body: bytes::Bytes,
    ) -> Result<T, SinkError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let failure = match self.request(url, body.clone()).send().await {
                Ok(response) if response.status().is_success() => {
                    return self.read_success(response).await;
                }
                Ok(response) => self.read_failure(response).await,
                Err(err) => {
                    Failure::Retry(format!("cannot reach splunk at {url}: {}", chain(&err)))
                }
            };
            match failure {
                Failure::Fatal(message) => return Err(SinkError::Refused(message)),
                Failure::Retry(message) if attempt == ATTEMPTS => {
                    let message = format!("{message} (gave up after {ATTEMPTS} attempts)");
                    return Err(SinkError::Refused(message));
                }
                Failure::Retry(message) => {
                    tracing::warn!(
                        attempt,
                        error = %message,
                        "splunk hec request failed; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
            }
        }
    }

    fn request(&self, url: &str, body: bytes::Bytes) -> reqwest::RequestBuilder {
        let request = self
            .client
            .post(url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        match &self.channel {
            Some(channel) => request.header("X-Splunk-Request-Channel", channel.clone()),
            None => request,
        }
    }

    async fn read_success<T: for<'de> Deserialize<'de>>(
        &self,
        response: reqwest::Response,
    ) -> Result<T, SinkError> {
        let url = response.url().to_string();
        let text = response.bytes().await.map_err(|err| {
            refused(format!("reading splunk's answer from {url}: {}", chain(&err)))
        })?;
        serde_json::from_slice(&text).map_err(|err| {
            refused(format!(
                "splunk's answer from {url} is not what HEC sends ({err}): {}",
                self.scrub(&text)
            ))
        })
    }

    async fn read_failure(&self, response: reqwest::Response) -> Failure {
        let status = response.status();
        let url = response.url().to_string();
        let body = response.bytes().await.unwrap_or_default();
        let message = match serde_json::from_slice::<HecStatus>(&body) {
            Ok(hec) => explain(status, &hec.text.unwrap_or_default(), hec.code),
            Err(_) if status == StatusCode::NOT_FOUND => format!(
                "{url} answered 404: the url should be the collector's base, \
                 such as https://splunk.example.com:8088"
            ),
            Err(_) => format!("splunk hec answered {status}: {}", self.scrub(&body)),
        };
        let message = self.scrub(message.as_bytes());
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Failure::Retry(message)
        } else {
            Failure::Fatal(message)
        }
    }

    /// Text from the server, shortened and with the token cut out, in case a
    /// proxy or a misconfigured Splunk echoes the request.
    fn scrub(&self, text: &[u8]) -> String {
        let mut text = String::from_utf8_lossy(text).trim().to_string();
        if !self.token.0.is_empty() {
            text = text.replace(&self.token.0, "<token>");
        }
        match text.char_indices().nth(300) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None => text,
        }
    }

    /// Forgets what was sent since the last commit: after a failure the
    /// window is sent again from its start.
    fn reset(&mut self) {
        self.batch.clear();
        self.pending_acks.clear();
    }
}

#[async_trait]
impl Sink for HecSink {
    async fn write(&mut self, records: &[Record<'_>]) -> Result<(), SinkError> {
        for record in records {
            if let Err(err) = self.add(record).await {
                self.reset();
                return Err(err);
            }
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<Mark, SinkError> {
        let result = match self.send_batch().await {
            Ok(()) => self.await_acks().await,
            Err(err) => Err(err),
        };
        if result.is_err() {
            self.reset();
        }
        result.map(|()| Mark::Null)
    }
}

/// Why a request failed, and whether trying again may help.
enum Failure {
    Retry(String),
    Fatal(String),
}

/// HEC's answer to a batch.
#[derive(Deserialize)]
struct EventAnswer {
    #[serde(rename = "ackId")]
    ack_id: Option<u64>,
}

/// HEC's answer to an ack poll: ack id (as a string) to whether it is indexed.
#[derive(Deserialize)]
struct AckAnswer {
    acks: std::collections::HashMap<String, bool>,
}

/// HEC's error body.
#[derive(Deserialize)]
struct HecStatus {
    text: Option<String>,
    code: Option<i64>,
}

/// Says what an HEC error means for the user, by Splunk's documented codes.
fn explain(status: StatusCode, text: &str, code: Option<i64>) -> String {
    let hint = match code {
        Some(1) => "the HEC token is disabled in splunk; enable it or use another",
        Some(2..=4) => "splunk does not accept the HEC token; check that it is right",
        Some(7) => "check the index name and that the token may write to it",
        Some(10) | Some(11) => {
            "splunk wants a request channel: turn ack on here, or off on the token"
        }
        Some(14) => {
            "indexer acknowledgement is off for this HEC token; enable it or turn ack off here"
        }
        _ => "",
    };
    let code = code.map(|c| format!(", code {c}")).unwrap_or_default();
    let hint = if hint.is_empty() { String::new() } else { format!(": {hint}") };
    format!("splunk hec refused the request ({status}{code}: {text}){hint}")
}

/// The collector's base URL, whether given bare or as the event endpoint.
fn base_url(url: &str) -> Result<String, SinkError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|err| refused(format!("the HEC url {url:?} is not a URL: {err}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(refused(format!("the HEC url {url:?} must start with https:// or http://")));
    }
    let mut base = url.trim_end_matches('/');
    for suffix in ["/services/collector/event", "/services/collector"] {
        base = base.strip_suffix(suffix).unwrap_or(base);
    }
    Ok(base.to_string())
}

fn client(config: &HecConfig) -> Result<Client, SinkError> {
    let mut builder =
        Client::builder().timeout(REQUEST_TIMEOUT).connect_timeout(Duration::from_secs(10));
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path)
            .map_err(|err| SinkError::io(format!("reading the CA file {}", path.display()), err))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| {
            refused(format!("the CA file {} is not PEM certificates: {err}", path.display()))
        })?;
        if certs.is_empty() {
            return Err(refused(format!("the CA file {} holds no certificate", path.display())));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if config.insecure {
        tracing::warn!(
            url = %config.url,
            "not verifying splunk's TLS certificate: anyone on the path can read \
             the token and the detections"
        );
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|err| refused(format!("setting up the HTTP client: {}", chain(&err))))
}

/// The fields every event of this sink shares, as JSON, ending in `"event":`
/// so that a record's bytes follow it directly.
fn event_fields(config: &HecConfig) -> Vec<u8> {
    let mut out = Vec::new();
    let fields = [
        ("host", config.host.as_deref()),
        ("source", config.source.as_deref()),
        ("sourcetype", Some(config.sourcetype.as_str()).filter(|s| !s.is_empty())),
        ("index", config.index.as_deref()),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            out.extend_from_slice(format!(",\"{name}\":").as_bytes());
            serde_json::to_writer(&mut out, value).expect("a string serialises");
        }
    }
    out.extend_from_slice(b",\"event\":");
    out
}

/// Appends one event in HEC's form; a batch is such events back to back.
///
/// The event time is `LastProcessedTimeUtc`, not `AlertTime`: windows are cut
/// along it, so a detection updated long after it was first raised still
/// lands in Splunk's recent time range, where scheduled searches look for
/// new data. AlertTime stays in the event for whoever wants it.
fn write_event(out: &mut Vec<u8>, record: &Record<'_>, fields: &[u8]) {
    out.extend_from_slice(b"{\"time\":");
    write_seconds(out, record.processed);
    out.extend_from_slice(fields);
    out.extend_from_slice(record.json);
    out.push(b'}');
}

/// Epoch seconds with the fraction to the tick, trailing zeros dropped.
fn write_seconds(out: &mut Vec<u8>, time: Timestamp) {
    let ticks = time.unix_ticks();
    let sign = if ticks < 0 { "-" } else { "" };
    let ticks = ticks.unsigned_abs();
    let (seconds, fraction) = (ticks / TICKS_PER_SECOND as u64, ticks % TICKS_PER_SECOND as u64);
    let text = if fraction == 0 {
        format!("{sign}{seconds}")
    } else {
        let digits = format!("{fraction:07}");
        format!("{sign}{seconds}.{}", digits.trim_end_matches('0'))
    };
    out.extend_from_slice(text.as_bytes());
}

/// An error with its causes, which reqwest keeps out of its own message.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn refused(message: impl Into<String>) -> SinkError {
    SinkError::Refused(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(text: &str) -> String {
        let mut out = Vec::new();
        write_seconds(&mut out, Timestamp::parse(text).unwrap());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn event_time_keeps_every_tick() {
        assert_eq!(seconds("2020-09-30T14:11:44.0779765Z"), "1601475104.0779765");
        assert_eq!(seconds("2020-09-30T14:11:44.5Z"), "1601475104.5");
        assert_eq!(seconds("2020-09-30T14:11:44Z"), "1601475104");
        assert_eq!(seconds("1969-12-31T23:59:59.5Z"), "-0.5");
    }

    #[test]
    fn the_url_may_name_the_endpoint_or_only_the_collector() {
        for url in [
            "https://splunk:8088",
            "https://splunk:8088/",
            "https://splunk:8088/services/collector",
            "https://splunk:8088/services/collector/event/",
        ] {
            assert_eq!(base_url(url).unwrap(), "https://splunk:8088", "{url}");
        }
        assert!(base_url("splunk:8088").is_err());
        assert!(base_url("ftp://splunk").is_err());
    }
}
