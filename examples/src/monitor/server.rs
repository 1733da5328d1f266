//! The composition: one [`Monitor`] owns the store, the scrape manager, the
//! rule manager and the notifier, applies a configuration to all of them
//! (at start and on every reload, all or nothing), and runs the store's
//! upkeep (cutting blocks, checkpoints, retention).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};
use vigil_exposition::client::Registry;
use vigil_rules::{Engine, EngineOptions};
use vigil_tsdb::db::{Db, DbOptions};

use super::api::Backend;
use super::config::Config;
use super::flags::Flags;
use super::notify::{AlertmanagerNotifier, AlertmanagerTarget};
use super::remote::RemoteWriter;
use super::rules::{RuleManager, RuleOptions, load_rule_files, now_ms};
use super::scrape::{ScrapeManager, metadata_json, targets_json};

/// Longest a scraped sample waits for its WAL fsync.
const WAL_SYNC_DELAY: Duration = Duration::from_secs(1);
/// How often the store's upkeep runs.
const UPKEEP_EVERY: Duration = Duration::from_secs(60);
/// How often the head is checkpointed (bounds the WAL a restart replays).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(15 * 60);

/// The running monitor.
pub struct Monitor {
    flags: Flags,
    db: Arc<Db>,
    registry: Registry,
    scrape: ScrapeManager,
    rules: RuleManager,
    notifier: Arc<AlertmanagerNotifier>,
    /// `remote_write`: follows the store's WAL (holding the segments it has
    /// not sent, so checkpoints cannot delete them).
    remote: Mutex<Option<RemoteWriter>>,
    config: RwLock<Config>,
    /// Serializes reloads (HTTP, SIGHUP and file changes may race).
    reloading: Mutex<()>,
    last_reload_ok: AtomicBool,
    last_reload_success_s: AtomicU64,
    reloads_total: AtomicU64,
    reload_failures_total: AtomicU64,
    ready: AtomicBool,
    quit: Arc<(Mutex<bool>, Condvar)>,
    upkeep_stop: Arc<(Mutex<bool>, Condvar)>,
    upkeep: Mutex<Option<JoinHandle<()>>>,
}

impl Monitor {
    /// Loads the configuration named by `flags` (an error names the file,
    /// line and field), opens the store and starts scraping, rule
    /// evaluation and the store's upkeep.
    pub fn start(flags: Flags) -> Result<Arc<Monitor>, String> {
        let config = Config::load(&flags.config_file).map_err(|e| e.to_string())?;
        let groups = load_rule_files(&config.rule_files, &config_dir(&flags.config_file))?;
        let mut opts = DbOptions {
            retention_ms: flags.retention_time.map(|d| d.as_millis() as i64),
            retention_bytes: flags.retention_size,
            ..DbOptions::default()
        };
        // Scrapes are re-taken every interval, so a power cut may lose the
        // last second of them, as Prometheus (which fsyncs its WAL only when
        // a segment fills) accepts; an fsync per scrape cost a fifth of the
        // monitor's CPU in profiles.
        opts.head.wal = opts.head.wal.clone().sync(vigil_wal::SyncPolicy::Batch {
            max_delay: WAL_SYNC_DELAY,
            max_bytes: 8 << 20,
        });
        let db =
            Arc::new(Db::open(&flags.storage_path, opts).map_err(|e| {
                format!("opening the store at {}: {e}", flags.storage_path.display())
            })?);
        let registry = Registry::new();
        // Before anything appends or checkpoints: the writer resumes from
        // its saved position and holds the WAL from there.
        let remote = RemoteWriter::start(
            db.clone(),
            &flags.storage_path,
            &config.remote_write,
            &config.global.external_labels,
            &registry,
        )
        .map_err(|e| format!("remote_write: {e}"))?;
        let scrape = ScrapeManager::new(db.clone(), &registry);
        let notifier = Arc::new(AlertmanagerNotifier::new(flags.notification_queue_capacity));
        let engine = Engine::with_options(EngineOptions {
            lookback_delta_ms: flags.lookback_delta.as_millis() as i64,
            ..EngineOptions::default()
        });
        let rules = RuleManager::new(db.clone(), engine, notifier.clone());
        let monitor = Arc::new(Monitor {
            db,
            registry,
            scrape,
            rules,
            notifier,
            remote: Mutex::new(Some(remote)),
            config: RwLock::new(config.clone()),
            reloading: Mutex::new(()),
            last_reload_ok: AtomicBool::new(true),
            last_reload_success_s: AtomicU64::new((now_ms() / 1000) as u64),
            reloads_total: AtomicU64::new(0),
            reload_failures_total: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            quit: Arc::new((Mutex::new(false), Condvar::new())),
            upkeep_stop: Arc::new((Mutex::new(false), Condvar::new())),
            upkeep: Mutex::new(None),
            flags,
        });
        monitor.apply(&config, groups)?;
        let weak = Arc::downgrade(&monitor);
        let stop = monitor.upkeep_stop.clone();
        let handle = std::thread::Builder::new()
            .name("tsdb-upkeep".into())
            .spawn(move || upkeep_loop(weak, stop))
            .map_err(|e| format!("starting the store's upkeep: {e}"))?;
        *monitor.upkeep.lock() = Some(handle);
        monitor.ready.store(true, Ordering::Release);
        Ok(monitor)
    }

