//! One detection as one CEF line, laid out as Microsoft's published ArcSight
//! mapping for Defender detections lays it out, so that SIEM content written
//! for Microsoft's own connector reads siemgate's lines unchanged.
//!
//! The header is `CEF:0|Microsoft|Microsoft Defender ATP|2.0|<signature id>|<name>|<severity>|`:
//!
//! - signature id: `IoaDefinitionId` (the detection rule), else `ThreatName`
//!   (antivirus detections have no rule), else `Category`, else `Unknown`;
//! - name: `AlertTitle` (Microsoft maps it to `name`), else `Unknown`;
//! - severity: `Severity` (Microsoft maps it to `deviceSeverity`) on CEF's 0-10
//!   scale, see [`Severity::cef`].
//!
//! Times (`rt`, `end`) are milliseconds since the Unix epoch, the one form
//! every CEF reader accepts; the 100 ns of the API are cut to the millisecond.
//! Booleans (`cn1`, `cn2`) are 1 and 0, as Microsoft's mapping says.
//!
//! Every value is attacker text, so escaping is what keeps a detection from
//! forging a field: in the header `\` and `|` are escaped, in extension
//! values `\` and `=`; CR and LF become `\r` and `\n` in both, so one
//! detection is always one line.

use siemgate_model::Timestamp;

use super::{EncodeError, Fields};

/// What every line starts with: CEF version, vendor, product and mapping version.
const PREFIX: &[u8] = b"CEF:0|Microsoft|Microsoft Defender ATP|2.0|";

/// How a value of the API becomes an extension value.
#[derive(Clone, Copy)]
enum Form {
    /// Written as it is (escaped).
    Text,
    /// An API time, written as milliseconds since the epoch.
    Time,
    /// `true`/`false`, written as 1/0.
    Flag,
}

/// One extension: its CEF key, the API key it comes from, how it is written,
/// and for custom fields the label key that says what the field holds.
struct Extension {
    key: &'static str,
    source: &'static str,
    form: Form,
    label: Option<&'static str>,
}

const fn ext(key: &'static str, source: &'static str, form: Form) -> Extension {
    Extension { key, source, form, label: None }
}

const fn custom(
    key: &'static str,
    label: &'static str,
    source: &'static str,
    f: Form,
) -> Extension {
    Extension { key, source, form: f, label: Some(label) }
}

/// The extensions, in the order they are written.
const EXTENSIONS: [Extension; 22] = [
    ext("externalId", "AlertId", Form::Text),
    ext("rt", "LastProcessedTimeUtc", Form::Time),
    ext("end", "AlertTime", Form::Time),
    ext("cat", "Category", Form::Text),
    ext("sourceServiceName", "Source", Form::Text),
    ext("fileHash", "Sha1", Form::Text),
    ext("fname", "FileName", Form::Text),
    ext("filePath", "FilePath", Form::Text),
    ext("src", "IpAddress", Form::Text),
    ext("request", "Url", Form::Text),
    ext("suser", "UserName", Form::Text),
    ext("sntdom", "UserDomain", Form::Text),
    ext("suid", "LogOnUsers", Form::Text),
    ext("sourceDnsDomain", "MachineDomain", Form::Text),
    ext("shost", "MachineName", Form::Text),
    custom("cs1", "cs1Label", "ThreatName", Form::Text),
    custom("cs4", "cs4Label", "Actor", Form::Text),
    custom("cs5", "cs5Label", "Md5", Form::Text),
    custom("cs6", "cs6Label", "Sha256", Form::Text),
    custom("cn1", "cn1Label", "WasExecutingWhileDetected", Form::Flag),
    custom("cn2", "cn2Label", "RemediationIsSuccess", Form::Flag),
    custom("flexString1", "flexString1Label", "LinkToWDATP", Form::Text),
];

/// A detection's severity, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    /// Empty, absent, or a name the API does not use.
    Unknown,
}

impl Severity {
    /// Reads the API's `Severity` value, ignoring case.
    pub fn from_api(text: &str) -> Severity {
        let known = [
            ("Informational", Severity::Informational),
            ("Low", Severity::Low),
            ("Medium", Severity::Medium),
            ("High", Severity::High),
        ];
        known
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map_or(Severity::Unknown, |(_, severity)| severity)
    }

