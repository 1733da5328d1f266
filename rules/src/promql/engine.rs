//! The evaluator.
//!
//! Design note: a range query is evaluated as an instant evaluation at every
//! step, and a subquery as instant evaluations at its own aligned steps.
//! This is the simplest shape that gives Prometheus's answers: every node
//! sees exactly what Prometheus's `rangeEval` hands it at that step. Series
//! are selected once per selector and query (cached by node address), so a
//! step costs only binary searches into the selected samples.
//!
//! `__name__` removal is delayed as in Prometheus 3.x: operations that would
//! drop the name set `drop_name` on their output, and the name goes only when
//! the query finishes (then duplicate label sets are an error).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use crate::Error;
use crate::promql::ast::*;
use crate::promql::functions::Function;
use crate::promql::labels::{Labels, NAME, go_quote};
use crate::promql::parser::parse;
use crate::promql::storage::{Queryable, StoredSeries};
use crate::promql::value::{FPoint, Sample, Series, Value, is_stale_nan};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (Prometheus: 5m).
    pub lookback_delta_ms: i64,
    /// The step of a subquery written without one (`[5m:]`).
    pub default_subquery_step_ms: i64,
    /// The most instant evaluations one query may make (range-query steps
    /// times subquery steps), so that `x[1000y:1ms]` fails instead of
    /// running for ever. Prometheus bounds the same work by its sample limit.
    pub max_steps: u64,
    /// The most samples a query may hold at once: every sample its
    /// selectors loaded plus the points of the range-query or subquery
    /// results being built (Prometheus's `--query.max-samples`, default
    /// 50,000,000). Past it the query fails with Prometheus's "query
    /// processing would load too many samples into memory in query
    /// execution".
    pub max_samples: u64,
    /// How long one query may run (Prometheus's `--query.timeout`), from
    /// the call that starts it; `None` for no limit. The deadline is
    /// checked after every selection and between evaluation steps (of range
    /// queries and subqueries), so one step that is slow on its own is not
    /// interrupted. Past it the query fails with "query timed out in
    /// expression evaluation".
    pub timeout: Option<std::time::Duration>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 5 * 60_000,
            default_subquery_step_ms: 60_000,
            max_steps: 50_000_000,
            max_samples: 50_000_000,
            timeout: None,
        }
    }
}

/// Evaluates PromQL queries.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

/// A query's value and the annotations (warnings and infos) it produced,
/// formatted as Prometheus formats them (`PromQL warning: ... (1:5)`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The result.
    pub value: Value,
    /// Warning annotations.
    pub warnings: Vec<String>,
    /// Info annotations.
    pub infos: Vec<String>,
}

