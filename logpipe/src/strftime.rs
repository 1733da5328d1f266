//! Times in the strftime formats fluent-bit users write in `Time_Format`.
//!
//! A format is compiled once into a list of items; reading a time walks the
//! items over the text without allocating. Supported conversions:
//! `%Y %y %m %d %e %j %H %I %p %M %S %L %s %b %B %h %a %A %z %Z %T %D %F %R
//! %%`. `%L` is fluent-bit's fractional seconds (any number of digits, kept
//! to nanoseconds). White space in the format matches any run of white space
//! (none included) as strptime does. Text left after the format is ignored,
//! as fluent-bit ignores it (its built-in `docker` format stops before the
//! `Z`). Without `%z`/`%Z` the time is UTC plus the parser's `Time_Offset`;
//! without a year (`%b %d %H:%M:%S`, syslog) the current year is used, as
//! fluent-bit does.

use std::time::{SystemTime, UNIX_EPOCH};

/// An error compiling a format: the conversion that is not supported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Lit(u8),
    Space,
    Year4,
    Year2,
    Month,
    MonthName,
    Day,
    DayOfYear,
    Hour24,
    Hour12,
    AmPm,
    Minute,
    Second,
    Frac,
    Epoch,
    Weekday,
    Offset,
    ZoneName,
}

/// A compiled `Time_Format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFormat {
    items: Vec<Item>,
    source: String,
    has_year: bool,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

