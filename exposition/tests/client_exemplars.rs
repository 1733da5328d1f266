//! Client exemplars (counters and histogram buckets) read back by the strict
//! OpenMetrics parser, and borrowed family lookups.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vigil_exposition::client::{Counter, Family, Histogram, MAX_EXEMPLAR_CHARS, Registry};
use vigil_exposition::parse::{Mode, parse_families};
use vigil_exposition::{Exemplar, Format, MetricFamily};

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_000_250)
}

fn encode(r: &Registry, format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(format, &mut out);
    out
}

fn strict(body: &[u8]) -> Vec<MetricFamily> {
    parse_families(body, Format::OpenMetrics, Mode::Strict)
        .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(body)))
}

fn exemplar_of<'a>(
    fams: &'a [MetricFamily],
    sample: &str,
    le: Option<&str>,
) -> Option<&'a Exemplar> {
    fams.iter()
        .flat_map(|f| &f.samples)
        .find(|s| {
            s.name == sample
                && le.is_none_or(|le| s.labels.iter().any(|(n, v)| n == "le" && v == le))
        })
        .and_then(|s| s.exemplar.as_ref())
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// A registry with exemplars on a counter, a float counter, a family child
/// and two buckets of a histogram.
fn registry() -> (Registry, Histogram) {
    let r = Registry::new();
    let requests = Counter::<u64>::with_created(t0());
    r.register("requests", "Requests.", requests.clone())
        .unwrap();
    requests.inc_by(4);
    requests
        .inc_by_with_exemplar(3, &[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")])
        .unwrap();

    let bytes = Counter::<f64>::with_created(t0());
    r.register_with_unit("sent", "Bytes sent.", "bytes", bytes.clone())
        .unwrap();
    bytes
        .inc_by_with_exemplar(
            1.5,
            &[("trace_id", "a \"quoted\"\nvalue"), ("span_id", "7")],
        )
        .unwrap();

    let by_code = Family::<[String; 1], Counter>::with_label_names(&["code"]);
    r.register("responses", "Responses.", by_code.clone())
        .unwrap();
    by_code.with(&["200"], |c| {
        c.inc_with_exemplar(&[("trace_id", "t200")]).unwrap()
    });

    let latency = Histogram::with_created([0.1, 0.5, 1.0], t0());
    r.register_with_unit("latency", "Latency.", "seconds", latency.clone())
        .unwrap();
    latency.observe(0.05);
    latency
        .observe_with_exemplar(0.27, &[("trace_id", "slow")])
        .unwrap();
    latency
        .observe_with_exemplar(7.0, &[("trace_id", "slowest")])
        .unwrap();
    (r, latency)
}

#[test]
fn exemplars_are_written_in_openmetrics_and_read_back_strictly() {
    let (r, _) = registry();
    let body = encode(&r, Format::OpenMetrics);
    let fams = strict(&body);

    let ex = exemplar_of(&fams, "requests_total", None).expect("counter exemplar");
    assert_eq!(
        ex.labels,
        labels(&[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")])
    );
    assert_eq!(ex.value, 3.0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ts = ex.timestamp_ms.expect("an exemplar timestamp");
    assert!(
        (now - ts).abs() < 60_000,
        "timestamp {ts} not near now {now}"
    );

    let ex = exemplar_of(&fams, "sent_bytes_total", None).expect("float counter exemplar");
    assert_eq!(
        ex.labels,
        labels(&[("trace_id", "a \"quoted\"\nvalue"), ("span_id", "7")])
    );
    assert_eq!(ex.value, 1.5);

    let ex = exemplar_of(&fams, "responses_total", None).expect("family child exemplar");
    assert_eq!(ex.labels, labels(&[("trace_id", "t200")]));

    // Each exemplar sits on the bucket its observation fell in.
    let ex = exemplar_of(&fams, "latency_seconds_bucket", Some("0.5")).expect("0.5 bucket");
    assert_eq!(
        (ex.labels.clone(), ex.value),
        (labels(&[("trace_id", "slow")]), 0.27)
    );
    let ex = exemplar_of(&fams, "latency_seconds_bucket", Some("+Inf")).expect("+Inf bucket");
    assert_eq!(ex.value, 7.0);
    assert!(exemplar_of(&fams, "latency_seconds_bucket", Some("0.1")).is_none());
    assert!(exemplar_of(&fams, "latency_seconds_bucket", Some("1.0")).is_none());
    assert!(exemplar_of(&fams, "latency_seconds_count", None).is_none());

    // gather() carries the same exemplars as the parsed output.
    let gathered = r.gather();
    for (g, p) in gathered.iter().zip(&fams) {
        for (gs, ps) in g.samples.iter().zip(&p.samples) {
            assert_eq!(gs.exemplar, ps.exemplar, "{}", gs.name);
        }
    }
}

#[test]
fn text_format_has_no_exemplars() {
    let (r, _) = registry();
    let text = String::from_utf8(encode(&r, Format::Text)).unwrap();
    assert!(!text.contains(" # {"), "{text}");
    assert!(text.contains("requests_total 7\n"), "{text}");
    parse_families(text.as_bytes(), Format::Text, Mode::Scrape).unwrap();
}

#[test]
fn a_new_exemplar_replaces_the_bucket_s_old_one() {
    let (r, latency) = registry();
    latency
        .observe_with_exemplar(0.3, &[("trace_id", "newer")])
        .unwrap();
    let fams = strict(&encode(&r, Format::OpenMetrics));
    let ex = exemplar_of(&fams, "latency_seconds_bucket", Some("0.5")).unwrap();
    assert_eq!(
        (ex.labels.clone(), ex.value),
        (labels(&[("trace_id", "newer")]), 0.3)
    );
}

#[test]
fn an_invalid_exemplar_is_refused_but_the_increment_counts() {
    let c = Counter::<u64>::new();
    c.inc_with_exemplar(&[("trace_id", "kept")]).unwrap();
    let long = "x".repeat(MAX_EXEMPLAR_CHARS);
    let err = c
        .inc_with_exemplar(&[("trace_id", long.as_str())])
        .unwrap_err();
    assert!(err.to_string().contains("128 characters"), "{err}");
    assert!(c.inc_with_exemplar(&[("__reserved", "1")]).is_err());
    assert!(c.inc_with_exemplar(&[("a", "1"), ("a", "2")]).is_err());
    assert_eq!(c.get(), 4);

    let r = Registry::new();
    r.register("c", "C.", c.clone()).unwrap();
    let fams = strict(&encode(&r, Format::OpenMetrics));
    let ex = exemplar_of(&fams, "c_total", None).unwrap();
    assert_eq!(ex.labels, labels(&[("trace_id", "kept")]));

    // 128 characters exactly are allowed, and the strict parser agrees.
    let name_and_value = format!("t{}", "é".repeat(MAX_EXEMPLAR_CHARS - 1));
    let h = Histogram::new([1.0]);
    h.observe_with_exemplar(0.5, &[(&name_and_value[..1], &name_and_value[1..])])
        .unwrap();
    let r = Registry::new();
    r.register("h", "H.", h.clone()).unwrap();
    let fams = strict(&encode(&r, Format::OpenMetrics));
    assert!(exemplar_of(&fams, "h_bucket", Some("1.0")).is_some());
    assert!(
        h.observe_with_exemplar(0.5, &[("t", &*"é".repeat(MAX_EXEMPLAR_CHARS))])
            .is_err()
    );
    assert_eq!(h.snapshot().count, 2);
}

#[test]
fn string_keyed_families_take_borrowed_keys() {
    let pairs = Family::<[String; 2], Counter>::with_label_names(&["method", "code"]);
    pairs.with(&["GET", "200"], |c| c.inc());
    pairs.with(&["GET".to_owned(), "200".to_owned()], |c| c.inc());
    pairs.get_or_create(&["GET", "200"]).inc();
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs.get(&["GET", "200"]).map(|c| c.get()), Some(3));
    assert!(pairs.get(&["GET", "500"]).is_none());
    assert_eq!(pairs.pin().get(&["GET", "200"]).map(|c| c.get()), Some(3));

    let tuples = Family::<(String, String), Counter>::with_label_names(&["a", "b"]);
    tuples.with(&("x", "y"), |c| c.inc_by(2));
    assert_eq!(
        tuples
            .get(&("x".to_owned(), "y".to_owned()))
            .map(|c| c.get()),
        Some(2)
    );
    assert!(tuples.remove(&("x", "y")));
    assert!(tuples.is_empty());

    let named = Family::<Vec<(String, String)>, Counter>::new();
    named.with(&[("route", "/a"), ("code", "200")], |c| c.inc());
    named.with(&[("route", "/a"), ("code", "200")][..], |c| c.inc());
    assert_eq!(named.len(), 1);
    let owned = vec![
        ("route".to_owned(), "/a".to_owned()),
        ("code".to_owned(), "200".to_owned()),
    ];
    assert_eq!(named.get(&owned).map(|c| c.get()), Some(2));

    let r = Registry::new();
    r.register("pairs", "P.", pairs).unwrap();
    let text = String::from_utf8(encode(&r, Format::Text)).unwrap();
    assert!(
        text.contains("pairs_total{method=\"GET\",code=\"200\"} 3\n"),
        "{text}"
    );
}

#[test]
fn a_removed_child_is_not_served_from_the_thread_cache() {
    let f = Family::<[&'static str; 1], Counter>::with_label_names(&["k"]);
    let old = f.get_or_create(&["a"]);
    f.with(&["a"], |c| c.inc());
    assert!(f.remove(&["a"]));
    f.with(&["a"], |c| c.inc_by(10));
    assert_eq!(old.get(), 1, "the removed child kept its count");
    assert_eq!(f.get(&["a"]).map(|c| c.get()), Some(10), "a new child");
    f.clear();
    assert!(f.get(&["a"]).is_none());
    f.with(&["a"], |c| c.inc());
    assert_eq!(f.get(&["a"]).map(|c| c.get()), Some(1));
}

#[test]
fn nested_lookups_and_many_families_share_the_thread_cache() {
    let outer = Family::<[&'static str; 1], Counter>::with_label_names(&["k"]);
    let inner = Family::<[&'static str; 1], Counter>::with_label_names(&["k"]);
    for round in 0..3 {
        outer.with(&["a"], |o| {
            o.inc();
            inner.with(&["a"], |i| i.inc());
            // A new child created inside another lookup's closure.
            inner.with(&[if round == 0 { "b" } else { "c" }], |i| i.inc());
        });
    }
    assert_eq!(outer.get(&["a"]).map(|c| c.get()), Some(3));
    assert_eq!(inner.get(&["a"]).map(|c| c.get()), Some(3));
    assert_eq!(inner.len(), 3);

    // More children than the cache has slots: every lookup still finds
    // its own child.
    let many = Family::<(u32,), Counter>::with_label_names(&["i"]);
    for round in 0..3u64 {
        for i in 0..500u32 {
            many.with(&(i,), |c| c.inc_by(u64::from(i) + round));
        }
    }
    for i in 0..500u32 {
        assert_eq!(many.get(&(i,)).map(|c| c.get()), Some(3 * u64::from(i) + 3));
    }
}
