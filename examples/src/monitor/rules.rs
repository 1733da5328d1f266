//! Rule evaluation for vigil-monitor: loads the configured rule files (both
//! syntaxes vigil-rules reads), evaluates each group on its own thread at
//! its interval and phase, writes what recording and alerting rules produce
//! into the store (with staleness markers for series that stop), and hands
//! alerts to the notifier. Also renders `/api/v1/rules` and `/api/v1/alerts`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};
use serde_json::{Value as Json, json};
use vigil_rules::rules::{
    GroupState, LoadOptions, Notifier, Rule, RuleGroup, RuleState, load_yaml, parse_legacy, rfc3339,
};
use vigil_rules::{Engine, Labels as QLabels, STALE_NAN_BITS, Sample};
use vigil_tsdb::db::Db;
use vigil_tsdb::labels::Labels;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Settings the rule manager takes from the flags and the global config.
#[derive(Debug, Clone)]
pub struct RuleOptions {
    /// `global.evaluation_interval`.
    pub evaluation_interval: Duration,
    /// `global.external_labels`, seen by templates as `$externalLabels`.
    pub external_labels: Vec<(String, String)>,
    /// `--web.external-url`, for `$externalURL` and generator URLs.
    pub external_url: String,
    /// `--rules.alert.resend-delay` (Prometheus: 1m).
    pub resend_delay: Duration,
}

impl Default for RuleOptions {
    fn default() -> Self {
        RuleOptions {
            evaluation_interval: Duration::from_secs(60),
            external_labels: Vec::new(),
            external_url: String::new(),
            resend_delay: Duration::from_secs(60),
        }
    }
}

/// Reads every rule file the `rule_files` globs name (relative globs are
/// taken from `base`), in either syntax: Prometheus YAML, or the legacy
/// 1.x `ALERT … IF …` form when the file is not YAML rule groups.
pub fn load_rule_files(globs: &[String], base: &Path) -> Result<Vec<(String, RuleGroup)>, String> {
    let mut files: Vec<PathBuf> = Vec::new();
    for pattern in globs {
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            base.join(pattern)
        };
        let text = full.to_string_lossy().into_owned();
        let paths = glob::glob(&text).map_err(|e| format!("rule_files {pattern:?}: {e}"))?;
        let mut matched: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        matched.sort();
        files.extend(matched);
    }
    let mut out = Vec::new();
    for path in files {
        let name = path.to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))?;
        let groups = match load_yaml(&text, LoadOptions::default()) {
            Ok(g) => g,
            Err(yaml_err) => {
                // The legacy syntax is not YAML: try it when the YAML form
                // fails, and report the YAML error if neither reads.
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match parse_legacy(&text, &stem) {
                    Ok(g) => vec![g],
                    Err(_) => return Err(format!("{name}: {yaml_err}")),
                }
            }
        };
        out.extend(groups.into_iter().map(|g| (name.clone(), g)));
    }
    Ok(out)
}

/// How a rule did at its last evaluation.
#[derive(Debug, Clone, Default)]
struct RuleHealth {
    last_error: Option<String>,
    last_eval_ms: i64,
    duration_s: f64,
    evaluated: bool,
}

/// One group's state shared between its thread and the API.
struct GroupSlot {
    file: String,
    state: Mutex<GroupState>,
    interval_ms: i64,
    rule_health: Mutex<Vec<RuleHealth>>,
    last_eval_ms: AtomicU64,
    last_duration_ns: AtomicU64,
    /// Series each rule wrote at the last evaluation, to mark the ones that
    /// stop as stale (as Prometheus does for rule output).
    previous: Mutex<Vec<BTreeSet<Labels>>>,
}

struct Running {
    stop: Arc<(Mutex<bool>, Condvar)>,
    threads: Vec<JoinHandle<()>>,
}

