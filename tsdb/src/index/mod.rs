//! The inverted index: label pairs → sorted series ids, label matchers,
//! label names and values.
//!
//! Every distinct string is stored once (interned); a series keeps its
//! labels as pairs of 4-byte symbol ids, and each `name=value` pair has a
//! sorted postings list of the series that carry it. Selecting by matchers
//! intersects the postings of the matchers that need a label and subtracts
//! those of the ones that a missing label satisfies, as Prometheus's
//! `PostingsForMatchers` does.

mod matcher;
mod postings;

use std::collections::HashMap;
use std::sync::Arc;

pub use matcher::{MatchOp, Matcher};

use crate::labels::Labels;

/// A series' id: assigned by the store, increasing, never reused.
pub type SeriesId = u64;

/// Interned strings: one copy of each, addressed by a `u32`.
#[derive(Default)]
struct Symbols {
    ids: HashMap<Arc<str>, u32>,
    strs: Vec<Arc<str>>,
    /// References per symbol, so strings of removed series can be freed.
    refs: Vec<u32>,
    free: Vec<u32>,
}

impl Symbols {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            self.refs[id as usize] += 1;
            return id;
        }
        let s: Arc<str> = Arc::from(s);
        let id = match self.free.pop() {
            Some(id) => {
                self.strs[id as usize] = s.clone();
                self.refs[id as usize] = 1;
                id
            }
            None => {
                self.strs.push(s.clone());
                self.refs.push(1);
                u32::try_from(self.strs.len() - 1).expect("fewer than 2^32 distinct strings")
            }
        };
        self.ids.insert(s, id);
        id
    }

    fn release(&mut self, id: u32) {
        let r = &mut self.refs[id as usize];
        *r -= 1;
        if *r == 0 {
            let s = std::mem::replace(&mut self.strs[id as usize], Arc::from(""));
            self.ids.remove(&s);
            self.free.push(id);
        }
    }

    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    fn str(&self, id: u32) -> &str {
        &self.strs[id as usize]
    }
}

/// What [`Index::stats`] reports; every list is sorted by count, largest
/// first, ties by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Series in the index.
    pub series: usize,
    /// Distinct `name=value` pairs.
    pub label_pairs: usize,
    /// Metric names by number of series.
    pub series_by_metric_name: Vec<(String, u64)>,
    /// `name=value` pairs by number of series.
    pub series_by_label_pair: Vec<(String, u64)>,
    /// Label names by number of distinct values.
    pub values_by_label_name: Vec<(String, u64)>,
    /// Label names by bytes of their distinct values.
    pub value_bytes_by_label_name: Vec<(String, u64)>,
}

/// The index of the series a store holds.
///
/// ```
/// use vigil_tsdb::index::{Index, MatchOp, Matcher};
/// use vigil_tsdb::labels::Labels;
///
/// let mut index = Index::new();
/// index.add(1, &Labels::new([("__name__", "up"), ("job", "node")])?);
/// index.add(2, &Labels::new([("__name__", "up"), ("job", "prometheus")])?);
/// index.add(3, &Labels::new([("__name__", "up")])?);
///
/// let up_not_node = [Matcher::equal("__name__", "up"), Matcher::new("job", MatchOp::NotEqual, "node")?];
/// assert_eq!(index.select(&up_not_node), [2, 3]); // a missing job is "" != "node"
/// assert_eq!(index.label_values("job", &[]), ["node", "prometheus"]);
/// # Ok::<(), vigil_tsdb::Error>(())
/// ```
#[derive(Default)]
pub struct Index {
    syms: Symbols,
    /// Each series' labels as (name, value) symbol pairs, sorted by name.
    series: HashMap<SeriesId, Box<[(u32, u32)]>>,
    /// `(name, value)` → sorted ids.
    postings: HashMap<(u32, u32), Vec<SeriesId>>,
    /// name → its values (symbols), in no order.
    values: HashMap<u32, Vec<u32>>,
    /// Every id, sorted.
    all: Vec<SeriesId>,
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when the index holds no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Adds series `id` with `labels`. Ids should be given in increasing order
    /// (appending keeps postings sorted for free); any order works. Adding an
    /// id that is present replaces its labels.
    pub fn add(&mut self, id: SeriesId, labels: &Labels) {
        if self.series.contains_key(&id) {
            self.remove(id);
        }
        let pairs: Box<[(u32, u32)]> = labels
            .iter()
            .map(|(n, v)| {
                let n = self.syms.intern(n);
                let v = self.syms.intern(v);
                let list = self.postings.entry((n, v)).or_default();
                if list.is_empty() {
                    self.values.entry(n).or_default().push(v);
                }
                postings::insert(list, id);
                (n, v)
            })
            .collect();
        postings::insert(&mut self.all, id);
        self.series.insert(id, pairs);
    }

