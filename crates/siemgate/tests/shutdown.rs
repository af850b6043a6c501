//! Stopping the server: SIGTERM lets a large response and an ingest in
//! flight finish before the process exits; SIGKILL during HTTP ingest never
//! loses a batch the server acknowledged and never leaves half of one.

// The kill-delay seed goes to the test's output, to repeat a failing run.
#![allow(clippy::print_stderr)]

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, Served};

/// A tenant `contoso` with an app holding both roles, and its token.
fn app_token(env: &Env, base: &str) -> String {
    let tenant = env.ok(&["tenant", "show", "contoso", "--json"]);
    let tenant: serde_json::Value = serde_json::from_str(&tenant).unwrap();
    let app = env.ok(&[
        "app",
        "add",
        "-t",
        "contoso",
        "--name",
        "feed",
        "--role",
        "siem-read",
        "--role",
        "ingest",
        "--json",
    ]);
    let app: serde_json::Value = serde_json::from_str(&app).unwrap();
    let body = format!(
        "resource=https%3A%2F%2Fgraph.windows.net&client_id={}&client_secret={}&grant_type=client_credentials",
        app["client_id"].as_str().unwrap(),
        app["client_secret"].as_str().unwrap()
    );
    let url = format!("{base}/{}/oauth2/token", tenant["id"].as_str().unwrap());
    let out = Command::new("curl").args(["-s", "-X", "POST", &url, "-d", &body]).output().unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    answer["access_token"].as_str().unwrap().to_owned()
}

/// Waits for the server to exit and says it exited cleanly.
fn exits_cleanly(mut served: Served) {
    let started = Instant::now();
    loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            assert!(status.success(), "exited with {status}; log:\n{}", served.log_text());
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_lets_a_large_response_finish() {
    let env = Env::new();
    env.add_tenant("contoso");
    env.ok(&["simulate", "-t", "contoso", "--count", "10000"]);
    let served = env.serve(&["--http", "127.0.0.1:0"]);
    let base = served.http.clone().unwrap();
    let token = app_token(&env, &base);

    // About 20 MB at 5 MB/s: the response is still going when SIGTERM lands.
    let body = env.dir.path().join("window.json");
    let mut curl = Command::new("curl")
        .args(["-s", "--limit-rate", "5M", "-o", body.to_str().unwrap(), "-w", "%{http_code}"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("{base}/api/alerts?ago=P1D"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    assert!(curl.try_wait().unwrap().is_none(), "the response ended before SIGTERM");
    served.terminate();
    let out = curl.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&body).unwrap()).expect("a whole JSON array");
    assert_eq!(rows.len(), 10_000);
    exits_cleanly(served);
}

#[test]
fn sigterm_lets_an_ingest_in_flight_finish_and_keeps_it() {
    let env = Env::new();
    env.add_tenant("contoso");
    let records = env.ok(&["simulate", "--stdout", "--count", "5000", "--seed", "3"]);
    let file = env.file("batch.ndjson", &records);
    let served = env.serve(&["--http", "127.0.0.1:0"]);
    let base = served.http.clone().unwrap();
    let token = app_token(&env, &base);

    // Several MB sent at 2 MB/s: the request is still arriving at SIGTERM.
    let mut curl = Command::new("curl")
        .args(["-s", "--limit-rate", "2M", "-X", "POST", "--data-binary"])
        .arg(format!("@{file}"))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("{base}/api/detections"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert!(curl.try_wait().unwrap().is_none(), "the upload ended before SIGTERM");
    served.terminate();
    let out = curl.wait_with_output().unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(answer["stored"], 5000, "{answer}");
    exits_cleanly(served);
    assert_eq!(env.stored_full_ids().len(), 5000, "acknowledged means stored");
}

const BATCH: usize = 100;
const BATCHES: usize = 150;
const KILLS: usize = 6;

/// Posts batch after batch until one fails; returns the ones acknowledged.
fn post_batches(base: &str, token: &str, batches: &[String], first: usize) -> Vec<usize> {
    let mut acknowledged = Vec::new();
    for (n, body) in batches.iter().enumerate().skip(first) {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data-binary"])
            .arg(body)
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .arg(format!("{base}/api/detections"))
            .output()
            .unwrap();
        if out.stdout != b"200" {
            break;
        }
        acknowledged.push(n);
    }
    acknowledged
}

#[test]
fn sigkill_during_http_ingest_loses_no_acknowledged_batch() {
    let env = Env::new();
    env.add_tenant("contoso");
    let records = env.ok(&["simulate", "--stdout", "--count", &(BATCH * BATCHES).to_string()]);
    let lines: Vec<&str> = records.lines().collect();
    let batches: Vec<String> = lines
        .chunks(BATCH)
        .enumerate()
        .map(|(i, c)| format!("@{}", env.file(&format!("batch-{i}.ndjson"), &c.join("\n"))))
        .collect();
    let batch_of: HashMap<String, usize> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (v["FullId"].as_str().unwrap().to_owned(), i / BATCH)
        })
        .collect();

    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
            as u64;
    eprintln!("kill-delay seed {seed}");
    let mut acknowledged = HashSet::new();
    let mut token = None;
    let mut kills_mid_ingest = 0;
    for kill in 0..KILLS {
        let served = env.serve(&["--http", "127.0.0.1:0"]);
        let base = served.http.clone().unwrap();
        let token = token.get_or_insert_with(|| app_token(&env, &base)).clone();
        let first = acknowledged.len().min(BATCHES - 1);
        let poster = {
            let batches = batches.clone();
            std::thread::spawn(move || post_batches(&base, &token, &batches, first))
        };
        std::thread::sleep(Duration::from_millis(100 + (seed >> (kill * 5)) % 300));
        let mut served = served;
        served.child.kill().unwrap(); // SIGKILL
        served.child.wait().unwrap();
        acknowledged.extend(poster.join().unwrap());
        if acknowledged.len() < BATCHES {
            kills_mid_ingest += 1;
        }

        let mut present: HashMap<usize, usize> = HashMap::new();
        for full_id in env.stored_full_ids() {
            *present.entry(batch_of[&full_id]).or_default() += 1;
        }
        for (batch, n) in &present {
            assert_eq!(*n, BATCH, "batch {batch} is present in part after kill {kill}");
        }
        for batch in &acknowledged {
            assert_eq!(present.get(batch), Some(&BATCH), "acknowledged batch {batch} lost");
        }
    }
    eprintln!(
        "{} of {BATCHES} batches acknowledged; {kills_mid_ingest} of {KILLS} kills mid-ingest",
        acknowledged.len()
    );
    assert!(acknowledged.len() >= KILLS, "too few batches acknowledged to mean anything");
    assert!(kills_mid_ingest >= KILLS / 2, "too few kills landed mid-ingest to mean anything");
}
