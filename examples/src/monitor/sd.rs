//! Service discovery: target groups from `static_configs` and from
//! `file_sd_configs` files, and the step that turns a discovered target
//! into the labels and URL it is scraped with (Prometheus's
//! `PopulateLabels`).
//!
//! file_sd: every file matching a config's globs is a list of groups
//! (`[{"targets": ["host:port"], "labels": {...}}]`) in JSON (`.json`) or YAML
//! (`.yml`, `.yaml`). Files are re-read when their size or modification time
//! changes (checked each time [`FileDiscovery::refresh`] is called; the
//! scrape manager calls it a few times a second) and all of them every
//! `refresh_interval`. A file that fails to read or parse keeps its last
//! good groups and its error is reported ([`FileDiscovery::errors`]); a file
//! that disappears takes its groups with it. Each group gets
//! `__meta_filepath`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use vigil_exposition::is_legacy_label_name;

use super::config::{FileSdConfig, ScrapeConfig, StaticConfig, format_duration, parse_duration};
use super::relabel::relabel;
use super::yaml::{self, Kind, Node};

/// A group of targets sharing labels, as discovered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetGroup {
    /// `host:port` of each target.
    pub targets: Vec<String>,
    /// Labels of every target in the group (`__meta_*` included).
    pub labels: Vec<(String, String)>,
    /// Where the group came from (a file path, or `static/<n>`).
    pub source: String,
}

impl TargetGroup {
    /// The group of a `static_configs` entry.
    pub fn from_static(sc: &StaticConfig, index: usize) -> TargetGroup {
        TargetGroup {
            targets: sc.targets.clone(),
            labels: sc.labels.clone(),
            source: format!("static/{index}"),
        }
    }
}

/// A target after relabelling: what its scrape loop needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its labels before relabelling (`__address__`, `__meta_*`, `job`, ...).
    pub discovered: Vec<(String, String)>,
    /// Its labels after relabelling, `__`-labels removed, sorted: the labels
    /// every series of the target gets.
    pub labels: Vec<(String, String)>,
    /// The URL scraped.
    pub url: String,
    /// Scrape interval (from `__scrape_interval__`).
    pub interval: Duration,
    /// Scrape timeout (from `__scrape_timeout__`).
    pub timeout: Duration,
    /// Identity (labels and URL): a target with the same hash is the same
    /// target, and its loop keeps running across reloads.
    pub hash: u64,
}

/// A target that relabelling dropped (or that could not be made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedTarget {
    /// Its labels before relabelling.
    pub discovered: Vec<(String, String)>,
    /// The job it belongs to.
    pub scrape_pool: String,
    /// Why it could not be made, when relabelling kept it but the result
    /// was not a valid target (no address, bad interval...).
    pub error: Option<String>,
}