impl Engine {
    /// An engine with Prometheus's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine with the given settings.
    pub fn with_options(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// Parses and evaluates `query` at `t` (milliseconds).
    pub fn instant_query(
        &self,
        q: &dyn Queryable,
        query: &str,
        t: i64,
    ) -> Result<QueryResult, Error> {
        let expr = parse(query)?;
        self.instant_query_expr(q, query, &expr, t)
    }

    /// Evaluates a parsed expression at `t`. `text` is the query text the
    /// expression was parsed from (used for annotation positions).
    pub fn instant_query_expr(
        &self,
        q: &dyn Queryable,
        text: &str,
        expr: &Expr,
        t: i64,
    ) -> Result<QueryResult, Error> {
        let resolved = resolve_durations(expr, 0, 0)?;
        let expr = resolved.as_ref().unwrap_or(expr);
        let mut ev = Evaluator::new(self, q, text, t, t, 0);
        ev.bounds = selector_bounds(expr, t, t, self.opts.lookback_delta_ms);
        ev.check_deadline()?;
        let v = ev.eval(expr, t)?;
        let value = match v {
            Val::Scalar(v) => Value::Scalar { t, v },
            Val::Str(s) => Value::String { t, s },
            Val::Vector(mut vec) => {
                for s in &mut vec {
                    s.t = t;
                    if s.drop_name {
                        drop_metric_labels(&mut s.labels);
                        s.drop_name = false;
                    }
                }
                let mut seen = HashSet::new();
                for s in &vec {
                    if !seen.insert(&s.labels) {
                        return Err(dup_labelset());
                    }
                }
                Value::Vector(vec)
            }
            Val::Matrix(mut m) => {
                m.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(m)
            }
        };
        Ok(ev.into_result(value))
    }

    /// Parses and evaluates `query` at every step from `start` to `end`
    /// (inclusive, milliseconds). The result is a matrix sorted by labels.
    pub fn range_query(
        &self,
        q: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, Error> {
        let expr = parse(query)?;
        self.range_query_expr(q, query, &expr, start, end, step)
    }

    /// Evaluates a parsed expression as a range query.
    pub fn range_query_expr(
        &self,
        q: &dyn Queryable,
        text: &str,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, Error> {
        let ty = expr.value_type();
        if ty != ValueType::Scalar && ty != ValueType::Vector {
            return Err(Error::Eval(format!(
                "invalid expression type \"{ty}\" for range query, must be Scalar or instant Vector"
            )));
        }
        if step <= 0 {
            return Err(Error::Eval(
                "zero or negative query resolution step widths are not accepted".into(),
            ));
        }
        if end < start {
            return Err(Error::Eval(
                "end timestamp must not be before start time".into(),
            ));
        }
        let resolved = resolve_durations(expr, step, end - start)?;
        let expr = resolved.as_ref().unwrap_or(expr);
        let mut ev = Evaluator::new(self, q, text, start, end, step);
        ev.bounds = selector_bounds(expr, start, end, self.opts.lookback_delta_ms);
        ev.spend(((end - start) / step).saturating_add(1))?;
        let mut out = SeriesSet::default();
        let mut t = start;
        while t <= end {
            ev.check_deadline()?;
            match ev.eval(expr, t)? {
                Val::Scalar(v) => {
                    ev.build(1)?;
                    out.push(Labels::new(), false, t, v)?
                }
                Val::Vector(vec) => {
                    ev.build(vec.len() as u64)?;
                    for s in vec {
                        out.push(s.labels, s.drop_name, t, s.value)?;
                    }
                }
                _ => unreachable!("type checked above"),
            }
            t = match t.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
        // Delayed name removal: drop names, merge series that now coincide
        // unless they have points at the same step.
        let mut merged: BTreeMap<Labels, Series> = BTreeMap::new();
        for mut s in out.series {
            if s.drop_name {
                drop_metric_labels(&mut s.labels);
                s.drop_name = false;
            }
            match merged.get_mut(&s.labels) {
                Some(m) => {
                    m.floats.extend(s.floats);
                    m.floats.sort_by_key(|p| p.t);
                    if m.floats.windows(2).any(|w| w[0].t == w[1].t) {
                        return Err(dup_labelset());
                    }
                }
                None => {
                    merged.insert(s.labels.clone(), s);
                }
            }
        }
        let value = Value::Matrix(merged.into_values().collect());
        Ok(ev.into_result(value))
    }
}

/// A copy of `expr` with every query-dependent duration expression
/// (`step()`, `range()`) turned into milliseconds, or `None` when there is
/// none. `step` and `range` are the query's, in milliseconds.
fn resolve_durations(expr: &Expr, step: i64, range: i64) -> Result<Option<Expr>, Error> {
    let mut any = false;
    expr.walk(&mut |n| {
        any |= match &n.kind {
            ExprKind::VectorSelector(vs) => vs.offset_expr.is_some(),
            ExprKind::MatrixSelector {
                selector,
                range_expr,
                ..
            } => selector.offset_expr.is_some() || range_expr.is_some(),
            ExprKind::Subquery { duration_exprs, .. } => duration_exprs.is_some(),
            _ => false,
        }
    });
    if !any {
        return Ok(None);
    }
    let (st, rg) = (step as f64 / 1000.0, range as f64 / 1000.0);
    let ms = |d: &DurationExpr| -> Result<i64, Error> {
        let v = d.seconds(st, rg) * 1000.0;
        if !v.is_finite() || v.abs() > 9.2e18 {
            return Err(Error::Eval("duration expression is out of range".into()));
        }
        Ok(v.round() as i64)
    };
    fn fix(e: &mut Expr, ms: &dyn Fn(&DurationExpr) -> Result<i64, Error>) -> Result<(), Error> {
        let positive = |v: i64| -> Result<i64, Error> {
            if v <= 0 {
                return Err(Error::Eval(format!(
                    "duration must be greater than 0, got {}ms",
                    v
                )));
            }
            Ok(v)
        };
        match &mut e.kind {
            ExprKind::VectorSelector(vs) => {
                if let Some(d) = vs.offset_expr.take() {
                    vs.offset = ms(&d)?;
                }
            }
            ExprKind::MatrixSelector {
                selector,
                range,
                range_expr,
            } => {
                if let Some(d) = selector.offset_expr.take() {
                    selector.offset = ms(&d)?;
                }
                if let Some(d) = range_expr.take() {
                    *range = positive(ms(&d)?)?;
                }
            }
            ExprKind::Subquery {
                expr,
                range,
                step,
                offset,
                duration_exprs,
                ..
            } => {
                if let Some(d) = duration_exprs.take() {
                    if let Some(r) = &d.range {
                        *range = positive(ms(r)?)?;
                    }
                    if let Some(s) = &d.step {
                        *step = Some(positive(ms(s)?)?);
                    }
                    if let Some(o) = &d.offset {
                        *offset = ms(o)?;
                    }
                }
                fix(expr, ms)?;
            }
            ExprKind::Paren(x) | ExprKind::Unary { expr: x, .. } => fix(x, ms)?,
            ExprKind::Binary { lhs, rhs, .. } => {
                fix(lhs, ms)?;
                fix(rhs, ms)?;
            }
            ExprKind::Aggregate { expr, param, .. } => {
                fix(expr, ms)?;
                if let Some(p) = param {
                    fix(p, ms)?;
                }
            }
            ExprKind::Call { args, .. } => {
                for a in args {
                    fix(a, ms)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    let mut e = expr.clone();
    fix(&mut e, &ms)?;
    Ok(Some(e))
}

/// For every selector in `expr` (by address), the time range its samples
/// can come from in a query from `start` to `end`: the query's range, moved
/// by enclosing subqueries' ranges and offsets (or fixed by their `@`), by
/// the selector's own `@` and offset, and widened by its range or the
/// lookback (anchored and smoothed selectors read a lookback more).
fn selector_bounds(expr: &Expr, start: i64, end: i64, lookback: i64) -> HashMap<usize, (i64, i64)> {
    struct Ctx {
        start: i64,
        end: i64,
        lookback: i64,
        out: HashMap<usize, (i64, i64)>,
    }
    fn at_ms(a: Option<AtModifier>, c: &Ctx) -> Option<i64> {
        a.map(|a| match a {
            AtModifier::Timestamp(t) => t,
            AtModifier::Start => c.start,
            AtModifier::End => c.end,
        })
    }
    fn sel(c: &mut Ctx, vs: &VectorSelector, range: i64, win: (i64, i64)) {
        let (mut lo, mut hi) = match at_ms(vs.at, c) {
            Some(a) => (a, a),
            None => win,
        };
        let back = if range > 0 {
            range.saturating_add(if vs.anchored || vs.smoothed {
                c.lookback
            } else {
                0
            })
        } else {
            c.lookback
        };
        lo = lo.saturating_sub(back).saturating_sub(vs.offset);
        hi = hi.saturating_sub(vs.offset);
        if vs.smoothed {
            hi = hi.saturating_add(c.lookback);
        }
        c.out.insert(vs as *const VectorSelector as usize, (lo, hi));
    }
    fn walk(c: &mut Ctx, e: &Expr, win: (i64, i64)) {
        match &e.kind {
            ExprKind::VectorSelector(vs) => sel(c, vs, 0, win),
            ExprKind::MatrixSelector {
                selector, range, ..
            } => sel(c, selector, *range, win),
            ExprKind::Subquery {
                expr,
                range,
                offset,
                at,
                ..
            } => {
                let (lo, hi) = match at_ms(*at, c) {
                    Some(a) => (a, a),
                    None => win,
                };
                let inner = (
                    lo.saturating_sub(*range).saturating_sub(*offset),
                    hi.saturating_sub(*offset),
                );
                walk(c, expr, inner);
            }
            ExprKind::Paren(x) | ExprKind::Unary { expr: x, .. } => walk(c, x, win),
            ExprKind::Binary { lhs, rhs, .. } => {
                walk(c, lhs, win);
                walk(c, rhs, win);
            }
            ExprKind::Aggregate { expr, param, .. } => {
                walk(c, expr, win);
                if let Some(p) = param {
                    walk(c, p, win);
                }
            }
            ExprKind::Call { args, .. } => {
                for a in args {
                    walk(c, a, win);
                }
            }
            _ => {}
        }
    }
    let mut c = Ctx {
        start,
        end,
        lookback,
        out: HashMap::new(),
    };
    walk(&mut c, expr, (start, end));
    c.out
}

/// Series assembled from per-step vectors. Label sets are found by the
/// address of their shared storage first (the same set comes back at
/// every step), by value otherwise.
#[derive(Default)]
struct SeriesSet {
    series: Vec<Series>,
    by_ptr: HashMap<usize, usize>,
    by_labels: HashMap<Labels, usize>,
    /// Label sets whose addresses are in `by_ptr` but not stored in
    /// `series`, kept alive so that their addresses are not reused.
    keep: Vec<Labels>,
}

impl SeriesSet {
    /// Adds a point; a second point for one label set at one time means the
    /// vector had the same labels twice.
    fn push(&mut self, l: Labels, drop: bool, t: i64, v: f64) -> Result<(), Error> {
        let i = match self.by_ptr.get(&l.ptr_key()) {
            Some(i) => *i,
            None => {
                let i = match self.by_labels.get(&l) {
                    Some(i) => {
                        self.keep.push(l.clone());
                        *i
                    }
                    None => {
                        self.series.push(Series {
                            labels: l.clone(),
                            floats: Vec::new(),
                            drop_name: drop,
                        });
                        self.by_labels.insert(l.clone(), self.series.len() - 1);
                        self.series.len() - 1
                    }
                };
                self.by_ptr.insert(l.ptr_key(), i);
                i
            }
        };
        let s = &mut self.series[i];
        if s.floats.last().is_some_and(|p| p.t == t) {
            return Err(dup_labelset());
        }
        s.drop_name |= drop;
        s.floats.push(FPoint { t, v });
        Ok(())
    }

    fn into_sorted(mut self) -> Vec<Series> {
        self.series.sort_by(|a, b| a.labels.cmp(&b.labels));
        self.series
    }
}

fn too_many_samples() -> Error {
    Error::Eval(
        "query processing would load too many samples into memory in query execution".into(),
    )
}

fn dup_labelset() -> Error {
    Error::Eval("vector cannot contain metrics with the same labelset".into())
}

/// Drops `__name__` and the metadata labels that go with it.
fn drop_metric_labels(l: &mut Labels) {
    l.remove(NAME);
    l.remove("__type__");
    l.remove("__unit__");
}

/// An intermediate value at one step.
#[derive(Debug, Clone)]
enum Val {
    Scalar(f64),
    Str(String),
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
}

struct Evaluator<'a> {
    opts: &'a EngineOptions,
    q: &'a dyn Queryable,
    text: &'a str,
    start: i64,
    end: i64,
    interval: i64,
    cache: RefCell<HashMap<usize, Rc<Vec<StoredSeries>>>>,
    /// Label sets already checked for the "might not be a counter" info,
    /// by address (each kept alive here, so an address is not reused).
    checked: RefCell<HashMap<usize, Labels>>,
    /// Per aggregation node, the group of each input label set seen.
    groups: RefCell<HashMap<usize, GroupCache>>,
    /// Per selector (by address), the time range its samples can come from.
    bounds: HashMap<usize, (i64, i64)>,
    /// Per range selector, each series' last window `(start, end)` index.
    hints: RefCell<HashMap<usize, Vec<(usize, usize)>>>,
    steps: std::cell::Cell<u64>,
    /// Samples loaded by selections (kept for the whole query) and points
    /// of results being built, for [`EngineOptions::max_samples`].
    loaded: std::cell::Cell<u64>,
    building: std::cell::Cell<u64>,
    deadline: Option<std::time::Instant>,
    warnings: RefCell<Vec<String>>,
    infos: RefCell<Vec<String>>,
}

fn sample(labels: Labels, value: f64, drop_name: bool) -> Sample {
    Sample {
        labels,
        t: 0,
        value,
        drop_name,
    }
}

fn unparen(mut e: &Expr) -> &Expr {
    while let ExprKind::Paren(inner) = &e.kind {
        e = inner;
    }
    e
}

/// Neumaier-compensated summation step, as Prometheus's `kahanSumInc`.
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Prometheus's `quantile`: linear interpolation between closest ranks,
/// NaN sorting first.
fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let w = rank - rank.floor();
    values[lower as usize] * (1.0 - w) + values[upper as usize] * w
}

/// Formats a float as Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub(crate) fn format_go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
}

impl<'a> Evaluator<'a> {
    fn new(
        engine: &'a Engine,
        q: &'a dyn Queryable,
        text: &'a str,
        start: i64,
        end: i64,
        interval: i64,
    ) -> Self {
        Evaluator {
            opts: &engine.opts,
            q,
            text,
            start,
            end,
            interval,
            cache: RefCell::new(HashMap::new()),
            hints: RefCell::new(HashMap::new()),
            bounds: HashMap::new(),
            groups: RefCell::new(HashMap::new()),
            checked: RefCell::new(HashMap::new()),
            steps: std::cell::Cell::new(0),
            loaded: std::cell::Cell::new(0),
            building: std::cell::Cell::new(0),
            deadline: engine
                .opts
                .timeout
                .and_then(|d| std::time::Instant::now().checked_add(d)),
            warnings: RefCell::new(Vec::new()),
            infos: RefCell::new(Vec::new()),
        }
    }

    fn into_result(self, value: Value) -> QueryResult {
        let mut warnings = self.warnings.into_inner();
        let mut infos = self.infos.into_inner();
        warnings.dedup();
        infos.dedup();
        dedup_all(&mut warnings);
        dedup_all(&mut infos);
        QueryResult {
            value,
            warnings,
            infos,
        }
    }

    /// Fails once the query's deadline has passed.
    fn check_deadline(&self) -> Result<(), Error> {
        match self.deadline {
            Some(d) if std::time::Instant::now() >= d => Err(Error::Eval(
                "query timed out in expression evaluation".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Fails when the samples held (loaded plus being built) pass the limit.
    fn check_samples(&self) -> Result<(), Error> {
        if self.loaded.get().saturating_add(self.building.get()) > self.opts.max_samples {
            return Err(too_many_samples());
        }
        Ok(())
    }

    /// Counts `n` more points of a result being built.
    fn build(&self, n: u64) -> Result<(), Error> {
        self.building.set(self.building.get().saturating_add(n));
        self.check_samples()
    }

    /// Counts `n` more instant evaluations against the query's budget.
    fn spend(&self, n: i64) -> Result<(), Error> {
        self.check_deadline()?;
        let total = self.steps.get().saturating_add(n.max(0) as u64);
        self.steps.set(total);
        if total > self.opts.max_steps {
            return Err(too_many_samples());
        }
        Ok(())
    }

    fn pos(&self, span: Span) -> String {
        let before = self.text.get(..span.start).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let ls = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[ls..].chars().count() + 1;
        format!("({line}:{col})")
    }

    fn warn(&self, msg: String, span: Span) {
        let m = format!("PromQL warning: {msg} {}", self.pos(span));
        self.warnings.borrow_mut().push(m);
    }

    fn info(&self, msg: String, span: Span) {
        let m = format!("PromQL info: {msg} {}", self.pos(span));
        self.infos.borrow_mut().push(m);
    }

    fn resolve_at(&self, at: Option<AtModifier>) -> Option<i64> {
        at.map(|a| match a {
            AtModifier::Timestamp(t) => t,
            AtModifier::Start => self.start,
            AtModifier::End => self.end,
        })
    }

    fn series(&self, vs: &VectorSelector) -> Result<Rc<Vec<StoredSeries>>, Error> {
        let key = vs as *const VectorSelector as usize;
        if let Some(s) = self.cache.borrow().get(&key) {
            return Ok(Rc::clone(s));
        }
        let (mint, maxt) = self
            .bounds
            .get(&key)
            .copied()
            .unwrap_or((i64::MIN, i64::MAX));
        let s = Rc::new(self.q.select(&vs.matchers, mint, maxt)?);
        let n: usize = s.iter().map(|x| x.floats.len()).sum();
        self.loaded.set(self.loaded.get().saturating_add(n as u64));
        self.check_samples()?;
        self.check_deadline()?;
        self.cache.borrow_mut().insert(key, Rc::clone(&s));
        Ok(s)
    }

    /// The instant vector of `vs` at `ts`. With `sample_time` the samples
    /// carry their own timestamps (for `timestamp()`), else `ts`.
    fn select_instant(
        &self,
        vs: &VectorSelector,
        ts: i64,
        sample_time: bool,
    ) -> Result<Vec<Sample>, Error> {
        let reft = self
            .resolve_at(vs.at)
            .unwrap_or(ts)
            .saturating_sub(vs.offset);
        let mut out = Vec::new();
        if vs.smoothed {
            // Interpolate between the samples around the reference time,
            // within a lookback on either side.
            let lb = self.opts.lookback_delta_ms;
            for s in self.series(vs)?.iter() {
                let a = s.floats.partition_point(|p| p.t <= reft.saturating_sub(lb));
                let b = s.floats.partition_point(|p| p.t <= reft.saturating_add(lb));
                let w: Vec<FPoint> = s.floats[a..b]
                    .iter()
                    .filter(|p| !is_stale_nan(p.v))
                    .copied()
                    .collect();
                let i = w.partition_point(|p| p.t < reft);
                let v = if i < w.len() && w[i].t == reft {
                    w[i].v
                } else if i > 0 && i < w.len() {
                    interpolate(w[i - 1], w[i], reft, false)
                } else if i > 0 {
                    w[i - 1].v
                } else {
                    continue;
                };
                out.push(Sample {
                    labels: s.labels.clone(),
                    t: ts,
                    value: v,
                    drop_name: false,
                });
            }
            return Ok(out);
        }
        let all = self.series(vs)?;
        let key = vs as *const VectorSelector as usize;
        let mut hints = self.hints.borrow_mut();
        let hint = hints.entry(key).or_insert_with(|| vec![(0, 0); all.len()]);
        for (si, s) in all.iter().enumerate() {
            let i = seek(&s.floats, hint[si].0, reft);
            hint[si].0 = i;
            if i == 0 {
                continue;
            }
            let p = s.floats[i - 1];
            if p.t <= reft.saturating_sub(self.opts.lookback_delta_ms) || is_stale_nan(p.v) {
                continue;
            }
            out.push(Sample {
                labels: s.labels.clone(),
                t: if sample_time { p.t } else { ts },
                value: p.v,
                drop_name: false,
            });
        }
        Ok(out)
    }

    /// A range-vector argument at `ts`: its series, the window's end and its
    /// length (for the extrapolating functions).
    fn eval_range(&self, e: &Expr, ts: i64) -> Result<(Vec<Window>, i64, i64, Extend), Error> {
        let e = unparen(e);
        match &e.kind {
            ExprKind::MatrixSelector {
                selector, range, ..
            } => {
                let reft = self
                    .resolve_at(selector.at)
                    .unwrap_or(ts)
                    .saturating_sub(selector.offset);
                let lo = reft.saturating_sub(*range);
                let lb = self.opts.lookback_delta_ms;
                let mode = if selector.anchored {
                    Extend::Anchored
                } else if selector.smoothed {
                    Extend::Smoothed
                } else {
                    Extend::None
                };
                // Anchored and smoothed selectors also read a lookback
                // before the window (smoothed: and after it).
                let fetch_lo = if mode == Extend::None {
                    lo
                } else {
                    lo.saturating_sub(lb)
                };
                let fetch_hi = if mode == Extend::Smoothed {
                    reft.saturating_add(lb)
                } else {
                    reft
                };
                let mut out = Vec::new();
                let all = self.series(selector)?;
                // Steps move forward, so each series' window usually starts
                // where the last one did: resume from there (sequential
                // memory access) instead of binary-searching every series.
                let key = selector as *const VectorSelector as usize;
                let mut hints = self.hints.borrow_mut();
                let hint = hints.entry(key).or_insert_with(|| vec![(0, 0); all.len()]);
                for (si, s) in all.iter().enumerate() {
                    let (ha, hb) = hint[si];
                    let a = seek(&s.floats, ha, fetch_lo);
                    let b = seek(&s.floats, hb.max(a), fetch_hi);
                    hint[si] = (a, b);
                    let w = &s.floats[a..b];
                    let pts = if w.iter().any(|p| is_stale_nan(p.v)) {
                        let owned: Vec<FPoint> =
                            w.iter().filter(|p| !is_stale_nan(p.v)).copied().collect();
                        WindowPts::Owned(owned)
                    } else {
                        WindowPts::Stored {
                            src: Rc::clone(&all),
                            idx: si,
                            a,
                            b,
                        }
                    };
                    let win = Window {
                        labels: s.labels.clone(),
                        drop_name: false,
                        pts,
                    };
                    if !win.pts().is_empty() {
                        out.push(win);
                    }
                }
                Ok((out, reft, *range, mode))
            }
            ExprKind::Subquery {
                expr,
                range,
                step,
                offset,
                at,
                ..
            } => {
                let reft = self.resolve_at(*at).unwrap_or(ts).saturating_sub(*offset);
                let step = step.unwrap_or(self.opts.default_subquery_step_ms);
                let lo = reft.saturating_sub(*range);
                let mut t = lo
                    .div_euclid(step)
                    .saturating_mul(step)
                    .saturating_add(step);
                self.spend((reft.saturating_sub(t) / step).saturating_add(1))?;
                let mut out = SeriesSet::default();
                // The subquery's points count against the sample limit
                // while it is built and used, then are let go.
                let held = self.building.get();
                let res = (|| {
                    while t <= reft {
                        self.check_deadline()?;
                        match self.eval(expr, t)? {
                            Val::Vector(v) => {
                                self.build(v.len() as u64)?;
                                for s in v {
                                    if is_stale_nan(s.value) {
                                        continue;
                                    }
                                    out.push(s.labels, s.drop_name, t, s.value)?;
                                }
                            }
                            Val::Scalar(v) => {
                                self.build(1)?;
                                out.push(Labels::new(), false, t, v)?
                            }
                            _ => return Err(Error::Eval("subquery of a non-vector".into())),
                        }
                        t = match t.checked_add(step) {
                            Some(n) => n,
                            None => break,
                        };
                    }
                    Ok(())
                })();
                self.building.set(held);
                res?;
                let out = out
                    .into_sorted()
                    .into_iter()
                    .map(|s| Window {
                        labels: s.labels,
                        drop_name: s.drop_name,
                        pts: WindowPts::Owned(s.floats),
                    })
                    .collect();
                Ok((out, reft, *range, Extend::None))
            }
            _ => Err(Error::Eval(format!(
                "expected a range vector, got {}",
                e.value_type()
            ))),
        }
    }

    fn eval_scalar(&self, e: &Expr, ts: i64) -> Result<f64, Error> {
        match self.eval(e, ts)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(Error::Eval("expected a scalar".into())),
        }
    }

    fn eval_vector(&self, e: &Expr, ts: i64) -> Result<Vec<Sample>, Error> {
        match self.eval(e, ts)? {
            Val::Vector(v) => Ok(v),
            _ => Err(Error::Eval("expected an instant vector".into())),
        }
    }

    fn eval_string(&self, e: &Expr) -> Result<(String, Option<Vec<u8>>), Error> {
        match &unparen(e).kind {
            ExprKind::String { value, bytes } => Ok((value.clone(), bytes.clone())),
            _ => Err(Error::Eval("expected a string literal".into())),
        }
    }

    fn eval(&self, e: &Expr, ts: i64) -> Result<Val, Error> {
        match &e.kind {
            ExprKind::Number(v) => Ok(Val::Scalar(*v)),
            ExprKind::String { value, .. } => Ok(Val::Str(value.clone())),
            ExprKind::Paren(inner) => self.eval(inner, ts),
            ExprKind::VectorSelector(vs) => Ok(Val::Vector(self.select_instant(vs, ts, false)?)),
            ExprKind::MatrixSelector { .. } | ExprKind::Subquery { .. } => {
                let (wins, end, range, mode) = self.eval_range(e, ts)?;
                let start = end.saturating_sub(range);
                let mut m: Vec<Series> = wins
                    .iter()
                    .map(|w| Series {
                        labels: w.labels.clone(),
                        floats: if mode == Extend::None {
                            w.pts().to_vec()
                        } else {
                            extend_floats(w.pts(), start, end, mode == Extend::Smoothed)
                        },
                        drop_name: w.drop_name,
                    })
                    .collect();
                m.retain(|s| !s.floats.is_empty());
                Ok(Val::Matrix(m))
            }
            ExprKind::Unary { negate, expr } => {
                let v = self.eval(expr, ts)?;
                if !negate {
                    return Ok(v);
                }
                Ok(match v {
                    Val::Scalar(v) => Val::Scalar(-v),
                    Val::Vector(mut vec) => {
                        for s in &mut vec {
                            s.value = -s.value;
                            s.drop_name = true;
                        }
                        Val::Vector(vec)
                    }
                    other => other,
                })
            }
            ExprKind::Binary {
                op,
                lhs,
                rhs,
                return_bool,
                matching,
            } => self.binary(*op, lhs, rhs, *return_bool, matching.as_ref(), ts, e.span),
            ExprKind::Aggregate {
                op,
                expr,
                param,
                grouping,
                without,
            } => {
                let node = e as *const Expr as usize;
                self.aggregate(node, *op, expr, param.as_deref(), grouping, *without, ts)
            }
            ExprKind::Call { func, args } => self.call(func, args, ts, e.span),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn binary(
        &self,
        op: BinaryOp,
        lhs: &Expr,
        rhs: &Expr,
        return_bool: bool,
        matching: Option<&VectorMatching>,
        ts: i64,
        _span: Span,
    ) -> Result<Val, Error> {
        let l = self.eval(lhs, ts)?;
        let r = self.eval(rhs, ts)?;
        match (l, r) {
            (Val::Scalar(a), Val::Scalar(b)) => {
                let (v, keep) = scalar_op(op, a, b);
                Ok(Val::Scalar(if op.is_comparison() {
                    if keep { 1.0 } else { 0.0 }
                } else {
                    v
                }))
            }
            (Val::Vector(v), Val::Scalar(s)) => {
                Ok(Val::Vector(vector_scalar(op, v, s, false, return_bool)))
            }
            (Val::Scalar(s), Val::Vector(v)) => {
                Ok(Val::Vector(vector_scalar(op, v, s, true, return_bool)))
            }
            (Val::Vector(a), Val::Vector(b)) => {
                let m = matching.cloned().unwrap_or(VectorMatching {
                    card: if op.is_set() {
                        Cardinality::ManyToMany
                    } else {
                        Cardinality::OneToOne
                    },
                    on: false,
                    labels: Vec::new(),
                    include: Vec::new(),
                    fill_left: None,
                    fill_right: None,
                });
                Ok(Val::Vector(match op {
                    BinaryOp::And => set_and(a, b, &m),
                    BinaryOp::Or => set_or(a, b, &m),
                    BinaryOp::Unless => set_unless(a, b, &m),
                    _ => vector_binop(op, a, b, &m, return_bool)?,
                }))
            }
            _ => Err(Error::Eval(
                "binary expression must contain only scalar and instant vector types".into(),
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn aggregate(
        &self,
        node: usize,
        op: AggregateOp,
        expr: &Expr,
        param: Option<&Expr>,
        grouping: &[String],
        without: bool,
        ts: i64,
    ) -> Result<Val, Error> {
        let mut p = None;
        let mut label = None;
        if let Some(pe) = param {
            if op == AggregateOp::CountValues {
                let (s, bytes) = self.eval_string(pe)?;
                if let Some(b) = bytes {
                    return Err(Error::Eval(format!("invalid label name {}", go_quote(&b))));
                }
                if !valid_label_name(&s) {
                    return Err(Error::Eval(format!(
                        "invalid label name {}",
                        go_quote(s.as_bytes())
                    )));
                }
                label = Some(s);
            } else {
                p = Some(self.eval_scalar(pe, ts)?);
            }
        }
        let input = self.eval_vector(expr, ts)?;
        let group_key = |l: &Labels| -> Labels {
            if without {
                let mut g = l.filtered(grouping, false);
                g.remove(NAME);
                g
            } else {
                l.filtered(grouping, true)
            }
        };
        match op {
            AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk => {
                let k = p.unwrap_or(f64::NAN);
                if k.is_nan() {
                    return Err(Error::Eval("Parameter value is NaN".into()));
                }
                if k < 1.0 {
                    return Ok(Val::Vector(Vec::new()));
                }
                if k >= 9.223372036854775e18 {
                    return Err(Error::Eval(format!(
                        "Scalar value {} overflows int64",
                        format_go_float(k)
                    )));
                }
                let k = (k as i64).max(0) as usize;
                let mut groups: Vec<(Labels, Vec<Sample>)> = Vec::new();
                let mut idx: HashMap<Labels, usize> = HashMap::new();
                for s in input {
                    let g = group_key(&s.labels);
                    let i = *idx.entry(g.clone()).or_insert_with(|| {
                        groups.push((g, Vec::new()));
                        groups.len() - 1
                    });
                    groups[i].1.push(s);
                }
                let mut out = Vec::new();
                for (_, mut members) in groups {
                    match op {
                        AggregateOp::Limitk => members.truncate(k),
                        _ => {
                            let top = op == AggregateOp::Topk;
                            // Stable sort: equal values keep input order.
                            members.sort_by(|a, b| cmp_for_k(a.value, b.value, top));
                            members.truncate(k);
                        }
                    }
                    out.extend(members);
                }
                Ok(Val::Vector(out))
            }
            AggregateOp::LimitRatio => {
                let r = p.unwrap_or(f64::NAN);
                if r.is_nan() {
                    return Err(Error::Eval("Ratio value is NaN".into()));
                }
                if r == 0.0 {
                    return Ok(Val::Vector(Vec::new()));
                }
                let r = r.clamp(-1.0, 1.0);
                let out = input
                    .into_iter()
                    .filter(|s| {
                        let off = ratio_offset(&s.labels);
                        if r >= 0.0 { off < r } else { off >= 1.0 + r }
                    })
                    .collect();
                Ok(Val::Vector(out))
            }
            AggregateOp::CountValues => {
                let label = label.unwrap_or_default();
                let mut groups: BTreeMap<Labels, f64> = BTreeMap::new();
                for s in input {
                    let mut l = s.labels.clone();
                    l.set(&label, &format_go_float(s.value));
                    let g = if without {
                        let mut g = l.filtered(grouping, false);
                        g.remove(NAME);
                        g
                    } else {
                        let mut gl: Vec<String> = grouping.to_vec();
                        gl.push(label.clone());
                        l.filtered(&gl, true)
                    };
                    *groups.entry(g).or_insert(0.0) += 1.0;
                }
                Ok(Val::Vector(
                    groups
                        .into_iter()
                        .map(|(l, c)| sample(l, c, false))
                        .collect(),
                ))
            }
            _ => {
                struct G {
                    labels: Labels,
                    values: Vec<f64>,
                    drop_name: bool,
                }
                let mut groups: Vec<G> = Vec::new();
                // Group ids are remembered per input label set for the whole
                // query (label sets are shared between steps), so a step
                // costs one pointer lookup per sample.
                let mut cache = self.groups.borrow_mut();
                let cache = cache.entry(node).or_default();
                let mut slot_of_gid: HashMap<usize, usize> = HashMap::new();
                for s in &input {
                    let gid = match cache.by_series.get(&s.labels.ptr_key()) {
                        Some((_, gid)) => *gid,
                        None => {
                            let g = group_key(&s.labels);
                            let gid = match cache.ids.get(&g) {
                                Some(id) => *id,
                                None => {
                                    cache.labels.push(g.clone());
                                    cache.ids.insert(g, cache.labels.len() - 1);
                                    cache.labels.len() - 1
                                }
                            };
                            cache
                                .by_series
                                .insert(s.labels.ptr_key(), (s.labels.clone(), gid));
                            gid
                        }
                    };
                    let i = *slot_of_gid.entry(gid).or_insert_with(|| {
                        groups.push(G {
                            labels: cache.labels[gid].clone(),
                            values: Vec::new(),
                            drop_name: false,
                        });
                        groups.len() - 1
                    });
                    groups[i].values.push(s.value);
                    groups[i].drop_name |= s.drop_name;
                }
                let out = groups
                    .into_iter()
                    .map(|mut g| {
                        let v = aggregate_values(op, &mut g.values, p.unwrap_or(f64::NAN));
                        sample(g.labels, v, g.drop_name)
                    })
                    .collect();
                if op == AggregateOp::Quantile {
                    if let (Some(q), Some(pe)) = (p, param) {
                        if q.is_nan() || !(0.0..=1.0).contains(&q) {
                            self.warn(
                                format!(
                                    "quantile value should be between 0 and 1, got {}",
                                    format_go_float(q)
                                ),
                                pe.span,
                            );
                        }
                    }
                }
                Ok(Val::Vector(out))
            }
        }
    }

    fn call(&self, f: &'static Function, args: &[Expr], ts: i64, span: Span) -> Result<Val, Error> {
        let name = f.name;
        // Scalar-returning functions and those without vector input.
        match name {
            "time" => return Ok(Val::Scalar(ts as f64 / 1000.0)),
            "pi" => return Ok(Val::Scalar(std::f64::consts::PI)),
            "start" => return Ok(Val::Scalar(self.start as f64 / 1000.0)),
            "end" => return Ok(Val::Scalar(self.end as f64 / 1000.0)),
            "range" => return Ok(Val::Scalar((self.end - self.start) as f64 / 1000.0)),
            "step" => return Ok(Val::Scalar(self.interval as f64 / 1000.0)),
            "scalar" => {
                let v = self.eval_vector(&args[0], ts)?;
                return Ok(Val::Scalar(if v.len() == 1 {
                    v[0].value
                } else {
                    f64::NAN
                }));
            }
            "vector" => {
                let v = self.eval_scalar(&args[0], ts)?;
                return Ok(Val::Vector(vec![sample(Labels::new(), v, false)]));
            }
            "timestamp" => {
                let arg = unparen(&args[0]);
                let v = if let ExprKind::VectorSelector(vs) = &arg.kind {
                    self.select_instant(vs, ts, true)?
                } else {
                    self.eval_vector(arg, ts)?
                };
                return Ok(Val::Vector(
                    v.into_iter()
                        .map(|s| {
                            let t = if matches!(arg.kind, ExprKind::VectorSelector(_)) {
                                s.t
                            } else {
                                ts
                            };
                            sample(s.labels, t as f64 / 1000.0, true)
                        })
                        .collect(),
                ));
            }
            "absent" => {
                let v = self.eval_vector(&args[0], ts)?;
                if !v.is_empty() {
                    return Ok(Val::Vector(Vec::new()));
                }
                return Ok(Val::Vector(vec![sample(
                    absent_labels(&args[0]),
                    1.0,
                    false,
                )]));
            }
            "absent_over_time" => {
                let (m, _, _, _) = self.eval_range(&args[0], ts)?;
                if !m.is_empty() {
                    return Ok(Val::Vector(Vec::new()));
                }
                return Ok(Val::Vector(vec![sample(
                    absent_labels(&args[0]),
                    1.0,
                    false,
                )]));
            }
            "label_replace" => return self.label_replace(args, ts),
            "info" => return self.info_function(args, ts),
            "label_join" => return self.label_join(args, ts),
            "sort" | "sort_desc" => {
                if self.start != self.end {
                    self.warn("sort is ineffective for range queries since results are always ordered by labels".into(), span);
                }
                let mut v = self.eval_vector(&args[0], ts)?;
                let desc = name == "sort_desc";
                v.sort_by(|a, b| {
                    use std::cmp::Ordering::*;
                    match (a.value.is_nan(), b.value.is_nan()) {
                        (true, true) => Equal,
                        (true, false) => Greater,
                        (false, true) => Less,
                        _ => {
                            let o = a.value.partial_cmp(&b.value).unwrap_or(Equal);
                            if desc { o.reverse() } else { o }
                        }
                    }
                });
                return Ok(Val::Vector(v));
            }
            "sort_by_label" | "sort_by_label_desc" => {
                if self.start != self.end {
                    self.warn("sort is ineffective for range queries since results are always ordered by labels".into(), span);
                }
                let mut v = self.eval_vector(&args[0], ts)?;
                let mut names = Vec::new();
                for a in &args[1..] {
                    names.push(self.eval_string(a)?.0);
                }
                let desc = name == "sort_by_label_desc";
                v.sort_by(|a, b| {
                    for n in &names {
                        let o = natural_cmp(a.labels.get(n), b.labels.get(n));
                        if o != std::cmp::Ordering::Equal {
                            return if desc { o.reverse() } else { o };
                        }
                    }
                    let o = a.labels.cmp(&b.labels);
                    if desc { o.reverse() } else { o }
                });
                return Ok(Val::Vector(v));
            }
            "histogram_quantile" => return self.histogram_quantile(args, ts),
            "histogram_fraction" => return self.histogram_fraction(args, ts),
            "histogram_quantiles" => return self.histogram_quantiles(args, ts),
            "min_of" | "max_of" => {
                let a = self.eval_scalar(&args[0], ts)?;
                let b = self.eval_scalar(&args[1], ts)?;
                return Ok(Val::Scalar(if name == "min_of" {
                    go_min(a, b)
                } else {
                    go_max(a, b)
                }));
            }
            _ => {}
        }
        if matches!(
            name,
            "days_in_month"
                | "day_of_month"
                | "day_of_week"
                | "day_of_year"
                | "hour"
                | "minute"
                | "month"
                | "year"
        ) {
            let v = if args.is_empty() {
                vec![sample(Labels::new(), ts as f64 / 1000.0, false)]
            } else {
                self.eval_vector(&args[0], ts)?
            };
            return Ok(Val::Vector(
                v.into_iter()
                    .map(|s| {
                        let r = date_part(name, s.value);
                        sample(s.labels, r, true)
                    })
                    .collect(),
            ));
        }
        if f.args.first() == Some(&ValueType::Matrix) || name == "quantile_over_time" {
            return self.range_function(name, args, ts, span);
        }
        // Instant-vector math functions.
        let mut scalars = Vec::new();
        for a in args.iter().skip(1) {
            scalars.push(self.eval_scalar(a, ts)?);
        }
        let v = self.eval_vector(&args[0], ts)?;
        if name == "clamp" && scalars[1] < scalars[0] {
            return Ok(Val::Vector(Vec::new()));
        }
        let out = v
            .into_iter()
            .map(|s| {
                let x = s.value;
                let r = match name {
                    "abs" => x.abs(),
                    "ceil" => x.ceil(),
                    "floor" => x.floor(),
                    "exp" => x.exp(),
                    "sqrt" => x.sqrt(),
                    "ln" => x.ln(),
                    "log2" => x.log2(),
                    "log10" => x.log10(),
                    "sgn" => {
                        if x > 0.0 {
                            1.0
                        } else if x < 0.0 {
                            -1.0
                        } else {
                            x
                        }
                    }
                    "sin" => x.sin(),
                    "cos" => x.cos(),
                    "tan" => x.tan(),
                    "asin" => x.asin(),
                    "acos" => x.acos(),
                    "atan" => x.atan(),
                    "sinh" => x.sinh(),
                    "cosh" => x.cosh(),
                    "tanh" => x.tanh(),
                    "asinh" => x.asinh(),
                    "acosh" => x.acosh(),
                    "atanh" => x.atanh(),
                    "deg" => x * 180.0 / std::f64::consts::PI,
                    "rad" => x * std::f64::consts::PI / 180.0,
                    "round" => {
                        let to = scalars.first().copied().unwrap_or(1.0);
                        let inv = 1.0 / to;
                        (x * inv + 0.5).floor() / inv
                    }
                    "clamp" => go_max(scalars[0], go_min(scalars[1], x)),
                    "clamp_min" => go_max(scalars[0], x),
                    "clamp_max" => go_min(scalars[0], x),
                    _ => f64::NAN,
                };
                sample(s.labels, r, true)
            })
            .collect();
        if f.native_histogram_only {
            // Floats are ignored by the native-histogram functions.
            return Ok(Val::Vector(Vec::new()));
        }
        Ok(Val::Vector(out))
    }

    fn range_function(&self, name: &str, args: &[Expr], ts: i64, span: Span) -> Result<Val, Error> {
        let (marg, others): (&Expr, Vec<&Expr>) = if name == "quantile_over_time" {
            (&args[1], vec![&args[0]])
        } else {
            (&args[0], args[1..].iter().collect())
        };
        let mut scalars = Vec::new();
        for a in others {
            scalars.push(self.eval_scalar(a, ts)?);
        }
        let (series, reft, range, mode) = self.eval_range(marg, ts)?;
        match mode {
            Extend::Anchored
                if !matches!(name, "changes" | "delta" | "increase" | "rate" | "resets") =>
            {
                return Err(Error::Eval(format!(
                    "anchored modifier can only be used with: changes, delta, increase, rate, resets - not with {name}"
                )));
            }
            Extend::Smoothed if !matches!(name, "delta" | "increase" | "rate") => {
                return Err(Error::Eval(format!(
                    "smoothed modifier can only be used with: delta, increase, rate - not with {name}"
                )));
            }
            _ => {}
        }
        let start = reft.saturating_sub(range);
        let keep_name = name == "last_over_time" || name == "first_over_time";
        let mut out = Vec::new();
        if name == "quantile_over_time" {
            let q = scalars[0];
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
                self.warn(
                    format!(
                        "quantile value should be between 0 and 1, got {}",
                        format_go_float(q)
                    ),
                    args[0].span,
                );
            }
        }
        if name == "double_exponential_smoothing" || name == "holt_winters" {
            let (sf, tf) = (scalars[0], scalars[1]);
            if !(sf > 0.0 && sf < 1.0) {
                return Err(Error::Eval(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf}"
                )));
            }
            if !(tf > 0.0 && tf < 1.0) {
                return Err(Error::Eval(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {tf}"
                )));
            }
        }
        for s in series {
            let pts = s.pts();
            if (name == "rate" || name == "increase")
                && !pts.is_empty()
                && self
                    .checked
                    .borrow_mut()
                    .insert(s.labels.ptr_key(), s.labels.clone())
                    .is_none()
            {
                // Checked once per label set and query.
                let mn = s.labels.metric_name();
                if !mn.is_empty()
                    && !mn.ends_with("_total")
                    && !mn.ends_with("_sum")
                    && !mn.ends_with("_count")
                    && !mn.ends_with("_bucket")
                {
                    self.info(
                        format!("metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {}", go_quote(mn.as_bytes())),
                        marg.span,
                    );
                }
            }
            let v = match name {
                "rate" | "increase" | "delta" if mode != Extend::None => extended_rate(
                    pts,
                    start,
                    reft,
                    mode == Extend::Smoothed,
                    name != "delta",
                    name == "rate",
                ),
                "changes" | "resets" if mode == Extend::Anchored => {
                    match first_anchor(pts, start) {
                        None => None,
                        Some(i) => {
                            let w = &pts[i..];
                            Some(if name == "changes" {
                                w.windows(2)
                                    .filter(|w| {
                                        w[0].v != w[1].v && !(w[0].v.is_nan() && w[1].v.is_nan())
                                    })
                                    .count() as f64
                            } else {
                                w.windows(2).filter(|w| w[1].v < w[0].v).count() as f64
                            })
                        }
                    }
                }
                "rate" => extrapolated_rate(pts, start, reft, true, true),
                "increase" => extrapolated_rate(pts, start, reft, true, false),
                "delta" => extrapolated_rate(pts, start, reft, false, false),
                "irate" | "idelta" => instant_value(pts, name == "irate"),
                "avg_over_time" => Some(avg(pts.iter().map(|p| p.v))),
                "sum_over_time" => {
                    let (mut sum, mut c) = (0.0, 0.0);
                    for p in pts {
                        (sum, c) = kahan_inc(p.v, sum, c);
                    }
                    Some(if sum.is_infinite() { sum } else { sum + c })
                }
                "count_over_time" => Some(pts.len() as f64),
                "present_over_time" => Some(1.0),
                "min_over_time" => Some(
                    pts.iter()
                        .skip(1)
                        .fold(pts[0].v, |m, p| if p.v < m || m.is_nan() { p.v } else { m }),
                ),
                "max_over_time" => Some(
                    pts.iter()
                        .skip(1)
                        .fold(pts[0].v, |m, p| if p.v > m || m.is_nan() { p.v } else { m }),
                ),
                "last_over_time" => pts.last().map(|p| p.v),
                "first_over_time" => pts.first().map(|p| p.v),
                "ts_of_last_over_time" => pts.last().map(|p| p.t as f64 / 1000.0),
                "ts_of_first_over_time" => pts.first().map(|p| p.t as f64 / 1000.0),
                "ts_of_max_over_time" | "ts_of_min_over_time" => {
                    let max = name == "ts_of_max_over_time";
                    let mut best = pts[0];
                    for p in &pts[1..] {
                        let better = if max { p.v >= best.v } else { p.v <= best.v };
                        if better || best.v.is_nan() {
                            best = *p;
                        }
                    }
                    Some(best.t as f64 / 1000.0)
                }
                "stddev_over_time" | "stdvar_over_time" => {
                    let (mut count, mut mean, mut cm, mut aux, mut ca) = (0.0, 0.0, 0.0, 0.0, 0.0);
                    for p in pts {
                        count += 1.0;
                        let delta = p.v - (mean + cm);
                        (mean, cm) = kahan_inc(delta / count, mean, cm);
                        (aux, ca) = kahan_inc(delta * (p.v - (mean + cm)), aux, ca);
                    }
                    let var = (aux + ca) / count;
                    Some(if name == "stddev_over_time" {
                        var.sqrt()
                    } else {
                        var
                    })
                }
                "quantile_over_time" => {
                    let mut vals: Vec<f64> = pts.iter().map(|p| p.v).collect();
                    Some(quantile(scalars[0], &mut vals))
                }
                "mad_over_time" if pts.iter().any(|p| p.v.is_nan()) => Some(f64::NAN),
                "mad_over_time" => {
                    let mut vals: Vec<f64> = pts.iter().map(|p| p.v).collect();
                    let med = quantile(0.5, &mut vals);
                    let mut dev: Vec<f64> = vals.iter().map(|v| (v - med).abs()).collect();
                    Some(quantile(0.5, &mut dev))
                }
                "changes" => Some(
                    pts.windows(2)
                        .filter(|w| w[0].v != w[1].v && !(w[0].v.is_nan() && w[1].v.is_nan()))
                        .count() as f64,
                ),
                "resets" => Some(pts.windows(2).filter(|w| w[1].v < w[0].v).count() as f64),
                "deriv" => {
                    if pts.len() < 2 {
                        None
                    } else {
                        Some(linear_regression(pts, pts[0].t).0)
                    }
                }
                "predict_linear" => {
                    if pts.len() < 2 {
                        None
                    } else {
                        let (slope, intercept) = linear_regression(pts, ts);
                        Some(slope * scalars[0] + intercept)
                    }
                }
                "double_exponential_smoothing" | "holt_winters" => {
                    double_exp_smoothing(pts, scalars[0], scalars[1])
                }
                _ => {
                    return Err(Error::Eval(format!("function {name:?} is not implemented")));
                }
            };
            if let Some(v) = v {
                out.push(sample(s.labels, v, !keep_name || s.drop_name));
            }
        }
        let _ = span;
        Ok(Val::Vector(out))
    }

    fn label_replace(&self, args: &[Expr], ts: i64) -> Result<Val, Error> {
        let v = self.eval_vector(&args[0], ts)?;
        let (dst, dst_bytes) = self.eval_string(&args[1])?;
        let (repl, _) = self.eval_string(&args[2])?;
        let (src, _) = self.eval_string(&args[3])?;
        let (re_s, _) = self.eval_string(&args[4])?;
        let re = regex::Regex::new(&format!("^(?s:{re_s})$")).map_err(|e| {
            Error::Eval(format!(
                "invalid regular expression in label_replace(): {e}"
            ))
        })?;
        if dst_bytes.is_some() || !valid_label_name(&dst) {
            return Err(Error::Eval(format!(
                "invalid destination label name in label_replace(): {}",
                dst
            )));
        }
        let mut out = Vec::with_capacity(v.len());
        for mut s in v {
            let sv = s.labels.get(&src).to_string();
            if let Some(caps) = re.captures(&sv) {
                let mut res = String::new();
                caps.expand(&repl, &mut res);
                s.labels.set(&dst, &res);
                if dst == NAME {
                    s.drop_name = false;
                }
            }
            out.push(s);
        }
        check_unique(&out)?;
        Ok(Val::Vector(out))
    }

    /// info(v, {selector}): adds the data labels of the info series (by
    /// default `target_info`) that share `instance` and `job` with each
    /// sample; the latest info sample wins per info metric.
    fn info_function(&self, args: &[Expr], ts: i64) -> Result<Val, Error> {
        const IDENTIFYING: [&str; 2] = ["instance", "job"];
        let base = self.eval_vector(&args[0], ts)?;
        let mut name_ms = Vec::new();
        let mut data_ms = Vec::new();
        if let Some(ExprKind::VectorSelector(vs)) = args.get(1).map(|a| &unparen(a).kind) {
            for m in &vs.matchers {
                if m.name == NAME {
                    name_ms.push(m.clone());
                } else {
                    data_ms.push(m.clone());
                }
            }
        }
        // No name matcher means target_info; only negative ones narrow
        // down the *_info metrics.
        if name_ms.is_empty() {
            name_ms.push(Matcher::new(MatchOp::Equal, NAME, "target_info")?);
        } else if name_ms
            .iter()
            .all(|m| matches!(m.op, MatchOp::NotEqual | MatchOp::NotRegex))
        {
            name_ms.push(Matcher::new(MatchOp::Regex, NAME, ".+_info")?);
        }
        // The info series are read as of the base samples' reference time
        // (its @ and offset, including those of enclosing subqueries).
        let ts = info_ref_time(self, &args[0], ts, None, 0).unwrap_or(ts);
        let mut all: Vec<Matcher> = name_ms.clone();
        all.extend(data_ms.iter().cloned());
        // The info series present at ts (latest sample within the lookback).
        let lb = self.opts.lookback_delta_ms;
        let mut infos: Vec<(Labels, i64)> = Vec::new();
        for s in self.q.select(&all, ts.saturating_sub(lb), ts)? {
            let i = s.floats.partition_point(|p| p.t <= ts);
            if i == 0 {
                continue;
            }
            let p = s.floats[i - 1];
            if p.t <= ts.saturating_sub(lb) || is_stale_nan(p.v) {
                continue;
            }
            infos.push((s.labels, p.t));
        }
        let empty_ok = data_ms.iter().all(|m| m.matches(""));
        let mut out = Vec::with_capacity(base.len());
        for mut smp in base {
            if name_ms.iter().all(|m| m.matches(smp.labels.get(NAME))) {
                out.push(smp);
                continue;
            }
            // Per info metric name, the series with the latest sample.
            let mut best: BTreeMap<String, (&Labels, i64)> = BTreeMap::new();
            for (l, t) in &infos {
                if IDENTIFYING.iter().any(|n| l.get(n) != smp.labels.get(n)) {
                    continue;
                }
                let e = best.entry(l.get(NAME).to_string()).or_insert((l, *t));
                if *t > e.1 {
                    *e = (l, *t);
                }
            }
            if best.is_empty() {
                if empty_ok {
                    out.push(smp);
                }
                continue;
            }
            let mut added: BTreeMap<&str, (&str, &Labels)> = BTreeMap::new();
            for (l, _) in best.values() {
                for lab in l.iter() {
                    if lab.name == NAME || IDENTIFYING.contains(&lab.name.as_str()) {
                        continue;
                    }
                    if !data_ms.is_empty() && !data_ms.iter().any(|m| m.name == lab.name) {
                        continue;
                    }
                    if smp.labels.has(&lab.name) {
                        continue;
                    }
                    if let Some((v, from)) = added.get(lab.name.as_str()) {
                        if *v != lab.value {
                            return Err(Error::Eval(format!(
                                "conflicting label {:?}: {} has {:?}, {} has {:?}",
                                lab.name, from, v, l, lab.value
                            )));
                        }
                    }
                    added.insert(&lab.name, (&lab.value, l));
                }
            }
            for (n, (v, _)) in added {
                smp.labels.set(n, v);
            }
            out.push(smp);
        }
        Ok(Val::Vector(out))
    }

    fn label_join(&self, args: &[Expr], ts: i64) -> Result<Val, Error> {
        let v = self.eval_vector(&args[0], ts)?;
        let (dst, dst_bytes) = self.eval_string(&args[1])?;
        let (sep, _) = self.eval_string(&args[2])?;
        let mut srcs = Vec::new();
        for a in &args[3..] {
            srcs.push(self.eval_string(a)?.0);
        }
        if dst_bytes.is_some() || !valid_label_name(&dst) {
            return Err(Error::Eval(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
        let mut out = Vec::with_capacity(v.len());
        for mut s in v {
            let joined: Vec<&str> = srcs.iter().map(|n| s.labels.get(n)).collect();
            let j = joined.join(&sep);
            s.labels.set(&dst, &j);
            if dst == NAME {
                s.drop_name = false;
            }
            out.push(s);
        }
        check_unique(&out)?;
        Ok(Val::Vector(out))
    }

    fn bucket_groups(&self, v: Vec<Sample>, arg: &Expr) -> Vec<(Labels, Vec<(f64, f64)>)> {
        // (grouping key, output labels, (upper bound, cumulative count)).
        type Group = (Labels, Labels, Vec<(f64, f64)>);
        let mut groups: Vec<Group> = Vec::new();
        let mut idx: HashMap<Labels, usize> = HashMap::new();
        for s in v {
            let le = s.labels.get("le");
            let Some(ub) = parse_go_float(le) else {
                self.warn(
                    format!(
                        "bucket label \"le\" is missing or has a malformed value of {} for metric name {}",
                        go_quote(le.as_bytes()),
                        go_quote(s.labels.get(NAME).as_bytes())
                    ),
                    arg.span,
                );
                continue;
            };
            let mut key = s.labels.clone();
            key.remove("le");
            let i = *idx.entry(key.clone()).or_insert_with(|| {
                let mut out = key.clone();
                out.remove(NAME);
                groups.push((key, out, Vec::new()));
                groups.len() - 1
            });
            groups[i].2.push((ub, s.value));
        }
        groups.into_iter().map(|(_, l, b)| (l, b)).collect()
    }

    fn histogram_quantile(&self, args: &[Expr], ts: i64) -> Result<Val, Error> {
        let q = self.eval_scalar(&args[0], ts)?;
        let v = self.eval_vector(&args[1], ts)?;
        if q.is_nan() || !(0.0..=1.0).contains(&q) {
            self.warn(
                format!(
                    "quantile value should be between 0 and 1, got {}",
                    format_go_float(q)
                ),
                args[0].span,
            );
        }
        let mut out = Vec::new();
        for (labels, mut buckets) in self.bucket_groups(v, &args[1]) {
            let (r, forced, _) = bucket_quantile(q, &mut buckets);
            if forced {
                self.info(
                    format!("input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {}", go_quote(labels.get(NAME).as_bytes())),
                    args[1].span,
                );
            }
            out.push(sample(labels, r, true));
        }
        check_unique(&out)?;
        Ok(Val::Vector(out))
    }

    fn histogram_quantiles(&self, args: &[Expr], ts: i64) -> Result<Val, Error> {
        let v = self.eval_vector(&args[0], ts)?;
        let (label, _) = self.eval_string(&args[1])?;
        let mut qs = Vec::new();
        for a in &args[2..] {
            let q = self.eval_scalar(a, ts)?;
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
                self.warn(
                    format!(
                        "quantile value should be between 0 and 1, got {}",
                        format_go_float(q)
                    ),
                    a.span,
                );
            }
            qs.push(q);
        }
        let mut out = Vec::new();
        for (labels, buckets) in self.bucket_groups(v, &args[0]) {
            for &q in &qs {
                let mut b = buckets.clone();
                let (r, forced, _) = bucket_quantile(q, &mut b);
                if forced {
                    self.info(
                        format!("input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {}", go_quote(labels.get(NAME).as_bytes())),
                        args[0].span,
                    );
                }
                let mut l = labels.clone();
                let mut qv = format_go_float(q);
                if q.is_finite() && !qv.contains('.') {
                    qv.push_str(".0");
                }
                l.set(&label, &qv);
                out.push(sample(l, r, true));
            }
        }
        check_unique(&out)?;
        Ok(Val::Vector(out))
    }

    fn histogram_fraction(&self, args: &[Expr], ts: i64) -> Result<Val, Error> {
        let lower = self.eval_scalar(&args[0], ts)?;
        let upper = self.eval_scalar(&args[1], ts)?;
        let v = self.eval_vector(&args[2], ts)?;
        let mut out = Vec::new();
        for (labels, mut buckets) in self.bucket_groups(v, &args[2]) {
            let r = bucket_fraction(lower, upper, &mut buckets);
            out.push(sample(labels, r, true));
        }
        check_unique(&out)?;
        Ok(Val::Vector(out))
    }
}

/// The time the first selector under `e` reads at, for a query at `ts`:
/// its @ (or an enclosing subquery's) minus the offsets on the way.
fn info_ref_time(
    ev: &Evaluator<'_>,
    e: &Expr,
    ts: i64,
    sub_at: Option<i64>,
    sub_off: i64,
) -> Option<i64> {
    let from_selector = |vs: &VectorSelector| -> i64 {
        match ev.resolve_at(vs.at) {
            Some(a) => a.saturating_sub(vs.offset),
            None => sub_at
                .unwrap_or(ts)
                .saturating_sub(sub_off)
                .saturating_sub(vs.offset),
        }
    };
    match &e.kind {
        ExprKind::VectorSelector(vs) => Some(from_selector(vs)),
        ExprKind::MatrixSelector { selector, .. } => Some(from_selector(selector)),
        ExprKind::Subquery {
            expr, offset, at, ..
        } => match ev.resolve_at(*at) {
            Some(a) => info_ref_time(ev, expr, ts, Some(a), *offset),
            None => info_ref_time(ev, expr, ts, sub_at, sub_off.saturating_add(*offset)),
        },
        ExprKind::Paren(x) | ExprKind::Unary { expr: x, .. } => {
            info_ref_time(ev, x, ts, sub_at, sub_off)
        }
        ExprKind::Binary { lhs, rhs, .. } => info_ref_time(ev, lhs, ts, sub_at, sub_off)
            .or_else(|| info_ref_time(ev, rhs, ts, sub_at, sub_off)),
        ExprKind::Aggregate { expr, .. } => info_ref_time(ev, expr, ts, sub_at, sub_off),
        ExprKind::Call { args, .. } => args
            .iter()
            .find_map(|a| info_ref_time(ev, a, ts, sub_at, sub_off)),
        _ => None,
    }
}

/// The number of points with `t <= bound`, searching forward from `from`
/// when that is a valid starting point, else by binary search.
fn seek(pts: &[FPoint], from: usize, bound: i64) -> usize {
    if from <= pts.len() && (from == 0 || pts[from - 1].t <= bound) {
        let mut i = from;
        let mut n = 0;
        while i < pts.len() && pts[i].t <= bound {
            i += 1;
            n += 1;
            if n > 16 {
                return i + pts[i..].partition_point(|p| p.t <= bound);
            }
        }
        return i;
    }
    pts.partition_point(|p| p.t <= bound)
}

fn dedup_all(v: &mut Vec<String>) {
    let mut seen = HashSet::new();
    v.retain(|s| seen.insert(s.clone()));
}

fn check_unique(v: &[Sample]) -> Result<(), Error> {
    let mut seen = HashSet::new();
    for s in v {
        if !seen.insert(&s.labels) {
            return Err(dup_labelset());
        }
    }
    Ok(())
}

fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "infinity" | "+infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        "nan" => return None,
        _ => {}
    }
    if t.is_empty()
        || t.contains(|c: char| {
            c.is_ascii_alphabetic()
                && c != 'e'
                && c != 'E'
                && c != 'x'
                && c != 'X'
                && c != 'p'
                && c != 'P'
        })
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| !v.is_nan())
}

fn coalesce(buckets: &mut Vec<(f64, f64)>) {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for b in buckets.drain(..) {
        match out.last_mut() {
            Some(last) if last.0 == b.0 => last.1 += b.1,
            _ => out.push(b),
        }
    }
    *buckets = out;
}

/// Makes cumulative counts monotonic; returns (forced, fixed_precision).
fn ensure_monotonic(buckets: &mut [(f64, f64)]) -> (bool, bool) {
    let (mut forced, mut fixed) = (false, false);
    if buckets.is_empty() {
        return (false, false);
    }
    let mut prev = buckets[0].1;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, 1e-12) {
            b.1 = prev;
            fixed = true;
            continue;
        }
        if curr < prev {
            b.1 = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    (forced, fixed)
}

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < eps * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> (f64, bool, bool) {
    if q.is_nan() {
        return (f64::NAN, false, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false, false);
    }
    coalesce(buckets);
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return (f64::NAN, false, false);
    }
    let (forced, fixed) = ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return (f64::NAN, false, false);
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return (f64::NAN, false, false);
    }
    let mut rank = q * observations;
    let n = buckets.len() - 1;
    let b = buckets[..n].partition_point(|b| b.1 < rank);
    if b == n {
        return (buckets[n - 1].0, forced, fixed);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return (buckets[0].0, forced, fixed);
    }
    let mut start = 0.0;
    let end = buckets[b].0;
    let mut count = buckets[b].1;
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    (start + (end - start) * (rank / count), forced, fixed)
}

fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<(f64, f64)>) -> f64 {
    coalesce(buckets);
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    ensure_monotonic(buckets);
    let total = buckets[buckets.len() - 1].1;
    if total == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    // Walk the buckets as (lower bound, upper bound, count). The first
    // bucket starts at 0 when its upper bound is positive, else at -Inf. An
    // infinitely wide bucket is not interpolated: its observations sit at
    // its infinite end.
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, total, total);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut prev_ub = None::<f64>;
    let mut prev_count = 0.0;
    for &(ub, cum) in buckets.iter() {
        let lb = match prev_ub {
            Some(p) => p,
            None if ub > 0.0 => 0.0,
            None => f64::NEG_INFINITY,
        };
        let count = cum - prev_count;
        prev_ub = Some(ub);
        prev_count = cum;
        if !lower_set && lb >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lb >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        let within = |x: f64| -> f64 {
            if lb.is_infinite() || ub.is_infinite() {
                if lb == f64::NEG_INFINITY {
                    rank + count
                } else {
                    rank
                }
            } else {
                rank + count * (x - lb) / (ub - lb)
            }
        };
        if !lower_set && lb < lower && ub > lower {
            lower_rank = within(lower);
            lower_set = true;
        }
        if !upper_set && lb < upper && ub > upper {
            upper_rank = within(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank += count;
    }
    lower_rank = lower_rank.min(total);
    upper_rank = upper_rank.min(total);
    (upper_rank - lower_rank) / total
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Natural order for label values: digit runs compare as numbers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let na = a[si..i].trim_start_matches('0');
            let nb = b[sj..j].trim_start_matches('0');
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            let o = ab[i].cmp(&bb[j]);
            if o != Ordering::Equal {
                return o;
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}

fn cmp_for_k(a: f64, b: f64, top: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Equal,
        (true, false) => Greater,
        (false, true) => Less,
        _ => {
            let o = a.partial_cmp(&b).unwrap_or(Equal);
            if top { o.reverse() } else { o }
        }
    }
}

/// A deterministic offset in [0, 1) from the label set, for limit_ratio.
/// As Prometheus: XXH64 of `name 0xff value 0xff ...` over the label set,
/// divided by the largest u64, so limit_ratio keeps the same series.
fn ratio_offset(l: &Labels) -> f64 {
    let mut b = Vec::with_capacity(64);
    for lab in l.iter() {
        b.extend_from_slice(lab.name.as_bytes());
        b.push(0xff);
        b.extend_from_slice(lab.value.as_bytes());
        b.push(0xff);
    }
    crate::promql::xxhash::xxh64(&b) as f64 / u64::MAX as f64
}

fn aggregate_values(op: AggregateOp, values: &mut [f64], param: f64) -> f64 {
    match op {
        AggregateOp::Sum => {
            let (mut sum, mut c) = (0.0, 0.0);
            for &v in values.iter() {
                (sum, c) = kahan_inc(v, sum, c);
            }
            sum + c
        }
        AggregateOp::Avg => avg(values.iter().copied()),
        AggregateOp::Count => values.len() as f64,
        AggregateOp::Group => 1.0,
        AggregateOp::Min => values
            .iter()
            .skip(1)
            .fold(values[0], |m, &v| if m > v || m.is_nan() { v } else { m }),
        AggregateOp::Max => values
            .iter()
            .skip(1)
            .fold(values[0], |m, &v| if m < v || m.is_nan() { v } else { m }),
        AggregateOp::Stddev | AggregateOp::Stdvar => {
            let first = values[0];
            let mut value = if first.is_nan() || first.is_infinite() {
                f64::NAN
            } else {
                0.0
            };
            let mut mean = first;
            let mut count = 1.0;
            for &v in values.iter().skip(1) {
                count += 1.0;
                let delta = v - mean;
                mean += delta / count;
                value += delta * (v - mean);
            }
            let var = value / count;
            if op == AggregateOp::Stddev {
                var.sqrt()
            } else {
                var
            }
        }
        AggregateOp::Quantile => quantile(param, values),
        _ => f64::NAN,
    }
}

/// Mean with Kahan summation, switching to an incremental mean on
/// overflow, as Prometheus's `avg` and `avg_over_time`.
fn avg(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c, mut mean, mut count) = (0.0, 0.0, 0.0, 0.0);
    let mut incremental = false;
    for v in values {
        count += 1.0;
        if count == 1.0 {
            sum = v;
            mean = v;
            continue;
        }
        if !incremental {
            let (ns, nc) = kahan_inc(v, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(v / count, q * mean, q * c);
    }
    if count == 1.0 {
        return sum;
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

fn extrapolated_rate(
    pts: &[FPoint],
    start: i64,
    end: i64,
    counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let first = pts[0];
    let last = pts[pts.len() - 1];
    let mut result = last.v - first.v;
    if counter {
        let mut prev = first.v;
        for p in &pts[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    let mut to_start = (first.t - start) as f64 / 1000.0;
    let mut to_end = (end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_between = sampled / (pts.len() - 1) as f64;
    let threshold = avg_between * 1.1;
    if to_start >= threshold {
        to_start = avg_between / 2.0;
    }
    if counter && result > 0.0 && first.v >= 0.0 {
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_between / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= (end - start) as f64 / 1000.0;
    }
    Some(result * factor)
}

/// An aggregation's groups for one query. `by_series` is keyed by the
/// address of a label set's shared storage and keeps that label set alive,
/// so an address cannot be reused for different labels while cached.
#[derive(Default)]
struct GroupCache {
    by_series: HashMap<usize, (Labels, usize)>,
    ids: HashMap<Labels, usize>,
    labels: Vec<Labels>,
}

/// One series' points in a range window: a slice of the selected series
/// (no copy) or, for subqueries and windows with stale markers, owned.
struct Window {
    labels: Labels,
    drop_name: bool,
    pts: WindowPts,
}

enum WindowPts {
    Stored {
        src: Rc<Vec<StoredSeries>>,
        idx: usize,
        a: usize,
        b: usize,
    },
    Owned(Vec<FPoint>),
}

impl Window {
    fn pts(&self) -> &[FPoint] {
        match &self.pts {
            WindowPts::Stored { src, idx, a, b } => &src[*idx].floats[*a..*b],
            WindowPts::Owned(v) => v,
        }
    }
}

/// How a range selector reads beyond its window (3.x modifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extend {
    None,
    Anchored,
    Smoothed,
}

/// The index of the last sample at or before `start` (0 when none), or
/// `None` when no sample lies after `start`.
fn first_anchor(pts: &[FPoint], start: i64) -> Option<usize> {
    if pts.last().is_none_or(|p| p.t <= start) {
        return None;
    }
    let n = pts.len() - 1;
    Some(pts[..n].partition_point(|p| p.t <= start).saturating_sub(1))
}

fn interpolate(p1: FPoint, p2: FPoint, t: i64, counter: bool) -> f64 {
    let y1 = if counter && p2.v < p1.v { 0.0 } else { p1.v };
    y1 + (p2.v - y1) * (t - p1.t) as f64 / (p2.t - p1.t) as f64
}

/// The last sample used for an anchored or smoothed window starting from
/// sample `first`, and the values at the window's edges (interpolated
/// between neighbours when smoothed).
fn window_edges(
    f: &[FPoint],
    first: usize,
    start: i64,
    end: i64,
    smoothed: bool,
    counter: bool,
) -> (usize, f64, f64) {
    let mut last = f.len() - 1;
    if smoothed {
        last = f[..last].partition_point(|p| p.t < end);
    }
    let left = if smoothed && f[first].t < start && first + 1 < f.len() {
        interpolate(f[first], f[first + 1], start, counter)
    } else {
        f[first].v
    };
    let right = if smoothed && last > 0 && f[last].t > end {
        interpolate(f[last - 1], f[last], end, counter)
    } else {
        f[last].v
    };
    (last, left, right)
}

/// rate/increase/delta over an anchored or smoothed window: the difference
/// between the values at the window's edges (the last sample at or before
/// the start, interpolated when smoothed), corrected for counter resets,
/// without extrapolation.
fn extended_rate(
    f: &[FPoint],
    start: i64,
    end: i64,
    smoothed: bool,
    counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let mut first = first_anchor(f, start)?;
    if smoothed && f[first].t > end {
        // Every sample lies after the window.
        return None;
    }
    let (mut last, left, right) = window_edges(f, first, start, end, smoothed, counter);
    let mut result = right - left;
    if counter {
        if f[first].t <= start {
            first += 1;
        }
        if f[last].t >= end && last > 0 {
            last -= 1;
        }
        let mut prev = left;
        if first <= last {
            for p in &f[first..=last] {
                if p.v < prev {
                    result += prev;
                }
                prev = p.v;
            }
        }
        if right < prev {
            result += prev;
        }
    }
    if is_rate {
        result /= (end - start) as f64 / 1000.0;
    }
    Some(result)
}

/// A top-level anchored or smoothed range selector's points: the samples
/// strictly inside the window plus a point at each edge.
fn extend_floats(f: &[FPoint], start: i64, end: i64, smoothed: bool) -> Vec<FPoint> {
    let Some(first) = first_anchor(f, start) else {
        return Vec::new();
    };
    let (_, left, right) = window_edges(f, first, start, end, smoothed, false);
    let mut out = vec![FPoint { t: start, v: left }];
    out.extend(f.iter().filter(|p| p.t > start && p.t < end).copied());
    out.push(FPoint { t: end, v: right });
    out
}

fn instant_value(pts: &[FPoint], is_rate: bool) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let last = pts[pts.len() - 1];
    let prev = pts[pts.len() - 2];
    let mut r = if is_rate && last.v < prev.v {
        last.v
    } else {
        last.v - prev.v
    };
    let dt = last.t - prev.t;
    if dt == 0 {
        return None;
    }
    if is_rate {
        r /= dt as f64 / 1000.0;
    }
    Some(r)
}

fn linear_regression(pts: &[FPoint], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = pts[0].v;
    let mut const_y = true;
    for (i, p) in pts.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn double_exp_smoothing(pts: &[FPoint], sf: f64, tf: f64) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let mut s0 = 0.0;
    let mut s1 = pts[0].v;
    let mut b = pts[1].v - pts[0].v;
    for (i, p) in pts.iter().enumerate().skip(1) {
        let x = sf * p.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

fn absent_labels(arg: &Expr) -> Labels {
    let ms = match &unparen(arg).kind {
        ExprKind::VectorSelector(vs) => &vs.matchers,
        ExprKind::MatrixSelector { selector, .. } => &selector.matchers,
        _ => return Labels::new(),
    };
    let mut l = Labels::new();
    let mut has = HashSet::new();
    for m in ms {
        if m.name == NAME {
            continue;
        }
        if m.op == MatchOp::Equal && !has.contains(&m.name) {
            l.set(&m.name, &m.value);
            has.insert(m.name.clone());
        } else {
            l.remove(&m.name);
        }
    }
    l
}

/// Days from the civil date (proleptic Gregorian) to 1970-01-01 inverse.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn date_part(name: &str, v: f64) -> f64 {
    if v.is_nan() || v.is_infinite() {
        return f64::NAN;
    }
    let secs = v as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let month_days = [
        31,
        if is_leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    match name {
        "minute" => ((sod / 60) % 60) as f64,
        "hour" => (sod / 3600) as f64,
        "day_of_month" => d as f64,
        "day_of_week" => ((days + 4).rem_euclid(7)) as f64,
        "day_of_year" => {
            let before: i64 = month_days[..(m as usize - 1)].iter().sum();
            (before + d as i64) as f64
        }
        "days_in_month" => month_days[m as usize - 1] as f64,
        "month" => m as f64,
        "year" => y as f64,
        _ => f64::NAN,
    }
}

/// Applies `op` to two floats. Returns the value and, for comparisons,
/// whether the comparison holds (the value is then the left operand).
fn scalar_op(op: BinaryOp, a: f64, b: f64) -> (f64, bool) {
    match op {
        BinaryOp::Add => (a + b, true),
        BinaryOp::Sub => (a - b, true),
        BinaryOp::Mul => (a * b, true),
        BinaryOp::Div => (a / b, true),
        BinaryOp::Mod => (a % b, true),
        BinaryOp::Pow => (go_pow(a, b), true),
        BinaryOp::Atan2 => (a.atan2(b), true),
        BinaryOp::Eql => (a, a == b),
        BinaryOp::Neq => (a, a != b),
        BinaryOp::Lss => (a, a < b),
        BinaryOp::Lte => (a, a <= b),
        BinaryOp::Gtr => (a, a > b),
        BinaryOp::Gte => (a, a >= b),
        _ => (f64::NAN, false),
    }
}

/// `math.Pow` agrees with `powf` except that Go returns 1 for `1^NaN`
/// and `NaN^0`, as does Rust; kept as a seam for any difference found.
fn go_pow(a: f64, b: f64) -> f64 {
    a.powf(b)
}

fn drops_name(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Mod
            | BinaryOp::Pow
            | BinaryOp::Atan2
    )
}

fn vector_scalar(
    op: BinaryOp,
    v: Vec<Sample>,
    s: f64,
    swap: bool,
    return_bool: bool,
) -> Vec<Sample> {
    let mut out = Vec::with_capacity(v.len());
    for mut smp in v {
        let (l, r) = if swap { (s, smp.value) } else { (smp.value, s) };
        let (mut val, keep) = scalar_op(op, l, r);
        if op.is_comparison() && swap {
            val = r;
        }
        if return_bool {
            val = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        smp.value = val;
        if drops_name(op) || return_bool {
            smp.drop_name = true;
        }
        out.push(smp);
    }
    out
}

fn signature(l: &Labels, m: &VectorMatching) -> Labels {
    if m.on {
        l.filtered(&m.labels, true)
    } else {
        let mut s = l.filtered(&m.labels, false);
        s.remove(NAME);
        s
    }
}

fn set_and(a: Vec<Sample>, b: Vec<Sample>, m: &VectorMatching) -> Vec<Sample> {
    let sigs: HashSet<Labels> = b.iter().map(|s| signature(&s.labels, m)).collect();
    a.into_iter()
        .filter(|s| sigs.contains(&signature(&s.labels, m)))
        .collect()
}

fn set_or(a: Vec<Sample>, b: Vec<Sample>, m: &VectorMatching) -> Vec<Sample> {
    let sigs: HashSet<Labels> = a.iter().map(|s| signature(&s.labels, m)).collect();
    let mut out = a;
    out.extend(
        b.into_iter()
            .filter(|s| !sigs.contains(&signature(&s.labels, m))),
    );
    out
}

fn set_unless(a: Vec<Sample>, b: Vec<Sample>, m: &VectorMatching) -> Vec<Sample> {
    let sigs: HashSet<Labels> = b.iter().map(|s| signature(&s.labels, m)).collect();
    a.into_iter()
        .filter(|s| !sigs.contains(&signature(&s.labels, m)))
        .collect()
}

fn vector_binop(
    op: BinaryOp,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    m: &VectorMatching,
    return_bool: bool,
) -> Result<Vec<Sample>, Error> {
    let (lhs, rhs) = if m.card == Cardinality::OneToMany {
        (rhs, lhs)
    } else {
        (lhs, rhs)
    };
    // The "one" side must have unique signatures.
    let mut right: HashMap<Labels, &Sample> = HashMap::new();
    for rs in &rhs {
        let sig = signature(&rs.labels, m);
        if let Some(dup) = right.get(&sig) {
            let side = if m.card == Cardinality::OneToMany {
                "left"
            } else {
                "right"
            };
            let matched = if m.on {
                rs.labels.filtered(&m.labels, true)
            } else {
                let mut s = rs.labels.filtered(&m.labels, false);
                s.remove(NAME);
                s
            };
            let (x, y) = if dup.labels <= rs.labels {
                (&dup.labels, &rs.labels)
            } else {
                (&rs.labels, &dup.labels)
            };
            return Err(Error::Eval(format!(
                "found duplicate series for the match group {matched} on the {side} hand-side of the operation: [{x}, {y}];many-to-many matching not allowed: matching labels must be unique on one side"
            )));
        }
        right.insert(sig, rs);
    }
    let mut matched: HashMap<Labels, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    // Synthetic operands for the fill modifiers: a missing side takes the
    // matching labels of the present side and the fill value.
    let mut filled_right = Vec::new();
    let mut filled_left = Vec::new();
    if let Some(fr) = m.fill_right {
        for ls in &lhs {
            let sig = signature(&ls.labels, m);
            if !right.contains_key(&sig) {
                filled_right.push((sig.clone(), sample(sig, fr, false)));
            }
        }
    }
    if let Some(fl) = m.fill_left {
        let left_sigs: HashSet<Labels> = lhs.iter().map(|l| signature(&l.labels, m)).collect();
        let mut seen = HashSet::new();
        for rs in &rhs {
            let sig = signature(&rs.labels, m);
            if !left_sigs.contains(&sig) && seen.insert(sig.clone()) {
                filled_left.push(sample(sig, fl, false));
            }
        }
    }
    let filled_right_map: HashMap<Labels, &Sample> =
        filled_right.iter().map(|(k, v)| (k.clone(), v)).collect();
    for s in &filled_left {
        let sig = signature(&s.labels, m);
        let rs = right[&sig];
        let (fl, fr) = if m.card == Cardinality::OneToMany {
            (rs.value, s.value)
        } else {
            (s.value, rs.value)
        };
        let (mut val, keep) = scalar_op(op, fl, fr);
        if return_bool {
            val = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let mut metric = result_metric(&s.labels, &rs.labels, op, m);
        if m.card != Cardinality::OneToOne {
            for n in &m.include {
                metric.remove(n);
                let v = rs.labels.get(n);
                if !v.is_empty() {
                    metric.set(n, v);
                }
            }
        }
        out.push(Sample {
            labels: metric,
            t: 0,
            value: val,
            drop_name: return_bool,
        });
    }
    for ls in &lhs {
        let sig = signature(&ls.labels, m);
        let Some(rs) = right.get(&sig).or_else(|| filled_right_map.get(&sig)) else {
            continue;
        };
        let (fl, fr) = if m.card == Cardinality::OneToMany {
            (rs.value, ls.value)
        } else {
            (ls.value, rs.value)
        };
        let (mut val, keep) = scalar_op(op, fl, fr);
        let metric = result_metric(&ls.labels, &rs.labels, op, m);
        let entry = matched.get_mut(&sig);
        if m.card == Cardinality::OneToOne {
            if entry.is_some() {
                return Err(Error::Eval(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                ));
            }
            matched.insert(sig.clone(), HashSet::new());
        } else {
            let set = match entry {
                Some(s) => s,
                None => matched.entry(sig.clone()).or_default(),
            };
            if !set.insert(metric.clone()) {
                return Err(Error::Eval(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .into(),
                ));
            }
        }
        if return_bool {
            val = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        out.push(Sample {
            labels: metric,
            t: 0,
            value: val,
            // As upstream: arithmetic drops the name at once (in
            // result_metric), `bool` flags it, and a filtering comparison
            // keeps the left side's labels without its flag.
            drop_name: return_bool,
        });
    }
    Ok(out)
}

fn result_metric(l: &Labels, r: &Labels, op: BinaryOp, m: &VectorMatching) -> Labels {
    let mut out = l.clone();
    if drops_name(op) {
        drop_metric_labels(&mut out);
    }
    if m.card == Cardinality::OneToOne {
        if m.on {
            out = out.filtered(&m.labels, true);
        } else {
            out = out.filtered(&m.labels, false);
        }
    }
    for n in &m.include {
        let v = r.get(n);
        if v.is_empty() {
            out.remove(n);
        } else {
            out.set(n, v);
        }
    }
    out
}

#[cfg(test)]
mod limit_tests {
    use std::time::Duration;

    use super::*;
    use crate::promql::storage::MemoryStore;

    /// 10 series of 100 samples each, one every 10 s from 0.
    fn store() -> MemoryStore {
        let mut s = MemoryStore::new();
        for i in 0..10 {
            let l = Labels::from_pairs(&[("__name__", "x"), ("i", &i.to_string())]);
            for k in 0..100 {
                s.add_sample(&l, k * 10_000, k as f64);
            }
        }
        s
    }

    fn engine(max_samples: u64, timeout: Option<Duration>) -> Engine {
        Engine::with_options(EngineOptions {
            max_samples,
            timeout,
            ..EngineOptions::default()
        })
    }

    const TOO_MANY: &str =
        "query processing would load too many samples into memory in query execution";

    #[test]
    fn selected_samples_count_against_the_limit() {
        let s = store();
        // `x[1000s]` at 990 s loads the 1,000 samples; 999 is one too few.
        let ok = engine(1000, None).instant_query(&s, "x[1000s]", 990_000);
        assert!(ok.is_ok(), "{ok:?}");
        let err = engine(999, None)
            .instant_query(&s, "x[1000s]", 990_000)
            .unwrap_err();
        assert_eq!(err.to_string(), TOO_MANY);
    }

    #[test]
    fn range_query_points_count_against_the_limit() {
        let s = store();
        // Selection bounded to [0-5m, 50 s]: series have 6 samples each (60
        // loaded); 6 steps of 10 series build 60 points: 120 in all.
        let q = |max| engine(max, None).range_query(&s, "x", 0, 50_000, 10_000);
        assert!(q(120).is_ok());
        assert_eq!(q(119).unwrap_err().to_string(), TOO_MANY);
    }

    #[test]
    fn subquery_points_are_released_after_use() {
        let s = store();
        let q = "max_over_time(x[30s:10s])";
        let run = |max| {
            engine(max, None)
                .range_query(&s, q, 0, 990_000, 10_000)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        // At the last step: all 1,000 samples loaded, 99 steps x 10 output
        // points built, and this step's subquery: 3 points x 10 series.
        // Subquery points of earlier steps (another 2,970) are not held.
        assert_eq!(run(1000 + 990 + 30), Ok(()));
        assert_eq!(run(1000 + 990 + 29), Err(TOO_MANY.to_string()));
    }

    #[test]
    fn an_expired_deadline_stops_the_query() {
        let s = store();
        for q in ["x", "1", "sum(rate(x[1m]))"] {
            let e = engine(u64::MAX, Some(Duration::ZERO));
            let err = e.instant_query(&s, q, 500_000).unwrap_err();
            assert_eq!(err.to_string(), "query timed out in expression evaluation");
            let err = e.range_query(&s, q, 0, 500_000, 10_000).unwrap_err();
            assert_eq!(err.to_string(), "query timed out in expression evaluation");
        }
        let e = engine(u64::MAX, Some(Duration::from_secs(3600)));
        assert!(
            e.range_query(&s, "sum(rate(x[1m]))", 0, 990_000, 10_000)
                .is_ok()
        );
    }

    #[test]
    fn the_deadline_is_checked_between_steps() {
        // A store whose selection takes 50 ms fails a 20 ms deadline right
        // after selecting.
        struct Slow(MemoryStore);
        impl Queryable for Slow {
            fn select(
                &self,
                m: &[Matcher],
                mint: i64,
                maxt: i64,
            ) -> Result<Vec<StoredSeries>, Error> {
                std::thread::sleep(Duration::from_millis(50));
                self.0.select(m, mint, maxt)
            }
            fn label_names(&self) -> Result<Vec<String>, Error> {
                self.0.label_names()
            }
            fn label_values(&self, n: &str) -> Result<Vec<String>, Error> {
                self.0.label_values(n)
            }
        }
        let e = engine(u64::MAX, Some(Duration::from_millis(20)));
        let err = e.instant_query(&Slow(store()), "x", 0).unwrap_err();
        assert_eq!(err.to_string(), "query timed out in expression evaluation");
        // A million steps (ten million points) cannot finish in 20 ms: the
        // check between steps stops it long before.
        let t0 = std::time::Instant::now();
        let err = e
            .range_query(&store(), "x", 0, 999_999_000, 1000)
            .unwrap_err();
        assert_eq!(err.to_string(), "query timed out in expression evaluation");
        assert!(t0.elapsed() < Duration::from_secs(10));
    }
}
