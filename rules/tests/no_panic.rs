//! Bad input never panics: mutated queries (from a seed list and from every
//! expression in the upstream scripts) go through the parser, and those
//! that parse are evaluated, instant and range, over a small store with
//! stale markers, NaN and counter resets. A deterministic stand-in for the
//! fuzz target, so that CI runs it on every change.

use vigil_rules::{Engine, EngineOptions, Labels, MemoryStore, STALE_NAN_BITS, parse};

const SEEDS: &[&str] = &[
    r#"sum by (job) (rate(http_requests_total{job=~"a.*"}[5m] offset -1m @ 300))"#,
    "topk(2, x) or bottomk(1, y) unless on(a) group_left(b) z",
    r#"label_replace(x, "dst", "$1-$name", "a", "(.*)")"#,
    "histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))",
    "max_over_time(deriv(x[2m])[10m:30s] @ end())",
    "-2 ^ -x * 3 % 2 atan2 y > bool 1 == on() count_values(\"v\", x)",
    r#"{"a.b", c!~"d"} / ignoring(e) group_right f"#,
    "quantile_over_time(0.5, x[1h:]) + predict_linear(y[5m], 60)",
    "absent_over_time(nope{a=\"b\"}[1m]) and absent(nope)",
    "round(x, 0.5) + clamp(y, -1, 1) - sort_by_label(z, \"a\")",
    "0x1f + 010 + 1e3 + .5 + 1h30m + Inf - NaN # comment",
    "limit_ratio(0.5, x) + limitk(1, y) + group without (a) (z)",
    "double_exponential_smoothing(x[10m], 0.5, 0.5) / holt_winters(x[10m], 0.1, 0.9)",
    "day_of_week() + hour(x) + timestamp(x offset 1m) + vector(time())",
    "histogram_fraction(-Inf, 0.5, h_bucket) + histogram_quantiles(h_bucket, \"q\", 0.1, 0.9)",
];

const TOKENS: &[&str] = &[
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "@",
    "=",
    "==",
    "!=",
    "=~",
    "!~",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "<",
    ">=",
    " and ",
    " or ",
    " unless ",
    " by ",
    " without ",
    " on",
    " ignoring",
    " group_left",
    " bool ",
    " offset ",
    "5m",
    "0",
    "-1",
    "1e308",
    "NaN",
    "Inf",
    "\"",
    "'",
    "`",
    "\\x",
    "\\u00e9",
    "x",
    "y",
    "rate(",
    "sum(",
    "[1000y:1ms]",
    "start()",
    "9e18",
    "#",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, s: &str) -> String {
    let mut b: Vec<u8> = s.as_bytes().to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(b.len() + 1);
        match rng.below(5) {
            0 if !b.is_empty() => {
                let end = (at + 1 + rng.below(4)).min(b.len());
                b.drain(at.min(end)..end);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                b.splice(at..at, t.iter().copied());
            }
            2 => b.insert(at, rng.next() as u8),
            3 if !b.is_empty() => {
                let i = rng.below(b.len());
                let j = rng.below(b.len());
                b.swap(i, j);
            }
            _ => {
                let t = SEEDS[rng.below(SEEDS.len())].as_bytes();
                b.splice(at..at, t.iter().copied());
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn store() -> MemoryStore {
    let mut s = MemoryStore::new();
    let stale = f64::from_bits(STALE_NAN_BITS);
    type Lines<'a> = [(&'a [(&'a str, &'a str)], &'a [f64]); 5];
    let series: Lines<'_> = [
        (
            &[("__name__", "x"), ("a", "1"), ("job", "a")],
            &[1.0, 2.0, 0.5, stale, 4.0],
        ),
        (
            &[("__name__", "x"), ("a", "2"), ("job", "b")],
            &[f64::NAN, 1.0, f64::INFINITY, 3.0, 3.0],
        ),
        (
            &[("__name__", "y"), ("a", "1")],
            &[-1.0, 0.0, 1e300, -1e300, 2.0],
        ),
        (
            &[("__name__", "h_bucket"), ("le", "0.5")],
            &[1.0, 2.0, 3.0, 2.0, 5.0],
        ),
        (
            &[("__name__", "h_bucket"), ("le", "+Inf")],
            &[2.0, 3.0, 5.0, 6.0, 9.0],
        ),
    ];
    for (labels, values) in series {
        let l = Labels::from_pairs(labels);
        for (i, v) in values.iter().enumerate() {
            s.add_sample(&l, i as i64 * 60_000, *v);
        }
    }
    s
}

#[test]
fn mutated_queries_never_panic() {
    let mut seeds: Vec<String> = SEEDS.iter().map(|s| s.to_string()).collect();
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance/promql"
    );
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            for l in text.lines() {
                let l = l.trim();
                if let Some(r) = l.strip_prefix("eval instant at ") {
                    if let Some((_, e)) = r.split_once(' ') {
                        seeds.push(e.to_string());
                    }
                }
            }
        }
    }
    let engine = Engine::with_options(EngineOptions {
        max_steps: 20_000,
        ..EngineOptions::default()
    });
    let store = store();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut parsed, mut total) = (0, 0);
    // NO_PANIC_ROUNDS=500 searches longer by hand; CI runs 20 rounds.
    let rounds: usize = std::env::var("NO_PANIC_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    for round in 0..rounds {
        for seed in &seeds {
            let q = if round == 0 {
                seed.clone()
            } else {
                mutate(&mut rng, seed)
            };
            total += 1;
            let Ok(expr) = parse(&q) else {
                continue;
            };
            parsed += 1;
            for t in [0, 150_000, 600_000] {
                let _ = engine.instant_query_expr(&store, &q, &expr, t);
            }
            let _ = engine.range_query_expr(&store, &q, &expr, 0, 300_000, 60_000);
        }
    }
    println!("{parsed} of {total} queries parsed and were evaluated");
    assert!(
        parsed > total / 10,
        "too few mutated queries parsed ({parsed} of {total}) to exercise the evaluator"
    );
}

