//! Two `siemgate serve` processes on one PostgreSQL database, as replicas
//! behind a load balancer: tokens issued by one are taken by the other, a
//! rotated key reaches both, overlapping batches sent to both at once are
//! stored once, a follower whose requests alternate between them gets every
//! detection exactly once, and a replica killed in the middle of an ingest
//! loses nothing it acknowledged.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Env, Served};
use serde_json::Value;
use siemgate_model::Timestamp;

/// How long anything here may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(60);

/// A tenant and an app holding both roles, made with the CLI on the shared
/// store before the replicas start.
struct Registered {
    tenant: String,
    client_id: String,
    secret: String,
}

fn register(env: &Env) -> Registered {
    env.add_tenant("contoso");
    let out = env.ok(&[
        "app",
        "add",
        "-t",
        "contoso",
        "--name",
        "siem",
        "--role",
        "siem-read",
        "--role",
        "ingest",
        "--json",
    ]);
    let app: Value = serde_json::from_str(&out).unwrap();
    Registered {
        tenant: "contoso.onmicrosoft.com".into(),
        client_id: app["client_id"].as_str().unwrap().into(),
        secret: app["client_secret"].as_str().unwrap().into(),
    }
}

/// Starts a replica answering plain HTTP beside HTTPS, with the certificate
/// in a folder both replicas share (as they would behind one name).
fn replica(env: &Env, key_refresh: &str) -> Served {
    let tls = env.dir.path().join("tls");
    env.serve(&[
        "--http",
        "127.0.0.1:0",
        "--tls-dir",
        tls.to_str().unwrap(),
        "--key-refresh",
        key_refresh,
    ])
}

fn http(served: &Served) -> String {
    served.http.clone().unwrap()
}

/// curl with its answer's status appended on a line of its own.
fn curl(args: &[&str]) -> (u16, String) {
    let out =
        Command::new("curl").args(["-s", "-w", "\n%{http_code}"]).args(args).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap_or(0), body.to_owned())
}

/// A v1 client-credentials token from the server at `base`.
fn token(base: &str, app: &Registered) -> String {
    common::client_token(base, &app.tenant, &app.client_id, &app.secret)
        .unwrap_or_else(|answer| panic!("no token from {base}: {answer}"))
}

