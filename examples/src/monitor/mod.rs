//! vigil-monitor's pieces: the Prometheus-compatible server composed from
//! vigil-exposition (scrape parsing), vigil-tsdb (storage) and vigil-rules
//! (PromQL, recording and alerting rules).
pub mod flags;
pub mod rules;
pub mod notify;
pub mod config;
pub mod relabel;
pub mod scrape;
pub mod sd;
mod yaml;
pub mod server;
pub mod api;
pub mod http;
pub mod remote;
pub mod web;
