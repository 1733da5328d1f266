//! Each filter built from a `[FILTER]` section of a configuration, as the
//! pipeline builds it, over records.

use std::path::Path;
use vigil_logpipe::config::parse_str;
use vigil_logpipe::filter::{self, Action, Filter};
use vigil_logpipe::parser::Parsers;
use vigil_logpipe::{Record, Value};

fn filters(text: &str) -> Vec<Box<dyn Filter>> {
    let cfg = parse_str(text, Path::new("/nonexistent/f.conf")).unwrap();
    let parsers = Parsers::from_config(&cfg).unwrap();
    cfg.filters
        .iter()
        .map(|s| filter::build(s, &parsers).unwrap())
        .collect()
}

fn build_err(text: &str) -> String {
    let cfg = parse_str(text, Path::new("/nonexistent/f.conf")).unwrap();
    let parsers = Parsers::from_config(&cfg).unwrap();
    filter::build(&cfg.filters[0], &parsers)
        .err()
        .unwrap()
        .to_string()
}

fn rec(pairs: &[(&str, &str)]) -> Record {
    let mut r = Record::line("kube.x", 0, "");
    r.fields = pairs.iter().map(|(k, v)| (*k, *v)).collect();
    r
}

fn json(r: &Record) -> String {
    vigil_logpipe::json::to_string(&Value::Map(r.fields.clone()))
}

#[test]
fn grep_legacy_and_or() {
    let mut f = filters(
        "[FILTER]\n    Name grep\n    Match *\n    Regex level ^(ERROR|WARN)$\n    Exclude msg healthz\n",
    );
    let g = &mut f[0];
    assert_eq!(
        g.filter(&mut rec(&[("level", "ERROR"), ("msg", "x")])),
        Action::Keep
    );
    assert_eq!(
        g.filter(&mut rec(&[("level", "INFO"), ("msg", "x")])),
        Action::Drop
    );
    assert_eq!(
        g.filter(&mut rec(&[("level", "WARN"), ("msg", "/healthz")])),
        Action::Drop
    );
    assert_eq!(g.filter(&mut rec(&[("msg", "x")])), Action::Drop);

    let mut f =
        filters("[FILTER]\n    Name grep\n    Logical_Op or\n    Regex a ^1$\n    Regex b ^2$\n");
    assert_eq!(
        f[0].filter(&mut rec(&[("a", "0"), ("b", "2")])),
        Action::Keep
    );
    assert_eq!(
        f[0].filter(&mut rec(&[("a", "0"), ("b", "0")])),
        Action::Drop
    );
    let mut f = filters(
        "[FILTER]\n    Name grep\n    Logical_Op AND\n    Exclude a ^1$\n    Exclude b ^2$\n",
    );
    assert_eq!(
        f[0].filter(&mut rec(&[("a", "1"), ("b", "0")])),
        Action::Keep
    );
    assert_eq!(
        f[0].filter(&mut rec(&[("a", "1"), ("b", "2")])),
        Action::Drop
    );

    let e =
        build_err("[FILTER]\n    Name grep\n    Logical_Op AND\n    Regex a x\n    Exclude b y\n");
    assert!(e.contains("f.conf:3:") && e.contains("cannot mix"), "{e}");
    let e = build_err("[FILTER]\n    Name grep\n    Regex a (\n");
    assert!(e.starts_with("/nonexistent/f.conf:3: bad regex"), "{e}");
    let e = build_err("[FILTER]\n    Name grep\n    Regexp a x\n");
    assert!(e.contains(":3: unknown key 'Regexp'"), "{e}");
}

#[test]
fn grep_on_nested_accessor() {
    let mut f = filters("[FILTER]\n    Name grep\n    Regex $kubernetes['labels']['app'] ^web$\n");
    let mut r = Record::line("t", 0, "x");
    let mut labels = vigil_logpipe::Fields::new();
    labels.push("app", "web");
    let mut k = vigil_logpipe::Fields::new();
    k.push("labels", Value::Map(labels));
    r.fields.push("kubernetes", Value::Map(k));
    assert_eq!(f[0].filter(&mut r), Action::Keep);
    assert_eq!(f[0].filter(&mut Record::line("t", 0, "x")), Action::Drop);
}

