//! Glue shared by the Vigil binaries: small pieces that compose the library
//! crates (the crates themselves stay independent of each other).
//!
//! - [`monitor`]: the pieces of vigil-monitor (configuration, relabelling,
//!   discovery, scrape loops, HTTP API, rule evaluation).
//! - [`scrape`]: fetch a `/metrics` endpoint over HTTP/1.1 and append what it
//!   exposes to the store, with `job`/`instance` labels and `up`.

pub mod agent;
pub mod demoapp;
pub mod monitor;
pub mod pushgateway;
pub mod stack;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use vigil_exposition::Format;
use vigil_exposition::parse::{Entry, Mode, Parser};
use vigil_tsdb::db::Db;
use vigil_tsdb::labels::Labels;

/// What one scrape did.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScrapeReport {
    /// Samples appended.
    pub samples: usize,
    /// Whether the target answered with a body that parsed (`up`).
    pub up: bool,
}

/// GETs `http://addr/metrics` (negotiating OpenMetrics), parses it in
/// scrape mode and appends every sample at `now_ms` (or its own timestamp)
/// with `job` and `instance` added, plus `up`, in one commit.
pub fn scrape(db: &Db, addr: &str, job: &str, now_ms: i64) -> Result<ScrapeReport, String> {
    let body = fetch(addr);
    let mut app = db.head().appender();
    let mut report = ScrapeReport::default();
    let target = [("job", job), ("instance", addr)];
    if let Ok((content_type, body)) = &body {
        let mut ok = true;
        let mut pending = Vec::new();
        for entry in Parser::with_mode(body, Format::from_content_type(content_type), Mode::Scrape)
        {
            match entry {
                Ok(Entry::Sample(s)) => {
                    let mut pairs: Vec<(String, String)> = s
                        .labels
                        .iter()
                        .map(|(n, v)| (n.as_cow().into_owned(), v.as_cow().into_owned()))
                        .collect();
                    pairs.push(("__name__".into(), s.name.as_cow().into_owned()));
                    for (n, v) in target {
                        pairs.retain(|(k, _)| k != n);
                        pairs.push((n.into(), v.into()));
                    }
                    pending.push((pairs, s.timestamp_ms.unwrap_or(now_ms), s.value));
                }
                Ok(_) => {}
                Err(_) => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            for (pairs, t, v) in pending {
                let labels = Labels::new(pairs).map_err(|e| e.to_string())?;
                if app.append(&labels, t, v).is_ok() {
                    report.samples += 1;
                }
            }
            report.up = true;
        }
    }
    let up = Labels::new([("__name__", "up"), target[0], target[1]]).map_err(|e| e.to_string())?;
    app.append(&up, now_ms, if report.up { 1.0 } else { 0.0 })
        .map_err(|e| e.to_string())?;
    app.commit().map_err(|e| e.to_string())?;
    Ok(report)
}

/// The response's Content-Type and body.
fn fetch(addr: &str) -> std::io::Result<(String, Vec<u8>)> {
    let mut conn = TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    // Prometheus's own preference: OpenMetrics, then text 0.0.4.
    const ACCEPT: &str =
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    write!(
        conn,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: {ACCEPT}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    Ok((content_type, raw[split + 4..].to_vec()))
}
