//! The head against a model: random appends (in and out of order, duplicate
//! timestamps, special values), commits, rollbacks, restarts (WAL replay)
//! and queries, compared with a map of what was committed.

use std::collections::BTreeMap;

use proptest::prelude::*;
use vigil_tsdb::Error;
use vigil_tsdb::head::{Head, HeadOptions};
use vigil_tsdb::index::{MatchOp, Matcher};
use vigil_tsdb::labels::Labels;

#[derive(Debug, Clone)]
enum Op {
    /// series, timestamp step (may be negative), value kind
    Append(usize, i64, u8),
    Commit,
    Rollback,
    Restart,
    Checkpoint,
    Query(i64, i64, usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let append = (0usize..5, -40i64..60, 0u8..6).prop_map(|(s, d, v)| Op::Append(s, d, v));
    let query = (-50i64..400, 0i64..400, 0usize..4).prop_map(|(a, w, j)| Op::Query(a, a + w, j));
    proptest::collection::vec(
        prop_oneof![8 => append, 3 => Just(Op::Commit), 1 => Just(Op::Rollback), 1 => Just(Op::Restart),
            1 => Just(Op::Checkpoint), 2 => query],
        1..80,
    )
}

fn value(kind: u8, t: i64) -> f64 {
    match kind {
        0 => t as f64,
        1 => f64::from_bits(0x7ff0_0000_0000_0002),
        2 => f64::NAN,
        3 => -0.0,
        4 => f64::INFINITY,
        _ => (t as f64) * 0.25 + 1e-9,
    }
}

fn labels(s: usize) -> Labels {
    Labels::new([
        ("__name__", "m"),
        ("job", ["a", "b", "c"][s % 3]),
        ("i", ["0", "1"][s / 3]),
    ])
    .unwrap()
}

type Model = BTreeMap<Labels, BTreeMap<i64, u64>>;

/// Applies one committed sample to the model as the head must.
fn model_apply(
    series: &mut BTreeMap<i64, u64>,
    t: i64,
    bits: u64,
    window: i64,
) -> Result<bool, ()> {
    let last = series.keys().next_back().copied();
    match last {
        None => {}
        Some(last) if t > last => {}
        Some(last) if t < last && (window == 0 || last - t > window) => return Err(()),
        Some(_) => {
            return match series.get(&t) {
                Some(&old) if old == bits => Ok(false),
                Some(_) => Err(()),
                None => {
                    series.insert(t, bits);
                    Ok(true)
                }
            };
        }
    }
    series.insert(t, bits);
    Ok(true)
}

fn run(ops: Vec<Op>, window: i64) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let opts = HeadOptions {
        out_of_order_window_ms: window,
        chunk_policy: vigil_tsdb::chunk::ChunkPolicy {
            max_samples: 7,
            max_span_ms: 100,
        },
        ..HeadOptions::default()
    };
    let mut head = Head::open(dir.path(), opts.clone()).unwrap();
    let mut model: Model = BTreeMap::new();
    let mut clock = [100i64; 5];
    let mut app = Some(head.appender());
    let mut pending: Vec<(usize, i64, u64)> = Vec::new();
    for op in ops {
        match op {
            Op::Append(s, d, kind) => {
                let t = clock[s] + d;
                clock[s] = clock[s].max(t);
                let v = value(kind, t);
                let committed_last = model
                    .get(&labels(s))
                    .and_then(|m| m.keys().next_back().copied());
                // Only the committed samples count here; the batch's own
                // order is judged at commit.
                let last = committed_last;
                let refuse = last.is_some_and(|l| t < l && (window == 0 || l - t > window));
                let got = app.as_mut().unwrap().append(&labels(s), t, v);
                if refuse {
                    prop_assert!(
                        matches!(got, Err(Error::OutOfOrderSample { .. })),
                        "{got:?}"
                    );
                } else {
                    prop_assert!(got.is_ok(), "{got:?}");
                    pending.push((s, t, v.to_bits()));
                }
            }
            Op::Commit => {
                let result = app.take().unwrap().commit();
                let mut want_err = false;
                let mut appended = 0;
                for (s, t, bits) in pending.drain(..) {
                    match model_apply(model.entry(labels(s)).or_default(), t, bits, window) {
                        Ok(true) => appended += 1,
                        Ok(false) => {}
                        Err(()) => want_err = true,
                    }
                }
                match result {
                    Ok(sum) => {
                        prop_assert!(!want_err, "commit should have reported a refused sample");
                        prop_assert_eq!(sum.appended, appended);
                    }
                    Err(e) => prop_assert!(want_err, "unexpected {e}"),
                }
                app = Some(head.appender());
            }
            Op::Rollback => {
                app.take().unwrap().rollback();
                pending.clear();
                app = Some(head.appender());
            }
            Op::Checkpoint => {
                // Commits and checkpoints are serialized; this appender's
                // pending samples stay pending.
                head.checkpoint().unwrap();
            }
            Op::Restart => {
                app.take().unwrap().rollback();
                pending.clear();
                drop(head);
                head = Head::open(dir.path(), opts.clone()).unwrap();
                app = Some(head.appender());
            }
            Op::Query(mint, maxt, j) => {
                let matchers = match j {
                    0 => vec![Matcher::equal("__name__", "m")],
                    1 => vec![Matcher::equal("job", "a")],
                    2 => vec![
                        Matcher::new("job", MatchOp::Regex, "b|c").unwrap(),
                        Matcher::equal("i", "1"),
                    ],
                    _ => vec![Matcher::new("job", MatchOp::NotEqual, "a").unwrap()],
                };
                let got: Vec<(Labels, Vec<(i64, u64)>)> = head
                    .querier(mint, maxt)
                    .select(&matchers)
                    .iter()
                    .map(|s| {
                        let samples = s
                            .samples()
                            .map(|r| r.map(|(t, v)| (t, v.to_bits())))
                            .collect::<Result<Vec<_>, _>>()
                            .unwrap();
                        (s.labels.clone(), samples)
                    })
                    // A series whose chunks overlap the range may have no
                    // sample inside it (the iterator is lazy).
                    .filter(|(_, v)| !v.is_empty())
                    .collect();
                let want: Vec<(Labels, Vec<(i64, u64)>)> = model
                    .iter()
                    .filter(|(l, _)| {
                        matchers
                            .iter()
                            .all(|m| m.matches(l.get(m.name()).unwrap_or("")))
                    })
                    .map(|(l, m)| {
                        (
                            l.clone(),
                            m.range(mint..=maxt)
                                .map(|(&t, &b)| (t, b))
                                .collect::<Vec<_>>(),
                        )
                    })
                    .filter(|(_, v)| !v.is_empty())
                    .collect();
                prop_assert_eq!(got, want, "query [{}, {}] {:?}", mint, maxt, matchers);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn in_order_only(ops in ops()) {
        run(ops, 0)?;
    }

    #[test]
    fn with_out_of_order_window(ops in ops()) {
        run(ops, 30)?;
    }
}
