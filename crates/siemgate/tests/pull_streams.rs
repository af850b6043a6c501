//! `siemgate pull --follow` as an operator deploys it: several tenants followed
//! by one process from a TOML file, and detections sent to a syslog receiver
//! and to a Splunk HTTP Event Collector. The real binary pulls from a real
//! `siemgate serve --demo` on a free port, and what arrives is compared with
//! the server's SQLite store.
//!
//! The syslog receiver and the collector here stand in for the outside world
//! and hold the puller to the wire formats: RFC 6587 octet counting around
//! RFC 5424 messages, and HEC's token, channel and acknowledgement rules.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{Env, Served, StoredDetection};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use siemgate_model::Timestamp;

/// How long any one condition may take to come true; the streams here hold a
/// few hundred detections, which a puller delivers in well under a second.
const PATIENCE: Duration = Duration::from_secs(15);

const CEF_PREFIX: &str = "CEF:0|Microsoft|Microsoft Defender ATP|2.0|";

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

/// A start for the followed span, before anything the demo server stored.
fn ten_minutes_ago() -> Timestamp {
    now().add_ticks(-10 * 60 * 10_000_000)
}

/// Polls `done` every 50 ms until it returns something or `PATIENCE` runs out.
fn wait_for<T>(what: &str, mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = done() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where a checkpoint says its stream resumes, once it has been written.
fn resumes_at(checkpoint: &Path) -> Option<Timestamp> {
    let cp: Value = serde_json::from_slice(&std::fs::read(checkpoint).ok()?).ok()?;
    Some(Timestamp::parse(cp["since"].as_str()?).unwrap())
}

/// The stored detections processed in `[start, end]`: exactly what a follower
/// whose checkpoint moved from `start` to `end` has delivered, since each
/// window takes both of its ends.
fn stored_between(
    env: &Env,
    tenant: &str,
    start: Timestamp,
    end: Timestamp,
) -> Vec<StoredDetection> {
    let span = start.unix_ticks()..=end.unix_ticks();
    env.stored_for(tenant).into_iter().filter(|d| span.contains(&d.processed)).collect()
}

/// `siemgate pull` pointed at `served`, run from the test's folder.
fn pull(env: &Env, served: &Served, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_siemgate"));
    cmd.arg("pull")
        .args(["--url", &served.https])
        .arg("--ca-file")
        .arg(served.ca_file.as_ref().unwrap())
        .args(args)
        .current_dir(env.dir.path());
    cmd
}

/// `pull` for the demo tenant, following from `start` with a short lag so
/// that the stream catches up with the present within a second or two.
fn follow_demo(env: &Env, served: &Served, start: Timestamp, args: &[&str]) -> Command {
    let demo = served.demo();
    let start = start.to_string();
    let mut cmd = pull(env, served, &["--tenant", &demo.tenant, "--client-id", &demo.client_id]);
    cmd.args(["--follow", "--since", &start, "--lag", "PT1S", "--interval", "PT0.2S"])
        .args(args)
        .env("SIEMGATE_PULL_CLIENT_SECRET", &demo.secret);
    cmd
}

/// A running `siemgate pull --follow`, its log kept in a file.
struct Follower {
    child: Child,
    log: PathBuf,
}

impl Follower {
    fn start(env: &Env, mut cmd: Command, name: &str) -> Follower {
        let log = env.dir.path().join(format!("{name}.log"));
        let stderr = std::fs::File::create(&log).unwrap();
        let child = cmd.stdout(Stdio::null()).stderr(stderr).spawn().unwrap();
        Follower { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("the puller exited with {status}; its log:\n{}", self.log());
        }
    }

    /// Waits until every checkpoint resumes after `moment`: whatever was
    /// stored before it has been delivered.
    fn wait_past(&mut self, checkpoints: &[PathBuf], moment: Timestamp) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            self.assert_running();
            if checkpoints.iter().all(|cp| resumes_at(cp).is_some_and(|since| since > moment)) {
                return;
            }
            assert!(Instant::now() < deadline, "the streams never caught up:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM, as systemd does, and expects a clean exit.
    fn stop(mut self) -> String {
        self.assert_running();
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = wait_for("the puller to exit", || self.child.try_wait().unwrap());
        assert!(
            status.success(),
            "SIGTERM should end the puller cleanly ({status}):\n{}",
            self.log()
        );
        self.log()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `FullId` of every line of an NDJSON file, failing on a repeat.
fn full_ids_once(path: &Path) -> HashSet<String> {
    let mut ids = HashSet::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let id = record["FullId"].as_str().unwrap().to_string();
        assert!(ids.insert(id.clone()), "{id} was written twice to {}", path.display());
    }
    ids
}

#[test]
fn one_process_follows_two_tenants_each_into_its_own_file() {
    let env = Env::new();
    let served = env.serve(&["--demo", "--demo-rate", "5"]);
    let demo = served.demo();
    let start = ten_minutes_ago();

    // A second tenant, with its own app and detections, made by the CLI in the
    // store the server is serving, as an operator onboarding a customer would.
    let fabrikam = env.add_tenant("fabrikam");
    let app: Value = serde_json::from_str(
        &env.ok(&["app", "add", "--tenant", "fabrikam", "--name", "sentinel", "--json"]),
    )
    .unwrap();
    assert_eq!(app["roles"], json!(["siem-read"]));
    let records: Vec<Value> = (0..40)
        .map(|i| common::record(&format!("fabrikam alert {i}"), "2024-05-01T08:00:00Z"))
        .collect();
    let detections = env.file("fabrikam.ndjson", &common::ndjson(&records));
    // Without --keep-processed-time the store stamps them now, inside the span.
    env.ok(&["ingest", "--tenant", "fabrikam", &detections]);
    let stored = now();
    assert_eq!(env.stored_for("fabrikam").len(), 40);
    let secret_file =
        env.file("fabrikam.secret", &format!("{}\n", app["client_secret"].as_str().unwrap()));

    let config = env.file(
        "pull.toml",
        &format!(
            r#"url = "{url}"
ca_file = "{ca}"
since = "{start}"
lag = "PT1S"
interval = "PT0.2S"

[[stream]]
name = "demo"
tenant = "{demo_tenant}"
client_id = "{demo_client}"
secret_env = "DEMO_SECRET"
checkpoint = "demo.checkpoint"
output = "demo-out.ndjson"

[[stream]]
name = "fabrikam"
tenant = "{fabrikam}"
client_id = "{fabrikam_client}"
secret_file = "{secret_file}"
checkpoint = "fabrikam.checkpoint"
output = "fabrikam-out.ndjson"
"#,
            url = served.https,
            ca = served.ca_file.as_ref().unwrap().display(),
            demo_tenant = demo.tenant,
            demo_client = demo.client_id,
            fabrikam_client = app["client_id"].as_str().unwrap(),
        ),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_siemgate"));
    cmd.args(["pull", "--follow", "--config", &config])
        .env("DEMO_SECRET", &demo.secret)
        .current_dir(env.dir.path());
    let mut follower = Follower::start(&env, cmd, "pull");
    let dir = env.dir.path();
    follower.wait_past(&[dir.join("demo.checkpoint"), dir.join("fabrikam.checkpoint")], stored);
    follower.stop();

    let demo_all: HashSet<String> = env.stored_for("demo").into_iter().map(|d| d.full_id).collect();
    let fabrikam_all: HashSet<String> =
        env.stored_for("fabrikam").into_iter().map(|d| d.full_id).collect();
    for (tenant, others) in [("demo", &fabrikam_all), ("fabrikam", &demo_all)] {
        let delivered = full_ids_once(&dir.join(format!("{tenant}-out.ndjson")));
        let foreign: Vec<_> = delivered.intersection(others).collect();
        assert!(foreign.is_empty(), "{tenant}'s file holds another tenant's {foreign:?}");

        let end = resumes_at(&dir.join(format!("{tenant}.checkpoint"))).unwrap();
        let expected: HashSet<String> =
            stored_between(&env, tenant, start, end).into_iter().map(|d| d.full_id).collect();
        let missing: Vec<_> = expected.difference(&delivered).collect();
        let strays: Vec<_> = delivered.difference(&expected).collect();
        assert!(missing.is_empty(), "{tenant}: stored but never delivered: {missing:?}");
        assert!(strays.is_empty(), "{tenant}: delivered but not stored in the span: {strays:?}");
    }
    assert_eq!(full_ids_once(&dir.join("fabrikam-out.ndjson")), fabrikam_all);
    assert!(demo_all.len() >= 300, "the demo's backfill was followed: {}", demo_all.len());
}

#[test]
fn two_streams_naming_one_checkpoint_are_refused() {
    let env = Env::new();
    let stream = |name: &str, checkpoint: &str| {
        format!(
            "[[stream]]\ntenant = \"{name}.onmicrosoft.com\"\nclient_id = \"{name}-app\"\n\
             secret_env = \"SECRET\"\ncheckpoint = \"{checkpoint}\"\noutput = \"{name}.ndjson\"\n"
        )
    };
    let absolute = env.dir.path().join("shared.checkpoint");
    // The same file however it is written: the puller runs in the test's folder.
    let spellings = [
        ("shared.checkpoint", "shared.checkpoint"),
        ("./shared.checkpoint", absolute.to_str().unwrap()),
    ];
    for (first, second) in spellings {
        let config = env.file(
            "pull.toml",
            &format!(
                "url = \"https://127.0.0.1:9\"\n{}{}",
                stream("contoso", first),
                stream("fabrikam", second)
            ),
        );

        let out = env
            .command(&["pull", "--follow", "--config", &config])
            .env("SECRET", "s")
            .current_dir(env.dir.path())
            .output()
            .unwrap();

        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{first} and {second} were both followed");
        assert!(err.contains("share the checkpoint") && err.contains("shared.checkpoint"), "{err}");
        let written: Vec<_> = std::fs::read_dir(env.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains("checkpoint") || name.ends_with(".ndjson"))
            .collect();
        assert!(written.is_empty(), "a refused configuration wrote {written:?}");
    }
}

/// A syslog receiver on TCP that reads RFC 6587 octet-counted frames and
/// keeps each message, or why a frame was not one.
struct SyslogReceiver {
    port: u16,
    messages: Arc<Mutex<Vec<String>>>,
    broken: Arc<Mutex<Vec<String>>>,
}

impl SyslogReceiver {
    fn start() -> SyslogReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let broken = Arc::new(Mutex::new(Vec::new()));
        let (m, b) = (messages.clone(), broken.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let (m, b) = (m.clone(), b.clone());
                let stream = stream.unwrap();
                std::thread::spawn(move || {
                    if let Err(why) = read_frames(BufReader::new(stream), &m) {
                        b.lock().unwrap().push(why);
                    }
                });
            }
        });
        SyslogReceiver { port, messages, broken }
    }

    fn messages(&self) -> Vec<String> {
        let broken = self.broken.lock().unwrap();
        assert!(broken.is_empty(), "frames that are not RFC 6587 octet counting: {broken:?}");
        self.messages.lock().unwrap().clone()
    }
}

/// `MSG-LEN SP SYSLOG-MSG`, repeated until the sender closes (RFC 6587 3.4.1).
fn read_frames(mut reader: impl BufRead, into: &Mutex<Vec<String>>) -> Result<(), String> {
    loop {
        let mut length = Vec::new();
        if reader.read_until(b' ', &mut length).map_err(|e| e.to_string())? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&length);
        let length: usize = text
            .strip_suffix(' ')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("a frame starts with {text:?}, not a length"))?;
        let mut message = vec![0; length];
        reader.read_exact(&mut message).map_err(|e| format!("a frame cut short: {e}"))?;
        let message = String::from_utf8(message).map_err(|e| e.to_string())?;
        into.lock().unwrap().push(message);
    }
}

