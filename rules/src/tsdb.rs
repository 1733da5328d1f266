//! [`Queryable`] for vigil-tsdb's store (feature `tsdb`), so PromQL runs
//! over the monitor's storage. Neither crate depends on the other unless
//! this feature is on.

use crate::Error;
use crate::promql::ast::{MatchOp, Matcher};
use crate::promql::labels::Labels;
use crate::promql::storage::{Queryable, StoredSeries};
use crate::promql::value::FPoint;

fn storage(e: vigil_tsdb::Error) -> Error {
    Error::Storage(e.to_string())
}

fn matchers(ms: &[Matcher]) -> Result<Vec<vigil_tsdb::index::Matcher>, Error> {
    ms.iter()
        .map(|m| {
            let op = match m.op {
                MatchOp::Equal => vigil_tsdb::index::MatchOp::Equal,
                MatchOp::NotEqual => vigil_tsdb::index::MatchOp::NotEqual,
                MatchOp::Regex => vigil_tsdb::index::MatchOp::Regex,
                MatchOp::NotRegex => vigil_tsdb::index::MatchOp::NotRegex,
            };
            vigil_tsdb::index::Matcher::new(m.name.clone(), op, m.value.clone()).map_err(storage)
        })
        .collect()
}

/// Series from the blocks and the head, merged by the store. Each series'
/// chunks are decoded straight into the evaluator's points (the store's
/// lazy [`select_series`](vigil_tsdb::db::Db::select_series)), so no
/// intermediate vector of samples is built per series.
impl Queryable for vigil_tsdb::db::Db {
    fn select(&self, ms: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<StoredSeries>, Error> {
        let got =
            vigil_tsdb::db::Db::select_series(self, &matchers(ms)?, mint, maxt).map_err(storage)?;
        let mut out = Vec::with_capacity(got.len());
        for s in got {
            let floats = s
                .samples()
                .map(|r| r.map(|(t, v)| FPoint { t, v }))
                .collect::<Result<Vec<_>, _>>()
                .map_err(storage)?;
            // A chunk can overlap the range without a sample in it.
            if floats.is_empty() {
                continue;
            }
            let pairs: Vec<(&str, &str)> = s.labels.iter().collect();
            out.push(StoredSeries {
                labels: Labels::from_pairs(&pairs),
                floats,
            });
        }
        Ok(out)
    }

    /// Label names in the head and every block.
    fn label_names(&self) -> Result<Vec<String>, Error> {
        Ok(vigil_tsdb::db::Db::label_names(self, &[]))
    }

    /// Values of `name` in the head and every block.
    fn label_values(&self, name: &str) -> Result<Vec<String>, Error> {
        Ok(vigil_tsdb::db::Db::label_values(self, name, &[]))
    }
}
