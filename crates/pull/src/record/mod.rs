//! The records of a response body, found while the body is still arriving.
//!
//! The API answers with one JSON array that can run to hundreds of megabytes,
//! so it is never held whole: [`Splitter`] keeps only the bytes of records not
//! yet handed on. Each record is checked as real JSON and keeps its own bytes,
//! so what a sink writes is exactly what the server sent. A body that is not
//! an array of objects, or ends before its `]`, is an error: the window is
//! fetched again, never delivered in part.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use siemgate_model::Timestamp;

mod flat;

/// One detection as the server sent it.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// The JSON object, byte for byte.
    pub json: &'a [u8],
    /// The detection's unique key.
    pub full_id: Cow<'a, str>,
    /// When the server processed it: the axis windows are cut along.
    pub processed: Timestamp,
}

/// A body that cannot be read as the API's array of detections.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the body is not a JSON array of detections: {problem} at byte {at}")]
    Syntax { problem: &'static str, at: u64 },
    #[error("detection {number} of the body: {problem}")]
    Record { number: u64, problem: String },
    #[error("the body ended after {records} detections, before the array's closing `]`")]
    Truncated { records: u64 },
}

/// How much of a record the fast path waits for before leaving it to the
/// general scan.
const FAST_PATH_LIMIT: usize = 64 * 1024;

/// Where the splitter is in the body's grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the opening `[`.
    Start,
    /// After `[`: a record or `]`.
    Open,
    /// After a record: `,` or `]`.
    AfterRecord,
    /// After `,`: a record.
    AfterComma,
    /// Inside a record; `depth` counts open braces and brackets.
    InRecord { depth: u32, in_string: bool, escaped: bool },
    /// After the closing `]`: only whitespace may follow.
    End,
}

/// A complete record in the buffer, with its two values located when the
/// fast path read it.
#[derive(Debug)]
struct Found {
    range: Range<usize>,
    fields: Option<flat::Fields>,
}

/// Splits a JSON array arriving in pieces into its objects.
#[derive(Debug)]
pub struct Splitter {
    buf: Vec<u8>,
    /// Offset in the body of `buf[0]`.
    base: u64,
    /// Bytes of `buf` already scanned.
    scanned: usize,
    /// Bytes of `buf` already handed out by [`Splitter::take`].
    handed: usize,
    /// Where the record being scanned starts in `buf`.
    record_start: usize,
    /// Complete records scanned but not yet handed out.
    complete: Vec<Found>,
    state: State,
    records: u64,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter::new()
    }
}

impl Splitter {
    pub fn new() -> Splitter {
        Splitter {
            buf: Vec::with_capacity(256 * 1024),
            base: 0,
            scanned: 0,
            handed: 0,
            record_start: 0,
            complete: Vec::new(),
            state: State::Start,
            records: 0,
        }
    }