/// The `kid` in a token's header.
fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// The kids a server publishes.
fn published(base: &str, app: &Registered) -> Vec<String> {
    let (status, body) = curl(&[&format!("{base}/{}/discovery/keys", app.tenant)]);
    assert_eq!(status, 200, "{body}");
    let keys: Value = serde_json::from_str(&body).unwrap();
    keys["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().into()).collect()
}

/// `GET /api/alerts` with `query`: the status, and the detections on success.
fn alerts(base: &str, token: &str, query: &str) -> (u16, Vec<Value>) {
    let auth = format!("Authorization: Bearer {token}");
    let (status, body) = curl(&["-H", &auth, &format!("{base}/api/alerts{query}")]);
    if status != 200 {
        return (status, Vec::new());
    }
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
}

/// `POST /api/detections`: the status and the answer.
fn post(base: &str, token: &str, ndjson: &str) -> (u16, Value) {
    let auth = format!("Authorization: Bearer {token}");
    let mut child = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-H", &auth, "--data-binary", "@-"])
        .arg(format!("{base}/api/detections"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(ndjson.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.parse().unwrap_or(0), serde_json::from_str(body).unwrap_or(Value::Null))
}

/// `count` simulated detections as NDJSON lines, each with its FullId.
fn simulated(env: &Env, count: usize, seed: &str) -> Vec<(String, String)> {
    let out = env.ok(&["simulate", "--stdout", "--count", &count.to_string(), "--seed", seed]);
    out.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            (v["FullId"].as_str().unwrap().to_owned(), format!("{line}\n"))
        })
        .collect()
}

/// Every FullId of the tenant's detections, read through `base`, failing on a repeat.
fn stored_once(base: &str, token: &str) -> HashSet<String> {
    let (status, rows) =
        alerts(base, token, "?sinceTimeUtc=2000-01-01T00:00:00Z&untilTimeUtc=2100-01-01T00:00:00Z");
    assert_eq!(status, 200);
    let mut ids = HashSet::new();
    for row in rows {
        let id = row["FullId"].as_str().unwrap().to_owned();
        assert!(ids.insert(id.clone()), "{id} is stored twice");
    }
    ids
}

#[test]
fn tokens_from_one_replica_work_on_the_other_and_a_rotated_key_reaches_both() {
    let env = Env::postgres();
    let app = register(&env);
    // A reads the keys every second; B only every hour, so B can take up a
    // rotation in time only by reading the keys when a token names one it
    // does not know.
    let a = replica(&env, "PT1S");
    let b = replica(&env, "PT1H");
    let (a_url, b_url) = (http(&a), http(&b));
    assert_eq!(published(&a_url, &app), published(&b_url, &app), "one key, shared");

    let from_a = token(&a_url, &app);
    let from_b = token(&b_url, &app);
    assert_eq!(alerts(&b_url, &from_a, "").0, 200, "A's token on B");
    assert_eq!(alerts(&a_url, &from_b, "").0, 200, "B's token on A");

    let old_kid = kid(&from_a);
    env.ok(&["keys", "rotate"]);
    let started = Instant::now();
    let new_token = loop {
        let t = token(&a_url, &app);
        if kid(&t) != old_kid {
            break t;
        }
        assert!(started.elapsed() < PATIENCE, "A never took up the rotated key");
        std::thread::sleep(Duration::from_millis(200));
    };
    let new_kid = kid(&new_token);
    assert!(published(&a_url, &app).contains(&new_kid));
    assert!(!published(&b_url, &app).contains(&new_kid), "B has not read the keys yet");
    assert_eq!(alerts(&b_url, &new_token, "").0, 200, "B takes a token signed with the new key");
    let on_b = published(&b_url, &app);
    assert!(on_b.contains(&new_kid) && on_b.contains(&old_kid), "B publishes both: {on_b:?}");
    assert_eq!(alerts(&b_url, &from_a, "").0, 200, "tokens of the retired key stay good");
    assert_eq!(kid(&token(&b_url, &app)), new_kid, "B signs with the new key");
    assert_eq!(alerts(&a_url, &"x".repeat(40), "").0, 401);
}

#[test]
fn overlapping_batches_sent_to_both_replicas_at_once_store_each_full_id_once() {
    let env = Env::postgres();
    let app = register(&env);
    let (a, b) = (replica(&env, "PT30S"), replica(&env, "PT30S"));
    let records = Arc::new(simulated(&env, 3_000, "11"));

    // Each replica gets every record, in batches of 150, A from the front
    // and B from the back, so the same FullIds reach both at about the same
    // moment in the middle.
    let mut senders = Vec::new();
    for (base, reverse) in [(http(&a), false), (http(&b), true)] {
        let (records, token) = (Arc::clone(&records), token(&base, &app));
        senders.push(std::thread::spawn(move || {
            let mut batches: Vec<String> =
                records.chunks(150).map(|c| c.iter().map(|(_, l)| l.as_str()).collect()).collect();
            if reverse {
                batches.reverse();
            }
            let mut stored = 0;
            for batch in batches {
                let (status, answer) = post(&base, &token, &batch);
                assert_eq!(status, 200, "{answer}");
                assert_eq!(answer["received"], 150);
                stored += answer["stored"].as_u64().unwrap();
            }
            stored
        }));
    }
    let stored: Vec<u64> = senders.into_iter().map(|s| s.join().unwrap()).collect();
    assert_eq!(stored.iter().sum::<u64>(), 3_000, "each FullId stored by one replica: {stored:?}");
    assert!(stored.iter().all(|&n| n > 0), "both replicas stored some: {stored:?}");
    let ids = stored_once(&http(&b), &token(&http(&a), &app));
    let expected: HashSet<String> = records.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, expected);
}

