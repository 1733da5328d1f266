//! The `kubernetes` filter without an API server: pod, namespace, container
//! and ids come from the log file's path, which the tail input put in the
//! tag (`Tag kube.*`). Two layouts:
//!
//! - `/var/log/containers/<pod>_<namespace>_<container>-<docker_id>.log`
//!   (the kubelet's symlinks; tag `kube.var.log.containers.…`),
//! - `/var/log/pods/<namespace>_<pod>_<pod_uid>/<container>/<N>.log`.
//!
//! The record gets `kubernetes` = `{pod_name, namespace_name, pod_id,
//! container_name, docker_id}` (the ids the layout has). `Merge_Log On`
//! parses the `log` field as JSON and merges it into the record (or under
//! `Merge_Log_Key`), `Keep_Log Off` then drops `log`. The API-server keys
//! of fluent-bit (`Kube_URL`, `Labels`, `Annotations`, TLS, tokens ...) are
//! accepted so that existing configurations load, and have no effect:
//! labels and annotations are not fetched.

use super::{Action, COMMON_KEYS, Filter};
use crate::Result;
use crate::config::Section;
use crate::parser::parse_json_object;
use crate::record::{Fields, Record, Text, Value};

/// What the path says about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeMeta {
    /// The namespace.
    pub namespace_name: String,
    /// The pod.
    pub pod_name: String,
    /// The pod's UID (pods layout).
    pub pod_id: Option<String>,
    /// The container.
    pub container_name: String,
    /// The container id (containers layout).
    pub docker_id: Option<String>,
}

impl KubeMeta {
    /// As the nested map fluent-bit adds.
    pub fn to_value(&self) -> Value {
        let mut m = Fields::new();
        m.push("pod_name", self.pod_name.as_str());
        m.push("namespace_name", self.namespace_name.as_str());
        if let Some(id) = &self.pod_id {
            m.push("pod_id", id.as_str());
        }
        m.push("container_name", self.container_name.as_str());
        if let Some(id) = &self.docker_id {
            m.push("docker_id", id.as_str());
        }
        Value::Map(m)
    }
}

fn dns_ok(s: &str) -> bool {
    !s.is_empty() && !s.contains(['_', '/'])
}

/// Reads the metadata from a log path, with `/` separators or as a tag
/// where they became dots.
pub fn kube_meta_from_path(path: &str) -> Option<KubeMeta> {
    let p = path.trim_start_matches('/');
    for (prefix, sep) in [("var/log/pods/", '/'), ("var.log.pods.", '.')] {
        if let Some(at) = p.find(prefix) {
            let rest = &p[at + prefix.len()..];
            let rest = rest.strip_suffix(".log")?;
            let (rest, n) = rest.rsplit_once(sep)?;
            if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let (dir, container) = rest.rsplit_once(sep)?;
            let (ns, rest) = dir.split_once('_')?;
            let (pod, uid) = rest.rsplit_once('_')?;
            if !dns_ok(ns) || !dns_ok(pod) || !dns_ok(container) || uid.is_empty() {
                return None;
            }
            return Some(KubeMeta {
                namespace_name: ns.into(),
                pod_name: pod.into(),
                pod_id: Some(uid.into()),
                container_name: container.into(),
                docker_id: None,
            });
        }
    }
    for prefix in ["var/log/containers/", "var.log.containers."] {
        if let Some(at) = p.find(prefix) {
            let file = p[at + prefix.len()..].strip_suffix(".log")?;
            let (rest, id) = file.rsplit_once('-')?;
            let mut parts = rest.split('_');
            let (pod, ns, container) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some()
                || !dns_ok(pod)
                || !dns_ok(ns)
                || !dns_ok(container)
                || id.is_empty()
                || !id.bytes().all(|c| c.is_ascii_hexdigit())
            {
                return None;
            }
            return Some(KubeMeta {
                namespace_name: ns.into(),
                pod_name: pod.into(),
                pod_id: None,
                container_name: container.into(),
                docker_id: Some(id.into()),
            });
        }
    }
    None
}

/// The kubernetes filter.
#[derive(Debug)]
pub struct Kubernetes {
    merge_log: bool,
    merge_log_key: Option<String>,
    keep_log: bool,
    last: Option<(Text, Option<Value>)>,
}

/// fluent-bit keys about the API server and enrichment we do not do:
/// accepted, without effect.
const IGNORED: &[&str] = &[
    "kube_url",
    "kube_ca_file",
    "kube_ca_path",
    "kube_token_file",
    "kube_token_command",
    "kube_token_ttl",
    "kube_meta_preload_cache_dir",
    "kube_meta_cache_ttl",
    "kube_tag_prefix",
    "regex_parser",
    "labels",
    "annotations",
    "buffer_size",
    "use_kubelet",
    "kubelet_host",
    "kubelet_port",
    "k8s-logging.parser",
    "k8s-logging.exclude",
    "merge_log_trim",
    "merge_parser",
    "dummy_meta",
    "dns_retries",
    "dns_wait_time",
    "use_journal",
    "cache_use_docker_id",
    "tls.*",
    "owner_references",
    "namespace_labels",
    "namespace_annotations",
];

impl Kubernetes {
    /// Reads a `[FILTER] Name kubernetes` section.
    pub fn from_section(s: &Section) -> Result<Kubernetes> {
        let mut keys = COMMON_KEYS.to_vec();
        keys.extend(["merge_log", "merge_log_key", "keep_log"]);
        keys.extend_from_slice(IGNORED);
        s.check_keys(&keys)?;
        Ok(Kubernetes {
            merge_log: s.get_bool_or("merge_log", false)?,
            merge_log_key: s.get("merge_log_key").map(str::to_owned),
            keep_log: s.get_bool_or("keep_log", true)?,
            last: None,
        })
    }
}

impl Filter for Kubernetes {
    fn filter(&mut self, rec: &mut Record) -> Action {
        // Consecutive records mostly share a tag: parse it once.
        let meta = match &self.last {
            Some((tag, meta)) if *tag == rec.tag => meta.clone(),
            _ => {
                let meta = kube_meta_from_path(&rec.tag).map(|m| m.to_value());
                self.last = Some((rec.tag.clone(), meta.clone()));
                meta
            }
        };
        if self.merge_log {
            if let Some(Value::Str(log)) = rec.fields.get("log") {
                if let Ok(parsed) = parse_json_object(log.trim_end()) {
                    match &self.merge_log_key {
                        Some(k) => rec.fields.set(k.as_str(), Value::Map(parsed)),
                        None => {
                            for (k, v) in parsed.iter() {
                                rec.fields.set(k, v.clone());
                            }
                        }
                    }
                    if !self.keep_log {
                        rec.fields.remove("log");
                    }
                }
            }
        }
        if let Some(m) = meta {
            rec.fields.set("kubernetes", m);
        }
        Action::Keep
    }
}
