//! Turning the API's JSON records into what a sink writes.
//!
//! Each encoder reads one detection as the server sent it, tolerating keys it
//! does not know, and writes one line. A value it cannot represent is an
//! [`EncodeError`] naming the detection and the field, so an operator can find
//! the record the server got wrong.

pub mod cef;
pub mod csv;

use serde_json::{Map, Value};

/// A detection that an encoder could not turn into a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("a detection is not a JSON object: {0}")]
    NotAnObject(String),
    #[error("detection {full_id}: {field} {problem}")]
    Field { full_id: String, field: &'static str, problem: String },
}

/// One detection's keys and values, as parsed from its JSON object.
pub(crate) struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    pub(crate) fn parse(json: &[u8]) -> Result<Fields, EncodeError> {
        match serde_json::from_slice::<Value>(json) {
            Ok(Value::Object(map)) => Ok(Fields { map }),
            Ok(other) => Err(EncodeError::NotAnObject(format!("found {}", kind(&other)))),
            Err(e) => Err(EncodeError::NotAnObject(e.to_string())),
        }
    }

    /// The value under `key`; `None` when it is absent or `null`.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The text of a scalar value: a string as it is, a number or boolean as
    /// its JSON text. `None` when absent, `null` or empty.
    pub(crate) fn text(&self, key: &'static str) -> Result<Option<String>, EncodeError> {
        let text = match self.get(key) {
            None => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(other) => return Err(self.wrong(key, format!("is {}", kind(other)))),
        };
        Ok(Some(text).filter(|t| !t.is_empty()))
    }

    /// An error about `field` of this detection.
    pub(crate) fn wrong(&self, field: &'static str, problem: String) -> EncodeError {
        let full_id = match self.map.get("FullId") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            _ => "without a FullId".to_string(),
        };
        EncodeError::Field { full_id, field, problem }
    }
}

/// How an error message names a JSON value's type.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array, where a single value belongs",
        Value::Object(_) => "an object, where a single value belongs",
    }
}

/// The sample detection of Microsoft's SIEM API page, byte for byte.
#[cfg(test)]
pub(crate) const SAMPLE: &str = r#"{
        "AlertTime": "2020-09-30T14:09:20.35743Z",
        "ComputerDnsName": "mymachine1.domain.com",
        "AlertTitle": "Suspicious File Activity",
        "Category": "Malware",
        "Severity": "High",
        "AlertId": "da637370718981685665_16349121",
        "Actor": "",
        "LinkToWDATP": "https://securitycenter.windows.com/alert/da637370718981685665_16349121",
        "IocName": "",
        "IocValue": "",
        "CreatorIocName": "",
        "CreatorIocValue": "",
        "Sha1": "aabbccddee1122334455aabbccddee1122334455",
        "FileName": "cmdParent.exe",
        "FilePath": "C:\\WINDOWS\\SysWOW64\\boo3\\qwerty",
        "IpAddress": "",
        "Url": "",
        "IoaDefinitionId": "b20af1d2-5990-4672-87f1-acc2a8ff7725",
        "UserName": "",
        "AlertPart": 0,
        "FullId": "da637370718981685665_16349121:R4xEdgAvDb2LQl3BgHoA3NYqKmRSiIAG7dpxAJCYZhY=",
        "LastProcessedTimeUtc": "2020-09-30T14:11:44.0779765Z",
        "ThreatCategory": "",
        "ThreatFamily": "",
        "ThreatName": "",
        "RemediationAction": "",
        "RemediationIsSuccess": null,
        "Source": "EDR",
        "Md5": "854b85cbff2752fcb88606bca76f83c6",
        "Sha256": "",
        "WasExecutingWhileDetected": null,
        "UserDomain": "",
        "LogOnUsers": "",
        "MachineDomain": "domain.com",
        "MachineName": "mymachine1",
        "InternalIPv4List": "",
        "InternalIPv6List": "",
        "FileHash": "aabbccddee1122334455aabbccddee1122334455",
        "DeviceID": "deadbeef000040830ee54503926f556dcaf82bb0",
        "MachineGroup": "",
        "Description": "Test Alert",
        "DeviceCreatedMachineTags": "",
        "CloudCreatedMachineTags": "",
        "CommandLine": "",
        "IncidentLinkToWDATP": "https://securitycenter.windows.com/incidents/byalert?alertId=da637370718981685665_16349121&source=SIEM",
        "ReportID": 1053729833,
        "LinkToMTP": "https://security.microsoft.com/alert/da637370718981685665_16349121",
        "IncidentLinkToMTP": "https://security.microsoft.com/incidents/byalert?alertId=da637370718981685665_16349121&source=SIEM",
        "ExternalId": "31DD0A845DDA4059FDEDE031014645350AECABD3",
        "IocUniqueId": "R4xEdgAvDb2LQl3BgHoA3NYqKmRSiIAG7dpxAJCYZhY="
}"#;
