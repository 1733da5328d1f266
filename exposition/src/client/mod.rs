//! The instrumentation client: metrics a program updates, and a registry
//! that encodes them for a `/metrics` endpoint.
//!
//! - Metrics: [`Counter`] (`u64` or `f64`), [`Gauge`] (`i64` or `f64`),
//!   [`Histogram`] (with [`linear_buckets`], [`exponential_buckets`],
//!   [`DEFAULT_BUCKETS`]), [`Summary`] (count and sum, optional quantiles over
//!   a sliding window), [`Info`] and [`StateSet`]. Each is a cheap handle
//!   (an `Arc` inside): clone it into whatever updates it.
//! - [`Family`] keeps one metric per label set, keyed by a type of yours
//!   ([`LabelSet`]: arrays and tuples of values, name/value pairs, or a struct
//!   through [`label_set!`](crate::label_set)).
//! - [`Registry`] names them (prefixes, constant labels, sub-registries) and
//!   encodes them in either format ([`Registry::encode`]), or gathers them
//!   as owned [`MetricFamily`](crate::MetricFamily) values
//!   ([`Registry::gather`]).
//! - [`Collector`] computes metrics at scrape time; [`ProcessCollector`]
//!   is client_golang's process metrics.
//!
//! # Costs
//!
//! Updating a metric (counter increment, gauge set or add, histogram
//! observation) and looking up an existing child of a family take no lock
//! and allocate nothing; a family lookup also writes no memory shared
//! between threads ([`Family::with`] answers from a small per-thread cache
//! of children, with no atomic read-modify-write), and a [`Counter`] is
//! striped per thread, so threads incrementing the same counter each write
//! a cache line of their own. Creating a child, registering, and encoding
//! may lock and allocate. A [`Summary`] with quantiles takes a short lock
//! per observation; recording an exemplar
//! ([`Counter::inc_with_exemplar`], [`Histogram::observe_with_exemplar`])
//! takes a short lock of that counter's or bucket's exemplar.
//!
//! # Serving `/metrics`
//!
//! No HTTP framework is needed: negotiate the format from the `Accept`
//! header ([`Format::negotiate`](crate::Format::negotiate)), encode, and
//! answer. This runs a server on a thread, scrapes it once, and checks the
//! body:
//!
//! ```
//! use std::io::{BufRead, BufReader, Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use vigil_exposition::client::{Counter, Family, Registry};
//! use vigil_exposition::Format;
//!
//! /// Answers one HTTP request on `listener` with the registry's metrics.
//! fn serve_one(listener: &TcpListener, registry: &Registry) -> std::io::Result<()> {
//!     let (stream, _) = listener.accept()?;
//!     let mut reader = BufReader::new(stream);
//!     let mut accept = None;
//!     loop {
//!         let mut line = String::new();
//!         if reader.read_line(&mut line)? == 0 || line == "\r\n" {
//!             break;
//!         }
//!         if let Some((name, value)) = line.split_once(':') {
//!             if name.eq_ignore_ascii_case("accept") {
//!                 accept = Some(value.trim().to_owned());
//!             }
//!         }
//!     }
//!     let format = Format::negotiate(accept.as_deref());
//!     let mut body = Vec::new();
//!     registry.encode(format, &mut body);
//!     let mut stream = reader.into_inner();
//!     write!(
//!         stream,
//!         "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
//!         format.content_type(),
//!         body.len()
//!     )?;
//!     stream.write_all(&body)
//! }
//!
//! let registry = Registry::new();
//! let requests = Family::<[&'static str; 1], Counter>::with_label_names(&["code"]);
//! registry.register("http_requests", "Requests served.", requests.clone())?;
//! requests.with(&["200"], |c| c.inc_by(3));
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let server = std::thread::spawn({
//!     let registry = registry.clone();
//!     move || serve_one(&listener, &registry)
//! });
//!
//! let mut conn = TcpStream::connect(addr)?;
//! conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n")?;
//! let mut response = String::new();
//! conn.read_to_string(&mut response)?;
//! server.join().expect("server thread")?;
//!
//! let (head, body) = response.split_once("\r\n\r\n").expect("a header block");
//! assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(head.contains("Content-Type: text/plain; version=0.0.4"));
//! assert_eq!(body, "\
//! ## HELP http_requests_total Requests served.
//! ## TYPE http_requests_total counter
//! http_requests_total{code=\"200\"} 3
//! ");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod atomic;
mod collector;
mod counter;
mod exemplar;
mod family;
mod gauge;
mod histogram;
mod info;
mod labels;
mod metric;
mod process;
mod registry;
mod stateset;
mod summary;

pub use collector::{Collector, CollectorWriter, FamilyWriter};
pub use counter::{Counter, CounterValue};
pub use exemplar::MAX_EXEMPLAR_CHARS;
pub use family::{Family, FamilyBuilder, FamilyRef, LabelKey};
pub use gauge::{Gauge, GaugeValue};
pub use histogram::{
    DEFAULT_BUCKETS, Histogram, HistogramSnapshot, exponential_buckets, exponential_buckets_range,
    linear_buckets,
};
pub use info::Info;
pub use labels::{LabelSet, LabelValue, LabelWriter};
pub use metric::Metric;
pub use process::ProcessCollector;
pub use registry::Registry;
pub use stateset::StateSet;
pub use summary::{Summary, SummaryBuilder};