/// The parts of an RFC 5424 message: PRI, header fields, then MSG.
fn syslog_parts(message: &str) -> (u16, Vec<&str>, &str) {
    let parts: Vec<&str> = message.splitn(8, ' ').collect();
    assert_eq!(parts.len(), 8, "not an RFC 5424 message: {message}");
    let pri = parts[0].strip_prefix('<').and_then(|p| p.strip_suffix(">1"));
    let pri = pri.and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("PRI: {message}"));
    (pri, parts[1..7].to_vec(), parts[7])
}

/// What follows CEF's seven header fields, whose text escapes `|` as `\|`.
fn cef_extension(cef: &str) -> &str {
    let mut bars = 0;
    let mut escaped = false;
    for (at, c) in cef.char_indices() {
        if c == '|' && !escaped {
            bars += 1;
            if bars == 7 {
                return &cef[at + 1..];
            }
        }
        escaped = c == '\\' && !escaped;
    }
    panic!("a CEF line without its seven header fields: {cef}")
}

#[test]
fn syslog_gets_every_detection_as_one_cef_message() {
    let env = Env::new();
    let served = env.serve(&["--demo"]);
    let backfilled = now();
    let receiver = SyslogReceiver::start();
    let start = ten_minutes_ago();
    let target = format!("127.0.0.1:{}", receiver.port);
    let sink = ["--sink", "syslog", "--syslog", &target, "--syslog-transport", "tcp"];
    let cmd =
        follow_demo(&env, &served, start, &[&["--checkpoint", "cp.json"][..], &sink].concat());
    let mut follower = Follower::start(&env, cmd, "pull");
    let checkpoint = env.dir.path().join("cp.json");
    follower.wait_past(std::slice::from_ref(&checkpoint), backfilled);
    follower.stop();

    let end = resumes_at(&checkpoint).unwrap();
    let expected = stored_between(&env, "demo", start, end);
    assert!(expected.len() >= 300, "the demo's backfill: {}", expected.len());
    // The sink flushed before the checkpoint moved; the receiver's threads may
    // still be reading what is on the wire.
    let messages = wait_for("every message", || {
        Some(receiver.messages()).filter(|m| m.len() >= expected.len())
    });
    assert_eq!(messages.len(), expected.len(), "one message per detection");

    let mut alert_ids = HashSet::new();
    for message in &messages {
        let (pri, header, msg) = syslog_parts(message);
        assert_eq!(pri / 8, 16, "facility local0 by default: {message}");
        assert_eq!(header[4], "detection", "MSGID: {message}");
        assert_eq!(header[5], "-", "no structured data: {message}");
        assert!(msg.starts_with(CEF_PREFIX), "MSG is not Defender's CEF: {msg}");
        let external = cef_extension(msg).split(' ').find_map(|f| f.strip_prefix("externalId="));
        alert_ids.insert(external.unwrap_or_else(|| panic!("no externalId: {msg}")).to_string());
    }
    let stored: HashSet<String> = expected.into_iter().map(|d| d.alert_id).collect();
    assert_eq!(alert_ids, stored, "the AlertIds sent are the AlertIds stored in the span");
}

