//! Parameter parsing as Prometheus's API does it: times as float seconds or
//! RFC 3339, durations as float seconds or Prometheus durations (`1h30m`),
//! with its error texts.

/// Prometheus's `MinTime` and `MaxTime` in milliseconds (the defaults of
/// `start` and `end`).
pub const MIN_TIME_MS: i64 = -9_223_309_901_257_974_000;
/// See [`MIN_TIME_MS`].
pub const MAX_TIME_MS: i64 = 9_223_309_901_257_974_999;

/// A time parameter in milliseconds: float seconds (rounded to the
/// millisecond as Prometheus does), RFC 3339 with an optional fraction, or
/// the formatted min and max times clients send for "unbounded".
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>()
        && !s.eq_ignore_ascii_case("nan")
        && !s.to_ascii_lowercase().contains("inf")
    {
        let secs = f.trunc();
        let frac = ((f - secs) * 1000.0).round();
        let ms = secs * 1000.0 + frac;
        if ms.is_finite() && ms >= MIN_TIME_MS as f64 && ms <= MAX_TIME_MS as f64 {
            return Ok(ms as i64);
        }
        return Err(format!("cannot parse {s:?} to a valid timestamp"));
    }
    match s {
        "-292273086-05-16T16:47:06Z" => return Ok(MIN_TIME_MS),
        "292277025-08-18T07:12:54.999999999Z" => return Ok(MAX_TIME_MS),
        _ => {}
    }
    parse_rfc3339(s).ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

/// `2006-01-02T15:04:05.999999999Z07:00` in milliseconds (the fraction is
/// truncated to the millisecond).
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = b.get(r)?;
        if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(d).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        for (k, &c) in b[start..i].iter().take(3).enumerate() {
            ms += i64::from(c - b'0') * [100, 10, 1][k];
        }
    }
    let offset_s = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let oh = i64::from(h1 - b'0') * 10 + i64::from(h2 - b'0');
            let om = i64::from(m1 - b'0') * 10 + i64::from(m2 - b'0');
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    Some(secs * 1000 + ms)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date and time of a millisecond timestamp, for snapshot names
/// and RFC 3339 output: `(year, month, day, hour, minute, second)`.
pub fn civil(ms: i64) -> (i64, i64, i64, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A duration parameter in milliseconds: float seconds, or a Prometheus
/// duration (`1y2w3d4h5m6s7ms`, units in that order, each at most once).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse {s:?} to a valid duration");
    if let Ok(f) = s.parse::<f64>() {
        if s.eq_ignore_ascii_case("nan") || s.to_ascii_lowercase().contains("inf") {
            return Err(bad());
        }
        let ms = f * 1000.0;
        if ms.abs() >= 9.2e18 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ms.round() as i64);
    }
    prom_duration_ms(s).ok_or_else(bad)
}

/// A Prometheus duration string in milliseconds.
pub fn prom_duration_ms(s: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(0);
    }
    let b = s.as_bytes();
    let (mut i, mut total, mut next_unit) = (0usize, 0i64, 0usize);
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let n: i64 = s[start..i].parse().ok()?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let k = UNITS.iter().position(|(u, _)| *u == unit)?;
        if k < next_unit {
            return None;
        }
        next_unit = k + 1;
        total = total.checked_add(n.checked_mul(UNITS[k].1)?)?;
    }
    Some(total)
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1"), Ok(1000));
        assert_eq!(parse_time("1.5"), Ok(1500));
        assert_eq!(parse_time("-1.5"), Ok(-1500));
        // Float noise: 1.0005 is just under; Prometheus gets 1 s too.
        assert_eq!(parse_time("1.0005"), Ok(1000));
        assert_eq!(parse_time("1795351115.874"), Ok(1_795_351_115_874));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(parse_time("2026-11-22T12:00:00.25Z"), Ok(1_795_348_800_250));
        assert_eq!(
            parse_time("2026-11-22T13:00:00+01:00"),
            parse_time("2026-11-22T12:00:00Z")
        );
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), Ok(951_782_400_000));
        assert_eq!(parse_time("-292273086-05-16T16:47:06Z"), Ok(MIN_TIME_MS));
        for bad in [
            "abc",
            "",
            "NaN",
            "Inf",
            "2001-02-29T00:00:00Z",
            "2026-11-22 12:00:00Z",
            "2026-11-22T12:00:00",
        ] {
            assert_eq!(
                parse_time(bad),
                Err(format!("cannot parse {bad:?} to a valid timestamp")),
                "{bad}"
            );
        }
    }

    #[test]
    fn civil_round_trips() {
        for ms in [0, 951_782_400_000, 1_795_348_800_250, -86_400_000] {
            let (y, m, d, h, mi, s) = civil(ms);
            let text = format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
            assert_eq!(parse_time(&text), Ok(ms.div_euclid(1000) * 1000), "{text}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(15_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("2.5"), Ok(2500));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("1d1ms"), Ok(86_400_001));
        for bad in ["", "1ns", "0.1s", "1m1h", "1s1s", "abc", "s"] {
            assert_eq!(
                parse_duration(bad),
                Err(format!("cannot parse {bad:?} to a valid duration")),
                "{bad}"
            );
        }
        assert!(
            parse_duration("1e300")
                .unwrap_err()
                .contains("overflows int64")
        );
    }
}
