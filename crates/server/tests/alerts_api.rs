//! `GET /api/alerts` over HTTP as the reference page and DESIGN section 4
//! describe it: windows, limit, filters, parameter and path spellings,
//! errors a person can act on, gzip, and the reference sample served back
//! byte for byte.

mod common;

use common::{Server, minutes_ago, now, record, record_with, titles};
use siemgate_model::Span;
use siemgate_server::bearer::TENANT_CACHE_TTL;

const T0: &str = "2024-05-01T10:00:00Z";
const T1: &str = "2024-05-01T10:00:00.0000001Z";
const T2: &str = "2024-05-01T11:00:00Z";
const T3: &str = "2024-05-01T12:00:00Z";

/// A server with tenant `contoso`, a reader app's token and four detections
/// at known times.
async fn with_detections() -> (Server, String) {
    let s = Server::start().await;
    let tenant = s.tenant("contoso").await;
    let reader = s.app(tenant, "splunk", &["siem-read"]).await;
    let token = s.token(tenant, &reader).await;
    s.ingest(
        tenant,
        &[
            record_with("a", T0, serde_json::json!({"MachineGroup": "UKMachines"})),
            record_with("b", T1, serde_json::json!({"MachineGroup": "FranceMachines"})),
            record_with(
                "c",
                T2,
                serde_json::json!({
                    "MachineGroup": "GermanyMachines",
                    "DeviceCreatedMachineTags": "VIP; Finance",
                    "CloudCreatedMachineTags": "Prod,Web",
                }),
            ),
            record_with("d", T3, serde_json::json!({"CloudCreatedMachineTags": "Dev"})),
        ],
    )
    .await;
    (s, token)
}

#[tokio::test]
async fn since_is_inclusive_and_until_exclusive_to_the_tick() {
    let (s, token) = with_detections().await;
    let path = format!("/api/alerts?sinceTimeUtc={T1}&untilTimeUtc={T3}");
    assert_eq!(titles(&s.alerts(&path, &token).await), ["b", "c"]);
    let path =
        "/api/alerts?sinceTimeUtc=2024-05-01T10:00:00.0000001&untilTimeUtc=2024-05-01 12:00:00";
    assert_eq!(titles(&s.alerts(path, &token).await), ["b", "c"], "no zone means UTC");
    let path =
        "/api/alerts?sinceTimeUtc=2024-05-01T12:00:00%2B02:00&untilTimeUtc=2024-05-01T11:00:00Z";
    assert_eq!(titles(&s.alerts(path, &token).await), ["a", "b"], "a zone is honoured");
}

#[tokio::test]
async fn limit_keeps_the_newest_and_still_answers_oldest_first() {
    let (s, token) = with_detections().await;
    let rows = s.alerts("/api/alerts?limit=2&sinceTimeUtc=2016-09-12T00:00:00.000", &token).await;
    assert_eq!(titles(&rows), ["c", "d"]);
    let rows = s.alerts("/api/alerts?limit=20&sinceTimeUtc=2016-09-12T00:00:00.000", &token).await;
    assert_eq!(titles(&rows), ["a", "b", "c", "d"], "the reference page's second request");
}

#[tokio::test]
async fn filters_match_as_the_page_says() {
    let (s, token) = with_detections().await;
    let since = "sinceTimeUtc=2024-01-01";
    let groups =
        format!("/api/alerts?{since}&machinegroups=ukmachines&machinegroups=FranceMachines");
    assert_eq!(titles(&s.alerts(&groups, &token).await), ["a", "b"], "a union, any letter case");
    let device = format!("/api/alerts?{since}&DeviceCreatedMachineTags=finance");
    assert_eq!(titles(&s.alerts(&device, &token).await), ["c"]);
    let cloud =
        format!("/api/alerts?{since}&CloudCreatedMachineTags=web&CloudCreatedMachineTags=Dev");
    assert_eq!(titles(&s.alerts(&cloud, &token).await), ["c", "d"]);
    let both =
        format!("/api/alerts?{since}&machinegroups=GermanyMachines&CloudCreatedMachineTags=Dev");
    assert!(s.alerts(&both, &token).await.is_empty(), "filters combine with and");
}

#[tokio::test]
async fn names_and_paths_are_spelled_as_aspnet_allows() {
    let (s, token) = with_detections().await;
    for path in [
        "/api/alerts?SINCETIMEUTC=2024-05-01T11:00:00Z",
        "/API/Alerts/?sincetimeutc=2024-05-01T11:00:00Z",
        "/api/alert?sinceTimeUtc=2024-05-01T11:00:00Z&unknown=1",
        "/api/alerts/?sinceTimeUtc=2024-05-01T11:00:00Z",
    ] {
        assert_eq!(titles(&s.alerts(path, &token).await), ["c", "d"], "{path}");
    }
}

#[tokio::test]
async fn no_window_means_the_last_two_hours() {
    let s = Server::start().await;
    let tenant = s.tenant("contoso").await;
    let reader = s.app(tenant, "splunk", &["siem-read"]).await;
    let token = s.token(tenant, &reader).await;
    s.ingest(tenant, &[record("old", &minutes_ago(125)), record("new", &minutes_ago(115))]).await;
    assert_eq!(titles(&s.alerts("/api/alerts", &token).await), ["new"]);
    assert_eq!(titles(&s.alerts("/api/alerts?ago=PT3H", &token).await), ["old", "new"]);
    assert!(s.alerts("/api/alerts?ago=PT10M", &token).await.is_empty());
}

