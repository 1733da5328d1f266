//! prometheus.yml: the subset vigil-monitor implements, loaded as strictly as
//! Prometheus loads it (`yaml.UnmarshalStrict`): unknown fields, repeated
//! keys and repeated job names are errors, and every error says which file,
//! line, column and field.
//!
//! Defaults are Prometheus's: `scrape_interval` 1m, `scrape_timeout` 10s
//! (never more than the interval when not set), `evaluation_interval` 1m,
//! `metrics_path` /metrics, `scheme` http, `honor_timestamps` true,
//! `honor_labels` false, no limits. Relative paths (`rule_files`,
//! `file_sd_configs` files) are taken from the configuration file's
//! directory, as Prometheus does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigil_exposition::is_legacy_label_name;

use super::relabel::{Action, RelabelConfig};
use super::remote::RemoteWriteConfig;
use super::remote::config::parse_remote_write;
use super::yaml::{self, Kind, Node};

/// A loaded, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The `global` section, defaults filled in.
    pub global: GlobalConfig,
    /// One entry per scrape job, in file order.
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Rule file globs, resolved against the configuration's directory.
    pub rule_files: Vec<String>,
    /// Where alerts go.
    pub alerting: AlertingConfig,
    /// Where samples are sent (`remote_write`), read by
    /// [`crate::monitor::remote::config`].
    pub remote_write: Vec<RemoteWriteConfig>,
    /// The file's text, for `/api/v1/status/config`.
    pub source: String,
    /// The file it came from.
    pub path: PathBuf,
}

/// The `global` section.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalConfig {
    /// How often targets are scraped when a job does not say.
    pub scrape_interval: Duration,
    /// How long a scrape may take when a job does not say.
    pub scrape_timeout: Duration,
    /// How often rule groups are evaluated when a group does not say.
    pub evaluation_interval: Duration,
    /// Labels added to alerts, federation and remote write (sorted by name).
    pub external_labels: Vec<(String, String)>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::from_secs(10),
            evaluation_interval: Duration::from_secs(60),
            external_labels: Vec::new(),
        }
    }
}

/// The `alerting` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertingConfig {
    /// Every Alertmanager (group) alerts are sent to.
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// One entry of `alerting.alertmanagers`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerConfig {
    /// `host:port` of each Alertmanager, from its `static_configs`.
    pub targets: Vec<String>,
    /// `http` (the only scheme without TLS support in the build).
    pub scheme: String,
    /// Prefix of the API path (`/` by default).
    pub path_prefix: String,
    /// Timeout of one notification request (10s by default).
    pub timeout: Duration,
    /// Alertmanager API version; only `v2` exists in current Alertmanagers.
    pub api_version: String,
}

/// One `scrape_configs` entry: a job.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeConfig {
    /// The job's name, the `job` label of its targets. Unique.
    pub job_name: String,
    /// How often each target is scraped.
    pub scrape_interval: Duration,
    /// The whole-request deadline of one scrape (≤ the interval).
    pub scrape_timeout: Duration,
    /// HTTP path of the metrics (`__metrics_path__`).
    pub metrics_path: String,
    /// `http` (`__scheme__`).
    pub scheme: String,
    /// Query parameters of every scrape request, by name.
    pub params: BTreeMap<String, Vec<String>>,
    /// Keep the target's own `job`/`instance`/... labels when they clash
    /// with the target labels (otherwise they become `exported_...`).
    pub honor_labels: bool,
    /// Use the timestamps the target exposes (otherwise the scrape time).
    pub honor_timestamps: bool,
    /// A scrape with more samples after metric relabelling fails (0: none).
    pub sample_limit: u64,
    /// A scrape with a sample of more labels fails (0: no limit).
    pub label_limit: u64,
    /// A body larger than this (uncompressed, bytes) fails the scrape (0: none).
    pub body_size_limit: u64,
    /// Targets written in the file.
    pub static_configs: Vec<StaticConfig>,
    /// Targets read from files.
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Applied to each discovered target.
    pub relabel_configs: Vec<RelabelConfig>,
    /// Applied to each scraped sample.
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

