//! UTC instants at the SIEM API's precision: 100 ns ticks, as .NET stores them.
//!
//! The API writes times such as `2020-09-30T14:11:44.0779765Z`: up to seven
//! fractional digits with trailing zeros dropped. Keeping the tick count exact
//! is what lets a record parse and render back byte for byte.

use std::fmt;

/// Ticks of 100 ns in one second.
pub const TICKS_PER_SECOND: i64 = 10_000_000;
const TICKS_PER_DAY: i64 = 86_400 * TICKS_PER_SECOND;

/// .NET ticks (since 0001-01-01) at the Unix epoch.
const DOTNET_EPOCH_OFFSET: i64 = 621_355_968_000_000_000;

/// Days from 1970-01-01 to 0001-01-01 and to 10000-01-01: the range we accept.
const MIN_DAY: i64 = -719_162;
const MAX_DAY_EXCLUSIVE: i64 = 2_932_897;

/// A UTC instant in 100 ns ticks since the Unix epoch, between the years 1 and 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a time string was refused; the caller adds which field or parameter it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("expected a time such as 2020-09-30T14:11:44.0779765Z")]
    Syntax,
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
}

impl Timestamp {
    /// The earliest instant we represent, 0001-01-01T00:00:00Z.
    pub const MIN: Timestamp = Timestamp(MIN_DAY * TICKS_PER_DAY);
    /// The last instant we represent, just before 10000-01-01.
    pub const MAX: Timestamp = Timestamp(MAX_DAY_EXCLUSIVE * TICKS_PER_DAY - 1);

    /// Builds an instant from ticks since the Unix epoch, clamped to the supported range.
    pub fn from_unix_ticks(ticks: i64) -> Timestamp {
        Timestamp(ticks.clamp(Self::MIN.0, Self::MAX.0))
    }

