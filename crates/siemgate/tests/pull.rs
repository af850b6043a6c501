//! `siemgate pull` against a real `siemgate serve` on a real port: one-shot
//! pulls in every format, and following a stream while detections keep
//! arriving, with the puller killed (SIGKILL) at random moments and started
//! again, its output compared with the server's store.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Demo, Env, Served};
use siemgate_model::Timestamp;

/// `siemgate pull` pointed at `served` with the demo app's credentials.
fn pull(env: &Env, served: &Served, demo: &Demo, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_siemgate"));
    cmd.arg("pull")
        .args(["--url", &served.https, "--tenant", &demo.tenant, "--client-id", &demo.client_id])
        .arg("--ca-file")
        .arg(served.ca_file.as_ref().unwrap())
        .args(args)
        .env("SIEMGATE_PULL_CLIENT_SECRET", &demo.secret)
        .current_dir(env.dir.path());
    cmd
}

/// Every line of every `out*.ndjson` file in `dir`, as parsed records.
fn ndjson_lines(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("out") && name.ends_with(".ndjson")
        })
        .collect();
    files.sort();
    let mut records = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            let record = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("{}: a line that is not JSON ({e}): {line}", file.display())
            });
            records.push(record);
        }
    }
    records
}

/// (FullId, processed ticks) of every detection the store holds.
fn stored(env: &Env) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(&env.db).unwrap();
    let mut stmt = conn.prepare("SELECT full_id, processed FROM detections").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn one_shot_pulls_write_json_ndjson_and_csv() {
    let env = Env::new();
    let served = env.serve(&["--demo"]);
    let demo = served.demo();
    let until = Timestamp::from_system_time(std::time::SystemTime::now()).to_string();
    let window = ["--since", "2000-01-01T00:00:00Z", "--until", until.as_str()];

    let out = pull(&env, &served, &demo, &window)
        .args(["--format", "json", "-o", "all.json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let array: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(env.dir.path().join("all.json")).unwrap()).unwrap();
    assert!(array.len() >= 300, "the demo's backfill: {}", array.len());
    for record in &array {
        assert_eq!(record.as_object().unwrap().len(), 50);
    }

    let out = pull(&env, &served, &demo, &window).args(["--format", "ndjson"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, array, "NDJSON holds the same records, in the same order");

    let out = pull(&env, &served, &demo, &window)
        .args(["--format", "csv", "-o", "all.csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = std::fs::read_to_string(env.dir.path().join("all.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert_eq!(header, siemgate_model::KEYS.join(","));
    let ids: Vec<&str> = array.iter().map(|r| r["FullId"].as_str().unwrap()).collect();
    for id in &ids {
        assert!(csv.contains(id), "the CSV lacks {id}");
    }

    // A wrong secret: the identity provider's description, never the secret.
    let out = pull(&env, &served, &demo, &window)
        .env("SIEMGATE_PULL_CLIENT_SECRET", "not-the-secret")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("Invalid client secret"), "{err}");
    assert!(!err.contains("not-the-secret"), "{err}");
}

/// Follows the demo server's stream into rotated NDJSON files, killing the
/// puller with SIGKILL at random moments; the files must hold every stored
/// detection of the pulled span exactly once.
#[test]
fn follow_survives_sigkill_with_nothing_missing_and_nothing_repeated() {
    let env = Env::new();
    let served = env.serve(&["--demo", "--demo-rate", "40"]);
    let demo = served.demo();
    let start = Timestamp::from_system_time(std::time::SystemTime::now())
        .add_ticks(-30 * 60 * 10_000_000)
        .to_string();
    let follow = |env: &Env| {
        let mut cmd = pull(
            env,
            &served,
            &demo,
            &[
                "--follow",
                "--checkpoint",
                "cp.json",
                "--output",
                "out.ndjson",
                "--rotate-size",
                "300000",
                "--since",
                &start,
                "--lag",
                "PT1S",
                "--interval",
                "PT0.2S",
                "--max-window",
                "PT5M",
                "--no-gzip",
            ],
        );
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd
    };

    let mut seed = std::process::id() as u64;
    let mut kills = 0;
    for _ in 0..12 {
        let mut child = follow(&env).spawn().unwrap();
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let wait = 150 + (seed >> 33) % 900;
        std::thread::sleep(Duration::from_millis(wait));
        if child.try_wait().unwrap().is_none() {
            kills += 1;
        }
        kill(&mut child);
    }
    assert!(kills >= 10, "the puller must have been running when killed ({kills} of 12)");

    // A last run, stopped cleanly once it has caught up with the lag.
    let log = env.dir.path().join("last-run.log");
    let mut child = follow(&env).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let caught_up = loop {
        std::thread::sleep(Duration::from_millis(300));
        let cp: serde_json::Value =
            serde_json::from_slice(&std::fs::read(env.dir.path().join("cp.json")).unwrap())
                .unwrap();
        let since = Timestamp::parse(cp["since"].as_str().unwrap()).unwrap();
        let now = Timestamp::from_system_time(std::time::SystemTime::now());
        if now.unix_ticks() - since.unix_ticks() < 5 * 10_000_000 || Instant::now() > deadline {
            break since;
        }
    };
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM ends the puller cleanly: {status}; its log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    let cp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.dir.path().join("cp.json")).unwrap()).unwrap();
    let end = Timestamp::parse(cp["since"].as_str().unwrap()).unwrap();
    assert!(end >= caught_up);
    let start = Timestamp::parse(&start).unwrap();

    let delivered = ndjson_lines(env.dir.path());
    let mut seen = HashSet::new();
    for record in &delivered {
        let id = record["FullId"].as_str().unwrap();
        assert!(seen.insert(id.to_string()), "{id} was delivered twice");
    }
    let store = stored(&env);
    let in_span: HashSet<&str> = store
        .iter()
        .filter(|(_, processed)| (start.unix_ticks()..=end.unix_ticks()).contains(processed))
        .map(|(id, _)| id.as_str())
        .collect();
    let strays: Vec<_> = seen.iter().filter(|id| !in_span.contains(id.as_str())).collect();
    assert!(strays.is_empty(), "delivered but not stored in the span: {strays:?}");
    let expected: HashSet<String> = store
        .into_iter()
        .filter(|(_, processed)| (start.unix_ticks()..end.unix_ticks()).contains(processed))
        .map(|(id, _)| id)
        .collect();
    let missing: Vec<_> = expected.difference(&seen).collect();
    assert!(missing.is_empty(), "{} stored detections never delivered: {missing:?}", missing.len());
    assert!(expected.len() > 300, "a real stream was followed: {}", expected.len());
    let files = std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("out"))
        .count();
    assert!(files > 1, "the output rotated");
}

#[test]
fn settings_come_from_flags_over_a_toml_file_and_mistakes_are_named() {
    let env = Env::new();
    let config = env.file("pull.toml", "tenant = \"t\"\nclient_id = \"c\"\nurll = \"https://x\"\n");
    let err = env.fails(&["pull", "--config", &config]);
    assert!(err.contains("urll") && err.contains("url"), "names the key and the keys: {err}");

    let config = env.file("pull.toml", "region = \"mars\"\ntenant = \"t\"\nclient_id = \"c\"\n");
    let err = env.fails(&["pull", "--config", &config]);
    assert!(err.contains("mars") && err.contains("us-gov-gcc"), "{err}");

    // The flag wins over the file: the region is the flag's, and the window is read next.
    let out = env
        .command(&["pull", "--config", &config, "--region", "eu", "--since", "yesterday"])
        .env("SIEMGATE_PULL_CLIENT_SECRET", "s")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--since \"yesterday\"") && err.contains("2026-01-31"), "{err}");

    let err = env.fails(&["pull", "--region", "eu", "-t", "t", "--client-id", "c"]);
    assert!(err.contains("SIEMGATE_PULL_CLIENT_SECRET") && err.contains("--secret-file"), "{err}");

    let err = env.fails(&["pull", "--region", "eu", "-t", "t", "--client-id", "c", "--follow"]);
    assert!(err.contains("--checkpoint"), "{err}");
    let err = env.fails(&["pull", "--region", "eu", "--follow", "--format", "csv"]);
    assert!(err.contains("--format is for one-shot pulls"), "{err}");

    // The secret is never a flag's value.
    let out = env.run(&["pull", "--region", "eu", "--secret", "s3cret"]);
    assert!(!out.status.success());
}
