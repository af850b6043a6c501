//! `GET /incidents/byalert?alertId=...&source=...`: an alert in its
//! context: the device it was raised on, and that device's other recent
//! alerts, each linking to its own page.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use siemgate_model::ids::AlertId;
use siemgate_store::DeviceAlert;

use super::fields::{Record, severity_badge};
use super::{PortalError, load_alert, nav, return_path, session};
use crate::AppState;
use crate::html::{escape, page, wide_document};

/// How many of the device's alerts the page lists.
const DEVICE_ALERTS: usize = 50;

/// The device facts the page shows, by key, with their headings.
const DEVICE_FIELDS: [(&str, &str); 11] = [
    ("ComputerDnsName", "Name"),
    ("MachineDomain", "Domain"),
    ("DeviceID", "Device id"),
    ("MachineGroup", "Group"),
    ("DeviceCreatedMachineTags", "Device tags"),
    ("CloudCreatedMachineTags", "Cloud tags"),
    ("LogOnUsers", "Logged-on users"),
    ("InternalIPv4List", "IPv4 addresses"),
    ("InternalIPv6List", "IPv6 addresses"),
    ("UserName", "User of the alert"),
    ("UserDomain", "User's domain"),
];

/// The alert-context page, for a signed-in user of the alert's tenant.
pub async fn page_get(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let viewer = match session::viewer(&state, &headers, &return_path(&uri)).await {
        Ok(viewer) => viewer,
        Err(to_sign_in) => return to_sign_in,
    };
    let alert_id = alert_id_param(query.as_deref().unwrap_or(""));
    match context(&state, &viewer, &alert_id).await {
        Ok(main) => {
            tracing::debug!(tenant = %viewer.tenant.id, alert = %alert_id, "alert context page");
            page(StatusCode::OK, wide_document("Alert context", &main))
        }
        Err(e) => e.into_response(),
    }
}

/// The `alertId` parameter, its name in any letter case, as ASP.NET binds it.
fn alert_id_param(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name.eq_ignore_ascii_case("alertId"))
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default()
}

async fn context(
    state: &AppState,
    viewer: &session::Viewer,
    alert_id: &str,
) -> Result<String, PortalError> {
    let records = load_alert(state, viewer, alert_id).await?;
    let Some(first) = records.first() else {
        return Err(PortalError::NoAlert(alert_id.to_owned()));
    };
    let device_id = first.text("DeviceID");
    let others = state
        .store()
        .device_alerts(viewer.tenant.id, &device_id, DEVICE_ALERTS + 1)
        .await
        .map_err(PortalError::store)?;
    let others: Vec<DeviceAlert> =
        others.into_iter().filter(|a| a.alert_id != alert_id).take(DEVICE_ALERTS).collect();
    Ok(format!(
        "{nav}{heading}<h2>Device</h2>{device}<h2>Other alerts on this device</h2>{others}",
        nav = nav(viewer),
        heading = heading(alert_id, first, records.len()),
        device = device_table(first),
        others = alert_list(&others),
    ))
}

fn heading(alert_id: &str, first: &Record, count: usize) -> String {
    format!(
        "<h1>{title}</h1><p>{severity} {category} at {time} · {count} detection{s} · \
         <a href=\"{href}\">Open the alert</a></p>",
        title = escape(&first.text("AlertTitle")),
        severity = severity_badge(&first.text("Severity")),
        category = escape(&first.text("Category")),
        time = escape(&first.text("AlertTime")),
        s = if count == 1 { "" } else { "s" },
        href = escape(&alert_href(alert_id)),
    )
}

fn device_table(record: &Record) -> String {
    let mut rows = String::new();
    for (key, label) in DEVICE_FIELDS {
        let value = record.text(key);
        let cell = if value.is_empty() {
            "<td class=\"empty\">(empty)</td>".to_owned()
        } else {
            format!("<td>{}</td>", escape(&value))
        };
        rows.push_str(&format!("<tr><th>{label}</th>{cell}</tr>"));
    }
    format!("<table>{rows}</table>")
}

/// The device's other alerts as a table, each title linking to its page.
fn alert_list(alerts: &[DeviceAlert]) -> String {
    if alerts.is_empty() {
        return "<p class=\"muted\">None.</p>".to_owned();
    }
    let mut rows = String::new();
    for alert in alerts {
        let Some(record) = Record::parse(&alert.body) else { continue };
        let title = escape(&record.text("AlertTitle"));
        // Only an id of the right shape becomes a link; it was checked at ingest.
        let title = if AlertId::parse(&alert.alert_id).is_some() {
            format!("<a href=\"{}\">{title}</a>", escape(&alert_href(&alert.alert_id)))
        } else {
            title
        };
        rows.push_str(&format!(
            "<tr><td>{time}</td><td>{title}</td><td>{severity}</td><td>{category}</td>\
             <td>{count}</td></tr>",
            time = escape(&record.text("AlertTime")),
            severity = severity_badge(&record.text("Severity")),
            category = escape(&record.text("Category")),
            count = alert.detections,
        ));
    }
    format!(
        "<table><thead><tr><th>Alert time</th><th>Title</th><th>Severity</th><th>Category</th>\
         <th>Detections</th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

/// The path of an alert's page.
fn alert_href(alert_id: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(alert_id.as_bytes()).collect();
    format!("/alert/{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alert_id_parameter_is_found_in_any_case() {
        assert_eq!(alert_id_param("alertId=da1_2&source=SIEM"), "da1_2");
        assert_eq!(alert_id_param("source=x&ALERTID=da1_2"), "da1_2");
        assert_eq!(alert_id_param("source=x"), "");
    }
}
