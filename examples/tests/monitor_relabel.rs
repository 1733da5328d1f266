//! Relabelling: a table of cases written from Prometheus's documentation of
//! `<relabel_config>` (each action, defaults, anchoring, expansion), the
//! validation rules, and properties that hold for any input.

use proptest::prelude::*;
use vigil_examples::monitor::relabel::{Action, RelabelBuilder, RelabelConfig, relabel};

type L = Vec<(String, String)>;

fn ls(pairs: &[(&str, &str)]) -> L {
    let mut v: L = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

/// A rule from `key=value` settings (`src` is comma-separated).
fn rule(settings: &[(&str, &str)]) -> RelabelConfig {
    let mut b = RelabelBuilder::default();
    for (k, v) in settings {
        match *k {
            "src" => b.source_labels = Some(v.split(',').map(str::to_owned).collect()),
            "sep" => b.separator = Some(v.to_string()),
            "regex" => b.regex = Some(v.to_string()),
            "mod" => b.modulus = Some(v.parse().unwrap()),
            "target" => b.target_label = Some(v.to_string()),
            "repl" => b.replacement = Some(v.to_string()),
            "action" => b.action = Some(Action::parse(v).unwrap()),
            _ => panic!("unknown setting {k}"),
        }
    }
    b.build().unwrap()
}

struct Case {
    name: &'static str,
    input: &'static [(&'static str, &'static str)],
    rules: Vec<RelabelConfig>,
    /// `None`: dropped.
    output: Option<&'static [(&'static str, &'static str)]>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "replace copies the source with the default regex and $1",
            input: &[("a", "foo")],
            rules: vec![rule(&[("src", "a"), ("target", "b")])],
            output: Some(&[("a", "foo"), ("b", "foo")]),
        },
        Case {
            name: "replace with a capture group and ${1}",
            input: &[("__address__", "db1.example.com:9100")],
            rules: vec![rule(&[
                ("src", "__address__"),
                ("regex", r"([^.]+)\..*:(\d+)"),
                ("target", "node"),
                ("repl", "${1}-port-$2"),
            ])],
            output: Some(&[
                ("__address__", "db1.example.com:9100"),
                ("node", "db1-port-9100"),
            ]),
        },
        Case {
            name: "replace does nothing when the anchored regex does not match",
            input: &[("a", "xfoo")],
            rules: vec![rule(&[("src", "a"), ("regex", "foo"), ("target", "b")])],
            output: Some(&[("a", "xfoo")]),
        },
        Case {
            name: "replace with an empty result deletes the target",
            input: &[("a", "foo"), ("b", "bar")],
            rules: vec![rule(&[("src", "c"), ("target", "b")])],
            output: Some(&[("a", "foo")]),
        },
        Case {
            name: "replace joins several sources with the separator",
            input: &[("a", "1"), ("b", "2")],
            rules: vec![rule(&[("src", "a,b,missing"), ("target", "c")])],
            output: Some(&[("a", "1"), ("b", "2"), ("c", "1;2;")]),
        },
        Case {
            name: "replace with a custom separator",
            input: &[("a", "1"), ("b", "2")],
            rules: vec![rule(&[
                ("src", "a,b"),
                ("sep", "/"),
                ("regex", "(.*)/(.*)"),
                ("target", "c"),
                ("repl", "$2$1"),
            ])],
            output: Some(&[("a", "1"), ("b", "2"), ("c", "21")]),
        },
        Case {
            name: "replace with no sources sets a constant",
            input: &[("a", "1")],
            rules: vec![rule(&[("target", "env"), ("repl", "prod")])],
            output: Some(&[("a", "1"), ("env", "prod")]),
        },
        Case {
            name: "replace expands the target label name",
            input: &[("a", "some-name-value")],
            rules: vec![rule(&[
                ("src", "a"),
                ("regex", r"some-([^-]+)-([^,]+)"),
                ("target", "${1}"),
                ("repl", "${2}"),
            ])],
            output: Some(&[("a", "some-name-value"), ("name", "value")]),
        },
        Case {
            name: "replace skips an expanded target that is not a label name",
            input: &[("a", "1x")],
            rules: vec![rule(&[("src", "a"), ("regex", "(.*)"), ("target", "$1")])],
            output: Some(&[("a", "1x")]),
        },
        Case {
            name: "replace with named groups",
            input: &[("a", "k=v")],
            rules: vec![rule(&[
                ("src", "a"),
                ("regex", "(?P<key>[^=]+)=(?P<val>.*)"),
                ("target", "out"),
                ("repl", "$val:$key"),
            ])],
            output: Some(&[("a", "k=v"), ("out", "v:k")]),
        },
        Case {
            name: "a reference followed by letters names a missing group (empty)",
            input: &[("a", "foo")],
            rules: vec![rule(&[("src", "a"), ("target", "b"), ("repl", "$1bar")])],
            output: Some(&[("a", "foo")]),
        },
        Case {
            name: "$$ is a literal dollar",
            input: &[("a", "5")],
            rules: vec![rule(&[("src", "a"), ("target", "b"), ("repl", "$$${1}")])],
            output: Some(&[("a", "5"), ("b", "$5")]),
        },
        Case {
            name: "keep keeps a match",
            input: &[("job", "node")],
            rules: vec![rule(&[
                ("src", "job"),
                ("regex", "no.e"),
                ("action", "keep"),
            ])],
            output: Some(&[("job", "node")]),
        },
        Case {
            name: "keep is anchored: a partial match drops",
            input: &[("job", "node-exporter")],
            rules: vec![rule(&[
                ("src", "job"),
                ("regex", "node"),
                ("action", "keep"),
            ])],
            output: None,
        },
        Case {
            name: "keep of a missing label matches the empty string",
            input: &[("job", "x")],
            rules: vec![rule(&[("src", "nope"), ("regex", ""), ("action", "keep")])],
            output: Some(&[("job", "x")]),
        },
        Case {
            name: "drop drops a match",
            input: &[("__name__", "go_gc_duration_seconds")],
            rules: vec![rule(&[
                ("src", "__name__"),
                ("regex", "go_.*"),
                ("action", "drop"),
            ])],
            output: None,
        },
        Case {
            name: "drop keeps a non-match",
            input: &[("__name__", "up")],
            rules: vec![rule(&[
                ("src", "__name__"),
                ("regex", "go_.*"),
                ("action", "drop"),
            ])],
            output: Some(&[("__name__", "up")]),
        },
        Case {
            name: "keepequal keeps when the joined value equals the target",
            input: &[("a", "1"), ("b", "1")],
            rules: vec![rule(&[
                ("src", "a"),
                ("target", "b"),
                ("action", "keepequal"),
            ])],
            output: Some(&[("a", "1"), ("b", "1")]),
        },
        Case {
            name: "keepequal drops when it differs",
            input: &[("a", "1"), ("b", "2")],
            rules: vec![rule(&[
                ("src", "a"),
                ("target", "b"),
                ("action", "keepequal"),
            ])],
            output: None,
        },
        Case {
            name: "dropequal drops when equal",
            input: &[("a", "1"), ("b", "1")],
            rules: vec![rule(&[
                ("src", "a"),
                ("target", "b"),
                ("action", "dropequal"),
            ])],
            output: None,
        },
        Case {
            name: "dropequal keeps when it differs",
            input: &[("a", "1"), ("b", "2")],
            rules: vec![rule(&[
                ("src", "a"),
                ("target", "b"),
                ("action", "dropequal"),
            ])],
            output: Some(&[("a", "1"), ("b", "2")]),
        },
        Case {
            name: "hashmod: md5 of the value, last 8 bytes big-endian, mod 1000",
            input: &[("a", "foo")],
            rules: vec![rule(&[
                ("src", "a"),
                ("mod", "1000"),
                ("target", "h"),
                ("action", "hashmod"),
            ])],
            output: Some(&[("a", "foo"), ("h", "696")]),
        },
        Case {
            name: "hashmod of an address, mod 4 (sharding)",
            input: &[("__address__", "10.0.0.1:9100")],
            rules: vec![rule(&[
                ("src", "__address__"),
                ("mod", "4"),
                ("target", "__tmp_hash"),
                ("action", "hashmod"),
            ])],
            output: Some(&[("__address__", "10.0.0.1:9100"), ("__tmp_hash", "1")]),
        },
        Case {
            name: "hashmod of joined values",
            input: &[("a", "a"), ("b", "b")],
            rules: vec![rule(&[
                ("src", "a,b"),
                ("mod", "1000"),
                ("target", "h"),
                ("action", "hashmod"),
            ])],
            output: Some(&[("a", "a"), ("b", "b"), ("h", "74")]),
        },
        Case {
            name: "labelmap copies matching names to the replacement",
            input: &[
                ("__meta_kubernetes_pod_label_app", "web"),
                ("__meta_kubernetes_pod_label_tier", "front"),
                ("job", "k8s"),
            ],
            rules: vec![rule(&[
                ("regex", "__meta_kubernetes_pod_label_(.+)"),
                ("action", "labelmap"),
            ])],
            output: Some(&[
                ("__meta_kubernetes_pod_label_app", "web"),
                ("__meta_kubernetes_pod_label_tier", "front"),
                ("app", "web"),
                ("job", "k8s"),
                ("tier", "front"),
            ]),
        },
        Case {
            name: "labelmap with a replacement around the group",
            input: &[("foo", "1")],
            rules: vec![rule(&[
                ("regex", "(f.*)"),
                ("repl", "mapped_${1}"),
                ("action", "labelmap"),
            ])],
            output: Some(&[("foo", "1"), ("mapped_foo", "1")]),
        },
        Case {
            name: "labeldrop removes matching names",
            input: &[("a", "1"), ("pid", "2"), ("pod", "3")],
            rules: vec![rule(&[("regex", "p.d"), ("action", "labeldrop")])],
            output: Some(&[("a", "1")]),
        },
        Case {
            name: "labelkeep removes the others",
            input: &[("__name__", "up"), ("a", "1"), ("b", "2")],
            rules: vec![rule(&[("regex", "__name__|a"), ("action", "labelkeep")])],
            output: Some(&[("__name__", "up"), ("a", "1")]),
        },
        Case {
            name: "lowercase writes the lowered joined value",
            input: &[("a", "FoO"), ("b", "BAR")],
            rules: vec![rule(&[
                ("src", "a,b"),
                ("target", "low"),
                ("action", "lowercase"),
            ])],
            output: Some(&[("a", "FoO"), ("b", "BAR"), ("low", "foo;bar")]),
        },
        Case {
            name: "uppercase",
            input: &[("a", "eu-west-1")],
            rules: vec![rule(&[
                ("src", "a"),
                ("target", "a"),
                ("action", "uppercase"),
            ])],
            output: Some(&[("a", "EU-WEST-1")]),
        },
        Case {
            name: "rules apply in order and later ones see earlier results",
            input: &[("__address__", "h:1")],
            rules: vec![
                rule(&[
                    ("src", "__address__"),
                    ("regex", "(.*):.*"),
                    ("target", "host"),
                ]),
                rule(&[("src", "host"), ("regex", "h"), ("action", "keep")]),
                rule(&[("regex", "__address__"), ("action", "labeldrop")]),
            ],
            output: Some(&[("host", "h")]),
        },
        Case {
            name: "action names are case-insensitive",
            input: &[("a", "1")],
            rules: vec![rule(&[("src", "a"), ("regex", "1"), ("action", "DROP")])],
            output: None,
        },
    ]
}

