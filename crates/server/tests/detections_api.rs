//! `POST /api/detections` over HTTP: the ingest role, JSON arrays and
//! NDJSON, idempotent resends, a bad record refusing its whole request, and
//! the size limit.

mod common;

use common::{AppCredentials, Server, titles};
use uuid::Uuid;

struct Fixture {
    s: Server,
    tenant: Uuid,
    feed: String,
    read: String,
}

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

async fn fixture_with(configure: impl FnOnce(&mut siemgate_server::ServerConfig)) -> Fixture {
    let s = Server::start_with(configure).await;
    let tenant = s.tenant("contoso").await;
    let feeder: AppCredentials = s.app(tenant, "edr-feed", &["ingest"]).await;
    let reader = s.app(tenant, "splunk", &["siem-read"]).await;
    let feed = s.token(tenant, &feeder).await;
    let read = s.token(tenant, &reader).await;
    Fixture { s, tenant, feed, read }
}

impl Fixture {
    async fn post(&self, body: String, token: &str) -> (u16, serde_json::Value) {
        let response = self
            .s
            .http
            .post(format!("{}/api/detections", self.s.base))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn stored(&self) -> u64 {
        self.s.store.detection_count(self.tenant).await.unwrap()
    }
}

fn detection(title: &str) -> serde_json::Value {
    serde_json::json!({
        "AlertTime": "2024-05-01T08:00:00Z",
        "AlertTitle": title,
        "Severity": "High",
        "ComputerDnsName": "pc7.contoso.com",
        "CommandLine": "powershell.exe -enc SQBFAFgA",
    })
}

#[tokio::test]
async fn an_array_is_stored_and_a_resend_counts_as_duplicates() {
    let f = fixture().await;
    let body = serde_json::json!([detection("one"), detection("two")]).to_string();
    let (status, answer) = f.post(body.clone(), &f.feed).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, serde_json::json!({"received": 2, "stored": 2, "duplicates": 0}));
    let (_, answer) = f.post(body, &f.feed).await;
    assert_eq!(answer, serde_json::json!({"received": 2, "stored": 0, "duplicates": 2}));
    assert_eq!(f.stored().await, 2);

    let rows = f.s.alerts("/api/alerts", &f.read).await;
    assert_eq!(titles(&rows), ["one", "two"]);
    let link = rows[0]["LinkToWDATP"].as_str().unwrap();
    let alert_id = rows[0]["AlertId"].as_str().unwrap();
    assert_eq!(link, format!("{}/alert/{alert_id}", f.s.base), "links point at this server");
}

#[tokio::test]
async fn ndjson_is_taken_too() {
    let f = fixture().await;
    let body = format!("{}\n{}\n", detection("one"), detection("two"));
    let (status, answer) = f.post(body, &f.feed).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stored"], 2);
}

#[tokio::test]
async fn a_bad_record_in_the_middle_stores_nothing_and_is_named() {
    let f = fixture().await;
    let mut bad = detection("two");
    bad["Severity"] = "Critical".into();
    let body = serde_json::json!([detection("one"), bad, detection("three")]).to_string();
    let (status, answer) = f.post(body, &f.feed).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "InvalidDetection");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("record 2"), "{message}");
    assert!(message.contains("Severity"), "{message}");
    assert!(message.contains("nothing of this request was stored"), "{message}");
    assert_eq!(f.stored().await, 0);

    let (status, answer) = f.post("[{\"AlertTitle\": ".into(), &f.feed).await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = f.post("".into(), &f.feed).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(f.stored().await, 0);
}

#[tokio::test]
async fn only_apps_with_the_ingest_role_may_send() {
    let f = fixture().await;
    let body = serde_json::json!([detection("one")]).to_string();
    let (status, answer) = f.post(body.clone(), &f.read).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("ingest"), "{answer}");
    let (status, _) = f.post(body, "forged").await;
    assert_eq!(status, 401);
    assert_eq!(f.stored().await, 0);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let f = fixture_with(|c| c.ingest_limit_bytes = 4096).await;
    let many: Vec<_> = (0..40).map(|i| detection(&format!("d{i}"))).collect();
    let (status, answer) = f.post(serde_json::json!(many).to_string(), &f.feed).await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("4096"), "{answer}");
    assert_eq!(f.stored().await, 0);
}

#[tokio::test]
async fn other_methods_and_paths_say_what_exists() {
    let f = fixture().await;
    let response = f.s.http.get(format!("{}/api/detections", f.s.base)).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let response = f.s.http.delete(format!("{}/api/alerts", f.s.base)).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let response = f.s.http.get(format!("{}/api/nothing", f.s.base)).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("/api/alerts"));
}
