//! Number parsing for sample values and timestamps.
//!
//! Values accept what Prometheus's parsers accept (Go's `ParseFloat` without
//! hex or underscores): decimal with optional sign, point and exponent,
//! `Inf`/`Infinity` with optional sign and `NaN`, case-insensitive. Out-of-range
//! values (`1e400`) are refused, as Go's `ParseFloat` refuses them. Most values
//! on the wire are short decimals, which take an exact fast path.

use super::scan::digit_run;

/// Powers of ten exactly representable as f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The shape of a decimal real number, as the OpenMetrics ABNF defines it.
struct Decimal {
    neg: bool,
    /// Up to 19 significant digits as an integer; `exact` says whether all
    /// digits fit.
    mantissa: u64,
    exact: bool,
    /// Decimal exponent to apply to `mantissa`.
    exp: i64,
    has_point: bool,
    has_exp: bool,
}

/// Scans `[sign] digits [. digits] [e [sign] digits]` with at least one digit
/// in the mantissa. `None` if `s` is not entirely that.
fn scan_decimal(s: &[u8]) -> Option<Decimal> {
    let mut i = 0;
    let mut neg = false;
    if let Some(&c) = s.first() {
        if c == b'+' || c == b'-' {
            neg = c == b'-';
            i = 1;
        }
    }
    let mut acc = Digits {
        mantissa: 0,
        exact: true,
        exp: 0,
        sig: 0,
    };
    let mut digits = 0usize;
    while i < s.len() && s[i].is_ascii_digit() {
        acc.push(s[i], false);
        digits += 1;
        i += 1;
    }
    let mut has_point = false;
    if i < s.len() && s[i] == b'.' {
        has_point = true;
        i += 1;
        while i < s.len() && s[i].is_ascii_digit() {
            acc.push(s[i], true);
            digits += 1;
            i += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    let mut has_exp = false;
    if i < s.len() && (s[i] == b'e' || s[i] == b'E') {
        has_exp = true;
        i += 1;
        let mut eneg = false;
        if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
            eneg = s[i] == b'-';
            i += 1;
        }
        let start = i;
        let mut e: i64 = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            e = (e * 10 + i64::from(s[i] - b'0')).min(1_000_000);
            i += 1;
        }
        if i == start {
            return None;
        }
        acc.exp += if eneg { -e } else { e };
    }
    if i != s.len() {
        return None;
    }
    Some(Decimal {
        neg,
        mantissa: acc.mantissa,
        exact: acc.exact,
        exp: acc.exp,
        has_point,
        has_exp,
    })
}

/// The significant digits read so far.
struct Digits {
    /// Up to 19 significant digits.
    mantissa: u64,
    /// No non-zero digit was dropped.
    exact: bool,
    /// Decimal exponent to apply to `mantissa`.
    exp: i64,
    /// Significant digits in `mantissa` (leading zeros are not).
    sig: u32,
}

impl Digits {
    #[inline]
    fn push(&mut self, c: u8, fraction: bool) {
        let d = u64::from(c - b'0');
        if self.sig == 0 && d == 0 {
            // A leading zero: only its place value matters.
            self.exp -= i64::from(fraction);
        } else if self.sig < 19 {
            self.mantissa = self.mantissa * 10 + d;
            self.sig += 1;
            self.exp -= i64::from(fraction);
        } else {
            self.exact &= d == 0;
            self.exp += i64::from(!fraction);
        }
    }
}

/// Exact conversion when the mantissa and the power of ten are both exact
/// doubles (Clinger's fast path); `None` when it does not apply.
fn fast_value(d: &Decimal) -> Option<f64> {
    if !d.exact || d.mantissa > (1u64 << 53) {
        return None;
    }
    let m = d.mantissa as f64;
    let v = if d.exp == 0 {
        m
    } else if (1..=22).contains(&d.exp) {
        m * POW10[d.exp as usize]
    } else if (-22..0).contains(&d.exp) {
        m / POW10[(-d.exp) as usize]
    } else {
        return None;
    };
    Some(if d.neg { -v } else { v })
}

/// What kind of number text was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberKind {
    /// Digits only (with optional sign): an integer as OpenMetrics means it.
    Integer,
    /// Has a point or an exponent.
    Float,
    /// `Inf`, `Infinity`, `NaN` in any case, with sign for the infinities.
    Special,
}

