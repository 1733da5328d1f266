//! The remote write body codec (proptest: encode → decode is the identity)
//! and the `/api/v1/write` handler's answers: what it stores, and that a
//! refused request leaves nothing behind.

use proptest::prelude::*;
use vigil_examples::monitor::remote::{Received, proto, receive};
use vigil_tsdb::db::{Db, DbOptions};
use vigil_tsdb::index::{MatchOp, Matcher};

fn label(n: &str, v: &str) -> proto::Label {
    proto::Label {
        name: n.into(),
        value: v.into(),
    }
}

fn series(name: &str, job: &str, samples: &[(i64, f64)]) -> proto::TimeSeries {
    proto::TimeSeries {
        labels: vec![label("__name__", name), label("job", job)],
        samples: samples
            .iter()
            .map(|&(timestamp, value)| proto::Sample { value, timestamp })
            .collect(),
        exemplars: vec![],
    }
}

fn body(ts: Vec<proto::TimeSeries>) -> Vec<u8> {
    proto::encode(&proto::WriteRequest {
        timeseries: ts,
        metadata: vec![],
    })
}

fn all(db: &Db) -> Vec<(String, Vec<(i64, u64)>)> {
    let mut out: Vec<_> = db
        .select(
            &[Matcher::new("__name__", MatchOp::Regex, ".+").unwrap()],
            i64::MIN,
            i64::MAX,
        )
        .unwrap()
        .into_iter()
        .map(|(l, s)| {
            (
                format!("{:?}", l.iter().collect::<Vec<_>>()),
                s.into_iter().map(|(t, v)| (t, v.to_bits())).collect(),
            )
        })
        .collect();
    out.sort();
    out
}

fn db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    (dir, db)
}

#[test]
fn a_good_request_is_stored_and_answered_204() {
    let (_d, db) = db();
    let r = receive(
        &db,
        &body(vec![
            series("up", "a", &[(1_000, 1.0), (2_000, 0.0)]),
            series("up", "b", &[(1_000, f64::from_bits(0x7ff0_0000_0000_0002))]),
        ]),
        Some("snappy"),
    );
    assert_eq!(
        r,
        Received {
            status: 204,
            message: String::new(),
            samples: 3
        }
    );
    let got = all(&db);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1, [(1_000, 1f64.to_bits()), (2_000, 0f64.to_bits())]);
    assert_eq!(
        got[1].1,
        [(1_000, 0x7ff0_0000_0000_0002)],
        "stale marker bits kept"
    );
    // A retry of the newest sample (its answer was lost) is accepted; a
    // retry of the whole request is refused whole (its first sample is now
    // out of order), as Prometheus does, and changes nothing.
    let before = all(&db);
    let r = receive(&db, &body(vec![series("up", "a", &[(2_000, 0.0)])]), None);
    assert_eq!(r.status, 204, "{}", r.message);
    let r = receive(
        &db,
        &body(vec![series("up", "a", &[(1_000, 1.0), (2_000, 0.0)])]),
        None,
    );
    assert_eq!(r.status, 400, "{}", r.message);
    assert_eq!(all(&db), before);
}

#[test]
fn bad_bodies_are_400_with_the_reason() {
    let (_d, db) = db();
    let r = receive(&db, b"\xff\xff\xff\xff\xff\xff", Some("snappy"));
    assert_eq!(r.status, 400);
    assert!(r.message.contains("snappy"), "{}", r.message);
    let r = receive(
        &db,
        &proto::compress(b"\x0a\xff\xff\xff\xff\x0f"),
        Some("snappy"),
    );
    assert_eq!(r.status, 400);
    assert!(r.message.contains("protobuf"), "{}", r.message);
    let r = receive(&db, &body(vec![]), Some("gzip"));
    assert_eq!(r.status, 415);
    let big = vec![0u8; vigil_examples::monitor::remote::MAX_BODY + 1];
    assert_eq!(receive(&db, &big, Some("snappy")).status, 413);
    assert!(all(&db).is_empty());
}