/// What the stand-in collector has seen.
#[derive(Default)]
struct Seen {
    /// Each event's `event` member, as its JSON text was sent.
    events: Vec<String>,
    /// Event requests refused for their token.
    refused_token: u32,
    acks_issued: Vec<u64>,
    acks_asked: HashSet<u64>,
}

/// An HTTP Event Collector on port 0 that takes one token, with indexer
/// acknowledgement on, so each batch must come on a channel and gets an id.
struct Collector {
    url: String,
    seen: Arc<Mutex<Seen>>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct CollectorState {
    token: &'static str,
    seen: Arc<Mutex<Seen>>,
}

type Answer = (StatusCode, Json<Value>);

fn refuse(status: StatusCode, text: &str, code: u32) -> Answer {
    (status, Json(json!({ "text": text, "code": code })))
}

/// Splunk's checks before it reads a body: the token, then the channel.
fn admit(state: &CollectorState, headers: &HeaderMap) -> Result<(), Answer> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Splunk {}", state.token)) {
        return Err(refuse(StatusCode::FORBIDDEN, "Invalid token", 4));
    }
    if !headers.contains_key("x-splunk-request-channel") {
        return Err(refuse(StatusCode::BAD_REQUEST, "Data channel is missing", 10));
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct HecEvent {
    event: Box<RawValue>,
}

async fn hec_event(State(state): State<CollectorState>, headers: HeaderMap, body: Bytes) -> Answer {
    if let Err(answer) = admit(&state, &headers) {
        state.seen.lock().unwrap().refused_token += u32::from(answer.0 == StatusCode::FORBIDDEN);
        return answer;
    }
    // Events come back to back, not as an array.
    let events: Result<Vec<HecEvent>, _> =
        serde_json::Deserializer::from_slice(&body).into_iter().collect();
    let Ok(events) = events else {
        return refuse(StatusCode::BAD_REQUEST, "Invalid data format", 6);
    };
    let mut seen = state.seen.lock().unwrap();
    seen.events.extend(events.into_iter().map(|e| e.event.get().to_string()));
    let id = seen.acks_issued.len() as u64;
    seen.acks_issued.push(id);
    (StatusCode::OK, Json(json!({ "text": "Success", "code": 0, "ackId": id })))
}

#[derive(serde::Deserialize)]
struct AckQuery {
    acks: Vec<u64>,
}

async fn hec_ack(State(state): State<CollectorState>, headers: HeaderMap, body: Bytes) -> Answer {
    if let Err(answer) = admit(&state, &headers) {
        return answer;
    }
    let Ok(query) = serde_json::from_slice::<AckQuery>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "Invalid data format", 6);
    };
    let mut seen = state.seen.lock().unwrap();
    let mut acks = serde_json::Map::new();
    for id in query.acks {
        seen.acks_asked.insert(id);
        acks.insert(id.to_string(), Value::Bool(seen.acks_issued.contains(&id)));
    }
    (StatusCode::OK, Json(json!({ "acks": acks })))
}

