//! `vigil-backfill openmetrics INPUT OUTDIR`: blocks aligned to 2 h, read
//! back exactly through the store; bad input gives the line and exit 1.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use vigil_tsdb::db::{Db, DbOptions};
use vigil_tsdb::index::{MatchOp, Matcher};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-backfill"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

type Want = BTreeMap<String, Vec<(i64, u64)>>;

/// Five hours at 15 s from an unaligned start, three families, values with
/// decimals, a NaN, escaped label values; returns the file and what it holds.
fn input(dir: &Path) -> (std::path::PathBuf, Want) {
    let mut text = String::new();
    let mut want = Want::new();
    let t0: i64 = 1_700_000_123_000;
    text.push_str("# TYPE http_requests counter\n# HELP http_requests Requests.\n");
    for code in ["200", "500"] {
        let key = format!("__name__=http_requests_total,code={code},path=/a\\\"b");
        for i in 0..1200i64 {
            let t = t0 + i * 15_000;
            let v = (i * 3 + code.len() as i64) as f64;
            writeln!(
                text,
                "http_requests_total{{code=\"{code}\",path=\"/a\\\\\\\"b\"}} {v} {}.{:03}",
                t / 1000,
                t % 1000
            )
            .unwrap();
            want.entry(key.clone()).or_default().push((t, v.to_bits()));
        }
    }
    text.push_str("# TYPE temp gauge\n");
    for i in 0..1200i64 {
        let t = t0 + i * 15_000;
        let v = if i == 7 {
            f64::NAN
        } else {
            20.0 + i as f64 / 100.0
        };
        let shown = if v.is_nan() {
            "NaN".to_string()
        } else {
            format!("{v}")
        };
        writeln!(
            text,
            "temp{{room=\"k\"}} {shown} {}.{:03}",
            t / 1000,
            t % 1000
        )
        .unwrap();
        want.entry("__name__=temp,room=k".into())
            .or_default()
            .push((t, v.to_bits()));
    }
    text.push_str("# EOF\n");
    let p = dir.join("in.om");
    std::fs::write(&p, text).unwrap();
    (p, want)
}

#[test]
fn backfilled_blocks_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (inp, want) = input(dir.path());
    let out = dir.path().join("data");
    // A small memory budget: several windows, each a pass over the input.
    let (code, stdout, stderr) = run(&[
        "openmetrics",
        "--max-samples-in-memory=2000",
        inp.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    // 5 h from 15 min into a block range touch 3 ranges.
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("b-")).collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    assert!(
        stdout.lines().next().unwrap().contains("SAMPLES"),
        "{stdout}"
    );
    assert!(stdout.contains("3600 samples read"), "{stdout}");
    let db = Db::open(&out, DbOptions::default()).unwrap();
    for (lo, hi) in db.block_ranges() {
        assert_eq!(lo % 7_200_000, 0, "block starts on the 2 h grid");
        assert_eq!(hi - lo, 7_200_000);
    }
    let all = Matcher::new("__name__", MatchOp::Regex, ".+").unwrap();
    let mut got = Want::new();
    for (l, s) in db.select(&[all], i64::MIN, i64::MAX).unwrap() {
        let key: Vec<String> = l.iter().map(|(n, v)| format!("{n}={v}")).collect();
        got.insert(
            key.join(","),
            s.into_iter().map(|(t, v)| (t, v.to_bits())).collect(),
        );
    }
    assert_eq!(got.len(), 3);
    for (k, w) in &want {
        let g = &got[k];
        assert_eq!(g.len(), w.len(), "{k}");
        for (a, b) in g.iter().zip(w) {
            assert_eq!(a.0, b.0, "{k}");
            let same = a.1 == b.1 || (f64::from_bits(a.1).is_nan() && f64::from_bits(b.1).is_nan());
            assert!(same, "{k} at {}: {:x} vs {:x}", a.0, a.1, b.1);
        }
    }
}

#[test]
fn bad_input_names_the_line_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    let o = out.to_str().unwrap();
    let p = dir.path().join("a.om");
    std::fs::write(&p, "a 1 100\nb 2\n# EOF\n").unwrap();
    let (code, _, err) = run(&["openmetrics", p.to_str().unwrap(), o]);
    assert_eq!(code, 1);
    assert!(err.contains(":2:") && err.contains("timestamp"), "{err}");
    std::fs::write(&p, "a 1 100\n").unwrap();
    let (code, _, err) = run(&["openmetrics", p.to_str().unwrap(), o]);
    assert_eq!(code, 1);
    assert!(err.contains("# EOF"), "{err}");
    std::fs::write(&p, "a 1 100\na{x=\"1} 2 200\n# EOF\n").unwrap();
    let (code, _, err) = run(&["openmetrics", p.to_str().unwrap(), o]);
    assert_eq!(code, 1);
    assert!(err.contains("line 2"), "{err}");
    std::fs::write(&p, "a 1 100\na 2 100\n# EOF\n").unwrap();
    let (code, _, err) = run(&["openmetrics", p.to_str().unwrap(), o]);
    assert_eq!(code, 1);
    assert!(err.contains("two different values"), "{err}");
    assert_eq!(run(&["openmetrics", p.to_str().unwrap()]).0, 2);
    assert_eq!(run(&["csv", p.to_str().unwrap(), o]).0, 2);
    assert!(
        !out.join("blocks").exists() || std::fs::read_dir(out.join("blocks")).unwrap().count() == 0
    );
}