#[test]
fn a_refused_request_applies_nothing() {
    let (_d, db) = db();
    assert_eq!(
        receive(&db, &body(vec![series("x", "a", &[(10_000, 1.0)])]), None).status,
        204
    );
    let before = all(&db);
    // A good new series, then one sample older than what is stored.
    let r = receive(
        &db,
        &body(vec![
            series("y", "a", &[(20_000, 1.0)]),
            series("x", "a", &[(11_000, 2.0), (5_000, 3.0)]),
        ]),
        None,
    );
    assert_eq!(r.status, 400, "{}", r.message);
    assert!(r.message.contains("out of order"), "{}", r.message);
    assert_eq!(all(&db), before);
    // Older than the stored one (out of order against the store).
    let r = receive(
        &db,
        &body(vec![
            series("y", "a", &[(20_000, 1.0)]),
            series("x", "a", &[(9_000, 2.0)]),
        ]),
        None,
    );
    assert_eq!(r.status, 400, "{}", r.message);
    assert_eq!(all(&db), before);
    // A label set with a repeated name, after a good series.
    let mut bad = series("z", "a", &[(1, 1.0)]);
    bad.labels.push(label("job", "b"));
    let r = receive(
        &db,
        &body(vec![series("y", "a", &[(20_000, 1.0)]), bad]),
        None,
    );
    assert_eq!(r.status, 400);
    assert!(r.message.contains("timeseries[1]"), "{}", r.message);
    assert_eq!(all(&db), before);
    // A new value at a stored timestamp.
    let r = receive(&db, &body(vec![series("x", "a", &[(10_000, 7.0)])]), None);
    assert_eq!(r.status, 400, "{}", r.message);
    assert_eq!(all(&db), before);
}

fn arb_label() -> impl Strategy<Value = proto::Label> {
    ("[a-zA-Z_][a-zA-Z0-9_]{0,8}", "\\PC{0,12}")
        .prop_map(|(name, value)| proto::Label { name, value })
}

fn arb_request() -> impl Strategy<Value = proto::WriteRequest> {
    let sample = (any::<i64>(), any::<u64>()).prop_map(|(timestamp, bits)| proto::Sample {
        value: f64::from_bits(bits),
        timestamp,
    });
    let ts = (
        prop::collection::vec(arb_label(), 0..6),
        prop::collection::vec(sample, 0..20),
    )
        .prop_map(|(labels, samples)| proto::TimeSeries {
            labels,
            samples,
            exemplars: vec![],
        });
    let md = (0i32..8, "\\PC{0,10}", "\\PC{0,20}", "[a-z]{0,5}").prop_map(|(t, n, h, u)| {
        proto::MetricMetadata {
            r#type: t,
            metric_family_name: n,
            help: h,
            unit: u,
        }
    });
    (
        prop::collection::vec(ts, 0..8),
        prop::collection::vec(md, 0..3),
    )
        .prop_map(|(timeseries, metadata)| proto::WriteRequest {
            timeseries,
            metadata,
        })
}

/// Bit-exact comparison (NaN payloads included), which `PartialEq` on
/// `f64` cannot give.
fn key(r: &proto::WriteRequest) -> String {
    let mut s = String::new();
    for t in &r.timeseries {
        s.push_str(&format!("{:?}|", t.labels));
        for x in &t.samples {
            s.push_str(&format!("{}:{:x},", x.timestamp, x.value.to_bits()));
        }
        s.push('\n');
    }
    s.push_str(&format!("{:?}", r.metadata));
    s
}

proptest! {
    #[test]
    fn encode_then_decode_is_the_identity(req in arb_request()) {
        let body = proto::encode(&req);
        let back = proto::decode(&body, 64 << 20).unwrap();
        prop_assert_eq!(key(&back), key(&req));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = proto::decode(&bytes, 1 << 20);
        let _ = proto::decode(&proto::compress(&bytes), 1 << 20);
    }

    #[test]
    fn a_cut_body_is_an_error(req in arb_request(), cut in 0.0f64..1.0) {
        let body = proto::encode(&req);
        let at = (body.len() as f64 * cut) as usize;
        if at < body.len() {
            prop_assert!(proto::decode(&body[..at], 64 << 20).is_err() || req.timeseries.is_empty() && req.metadata.is_empty());
        }
    }
}
