//! `siemgate migrate` as an operator meets it, through the real binary: a
//! SQLite file copied into a PostgreSQL schema and back, a server on the
//! copy honouring secrets and tokens made before the move, a follower
//! resuming its checkpoint on the new store, and the refusals.
//!
//! PostgreSQL is the store suite's (`SIEMGATE_TEST_POSTGRES`, default
//! `postgres://postgres:postgres@127.0.0.1:5432/postgres`); each test has a
//! schema of its own. Without that server these tests fail, saying how to
//! start it; they are never skipped.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, Served, ndjson, record};
use siemgate_model::Timestamp;

/// The app `siemgate app add --json` registered: client id and secret.
fn add_app(env: &Env, tenant: &str) -> (String, String) {
    let app = env.ok(&["app", "add", "-t", tenant, "--name", "splunk", "--json"]);
    let app: serde_json::Value = serde_json::from_str(&app).unwrap();
    (app["client_id"].as_str().unwrap().into(), app["client_secret"].as_str().unwrap().into())
}

/// Everything the binary shows of a store, as one text to compare: tenants,
/// apps, keys, and each tenant's users and detections.
fn listings(env: &Env, tenants: &[&str]) -> String {
    let mut text = String::new();
    for args in [&["tenant", "list", "--json"][..], &["app", "list", "--json"], &["keys", "list"]] {
        text.push_str(&env.ok(args));
    }
    for tenant in tenants {
        text.push_str(&env.ok(&["user", "list", "-t", tenant, "--json"]));
        let everything = ["--since", "2000-01-01", "--until", "9999-12-31", "--format", "ndjson"];
        text.push_str(&env.ok(&[&["alerts", "-t", tenant][..], &everything].concat()));
    }
    text
}

/// What a SQLite store holds, read from the file with plain SQL, keyed by
/// ids rather than by row numbers, which differ from store to store.
const CONTENT: &[&str] = &[
    "SELECT id, name, state, created_ticks FROM tenants ORDER BY id",
    "SELECT d.domain, t.id FROM tenant_domains d JOIN tenants t USING (tenant_key) ORDER BY 1",
    "SELECT a.client_id, t.id, a.name, a.created_ticks FROM apps a JOIN tenants t USING (tenant_key)
     ORDER BY 1",
    "SELECT a.client_id, s.secret_id, s.hash, s.hint, s.created_ticks, s.expires_ticks
     FROM app_secrets s JOIN apps a USING (app_key) ORDER BY 2",
    "SELECT a.client_id, r.role FROM app_roles r JOIN apps a USING (app_key) ORDER BY 1, 2",
    "SELECT u.user_id, t.id, u.username, u.display_name, u.password_hash, u.created_ticks
     FROM users u JOIN tenants t USING (tenant_key) ORDER BY 1",
    "SELECT kid, pkcs8, created_ticks, retired_ticks FROM signing_keys ORDER BY 1",
    "SELECT t.id, d.full_id, d.processed, d.machine_group, d.device_tags, d.cloud_tags,
            d.alert_id, d.device_id, d.body
     FROM detections d JOIN tenants t USING (tenant_key) ORDER BY 1, 3, 2",
    "SELECT value FROM store_meta WHERE key = 'last_processed'",
];

/// The rows of each query, as text.
fn query_rows(path: &Path, queries: &[&str]) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut out = Vec::new();
    for sql in queries {
        let mut stmt = conn.prepare(sql).unwrap();
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let values: Vec<rusqlite::types::Value> =
                    (0..columns).map(|i| r.get(i)).collect::<Result<_, _>>()?;
                Ok(format!("{values:?}"))
            })
            .unwrap();
        out.push(rows.map(Result::unwrap).collect());
    }
    out
}

/// Every row of every table of a SQLite file: what "untouched" means.
fn whole_file(path: &Path) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt =
        conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap();
    let tables: Vec<String> =
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    let queries: Vec<String> =
        tables.iter().map(|t| format!("SELECT * FROM {t} ORDER BY rowid")).collect();
    query_rows(path, &queries.iter().map(String::as_str).collect::<Vec<_>>())
}

/// A client-credentials token from the server's plain HTTP side, or the
/// token endpoint's answer when there is none.
fn token(served: &Served, tenant: &str, client_id: &str, secret: &str) -> Result<String, String> {
    common::client_token(served.http.as_ref().unwrap(), tenant, client_id, secret)
}

/// `GET /api/alerts` over everything with `token`: the status and the body.
fn alerts_with(served: &Served, token: &str) -> (String, String) {
    let http = served.http.as_ref().unwrap();
    let url = format!("{http}/api/alerts?sinceTimeUtc=2000-01-01&untilTimeUtc=9999-12-31");
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-H", &format!("Authorization: Bearer {token}"), &url])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.to_owned(), body.to_owned())
}

