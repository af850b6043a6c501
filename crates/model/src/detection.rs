//! The 50-key detection record of the SIEM API and its JSON form.
//!
//! The key order is part of the contract: connectors that map columns by
//! position break when it changes. It is written once, in the table below, and
//! the struct, the parser and the renderer are all generated from that table.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::time::Timestamp;

/// A value that can sit in one field of the record: how it is read from JSON
/// (leniently: `null` is an absent string) and how it is written (strictly).
pub trait FieldValue: Default {
    /// What a message says the field should hold.
    const EXPECTED: &'static str;

    /// The field's value, or the JSON value handed back when it does not fit.
    fn from_json(value: Value) -> Result<Self, Value>;
    fn render(&self, out: &mut Vec<u8>);
}

impl FieldValue for String {
    const EXPECTED: &'static str = "a string";

    fn from_json(value: Value) -> Result<Self, Value> {
        match value {
            Value::String(s) => Ok(s),
            Value::Null => Ok(String::new()),
            other => Err(other),
        }
    }

    fn render(&self, out: &mut Vec<u8>) {
        write_json_str(out, self);
    }
}

impl FieldValue for Option<Timestamp> {
    const EXPECTED: &'static str = "a UTC time such as 2020-09-30T14:11:44.0779765Z";

    fn from_json(value: Value) -> Result<Self, Value> {
        match value {
            Value::String(s) if s.is_empty() => Ok(None),
            Value::String(s) => Timestamp::parse(&s).map(Some).map_err(|_| Value::String(s)),
            Value::Null => Ok(None),
            other => Err(other),
        }
    }

    fn render(&self, out: &mut Vec<u8>) {
        match self {
            Some(t) => {
                out.push(b'"');
                out.extend_from_slice(t.to_string().as_bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"\"\""),
        }
    }
}

impl FieldValue for Option<bool> {
    const EXPECTED: &'static str = "true, false or null";

    fn from_json(value: Value) -> Result<Self, Value> {
        match value {
            Value::Bool(b) => Ok(Some(b)),
            Value::Null => Ok(None),
            other => Err(other),
        }
    }

    fn render(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self {
            Some(true) => b"true",
            Some(false) => b"false",
            None => b"null",
        });
    }
}

impl FieldValue for u32 {
    const EXPECTED: &'static str = "a non-negative integer";

    fn from_json(value: Value) -> Result<Self, Value> {
        value.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or(value)
    }

    fn render(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_string().as_bytes());
    }
}

impl FieldValue for Option<i64> {
    const EXPECTED: &'static str = "an integer or null";

    fn from_json(value: Value) -> Result<Self, Value> {
        match value {
            Value::Null => Ok(None),
            other => other.as_i64().map(Some).ok_or(other),
        }
    }

