//! Detections as CSV (RFC 4180): a header of the record's 50 keys in their
//! contract order, then one row per detection, so that a spreadsheet or a
//! loader mapping columns by position sees the same columns from every pull.
//!
//! Strings are written as they are, `null` and absent keys as empty fields,
//! numbers and booleans as their JSON text. A field holding `,`, `"`, CR or
//! LF is quoted with `"` doubled, so no value can start a new field or row;
//! lines end with CRLF, as the RFC says.

use serde_json::Value;
use siemgate_model::KEYS;

use super::{EncodeError, Fields, kind};

/// Appends the header row: the 50 keys, in order.
pub fn header(out: &mut Vec<u8>) {
    for (i, key) in KEYS.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(key.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `json`, one detection, as one row ending in CRLF; keys outside
/// the 50 are ignored. On error `out` is left as it was.
pub fn row(json: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let fields = Fields::parse(json)?;
    let start = out.len();
    for (i, key) in KEYS.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match fields.get(key) {
            None => {}
            Some(Value::String(s)) => write_field(s, out),
            Some(Value::Number(n)) => out.extend_from_slice(n.to_string().as_bytes()),
            Some(Value::Bool(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Some(other) => {
                out.truncate(start);
                return Err(fields.wrong(key, format!("is {}", kind(other))));
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

fn write_field(text: &str, out: &mut Vec<u8>) {
    if !text.contains([',', '"', '\r', '\n']) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    out.push(b'"');
    for &b in text.as_bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use serde_json::json;

    use super::*;
    use crate::encode::SAMPLE;

    fn hostile() -> Value {
        let mut record = serde_json::from_str::<Value>(SAMPLE).unwrap();
        record["AlertTitle"] = json!("a,b \"quoted\"\r\nnext,row,=cmd|' /C calc'!A0");
        record["FilePath"] = json!("C:\\Temp\\\"x\",\n");
        record["UserName"] = json!("Ünïcødé 攻击者\r");
        record["Description"] = json!("\"");
        record["Actor"] = json!(",");
        record["Unknown"] = json!({"not": "written"});
        record["WasExecutingWhileDetected"] = json!(true);
        record["RemediationIsSuccess"] = json!(false);
        record
    }

    fn rows(records: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        header(&mut out);
        for record in records {
            row(record.to_string().as_bytes(), &mut out).unwrap();
        }
        out
    }

    /// What a detection's fields should read back as.
    fn expected(record: &Value) -> Vec<String> {
        KEYS.iter()
            .map(|key| match &record[*key] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    }

    #[test]
    fn the_header_is_the_fifty_keys_in_order() {
        let mut out = Vec::new();
        header(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("AlertTime,ComputerDnsName,AlertTitle,Category,Severity,"));
        assert!(text.ends_with(",ExternalId,IocUniqueId\r\n"));
        assert_eq!(text.trim_end().split(',').collect::<Vec<_>>(), KEYS);
    }

    #[test]
    fn hostile_values_are_quoted() {
        let mut out = Vec::new();
        let record = json!({
            "AlertTitle": "a,b \"q\"\r\nx", "Severity": null, "AlertPart": 3,
            "RemediationIsSuccess": true, "Actor": "plain", "UserName": "Ünï",
        });
        row(record.to_string().as_bytes(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let fields: Vec<&str> = text.split(',').collect();
        assert_eq!(fields[2..5], ["\"a", "b \"\"q\"\"\r\nx\"", ""]);
        assert_eq!(fields[7], "plain");
        assert!(text.contains(",Ünï,3,"), "{text}");
        assert!(text.contains(",,true,,"), "{text}");
        assert!(text.ends_with(",,\r\n"), "{text}");
    }

    #[test]
    fn pythons_csv_module_reads_every_value_back() {
        let records = [serde_json::from_str::<Value>(SAMPLE).unwrap(), hostile()];
        let script = "import csv, io, json, sys\n\
                      data = sys.stdin.buffer.read().decode('utf-8')\n\
                      rows = list(csv.reader(io.StringIO(data, newline=''), strict=True))\n\
                      print(json.dumps(rows))";
        let mut python = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (install python3)");
        python.stdin.take().unwrap().write_all(&rows(&records)).unwrap();
        let output = python.wait_with_output().unwrap();
        assert!(output.status.success());

        let read: Vec<Vec<String>> = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(read.len(), 3);
        assert_eq!(read[0], KEYS);
        assert_eq!(read[1], expected(&records[0]));
        assert_eq!(read[2], expected(&records[1]));
    }

    #[test]
    fn a_nested_value_in_a_column_is_refused() {
        let mut out = b"kept".to_vec();
        let record = json!({"FullId": "a:b", "Sha1": {"x": 1}});
        let err = row(record.to_string().as_bytes(), &mut out).unwrap_err();
        assert_eq!(
            err.to_string(),
            "detection a:b: Sha1 is an object, where a single value belongs"
        );
        assert_eq!(out, b"kept");
    }
}
