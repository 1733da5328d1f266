//! `remote_write` in prometheus.yml: Prometheus's keys and defaults, read
//! as strictly as the rest of the file (`config.rs`): unknown or repeated
//! fields are errors naming the file, line, column and field.
//!
//! [`parse_remote_write`] takes the YAML node of the `remote_write` list, so
//! that `Config::parse` can call it for its `remote_write` field;
//! [`RemoteWriteConfig::parse_document`] reads a document whose top level
//! holds `remote_write:` (and may hold other sections, which it ignores).

use std::path::Path;
use std::time::Duration;

use super::super::config::{ConfigError, Decoder, join};
use super::super::relabel::RelabelConfig;
use super::super::yaml::{self, Kind, Node};

/// One `remote_write` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteWriteConfig {
    /// `url`: where to POST.
    pub url: String,
    /// `name`: the queue's name in metrics (`remote_name`) and in the data
    /// directory; when not set, a hash of the URL (Prometheus hashes the
    /// whole entry).
    pub name: String,
    /// `remote_timeout` (30s): a request's whole time.
    pub remote_timeout: Duration,
    /// `headers`: added to every request (the protocol's own may not be
    /// overridden).
    pub headers: Vec<(String, String)>,
    /// `basic_auth`: username and password (`password_file` read at load).
    pub basic_auth: Option<(String, String)>,
    /// `authorization`: the `Authorization` header's type (Bearer) and
    /// credentials (`credentials_file` read at load).
    pub authorization: Option<(String, String)>,
    /// `write_relabel_configs`: applied to each series before it is sent.
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// `send_exemplars` (false). The store keeps no exemplars, so there are
    /// none to send; accepted for compatibility.
    pub send_exemplars: bool,
    /// `metadata_config`.
    pub metadata_config: MetadataConfig,
    /// `queue_config`.
    pub queue_config: QueueConfig,
}

/// `metadata_config`. Parsed and validated; the store keeps no metadata, so
/// none is sent (see the README).
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataConfig {
    /// `send` (true).
    pub send: bool,
    /// `send_interval` (1m).
    pub send_interval: Duration,
    /// `max_samples_per_send` (500).
    pub max_samples_per_send: usize,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            send: true,
            send_interval: Duration::from_secs(60),
            max_samples_per_send: 500,
        }
    }
}

/// `queue_config`, with Prometheus's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// `capacity` (10000): samples buffered per shard before the WAL reader
    /// waits (the WAL holds the rest, so nothing is dropped).
    pub capacity: usize,
    /// `min_shards` (1).
    pub min_shards: usize,
    /// `max_shards` (50).
    pub max_shards: usize,
    /// `max_samples_per_send` (2000).
    pub max_samples_per_send: usize,
    /// `batch_send_deadline` (5s): a shard sends a partial batch after this.
    pub batch_send_deadline: Duration,
    /// `min_backoff` (30ms): the first retry's wait, doubled each time.
    pub min_backoff: Duration,
    /// `max_backoff` (5s).
    pub max_backoff: Duration,
    /// `retry_on_http_429` (true here: the remote write specification says
    /// 429 is retried; false drops on 429 like other 4xx).
    pub retry_on_http_429: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            min_shards: 1,
            max_shards: 50,
            max_samples_per_send: 2_000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: true,
        }
    }
}

impl RemoteWriteConfig {
    /// An entry for `url` with every default.
    pub fn new(url: &str) -> RemoteWriteConfig {
        RemoteWriteConfig {
            url: url.to_owned(),
            name: default_name(url),
            remote_timeout: Duration::from_secs(30),
            headers: Vec::new(),
            basic_auth: None,
            authorization: None,
            write_relabel_configs: Vec::new(),
            send_exemplars: false,
            metadata_config: MetadataConfig::default(),
            queue_config: QueueConfig::default(),
        }
    }