    /// The instant a `SystemTime` names (the caller reads the clock), to the
    /// tick, rounded down; times before 1970 count back from the epoch.
    pub fn from_system_time(time: std::time::SystemTime) -> Timestamp {
        let ticks = match time.duration_since(std::time::UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_nanos() / 100).unwrap_or(i64::MAX),
            Err(before) => {
                -i64::try_from(before.duration().as_nanos().div_ceil(100)).unwrap_or(i64::MAX)
            }
        };
        Timestamp::from_unix_ticks(ticks)
    }

    /// Ticks of 100 ns since 1970-01-01T00:00:00Z.
    pub fn unix_ticks(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch, rounded down.
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(TICKS_PER_SECOND)
    }

    /// .NET ticks (since 0001-01-01), the number inside an `AlertId`.
    pub fn dotnet_ticks(self) -> i64 {
        self.0 + DOTNET_EPOCH_OFFSET
    }

    /// The inverse of [`Timestamp::dotnet_ticks`]; `None` outside years 1-9999.
    pub fn from_dotnet_ticks(ticks: i64) -> Option<Timestamp> {
        let unix = ticks.checked_sub(DOTNET_EPOCH_OFFSET)?;
        (Self::MIN.0..=Self::MAX.0).contains(&unix).then_some(Timestamp(unix))
    }

    /// This instant moved by `ticks`, clamped to the supported range.
    pub fn add_ticks(self, ticks: i64) -> Timestamp {
        Timestamp::from_unix_ticks(self.0.saturating_add(ticks))
    }

    /// Parses the forms the SIEM API accepts: `2020-09-30`, `2020-09-30T14:11`,
    /// `2020-09-30T14:11:44`, with up to seven significant fractional digits
    /// (further digits are truncated), `T` or a space between date and time, and
    /// an optional zone (`Z`, `+02:00`, `-0530`, `+02`). No zone means UTC.
    ///
    /// A zone written `+02:00` in an unencoded query string arrives as
    /// ` 02:00`; a space before a trailing `hh:mm` is read as a plus sign.
    pub fn parse(text: &str) -> Result<Timestamp, TimeError> {
        let mut p = Cursor { s: text.as_bytes(), i: 0 };
        let year = p.digits(4)?;
        p.expect(b'-')?;
        let month = p.digits(2)?;
        p.expect(b'-')?;
        let day = p.digits(2)?;
        if !(1..=12).contains(&month) {
            return Err(TimeError::OutOfRange("month"));
        }
        if year == 0 {
            return Err(TimeError::OutOfRange("year"));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(TimeError::OutOfRange("day"));
        }
        let mut ticks = days_from_civil(year, month, day) * TICKS_PER_DAY;
        if p.at_end() {
            return Ok(Timestamp(ticks));
        }

        if !p.eat(b'T') && !p.eat(b't') && !p.eat(b' ') {
            return Err(TimeError::Syntax);
        }
        let hour = p.digits(2)?;
        p.expect(b':')?;
        let minute = p.digits(2)?;
        let mut second = 0;
        if p.eat(b':') {
            second = p.digits(2)?;
            if p.eat(b'.') || p.eat(b',') {
                ticks += p.fraction()?;
            }
        }
        if hour > 23 {
            return Err(TimeError::OutOfRange("hour"));
        }
        if minute > 59 {
            return Err(TimeError::OutOfRange("minute"));
        }
        // 60 would be a leap second, which .NET refuses as well.
        if second > 59 {
            return Err(TimeError::OutOfRange("second"));
        }
        ticks += (hour * 3600 + minute * 60 + second) * TICKS_PER_SECOND;
        ticks -= p.zone()? * 60 * TICKS_PER_SECOND;
        if !p.at_end() {
            return Err(TimeError::Syntax);
        }
        if !(Self::MIN.0..=Self::MAX.0).contains(&ticks) {
            return Err(TimeError::OutOfRange("year"));
        }
        Ok(Timestamp(ticks))
    }

    /// Writes the canonical form, `2020-09-30T14:11:44.0779765Z`, into `out`.
    pub fn write_to(self, out: &mut String) {
        use fmt::Write;
        let _ = write!(out, "{self}");
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(TICKS_PER_DAY);
        let in_day = self.0.rem_euclid(TICKS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let secs = in_day / TICKS_PER_SECOND;
        let frac = in_day % TICKS_PER_SECOND;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )?;
        if frac != 0 {
            let mut digits = format!("{frac:07}");
            while digits.ends_with('0') {
                digits.pop();
            }
            write!(f, ".{digits}")?;
        }
        f.write_str("Z")
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

/// A byte cursor over a time string; every method fails with `Syntax` on a surprise.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn at_end(&self) -> bool {
        self.i == self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.i += usize::from(hit);
        hit
    }

    fn expect(&mut self, b: u8) -> Result<(), TimeError> {
        if self.eat(b) { Ok(()) } else { Err(TimeError::Syntax) }
    }

    fn digits(&mut self, n: usize) -> Result<i64, TimeError> {
        let chunk = self.s.get(self.i..self.i + n).ok_or(TimeError::Syntax)?;
        let mut value = 0;
        for &b in chunk {
            if !b.is_ascii_digit() {
                return Err(TimeError::Syntax);
            }
            value = value * 10 + i64::from(b - b'0');
        }
        self.i += n;
        Ok(value)
    }

    /// Fractional seconds as ticks: the first seven digits count, the rest are dropped.
    fn fraction(&mut self) -> Result<i64, TimeError> {
        let start = self.i;
        let mut ticks = 0;
        while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
            if self.i - start < 7 {
                ticks = ticks * 10 + i64::from(b - b'0');
            }
            self.i += 1;
        }
        let len = self.i - start;
        if len == 0 {
            return Err(TimeError::Syntax);
        }
        for _ in len..7 {
            ticks *= 10;
        }
        Ok(ticks)
    }

    /// The zone offset in minutes east of UTC; zero when there is none.
    fn zone(&mut self) -> Result<i64, TimeError> {
        let sign = match self.peek() {
            None => return Ok(0),
            Some(b'Z' | b'z') => {
                self.i += 1;
                return Ok(0);
            }
            Some(b'+' | b' ') => 1,
            Some(b'-') => -1,
            Some(_) => return Err(TimeError::Syntax),
        };
        self.i += 1;
        let hours = self.digits(2)?;
        let minutes = if self.eat(b':') || self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.digits(2)?
        } else {
            0
        };
        if hours > 14 || minutes > 59 {
            return Err(TimeError::OutOfRange("zone offset"));
        }
        Ok(sign * (hours * 60 + minutes))
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date. Counting years from
/// March puts the leap day last, so a 400-year era has a closed form.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(s: &str) -> String {
        Timestamp::parse(s).unwrap().to_string()
    }

    #[test]
    fn renders_the_api_form_with_trimmed_fraction() {
        assert_eq!(round("2020-09-30T14:11:44.0779765Z"), "2020-09-30T14:11:44.0779765Z");
        assert_eq!(round("2020-09-30T14:09:20.35743Z"), "2020-09-30T14:09:20.35743Z");
        assert_eq!(round("2020-09-30T14:09:20.3574300Z"), "2020-09-30T14:09:20.35743Z");
        assert_eq!(round("2020-09-30T14:09:20.000Z"), "2020-09-30T14:09:20Z");
        assert_eq!(round("2016-09-12T00:00:00.000"), "2016-09-12T00:00:00Z");
    }

    #[test]
    fn accepts_the_query_spellings() {
        assert_eq!(round("2016-09-12"), "2016-09-12T00:00:00Z");
        assert_eq!(round("2016-09-12 08:30:00"), "2016-09-12T08:30:00Z");
        assert_eq!(round("2016-09-12T08:30"), "2016-09-12T08:30:00Z");
        assert_eq!(round("2016-09-12T08:30:00+02:00"), "2016-09-12T06:30:00Z");
        assert_eq!(round("2016-09-12T08:30:00 02:00"), "2016-09-12T06:30:00Z");
        assert_eq!(round("2016-09-12T08:30:00-0530"), "2016-09-12T14:00:00Z");
        assert_eq!(round("2016-09-12T08:30:00.123456789Z"), "2016-09-12T08:30:00.1234567Z");
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2016-13-01",
            "2016-02-30",
            "2016-09-12T24:00:00",
            "2016-09-12T",
            "2016-09-12Tx",
            "2016-09-12T08:30:00.Z",
            "2016-09-12T08:30:00Q",
            "0000-01-01",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(round("2016-02-29T00:00:00Z"), "2016-02-29T00:00:00Z");
        assert!(Timestamp::parse("2015-02-29").is_err());
    }

    #[test]
    fn civil_conversion_round_trips_over_the_whole_range() {
        let mut day = MIN_DAY;
        while day < MAX_DAY_EXCLUSIVE {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
            day += 997;
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(MIN_DAY), (1, 1, 1));
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.9999999Z");
    }

    #[test]
    fn system_times_convert_to_the_tick() {
        use std::time::{Duration, UNIX_EPOCH};
        let t = Timestamp::from_system_time(
            UNIX_EPOCH + Duration::from_nanos(1_601_475_104_077_976_599),
        );
        assert_eq!(t.to_string(), "2020-09-30T14:11:44.0779765Z");
        let before = Timestamp::from_system_time(UNIX_EPOCH - Duration::from_nanos(150));
        assert_eq!(before.unix_ticks(), -2);
    }

    #[test]
    fn dotnet_ticks_match_the_alert_id_in_the_reference_sample() {
        // da637370718981685665_16349121 was created at 2020-09-30T14:11:38.1685665Z.
        let t = Timestamp::from_dotnet_ticks(637_370_718_981_685_665).unwrap();
        assert_eq!(t.to_string(), "2020-09-30T14:11:38.1685665Z");
        assert_eq!(t.dotnet_ticks(), 637_370_718_981_685_665);
    }
}
