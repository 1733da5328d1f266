//! The sidecar: a vigil-logpipe pipeline from a fluent-bit classic
//! configuration, run on its own thread, with fluent-bit's small HTTP
//! server beside it: `/metrics` (the pipeline's counters under fluent-bit's
//! names, negotiated text or OpenMetrics) and `/api/v1/health` (`ok` while
//! the pipeline runs). Used by vigil-stack and vigil-sidecar.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use vigil_exposition::Format;
use vigil_exposition::client::Registry;
use vigil_logpipe::config;
use vigil_logpipe::engine::{Pipeline, StopHandle};
use vigil_logpipe::metrics::Metrics;

use crate::monitor::http::{self, HttpOptions, Reply, Request, Server};

/// A running sidecar.
pub struct Sidecar {
    stop: StopHandle,
    thread: Option<JoinHandle<()>>,
    error: Arc<parking_lot::Mutex<Option<String>>>,
    server: Option<Server>,
    metrics: Arc<Metrics>,
    running: Arc<AtomicBool>,
}

impl Sidecar {
    /// Loads `config_file` (an error names the file and line), starts the
    /// pipeline and serves `/metrics` and `/api/v1/health` on `listen`.
    pub fn start(config_file: &Path, listen: SocketAddr) -> Result<Sidecar, String> {
        let cfg = config::load(config_file).map_err(|e| e.to_string())?;
        for w in &cfg.warnings {
            eprintln!("vigil-sidecar: warning: {w}");
        }
        let pipeline = Pipeline::from_config(cfg).map_err(|e| e.to_string())?;
        let metrics = pipeline.metrics();
        let registry = Registry::new();
        metrics.register(&registry);
        let stop = pipeline.stop_handle();
        let running = Arc::new(AtomicBool::new(true));
        let error = Arc::new(parking_lot::Mutex::new(None));
        let (flag, err) = (running.clone(), error.clone());
        let thread = super::spawn("sidecar", move || {
            if let Err(e) = pipeline.run() {
                eprintln!("vigil-sidecar: {e}");
                *err.lock() = Some(e.to_string());
            }
            flag.store(false, Ordering::Release);
        })?;
        let health = running.clone();
        let handler: Arc<http::Handler> = Arc::new(move |req: &Request| match req.path.as_str() {
            "/metrics" => {
                let format = Format::negotiate(req.header("accept"));
                let mut body = Vec::new();
                registry.encode(format, &mut body);
                Reply::new(200, format.content_type(), body)
            }
            "/api/v1/health" => {
                if health.load(Ordering::Acquire) {
                    Reply::text(200, "ok\n")
                } else {
                    Reply::text(500, "error\n")
                }
            }
            _ => Reply::text(404, "404 page not found\n"),
        });
        let server = http::serve(
            HttpOptions {
                listen,
                max_body_bytes: 1 << 16,
                max_connections: 64,
            },
            handler,
        )
        .map_err(|e| format!("listening on {listen}: {e}"))?;
        Ok(Sidecar {
            stop,
            thread: Some(thread),
            error,
            server: Some(server),
            metrics,
            running,
        })
    }

    /// Records every output has delivered so far.
    pub fn records_out(&self) -> u64 {
        self.metrics
            .outputs
            .lock()
            .iter()
            .map(|o| o.proc_records.load(Ordering::Relaxed))
            .sum()
    }

    /// Whether the pipeline is still running.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// The HTTP server's address.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(Server::addr)
    }

    /// Stops the pipeline (it flushes its buffers and checkpoints the
    /// acknowledged offsets) and the HTTP server.
    pub fn stop(mut self) -> Result<(), String> {
        self.stop.stop();
        let mut result = Ok(());
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            result = Err("the pipeline panicked".to_string());
        }
        if let Some(e) = self.error.lock().take() {
            result = Err(e);
        }
        if let Some(s) = self.server.take() {
            s.stop();
        }
        result
    }
}
