//! The JSON of Prometheus's API, written straight into a string: a range
//! query's answer can hold millions of points, so it is not built as a
//! `serde_json::Value` first.
//!
//! Values are strings in Go's `strconv.FormatFloat(v, 'f', -1, 64)` form
//! (`"NaN"`, `"+Inf"`, `"-Inf"`); sample timestamps are seconds with the
//! milliseconds as a three-digit fraction (Prometheus's `marshalTimestamp`),
//! scalar and string timestamps plain float seconds.

use std::fmt::Write;

use vigil_rules::{Labels, Value};

/// Appends `s` as a JSON string.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a float as Prometheus writes sample values (a JSON string).
pub fn value(out: &mut String, v: f64) {
    out.push('"');
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        // Rust's `{}` for f64 is the shortest round-tripping decimal
        // without an exponent, as Go's 'f' with precision -1.
        let _ = write!(out, "{v}");
    }
    out.push('"');
}

/// Appends a sample timestamp: `1700000000`, `1700000000.500`.
pub fn timestamp(out: &mut String, ms: i64) {
    let neg = ms < 0;
    let a = ms.unsigned_abs();
    if neg {
        out.push('-');
    }
    let _ = write!(out, "{}", a / 1000);
    let frac = a % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

/// Appends a label set as a JSON object, in label-name order.
pub fn labels<'a>(out: &mut String, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
    out.push('{');
    for (i, (n, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, n);
        out.push(':');
        string(out, v);
    }
    out.push('}');
}

fn rule_labels(out: &mut String, l: &Labels) {
    labels(out, l.iter().map(|l| (l.name.as_str(), l.value.as_str())));
}

/// Appends `{"resultType":…,"result":…}` for a query's value. Vectors and
/// matrices keep the engine's order. A limit (3.x's `limit` parameter)
/// keeps the first `limit` series.
pub fn query_data(out: &mut String, v: &Value) {
    match v {
        Value::Scalar { t, v } => {
            out.push_str(r#"{"resultType":"scalar","result":["#);
            let _ = write!(out, "{}", *t as f64 / 1000.0);
            out.push(',');
            value(out, *v);
            out.push_str("]}");
        }
        Value::String { t, s } => {
            out.push_str(r#"{"resultType":"string","result":["#);
            let _ = write!(out, "{}", *t as f64 / 1000.0);
            out.push(',');
            string(out, s);
            out.push_str("]}");
        }
        Value::Vector(samples) => {
            out.push_str(r#"{"resultType":"vector","result":["#);
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                rule_labels(out, &s.labels);
                out.push_str(r#","value":["#);
                timestamp(out, s.t);
                out.push(',');
                value(out, s.value);
                out.push_str("]}");
            }
            out.push_str("]}");
        }
        Value::Matrix(series) => {
            out.push_str(r#"{"resultType":"matrix","result":["#);
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                rule_labels(out, &s.labels);
                out.push_str(r#","values":["#);
                for (k, p) in s.floats.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    out.push('[');
                    timestamp(out, p.t);
                    out.push(',');
                    value(out, p.v);
                    out.push(']');
                }
                out.push_str("]}");
            }
            out.push_str("]}");
        }
    }
}

/// `{"status":"success","data":<data>}` with `warnings` and `infos` when
/// there are any.
pub fn success(data: &str, warnings: &[String], infos: &[String]) -> String {
    let mut out = String::with_capacity(data.len() + 64);
    out.push_str(r#"{"status":"success","data":"#);
    out.push_str(data);
    for (key, list) in [("warnings", warnings), ("infos", infos)] {
        if list.is_empty() {
            continue;
        }
        let _ = write!(out, r#","{key}":["#);
        for (i, w) in list.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            string(&mut out, w);
        }
        out.push(']');
    }
    out.push('}');
    out
}

/// `{"status":"error","errorType":…,"error":…}`.
pub fn error(error_type: &str, message: &str) -> String {
    let mut out = String::from(r#"{"status":"error","errorType":"#);
    string(&mut out, error_type);
    out.push_str(r#","error":"#);
    string(&mut out, message);
    out.push('}');
    out
}

/// A JSON array of strings.
pub fn strings<S: AsRef<str>>(list: &[S]) -> String {
    let mut out = String::from("[");
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(&mut out, s.as_ref());
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_rules::{FPoint, Sample, Series};

    #[test]
    fn values_as_go_writes_them() {
        let f = |v: f64| {
            let mut s = String::new();
            value(&mut s, v);
            s
        };
        assert_eq!(f(1.0), r#""1""#);
        assert_eq!(f(0.1), r#""0.1""#);
        assert_eq!(f(-0.0), r#""-0""#);
        assert_eq!(f(1e21), r#""1000000000000000000000""#);
        assert_eq!(f(1e-7), r#""0.0000001""#);
        assert_eq!(f(f64::NAN), r#""NaN""#);
        assert_eq!(f(f64::INFINITY), r#""+Inf""#);
        assert_eq!(f(f64::NEG_INFINITY), r#""-Inf""#);
    }

    #[test]
    fn timestamps_as_prometheus_writes_them() {
        let f = |ms: i64| {
            let mut s = String::new();
            timestamp(&mut s, ms);
            s
        };
        assert_eq!(f(1_795_351_115_000), "1795351115");
        assert_eq!(f(1_795_351_115_500), "1795351115.500");
        assert_eq!(f(1_795_351_115_005), "1795351115.005");
        assert_eq!(f(-1500), "-1.500");
        assert_eq!(f(0), "0");
    }

    #[test]
    fn results_parse_as_json_with_prometheus_shapes() {
        let l = Labels::from_pairs(&[("__name__", "up"), ("job", "a\"b\n")]);
        let v = Value::Vector(vec![Sample {
            labels: l.clone(),
            t: 1500,
            value: 1.0,
            drop_name: false,
        }]);
        let mut s = String::new();
        query_data(&mut s, &v);
        assert_eq!(
            s,
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\"b\n"},"value":[1.500,"1"]}]}"#
        );
        let m = Value::Matrix(vec![Series {
            labels: l,
            floats: vec![
                FPoint { t: 0, v: 1.0 },
                FPoint {
                    t: 1000,
                    v: f64::NAN,
                },
            ],
            drop_name: false,
        }]);
        let mut s = String::new();
        query_data(&mut s, &m);
        let j: serde_json::Value = serde_json::from_str(&success(&s, &["w".into()], &[])).unwrap();
        assert_eq!(j["data"]["resultType"], "matrix");
        assert_eq!(j["data"]["result"][0]["values"][1][1], "NaN");
        assert_eq!(j["warnings"][0], "w");
        assert!(j.get("infos").is_none());
        let mut s = String::new();
        query_data(
            &mut s,
            &Value::Scalar {
                t: 1_795_351_116_230,
                v: 2.0,
            },
        );
        assert_eq!(s, r#"{"resultType":"scalar","result":[1795351116.23,"2"]}"#);
        let e: serde_json::Value =
            serde_json::from_str(&error("bad_data", "1:4: parse error: \"x\"")).unwrap();
        assert_eq!(e["error"], "1:4: parse error: \"x\"");
    }
}
