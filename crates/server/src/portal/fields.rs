//! A stored detection read back for display, and its 50 fields laid out in
//! groups an analyst reads top to bottom. Every value is escaped; a URL is
//! text like any other value, never a link, since a producer may send
//! `javascript:` in `Url` or in a link field.

use serde_json::{Map, Value};

use crate::html::escape;

/// The detection's keys in the order and groups the alert page shows them.
/// Together they are every key of the record, each once.
pub const GROUPS: [(&str, &[&str]); 9] = [
    (
        "Alert",
        &[
            "AlertTitle",
            "Severity",
            "Category",
            "Source",
            "Description",
            "AlertTime",
            "LastProcessedTimeUtc",
            "Actor",
            "AlertId",
            "AlertPart",
            "FullId",
            "ExternalId",
            "ReportID",
            "IoaDefinitionId",
            "IocUniqueId",
        ],
    ),
    (
        "Device",
        &[
            "ComputerDnsName",
            "MachineName",
            "MachineDomain",
            "DeviceID",
            "MachineGroup",
            "InternalIPv4List",
            "InternalIPv6List",
            "LogOnUsers",
            "DeviceCreatedMachineTags",
            "CloudCreatedMachineTags",
        ],
    ),
    ("User", &["UserName", "UserDomain"]),
    (
        "File",
        &["FileName", "FilePath", "Sha1", "Sha256", "Md5", "FileHash", "WasExecutingWhileDetected"],
    ),
    ("Process", &["CommandLine"]),
    ("Network", &["IpAddress", "Url"]),
    ("Indicator", &["IocName", "IocValue", "CreatorIocName", "CreatorIocValue"]),
    (
        "Threat and remediation",
        &[
            "ThreatCategory",
            "ThreatFamily",
            "ThreatName",
            "RemediationAction",
            "RemediationIsSuccess",
        ],
    ),
    ("Links", &["LinkToWDATP", "LinkToMTP", "IncidentLinkToWDATP", "IncidentLinkToMTP"]),
];

/// Fields whose values are code, paths or identifiers, set in monospace
/// and wrapped anywhere.
const VERBATIM: [&str; 19] = [
    "CommandLine",
    "FilePath",
    "Url",
    "Sha1",
    "Sha256",
    "Md5",
    "FileHash",
    "DeviceID",
    "AlertId",
    "FullId",
    "ExternalId",
    "IocUniqueId",
    "IoaDefinitionId",
    "IocValue",
    "CreatorIocValue",
    "LinkToWDATP",
    "LinkToMTP",
    "IncidentLinkToWDATP",
    "IncidentLinkToMTP",
];

/// A stored detection as its JSON object.
#[derive(Debug, Clone)]
pub struct Record(Map<String, Value>);

impl Record {
    /// Reads a stored body; `None` (logged) if it is not a JSON object,
    /// which the store never writes.
    pub fn parse(body: &[u8]) -> Option<Record> {
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => Some(Record(map)),
            _ => {
                tracing::error!(bytes = body.len(), "a stored detection is not a JSON object");
                None
            }
        }
    }

    /// The value of `key` as text: strings as they are, numbers and
    /// booleans written out, `null` and missing keys empty.
    pub fn text(&self, key: &str) -> String {
        match self.0.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    }
}

/// The detection as a table of every field, grouped; empty values are
/// shown as such rather than left out, so a reader knows a field was empty.
pub fn detection_table(record: &Record) -> String {
    let mut rows = String::new();
    for (group, keys) in GROUPS {
        rows.push_str(&format!("<tr class=\"group\"><th colspan=\"2\">{group}</th></tr>"));
        for key in keys {
            rows.push_str(&format!("<tr><th>{key}</th>{}</tr>", value_cell(record, key)));
        }
    }
    format!("<table>{rows}</table>")
}

/// One value as a table cell, escaped.
fn value_cell(record: &Record, key: &str) -> String {
    let text = record.text(key);
    if text.is_empty() {
        let empty =
            if record.0.get(key).is_some_and(Value::is_null) { "not reported" } else { "empty" };
        return format!("<td class=\"empty\">({empty})</td>");
    }
    if VERBATIM.contains(&key) {
        format!("<td class=\"text\">{}</td>", escape(&text))
    } else if key == "Severity" {
        format!("<td>{}</td>", severity_badge(&text))
    } else {
        format!("<td>{}</td>", escape(&text))
    }
}

/// A severity as a badge coloured by its level.
pub fn severity_badge(text: &str) -> String {
    let class = siemgate_model::prepare::SEVERITIES.iter().find(|s| **s == text).unwrap_or(&"");
    format!("<span class=\"sev sev-{class}\">{}</span>", escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_groups_hold_every_key_once() {
        let mut grouped: Vec<&str> =
            GROUPS.iter().flat_map(|(_, keys)| keys.iter().copied()).collect();
        grouped.sort_unstable();
        let mut keys = siemgate_model::KEYS.to_vec();
        keys.sort_unstable();
        assert_eq!(grouped, keys);
    }

    #[test]
    fn markup_and_script_urls_stay_text() {
        let body = br#"{"CommandLine":"<script>alert(1)</script>","Url":"javascript:alert(1)",
            "Severity":"High\"><b>","RemediationIsSuccess":null,"AlertPart":3}"#;
        let table = detection_table(&Record::parse(body).unwrap());
        assert!(table.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(table.contains("<td class=\"text\">javascript:alert(1)</td>"));
        assert!(!table.contains("<script") && !table.contains("href") && !table.contains("<b>"));
        assert!(table.contains("(not reported)") && table.contains("<td>3</td>"));
    }
}