impl TimeFormat {
    /// Compiles `format`; an unknown conversion is an error naming it.
    pub fn new(format: &str) -> Result<TimeFormat, FormatError> {
        let mut items = Vec::new();
        let b = format.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            i += 1;
            if c.is_ascii_whitespace() {
                if items.last() != Some(&Item::Space) {
                    items.push(Item::Space);
                }
                continue;
            }
            if c != b'%' {
                items.push(Item::Lit(c));
                continue;
            }
            let Some(&conv) = b.get(i) else {
                return Err(FormatError(format!("time format '{format}' ends with '%'")));
            };
            i += 1;
            let add: &[Item] = match conv {
                b'Y' => &[Item::Year4],
                b'y' => &[Item::Year2],
                b'm' => &[Item::Month],
                b'b' | b'B' | b'h' => &[Item::MonthName],
                b'd' | b'e' => &[Item::Day],
                b'j' => &[Item::DayOfYear],
                b'H' | b'k' => &[Item::Hour24],
                b'I' | b'l' => &[Item::Hour12],
                b'p' | b'P' => &[Item::AmPm],
                b'M' => &[Item::Minute],
                b'S' => &[Item::Second],
                b'L' | b'f' | b'N' => &[Item::Frac],
                b's' => &[Item::Epoch],
                b'a' | b'A' => &[Item::Weekday],
                b'z' => &[Item::Offset],
                b'Z' => &[Item::ZoneName],
                b'T' => &[
                    Item::Hour24,
                    Item::Lit(b':'),
                    Item::Minute,
                    Item::Lit(b':'),
                    Item::Second,
                ],
                b'R' => &[Item::Hour24, Item::Lit(b':'), Item::Minute],
                b'D' => &[
                    Item::Month,
                    Item::Lit(b'/'),
                    Item::Day,
                    Item::Lit(b'/'),
                    Item::Year2,
                ],
                b'F' => &[
                    Item::Year4,
                    Item::Lit(b'-'),
                    Item::Month,
                    Item::Lit(b'-'),
                    Item::Day,
                ],
                b'%' => &[Item::Lit(b'%')],
                b'n' | b't' => &[Item::Space],
                _ => {
                    let shown = format[i - 2..].chars().take(2).collect::<String>();
                    return Err(FormatError(format!(
                        "time format '{format}': conversion '{shown}' is not supported"
                    )));
                }
            };
            items.extend_from_slice(add);
        }
        let has_year = items
            .iter()
            .any(|it| matches!(it, Item::Year4 | Item::Year2 | Item::Epoch));
        Ok(TimeFormat {
            items,
            source: format.to_owned(),
            has_year,
        })
    }

    /// The format as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Reads `text` as a time; nanoseconds since the epoch. `default_offset`
    /// (seconds east of UTC) applies when the format has no `%z`.
    pub fn parse(&self, text: &str, default_offset: i64) -> Option<i64> {
        let b = text.as_bytes();
        let mut p = 0usize;
        let mut year: i64 = if self.has_year { 1970 } else { current_year() };
        let (mut month, mut day, mut yday) = (1u32, 1u32, None::<u32>);
        let (mut hour, mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32, 0u32);
        let mut pm: Option<bool> = None;
        let mut hour12 = false;
        let mut offset: Option<i64> = None;
        let mut epoch: Option<i64> = None;
        let mut skip_frac = false;
        for (idx, &item) in self.items.iter().enumerate() {
            match item {
                // `.%L` with no fraction in the text: RFC 3339 writers
                // (Go's RFC3339Nano, Docker, containerd) drop a zero
                // fraction entirely.
                Item::Lit(b'.')
                    if b.get(p) != Some(&b'.') && self.items.get(idx + 1) == Some(&Item::Frac) =>
                {
                    skip_frac = true;
                }
                Item::Frac if std::mem::take(&mut skip_frac) => {}
                Item::Lit(c) => {
                    if b.get(p) != Some(&c) {
                        return None;
                    }
                    p += 1;
                }
                Item::Space => {
                    while b.get(p).is_some_and(u8::is_ascii_whitespace) {
                        p += 1;
                    }
                }
                Item::Year4 => {
                    let neg = b.get(p) == Some(&b'-');
                    if neg {
                        p += 1;
                    }
                    let y = num(b, &mut p, 4)? as i64;
                    year = if neg { -y } else { y };
                }
                Item::Year2 => {
                    let y = num(b, &mut p, 2)? as i64;
                    year = if y < 69 { 2000 + y } else { 1900 + y };
                }
                Item::Month => month = num(b, &mut p, 2)? as u32,
                Item::Day => day = num(b, &mut p, 2)? as u32,
                Item::DayOfYear => yday = Some(num(b, &mut p, 3)? as u32),
                Item::Hour24 => hour = num(b, &mut p, 2)? as u32,
                Item::Hour12 => {
                    hour = num(b, &mut p, 2)? as u32;
                    hour12 = true;
                }
                Item::Minute => minute = num(b, &mut p, 2)? as u32,
                Item::Second => second = num(b, &mut p, 2)? as u32,
                Item::Frac => {
                    let start = p;
                    let mut n: u32 = 0;
                    while let Some(d) = b.get(p).filter(|c| c.is_ascii_digit()) {
                        if p - start < 9 {
                            n = n * 10 + u32::from(d - b'0');
                        }
                        p += 1;
                    }
                    let digits = p - start;
                    if digits == 0 {
                        return None;
                    }
                    for _ in digits..9 {
                        n *= 10;
                    }
                    nanos = n;
                }
                Item::Epoch => {
                    let neg = b.get(p) == Some(&b'-');
                    if neg {
                        p += 1;
                    }
                    let v = num(b, &mut p, 18)? as i64;
                    epoch = Some(if neg { -v } else { v });
                }
                Item::MonthName => {
                    let (idx, len) = name_at(&b[p..], &MONTHS)?;
                    month = idx as u32 + 1;
                    p += len;
                }
                Item::Weekday => {
                    let (_, len) = name_at(&b[p..], &WEEKDAYS)?;
                    p += len;
                }
                Item::AmPm => {
                    let rest = b.get(p..p + 2)?;
                    pm = Some(if rest.eq_ignore_ascii_case(b"pm") {
                        true
                    } else if rest.eq_ignore_ascii_case(b"am") {
                        false
                    } else {
                        return None;
                    });
                    p += 2;
                }
                Item::Offset => {
                    let (off, len) = parse_offset(&b[p..])?;
                    offset = Some(off);
                    p += len;
                }
                Item::ZoneName => {
                    let start = p;
                    while b.get(p).is_some_and(u8::is_ascii_alphabetic) {
                        p += 1;
                    }
                    let name = &b[start..p];
                    if name.is_empty() {
                        return None;
                    }
                    // Only UTC names carry a known offset; other
                    // abbreviations are ambiguous (CST) and leave the
                    // default in place.
                    if [&b"UTC"[..], b"GMT", b"Z", b"UT"]
                        .iter()
                        .any(|z| name.eq_ignore_ascii_case(z))
                    {
                        offset = Some(0);
                    }
                }
            }
        }
        if let Some(e) = epoch {
            return e.checked_mul(1_000_000_000)?.checked_add(i64::from(nanos));
        }
        if hour12 {
            if !(1..=12).contains(&hour) {
                return None;
            }
            hour %= 12;
            if pm == Some(true) {
                hour += 12;
            }
        } else if pm == Some(true) && hour < 12 {
            hour += 12;
        }
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let days = match yday {
            Some(yd) if (1..=366).contains(&yd) => days_from_civil(year, 1, 1) + i64::from(yd) - 1,
            Some(_) => return None,
            None => {
                if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
                    return None;
                }
                days_from_civil(year, month, day)
            }
        };
        let secs =
            days * 86400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
                - offset.unwrap_or(default_offset);
        secs.checked_mul(1_000_000_000)?
            .checked_add(i64::from(nanos))
    }

    /// Writes `time_ns` (UTC) in this format. `%L` writes nine digits, `%z`
    /// `+0000`, `%Z` `UTC`; the 12-hour forms and day of year are written as
    /// strftime does.
    pub fn format(&self, time_ns: i64) -> String {
        use std::fmt::Write as _;
        let secs = time_ns.div_euclid(1_000_000_000);
        let nanos = time_ns.rem_euclid(1_000_000_000);
        let days = secs.div_euclid(86400);
        let sod = secs.rem_euclid(86400);
        let (y, m, d) = civil_from_days(days);
        let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
        let mut out = String::with_capacity(32);
        for &item in &self.items {
            let _ = match item {
                Item::Lit(c) => {
                    out.push(c as char);
                    Ok(())
                }
                Item::Space => {
                    out.push(' ');
                    Ok(())
                }
                Item::Year4 => write!(out, "{y:04}"),
                Item::Year2 => write!(out, "{:02}", y.rem_euclid(100)),
                Item::Month => write!(out, "{m:02}"),
                Item::MonthName => {
                    let name = MONTHS[(m - 1) as usize];
                    out.push_str(&name[..1].to_ascii_uppercase());
                    out.push_str(&name[1..3]);
                    Ok(())
                }
                Item::Day => write!(out, "{d:02}"),
                Item::DayOfYear => write!(out, "{:03}", days - days_from_civil(y, 1, 1) + 1),
                Item::Hour24 => write!(out, "{h:02}"),
                Item::Hour12 => write!(out, "{:02}", if h % 12 == 0 { 12 } else { h % 12 }),
                Item::AmPm => {
                    out.push_str(if h < 12 { "AM" } else { "PM" });
                    Ok(())
                }
                Item::Minute => write!(out, "{mi:02}"),
                Item::Second => write!(out, "{s:02}"),
                Item::Frac => write!(out, "{nanos:09}"),
                Item::Epoch => write!(out, "{secs}"),
                Item::Weekday => {
                    // 1970-01-01 was a Thursday.
                    let name = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
                    out.push_str(&name[..1].to_ascii_uppercase());
                    out.push_str(&name[1..3]);
                    Ok(())
                }
                Item::Offset => {
                    out.push_str("+0000");
                    Ok(())
                }
                Item::ZoneName => {
                    out.push_str("UTC");
                    Ok(())
                }
            };
        }
        out
    }
}