#[test]
fn modify_rules_in_order_under_conditions() {
    let mut f = filters(
        "[FILTER]\n    Name modify\n    Match *\n    Condition Key_value_equals env prod\n    Condition Key_exists msg\n    Rename msg message\n    Add host a\n    Set env production\n    Copy message log2\n    Hard_copy message env2\n    Remove_wildcard tmp_*\n    Remove drop\n",
    );
    let mut r = rec(&[
        ("env", "prod"),
        ("msg", "hi"),
        ("host", "b"),
        ("tmp_1", "x"),
        ("tmp_2", "y"),
        ("drop", "z"),
        ("env2", "old"),
    ]);
    f[0].filter(&mut r);
    assert_eq!(
        json(&r),
        r#"{"env":"production","message":"hi","host":"b","env2":"hi","log2":"hi"}"#
    );
    let mut r = rec(&[("env", "dev"), ("msg", "hi")]);
    f[0].filter(&mut r);
    assert_eq!(json(&r), r#"{"env":"dev","msg":"hi"}"#);
}

#[test]
fn modify_rename_hard_rename_and_matching_keys() {
    let mut f = filters(
        "[FILTER]\n    Name modify\n    Rename a b\n    Hard_rename c d\n    Condition Matching_keys_have_matching_values ^[a-d]$ ^v\n",
    );
    let mut r = rec(&[("a", "v1"), ("b", "v2"), ("c", "v3"), ("d", "v4")]);
    f[0].filter(&mut r);
    assert_eq!(
        json(&r),
        r#"{"a":"v1","b":"v2","c":"v3"}"#.replace(r#","c":"v3""#, r#","d":"v3""#)
    );
    let e = build_err("[FILTER]\n    Name modify\n    Condition Key_is_pink x\n    Set a b\n");
    assert!(
        e.contains(":3:") && e.contains("unknown modify condition"),
        "{e}"
    );
    let e = build_err("[FILTER]\n    Name modify\n    Rename onlyone\n");
    assert!(e.contains("two arguments"), "{e}");
}

#[test]
fn record_modifier() {
    let mut f = filters(
        "[FILTER]\n    Name record_modifier\n    Record hostname node1\n    Record product Awesome Tool\n    Remove_key secret\n",
    );
    let mut r = rec(&[("log", "x"), ("secret", "s")]);
    f[0].filter(&mut r);
    assert_eq!(
        json(&r),
        r#"{"log":"x","hostname":"node1","product":"Awesome Tool"}"#
    );
    let mut f = filters(
        "[FILTER]\n    Name record_modifier\n    Allowlist_key log\n    Whitelist_key level\n",
    );
    let mut r = rec(&[("log", "x"), ("a", "1"), ("level", "i")]);
    f[0].filter(&mut r);
    assert_eq!(json(&r), r#"{"log":"x","level":"i"}"#);
}

#[test]
fn parser_filter_reserve_and_preserve() {
    let conf = "[PARSER]\n    Name kv\n    Format logfmt\n    Time_Key ts\n    Time_Format %s\n[FILTER]\n    Name parser\n    Key_Name log\n    Parser nomatch_json\n    Parser kv\n    Reserve_Data On\n    Preserve_Key On\n[PARSER]\n    Name nomatch_json\n    Format json\n";
    let mut f = filters(conf);
    let mut r = rec(&[("stream", "stdout"), ("log", "a=1 ts=1700000000")]);
    assert_eq!(f[0].filter(&mut r), Action::Keep);
    assert_eq!(r.time_ns, 1_700_000_000_000_000_000);
    assert_eq!(
        json(&r),
        r#"{"a":"1","stream":"stdout","log":"a=1 ts=1700000000"}"#
    );
    // Unparseable: unchanged.
    let mut r = rec(&[("log", "\"quote")]);
    f[0].filter(&mut r);
    assert_eq!(json(&r), r#"{"log":"\"quote"}"#);
    // Without Reserve_Data the other fields go.
    let mut f = filters("[FILTER]\n    Name parser\n    Key_Name log\n    Parser json\n");
    let mut r = rec(&[("stream", "stdout"), ("log", r#"{"x":1}"#)]);
    f[0].filter(&mut r);
    assert_eq!(json(&r), r#"{"x":1}"#);
    let e = build_err("[FILTER]\n    Name parser\n    Key_Name log\n    Parser nope\n");
    assert!(e.contains(":4: unknown parser 'nope'"), "{e}");
}

#[test]
fn kubernetes_from_tag_both_layouts() {
    let mut f = filters(
        "[FILTER]\n    Name kubernetes\n    Match kube.*\n    Kube_URL https://kubernetes.default.svc:443\n    Merge_Log On\n    Keep_Log Off\n",
    );
    let id = "a".repeat(64);
    let mut r = Record::line(
        format!("kube.var.log.containers.web-7d9f.x_prod_nginx-{id}.log"),
        0,
        r#"{"level":"info","n":3}"#,
    );
    f[0].filter(&mut r);
    assert_eq!(
        json(&r),
        format!(
            r#"{{"level":"info","n":3,"kubernetes":{{"pod_name":"web-7d9f.x","namespace_name":"prod","container_name":"nginx","docker_id":"{id}"}}}}"#
        )
    );
    let mut r = Record::line(
        "kube.var.log.pods.prod_web-1_0f8e-11aa.app.0.log",
        0,
        "plain",
    );
    f[0].filter(&mut r);
    assert_eq!(
        json(&r),
        r#"{"log":"plain","kubernetes":{"pod_name":"web-1","namespace_name":"prod","pod_id":"0f8e-11aa","container_name":"app"}}"#
    );
    // A tag that is no kubelet path: unchanged.
    let mut r = Record::line("app.log", 0, "x");
    f[0].filter(&mut r);
    assert_eq!(json(&r), r#"{"log":"x"}"#);
}

#[test]
fn throttle_from_config() {
    let mut f = filters("[FILTER]\n    Name throttle\n    Rate 3\n    Window 1\n    Interval 1h\n");
    let kept = (0..10)
        .filter(|_| f[0].filter(&mut rec(&[("a", "b")])) == Action::Keep)
        .count();
    assert_eq!(kept, 3);
    let e = build_err("[FILTER]\n    Name throttle\n    Window 0\n");
    assert!(e.contains(":3:"), "{e}");
}

#[test]
fn kube_meta_from_slash_paths() {
    use vigil_logpipe::filter::kube_meta_from_path;
    let m = kube_meta_from_path("/var/log/pods/ns1_pod-a_uid-1/c1/12.log").unwrap();
    assert_eq!(
        (
            m.namespace_name.as_str(),
            m.pod_name.as_str(),
            m.pod_id.as_deref(),
            m.container_name.as_str()
        ),
        ("ns1", "pod-a", Some("uid-1"), "c1")
    );
    let m = kube_meta_from_path("/var/log/containers/p_ns_c-0123abcd.log").unwrap();
    assert_eq!(m.docker_id.as_deref(), Some("0123abcd"));
    assert!(kube_meta_from_path("/var/log/containers/p_ns-0123.log").is_none());
    assert!(kube_meta_from_path("/var/log/pods/ns_pod_uid/c/x.log").is_none());
    assert!(kube_meta_from_path("/var/log/syslog").is_none());
}
