//! Property tests of vigil-pushgateway's store against a small model:
//! random PUT/POST/DELETE sequences over overlapping grouping keys, with
//! bodies whose types and series may conflict, must accept and refuse as
//! the model says and expose the model's series; the persistence file must
//! give back the same store; `@base64` path values decode what a URL-safe
//! encoder wrote, with or without padding.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use vigil_examples::pushgateway::{GroupKey, Push, Refusal, Store, Value, WriteMode, grouping_key};

/// One pushed family: name index, counter or gauge, samples as
/// (body `instance` label or none, value).
type Fam = (usize, bool, Vec<(Option<usize>, u8)>);

#[derive(Debug, Clone)]
enum Op {
    Put(usize, Vec<Fam>),
    Post(usize, Vec<Fam>),
    Delete(usize),
}

const NAMES: [&str; 3] = ["m", "n", "o"];
const INSTANCES: [&str; 2] = ["x", "y"];

/// Grouping keys that overlap: `{job=a}` and `{job=a,instance=x}` can
/// expose the same series.
fn keys() -> Vec<GroupKey> {
    let k = |pairs: &[(&str, &str)]| -> GroupKey {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    vec![
        k(&[("job", "a")]),
        k(&[("job", "a"), ("instance", "x")]),
        k(&[("job", "b")]),
    ]
}

fn body(fams: &[Fam]) -> String {
    let mut out = String::new();
    for (name, counter, samples) in fams {
        let name = NAMES[*name];
        let ty = if *counter { "counter" } else { "gauge" };
        out.push_str(&format!("# TYPE {name} {ty}\n"));
        for (inst, v) in samples {
            match inst {
                Some(i) => out.push_str(&format!("{name}{{instance=\"{}\"}} {v}\n", INSTANCES[*i])),
                None => out.push_str(&format!("{name} {v}\n")),
            }
        }
    }
    out
}

fn op() -> impl Strategy<Value = Op> {
    let sample = (proptest::option::of(0..2usize), 0..5u8);
    let fam = (
        0..3usize,
        any::<bool>(),
        proptest::collection::vec(sample, 1..3),
    );
    // Distinct names per push (a repeated TYPE line is a parse error,
    // which is not what this test is about).
    let fams = proptest::collection::vec(fam, 0..3).prop_map(|mut v: Vec<Fam>| {
        let mut seen = BTreeSet::new();
        v.retain(|f| seen.insert(f.0));
        v
    });
    prop_oneof![
        (0..3usize, fams.clone()).prop_map(|(k, f)| Op::Put(k, f)),
        (0..3usize, fams).prop_map(|(k, f)| Op::Post(k, f)),
        (0..3usize).prop_map(Op::Delete),
    ]
}

/// Exposed series: (name, labels, value).
type Series = BTreeSet<(String, Vec<(String, String)>, String)>;

/// The model: per group, family name → (counter?, samples).
type Model = BTreeMap<usize, BTreeMap<usize, (bool, Vec<(Option<usize>, u8)>)>>;

/// The series a model exposes: (name, labels, value).
fn model_series(model: &Model, keys: &[GroupKey]) -> Series {
    let mut out = BTreeSet::new();
    for (g, fams) in model {
        let key = &keys[*g];
        for (name, (_, samples)) in fams {
            for (inst, v) in samples {
                let mut labels: BTreeMap<String, String> = key.clone();
                if !key.contains_key("instance") {
                    let i = inst.map(|i| INSTANCES[i]).unwrap_or("");
                    labels.insert("instance".into(), i.into());
                }
                out.insert((
                    NAMES[*name].to_owned(),
                    labels.into_iter().collect(),
                    v.to_string(),
                ));
            }
        }
    }
    out
}

/// Whether the model state is consistent: one type per name, no series
/// twice.
fn consistent(model: &Model, keys: &[GroupKey]) -> bool {
    let mut types = BTreeMap::new();
    for fams in model.values() {
        for (name, (counter, _)) in fams {
            if *types.entry(*name).or_insert(*counter) != *counter {
                return false;
            }
        }
    }
    let mut seen = BTreeSet::new();
    for (g, fams) in model {
        for (name, (_, samples)) in fams {
            for (inst, _) in samples {
                let key = &keys[*g];
                let instance = if key.contains_key("instance") {
                    key["instance"].clone()
                } else {
                    inst.map(|i| INSTANCES[i]).unwrap_or("").to_owned()
                };
                if !seen.insert((*name, key["job"].clone(), instance)) {
                    return false;
                }
            }
        }
    }
    true
}

fn store_series(store: &Store) -> Series {
    let mut out = BTreeSet::new();
    for f in store.gather(&[]) {
        if f.name.starts_with("push_") {
            continue;
        }
        for m in &f.metrics {
            let Value::Simple(v) = m.value else {
                panic!("only simple values are pushed here")
            };
            out.insert((f.name.clone(), m.labels.clone(), v.to_string()));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn store_follows_the_model(ops in proptest::collection::vec(op(), 1..25)) {
        let keys = keys();
        let mut store = Store::default();
        let mut model = Model::new();
        // Groups that exist (created by a success or by a refused push).
        let mut groups: BTreeSet<usize> = BTreeSet::new();
        for (t, op) in ops.iter().enumerate() {
            let now = 1_000.0 + t as f64;
            match op {
                Op::Delete(k) => {
                    store.delete(&keys[*k]);
                    model.remove(k);
                    groups.remove(k);
                }
                Op::Put(k, fams) | Op::Post(k, fams) => {
                    let put = matches!(op, Op::Put(..));
                    let mut next = model.clone();
                    let group = next.entry(*k).or_default();
                    if put {
                        group.clear();
                    }
                    for (name, counter, samples) in fams {
                        group.insert(*name, (*counter, samples.clone()));
                    }
                    let ok = consistent(&next, &keys);
                    let text = body(fams);
                    let push = Push {
                        key: &keys[*k],
                        body: text.as_bytes(),
                        openmetrics: false,
                        mode: if put { WriteMode::Replace } else { WriteMode::Merge },
                    };
                    let got = store.push(push, now, &[], true);
                    match (&got, ok) {
                        (Ok(()), true) => model = next,
                        (Err(Refusal::Inconsistent(_)), false) => {}
                        _ => prop_assert!(false, "step {t} {op:?}: got {got:?}, model says ok={ok}\n{text}"),
                    }
                    groups.insert(*k);
                }
            }
            prop_assert_eq!(store_series(&store), model_series(&model, &keys), "after step {} {:?}", t, op);
            let have: BTreeSet<usize> = (0..keys.len()).filter(|k| store.groups.contains_key(&keys[*k])).collect();
            prop_assert_eq!(&have, &groups);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pg.data");
        store.persist(&path).unwrap();
        prop_assert_eq!(Store::load(&path).unwrap(), store);
    }

    #[test]
    fn outside_bytes_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        text in "(# (TYPE|HELP) [a-z_]{1,3} [a-z ]{0,10}\n|[a-z_]{1,3}(\\{[a-z_]{1,2}=\"[a-z]{0,2}\"\\})? [0-9.e+-]{1,4}( [0-9]{1,3})?\n|# EOF\n){0,8}",
        path in "[a-zA-Z0-9_@=/%.-]{0,40}",
    ) {
        let keys = keys();
        let mut store = Store::default();
        for (i, b) in [&body[..], text.as_bytes()].into_iter().enumerate() {
            for om in [false, true] {
                let push = Push { key: &keys[i % 3], body: b, openmetrics: om, mode: WriteMode::Merge };
                let _ = store.push(push, 1.0, &[], true);
            }
        }
        let _ = store.encode(&[]);
        let _ = store.api_json();
        let _ = grouping_key(&format!("/metrics/job/{path}"));
        let _ = grouping_key(&format!("/metrics/job@base64/{path}"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pg.data");
        std::fs::write(&file, &body).unwrap();
        let _ = Store::load(&file);
        // Well-formed JSON with wrong contents is refused, not obeyed.
        let doc = format!(
            "{{\"format\":\"vigil-pushgateway\",\"version\":1,\"groups\":[{{\"labels\":{{\"job\":\"j\"}},\
             \"push_time_seconds\":\"1e300\",\"push_failure_time_seconds\":\"0\",\"push_stamp\":\"1e300\",\
             \"failure_stamp\":\"0\",\"families\":[{{\"time\":\"-1\",\"text\":{}}}]}}]}}",
            serde_json::Value::String(text.clone())
        );
        std::fs::write(&file, doc).unwrap();
        if let Ok(loaded) = Store::load(&file) {
            let _ = loaded.encode(&[]);
            let _ = loaded.api_json();
        }
    }

    #[test]
    fn base64_values_decode(value in "\\PC{0,20}", pad in any::<bool>()) {
        let mut enc = url_safe_base64(value.as_bytes());
        if pad {
            while enc.len() % 4 != 0 {
                enc.push('=');
            }
        }
        let path = format!("/metrics/job@base64/{}/k@base64/{enc}", url_safe_base64(b"j/1"));
        let key = grouping_key(&path).unwrap();
        prop_assert_eq!(&key["k"], &value);
        prop_assert_eq!(&key["job"], "j/1");
    }
}

/// A straightforward URL-safe base64 encoder without padding, written
/// independently of the decoder under test.
fn url_safe_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= (*b as u32) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