#[test]
fn a_store_goes_to_postgres_and_back_with_nothing_changed() {
    let a = Env::new();
    let contoso = a.add_tenant("contoso");
    a.ok(&["tenant", "add", "fabrikam", "--domain", "fabrikam.example"]);
    a.ok(&["tenant", "disable", "fabrikam"]);
    let (client_id, secret) = add_app(&a, "contoso");
    let added = a
        .command(&["user", "add", "-t", "contoso", "alice@contoso.onmicrosoft.com"])
        .env("SIEMGATE_PASSWORD", "correct horse battery staple")
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    a.ok(&["simulate", "-t", "contoso", "--count", "2500", "--batch-size", "500", "--seed", "1"]);
    a.ok(&["simulate", "-t", "fabrikam", "--count", "300", "--batch-size", "300", "--seed", "2"]);
    let archive =
        a.file("archive.ndjson", &ndjson(&[record("archived", "2021-03-04T05:06:07.89Z")]));
    a.ok(&["ingest", "-t", "contoso", "--keep-processed-time", &archive]);

    // A token issued before the move, by a key that is retired by then.
    let tls = a.dir.path().join("tls");
    let tls = tls.to_str().unwrap();
    let served = a.serve(&["--http", "127.0.0.1:0", "--tls-dir", tls]);
    let old_token = token(&served, &contoso, &client_id, &secret).unwrap();
    let (status, served_before) = alerts_with(&served, &old_token);
    assert_eq!(status, "200");
    drop(served);
    a.ok(&["keys", "rotate"]);

    let tenants = ["contoso", "fabrikam"];
    let shown = listings(&a, &tenants);
    let (content, file) = (query_rows(&a.db, CONTENT), whole_file(&a.db));

    let p = Env::postgres();
    let out = a.ok(&["migrate", "--from", a.db.to_str().unwrap(), "--to", p.database()]);
    assert!(out.contains("2 tenants, 1 app, 1 user, 2 signing keys, 0 refresh tokens"), "{out}");
    assert!(out.contains("2801 detections in "), "{out}");
    assert!(out.contains("counts checked"), "{out}");
    assert!(out.contains("postgres://postgres:***@"), "the password is masked: {out}");
    assert!(!out.contains(":postgres@"), "{out}");
    assert_eq!(whole_file(&a.db), file, "the source is untouched");
    assert_eq!(listings(&p, &tenants), shown, "PostgreSQL shows what SQLite showed");

    let b = Env::new();
    b.ok(&["migrate", "--from", p.database(), "--to", b.db.to_str().unwrap()]);
    assert_eq!(listings(&p, &tenants), shown, "the PostgreSQL source is untouched");
    assert_eq!(listings(&b, &tenants), shown);
    let back = query_rows(&b.db, CONTENT);
    for (i, (before, after)) in content.iter().zip(&back).enumerate() {
        assert_eq!(before, after, "{}", CONTENT[i]);
    }

    // A server on the copy: the old secret gets a token, the old token works.
    let served = b.serve(&["--http", "127.0.0.1:0", "--tls-dir", tls]);
    let (status, served_after) = alerts_with(&served, &old_token);
    assert_eq!(status, "200", "a token signed before the move: {served_after}");
    assert_eq!(served_after, served_before, "the same detections, byte for byte");
    let fresh = token(&served, &contoso, &client_id, &secret).unwrap();
    assert_eq!(alerts_with(&served, &fresh).0, "200");
}