/// A target group written in the configuration (`static_configs`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StaticConfig {
    /// `host:port` of each target (`__address__`).
    pub targets: Vec<String>,
    /// Labels given to every target of the group.
    pub labels: Vec<(String, String)>,
}

/// One `file_sd_configs` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSdConfig {
    /// File globs (`.json`, `.yml`, `.yaml`), resolved against the
    /// configuration's directory.
    pub files: Vec<String>,
    /// Re-read every file at least this often (5m by default); changed
    /// files are also noticed sooner, see [`crate::monitor::sd`].
    pub refresh_interval: Duration,
}

/// What is wrong with a configuration, and where.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid YAML, or a field is wrong.
    Invalid {
        /// The file as named by the caller.
        file: String,
        /// 1-based line of the offending node.
        line: usize,
        /// 1-based column of the offending node.
        col: usize,
        /// Which field (`scrape_configs[1].scrape_interval`); empty for
        /// YAML syntax errors and the top level.
        field: String,
        /// What is wrong.
        msg: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "{}: cannot read: {source}", path.display())
            }
            ConfigError::Invalid {
                file,
                line,
                col,
                field,
                msg,
            } => {
                write!(f, "{file}:{line}:{col}: ")?;
                if !field.is_empty() {
                    write!(f, "{field}: ")?;
                }
                f.write_str(msg)
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Invalid { .. } => None,
        }
    }
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Validates `text` as the content of the file `path` (used in error
    /// messages and to resolve relative paths).
    ///
    /// ```
    /// use std::path::Path;
    /// use vigil_examples::monitor::config::Config;
    ///
    /// let cfg = Config::parse(
    ///     "scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:9100']\n",
    ///     Path::new("prometheus.yml"),
    /// )?;
    /// assert_eq!(cfg.scrape_configs[0].scrape_interval.as_secs(), 60);
    /// let err = Config::parse("global:\n  scrape_interval: 5x\n", Path::new("prometheus.yml"))
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "prometheus.yml:2:20: global.scrape_interval: invalid duration \"5x\"");
    /// # Ok::<(), vigil_examples::monitor::config::ConfigError>(())
    /// ```
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let d = Decoder {
            file: path.display().to_string(),
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let root = yaml::parse(text).map_err(|e| ConfigError::Invalid {
            file: d.file.clone(),
            line: e.line,
            col: e.col,
            field: String::new(),
            msg: e.msg,
        })?;
        let mut cfg = Config {
            global: GlobalConfig::default(),
            scrape_configs: Vec::new(),
            rule_files: Vec::new(),
            alerting: AlertingConfig::default(),
            remote_write: Vec::new(),
            source: text.to_owned(),
            path: path.to_path_buf(),
        };
        let Some(root) = root else {
            return Ok(cfg);
        };
        if root.kind == Kind::Null {
            return Ok(cfg);
        }
        let fields = d.fields(
            &root,
            "",
            &[
                "global",
                "scrape_configs",
                "rule_files",
                "alerting",
                "remote_write",
            ],
        )?;
        let mut scrape_node = None;
        for (name, v) in fields {
            match name {
                "global" => cfg.global = d.global(v)?,
                "scrape_configs" => scrape_node = Some(v),
                "rule_files" => {
                    for (i, f) in d.seq(v, "rule_files")?.iter().enumerate() {
                        let field = format!("rule_files[{i}]");
                        let pat = d.string(f, &field)?;
                        if pat.is_empty() {
                            return Err(d.err(f, &field, "empty rule file pattern"));
                        }
                        glob::Pattern::new(&pat)
                            .map_err(|e| d.err(f, &field, format!("invalid glob {pat:?}: {e}")))?;
                        cfg.rule_files.push(d.resolve(&pat));
                    }
                }
                "alerting" => cfg.alerting = d.alerting(v)?,
                "remote_write" => cfg.remote_write = parse_remote_write(v, path)?,
                _ => unreachable!("fields() only yields the allowed names"),
            }
        }
        // Jobs take their defaults from `global`, wherever it is in the file.
        if let Some(v) = scrape_node {
            for (i, job) in d.seq(v, "scrape_configs")?.iter().enumerate() {
                let field = format!("scrape_configs[{i}]");
                let sc = d.scrape_config(job, &field, &cfg.global)?;
                if cfg.scrape_configs.iter().any(|o| o.job_name == sc.job_name) {
                    return Err(d.err(
                        job,
                        &field,
                        format!(
                            "found multiple scrape configs with job name {:?}",
                            sc.job_name
                        ),
                    ));
                }
                cfg.scrape_configs.push(sc);
            }
        }
        Ok(cfg)
    }

    /// The scrape configuration of job `name`.
    pub fn job(&self, name: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs.iter().find(|s| s.job_name == name)
    }
}

