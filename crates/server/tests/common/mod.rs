//! A real server on a real port over a real SQLite file, with a tenant and
//! apps whose tokens come from the server's own token endpoint.

#![allow(dead_code)]

use std::sync::Arc;

use siemgate_identity::generate_secret;
use siemgate_model::prepare::prepare;
use siemgate_model::{Detection, PrepareOptions, Span, Timestamp};
use siemgate_server::{AppState, Keyring, ServerConfig};
use siemgate_store::{AppSecret, IngestReport, NewApp, NewTenant, Sealed, SqliteStore, Store};
use uuid::Uuid;

pub fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

/// An app registration and the one secret it was given.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub client_id: Uuid,
    pub secret: String,
}

/// A running server and the store behind it.
pub struct Server {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub state: AppState,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server with `configure` applied to its configuration.
    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(dir.path().join("siemgate.db")).await.unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = ServerConfig::new(&base);
        configure(&mut config);
        let keyring = Keyring::load(&*store, now(), config.key_lifetime()).await.unwrap();
        let state = AppState::new(Arc::clone(&store), keyring, config);
        tokio::spawn(siemgate_server::serve(listener, state.clone(), std::future::pending()));
        let http = reqwest::Client::builder().no_gzip().build().unwrap();
        Server { base, store, state, http, _dir: dir }
    }

    pub async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    pub async fn tenant(&self, name: &str) -> Uuid {
        let new = NewTenant {
            id: Uuid::new_v4(),
            name: name.into(),
            domains: vec![format!("{name}.onmicrosoft.com")],
        };
        self.store.create_tenant(new).await.unwrap().id
    }

    /// Registers an app in `tenant` holding `roles`.
    pub async fn app(&self, tenant: Uuid, name: &str, roles: &[&str]) -> AppCredentials {
        let drawn = generate_secret().unwrap();
        let client_id = Uuid::new_v4();
        let secret = AppSecret {
            id: Uuid::new_v4(),
            hash: Sealed(drawn.hash.as_bytes().to_vec()),
            hint: drawn.hint,
            created: now(),
            expires: now().add_ticks(Span::from_hours(24).ticks()),
        };
        let app = NewApp {
            client_id,
            tenant,
            name: name.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            redirect_uris: vec![],
            secret,
        };
        self.store.create_app(app).await.unwrap();
        AppCredentials { client_id, secret: drawn.text }
    }

    /// A v1 client-credentials token from the server's token endpoint.
    pub async fn token(&self, tenant: Uuid, app: &AppCredentials) -> String {
        let client_id = app.client_id.to_string();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", app.secret.as_str()),
            ("resource", "https://graph.windows.net"),
        ];
        let url = format!("{}/{tenant}/oauth2/token", self.base);
        let answer: serde_json::Value =
            self.http.post(url).form(&form).send().await.unwrap().json().await.unwrap();
        answer["access_token"].as_str().unwrap_or_else(|| panic!("no token: {answer}")).to_owned()
    }

    /// Stores `records` for `tenant` as one batch. Records that carry a
    /// `LastProcessedTimeUtc` keep it (an archive import), so windows can be
    /// tested to the tick; the others are stamped by the store.
    pub async fn ingest(&self, tenant: Uuid, records: &[serde_json::Value]) -> IngestReport {
        let batch = records
            .iter()
            .map(|r| {
                let options = PrepareOptions {
                    portal_url: self.base.clone(),
                    keep_processed_time: r.get("LastProcessedTimeUtc").is_some(),
                };
                prepare(Detection::from_json(&r.to_string()).unwrap(), &options).unwrap()
            })
            .collect();
        self.store.ingest(tenant, batch).await.unwrap()
    }

    /// `GET path` with `token` as the bearer.
    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.unwrap()
    }

    /// `GET path` that must answer 200 with a JSON array.
    pub async fn alerts(&self, path: &str, token: &str) -> Vec<serde_json::Value> {
        let response = self.get(path, token).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    /// `GET path` that must fail with `status`; the error body.
    pub async fn refused(&self, path: &str, token: &str, status: u16) -> serde_json::Value {
        let response = self.get(path, token).await;
        assert_eq!(response.status().as_u16(), status, "GET {path}");
        response.json().await.unwrap()
    }
}

/// A detection as a producer writes it, processed at `processed`.
pub fn record(title: &str, processed: &str) -> serde_json::Value {
    serde_json::json!({
        "AlertTime": "2024-05-01T08:00:00Z",
        "AlertTitle": title,
        "Severity": "Medium",
        "ComputerDnsName": "pc1.contoso.com",
        "LastProcessedTimeUtc": processed,
    })
}

/// `record` with fields set from `extra`.
pub fn record_with(title: &str, processed: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut r = record(title, processed);
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

pub fn titles(rows: &[serde_json::Value]) -> Vec<&str> {
    rows.iter().map(|r| r["AlertTitle"].as_str().unwrap()).collect()
}

/// A time `minutes` before now, as the API writes times.
pub fn minutes_ago(minutes: i64) -> String {
    now().add_ticks(-Span::from_seconds(minutes * 60).ticks()).to_string()
}