impl Collector {
    fn start(token: &'static str) -> Collector {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = Router::new()
            .route("/services/collector/event", post(hec_event))
            .route("/services/collector/ack", post(hec_ack))
            .with_state(CollectorState { token, seen: seen.clone() });
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Collector { url, seen, _runtime: runtime }
    }
}

const HEC_TOKEN: &str = "6f9b2c1e-0d3a-4e5f-8a7b-9c0d1e2f3a4b";

#[test]
fn splunk_hec_gets_every_detection_once_byte_for_byte() {
    let env = Env::new();
    let served = env.serve(&["--demo"]);
    let backfilled = now();
    let collector = Collector::start(HEC_TOKEN);
    let start = ten_minutes_ago();
    let mut cmd = follow_demo(
        &env,
        &served,
        start,
        &["--checkpoint", "cp.json", "--sink", "hec", "--hec-url", &collector.url, "--hec-ack"],
    );
    cmd.env("SIEMGATE_PULL_HEC_TOKEN", HEC_TOKEN);
    let mut follower = Follower::start(&env, cmd, "pull");
    let checkpoint = env.dir.path().join("cp.json");
    follower.wait_past(std::slice::from_ref(&checkpoint), backfilled);
    follower.stop();

    // The same span pulled once into NDJSON; `--until` is exclusive, and the
    // follower's last window took its end, hence one tick more.
    let end = resumes_at(&checkpoint).unwrap();
    let demo = served.demo();
    let (since, until) = (start.to_string(), end.add_ticks(1).to_string());
    let out = pull(&env, &served, &["--tenant", &demo.tenant, "--client-id", &demo.client_id])
        .args(["--since", &since, "--until", &until, "--format", "ndjson"])
        .env("SIEMGATE_PULL_CLIENT_SECRET", &demo.secret)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let one_shot: Vec<String> =
        String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect();

    let seen = collector.seen.lock().unwrap();
    assert_eq!(seen.events, one_shot, "each event is the detection's JSON as served, in order");
    let stored = stored_between(&env, "demo", start, end);
    assert_eq!(seen.events.len(), stored.len(), "every stored detection, once");
    assert!(stored.len() >= 300, "the demo's backfill: {}", stored.len());
    let unasked: Vec<_> =
        seen.acks_issued.iter().filter(|id| !seen.acks_asked.contains(id)).collect();
    assert!(unasked.is_empty(), "--hec-ack: the checkpoint moved before acks {unasked:?} came");
}