    /// The `remote_write` list of a YAML document (other top-level keys are
    /// ignored); `path` names the file in errors and resolves relative
    /// `password_file`s.
    ///
    /// ```
    /// use std::path::Path;
    /// use vigil_examples::monitor::remote::RemoteWriteConfig;
    ///
    /// let cfgs = RemoteWriteConfig::parse_document(
    ///     "remote_write:\n- url: http://127.0.0.1:9009/api/v1/push\n  queue_config: {max_shards: 4}\n",
    ///     Path::new("prometheus.yml"),
    /// )?;
    /// assert_eq!(cfgs[0].queue_config.max_shards, 4);
    /// let err = RemoteWriteConfig::parse_document(
    ///     "remote_write:\n- url: http://x/\n  remote_timeout: 5x\n",
    ///     Path::new("prometheus.yml"),
    /// )
    /// .unwrap_err();
    /// assert_eq!(err.to_string(), "prometheus.yml:3:19: remote_write[0].remote_timeout: invalid duration \"5x\"");
    /// # Ok::<(), vigil_examples::monitor::config::ConfigError>(())
    /// ```
    pub fn parse_document(text: &str, path: &Path) -> Result<Vec<RemoteWriteConfig>, ConfigError> {
        let file = path.display().to_string();
        let root = yaml::parse(text).map_err(|e| ConfigError::Invalid {
            file: file.clone(),
            line: e.line,
            col: e.col,
            field: String::new(),
            msg: e.msg,
        })?;
        let Some(Node {
            kind: Kind::Map(m), ..
        }) = root
        else {
            return Ok(Vec::new());
        };
        match m.iter().find(|(k, _)| k.scalar() == Some("remote_write")) {
            Some((_, v)) => parse_remote_write(v, path),
            None => Ok(Vec::new()),
        }
    }
}

