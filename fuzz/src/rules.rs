//! Fuzz logic for vigil-rules: the PromQL parser, the rule-file loaders
//! (YAML and the legacy 1.x syntax) and the template parser must never
//! panic on arbitrary input; what parses as PromQL is also evaluated over a
//! small store.

use vigil_rules::rules::{LoadOptions, load_yaml, parse_legacy};
use vigil_rules::template::Template;
use vigil_rules::{Engine, Labels, MemoryStore, parse};

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Target `promql_parse`: arbitrary text as a query; parsed queries are
/// evaluated instant and range over a store with a stale marker and NaN.
pub fn run_promql(data: &[u8]) {
    let Some(q) = text(data) else { return };
    if parse(q).is_err() {
        return;
    }
    let mut store = MemoryStore::new();
    let a = Labels::from_pairs(&[("__name__", "x"), ("job", "a")]);
    let b = Labels::from_pairs(&[("__name__", "y"), ("job", "b"), ("le", "1")]);
    for i in 0..20i64 {
        store.add_sample(&a, i * 15_000, i as f64);
        store.add_sample(
            &b,
            i * 15_000,
            if i == 7 { f64::NAN } else { (i % 5) as f64 },
        );
    }
    store.add_sample(&a, 300_000, f64::from_bits(vigil_rules::STALE_NAN_BITS));
    let engine = Engine::new();
    let _ = engine.instant_query(&store, q, 200_000);
    let _ = engine.range_query(&store, q, 0, 300_000, 60_000);
}

/// Target `rules_load`: arbitrary text as a YAML rule file, and as a legacy
/// 1.x rule file.
pub fn run_rules(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let _ = load_yaml(t, LoadOptions::default());
    let _ = parse_legacy(t, "fuzz");
}

/// Target `template_parse`: arbitrary text as a label/annotation template.
pub fn run_template(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let _ = Template::parse("fuzz", t);
}
