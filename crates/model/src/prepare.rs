//! Turning a producer's record into what the store keeps: checked, completed
//! with generated identifiers and portal links, rendered once, and keyed for
//! the filters the SIEM API offers.

use crate::detection::{Detection, elide, write_json_str};
use crate::ids::{self, AlertId};
use crate::time::Timestamp;

/// The largest rendered record accepted; a record this size is a mistake or an attack.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The severities the SIEM API uses, in their canonical spelling.
pub const SEVERITIES: [&str; 4] = ["Informational", "Low", "Medium", "High"];

/// How records are completed.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// The public URL of the server whose portal pages the links open,
    /// such as `https://siemgate.example.com:8443`, without a trailing slash.
    pub portal_url: String,
    /// Keep the producer's `LastProcessedTimeUtc` instead of the store's
    /// commit time. Only for importing an archive: readers that already
    /// passed those times will not see the imported records.
    pub keep_processed_time: bool,
}

/// A record ready for the store: everything but `LastProcessedTimeUtc`
/// rendered, plus the keys its filters match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub full_id: String,
    pub alert_id: String,
    /// The record's `DeviceID`: the producer's (lower-cased) or one derived
    /// from `ComputerDnsName`; empty only when the record names no device.
    pub device_id: String,
    /// `MachineGroup`, lower-cased, for case-insensitive matching.
    pub machine_group_key: String,
    /// Device tags lower-cased and wrapped as `;a;b;` so `;tag;` finds one.
    pub device_tags_key: String,
    /// Cloud tags, in the same form as `device_tags_key`.
    pub cloud_tags_key: String,
    /// The producer's processing time, kept only in archive-import mode.
    pub kept_processed_time: Option<Timestamp>,
    /// The object up to and including `"LastProcessedTimeUtc":`.
    pub head: Vec<u8>,
    /// The object from the comma after `LastProcessedTimeUtc`'s value to the end.
    pub tail: Vec<u8>,
}

impl Prepared {
    /// The full JSON object with `processed` as its `LastProcessedTimeUtc`.
    pub fn render(&self, processed: Timestamp) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.head.len() + self.tail.len() + 32);
        self.render_into(processed, &mut out);
        out
    }

    /// Appends the full JSON object to `out`.
    pub fn render_into(&self, processed: Timestamp, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head);
        write_json_str(out, &processed.to_string());
        out.extend_from_slice(&self.tail);
    }
}

/// Why a record was refused, in words that tell the producer what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{key} {problem}: {value:?}")]
    Invalid { key: &'static str, problem: &'static str, value: String },
    #[error("Severity must be one of Informational, Low, Medium, High: {0:?}")]
    Severity(String),
    #[error("FullId {full_id:?} does not equal AlertId:IocUniqueId ({expected:?})")]
    FullIdMismatch { full_id: String, expected: String },
    #[error("the record is {0} bytes rendered; the limit is 1 MiB")]
    TooLarge(usize),
    #[error("LastProcessedTimeUtc is required when processing times are kept (archive import)")]
    MissingProcessedTime,
}

fn invalid(key: &'static str, problem: &'static str, value: &str) -> RecordError {
    RecordError::Invalid { key, problem, value: elide(value.to_owned(), 80) }
}

/// Checks and completes `d`, then renders it. The producer's
/// `LastProcessedTimeUtc` is dropped unless the options keep it.
pub fn prepare(mut d: Detection, options: &PrepareOptions) -> Result<Prepared, RecordError> {
    let alert_time = d.alert_time.ok_or(RecordError::Missing("AlertTime"))?;
    if d.alert_title.trim().is_empty() {
        return Err(RecordError::Missing("AlertTitle"));
    }
    d.severity = SEVERITIES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(d.severity.trim()))
        .ok_or_else(|| RecordError::Severity(d.severity.clone()))?
        .to_string();
    let kept_processed_time = if options.keep_processed_time {
        Some(d.last_processed_time_utc.ok_or(RecordError::MissingProcessedTime)?)
    } else {
        None
    };
    d.last_processed_time_utc = None;

    normalize_lists(&mut d);
    complete_machine_names(&mut d);
    check_hashes(&mut d)?;
    complete_ids(&mut d, alert_time)?;
    complete_links(&mut d, &options.portal_url);

    let (head, tail) = d.render_split();
    let size = head.len() + tail.len() + 30;
    if size > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge(size));
    }
    Ok(Prepared {
        machine_group_key: d.machine_group.to_lowercase(),
        device_tags_key: tag_key(&d.device_created_machine_tags),
        cloud_tags_key: tag_key(&d.cloud_created_machine_tags),
        full_id: d.full_id,
        alert_id: d.alert_id,
        device_id: d.device_id,
        kept_processed_time,
        head,
        tail,
    })
}

