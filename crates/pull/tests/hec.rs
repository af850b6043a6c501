//! The Splunk HEC sink against a stand-in HTTP Event Collector on port 0.
//!
//! There is no Splunk here, so the collector below does what Splunk documents
//! for HEC: it checks the token, reads concatenated events, hands out ack ids
//! on a request channel and answers the ack endpoint, and can be busy (503).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use siemgate_pull::sink::hec::{DEFAULT_SOURCETYPE, HecConfig, HecSink};
use siemgate_pull::{Record, Sink, Splitter};

const TOKEN: &str = "11111111-2222-3333-4444-555555555555";

/// How the stand-in collector behaves.
#[derive(Clone)]
struct Behaviour {
    /// The token has indexer acknowledgement enabled.
    ack: bool,
    /// How long after a batch its ack turns true; `None` for never.
    ack_after: Option<Duration>,
    /// Event requests answered 503 before any is accepted.
    busy: u32,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour { ack: false, ack_after: Some(Duration::ZERO), busy: 0 }
    }
}

/// One event as the collector received it.
#[derive(Debug)]
struct Event {
    /// The `time` field's JSON text.
    time: String,
    /// The `event` field's JSON text, as sent.
    event: String,
    /// Every other field.
    fields: serde_json::Map<String, Value>,
}

#[derive(Default)]
struct Received {
    /// Event requests of any outcome.
    requests: u32,
    busy_left: u32,
    busy_answers: u32,
    batches: Vec<(usize, Vec<Event>)>,
    acks_issued: HashMap<u64, Instant>,
    next_ack: u64,
    ack_after: Option<Duration>,
}

struct Collector {
    behaviour: Behaviour,
    received: Mutex<Received>,
}

impl Collector {
    async fn start(behaviour: Behaviour) -> (String, Arc<Collector>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let collector = Collector::serve(listener, behaviour);
        (url, collector)
    }

    fn serve(listener: tokio::net::TcpListener, behaviour: Behaviour) -> Arc<Collector> {
        let (busy_left, ack_after) = (behaviour.busy, behaviour.ack_after);
        let received = Mutex::new(Received { busy_left, ack_after, ..Received::default() });
        let collector = Arc::new(Collector { behaviour, received });
        let app = Router::new()
            .route("/services/collector/event", post(event))
            .route("/services/collector/ack", post(ack))
            .with_state(collector.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        collector
    }

    /// Every event accepted, in the order received.
    fn events(&self) -> Vec<Event> {
        let mut received = self.received.lock().unwrap();
        received.batches.drain(..).flat_map(|(_, events)| events).collect()
    }

    /// Forgets the ack ids handed out, as Splunk does when it restarts, and
    /// from now on acknowledges batches `after` they arrive.
    fn restart(&self, after: Duration) {
        let mut received = self.received.lock().unwrap();
        received.acks_issued.clear();
        received.ack_after = Some(after);
    }

    /// The size in bytes of each batch accepted.
    fn batch_sizes(&self) -> Vec<usize> {
        self.received.lock().unwrap().batches.iter().map(|(size, _)| *size).collect()
    }
}

/// An HEC error answer: the status, and the body's text and code.
struct Refusal {
    status: StatusCode,
    text: &'static str,
    code: u32,
    /// Which event of the batch was refused, for errors about one event.
    event: Option<usize>,
}

impl Refusal {
    fn new(status: StatusCode, text: &'static str, code: u32) -> Refusal {
        Refusal { status, text, code, event: None }
    }

    fn bad_event(text: &'static str, code: u32, event: usize) -> Refusal {
        Refusal { status: StatusCode::BAD_REQUEST, text, code, event: Some(event) }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut body = json!({ "text": self.text, "code": self.code });
        if let Some(event) = self.event {
            body["invalid-event-number"] = event.into();
        }
        (self.status, axum::Json(body)).into_response()
    }
}

/// Splunk's token check: 401 without a usable header, 403 for a token it
/// does not know.
fn check_token(headers: &HeaderMap) -> Result<(), Refusal> {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        None => Err(Refusal::new(StatusCode::UNAUTHORIZED, "Token is required", 2)),
        Some(value) => match value.strip_prefix("Splunk ") {
            None => Err(Refusal::new(StatusCode::UNAUTHORIZED, "Invalid authorization", 3)),
            Some(TOKEN) => Ok(()),
            Some(_) => Err(Refusal::new(StatusCode::FORBIDDEN, "Invalid token", 4)),
        },
    }
}

