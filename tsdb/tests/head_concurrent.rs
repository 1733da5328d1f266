//! The head under concurrent use: several threads append and commit while
//! others query and checkpoint, then the head (and the head reopened from
//! its checkpoint and WAL) is compared with a model of every acknowledged
//! commit. It pins what `append_ref`'s lock-free check (`head/front.rs`)
//! must keep: a sample older than its series' newest committed one is
//! refused at once, whichever thread committed that one; a commit is seen
//! whole or not at all; nothing acknowledged is lost.

use std::collections::BTreeMap;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};

use vigil_tsdb::Error;
use vigil_tsdb::head::{Head, HeadOptions};
use vigil_tsdb::index::Matcher;
use vigil_tsdb::labels::Labels;

const THREADS: usize = 3;
const OWN: usize = 40;
const ROUNDS: i64 = 300;

fn owned(thread: usize, i: usize) -> Labels {
    Labels::new([
        ("__name__", "owned".to_string()),
        ("thread", thread.to_string()),
        ("i", i.to_string()),
    ])
    .unwrap()
}

fn shared() -> Labels {
    Labels::new([("__name__", "shared")]).unwrap()
}

/// The value every owned sample carries: any sample a query sees can be
/// checked on its own.
fn value(thread: usize, i: usize, t: i64) -> f64 {
    (t * 7 + (thread * 1000 + i) as i64) as f64
}

type Model = BTreeMap<Labels, BTreeMap<i64, u64>>;

fn contents(head: &Head) -> Model {
    head.querier(i64::MIN, i64::MAX)
        .select(&[Matcher::new("__name__", vigil_tsdb::index::MatchOp::Regex, ".+").unwrap()])
        .iter()
        .map(|s| {
            let samples = s
                .samples()
                .map(|r| r.map(|(t, v)| (t, v.to_bits())))
                .collect::<Result<BTreeMap<_, _>, _>>()
                .unwrap();
            (s.labels.clone(), samples)
        })
        .filter(|(_, m)| !m.is_empty())
        .collect()
}

/// One appending thread: a commit a round of one sample per owned series
/// (plus, every third round, one to the series all threads share), a
/// rollback now and then, and late samples that `append_ref` must refuse.
fn appender(head: &Head, thread: usize, start: &Barrier) -> Model {
    let mut model = Model::new();
    let mut refs = Vec::new();
    let mut shared_ref = None;
    start.wait();
    for round in 0..ROUNDS {
        // Timestamps of thread k's rounds interleave with the others'.
        let t = 1_000_000 + round * 100 + thread as i64 * 10;
        let mut app = head.appender();
        if refs.is_empty() {
            for i in 0..OWN {
                refs.push(
                    app.append(&owned(thread, i), t, value(thread, i, t))
                        .unwrap(),
                );
            }
        } else {
            for (i, &r) in refs.iter().enumerate() {
                app.append_ref(r, t, value(thread, i, t)).unwrap();
                // Older than this thread's first commit (round 0's).
                let late = app.append_ref(r, 999_999, 0.0);
                assert!(
                    matches!(late, Err(Error::OutOfOrderSample { .. })),
                    "thread {thread} round {round}: {late:?}"
                );
            }
        }
        if round % 7 == 3 {
            app.rollback();
            continue;
        }
        let got = app.commit().unwrap();
        assert_eq!(got.appended, OWN);
        for (i, _) in refs.iter().enumerate() {
            model
                .entry(owned(thread, i))
                .or_default()
                .insert(t, value(thread, i, t).to_bits());
        }
        if round % 3 == 0 {
            // One sample a commit: its outcome is the commit's. Another
            // thread may have committed a later one first.
            let mut app = head.appender();
            let r = match shared_ref {
                Some(r) => app.append_ref(r, t, thread as f64),
                None => app.append(&shared(), t, thread as f64).map(|r| {
                    shared_ref = Some(r);
                }),
            };
            match r {
                Ok(()) => {
                    if app.commit().is_ok() {
                        model
                            .entry(shared())
                            .or_default()
                            .insert(t, (thread as f64).to_bits());
                    }
                }
                Err(Error::OutOfOrderSample { .. }) => app.rollback(),
                Err(e) => panic!("thread {thread}: {e}"),
            }
        }
    }
    model
}

/// Checks one query's snapshot: each owned sample carries its value, and
/// each thread's series all end at the same round (a commit whole or not
/// at all).
fn check_snapshot(head: &Head) {
    let snap = contents(head);
    let mut newest: BTreeMap<String, i64> = BTreeMap::new();
    for (labels, samples) in &snap {
        if labels.get("__name__") != Some("owned") {
            continue;
        }
        let thread: usize = labels.get("thread").unwrap().parse().unwrap();
        let i: usize = labels.get("i").unwrap().parse().unwrap();
        for (&t, &bits) in samples {
            assert_eq!(bits, value(thread, i, t).to_bits(), "{labels} at {t}");
        }
        let last = *samples.keys().next_back().unwrap();
        let seen = newest
            .entry(labels.get("thread").unwrap().to_string())
            .or_insert(last);
        assert_eq!(*seen, last, "a commit seen in part: {labels}");
    }
}

#[test]
fn appends_from_threads_beside_queries_and_checkpoints_match_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let opts = HeadOptions {
        chunk_policy: vigil_tsdb::chunk::ChunkPolicy {
            max_samples: 30,
            max_span_ms: 100_000,
        },
        ..HeadOptions::default()
    };
    let head = Head::open(dir.path(), opts.clone()).unwrap();
    let start = Barrier::new(THREADS + 2);
    let done = AtomicBool::new(false);
    let model = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|k| {
                let (head, start) = (&head, &start);
                s.spawn(move || appender(head, k, start))
            })
            .collect();
        let reader = s.spawn(|| {
            start.wait();
            let mut n = 0;
            while !done.load(Ordering::Acquire) {
                check_snapshot(&head);
                n += 1;
            }
            n
        });
        let checkpointer = s.spawn(|| {
            start.wait();
            let mut n = 0;
            while !done.load(Ordering::Acquire) {
                head.checkpoint().unwrap();
                n += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            n
        });
        let mut model = Model::new();
        for w in workers {
            for (labels, samples) in w.join().unwrap() {
                model.entry(labels).or_default().extend(samples);
            }
        }
        done.store(true, Ordering::Release);
        assert!(reader.join().unwrap() > 0);
        assert!(checkpointer.join().unwrap() > 0);
        model
    });
    assert_eq!(model.len(), THREADS * OWN + 1);
    assert_eq!(contents(&head), model);
    check_snapshot(&head);
    drop(head);
    // The last checkpoint plus the WAL after it give the same head, and
    // the lock-free check answers from it again.
    let head = Head::open(dir.path(), opts).unwrap();
    assert_eq!(contents(&head), model);
    let id = head
        .querier(i64::MIN, i64::MAX)
        .select(&[Matcher::equal("thread", "0"), Matcher::equal("i", "0")])[0]
        .id;
    let mut app = head.appender();
    assert!(matches!(
        app.append_ref(id, 1_000_000, 1.0),
        Err(Error::OutOfOrderSample { .. })
    ));
    app.append_ref(id, 1_000_000 + ROUNDS * 100, 1.0).unwrap();
    app.commit().unwrap();
}
