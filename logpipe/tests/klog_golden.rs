//! The klog parser on golden files (`tests/golden/klog.in` → `.out`, the
//! year taken as if now were 2026-11-22T12:00:00Z; `UPDATE_GOLDEN=1`
//! rewrites the `.out`), and proptest: what a klog writer prints reads
//! back field for field, and no input makes it panic.

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use vigil_logpipe::Value;
use vigil_logpipe::json::{write_str, write_value};
use vigil_logpipe::parser::{KlogParser, LineParser, Parsers};
use vigil_logpipe::strftime::days_from_civil;

/// 2026-11-22T12:00:00Z.
const NOW: i64 = 1_795_348_800_000_000_000;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

#[test]
fn klog_golden() {
    let p = KlogParser::with_now("klog", NOW);
    let input = std::fs::read_to_string(golden("klog.in")).unwrap();
    let mut got = String::new();
    for line in input.lines() {
        match p.parse(line) {
            Ok(parsed) => {
                got.push_str("{\"time\":");
                match parsed.time_ns {
                    Some(t) => got.push_str(&t.to_string()),
                    None => got.push_str("null"),
                }
                got.push_str(",\"record\":");
                write_value(&mut got, &Value::Map(parsed.fields));
                got.push('}');
            }
            Err(e) => {
                got.push_str("{\"error\":");
                write_str(&mut got, &e.to_string());
                got.push('}');
            }
        }
        got.push('\n');
    }
    let path = golden("klog.out");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap();
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "klog: line {} differs", i + 1);
    }
    assert_eq!(got.lines().count(), want.lines().count());
}

#[test]
fn klog_is_a_builtin() {
    let p = Parsers::builtin().get("klog").unwrap();
    let out = p.parse("I0101 00:00:00.000000 1 a.go:1] x").unwrap();
    assert!(out.time_ns.is_some());
}

proptest! {
    #[test]
    fn what_klog_writes_reads_back(
        sev in prop::sample::select(vec![('I', "INFO"), ('W', "WARNING"), ('E', "ERROR"), ('F', "FATAL")]),
        month in 1u32..=12,
        day in 1u32..=28,
        h in 0u32..24, m in 0u32..60, s in 0u32..60, us in 0u32..1_000_000,
        thread in 0i64..10_000_000,
        file in "[a-z_/.]{1,20}\\.go",
        line in 1i64..100_000,
        msg in "[^\n]{0,80}",
    ) {
        let text = format!(
            "{}{month:02}{day:02} {h:02}:{m:02}:{s:02}.{us:06} {thread:>7} {file}:{line}] {msg}",
            sev.0
        );
        let out = KlogParser::with_now("klog", NOW).parse(&text).unwrap();
        let at = |y: i64| (days_from_civil(y, month, day) * 86_400
            + i64::from(h * 3600 + m * 60 + s)) * 1_000_000_000
            + i64::from(us) * 1000;
        // More than a day ahead of now is last year's.
        let want = if at(2026) > NOW + 86_400_000_000_000 { at(2025) } else { at(2026) };
        prop_assert_eq!(out.time_ns, Some(want));
        prop_assert_eq!(out.fields.get("severity"), Some(&Value::from(sev.1)));
        prop_assert_eq!(out.fields.get("thread"), Some(&Value::Int(thread)));
        prop_assert_eq!(out.fields.get("file"), Some(&Value::from(file.as_str())));
        prop_assert_eq!(out.fields.get("line"), Some(&Value::Int(line)));
        prop_assert_eq!(out.fields.get("message"), Some(&Value::from(msg.as_str())));
    }

    #[test]
    fn klog_never_panics(line in "[IWEF]?[0-9 :.\\]a-z]{0,40}", raw in ".{0,60}") {
        let p = KlogParser::with_now("klog", NOW);
        let _ = p.parse(&line);
        let _ = p.parse(&raw);
    }
}