/// A token with acknowledgement on needs a request channel on every call.
fn check_channel(collector: &Collector, headers: &HeaderMap) -> Result<(), Refusal> {
    let present = headers.contains_key("x-splunk-request-channel");
    if collector.behaviour.ack && !present {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "Data channel is missing", 10));
    }
    Ok(())
}

async fn event(
    State(collector): State<Arc<Collector>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Value>, Refusal> {
    collector.received.lock().unwrap().requests += 1;
    check_token(&headers)?;
    check_channel(&collector, &headers)?;
    let mut received = collector.received.lock().unwrap();
    if received.busy_left > 0 {
        received.busy_left -= 1;
        received.busy_answers += 1;
        return Err(Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "Server is busy", 9));
    }
    received.batches.push((body.len(), parse_batch(&body)?));
    if !collector.behaviour.ack {
        return Ok(axum::Json(json!({ "text": "Success", "code": 0 })));
    }
    let id = received.next_ack;
    received.next_ack += 1;
    received.acks_issued.insert(id, Instant::now());
    Ok(axum::Json(json!({ "text": "Success", "code": 0, "ackId": id })))
}

/// One event of a batch, with the parts kept as sent.
#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(borrow)]
    time: Option<&'a RawValue>,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    #[serde(flatten)]
    fields: serde_json::Map<String, Value>,
}

/// Reads HEC's batch form, events back to back, refusing as Splunk does.
fn parse_batch(body: &[u8]) -> Result<Vec<Event>, Refusal> {
    let mut events = Vec::new();
    for (number, wire) in serde_json::Deserializer::from_slice(body).into_iter().enumerate() {
        let wire: WireEvent<'_> =
            wire.map_err(|_| Refusal::bad_event("Invalid data format", 6, number))?;
        let Some(event) = wire.event else {
            return Err(Refusal::bad_event("Event field is required", 12, number));
        };
        if wire.fields.get("index").is_some_and(|index| index != "security") {
            return Err(Refusal::bad_event("Incorrect index", 7, number));
        }
        let time = wire.time.map(|t| t.get().to_string()).unwrap_or_default();
        events.push(Event { time, event: event.get().to_string(), fields: wire.fields });
    }
    if events.is_empty() {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "No data", 5));
    }
    Ok(events)
}

#[derive(Deserialize)]
struct AckQuery {
    acks: Vec<u64>,
}

async fn ack(
    State(collector): State<Arc<Collector>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Value>, Refusal> {
    check_token(&headers)?;
    check_channel(&collector, &headers)?;
    if !collector.behaviour.ack {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "ACK is disabled", 14));
    }
    let Ok(query) = serde_json::from_slice::<AckQuery>(&body) else {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "Invalid data format", 6));
    };
    let received = collector.received.lock().unwrap();
    let after = received.ack_after;
    let status: serde_json::Map<String, Value> = query
        .acks
        .iter()
        .map(|id| {
            let sent = received.acks_issued.get(id);
            let done = sent.zip(after).is_some_and(|(sent, after)| sent.elapsed() >= after);
            (id.to_string(), Value::Bool(done))
        })
        .collect();
    Ok(axum::Json(json!({ "acks": status })))
}

