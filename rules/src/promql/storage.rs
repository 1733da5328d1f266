//! The storage seam: [`Queryable`], and [`MemoryStore`] for tests.

use std::collections::BTreeMap;

use crate::Error;
use crate::promql::ast::Matcher;
use crate::promql::labels::Labels;
use crate::promql::value::FPoint;

/// A series returned by [`Queryable::select`].
#[derive(Debug, Clone)]
pub struct StoredSeries {
    /// Labels, including `__name__`.
    pub labels: Labels,
    /// Float samples in time order (staleness markers included).
    pub floats: Vec<FPoint>,
}

/// What the evaluator needs from a store.
pub trait Queryable {
    /// Every series matching all `matchers`, with its samples whose
    /// timestamps lie in `[mint, maxt]` (milliseconds, inclusive). Series with
    /// no sample in the range may be left out. Matchers compare against `""`
    /// for an absent label.
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<StoredSeries>, Error>;

    /// All label names, sorted.
    fn label_names(&self) -> Result<Vec<String>, Error>;

    /// All values of one label, sorted.
    fn label_values(&self, name: &str) -> Result<Vec<String>, Error>;
}

/// An in-memory store: series in a sorted map, samples in time order.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    series: BTreeMap<Labels, Vec<FPoint>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample. A sample at a timestamp already present replaces it.
    pub fn add_sample(&mut self, labels: &Labels, t: i64, v: f64) {
        let s = self.series.entry(labels.clone()).or_default();
        match s.binary_search_by_key(&t, |p| p.t) {
            Ok(i) => s[i].v = v,
            Err(i) => s.insert(i, FPoint { t, v }),
        }
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.series.clear();
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

impl Queryable for MemoryStore {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<StoredSeries>, Error> {
        let mut out = Vec::new();
        for (labels, pts) in &self.series {
            if !matchers.iter().all(|m| m.matches(labels.get(&m.name))) {
                continue;
            }
            let lo = pts.partition_point(|p| p.t < mint);
            let hi = pts.partition_point(|p| p.t <= maxt);
            if lo < hi {
                out.push(StoredSeries {
                    labels: labels.clone(),
                    floats: pts[lo..hi].to_vec(),
                });
            }
        }
        Ok(out)
    }

    fn label_names(&self) -> Result<Vec<String>, Error> {
        let mut names: Vec<String> = self
            .series
            .keys()
            .flat_map(|l| l.iter().map(|l| l.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(&self, name: &str) -> Result<Vec<String>, Error> {
        let mut vals: Vec<String> = self
            .series
            .keys()
            .map(|l| l.get(name).to_string())
            .filter(|v| !v.is_empty())
            .collect();
        vals.sort();
        vals.dedup();
        Ok(vals)
    }
}
