//! Property tests of the client: label sets survive encoding and parsing
//! byte for byte, and histogram buckets count exactly the observations at or
//! below their bound.

use proptest::prelude::*;
use vigil_exposition::Format;
use vigil_exposition::client::{Family, Gauge, Histogram, Registry};
use vigil_exposition::parse::{Mode, parse_families};

/// Label names: classic ones, and UTF-8 ones the encoder must quote.
fn label_name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z_][a-zA-Z0-9_]{0,6}", "[a-z][a-z.\\-/ é€]{1,6}",]
        .prop_filter("reserved", |n| !n.starts_with("__"))
}

/// Label values: anything, escapes included.
fn label_value() -> impl Strategy<Value = String> {
    prop_oneof!["[ -~]{0,8}", "[\"\\\\\n a-z]{0,8}", any::<String>()]
}

fn label_sets() -> impl Strategy<Value = Vec<Vec<(String, String)>>> {
    let set = prop::collection::vec((label_name(), label_value()), 0..4).prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|(n, _)| seen.insert(n.clone()));
        v
    });
    prop::collection::vec(set, 1..5)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn label_sets_round_trip(sets in label_sets(), value in -1e9f64..1e9) {
        let r = Registry::new();
        let f = Family::<Vec<(String, String)>, Gauge<f64>>::new();
        r.register("g", "", f.clone()).unwrap();
        for s in &sets {
            f.with(s, |g| g.set(value));
        }
        // Distinct label sets in creation order (equal sets share a child).
        let mut want: Vec<&Vec<(String, String)>> = Vec::new();
        for s in &sets {
            if !want.contains(&s) {
                want.push(s);
            }
        }
        for format in [Format::OpenMetrics, Format::Text] {
            let mut out = Vec::new();
            r.encode(format, &mut out);
            let fams = parse_families(&out, format, Mode::Scrape)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&out))))?;
            prop_assert_eq!(fams.len(), 1);
            let got: Vec<&Vec<(String, String)>> = fams[0].samples.iter().map(|s| &s.labels).collect();
            prop_assert_eq!(&got, &want);
            for s in &fams[0].samples {
                prop_assert_eq!(s.value, value);
            }
        }
        let gathered = r.gather();
        prop_assert_eq!(gathered[0].samples.iter().map(|s| &s.labels).collect::<Vec<_>>(), want);
    }

    #[test]
    fn every_observation_lands_in_the_buckets_at_or_above_it(
        bounds in prop::collection::vec(-100.0f64..100.0, 0..12),
        obs in prop::collection::vec(prop_oneof![-120.0f64..120.0, Just(0.0), Just(1.0)], 0..200),
    ) {
        // Observations equal to a bound must count in that bound's bucket.
        let mut obs = obs;
        obs.extend(bounds.iter().take(3).copied());
        let h = Histogram::new(bounds.iter().copied());
        for &v in &obs {
            h.observe(v);
        }
        let snap = h.snapshot();
        let mut sorted = bounds.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.dedup();
        prop_assert_eq!(snap.buckets.len(), sorted.len() + 1);
        for (i, &(bound, count)) in snap.buckets.iter().enumerate() {
            let want_bound = sorted.get(i).copied().unwrap_or(f64::INFINITY);
            prop_assert_eq!(bound, want_bound);
            let want = obs.iter().filter(|&&v| v <= bound).count() as u64;
            prop_assert_eq!(count, want, "bucket le={}", bound);
        }
        prop_assert_eq!(snap.count, obs.len() as u64);
        let sum = obs.iter().fold(0.0, |a, v| a + v);
        prop_assert_eq!(snap.sum, sum);

        // And the encoded form says the same, buckets cumulative.
        let r = Registry::new();
        r.register("h", "", h.clone()).unwrap();
        let mut out = Vec::new();
        r.encode(Format::OpenMetrics, &mut out);
        let fams = parse_families(&out, Format::OpenMetrics, Mode::Strict)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&out))))?;
        let buckets: Vec<f64> = fams[0].samples.iter()
            .filter(|s| s.name == "h_bucket").map(|s| s.value).collect();
        prop_assert_eq!(buckets, snap.buckets.iter().map(|b| b.1 as f64).collect::<Vec<_>>());
        let negative = sorted.first().is_some_and(|&b| b < 0.0) || sum < 0.0;
        let count = fams[0].samples.iter().find(|s| s.name == "h_count").map(|s| s.value);
        prop_assert_eq!(count, (!negative).then_some(obs.len() as f64));
    }
}