/// FNV-1a 64, the hash of target identity (stable across runs, so that the
/// spread of scrape offsets is too).
pub(crate) fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    let mut h = h;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn get<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn set_default(labels: &mut Vec<(String, String)>, name: &str, value: &str) {
    if get(labels, name).is_none() {
        labels.retain(|(n, _)| n != name);
        labels.push((name.to_owned(), value.to_owned()));
    }
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// The labels, URL and timing of one discovered target of job `sc`, as
/// Prometheus makes them: group labels under the target's `__address__`;
/// `job`, `__scheme__`, `__metrics_path__`, `__scrape_interval__`,
/// `__scrape_timeout__` and `__param_<name>` (first value) when unset;
/// relabelling; `instance` defaults to `__address__`; `__`-labels removed.
pub fn populate(
    sc: &ScrapeConfig,
    group: &TargetGroup,
    address: &str,
) -> Result<Target, DroppedTarget> {
    let mut lset: Vec<(String, String)> = group.labels.clone();
    lset.retain(|(n, _)| n != "__address__");
    lset.push(("__address__".into(), address.to_owned()));
    set_default(&mut lset, "job", &sc.job_name);
    set_default(
        &mut lset,
        "__scrape_interval__",
        &format_duration(sc.scrape_interval),
    );
    set_default(
        &mut lset,
        "__scrape_timeout__",
        &format_duration(sc.scrape_timeout),
    );
    set_default(&mut lset, "__metrics_path__", &sc.metrics_path);
    set_default(&mut lset, "__scheme__", &sc.scheme);
    for (k, v) in &sc.params {
        if let Some(first) = v.first() {
            set_default(&mut lset, &format!("__param_{k}"), first);
        }
    }
    lset.retain(|(_, v)| !v.is_empty());
    lset.sort();
    let discovered = lset.clone();
    let dropped = |error: Option<String>| DroppedTarget {
        discovered: discovered.clone(),
        scrape_pool: sc.job_name.clone(),
        error,
    };
    let Some(mut lb) = relabel(&lset, &sc.relabel_configs) else {
        return Err(dropped(None));
    };
    let Some(addr) = get(&lb, "__address__").map(str::to_owned) else {
        return Err(dropped(Some("no address".into())));
    };
    if addr.contains('/') {
        return Err(dropped(Some(format!("{addr:?} is not a valid hostname"))));
    }
    let interval_s = get(&lb, "__scrape_interval__")
        .unwrap_or_default()
        .to_owned();
    let interval = parse_duration(&interval_s).ok_or_else(|| {
        dropped(Some(format!(
            "error parsing scrape interval: not a valid duration string: {interval_s:?}"
        )))
    })?;
    if interval.is_zero() {
        return Err(dropped(Some("scrape interval cannot be 0".into())));
    }
    let timeout_s = get(&lb, "__scrape_timeout__")
        .unwrap_or_default()
        .to_owned();
    let timeout = parse_duration(&timeout_s).ok_or_else(|| {
        dropped(Some(format!(
            "error parsing scrape timeout: not a valid duration string: {timeout_s:?}"
        )))
    })?;
    if timeout.is_zero() {
        return Err(dropped(Some("scrape timeout cannot be 0".into())));
    }
    if timeout > interval {
        return Err(dropped(Some(format!(
            "scrape timeout cannot be greater than scrape interval ({timeout_s:?} > {interval_s:?})"
        ))));
    }
    let scheme = get(&lb, "__scheme__").unwrap_or("http").to_owned();
    if scheme != "http" {
        return Err(dropped(Some(format!("unsupported scheme {scheme:?}"))));
    }
    let path = get(&lb, "__metrics_path__").unwrap_or_default().to_owned();
    // Query parameters: the job's, each overridden by `__param_<name>`.
    let mut params: BTreeMap<String, Vec<String>> = sc.params.clone();
    for (n, v) in &lb {
        if let Some(k) = n.strip_prefix("__param_") {
            match params.get_mut(k) {
                Some(vals) if !vals.is_empty() => vals[0] = v.clone(),
                _ => {
                    params.insert(k.to_owned(), vec![v.clone()]);
                }
            }
        }
    }
    let mut url = format!("{scheme}://{addr}{path}");
    let mut first = true;
    for (k, vals) in &params {
        for v in vals {
            url.push(if first { '?' } else { '&' });
            first = false;
            query_escape(k, &mut url);
            url.push('=');
            query_escape(v, &mut url);
        }
    }
    lb.retain(|(n, _)| !n.starts_with("__"));
    if get(&lb, "instance").is_none() {
        lb.retain(|(n, _)| n != "instance");
        lb.push(("instance".into(), addr.clone()));
    }
    lb.sort();
    for (n, _) in &lb {
        if !is_legacy_label_name(n) {
            return Err(dropped(Some(format!("invalid label name {n:?}"))));
        }
    }
    let mut hash = FNV_OFFSET;
    for (n, v) in &lb {
        hash = fnv1a(hash, n.as_bytes());
        hash = fnv1a(hash, &[0xff]);
        hash = fnv1a(hash, v.as_bytes());
        hash = fnv1a(hash, &[0xff]);
    }
    hash = fnv1a(hash, url.as_bytes());
    Ok(Target {
        discovered,
        labels: lb,
        url,
        interval,
        timeout,
        hash,
    })
}

/// Every target of job `sc` from `groups`: the active ones (deduplicated by
/// identity, in discovery order) and the dropped ones.
pub fn targets_from_groups<'g>(
    sc: &ScrapeConfig,
    groups: impl IntoIterator<Item = &'g TargetGroup>,
) -> (Vec<Target>, Vec<DroppedTarget>) {
    let mut active: Vec<Target> = Vec::new();
    let mut dropped = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for g in groups {
        for addr in &g.targets {
            match populate(sc, g, addr) {
                Ok(t) => {
                    if seen.insert(t.hash) {
                        active.push(t);
                    }
                }
                Err(d) => dropped.push(d),
            }
        }
    }
    (active, dropped)
}

