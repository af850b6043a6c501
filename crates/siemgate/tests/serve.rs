//! `siemgate serve` as an operator runs it: the binary on a free port, a
//! token fetched with the reference page's own curl request, and a clean stop
//! on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::Env;

/// A running `siemgate serve` and the base URL it printed.
struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(env: &Env) -> Served {
    let mut child = env
        .command(&["serve", "--http", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Served { child, base }
}

#[test]
fn the_reference_pages_curl_request_gets_the_pages_response_fields() {
    let env = Env::new();
    let tenant = env.add_tenant("contoso");
    let app: serde_json::Value =
        serde_json::from_str(&env.ok(&["app", "add", "-t", "contoso", "--name", "siem", "--json"]))
            .unwrap();
    let served = serve(&env);

    // As the page's Bash script sends it: form fields joined by hand, secret
    // percent-encoded as the page's sample is.
    let secret: String = form_urlencoded(app["client_secret"].as_str().unwrap());
    let body = format!(
        "resource=https%3A%2F%2Fgraph.windows.net&client_id={}&client_secret={secret}&grant_type=client_credentials",
        app["client_id"].as_str().unwrap()
    );
    let out = Command::new("curl")
        .args(["-s", "-X", "POST", &format!("{}/{tenant}/oauth2/token", served.base)])
        .args(["-H", "Content-Type: application/x-www-form-urlencoded", "-d", &body])
        .output()
        .unwrap();
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = response.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "token_type",
            "expires_in",
            "ext_expires_in",
            "expires_on",
            "not_before",
            "resource",
            "access_token"
        ],
        "the page's fields in the page's order"
    );
    assert_eq!(response["token_type"], "Bearer");
    assert_eq!(response["resource"], "https://graph.windows.net");
    assert_eq!(response["access_token"].as_str().unwrap().split('.').count(), 3);
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let env = Env::new();
    let mut served = serve(&env);
    let health =
        Command::new("curl").args(["-s", &format!("{}/healthz", served.base)]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&health.stdout), "ok");
    let pid = served.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = served.child.wait().unwrap();
    assert!(status.success(), "exited with {status}");
}

fn form_urlencoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
