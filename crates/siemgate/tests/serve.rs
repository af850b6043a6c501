//! `siemgate serve` as an operator runs it: the binary on a free port, a
//! token fetched with the reference page's own curl request, HTTPS with a
//! generated or a given certificate, and a clean stop on SIGTERM.

mod common;

use std::process::Command;

use common::Env;

#[test]
fn the_reference_pages_curl_request_gets_the_pages_response_fields() {
    let env = Env::new();
    let tenant = env.add_tenant("contoso");
    let app: serde_json::Value =
        serde_json::from_str(&env.ok(&["app", "add", "-t", "contoso", "--name", "siem", "--json"]))
            .unwrap();
    let served = env.serve(&["--http", "127.0.0.1:0"]);
    let base = served.http.clone().unwrap();

    // As the page's Bash script sends it: form fields joined by hand, secret
    // percent-encoded as the page's sample is.
    let secret: String = form_urlencoded(app["client_secret"].as_str().unwrap());
    let body = format!(
        "resource=https%3A%2F%2Fgraph.windows.net&client_id={}&client_secret={secret}&grant_type=client_credentials",
        app["client_id"].as_str().unwrap()
    );
    let out = Command::new("curl")
        .args(["-s", "-X", "POST", &format!("{}/{tenant}/oauth2/token", base)])
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
    let mut served = env.serve(&["--http", "127.0.0.1:0"]);
    let base = served.http.clone().unwrap();
    let health = Command::new("curl").args(["-s", &format!("{}/healthz", base)]).output().unwrap();
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

#[test]
fn the_generated_ca_is_kept_and_trusted_by_curl() {
    let env = Env::new();
    let first = env.serve(&[]);
    let ca = first.ca_file.clone().expect("a generated certificate names its CA file");
    assert_eq!(ca, env.dir.path().join("siemgate-tls/ca.pem"), "beside the store");
    assert_eq!(curl_health(&first.https, Some(&ca)), Ok("ok".to_owned()));
    let untrusted = curl_health(&first.https, None).unwrap_err();
    assert_eq!(untrusted, 60, "curl refuses the certificate without the CA");
    let ca_bytes = std::fs::read(&ca).unwrap();
    drop(first);

    // A restart signs a new server certificate with the same CA, so clients
    // keep trusting the file they were pointed at.
    let second = env.serve(&[]);
    assert_eq!(std::fs::read(&ca).unwrap(), ca_bytes);
    assert_eq!(curl_health(&second.https, Some(&ca)), Ok("ok".to_owned()));
}

#[test]
fn an_operators_certificate_is_served_as_given() {
    let env = Env::new();
    let (cert, key) = (env.dir.path().join("cert.pem"), env.dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=gate"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "openssl: {}", String::from_utf8_lossy(&made.stderr));
    let (cert_arg, key_arg) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let served = env.serve(&["--tls-cert", cert_arg, "--tls-key", key_arg]);
    assert_eq!(served.ca_file, None, "no CA is generated");
    assert_eq!(curl_health(&served.https, Some(&cert)), Ok("ok".to_owned()));
    assert!(!env.dir.path().join("siemgate-tls").exists());

    // A key file that is not a key is named in the error.
    let err = env.fails(&[
        "serve",
        "--https",
        "127.0.0.1:0",
        "--tls-cert",
        cert_arg,
        "--tls-key",
        cert_arg,
    ]);
    assert!(err.contains("no PEM private key") && err.contains("cert.pem"), "{err}");
}

/// `GET /healthz` over HTTPS with curl, trusting `ca` when given; the body,
/// or curl's exit code.
fn curl_health(base: &str, ca: Option<&std::path::Path>) -> Result<String, i32> {
    let mut curl = Command::new("curl");
    curl.args(["-s", "--max-time", "10"]);
    if let Some(ca) = ca {
        curl.arg("--cacert").arg(ca);
    }
    let out = curl.arg(format!("{base}/healthz")).output().unwrap();
    match out.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        code => Err(code.unwrap_or(-1)),
    }
}