/// A load balancer that sends each connection to the next replica in turn
/// and asks for the connection to be closed after one request, so every
/// request a client makes goes to the replica after the last one's.
struct RoundRobin {
    url: String,
    per_replica: Arc<Vec<AtomicUsize>>,
}

impl RoundRobin {
    fn start(replicas: &[&Served]) -> RoundRobin {
        let upstreams: Vec<String> =
            replicas.iter().map(|s| http(s).trim_start_matches("http://").to_owned()).collect();
        let per_replica: Arc<Vec<AtomicUsize>> =
            Arc::new(upstreams.iter().map(|_| AtomicUsize::new(0)).collect());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let counts = Arc::clone(&per_replica);
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                let Ok(client) = client else { continue };
                let turn = n % upstreams.len();
                counts[turn].fetch_add(1, Ordering::Relaxed);
                let upstream = upstreams[turn].clone();
                std::thread::spawn(move || relay(client, &upstream));
            }
        });
        RoundRobin { url, per_replica }
    }

    fn counts(&self) -> Vec<usize> {
        self.per_replica.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }
}

/// Passes one request to `upstream` with `Connection: close`, and its
/// answer back, then closes both connections.
fn relay(client: TcpStream, upstream: &str) {
    let Ok(server) = TcpStream::connect(upstream) else { return };
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        if !line.to_ascii_lowercase().starts_with("connection:") {
            head.push_str(&line);
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut to_server = server.try_clone().unwrap();
    if to_server.write_all(head.as_bytes()).is_err() {
        return;
    }
    // The rest of the request (a form body) is already buffered or still
    // coming; pass whatever arrives until the server has answered.
    let body = std::thread::spawn(move || {
        let _ = std::io::copy(&mut reader, &mut to_server);
    });
    let (mut from_server, mut to_client) = (server, client);
    let _ = std::io::copy(&mut from_server, &mut to_client);
    let _ = to_client.shutdown(std::net::Shutdown::Both);
    let _ = from_server.shutdown(std::net::Shutdown::Both);
    let _ = body.join();
}

/// `siemgate pull --follow` through `url` into `out.ndjson`, with no lag.
fn follower(env: &Env, url: &str, app: &Registered, since: Timestamp) -> Child {
    let log = std::fs::File::create(env.dir.path().join("pull.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_siemgate"))
        .args(["pull", "--url", url, "--tenant", &app.tenant, "--client-id", &app.client_id])
        .args(["--follow", "--since", &since.to_string(), "--lag", "PT0S", "--interval", "PT0.2S"])
        .args(["--output", "out.ndjson", "--checkpoint", "cp.json", "--no-gzip"])
        .env("SIEMGATE_PULL_CLIENT_SECRET", &app.secret)
        .current_dir(env.dir.path())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn resumes_at(checkpoint: &Path) -> Option<Timestamp> {
    let cp: Value = serde_json::from_slice(&std::fs::read(checkpoint).ok()?).ok()?;
    Timestamp::parse(cp["since"].as_str()?).ok()
}

#[test]
fn a_follower_through_alternating_replicas_gets_every_detection_once_while_both_ingest() {
    let env = Env::postgres();
    let app = register(&env);
    let (a, b) = (replica(&env, "PT30S"), replica(&env, "PT30S"));
    let balancer = RoundRobin::start(&[&a, &b]);
    let since = Timestamp::from_system_time(std::time::SystemTime::now());
    let mut pull = follower(&env, &balancer.url, &app, since);

    // Both replicas ingest at once, in batches large enough that a window
    // is often read while a batch is being written.
    let records = simulated(&env, 8_000, "12");
    let mut senders = Vec::new();
    for (i, base) in [http(&a), http(&b)].into_iter().enumerate() {
        let token = token(&base, &app);
        let mine: Vec<String> = records
            .chunks(400)
            .skip(i)
            .step_by(2)
            .map(|c| c.iter().map(|(_, l)| l.as_str()).collect())
            .collect();
        senders.push(std::thread::spawn(move || {
            for batch in mine {
                let (status, answer) = post(&base, &token, &batch);
                assert_eq!(status, 200, "{answer}");
                std::thread::sleep(Duration::from_millis(150));
            }
        }));
    }
    for s in senders {
        s.join().unwrap();
    }
    let all_in = Timestamp::from_system_time(std::time::SystemTime::now());

    let checkpoint = env.dir.path().join("cp.json");
    let started = Instant::now();
    while resumes_at(&checkpoint).is_none_or(|at| at <= all_in) {
        if let Some(status) = pull.try_wait().unwrap() {
            let log = std::fs::read_to_string(env.dir.path().join("pull.log")).unwrap();
            panic!("the follower exited with {status}:\n{log}");
        }
        assert!(started.elapsed() < PATIENCE, "the follower never caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = pull.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(pull.wait().unwrap().success());

    let mut delivered = HashSet::new();
    let out = std::fs::read_to_string(env.dir.path().join("out.ndjson")).unwrap();
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let id = v["FullId"].as_str().unwrap().to_owned();
        assert!(delivered.insert(id.clone()), "{id} was delivered twice");
    }
    let expected: HashSet<String> = records.into_iter().map(|(id, _)| id).collect();
    let missing = expected.difference(&delivered).count();
    assert_eq!(missing, 0, "{missing} of {} detections never reached the follower", expected.len());
    assert_eq!(delivered, expected);
    let counts = balancer.counts();
    assert!(counts.iter().all(|&n| n >= 3), "requests went to both replicas: {counts:?}");
}

#[test]
fn a_replica_killed_mid_ingest_loses_nothing_it_acknowledged() {
    let env = Env::postgres();
    let app = register(&env);
    let mut a = replica(&env, "PT30S");
    let b = replica(&env, "PT30S");
    let records = simulated(&env, 6_000, "13");
    let batches: Vec<(Vec<String>, String)> = records
        .chunks(300)
        .map(|c| {
            (
                c.iter().map(|(id, _)| id.clone()).collect(),
                c.iter().map(|(_, l)| l.as_str()).collect(),
            )
        })
        .collect();

    // Batches go to A one after another until A dies; each 200 answer is an
    // acknowledgement.
    let (a_url, token_a) = (http(&a), token(&http(&a), &app));
    let sent = Arc::new(batches);
    let sender = {
        let sent = Arc::clone(&sent);
        std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            for (n, (_, body)) in sent.iter().enumerate() {
                let (status, _) = post(&a_url, &token_a, body);
                if status != 200 {
                    break;
                }
                acknowledged.push(n);
            }
            acknowledged
        })
    };
    // Kill A (SIGKILL) once a few batches are in, with more in flight.
    let b_url = http(&b);
    let token_b = token(&b_url, &app);
    let started = Instant::now();
    while stored_once(&b_url, &token_b).len() < 1_500 {
        assert!(started.elapsed() < PATIENCE, "A stored too little to be killed mid-way");
        std::thread::sleep(Duration::from_millis(20));
    }
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let acknowledged = sender.join().unwrap();
    assert!(acknowledged.len() < sent.len(), "A died before the last batch");

    // B answers with every acknowledged batch whole, and no batch in part.
    let stored = stored_once(&b_url, &token_b);
    let batch_of: HashMap<&str, usize> = sent
        .iter()
        .enumerate()
        .flat_map(|(n, (ids, _))| ids.iter().map(move |id| (id.as_str(), n)))
        .collect();
    let mut per_batch: HashMap<usize, usize> = HashMap::new();
    for id in &stored {
        *per_batch.entry(batch_of[id.as_str()]).or_default() += 1;
    }
    for n in &acknowledged {
        assert_eq!(per_batch.get(n), Some(&300), "acknowledged batch {n} lost");
    }
    for (n, count) in &per_batch {
        assert_eq!(*count, 300, "batch {n} stored in part");
    }

    // Sending everything again to B completes the store, with no repeats.
    for (_, body) in sent.iter() {
        assert_eq!(post(&b_url, &token_b, body).0, 200);
    }
    assert_eq!(stored_once(&b_url, &token_b).len(), 6_000);
}
