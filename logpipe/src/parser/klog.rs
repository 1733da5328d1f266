//! The built-in `klog` parser: the header Kubernetes components (kubelet,
//! kube-apiserver, anything on `k8s.io/klog`, glog before it) put on every
//! line.
//!
//! ```text
//! Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg
//! I1122 06:00:00.000000    1234 server.go:12] Started kubelet
//! ```
//!
//! `L` is the severity (`I`nfo, `W`arning, `E`rror, `F`atal); the thread id
//! is right-aligned in a field of 7. The fields are `severity` (`INFO`,
//! `WARNING`, `ERROR`, `FATAL`), `thread` and `line` (integers), `file` and
//! `message`; the time becomes the record's.
//!
//! The header has no year: the current year is taken, or the previous one
//! when that would put the line more than a day in the future (a December
//! line read in January). klog writes the node's local time, which on a
//! Kubernetes node is UTC as a rule; the time is read as UTC.

use super::{LineParser, Parsed, fail};
use crate::Result;
use crate::record::{Fields, Value};
use crate::strftime::days_from_civil;

const NS: i64 = 1_000_000_000;
const DAY_NS: i64 = 86_400 * NS;

/// The klog header parser.
#[derive(Debug, Clone)]
pub struct KlogParser {
    name: String,
    /// A fixed "now" for the year (tests and golden files); the clock
    /// otherwise.
    now_ns: Option<i64>,
}

impl KlogParser {
    /// A parser called `name` that takes the year from the clock.
    pub fn new(name: &str) -> Self {
        KlogParser {
            name: name.to_owned(),
            now_ns: None,
        }
    }

    /// As [`new`](KlogParser::new), with the year taken as if now were
    /// `now_ns` (nanoseconds since the epoch).
    pub fn with_now(name: &str, now_ns: i64) -> Self {
        KlogParser {
            name: name.to_owned(),
            now_ns: Some(now_ns),
        }
    }
}

