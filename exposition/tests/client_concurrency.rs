//! Many threads updating the same metrics: totals come out exact, children
//! are created once, and scrapes taken meanwhile parse.

use std::sync::Barrier;
use std::thread;

use vigil_exposition::Format;
use vigil_exposition::client::{Counter, Family, Gauge, Histogram, Registry, Summary};
use vigil_exposition::parse::{Mode, parse_families};

const THREADS: usize = 8;
const PER_THREAD: u64 = 20_000;

#[test]
fn counters_and_gauges_are_exact() {
    let ints = Counter::<u64>::new();
    let floats = Counter::<f64>::new();
    let gauge = Gauge::<i64>::new();
    let fgauge = Gauge::<f64>::new();
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        for t in 0..THREADS {
            let (ints, floats, gauge, fgauge, barrier) =
                (&ints, &floats, &gauge, &fgauge, &barrier);
            s.spawn(move || {
                barrier.wait();
                for _ in 0..PER_THREAD {
                    ints.inc();
                    floats.inc_by(0.5);
                    if t % 2 == 0 {
                        gauge.inc()
                    } else {
                        gauge.dec()
                    }
                    fgauge.add(1.0);
                }
            });
        }
    });
    let n = THREADS as u64 * PER_THREAD;
    assert_eq!(ints.get(), n);
    // Halves add exactly in binary floating point up to 2^52.
    assert_eq!(floats.get(), n as f64 * 0.5);
    assert_eq!(gauge.get(), 0);
    assert_eq!(fgauge.get(), n as f64);
}

#[test]
fn family_children_are_created_once_and_totals_exact() {
    let registry = Registry::new();
    let family = Family::<[u16; 1], Counter>::with_label_names(&["shard"]);
    registry.register("ops", "", family.clone()).unwrap();
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        for t in 0..THREADS {
            let (family, barrier) = (&family, &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..PER_THREAD {
                    // Every thread races to create the same 16 children.
                    let shard = ((i + t as u64) % 16) as u16;
                    if i % 2 == 0 {
                        family.with(&[shard], |c| c.inc());
                    } else {
                        family.pin().get_or_create(&[shard]).inc();
                    }
                }
            });
        }
    });
    assert_eq!(family.len(), 16);
    let total: u64 = (0..16u16).map(|s| family.get(&[s]).unwrap().get()).sum();
    assert_eq!(total, THREADS as u64 * PER_THREAD);
    let fams = registry.gather();
    assert_eq!(
        fams[0]
            .samples
            .iter()
            .filter(|s| s.name == "ops_total")
            .count(),
        16
    );
}

#[test]
fn histogram_and_summary_counts_are_exact_and_scrapes_parse_meanwhile() {
    let registry = Registry::new();
    let h = Histogram::new([1.0, 2.0, 3.0]);
    let summary = Summary::builder().quantiles(&[0.5, 0.99]).build();
    registry.register("h", "", h.clone()).unwrap();
    registry.register("s", "", summary.clone()).unwrap();
    let barrier = Barrier::new(THREADS + 1);
    thread::scope(|s| {
        for t in 0..THREADS {
            let (h, summary, barrier) = (&h, &summary, &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..PER_THREAD {
                    let v = ((i + t as u64) % 4) as f64 + 0.5; // 0.5, 1.5, 2.5, 3.5
                    h.observe(v);
                    if i % 8 == 0 {
                        summary.observe(v);
                    }
                }
            });
        }
        let registry = &registry;
        let barrier = &barrier;
        s.spawn(move || {
            barrier.wait();
            for _ in 0..50 {
                let mut out = Vec::new();
                registry.encode(Format::OpenMetrics, &mut out);
                let fams =
                    parse_families(&out, Format::OpenMetrics, Mode::Strict).expect("scrape parses");
                // +Inf and _count come from one reading.
                let inf = fams[0]
                    .samples
                    .iter()
                    .find(|s| s.get_label("le") == Some("+Inf"))
                    .unwrap();
                let count = fams[0]
                    .samples
                    .iter()
                    .find(|s| s.name == "h_count")
                    .unwrap();
                assert_eq!(inf.value, count.value);
            }
        });
    });
    let n = THREADS as u64 * PER_THREAD;
    let snap = h.snapshot();
    assert_eq!(snap.count, n);
    let quarter = n / 4;
    assert_eq!(
        snap.buckets,
        [
            (1.0, quarter),
            (2.0, 2 * quarter),
            (3.0, 3 * quarter),
            (f64::INFINITY, n)
        ]
    );
    assert_eq!(snap.sum, (0.5 + 1.5 + 2.5 + 3.5) * quarter as f64);
    assert_eq!(summary.count(), THREADS as u64 * PER_THREAD.div_ceil(8));
}
