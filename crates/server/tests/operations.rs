//! What an operator relies on, over HTTP: readiness, Prometheus metrics that
//! count what happened, the OpenAPI document, and the per-app rate limit.

mod common;

use common::{Server, record, titles};
use siemgate_model::KEYS;

#[tokio::test]
async fn health_and_readiness() {
    let s = Server::start().await;
    let get = |path: &'static str| s.http.get(format!("{}{path}", s.base)).send();
    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready");
}

/// The value of the metric line that starts with `series`.
fn metric(text: &str, series: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn metrics_count_requests_tokens_and_detections() {
    let s = Server::start().await;
    let tenant = s.tenant("contoso").await;
    let reader = s.app(tenant, "splunk", &["siem-read"]).await;
    let token = s.token(tenant, &reader).await;
    s.ingest(tenant, &[record("a", "2024-05-01T10:00:00Z"), record("b", "2024-05-01T10:00:01Z")])
        .await;
    assert_eq!(titles(&s.alerts("/api/alerts?sinceTimeUtc=2024-05-01", &token).await), ["a", "b"]);
    assert_eq!(s.get("/API/Alerts?limit=x", &token).await.status(), 400);
    assert_eq!(s.get("/api/alerts", "forged").await.status(), 401);

    let response = s.http.get(format!("{}/metrics", s.base)).send().await.unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let requests = |route: &str, status: u16| {
        metric(
            &text,
            &format!("siemgate_http_requests_total{{route=\"{route}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(requests("/api/alerts", 200), 1.0, "spellings count under one route");
    assert_eq!(requests("/api/alerts", 400), 1.0);
    assert_eq!(requests("/api/alerts", 401), 1.0);
    assert_eq!(requests("/{tenant}/oauth2/token", 200), 1.0, "routes, not tenant ids");
    assert!(!text.contains(&tenant.to_string()), "no tenant id becomes a label");
    assert_eq!(metric(&text, "siemgate_tokens_issued_total"), 1.0);
    assert_eq!(metric(&text, "siemgate_detections_served_total"), 2.0);
    let histogram = "siemgate_http_request_duration_seconds_count{route=\"/api/alerts\"}";
    assert_eq!(metric(&text, histogram), 3.0);
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_the_record() {
    let s = Server::start().await;
    let doc: serde_json::Value =
        s.http.get(format!("{}/openapi.json", s.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], s.base.as_str());
    let paths = doc["paths"].as_object().unwrap();
    for route in [
        "/api/alerts",
        "/api/alert",
        "/api/detections",
        "/{tenant}/oauth2/token",
        "/{tenant}/oauth2/v2.0/token",
        "/{tenant}/oauth2/authorize",
        "/{tenant}/.well-known/openid-configuration",
        "/common/discovery/keys",
        "/common/discovery/instance",
        "/alert/{AlertId}",
        "/incidents/byalert",
        "/portal/signin",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(route), "{route} is not described");
    }
    let alerts = &doc["paths"]["/api/alerts"]["get"];
    let parameters: Vec<&str> = alerts["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        parameters,
        [
            "sinceTimeUtc",
            "untilTimeUtc",
            "ago",
            "limit",
            "machinegroups",
            "DeviceCreatedMachineTags",
            "CloudCreatedMachineTags"
        ]
    );
    for status in ["200", "400", "401", "403", "429", "500"] {
        assert!(alerts["responses"].get(status).is_some(), "GET /api/alerts {status}");
    }
    let detection = &doc["components"]["schemas"]["Detection"];
    let keys: Vec<&str> =
        detection["properties"].as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, KEYS, "all 50 keys in the API's order");
    assert_eq!(detection["properties"]["AlertPart"]["type"], "integer");
}

#[tokio::test]
async fn an_app_over_its_rate_limit_gets_429_with_retry_after() {
    let s = Server::start_with(|c| c.rate_limit_per_app = Some(2.0)).await;
    let tenant = s.tenant("contoso").await;
    let busy = s.app(tenant, "busy", &["siem-read"]).await;
    let quiet = s.app(tenant, "quiet", &["siem-read"]).await;
    let busy = s.token(tenant, &busy).await;
    let quiet = s.token(tenant, &quiet).await;
    assert_eq!(s.get("/api/alerts", &busy).await.status(), 200);
    assert_eq!(s.get("/api/alerts", &busy).await.status(), 200);
    let refused = s.get("/api/alerts", &busy).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(s.get("/api/alerts", &quiet).await.status(), 200, "each app has its own");

    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(s.get("/api/alerts", &busy).await.status(), 200, "the allowance refills");
}
