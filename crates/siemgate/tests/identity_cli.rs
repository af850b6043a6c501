//! Apps, users and keys as an operator manages them, through the binary and
//! a real SQLite file: secrets are shown once and stored only as hashes.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::Env;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

/// True when `needle` appears anywhere in the store's files.
fn store_contains(env: &Env, needle: &str) -> bool {
    ["siemgate.db", "siemgate.db-wal"].iter().any(|name| {
        std::fs::read(env.dir.path().join(name))
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

#[test]
fn an_app_secret_is_shown_once_and_stored_only_as_a_hash() {
    let env = Env::new();
    env.add_tenant("contoso");
    let added = json(&env.ok(&["app", "add", "-t", "contoso", "--name", "splunk", "--json"]));
    let client_id = added["client_id"].as_str().unwrap();
    let secret = added["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 40);
    assert_eq!(added["roles"], serde_json::json!(["siem-read"]));

    let shown = env.ok(&["app", "show", client_id]);
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains(&secret[..3]), "the hint helps tell secrets apart: {shown}");
    assert!(!store_contains(&env, secret), "the secret's text reached the store");

    let listed = env.ok(&["app", "list", "--tenant", "contoso"]);
    assert!(listed.contains(client_id) && listed.contains("splunk"), "{listed}");
    let err = env.fails(&["app", "add", "-t", "contoso", "--name", "Splunk"]);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn secrets_rotate_and_roles_change() {
    let env = Env::new();
    env.add_tenant("contoso");
    let added =
        json(&env.ok(&[
            "app", "add", "-t", "contoso", "--name", "qradar", "--role", "ingest", "--json",
        ]));
    let client_id = added["client_id"].as_str().unwrap();
    let first = added["secret_id"].as_str().unwrap();

    let second = json(&env.ok(&["app", "secret", "add", client_id, "--days", "30", "--json"]));
    let app = json(&env.ok(&["app", "show", client_id, "--json"]));
    assert_eq!(app["secrets"].as_array().unwrap().len(), 2, "both valid during the rotation");
    env.ok(&["app", "secret", "remove", client_id, first]);
    let app = json(&env.ok(&["app", "show", client_id, "--json"]));
    assert_eq!(app["secrets"][0]["id"], second["secret_id"]);
    assert_eq!(app["secrets"].as_array().unwrap().len(), 1);

    assert!(env.ok(&["app", "grant", client_id, "SIEM-READ"]).contains("ingest, siem-read"));
    assert!(env.ok(&["app", "revoke", client_id, "ingest"]).contains("now holds: siem-read"));
    let err = env.fails(&["app", "grant", client_id, "admin"]);
    assert_eq!(err.trim(), "error: there is no role \"admin\"; the roles are siem-read, ingest");

    env.ok(&["app", "remove", client_id]);
    let err = env.fails(&["app", "show", client_id]);
    assert!(err.contains("no app with client id"), "{err}");
}

#[test]
fn users_get_passwords_from_stdin_or_the_environment_only() {
    let env = Env::new();
    env.add_tenant("contoso");
    let mut child = env
        .command(&["user", "add", "-t", "contoso", "alice@contoso.com", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"correct horse battery\n").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    assert!(!store_contains(&env, "correct horse battery"));

    let err = env.fails(&["user", "add", "-t", "contoso", "bob@contoso.com"]);
    assert!(err.contains("--password-stdin or set SIEMGATE_PASSWORD"), "{err}");
    let short = env
        .command(&["user", "add", "-t", "contoso", "bob@contoso.com"])
        .env("SIEMGATE_PASSWORD", "short")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8 characters"));

    let out = env
        .command(&["user", "passwd", "-t", "contoso", "ALICE@contoso.com"])
        .env("SIEMGATE_PASSWORD", "another long one")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let users = json(&env.ok(&["user", "list", "-t", "contoso", "--json"]));
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["username"], "alice@contoso.com");
    env.ok(&["user", "remove", "-t", "contoso", "alice@contoso.com"]);
    let err = env.fails(&["user", "remove", "-t", "contoso", "alice@contoso.com"]);
    assert!(err.contains("has no user"), "{err}");
}

#[test]
fn rotated_keys_stay_published() {
    let env = Env::new();
    assert!(env.ok(&["keys", "list"]).contains("no signing keys yet"));
    env.ok(&["keys", "rotate"]);
    env.ok(&["keys", "rotate"]);
    let table = env.ok(&["keys", "list"]);
    assert_eq!(table.matches("signing").count(), 1, "{table}");
    assert_eq!(table.matches("retired").count(), 1, "{table}");
    let jwks = json(&env.ok(&["keys", "list", "--jwks"]));
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k["kty"] == "RSA" && k["alg"] == "RS256" && k["e"] == "AQAB"));
}