/// `siemgate pull --follow` against `http` (a server's plain HTTP side),
/// with its checkpoint and output in `dir`.
fn follow(dir: &Path, http: &str, tenant: &str, app: &(String, String), since: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_siemgate"));
    cmd.args(["pull", "--url", http, "--tenant", tenant, "--client-id", &app.0])
        .args(["--follow", "--checkpoint", "cp.json", "--output", "out.ndjson"])
        .args(["--since", since, "--lag", "PT1S", "--interval", "PT0.2S", "--no-gzip"])
        .env("SIEMGATE_PULL_CLIENT_SECRET", &app.1)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Runs the follower until its output holds `n` detections, then stops it
/// with SIGTERM; returns the output's records.
fn follow_until(mut cmd: Command, dir: &Path, n: usize) -> Vec<serde_json::Value> {
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let read = || -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(dir.join("out.ndjson")).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    while read().len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(child.wait().unwrap().success(), "SIGTERM ends the puller cleanly");
    read()
}

fn stamp(record: &serde_json::Value) -> Timestamp {
    Timestamp::parse(record["LastProcessedTimeUtc"].as_str().unwrap()).unwrap()
}

/// A follower reads the old store, stops; more detections arrive; the store
/// moves to PostgreSQL under the same URL; more arrive there. Resumed from
/// its checkpoint, the follower ends with every detection exactly once.
#[test]
fn a_follower_resumes_on_the_migrated_store_with_nothing_missed_or_repeated() {
    let a = Env::new();
    let tenant = a.add_tenant("contoso");
    let app = add_app(&a, "contoso");
    let tls = a.dir.path().join("tls");
    let tls = tls.to_str().unwrap();
    let simulate = |env: &Env, seed: &str| {
        env.ok(&[
            "simulate",
            "-t",
            "contoso",
            "--count",
            "300",
            "--batch-size",
            "100",
            "--seed",
            seed,
        ]);
    };
    let since = Timestamp::from_system_time(std::time::SystemTime::now())
        .add_ticks(-3_600 * 10_000_000)
        .to_string();

    simulate(&a, "1");
    let served = a.serve(&["--http", "127.0.0.1:0", "--tls-dir", tls]);
    let http = served.http.clone().unwrap();
    let first = follow_until(follow(a.dir.path(), &http, &tenant, &app, &since), a.dir.path(), 300);
    assert_eq!(first.len(), 300);
    drop(served);
    simulate(&a, "2");
    let before_the_move = a.alerts("contoso", &["--since", &since, "--until", "9999-12-31"]);

    let p = Env::postgres();
    a.ok(&["migrate", "--from", a.db.to_str().unwrap(), "--to", p.database()]);
    let after_the_move = p.alerts("contoso", &["--since", &since, "--until", "9999-12-31"]);
    assert_eq!(after_the_move, before_the_move, "a window reads the same on the new store");

    // The same URL, so the checkpoint is the same stream's.
    let port = http.rsplit(':').next().unwrap();
    let served = p.serve(&["--http", &format!("127.0.0.1:{port}"), "--tls-dir", tls]);
    assert_eq!(served.http.as_deref(), Some(http.as_str()));
    simulate(&p, "3");
    let all = follow_until(follow(a.dir.path(), &http, &tenant, &app, &since), a.dir.path(), 900);

    let mut seen = HashSet::new();
    for record in &all {
        let id = record["FullId"].as_str().unwrap();
        assert!(seen.insert(id.to_owned()), "{id} was delivered twice");
    }
    let stored = p.alerts("contoso", &["--since", &since, "--until", "9999-12-31"]);
    assert_eq!(stored.len(), 900);
    let missing: Vec<&str> = stored
        .iter()
        .map(|r| r["FullId"].as_str().unwrap())
        .filter(|id| !seen.contains(*id))
        .collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");

    let newest_moved = before_the_move.iter().map(stamp).max().unwrap();
    let arrived_later: Vec<_> =
        stored.iter().filter(|r| !before_the_move.contains(r)).map(stamp).collect();
    assert_eq!(arrived_later.len(), 300);
    assert!(arrived_later.iter().all(|s| *s > newest_moved), "new stamps follow the moved ones");
}

#[test]
fn a_target_that_holds_anything_is_refused_and_nothing_changes() {
    let a = Env::new();
    a.add_tenant("contoso");
    a.ok(&["simulate", "-t", "contoso", "--count", "50"]);
    let file = whole_file(&a.db);
    let from = a.db.to_str().unwrap();

    let p = Env::postgres();
    p.add_tenant("fabrikam");
    let shown = listings(&p, &["fabrikam"]);
    let err = a.fails(&["migrate", "--from", from, "--to", p.database()]);
    assert!(err.contains("is not empty: it holds 1 tenant (fabrikam) with 0 detections"), "{err}");
    assert!(err.contains("nothing was copied") && err.contains("DROP SCHEMA"), "{err}");
    assert!(err.contains("postgres://postgres:***@") && !err.contains(":postgres@"), "{err}");
    assert_eq!(listings(&p, &["fabrikam"]), shown, "the target is as it was");
    assert_eq!(whole_file(&a.db), file, "the source is untouched");

    // A store a server has run on holds a signing key, and is refused too.
    let b = Env::new();
    b.ok(&["keys", "rotate"]);
    let err = a.fails(&["migrate", "--from", from, "--to", b.db.to_str().unwrap()]);
    assert!(err.contains("it holds 1 signing key;"), "{err}");
    assert_eq!(whole_file(&a.db), file, "the source is untouched");
}

#[test]
fn mistaken_stores_are_named_and_passwords_stay_out() {
    let a = Env::new();
    a.add_tenant("contoso");
    let from = a.db.to_str().unwrap();
    let missing = a.dir.path().join("missing.db");

    let err = a.fails(&["migrate", "--from", missing.to_str().unwrap(), "--to", "x.db"]);
    assert!(err.contains("no such SQLite file"), "{err}");
    assert!(!missing.exists(), "a missing source is not made");
    let err = a.fails(&["migrate", "--from", from, "--to", &format!("sqlite:{from}")]);
    assert!(err.contains("--from and --to name the same store"), "{err}");
    let err = a.fails(&["migrate", "--from", from, "--to", "memory"]);
    assert!(err.contains("--to memory names a store that exists only while"), "{err}");

    let unreachable = "postgres://siemgate:Hunter2-secret@127.0.0.1:1/siemgate";
    let err = a.fails(&["migrate", "--from", from, "--to", unreachable]);
    assert!(err.contains("cannot reach PostgreSQL at 127.0.0.1:1/siemgate"), "{err}");
    assert!(err.contains("postgres://siemgate:***@127.0.0.1:1/siemgate"), "{err}");
    assert!(!err.contains("Hunter2"), "{err}");
}
