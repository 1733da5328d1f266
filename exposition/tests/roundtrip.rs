//! parse(encode(x)) == x for arbitrary families, in both formats.

// The fuzz harness's family comparison (NaN equal to NaN, -0 apart from +0),
// so the proptest and the fuzz targets judge a round trip alike.
#[path = "../../fuzz/src/expo.rs"]
#[allow(dead_code)]
mod expo;

use expo::{same, sample_suffixes};
use proptest::prelude::*;
use vigil_exposition::encode::encode_families;
use vigil_exposition::parse::{Mode, parse_families};
use vigil_exposition::{Exemplar, Format, MetricFamily, MetricType, Sample};

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        1 => "[a-z][a-z0-9_.é€ -]{0,10}",
    ]
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z_][a-zA-Z0-9_]{0,8}".prop_filter("not reserved", |n| n != "le" && n != "quantile"),
        1 => "[a-z][a-z0-9.é-]{0,6}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    // Anything a UTF-8 string can hold, escapes and control bytes included.
    "(\\PC|[\\\\\"\n\t\r\u{0}]){0,12}"
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => (0u32..100_000).prop_map(f64::from),
        3 => any::<f64>(),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(f64::NAN),
        1 => Just(-0.0),
    ]
}

fn labels() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((label_name(), text()), 0..4).prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|(n, _)| seen.insert(n.clone()));
        v
    })
}

fn family(om: bool) -> impl Strategy<Value = MetricFamily> {
    let types = if om {
        vec![
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Histogram,
            MetricType::GaugeHistogram,
            MetricType::Summary,
            MetricType::Info,
            MetricType::StateSet,
            MetricType::Unknown,
        ]
    } else {
        vec![
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Histogram,
            MetricType::Summary,
            MetricType::Unknown,
        ]
    };
    let sample = (
        labels(),
        value(),
        proptest::option::of(any::<i64>()),
        proptest::option::of((labels(), value(), proptest::option::of(any::<i64>()))),
        0usize..4,
    );
    (
        name(),
        proptest::sample::select(types),
        proptest::option::of(text()),
        proptest::option::of("[a-z]{1,6}"),
        proptest::collection::vec(sample, 0..5),
    )
        .prop_map(move |(mut name, ty, help, unit, samples)| {
            if !om && ty == MetricType::Counter {
                // Text names a counter family after its samples.
                name.push_str("_total");
            }
            let unit =
                unit.filter(|_| om && !matches!(ty, MetricType::Info | MetricType::StateSet));
            if let Some(u) = &unit {
                name = format!("{name}_{u}");
            }
            let suffixes = sample_suffixes(ty, om);
            let samples = samples
                .into_iter()
                .map(|(labels, value, ts, ex, k)| Sample {
                    name: format!("{name}{}", suffixes[k % suffixes.len()]),
                    labels,
                    value,
                    timestamp_ms: ts,
                    exemplar: ex
                        .filter(|_| om)
                        .map(|(labels, value, timestamp_ms)| Exemplar {
                            labels,
                            value,
                            timestamp_ms,
                        }),
                })
                .collect();
            // OpenMetrics reads an empty HELP as none.
            let help = help.filter(|h| !(om && h.is_empty()));
            MetricFamily {
                name,
                metric_type: ty,
                help,
                unit,
                samples,
            }
        })
}

fn families(om: bool) -> impl Strategy<Value = Vec<MetricFamily>> {
    proptest::collection::vec(family(om), 0..5).prop_map(|mut v| {
        // Family names are unique in an exposition, and none may be the
        // name another family's samples carry.
        let mut taken = std::collections::HashSet::new();
        v.retain(|f| {
            let ok = !taken.contains(&f.name) && f.samples.iter().all(|s| !taken.contains(&s.name));
            if ok {
                taken.insert(f.name.clone());
                for s in &f.samples {
                    taken.insert(s.name.clone());
                }
            }
            ok
        });
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn text_round_trip(fams in families(false)) {
        let mut out = Vec::new();
        encode_families(&fams, Format::Text, &mut out);
        let back = parse_families(&out, Format::Text, Mode::Scrape)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&out))))?;
        prop_assert!(same(&fams, &back), "{}\n{fams:#?}\n{back:#?}", String::from_utf8_lossy(&out));
    }

    #[test]
    fn openmetrics_round_trip(fams in families(true)) {
        let mut out = Vec::new();
        encode_families(&fams, Format::OpenMetrics, &mut out);
        let back = parse_families(&out, Format::OpenMetrics, Mode::Scrape)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&out))))?;
        prop_assert!(same(&fams, &back), "{}\n{fams:#?}\n{back:#?}", String::from_utf8_lossy(&out));
    }
}
