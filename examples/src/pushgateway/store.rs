//! The metric store: groups keyed by their grouping labels, the write rules
//! of PUT/POST/DELETE, the consistency check, the merged view for scraping,
//! the JSON of `/api/v1/metrics`, and the persistence file.
//!
//! The consistency check works as the Pushgateway 1.5's does: it builds the
//! state as it would be after the write, the gateway's own metrics included,
//! and refuses the write if that state could not be gathered (a family with
//! two types, the same series twice, a histogram or summary whose
//! `_sum`/`_count`/`_bucket` names collide with another family, a pushed
//! timestamp, a reserved label name). A refused write changes nothing but
//! the group's `push_failure_time_seconds`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value as Json, json};
use vigil_exposition::{Format, MetricFamily};

use super::PushgatewayError;
use super::model::{Family, Kind, Metric, Value, go_float, parse_body, sort_metrics};

/// A grouping key: label name to value, `job` included.
pub type GroupKey = BTreeMap<String, String>;

/// The name of the per-group success timestamp.
pub const PUSH_TIME: &str = "push_time_seconds";
/// The name of the per-group failure timestamp.
pub const PUSH_FAILURE_TIME: &str = "push_failure_time_seconds";
const PUSH_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway succeeded.";
const PUSH_FAILURE_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway failed.";

/// A family as stored, with the time of the write that put it there.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The family, grouping labels applied.
    pub family: Family,
    /// Unix seconds of the write.
    pub time: f64,
}

/// One group.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Group {
    /// Pushed families by name.
    pub families: BTreeMap<String, Stored>,
    /// Unix seconds of the last successful write (0: never).
    pub push_time: f64,
    /// Unix seconds of the last refused write (0: never).
    pub failure_time: f64,
    /// Time of the write that set `push_time` (for the JSON's time_stamp).
    pub push_stamp: f64,
    /// Time of the write that set `failure_time`.
    pub failure_stamp: f64,
}

/// How a write replaces what the group holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// PUT: the whole group.
    Replace,
    /// POST: families of the same names.
    Merge,
}

/// Why a push was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The body does not parse: nothing is recorded.
    Parse(String),
    /// The result would be inconsistent: the failure time is recorded.
    Inconsistent(String),
}

/// One push: where, what and how.
#[derive(Debug, Clone, Copy)]
pub struct Push<'a> {
    /// The group.
    pub key: &'a GroupKey,
    /// The body as sent.
    pub body: &'a [u8],
    /// Whether the body is OpenMetrics (else text 0.0.4).
    pub openmetrics: bool,
    /// PUT or POST.
    pub mode: WriteMode,
}

/// The groups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Store {
    /// Groups by grouping key.
    pub groups: BTreeMap<GroupKey, Group>,
}

