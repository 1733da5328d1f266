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
mod pages;
mod postings;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use foldhash::fast::RandomState;
use hashbrown::HashTable;

pub use matcher::{MatchOp, Matcher};
use pages::Pages;
use postings::List;

use crate::labels::Labels;

/// A series' id: assigned by the store, increasing, never reused.
pub type SeriesId = u64;

/// Interned strings: one copy of each, back to back in an arena of fixed
/// pages (`pages` says why), addressed by a `u32` symbol. A string costs its bytes plus 12 bytes of
/// span and reference count and about 6 of hash table, where a separately
/// allocated string in a map costs some 70 bytes more.
#[derive(Default)]
struct Symbols {
    arena: Pages,
    /// Per symbol: position in the arena and length.
    spans: Vec<(u32, u32)>,
    /// References per symbol, so strings of removed series can be freed.
    refs: Vec<u32>,
    free: Vec<u32>,
    /// Symbols, found by the hash of their string.
    table: HashTable<u32>,
    hasher: RandomState,
    /// Arena bytes of freed strings; the arena is compacted when they are
    /// more than half of it.
    dead: usize,
}

impl Symbols {
    fn hash(&self, s: &str) -> u64 {
        self.hasher.hash_one(s)
    }

    fn intern(&mut self, s: &str) -> u32 {
        let h = self.hash(s);
        let Symbols {
            arena,
            spans,
            table,
            ..
        } = self;
        let text = |id: u32| span_bytes(arena, spans[id as usize]);
        if let Some(&id) = table.find(h, |&id| text(id) == s.as_bytes()) {
            self.refs[id as usize] += 1;
            return id;
        }
        let start = self
            .arena
            .push(s.as_bytes())
            .expect("fewer than 4 GiB of distinct label strings");
        let span = (start, s.len() as u32);
        let id = match self.free.pop() {
            Some(id) => {
                self.spans[id as usize] = span;
                self.refs[id as usize] = 1;
                id
            }
            None => {
                if self.spans.len() == self.spans.capacity() {
                    // An eighth at a time, as the arena.
                    let more = (self.spans.len() / 8).max(64);
                    self.spans.reserve_exact(more);
                    self.refs.reserve_exact(more);
                }
                self.spans.push(span);
                self.refs.push(1);
                u32::try_from(self.spans.len() - 1).expect("fewer than 2^32 distinct strings")
            }
        };
        let Symbols {
            arena,
            spans,
            table,
            hasher,
            ..
        } = self;
        table.insert_unique(h, id, |&x| {
            hasher.hash_one(span_str(arena, spans[x as usize]))
        });
        id
    }

    fn release(&mut self, id: u32) {
        let r = &mut self.refs[id as usize];
        *r -= 1;
        if *r > 0 {
            return;
        }
        let span = self.spans[id as usize];
        let h = self.hash(span_str(&self.arena, span));
        if let Ok(e) = self.table.find_entry(h, |&x| x == id) {
            e.remove();
        }
        self.spans[id as usize] = (0, 0);
        self.free.push(id);
        self.dead += span.1 as usize;
        if self.dead > 4096 && self.dead * 2 > self.arena.len() {
            self.compact();
        }
    }

    /// Rewrites the arena without the freed strings (symbols keep their ids).
    fn compact(&mut self) {
        let mut arena = Pages::default();
        for (i, span) in self.spans.iter_mut().enumerate() {
            if self.refs[i] == 0 {
                continue;
            }
            span.0 = arena
                .push(span_bytes(&self.arena, *span))
                .expect("a compacted arena is smaller than the one it replaces");
        }
        self.arena = arena;
        self.dead = 0;
    }

    fn get(&self, s: &str) -> Option<u32> {
        let h = self.hash(s);
        self.table
            .find(h, |&id| {
                span_bytes(&self.arena, self.spans[id as usize]) == s.as_bytes()
            })
            .copied()
    }

    fn str(&self, id: u32) -> &str {
        span_str(&self.arena, self.spans[id as usize])
    }

    fn bytes(&self, id: u32) -> &[u8] {
        span_bytes(&self.arena, self.spans[id as usize])
    }

    fn heap_bytes(&self) -> usize {
        self.arena.capacity()
            + self.spans.capacity() * 8
            + self.refs.capacity() * 4
            + self.free.capacity() * 4
            + table_bytes(self.table.capacity(), 4)
    }
}

fn span_bytes(arena: &Pages, (start, len): (u32, u32)) -> &[u8] {
    arena.get(start, len).unwrap_or(&[])
}

/// Only strings are interned, so the check never fails; it costs what
/// reading the bytes costs.
fn span_str(arena: &Pages, span: (u32, u32)) -> &str {
    std::str::from_utf8(span_bytes(arena, span)).unwrap_or("")
}