#[test]
fn table() {
    let mut failures = Vec::new();
    for c in cases() {
        let got = relabel(&ls(c.input), &c.rules);
        let want = c.output.map(ls);
        if got != want {
            failures.push(format!("{}: got {got:?}, want {want:?}", c.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn validation_follows_prometheus() {
    let bad: &[(&[(&str, &str)], &str)] = &[
        (&[("src", "a")], "requires 'target_label'"),
        (
            &[("action", "hashmod"), ("target", "h")],
            "non-zero modulus",
        ),
        (
            &[("action", "lowercase"), ("src", "a")],
            "requires 'target_label'",
        ),
        (
            &[("action", "uppercase"), ("target", "b"), ("repl", "x")],
            "'replacement' can not be set",
        ),
        (&[("target", "1bad")], "invalid 'target_label'"),
        (&[("target", "$1-x")], "invalid 'target_label'"),
        (
            &[("action", "labelmap"), ("repl", "a-b")],
            "invalid 'replacement'",
        ),
        (
            &[("action", "keepequal"), ("target", "b"), ("regex", "x")],
            "requires only 'source_labels' and `target_label`",
        ),
        (
            &[("action", "labelkeep"), ("target", "b")],
            "requires only 'regex'",
        ),
        (&[("regex", "(")], "invalid regex"),
    ];
    for (settings, want) in bad {
        let mut b = RelabelBuilder::default();
        for (k, v) in *settings {
            match *k {
                "src" => b.source_labels = Some(vec![v.to_string()]),
                "regex" => b.regex = Some(v.to_string()),
                "target" => b.target_label = Some(v.to_string()),
                "repl" => b.replacement = Some(v.to_string()),
                "action" => b.action = Some(Action::parse(v).unwrap()),
                _ => unreachable!(),
            }
        }
        let err = b.build().unwrap_err();
        assert!(err.to_string().contains(want), "{settings:?}: {err}");
    }
    assert!(Action::parse("rename").is_none());
}

fn label_set() -> impl Strategy<Value = L> {
    prop::collection::btree_map("[a-d_][a-d0-9_]{0,3}", "[a-c0-9]{0,3}", 0..6)
        .prop_map(|m| m.into_iter().collect())
}

proptest! {
    #[test]
    fn keep_then_drop_with_the_same_regex_drops_everything(
        labels in label_set(),
        regex in "[a-c.*|]{0,4}",
        src in "[a-d]",
    ) {
        prop_assume!(regex::Regex::new(&regex).is_ok());
        let keep = rule(&[("src", &src), ("regex", &regex), ("action", "keep")]);
        let drop = rule(&[("src", &src), ("regex", &regex), ("action", "drop")]);
        prop_assert_eq!(relabel(&labels, &[keep, drop]), None);
    }

    #[test]
    fn keep_and_drop_partition(labels in label_set(), regex in "[a-c.*]{0,3}", src in "[a-d]") {
        prop_assume!(regex::Regex::new(&regex).is_ok());
        let keep = rule(&[("src", &src), ("regex", &regex), ("action", "keep")]);
        let drop = rule(&[("src", &src), ("regex", &regex), ("action", "drop")]);
        let kept = relabel(&labels, &[keep]).is_some();
        let not_dropped = relabel(&labels, &[drop]).is_some();
        prop_assert_ne!(kept, not_dropped);
    }

    #[test]
    fn no_rules_sorts_and_removes_empty_values(labels in label_set()) {
        let out = relabel(&labels, &[]).unwrap();
        let want: L = labels.iter().filter(|(_, v)| !v.is_empty()).cloned().collect();
        prop_assert_eq!(out, want);
    }

    #[test]
    fn labeldrop_leaves_no_match_and_labelkeep_only_matches(labels in label_set(), prefix in "[a-d_]{1,2}") {
        let regex = format!("{prefix}.*");
        let dropped = relabel(&labels, &[rule(&[("regex", &regex), ("action", "labeldrop")])]).unwrap();
        let re = regex::Regex::new(&format!("^(?:{regex})$")).unwrap();
        prop_assert!(dropped.iter().all(|(n, _)| !re.is_match(n)));
        let kept = relabel(&labels, &[rule(&[("regex", &regex), ("action", "labelkeep")])]).unwrap();
        prop_assert!(kept.iter().all(|(n, _)| re.is_match(n)));
        prop_assert_eq!(dropped.len() + kept.len(), labels.iter().filter(|(_, v)| !v.is_empty()).count());
    }

    #[test]
    fn hashmod_is_below_the_modulus_and_stable(labels in label_set(), m in 1u64..50, src in "[a-d]") {
        let r = rule(&[("src", &src), ("mod", &m.to_string()), ("target", "h"), ("action", "hashmod")]);
        let a = relabel(&labels, std::slice::from_ref(&r)).unwrap();
        let b = relabel(&labels, &[r]).unwrap();
        let h: u64 = a.iter().find(|(n, _)| n == "h").unwrap().1.parse().unwrap();
        prop_assert!(h < m);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn lowercase_is_idempotent(labels in label_set(), src in "[a-d]") {
        let r = rule(&[("src", &src), ("target", &src), ("action", "lowercase")]);
        let once = relabel(&labels, std::slice::from_ref(&r)).unwrap();
        let twice = relabel(&once, &[r]).unwrap();
        prop_assert_eq!(once, twice);
    }
}