/// Splits a list field on `,` or `;`, as producers write either.
pub fn list_items(text: &str) -> impl Iterator<Item = &str> {
    text.split([',', ';']).map(str::trim).filter(|item| !item.is_empty())
}

/// Lists are written one way on the way out: items joined by `, `.
fn normalize_lists(d: &mut Detection) {
    for list in [
        &mut d.log_on_users,
        &mut d.internal_ipv4_list,
        &mut d.internal_ipv6_list,
        &mut d.device_created_machine_tags,
        &mut d.cloud_created_machine_tags,
    ] {
        if list.contains([',', ';']) || list.trim() != list {
            *list = list_items(list).collect::<Vec<_>>().join(", ");
        }
    }
}

fn tag_key(tags: &str) -> String {
    let mut key = String::from(";");
    for tag in list_items(tags) {
        key.push_str(&tag.to_lowercase());
        key.push(';');
    }
    key
}

/// `ComputerDnsName` is `MachineName.MachineDomain`; fill whichever side is missing.
fn complete_machine_names(d: &mut Detection) {
    if d.computer_dns_name.is_empty() && !d.machine_name.is_empty() {
        d.computer_dns_name = if d.machine_domain.is_empty() {
            d.machine_name.clone()
        } else {
            format!("{}.{}", d.machine_name, d.machine_domain)
        };
    }
    if d.machine_name.is_empty() && !d.computer_dns_name.is_empty() {
        let (name, domain) =
            d.computer_dns_name.split_once('.').unwrap_or((&d.computer_dns_name, ""));
        d.machine_name = name.to_owned();
        if d.machine_domain.is_empty() {
            d.machine_domain = domain.to_owned();
        }
    }
}

fn check_hashes(d: &mut Detection) -> Result<(), RecordError> {
    let checks: [(&'static str, &str, &[usize], &'static str); 4] = [
        ("Sha1", &d.sha1, &[40], "must be 40 hexadecimal digits"),
        ("Md5", &d.md5, &[32], "must be 32 hexadecimal digits"),
        ("Sha256", &d.sha256, &[64], "must be 64 hexadecimal digits"),
        ("FileHash", &d.file_hash, &[32, 40, 64], "must be an MD5, SHA-1 or SHA-256 in hex"),
    ];
    for (key, value, lengths, problem) in checks {
        if !value.is_empty() && !lengths.iter().any(|&len| ids::is_hex(value, len)) {
            return Err(invalid(key, problem, value));
        }
    }
    if !d.ioa_definition_id.is_empty() && !ids::is_guid(&d.ioa_definition_id) {
        return Err(invalid("IoaDefinitionId", "must be a GUID", &d.ioa_definition_id));
    }
    if d.file_hash.is_empty() {
        d.file_hash = d.sha1.clone();
    }
    Ok(())
}