/// Reads `n` ASCII digits at the start of `s`.
fn digits(s: &[u8], n: usize) -> Option<u32> {
    let d = s.get(..n)?;
    d.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// The time from month, day and time of day in the year of `now_ns` (or
/// the one before, when that is more than a day ahead of now).
fn time_in_year(now_ns: i64, month: u32, day: u32, secs_of_day: i64, frac_ns: i64) -> Option<i64> {
    let now_days = now_ns.div_euclid(DAY_NS);
    let (year, _, _) = crate::strftime::civil_from_days(now_days);
    let at = |y: i64| -> Option<i64> {
        // days_from_civil takes any day; a day past the month's end would
        // roll over, so it is checked against the month's length.
        let days = days_from_civil(y, month, day);
        let (_, m2, _) = crate::strftime::civil_from_days(days);
        (m2 == month).then(|| {
            days.checked_mul(DAY_NS)?
                .checked_add(secs_of_day * NS)?
                .checked_add(frac_ns)
        })?
    };
    match at(year) {
        Some(t) if t <= now_ns.saturating_add(DAY_NS) => Some(t),
        // Feb 29 of a leap year read in a later, common year falls here
        // too and is found in the year before only when that is a leap
        // year; otherwise the line keeps no time.
        _ => at(year - 1),
    }
}

impl LineParser for KlogParser {
    fn name(&self) -> &str {
        &self.name
    }

    fn parse(&self, text: &str) -> Result<Parsed> {
        let b = text.as_bytes();
        let bad = |what: &str| fail(&self.name, format!("not a klog line: {what}"));
        let severity = match b.first() {
            Some(b'I') => "INFO",
            Some(b'W') => "WARNING",
            Some(b'E') => "ERROR",
            Some(b'F') => "FATAL",
            _ => return Err(bad("no severity letter (I, W, E, F)")),
        };
        // INVARIANT: every index below is checked by `get`/`digits`, so a
        // short or odd line is an error, never a panic.
        let month = digits(&b[1..], 2).ok_or_else(|| bad("no month"))?;
        let day = digits(b.get(3..).unwrap_or(&[]), 2).ok_or_else(|| bad("no day"))?;
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(bad("month or day out of range"));
        }
        if b.get(5) != Some(&b' ') {
            return Err(bad("no space after the date"));
        }
        let tod = b.get(6..).unwrap_or(&[]);
        let (h, m, s) = match (
            digits(tod, 2),
            digits(tod.get(3..).unwrap_or(&[]), 2),
            digits(tod.get(6..).unwrap_or(&[]), 2),
        ) {
            (Some(h), Some(m), Some(s)) if tod[2] == b':' && tod[5] == b':' => (h, m, s),
            _ => return Err(bad("no hh:mm:ss")),
        };
        // 60 is a leap second, which Go's clock never shows but a copy of
        // a line might.
        if h > 23 || m > 59 || s > 60 {
            return Err(bad("time of day out of range"));
        }
        let mut i = 14;
        let mut frac_ns = 0i64;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            let mut scale = NS / 10;
            while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
                frac_ns += i64::from(d - b'0') * scale;
                scale /= 10;
                i += 1;
            }
            if i == start {
                return Err(bad("no digits after the seconds' point"));
            }
        }
        let spaces = i;
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        if i == spaces {
            return Err(bad("no space before the thread id"));
        }
        let tid_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let thread: i64 = text[tid_start..i]
            .parse()
            .map_err(|_| bad("no thread id"))?;
        if b.get(i) != Some(&b' ') {
            return Err(bad("no space after the thread id"));
        }
        let rest = &text[i + 1..];
        let close = rest
            .find(']')
            .ok_or_else(|| bad("no ']' after file:line"))?;
        let (file, line) = rest[..close]
            .rsplit_once(':')
            .ok_or_else(|| bad("no ':' between file and line"))?;
        let line: i64 = line
            .parse()
            .ok()
            .filter(|_| !file.is_empty())
            .ok_or_else(|| bad("no file:line"))?;
        let after = &rest[close + 1..];
        let message = after.strip_prefix(' ').unwrap_or(after);

        let now = self.now_ns.unwrap_or_else(crate::input::now_ns);
        let secs_of_day = i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s);
        let time_ns = time_in_year(now, month, day, secs_of_day, frac_ns);
        let mut fields = Fields::new();
        fields.push("severity", severity);
        fields.push("thread", Value::Int(thread));
        fields.push("file", file);
        fields.push("line", Value::Int(line));
        fields.push("message", message);
        Ok(Parsed { fields, time_ns })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-22T12:00:00Z.
    const NOW: i64 = 1_795_348_800 * NS;

    #[test]
    fn reads_the_header() {
        let p = KlogParser::with_now("klog", NOW);
        let out = p
            .parse("I1122 06:00:00.000000    1234 server.go:12] Started kubelet")
            .unwrap();
        assert_eq!(out.time_ns, Some(NOW - 6 * 3600 * NS));
        let got: Vec<(&str, String)> = out.fields.iter().map(|(k, v)| (k, v.to_string())).collect();
        assert_eq!(
            got,
            [
                ("severity", "INFO".to_owned()),
                ("thread", "1234".to_owned()),
                ("file", "server.go".to_owned()),
                ("line", "12".to_owned()),
                ("message", "Started kubelet".to_owned()),
            ]
        );
    }

    #[test]
    fn a_december_line_read_in_january_is_last_year() {
        // 2027-01-01T00:10:00Z.
        let now = 1_798_762_200 * NS;
        let p = KlogParser::with_now("klog", now);
        let t = p
            .parse("E1231 23:59:59.5 1 a.go:1] x")
            .unwrap()
            .time_ns
            .unwrap();
        assert_eq!(t, 1_798_761_599 * NS + NS / 2);
        // Tomorrow's date (clocks a little apart) stays this year.
        let p = KlogParser::with_now("klog", NOW);
        let t = p
            .parse("W1123 01:00:00 1 a.go:1] x")
            .unwrap()
            .time_ns
            .unwrap();
        assert_eq!(t, NOW + 13 * 3600 * NS);
    }

    #[test]
    fn rejects_what_is_not_klog() {
        let p = KlogParser::with_now("klog", NOW);
        for line in [
            "",
            "X1122 06:00:00.000000 1 a.go:1] m",
            "I1322 06:00:00.000000 1 a.go:1] m",
            "I1100 06:00:00.000000 1 a.go:1] m",
            "I1122 25:00:00.000000 1 a.go:1] m",
            "I1122 06:00:00. 1 a.go:1] m",
            "I1122 06:00:00.000000 x a.go:1] m",
            "I1122 06:00:00.000000 1 a.go] m",
            "I1122 06:00:00.000000 1 a.go:1 m",
            "I1122 06:00:00.000000 1 :1] m",
            "I1122",
            "I11é2 06:00:00 1 a.go:1] m",
        ] {
            assert!(p.parse(line).is_err(), "{line:?}");
        }
        // Day 31 of a 30-day month reads, without a time.
        let out = p.parse("I1131 06:00:00 1 a.go:1] m").unwrap();
        assert_eq!(out.time_ns, None);
    }
}