/// Reads YAML nodes of one configuration file into typed values, with
/// errors naming the file, line, column and field (shared with the
/// `remote_write` reader).
pub(crate) struct Decoder {
    pub(crate) file: String,
    pub(crate) dir: PathBuf,
}

impl Decoder {
    pub(crate) fn err(&self, n: &Node, field: &str, msg: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: n.line,
            col: n.col,
            field: field.to_owned(),
            msg: msg.into(),
        }
    }

    pub(crate) fn resolve(&self, p: &str) -> String {
        if Path::new(p).is_absolute() || self.dir.as_os_str().is_empty() {
            p.to_owned()
        } else {
            self.dir.join(p).display().to_string()
        }
    }

    /// The fields of a mapping; unknown and repeated keys are errors. A
    /// null value counts as absent (as Go's YAML decoder leaves it zero).
    pub(crate) fn fields<'n>(
        &self,
        n: &'n Node,
        path: &str,
        allowed: &[&'static str],
    ) -> Result<Vec<(&'static str, &'n Node)>, ConfigError> {
        let map = match &n.kind {
            Kind::Map(m) => m,
            Kind::Null => return Ok(Vec::new()),
            _ => {
                return Err(self.err(
                    n,
                    path,
                    format!("expected a mapping, found {}", n.kind_name()),
                ));
            }
        };
        let mut out: Vec<(&'static str, &'n Node)> = Vec::with_capacity(map.len());
        for (k, v) in map {
            let Some(key) = k.scalar() else {
                return Err(self.err(k, path, "mapping keys must be strings"));
            };
            let sub = join(path, key);
            let Some(name) = allowed.iter().find(|a| **a == key) else {
                return Err(self.err(k, &sub, "unknown field"));
            };
            if out.iter().any(|(o, _)| o == name) {
                return Err(self.err(k, &sub, "field given twice"));
            }
            if v.kind != Kind::Null {
                out.push((name, v));
            }
        }
        Ok(out)
    }

    pub(crate) fn seq<'n>(&self, n: &'n Node, field: &str) -> Result<&'n [Node], ConfigError> {
        match &n.kind {
            Kind::Seq(s) => Ok(s),
            Kind::Null => Ok(&[]),
            _ => Err(self.err(
                n,
                field,
                format!("expected a list, found {}", n.kind_name()),
            )),
        }
    }

    pub(crate) fn string(&self, n: &Node, field: &str) -> Result<String, ConfigError> {
        n.scalar().map(str::to_owned).ok_or_else(|| {
            self.err(
                n,
                field,
                format!("expected a string, found {}", n.kind_name()),
            )
        })
    }

    pub(crate) fn strings(&self, n: &Node, field: &str) -> Result<Vec<String>, ConfigError> {
        self.seq(n, field)?
            .iter()
            .enumerate()
            .map(|(i, s)| self.string(s, &format!("{field}[{i}]")))
            .collect()
    }

    pub(crate) fn bool(&self, n: &Node, field: &str) -> Result<bool, ConfigError> {
        match n.scalar() {
            Some("true" | "True" | "TRUE") => Ok(true),
            Some("false" | "False" | "FALSE") => Ok(false),
            _ => Err(self.err(
                n,
                field,
                format!("expected true or false, found {}", show(n)),
            )),
        }
    }

    pub(crate) fn uint(&self, n: &Node, field: &str) -> Result<u64, ConfigError> {
        n.scalar()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| {
                self.err(
                    n,
                    field,
                    format!("expected a non-negative integer, found {}", show(n)),
                )
            })
    }

    pub(crate) fn duration(&self, n: &Node, field: &str) -> Result<Duration, ConfigError> {
        let s = n.scalar().unwrap_or_default();
        parse_duration(s).ok_or_else(|| self.err(n, field, format!("invalid duration {s:?}")))
    }

    pub(crate) fn label_map(
        &self,
        n: &Node,
        field: &str,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let map = match &n.kind {
            Kind::Map(m) => m,
            Kind::Null => return Ok(Vec::new()),
            _ => {
                return Err(self.err(
                    n,
                    field,
                    format!("expected a mapping of labels, found {}", n.kind_name()),
                ));
            }
        };
        let mut out: Vec<(String, String)> = Vec::with_capacity(map.len());
        for (k, v) in map {
            let name = self.string(k, field)?;
            let sub = join(field, &name);
            if !is_legacy_label_name(&name) {
                return Err(self.err(k, &sub, format!("{name:?} is not a valid label name")));
            }
            if out.iter().any(|(o, _)| *o == name) {
                return Err(self.err(k, &sub, "label given twice"));
            }
            let value = if v.kind == Kind::Null {
                String::new()
            } else {
                self.string(v, &sub)?
            };
            out.push((name, value));
        }
        out.sort();
        Ok(out)
    }

    fn global(&self, n: &Node) -> Result<GlobalConfig, ConfigError> {
        let mut g = GlobalConfig::default();
        let mut timeout = None;
        for (name, v) in self.fields(
            n,
            "global",
            &[
                "scrape_interval",
                "scrape_timeout",
                "evaluation_interval",
                "external_labels",
            ],
        )? {
            let field = join("global", name);
            match name {
                "scrape_interval" => g.scrape_interval = self.positive(v, &field)?,
                "scrape_timeout" => timeout = Some((self.positive(v, &field)?, v)),
                "evaluation_interval" => g.evaluation_interval = self.positive(v, &field)?,
                "external_labels" => g.external_labels = self.label_map(v, &field)?,
                _ => unreachable!(),
            }
        }
        match timeout {
            Some((t, v)) if t > g.scrape_interval => {
                return Err(self.err(
                    v,
                    "global.scrape_timeout",
                    format!(
                        "global scrape timeout {} greater than scrape interval {}",
                        format_duration(t),
                        format_duration(g.scrape_interval)
                    ),
                ));
            }
            Some((t, _)) => g.scrape_timeout = t,
            None => g.scrape_timeout = g.scrape_timeout.min(g.scrape_interval),
        }
        Ok(g)
    }

    fn positive(&self, n: &Node, field: &str) -> Result<Duration, ConfigError> {
        let d = self.duration(n, field)?;
        if d.is_zero() {
            return Err(self.err(n, field, "must be greater than 0"));
        }
        Ok(d)
    }

    fn scrape_config(
        &self,
        n: &Node,
        path: &str,
        global: &GlobalConfig,
    ) -> Result<ScrapeConfig, ConfigError> {
        let mut sc = ScrapeConfig {
            job_name: String::new(),
            scrape_interval: global.scrape_interval,
            scrape_timeout: Duration::ZERO,
            metrics_path: "/metrics".into(),
            scheme: "http".into(),
            params: BTreeMap::new(),
            honor_labels: false,
            honor_timestamps: true,
            sample_limit: 0,
            label_limit: 0,
            body_size_limit: 0,
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
        };
        let mut timeout_node = None;
        let fields = self.fields(
            n,
            path,
            &[
                "job_name",
                "scrape_interval",
                "scrape_timeout",
                "metrics_path",
                "scheme",
                "params",
                "honor_labels",
                "honor_timestamps",
                "sample_limit",
                "label_limit",
                "body_size_limit",
                "static_configs",
                "file_sd_configs",
                "relabel_configs",
                "metric_relabel_configs",
            ],
        )?;
        for (name, v) in fields {
            let field = join(path, name);
            match name {
                "job_name" => sc.job_name = self.string(v, &field)?,
                "scrape_interval" => sc.scrape_interval = self.positive(v, &field)?,
                "scrape_timeout" => {
                    sc.scrape_timeout = self.positive(v, &field)?;
                    timeout_node = Some(v);
                }
                "metrics_path" => {
                    sc.metrics_path = self.string(v, &field)?;
                    if !sc.metrics_path.starts_with('/') {
                        return Err(self.err(v, &field, "must start with \"/\""));
                    }
                }
                "scheme" => {
                    sc.scheme = self.string(v, &field)?;
                    if sc.scheme == "https" {
                        return Err(self.err(
                            v,
                            &field,
                            "scheme \"https\" is not supported (this build has no TLS)",
                        ));
                    }
                    if sc.scheme != "http" {
                        return Err(self.err(
                            v,
                            &field,
                            format!("invalid scheme {:?}: only \"http\" is supported", sc.scheme),
                        ));
                    }
                }
                "params" => sc.params = self.params(v, &field)?,
                "honor_labels" => sc.honor_labels = self.bool(v, &field)?,
                "honor_timestamps" => sc.honor_timestamps = self.bool(v, &field)?,
                "sample_limit" => sc.sample_limit = self.uint(v, &field)?,
                "label_limit" => sc.label_limit = self.uint(v, &field)?,
                "body_size_limit" => {
                    let s = v.scalar().unwrap_or_default();
                    sc.body_size_limit = parse_size(s)
                        .ok_or_else(|| self.err(v, &field, format!("invalid size {s:?}")))?;
                }
                "static_configs" => {
                    for (i, g) in self.seq(v, &field)?.iter().enumerate() {
                        sc.static_configs
                            .push(self.static_config(g, &format!("{field}[{i}]"))?);
                    }
                }
                "file_sd_configs" => {
                    for (i, g) in self.seq(v, &field)?.iter().enumerate() {
                        sc.file_sd_configs
                            .push(self.file_sd(g, &format!("{field}[{i}]"))?);
                    }
                }
                "relabel_configs" => sc.relabel_configs = self.relabels(v, &field)?,
                "metric_relabel_configs" => sc.metric_relabel_configs = self.relabels(v, &field)?,
                _ => unreachable!(),
            }
        }
        if sc.job_name.is_empty() {
            return Err(self.err(n, &join(path, "job_name"), "job_name is empty"));
        }
        match timeout_node {
            None => sc.scrape_timeout = global.scrape_timeout.min(sc.scrape_interval),
            Some(v) if sc.scrape_timeout > sc.scrape_interval => {
                return Err(self.err(
                    v,
                    &join(path, "scrape_timeout"),
                    format!(
                        "scrape timeout {} greater than scrape interval {} for scrape config with job name {:?}",
                        format_duration(sc.scrape_timeout),
                        format_duration(sc.scrape_interval),
                        sc.job_name
                    ),
                ));
            }
            Some(_) => {}
        }
        Ok(sc)
    }

    fn params(&self, n: &Node, field: &str) -> Result<BTreeMap<String, Vec<String>>, ConfigError> {
        let Kind::Map(map) = &n.kind else {
            return Err(self.err(
                n,
                field,
                format!("expected a mapping of lists, found {}", n.kind_name()),
            ));
        };
        let mut out = BTreeMap::new();
        for (k, v) in map {
            let name = self.string(k, field)?;
            let sub = join(field, &name);
            if out.contains_key(&name) {
                return Err(self.err(k, &sub, "parameter given twice"));
            }
            let values = self.strings(v, &sub)?;
            out.insert(name, values);
        }
        Ok(out)
    }

    fn static_config(&self, n: &Node, path: &str) -> Result<StaticConfig, ConfigError> {
        let mut sc = StaticConfig::default();
        for (name, v) in self.fields(n, path, &["targets", "labels"])? {
            let field = join(path, name);
            match name {
                "targets" => {
                    sc.targets = self.strings(v, &field)?;
                    for (i, t) in sc.targets.iter().enumerate() {
                        if t.is_empty() || t.contains('/') {
                            let item = self.seq(v, &field)?.get(i).unwrap_or(v);
                            return Err(self.err(
                                item,
                                &format!("{field}[{i}]"),
                                format!("{t:?} is not a valid target address (host:port)"),
                            ));
                        }
                    }
                }
                "labels" => sc.labels = self.label_map(v, &field)?,
                _ => unreachable!(),
            }
        }
        Ok(sc)
    }

    fn file_sd(&self, n: &Node, path: &str) -> Result<FileSdConfig, ConfigError> {
        let mut fc = FileSdConfig {
            files: Vec::new(),
            refresh_interval: Duration::from_secs(300),
        };
        for (name, v) in self.fields(n, path, &["files", "refresh_interval"])? {
            let field = join(path, name);
            match name {
                "files" => {
                    for (i, f) in self.seq(v, &field)?.iter().enumerate() {
                        let item = format!("{field}[{i}]");
                        let pat = self.string(f, &item)?;
                        if !valid_sd_file_pattern(&pat) {
                            return Err(self.err(
                                f,
                                &item,
                                format!("path {pat:?} is not valid for file discovery: it must end in .json, .yml or .yaml, with * only in the last part"),
                            ));
                        }
                        fc.files.push(self.resolve(&pat));
                    }
                }
                "refresh_interval" => fc.refresh_interval = self.positive(v, &field)?,
                _ => unreachable!(),
            }
        }
        if fc.files.is_empty() {
            return Err(self.err(
                n,
                &join(path, "files"),
                "file service discovery config must contain at least one path name",
            ));
        }
        Ok(fc)
    }

    pub(crate) fn relabels(
        &self,
        n: &Node,
        field: &str,
    ) -> Result<Vec<RelabelConfig>, ConfigError> {
        let mut out = Vec::new();
        for (i, r) in self.seq(n, field)?.iter().enumerate() {
            out.push(self.relabel(r, &format!("{field}[{i}]"))?);
        }
        Ok(out)
    }

    fn relabel(&self, n: &Node, path: &str) -> Result<RelabelConfig, ConfigError> {
        let mut b = RelabelConfig::builder();
        for (name, v) in self.fields(
            n,
            path,
            &[
                "source_labels",
                "separator",
                "regex",
                "modulus",
                "target_label",
                "replacement",
                "action",
            ],
        )? {
            let field = join(path, name);
            match name {
                "source_labels" => {
                    let labels = self.strings(v, &field)?;
                    for (i, l) in labels.iter().enumerate() {
                        if !is_legacy_label_name(l) {
                            let item = self.seq(v, &field)?.get(i).unwrap_or(v);
                            return Err(self.err(
                                item,
                                &format!("{field}[{i}]"),
                                format!("{l:?} is not a valid label name"),
                            ));
                        }
                    }
                    b.source_labels = Some(labels);
                }
                "separator" => b.separator = Some(self.string(v, &field)?),
                "regex" => b.regex = Some(self.string(v, &field)?),
                "modulus" => b.modulus = Some(self.uint(v, &field)?),
                "target_label" => b.target_label = Some(self.string(v, &field)?),
                "replacement" => b.replacement = Some(self.string(v, &field)?),
                "action" => {
                    let s = self.string(v, &field)?;
                    b.action = Some(Action::parse(&s).ok_or_else(|| {
                        self.err(v, &field, format!("unknown relabel action {s:?}"))
                    })?);
                }
                _ => unreachable!(),
            }
        }
        b.build().map_err(|e| self.err(n, path, e.to_string()))
    }

    fn alerting(&self, n: &Node) -> Result<AlertingConfig, ConfigError> {
        let mut a = AlertingConfig::default();
        for (name, v) in self.fields(n, "alerting", &["alertmanagers"])? {
            let field = join("alerting", name);
            match name {
                "alertmanagers" => {
                    for (i, am) in self.seq(v, &field)?.iter().enumerate() {
                        a.alertmanagers
                            .push(self.alertmanager(am, &format!("{field}[{i}]"))?);
                    }
                }
                _ => unreachable!(),
            }
        }
        Ok(a)
    }

    fn alertmanager(&self, n: &Node, path: &str) -> Result<AlertmanagerConfig, ConfigError> {
        let mut am = AlertmanagerConfig {
            targets: Vec::new(),
            scheme: "http".into(),
            path_prefix: "/".into(),
            timeout: Duration::from_secs(10),
            api_version: "v2".into(),
        };
        for (name, v) in self.fields(
            n,
            path,
            &[
                "static_configs",
                "scheme",
                "path_prefix",
                "timeout",
                "api_version",
            ],
        )? {
            let field = join(path, name);
            match name {
                "static_configs" => {
                    for (i, g) in self.seq(v, &field)?.iter().enumerate() {
                        let sub = format!("{field}[{i}]");
                        let sc = self.static_config(g, &sub)?;
                        if !sc.labels.is_empty() {
                            return Err(self.err(
                                g,
                                &join(&sub, "labels"),
                                "labels are not used for Alertmanager targets",
                            ));
                        }
                        am.targets.extend(sc.targets);
                    }
                }
                "scheme" => {
                    am.scheme = self.string(v, &field)?;
                    if am.scheme != "http" {
                        return Err(self.err(
                            v,
                            &field,
                            format!("invalid scheme {:?}: only \"http\" is supported", am.scheme),
                        ));
                    }
                }
                "path_prefix" => am.path_prefix = self.string(v, &field)?,
                "timeout" => am.timeout = self.positive(v, &field)?,
                "api_version" => {
                    am.api_version = self.string(v, &field)?;
                    if am.api_version != "v2" {
                        return Err(self.err(
                            v,
                            &field,
                            format!(
                                "unsupported Alertmanager API version {:?}: only \"v2\"",
                                am.api_version
                            ),
                        ));
                    }
                }
                _ => unreachable!(),
            }
        }
        Ok(am)
    }
}

