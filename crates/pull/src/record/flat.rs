//! The fast path for reading a record: one pass over a flat object (every
//! value a string, number, `true`, `false` or `null`, as the API's records
//! are) that checks it is valid JSON and picks out the two keys the puller
//! needs. Anything else, including every invalid record, goes to serde_json,
//! which reads it fully and words the error.
//!
//! It exists because a general parser visiting all fifty values of every
//! record was the largest cost of pulling a big window.

use std::borrow::Cow;

use super::Keys;

/// The two keys of a valid flat record, or `None` when the record is not
/// flat, not valid, or holds either key twice or not as a string.
pub(crate) fn keys(json: &[u8]) -> Option<Keys<'_>> {
    std::str::from_utf8(json).ok()?;
    let mut full_id = None;
    let mut processed = None;
    let mut i = space(json, 1);
    if json.get(i)? == &b'}' {
        return (i + 1 == json.len()).then_some(Keys { full_id: None, processed: None });
    }
    loop {
        let (key_end, key_escaped) = string(json, i)?;
        let key = &json[i + 1..key_end - 1];
        i = space(json, key_end);
        if json.get(i)? != &b':' {
            return None;
        }
        i = space(json, i + 1);
        let start = i;
        let (end, escaped) = match json.get(i)? {
            b'"' => string(json, i)?,
            _ => (literal(json, i)?, false),
        };
        let value = &json[start..end];
        let slot = match key {
            _ if key_escaped => None,
            b"FullId" => Some(&mut full_id),
            b"LastProcessedTimeUtc" => Some(&mut processed),
            _ => None,
        };
        if let Some(slot) = slot {
            if slot.is_some() || value[0] != b'"' {
                return None;
            }
            *slot = Some(text(value, escaped)?);
        }
        i = space(json, end);
        match json.get(i)? {
            b',' => i = space(json, i + 1),
            b'}' if i + 1 == json.len() => return Some(Keys { full_id, processed }),
            _ => return None,
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

/// A string starting at `i` (which must be `"`): the index just past its
/// closing quote, and whether it holds escapes. Checks the escapes and that
/// no raw control character sits inside.
fn string(json: &[u8], i: usize) -> Option<(usize, bool)> {
    if json.get(i)? != &b'"' {
        return None;
    }
    let mut at = i + 1;
    let mut escaped = false;
    loop {
        // One pass stops at a quote, a backslash or a control character,
        // which JSON does not allow raw inside a string.
        let found = at + json[at..].iter().position(|b| matches!(b, b'"' | b'\\' | 0..0x20))?;
        if json[found] < 0x20 {
            return None;
        }
        if json[found] == b'"' {
            return Some((found + 1, escaped));
        }
        escaped = true;
        at = match json.get(found + 1)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => found + 2,
            b'u' => {
                let hex = json.get(found + 2..found + 6)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                found + 6
            }
            _ => return None,
        };
    }
}

/// A number, `true`, `false` or `null` starting at `i`: the index just past it.
fn literal(json: &[u8], i: usize) -> Option<usize> {
    for word in [&b"true"[..], b"false", b"null"] {
        if json[i..].starts_with(word) {
            return Some(i + word.len());
        }
    }
    number(json, i)
}

/// A JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn number(json: &[u8], mut i: usize) -> Option<usize> {
    let digits = |json: &[u8], mut i: usize| {
        let start = i;
        while json.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > start).then_some(i)
    };
    if json.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match json.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(json, i)?,
        _ => return None,
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
    Some(i)
}

/// A JSON string's text: borrowed when it has no escapes.
fn text(value: &[u8], escaped: bool) -> Option<Cow<'_, str>> {
    if escaped {
        serde_json::from_slice::<String>(value).ok().map(Cow::Owned)
    } else {
        std::str::from_utf8(&value[1..value.len() - 1]).ok().map(Cow::Borrowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde_json makes of the record: the yardstick for the fast path.
    fn slow(json: &str) -> Option<(Option<String>, Option<String>)> {
        let keys: Keys<'_> = serde_json::from_str(json).ok()?;
        Some((keys.full_id.map(Cow::into_owned), keys.processed.map(Cow::into_owned)))
    }

    fn fast(json: &str) -> Option<(Option<String>, Option<String>)> {
        let keys = keys(json.as_bytes())?;
        Some((keys.full_id.map(Cow::into_owned), keys.processed.map(Cow::into_owned)))
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
            r#"{"A":1}  "#,
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
    fn invalid_utf8_is_deferred() {
        assert!(keys(b"{\"A\":\"\xff\"}").is_none());
    }
}
