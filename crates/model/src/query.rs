//! The query parameters of `GET /api/alerts`, read into one typed value.
//!
//! Names are matched case-insensitively, as ASP.NET binds them, and unknown
//! names are ignored. Every refusal names the parameter, the value and what
//! would have been accepted.

use std::fmt;

use crate::duration::Span;
use crate::prepare::list_items;
use crate::time::{TimeError, Timestamp};

/// How far back a request with no window reaches.
pub const DEFAULT_WINDOW: Span = Span::from_hours(2);

/// A half-open range `[since, until)` over `LastProcessedTimeUtc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: Timestamp,
    pub until: Timestamp,
}

impl Window {
    /// True when the window holds no instant at all.
    pub fn is_empty(&self) -> bool {
        self.since >= self.until
    }
}

/// A request for detections: a window, an optional newest-N limit and filters.
/// Filter values are lower-cased, ready for case-insensitive matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertsQuery {
    pub window: Window,
    /// Only the newest N of the window, still delivered oldest first.
    pub limit: Option<u32>,
    /// Any of these machine groups; empty means every group.
    pub machine_groups: Vec<String>,
    /// The device-created tag a detection's device must carry.
    pub device_tag: Option<String>,
    /// Any of these cloud-created tags; empty means no tag filter.
    pub cloud_tags: Vec<String>,
}

/// A parameter that does not parse or contradicts another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub parameter: &'static str,
    pub value: String,
    pub problem: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}: {}", self.parameter, self.value, self.problem)
    }
}

impl std::error::Error for QueryError {}

fn error(parameter: &'static str, value: &str, problem: impl Into<String>) -> QueryError {
    QueryError { parameter, value: value.to_owned(), problem: problem.into() }
}

const TIME_FORMS: &str = "expected an ISO 8601 UTC time such as 2020-09-30T14:11:44.0779765Z, \
     2016-09-12T00:00:00.000 or 2016-09-12 00:00:00";

/// The parameters as they were given, before they are checked against each other.
#[derive(Debug, Default)]
struct Raw {
    since: Option<String>,
    until: Option<String>,
    ago: Option<String>,
    limit: Option<String>,
    device_tag: Option<String>,
    machine_groups: Vec<String>,
    cloud_tags: Vec<String>,
}

fn set_once(
    slot: &mut Option<String>,
    parameter: &'static str,
    value: &str,
) -> Result<(), QueryError> {
    if value.is_empty() {
        return Ok(());
    }
    if slot.is_some() {
        return Err(error(parameter, value, "given more than once; give it once"));
    }
    *slot = Some(value.to_owned());
    Ok(())
}

impl AlertsQuery {
    /// The last two hours before `now`, unfiltered: what a bare request asks for.
    pub fn recent(now: Timestamp) -> AlertsQuery {
        AlertsQuery {
            window: Window { since: now.add_ticks(-DEFAULT_WINDOW.ticks()), until: now },
            limit: None,
            machine_groups: Vec::new(),
            device_tag: None,
            cloud_tags: Vec::new(),
        }
    }

