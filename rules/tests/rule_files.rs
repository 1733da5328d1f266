//! Prometheus's rule-file fixtures (`../shared/conformance/rules/`): the
//! files that must load do, the ones that must be rejected are, with
//! upstream's error text.

use vigil_rules::rules::{LoadOptions, Rule, load_yaml};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/conformance/rules"
);

fn read(path: &str) -> String {
    let p = format!("{DIR}/{path}");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("the rule fixtures are missing: {p}: {e}"))
}

fn strict() -> LoadOptions {
    LoadOptions::default()
}

#[test]
fn rulefmt_fixtures_that_load() {
    for f in [
        "rulefmt/test.yaml",
        "rulefmt/test_aliases.yaml",
        "rulefmt/utf-8_lname.good.yaml",
        "rulefmt/utf-8_annotation.good.yaml",
    ] {
        load_yaml(&read(f), strict()).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    let legacy = LoadOptions {
        legacy_names: true,
        ..LoadOptions::default()
    };
    load_yaml(
        &read("rulefmt/legacy_validation_annotation.good.yaml"),
        legacy,
    )
    .unwrap();
}

#[test]
fn rulefmt_fixtures_that_are_rejected() {
    let legacy = LoadOptions {
        legacy_names: true,
        ..LoadOptions::default()
    };
    for (f, opts, want) in [
        (
            "duplicate_grp.bad.yaml",
            strict(),
            "groupname: \"yolo\" is repeated in the same file",
        ),
        ("bad_expr.bad.yaml", strict(), "parse error"),
        (
            "record_and_alert.bad.yaml",
            strict(),
            "only one of 'record' and 'alert' must be set",
        ),
        (
            "no_rec_alert.bad.yaml",
            strict(),
            "one of 'record' or 'alert' must be set",
        ),
        (
            "noexpr.bad.yaml",
            strict(),
            "field 'expr' must be set in rule",
        ),
        (
            "invalid_record_name.bad.yaml",
            strict(),
            "braces present in the recording rule name; should it be in expr?: strawberry{flavor=\"sweet\"}",
        ),
        ("bad_field.bad.yaml", strict(), "field annotation not found"),
        (
            "invalid_label_name.bad.yaml",
            strict(),
            "invalid label name",
        ),
        (
            "record_and_for.bad.yaml",
            strict(),
            "invalid field 'for' in recording rule",
        ),
        (
            "record_and_keep_firing_for.bad.yaml",
            strict(),
            "invalid field 'keep_firing_for' in recording rule",
        ),
        (
            "legacy_validation_annotation.bad.yaml",
            legacy,
            "invalid annotation name: ins-tance",
        ),
    ] {
        let e = load_yaml(&read(&format!("rulefmt/{f}")), opts)
            .map(|g| format!("loaded {} groups", g.len()))
            .unwrap_or_else(|e| e.to_string());
        assert!(e.contains(want), "{f}: {e}");
    }
}

#[test]
fn aliases_and_merge_keys_decode_like_upstream() {
    let g = load_yaml(&read("rulefmt/test_aliases.yaml"), strict()).unwrap();
    let rules = &g[0].rules;
    let Rule::Alerting(a0) = &rules[0] else {
        panic!()
    };
    assert_eq!(a0.alert, "HighAlert");
    assert_eq!(
        a0.labels,
        vec![("severity".to_string(), "critical".to_string())]
    );
    let Rule::Recording(r1) = &rules[1] else {
        panic!()
    };
    assert_eq!(r1.record, "new_metric");
    let Rule::Alerting(a3) = &rules[3] else {
        panic!()
    };
    assert_eq!(a3.alert, "HighAlert2");
    assert_eq!(a3.for_ms, 300_000, "merged from the anchor");
    let exprs: Vec<&str> = rules
        .iter()
        .map(|r| match r {
            Rule::Alerting(a) => a.expr.as_str(),
            Rule::Recording(r) => r.expr.as_str(),
        })
        .collect();
    assert!(exprs.iter().all(|e| *e == exprs[0]), "{exprs:?}");
    assert_eq!(g[0].interval, Some(30_000));
}

#[test]
fn promtool_rule_files() {
    for f in [
        "rules.yml",
        "prometheus-rules.lint.yml",
        "rules_duplicates.yml",
        "rules_large.yml",
        "features.yml",
        "prometheus-config.rules.good.yml",
        "at-modifier.yml",
        "negative-offset.yml",
        "bad-rules-error.yml",
    ] {
        load_yaml(&read(&format!("promtool/{f}")), strict()).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    for (f, want) in [
        ("rules-bad.yml", "undefined variable \"$label\""),
        ("bad-rules-syntax.yml", "parse error"),
        (
            "rules_extrafields.yml",
            "not found in type rulefmt.RuleGroup",
        ),
    ] {
        let e = load_yaml(&read(&format!("promtool/{f}")), strict())
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{f}: {e}");
    }
    let lenient = LoadOptions {
        ignore_unknown_fields: true,
        ..LoadOptions::default()
    };
    load_yaml(&read("promtool/rules_extrafields.yml"), lenient).unwrap();
}

#[test]
fn legacy_form_and_yaml_form_agree() {
    // The seed rule through the legacy loader, written as YAML, read back.
    let seed = "ALERT Example\n  IF metricsCPU > 0.9\n  FOR 10m\n  LABELS {severity=\"High\"}\n  ANNOTATIONS {description=\"Node CPU too high: {{ $labels.instance }} CPU {{$value}}\", summary=\"Node\nCPU too high\"}\n";
    let g = vigil_rules::rules::parse_legacy(seed, "seed").unwrap();
    let back = load_yaml(&g.to_yaml(), strict()).unwrap();
    assert_eq!(back, vec![g]);
}

#[test]
fn duplicate_rule_lint() {
    use vigil_rules::rules::duplicate_rules;
    let g = load_yaml(&read("promtool/rules_duplicates.yml"), strict()).unwrap();
    assert_eq!(
        duplicate_rules(&g),
        vec![("job:test:count_over_time1m".to_string(), vec![])]
    );
    let g = load_yaml(&read("promtool/prometheus-rules.lint.yml"), strict()).unwrap();
    assert_eq!(duplicate_rules(&g).len(), 1);
    let g = load_yaml(&read("promtool/rules.yml"), strict()).unwrap();
    assert!(duplicate_rules(&g).is_empty());
}

#[test]
fn errors_say_where() {
    let text = "groups:\n  - name: yolo\n    rules:\n      - alert: hola\n        expr: rate(x)\n";
    let e = load_yaml(text, strict()).unwrap_err().to_string();
    assert!(
        e.starts_with("rule file: 5:15: group \"yolo\", rule 1: could not parse expression:"),
        "{e}"
    );
    let e = load_yaml("groups:\n  - name: a\n    nope: 1\n", strict())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "rule file: 3:5: field nope not found in type rulefmt.RuleGroup"
    );
}