/// Parses a sample or exemplar value. `None` when `s` is not a number.
pub(crate) fn parse_value(s: &str) -> Option<(f64, NumberKind)> {
    let b = s.as_bytes();
    // The most common value on the wire: a short unsigned integer.
    if !b.is_empty() && b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        let v = b
            .iter()
            .fold(0u64, |acc, &c| acc * 10 + u64::from(c - b'0'));
        return Some((v as f64, NumberKind::Integer));
    }
    if let Some(d) = scan_decimal(b) {
        let kind = if d.has_point || d.has_exp {
            NumberKind::Float
        } else {
            NumberKind::Integer
        };
        if let Some(v) = fast_value(&d) {
            return Some((v, kind));
        }
        let v: f64 = s.parse().ok()?;
        // Go's ParseFloat refuses values beyond the f64 range.
        if v.is_infinite() {
            return None;
        }
        return Some((v, kind));
    }
    special(b).map(|v| (v, NumberKind::Special))
}

/// The parser's fast path for a value: reads a decimal number starting at
/// `b[i]` (`[-] digits [. digits] [e [sign] digits]`, at most four exponent
/// digits) and returns it with the index of the byte after it. Clinger's
/// exact conversion when it applies, else the standard library's reader on
/// the token, as [`parse_value`] does; both are correctly rounded, so the
/// bits are [`parse_value`]'s. The caller checks what follows; on `None`
/// (no number, or one beyond the f64 range) it falls back to
/// [`parse_value`], which reports it.
#[inline]
pub(crate) fn parse_value_prefix(b: &[u8], i: usize) -> Option<(f64, usize)> {
    // The most common value of all, one digit (a 0 or 1 gauge, a small
    // count: 58 % of `/federate` samples), ended by the blank or line feed
    // that the caller tests next; the same value as the general reading.
    if let Some(&[c, after]) = b.get(i..).and_then(|t| t.first_chunk::<2>()) {
        let d = c.wrapping_sub(b'0');
        if d <= 9 && (after == b' ' || after == b'\n') {
            return Some((f64::from(d), i + 1));
        }
    }
    let mut j = i;
    let neg = b.get(j) == Some(&b'-');
    j += usize::from(neg);
    let (mut m, mut digits) = digit_run(b, j, 0);
    j += digits;
    let mut exp: i64 = 0;
    if b.get(j) == Some(&b'.') {
        let (f, nf) = digit_run(b, j + 1, m);
        j += 1 + nf;
        digits += nf;
        m = f;
        exp = -(nf as i64);
    }
    if digits == 0 {
        return None;
    }
    if let Some(&c) = b.get(j) {
        if c | 0x20 == b'e' {
            j += 1;
            let eneg = b.get(j) == Some(&b'-');
            if matches!(b.get(j), Some(b'-' | b'+')) {
                j += 1;
            }
            let (e, ne) = digit_run(b, j, 0);
            // Beyond four digits the exponent is out of the fast range
            // anyway (and could have wrapped).
            if ne == 0 || ne > 4 {
                return None;
            }
            j += ne;
            exp += if eneg { -(e as i64) } else { e as i64 };
        }
    }
    if digits > 19 || m > 1u64 << 53 || !(-22..=22).contains(&exp) {
        // Not exact with one operation (17-digit mantissas, as Go writes
        // timestamps in seconds, are common): the standard library's
        // correctly rounded reader on the token, which is what
        // `parse_value` falls back to for it, so the bits agree.
        let token = std::str::from_utf8(&b[i..j]).ok()?;
        let v: f64 = token.parse().ok()?;
        // Go's ParseFloat refuses values beyond the f64 range; the general
        // path reports them.
        return v.is_finite().then_some((v, j));
    }
    let v = m as f64;
    let v = if exp >= 0 {
        v * POW10[exp as usize]
    } else {
        v / POW10[(-exp) as usize]
    };
    Some((if neg { -v } else { v }, j))
}