#[test]
fn random_bytes_never_panic_the_parser() {
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let n = rng.below(40);
        let b: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        let _ = parse(&String::from_utf8_lossy(&b));
    }
}

#[test]
fn huge_subqueries_hit_the_step_budget() {
    let engine = Engine::new();
    let err = engine
        .instant_query(&store(), "max_over_time(x[1000y:1ms])", 0)
        .expect_err("a subquery of 3e13 steps must be refused");
    assert!(err.to_string().contains("too many samples"), "{err}");
}

#[test]
fn mutated_legacy_rule_files_never_panic() {
    let seed = "# c\nALERT Example\n  IF metricsCPU > 0.9\n  FOR 10m\n  LABELS {severity=\"High\"}\n  ANNOTATIONS {description=\"Node CPU too high: {{ $labels.instance }} CPU {{$value}}\", summary=\"Node\nCPU too high\"}\njob:up:sum{a='b'} = sum by (job) (up)\n";
    let mut rng = Rng(7);
    for _ in 0..20_000 {
        let text = mutate(&mut rng, seed);
        let _ = vigil_rules::rules::parse_legacy(&text, "g");
    }
}

#[test]
fn mutated_templates_never_panic() {
    use vigil_rules::template::{Data, Template};
    let seeds = [
        "Node CPU too high: {{ $labels.instance }} CPU {{$value}}",
        "{{ if gt $value 0.5 }}{{ $value | humanize }}{{ else }}{{ printf \"%.2f %5s %d\" $value \"x\" 3 }}{{ end }}",
        "{{- range $k, $v := $labels }}{{ $k }}={{ $v | toUpper }} {{ end -}}{{/* c */}}",
        "{{ with $externalLabels.dc }}{{ . }}{{ end }}{{ reReplaceAll \"(a+)\" \"$1\" \"aaa\" }}",
        "{{ humanizeDuration 3661 }} {{ humanizeTimestamp 1.5 }} {{ humanize1024 1e300 }} {{ index $labels \"job\" }}",
    ];
    let data = Data {
        labels: Labels::from_pairs(&[("instance", "a:1"), ("job", "j")]),
        value: f64::NAN,
        ..Data::default()
    };
    let mut rng = Rng(99);
    for i in 0..20_000 {
        let text = mutate(&mut rng, seeds[i % seeds.len()]);
        if let Ok(t) = Template::parse("t", &text) {
            let _ = t.execute(&data);
        }
    }
}

#[test]
fn mutated_rule_files_never_panic() {
    let seed = "groups:\n  - name: g\n    interval: 30s\n    rules:\n      - &a\n        alert: A\n        expr: up == 0\n        for: 5m\n        labels: {severity: page}\n        annotations:\n          summary: \"{{ $labels.instance }} down\"\n      - <<: *a\n        alert: B\n      - record: x:y\n        expr: sum(up)\n";
    let mut rng = Rng(5);
    for _ in 0..5_000 {
        let text = mutate(&mut rng, seed);
        let _ = vigil_rules::rules::load_yaml(&text, Default::default());
    }
}

#[test]
fn deep_and_long_expressions_are_refused_or_evaluated() {
    let engine = Engine::new();
    let s = store();
    // The longest chain accepted evaluates without exhausting the stack.
    let q = vec!["x"; 400].join(" + ");
    assert!(engine.instant_query(&s, &q, 60_000).is_ok());
    let q = format!("{}x{}", "(".repeat(120), ")".repeat(120));
    assert!(engine.range_query(&s, &q, 0, 120_000, 60_000).is_ok());
    for q in [
        format!("{}x{}", "(".repeat(100_000), ")".repeat(100_000)),
        vec!["x"; 100_000].join(" + "),
        format!("{}x", "-".repeat(100_000)),
        vec!["2"; 100_000].join(" ^ "),
    ] {
        assert!(parse(&q).is_err());
    }
}

#[test]
fn deep_rule_files_and_templates_are_refused() {
    let deep_yaml = format!("groups: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(vigil_rules::rules::load_yaml(&deep_yaml, Default::default()).is_err());
    let deep_tmpl = format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(vigil_rules::template::Template::parse("t", &deep_tmpl).is_err());
    let deep_if = format!(
        "{}x{}",
        "{{ if true }}".repeat(10_000),
        "{{ end }}".repeat(10_000)
    );
    assert!(vigil_rules::template::Template::parse("t", &deep_if).is_err());
}
