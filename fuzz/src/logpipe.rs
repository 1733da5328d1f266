//! Fuzz logic for vigil-logpipe's readers of outside text: the fluent-bit
//! configuration reader (and everything built from what it accepts), and
//! every line parser, chosen by the first byte; and the regex parser on
//! arbitrary patterns, whose fields must be the regex crate's captures
//! (the parser runs its own backtracker on most patterns). None may panic; the JSON
//! reader must accept every object serde_json accepts and agree with it on
//! the values; what logfmt reads must survive write → read.

use std::path::Path;
use std::sync::Arc;
use vigil_logpipe::config::parse_str;
use vigil_logpipe::filter;
use vigil_logpipe::parser::regex::RegexParser;
use vigil_logpipe::parser::{
    CriJoiner, DockerJoiner, LineParser, Multiline, Parsers, TimeAndTypes, logfmt,
    parse_json_object,
};
use vigil_logpipe::router::{TagMatch, expand_tag};
use vigil_logpipe::strftime::TimeFormat;
use vigil_logpipe::{Record, Value};

/// The configuration reader, then the parsers, filters and routes built
/// from what it accepts.
pub fn run_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    // A folder that does not exist: includes and parsers files fail to read
    // instead of reaching the machine's files.
    let Ok(cfg) = parse_str(&text, Path::new("/nonexistent/vigil-fuzz/fluent-bit.conf")) else {
        return;
    };
    let Ok(parsers) = Parsers::from_config(&cfg) else {
        return;
    };
    for s in &cfg.filters {
        if let Ok(mut f) = filter::build(s, &parsers) {
            let mut rec =
                Record::line("kube.var.log.containers.a_b_c-0123.log", 0, "x=1 {\"a\":1}");
            let _ = f.filter(&mut rec);
        }
        if let Ok(m) = TagMatch::from_section(s) {
            let _ = m.matches("app.log");
        }
    }
    for s in cfg.inputs.iter().chain(&cfg.outputs) {
        let _ = (
            s.get_bool("x"),
            s.get_size("mem_buf_limit"),
            s.get_duration("refresh_interval"),
        );
        if let Some(tag) = s.get("tag") {
            let _ = expand_tag(tag, "/var/log/x.log");
        }
    }
}

/// One parser, chosen by the first byte, over the rest as lines.
pub fn run_parsers(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let ps = Parsers::builtin();
    let names = ps.names();
    let n = names.len();
    match sel as usize {
        i if i < n => {
            let p = ps.get(names[i]).expect("listed parser exists");
            for line in text.split('\n') {
                let _ = p.parse(line);
            }
        }
        i if i == n => json_differential(&text),
        i if i == n + 1 => logfmt_round_trip(&text),
        i if i == n + 2 => {
            // A time format on the first line, times on the others.
            let (fmt, times) = text.split_once('\n').unwrap_or((&text, ""));
            if let Ok(f) = TimeFormat::new(fmt) {
                for t in times.split('\n') {
                    let _ = f.parse(t, 0);
                }
                let _ = f.format(i64::from_le_bytes(pad8(rest)));
            }
        }
        i if i == n + 3 => {
            let mut j = CriJoiner::new().with_max_bytes(64);
            for line in text.split('\n') {
                let _ = j.push(line);
            }
            let _ = j.flush();
        }
        i if i == n + 4 => {
            for mode in ["java", "python", "go"] {
                let mut m = Multiline::new(Arc::clone(&ps.multiline(mode).expect("built-in mode")));
                let mut joined = 0;
                for line in text.split('\n') {
                    joined += m.push(line).len();
                }
                joined += usize::from(m.flush().is_some());
                assert!(
                    joined <= text.split('\n').count(),
                    "{mode}: more events than lines"
                );
            }
        }
        i if i == n + 5 => {
            let mut j = DockerJoiner::new().with_max_bytes(64);
            for line in text.split('\n') {
                let _ = j.push(line);
            }
            let _ = j.flush();
        }
        _ => {}
    }
}

fn pad8(b: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (o, i) in out.iter_mut().zip(b) {
        *o = *i;
    }
    out
}

/// serde_json's reading and ours agree (numbers compared as f64: we keep
/// integers beyond i64 as floats).
fn json_differential(text: &str) {
    let ours = parse_json_object(text);
    let Ok(theirs) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    if !theirs.is_object() {
        assert!(ours.is_err(), "accepted a non-object: {text:?}");
        return;
    }
    let ours = ours.unwrap_or_else(|e| panic!("rejected what serde_json reads ({e}): {text:?}"));
    // Through our writer and serde_json again, duplicate keys collapse the
    // same way (last wins) on both sides.
    let written = vigil_logpipe::json::to_string(&Value::Map(ours));
    let back: serde_json::Value =
        serde_json::from_str(&written).expect("our JSON writer's output reads");
    assert!(same(&back, &theirs), "differ: {written} vs {theirs}");
}

fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x.is_nan() && y.is_nan())
        }
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// What logfmt reads as strings survives write → read.
fn logfmt_round_trip(text: &str) {
    let line = text.split('\n').next().unwrap_or("");
    let Ok(fields) = logfmt::parse_fields(line, true) else {
        return;
    };
    let mut out = String::new();
    logfmt::write(&fields, &mut out);
    let back = logfmt::parse_fields(&out, true)
        .unwrap_or_else(|e| panic!("re-read failed ({e}): {out:?}"));
    assert_eq!(back, fields, "logfmt round trip of {line:?} via {out:?}");
}

/// A pattern (its length in the first byte) and lines: the regex parser's
/// fields must be exactly the non-empty named captures of the regex crate
/// built the way the parser builds it first (bytes, Unicode off), and a
/// line must fail to parse exactly when the crate finds no match.
pub fn run_regex(data: &[u8]) {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(k).min(rest.len());
    let pattern = String::from_utf8_lossy(&rest[..k]);
    let text = String::from_utf8_lossy(&rest[k..]);
    let Ok(reference) = regex::bytes::RegexBuilder::new(&pattern)
        .unicode(false)
        .size_limit(1 << 20)
        .build()
    else {
        return;
    };
    let Ok(parser) = RegexParser::new("fuzz", &pattern, TimeAndTypes::default()) else {
        return;
    };
    for line in text.split('\n') {
        let got = parser.parse(line);
        match reference.captures(line.as_bytes()) {
            None => assert!(got.is_err(), "{pattern:?} matched {line:?}: {got:?}"),
            Some(caps) => {
                let got = match got {
                    Ok(p) => p.fields,
                    Err(e) => panic!("{pattern:?} on {line:?}: {e}"),
                };
                for name in reference.capture_names().flatten() {
                    let want = caps
                        .name(name)
                        .filter(|m| !m.is_empty())
                        .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned());
                    let have = got.get(name).and_then(Value::as_str).map(str::to_owned);
                    assert_eq!(have, want, "{pattern:?} on {line:?}, group {name}");
                }
            }
        }
    }
}