/// Counters the manager exposes on `/metrics`.
#[derive(Debug, Default)]
pub struct RuleMetrics {
    /// `prometheus_rule_evaluations_total`.
    pub evaluations: AtomicU64,
    /// `prometheus_rule_evaluation_failures_total`.
    pub failures: AtomicU64,
    /// `prometheus_rule_group_iterations_missed_total`.
    pub missed: AtomicU64,
    /// `prometheus_rule_group_iterations_total`.
    pub iterations: AtomicU64,
}

/// Evaluates the configured rule groups.
pub struct RuleManager {
    db: Arc<Db>,
    notifier: Arc<dyn Notifier + Send + Sync>,
    engine: Engine,
    running: Mutex<Option<Running>>,
    /// The loaded groups (kept after a stop, for the API and a reload).
    slots: Mutex<Vec<Arc<GroupSlot>>>,
    metrics: Arc<RuleMetrics>,
}

impl RuleManager {
    /// A manager writing into `db` and notifying `notifier`; no groups yet.
    pub fn new(db: Arc<Db>, engine: Engine, notifier: Arc<dyn Notifier + Send + Sync>) -> Self {
        RuleManager {
            db,
            notifier,
            engine,
            running: Mutex::new(None),
            slots: Mutex::new(Vec::new()),
            metrics: Arc::new(RuleMetrics::default()),
        }
    }

    /// The manager's counters.
    pub fn metrics(&self) -> &RuleMetrics {
        &self.metrics
    }

    /// Replaces the running groups with `groups`. A group whose file, name
    /// and rules are unchanged keeps its alerts' state (as Prometheus
    /// carries state across a reload); every group's thread restarts.
    pub fn apply(&self, groups: Vec<(String, RuleGroup)>, opts: RuleOptions) -> Result<(), String> {
        let mut old: HashMap<(String, String), Arc<GroupSlot>> = HashMap::new();
        // Stopping first means no evaluation runs while the groups change.
        if let Some(running) = self.running.lock().take() {
            stop_running(running);
        }
        for s in std::mem::take(&mut *self.slots.lock()) {
            let name = s.state.lock().group.name.clone();
            old.insert((s.file.clone(), name), s);
        }
        let ext = QLabels::from_pairs(
            &opts
                .external_labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        );
        let mut slots = Vec::new();
        for (file, group) in groups {
            let key = (file.clone(), group.name.clone());
            let interval_ms = group
                .interval
                .unwrap_or(opts.evaluation_interval.as_millis() as i64)
                .max(1);
            let kept = old
                .remove(&key)
                .filter(|s| s.state.lock().group == group && s.interval_ms == interval_ms);
            let slot = match kept {
                Some(s) => {
                    s.state.lock().set_external(ext.clone(), &opts.external_url);
                    s
                }
                None => {
                    let n = group.rules.len();
                    let mut state = GroupState::new(group)
                        .map_err(|e| format!("{file}: group {:?}: {e}", key.1))?;
                    state.set_external(ext.clone(), &opts.external_url);
                    Arc::new(GroupSlot {
                        file,
                        state: Mutex::new(state),
                        interval_ms,
                        rule_health: Mutex::new(vec![RuleHealth::default(); n]),
                        last_eval_ms: AtomicU64::new(0),
                        last_duration_ns: AtomicU64::new(0),
                        previous: Mutex::new(vec![BTreeSet::new(); n]),
                    })
                }
            };
            slots.push(slot);
        }
        // Groups that went away: their recorded series stop.
        let now = now_ms();
        for (_, gone) in old {
            let prev = std::mem::take(&mut *gone.previous.lock());
            let mut app = self.db.head().appender();
            for set in prev {
                for l in set {
                    let _ = app.append(&l, now, f64::from_bits(STALE_NAN_BITS));
                }
            }
            let _ = app.commit();
        }
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let mut threads = Vec::new();
        for slot in &slots {
            let ctx = GroupCtx {
                slot: slot.clone(),
                db: self.db.clone(),
                engine: self.engine.clone(),
                notifier: self.notifier.clone(),
                stop: stop.clone(),
                metrics: self.metrics.clone(),
                resend_delay_ms: opts.resend_delay.as_millis() as i64,
                external_url: opts.external_url.clone(),
                default_interval_ms: opts.evaluation_interval.as_millis() as i64,
            };
            let name = format!("rules-{}", slot.state.lock().group.name);
            let h = std::thread::Builder::new()
                .name(name)
                .spawn(move || ctx.run())
                .map_err(|e| format!("starting a rule group thread: {e}"))?;
            threads.push(h);
        }
        *self.slots.lock() = slots;
        *self.running.lock() = Some(Running { stop, threads });
        Ok(())
    }