/// A file_sd file that failed to parse or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdError {
    /// The file.
    pub path: PathBuf,
    /// Line of the error (1-based; 0 when it is not about a place in the file).
    pub line: usize,
    /// Column of the error (1-based; 0 when not known).
    pub col: usize,
    /// What is wrong.
    pub msg: String,
}

impl std::fmt::Display for SdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.col,
                self.msg
            )
        } else {
            write!(f, "{}: {}", self.path.display(), self.msg)
        }
    }
}

impl std::error::Error for SdError {}

/// Parses a file_sd file: JSON when the name ends in `.json`, YAML
/// otherwise. Label names must be valid; targets must be `host:port`
/// without a path.
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<TargetGroup>, SdError> {
    let err = |line, col, msg: String| SdError {
        path: path.to_path_buf(),
        line,
        col,
        msg,
    };
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let mut groups = if is_json {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| err(e.line(), e.column(), format!("invalid JSON: {e}")))?;
        json_groups(&v).map_err(|m| err(0, 0, m))?
    } else {
        match yaml::parse(text) {
            Err(e) => return Err(err(e.line, e.col, e.msg)),
            Ok(None) => Vec::new(),
            Ok(Some(n)) => yaml_groups(&n).map_err(|(l, c, m)| err(l, c, m))?,
        }
    };
    let source = path.display().to_string();
    for (i, g) in groups.iter_mut().enumerate() {
        for t in &g.targets {
            if t.is_empty() || t.contains('/') {
                return Err(err(
                    0,
                    0,
                    format!("group {i}: {t:?} is not a valid target address"),
                ));
            }
        }
        for (n, _) in &g.labels {
            if !is_legacy_label_name(n) {
                return Err(err(
                    0,
                    0,
                    format!("group {i}: {n:?} is not a valid label name"),
                ));
            }
        }
        g.labels.retain(|(n, _)| n != "__meta_filepath");
        g.labels.push(("__meta_filepath".into(), source.clone()));
        g.labels.sort();
        g.source = format!("{source}:{i}");
    }
    Ok(groups)
}

fn json_groups(v: &serde_json::Value) -> Result<Vec<TargetGroup>, String> {
    let arr = v.as_array().ok_or("expected a list of target groups")?;
    let mut out = Vec::with_capacity(arr.len());
    for (i, g) in arr.iter().enumerate() {
        let obj = g
            .as_object()
            .ok_or_else(|| format!("group {i}: expected an object"))?;
        let mut tg = TargetGroup::default();
        if let Some(t) = obj.get("targets").filter(|t| !t.is_null()) {
            for x in t
                .as_array()
                .ok_or_else(|| format!("group {i}: targets: expected a list"))?
            {
                tg.targets.push(
                    x.as_str()
                        .ok_or_else(|| format!("group {i}: targets: expected strings"))?
                        .to_owned(),
                );
            }
        }
        if let Some(l) = obj.get("labels").filter(|l| !l.is_null()) {
            for (k, x) in l
                .as_object()
                .ok_or_else(|| format!("group {i}: labels: expected an object"))?
            {
                let v = x
                    .as_str()
                    .ok_or_else(|| format!("group {i}: labels.{k}: expected a string"))?;
                tg.labels.push((k.clone(), v.to_owned()));
            }
        }
        out.push(tg);
    }
    Ok(out)
}

