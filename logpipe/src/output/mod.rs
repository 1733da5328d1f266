//! Outputs: where records go. One plain synchronous seam: an output takes a
//! batch of records and says whether they were delivered ([`Flush::Ok`]),
//! should be tried again later ([`Flush::Retry`]) or can never be
//! ([`Flush::Error`]), as fluent-bit's `FLB_OK`, `FLB_RETRY` and
//! `FLB_ERROR`. Retries, backoff and buffering are the pipeline's business
//! (see the engine), not the output's.

pub mod file;
#[cfg(feature = "http")]
pub mod http;
pub mod null;
pub mod stdout;

use crate::config::Section;
use crate::error::Result;
use crate::record::Record;

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flush {
    /// Delivered.
    Ok,
    /// Not delivered; trying again later may work (connection refused, 5xx,
    /// 429).
    Retry(String),
    /// Not delivered and never will be (the destination rejected the data).
    Error(String),
}

/// A destination for records.
pub trait Output: Send {
    /// Delivers `records` (all of them, or says why not).
    fn flush(&mut self, records: &[Record]) -> Flush;
}

/// Keys every `[OUTPUT]` may have; the pipeline reads them.
pub const COMMON_KEYS: &[&str] = &[
    "match",
    "match_regex",
    "retry_limit",
    "storage.*",
    "workers",
    "net.*",
    "tls",
    "tls.*",
];

/// Makes the output an `[OUTPUT]` section names, checking its keys.
pub fn build(s: &Section) -> Result<Box<dyn Output>> {
    let name = s
        .name()
        .ok_or_else(|| s.error(None, "[OUTPUT] without a Name"))?
        .to_ascii_lowercase();
    let keys = |own: &[&str]| -> Result<()> {
        let all: Vec<&str> = COMMON_KEYS.iter().chain(own).copied().collect();
        s.check_keys(&all)
    };
    if s.get_bool_or("tls", false)? {
        return Err(s.error_at(
            "tls",
            "TLS is not supported by this build (use a local TLS proxy)",
        ));
    }
    Ok(match name.as_str() {
        "stdout" => {
            keys(stdout::KEYS)?;
            Box::new(stdout::Stdout::from_section(s)?)
        }
        "file" => {
            keys(file::KEYS)?;
            Box::new(file::FileOut::from_section(s)?)
        }
        "null" => {
            keys(&[])?;
            Box::new(null::Null)
        }
        #[cfg(feature = "http")]
        "http" => {
            keys(http::HTTP_KEYS)?;
            Box::new(http::HttpOut::from_section(s)?)
        }
        #[cfg(feature = "http")]
        "es" | "elasticsearch" => {
            keys(http::ES_KEYS)?;
            Box::new(http::Es::from_section(s)?)
        }
        #[cfg(feature = "http")]
        "loki" => {
            keys(http::LOKI_KEYS)?;
            Box::new(http::Loki::from_section(s)?)
        }
        #[cfg(not(feature = "http"))]
        "http" | "es" | "elasticsearch" | "loki" => {
            return Err(s.error_at(
                "name",
                format!("output '{name}' needs vigil-logpipe's `http` feature"),
            ));
        }
        other => {
            return Err(s.error_at("name", format!("unknown output plugin '{other}'")));
        }
    })
}

/// Seconds and nanoseconds of a time in ns since the epoch (floor division,
/// so times before 1970 come out right).
pub(crate) fn split_time(ns: i64) -> (i64, u32) {
    (
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
}

/// (year, month, day, hour, minute, second) in UTC.
pub(crate) fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem / 60 % 60) as u32,
        (rem % 60) as u32,
    )
}

/// Formats a UTC time with the strftime conversions index and timestamp
/// names use: `%Y %y %m %d %H %M %S %j %b %%` (others are kept as written).
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn format_time(fmt: &str, ns: i64) -> String {
    use std::fmt::Write;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (secs, _) = split_time(ns);
    let (y, mo, d, h, mi, s) = civil(secs);
    let mut out = String::with_capacity(fmt.len() + 8);
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let _ = match chars.next() {
            Some('Y') => write!(out, "{y:04}"),
            Some('y') => write!(out, "{:02}", y.rem_euclid(100)),
            Some('m') => write!(out, "{mo:02}"),
            Some('d') => write!(out, "{d:02}"),
            Some('H') => write!(out, "{h:02}"),
            Some('M') => write!(out, "{mi:02}"),
            Some('S') => write!(out, "{s:02}"),
            Some('b') => write!(out, "{}", MONTHS[(mo - 1) as usize]),
            Some('j') => {
                let jan1 = civil_days(y, 1, 1);
                let today = secs.div_euclid(86_400);
                write!(out, "{:03}", today - jan1 + 1)
            }
            Some('%') => write!(out, "%"),
            Some(other) => write!(out, "%{other}"),
            None => write!(out, "%"),
        };
    }
    out
}

