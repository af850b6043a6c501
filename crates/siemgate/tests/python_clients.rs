//! Microsoft's auth libraries for Python (ADAL, MSAL, azure-identity), as
//! installed from PyPI and unmodified, get tokens from a real `siemgate
//! serve` over HTTPS, trusting its generated CA the way a user would. The
//! tokens they hand back are then verified here against the keys the server
//! publishes.
//!
//! The libraries live in a virtual environment this test makes once under
//! Cargo's target folder; it needs `python3` with `venv` and a reachable
//! package index.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Env, Served};
use serde_json::Value;
use siemgate_identity::token::{v1_issuer, v2_issuer};
use siemgate_identity::{Claims, Verifier, VerifyingKey};
use siemgate_model::Timestamp;

/// The versions the compatibility notes were written against.
const REQUIREMENTS: &[&str] =
    &["adal==1.2.7", "msal==1.39.0", "azure-identity==1.27.0", "aiohttp==3.14.5"];

const GRAPH: &str = "https://graph.windows.net";
const DOMAIN: &str = "contoso.onmicrosoft.com";
const REDIRECT: &str = "http://localhost/callback";
const USER: &str = "alice@contoso.com";
const PASSWORD: &str = "correct horse battery staple";

/// A tenant with a SIEM app (and a redirect URI for the sign-in flow), a
/// user, and the server.
struct Setup {
    served: Served,
    tenant: String,
    client_id: String,
    secret: String,
    /// The store's folder, removed after the server (declared before it) stops.
    _env: Env,
}

impl Setup {
    fn new() -> Setup {
        let env = Env::new();
        let tenant = env.add_tenant("contoso");
        let app: Value = serde_json::from_str(&env.ok(&[
            "app",
            "add",
            "-t",
            "contoso",
            "--name",
            "splunk <connector>",
            "--redirect-uri",
            REDIRECT,
            "--json",
        ]))
        .unwrap();
        let added = env
            .command(&["user", "add", "-t", "contoso", USER])
            .env("SIEMGATE_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
        let served = env.serve(&[]);
        Setup {
            tenant,
            client_id: app["client_id"].as_str().unwrap().to_owned(),
            secret: app["client_secret"].as_str().unwrap().to_owned(),
            _env: env,
            served,
        }
    }

    /// Runs one flow of `clients.py` with the CA trusted through the
    /// environment; its JSON answer, or a panic with what the library said.
    fn run(&self, args: &[&str]) -> Value {
        let (ok, answer) = self.try_run(args, &self.secret);
        assert!(ok, "{args:?} failed: {answer}");
        answer
    }

    fn try_run(&self, args: &[&str], secret: &str) -> (bool, Value) {
        let ca = self.served.ca_file.as_ref().unwrap();
        let out = Command::new(python())
            .arg(script())
            .args(args)
            .env("REQUESTS_CA_BUNDLE", ca)
            .env("SSL_CERT_FILE", ca)
            .env("CLIENT_SECRET", secret)
            .env("USER_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        let answer = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "clients.py {args:?} printed no JSON; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), answer)
    }

    fn authority(&self, tenant: &str) -> String {
        format!("{}/{tenant}", self.served.https)
    }

    /// A verifier holding the keys the server publishes at its JWKS endpoint.
    fn verifier(&self) -> Verifier {
        let ca = self.served.ca_file.as_ref().unwrap();
        let url = format!("{}/{}/discovery/v2.0/keys", self.served.https, self.tenant);
        let out =
            Command::new("curl").arg("-sf").arg("--cacert").arg(ca).arg(&url).output().unwrap();
        assert!(out.status.success(), "fetching {url} failed");
        let jwks: Value = serde_json::from_slice(&out.stdout).unwrap();
        let keys = jwks["keys"].as_array().unwrap().iter().map(|jwk| {
            let part = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
            VerifyingKey::from_components(&part("n"), &part("e")).unwrap()
        });
        let audiences = vec![GRAPH.to_owned()];
        Verifier::new(keys.collect::<Vec<_>>(), audiences, &self.served.https, 60)
    }

    fn verify(&self, token: &Value) -> Claims {
        let now = Timestamp::from_system_time(std::time::SystemTime::now());
        self.verifier().verify(token.as_str().unwrap(), now).expect("the token verifies")
    }
}

#[test]
fn adal_client_credentials_gets_a_v1_token_for_graph() {
    let s = Setup::new();
    let answer = s.run(&["adal", &s.authority(&s.tenant), &s.client_id]);
    assert_eq!(answer["expires_in"], 3599);
    let claims = s.verify(&answer["access_token"]);
    assert_eq!(claims.aud, GRAPH);
    assert_eq!(claims.iss, v1_issuer(&s.tenant));
    assert_eq!(claims.ver, "1.0");
    assert_eq!(claims.appid.as_deref(), Some(s.client_id.as_str()));
    assert_eq!(claims.roles, ["siem-read"]);
}

