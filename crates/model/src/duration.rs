//! ISO 8601 durations as the `ago` parameter takes them: `PT10M`, `P1D`,
//! `P1DT2H30M`, `P2W`, `PT1.5S`.
//!
//! Years and months have no fixed length, so they are refused with a hint to
//! use days; silently reading `P1M` as 30 days would shift a window by hours.

use std::fmt;

use crate::time::TICKS_PER_SECOND;

/// A non-negative length of time in 100 ns ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(i64);

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    #[error("expected an ISO 8601 duration such as PT10M, P1D, P1DT2H30M or P2W")]
    Syntax,
    #[error("years and months have no fixed length; give days instead, such as P30D")]
    Calendar,
    #[error("the duration is too long")]
    TooLong,
}

impl Span {
    pub const fn from_ticks(ticks: i64) -> Span {
        Span(ticks)
    }

    pub const fn from_seconds(seconds: i64) -> Span {
        Span(seconds * TICKS_PER_SECOND)
    }

    pub const fn from_hours(hours: i64) -> Span {
        Span::from_seconds(hours * 3600)
    }

    pub fn ticks(self) -> i64 {
        self.0
    }

    /// Parses `PnWnDTnHnMnS` with every part optional but at least one
    /// present; only the seconds may carry a fraction. Letters may be lower case.
    pub fn parse(text: &str) -> Result<Span, SpanError> {
        let upper = text.trim().to_ascii_uppercase();
        let rest = upper.strip_prefix('P').ok_or(SpanError::Syntax)?;
        let (date, time) = match rest.split_once('T') {
            Some((_, "")) => return Err(SpanError::Syntax),
            Some((date, time)) => (date, Some(time)),
            None => (rest, None),
        };
        if date.is_empty() && time.is_none() {
            return Err(SpanError::Syntax);
        }

        const DAY: i64 = 86_400 * TICKS_PER_SECOND;
        let mut total: i64 = 0;
        for (number, unit) in parts(date)? {
            match unit {
                'Y' | 'M' => return Err(SpanError::Calendar),
                'W' => add(&mut total, whole(number)?, 7 * DAY)?,
                'D' => add(&mut total, whole(number)?, DAY)?,
                _ => return Err(SpanError::Syntax),
            }
        }
        for (number, unit) in parts(time.unwrap_or(""))? {
            match unit {
                'H' => add(&mut total, whole(number)?, 3600 * TICKS_PER_SECOND)?,
                'M' => add(&mut total, whole(number)?, 60 * TICKS_PER_SECOND)?,
                'S' => {
                    let (secs, frac) = number.split_once(['.', ',']).unwrap_or((number, ""));
                    add(&mut total, whole(secs)?, TICKS_PER_SECOND)?;
                    add(&mut total, fraction_ticks(frac)?, 1)?;
                }
                _ => return Err(SpanError::Syntax),
            }
        }
        Ok(Span(total))
    }
}

fn add(total: &mut i64, amount: i64, unit_ticks: i64) -> Result<(), SpanError> {
    let ticks = amount.checked_mul(unit_ticks).ok_or(SpanError::TooLong)?;
    *total = total.checked_add(ticks).ok_or(SpanError::TooLong)?;
    Ok(())
}

/// Splits `1D2H` into `[("1", 'D'), ("2", 'H')]`, refusing a repeated or misordered unit.
fn parts(text: &str) -> Result<Vec<(&str, char)>, SpanError> {
    let mut out: Vec<(&str, char)> = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c.is_ascii_digit() || c == '.' || c == ',' {
            continue;
        }
        let number = &text[start..i];
        if number.is_empty() || out.iter().any(|&(_, u)| u == c) {
            return Err(SpanError::Syntax);
        }
        out.push((number, c));
        start = i + c.len_utf8();
    }
    if start != text.len() {
        return Err(SpanError::Syntax);
    }
    Ok(out)
}

fn whole(number: &str) -> Result<i64, SpanError> {
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SpanError::Syntax);
    }
    number.parse().map_err(|_| SpanError::TooLong)
}

fn fraction_ticks(digits: &str) -> Result<i64, SpanError> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SpanError::Syntax);
    }
    let kept: String = digits.chars().chain(std::iter::repeat('0')).take(7).collect();
    kept.parse().map_err(|_| SpanError::Syntax)
}

impl fmt::Display for Span {
    /// Writes the shortest `P..T..` form, for messages and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / TICKS_PER_SECOND;
        let frac = self.0 % TICKS_PER_SECOND;
        let (days, hours, minutes, seconds) =
            (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
        f.write_str("P")?;
        if days > 0 {
            write!(f, "{days}D")?;
        }
        if hours + minutes + seconds + frac == 0 && days > 0 {
            return Ok(());
        }
        f.write_str("T")?;
        if hours > 0 {
            write!(f, "{hours}H")?;
        }
        if minutes > 0 {
            write!(f, "{minutes}M")?;
        }
        if seconds > 0 || frac > 0 || (hours == 0 && minutes == 0) {
            write!(f, "{seconds}")?;
            if frac > 0 {
                let digits = format!("{frac:07}");
                write!(f, ".{}", digits.trim_end_matches('0'))?;
            }
            f.write_str("S")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> f64 {
        Span::parse(text).unwrap().ticks() as f64 / TICKS_PER_SECOND as f64
    }

    #[test]
    fn reads_the_forms_the_api_documents() {
        assert_eq!(secs("PT10M"), 600.0);
        assert_eq!(secs("P1D"), 86_400.0);
        assert_eq!(secs("P1DT2H30M"), 95_400.0);
        assert_eq!(secs("P2W"), 1_209_600.0);
        assert_eq!(secs("PT1.5S"), 1.5);
        assert_eq!(secs("pt2h"), 7200.0);
        assert_eq!(secs("PT0S"), 0.0);
    }

    #[test]
    fn refuses_malformed_and_calendar_durations() {
        for bad in [
            "", "P", "PT", "10M", "PT10", "PTM", "P1H", "PT1D", "P1DT", "PT1M1M", "PT-1M", "PT1.5M",
        ] {
            assert!(Span::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(Span::parse("P1M"), Err(SpanError::Calendar));
        assert_eq!(Span::parse("P1Y"), Err(SpanError::Calendar));
        assert_eq!(Span::parse("P99999999999999D"), Err(SpanError::TooLong));
    }

    #[test]
    fn displays_compactly() {
        for text in ["PT10M", "P1D", "P1DT2H30M", "PT1.5S", "PT0S"] {
            assert_eq!(Span::parse(text).unwrap().to_string(), text);
        }
    }
}
