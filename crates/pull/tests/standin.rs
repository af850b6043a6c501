//! The puller against a stand-in for Microsoft's hosts that fails on cue:
//! throttling, server errors, expiring and refused tokens, broken bodies,
//! detections on a window's boundary or arriving late, and restarts. Each
//! test checks what a user would see: every detection delivered once, and
//! the error or log that explains a failure.

#[path = "standin/collector.rs"]
mod collector;
#[path = "standin/server.rs"]
mod server;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use siemgate_model::time::TICKS_PER_SECOND;
use siemgate_model::{Span, Timestamp};
use siemgate_pull::api::{Filters, Query};
use siemgate_pull::checkpoint::Checkpoint;
use siemgate_pull::follow::{FollowOptions, Stats, Stream, now};
use siemgate_pull::oneshot::{Tries, pull};
use siemgate_pull::sink::output::{FileOutput, Format};
use siemgate_pull::{PullError, Sink};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use collector::{Collector, Delivered};
use server::{Fault, SECRET, StandIn, TENANT, full_id};

fn whole_second(t: Timestamp) -> Timestamp {
    Timestamp::from_unix_ticks(t.unix_ticks().div_euclid(TICKS_PER_SECOND) * TICKS_PER_SECOND)
}

fn plus(t: Timestamp, millis: i64) -> Timestamp {
    t.add_ticks(millis * TICKS_PER_SECOND / 1000)
}

/// A whole second `seconds` ago: where a test's backlog starts.
fn backlog_start(seconds: i64) -> Timestamp {
    plus(whole_second(now()), -seconds * 1000)
}

/// Waits for `done`, polling, and fails the test naming `what` after 20 s.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Fails unless `got` holds detection `numbers` each exactly once.
fn assert_each_once(got: &[String], numbers: impl IntoIterator<Item = usize>) {
    let mut got = got.to_vec();
    got.sort();
    let mut want: Vec<String> = numbers.into_iter().map(full_id).collect();
    want.sort();
    let repeated: Vec<&String> = got.windows(2).filter(|w| w[0] == w[1]).map(|w| &w[0]).collect();
    let missing: Vec<&String> = want.iter().filter(|id| !got.contains(id)).collect();
    assert!(repeated.is_empty(), "delivered more than once: {repeated:?}");
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    assert_eq!(got, want);
}

fn committed(delivered: &Mutex<Delivered>) -> Vec<String> {
    delivered.lock().unwrap().committed.iter().map(|(id, _)| id.clone()).collect()
}

/// Follow-mode settings scaled down so a test takes seconds.
fn options(start: Timestamp, max_window_seconds: i64, spool_dir: &Path) -> FollowOptions {
    FollowOptions {
        interval: Duration::from_millis(100),
        lag: Span::from_seconds(1),
        start,
        max_window: Span::from_seconds(max_window_seconds),
        filters: Filters::default(),
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        loud_after: 3,
        split_after: 3,
        spool_dir: spool_dir.to_path_buf(),
    }
}

/// A followed stream running in the background.
struct Following {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), PullError>>,
    stats: Arc<Stats>,
}

fn follow(
    standin: &StandIn,
    checkpoint: &Path,
    sink: Box<dyn Sink>,
    options: FollowOptions,
) -> Following {
    let api = standin.api(SECRET);
    let checkpoint =
        Checkpoint::open(checkpoint, &format!("{} {TENANT}", api.alerts_url())).unwrap();
    let stats = Arc::new(Stats::default());
    let stream =
        Stream { name: "standin".into(), api, checkpoint, sink, options, stats: stats.clone() };
    let (stop, stopped) = watch::channel(false);
    Following { stop, task: tokio::spawn(stream.follow(stopped)), stats }
}

impl Following {
    /// Waits until the checkpoint has moved past `last`, so every window up
    /// to it, and the one after, was delivered.
    async fn past(&self, last: Timestamp) {
        let stats = &self.stats;
        wait_for("the checkpoint to pass the last detection", || {
            stats.position.load(Ordering::Relaxed) > last.unix_seconds()
        })
        .await;
    }

    /// Stops the stream and checks that it stopped promptly and cleanly.
    async fn stop(self) {
        self.stop.send(true).unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        ended.expect("the stream did not stop within 5 s").unwrap().unwrap();
    }
}

/// One-shot tries scaled down so a test takes seconds.
fn tries(attempts: u32) -> Tries {
    Tries {
        attempts,
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    }
}