#[tokio::test]
async fn an_empty_window_is_an_empty_array_of_json() {
    let (s, token) = with_detections().await;
    let response = s.get("/api/alerts", &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json; charset=utf-8");
    assert_eq!(response.text().await.unwrap(), "[]");
}

#[tokio::test]
async fn bad_parameters_are_400s_that_say_what_to_send() {
    let (s, token) = with_detections().await;
    for (query, parameter) in [
        ("sinceTimeUtc=yesterday", "sinceTimeUtc"),
        ("untilTimeUtc=2024-13-01", "untilTimeUtc"),
        ("ago=PT10M&sinceTimeUtc=2024-05-01", "ago"),
        ("ago=P1M", "ago"),
        ("limit=0", "limit"),
        ("limit=-3", "limit"),
        ("limit=many", "limit"),
    ] {
        let body = s.refused(&format!("/api/alerts?{query}"), &token, 400).await;
        assert_eq!(body["error"]["code"], "InvalidParameter", "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(parameter), "{query}: {message}");
    }
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let (s, _) = with_detections().await;
    let response = s.http.get(format!("{}/api/alerts", s.base)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("Authorization: Bearer"));

    let response = s.get("/api/alerts", "not.a.token").await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

#[tokio::test]
async fn a_disabled_tenant_or_an_app_without_the_role_is_403() {
    let s = Server::start().await;
    let tenant = s.tenant("contoso").await;
    let feeder = s.app(tenant, "edr-feed", &["ingest"]).await;
    let token = s.token(tenant, &feeder).await;
    let body = s.refused("/api/alerts", &token, 403).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("siemgate app grant"), "{message}");

    let reader = s.app(tenant, "splunk", &["siem-read"]).await;
    let token = s.token(tenant, &reader).await;
    assert_eq!(s.get("/api/alerts", &token).await.status(), 200);
    s.store.set_tenant_state(tenant, siemgate_store::TenantState::Disabled).await.unwrap();
    // A server trusts a tenant it read for a moment; past that, the change holds.
    tokio::time::sleep(TENANT_CACHE_TTL).await;
    let body = s.refused("/api/alerts", &token, 403).await;
    assert!(body["error"]["message"].as_str().unwrap().contains("disabled"), "{body}");
    s.store.set_tenant_state(tenant, siemgate_store::TenantState::Deleted).await.unwrap();
    tokio::time::sleep(TENANT_CACHE_TTL).await;
    s.refused("/api/alerts", &token, 403).await;
}

#[tokio::test]
async fn a_tenant_never_sees_another_tenants_detections() {
    let (s, _) = with_detections().await;
    let other = s.tenant("fabrikam").await;
    let reader = s.app(other, "splunk", &["siem-read"]).await;
    let token = s.token(other, &reader).await;
    assert!(s.alerts("/api/alerts?sinceTimeUtc=2000-01-01", &token).await.is_empty());
}

// curl runs on a thread of its own while the server answers on the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_when_the_client_asks_for_it() {
    let (s, token) = with_detections().await;
    let url = format!("{}/api/alerts?sinceTimeUtc=2024-01-01", s.base);
    let plain = s.get("/api/alerts?sinceTimeUtc=2024-01-01", &token).await.bytes().await.unwrap();
    let out = std::process::Command::new("curl")
        .args(["-s", "--compressed", "-D", "-", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(&url)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.to_ascii_lowercase().contains("content-encoding: gzip"), "{head}");
    assert_eq!(body.as_bytes(), &plain[..], "the same body once decompressed");
}

#[tokio::test]
async fn the_reference_sample_comes_back_byte_for_byte() {
    let s = Server::start().await;
    let tenant = s.tenant("contoso").await;
    let reader = s.app(tenant, "splunk", &["siem-read"]).await;
    let token = s.token(tenant, &reader).await;
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../model/tests/fixtures/reference-sample.json");
    let sample: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    s.ingest(tenant, &sample).await;
    let response = s.get("/api/alerts?sinceTimeUtc=2020-09-30", &token).await;
    let body = response.text().await.unwrap();
    let served: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(served, sample, "values");
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&served[0]), keys(&sample[0]), "keys in the page's order");
    assert_eq!(body, serde_json::to_string(&sample).unwrap(), "compact, byte for byte");
}

#[tokio::test]
async fn a_window_of_many_detections_streams_whole() {
    let s = Server::start().await;
    let tenant = s.tenant("contoso").await;
    let reader = s.app(tenant, "splunk", &["siem-read"]).await;
    let token = s.token(tenant, &reader).await;
    let start = now().add_ticks(-Span::from_hours(1).ticks());
    let records: Vec<_> = (0..5_000)
        .map(|i| record(&format!("r{i:05}"), &start.add_ticks(i * 10_000).to_string()))
        .collect();
    s.ingest(tenant, &records).await;
    let rows = s.alerts("/api/alerts", &token).await;
    assert_eq!(rows.len(), 5_000);
    let mut sorted = titles(&rows);
    sorted.sort();
    assert_eq!(sorted, titles(&rows), "ascending by LastProcessedTimeUtc");
}