#[test]
fn a_wrong_hec_token_is_reported_never_shown_and_holds_the_checkpoint() {
    let env = Env::new();
    let served = env.serve(&["--demo"]);
    let collector = Collector::start(HEC_TOKEN);
    let start = ten_minutes_ago();
    let wrong = "0b1c2d3e-wrong-token-4f5a6b7c8d9e";
    let mut cmd = follow_demo(
        &env,
        &served,
        start,
        &["--checkpoint", "cp.json", "--sink", "hec", "--hec-url", &collector.url, "--log", "info"],
    );
    cmd.env("SIEMGATE_PULL_HEC_TOKEN", wrong);
    let mut follower = Follower::start(&env, cmd, "pull");

    // Refusals are retried with backoff; the third in a row is an ERROR.
    wait_for("an error naming the refusal", || {
        follower.assert_running();
        let log = follower.log();
        log.lines().any(|l| l.contains("ERROR") && l.contains("Invalid token")).then_some(())
    });
    let log = follower.stop();

    assert!(!log.contains(wrong), "the HEC token is in the log:\n{log}");
    let seen = collector.seen.lock().unwrap();
    assert!(seen.refused_token >= 3 && seen.events.is_empty());
    // Empty windows before the demo's backfill may be passed; no detection may.
    let first = env.stored_for("demo").iter().map(|d| d.processed).min().unwrap();
    let position = resumes_at(&env.dir.path().join("cp.json"));
    let held = position.is_none_or(|p| p.unix_ticks() <= first);
    assert!(held, "the checkpoint moved to {position:?}, past detections never delivered");
}