    /// Cardinality statistics from the postings, without touching a series:
    /// the `top` metric names and label pairs by series count, and the `top`
    /// label names by number of values and by bytes of values (what
    /// Prometheus's `/api/v1/status/tsdb` and its status page show when
    /// cardinality explodes).
    pub fn stats(&self, top: usize) -> IndexStats {
        let name_sym = self.syms.get(crate::labels::METRIC_NAME);
        let mut by_name = Vec::new();
        let mut by_pair = Vec::with_capacity(self.postings.len());
        for (&(n, v), list) in &self.postings {
            let count = list.len() as u64;
            if Some(n) == name_sym {
                by_name.push((self.syms.str(v).to_string(), count));
            }
            by_pair.push(((n, v), count));
        }
        let mut values_by_name: Vec<(String, u64)> = Vec::with_capacity(self.values.len());
        let mut bytes_by_name: Vec<(String, u64)> = Vec::with_capacity(self.values.len());
        for (&n, vals) in &self.values {
            let name = self.syms.str(n).to_string();
            let bytes = vals.iter().map(|&v| self.syms.str(v).len() as u64).sum();
            values_by_name.push((name.clone(), vals.len() as u64));
            bytes_by_name.push((name, bytes));
        }
        fn keep_top<K: Ord>(v: &mut Vec<(K, u64)>, top: usize) {
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(top);
        }
        keep_top(&mut by_name, top);
        // Pairs are ranked on symbol ids first and only the winners are
        // turned into strings.
        by_pair.sort_unstable_by_key(|p| std::cmp::Reverse(p.1));
        if let Some(&(_, cut)) = by_pair.get(top.saturating_sub(1)).filter(|_| top > 0) {
            // Everything tied with the last place stays, so the name
            // tie-break below is exact.
            by_pair.retain(|&(_, c)| c >= cut);
        } else if top == 0 {
            by_pair.clear();
        }
        let mut pairs: Vec<(String, u64)> = by_pair
            .into_iter()
            .map(|((n, v), c)| (format!("{}={}", self.syms.str(n), self.syms.str(v)), c))
            .collect();
        keep_top(&mut pairs, top);
        keep_top(&mut values_by_name, top);
        keep_top(&mut bytes_by_name, top);
        IndexStats {
            series: self.series.len(),
            label_pairs: self.postings.len(),
            series_by_metric_name: by_name,
            series_by_label_pair: pairs,
            values_by_label_name: values_by_name,
            value_bytes_by_label_name: bytes_by_name,
        }
    }

    /// Removes series `id`; false if it was not there.
    pub fn remove(&mut self, id: SeriesId) -> bool {
        let Some(pairs) = self.series.remove(&id) else {
            return false;
        };
        for &(n, v) in pairs.iter() {
            if let Some(list) = self.postings.get_mut(&(n, v)) {
                postings::remove(list, id);
                if list.is_empty() {
                    self.postings.remove(&(n, v));
                    if let Some(vals) = self.values.get_mut(&n) {
                        vals.retain(|&x| x != v);
                        if vals.is_empty() {
                            self.values.remove(&n);
                        }
                    }
                }
            }
            self.syms.release(n);
            self.syms.release(v);
        }
        postings::remove(&mut self.all, id);
        true
    }

    /// Whether series `id` has exactly `labels` (no allocation).
    pub fn has_labels(&self, id: SeriesId, labels: &Labels) -> bool {
        let Some(pairs) = self.series.get(&id) else {
            return false;
        };
        pairs.len() == labels.len()
            && pairs
                .iter()
                .zip(labels.iter())
                .all(|(&(n, v), (ln, lv))| self.syms.str(n) == ln && self.syms.str(v) == lv)
    }