pub(crate) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn show(n: &Node) -> String {
    match n.scalar() {
        Some(s) => format!("{s:?}"),
        None => n.kind_name().to_owned(),
    }
}

/// Prometheus's file_sd pattern rule: a `.json`/`.yml`/`.yaml` name, with a
/// `*` only in the last path element.
fn valid_sd_file_pattern(p: &str) -> bool {
    let lower = p.to_ascii_lowercase();
    let ext_ok = [".json", ".yml", ".yaml"]
        .iter()
        .any(|e| lower.ends_with(e));
    let (dir, _) = p.rsplit_once('/').unwrap_or(("", p));
    ext_ok && !dir.contains('*') && p.matches('*').count() <= 1
}

/// Parses a Prometheus duration: `1y2w3d4h5m6s7ms` (each unit at most once,
/// in that order; `0` alone is zero). Years are 365 days, weeks 7 days.
///
/// ```
/// use std::time::Duration;
/// use vigil_examples::monitor::config::parse_duration;
/// assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
/// assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
/// assert_eq!(parse_duration("5x"), None);
/// ```
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let mut i = 0;
    let mut next_unit = 0;
    let mut total: u64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let n: u64 = s[start..i].parse().ok()?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let k = UNITS[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
        next_unit = k + 1;
        total = total.checked_add(n.checked_mul(UNITS[k].1)?)?;
    }
    // Go's time.Duration holds at most ~292 years.
    if total > i64::MAX as u64 / 1_000_000 {
        return None;
    }
    Some(Duration::from_millis(total))
}