/// A body of `count` detections as the API would send it, with spacing,
/// escapes and non-ASCII text a re-encoding would change, and `pad` bytes
/// of filler in each.
fn detections(count: usize, pad: usize) -> String {
    let items: Vec<String> = (0..count)
        .map(|i| {
            format!(
                "{{ \"AlertTime\" : \"2026-03-01T09:00:00Z\", \"FullId\":\"{i:04}-x\",\
                 \"LastProcessedTimeUtc\":\"2026-03-01T10:{:02}:{:02}.{:07}Z\",\
                 \"Title\":\"caf\u{e9} \\\"}}{{\\\" \\u00e9 C:\\\\x\",\"Pad\":\"{}\"}}",
                i / 60,
                i % 60,
                i * 1_234_567 % 10_000_000,
                "p".repeat(pad)
            )
        })
        .collect();
    format!("[{}]", items.join(",\n"))
}

fn records<'a>(splitter: &'a mut Splitter, body: &str) -> Vec<Record<'a>> {
    splitter.push(body.as_bytes()).unwrap();
    let records = splitter.take().unwrap();
    assert!(!records.is_empty());
    records
}

fn json_text(record: &Record<'_>) -> String {
    String::from_utf8(record.json.to_vec()).unwrap()
}

/// Writes `records` in slices of `slice` and commits.
async fn deliver(sink: &mut HecSink, records: &[Record<'_>], slice: usize) {
    for part in records.chunks(slice) {
        sink.write(part).await.unwrap();
    }
    let mark = sink.commit().await.unwrap();
    assert_eq!(mark, Value::Null);
}

/// Writes `records` and commits, returning the error it must end in.
async fn fail(sink: &mut HecSink, records: &[Record<'_>]) -> String {
    match sink.write(records).await {
        Err(err) => err.to_string(),
        Ok(()) => sink.commit().await.expect_err("the commit should fail").to_string(),
    }
}

fn assert_all_arrived(events: &[Event], records: &[Record<'_>]) {
    let got: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    let sent: Vec<String> = records.iter().map(json_text).collect();
    assert_eq!(got, sent, "the events should be the records, byte for byte and in order");
}

#[tokio::test]
async fn every_detection_arrives_whole_and_in_order() {
    let (url, collector) = Collector::start(Behaviour::default()).await;
    let mut config = HecConfig::new(url, TOKEN);
    config.index = Some("security".into());
    config.source = Some("siemgate".into());
    config.host = Some("tenant-a".into());
    let mut sink = HecSink::new(&config).unwrap();
    let mut splitter = Splitter::new();
    let records = records(&mut splitter, &detections(150, 10));

    deliver(&mut sink, &records, 7).await;

    let events = collector.events();
    assert_all_arrived(&events, &records);
    for (event, record) in events.iter().zip(&records) {
        let expected = record.processed.unix_ticks() as f64 / 1e7;
        let time: f64 = event.time.parse().unwrap();
        assert!((time - expected).abs() < 1e-6, "time {} for {:?}", event.time, record.full_id);
        assert_eq!(event.fields["index"], "security");
        assert_eq!(event.fields["source"], "siemgate");
        assert_eq!(event.fields["host"], "tenant-a");
        assert_eq!(event.fields["sourcetype"], DEFAULT_SOURCETYPE);
    }
    // LastProcessedTimeUtc 2026-03-01T10:00:01.1234567Z, to the tick.
    assert_eq!(events[1].time, "1772359201.1234567");
}

#[tokio::test]
async fn fields_not_configured_are_left_out() {
    let (url, collector) = Collector::start(Behaviour::default()).await;
    let mut sink = HecSink::new(&HecConfig::new(url, TOKEN)).unwrap();
    let mut splitter = Splitter::new();
    let records = records(&mut splitter, &detections(3, 0));

    deliver(&mut sink, &records, 3).await;

    let events = collector.events();
    assert_all_arrived(&events, &records);
    let keys: Vec<&String> = events[0].fields.keys().collect();
    assert_eq!(keys, ["sourcetype"]);
}

#[tokio::test]
async fn batches_split_at_the_configured_size() {
    let (url, collector) = Collector::start(Behaviour::default()).await;
    let mut config = HecConfig::new(url, TOKEN);
    config.batch_bytes = 3_000;
    let mut sink = HecSink::new(&config).unwrap();
    let mut splitter = Splitter::new();
    let records = records(&mut splitter, &detections(40, 500));

    for part in records.chunks(3) {
        sink.write(part).await.unwrap();
    }
    let before_commit = collector.batch_sizes();
    sink.commit().await.unwrap();

    let sizes = collector.batch_sizes();
    assert!(sizes.len() > 5, "40 events of ~700 bytes in 3000-byte batches: {sizes:?}");
    assert!(sizes.iter().all(|&size| size <= 3_000), "a batch is over the limit: {sizes:?}");
    // Each full batch had no room for the next event (~700 bytes).
    assert!(sizes[..sizes.len() - 1].iter().all(|&size| size > 2_000), "{sizes:?}");
    assert_eq!(before_commit.len(), sizes.len() - 1, "only the last batch waits for the commit");
    assert_all_arrived(&collector.events(), &records);
}

#[tokio::test]
async fn a_wrong_token_is_named_and_never_shown() {
    let (url, collector) = Collector::start(Behaviour::default()).await;
    let wrong = "99999999-8888-7777-6666-000000000000";
    let config = HecConfig::new(url, wrong);
    let mut sink = HecSink::new(&config).unwrap();
    let mut splitter = Splitter::new();
    let records = records(&mut splitter, &detections(2, 0));

    let error = fail(&mut sink, &records).await;

    assert!(error.contains("Invalid token") && error.contains("code 4"), "{error}");
    assert!(error.contains("check that it is right"), "{error}");
    assert!(!error.contains(wrong), "the token leaked: {error}");
    assert!(!format!("{config:?} {sink:?}").contains(wrong), "the token leaked into debug output");
    assert_eq!(collector.received.lock().unwrap().requests, 1, "a refusal is not retried");
    assert!(collector.events().is_empty());
}

#[tokio::test]
async fn an_index_the_token_may_not_use_is_named() {
    let (url, collector) = Collector::start(Behaviour::default()).await;
    let mut config = HecConfig::new(url, TOKEN);
    config.index = Some("main".into());
    let mut sink = HecSink::new(&config).unwrap();
    let mut splitter = Splitter::new();
    let records = records(&mut splitter, &detections(2, 0));

    let error = fail(&mut sink, &records).await;

    assert!(error.contains("Incorrect index") && error.contains("code 7"), "{error}");
    assert!(collector.events().is_empty());
}

#[tokio::test]
async fn commit_waits_until_splunk_acknowledges() {
    let after = Duration::from_millis(700);
    let behaviour = Behaviour { ack: true, ack_after: Some(after), ..Behaviour::default() };
    let (url, collector) = Collector::start(behaviour).await;
    let mut config = HecConfig::new(url, TOKEN);
    config.ack = true;
    config.batch_bytes = 2_000;
    let mut sink = HecSink::new(&config).unwrap();
    let mut splitter = Splitter::new();
    let records = records(&mut splitter, &detections(20, 300));

    let started = Instant::now();
    deliver(&mut sink, &records, 4).await;

    let received = collector.received.lock().unwrap();
    assert!(received.acks_issued.len() > 2, "several batches, each with an ack id");
    for sent in received.acks_issued.values() {
        assert!(sent.elapsed() >= after, "commit returned before a batch was acknowledged");
    }
    assert!(started.elapsed() < after * 5, "commit kept polling long after the acks came");
    drop(received);
    assert_all_arrived(&collector.events(), &records);
}

#[tokio::test]
async fn commit_fails_when_acks_never_come() {
    let behaviour = Behaviour { ack: true, ack_after: None, ..Behaviour::default() };
    let (url, _collector) = Collector::start(behaviour).await;
    let mut config = HecConfig::new(url, TOKEN);
    config.ack = true;
    config.ack_timeout = Duration::from_millis(800);
    let mut sink = HecSink::new(&config).unwrap();
    let mut splitter = Splitter::new();
    let records = records(&mut splitter, &detections(5, 0));

    let started = Instant::now();
    let error = fail(&mut sink, &records).await;

    let waited = started.elapsed();
    assert!(error.contains("did not acknowledge 1 of 1 batches"), "{error}");
    assert!(waited >= Duration::from_millis(800), "gave up after {waited:?}");
    assert!(waited < Duration::from_secs(5), "waited {waited:?} for an 800 ms timeout");
}

#[tokio::test]
async fn a_retried_window_waits_only_for_its_own_acks() {
    let behaviour = Behaviour { ack: true, ack_after: None, ..Behaviour::default() };
    let (url, collector) = Collector::start(behaviour).await;
    let mut config = HecConfig::new(url, TOKEN);
    config.ack = true;
    config.ack_timeout = Duration::from_millis(400);
    let mut sink = HecSink::new(&config).unwrap();
    let mut splitter = Splitter::new();
    let records = records(&mut splitter, &detections(5, 0));
    let error = fail(&mut sink, &records).await;
    assert!(error.contains("did not acknowledge"), "{error}");

    collector.restart(Duration::ZERO);
    collector.events(); // the first try reached splunk; only the retry is checked
    deliver(&mut sink, &records, 5).await;

    assert_all_arrived(&collector.events(), &records);
}

#[tokio::test]
async fn a_token_without_acknowledgement_is_reported() {
    let (url, _collector) = Collector::start(Behaviour::default()).await;
    let mut config = HecConfig::new(url, TOKEN);
    config.ack = true;
    let mut sink = HecSink::new(&config).unwrap();
    let mut splitter = Splitter::new();
    let records = records(&mut splitter, &detections(2, 0));

    let error = fail(&mut sink, &records).await;

    assert!(error.contains("acknowledgement is off for this HEC token"), "{error}");
}

#[tokio::test]
async fn a_busy_spell_is_waited_out_and_loses_nothing() {
    let (url, collector) = Collector::start(Behaviour { busy: 3, ..Behaviour::default() }).await;
    let mut config = HecConfig::new(url, TOKEN);
    config.batch_bytes = 2_000;
    let mut sink = HecSink::new(&config).unwrap();
    let mut splitter = Splitter::new();
    let records = records(&mut splitter, &detections(30, 200));

    deliver(&mut sink, &records, 5).await;

    assert_eq!(collector.received.lock().unwrap().busy_answers, 3);
    assert_all_arrived(&collector.events(), &records);
}

#[tokio::test]
async fn a_splunk_busy_for_too_long_is_reported() {
    let (url, collector) = Collector::start(Behaviour { busy: 100, ..Behaviour::default() }).await;
    let mut sink = HecSink::new(&HecConfig::new(url, TOKEN)).unwrap();
    let mut splitter = Splitter::new();
    let records = records(&mut splitter, &detections(2, 0));

    let error = fail(&mut sink, &records).await;

    assert!(error.contains("Server is busy") && error.contains("gave up"), "{error}");
    assert!(collector.events().is_empty());
}

#[tokio::test]
async fn a_collector_that_comes_up_late_is_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let mut sink = HecSink::new(&HecConfig::new(format!("http://{address}"), TOKEN)).unwrap();
    let mut splitter = Splitter::new();
    let records = records(&mut splitter, &detections(4, 0));
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        Collector::serve(listener, Behaviour::default())
    });

    deliver(&mut sink, &records, 4).await;

    assert_all_arrived(&late.await.unwrap().events(), &records);
}

#[test]
fn tls_options_are_checked_when_the_sink_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HecConfig::new("https://splunk.example.com:8088", TOKEN);
    config.ca_file = Some(dir.path().join("missing.pem"));
    let error = HecSink::new(&config).unwrap_err().to_string();
    assert!(error.contains("missing.pem"), "{error}");

    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    config.ca_file = Some(not_pem);
    let error = HecSink::new(&config).unwrap_err().to_string();
    assert!(error.contains("ca.pem"), "{error}");

    config.ca_file = None;
    config.insecure = true;
    assert!(HecSink::new(&config).is_ok());
}
