//! The client end to end: a registry with every metric type, encoded in both
//! formats and compared with golden output, then read back by the parser and
//! compared with `gather()`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vigil_exposition::client::{
    Collector, CollectorWriter, Counter, Family, Gauge, Histogram, Info, Registry, StateSet,
    Summary,
};
use vigil_exposition::parse::{Mode, parse_families};
use vigil_exposition::{Format, MetricFamily, MetricType};

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_000_250)
}

struct Queue;

impl Collector for Queue {
    fn collect(&self, out: &mut CollectorWriter<'_, '_>) {
        out.family("queue_jobs", MetricType::Gauge, "Jobs by state.")
            .sample("", &[("state", "waiting")], 4.0)
            .sample("", &[("state", "running")], 2.0);
    }
}

/// A registry using every metric type, with fixed values and creation times.
fn everything() -> Registry {
    registry(true)
}

/// `utf8`: include a gauge with a UTF-8 name, which Prometheus 3 reads
/// quoted but OpenMetrics 1.0's grammar (the strict parser) does not allow.
fn registry(utf8: bool) -> Registry {
    let r = Registry::new();

    let requests = Counter::<u64>::with_created(t0());
    r.register("requests_total", "Requests \"served\".", requests.clone())
        .unwrap();
    requests.inc_by(5);

    let cpu = Counter::<f64>::with_created(t0());
    r.register_with_unit("cpu", "CPU time.", "seconds", cpu.clone())
        .unwrap();
    cpu.inc_by(1.5);

    let in_flight = Gauge::<i64>::new();
    r.register("in_flight", "Requests in flight.", in_flight.clone())
        .unwrap();
    in_flight.set(-3);

    if utf8 {
        let ratio = Gauge::<f64>::new();
        r.register("cache.hit.ratio", "UTF-8 name.", ratio.clone())
            .unwrap();
        ratio.set(0.25);
    }

    let http = Family::<[&'static str; 2], Counter>::builder()
        .label_names(&["method", "path"])
        .constructor(|| Counter::with_created(t0()))
        .build();
    r.register(
        "http_requests",
        "Requests by method and path.",
        http.clone(),
    )
    .unwrap();
    http.with(&["GET", "/a\"b\\c\nd"], |c| c.inc_by(2));
    http.with(&["POST", "/"], |c| c.inc());

    let latency = Family::<Vec<(&'static str, &'static str)>, Histogram>::new_with(|| {
        Histogram::with_created([0.1, 0.5, 1.0], t0())
    });
    r.register_with_unit("latency", "Request latency.", "seconds", latency.clone())
        .unwrap();
    let api = vec![("route", "api")];
    for v in [0.05, 0.3, 0.3, 2.0] {
        latency.with(&api, |h| h.observe(v));
    }

    let payload = Summary::builder().created(t0()).build();
    r.register_with_unit("payload", "Payload sizes.", "bytes", payload.clone())
        .unwrap();
    payload.observe(100.0);
    payload.observe(28.0);

    let rtt = Summary::builder()
        .quantiles(&[0.5, 1.0])
        .created(t0())
        .build();
    r.register("rtt", "Round trips.", rtt.clone()).unwrap();
    for v in [0.0, 0.0, 0.0] {
        rtt.observe(v);
    }

    r.register(
        "build",
        "Build information.",
        Info::new(&vec![("version", "1.2.3"), ("commit", "abc")]),
    )
    .unwrap();

    let phase = StateSet::new(&["starting", "ready"]);
    r.register("phase", "Lifecycle phase.", phase.clone())
        .unwrap();
    phase.set_only("ready");

    let db = r
        .sub_registry_with_prefix("db")
        .sub_registry_with_labels(&[("pool", "main")])
        .unwrap();
    let conns = Gauge::<i64>::new();
    db.register("connections", "Open connections.", conns.clone())
        .unwrap();
    conns.set(7);
    db.register_collector(Queue);
    r
}

fn encode(r: &Registry, format: Format) -> String {
    let mut out = Vec::new();
    r.encode(format, &mut out);
    String::from_utf8(out).unwrap()
}

const GOLDEN_OM: &str = include_str!("golden/client_everything.om");
const GOLDEN_TEXT: &str = include_str!("golden/client_everything.prom");

#[test]
fn openmetrics_output_is_exact() {
    assert_eq!(encode(&everything(), Format::OpenMetrics), GOLDEN_OM);
}

#[test]
fn text_output_is_exact() {
    assert_eq!(encode(&everything(), Format::Text), GOLDEN_TEXT);
}

/// One sample, comparable across formats: numeric labels (`le`,
/// `quantile`) by value, since the formats spell them differently.
type FlatSample = (String, Vec<(String, String)>, u64);

fn flat(fams: &[MetricFamily], keep_created: bool) -> Vec<FlatSample> {
    let mut out = Vec::new();
    for f in fams {
        for s in &f.samples {
            if !keep_created && s.name.ends_with("_created") {
                continue;
            }
            let labels = s
                .labels
                .iter()
                .map(|(n, v)| {
                    let v = if n == "le" || n == "quantile" {
                        format!("{:?}", v.parse::<f64>().unwrap_or(f64::NAN))
                    } else {
                        v.clone()
                    };
                    (n.clone(), v)
                })
                .collect();
            out.push((s.name.clone(), labels, s.value.to_bits()));
        }
    }
    out
}

#[test]
fn openmetrics_output_parses_strictly_into_what_gather_returns() {
    let r = registry(false);
    let parsed = parse_families(
        encode(&r, Format::OpenMetrics).as_bytes(),
        Format::OpenMetrics,
        Mode::Strict,
    )
    .expect("strict OpenMetrics parse");
    same_families(&parsed, &r.gather());
}

#[test]
fn utf8_names_parse_back_in_scrape_mode() {
    let r = everything();
    let parsed = parse_families(
        encode(&r, Format::OpenMetrics).as_bytes(),
        Format::OpenMetrics,
        Mode::Scrape,
    )
    .expect("OpenMetrics parse");
    same_families(&parsed, &r.gather());
    assert!(parsed.iter().any(|f| f.name == "cache.hit.ratio"));
}

fn same_families(parsed: &[MetricFamily], gathered: &[MetricFamily]) {
    // Family by family: name, type, unit, help and every sample.
    assert_eq!(parsed.len(), gathered.len());
    for (p, g) in parsed.iter().zip(gathered) {
        assert_eq!(
            (&p.name, p.metric_type, &p.unit, &p.help),
            (&g.name, g.metric_type, &g.unit, &g.help)
        );
        assert_eq!(
            flat(std::slice::from_ref(p), true),
            flat(std::slice::from_ref(g), true),
            "{}",
            p.name
        );
    }
}

#[test]
fn text_output_parses_into_the_same_samples() {
    let r = everything();
    let parsed = parse_families(
        encode(&r, Format::Text).as_bytes(),
        Format::Text,
        Mode::Scrape,
    )
    .expect("text parse");
    assert_eq!(flat(&parsed, false), flat(&r.gather(), false));
    // Text types: counters keep their type under the `_total` name; info
    // and stateset become gauges.
    let ty = |name: &str| {
        parsed
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.metric_type)
    };
    assert_eq!(ty("requests_total"), Some(MetricType::Counter));
    assert_eq!(ty("latency_seconds"), Some(MetricType::Histogram));
    assert_eq!(ty("rtt"), Some(MetricType::Summary));
    assert_eq!(ty("build_info"), Some(MetricType::Gauge));
    assert_eq!(ty("phase"), Some(MetricType::Gauge));
}