/// Sets the grouping labels on every metric (they win over pushed ones) and
/// an empty `instance` where there is none, as the Pushgateway does.
fn apply_grouping(fams: &mut [Family], key: &GroupKey) {
    for f in fams {
        for m in &mut f.metrics {
            for (n, v) in key {
                match m.labels.iter_mut().find(|(have, _)| have == n) {
                    Some(l) => l.1 = v.clone(),
                    None => m.labels.push((n.clone(), v.clone())),
                }
            }
            if !m.labels.iter().any(|(n, _)| n == "instance") {
                m.labels.push(("instance".into(), String::new()));
            }
            m.labels.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }
}

impl Store {
    /// Parses and applies a push. `own` are the gateway's own families
    /// (pushed ones may not conflict with them); `check` false skips the
    /// consistency check (`--push.disable-consistency-check`).
    pub fn push(
        &mut self,
        rq: Push<'_>,
        now: f64,
        own: &[Family],
        check: bool,
    ) -> Result<(), Refusal> {
        let Push {
            key,
            body,
            openmetrics,
            mode,
        } = rq;
        let mut fams = parse_body(body, openmetrics).map_err(Refusal::Parse)?;
        // The gateway keeps its own timestamps under these names.
        fams.retain(|f| f.name != PUSH_TIME && f.name != PUSH_FAILURE_TIME);
        apply_grouping(&mut fams, key);
        let mut next = self.groups.get(key).cloned().unwrap_or_default();
        if mode == WriteMode::Replace {
            next.families.clear();
        }
        for f in fams {
            next.families.insert(
                f.name.clone(),
                Stored {
                    family: f,
                    time: now,
                },
            );
        }
        next.push_time = now;
        next.push_stamp = now;
        if check {
            if let Err(e) = self.check_with(key, &next, own) {
                let g = self.groups.entry(key.clone()).or_default();
                g.failure_time = now;
                g.failure_stamp = now;
                return Err(Refusal::Inconsistent(e));
            }
        }
        self.groups.insert(key.clone(), next);
        Ok(())
    }

    /// Deletes a group; whether it existed.
    pub fn delete(&mut self, key: &GroupKey) -> bool {
        self.groups.remove(key).is_some()
    }

    /// The check of the state where `key` holds `next`.
    fn check_with(&self, key: &GroupKey, next: &Group, own: &[Family]) -> Result<(), String> {
        for st in next.families.values() {
            if st.family.metrics.iter().any(|m| m.timestamp_ms.is_some()) {
                return Err("pushed metrics must not have timestamps".into());
            }
            for m in &st.family.metrics {
                for (n, _) in &m.labels {
                    if n.starts_with("__") {
                        return Err(format!(
                            "collected metric {:?} has a label with a reserved name {n:?}",
                            st.family.name
                        ));
                    }
                }
            }
        }
        // The timestamps take part: two groups whose keys differ only by an
        // empty `instance` would expose the same push_time_seconds series.
        let mut stamps: Vec<Family> = Vec::new();
        let mut all: Vec<&Family> = own.iter().collect();
        for (k, g) in &self.groups {
            if k != key {
                all.extend(g.families.values().map(|s| &s.family));
                stamps.extend(timestamps(k, g));
            }
        }
        all.extend(next.families.values().map(|s| &s.family));
        stamps.extend(timestamps(key, next));
        all.extend(stamps.iter());
        check_consistent(&all)
    }

    /// Everything to expose: pushed families merged across groups, the
    /// timestamps of every group, and `own`, sorted by name as Go's
    /// gatherer sorts them. Where groups disagree on HELP, the most recent
    /// write's text is used (Go picks one at random).
    pub fn gather(&self, own: &[Family]) -> Vec<Family> {
        let mut merged: BTreeMap<String, (Family, f64)> = BTreeMap::new();
        let mut add = |f: &Family, time: f64| match merged.get_mut(&f.name) {
            Some((have, t)) => {
                have.metrics.extend(f.metrics.iter().cloned());
                if time >= *t && f.help.is_some() {
                    have.help = f.help.clone();
                    *t = time;
                }
            }
            None => {
                merged.insert(f.name.clone(), (f.clone(), time));
            }
        };
        for (key, g) in &self.groups {
            for st in g.families.values() {
                add(&st.family, st.time);
            }
            for f in timestamps(key, g) {
                add(&f, 0.0);
            }
        }
        for f in own {
            add(f, f64::MAX);
        }
        merged
            .into_values()
            .map(|(mut f, _)| {
                sort_metrics(&mut f.metrics);
                f
            })
            .collect()
    }

    /// The text 0.0.4 exposition of [`Store::gather`].
    pub fn encode(&self, own: &[Family]) -> Vec<u8> {
        let fams: Vec<MetricFamily> = self.gather(own).iter().map(Family::to_exposition).collect();
        let mut out = Vec::new();
        vigil_exposition::encode::encode_families(&fams, Format::Text, &mut out);
        out
    }

    /// The `data` array of `/api/v1/metrics`.
    pub fn api_json(&self) -> Json {
        let mut groups = Vec::with_capacity(self.groups.len());
        for (key, g) in &self.groups {
            let mut obj = Map::new();
            obj.insert("labels".into(), json!(key));
            for st in g.families.values() {
                obj.insert(st.family.name.clone(), family_json(&st.family, st.time));
            }
            for f in timestamps(key, g) {
                let stamp = if f.name == PUSH_TIME {
                    g.push_stamp
                } else {
                    g.failure_stamp
                };
                obj.insert(f.name.clone(), family_json(&f, stamp));
            }
            obj.insert(
                "last_push_successful".into(),
                json!(g.push_time >= g.failure_time),
            );
            groups.push(Json::Object(obj));
        }
        Json::Array(groups)
    }

    /// Writes the persistence file atomically: a temporary file beside it,
    /// fsynced, renamed over it, and the directory fsynced.
    pub fn persist(&self, path: &Path) -> Result<(), PushgatewayError> {
        let mut groups = Vec::with_capacity(self.groups.len());
        for (key, g) in &self.groups {
            let fams: Vec<Json> = g
                .families
                .values()
                .map(|st| json!({"time": exact(st.time), "text": st.family.to_text()}))
                .collect();
            groups.push(json!({
                "labels": key,
                "push_time_seconds": exact(g.push_time),
                "push_failure_time_seconds": exact(g.failure_time),
                "push_stamp": exact(g.push_stamp),
                "failure_stamp": exact(g.failure_stamp),
                "families": fams,
            }));
        }
        let doc = json!({"format": FILE_FORMAT, "version": FILE_VERSION, "groups": groups});
        let bytes = serde_json::to_vec(&doc).map_err(|e| PushgatewayError::Persist {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        write_atomic(path, &bytes).map_err(|e| PushgatewayError::Persist {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Reads a persistence file written by [`Store::persist`]. A missing file
    /// is an empty store.
    pub fn load(path: &Path) -> Result<Store, PushgatewayError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Store::default()),
            Err(e) => {
                return Err(PushgatewayError::Persist {
                    path: path.to_owned(),
                    reason: e.to_string(),
                });
            }
        };
        let bad = |reason: String| PushgatewayError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        let doc: Json = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if doc["format"] != FILE_FORMAT {
            return Err(bad(format!("not a {FILE_FORMAT} file")));
        }
        if doc["version"] != FILE_VERSION {
            return Err(bad(format!(
                "version {} (this build reads version {FILE_VERSION})",
                doc["version"]
            )));
        }
        let mut store = Store::default();
        let groups = doc["groups"]
            .as_array()
            .ok_or_else(|| bad("no groups array".into()))?;
        for (i, g) in groups.iter().enumerate() {
            let key: GroupKey = g["labels"]
                .as_object()
                .ok_or_else(|| bad(format!("group {i}: no labels object")))?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            if !key.contains_key("job") {
                return Err(bad(format!("group {i}: no job label")));
            }
            let num = |field: &str| -> Result<f64, PushgatewayError> {
                g[field]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| bad(format!("group {i}: {field} is not a number in a string")))
            };
            let mut group = Group {
                push_time: num("push_time_seconds")?,
                failure_time: num("push_failure_time_seconds")?,
                push_stamp: num("push_stamp")?,
                failure_stamp: num("failure_stamp")?,
                families: BTreeMap::new(),
            };
            for (j, f) in g["families"].as_array().into_iter().flatten().enumerate() {
                let text = f["text"]
                    .as_str()
                    .ok_or_else(|| bad(format!("group {i}, family {j}: no text")))?;
                let parsed = parse_body(text.as_bytes(), false)
                    .map_err(|e| bad(format!("group {i}, family {j}: {e}")))?;
                let time: f64 = f["time"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| bad(format!("group {i}, family {j}: no time")))?;
                for fam in parsed {
                    group
                        .families
                        .insert(fam.name.clone(), Stored { family: fam, time });
                }
            }
            store.groups.insert(key, group);
        }
        Ok(store)
    }
}

/// A float as a string that parses back to the same bits (JSON numbers
/// would go through serde_json's inexact float parser).
fn exact(v: f64) -> String {
    v.to_string()
}

/// The persistence file's `format` field.
pub const FILE_FORMAT: &str = "vigil-pushgateway";
/// The persistence file's `version` field.
pub const FILE_VERSION: u64 = 1;

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    // The rename is durable only once the directory entry is.
    std::fs::File::open(&dir)?.sync_all()
}

/// The two timestamp gauges of a group.
fn timestamps(key: &GroupKey, g: &Group) -> [Family; 2] {
    let mut labels: Vec<(String, String)> =
        key.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if !key.contains_key("instance") {
        labels.push(("instance".into(), String::new()));
    }
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    let one = |name: &str, help: &str, v: f64| Family {
        name: name.into(),
        kind: Kind::Gauge,
        help: Some(help.into()),
        metrics: vec![Metric {
            labels: labels.clone(),
            value: Value::Simple(v),
            timestamp_ms: None,
        }],
    };
    [
        one(PUSH_FAILURE_TIME, PUSH_FAILURE_HELP, g.failure_time),
        one(PUSH_TIME, PUSH_TIME_HELP, g.push_time),
    ]
}

/// The families' consistency, as client_golang's gatherer judges it.
fn check_consistent(all: &[&Family]) -> Result<(), String> {
    let mut kinds: BTreeMap<&str, Kind> = BTreeMap::new();
    for f in all {
        match kinds.get(f.name.as_str()) {
            Some(k) if *k != f.kind => {
                return Err(format!(
                    "gathered metric family {} has type {} but should have {}",
                    f.name,
                    f.kind.upper(),
                    k.upper()
                ));
            }
            Some(_) => {}
            None => {
                kinds.insert(&f.name, f.kind);
            }
        }
    }
    for (name, kind) in &kinds {
        let suffixes: &[&str] = match kind {
            Kind::Histogram => &["_bucket", "_count", "_sum"],
            Kind::Summary => &["_count", "_sum"],
            _ => &[],
        };
        for s in suffixes {
            if kinds.contains_key(format!("{name}{s}").as_str()) {
                return Err(format!(
                    "collected {} named {name:?} collides with the metric named \"{name}{s}\"",
                    kind.upper().to_lowercase()
                ));
            }
        }
    }
    let mut seen: std::collections::BTreeSet<(&str, &[(String, String)])> = Default::default();
    for f in all {
        for m in &f.metrics {
            if !seen.insert((&f.name, &m.labels)) {
                let labels: Vec<String> =
                    m.labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
                return Err(format!(
                    "collected metric {:?} {{{}}} was collected before with the same name and label values",
                    f.name,
                    labels.join(",")
                ));
            }
        }
    }
    Ok(())
}

fn family_json(f: &Family, time: f64) -> Json {
    let mut obj = Map::new();
    obj.insert("time_stamp".into(), json!(rfc3339(time)));
    obj.insert("type".into(), json!(f.kind.upper()));
    if let Some(h) = &f.help {
        obj.insert("help".into(), json!(h));
    }
    let metrics: Vec<Json> = f
        .metrics
        .iter()
        .map(|m| {
            let labels: Map<String, Json> = m
                .labels
                .iter()
                .map(|(n, v)| (n.clone(), json!(v)))
                .collect();
            let mut o = Map::new();
            o.insert("labels".into(), Json::Object(labels));
            match &m.value {
                Value::Simple(v) => {
                    o.insert("value".into(), json!(go_float(*v)));
                }
                Value::Histogram {
                    buckets,
                    count,
                    sum,
                } => {
                    let b: Map<String, Json> = buckets
                        .iter()
                        .map(|(le, c)| (go_float(*le), json!(go_float(*c))))
                        .collect();
                    o.insert("buckets".into(), Json::Object(b));
                    o.insert("count".into(), json!(go_float(*count)));
                    o.insert("sum".into(), json!(go_float(*sum)));
                }
                Value::Summary {
                    quantiles,
                    count,
                    sum,
                } => {
                    let q: Map<String, Json> = quantiles
                        .iter()
                        .map(|(q, v)| (go_float(*q), json!(go_float(*v))))
                        .collect();
                    o.insert("quantiles".into(), Json::Object(q));
                    o.insert("count".into(), json!(go_float(*count)));
                    o.insert("sum".into(), json!(go_float(*sum)));
                }
            }
            Json::Object(o)
        })
        .collect();
    obj.insert("metrics".into(), Json::Array(metrics));
    Json::Object(obj)
}

/// Unix seconds as RFC 3339 in UTC with nanoseconds (Go's `RFC3339Nano`).
pub fn rfc3339(secs: f64) -> String {
    // A persistence file may hold any number; the calendar below is only
    // asked about years 1970 to 9999.
    let secs = if secs.is_finite() {
        secs.clamp(0.0, 253_402_300_799.0)
    } else {
        0.0
    };
    let whole = secs.floor();
    let (s, ns) = (
        whole as i64,
        (((secs - whole) * 1e9) as i64).min(999_999_999),
    );
    let days = s.div_euclid(86_400);
    let rem = s.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if ns != 0 {
        let frac = format!("{ns:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pairs: &[(&str, &str)]) -> GroupKey {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn put_replaces_post_merges_conflicts_change_nothing() {
        let mut s = Store::default();
        let j = key(&[("job", "j")]);
        s.push(
            Push {
                key: &j,
                body: b"a 1\nb 2\n",
                openmetrics: false,
                mode: WriteMode::Replace,
            },
            10.0,
            &[],
            true,
        )
        .unwrap();
        s.push(
            Push {
                key: &j,
                body: b"b 3\n",
                openmetrics: false,
                mode: WriteMode::Merge,
            },
            11.0,
            &[],
            true,
        )
        .unwrap();
        let g = &s.groups[&j];
        assert_eq!(g.families.len(), 2);
        assert_eq!(g.families["b"].family.metrics[0].value, Value::Simple(3.0));
        s.push(
            Push {
                key: &j,
                body: b"c 1\n",
                openmetrics: false,
                mode: WriteMode::Replace,
            },
            12.0,
            &[],
            true,
        )
        .unwrap();
        assert_eq!(s.groups[&j].families.keys().collect::<Vec<_>>(), ["c"]);
        let k = key(&[("job", "k")]);
        let before = s.groups[&j].clone();
        let r = s.push(
            Push {
                key: &k,
                body: b"# TYPE c gauge\nc 1\n",
                openmetrics: false,
                mode: WriteMode::Replace,
            },
            13.0,
            &[],
            true,
        );
        assert!(matches!(r, Err(Refusal::Inconsistent(_))), "{r:?}");
        assert_eq!(s.groups[&j], before);
        assert_eq!(
            (s.groups[&k].push_time, s.groups[&k].failure_time),
            (0.0, 13.0)
        );
        assert!(s.groups[&k].families.is_empty());
    }

    #[test]
    fn grouping_labels_win_and_instance_is_added() {
        let mut s = Store::default();
        let k = key(&[("job", "j"), ("k", "path")]);
        s.push(
            Push {
                key: &k,
                body: b"z{job=\"x\",k=\"b\",instance=\"i\"} 1\ny 2\n",
                openmetrics: false,
                mode: WriteMode::Replace,
            },
            1.0,
            &[],
            true,
        )
        .unwrap();
        let text = String::from_utf8(s.encode(&[])).unwrap();
        assert!(
            text.contains("z{instance=\"i\",job=\"j\",k=\"path\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("y{instance=\"\",job=\"j\",k=\"path\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn refuses_timestamps_duplicates_and_collisions() {
        for (body, other) in [
            (&b"a 1 1000\n"[..], None),
            (b"# TYPE q gauge\nq 1\nq 2\n", None),
            (
                b"h_count 1\n",
                Some(&b"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n"[..]),
            ),
            (b"a{__x=\"1\"} 1\n", None),
        ] {
            let mut s = Store::default();
            if let Some(o) = other {
                s.push(
                    Push {
                        key: &key(&[("job", "o")]),
                        body: o,
                        openmetrics: false,
                        mode: WriteMode::Replace,
                    },
                    1.0,
                    &[],
                    true,
                )
                .unwrap();
            }
            let r = s.push(
                Push {
                    key: &key(&[("job", "p")]),
                    body,
                    openmetrics: false,
                    mode: WriteMode::Replace,
                },
                2.0,
                &[],
                true,
            );
            assert!(matches!(r, Err(Refusal::Inconsistent(_))), "{r:?}");
        }
    }

    #[test]
    fn persistence_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pg.data");
        let mut s = Store::default();
        let body =
            b"# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\n\
                     h_sum 0.75\nh_count 2\n# TYPE c counter\nc{x=\"a\\\"b\"} 1.5\n";
        s.push(
            Push {
                key: &key(&[("job", "j"), ("i", "")]),
                body,
                openmetrics: false,
                mode: WriteMode::Replace,
            }, // serde_json's float parser would change the last digit of this.
            1_795_353_760.401_514_3,
            &[],
            true,
        )
        .unwrap();
        s.push(
            Push {
                key: &key(&[("job", "f")]),
                body: b"c 1 5\n",
                openmetrics: false,
                mode: WriteMode::Replace,
            },
            1_795_353_761.398_212_7,
            &[],
            true,
        )
        .unwrap_err();
        s.persist(&path).unwrap();
        assert_eq!(Store::load(&path).unwrap(), s);
        std::fs::write(&path, b"{\"format\":\"vigil-pushgateway\",\"version\":9}").unwrap();
        assert!(Store::load(&path).is_err());
    }

    #[test]
    fn rfc3339_nano() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1e300), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(-5.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_352_489.5), "2026-11-22T13:01:29.5Z");
    }
}