/// Up to `max` digits, after optional leading spaces (strptime skips them
/// for numbers, which `%e` relies on).
fn num(b: &[u8], p: &mut usize, max: usize) -> Option<u64> {
    while b.get(*p) == Some(&b' ') {
        *p += 1;
    }
    let start = *p;
    let mut v: u64 = 0;
    while *p - start < max {
        match b.get(*p) {
            Some(c) if c.is_ascii_digit() => {
                v = v * 10 + u64::from(c - b'0');
                *p += 1;
            }
            _ => break,
        }
    }
    (*p > start).then_some(v)
}

/// A month or weekday name at the start of `b`, full or abbreviated to three
/// letters, any case: its index and length.
fn name_at(b: &[u8], names: &[&str]) -> Option<(usize, usize)> {
    let head = b.get(..3)?;
    let i = names
        .iter()
        .position(|n| head.eq_ignore_ascii_case(&n.as_bytes()[..3]))?;
    let full = names[i].as_bytes();
    if b.len() >= full.len() && b[..full.len()].eq_ignore_ascii_case(full) {
        Some((i, full.len()))
    } else {
        Some((i, 3))
    }
}

/// `Z`, `+hh`, `+hhmm` or `+hh:mm`: seconds east of UTC and the length read.
fn parse_offset(b: &[u8]) -> Option<(i64, usize)> {
    match b.first()? {
        b'Z' | b'z' => return Some((0, 1)),
        b'+' | b'-' => {}
        _ => return None,
    }
    let sign = if b[0] == b'-' { -1 } else { 1 };
    let digit = |i: usize| {
        b.get(i)
            .filter(|c| c.is_ascii_digit())
            .map(|c| i64::from(c - b'0'))
    };
    let hh = digit(1)? * 10 + digit(2)?;
    let (mm, len) = if b.get(3) == Some(&b':') {
        (digit(4)? * 10 + digit(5)?, 6)
    } else if let (Some(a), Some(c)) = (digit(3), digit(4)) {
        (a * 10 + c, 5)
    } else {
        (0, 3)
    };
    if hh > 23 || mm > 59 {
        return None;
    }
    Some((sign * (hh * 3600 + mm * 60), len))
}

