//! `/stats/summary`: node and pod CPU and memory in the shape of the
//! kubelet's Summary API (`stats/v1alpha1`), which metrics-server reads for
//! `kubectl top`.
//!
//! The node's figures come from the root cgroup when it has them (as the
//! kubelet's do: cAdvisor's `/` container), else from `/proc/stat` and
//! `/proc/meminfo`. Pods are the kubepods cgroups: a pod's own cgroup gives
//! its figures, each container cgroup under it a `containers` entry.
//! `usageNanoCores` is a rate, so it needs two readings: the state keeps
//! the previous cumulative usage of each cgroup and the time it was read,
//! and leaves the field out until a cgroup has been read twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::cgroup::{self, CgroupStats};
use super::container::kube_names;
use super::host::read_file;
use super::procfs;
use super::{AgentError, AgentOptions};

/// A pod's own cgroup (if seen) and its containers' cgroups.
type PodCgroups<'a> = (
    Option<&'a CgroupStats>,
    Vec<(cgroup::KubeRef, &'a CgroupStats)>,
);

/// The previous CPU readings, by cgroup id (`""` for the node from
/// `/proc/stat`).
#[derive(Debug, Default)]
pub struct SummaryState {
    prev: Mutex<HashMap<String, (Instant, u64)>>,
}