#[cfg_attr(not(feature = "http"), allow(dead_code))]
fn civil_days(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2024-01-02T03:04:05.678Z` (milliseconds) or with nanoseconds.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn iso8601(ns: i64, nanos: bool) -> String {
    let (secs, frac) = split_time(ns);
    let (y, mo, d, h, mi, s) = civil(secs);
    if nanos {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:09}Z")
    } else {
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
            frac / 1_000_000
        )
    }
}

/// How the `json_date_key` field is written (`json_date_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFormat {
    /// Seconds as a float with microseconds (`double`, the default).
    Double,
    /// Whole seconds (`epoch`).
    Epoch,
    /// `2024-01-02T03:04:05.678901Z` (`iso8601`).
    Iso8601,
    /// `2024-01-02 03:04:05.678901` (`java_sql_timestamp`).
    JavaSql,
}

impl DateFormat {
    /// Reads `json_date_format` from `s`.
    pub fn from_section(s: &Section) -> Result<Self> {
        Ok(
            match s
                .get("json_date_format")
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None | Some("double") => DateFormat::Double,
                Some("epoch") => DateFormat::Epoch,
                Some("iso8601") => DateFormat::Iso8601,
                Some("java_sql_timestamp") => DateFormat::JavaSql,
                Some(other) => {
                    return Err(s.error_at(
                    "json_date_format",
                    format!(
                        "unknown json_date_format '{other}' (double, epoch, iso8601, java_sql_timestamp)"
                    ),
                ));
                }
            },
        )
    }

    /// Appends the time as this format writes it (JSON: strings quoted).
    pub fn write(self, out: &mut String, ns: i64) {
        use std::fmt::Write;
        let (secs, frac) = split_time(ns);
        let _ = match self {
            DateFormat::Double => write!(out, "{secs}.{:06}", frac / 1000),
            DateFormat::Epoch => write!(out, "{secs}"),
            DateFormat::Iso8601 | DateFormat::JavaSql => {
                let (y, mo, d, h, mi, s) = civil(secs);
                if self == DateFormat::Iso8601 {
                    write!(
                        out,
                        "\"{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}Z\"",
                        frac / 1000
                    )
                } else {
                    write!(
                        out,
                        "\"{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{:06}\"",
                        frac / 1000
                    )
                }
            }
        };
    }
}

/// Appends a record as a JSON object with the time first under `date_key`
/// (when given), as fluent-bit's `json`/`json_lines` formats do.
pub(crate) fn write_json_record(
    out: &mut String,
    r: &Record,
    date_key: Option<&str>,
    fmt: DateFormat,
) {
    match date_key {
        Some(k) => {
            out.push('{');
            json_str(out, k);
            out.push(':');
            fmt.write(out, r.time_ns);
            for (k, v) in r.fields.iter() {
                out.push(',');
                json_str(out, k);
                out.push(':');
                json_value(out, v);
            }
            out.push('}');
        }
        None => json_fields(out, &r.fields),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_and_formats() {
        // 2024-02-29T13:14:15.123456789Z
        let ns = 1_709_212_455_123_456_789;
        assert_eq!(iso8601(ns, false), "2024-02-29T13:14:15.123Z");
        assert_eq!(iso8601(ns, true), "2024-02-29T13:14:15.123456789Z");
        assert_eq!(format_time("logstash-%Y.%m.%d", ns), "logstash-2024.02.29");
        assert_eq!(format_time("%j %b %y %%", ns), "060 Feb 24 %");
        assert_eq!(iso8601(-1, false), "1969-12-31T23:59:59.999Z");
        let mut s = String::new();
        DateFormat::Double.write(&mut s, ns);
        assert_eq!(s, "1709212455.123456");
    }
}

/// Whether any of the eight bytes of `w` needs escaping in a JSON string
/// (below 0x20, `"` or `\`). Exact: the borrow of the subtraction only
/// spreads upwards from a byte that really matches.
#[inline]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q & HIGH;
    let bs = w ^ (ONES * u64::from(b'\\'));
    let backslash = bs.wrapping_sub(ONES) & !bs & HIGH;
    below_space | quote | backslash != 0
}

/// Appends `s` as a JSON string literal: the same bytes as
/// [`crate::json::write_str`] (a test compares them), eight bytes at a time
/// over the clean stretches. Outputs encode every field of every record,
/// which made the byte loop the largest cost of a plain tail → file run.
pub(crate) fn json_str(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        while let Some(word) = b.get(i..i + 8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(word);
            if word_needs_escape(u64::from_le_bytes(a)) {
                break;
            }
            i += 8;
        }
        let Some(&c) = b.get(i) else { break };
        let esc = match c {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{c:04x}");
        } else {
            out.push_str(esc);
        }
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends `value` as JSON (as [`crate::json::write_value`], faster strings).
pub(crate) fn json_value(out: &mut String, value: &crate::record::Value) {
    use crate::record::Value;
    match value {
        Value::Str(s) => json_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(out, item);
            }
            out.push(']');
        }
        Value::Map(f) => json_fields(out, f),
        other => crate::json::write_value(out, other),
    }
}

/// Appends `fields` as a JSON object (as [`crate::json::write_fields`]).
pub(crate) fn json_fields(out: &mut String, fields: &crate::record::Fields) {
    out.push('{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(out, k);
        out.push(':');
        json_value(out, v);
    }
    out.push('}');
}

#[cfg(test)]
mod json_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fast_strings_match_the_reference(s in "(\\PC|[\\x00-\\x1f\"\\\\é€😀]){0,64}") {
            let mut fast = String::new();
            json_str(&mut fast, &s);
            let mut slow = String::new();
            crate::json::write_str(&mut slow, &s);
            prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn every_byte_value_in_every_position() {
        for c in 0u8..0x80 {
            for pos in 0..17 {
                let mut s = "a".repeat(pos);
                s.push(c as char);
                s.push_str("bcdefghij");
                let mut fast = String::new();
                json_str(&mut fast, &s);
                let mut slow = String::new();
                crate::json::write_str(&mut slow, &s);
                assert_eq!(fast, slow, "byte {c:#x} at {pos}");
            }
        }
    }
}
