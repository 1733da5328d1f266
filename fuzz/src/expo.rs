//! Fuzz logic for vigil-exposition: the text and OpenMetrics parsers must never
//! panic, and whatever they accept must survive encode → parse unchanged.

use arbitrary::{Arbitrary, Unstructured};
use vigil_exposition::encode::encode_families;
use vigil_exposition::parse::{Entry, Mode, Parser, parse_families};
use vigil_exposition::{Exemplar, Format, MetricFamily, MetricType, Sample};

/// Walks every entry, decoding every string, so a bad view would panic here.
fn walk(data: &[u8], format: Format, mode: Mode) -> bool {
    for e in Parser::with_mode(data, format, mode) {
        match e {
            Err(e) => {
                let _ = e.to_string();
                return false;
            }
            Ok(Entry::Sample(s)) => {
                let _ = s.name.as_cow();
                assert_eq!(s.labels.iter().count(), s.labels.len(), "label view count");
                for (n, v) in s.labels.iter() {
                    let _ = (n.as_cow(), v.as_cow());
                }
                if let Some(ex) = s.exemplar {
                    for (n, v) in ex.labels.iter() {
                        let _ = (n.as_cow(), v.as_cow());
                    }
                }
            }
            Ok(Entry::Help { name, text }) => {
                let _ = (name.as_cow(), text.as_cow());
            }
            Ok(_) => {}
        }
    }
    true
}

fn same_f(x: f64, y: f64) -> bool {
    (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits()
}

/// Whether two family lists are equal, every NaN equal to every NaN and -0
/// apart from +0.
pub fn same(a: &[MetricFamily], b: &[MetricFamily]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name == y.name
                && x.metric_type == y.metric_type
                && x.help == y.help
                && x.unit == y.unit
                && x.samples.len() == y.samples.len()
                && x.samples.iter().zip(&y.samples).all(|(s, t)| {
                    s.name == t.name
                        && s.labels == t.labels
                        && same_f(s.value, t.value)
                        && s.timestamp_ms == t.timestamp_ms
                        && match (&s.exemplar, &t.exemplar) {
                            (None, None) => true,
                            (Some(e), Some(g)) => {
                                e.labels == g.labels
                                    && same_f(e.value, g.value)
                                    && e.timestamp_ms == g.timestamp_ms
                            }
                            _ => false,
                        }
                })
        })
}

/// Encodes `fams` and parses them back; they must come back equal.
fn round_trip(fams: &[MetricFamily], format: Format) {
    let mut out = Vec::new();
    encode_families(fams, format, &mut out);
    let back = match parse_families(&out, format, Mode::Scrape) {
        Ok(b) => b,
        Err(e) => panic!("re-parse failed: {e}\n{}", String::from_utf8_lossy(&out)),
    };
    assert!(
        same(fams, &back),
        "round trip changed the families:\n{}\n{fams:?}\n{back:?}",
        String::from_utf8_lossy(&out)
    );
}

/// Target `expo_text`: arbitrary bytes as Prometheus text.
pub fn run_text(data: &[u8]) {
    if walk(data, Format::Text, Mode::Scrape) {
        let fams = parse_families(data, Format::Text, Mode::Scrape).expect("walk accepted it");
        round_trip(&fams, Format::Text);
    }
}

/// Target `expo_openmetrics`: arbitrary bytes as OpenMetrics, both modes.
/// Strict must never accept what scrape mode rejects.
pub fn run_openmetrics(data: &[u8]) {
    let scrape = walk(data, Format::OpenMetrics, Mode::Scrape);
    let strict = walk(data, Format::OpenMetrics, Mode::Strict);
    assert!(
        scrape || !strict,
        "strict accepted what scrape mode rejects"
    );
    if scrape {
        let fams =
            parse_families(data, Format::OpenMetrics, Mode::Scrape).expect("walk accepted it");
        round_trip(&fams, Format::OpenMetrics);
    }
}

/// The sample-name suffixes a generated family of type `ty` uses, such that
/// parsing groups the samples back into it: OpenMetrics's per type; in text
/// 0.0.4 the ones Prometheus's text format carries (no `_created`).
pub fn sample_suffixes(ty: MetricType, om: bool) -> &'static [&'static str] {
    if om {
        return ty.suffixes();
    }
    match ty {
        MetricType::Histogram => &["_bucket", "_count", "_sum"],
        MetricType::Summary => &["", "_count", "_sum"],
        _ => &[""],
    }
}

#[derive(Arbitrary, Debug)]
struct ArbFamily {
    name: String,
    ty: u8,
    help: Option<String>,
    unit: Option<u8>,
    samples: Vec<ArbSample>,
}

/// Exemplar labels, value and timestamp.
type ArbExemplar = (Vec<(String, String)>, f64, Option<i64>);

#[derive(Arbitrary, Debug)]
struct ArbSample {
    suffix: u8,
    labels: Vec<(String, String)>,
    value: f64,
    ts: Option<i64>,
    exemplar: Option<ArbExemplar>,
}

const TYPES: [MetricType; 8] = [
    MetricType::Counter,
    MetricType::Gauge,
    MetricType::Histogram,
    MetricType::GaugeHistogram,
    MetricType::Summary,
    MetricType::Info,
    MetricType::StateSet,
    MetricType::Unknown,
];

fn dedup(mut labels: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut seen = std::collections::HashSet::new();
    labels.retain(|(n, _)| !n.is_empty() && seen.insert(n.clone()));
    labels
}

/// Target `expo_roundtrip`: arbitrary families (any UTF-8 names and values)
/// through the encoder and back, in both formats.
pub fn run_roundtrip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(arb) = Vec::<ArbFamily>::arbitrary(&mut u) else {
        return;
    };
    for om in [false, true] {
        let mut taken = std::collections::HashSet::new();
        let mut fams = Vec::new();
        for f in &arb {
            let ty = TYPES[usize::from(f.ty) % if om { 8 } else { 5 }];
            let ty = if !om && ty == MetricType::GaugeHistogram {
                MetricType::Summary
            } else {
                ty
            };
            let mut name = f.name.clone();
            if name.is_empty() {
                continue;
            }
            let unit = f
                .unit
                .filter(|_| om && !matches!(ty, MetricType::Info | MetricType::StateSet))
                .map(|u| format!("u{u}"));
            if let Some(u) = &unit {
                name = format!("{name}_{u}");
            }
            let suffixes = sample_suffixes(ty, om);
            let samples: Vec<Sample> = f
                .samples
                .iter()
                .map(|s| Sample {
                    name: format!("{name}{}", suffixes[usize::from(s.suffix) % suffixes.len()]),
                    labels: dedup(s.labels.clone()),
                    value: s.value,
                    timestamp_ms: s.ts,
                    exemplar: s.exemplar.clone().filter(|_| om).map(|(l, v, t)| Exemplar {
                        labels: dedup(l),
                        value: v,
                        timestamp_ms: t,
                    }),
                })
                .collect();
            if taken.contains(&name) || samples.iter().any(|s| taken.contains(&s.name)) {
                continue;
            }
            taken.insert(name.clone());
            taken.extend(samples.iter().map(|s| s.name.clone()));
            let help = f.help.clone().filter(|h| !(om && h.is_empty()));
            fams.push(MetricFamily {
                name,
                metric_type: ty,
                help,
                unit,
                samples,
            });
        }
        round_trip(
            &fams,
            if om {
                Format::OpenMetrics
            } else {
                Format::Text
            },
        );
    }
}