    fn apply(
        &self,
        config: &Config,
        groups: Vec<(String, vigil_rules::rules::RuleGroup)>,
    ) -> Result<(), String> {
        let targets: Vec<AlertmanagerTarget> = config
            .alerting
            .alertmanagers
            .iter()
            .flat_map(|am| {
                am.targets
                    .iter()
                    .map(|t| AlertmanagerTarget::new(&am.scheme, t, &am.path_prefix, am.timeout))
            })
            .collect();
        self.notifier
            .configure(targets, config.global.external_labels.clone());
        self.rules.apply(
            groups,
            RuleOptions {
                evaluation_interval: config.global.evaluation_interval,
                external_labels: config.global.external_labels.clone(),
                external_url: self.external_url(),
                resend_delay: self.flags.resend_delay,
            },
        )?;
        if let Some(r) = &*self.remote.lock() {
            r.apply_config(&config.remote_write, &config.global.external_labels)
                .map_err(|e| format!("remote_write: {e}"))?;
        }
        self.scrape.apply_config(config);
        Ok(())
    }

    /// Re-reads the configuration and rule files and applies them. On any
    /// error nothing changes, the old configuration keeps running, and
    /// `prometheus_config_last_reload_successful` becomes 0.
    pub fn reload(&self) -> Result<(), String> {
        let _one = self.reloading.lock();
        self.reloads_total.fetch_add(1, Ordering::Relaxed);
        let result = Config::load(&self.flags.config_file)
            .map_err(|e| e.to_string())
            .and_then(|cfg| {
                let groups =
                    load_rule_files(&cfg.rule_files, &config_dir(&self.flags.config_file))?;
                Ok((cfg, groups))
            })
            .and_then(|(cfg, groups)| {
                self.apply(&cfg, groups)?;
                *self.config.write() = cfg;
                Ok(())
            });
        match &result {
            Ok(()) => {
                self.last_reload_ok.store(true, Ordering::Relaxed);
                self.last_reload_success_s
                    .store((now_ms() / 1000) as u64, Ordering::Relaxed);
            }
            Err(_) => {
                self.last_reload_ok.store(false, Ordering::Relaxed);
                self.reload_failures_total.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    /// The store.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The registry holding the scrape manager's metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The parsed flags.
    pub fn flags(&self) -> &Flags {
        &self.flags
    }

    /// The configuration running now.
    pub fn config(&self) -> Config {
        self.config.read().clone()
    }

    /// The scrape manager.
    pub fn scrape(&self) -> &ScrapeManager {
        &self.scrape
    }

    /// The rule manager.
    pub fn rules(&self) -> &RuleManager {
        &self.rules
    }

    /// Whether start-up has finished.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// `--web.external-url`, or `http://<listen address>` without one.
    pub fn external_url(&self) -> String {
        if self.flags.external_url.is_empty() {
            format!("http://{}", self.flags.listen)
        } else {
            self.flags.external_url.trim_end_matches('/').to_string()
        }
    }

    /// The monitor's own metrics that are not in [`Monitor::registry`]:
    /// reloads, rule evaluation, notifications and the store, in text
    /// format 0.0.4 with Prometheus's names.
    pub fn write_metrics(&self, out: &mut String) {
        let ok = u8::from(self.last_reload_ok.load(Ordering::Relaxed));
        let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        gauge(
            out,
            "prometheus_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            f64::from(ok),
        );
        gauge(
            out,
            "prometheus_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
            self.last_reload_success_s.load(Ordering::Relaxed) as f64,
        );
        counter(
            out,
            "vigil_config_reloads_total",
            "Configuration reloads attempted.",
            self.reloads_total.load(Ordering::Relaxed),
        );
        counter(
            out,
            "vigil_config_reload_failures_total",
            "Configuration reloads that failed.",
            self.reload_failures_total.load(Ordering::Relaxed),
        );
        let m = self.rules.metrics();
        counter(
            out,
            "prometheus_rule_evaluations_total",
            "The total number of rule evaluations.",
            m.evaluations.load(Ordering::Relaxed),
        );
        counter(
            out,
            "prometheus_rule_evaluation_failures_total",
            "The total number of rule evaluation failures.",
            m.failures.load(Ordering::Relaxed),
        );
        counter(
            out,
            "prometheus_rule_group_iterations_total",
            "The total number of scheduled rule group evaluations.",
            m.iterations.load(Ordering::Relaxed),
        );
        counter(
            out,
            "prometheus_rule_group_iterations_missed_total",
            "The total number of rule group evaluations missed due to slow rule group evaluation.",
            m.missed.load(Ordering::Relaxed),
        );
        let (groups, rules) = self.rules.counts();
        gauge(
            out,
            "vigil_rule_groups",
            "Rule groups loaded.",
            groups as f64,
        );
        gauge(out, "vigil_rules", "Rules loaded.", rules as f64);
        self.notifier.write_metrics(out);
    }

    /// Asks the process to end (`/-/quit`, a signal): wakes
    /// [`Monitor::wait_quit`].
    pub fn request_quit(&self) {
        let (flag, cv) = &*self.quit;
        *flag.lock() = true;
        cv.notify_all();
    }

    /// Waits up to `timeout` for a quit request; true when one came.
    pub fn wait_quit(&self, timeout: Duration) -> bool {
        let (flag, cv) = &*self.quit;
        let mut q = flag.lock();
        if !*q {
            cv.wait_for(&mut q, timeout);
        }
        *q
    }

    /// Stops scraping, rule evaluation, notifications and upkeep, and
    /// checkpoints the head so the next start need not replay the WAL.
    pub fn shutdown(&self) {
        self.ready.store(false, Ordering::Release);
        self.scrape.stop();
        self.rules.stop();
        self.notifier.stop();
        {
            let (flag, cv) = &*self.upkeep_stop;
            *flag.lock() = true;
            cv.notify_all();
        }
        if let Some(h) = self.upkeep.lock().take() {
            let _ = h.join();
        }
        // The writer saves its position first; its hold on the WAL stays,
        // so the checkpoint below keeps what it has not sent.
        if let Some(r) = self.remote.lock().take() {
            r.stop();
        }
        if let Err(e) = self.db.head().checkpoint() {
            eprintln!("level=error msg=\"checkpoint at shutdown failed\" err=\"{e}\"");
        }
    }
}

fn config_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn upkeep_loop(monitor: std::sync::Weak<Monitor>, stop: Arc<(Mutex<bool>, Condvar)>) {
    let mut since_checkpoint = Duration::ZERO;
    loop {
        {
            let (flag, cv) = &*stop;
            let mut stopped = flag.lock();
            if !*stopped {
                cv.wait_for(&mut stopped, UPKEEP_EVERY);
            }
            if *stopped {
                return;
            }
        }
        let Some(m) = monitor.upgrade() else { return };
        since_checkpoint += UPKEEP_EVERY;
        match m.db.cut_blocks() {
            // cut_blocks checkpoints when it cuts.
            Ok(n) if n > 0 => since_checkpoint = Duration::ZERO,
            Ok(_) => {}
            Err(e) => eprintln!("level=error msg=\"cutting blocks failed\" err=\"{e}\""),
        }
        // Merges blocks as Prometheus's leveled compactor does (overlaps
        // first, then 3x ranges), until nothing is left to plan.
        if let Err(e) = m.db.compact() {
            eprintln!("level=error msg=\"compaction failed\" err=\"{e}\"");
        }
        if since_checkpoint >= CHECKPOINT_EVERY {
            since_checkpoint = Duration::ZERO;
            if let Err(e) = m.db.head().checkpoint() {
                eprintln!("level=error msg=\"checkpoint failed\" err=\"{e}\"");
            }
        }
        if let Err(e) = m.db.apply_retention() {
            eprintln!("level=error msg=\"retention failed\" err=\"{e}\"");
        }
    }
}

/// What the HTTP API reads from the monitor.
impl Backend for Monitor {
    fn db(&self) -> &Db {
        &self.db
    }

    fn targets(&self, state: Option<&str>) -> serde_json::Value {
        targets_json(
            &self.scrape.active_targets(),
            &self.scrape.dropped_targets(),
            state,
        )
    }

    fn rules(&self, kind: Option<&str>) -> serde_json::Value {
        self.rules.rules_json(kind)
    }

    fn alerts(&self) -> serde_json::Value {
        self.rules.alerts_json()
    }

    fn metadata(&self, metric: Option<&str>, limit: Option<usize>) -> serde_json::Value {
        metadata_json(&self.scrape.metadata(), metric, limit, None)
    }

    fn config_yaml(&self) -> String {
        self.config.read().source.clone()
    }

    fn flags(&self) -> Vec<(String, String)> {
        self.flags.all.clone()
    }

    fn reload(&self) -> Result<(), String> {
        Monitor::reload(self)
    }

    fn ready(&self) -> bool {
        self.is_ready()
    }

    fn quit(&self) {
        self.request_quit();
    }

    fn own_metrics(&self, out: &mut String) {
        self.write_metrics(out);
    }
}