/// `+hhmm`, `-hh:mm` or `Z` as seconds east of UTC (fluent-bit's
/// `Time_Offset`).
pub fn parse_utc_offset(s: &str) -> Option<i64> {
    let s = s.trim();
    let (off, len) = parse_offset(s.as_bytes())?;
    (len == s.len()).then_some(off)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn current_year() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    civil_from_days(secs.div_euclid(86400)).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(fmt: &str, s: &str) -> Option<i64> {
        TimeFormat::new(fmt).unwrap().parse(s, 0)
    }

    #[test]
    fn nginx_format_with_offset() {
        // 2019-03-17T10:09:38+01:00 = 1552813778 UTC.
        assert_eq!(
            t("%d/%b/%Y:%H:%M:%S %z", "17/Mar/2019:10:09:38 +0100"),
            Some(1_552_813_778_000_000_000)
        );
    }

    #[test]
    fn fractions_and_rfc3339() {
        assert_eq!(
            t("%Y-%m-%dT%H:%M:%S.%L%z", "2020-01-02T03:04:05.123456789Z"),
            Some(1_577_934_245_123_456_789)
        );
        assert_eq!(
            t("%Y-%m-%dT%H:%M:%S.%L", "2020-01-02T03:04:05.5Z"),
            Some(1_577_934_245_500_000_000)
        );
        assert_eq!(
            t("%Y-%m-%dT%H:%M:%S.%L%z", "2020-01-02T03:04:05Z"),
            Some(1_577_934_245_000_000_000)
        );
        assert_eq!(t("%H:%M:%S.%L", "03:04:05."), None);
        assert_eq!(
            t("%Y-%m-%dT%H:%M:%S.%L %z", "2020-01-02T03:04:05.000 -02:30"),
            Some(1_577_934_245_000_000_000 + 9000 * 1_000_000_000)
        );
    }

    #[test]
    fn seed_timing_format_and_misc() {
        assert_eq!(
            t("%Y/%m/%d %T", "2018/11/10 08:00:00"),
            Some(1_541_836_800_000_000_000)
        );
        assert_eq!(t("%s", "1541836800"), Some(1_541_836_800_000_000_000));
        assert_eq!(t("%s.%L", "1541836800.25"), Some(1_541_836_800_250_000_000));
        assert_eq!(
            t("%F %I:%M %p", "2018-11-10 12:30 AM"),
            Some(1_541_809_800_000_000_000)
        );
        assert_eq!(
            t("%a, %e %B %Y", "Sat,  10 November 2018"),
            Some(1_541_808_000_000_000_000)
        );
        assert_eq!(t("%Y %j", "2018 314"), Some(1_541_808_000_000_000_000));
        assert_eq!(t("%D", "11/10/18"), Some(1_541_808_000_000_000_000));
        assert_eq!(
            t("%Y-%m-%d %Z", "2018-11-10 GMT"),
            Some(1_541_808_000_000_000_000)
        );
    }

    #[test]
    fn rejects_bad_dates_and_formats() {
        assert_eq!(t("%Y-%m-%d", "2019-02-29"), None);
        assert_eq!(t("%Y-%m-%d", "2020-13-01"), None);
        assert_eq!(t("%H:%M", "24:00"), None);
        assert_eq!(t("%Y-%m", "x"), None);
        assert!(TimeFormat::new("%Q").is_err());
        assert!(TimeFormat::new("abc%").is_err());
    }

    #[test]
    fn default_offset_applies_without_z() {
        let f = TimeFormat::new("%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(f.parse("1970-01-01 01:00:00", 3600), Some(0));
        assert_eq!(parse_utc_offset("+0100"), Some(3600));
        assert_eq!(parse_utc_offset("-05:30"), Some(-19800));
        assert_eq!(parse_utc_offset("+01x"), None);
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 10_957, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