/// Writes a duration as Prometheus does (`1m30s`, `500ms`, `0s`).
///
/// ```
/// use std::time::Duration;
/// use vigil_examples::monitor::config::format_duration;
/// assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
/// assert_eq!(format_duration(Duration::from_secs(7 * 86_400)), "1w");
/// ```
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (u, unit) in [
        ("y", 365 * 86_400_000u64),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        // Prometheus prints weeks only when the days divide evenly.
        if u == "w" && (ms / 86_400_000) % 7 != 0 {
            continue;
        }
        if ms >= unit {
            out.push_str(&format!("{}{u}", ms / unit));
            ms %= unit;
        }
    }
    out
}

/// Parses a byte size as Prometheus's `body_size_limit` (base 2: `KB` and
/// `KiB` are both 1024): `0`, `512`, `10KB`, `100MiB`, `1GB`...
///
/// ```
/// use vigil_examples::monitor::config::parse_size;
/// assert_eq!(parse_size("10KB"), Some(10 * 1024));
/// assert_eq!(parse_size("1MiB"), Some(1 << 20));
/// assert_eq!(parse_size("ten"), None);
/// ```
pub fn parse_size(s: &str) -> Option<u64> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n: u64 = s[..digits].parse().ok()?;
    let shift = match &s[digits..] {
        "" | "B" => 0,
        "KB" | "KiB" => 10,
        "MB" | "MiB" => 20,
        "GB" | "GiB" => 30,
        "TB" | "TiB" => 40,
        "PB" | "PiB" => 50,
        "EB" | "EiB" => 60,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("p.yml"))
    }

    #[test]
    fn defaults_follow_prometheus() {
        let c = parse("scrape_configs:\n- job_name: a\n").unwrap();
        let j = &c.scrape_configs[0];
        assert_eq!(j.scrape_interval, Duration::from_secs(60));
        assert_eq!(j.scrape_timeout, Duration::from_secs(10));
        assert_eq!(j.metrics_path, "/metrics");
        assert_eq!(j.scheme, "http");
        assert!(j.honor_timestamps && !j.honor_labels);
        assert_eq!(c.global.evaluation_interval, Duration::from_secs(60));
    }

    #[test]
    fn timeout_defaults_to_interval_when_shorter() {
        let c = parse("global:\n  scrape_interval: 5s\nscrape_configs:\n- job_name: a\n  scrape_interval: 2s\n").unwrap();
        assert_eq!(c.global.scrape_timeout, Duration::from_secs(5));
        assert_eq!(c.scrape_configs[0].scrape_timeout, Duration::from_secs(2));
    }

    #[test]
    fn durations_round_trip() {
        for s in ["1m", "15s", "1h30m", "500ms", "2d", "1w", "1y", "1m1s1ms"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
        for bad in ["", "1", "m", "1s1m", "1ss", "-1s", "1.5s", "1 s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("1GB"), Some(1 << 30));
        assert_eq!(parse_size("1XB"), None);
        assert_eq!(parse_size("99999999999999EB"), None);
    }

    #[test]
    fn sd_file_patterns() {
        assert!(valid_sd_file_pattern("targets/*.json"));
        assert!(valid_sd_file_pattern("a.YAML"));
        assert!(!valid_sd_file_pattern("*/a.json"));
        assert!(!valid_sd_file_pattern("a.txt"));
    }
}