/// The parser's fast path for a text 0.0.4 timestamp: `[-]` and 1 to 18
/// digits at `b[i]` (always in range), with the index after them. `None`
/// sends the line to the general path.
#[inline]
pub(crate) fn parse_ms_prefix(b: &[u8], i: usize) -> Option<(i64, usize)> {
    let neg = b.get(i) == Some(&b'-');
    let j = i + usize::from(neg);
    let (v, n) = digit_run(b, j, 0);
    if n == 0 || n > 18 {
        return None;
    }
    // At most 18 digits: below 10^18, inside i64.
    let v = v as i64;
    Some((if neg { -v } else { v }, j + n))
}

/// The parser's fast path for an OpenMetrics timestamp: `digits[.digits]`
/// seconds at `b[i]`, at most 19 digits in all (so exact, as
/// [`parse_seconds_as_ms`] reads them), as milliseconds truncated as there,
/// with the index after it. `None` (signs, exponents, longer numbers) sends
/// the line to the general path.
#[inline]
pub(crate) fn parse_seconds_prefix(b: &[u8], i: usize) -> Option<(i64, usize)> {
    let (s, n) = digit_run(b, i, 0);
    // Up to 15 integer digits: below 10^15 s, 10^18 ms, inside i64.
    if n == 0 || n > 15 {
        return None;
    }
    let mut j = i + n;
    let mut ms = s * 1000;
    if b.get(j) == Some(&b'.') {
        let (f, nf) = digit_run(b, j + 1, 0);
        if n + nf > 19 {
            return None;
        }
        ms += if nf <= 3 {
            f * 10u64.pow(3 - nf as u32)
        } else {
            f / 10u64.pow(nf as u32 - 3)
        };
        j += 1 + nf;
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        return None;
    }
    Some((ms as i64, j))
}

fn special(b: &[u8]) -> Option<f64> {
    let (neg, signed, rest) = match b.first() {
        Some(b'-') => (true, true, &b[1..]),
        Some(b'+') => (false, true, &b[1..]),
        _ => (false, false, b),
    };
    if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
        return Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if !signed && rest.eq_ignore_ascii_case(b"nan") {
        return Some(f64::NAN);
    }
    None
}

