//! Reading many detections from one input: a JSON array or NDJSON.
//!
//! Inputs can hold millions of records, so they are read one record at a
//! time, never whole. Each record comes with its position (its number and the
//! line it starts on) so that a refusal points at the record to fix.

use std::fmt;
use std::io::BufRead;

use crate::detection::{Detection, ParseError};

/// Where a record sits in its input; both counts start at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub record: usize,
    pub line: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {} (line {})", self.record, self.line)
    }
}

/// A record or input that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{at}: {source}")]
    Record { at: Position, source: ParseError },
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Unknown,
    Array,
    Ndjson,
    Done,
}

/// An iterator over the detections of a JSON array or of NDJSON, told apart
/// by the first character (`[` or `{`).
#[derive(Debug)]
pub struct RecordReader<R> {
    input: R,
    shape: Shape,
    line: usize,
    records: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> RecordReader<R> {
    pub fn new(input: R) -> Self {
        RecordReader { input, shape: Shape::Unknown, line: 1, records: 0, buf: Vec::new() }
    }

    fn peek(&mut self) -> Result<Option<u8>, ReadError> {
        Ok(self.input.fill_buf()?.first().copied())
    }

    fn bump(&mut self) -> Result<Option<u8>, ReadError> {
        let b = self.peek()?;
        if let Some(b) = b {
            self.input.consume(1);
            if b == b'\n' {
                self.line += 1;
            }
        }
        Ok(b)
    }

    /// Skips whitespace and a UTF-8 byte-order mark.
    fn skip_space(&mut self) -> Result<Option<u8>, ReadError> {
        loop {
            match self.peek()? {
                Some(b' ' | b'\t' | b'\r' | b'\n' | 0xEF | 0xBB | 0xBF) => {
                    self.bump()?;
                }
                other => return Ok(other),
            }
        }
    }

    fn syntax(&self, message: impl Into<String>) -> ReadError {
        ReadError::Syntax { line: self.line, message: message.into() }
    }

    /// Copies one JSON object into `self.buf`, tracking strings and nesting
    /// only as far as needed to find where it ends.
    fn take_object(&mut self) -> Result<(), ReadError> {
        self.buf.clear();
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        loop {
            let available = self.input.fill_buf()?;
            if available.is_empty() {
                return Err(self.syntax("the input ends inside a record"));
            }
            let mut end = None;
            for (i, &b) in available.iter().enumerate() {
                if in_string {
                    match b {
                        _ if escaped => escaped = false,
                        b'\\' => escaped = true,
                        b'"' => in_string = false,
                        _ => {}
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let used = end.unwrap_or(available.len());
            self.buf.extend_from_slice(&available[..used]);
            self.line += available[..used].iter().filter(|&&b| b == b'\n').count();
            self.input.consume(used);
            if end.is_some() {
                return Ok(());
            }
        }
    }

    fn next_record(&mut self) -> Result<Option<(Position, Detection)>, ReadError> {
        if self.shape == Shape::Unknown {
            self.shape = match self.skip_space()? {
                None => Shape::Done,
                Some(b'[') => {
                    self.bump()?;
                    Shape::Array
                }
                Some(b'{') => Shape::Ndjson,
                Some(_) => {
                    return Err(self.syntax("expected a JSON array of detections or NDJSON"));
                }
            };
        }
        match self.shape {
            Shape::Unknown | Shape::Done => return Ok(None),
            Shape::Array => {
                if self.records > 0 {
                    match self.skip_space()? {
                        Some(b',') => {
                            self.bump()?;
                        }
                        Some(b']') => return self.end_of_array(),
                        _ => return Err(self.syntax("expected , or ] after a record")),
                    }
                }
                match self.skip_space()? {
                    Some(b'{') => {}
                    Some(b']') if self.records == 0 => return self.end_of_array(),
                    _ => return Err(self.syntax("expected a JSON object")),
                }
            }
            Shape::Ndjson => match self.skip_space()? {
                None => return Ok(None),
                Some(b'{') => {}
                Some(_) => return Err(self.syntax("expected one JSON object per line")),
            },
        }
        let at = Position { record: self.records + 1, line: self.line };
        self.take_object()?;
        self.records += 1;
        let text = std::str::from_utf8(&self.buf)
            .map_err(|_| ReadError::Syntax { line: at.line, message: "not UTF-8".into() })?;
        match Detection::from_json(text) {
            Ok(detection) => Ok(Some((at, detection))),
            Err(source) => Err(ReadError::Record { at, source }),
        }
    }

    fn end_of_array(&mut self) -> Result<Option<(Position, Detection)>, ReadError> {
        self.bump()?;
        self.shape = Shape::Done;
        match self.skip_space()? {
            None => Ok(None),
            Some(_) => Err(self.syntax("unexpected text after the array")),
        }
    }

    /// How many records have been read so far, the bad one included.
    pub fn records_read(&self) -> usize {
        self.records
    }
}

impl<R: BufRead> Iterator for RecordReader<R> {
    type Item = Result<(Position, Detection), ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_record() {
            Ok(record) => record.map(Ok),
            Err(e) => {
                self.shape = Shape::Done;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Result<(usize, String), String>> {
        RecordReader::new(text.as_bytes())
            .map(|r| r.map(|(at, d)| (at.record, d.alert_title)).map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn reads_arrays_and_ndjson_alike() {
        let ok = |n, t: &str| Ok((n, t.to_owned()));
        let array = "\u{feff}[\n {\"AlertTitle\":\"a\"},\n {\"AlertTitle\":\"b}{\\\"\"}\n]\n";
        assert_eq!(read(array), [ok(1, "a"), ok(2, "b}{\"")]);
        assert_eq!(
            read("{\"AlertTitle\":\"a\"}\n\n{\"AlertTitle\":\"b\"}\n"),
            [ok(1, "a"), ok(2, "b")]
        );
        assert_eq!(read("[]"), []);
        assert_eq!(read("  "), []);
    }

    #[test]
    fn names_the_record_and_line_at_fault() {
        let text = "{\"AlertTitle\":\"a\"}\n{\"AlertPart\":\"x\"}\n";
        let got = read(text);
        assert_eq!(
            got[1],
            Err("record 2 (line 2): AlertPart must be a non-negative integer, not \"x\"".into())
        );
        let got = read("[{\"AlertTitle\":\"a\"} {\"AlertTitle\":\"b\"}]");
        assert_eq!(got[1], Err("line 1: expected , or ] after a record".into()));
        assert_eq!(
            read("[{\"AlertTitle\":\"a\"")[0],
            Err("line 1: the input ends inside a record".into())
        );
        assert_eq!(
            read("hello")[0],
            Err("line 1: expected a JSON array of detections or NDJSON".into())
        );
        assert_eq!(read("[{}] x")[1], Err("line 1: unexpected text after the array".into()));
    }
}