    /// Stops every group's thread.
    pub fn stop(&self) {
        if let Some(running) = self.running.lock().take() {
            stop_running(running);
        }
    }

    fn slots(&self) -> Vec<Arc<GroupSlot>> {
        self.slots.lock().clone()
    }

    /// The `data` of `/api/v1/rules`; `kind` is `alert` or `record` to
    /// keep only those rules.
    pub fn rules_json(&self, kind: Option<&str>) -> Json {
        let mut groups = Vec::new();
        for slot in self.slots() {
            let state = slot.state.lock();
            let health = slot.rule_health.lock();
            let mut rules = Vec::new();
            for (i, r) in state.rules().iter().enumerate() {
                let h = health.get(i).cloned().unwrap_or_default();
                let common = |obj: &mut serde_json::Map<String, Json>| {
                    obj.insert(
                        "health".into(),
                        json!(match (&h.last_error, h.evaluated) {
                            (Some(_), _) => "err",
                            (None, true) => "ok",
                            (None, false) => "unknown",
                        }),
                    );
                    if let Some(e) = &h.last_error {
                        obj.insert("lastError".into(), json!(e));
                    }
                    obj.insert(
                        "lastEvaluation".into(),
                        json!(if h.evaluated {
                            rfc3339(h.last_eval_ms)
                        } else {
                            "0001-01-01T00:00:00Z".to_string()
                        }),
                    );
                    obj.insert("evaluationTime".into(), json!(h.duration_s));
                };
                match r {
                    RuleState::Recording(rec) => {
                        if kind == Some("alert") {
                            continue;
                        }
                        let rule = rec.rule();
                        let mut obj = serde_json::Map::new();
                        obj.insert("name".into(), json!(rule.record));
                        obj.insert("query".into(), json!(rule.expr));
                        if !rule.labels.is_empty() {
                            obj.insert("labels".into(), pairs_json(&rule.labels));
                        }
                        common(&mut obj);
                        obj.insert("type".into(), json!("recording"));
                        rules.push(Json::Object(obj));
                    }
                    RuleState::Alerting(a) => {
                        if kind == Some("record") {
                            continue;
                        }
                        let rule = a.rule();
                        let alerts: Vec<Json> = a
                            .alerts()
                            .filter(|al| al.state != vigil_rules::rules::AlertState::Inactive)
                            .map(alert_json)
                            .collect();
                        let state_name = if a
                            .alerts()
                            .any(|al| al.state == vigil_rules::rules::AlertState::Firing)
                        {
                            "firing"
                        } else if a
                            .alerts()
                            .any(|al| al.state == vigil_rules::rules::AlertState::Pending)
                        {
                            "pending"
                        } else {
                            "inactive"
                        };
                        let mut obj = serde_json::Map::new();
                        obj.insert("state".into(), json!(state_name));
                        obj.insert("name".into(), json!(rule.alert));
                        obj.insert("query".into(), json!(rule.expr));
                        obj.insert("duration".into(), json!(rule.for_ms as f64 / 1000.0));
                        obj.insert(
                            "keepFiringFor".into(),
                            json!(rule.keep_firing_for_ms as f64 / 1000.0),
                        );
                        obj.insert("labels".into(), pairs_json(&rule.labels));
                        obj.insert("annotations".into(), pairs_json(&rule.annotations));
                        obj.insert("alerts".into(), Json::Array(alerts));
                        common(&mut obj);
                        obj.insert("type".into(), json!("alerting"));
                        rules.push(Json::Object(obj));
                    }
                }
            }
            // A type filter drops the groups it empties, as Prometheus does.
            if kind.is_some() && rules.is_empty() {
                continue;
            }
            let last = slot.last_eval_ms.load(Ordering::Relaxed) as i64;
            groups.push(json!({
                "name": state.group.name,
                "file": slot.file,
                "rules": rules,
                "interval": slot.interval_ms as f64 / 1000.0,
                "limit": state.group.limit,
                "evaluationTime": slot.last_duration_ns.load(Ordering::Relaxed) as f64 / 1e9,
                "lastEvaluation": if last > 0 { rfc3339(last) } else { "0001-01-01T00:00:00Z".to_string() },
            }));
        }
        json!({ "groups": groups })
    }