/// Parses a text 0.0.4 timestamp: integer milliseconds, optional sign.
pub(crate) fn parse_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 19 {
        return s.parse().ok();
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        // Accumulate toward the sign so i64::MIN is reachable.
        let d = i64::from(c - b'0');
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

/// Parses an OpenMetrics timestamp (seconds, a real number) into
/// milliseconds, exactly: digits past the millisecond are truncated toward
/// zero as Prometheus truncates, so `1.0019` is 1001 ms and `-0.0005` is 0
/// (but `1.005` is 1005, where Prometheus's float product gives 1004).
/// Timestamps beyond the i64 millisecond range (about 292 million years)
/// saturate. `None` when not a real number.
pub(crate) fn parse_seconds_as_ms(s: &str) -> Option<i64> {
    let d = scan_decimal(s.as_bytes())?;
    let saturated = if d.neg { i64::MIN } else { i64::MAX };
    if d.exact {
        // value = mantissa * 10^exp seconds = mantissa * 10^(exp+3) ms.
        let e = d.exp + 3;
        let mag: i128 = i128::from(d.mantissa);
        let ms = if d.mantissa == 0 {
            0
        } else if e >= 0 {
            match (e <= 19)
                .then(|| mag.checked_mul(10i128.pow(e as u32)))
                .flatten()
            {
                Some(m) => m,
                None => return Some(saturated),
            }
        } else if e < -38 {
            0
        } else {
            mag / 10i128.pow((-e) as u32)
        };
        let ms = if d.neg { -ms } else { ms };
        return Some(i64::try_from(ms).unwrap_or(saturated));
    }
    let v: f64 = s.parse().ok()?;
    let ms = (v * 1000.0).trunc();
    // `as` saturates out-of-range floats.
    Some(ms as i64)
}

/// The value of an OpenMetrics real number as f64 seconds, for ordering
/// timestamps at their full written precision.
pub(crate) fn real_seconds(s: &str) -> Option<f64> {
    scan_decimal(s.as_bytes())?;
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let ok: &[(&str, f64)] = &[
            ("0", 0.0),
            ("17", 17.0),
            ("-17", -17.0),
            ("+1.5", 1.5),
            ("1.", 1.0),
            (".5", 0.5),
            ("1e3", 1000.0),
            ("1E-3", 0.001),
            ("2.665928e+06", 2665928.0),
            ("1.8446744073709552e+19", 1.8446744073709552e19),
            ("0.1", 0.1),
            ("123456789012345678901234567890", 1.2345678901234568e29),
            ("5e-324", 5e-324),
            ("1e-400", 0.0),
            ("Inf", f64::INFINITY),
            ("+inf", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("0042", 42.0),
        ];
        for &(s, want) in ok {
            let (v, _) = parse_value(s).unwrap_or_else(|| panic!("{s} refused"));
            assert_eq!(v.to_bits(), want.to_bits(), "{s}");
        }
        assert!(parse_value("NaN").unwrap().0.is_nan());
        assert!(parse_value("nan").unwrap().0.is_nan());
        for bad in [
            "", "+", ".", "e5", "1e", "1e+", "0x10", "1_000", "+NaN", "-nan", "1e400", "1 ", "infx",
        ] {
            assert!(parse_value(bad).is_none(), "{bad:?} accepted");
        }
        assert_eq!(parse_value("12").unwrap().1, NumberKind::Integer);
        assert_eq!(parse_value("12.0").unwrap().1, NumberKind::Float);
        assert_eq!(parse_value("1e2").unwrap().1, NumberKind::Float);
    }

    #[test]
    fn fast_path_agrees_with_std() {
        let mut x: u64 = 7;
        for _ in 0..200_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let digits = (x >> 40) % 10_000_000_000;
            let scale = (x >> 20) % 12;
            let s = format!(
                "{}.{:0>width$}",
                digits / 10u64.pow(scale as u32),
                digits % 10u64.pow(scale as u32),
                width = scale as usize
            );
            let want: f64 = s.parse().unwrap();
            assert_eq!(parse_value(&s).unwrap().0.to_bits(), want.to_bits(), "{s}");
        }
    }

    /// What the fast path reads must be what `parse_value` and the standard
    /// library read, bit for bit.
    fn check_prefix(s: &str) {
        let Some((v, end)) = parse_value_prefix(s.as_bytes(), 0) else {
            return;
        };
        let token = &s[..end];
        let std: f64 = token.parse().expect("the fast path read a number");
        assert_eq!(v.to_bits(), std.to_bits(), "{token:?}");
        let (general, _) = parse_value(token).expect("parse_value refused it");
        assert_eq!(v.to_bits(), general.to_bits(), "{token:?}");
    }

    #[test]
    fn fast_prefix_cases() {
        let cases: &[(&str, Option<(f64, usize)>)] = &[
            ("0", Some((0.0, 1))),
            // One digit and a blank or line feed: the shortcut.
            ("0 ", Some((0.0, 1))),
            ("7\n", Some((7.0, 1))),
            ("9 1", Some((9.0, 1))),
            ("1\t", Some((1.0, 1))),
            ("1.", Some((1.0, 2))),
            ("1e2 ", Some((100.0, 3))),
            ("12 ", Some((12.0, 2))),
            ("-0 ", Some((-0.0, 2))),
            ("1.795328293e+09 17", Some((1.795328293e9, 15))),
            ("7.6238e-05\n", Some((7.6238e-05, 10))),
            ("1. ", Some((1.0, 2))),
            (".5", Some((0.5, 2))),
            // Beyond Clinger's exact case: the standard library's reader.
            ("1234567890123456789", Some((1234567890123456789.0, 19))),
            ("1.7953283591354845e+09 1", Some((1.7953283591354845e9, 22))),
            ("12345678901234567890", Some((12345678901234567890.0, 20))),
            ("1e23", Some((1e23, 4))),
            ("-1e-300\n", Some((-1e-300, 7))),
            ("0.00021637799999999998", Some((0.00021637799999999998, 22))),
            // Out of range: refused by the general path, with its message.
            ("1e400", None),
            ("-1e309", None),
            ("1e", None),
            ("1e+", None),
            ("+1", None),
            (".", None),
            ("-", None),
            ("Inf", None),
            ("NaN", None),
            ("1e00001", None),
        ];
        for &(s, want) in cases {
            let got = parse_value_prefix(s.as_bytes(), 0);
            assert_eq!(
                got.map(|(v, e)| (v.to_bits(), e)),
                want.map(|(v, e)| (v.to_bits(), e)),
                "{s:?}"
            );
            check_prefix(s);
        }
        assert_eq!(
            parse_ms_prefix(b"1795328359972\n", 0),
            Some((1795328359972, 13))
        );
        assert_eq!(parse_ms_prefix(b"-5", 0), Some((-5, 2)));
        assert_eq!(
            parse_ms_prefix(b"999999999999999999", 0),
            Some((999_999_999_999_999_999, 18))
        );
        assert_eq!(parse_ms_prefix(b"9999999999999999999", 0), None);
        assert_eq!(parse_ms_prefix(b"+5", 0), None);
        assert_eq!(parse_ms_prefix(b"-", 0), None);
    }

    /// Whatever the fast OpenMetrics timestamp reader takes, it reads as
    /// the general one does, and it stops where the token ends.
    fn check_seconds_prefix(s: &str) {
        if let Some((ms, end)) = parse_seconds_prefix(s.as_bytes(), 0) {
            let token = &s[..end];
            assert_eq!(parse_seconds_as_ms(token), Some(ms), "{s:?}");
            assert!(
                !s[end..].starts_with(|c: char| c.is_ascii_digit() || c == '.'),
                "{s:?} stopped early at {end}"
            );
        }
    }

    #[test]
    fn om_timestamps() {
        let cases: &[(&str, Option<(i64, usize)>)] = &[
            ("1795328359.972\n", Some((1_795_328_359_972, 14))),
            ("1795328359", Some((1_795_328_359_000, 10))),
            ("1795328359.", Some((1_795_328_359_000, 11))),
            ("1.5", Some((1500, 3))),
            ("0.0009", Some((0, 6))),
            ("1.23456789", Some((1234, 10))),
            ("001.25 ", Some((1250, 6))),
            ("1.234567890123456789", Some((1234, 20))),
            ("1.2345678901234567890", None),
            ("1234567890123456", None),
            ("-1.5", None),
            ("+1", None),
            (".5", None),
            ("1e3", None),
            ("1.5E3", None),
            ("", None),
        ];
        for &(s, want) in cases {
            assert_eq!(parse_seconds_prefix(s.as_bytes(), 0), want, "{s:?}");
            check_seconds_prefix(s);
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_om_timestamps_read_as_the_general_reader(
            s in "[0-9]{0,16}(\\.[0-9]{0,20})?([eE][+-]?[0-9]{1,3})?[ \n]?"
        ) {
            check_seconds_prefix(&s);
        }

        #[test]
        fn fast_prefix_is_bit_identical_to_std(
            s in "-?[0-9]{0,12}(\\.[0-9]{0,12})?([eE][+-]?[0-9]{1,3})?[ \n]?"
        ) {
            check_prefix(&s);
        }

        #[test]
        fn fast_prefix_reads_go_formatted_floats(bits in proptest::num::u64::ANY) {
            let v = f64::from_bits(bits);
            check_prefix(&format!("{v}"));
            check_prefix(&format!("{v:e}"));
            check_prefix(&format!("{v:.3}"));
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_ms("1795328359972"), Some(1795328359972));
        assert_eq!(parse_ms("-5"), Some(-5));
        assert_eq!(parse_ms("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_ms("9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_ms("1.5"), None);
        assert_eq!(parse_ms("99999999999999999999"), None);
        let cases: &[(&str, i64)] = &[
            ("1520879607.789", 1520879607789),
            ("1520879607", 1520879607000),
            ("1.0019", 1001),
            ("-0.0005", 0),
            ("-1.0019", -1001),
            ("1.005", 1005),
            ("-1.5", -1500),
            ("1.5e3", 1500000),
            ("1e-9", 0),
            ("0", 0),
        ];
        for &(s, want) in cases {
            assert_eq!(parse_seconds_as_ms(s), Some(want), "{s}");
        }
        assert_eq!(parse_seconds_as_ms("NaN"), None);
        assert_eq!(parse_seconds_as_ms("Inf"), None);
        assert_eq!(parse_seconds_as_ms("1e30"), Some(i64::MAX));
        assert_eq!(parse_seconds_as_ms("-1e30"), Some(i64::MIN));
        assert_eq!(
            parse_seconds_as_ms("12345678901234567890.1234567890"),
            Some(i64::MAX)
        );
        assert_eq!(parse_seconds_as_ms("0e999999"), Some(0));
    }
}