    fn render(&self, out: &mut Vec<u8>) {
        match self {
            Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
    }
}

/// Writes `s` as a JSON string literal, escaped as serde_json escapes it.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

macro_rules! detection_record {
    ($( $(#[$doc:meta])* $field:ident : $ty:ty => $key:literal, )*) => {
        /// One detection: one indicator of one alert, with every key of the SIEM API.
        ///
        /// Strings hold `""` when absent; times are `None` when absent.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Detection {
            $( $(#[$doc])* pub $field: $ty, )*
        }

        /// The record's keys, in the order every response and file carries them.
        pub const KEYS: [&str; 50] = [$($key),*];

        impl Detection {
            /// Writes the fields whose positions in [`KEYS`] fall in `range`,
            /// each as `"Key":value` preceded by a comma unless it is first.
            fn render_fields(&self, range: std::ops::Range<usize>, out: &mut Vec<u8>) {
                let mut position = 0usize;
                $(
                    if range.contains(&position) {
                        if position != range.start {
                            out.push(b',');
                        }
                        out.extend_from_slice(concat!("\"", $key, "\":").as_bytes());
                        FieldValue::render(&self.$field, out);
                    }
                    position += 1;
                )*
                debug_assert_eq!(position, KEYS.len());
            }

            /// Reads one key's value into its field; `Ok(false)` for an unknown key.
            fn set_field(&mut self, key: &str, value: Value) -> Result<bool, FieldError> {
                match key {
                    $(
                        $key => {
                            self.$field = <$ty as FieldValue>::from_json(value).map_err(|v| {
                                FieldError::new($key, <$ty as FieldValue>::EXPECTED, &v)
                            })?;
                            Ok(true)
                        }
                    )*
                    _ => Ok(false),
                }
            }
        }
    };
}

detection_record! {
    /// When the alert was raised.
    alert_time: Option<Timestamp> => "AlertTime",
    computer_dns_name: String => "ComputerDnsName",
    alert_title: String => "AlertTitle",
    category: String => "Category",
    /// `Informational`, `Low`, `Medium` or `High`.
    severity: String => "Severity",
    alert_id: String => "AlertId",
    actor: String => "Actor",
    link_to_wdatp: String => "LinkToWDATP",
    ioc_name: String => "IocName",
    ioc_value: String => "IocValue",
    creator_ioc_name: String => "CreatorIocName",
    creator_ioc_value: String => "CreatorIocValue",
    sha1: String => "Sha1",
    file_name: String => "FileName",
    /// The folder; the file's name is in `file_name`.
    file_path: String => "FilePath",
    ip_address: String => "IpAddress",
    url: String => "Url",
    ioa_definition_id: String => "IoaDefinitionId",
    user_name: String => "UserName",
    /// Which indicator of its alert this is: 0, 1, 2, ...
    alert_part: u32 => "AlertPart",
    full_id: String => "FullId",
    /// When the detection reached the server; set by the server alone.
    last_processed_time_utc: Option<Timestamp> => "LastProcessedTimeUtc",
    threat_category: String => "ThreatCategory",
    threat_family: String => "ThreatFamily",
    threat_name: String => "ThreatName",
    remediation_action: String => "RemediationAction",
    remediation_is_success: Option<bool> => "RemediationIsSuccess",
    source: String => "Source",
    md5: String => "Md5",
    sha256: String => "Sha256",
    was_executing_while_detected: Option<bool> => "WasExecutingWhileDetected",
    user_domain: String => "UserDomain",
    log_on_users: String => "LogOnUsers",
    machine_domain: String => "MachineDomain",
    machine_name: String => "MachineName",
    internal_ipv4_list: String => "InternalIPv4List",
    internal_ipv6_list: String => "InternalIPv6List",
    file_hash: String => "FileHash",
    device_id: String => "DeviceID",
    machine_group: String => "MachineGroup",
    description: String => "Description",
    device_created_machine_tags: String => "DeviceCreatedMachineTags",
    cloud_created_machine_tags: String => "CloudCreatedMachineTags",
    command_line: String => "CommandLine",
    incident_link_to_wdatp: String => "IncidentLinkToWDATP",
    report_id: Option<i64> => "ReportID",
    link_to_mtp: String => "LinkToMTP",
    incident_link_to_mtp: String => "IncidentLinkToMTP",
    external_id: String => "ExternalId",
    ioc_unique_id: String => "IocUniqueId",
}

/// Position of `LastProcessedTimeUtc` in [`KEYS`]: the one value the store
/// writes at commit, between a prefix and a suffix rendered beforehand.
pub const LAST_PROCESSED_POSITION: usize = 21;

/// A record that could not be read, with the key at fault when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Field(#[from] FieldError),
    #[error(
        "unknown key \"{0}\"; the record has the 50 keys of the SIEM API, spelled as it spells them"
    )]
    UnknownKey(String),
    #[error("key \"{0}\" appears twice")]
    DuplicateKey(String),
    #[error("{0}")]
    Json(String),
}

/// A value of the wrong type or form for its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} must be {expected}, not {found}")]
pub struct FieldError {
    pub key: &'static str,
    pub expected: &'static str,
    pub found: String,
}

impl FieldError {
    fn new(key: &'static str, expected: &'static str, value: &Value) -> Self {
        FieldError { key, expected, found: elide(value.to_string(), 60) }
    }
}

/// `text` cut to at most `max` bytes with `...` marking the cut, so that an
/// error quoting a 30 KB command line stays one readable line.
pub(crate) fn elide(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max.saturating_sub(3);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

impl Detection {
    /// Parses one JSON object. Absent keys take their empty value; unknown
    /// or repeated keys are refused, since they usually mean a misspelling.
    pub fn from_json(text: &str) -> Result<Detection, ParseError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let detection = Detection::deserialize_from(&mut de)?;
        de.end().map_err(|e| ParseError::Json(e.to_string()))?;
        Ok(detection)
    }

    /// Reads one record from a serde deserializer positioned at a JSON object.
    pub fn deserialize_from<'de, D: Deserializer<'de>>(de: D) -> Result<Detection, ParseError> {
        let mut failure = None;
        let result = de.deserialize_map(RecordVisitor { failure: &mut failure });
        match (result, failure) {
            (_, Some(failure)) => Err(failure),
            (Ok(detection), None) => Ok(detection),
            (Err(e), None) => Err(ParseError::Json(e.to_string())),
        }
    }

    /// The record as a compact JSON object with all 50 keys in order.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2048);
        out.push(b'{');
        self.render_fields(0..KEYS.len(), &mut out);
        out.push(b'}');
        out
    }