/// The RFC 3339 form of a time (UTC, whole seconds), as Go's `metav1.Time`
/// writes it.
pub fn rfc3339(secs_since_epoch: u64) -> String {
    let days = (secs_since_epoch / 86_400) as i64;
    let rem = secs_since_epoch % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl SummaryState {
    /// The rate in nanocores since the previous reading of `key`, and
    /// records this one. `None` on the first reading or when the counter
    /// went backwards (a recreated cgroup).
    fn rate(&self, key: &str, now: Instant, usage_ns: u64) -> Option<u64> {
        let mut prev = self.prev.lock().unwrap_or_else(|e| e.into_inner());
        let old = prev.insert(key.to_owned(), (now, usage_ns));
        let (t0, u0) = old?;
        let dt = now.duration_since(t0).as_nanos();
        if dt == 0 || usage_ns < u0 {
            return None;
        }
        Some(((usage_ns - u0) as u128 * 1_000_000_000 / dt) as u64)
    }

    fn cpu(&self, key: &str, now: Instant, time: &str, usage_ns: Option<u64>) -> Value {
        let mut m = Map::new();
        m.insert("time".into(), json!(time));
        if let Some(u) = usage_ns {
            if let Some(r) = self.rate(key, now, u) {
                m.insert("usageNanoCores".into(), json!(r));
            }
            m.insert("usageCoreNanoSeconds".into(), json!(u));
        }
        Value::Object(m)
    }

    /// Builds the document. Fails only when `/proc/stat` or `/proc/meminfo`
    /// cannot be read; missing cgroups just give no pods.
    pub fn build(&self, opts: &AgentOptions) -> Result<Value, AgentError> {
        let now = Instant::now();
        let time = rfc3339(now_secs());
        let stat_path = opts.procfs.join("stat");
        let st = procfs::parse_stat(&read_file(&stat_path)?, &stat_path.display().to_string())?;
        let mem_path = opts.procfs.join("meminfo");
        let mem = procfs::parse_meminfo(&read_file(&mem_path)?, &mem_path.display().to_string())?;
        let total = procfs::mem_value(&mem, "MemTotal_bytes").unwrap_or(0.0) as u64;
        let cgroups = if opts.containers {
            cgroup::read_all(&opts.cgroup_root).unwrap_or_default()
        } else {
            Vec::new()
        };
        let root = cgroups.iter().find(|c| c.id == "/");

        // Node CPU: the root cgroup's usage, or the busy ticks of /proc/stat.
        let node_cpu = match root.and_then(|r| r.cpu_usage_ns) {
            Some(u) => self.cpu("/", now, &time, Some(u)),
            None => {
                let hz = match rustix::param::clock_ticks_per_second() {
                    0 => 100,
                    t => t,
                };
                let ns = st.total.busy() * (1_000_000_000 / hz);
                self.cpu("", now, &time, Some(ns))
            }
        };
        // Node memory: the root cgroup's, or MemTotal − MemFree with the
        // inactive file pages taken off for the working set.
        let (usage, working_set, rss, faults) =
            match root.and_then(|r| r.mem_usage.zip(r.mem_working_set)) {
                Some((u, ws)) => (
                    u,
                    ws,
                    root.and_then(|r| r.mem_rss),
                    root.and_then(|r| r.mem_faults),
                ),
                None => {
                    let get = |k| procfs::mem_value(&mem, k).unwrap_or(0.0) as u64;
                    let u = total.saturating_sub(get("MemFree_bytes"));
                    (
                        u,
                        u.saturating_sub(get("Inactive_file_bytes")),
                        Some(get("AnonPages_bytes")),
                        None,
                    )
                }
            };
        let mut node_mem = memory_json(&time, Some(usage), Some(working_set), rss, faults);
        node_mem.insert(
            "availableBytes".into(),
            json!(total.saturating_sub(working_set)),
        );
        let nodename = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();

        // Pods: the kubepods cgroups grouped by pod UID.
        let names = cgroup::KubeNames::read(&opts.pod_logs, &opts.container_logs);
        let mut pods: BTreeMap<String, PodCgroups<'_>> = BTreeMap::new();
        for c in &cgroups {
            let Some(k) = cgroup::parse_kubepods(&c.id) else {
                continue;
            };
            let entry = pods.entry(k.pod_uid.clone()).or_default();
            if k.container_id.is_some() {
                entry.1.push((k, c));
            } else {
                entry.0 = Some(c);
            }
        }
        let mut pod_list = Vec::new();
        for (uid, (pod_cg, containers)) in &pods {
            let (ns, pod_name) = names
                .pods
                .get(uid)
                .map(|(n, p)| (n.as_str(), p.as_str()))
                .unwrap_or(("", ""));
            let mut cs = Vec::new();
            for (k, c) in containers {
                let (cname, _, _) = kube_names(&names, Some(k));
                // Without the kubelet's log links the name is unknown; the
                // runtime's container id stands in for it.
                let cname = if cname.is_empty() {
                    k.container_id.as_deref().unwrap_or("")
                } else {
                    cname
                };
                cs.push(json!({
                    "name": cname,
                    "cpu": self.cpu(&c.id, now, &time, c.cpu_usage_ns),
                    "memory": Value::Object(memory_json(&time, c.mem_usage, c.mem_working_set, c.mem_rss, c.mem_faults)),
                }));
            }
            let mut p = Map::new();
            p.insert(
                "podRef".into(),
                json!({"name": pod_name, "namespace": ns, "uid": uid}),
            );
            p.insert("containers".into(), Value::Array(cs));
            if let Some(c) = pod_cg {
                p.insert("cpu".into(), self.cpu(&c.id, now, &time, c.cpu_usage_ns));
                p.insert(
                    "memory".into(),
                    Value::Object(memory_json(
                        &time,
                        c.mem_usage,
                        c.mem_working_set,
                        c.mem_rss,
                        c.mem_faults,
                    )),
                );
            }
            pod_list.push(Value::Object(p));
        }
        // Forget cgroups that are gone, so the map does not grow forever.
        {
            let mut prev = self.prev.lock().unwrap_or_else(|e| e.into_inner());
            prev.retain(|k, _| k.is_empty() || cgroups.iter().any(|c| &c.id == k));
        }
        Ok(json!({
            "node": {
                "nodeName": nodename,
                "startTime": rfc3339(st.btime),
                "cpu": node_cpu,
                "memory": Value::Object(node_mem),
            },
            "pods": pod_list,
        }))
    }
}

fn memory_json(
    time: &str,
    usage: Option<u64>,
    working_set: Option<u64>,
    rss: Option<u64>,
    faults: Option<(u64, u64)>,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("time".into(), json!(time));
    if let Some(v) = usage {
        m.insert("usageBytes".into(), json!(v));
    }
    if let Some(v) = working_set {
        m.insert("workingSetBytes".into(), json!(v));
    }
    if let Some(v) = rss {
        m.insert("rssBytes".into(), json!(v));
    }
    if let Some((minor, major)) = faults {
        m.insert("pageFaults".into(), json!(minor));
        m.insert("majorPageFaults".into(), json!(major));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_335_111), "2026-11-22T08:11:51Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn rate_needs_two_readings() {
        let s = SummaryState::default();
        let t0 = Instant::now();
        assert_eq!(s.rate("/a", t0, 1_000), None);
        let t1 = t0 + std::time::Duration::from_millis(500);
        // 0.5 s of CPU in 0.5 s: one core.
        assert_eq!(s.rate("/a", t1, 1_000 + 500_000_000), Some(1_000_000_000));
        // Counter reset: no rate, but the new reading is kept.
        let t2 = t1 + std::time::Duration::from_secs(1);
        assert_eq!(s.rate("/a", t2, 10), None);
        let t3 = t2 + std::time::Duration::from_secs(2);
        assert_eq!(s.rate("/a", t3, 10 + 500_000_000), Some(250_000_000));
    }
}