    /// Reads decoded `(name, value)` pairs from a query string.
    ///
    /// The window is `[sinceTimeUtc, untilTimeUtc)`; a missing `untilTimeUtc`
    /// is `now`, a missing `sinceTimeUtc` two hours before the end. `ago`
    /// stands alone: `[now - ago, now)`. A window that starts after an
    /// explicit end is refused; one that starts after a defaulted end (a
    /// client clock running ahead) is merely empty.
    pub fn from_pairs<K, V>(
        pairs: impl IntoIterator<Item = (K, V)>,
        now: Timestamp,
    ) -> Result<AlertsQuery, QueryError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut raw = Raw::default();
        for (name, value) in pairs {
            let value = value.as_ref().trim();
            match name.as_ref().to_ascii_lowercase().as_str() {
                "sincetimeutc" => set_once(&mut raw.since, "sinceTimeUtc", value)?,
                "untiltimeutc" => set_once(&mut raw.until, "untilTimeUtc", value)?,
                "ago" => set_once(&mut raw.ago, "ago", value)?,
                "limit" => set_once(&mut raw.limit, "limit", value)?,
                "devicecreatedmachinetags" => {
                    set_once(&mut raw.device_tag, "DeviceCreatedMachineTags", value)?
                }
                "machinegroups" if !value.is_empty() => {
                    raw.machine_groups.push(value.to_lowercase())
                }
                "cloudcreatedmachinetags" => {
                    raw.cloud_tags.extend(list_items(value).map(str::to_lowercase))
                }
                _ => {}
            }
        }
        Self::from_raw(raw, now)
    }

    fn from_raw(raw: Raw, now: Timestamp) -> Result<AlertsQuery, QueryError> {
        let time = |parameter: &'static str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| {
                    Timestamp::parse(v).map_err(|e| match e {
                        TimeError::Syntax => error(parameter, v, TIME_FORMS),
                        other => error(parameter, v, other.to_string()),
                    })
                })
                .transpose()
        };
        let since = time("sinceTimeUtc", &raw.since)?;
        let until = time("untilTimeUtc", &raw.until)?;

        let window = match (&raw.ago, since, until) {
            (Some(ago), None, None) => {
                let span = Span::parse(ago).map_err(|e| error("ago", ago, e.to_string()))?;
                Window { since: now.add_ticks(-span.ticks()), until: now }
            }
            (Some(ago), _, _) => {
                return Err(error(
                    "ago",
                    ago,
                    "cannot be combined with sinceTimeUtc or untilTimeUtc; give either ago or a window",
                ));
            }
            (None, since, until) => {
                let end = until.unwrap_or(now);
                let start = since.unwrap_or(end.add_ticks(-DEFAULT_WINDOW.ticks()));
                if let (Some(s), Some(u)) = (since, until)
                    && s > u
                {
                    return Err(error(
                        "sinceTimeUtc",
                        raw.since.as_deref().unwrap_or_default(),
                        format!(
                            "is after untilTimeUtc ({u}); the window is [sinceTimeUtc, untilTimeUtc)"
                        ),
                    ));
                }
                Window { since: start, until: end }
            }
        };

        let limit = raw
            .limit
            .as_deref()
            .map(|v| match v.parse::<u32>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(error(
                    "limit",
                    v,
                    format!("expected a whole number from 1 to {}", u32::MAX),
                )),
            })
            .transpose()?;

        let device_tag = match raw.device_tag {
            Some(tag) if tag.contains([',', ';']) => {
                return Err(error(
                    "DeviceCreatedMachineTags",
                    &tag,
                    "takes a single tag; use CloudCreatedMachineTags to match any of several",
                ));
            }
            other => other.map(|t| t.to_lowercase()),
        };

        Ok(AlertsQuery {
            window,
            limit,
            machine_groups: raw.machine_groups,
            device_tag,
            cloud_tags: raw.cloud_tags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse("2024-05-01T12:00:00Z").unwrap()
    }

    fn query(pairs: &[(&str, &str)]) -> Result<AlertsQuery, QueryError> {
        AlertsQuery::from_pairs(pairs.iter().copied(), now())
    }

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn a_bare_request_is_the_last_two_hours() {
        let q = query(&[]).unwrap();
        assert_eq!(q, AlertsQuery::recent(now()));
        assert_eq!(q.window.since, t("2024-05-01T10:00:00Z"));
    }

    #[test]
    fn reads_the_reference_pages_examples() {
        let q = query(&[("limit", "20"), ("sinceTimeUtc", "2016-09-12T00:00:00.000")]).unwrap();
        assert_eq!(q.limit, Some(20));
        assert_eq!(q.window, Window { since: t("2016-09-12T00:00:00Z"), until: now() });
        let q =
            query(&[("machinegroups", "UKMachines"), ("MACHINEGROUPS", "FranceMachines")]).unwrap();
        assert_eq!(q.machine_groups, ["ukmachines", "francemachines"]);
        let q = query(&[("ago", "PT10M")]).unwrap();
        assert_eq!(q.window.since, t("2024-05-01T11:50:00Z"));
    }

    #[test]
    fn filters_and_defaults() {
        let q = query(&[
            ("DeviceCreatedMachineTags", "VIP"),
            ("cloudcreatedmachinetags", "Prod"),
            ("CloudCreatedMachineTags", "Test;Dev"),
            ("untilTimeUtc", "2024-05-01T06:00:00Z"),
            ("unknown", "ignored"),
        ])
        .unwrap();
        assert_eq!(q.device_tag.as_deref(), Some("vip"));
        assert_eq!(q.cloud_tags, ["prod", "test", "dev"]);
        assert_eq!(q.window.since, t("2024-05-01T04:00:00Z"), "two hours before the end");
        let ahead = query(&[("sinceTimeUtc", "2024-05-01T13:00:00Z")]).unwrap();
        assert!(ahead.window.is_empty(), "a clock running ahead gets an empty window");
    }

    #[test]
    fn each_refusal_names_parameter_value_and_remedy() {
        let cases = [
            (
                vec![("sinceTimeUtc", "yesterday")],
                "sinceTimeUtc \"yesterday\": expected an ISO 8601 UTC time",
            ),
            (
                vec![("untilTimeUtc", "2024-13-01")],
                "untilTimeUtc \"2024-13-01\": month is out of range",
            ),
            (vec![("ago", "10 minutes")], "ago \"10 minutes\": expected an ISO 8601 duration"),
            (vec![("ago", "P1M")], "ago \"P1M\": years and months have no fixed length"),
            (
                vec![("ago", "PT1H"), ("sinceTimeUtc", "2024-05-01")],
                "ago \"PT1H\": cannot be combined",
            ),
            (vec![("limit", "0")], "limit \"0\": expected a whole number from 1"),
            (vec![("limit", "-5")], "limit \"-5\": expected a whole number"),
            (vec![("limit", "ten")], "limit \"ten\""),
            (vec![("limit", "1"), ("Limit", "2")], "limit \"2\": given more than once"),
            (
                vec![
                    ("sinceTimeUtc", "2024-05-01T11:00:00Z"),
                    ("untilTimeUtc", "2024-05-01T10:00:00Z"),
                ],
                "sinceTimeUtc \"2024-05-01T11:00:00Z\": is after untilTimeUtc",
            ),
            (vec![("DeviceCreatedMachineTags", "a,b")], "takes a single tag"),
        ];
        for (pairs, message) in cases {
            let err = query(&pairs).unwrap_err().to_string();
            assert!(err.starts_with(message) || err.contains(message), "{err:?} lacks {message:?}");
        }
    }
}
