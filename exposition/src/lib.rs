//! Prometheus text 0.0.4 and OpenMetrics 1.0: a metrics client, an encoder
//! and a parser.
//!
//! - [`client`]: the instrumentation API a service links to expose metrics:
//!   [`client::Registry`], counters, gauges, histograms, summaries, info,
//!   statesets, labelled families, collectors and a process collector. Updates
//!   and lookups of existing children take no lock and allocate nothing (a
//!   summary with quantiles takes a short lock per observation). The
//!   [`client`] docs show a `/metrics` endpoint on a bare `TcpListener`.
//! - [`parse`]: a zero-copy iterator of entries over a scrape body, in text
//!   0.0.4 (as lenient as Prometheus), OpenMetrics scrape mode (as lenient as
//!   Prometheus's OpenMetrics parser) or OpenMetrics strict mode (every rule of
//!   the specification); [`parse::parse_families`] groups into owned families.
//!   Errors give the line, the column and what was expected.
//! - [`encode`]: writes either format with Go-compatible float rendering.
//! - [`Format::negotiate`]: picks the format from an `Accept` header, and
//!   [`Format::content_type`] says what to send.
//!
//! ```
//! use vigil_exposition::client::{Counter, Family, Histogram, Registry};
//! use vigil_exposition::parse::{parse_families, Mode};
//! use vigil_exposition::{Format, MetricType};
//!
//! let registry = Registry::with_prefix("shop");
//! let orders = Family::<[&'static str; 1], Counter>::with_label_names(&["status"]);
//! registry.register("orders", "Orders by status.", orders.clone())?;
//! let latency = Histogram::new([0.1, 0.5, 1.0]);
//! registry.register_with_unit("checkout", "Checkout latency.", "seconds", latency.clone())?;
//!
//! orders.with(&["paid"], |c| c.inc());      // no lock, no allocation
//! latency.observe(0.27);
//!
//! // What a /metrics handler sends, in the format the scraper asked for.
//! let format = Format::negotiate(Some("application/openmetrics-text; version=1.0.0"));
//! let mut body = Vec::new();
//! registry.encode(format, &mut body);
//!
//! // And what a scraper reads back, checked against the specification.
//! let families = parse_families(&body, format, Mode::Strict)?;
//! assert_eq!(families[0].name, "shop_orders");
//! assert_eq!(families[0].metric_type, MetricType::Counter);
//! assert_eq!(families[1].unit.as_deref(), Some("seconds"));
//! # Ok::<(), vigil_exposition::Error>(())
//! ```
#![deny(missing_docs)]
// `unsafe` is denied everywhere but on the parser's measured hot path:
// `parse/span.rs` (unchecked sub-slices of validated text) and the fast-path
// functions that call it, and `parse/simd.rs` (SSE2 name checks); each block
// has its `SAFETY:`.
#![deny(unsafe_code)]

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
