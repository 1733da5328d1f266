//! The sidecar: a vigil-logpipe pipeline from a fluent-bit classic
//! configuration, run on its own thread, with fluent-bit's small HTTP
//! server beside it: `/metrics` (the pipeline's counters under fluent-bit's
//! names, negotiated text or OpenMetrics) and `/api/v1/health` (`ok` while
//! the pipeline runs). A reload swaps the pipeline and keeps the server.
//! Used by vigil-stack and vigil-sidecar.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;
use vigil_exposition::Format;
use vigil_exposition::client::Registry;
use vigil_logpipe::config;
use vigil_logpipe::engine::{Pipeline, StopHandle};
use vigil_logpipe::metrics::Metrics;

use crate::monitor::http::{self, HttpOptions, Reply, Request, Server};

/// One running pipeline and what the HTTP server reads of it.
struct Live {
    registry: Registry,
    metrics: Arc<Metrics>,
    stop: StopHandle,
    thread: Option<JoinHandle<()>>,
    running: Arc<AtomicBool>,
    error: Arc<Mutex<Option<String>>>,
}

impl Live {
    fn launch(config_file: &Path) -> Result<Live, String> {
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
        let error = Arc::new(Mutex::new(None));
        let (flag, err) = (running.clone(), error.clone());
        let thread = super::spawn("sidecar", move || {
            if let Err(e) = pipeline.run() {
                eprintln!("vigil-sidecar: {e}");
                *err.lock() = Some(e.to_string());
            }
            flag.store(false, Ordering::Release);
        })?;
        Ok(Live {
            registry,
            metrics,
            stop,
            thread: Some(thread),
            running,
            error,
        })
    }

    /// Stops the pipeline: its outputs deliver what they hold and the
    /// inputs checkpoint their offsets.
    fn stop(&mut self) -> Result<(), String> {
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
        result
    }
}

/// A running sidecar.
pub struct Sidecar {
    live: Arc<Mutex<Live>>,
    server: Option<Server>,
}

impl Sidecar {
    /// Loads `config_file` (an error names the file and line), starts the
    /// pipeline and serves `/metrics` and `/api/v1/health` on `listen`.
    pub fn start(config_file: &Path, listen: SocketAddr) -> Result<Sidecar, String> {
        let live = Arc::new(Mutex::new(Live::launch(config_file)?));
        let view = live.clone();
        let handler: Arc<http::Handler> = Arc::new(move |req: &Request| match req.path.as_str() {
            "/metrics" => {
                let format = Format::negotiate(req.header("accept"));
                let mut body = Vec::new();
                view.lock().registry.encode(format, &mut body);
                Reply::new(200, format.content_type(), body)
            }
            "/api/v1/health" => {
                if view.lock().running.load(Ordering::Acquire) {
                    Reply::text(200, "ok\n")
                } else {
                    Reply::text(500, "error\n")
                }
            }
            _ => Reply::text(404, "404 page not found\n"),
        });
        let server = match http::serve(
            HttpOptions {
                listen,
                max_body_bytes: 1 << 16,
                max_connections: 64,
            },
            handler,
        ) {
            Ok(s) => s,
            Err(e) => {
                let _ = live.lock().stop();
                return Err(format!("listening on {listen}: {e}"));
            }
        };
        Ok(Sidecar {
            live,
            server: Some(server),
        })
    }

    /// Reloads `config_file`: the new configuration is checked first (every
    /// plugin, parser and key, without opening disk buffers), and a broken
    /// one changes nothing; then the running pipeline stops (delivering
    /// what it holds, saving its offsets) and the new one starts. The HTTP
    /// server keeps running throughout.
    pub fn reload(&self, config_file: &Path) -> Result<(), String> {
        let cfg = config::load(config_file).map_err(|e| e.to_string())?;
        Pipeline::check(cfg).map_err(|e| e.to_string())?;
        let mut live = self.live.lock();
        if let Err(e) = live.stop() {
            eprintln!("vigil-sidecar: stopping for the reload: {e}");
        }
        *live = Live::launch(config_file)?;
        Ok(())
    }

    /// Records every output has delivered so far.
    pub fn records_out(&self) -> u64 {
        self.live
            .lock()
            .metrics
            .outputs
            .lock()
            .iter()
            .map(|o| o.proc_records.load(Ordering::Relaxed))
            .sum()
    }

    /// Whether the pipeline is still running.
    pub fn is_running(&self) -> bool {
        self.live.lock().running.load(Ordering::Acquire)
    }

    /// The HTTP server's address.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(Server::addr)
    }

    /// Stops the pipeline (it flushes its buffers and checkpoints the
    /// acknowledged offsets) and the HTTP server.
    pub fn stop(mut self) -> Result<(), String> {
        let result = self.live.lock().stop();
        if let Some(s) = self.server.take() {
            s.stop();
        }
        result
    }
}