/// Heap bytes of a hashbrown table with room for `cap` entries of `entry`
/// bytes (buckets are a power of two at most 7/8 full, one control byte
/// each plus a group's worth).
fn table_bytes(cap: usize, entry: usize) -> usize {
    if cap == 0 {
        return 0;
    }
    let buckets = if cap < 8 {
        (cap + 1).next_power_of_two()
    } else {
        (cap * 8 / 7).next_power_of_two()
    };
    buckets * (entry + 1) + 16
}

/// Where the index's memory goes, in heap bytes (capacities, so what the
/// allocator was asked for, without its own per-allocation overhead).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexMemory {
    /// Interned strings: the arena, spans, counts and their hash table.
    pub symbols: usize,
    /// Of which the strings' own bytes (arena capacity).
    pub symbol_text: usize,
    /// Each series' labels as symbol references, and the map by id.
    pub series_labels: usize,
    /// The label-set hash table that finds a series by its labels.
    pub label_set_table: usize,
    /// Postings lists and their map, plus the list of every id.
    pub postings: usize,
    /// Label name → values lists.
    pub values: usize,
}

impl IndexMemory {
    /// The sum of the parts (`symbol_text` is part of `symbols`).
    pub fn total(&self) -> usize {
        self.symbols + self.series_labels + self.label_set_table + self.postings + self.values
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
    /// Every series' labels, back to back: per label, the name's and the
    /// value's symbols as varints (names sorted).
    label_bytes: Pages,
    /// Series id → its position and length in `label_bytes`.
    series: HashMap<SeriesId, (u32, u32), RandomState>,
    /// Bytes of `label_bytes` that belong to removed series.
    dead_label_bytes: usize,
    /// Series ids by the hash of their label set.
    by_labels: HashTable<SeriesId>,
    /// `(name, value)` → sorted ids.
    postings: postings::Map,
    /// name → its values (symbols), in no order.
    values: HashMap<u32, Vec<u32>, RandomState>,
    /// Every id, sorted.
    all: List,
    /// A series' label references while they are gathered.
    scratch: Vec<u8>,
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

    /// The hash of a label set, the same for `Labels` and for a series'
    /// interned labels (0xff never occurs in UTF-8, so it separates).
    fn hash_pairs<'a>(&self, pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
        let mut h = self.syms.hasher.build_hasher();
        for (n, v) in pairs {
            h.write(n.as_bytes());
            h.write_u8(0xff);
            h.write(v.as_bytes());
            h.write_u8(0xff);
        }
        h.finish()
    }

