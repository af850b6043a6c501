//! The fast path for reading records: one pass over a flat object (every
//! value a string, number, `true`, `false` or `null`, as the API's records
//! are) that finds where it ends, checks that it is valid JSON and notes
//! where the two values the puller needs sit. Anything else, including
//! every invalid record, goes to the general splitter and to serde_json,
//! which reads it fully and words the error.
//!
//! It exists because finding a record's end and then parsing it were two
//! full passes over every byte, the largest cost of pulling a big window.

use std::borrow::Cow;
use std::ops::Range;

/// Where a string value sits in its record, quotes included.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub range: Range<usize>,
    pub escaped: bool,
}

impl Field {
    /// The string's text: borrowed when it has no escapes.
    pub fn text<'a>(&self, record: &'a [u8]) -> Option<Cow<'a, str>> {
        let value = &record[self.range.clone()];
        if self.escaped {
            serde_json::from_slice::<String>(value).ok().map(Cow::Owned)
        } else {
            std::str::from_utf8(&value[1..value.len() - 1]).ok().map(Cow::Borrowed)
        }
    }
}

/// The two values, where the record has them as strings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fields {
    pub full_id: Option<Field>,
    pub processed: Option<Field>,
}

/// What [`scan`] made of the bytes from a `{`.
#[derive(Debug)]
pub(crate) enum Scan {
    /// A valid flat record of `len` bytes.
    Record { len: usize, fields: Fields },
    /// The bytes end before the record does.
    Incomplete,
    /// Not a valid flat record: nested, invalid, or a key twice.
    Other,
}

/// Why the parse stopped.
enum Stop {
    End,
    Other,
}

type Step<T> = Result<T, Stop>;

fn at(json: &[u8], i: usize) -> Step<u8> {
    json.get(i).copied().ok_or(Stop::End)
}

/// Reads the record that starts at `json[0]` (a `{`).
pub(crate) fn scan(json: &[u8]) -> Scan {
    match object(json) {
        Ok((len, fields)) if std::str::from_utf8(&json[..len]).is_ok() => {
            Scan::Record { len, fields }
        }
        Ok(_) | Err(Stop::Other) => Scan::Other,
        Err(Stop::End) => Scan::Incomplete,
    }
}

