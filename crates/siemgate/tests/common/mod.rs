//! Running the real `siemgate` binary against a real SQLite file in a
//! temporary folder, as a user would from a shell.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A folder with one store file, and the binary pointed at it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("siemgate.db");
        Env { dir, db }
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