#[test]
fn gather_carries_constant_labels_prefixes_and_canonical_numbers() {
    let fams = everything().gather();
    let bucket = fams
        .iter()
        .find(|f| f.name == "latency_seconds")
        .and_then(|f| f.samples.iter().find(|s| s.get_label("le") == Some("1.0")))
        .expect("le=\"1.0\" bucket");
    assert_eq!(bucket.value, 3.0);
    let jobs = fams
        .iter()
        .find(|f| f.name == "db_queue_jobs")
        .expect("collector family");
    assert_eq!(jobs.samples[0].get_label("pool"), Some("main"));
    let created = fams.iter().find(|f| f.name == "requests").unwrap();
    assert_eq!(created.samples[1].name, "requests_created");
    assert_eq!(created.samples[1].value, 1_700_000_000.25);
}

#[test]
fn removed_children_are_no_longer_written() {
    let r = Registry::new();
    let f = Family::<[&'static str; 1], Gauge>::with_label_names(&["k"]);
    r.register("g", "", f.clone()).unwrap();
    f.with(&["a"], |g| g.set(1));
    f.with(&["b"], |g| g.set(2));
    let kept = f.get_or_create(&["a"]);
    assert!(f.remove(&["a"]));
    kept.set(5); // the handle still works, unexported
    assert_eq!(encode(&r, Format::Text), "# TYPE g gauge\ng{k=\"b\"} 2\n");
    f.clear();
    assert_eq!(encode(&r, Format::OpenMetrics), "# TYPE g gauge\n# EOF\n");
}

#[test]
fn collectors_can_pass_owned_families_through() {
    struct Proxy(Vec<MetricFamily>);
    impl Collector for Proxy {
        fn collect(&self, out: &mut CollectorWriter<'_, '_>) {
            out.families(&self.0);
        }
    }
    let src = "# TYPE up gauge\n# HELP up Target up.\nup{job=\"x\"} 1.0\n# EOF\n";
    let fams = parse_families(src.as_bytes(), Format::OpenMetrics, Mode::Strict).unwrap();
    let r = Registry::with_prefix("fed");
    r.register_collector(Proxy(fams));
    assert_eq!(
        encode(&r, Format::OpenMetrics),
        "# TYPE fed_up gauge\n# HELP fed_up Target up.\nfed_up{job=\"x\"} 1.0\n# EOF\n"
    );
}