#[test]
fn msal_client_credentials_at_the_domain_spelling_and_from_its_cache() {
    let s = Setup::new();
    let answer = s.run(&["msal-client", &s.authority(DOMAIN), &s.client_id]);
    assert_eq!(answer["expires_in"], 3599, "a JSON number on v2");
    assert_eq!(answer["token_source"], "identity_provider");
    assert_eq!(answer["second_token_source"], "cache", "MSAL reuses the token");
    let claims = s.verify(&answer["access_token"]);
    assert_eq!(claims.iss, v2_issuer(&s.served.https, &s.tenant));
    assert_eq!(claims.azp.as_deref(), Some(s.client_id.as_str()));
    assert_eq!(claims.tid, s.tenant);
}

#[test]
fn msal_auth_code_flow_signs_in_on_the_page_and_refreshes() {
    let s = Setup::new();
    // A loopback redirect URI matches the registered one on any port.
    let redirect = "http://localhost:53117/callback";
    let answer = s.run(&["msal-auth-code", &s.authority(DOMAIN), &s.client_id, redirect, USER]);
    assert_eq!(answer["redirected_to"], redirect);

    // MSAL itself refuses an id token whose nonce is not the flow's; here
    // the id token is also for this client and this user.
    let id = &answer["id_token_claims"];
    assert_eq!(id["aud"], s.client_id.as_str());
    assert_eq!(id["tid"], s.tenant.as_str());
    assert_eq!(id["preferred_username"], USER);
    assert_eq!(answer["account_username"], USER, "MSAL lists the signed-in account");
    let oid = id["oid"].as_str().unwrap();
    assert_eq!(answer["home_account_id"], format!("{oid}.{}", s.tenant), "from client_info");

    for token in [&answer["access_token"], &answer["refreshed_access_token"]] {
        let claims = s.verify(token);
        assert_eq!(claims.oid, oid);
        assert_eq!(claims.scp.as_deref(), Some("user_impersonation"));
        assert!(claims.roles.is_empty(), "a user's token carries scopes, not app roles");
        assert_eq!(claims.preferred_username.as_deref(), Some(USER));
    }
    assert_eq!(answer["refreshed_source"], "identity_provider", "the refresh reached the server");
}

#[test]
fn azure_identity_sync_and_async_credentials() {
    let s = Setup::new();
    let host = s.served.https.trim_start_matches("https://");
    // The sync credential reads discovery through MSAL; the async one posts
    // straight to the tenant as given, here its domain.
    for (flow, authority) in [("identity-sync", host), ("identity-async", s.served.https.as_str())]
    {
        let answer = s.run(&[flow, authority, DOMAIN, &s.client_id]);
        let claims = s.verify(&answer["access_token"]);
        assert_eq!(claims.tid, s.tenant, "{flow}");
        assert_eq!(claims.roles, ["siem-read"], "{flow}");
        assert_eq!(answer["expires_on"].as_i64(), Some(claims.exp), "{flow}");
    }
}

#[test]
fn libraries_report_azure_ads_codes_for_a_wrong_secret_and_an_unknown_tenant() {
    let s = Setup::new();
    let (ok, answer) =
        s.try_run(&["msal-client", &s.authority(&s.tenant), &s.client_id], "not-the-secret");
    assert!(!ok);
    assert_eq!(answer["error"]["error_codes"][0], 7000215, "{answer}");
    assert_eq!(answer["error"]["error"], "invalid_client");

    let (ok, answer) =
        s.try_run(&["adal", &s.authority("nowhere.example"), &s.client_id], &s.secret);
    assert!(!ok);
    let message = answer["error"].as_str().unwrap();
    assert!(message.contains("AADSTS90002"), "{message}");

    let host = s.served.https.trim_start_matches("https://");
    let (ok, answer) = s.try_run(&["identity-sync", host, DOMAIN, &s.client_id], "wrong");
    assert!(!ok);
    let message = answer["error"].as_str().unwrap();
    assert!(message.contains("ClientAuthenticationError") && message.contains("AADSTS7000215"));
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/clients.py")
}

/// The virtual environment's interpreter, made and filled on first use and
/// kept while the pinned versions stay the same.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-clients");
        let python = venv.join("bin/python");
        let stamp = venv.join("requirements.txt");
        let wanted = REQUIREMENTS.join("\n");
        if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
            return python;
        }
        let _ = std::fs::remove_dir_all(&venv);
        let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).output();
        let made = made.unwrap_or_else(|e| panic!("cannot run python3 ({e}); install Python 3"));
        assert!(
            made.status.success(),
            "python3 -m venv failed (on Debian: apt-get install python3-venv): {}",
            String::from_utf8_lossy(&made.stderr)
        );
        let installed = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(REQUIREMENTS)
            .output()
            .unwrap();
        assert!(
            installed.status.success(),
            "pip could not install {REQUIREMENTS:?}: {}",
            String::from_utf8_lossy(&installed.stderr)
        );
        std::fs::write(&stamp, wanted).unwrap();
        python
    })
}
