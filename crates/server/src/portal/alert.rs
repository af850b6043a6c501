//! `GET /alert/{AlertId}`: every detection of one alert of the viewer's
//! tenant, each with all of its fields.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::fields::{Record, detection_table, severity_badge};
use super::{load_alert, nav, return_path, session};
use crate::AppState;
use crate::html::{escape, page, wide_document};

/// The alert page, for a signed-in user of the alert's tenant.
pub async fn page_get(
    State(state): State<AppState>,
    Path(alert_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let viewer = match session::viewer(&state, &headers, &return_path(&uri)).await {
        Ok(viewer) => viewer,
        Err(to_sign_in) => return to_sign_in,
    };
    match load_alert(&state, &viewer, &alert_id).await {
        Ok(records) => {
            tracing::debug!(tenant = %viewer.tenant.id, alert = %alert_id, "alert page");
            page(
                StatusCode::OK,
                wide_document(&title(&records), &main(&viewer, &alert_id, &records)),
            )
        }
        Err(e) => e.into_response(),
    }
}

fn title(records: &[Record]) -> String {
    records.first().map(|r| r.text("AlertTitle")).unwrap_or_default()
}

fn main(viewer: &session::Viewer, alert_id: &str, records: &[Record]) -> String {
    let mut main = nav(viewer);
    main.push_str(&summary(alert_id, records));
    for (i, record) in records.iter().enumerate() {
        main.push_str(&format!(
            "<section><h2>Detection {n} of {count}</h2>{table}</section>",
            n = i + 1,
            count = records.len(),
            table = detection_table(record),
        ));
    }
    main
}

/// The alert at a glance: what, how bad, where, when, and the way to its context.
fn summary(alert_id: &str, records: &[Record]) -> String {
    let Some(first) = records.first() else { return String::new() };
    let context =
        form_urlencoded::Serializer::new(String::new()).append_pair("alertId", alert_id).finish();
    format!(
        "<h1>{title}</h1><p>{severity} {category} on <strong>{device}</strong> at {time} · \
         {count} detection{s}</p><p class=\"muted\">Alert {id} · \
         <a href=\"/incidents/byalert?{context}\">The device and its other alerts</a></p>",
        title = escape(&first.text("AlertTitle")),
        severity = severity_badge(&first.text("Severity")),
        category = escape(&first.text("Category")),
        device = escape(&first.text("ComputerDnsName")),
        time = escape(&first.text("AlertTime")),
        count = records.len(),
        s = if records.len() == 1 { "" } else { "s" },
        id = escape(alert_id),
        context = escape(&context),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_escapes_what_the_producer_wrote() {
        let record = Record::parse(
            br#"{"AlertTitle":"<img src=x onerror=alert(1)>","Severity":"High",
                "ComputerDnsName":"pc\"1","Category":"Malware","AlertTime":"2024-05-01T09:00:00Z"}"#,
        )
        .unwrap();
        let html = summary("da638501004000000000_1", &[record]);
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"), "{html}");
        assert!(html.contains("pc&quot;1"));
        assert!(html.contains("href=\"/incidents/byalert?alertId=da638501004000000000_1\""));
        assert!(!html.contains("<img"));
    }
}
