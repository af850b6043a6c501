//! A real server on a real port over a real SQLite file, with two tenants,
//! a user in each, and alerts ingested the way `siemgate ingest` stores
//! them, with links on the server's own URL. Shared by the portal tests
//! over HTTP and in a browser.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use siemgate_identity::password::hash_password;
use siemgate_model::prepare::prepare;
use siemgate_model::{Detection, PrepareOptions, Timestamp};
use siemgate_server::{AppState, Keyring, ServerConfig};
use siemgate_store::{NewTenant, Sealed, SqliteStore, Store, User};
use uuid::Uuid;

pub const ALICE: &str = "alice@contoso.onmicrosoft.com";
pub const MALLORY: &str = "mallory@fabrikam.onmicrosoft.com";
pub const PASSWORD: &str = "correct horse battery staple";

/// The command line of the alert whose fields try to run a script.
pub const HOSTILE_COMMAND: &str = "powershell.exe -nop -c \"<script>alert(1)</script>\" & whoami";
pub const HOSTILE_URL: &str = "javascript:alert(1)";

/// The server, its store, and the alerts in it as the SIEM API serves them.
pub struct Portal {
    pub base: String,
    pub state: AppState,
    pub store: Arc<dyn Store>,
    pub contoso: Uuid,
    pub fabrikam: Uuid,
    /// Contoso's two-detection alert on pc1, with the hostile fields (part 0).
    pub hostile: Value,
    /// Its second detection (part 1).
    pub hostile_part_1: Value,
    /// Another, older Contoso alert on pc1.
    pub older: Value,
    /// A Contoso alert on another device.
    pub elsewhere: Value,
    /// Fabrikam's alert, which Contoso's users must never see.
    pub foreign: Value,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

/// Starts the server with both tenants, their users and their alerts.
pub async fn start() -> Portal {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("siemgate.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).await.unwrap());
    let contoso = tenant(&*store, "contoso").await;
    let fabrikam = tenant(&*store, "fabrikam").await;
    add_user(&*store, contoso, ALICE, "Alice Example").await;
    add_user(&*store, fabrikam, MALLORY, "Mallory Example").await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = serve(Arc::clone(&store), listener, &base).await;

    let older = ingest(&*store, contoso, &base, vec![older_alert()]).await.remove(0);
    let mut hostile = ingest(&*store, contoso, &base, hostile_alert()).await;
    let elsewhere = ingest(&*store, contoso, &base, vec![other_device_alert()]).await.remove(0);
    let foreign = ingest(&*store, fabrikam, &base, vec![foreign_alert()]).await.remove(0);
    let hostile_part_1 = hostile.remove(1);
    let hostile = hostile.remove(0);
    Portal {
        base,
        state,
        store,
        contoso,
        fabrikam,
        hostile,
        hostile_part_1,
        older,
        elsewhere,
        foreign,
        db,
        _dir: dir,
    }
}

impl Portal {
    /// A second server on the same store file, as a replica behind a load
    /// balancer would be; its base URL.
    pub async fn replica(&self) -> String {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&self.db).await.unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        serve(store, listener, &self.base).await;
        base
    }
}

async fn serve(store: Arc<dyn Store>, listener: tokio::net::TcpListener, public: &str) -> AppState {
    let config = ServerConfig::new(public);
    let keyring = Keyring::load(&*store, now(), config.key_lifetime()).await.unwrap();
    let state = AppState::new(store, keyring, config);
    tokio::spawn(siemgate_server::serve(listener, state.clone(), std::future::pending()));
    state
}

async fn tenant(store: &dyn Store, name: &str) -> Uuid {
    let new = NewTenant {
        id: Uuid::new_v4(),
        name: name.into(),
        domains: vec![format!("{name}.onmicrosoft.com")],
    };
    store.create_tenant(new).await.unwrap().id
}

async fn add_user(store: &dyn Store, tenant: Uuid, username: &str, display_name: &str) {
    let user = User {
        id: Uuid::new_v4(),
        tenant,
        username: username.into(),
        display_name: display_name.into(),
        password_hash: Sealed(hash_password(PASSWORD).unwrap().into_bytes()),
        created: now(),
    };
    store.create_user(user).await.unwrap();
}

/// Prepares and stores `detections` as one batch, as `siemgate ingest`
/// does; returns them as the SIEM API serves them.
async fn ingest(
    store: &dyn Store,
    tenant: Uuid,
    base: &str,
    detections: Vec<Detection>,
) -> Vec<Value> {
    let options = PrepareOptions { portal_url: base.to_owned(), keep_processed_time: false };
    let prepared: Vec<_> = detections.into_iter().map(|d| prepare(d, &options).unwrap()).collect();
    let report = store.ingest(tenant, prepared.clone()).await.unwrap();
    let processed = report.processed.unwrap();
    prepared.iter().map(|p| serde_json::from_slice(&p.render(processed)).unwrap()).collect()
}

fn on_pc1(title: &str, at: &str) -> Detection {
    Detection {
        alert_time: Timestamp::parse(at).ok(),
        alert_title: title.into(),
        severity: "High".into(),
        category: "SuspiciousActivity".into(),
        source: "EDR".into(),
        computer_dns_name: "pc1.contoso.com".into(),
        machine_group: "Finance Laptops".into(),
        device_created_machine_tags: "VIP;Laptop".into(),
        cloud_created_machine_tags: "Prod".into(),
        log_on_users: "CONTOSO\\alice;CONTOSO\\svc-backup".into(),
        internal_ipv4_list: "10.1.2.7;10.1.2.8".into(),
        internal_ipv6_list: "fe80::7".into(),
        ..Detection::default()
    }
}

fn hostile_alert() -> Vec<Detection> {
    let first = Detection {
        command_line: HOSTILE_COMMAND.into(),
        url: HOSTILE_URL.into(),
        file_name: "powershell.exe".into(),
        file_path: "C:\\Windows\\System32\\WindowsPowerShell\\v1.0".into(),
        sha1: "a3f5c8e2b1d4f6a7c9e0b2d4f6a8c0e2b4d6f8a1".into(),
        ip_address: "203.0.113.9".into(),
        user_name: "alice".into(),
        user_domain: "CONTOSO".into(),
        ..on_pc1("Suspicious PowerShell command line", "2024-05-01T09:00:00Z")
    };
    let second = Detection {
        alert_part: 1,
        file_name: "payload.dll".into(),
        threat_name: "Trojan:Win32/Fakeload.A".into(),
        remediation_action: "quarantine".into(),
        remediation_is_success: Some(true),
        ..on_pc1("Suspicious PowerShell command line", "2024-05-01T09:00:00Z")
    };
    vec![first, second]
}

fn older_alert() -> Detection {
    Detection {
        severity: "Medium".into(),
        category: "Ransomware".into(),
        ..on_pc1("Ransomware behaviour detected", "2024-04-30T15:30:00Z")
    }
}

fn other_device_alert() -> Detection {
    Detection {
        computer_dns_name: "pc2.contoso.com".into(),
        ..on_pc1("Credential theft on another device", "2024-05-01T08:00:00Z")
    }
}

fn foreign_alert() -> Detection {
    Detection {
        computer_dns_name: "fab1.fabrikam.com".into(),
        ..on_pc1("Fabrikam internal alert", "2024-05-01T09:30:00Z")
    }
}

/// `value[key]` as a string.
pub fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_else(|| panic!("{key} is not a string in {value}"))
}
