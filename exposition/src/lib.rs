//! Prometheus text 0.0.4 and OpenMetrics 1.0: parser, encoder and metrics
//! client.
//!
//! - [`parse`]: a zero-copy iterator of entries over a scrape body, with a
//!   strict OpenMetrics mode for validation and a scrape mode as lenient as
//!   Prometheus; [`parse::parse_families`] groups into owned families.
//! - [`encode`]: writes either format, Go-compatible float rendering.
//! - [`Format::negotiate`]: picks the format from an `Accept` header.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod client;
pub mod encode;
mod error;
mod model;
mod names;
mod negotiate;
pub mod parse;

pub use error::{Error, Result};
pub use model::{Exemplar, Label, MetricFamily, MetricType, STALE_NAN_BITS, Sample};
pub use names::{is_legacy_label_name, is_legacy_metric_name};

/// The two exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    #[default]
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}
