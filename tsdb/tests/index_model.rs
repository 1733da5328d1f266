//! The index against a naive model: random series added and removed, random
//! matchers of every kind; `select`, `label_names` and `label_values` must
//! give what filtering every series one by one gives.

use std::collections::BTreeMap;

use proptest::prelude::*;
use vigil_tsdb::index::{Index, MatchOp, Matcher, SeriesId};
use vigil_tsdb::labels::Labels;

const NAMES: [&str; 4] = ["__name__", "job", "instance", "le"];
const VALUES: [&str; 5] = ["", "a", "b", "ab", "b.c"];
const PATTERNS: [&str; 7] = ["a", "a.*", ".*", ".+", "b|ab", "", "(a|b)\\.?c?"];

#[derive(Debug, Clone)]
enum Op {
    Add(Vec<(usize, usize)>),
    Remove(usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let add = proptest::collection::vec((0..NAMES.len(), 0..VALUES.len()), 0..4).prop_map(Op::Add);
    let remove = (0usize..64).prop_map(Op::Remove);
    proptest::collection::vec(prop_oneof![3 => add, 1 => remove], 0..40)
}

fn matchers() -> impl Strategy<Value = Vec<(usize, usize, usize)>> {
    proptest::collection::vec((0..NAMES.len(), 0..4usize, 0..PATTERNS.len()), 0..3)
}

fn build(spec: &[(usize, usize, usize)]) -> Vec<Matcher> {
    spec.iter()
        .map(|&(n, op, p)| {
            let op = [
                MatchOp::Equal,
                MatchOp::NotEqual,
                MatchOp::Regex,
                MatchOp::NotRegex,
            ][op];
            Matcher::new(NAMES[n], op, PATTERNS[p]).unwrap()
        })
        .collect()
}

fn model_select(model: &BTreeMap<SeriesId, Labels>, ms: &[Matcher]) -> Vec<SeriesId> {
    model
        .iter()
        .filter(|(_, l)| ms.iter().all(|m| m.matches(l.get(m.name()).unwrap_or(""))))
        .map(|(&id, _)| id)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn index_agrees_with_filtering_every_series(ops in ops(), queries in proptest::collection::vec(matchers(), 1..6)) {
        let mut index = Index::new();
        let mut model: BTreeMap<SeriesId, Labels> = BTreeMap::new();
        let mut next: SeriesId = 1;
        for op in ops {
            match op {
                Op::Add(pairs) => {
                    let mut seen = std::collections::HashSet::new();
                    let pairs: Vec<(&str, &str)> = pairs
                        .into_iter()
                        .filter(|(n, _)| seen.insert(*n))
                        .map(|(n, v)| (NAMES[n], VALUES[v]))
                        .collect();
                    let labels = Labels::new(pairs).unwrap();
                    index.add(next, &labels);
                    model.insert(next, labels);
                    next += 1;
                }
                Op::Remove(k) => {
                    let id = model.keys().nth(k % model.len().max(1)).copied();
                    if let Some(id) = id {
                        prop_assert!(index.remove(id));
                        model.remove(&id);
                    }
                    prop_assert!(!index.remove(next + 100));
                }
            }
        }
        prop_assert_eq!(index.len(), model.len());
        for (&id, l) in &model {
            prop_assert_eq!(index.labels(id), Some(l.clone()));
            // Several ids may share a label set; lookup finds one of them.
            let found = index.lookup(l);
            prop_assert!(found.is_some_and(|f| model.get(&f) == Some(l)), "lookup {:?}", l);
        }
        for spec in queries {
            let ms = build(&spec);
            let want = model_select(&model, &ms);
            prop_assert_eq!(index.select(&ms), want.clone(), "select {:?}", ms);
            let mut names: Vec<String> = want
                .iter()
                .flat_map(|id| model[id].iter().map(|(n, _)| n.to_owned()).collect::<Vec<_>>())
                .collect();
            names.sort();
            names.dedup();
            prop_assert_eq!(index.label_names(&ms), names, "label_names {:?}", ms);
            for name in NAMES {
                let mut vals: Vec<String> = want
                    .iter()
                    .filter_map(|id| model[id].get(name).map(str::to_owned))
                    .collect();
                vals.sort();
                vals.dedup();
                prop_assert_eq!(index.label_values(name, &ms), vals, "label_values {} {:?}", name, ms);
            }
        }
    }
}

/// Removing most series frees their strings and label references; the
/// arenas are compacted (past a few KiB of garbage) and every survivor
/// still reads back, is found by its labels and is selected.
#[test]
fn churn_compacts_and_keeps_survivors() {
    let mut index = Index::new();
    let labels = |i: u64| {
        Labels::new([
            ("__name__", "churn".to_owned()),
            (
                "pod",
                format!("pod-{i:08}-{}", "x".repeat((i % 50) as usize)),
            ),
            ("zone", format!("z{}", i % 3)),
        ])
        .unwrap()
    };
    for i in 1..=5_000u64 {
        index.add(i, &labels(i));
    }
    let before = index.memory();
    for i in 1..=5_000u64 {
        if i % 10 != 0 {
            assert!(index.remove(i));
        }
    }
    for i in 5_001..=5_500u64 {
        index.add(i, &labels(i));
    }
    let after = index.memory();
    assert!(
        after.symbol_text < before.symbol_text,
        "strings freed: {before:?} -> {after:?}"
    );
    for i in (10..=5_000u64).step_by(10).chain(5_001..=5_500) {
        assert_eq!(index.labels(i), Some(labels(i)), "series {i}");
        assert_eq!(index.lookup(&labels(i)), Some(i));
    }
    assert_eq!(index.lookup(&labels(11)), None);
    assert_eq!(index.len(), 1_000);
    let z1 = index.select(&[Matcher::equal("zone", "z1")]);
    let want: Vec<SeriesId> = (10..=5_000u64)
        .step_by(10)
        .chain(5_001..=5_500)
        .filter(|i| i % 3 == 1)
        .collect();
    assert_eq!(z1, want);
}
