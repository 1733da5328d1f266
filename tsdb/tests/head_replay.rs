//! WAL replay in parallel: a WAL large enough that replay decodes and
//! applies its samples on several threads (tens of thousands of samples a
//! batch), with series created along the way, deletions, late samples
//! within the out-of-order window, duplicates and refused samples, reopens
//! to exactly what the head held before it was closed; and a WAL whose
//! samples name a series no record created is refused on the parallel path
//! as on the sequential one.

use vigil_tsdb::Error;
use vigil_tsdb::head::{Head, HeadOptions};
use vigil_tsdb::index::Matcher;
use vigil_tsdb::labels::Labels;

type Dump = Vec<(String, Vec<(i64, u64)>)>;

fn dump(head: &Head) -> Dump {
    head.querier(i64::MIN, i64::MAX)
        .select(&[])
        .iter()
        .map(|s| {
            let samples = s
                .samples()
                .map(|r| r.map(|(t, v)| (t, v.to_bits())))
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            (s.labels.to_string(), samples)
        })
        .collect()
}

fn opts() -> HeadOptions {
    HeadOptions {
        out_of_order_window_ms: 20_000,
        // Hundreds of commits: fsyncing each would only slow the test.
        wal: vigil_wal::Options::default().sync(vigil_wal::SyncPolicy::Never),
        ..HeadOptions::default()
    }
}

fn series(i: usize) -> Labels {
    Labels::new([
        ("__name__", format!("m{}", i % 7)),
        ("i", i.to_string()),
        ("zone", format!("z{}", i % 3)),
    ])
    .unwrap()
}

#[test]
fn a_big_wal_replays_to_the_same_head() {
    let dir = tempfile::tempdir().unwrap();
    let head = Head::open(dir.path(), opts()).unwrap();
    let mut refs = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..400i64 {
        // New series keep arriving (a Series record in the middle of the
        // sample records), 600 of them over the first 300 rounds.
        let mut app = head.appender();
        if round < 300 {
            for k in 0..2 {
                let i = refs.len();
                let r = app.append(&series(i), round * 10_000 + k, 0.5).unwrap();
                refs.push(r);
            }
        }
        for (j, &r) in refs.iter().enumerate() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let t = round * 10_000 + 5_000;
            let v = match x % 11 {
                0 => f64::from_bits(0x7ff0_0000_0000_0002),
                1 => f64::NAN,
                2 => -0.0,
                _ => (x % 1000) as f64 / 8.0 + j as f64,
            };
            let _ = app.append_ref(r, t, v);
            if x % 17 == 0 && round > 0 {
                // Late, within the window: kept aside as out-of-order.
                let _ = app.append_ref(r, t - 12_000 + (x % 100) as i64, 1.0);
            }
        }
        let _ = app.commit();
        if round % 97 == 50 {
            let z = format!("z{}", round % 3);
            head.delete(
                &[Matcher::equal("zone", z)],
                (round - 20) * 10_000,
                (round - 10) * 10_000,
            )
            .unwrap();
        }
    }
    // A sample too old for the window and a conflicting duplicate are
    // refused, and in the WAL all the same: replay must refuse them too.
    let mut app = head.appender();
    let _ = app.append_ref(refs[0], 399 * 10_000 + 5_000, 123.0);
    let _ = app.commit();
    let before = dump(&head);
    let samples: usize = before.iter().map(|(_, s)| s.len()).sum();
    assert!(
        samples > 150_000,
        "{samples} samples: too few for a parallel replay"
    );
    drop(head);

    let head = Head::open(dir.path(), opts()).unwrap();
    assert_eq!(head.num_series(), 600);
    let after = dump(&head);
    assert_eq!(before.len(), after.len());
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a, b, "series {}", a.0);
    }
}

fn uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint(out: &mut Vec<u8>, v: i64) {
    uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// A `Samples` record (FORMAT.md, "WAL records") of `(id, t, v)`.
fn samples_record(samples: &[(u64, i64, f64)]) -> Vec<u8> {
    let mut b = vec![2, 1];
    uvarint(&mut b, samples.len() as u64);
    let (mut pid, mut pt) = (0i64, 0i64);
    for &(id, t, v) in samples {
        varint(&mut b, id as i64 - pid);
        varint(&mut b, t - pt);
        b.extend_from_slice(&v.to_bits().to_le_bytes());
        (pid, pt) = (id as i64, t);
    }
    b
}

/// A `Series` record creating series `id` named `m{id}`.
fn series_record(id: u64) -> Vec<u8> {
    let mut series = vec![1, 1];
    uvarint(&mut series, 1);
    uvarint(&mut series, id);
    uvarint(&mut series, 1);
    for s in ["__name__".to_string(), format!("m{id}")] {
        uvarint(&mut series, s.len() as u64);
        series.extend_from_slice(s.as_bytes());
    }
    series
}

/// Opens a WAL of series 1's record, then enough samples of series 1 for
/// a parallel batch, one of them (in record 31) of series 2, whose record
/// comes after them if `late` (else never): the open must fail.
fn refuses_a_sample_of_a_series_not_created(late: bool) {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = vigil_wal::Wal::open(dir.path(), opts().wal).unwrap();
        wal.append(&series_record(1)).unwrap();
        for rec in 0..40i64 {
            let mut samples: Vec<(u64, i64, f64)> = (0..1000)
                .map(|k| (1, (rec * 1000 + k) * 1000, 1.0))
                .collect();
            if rec == 31 {
                samples[500].0 = 2;
            }
            wal.append(&samples_record(&samples)).unwrap();
        }
        if late {
            wal.append(&series_record(2)).unwrap();
        }
    }
    match Head::open(dir.path(), opts()) {
        Err(Error::BadRecord { what, .. }) => {
            assert_eq!(what, "sample of a series no record created")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a WAL with samples of an unknown series opened"),
    }
}

#[test]
fn samples_of_an_unknown_series_are_refused_on_the_parallel_path() {
    refuses_a_sample_of_a_series_not_created(false);
}

#[test]
fn a_sample_before_its_series_record_is_refused() {
    // Replay creates a batch's series before applying its samples; the
    // sample must still be refused as a sequential replay refuses it.
    refuses_a_sample_of_a_series_not_created(true);
}