    /// The `data` of `/api/v1/alerts`: every pending and firing alert.
    pub fn alerts_json(&self) -> Json {
        let mut alerts = Vec::new();
        for slot in self.slots() {
            let state = slot.state.lock();
            for r in state.rules() {
                if let RuleState::Alerting(a) = r {
                    alerts.extend(
                        a.alerts()
                            .filter(|al| al.state != vigil_rules::rules::AlertState::Inactive)
                            .map(alert_json),
                    );
                }
            }
        }
        json!({ "alerts": alerts })
    }

    /// Number of groups and of rules loaded.
    pub fn counts(&self) -> (usize, usize) {
        let slots = self.slots();
        let rules = slots.iter().map(|s| s.state.lock().rules().len()).sum();
        (slots.len(), rules)
    }
}

impl Drop for RuleManager {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stop_running(running: Running) {
    {
        let (flag, cv) = &*running.stop;
        *flag.lock() = true;
        cv.notify_all();
    }
    for t in running.threads {
        let _ = t.join();
    }
}

fn pairs_json(pairs: &[(String, String)]) -> Json {
    Json::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect(),
    )
}

fn alert_json(a: &vigil_rules::rules::Alert) -> Json {
    let labels: serde_json::Map<String, Json> = a
        .labels
        .iter()
        .map(|l| (l.name.clone(), Json::String(l.value.clone())))
        .collect();
    let mut obj = serde_json::Map::new();
    obj.insert("labels".into(), Json::Object(labels));
    obj.insert("annotations".into(), pairs_json(&a.annotations));
    obj.insert("state".into(), json!(a.state.as_str()));
    obj.insert("activeAt".into(), json!(rfc3339(a.active_at)));
    if let Some(since) = a.keep_firing_since {
        obj.insert("keepFiringSince".into(), json!(rfc3339(since)));
    }
    obj.insert("value".into(), json!(format_value(a.value)));
    Json::Object(obj)
}