fn yaml_groups(n: &Node) -> Result<Vec<TargetGroup>, (usize, usize, String)> {
    let bad = |n: &Node, m: String| (n.line, n.col, m);
    let list = match &n.kind {
        Kind::Seq(s) => s,
        Kind::Null => return Ok(Vec::new()),
        _ => return Err(bad(n, "expected a list of target groups".into())),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, g) in list.iter().enumerate() {
        let Kind::Map(m) = &g.kind else {
            return Err(bad(g, format!("group {i}: expected a mapping")));
        };
        let mut tg = TargetGroup::default();
        for (k, v) in m {
            match k.scalar() {
                Some("targets") => match &v.kind {
                    Kind::Null => {}
                    Kind::Seq(s) => {
                        for x in s {
                            let t = x.scalar().ok_or_else(|| {
                                bad(x, format!("group {i}: targets: expected strings"))
                            })?;
                            tg.targets.push(t.to_owned());
                        }
                    }
                    _ => return Err(bad(v, format!("group {i}: targets: expected a list"))),
                },
                Some("labels") => match &v.kind {
                    Kind::Null => {}
                    Kind::Map(lm) => {
                        for (lk, lv) in lm {
                            let name = lk.scalar().ok_or_else(|| {
                                bad(lk, format!("group {i}: labels: expected names"))
                            })?;
                            if tg.labels.iter().any(|(n, _)| n == name) {
                                return Err(bad(
                                    lk,
                                    format!("group {i}: label {name:?} given twice"),
                                ));
                            }
                            let value = match &lv.kind {
                                Kind::Null => "",
                                _ => lv.scalar().ok_or_else(|| {
                                    bad(lv, format!("group {i}: labels.{name}: expected a string"))
                                })?,
                            };
                            tg.labels.push((name.to_owned(), value.to_owned()));
                        }
                    }
                    _ => return Err(bad(v, format!("group {i}: labels: expected a mapping"))),
                },
                _ => {
                    return Err(bad(
                        k,
                        format!("group {i}: unknown field {:?}", k.scalar().unwrap_or("?")),
                    ));
                }
            }
        }
        out.push(tg);
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct FileState {
    /// Modification time and size when last read.
    stamp: Option<(SystemTime, u64)>,
    groups: Vec<TargetGroup>,
    error: Option<SdError>,
}

/// One `file_sd_configs` entry and what its files hold.
#[derive(Debug)]
pub struct FileDiscovery {
    cfg: FileSdConfig,
    files: BTreeMap<PathBuf, FileState>,
    last_full: Option<Instant>,
    /// Read or parse failures since creation (for
    /// `prometheus_sd_file_read_errors_total`).
    read_errors: u64,
}

impl FileDiscovery {
    /// A discovery with nothing read yet; call [`refresh`](Self::refresh).
    pub fn new(cfg: FileSdConfig) -> FileDiscovery {
        FileDiscovery {
            cfg,
            files: BTreeMap::new(),
            last_full: None,
            read_errors: 0,
        }
    }

    /// The configuration it runs.
    pub fn config(&self) -> &FileSdConfig {
        &self.cfg
    }

    /// Expands the globs and re-reads the files that changed (every file
    /// when `refresh_interval` has passed). True when the groups changed.
    pub fn refresh(&mut self) -> bool {
        let now = Instant::now();
        let full = self
            .last_full
            .is_none_or(|t| now.duration_since(t) >= self.cfg.refresh_interval);
        if full {
            self.last_full = Some(now);
        }
        let mut paths: Vec<PathBuf> = Vec::new();
        for pat in &self.cfg.files {
            if let Ok(it) = glob::glob(pat) {
                paths.extend(it.flatten());
            }
        }
        paths.sort();
        paths.dedup();
        let mut changed = false;
        let before = self.files.len();
        self.files.retain(|p, _| paths.contains(p));
        if self.files.len() != before {
            changed = true;
        }
        for p in paths {
            let stamp = std::fs::metadata(&p)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
            let st = self.files.entry(p.clone()).or_default();
            if !full && stamp.is_some() && st.stamp == stamp {
                continue;
            }
            st.stamp = stamp;
            let read = std::fs::read_to_string(&p).map_err(|e| SdError {
                path: p.clone(),
                line: 0,
                col: 0,
                msg: format!("cannot read: {e}"),
            });
            match read.and_then(|text| parse_file(&p, &text)) {
                Ok(groups) => {
                    st.error = None;
                    if groups != st.groups {
                        st.groups = groups;
                        changed = true;
                    }
                }
                Err(e) => {
                    // The last good groups stay: a half-written file must not
                    // make every target vanish.
                    self.read_errors += 1;
                    st.error = Some(e);
                }
            }
        }
        changed
    }

    /// Every group of every file, in path order.
    pub fn groups(&self) -> impl Iterator<Item = &TargetGroup> {
        self.files.values().flat_map(|f| f.groups.iter())
    }

    /// The current error of each file that failed its last read.
    pub fn errors(&self) -> Vec<SdError> {
        self.files
            .values()
            .filter_map(|f| f.error.clone())
            .collect()
    }

    /// Read or parse failures so far.
    pub fn read_errors(&self) -> u64 {
        self.read_errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::config::Config;

    fn job(yaml: &str) -> ScrapeConfig {
        Config::parse(yaml, Path::new("p.yml"))
            .unwrap()
            .scrape_configs[0]
            .clone()
    }

    #[test]
    fn populate_defaults_and_url() {
        let sc = job(
            "scrape_configs:\n- job_name: node\n  scrape_interval: 15s\n  params:\n    module: [http_2xx, x]\n    q: ['a b&c']\n",
        );
        let g = TargetGroup {
            targets: vec!["h:9100".into()],
            labels: vec![("zone".into(), "eu".into())],
            source: "static/0".into(),
        };
        let t = populate(&sc, &g, "h:9100").unwrap();
        assert_eq!(
            t.url,
            "http://h:9100/metrics?module=http_2xx&module=x&q=a+b%26c"
        );
        assert_eq!(
            t.labels,
            [
                ("instance".to_string(), "h:9100".to_string()),
                ("job".into(), "node".into()),
                ("zone".into(), "eu".into())
            ]
        );
        assert!(
            t.discovered
                .contains(&("__scrape_interval__".into(), "15s".into()))
        );
        assert!(
            t.discovered
                .contains(&("__param_module".into(), "http_2xx".into()))
        );
        assert_eq!(t.interval, Duration::from_secs(15));
    }

    #[test]
    fn bad_interval_label_is_an_error() {
        let sc = job(
            "scrape_configs:\n- job_name: a\n  relabel_configs:\n  - target_label: __scrape_interval__\n    replacement: soon\n",
        );
        let g = TargetGroup {
            targets: vec!["h:1".into()],
            ..Default::default()
        };
        let d = populate(&sc, &g, "h:1").unwrap_err();
        assert!(d.error.unwrap().contains("scrape interval"));
    }

    #[test]
    fn file_formats() {
        let j = parse_file(
            Path::new("/x/a.json"),
            r#"[{"targets": ["a:1", "b:2"], "labels": {"env": "prod"}}]"#,
        )
        .unwrap();
        assert_eq!(j[0].targets, ["a:1", "b:2"]);
        assert!(
            j[0].labels
                .contains(&("__meta_filepath".into(), "/x/a.json".into()))
        );
        let y = parse_file(
            Path::new("a.yml"),
            "- targets: [a:1]\n  labels:\n    env: prod\n",
        )
        .unwrap();
        assert_eq!(y[0].targets, ["a:1"]);
        let e = parse_file(Path::new("a.yml"), "- targets: [a:1]\n  lables: {}\n").unwrap_err();
        assert_eq!((e.line, e.col), (2, 3));
        let e = parse_file(Path::new("a.json"), "[{\"targets\": [1]}]").unwrap_err();
        assert!(e.msg.contains("expected strings"), "{e}");
        let e = parse_file(Path::new("a.json"), "[{\n\"targets\": [}]").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