fn complete_ids(d: &mut Detection, alert_time: Timestamp) -> Result<(), RecordError> {
    if !d.full_id.is_empty() && d.alert_id.is_empty() && d.ioc_unique_id.is_empty() {
        let (alert, ioc) = d
            .full_id
            .split_once(':')
            .ok_or_else(|| invalid("FullId", "must be AlertId:IocUniqueId", &d.full_id))?;
        (d.alert_id, d.ioc_unique_id) = (alert.to_owned(), ioc.to_owned());
    }

    if d.alert_id.is_empty() {
        let mut seed = Vec::new();
        for part in [&d.alert_title, &d.computer_dns_name, &d.device_id, &d.category] {
            seed.extend_from_slice(part.as_bytes());
            seed.push(0);
        }
        d.alert_id = AlertId::derive(alert_time, &seed).to_string();
    } else if AlertId::parse(&d.alert_id).is_none() {
        return Err(invalid(
            "AlertId",
            "must be da<.NET ticks>_<32-bit number>, such as da637370718981685665_16349121",
            &d.alert_id,
        ));
    }

    if d.device_id.is_empty() {
        if !d.computer_dns_name.is_empty() {
            d.device_id = ids::derive_device_id(&d.computer_dns_name);
        }
    } else if ids::is_hex(&d.device_id, 40) {
        d.device_id.make_ascii_lowercase();
    } else {
        return Err(invalid("DeviceID", "must be 40 hexadecimal digits", &d.device_id));
    }

    if d.ioc_unique_id.is_empty() {
        // Everything the producer sent identifies the indicator; the ids
        // still to be generated are empty here, so the digest is stable.
        d.ioc_unique_id = ids::derive_ioc_unique_id(&d.render());
    } else if !ids::is_ioc_unique_id(&d.ioc_unique_id) {
        return Err(invalid(
            "IocUniqueId",
            "must be 44 characters of base64 encoding 32 bytes",
            &d.ioc_unique_id,
        ));
    }

    let expected = ids::full_id(&d.alert_id, &d.ioc_unique_id);
    if d.full_id.is_empty() {
        d.full_id = expected;
    } else if d.full_id != expected {
        return Err(RecordError::FullIdMismatch { full_id: d.full_id.clone(), expected });
    }

    if d.external_id.is_empty() {
        d.external_id = ids::derive_external_id(&d.full_id);
    } else if ids::is_hex(&d.external_id, 40) {
        d.external_id.make_ascii_uppercase();
    } else {
        return Err(invalid("ExternalId", "must be 40 hexadecimal digits", &d.external_id));
    }
    if d.report_id.is_none() {
        d.report_id = Some(ids::derive_report_id(&d.full_id));
    }
    Ok(())
}