    /// The record split around the value of `LastProcessedTimeUtc`: the head
    /// ends with `"LastProcessedTimeUtc":` and the tail starts with the comma
    /// after that value, so `head + "\"<time>\"" + tail` is the whole object.
    pub fn render_split(&self) -> (Vec<u8>, Vec<u8>) {
        let mut head = Vec::with_capacity(1024);
        head.push(b'{');
        self.render_fields(0..LAST_PROCESSED_POSITION, &mut head);
        head.extend_from_slice(b",\"LastProcessedTimeUtc\":");
        let mut tail = Vec::with_capacity(1024);
        tail.push(b',');
        self.render_fields(LAST_PROCESSED_POSITION + 1..KEYS.len(), &mut tail);
        tail.push(b'}');
        (head, tail)
    }
}

/// Collects a JSON object into a [`Detection`], remembering the first
/// problem with a value so that the error names the key rather than a column.
struct RecordVisitor<'a> {
    failure: &'a mut Option<ParseError>,
}

impl<'de> Visitor<'de> for RecordVisitor<'_> {
    type Value = Detection;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with the keys of a detection")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Detection, A::Error> {
        let mut detection = Detection::default();
        let mut seen = [false; KEYS.len()];
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let value: Value = map.next_value()?;
            let fail = |failure: ParseError, slot: &mut Option<ParseError>| {
                let message = failure.to_string();
                *slot = Some(failure);
                de::Error::custom(message)
            };
            match KEYS.iter().position(|k| *k == key) {
                Some(i) if seen[i] => {
                    return Err(fail(ParseError::DuplicateKey(key.into_owned()), self.failure));
                }
                Some(i) => seen[i] = true,
                None => return Err(fail(ParseError::UnknownKey(key.into_owned()), self.failure)),
            }
            match detection.set_field(&key, value) {
                Ok(_) => {}
                Err(e) => return Err(fail(ParseError::Field(e), self.failure)),
            }
        }
        Ok(detection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_split_joins_to_the_whole_record() {
        let mut d = Detection {
            alert_title: "a \"quoted\" <title>".into(),
            last_processed_time_utc: Timestamp::parse("2020-09-30T14:11:44.0779765Z").ok(),
            ..Detection::default()
        };
        d.report_id = Some(7);
        let (head, tail) = d.render_split();
        let mut joined = head;
        joined.extend_from_slice(b"\"2020-09-30T14:11:44.0779765Z\"");
        joined.extend_from_slice(&tail);
        assert_eq!(String::from_utf8(joined).unwrap(), String::from_utf8(d.render()).unwrap());
    }

    #[test]
    fn names_the_key_at_fault() {
        let err = Detection::from_json(r#"{"AlertPart":"one"}"#).unwrap_err();
        assert_eq!(err.to_string(), "AlertPart must be a non-negative integer, not \"one\"");
        let err = Detection::from_json(r#"{"Severty":"High"}"#).unwrap_err();
        assert!(err.to_string().starts_with("unknown key \"Severty\""), "{err}");
        let err = Detection::from_json(r#"{"AlertTitle":"a","AlertTitle":"b"}"#).unwrap_err();
        assert_eq!(err.to_string(), "key \"AlertTitle\" appears twice");
        let err = Detection::from_json(r#"{"AlertTime":"noon"}"#).unwrap_err();
        assert!(err.to_string().starts_with("AlertTime must be a UTC time"), "{err}");
        assert!(Detection::from_json("[1]").is_err());
        assert!(Detection::from_json(r#"{"AlertTitle":"a"} trailing"#).is_err());
    }

    #[test]
    fn null_strings_read_as_empty() {
        let d = Detection::from_json(r#"{"Actor":null,"RemediationIsSuccess":null}"#).unwrap();
        assert_eq!(d.actor, "");
        assert_eq!(d.remediation_is_success, None);
    }
}
