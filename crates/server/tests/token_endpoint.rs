//! The token endpoints against a real server on a real port: the reference
//! page's request, both versions, HTTP Basic, and every refusal in Azure AD's
//! shape with the AADSTS code people search for.

use std::sync::Arc;

use base64::Engine;
use siemgate_identity::{Verifier, VerifyingKey, generate_secret};
use siemgate_model::Timestamp;
use siemgate_server::{AppState, Keyring, ServerConfig};
use siemgate_store::{AppSecret, NewApp, NewTenant, Sealed, SqliteStore, Store, TenantState};
use uuid::Uuid;

struct Server {
    base: String,
    store: Arc<dyn Store>,
    tenant: Uuid,
    client_id: Uuid,
    secret: String,
    http: reqwest::Client,
}

fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

async fn start() -> Server {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::ephemeral().await.unwrap());
    let tenant = store
        .create_tenant(NewTenant {
            id: Uuid::new_v4(),
            name: "contoso".into(),
            domains: vec!["contoso.onmicrosoft.com".into()],
        })
        .await
        .unwrap()
        .id;
    let drawn = generate_secret().unwrap();
    let client_id = Uuid::new_v4();
    store
        .create_app(NewApp {
            client_id,
            tenant,
            name: "splunk".into(),
            roles: vec!["siem-read".into()],
            redirect_uris: vec![],
            secret: AppSecret {
                id: Uuid::new_v4(),
                hash: Sealed(drawn.hash.as_bytes().to_vec()),
                hint: drawn.hint,
                created: now(),
                expires: now().add_ticks(86_400 * 10_000_000),
            },
        })
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let keyring = Keyring::load(&*store, now(), siemgate_model::Span::from_hours(1)).await.unwrap();
    let state = AppState::new(Arc::clone(&store), keyring, ServerConfig::new(&base));
    tokio::spawn(siemgate_server::serve(listener, state, std::future::pending()));
    Server { base, store, tenant, client_id, secret: drawn.text, http: reqwest::Client::new() }
}

impl Server {
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let response =
            self.http.post(format!("{}{path}", self.base)).form(form).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> serde_json::Value {
        self.http.get(format!("{}{path}", self.base)).send().await.unwrap().json().await.unwrap()
    }

    fn credentials<'a>(&'a self, client_id: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", &self.secret),
            ("resource", "https://graph.windows.net"),
        ]
    }

    /// A verifier built, as a resource server would, from the published JWKS.
    async fn verifier(&self) -> Verifier {
        let jwks = self.get(&format!("/{}/discovery/keys", self.tenant)).await;
        let keys = jwks["keys"].as_array().unwrap().iter().map(|k| {
            let decode = |s: &serde_json::Value| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(s.as_str().unwrap())
                    .unwrap()
            };
            VerifyingKey::from_components(&decode(&k["n"]), &decode(&k["e"])).unwrap()
        });
        Verifier::new(keys, vec!["https://graph.windows.net".into()], &self.base, 60)
    }
}

fn is_digits(v: &serde_json::Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

fn aadsts(body: &serde_json::Value) -> u64 {
    let code = body["error_codes"][0].as_u64().unwrap();
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with(&format!("AADSTS{code}: ")), "{description}");
    for key in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[key].is_string(), "{key} missing from {body}");
    }
    code
}

#[tokio::test]
async fn the_reference_pages_v1_request_gets_a_token_that_verifies() {
    let s = start().await;
    let client_id = s.client_id.to_string();
    let (status, body) =
        s.post(&format!("/{}/oauth2/token", s.tenant), &s.credentials(&client_id)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["resource"], "https://graph.windows.net");
    for key in ["expires_in", "ext_expires_in", "expires_on", "not_before"] {
        assert!(is_digits(&body[key]), "v1 writes {key} as a string of digits: {body}");
    }
    let claims = s.verifier().await.verify(body["access_token"].as_str().unwrap(), now()).unwrap();
    assert_eq!(claims.tid, s.tenant.to_string());
    assert_eq!(claims.appid.as_deref(), Some(client_id.as_str()));
    assert_eq!(claims.roles, ["siem-read"]);
    assert_eq!(claims.iss, format!("https://sts.windows.net/{}/", s.tenant));
    assert_eq!(claims.ver, "1.0");
}

#[tokio::test]
async fn v2_at_the_domain_spelling_with_basic_auth() {
    let s = start().await;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", s.client_id, s.secret));
    let response = s
        .http
        .post(format!("{}/contoso.onmicrosoft.com/oauth2/v2.0/token", s.base))
        .header("Authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.windows.net/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["expires_in"].is_u64() && body["ext_expires_in"].is_u64(),
        "v2 writes numbers: {body}"
    );
    let claims = s.verifier().await.verify(body["access_token"].as_str().unwrap(), now()).unwrap();
    assert_eq!(claims.azp.as_deref(), Some(s.client_id.to_string().as_str()));
    assert_eq!(claims.iss, format!("{}/{}/v2.0", s.base, s.tenant));
}