/// Pulls `[since, until)` once into an NDJSON file at `path`.
async fn pull_to_file(
    standin: &StandIn,
    secret: &str,
    since: Timestamp,
    until: Timestamp,
    path: &Path,
    attempts: u32,
) -> Result<(), PullError> {
    let api = standin.api(secret);
    let query = Query { since, until, limit: None, filters: Filters::default() };
    let mut sink = FileOutput::create(path, Format::Ndjson).unwrap();
    let spool = path.parent().unwrap();
    pull(&api, &query, &mut sink, spool, &tries(attempts), &mut |_| {}).await.map(|_| ())
}

/// The FullIds of an NDJSON file, in order.
fn file_ids(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(record.as_object().unwrap().len(), 50, "a record lost keys: {line}");
            record["FullId"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Adds detections `numbers`, one every `step` milliseconds from `first`;
/// returns the last one's time.
fn add_every(
    standin: &StandIn,
    numbers: std::ops::Range<usize>,
    first: Timestamp,
    step: i64,
) -> Timestamp {
    let mut last = first;
    for (i, n) in numbers.enumerate() {
        last = plus(first, i as i64 * step);
        standin.add(n, last);
    }
    last
}

/// Captures the log lines written while the returned guard lives, on this
/// thread (the tests run on a current-thread runtime, so that is all of them).
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || LogWriter(sink.clone()))
        .finish();
    (lines, tracing::subscriber::set_default(subscriber))
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_429_is_waited_out_for_its_retry_after_then_everything_arrives() {
    let standin = StandIn::start().await;
    let since = backlog_start(5);
    add_every(&standin, 0..6, since, 300);
    standin.script([Fault::Status {
        code: 429,
        retry_after: Some(2),
        message: "rate limit is exceeded: try again in 2 seconds",
    }]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("detections.ndjson");

    pull_to_file(&standin, SECRET, since, plus(since, 4000), &out, 3).await.unwrap();

    let seen = standin.seen();
    assert_eq!(seen.iter().map(|s| s.status).collect::<Vec<_>>(), [429, 200]);
    let waited = seen[1].at - seen[0].at;
    assert!(waited >= Duration::from_secs(2), "asked again after {waited:?}, not 2 s");
    assert_each_once(&file_ids(&out), 0..6);
}

#[tokio::test]
async fn bursts_of_server_errors_are_retried_with_backoff_and_lose_or_repeat_nothing() {
    let (logs, _guard) = capture_logs();
    let standin = StandIn::start().await;
    let start = backlog_start(12);
    let last = add_every(&standin, 0..24, start, 450);
    standin.script([
        Fault::status(500, "an internal error occurred"),
        Fault::status(502, "the gateway got no answer"),
        Fault::status(500, "an internal error occurred"),
        Fault::Pass,
        Fault::status(502, "the gateway got no answer"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let delivered = Arc::default();
    let stream = follow(
        &standin,
        &dir.path().join("checkpoint.json"),
        Collector::new(&delivered, true),
        options(start, 8, dir.path()),
    );
    stream.past(last).await;
    assert_eq!(stream.stats.failures.load(Ordering::Relaxed), 4);
    stream.stop().await;

    assert_each_once(&committed(&delivered), 0..24);
    let seen = standin.seen();
    let width =
        |i: usize| seen[i].until.unwrap().unix_seconds() - seen[i].since.unwrap().unix_seconds();
    // The same 8 s window three times, then half of it after the third failure.
    assert_eq!((width(0), width(1), width(2), width(3)), (8, 8, 8, 4));
    assert!(seen[..4].iter().all(|s| s.since == seen[0].since));
    for pair in seen.windows(2).filter(|p| p[0].status >= 500) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(25), "retried after only {gap:?}");
    }
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let loud = logs
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("keeps failing"))
        .unwrap_or_else(|| panic!("no error logged for the failing window in:\n{logs}"));
    assert!(loud.contains("500") && loud.contains("an internal error occurred"), "{loud}");
}

#[tokio::test]
async fn a_one_shot_window_that_keeps_failing_ends_in_an_error_naming_the_last_failure() {
    let standin = StandIn::start().await;
    let since = backlog_start(5);
    add_every(&standin, 0..3, since, 500);
    standin.script([
        Fault::status(500, "the first failure"),
        Fault::status(503, "the second failure"),
        Fault::status(502, "upstream timed out"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("detections.ndjson");

    let err = pull_to_file(&standin, SECRET, since, plus(since, 4000), &out, 3).await.unwrap_err();

    let text = err.to_string();
    assert!(text.contains("502") && text.contains("upstream timed out"), "{text}");
    assert!(!text.contains("first failure") && !text.contains("second failure"), "{text}");
    assert_eq!(standin.seen().len(), 3, "the pull gave up after a number of attempts other than 3");
    // A failed pull leaves no file, not even a partial one.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_token_about_to_expire_is_renewed_before_the_api_refuses_it() {
    let standin = StandIn::start().await;
    standin.token_lifetime(2);
    let dir = tempfile::tempdir().unwrap();
    let delivered = Arc::default();
    let stream = follow(
        &standin,
        &dir.path().join("checkpoint.json"),
        Collector::new(&delivered, true),
        options(backlog_start(2), 60, dir.path()),
    );
    // Detections keep arriving for longer than two tokens' lives.
    let mut last = now();
    for n in 0..10 {
        last = now();
        standin.add(n, last);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stream.past(last).await;
    stream.stop().await;

    assert_each_once(&committed(&delivered), 0..10);
    let seen = standin.seen();
    assert!(seen.iter().all(|s| s.status == 200), "a request was refused: {seen:?}");
    assert!(standin.tokens_issued() >= 3, "only {} tokens over 5 s", standin.tokens_issued());
    assert!(seen.len() > standin.tokens_issued(), "tokens are not reused");
}

#[tokio::test]
async fn a_token_refused_after_a_key_rotation_is_renewed_once_and_the_pull_succeeds() {
    let standin = StandIn::start().await;
    let since = backlog_start(5);
    add_every(&standin, 0..4, since, 500);
    standin.script([Fault::RotateKeys]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("detections.ndjson");

    pull_to_file(&standin, SECRET, since, plus(since, 4000), &out, 1).await.unwrap();

    assert_eq!(standin.seen().iter().map(|s| s.status).collect::<Vec<_>>(), [401, 200]);
    assert_eq!(standin.tokens_issued(), 2);
    assert_each_once(&file_ids(&out), 0..4);
}

#[tokio::test]
async fn a_renewed_token_refused_too_stops_the_pull_after_one_renewal() {
    let standin = StandIn::start().await;
    let since = backlog_start(5);
    standin.script([Fault::RotateKeys, Fault::RotateKeys]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("detections.ndjson");

    let err = pull_to_file(&standin, SECRET, since, plus(since, 4000), &out, 6).await.unwrap_err();

    assert!(matches!(err, PullError::Auth(_)), "{err:?}");
    assert!(err.to_string().contains("SIEM role"), "{err}");
    assert_eq!(standin.tokens_issued(), 2);
    assert_eq!(standin.seen().len(), 2);
}

#[tokio::test]
async fn a_wrong_secret_is_reported_with_azure_ads_reason_and_never_shown() {
    let standin = StandIn::start().await;
    let wrong = "Zz9~a.wrong-secret-that-must-stay-hidden";
    let since = backlog_start(5);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("detections.ndjson");

    let err = pull_to_file(&standin, wrong, since, plus(since, 4000), &out, 6).await.unwrap_err();

    let text = err.to_string();
    assert!(text.contains("AADSTS7000215: Invalid client secret provided."), "{text}");
    assert!(!text.contains("Trace ID") && !text.contains('\n'), "{text}");
    assert!(!text.contains(wrong) && !format!("{err:?}").contains(wrong), "{err:?}");
    // Retrying a refused secret would only lock the app out sooner.
    assert_eq!(standin.tokens_issued(), 0);
    assert!(standin.seen().is_empty());
    assert!(!out.exists());
}

#[tokio::test]
async fn a_body_cut_off_mid_array_is_pulled_again_and_never_half_delivered() {
    for rolls_back in [true, false] {
        let standin = StandIn::start().await;
        let start = backlog_start(6);
        let last = add_every(&standin, 0..12, start, 400);
        standin.script([Fault::CutOff]);
        let dir = tempfile::tempdir().unwrap();
        let delivered: collector::Shared = Arc::default();
        let stream = follow(
            &standin,
            &dir.path().join("checkpoint.json"),
            Collector::new(&delivered, rolls_back),
            options(start, 60, dir.path()),
        );
        stream.past(last).await;
        stream.stop().await;

        assert_each_once(&committed(&delivered), 0..12);
        let d = delivered.lock().unwrap();
        if rolls_back {
            // The first half reached the sink, and was taken back.
            assert_eq!(d.roll_backs, 1);
            assert!(d.taken_back > 0, "the cut body never reached the sink");
        } else {
            assert_eq!((d.roll_backs, d.taken_back), (0, 0));
        }
    }
}

#[tokio::test]
async fn a_malformed_body_is_pulled_again_and_the_file_holds_each_detection_once() {
    let standin = StandIn::start().await;
    let since = backlog_start(5);
    add_every(&standin, 0..6, since, 500);
    standin.script([Fault::Html, Fault::MissingFullId, Fault::CutOff]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("detections.ndjson");

    pull_to_file(&standin, SECRET, since, plus(since, 4000), &out, 4).await.unwrap();

    assert_eq!(standin.seen().len(), 4);
    assert_each_once(&file_ids(&out), 0..6);
}

#[tokio::test]
async fn detections_on_a_window_boundary_are_delivered_once_whether_until_is_inclusive_or_not() {
    for inclusive in [true, false] {
        let standin = StandIn::start().await;
        standin.until_inclusive(inclusive);
        let start = backlog_start(7);
        // Windows are one second wide, so they end on each of these seconds.
        let at = |millis| plus(start, millis);
        for (n, millis) in [(0, 2000), (1, 2000), (2, 2000), (3, 2500), (4, 3000), (5, 3000)] {
            standin.add(n, at(millis));
        }
        standin.add(6, at(4000));
        let dir = tempfile::tempdir().unwrap();
        let delivered: collector::Shared = Arc::default();
        let stream = follow(
            &standin,
            &dir.path().join("checkpoint.json"),
            Collector::new(&delivered, true),
            options(start, 1, dir.path()),
        );
        stream.past(at(4000)).await;
        stream.stop().await;

        assert_each_once(&committed(&delivered), 0..7);
        let served: usize = standin.seen().iter().map(|s| s.served).sum();
        // An inclusive server sends what lies on a boundary twice.
        assert_eq!(served, if inclusive { 7 + 6 } else { 7 }, "inclusive: {inclusive}");
    }
}

#[tokio::test]
async fn a_detection_arriving_inside_the_lag_is_delivered_by_a_later_window_once() {
    let standin = StandIn::start().await;
    let start = backlog_start(3);
    add_every(&standin, 0..3, start, 500);
    let late = Span::from_ticks(TICKS_PER_SECOND / 2);
    standin.script([Fault::Arrive { number: 3, after_until: late }]);
    let dir = tempfile::tempdir().unwrap();
    let delivered: collector::Shared = Arc::default();
    let stream = follow(
        &standin,
        &dir.path().join("checkpoint.json"),
        Collector::new(&delivered, true),
        options(start, 60, dir.path()),
    );
    wait_for("the first poll", || !standin.seen().is_empty()).await;
    let first = standin.seen()[0].clone();
    let stamped = first.until.unwrap().add_ticks(late.ticks());
    stream.past(stamped).await;
    stream.stop().await;

    assert_eq!(first.served, 3);
    assert_each_once(&committed(&delivered), 0..4);
}

#[tokio::test]
async fn a_stream_stopped_or_killed_mid_window_resumes_from_its_checkpoint() {
    let standin = StandIn::start().await;
    let start = backlog_start(10);
    let last = add_every(&standin, 0..20, start, 450);
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("checkpoint.json");
    let delivered: collector::Shared = Arc::default();
    let run = |sink| follow(&standin, &checkpoint, sink, options(start, 2, dir.path()));

    // Stopped while the third window's answer has stalled halfway.
    standin.script([Fault::Pass, Fault::Pass, Fault::Stall]);
    let first = run(Collector::new(&delivered, true));
    wait_for("the third window", || standin.seen().len() == 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.stop().await;
    let after_stop = committed(&delivered).len();
    assert!(after_stop > 0 && after_stop < 20, "{after_stop} delivered before the stop");

    // Killed while the same window stalls again.
    standin.script([Fault::Stall]);
    let second = run(Collector::new(&delivered, true));
    wait_for("the window to be asked for again", || standin.seen().len() == 4).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    second.task.abort();
    let _ = second.task.await;
    assert_eq!(committed(&delivered).len(), after_stop);

    let third = run(Collector::new(&delivered, true));
    third.past(last).await;
    third.stop().await;

    assert_each_once(&committed(&delivered), 0..20);
    let seen = standin.seen();
    // Each run resumed at the window the previous one did not finish.
    assert_eq!(seen[3].since, seen[2].since);
    assert_eq!(seen[4].since, seen[2].since);
}
