//! vigil-monitor's pieces: the Prometheus-compatible server composed from
//! vigil-exposition (scrape parsing), vigil-tsdb (storage) and vigil-rules
//! (PromQL, recording and alerting rules).
pub mod api;
pub mod config;
pub mod flags;
pub mod http;
pub mod notify;
pub mod relabel;
pub mod remote;
pub mod rules;
pub mod scrape;
pub mod sd;
pub mod server;
pub mod web;
mod yaml;