/// Links a producer left empty open this server's portal pages.
fn complete_links(d: &mut Detection, portal_url: &str) {
    let base = portal_url.trim_end_matches('/');
    let alert = format!("{base}/alert/{}", d.alert_id);
    let incident = format!("{base}/incidents/byalert?alertId={}&source=SIEM", d.alert_id);
    for (link, value) in [
        (&mut d.link_to_wdatp, &alert),
        (&mut d.link_to_mtp, &alert),
        (&mut d.incident_link_to_wdatp, &incident),
        (&mut d.incident_link_to_mtp, &incident),
    ] {
        if link.is_empty() {
            value.clone_into(link);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> PrepareOptions {
        PrepareOptions {
            portal_url: "https://gate.example:8443/".into(),
            keep_processed_time: false,
        }
    }

    fn minimal() -> Detection {
        Detection {
            alert_time: Timestamp::parse("2024-05-01T10:00:00Z").ok(),
            alert_title: "Suspicious PowerShell".into(),
            severity: "high".into(),
            computer_dns_name: "pc7.contoso.com".into(),
            ..Detection::default()
        }
    }

    fn rendered(p: &Prepared) -> serde_json::Value {
        let t = Timestamp::parse("2024-05-01T10:00:01Z").unwrap();
        serde_json::from_slice(&p.render(t)).unwrap()
    }

    #[test]
    fn completes_ids_links_and_names() {
        let p = prepare(minimal(), &options()).unwrap();
        let v = rendered(&p);
        let alert_id = v["AlertId"].as_str().unwrap();
        assert!(alert_id.starts_with("da638501"), "{alert_id}");
        assert_eq!(v["Severity"], "High");
        assert_eq!(v["FullId"], format!("{alert_id}:{}", v["IocUniqueId"].as_str().unwrap()));
        assert_eq!(v["LinkToWDATP"], format!("https://gate.example:8443/alert/{alert_id}"));
        assert_eq!(
            v["IncidentLinkToMTP"],
            format!("https://gate.example:8443/incidents/byalert?alertId={alert_id}&source=SIEM")
        );
        assert_eq!(v["MachineName"], "pc7");
        assert_eq!(v["MachineDomain"], "contoso.com");
        assert_eq!(v["DeviceID"].as_str().unwrap().len(), 40);
        assert_eq!(v["DeviceID"], p.device_id);
        assert_eq!(v["AlertId"], p.alert_id);
        assert_eq!(v["ExternalId"].as_str().unwrap().len(), 40);
        assert!(v["ReportID"].is_i64());
        assert_eq!(v["LastProcessedTimeUtc"], "2024-05-01T10:00:01Z");
    }

    #[test]
    fn the_same_record_gets_the_same_ids_and_a_different_one_does_not() {
        let a = prepare(minimal(), &options()).unwrap();
        let b = prepare(minimal(), &options()).unwrap();
        assert_eq!(a.full_id, b.full_id);
        let mut other = minimal();
        other.file_name = "evil.exe".into();
        let c = prepare(other, &options()).unwrap();
        assert_eq!(c.alert_id, a.alert_id, "same alert, another indicator");
        assert_ne!(c.full_id, a.full_id);
    }

    #[test]
    fn keys_tags_and_groups_for_filters() {
        let mut d = minimal();
        d.machine_group = "UK Machines".into();
        d.device_created_machine_tags = " Finance;VIP , ".into();
        d.cloud_created_machine_tags = "Prod".into();
        let p = prepare(d, &options()).unwrap();
        assert_eq!(p.machine_group_key, "uk machines");
        assert_eq!(p.device_tags_key, ";finance;vip;");
        assert_eq!(p.cloud_tags_key, ";prod;");
        assert_eq!(rendered(&p)["DeviceCreatedMachineTags"], "Finance, VIP");
    }

    #[test]
    fn refuses_bad_records_with_the_reason() {
        type Spoil = fn(&mut Detection);
        let cases: Vec<(Spoil, &str)> = vec![
            (|d| d.alert_time = None, "AlertTime is required"),
            (|d| d.alert_title.clear(), "AlertTitle is required"),
            (|d| d.severity = "Critical".into(), "Severity must be one of"),
            (|d| d.alert_id = "12345".into(), "AlertId must be da<.NET ticks>"),
            (|d| d.sha1 = "xyz".into(), "Sha1 must be 40 hexadecimal digits"),
            (|d| d.ioc_unique_id = "short".into(), "IocUniqueId must be 44 characters"),
            (|d| d.device_id = "PC7".into(), "DeviceID must be 40 hexadecimal digits"),
            (|d| d.ioa_definition_id = "nope".into(), "IoaDefinitionId must be a GUID"),
            (|d| d.command_line = "x".repeat(MAX_RECORD_BYTES), "the limit is 1 MiB"),
            (
                |d| {
                    d.alert_id = "da637370718981685665_1".into();
                    d.ioc_unique_id = "R4xEdgAvDb2LQl3BgHoA3NYqKmRSiIAG7dpxAJCYZhY=".into();
                    d.full_id = "da637370718981685665_2:x".into();
                },
                "does not equal AlertId:IocUniqueId",
            ),
        ];
        for (spoil, message) in cases {
            let mut d = minimal();
            spoil(&mut d);
            let err = prepare(d, &options()).unwrap_err().to_string();
            assert!(err.contains(message), "{err:?} lacks {message:?}");
        }
    }

    #[test]
    fn keeps_processed_time_only_when_asked() {
        let mut d = minimal();
        d.last_processed_time_utc = Timestamp::parse("2024-05-01T10:05:00Z").ok();
        assert_eq!(prepare(d.clone(), &options()).unwrap().kept_processed_time, None);
        let keep = PrepareOptions { keep_processed_time: true, ..options() };
        assert_eq!(
            prepare(d, &keep).unwrap().kept_processed_time,
            Timestamp::parse("2024-05-01T10:05:00Z").ok()
        );
        assert_eq!(prepare(minimal(), &keep).unwrap_err(), RecordError::MissingProcessedTime);
    }
}