/// An alert's value as Prometheus's API prints it: Go's
/// `strconv.FormatFloat(v, 'e', -1, 64)` (`1e+00`, `2.5e-07`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let rust = format!("{v:e}");
    let (mantissa, exp) = rust.split_once('e').unwrap_or((&rust, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

struct GroupCtx {
    slot: Arc<GroupSlot>,
    db: Arc<Db>,
    engine: Engine,
    notifier: Arc<dyn Notifier + Send + Sync>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    metrics: Arc<RuleMetrics>,
    resend_delay_ms: i64,
    external_url: String,
    default_interval_ms: i64,
}

impl GroupCtx {
    /// Waits until `deadline_ms` (wall clock) or a stop; true when stopped.
    fn sleep_until(&self, deadline_ms: i64) -> bool {
        let (flag, cv) = &*self.stop;
        let mut stopped = flag.lock();
        loop {
            if *stopped {
                return true;
            }
            let now = now_ms();
            if now >= deadline_ms {
                return false;
            }
            let wait = Duration::from_millis((deadline_ms - now) as u64);
            cv.wait_for(&mut stopped, wait);
        }
    }

    fn run(self) {
        let interval = self.slot.interval_ms;
        let mut next = {
            let state = self.slot.state.lock();
            state.eval_timestamp(now_ms(), &self.slot.file, self.default_interval_ms) + interval
        };
        loop {
            if self.sleep_until(next) {
                return;
            }
            self.eval_once(next);
            // Missed slots are skipped, not caught up, as Prometheus does.
            let now = now_ms();
            let mut following = next + interval;
            if following <= now {
                let missed = (now - following) / interval + 1;
                self.metrics
                    .missed
                    .fetch_add(missed as u64, Ordering::Relaxed);
                following += missed * interval;
            }
            next = following;
        }
    }

    fn eval_once(&self, ts: i64) {
        let started = Instant::now();
        let mut state = self.slot.state.lock();
        let db: &Db = &self.db;
        // Time between sink calls: each successful rule's evaluation and
        // write (a failing rule's time is counted in the next one's).
        let mut per_rule: Vec<Duration> = Vec::new();
        let mut mark = Instant::now();
        let outcomes = {
            let db_ref = &self.db;
            let mut sink = |samples: &[Sample]| {
                // Each rule's output is committed before the next rule runs,
                // so later rules of the group read it.
                write_samples(db_ref, samples);
                let now = Instant::now();
                per_rule.push(now - mark);
                mark = now;
            };
            state.eval(&self.engine, db, ts, &mut sink)
        };
        self.metrics.iterations.fetch_add(1, Ordering::Relaxed);
        // Staleness for series a rule produced last time and not now.
        {
            let mut prev = self.slot.previous.lock();
            let mut app = self.db.head().appender();
            let mut stale = 0usize;
            for (i, o) in outcomes.iter().enumerate() {
                let now_set: BTreeSet<Labels> = match &o.result {
                    Ok(samples) => samples.iter().filter_map(|s| to_tsdb(&s.labels)).collect(),
                    Err(_) => BTreeSet::new(),
                };
                if let Some(old) = prev.get_mut(i) {
                    for gone in old.difference(&now_set) {
                        let _ = app.append(gone, ts, f64::from_bits(STALE_NAN_BITS));
                        stale += 1;
                    }
                    *old = now_set;
                }
            }
            if stale > 0 {
                let _ = app.commit();
            }
        }
        let elapsed = started.elapsed();
        {
            let mut health = self.slot.rule_health.lock();
            let mut timings = per_rule.into_iter();
            for (i, o) in outcomes.iter().enumerate() {
                self.metrics.evaluations.fetch_add(1, Ordering::Relaxed);
                if let Some(h) = health.get_mut(i) {
                    h.evaluated = true;
                    h.last_eval_ms = ts;
                    h.duration_s = if o.result.is_ok() {
                        timings.next().map_or(0.0, |d| d.as_secs_f64())
                    } else {
                        0.0
                    };
                    h.last_error = match &o.result {
                        Ok(_) => None,
                        Err(e) => {
                            self.metrics.failures.fetch_add(1, Ordering::Relaxed);
                            Some(e.to_string())
                        }
                    };
                }
            }
        }
        state.notify(
            ts,
            self.slot.interval_ms,
            self.resend_delay_ms,
            &self.external_url,
            &*self.notifier,
        );
        self.slot.last_eval_ms.store(ts as u64, Ordering::Relaxed);
        self.slot
            .last_duration_ns
            .store(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }
}

fn to_tsdb(l: &QLabels) -> Option<Labels> {
    Labels::new(l.iter().map(|p| (p.name.as_str(), p.value.as_str()))).ok()
}

fn write_samples(db: &Db, samples: &[Sample]) {
    if samples.is_empty() {
        return;
    }
    let mut app = db.head().appender();
    for s in samples {
        if let Some(l) = to_tsdb(&s.labels) {
            let _ = app.append(&l, s.t, s.value);
        }
    }
    let _ = app.commit();
}

/// Whether any loaded rule is an alerting rule (the notifier is only
/// needed then).
pub fn has_alerts(groups: &[(String, RuleGroup)]) -> bool {
    groups
        .iter()
        .any(|(_, g)| g.rules.iter().any(|r| matches!(r, Rule::Alerting(_))))
}