    /// Records handed out so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Adds the next piece of the body.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), RecordError> {
        self.compact();
        self.buf.extend_from_slice(chunk);
        self.scan()
    }

    /// The records completed by the pieces pushed so far, each checked.
    pub fn take(&mut self) -> Result<Vec<Record<'_>>, RecordError> {
        let found = std::mem::take(&mut self.complete);
        if let Some(last) = found.last() {
            self.handed = last.range.end;
        }
        let first = self.records;
        self.records += found.len() as u64;
        let buf = &self.buf;
        found
            .into_iter()
            .enumerate()
            .map(|(i, f)| read_record(&buf[f.range], f.fields, first + i as u64 + 1))
            .collect()
    }

    /// Checks that the body ended where an array may end.
    pub fn finish(&self) -> Result<(), RecordError> {
        match self.state {
            State::End => Ok(()),
            _ => Err(RecordError::Truncated { records: self.records }),
        }
    }

    /// Drops the bytes of records already handed out.
    fn compact(&mut self) {
        if self.handed == 0 {
            return;
        }
        let handed = self.handed;
        self.buf.drain(..handed);
        self.base += handed as u64;
        self.scanned -= handed;
        self.record_start = self.record_start.saturating_sub(handed);
        for found in &mut self.complete {
            found.range = found.range.start - handed..found.range.end - handed;
        }
        self.handed = 0;
    }

    fn syntax(&self, problem: &'static str, at: usize) -> RecordError {
        RecordError::Syntax { problem, at: self.base + at as u64 }
    }

    fn scan(&mut self) -> Result<(), RecordError> {
        let mut i = self.scanned;
        while i < self.buf.len() {
            let b = self.buf[i];
            match self.state {
                State::InRecord { depth, in_string, escaped } => {
                    i = self.scan_record(i, depth, in_string, escaped)?;
                    continue;
                }
                _ if b.is_ascii_whitespace() => {}
                // A byte-order mark, which some servers put before the body.
                State::Start if self.base + (i as u64) < 3 && matches!(b, 0xEF | 0xBB | 0xBF) => {}
                State::Start if b == b'[' => self.state = State::Open,
                State::Start => return Err(self.syntax("expected `[`", i)),
                State::Open | State::AfterRecord if b == b']' => self.state = State::End,
                State::AfterRecord if b == b',' => self.state = State::AfterComma,
                State::AfterRecord => return Err(self.syntax("expected `,` or `]`", i)),
                State::Open | State::AfterComma if b == b'{' => match flat::scan(&self.buf[i..]) {
                    flat::Scan::Record { len, fields } => {
                        self.complete.push(Found { range: i..i + len, fields: Some(fields) });
                        self.state = State::AfterRecord;
                        i += len;
                        continue;
                    }
                    // Read again from its `{` when more has arrived, unless it
                    // is already long: then the general scan takes it, so that
                    // a huge record is not read over and over.
                    flat::Scan::Incomplete if self.buf.len() - i < FAST_PATH_LIMIT => break,
                    flat::Scan::Incomplete | flat::Scan::Other => {
                        self.record_start = i;
                        self.state = State::InRecord { depth: 1, in_string: false, escaped: false };
                    }
                },
                State::Open | State::AfterComma => {
                    return Err(self.syntax("expected a detection (a JSON object)", i));
                }
                State::End => return Err(self.syntax("data after the array's closing `]`", i)),
            }
            i += 1;
        }
        self.scanned = i;
        Ok(())
    }

    /// Scans inside a record from `i` until it ends or the buffer does, and
    /// returns where scanning stopped.
    fn scan_record(
        &mut self,
        mut i: usize,
        mut depth: u32,
        mut in_string: bool,
        mut escaped: bool,
    ) -> Result<usize, RecordError> {
        let end = self.buf.len();
        while i < end {
            if escaped {
                escaped = false;
                i += 1;
                continue;
            }
            if in_string {
                // Strings are short (tens of bytes), where a plain loop
                // beats a vectorised search's setup.
                while i < end && !matches!(self.buf[i], b'"' | b'\\') {
                    i += 1;
                }
                if i < end {
                    if self.buf[i] == b'"' {
                        in_string = false;
                    } else {
                        escaped = true;
                    }
                    i += 1;
                }
                continue;
            }
            match self.buf[i] {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        let range = self.record_start..i + 1;
                        self.complete.push(Found { range, fields: None });
                        self.state = State::AfterRecord;
                        return Ok(i + 1);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        self.state = State::InRecord { depth, in_string, escaped };
        Ok(i)
    }
}

/// The two fields every record must carry; the rest pass through unread.
#[derive(Deserialize)]
pub(crate) struct Keys<'a> {
    #[serde(rename = "FullId", borrow)]
    pub full_id: Option<Cow<'a, str>>,
    #[serde(rename = "LastProcessedTimeUtc", borrow)]
    pub processed: Option<Cow<'a, str>>,
}

