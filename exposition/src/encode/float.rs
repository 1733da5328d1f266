//! Float and integer rendering compatible with Go's `strconv.FormatFloat(v,
//! 'g', -1, 64)`, which is what Prometheus's own encoders write, so our output
//! is byte-identical to theirs for the same values.

use std::io::Write as _;

/// Writes `v` the way Prometheus's text encoder does: shortest round-trip
/// digits, in `%e` form when the decimal exponent is below -4 or at least 6
/// (`2.665928e+06`, as Go's shortest `'g'`), and `+Inf`, `-Inf`, `NaN`.
pub(crate) fn write_float(out: &mut Vec<u8>, v: f64) {
    if write_special(out, v) {
        return;
    }
    // Integers up to 1e6 print as themselves in both Go and here; this is the
    // common case for counters and bucket counts, so skip the digit search.
    if v.fract() == 0.0 && v.abs() < 1e6 {
        if v == 0.0 && v.is_sign_negative() {
            out.extend_from_slice(b"-0");
        } else {
            write_i64(out, v as i64);
        }
        return;
    }
    write_general(out, v);
}

/// Like [`write_float`], but an integral value gets a `.0` (`1.0`, `1e+06`
/// stays): the OpenMetrics canonical form, which also makes a float visibly a
/// float.
pub(crate) fn write_float_om(out: &mut Vec<u8>, v: f64) {
    let start = out.len();
    write_float(out, v);
    if v.is_finite() && !out[start..].iter().any(|&b| b == b'.' || b == b'e') {
        out.extend_from_slice(b".0");
    }
}

fn write_special(out: &mut Vec<u8>, v: f64) -> bool {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v == f64::INFINITY {
        out.extend_from_slice(b"+Inf");
    } else if v == f64::NEG_INFINITY {
        out.extend_from_slice(b"-Inf");
    } else {
        return false;
    }
    true
}

fn write_general(out: &mut Vec<u8>, v: f64) {
    // Rust's `{:e}` gives the shortest digits that round-trip, as Go's
    // shortest mode does; only the layout differs, so re-lay them out.
    let mut buf = [0u8; 40];
    let len = {
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        // Cannot fail: the longest f64 `{:e}` is 24 bytes.
        let _ = write!(cursor, "{v:e}");
        cursor.position() as usize
    };
    let text = &buf[..len];
    let (neg, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let e_at = text.iter().position(|&b| b == b'e').unwrap_or(text.len());
    let mut digits = [0u8; 24];
    let mut nd = 0;
    for &b in &text[..e_at] {
        if b.is_ascii_digit() {
            digits[nd] = b;
            nd += 1;
        }
    }
    let exp: i32 = std::str::from_utf8(&text[(e_at + 1).min(text.len())..])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let digits = &digits[..nd];
    if neg {
        out.push(b'-');
    }
    if !(-4..6).contains(&exp) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push(b'0');
        }
        write_u64(out, u64::from(a));
    } else if exp < 0 {
        out.extend_from_slice(b"0.");
        for _ in 0..(-exp - 1) {
            out.push(b'0');
        }
        out.extend_from_slice(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.extend_from_slice(digits);
            for _ in digits.len()..int_len {
                out.push(b'0');
            }
        } else {
            out.extend_from_slice(&digits[..int_len]);
            out.push(b'.');
            out.extend_from_slice(&digits[int_len..]);
        }
    }
}

/// Writes an unsigned integer in decimal.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Writes a signed integer in decimal.
pub(crate) fn write_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    write_u64(out, v.unsigned_abs());
}

/// Writes milliseconds since the epoch as OpenMetrics seconds: `1520879607.789`,
/// exact (no float rounding), trailing zeros of the fraction dropped.
pub(crate) fn write_ms_as_seconds(out: &mut Vec<u8>, ms: i64) {
    let neg = ms < 0;
    let abs = ms.unsigned_abs();
    let (secs, frac) = (abs / 1000, abs % 1000);
    if neg {
        out.push(b'-');
    }
    write_u64(out, secs);
    if frac != 0 {
        out.push(b'.');
        let d = [
            (frac / 100) as u8,
            (frac / 10 % 10) as u8,
            (frac % 10) as u8,
        ];
        let keep = if d[2] != 0 {
            3
        } else if d[1] != 0 {
            2
        } else {
            1
        };
        for &x in &d[..keep] {
            out.push(b'0' + x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(v: f64) -> String {
        let mut out = Vec::new();
        write_float(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    fn om(v: f64) -> String {
        let mut out = Vec::new();
        write_float_om(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn matches_go_strconv_g_shortest() {
        // Expected strings are what Go's strconv.FormatFloat(v, 'g', -1, 64)
        // prints, as seen in the captured node_exporter and Prometheus output.
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (17.0, "17"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (2665928.0, "2.665928e+06"),
            (1.795328293e9, "1.795328293e+09"),
            (1.8446744073709552e19, "1.8446744073709552e+19"),
            (94.841755, "94.841755"),
            (7.8717e-05, "7.8717e-05"),
            (0.000167549, "0.000167549"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (0.1, "0.1"),
            (123456.5, "123456.5"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for &(v, want) in cases {
            assert_eq!(go(v), want, "formatting {v:?}");
        }
    }

    #[test]
    fn openmetrics_canonical_numbers() {
        // The specification's "Canonical Numbers" examples.
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (0.001, "0.001"),
            (0.95, "0.95"),
            (1.0, "1.0"),
            (10.0, "10.0"),
            (1e-10, "1e-10"),
            (1e-9, "1e-09"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (100000.0, "100000.0"),
            (1e6, "1e+06"),
            (1e10, "1e+10"),
            (f64::INFINITY, "+Inf"),
        ];
        for &(v, want) in cases {
            assert_eq!(om(v), want, "formatting {v:?}");
        }
    }

    #[test]
    fn every_rendering_round_trips() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if !v.is_finite() {
                continue;
            }
            let s = go(v);
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{s}");
        }
    }

    #[test]
    fn milliseconds_as_seconds() {
        let cases: &[(i64, &str)] = &[
            (0, "0"),
            (1520879607789, "1520879607.789"),
            (1520879607700, "1520879607.7"),
            (1520879607000, "1520879607"),
            (-1500, "-1.5"),
            (-1, "-0.001"),
            (i64::MIN, "-9223372036854775.808"),
        ];
        for &(ms, want) in cases {
            let mut out = Vec::new();
            write_ms_as_seconds(&mut out, ms);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }
}