/// Prometheus names an unnamed queue by a hash of its configuration; a hash
/// of the URL keeps the name (and so the saved WAL position) across reloads
/// that change only tuning.
fn default_name(url: &str) -> String {
    let d = super::super::relabel::md5(url.as_bytes());
    d[..3].iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses the `remote_write` list node of the configuration file `path`.
pub(crate) fn parse_remote_write(
    n: &Node,
    path: &Path,
) -> Result<Vec<RemoteWriteConfig>, ConfigError> {
    let d = Decoder {
        file: path.display().to_string(),
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let mut out: Vec<RemoteWriteConfig> = Vec::new();
    for (i, e) in d.seq(n, "remote_write")?.iter().enumerate() {
        let field = format!("remote_write[{i}]");
        let c = d.entry(e, &field)?;
        if out.iter().any(|o| o.name == c.name) {
            return Err(d.err(
                e,
                &field,
                format!("found multiple remote write configs with name {:?}", c.name),
            ));
        }
        out.push(c);
    }
    Ok(out)
}

impl Decoder {
    fn count(&self, n: &Node, field: &str) -> Result<usize, ConfigError> {
        n.scalar()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&v| v > 0)
            .ok_or_else(|| {
                self.err(
                    n,
                    field,
                    format!(
                        "expected a positive integer, found {:?}",
                        n.scalar().unwrap_or("")
                    ),
                )
            })
    }

    fn secret(&self, n: &Node, field: &str) -> Result<String, ConfigError> {
        let p = self.string(n, field)?;
        let full = if Path::new(&p).is_absolute() {
            std::path::PathBuf::from(&p)
        } else {
            self.dir.join(&p)
        };
        std::fs::read_to_string(&full)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
            .map_err(|e| self.err(n, field, format!("cannot read {}: {e}", full.display())))
    }

    fn entry(&self, n: &Node, path: &str) -> Result<RemoteWriteConfig, ConfigError> {
        let fields = self.fields(
            n,
            path,
            &[
                "url",
                "name",
                "remote_timeout",
                "headers",
                "basic_auth",
                "authorization",
                "write_relabel_configs",
                "send_exemplars",
                "send_native_histograms",
                "metadata_config",
                "queue_config",
            ],
        )?;
        let Some((_, url_node)) = fields.iter().find(|(k, _)| *k == "url") else {
            return Err(self.err(n, path, "url is required"));
        };
        let url = self.string(url_node, &join(path, "url"))?;
        // The blocking client is built without TLS (as the monitor's
        // scrapes): https would fail at every send, so it fails here.
        if !url.starts_with("http://") || url.len() < 8 {
            return Err(self.err(
                url_node,
                &join(path, "url"),
                format!(
                    "{url:?} is not an http:// URL (https is not supported: no TLS in this build)"
                ),
            ));
        }
        let mut c = RemoteWriteConfig::new(&url);
        for (name, v) in fields {
            let field = join(path, name);
            match name {
                "url" => {}
                "name" => {
                    let s = self.string(v, &field)?;
                    if s.is_empty()
                        || !s
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                    {
                        return Err(self.err(
                            v,
                            &field,
                            format!("{s:?} must be letters, digits, '-', '_' or '.'"),
                        ));
                    }
                    c.name = s;
                }
                "remote_timeout" => c.remote_timeout = self.duration(v, &field)?,
                "headers" => {
                    let Kind::Map(m) = &v.kind else {
                        return Err(self.err(v, &field, "expected a mapping"));
                    };
                    for (k, val) in m {
                        let key = self.string(k, &field)?;
                        let lower = key.to_ascii_lowercase();
                        if [
                            "authorization",
                            "host",
                            "content-encoding",
                            "content-length",
                            "content-type",
                            "user-agent",
                            "x-prometheus-remote-write-version",
                            "connection",
                            "keep-alive",
                            "proxy-authenticate",
                            "proxy-authorization",
                            "www-authenticate",
                        ]
                        .contains(&lower.as_str())
                        {
                            return Err(self.err(
                                k,
                                &join(&field, &key),
                                format!("{key} is a reserved header. It must not be changed"),
                            ));
                        }
                        c.headers
                            .push((key.clone(), self.string(val, &join(&field, &key))?));
                    }
                }
                "basic_auth" => {
                    let (mut user, mut pass) = (String::new(), None);
                    for (k, bv) in
                        self.fields(v, &field, &["username", "password", "password_file"])?
                    {
                        let f = join(&field, k);
                        match k {
                            "username" => user = self.string(bv, &f)?,
                            "password" if pass.is_some() => {
                                return Err(self.err(
                                    bv,
                                    &f,
                                    "at most one of password and password_file",
                                ));
                            }
                            "password" => pass = Some(self.string(bv, &f)?),
                            _ if pass.is_some() => {
                                return Err(self.err(
                                    bv,
                                    &f,
                                    "at most one of password and password_file",
                                ));
                            }
                            _ => pass = Some(self.secret(bv, &f)?),
                        }
                    }
                    c.basic_auth = Some((user, pass.unwrap_or_default()));
                }
                "authorization" => {
                    let (mut ty, mut cred) = ("Bearer".to_owned(), None);
                    for (k, av) in
                        self.fields(v, &field, &["type", "credentials", "credentials_file"])?
                    {
                        let f = join(&field, k);
                        match k {
                            "type" => {
                                ty = self.string(av, &f)?;
                                if ty.eq_ignore_ascii_case("basic") {
                                    return Err(self.err(
                                        av,
                                        &f,
                                        "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                                    ));
                                }
                            }
                            _ if cred.is_some() => {
                                return Err(self.err(
                                    av,
                                    &f,
                                    "at most one of credentials and credentials_file",
                                ));
                            }
                            "credentials" => cred = Some(self.string(av, &f)?),
                            _ => cred = Some(self.secret(av, &f)?),
                        }
                    }
                    c.authorization = Some((ty, cred.unwrap_or_default()));
                }
                "write_relabel_configs" => c.write_relabel_configs = self.relabels(v, &field)?,
                "send_exemplars" => c.send_exemplars = self.bool(v, &field)?,
                "send_native_histograms" => {
                    self.bool(v, &field)?;
                }
                "metadata_config" => {
                    for (k, mv) in self.fields(
                        v,
                        &field,
                        &["send", "send_interval", "max_samples_per_send"],
                    )? {
                        let f = join(&field, k);
                        match k {
                            "send" => c.metadata_config.send = self.bool(mv, &f)?,
                            "send_interval" => {
                                c.metadata_config.send_interval = self.duration(mv, &f)?
                            }
                            _ => c.metadata_config.max_samples_per_send = self.count(mv, &f)?,
                        }
                    }
                }
                "queue_config" => c.queue_config = self.queue(v, &field)?,
                _ => unreachable!("fields() only yields the allowed names"),
            }
        }
        if c.basic_auth.is_some() && c.authorization.is_some() {
            return Err(self.err(
                n,
                path,
                "at most one of basic_auth and authorization must be configured",
            ));
        }
        Ok(c)
    }

    fn queue(&self, n: &Node, path: &str) -> Result<QueueConfig, ConfigError> {
        let mut q = QueueConfig::default();
        for (k, v) in self.fields(
            n,
            path,
            &[
                "capacity",
                "min_shards",
                "max_shards",
                "max_samples_per_send",
                "batch_send_deadline",
                "min_backoff",
                "max_backoff",
                "retry_on_http_429",
                "sample_age_limit",
            ],
        )? {
            let f = join(path, k);
            match k {
                "capacity" => q.capacity = self.count(v, &f)?,
                "min_shards" => q.min_shards = self.count(v, &f)?,
                "max_shards" => q.max_shards = self.count(v, &f)?,
                "max_samples_per_send" => q.max_samples_per_send = self.count(v, &f)?,
                "batch_send_deadline" => q.batch_send_deadline = self.duration(v, &f)?,
                "min_backoff" => q.min_backoff = self.duration(v, &f)?,
                "max_backoff" => q.max_backoff = self.duration(v, &f)?,
                "retry_on_http_429" => q.retry_on_http_429 = self.bool(v, &f)?,
                _ => {
                    // Prometheus 2.50's sample_age_limit: accepted; samples are
                    // never dropped for age here (the WAL keeps them).
                    self.duration(v, &f)?;
                }
            }
        }
        if q.min_shards > q.max_shards {
            return Err(self.err(
                n,
                path,
                format!(
                    "min_shards ({}) is larger than max_shards ({})",
                    q.min_shards, q.max_shards
                ),
            ));
        }
        if q.min_backoff > q.max_backoff {
            return Err(self.err(n, path, "min_backoff is larger than max_backoff"));
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<RemoteWriteConfig>, String> {
        RemoteWriteConfig::parse_document(text, Path::new("p.yml")).map_err(|e| e.to_string())
    }

    #[test]
    fn every_key_and_the_defaults() {
        let c = parse(
            "remote_write:\n\
             - url: http://a:9009/push\n\
             \x20 name: mimir\n\
             \x20 remote_timeout: 10s\n\
             \x20 headers: {X-Scope-OrgID: t1}\n\
             \x20 authorization: {credentials: tok}\n\
             \x20 write_relabel_configs:\n\
             \x20 - source_labels: [__name__]\n\
             \x20   regex: go_.*\n\
             \x20   action: drop\n\
             \x20 send_exemplars: true\n\
             \x20 metadata_config: {send: false, send_interval: 2m}\n\
             \x20 queue_config: {capacity: 500, min_shards: 2, max_shards: 8, max_samples_per_send: 100,\n\
             \x20   batch_send_deadline: 1s, min_backoff: 10ms, max_backoff: 1s, retry_on_http_429: false}\n\
             - url: http://b/api/v1/write\n",
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "mimir");
        assert_eq!(c[0].remote_timeout, Duration::from_secs(10));
        assert_eq!(c[0].headers, [("X-Scope-OrgID".into(), "t1".into())]);
        assert_eq!(c[0].authorization, Some(("Bearer".into(), "tok".into())));
        assert_eq!(c[0].write_relabel_configs.len(), 1);
        assert!(!c[0].metadata_config.send);
        let q = &c[0].queue_config;
        assert_eq!(
            (
                q.capacity,
                q.min_shards,
                q.max_shards,
                q.max_samples_per_send
            ),
            (500, 2, 8, 100)
        );
        assert!(!q.retry_on_http_429);
        assert_eq!(c[1].queue_config, QueueConfig::default());
        assert_eq!(c[1].name.len(), 6);
        assert_eq!(c[1].remote_timeout, Duration::from_secs(30));
    }

    #[test]
    fn errors_name_file_line_column_and_field() {
        let cases = [
            (
                "remote_write:\n- name: x\n",
                "p.yml:2:3: remote_write[0]: url is required",
            ),
            (
                "remote_write:\n- url: ftp://x\n",
                "p.yml:2:8: remote_write[0].url: \"ftp://x\" is not an http:// URL (https is not supported: no TLS in this build)",
            ),
            (
                "remote_write:\n- url: http://x/\n  queue_config: {max_shard: 2}\n",
                "p.yml:3:18: remote_write[0].queue_config.max_shard: unknown field",
            ),
            (
                "remote_write:\n- url: http://x/\n  queue_config: {min_shards: 3, max_shards: 2}\n",
                "p.yml:3:17: remote_write[0].queue_config: min_shards (3) is larger than max_shards (2)",
            ),
            (
                "remote_write:\n- url: http://x/\n  headers: {Content-Type: x}\n",
                "p.yml:3:13: remote_write[0].headers.Content-Type: Content-Type is a reserved header. It must not be changed",
            ),
            (
                "remote_write:\n- url: http://x/\n- url: http://x/\n",
                "p.yml:3:3: remote_write[1]: found multiple remote write configs with name \"6e8eb8\"",
            ),
            (
                "remote_write:\n- url: http://x/\n  write_relabel_configs: [{action: nope}]\n",
                "p.yml:3:36: remote_write[0].write_relabel_configs[0].action: unknown relabel action \"nope\"",
            ),
            (
                "remote_write:\n- url: http://x/\n  basic_auth: {username: u}\n  authorization: {credentials: c}\n",
                "p.yml:2:3: remote_write[0]: at most one of basic_auth and authorization must be configured",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).unwrap_err(), want, "{text}");
        }
    }
}
