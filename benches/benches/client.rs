//! The instrumentation client's hot paths and its encoder, side by side:
//! vigil-exposition, prometheus-client (the official Rust client) and
//! prometheus (tikv's client).
//!
//! - `counter_inc`: one counter incremented.
//! - `family_inc_same`: a labelled lookup of an existing child, then an
//!   increment; every thread uses the same child.
//! - `family_inc_distinct`: the same, each thread with its own child (the
//!   common case: concurrent requests with different labels).
//! - `family_inc_rotating`: the same, each operation with the next of 8
//!   label sets in turn (all threads alike), so a lookup never finds the
//!   label set the previous one used: vigil's per-thread cache then hashes
//!   the key instead of answering from the family's last hit.
//! - `histogram_observe`: one histogram (the 11 default buckets) observed.
//!
//! Each is run on 1 thread and on 2 threads at once (`/1`, `/2`); the time is
//! per operation of one thread, so on 2 threads perfect scaling keeps it
//! unchanged. `vigil-handle` is vigil's `get_or_create` (an `Arc` clone per
//! lookup), shown to measure what `with` saves; `vigil-pin` looks up through
//! `Family::pin` (the map itself, bypassing the per-thread cache that `with`
//! uses); `vigil-string` is a `Family<[String; 2], _>` looked up with
//! `&["GET", "200"]` (a borrowed key).
//!
//! `CLIENT_BENCH_CPU=1` reports each thread's CPU time instead of the wall
//! time (their mean on 2 threads): on a shared machine whose load is above
//! its core count, wall time counts the time a thread waited for a core.
//!
//! `encode_10k`: 100 families × 100 children (34 counter, 33 gauge and 33
//! histogram families, two labels per child) encoded into a reused buffer.
//! prometheus-client writes only OpenMetrics and prometheus only text 0.0.4,
//! so vigil is measured in both.

use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const VALUES: [f64; 8] = [0.003, 0.02, 0.07, 0.2, 0.4, 0.9, 3.0, 12.0];

/// Whether to report thread CPU time instead of wall time
/// (`CLIENT_BENCH_CPU=1`): on a shared, overloaded machine the wall time of
/// a thread counts the time other processes ran instead of it.
fn cpu_mode() -> bool {
    std::env::var_os("CLIENT_BENCH_CPU").is_some_and(|v| v == "1")
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Runs `op(thread, i)` for `i in 0..iters` on each of `threads` threads
/// started together; returns the wall time from the start to the last
/// thread's end, or with [`cpu_mode`] the threads' mean CPU time.
fn run<F: Fn(usize, u64) + Sync>(threads: usize, iters: u64, op: F) -> Duration {
    let barrier = Barrier::new(threads + 1);
    let mut start = Instant::now();
    let cpu = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    barrier.wait();
                    let c0 = thread_cpu();
                    for i in 0..iters {
                        op(t, i);
                    }
                    thread_cpu() - c0
                })
            })
            .collect();
        barrier.wait();
        start = Instant::now();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum::<Duration>()
    });
    let wall = start.elapsed();
    if cpu_mode() {
        cpu / threads as u32
    } else {
        wall
    }
}

type Op<'a> = Box<dyn Fn(usize, u64) + Sync + 'a>;