    /// The header's severity. CEF bands 0-3 as low, 4-6 medium, 7-8 high and
    /// 9-10 very high; each API level takes a value inside its band, with
    /// informational at the bottom of low, and High at 8 rather than 10
    /// because Defender has no level above it to leave room for. A level we
    /// do not know is CEF's own `Unknown` rather than a guessed number.
    pub fn cef(self) -> &'static str {
        match self {
            Severity::Informational => "1",
            Severity::Low => "3",
            Severity::Medium => "5",
            Severity::High => "8",
            Severity::Unknown => "Unknown",
        }
    }
}

/// Appends `json`, one detection, to `out` as one CEF line without a line end.
/// On error `out` is left as it was.
pub fn encode(json: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode_with_severity(json, out).map(drop)
}

/// [`encode`], also handing back the detection's severity for a transport
/// that carries one of its own (syslog's PRI).
pub fn encode_with_severity(json: &[u8], out: &mut Vec<u8>) -> Result<Severity, EncodeError> {
    let fields = Fields::parse(json)?;
    let start = out.len();
    let result = write_line(&fields, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_line(fields: &Fields, out: &mut Vec<u8>) -> Result<Severity, EncodeError> {
    let severity = Severity::from_api(fields.text("Severity")?.as_deref().unwrap_or(""));
    let signature = first_present(fields, &["IoaDefinitionId", "ThreatName", "Category"])?;
    let name = fields.text("AlertTitle")?;

    out.extend_from_slice(PREFIX);
    for value in [signature.as_deref(), name.as_deref(), Some(severity.cef())] {
        escape_header(value.unwrap_or("Unknown"), out);
        out.push(b'|');
    }

    let mut first = true;
    for extension in &EXTENSIONS {
        let Some(value) = extension_value(fields, extension)? else {
            continue;
        };
        if !first {
            out.push(b' ');
        }
        first = false;
        write_pair(extension.key, &value, out);
        if let Some(label) = extension.label {
            out.push(b' ');
            write_pair(label, extension.source, out);
        }
    }
    Ok(severity)
}

/// The text of the first of `keys` that has one.
fn first_present(fields: &Fields, keys: &[&'static str]) -> Result<Option<String>, EncodeError> {
    for key in keys {
        if let Some(text) = fields.text(key)? {
            return Ok(Some(text));
        }
    }
    Ok(None)
}

/// The extension's value as written, before escaping; `None` to leave it out.
fn extension_value(fields: &Fields, extension: &Extension) -> Result<Option<String>, EncodeError> {
    let source = extension.source;
    match extension.form {
        Form::Text => fields.text(source),
        Form::Time => match fields.text(source)? {
            None => Ok(None),
            Some(text) => match Timestamp::parse(&text) {
                Ok(time) => Ok(Some(time.unix_ticks().div_euclid(10_000).to_string())),
                Err(e) => Err(fields.wrong(source, format!("{text:?} is not a time: {e}"))),
            },
        },
        Form::Flag => match fields.text(source)?.as_deref() {
            None => Ok(None),
            Some(t) if t.eq_ignore_ascii_case("true") => Ok(Some("1".into())),
            Some(t) if t.eq_ignore_ascii_case("false") => Ok(Some("0".into())),
            Some(t) => Err(fields.wrong(source, format!("is {t:?}, not true, false or null"))),
        },
    }
}

fn write_pair(key: &str, value: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    escape_extension(value, out);
}

/// Escapes a header field. CEF defines no line breaks in the header; they
/// are written as in extensions so that the line cannot be split.
fn escape_header(text: &str, out: &mut Vec<u8>) {
    escape(text, b'|', out);
}

fn escape_extension(text: &str, out: &mut Vec<u8>) {
    escape(text, b'=', out);
}

/// Writes `text` with `\`, `special`, CR and LF escaped. Working on bytes is
/// safe for UTF-8: no byte of a multi-byte character is ASCII.
fn escape(text: &str, special: u8, out: &mut Vec<u8>) {
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ if b == special => out.extend_from_slice(&[b'\\', special]),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::{Value, json};

    use super::*;
    use crate::encode::SAMPLE;

    fn line(json: &str) -> String {
        let mut out = Vec::new();
        encode(json.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A detection with attacker text in every field the line carries.
    fn hostile() -> Value {
        let evil = "a=b | c\\d\re\nf act=blocked cs1=x |CEF:0|Ünïcødé 攻击者\\";
        let mut record = serde_json::from_str::<Value>(SAMPLE).unwrap();
        for extension in &EXTENSIONS {
            record[extension.source] = json!(format!("{} {evil}", extension.source));
        }
        record["IoaDefinitionId"] = json!(format!("rule|{evil}"));
        record["AlertTitle"] = json!(format!("title {evil}"));
        record["Severity"] = json!("High|9");
        record["LastProcessedTimeUtc"] = json!("2026-02-03T04:05:06.7891234Z");
        record["AlertTime"] = json!("1969-12-31T23:59:59.9999Z");
        record["WasExecutingWhileDetected"] = json!(true);
        record["RemediationIsSuccess"] = json!(false);
        record
    }

    #[test]
    fn the_sample_detection_reads_as_microsofts_mapping_writes_it() {
        let expected = concat!(
            "CEF:0|Microsoft|Microsoft Defender ATP|2.0|b20af1d2-5990-4672-87f1-acc2a8ff7725",
            "|Suspicious File Activity|8|",
            "externalId=da637370718981685665_16349121 rt=1601475104077 end=1601474960357",
            " cat=Malware sourceServiceName=EDR fileHash=aabbccddee1122334455aabbccddee1122334455",
            " fname=cmdParent.exe filePath=C:\\\\WINDOWS\\\\SysWOW64\\\\boo3\\\\qwerty",
            " sourceDnsDomain=domain.com shost=mymachine1",
            " cs5=854b85cbff2752fcb88606bca76f83c6 cs5Label=Md5",
            " flexString1=https://securitycenter.windows.com/alert/da637370718981685665_16349121",
            " flexString1Label=LinkToWDATP",
        );
        assert_eq!(line(SAMPLE), expected);
    }

    #[test]
    fn hostile_text_is_escaped_and_forges_nothing() {
        let expected = concat!(
            r"CEF:0|Microsoft|Microsoft Defender ATP|2.0|",
            r"rule\|a=b \| c\\d\re\nf act=blocked cs1=x \|CEF:0\|Ünïcødé 攻击者\\|",
            r"title a=b \| c\\d\re\nf act=blocked cs1=x \|CEF:0\|Ünïcødé 攻击者\\|Unknown|",
            r"externalId=AlertId a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" rt=1770091506789 end=-1",
            r" cat=Category a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" sourceServiceName=Source a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" fileHash=Sha1 a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" fname=FileName a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" filePath=FilePath a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" src=IpAddress a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" request=Url a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" suser=UserName a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" sntdom=UserDomain a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" suid=LogOnUsers a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" sourceDnsDomain=MachineDomain",
            r" a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" shost=MachineName a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" cs1=ThreatName a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" cs1Label=ThreatName",
            r" cs4=Actor a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\ cs4Label=Actor",
            r" cs5=Md5 a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\ cs5Label=Md5",
            r" cs6=Sha256 a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" cs6Label=Sha256",
            r" cn1=1 cn1Label=WasExecutingWhileDetected cn2=0 cn2Label=RemediationIsSuccess",
            r" flexString1=LinkToWDATP a\=b | c\\d\re\nf act\=blocked cs1\=x |CEF:0|Ünïcødé 攻击者\\",
            r" flexString1Label=LinkToWDATP",
        );
        assert_eq!(line(&hostile().to_string()), expected);
    }

    #[test]
    fn an_independent_parser_gets_every_value_back() {
        for record in [serde_json::from_str::<Value>(SAMPLE).unwrap(), hostile()] {
            let parsed = parse(&line(&record.to_string()));
            let rule = record["IoaDefinitionId"].as_str().unwrap();
            assert_eq!(parsed.header[..4], ["Microsoft", "Microsoft Defender ATP", "2.0", rule]);
            assert_eq!(parsed.header[4], record["AlertTitle"].as_str().unwrap());

            let mut keys = BTreeSet::new();
            for extension in &EXTENSIONS {
                let got = parsed.extensions.get(extension.key).map(String::as_str);
                let want = match (&record[extension.source], extension.form) {
                    (Value::String(s), Form::Text) if !s.is_empty() => Some(s.clone()),
                    (Value::String(s), Form::Time) => Some(ms(s)),
                    (Value::Bool(b), Form::Flag) => Some(u8::from(*b).to_string()),
                    _ => None,
                };
                assert_eq!(got, want.as_deref(), "{}", extension.key);
                if want.is_some() {
                    keys.insert(extension.key);
                    if let Some(label) = extension.label {
                        assert_eq!(parsed.extensions[label], extension.source);
                        keys.insert(label);
                    }
                }
            }
            assert!(parsed.extensions.keys().map(String::as_str).eq(keys), "no other keys");
        }
    }

    #[test]
    fn severity_maps_onto_the_cef_scale() {
        for (api, cef) in [
            ("Informational", "1"),
            ("Low", "3"),
            ("medium", "5"),
            ("High", "8"),
            ("", "Unknown"),
            ("Severe", "Unknown"),
        ] {
            let record = json!({"Severity": api, "AlertTitle": "t", "Category": "c"});
            let header = parse(&line(&record.to_string())).header;
            assert_eq!(header[5], cef, "{api}");
        }
    }

    #[test]
    fn null_empty_and_unknown_keys_are_left_out() {
        let record = json!({
            "AlertTitle": null, "Severity": null, "Sha1": "", "FileName": 7, "Actor": true,
            "RemediationIsSuccess": null, "Extra": {"nested": [1, 2]}, "AlertTime": null,
        });
        assert_eq!(
            line(&record.to_string()),
            "CEF:0|Microsoft|Microsoft Defender ATP|2.0|Unknown|Unknown|Unknown|\
             fname=7 cs4=true cs4Label=Actor"
        );
    }

    #[test]
    fn a_value_that_cannot_be_written_names_its_detection_and_field() {
        for (record, needle) in [
            (json!({"FullId": "a:b", "AlertTime": "yesterday"}), "detection a:b: AlertTime"),
            (json!({"FullId": "a:b", "Md5": ["x"]}), "detection a:b: Md5 is an array"),
            (json!({"RemediationIsSuccess": "maybe"}), "without a FullId: RemediationIsSuccess"),
        ] {
            let mut out = b"kept".to_vec();
            let err = encode(record.to_string().as_bytes(), &mut out).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
            assert_eq!(out, b"kept");
        }
        let err = encode(b"[1]", &mut Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a detection is not a JSON object: found an array, where a single value belongs"
        );
    }

    fn ms(time: &str) -> String {
        let ticks = Timestamp::parse(time).unwrap().unix_ticks();
        ticks.div_euclid(10_000).to_string()
    }

    /// A CEF line read back: the seven header fields after `CEF:0` (version
    /// dropped) and the extensions by key.
    struct Parsed {
        header: Vec<String>,
        extensions: BTreeMap<String, String>,
    }

    /// Reads a line as a CEF consumer does, written from the CEF spec alone:
    /// header fields end at an unescaped `|`; in the extension, a key is the
    /// word before an unescaped `=`, and its value runs to the space before
    /// the next key.
    fn parse(line: &str) -> Parsed {
        assert!(!line.contains(['\r', '\n']), "a raw line break: {line:?}");
        let rest = line.strip_prefix("CEF:0|").expect("starts with CEF:0|");
        let mut header = Vec::new();
        let mut chars = rest.chars();
        let mut field = String::new();
        while header.len() < 6 {
            match chars.next().expect("seven header fields") {
                '\\' => field.push(unescape(chars.next().expect("an escaped character"))),
                '|' => header.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        Parsed { header, extensions: parse_extensions(chars.as_str()) }
    }

    fn parse_extensions(text: &str) -> BTreeMap<String, String> {
        // Split at unescaped `=`: each piece but the first and last is
        // "<value of the previous key> <next key>".
        let mut pieces = vec![String::new()];
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let escaped = chars.next().expect("an escaped character");
                    assert!("\\=rn".contains(escaped), "stray escape \\{escaped}");
                    pieces.last_mut().unwrap().push(unescape(escaped));
                }
                '=' => pieces.push(String::new()),
                c => pieces.last_mut().unwrap().push(c),
            }
        }
        let mut map = BTreeMap::new();
        let mut key = pieces.remove(0);
        let last = pieces.pop();
        for piece in pieces {
            let (value, next) = piece.rsplit_once(' ').expect("a key after each value");
            assert!(map.insert(std::mem::replace(&mut key, next.into()), value.into()).is_none());
        }
        if let Some(value) = last {
            assert!(map.insert(key, value).is_none());
        }
        map
    }

    fn unescape(c: char) -> char {
        match c {
            'r' => '\r',
            'n' => '\n',
            c => c,
        }
    }
}
