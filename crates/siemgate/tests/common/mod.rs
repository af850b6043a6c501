//! Running the real `siemgate` binary against a real SQLite file in a
//! temporary folder, as a user would from a shell.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A folder with one store file, and the binary pointed at it.
pub struct Env {
    pub dir: tempfile::TempDir,
    /// The store file, or for [`Env::postgres`] the database URL.
    pub db: PathBuf,
    /// The PostgreSQL schema holding the store, dropped with the `Env`.
    schema: Option<siemgate_store::ScratchSchema>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("siemgate.db");
        Env { dir, db, schema: None }
    }

    /// A store in a PostgreSQL schema of its own at the server that
    /// `SIEMGATE_TEST_POSTGRES` names (as `.ci/run` sets it up), reached
    /// with a URL that carries the schema as the connection's search path.
    /// Without that server the test fails, saying how to start one.
    pub fn postgres() -> Env {
        let url = std::env::var("SIEMGATE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let schema =
            runtime.block_on(siemgate_store::ScratchSchema::create(&url)).unwrap_or_else(|e| {
                panic!(
                    "this test needs a PostgreSQL server: {e}\n\
                     start one with `pg_ctlcluster 15 main start` as root (`.ci/run` does this), \
                     or point SIEMGATE_TEST_POSTGRES at another server"
                )
            });
        let joiner = if url.contains('?') { '&' } else { '?' };
        let db = PathBuf::from(format!("{url}{joiner}options=-csearch_path%3D{}", schema.name()));
        let dir = tempfile::tempdir().unwrap();
        Env { dir, db, schema: Some(schema) }
    }

    /// What `--database` is given: the file's path or the URL.
    pub fn database(&self) -> &str {
        self.db.to_str().unwrap()
    }

    /// The binary with `--database` set through the environment, as a user might.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_siemgate"));
        cmd.args(args).env("SIEMGATE_DATABASE", &self.db).env_remove("SIEMGATE_TENANT");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command that must succeed and returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "siemgate {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail and returns its standard error.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "siemgate {args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }

    /// Writes `text` into a file in the folder and returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    pub fn add_tenant(&self, name: &str) -> String {
        self.ok(&["tenant", "add", name]).trim().to_owned()
    }

    /// `siemgate alerts` for `tenant` with extra flags, parsed.
    pub fn alerts(&self, tenant: &str, flags: &[&str]) -> Vec<serde_json::Value> {
        let mut args = vec!["alerts", "--tenant", tenant];
        args.extend_from_slice(flags);
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// The `FullId`s stored for every tenant, read from the SQLite file itself.
    pub fn stored_full_ids(&self) -> Vec<String> {
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        let mut stmt = conn.prepare("SELECT full_id FROM detections").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    }
}

/// A detection as a producer would send it, with a processing time that
/// `--keep-processed-time` keeps, so windows can be tested to the tick.
pub fn record(title: &str, processed: &str) -> serde_json::Value {
    serde_json::json!({
        "AlertTime": "2024-05-01T08:00:00Z",
        "AlertTitle": title,
        "Severity": "Medium",
        "ComputerDnsName": "pc1.contoso.com",
        "LastProcessedTimeUtc": processed,
    })
}

pub fn ndjson(records: &[serde_json::Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

pub fn titles(rows: &[serde_json::Value]) -> Vec<String> {
    rows.iter().map(|r| r["AlertTitle"].as_str().unwrap().to_owned()).collect()
}

pub fn sorted_titles(rows: &[serde_json::Value]) -> Vec<String> {
    let mut t = titles(rows);
    t.sort();
    t
}

/// The reference page's JSON sample.
pub fn reference_sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/reference-sample.json")
}

/// A running `siemgate serve` and the addresses it printed.
pub struct Served {
    pub child: std::process::Child,
    /// The HTTPS base URL, also the public URL unless one was given.
    pub https: String,
    /// The plain HTTP base URL, when `--http` was given.
    pub http: Option<String>,
    /// The generated CA's file, when the certificate was generated.
    pub ca_file: Option<PathBuf>,
    /// Every line printed before `ready`.
    pub printed: Vec<String>,
    /// Where the server's standard error (its log) goes.
    pub log: PathBuf,
}

impl Served {
    /// What the server has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Env {
    /// Starts `siemgate serve` on free ports with `extra` flags and reads
    /// what it prints until it says it is ready.
    pub fn serve(&self, extra: &[&str]) -> Served {
        use std::io::BufRead;
        let mut args = vec!["serve", "--https", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.dir.path().join(format!("serve-{n}.log"));
        let mut child = self
            .command(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut https, mut http, mut ca_file) = (None, None, None);
        let mut printed = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            printed.push(line.clone());
            let word = |n: usize| line.split_whitespace().nth(n).unwrap_or_default().to_owned();
            if line.starts_with("listening on https://") {
                https = Some(word(2));
            } else if line.starts_with("listening on http://") {
                http = Some(word(2));
            } else if line.starts_with("CA certificate ") {
                ca_file = Some(PathBuf::from(word(2)));
            } else if line.starts_with("ready") {
                break;
            }
        }
        let https = https.unwrap_or_else(|| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("siemgate serve {args:?} printed no address; its log:\n{log}")
        });
        Served { child, https, http, ca_file, printed, log }
    }
}

/// The credentials `serve --demo` printed for its tenant and app.
pub struct Demo {
    pub tenant: String,
    pub client_id: String,
    pub secret: String,
}

impl Served {
    /// Reads the demo tenant and app from the lines the server printed.
    pub fn demo(&self) -> Demo {
        let line =
            |prefix: &str| self.printed.iter().find(|l| l.starts_with(prefix)).unwrap().clone();
        let tenant = line("demo tenant");
        let app = line("demo app");
        let words: Vec<&str> = app.split_whitespace().collect();
        Demo {
            tenant: tenant.split_whitespace().nth(2).unwrap().to_string(),
            client_id: words[4].to_string(),
            secret: words[6].to_string(),
        }
    }
}

/// One stored detection, as the store's own columns hold it.
pub struct StoredDetection {
    pub full_id: String,
    pub alert_id: String,
    /// `LastProcessedTimeUtc` in 100 ns ticks since the Unix epoch.
    pub processed: i64,
}

impl Env {
    /// The detections stored for the tenant named `tenant`, read from the
    /// SQLite file itself rather than through any siemgate code.
    pub fn stored_for(&self, tenant: &str) -> Vec<StoredDetection> {
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT d.full_id, d.alert_id, d.processed FROM detections d
                 JOIN tenants t ON t.tenant_key = d.tenant_key WHERE t.name = ?1",
            )
            .unwrap();
        stmt.query_map([tenant], |r| {
            Ok(StoredDetection { full_id: r.get(0)?, alert_id: r.get(1)?, processed: r.get(2)? })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }
}

/// A v1 client-credentials token from the server at `base` (its plain HTTP
/// side), fetched with curl as the reference page's scripts do; or the token
/// endpoint's answer when it gave none.
pub fn client_token(
    base: &str,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["-s", "-X", "POST", &format!("{base}/{tenant}/oauth2/token")])
        .args(["--data-urlencode", "grant_type=client_credentials"])
        .args(["--data-urlencode", &format!("client_id={client_id}")])
        .args(["--data-urlencode", &format!("client_secret={secret}")])
        .args(["--data-urlencode", "resource=https://graph.windows.net"])
        .output()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    answer["access_token"].as_str().map(str::to_owned).ok_or_else(|| answer.to_string())
}