fn compare(c: &mut Criterion, group: &str, ops: Vec<(&str, Op<'_>)>) {
    let mut g = c.benchmark_group(group);
    for threads in [1usize, 2] {
        for (name, op) in &ops {
            g.bench_with_input(BenchmarkId::new(*name, threads), &threads, |b, &threads| {
                b.iter_custom(|iters| run(threads, iters, op));
            });
        }
    }
    g.finish();
}

fn counter_inc(c: &mut Criterion) {
    let vigil = vigil_exposition::client::Counter::<u64>::new();
    let pc = prometheus_client::metrics::counter::Counter::<u64>::default();
    let tikv = prometheus::IntCounter::new("c", "c").unwrap();
    compare(
        c,
        "counter_inc",
        vec![
            ("vigil", Box::new(|_, _| vigil.inc())),
            (
                "prometheus-client",
                Box::new(|_, _| {
                    pc.inc();
                }),
            ),
            ("prometheus", Box::new(|_, _| tikv.inc())),
        ],
    );
}

const KEYS: [[&str; 2]; 2] = [["GET", "200"], ["POST", "200"]];

fn family(c: &mut Criterion, distinct: bool) {
    use prometheus_client::metrics::counter::Counter as PcCounter;
    use prometheus_client::metrics::family::Family as PcFamily;
    use vigil_exposition::client::{Counter, Family};

    let vigil = Family::<[&'static str; 2], Counter>::with_label_names(&["method", "code"]);
    let vigil_string = Family::<[String; 2], Counter>::with_label_names(&["method", "code"]);
    let pc = PcFamily::<[(&'static str, &'static str); 2], PcCounter>::default();
    let tikv = prometheus::IntCounterVec::new(prometheus::Opts::new("f", "f"), &["method", "code"])
        .unwrap();
    let pc_keys = KEYS.map(|[m, c]| [("method", m), ("code", c)]);
    // Create the children beforehand: the benchmark is the lookup of an
    // existing one.
    for k in 0..2 {
        vigil.with(&KEYS[k], |c| c.inc());
        vigil_string.with(&KEYS[k], |c| c.inc());
        pc.get_or_create(&pc_keys[k]).inc();
        tikv.with_label_values(&KEYS[k]).inc();
    }
    let key = move |t: usize| if distinct { t % 2 } else { 0 };
    let (vigil, vigil_string, pc, tikv, pc_keys) = (&vigil, &vigil_string, &pc, &tikv, &pc_keys);
    compare(
        c,
        if distinct {
            "family_inc_distinct"
        } else {
            "family_inc_same"
        },
        vec![
            (
                "vigil",
                Box::new(move |t, _| vigil.with(&KEYS[key(t)], |c| c.inc())),
            ),
            (
                "vigil-handle",
                Box::new(move |t, _| vigil.get_or_create(&KEYS[key(t)]).inc()),
            ),
            (
                "vigil-pin",
                Box::new(move |t, _| vigil.pin().get_or_create(&KEYS[key(t)]).inc()),
            ),
            (
                "vigil-string",
                Box::new(move |t, _| vigil_string.with(&KEYS[key(t)], |c| c.inc())),
            ),
            (
                "prometheus-client",
                Box::new(move |t, _| {
                    pc.get_or_create(&pc_keys[key(t)]).inc();
                }),
            ),
            (
                "prometheus",
                Box::new(move |t, _| tikv.with_label_values(&KEYS[key(t)]).inc()),
            ),
        ],
    );
}

const ROTATING: [[&str; 2]; 8] = [
    ["GET", "200"],
    ["POST", "200"],
    ["PUT", "200"],
    ["DELETE", "200"],
    ["GET", "404"],
    ["POST", "404"],
    ["PUT", "500"],
    ["DELETE", "500"],
];

fn family_rotating(c: &mut Criterion) {
    use prometheus_client::metrics::counter::Counter as PcCounter;
    use prometheus_client::metrics::family::Family as PcFamily;
    use vigil_exposition::client::{Counter, Family};

    let vigil = Family::<[&'static str; 2], Counter>::with_label_names(&["method", "code"]);
    let pc = PcFamily::<[(&'static str, &'static str); 2], PcCounter>::default();
    let tikv = prometheus::IntCounterVec::new(prometheus::Opts::new("f", "f"), &["method", "code"])
        .unwrap();
    let pc_keys = ROTATING.map(|[m, c]| [("method", m), ("code", c)]);
    for k in 0..ROTATING.len() {
        vigil.with(&ROTATING[k], |c| c.inc());
        pc.get_or_create(&pc_keys[k]).inc();
        tikv.with_label_values(&ROTATING[k]).inc();
    }
    let (vigil, pc, tikv, pc_keys) = (&vigil, &pc, &tikv, &pc_keys);
    compare(
        c,
        "family_inc_rotating",
        vec![
            (
                "vigil",
                Box::new(move |_, i| vigil.with(&ROTATING[(i & 7) as usize], |c| c.inc())),
            ),
            (
                "prometheus-client",
                Box::new(move |_, i| {
                    pc.get_or_create(&pc_keys[(i & 7) as usize]).inc();
                }),
            ),
            (
                "prometheus",
                Box::new(move |_, i| tikv.with_label_values(&ROTATING[(i & 7) as usize]).inc()),
            ),
        ],
    );
}

fn family_same(c: &mut Criterion) {
    family(c, false);
}

fn family_distinct(c: &mut Criterion) {
    family(c, true);
}

fn histogram_observe(c: &mut Criterion) {
    let vigil = vigil_exposition::client::Histogram::new(BUCKETS);
    let pc = prometheus_client::metrics::histogram::Histogram::new(BUCKETS);
    let tikv = prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("h", "h").buckets(BUCKETS.to_vec()),
    )
    .unwrap();
    compare(
        c,
        "histogram_observe",
        vec![
            (
                "vigil",
                Box::new(|_, i| vigil.observe(VALUES[(i & 7) as usize])),
            ),
            (
                "prometheus-client",
                Box::new(|_, i| pc.observe(VALUES[(i & 7) as usize])),
            ),
            (
                "prometheus",
                Box::new(|_, i| tikv.observe(VALUES[(i & 7) as usize])),
            ),
        ],
    );
}

const FAMILIES: usize = 100;
const CHILDREN: usize = 100;
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

fn labels(c: usize) -> (String, String) {
    (METHODS[c % 4].to_owned(), format!("{c:03}"))
}

fn vigil_registry() -> vigil_exposition::client::Registry {
    use vigil_exposition::client::{Counter, Family, Gauge, Histogram, Registry};
    let r = Registry::new();
    for f in 0..FAMILIES {
        let name = format!("family_{f:03}");
        match f % 3 {
            0 => {
                let fam = Family::<(String, String), Counter>::with_label_names(&["method", "id"]);
                r.register(&name, "A counter family.", fam.clone()).unwrap();
                for c in 0..CHILDREN {
                    fam.with(&labels(c), |m| m.inc_by(c as u64 * 7));
                }
            }
            1 => {
                let fam = Family::<(String, String), Gauge>::with_label_names(&["method", "id"]);
                r.register(&name, "A gauge family.", fam.clone()).unwrap();
                for c in 0..CHILDREN {
                    fam.with(&labels(c), |m| m.set(c as i64 - 50));
                }
            }
            _ => {
                let fam = Family::<(String, String), Histogram>::builder()
                    .label_names(&["method", "id"])
                    .constructor(|| Histogram::new(BUCKETS))
                    .build();
                r.register(&name, "A histogram family.", fam.clone())
                    .unwrap();
                for c in 0..CHILDREN {
                    fam.with(&labels(c), |m| {
                        for v in VALUES.iter().take(c % 8 + 1) {
                            m.observe(*v);
                        }
                    });
                }
            }
        }
    }
    r
}

fn pc_registry() -> prometheus_client::registry::Registry {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::histogram::Histogram;
    type L = Vec<(String, String)>;
    let pair = |c: usize| {
        let (m, id) = labels(c);
        vec![("method".to_owned(), m), ("id".to_owned(), id)]
    };
    let mut r = prometheus_client::registry::Registry::default();
    for f in 0..FAMILIES {
        let name = format!("family_{f:03}");
        match f % 3 {
            0 => {
                let fam = Family::<L, Counter>::default();
                r.register(&name, "A counter family.", fam.clone());
                for c in 0..CHILDREN {
                    fam.get_or_create(&pair(c)).inc_by(c as u64 * 7);
                }
            }
            1 => {
                let fam = Family::<L, Gauge>::default();
                r.register(&name, "A gauge family.", fam.clone());
                for c in 0..CHILDREN {
                    fam.get_or_create(&pair(c)).set(c as i64 - 50);
                }
            }
            _ => {
                let fam = Family::<L, Histogram>::new_with_constructor(|| Histogram::new(BUCKETS));
                r.register(&name, "A histogram family.", fam.clone());
                for c in 0..CHILDREN {
                    let h = fam.get_or_create(&pair(c));
                    for v in VALUES.iter().take(c % 8 + 1) {
                        h.observe(*v);
                    }
                }
            }
        }
    }
    r
}

fn tikv_registry() -> prometheus::Registry {
    use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts};
    let r = prometheus::Registry::new();
    for f in 0..FAMILIES {
        let name = format!("family_{f:03}");
        match f % 3 {
            0 => {
                let fam =
                    IntCounterVec::new(Opts::new(&name, "A counter family."), &["method", "id"])
                        .unwrap();
                r.register(Box::new(fam.clone())).unwrap();
                for c in 0..CHILDREN {
                    let (m, id) = labels(c);
                    fam.with_label_values(&[m.as_str(), id.as_str()])
                        .inc_by(c as u64 * 7);
                }
            }
            1 => {
                let fam = IntGaugeVec::new(Opts::new(&name, "A gauge family."), &["method", "id"])
                    .unwrap();
                r.register(Box::new(fam.clone())).unwrap();
                for c in 0..CHILDREN {
                    let (m, id) = labels(c);
                    fam.with_label_values(&[m.as_str(), id.as_str()])
                        .set(c as i64 - 50);
                }
            }
            _ => {
                let opts =
                    HistogramOpts::new(&name, "A histogram family.").buckets(BUCKETS.to_vec());
                let fam = HistogramVec::new(opts, &["method", "id"]).unwrap();
                r.register(Box::new(fam.clone())).unwrap();
                for c in 0..CHILDREN {
                    let (m, id) = labels(c);
                    let h = fam.with_label_values(&[m.as_str(), id.as_str()]);
                    for v in VALUES.iter().take(c % 8 + 1) {
                        h.observe(*v);
                    }
                }
            }
        }
    }
    r
}

fn encode_10k(c: &mut Criterion) {
    use prometheus::Encoder as _;
    use vigil_exposition::Format;

    let vigil = vigil_registry();
    let pc = pc_registry();
    let tikv = tikv_registry();
    let mut g = c.benchmark_group("encode_10k");
    g.throughput(Throughput::Elements((FAMILIES * CHILDREN) as u64));

    let mut buf = Vec::new();
    vigil.encode(Format::OpenMetrics, &mut buf);
    let vigil_om_len = buf.len();
    g.bench_function("vigil/openmetrics", |b| {
        b.iter(|| {
            buf.clear();
            vigil.encode(Format::OpenMetrics, &mut buf);
            black_box(buf.len())
        })
    });
    g.bench_function("vigil/text", |b| {
        b.iter(|| {
            buf.clear();
            vigil.encode(Format::Text, &mut buf);
            black_box(buf.len())
        })
    });
    let mut s = String::new();
    prometheus_client::encoding::text::encode(&mut s, &pc).unwrap();
    let pc_len = s.len();
    g.bench_function("prometheus-client/openmetrics", |b| {
        b.iter(|| {
            s.clear();
            prometheus_client::encoding::text::encode(&mut s, &pc).unwrap();
            black_box(s.len())
        })
    });
    let enc = prometheus::TextEncoder::new();
    g.bench_function("prometheus/text", |b| {
        b.iter(|| {
            buf.clear();
            enc.encode(&tikv.gather(), &mut buf).unwrap();
            black_box(buf.len())
        })
    });
    g.finish();
    eprintln!(
        "encode_10k output sizes: vigil OpenMetrics {vigil_om_len} B (with _created), prometheus-client {pc_len} B"
    );
}

criterion_group!(
    benches,
    counter_inc,
    family_same,
    family_distinct,
    family_rotating,
    histogram_observe,
    encode_10k
);
criterion_main!(benches);