    /// The labels of series `id`.
    pub fn labels(&self, id: SeriesId) -> Option<Labels> {
        let pairs = self.series.get(&id)?;
        let pairs = pairs
            .iter()
            .map(|&(n, v)| (self.syms.str(n), self.syms.str(v)));
        // Stored labels are valid by construction.
        Labels::new(pairs).ok()
    }

    /// The ids of the series that all `matchers` select, sorted. No matchers
    /// select every series.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<SeriesId> {
        let mut result: Option<Vec<SeriesId>> = None;
        let mut subtract: Vec<Vec<SeriesId>> = Vec::new();
        // Cheap, selective matchers first, so later intersections are small.
        let mut order: Vec<&Matcher> = matchers.iter().collect();
        order.sort_by_key(|m| (m.exact_value().is_none(), m.matches("")));
        for m in order {
            if m.matches("") {
                // Series without the label match; of those with it, the
                // ones whose value does not match are dropped.
                let drop = self.union_of(m.name(), |v| !m.matches(v));
                if !drop.is_empty() {
                    subtract.push(drop);
                }
            } else {
                let keep = match m.exact_value() {
                    Some(v) => self.postings_of(m.name(), v).to_vec(),
                    None => self.union_of(m.name(), |v| m.matches(v)),
                };
                result = Some(match result {
                    None => keep,
                    Some(r) => postings::intersect(&r, &keep),
                });
            }
            if result.as_ref().is_some_and(Vec::is_empty) {
                return Vec::new();
            }
        }
        let mut r = result.unwrap_or_else(|| self.all.clone());
        for s in &subtract {
            r = postings::subtract(&r, s);
        }
        r
    }

    fn postings_of(&self, name: &str, value: &str) -> &[SeriesId] {
        match (self.syms.get(name), self.syms.get(value)) {
            (Some(n), Some(v)) => self.postings.get(&(n, v)).map_or(&[], Vec::as_slice),
            _ => &[],
        }
    }

    /// Union of the postings of `name=v` for every value `v` that `keep` accepts.
    fn union_of(&self, name: &str, keep: impl Fn(&str) -> bool) -> Vec<SeriesId> {
        let Some(n) = self.syms.get(name) else {
            return Vec::new();
        };
        let Some(vals) = self.values.get(&n) else {
            return Vec::new();
        };
        let lists: Vec<&[SeriesId]> = vals
            .iter()
            .filter(|&&v| keep(self.syms.str(v)))
            .filter_map(|&v| self.postings.get(&(n, v)).map(Vec::as_slice))
            .collect();
        postings::union(&lists)
    }

    /// Label names carried by the selected series (every series when
    /// `matchers` is empty), sorted.
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        let mut names: Vec<String> = if matchers.is_empty() {
            self.values
                .keys()
                .map(|&n| self.syms.str(n).to_owned())
                .collect()
        } else {
            let mut ids: Vec<u32> = self
                .select(matchers)
                .iter()
                .filter_map(|id| self.series.get(id))
                .flat_map(|pairs| pairs.iter().map(|&(n, _)| n))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.into_iter()
                .map(|n| self.syms.str(n).to_owned())
                .collect()
        };
        names.sort();
        names
    }

    /// Values of label `name` among the selected series (every series when
    /// `matchers` is empty), sorted.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let Some(n) = self.syms.get(name) else {
            return Vec::new();
        };
        let mut out: Vec<String> = if matchers.is_empty() {
            self.values.get(&n).map_or_else(Vec::new, |vals| {
                vals.iter().map(|&v| self.syms.str(v).to_owned()).collect()
            })
        } else {
            let mut ids: Vec<u32> = self
                .select(matchers)
                .iter()
                .filter_map(|id| self.series.get(id))
                .filter_map(|pairs| pairs.iter().find(|&&(k, _)| k == n).map(|&(_, v)| v))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.into_iter()
                .map(|v| self.syms.str(v).to_owned())
                .collect()
        };
        out.sort();
        out
    }
}