#[tokio::test]
async fn refusals_carry_azure_ads_codes() {
    let s = start().await;
    let id = s.client_id.to_string();
    let path = format!("/{}/oauth2/token", s.tenant);
    let with = |key: &'static str, value: &'static str| {
        let mut form = s.credentials(&id);
        form.retain(|(k, _)| *k != key);
        form.push((key, value));
        form
    };

    let (status, body) = s.post(&path, &with("client_secret", "wrong")).await;
    assert_eq!((status, aadsts(&body)), (401, 7000215));
    assert_eq!(body["error"], "invalid_client");

    let other = Uuid::new_v4().to_string();
    let (status, body) = s.post(&path, &s.credentials(&other)).await;
    assert_eq!((status, aadsts(&body)), (400, 700016));

    let (status, body) = s.post("/nowhere.onmicrosoft.com/oauth2/token", &s.credentials(&id)).await;
    assert_eq!((status, aadsts(&body)), (400, 90002));

    let (status, body) = s.post(&path, &with("resource", "https://management.azure.com")).await;
    assert_eq!((status, aadsts(&body)), (400, 500011));

    let (status, body) = s.post(&path, &with("grant_type", "password")).await;
    assert_eq!((status, aadsts(&body)), (400, 70003));

    let v2 = format!("/{}/oauth2/v2.0/token", s.tenant);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", s.secret.as_str()),
        ("scope", "https://graph.windows.net"),
    ];
    let (status, body) = s.post(&v2, &form).await;
    assert_eq!((status, aadsts(&body)), (400, 1002012));

    s.store.set_tenant_state(s.tenant, TenantState::Disabled).await.unwrap();
    let (status, body) = s.post(&path, &s.credentials(&id)).await;
    assert_eq!((status, aadsts(&body)), (400, 7000112));
}

#[tokio::test]
async fn an_expired_secret_is_named_as_such() {
    let s = start().await;
    let drawn = generate_secret().unwrap();
    let past = now().add_ticks(-10_000_000);
    let expired = AppSecret {
        id: Uuid::new_v4(),
        hash: Sealed(drawn.hash.as_bytes().to_vec()),
        hint: drawn.hint,
        created: past,
        expires: past,
    };
    s.store.add_app_secret(s.client_id, expired).await.unwrap();
    let id = s.client_id.to_string();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", drawn.text.as_str()),
        ("resource", "https://graph.windows.net"),
    ];
    let (status, body) = s.post(&format!("/{}/oauth2/token", s.tenant), &form).await;
    assert_eq!((status, aadsts(&body)), (401, 7000222));
}

#[tokio::test]
async fn repeated_bad_secrets_are_throttled() {
    let s = start().await;
    let id = s.client_id.to_string();
    let path = format!("/{}/oauth2/token", s.tenant);
    let mut bad = s.credentials(&id);
    bad.retain(|(k, _)| *k != "client_secret");
    bad.push(("client_secret", "guess"));
    for _ in 0..10 {
        assert_eq!(s.post(&path, &bad).await.0, 401);
    }
    let response =
        s.http.post(format!("{}{path}", s.base)).form(&s.credentials(&id)).send().await.unwrap();
    assert_eq!(response.status(), 429, "even the right secret waits out the window");
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
}

#[tokio::test]
async fn discovery_documents_point_at_the_public_url() {
    let s = start().await;
    let doc = s.get("/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration").await;
    assert_eq!(doc["token_endpoint"], format!("{}/{}/oauth2/v2.0/token", s.base, s.tenant));
    assert_eq!(doc["issuer"], format!("{}/{}/v2.0", s.base, s.tenant));
    let doc = s.get(&format!("/{}/.well-known/openid-configuration", s.tenant)).await;
    assert_eq!(doc["token_endpoint"], format!("{}/{}/oauth2/token", s.base, s.tenant));
    let instance = s.get("/common/discovery/instance?api-version=1.1&authorization_endpoint=https://x/common/oauth2/authorize").await;
    assert_eq!(
        instance["tenant_discovery_endpoint"],
        format!("{}/{{tenant}}/v2.0/.well-known/openid-configuration", s.base)
    );
    assert_eq!(instance["metadata"][0]["aliases"].as_array().unwrap().len(), 1);
    let keys = s.get("/common/discovery/keys").await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
}
