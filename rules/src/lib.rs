//! Vigil's rule engine: PromQL with Prometheus 3.x semantics.
//!
//! This crate holds the PromQL lexer and parser ([`parse`], producing an
//! [`Expr`] tree with source positions and Prometheus's type checks) and an
//! evaluator ([`Engine`]) for instant and range queries over any store that
//! implements [`Queryable`]. [`MemoryStore`] is an in-memory `Queryable` for
//! tests and small embedded uses.
//!
//! [`rules`] holds the rule-group model and the legacy Prometheus 1.x rule
//! syntax; the YAML loader, rule evaluation, alerts, templates and
//! `promtool test rules` are not here yet (see the README).
//!
//! ```
//! use vigil_rules::{Engine, Labels, MemoryStore, Value};
//!
//! let mut store = MemoryStore::new();
//! let up = Labels::from_pairs(&[("__name__", "up"), ("job", "api")]);
//! store.add_sample(&up, 0, 1.0);
//! store.add_sample(&up, 15_000, 0.0);
//!
//! let engine = Engine::new();
//! let result = engine
//!     .instant_query(&store, "sum by (job) (up == bool 0)", 20_000)
//!     .unwrap();
//! let Value::Vector(v) = result.value else { panic!("expected a vector") };
//! assert_eq!(v[0].value, 1.0);
//! assert_eq!(v[0].labels.to_string(), r#"{job="api"}"#);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod promql;
pub mod rules;
pub mod template;
#[cfg(feature = "tsdb")]
mod tsdb;

pub use error::Error;
pub use promql::ast::{
    AggregateOp, AtModifier, BinaryOp, Cardinality, DurationExpr, Expr, ExprKind, MatchOp, Matcher,
    Span, SubqueryDurations, ValueType, VectorMatching, VectorSelector,
};
pub use promql::engine::{Engine, EngineOptions, QueryResult};
pub use promql::functions::{FUNCTIONS, Function, lookup_function};
pub use promql::labels::{Label, Labels};
pub use promql::lexer::parse_duration;
pub use promql::parser::parse;
pub use promql::storage::{MemoryStore, Queryable, StoredSeries};
pub use promql::value::{FPoint, STALE_NAN_BITS, Sample, Series, Value, is_stale_nan};
