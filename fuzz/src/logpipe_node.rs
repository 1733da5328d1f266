//! Fuzz logic for vigil-logpipe's readers of the node's own logs: the
//! `klog` parser (Kubernetes components' header) and the `/dev/kmsg`
//! record reader with its fixture splitter and fragment joiner. The first
//! byte chooses. None may panic; what they accept must hold together: a
//! klog line's file is not empty and its time, when read, is within a year
//! of "now"; the joiner never makes more records than it was given and
//! loses no message text.

use vigil_logpipe::input::kmsg::{KmsgJoiner, parse_record, split_records};
use vigil_logpipe::parser::{KlogParser, LineParser};
use vigil_logpipe::Value;

/// 2026-11-22T12:00:00Z.
const NOW: i64 = 1_795_348_800_000_000_000;
const YEAR_NS: i64 = 366 * 86_400 * 1_000_000_000;

/// klog (selector even) or kmsg (odd) over the rest.
pub fn run_node(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel % 2 == 0 {
        klog(rest);
    } else {
        kmsg(rest);
    }
}

fn klog(rest: &[u8]) {
    let text = String::from_utf8_lossy(rest);
    let p = KlogParser::with_now("klog", NOW);
    for line in text.split('\n') {
        let Ok(out) = p.parse(line) else { continue };
        assert!(
            matches!(out.fields.get("file"), Some(Value::Str(f)) if !f.is_empty()),
            "{line:?}"
        );
        assert!(matches!(out.fields.get("line"), Some(Value::Int(_))), "{line:?}");
        if let Some(t) = out.time_ns {
            assert!(
                t <= NOW + 86_400_000_000_000 && t > NOW - 2 * YEAR_NS,
                "{line:?} read as {t}"
            );
        }
    }
}

fn kmsg(rest: &[u8]) {
    let _ = parse_record(rest);
    let mut given = 0;
    let mut text_in = 0;
    let mut joiner = KmsgJoiner::default();
    let mut out = Vec::new();
    let mut prev_end = 0;
    for (rec, end) in split_records(rest) {
        assert!(end > prev_end && end <= rest.len());
        prev_end = end;
        if let Ok(e) = parse_record(rec) {
            given += 1;
            text_in += e.message.len();
            joiner.push(e, &mut out);
        }
    }
    joiner.flush(&mut out);
    assert!(out.len() <= given);
    assert_eq!(out.iter().map(|e| e.message.len()).sum::<usize>(), text_in);
}