fn object(json: &[u8]) -> Step<(usize, Fields)> {
    let mut fields = Fields::default();
    let mut i = space(json, 1);
    if at(json, i)? == b'}' {
        return Ok((i + 1, fields));
    }
    loop {
        let (key_end, key_escaped) = string(json, i)?;
        let key = &json[i + 1..key_end - 1];
        i = space(json, key_end);
        if at(json, i)? != b':' {
            return Err(Stop::Other);
        }
        i = space(json, i + 1);
        let start = i;
        let (end, escaped) = match at(json, i)? {
            b'"' => string(json, i)?,
            _ => (literal(json, i)?, false),
        };
        let slot = match key {
            _ if key_escaped => None,
            b"FullId" => Some(&mut fields.full_id),
            b"LastProcessedTimeUtc" => Some(&mut fields.processed),
            _ => None,
        };
        if let Some(slot) = slot {
            // A key twice is for serde_json to refuse, with its own words.
            if slot.is_some() {
                return Err(Stop::Other);
            }
            match json[start] {
                b'"' => *slot = Some(Field { range: start..end, escaped }),
                b'n' => {}
                // A number or boolean where a string belongs: serde_json says so.
                _ => return Err(Stop::Other),
            }
        }
        i = space(json, end);
        match at(json, i)? {
            b',' => i = space(json, i + 1),
            b'}' => return Ok((i + 1, fields)),
            _ => return Err(Stop::Other),
        }
    }
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
fn space(json: &[u8], mut i: usize) -> usize {
    while matches!(json.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// A string starting at `i`: the index just past its closing quote, and
/// whether it holds escapes. Checks the escapes and that no raw control
/// character sits inside.
fn string(json: &[u8], i: usize) -> Step<(usize, bool)> {
    if at(json, i)? != b'"' {
        return Err(Stop::Other);
    }
    let mut i = i + 1;
    let mut escaped = false;
    loop {
        i += special(&json[i..]).ok_or(Stop::End)?;
        match json[i] {
            b'"' => return Ok((i + 1, escaped)),
            b'\\' => {}
            _ => return Err(Stop::Other),
        }
        escaped = true;
        i = match at(json, i + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i + 2,
            b'u' => {
                let hex = json.get(i + 2..i + 6).ok_or(Stop::End)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(Stop::Other);
                }
                i + 6
            }
            _ => return Err(Stop::Other),
        };
    }
}

/// The first quote, backslash or control character (which JSON does not
/// allow raw inside a string) in `bytes`. Eight bytes are tested at a time,
/// as one word: this search is most of the work of reading a record.
fn special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte of the result has its top bit set where `word`'s byte is zero;
    // bytes above the first such one may be wrong, so only the lowest is used.
    let zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in words.by_ref() {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks of eight"));
        let found = zero(word ^ (ONES * u64::from(b'"')))
            | zero(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = words.remainder();
    tail.iter().position(|b| matches!(b, b'"' | b'\\' | 0..0x20)).map(|p| at + p)
}

/// A number, `true`, `false` or `null` starting at `i`: the index just past
/// it. Running into the end of the bytes means more may follow.
fn literal(json: &[u8], i: usize) -> Step<usize> {
    for word in [&b"true"[..], b"false", b"null"] {
        let have = &json[i..json.len().min(i + word.len())];
        if word.starts_with(have) {
            return if have.len() == word.len() { Ok(i + word.len()) } else { Err(Stop::End) };
        }
    }
    let end = number(json, i)?;
    if end == json.len() { Err(Stop::End) } else { Ok(end) }
}

/// A JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn number(json: &[u8], mut i: usize) -> Step<usize> {
    let digits = |json: &[u8], mut i: usize| {
        let start = i;
        while json.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i > start {
            Ok(i)
        } else if i == json.len() {
            Err(Stop::End)
        } else {
            Err(Stop::Other)
        }
    };
    if json.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match at(json, i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(json, i)?,
        _ => return Err(Stop::Other),
    };
    if json.get(i) == Some(&b'.') {
        i = digits(json, i + 1)?;
    }
    if matches!(json.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(json.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(json, i)?;
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Keys;

    /// What serde_json makes of the record: the yardstick for the fast path.
    fn slow(json: &str) -> Option<(Option<String>, Option<String>)> {
        let keys: Keys<'_> = serde_json::from_str(json).ok()?;
        Some((keys.full_id.map(Cow::into_owned), keys.processed.map(Cow::into_owned)))
    }

    fn fast(json: &str) -> Option<(Option<String>, Option<String>)> {
        let bytes = json.as_bytes();
        match scan(bytes) {
            Scan::Record { len, fields } if len == bytes.len() => {
                let text = |f: Option<Field>| f.map(|f| f.text(bytes).unwrap().into_owned());
                Some((text(fields.full_id), text(fields.processed)))
            }
            _ => None,
        }
    }

    #[test]
    fn the_fast_path_agrees_with_serde_json_or_defers_to_it() {
        let cases = [
            r#"{"FullId":"a","LastProcessedTimeUtc":"2026-01-01T00:00:00Z","N":-1.5e3,"B":true,"X":null}"#,
            r#"{ "FullId" : "a\"b\u0041" , "LastProcessedTimeUtc":"t" }"#,
            r#"{"Title":"caf\u00e9 ☕","FullId":"x","AlertPart":0}"#,
            r#"{}"#,
            r#"{"FullId":"a","FullId":"b"}"#,
            r#"{"FullId":null}"#,
            r#"{"FullId":1}"#,
            r#"{"A":01}"#,
            r#"{"A":1.}"#,
            r#"{"A":-}"#,
            r#"{"A":tru}"#,
            r#"{"A":"\x"}"#,
            r#"{"A":"\u12G4"}"#,
            "{\"A\":\"tab\there\"}",
            r#"{"A":"x",}"#,
            r#"{"A" "x"}"#,
            r#"{"A":"x""B":1}"#,
            r#"{"A":{"B":1}}"#,
            r#"{"A":[1,2]}"#,
        ];
        for json in cases {
            // None defers: serde_json decides.
            if let Some(got) = fast(json) {
                assert_eq!(Some(got), slow(json), "{json}");
            }
        }
        assert!(fast(cases[0]).is_some() && fast(cases[1]).is_some() && fast(cases[2]).is_some());
        for invalid in &cases[7..17] {
            assert_eq!(fast(invalid), None, "{invalid}");
            assert_eq!(slow(invalid), None, "{invalid}");
        }
    }

    #[test]
    fn a_record_cut_anywhere_is_incomplete_never_wrong() {
        let json =
            br#"{"FullId":"a\u0041","N":-12.5e+3,"B":false,"X":null,"LastProcessedTimeUtc":"t"}"#;
        for cut in 1..json.len() {
            assert!(matches!(scan(&json[..cut]), Scan::Incomplete), "cut at {cut}");
        }
        assert!(matches!(scan(json), Scan::Record { len, .. } if len == json.len()));
        let mut longer = json.to_vec();
        longer.extend_from_slice(b",{");
        assert!(matches!(scan(&longer), Scan::Record { len, .. } if len == json.len()));
    }

    #[test]
    fn the_word_search_finds_what_a_byte_search_finds() {
        let slow = |b: &[u8]| b.iter().position(|b| matches!(b, b'"' | b'\\' | 0..0x20));
        let alphabet = [b'a', b'"', b'\\', 0x1f, 0x20, 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']'];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut bytes = Vec::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            for k in 0..(seed % 24) {
                let pick = (seed >> (k * 2 % 60)) as usize;
                // Mostly plain letters, now and then something special.
                bytes.push(if pick.is_multiple_of(7) {
                    alphabet[pick % alphabet.len()]
                } else {
                    b'x'
                });
            }
            assert_eq!(special(&bytes), slow(&bytes), "{bytes:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_deferred() {
        assert!(matches!(scan(b"{\"A\":\"\xff\"}"), Scan::Other));
    }
}