    /// Series `id`'s labels as symbol pairs.
    fn pairs(&self, id: SeriesId) -> Option<PairIter<'_>> {
        let &(start, len) = self.series.get(&id)?;
        let b = self.label_bytes.get(start, len)?;
        Some(PairIter { b, at: 0 })
    }

    fn pair_strs(&self, id: SeriesId) -> Option<impl Iterator<Item = (&str, &str)>> {
        Some(
            self.pairs(id)?
                .map(|(n, v)| (self.syms.str(n), self.syms.str(v))),
        )
    }

    /// Adds series `id` with `labels`. Ids should be given in increasing order
    /// (appending keeps postings sorted for free); any order works. Adding an
    /// id that is present replaces its labels.
    pub fn add(&mut self, id: SeriesId, labels: &Labels) {
        if self.series.contains_key(&id) {
            self.remove(id);
        }
        let mut refs = std::mem::take(&mut self.scratch);
        refs.clear();
        for (n, v) in labels.iter() {
            let n = self.syms.intern(n);
            let v = self.syms.intern(v);
            if self.postings.insert(n, v, id) {
                self.values.entry(n).or_default().push(v);
            }
            put_uvarint(&mut refs, n);
            put_uvarint(&mut refs, v);
        }
        self.all.insert(id);
        let span = (
            self.label_bytes
                .push(&refs)
                .expect("fewer than 4 GiB of label references"),
            refs.len() as u32,
        );
        self.scratch = refs;
        self.series.insert(id, span);
        let h = self.hash_pairs(labels.iter());
        let Index {
            by_labels,
            series,
            label_bytes,
            syms,
            ..
        } = self;
        by_labels.insert_unique(h, id, |&x| rehash(syms, series, label_bytes, x));
    }

    /// The id of the series with exactly `labels`, if the index holds one.
    pub fn lookup(&self, labels: &Labels) -> Option<SeriesId> {
        let h = self.hash_pairs(labels.iter());
        self.by_labels
            .find(h, |&id| self.has_labels(id, labels))
            .copied()
    }

    /// Heap bytes by part (see [`IndexMemory`]).
    pub fn memory(&self) -> IndexMemory {
        let postings = self.postings.heap_bytes() + self.all.heap_bytes();
        IndexMemory {
            symbols: self.syms.heap_bytes(),
            symbol_text: self.syms.arena.capacity(),
            series_labels: self.label_bytes.capacity() + table_bytes(self.series.capacity(), 16),
            label_set_table: table_bytes(self.by_labels.capacity(), 8),
            postings,
            values: table_bytes(self.values.capacity(), 4 + 24)
                + self
                    .values
                    .values()
                    .map(|v| v.capacity() * 4)
                    .sum::<usize>(),
        }
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
        for (n, v, list) in self.postings.iter() {
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
        let Some(pairs) = self.pairs(id).map(|p| p.collect::<Vec<_>>()) else {
            return false;
        };
        let h = self.hash_pairs(
            pairs
                .iter()
                .map(|&(n, v)| (self.syms.str(n), self.syms.str(v))),
        );
        if let Ok(e) = self.by_labels.find_entry(h, |&x| x == id) {
            e.remove();
        }
        for &(n, v) in &pairs {
            if self.postings.remove(n, v, id) {
                if let Some(vals) = self.values.get_mut(&n) {
                    vals.retain(|&x| x != v);
                    if vals.is_empty() {
                        self.values.remove(&n);
                    }
                }
            }
            self.syms.release(n);
            self.syms.release(v);
        }
        self.all.remove(id);
        if let Some((_, len)) = self.series.remove(&id) {
            self.dead_label_bytes += len as usize;
        }
        if self.dead_label_bytes > 4096 && self.dead_label_bytes * 2 > self.label_bytes.len() {
            self.compact_labels();
        }
        true
    }

    /// Rewrites `label_bytes` without the removed series' spans.
    fn compact_labels(&mut self) {
        let mut bytes = Pages::default();
        for span in self.series.values_mut() {
            let b = self.label_bytes.get(span.0, span.1).unwrap_or(&[]);
            span.0 = bytes
                .push(b)
                .expect("compacted label references are fewer than before");
        }
        self.label_bytes = bytes;
        self.dead_label_bytes = 0;
    }

    /// Whether series `id` has exactly `labels` (no allocation).
    pub fn has_labels(&self, id: SeriesId, labels: &Labels) -> bool {
        let Some(mut pairs) = self.pair_strs(id) else {
            return false;
        };
        let mut want = labels.iter();
        loop {
            match (pairs.next(), want.next()) {
                (None, None) => return true,
                (Some(a), Some(b)) if a == b => {}
                _ => return false,
            }
        }
    }

    /// The labels of series `id`.
    pub fn labels(&self, id: SeriesId) -> Option<Labels> {
        // Stored labels are valid by construction.
        Labels::new(self.pair_strs(id)?).ok()
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
                    Some(v) => self.postings_of(m.name(), v),
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
        let mut r = result.unwrap_or_else(|| self.all.to_vec());
        for s in &subtract {
            r = postings::subtract(&r, s);
        }
        r
    }

    fn postings_of(&self, name: &str, value: &str) -> Vec<SeriesId> {
        match (self.syms.get(name), self.syms.get(value)) {
            (Some(n), Some(v)) => self.postings.get(n, v).map_or_else(Vec::new, List::to_vec),
            _ => Vec::new(),
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
        let mut out = Vec::new();
        let mut lists = 0;
        for list in vals
            .iter()
            .filter(|&&v| keep(self.syms.str(v)))
            .filter_map(|&v| self.postings.get(n, v))
        {
            list.extend_into(&mut out);
            lists += 1;
        }
        if lists > 1 {
            out.sort_unstable();
            out.dedup();
        }
        out
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
                .filter_map(|&id| self.pairs(id))
                .flat_map(|pairs| pairs.map(|(n, _)| n))
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
                .filter_map(|&id| self.pairs(id))
                .filter_map(|mut pairs| pairs.find(|&(k, _)| k == n).map(|(_, v)| v))
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

/// The label-set hash of series `id` from its interned labels (for the
/// table's rehashing when it grows; must equal `Index::hash_pairs`).
fn rehash(
    syms: &Symbols,
    series: &HashMap<SeriesId, (u32, u32), RandomState>,
    label_bytes: &Pages,
    id: SeriesId,
) -> u64 {
    let mut h = syms.hasher.build_hasher();
    if let Some(&(start, len)) = series.get(&id) {
        let b = label_bytes.get(start, len).unwrap_or(&[]);
        for (n, v) in (PairIter { b, at: 0 }) {
            h.write(syms.bytes(n));
            h.write_u8(0xff);
            h.write(syms.bytes(v));
            h.write_u8(0xff);
        }
    }
    h.finish()
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A series' labels as `(name, value)` symbol pairs, decoded from varints
/// this index wrote (a malformed one ends the walk rather than panic).
struct PairIter<'a> {
    b: &'a [u8],
    at: usize,
}

impl PairIter<'_> {
    fn uvarint(&mut self) -> Option<u32> {
        let mut v = 0u32;
        for shift in (0..35).step_by(7) {
            let b = *self.b.get(self.at)?;
            self.at += 1;
            v |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

impl Iterator for PairIter<'_> {
    type Item = (u32, u32);

    fn next(&mut self) -> Option<(u32, u32)> {
        Some((self.uvarint()?, self.uvarint()?))
    }
}