fn read_record(
    json: &[u8],
    fields: Option<flat::Fields>,
    number: u64,
) -> Result<Record<'_>, RecordError> {
    let problem = |problem: String| RecordError::Record { number, problem };
    let keys = match fields {
        Some(f) => Keys {
            full_id: f.full_id.and_then(|f| f.text(json)),
            processed: f.processed.and_then(|f| f.text(json)),
        },
        None => serde_json::from_slice(json).map_err(|e| problem(e.to_string()))?,
    };
    let full_id = match keys.full_id {
        Some(id) if !id.is_empty() => id,
        _ => return Err(problem("it has no FullId".into())),
    };
    let Some(processed) = keys.processed else {
        return Err(problem("it has no LastProcessedTimeUtc".into()));
    };
    let processed = Timestamp::parse(&processed)
        .map_err(|e| problem(format!("LastProcessedTimeUtc {processed:?}: {e}")))?;
    Ok(Record { json, full_id, processed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, processed: &str, extra: &str) -> String {
        format!(
            r#"{{"AlertTitle":"t","FullId":"{id}","LastProcessedTimeUtc":"{processed}"{extra}}}"#
        )
    }

    /// Feeds `body` in pieces of `piece` bytes and collects (FullId, json).
    fn split(body: &[u8], piece: usize) -> Result<Vec<(String, String)>, RecordError> {
        let mut splitter = Splitter::new();
        let mut out = Vec::new();
        for chunk in body.chunks(piece.max(1)) {
            splitter.push(chunk)?;
            for r in splitter.take()? {
                out.push((r.full_id.into_owned(), String::from_utf8(r.json.to_vec()).unwrap()));
            }
        }
        splitter.finish()?;
        Ok(out)
    }

    #[test]
    fn records_are_found_whatever_the_piece_size() {
        let a = record("a", "2026-01-01T00:00:00.1234567Z", r#","X":{"y":["}",{"z":"\\\""}]}"#);
        let b = record("b\\u0041", "2026-01-01T00:00:01Z", r#","Url":"http://h/?q=]}\"""#);
        let body = format!("\u{feff} [ {a} ,\n{b} ]\n");
        for piece in [1, 2, 3, 7, 64, 1 << 20] {
            let got =
                split(body.as_bytes(), piece).unwrap_or_else(|e| panic!("piece {piece}: {e}"));
            assert_eq!(got.len(), 2, "piece {piece}");
            assert_eq!(got[0], ("a".to_string(), a.clone()), "piece {piece}");
            assert_eq!(got[1], ("bA".to_string(), b.clone()), "piece {piece}");
        }
    }

    #[test]
    fn an_empty_array_has_no_records() {
        assert_eq!(split(b"[]", 1).unwrap(), vec![]);
        assert_eq!(split(b" [ \n ] ", 2).unwrap(), vec![]);
    }

    #[test]
    fn a_body_cut_short_is_truncated() {
        let a = record("a", "2026-01-01T00:00:00Z", "");
        let whole = format!("[{a},{a}]");
        for cut in 0..whole.len() {
            let err = split(&whole.as_bytes()[..cut], 5).unwrap_err();
            assert!(matches!(err, RecordError::Truncated { .. }), "cut at {cut}: {err}");
        }
    }

    #[test]
    fn what_is_not_an_array_of_detections_is_refused() {
        let a = record("a", "2026-01-01T00:00:00Z", "");
        for (body, needle) in [
            ("<html>busy</html>".to_string(), "expected `[`"),
            (format!("[{a} {a}]"), "expected `,` or `]`"),
            ("[1,2]".to_string(), "expected a detection"),
            (format!("[{a}] x"), "after the array"),
            (r#"[{"FullId":"a"}]"#.to_string(), "no LastProcessedTimeUtc"),
            (r#"[{"LastProcessedTimeUtc":"2026-01-01"}]"#.to_string(), "no FullId"),
            (r#"[{"FullId":"a","LastProcessedTimeUtc":"yesterday"}]"#.to_string(), "yesterday"),
            (r#"[{"FullId":"a","LastProcessedTimeUtc":"2026-01-01",}]"#.to_string(), "detection 1"),
            (r#"[{"FullId":"a" "LastProcessedTimeUtc":"2026-01-01"}]"#.to_string(), "detection 1"),
        ] {
            let err = split(body.as_bytes(), 3).unwrap_err().to_string();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn memory_holds_only_records_not_yet_taken() {
        let a = record("a", "2026-01-01T00:00:00Z", &format!(r#","Pad":"{}""#, "x".repeat(1000)));
        let mut splitter = Splitter::new();
        splitter.push(b"[").unwrap();
        for i in 0..10_000 {
            let sep = if i == 0 { "" } else { "," };
            splitter.push(format!("{sep}{a}").as_bytes()).unwrap();
            assert_eq!(splitter.take().unwrap().len(), 1);
            assert!(splitter.buf.len() < 4 * a.len(), "buffer grew to {}", splitter.buf.len());
        }
        splitter.push(b"]").unwrap();
        splitter.finish().unwrap();
        assert_eq!(splitter.records(), 10_000);
    }
}
