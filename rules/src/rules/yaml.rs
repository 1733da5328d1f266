//! Prometheus rule files (YAML), loaded as strictly as Prometheus's
//! `rulefmt`: unknown fields are errors (unless ignored on request), group
//! names are unique, every rule is exactly one of `record`/`alert` with an
//! `expr` that parses, `for`/`keep_firing_for`/`annotations` only on
//! alerting rules, valid label and annotation names, and templates that
//! parse. Anchors and aliases work, and so does the `<<` merge key. Only
//! the first YAML document is read, as upstream.

use yaml_rust2::{Yaml, YamlLoader};

use super::{AlertingRule, RecordingRule, Rule, RuleGroup};
use crate::Error;
use crate::promql::parse_duration;
use crate::template::Template;

/// How strictly to load.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Accept unknown fields (Prometheus's `--ignore-unknown-fields`).
    pub ignore_unknown_fields: bool,
    /// Require legacy names (`[a-zA-Z_][a-zA-Z0-9_]*`) for labels and
    /// annotations, instead of any UTF-8 (the 3.x default).
    pub legacy_names: bool,
}

fn err(msg: impl Into<String>) -> Error {
    Error::RuleFile(msg.into())
}

/// Loads a rule file's groups.
pub fn load_yaml(text: &str, opts: LoadOptions) -> Result<Vec<RuleGroup>, Error> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| err(format!("yaml: {e}")))?;
    let Some(doc) = docs.into_iter().next() else {
        return Ok(Vec::new());
    };
    let doc = merge_keys(doc);
    let top = match &doc {
        Yaml::Null => return Ok(Vec::new()),
        Yaml::Hash(h) => h,
        _ => return Err(err("yaml: the file must hold a mapping with \"groups\"")),
    };
    let mut groups_node = None;
    for (k, v) in top {
        match key(k)?.as_str() {
            "groups" => groups_node = Some(v),
            other if !opts.ignore_unknown_fields => {
                return Err(err(format!(
                    "field {other} not found in type rulefmt.RuleGroups"
                )));
            }
            _ => {}
        }
    }
    let list = match groups_node {
        None | Some(Yaml::Null) => return Ok(Vec::new()),
        Some(Yaml::Array(a)) => a,
        Some(_) => return Err(err("groups: expected a list")),
    };
    let mut out: Vec<RuleGroup> = Vec::new();
    for (gi, g) in list.iter().enumerate() {
        let group = load_group(g, gi, opts)?;
        if out.iter().any(|o| o.name == group.name) {
            return Err(err(format!(
                "groupname: {:?} is repeated in the same file",
                group.name
            )));
        }
        out.push(group);
    }
    Ok(out)
}

/// Applies YAML merge keys (`<<: *anchor` or a list of them) everywhere:
/// keys already present win over merged ones.
fn merge_keys(y: Yaml) -> Yaml {
    match y {
        Yaml::Array(a) => Yaml::Array(a.into_iter().map(merge_keys).collect()),
        Yaml::Hash(h) => {
            let mut out = yaml_rust2::yaml::Hash::new();
            let mut merged = Vec::new();
            for (k, v) in h {
                if k.as_str() == Some("<<") {
                    match merge_keys(v) {
                        Yaml::Hash(m) => merged.push(m),
                        Yaml::Array(list) => {
                            for item in list {
                                if let Yaml::Hash(m) = item {
                                    merged.push(m);
                                }
                            }
                        }
                        _ => {}
                    }
                } else {
                    out.insert(k, merge_keys(v));
                }
            }
            for m in merged {
                for (k, v) in m {
                    if !out.contains_key(&k) {
                        out.insert(k, v);
                    }
                }
            }
            Yaml::Hash(out)
        }
        other => other,
    }
}

fn key(k: &Yaml) -> Result<String, Error> {
    scalar(k).ok_or_else(|| err("yaml: mapping keys must be scalars"))
}

/// A scalar as the text Prometheus would read into a string.
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn duration(y: &Yaml, what: &str) -> Result<i64, Error> {
    let s = scalar(y).ok_or_else(|| err(format!("{what}: expected a duration")))?;
    parse_duration(&s).ok_or_else(|| err(format!("{what}: not a valid duration string: {s:?}")))
}

fn string_map(
    y: &Yaml,
    what: &str,
    names: &dyn Fn(&str) -> Result<(), String>,
) -> Result<Vec<(String, String)>, Error> {
    match y {
        Yaml::Null => Ok(Vec::new()),
        Yaml::Hash(h) => {
            let mut out = Vec::new();
            for (k, v) in h {
                let k = key(k)?;
                names(&k).map_err(|m| err(format!("{what}: {m}")))?;
                let v = match v {
                    Yaml::Null => String::new(),
                    other => scalar(other).ok_or_else(|| {
                        err(format!("{what}: the value of {k:?} must be a string"))
                    })?,
                };
                out.push((k, v));
            }
            Ok(out)
        }
        _ => Err(err(format!("{what}: expected a mapping"))),
    }
}

fn legacy_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn metric_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn load_group(g: &Yaml, gi: usize, opts: LoadOptions) -> Result<RuleGroup, Error> {
    let Yaml::Hash(h) = g else {
        return Err(err(format!("group {}: expected a mapping", gi + 1)));
    };
    let mut group = RuleGroup {
        name: String::new(),
        interval: None,
        query_offset: None,
        limit: 0,
        labels: Vec::new(),
        rules: Vec::new(),
    };
    let mut rules_node = None;
    for (k, v) in h {
        match key(k)?.as_str() {
            "name" => group.name = scalar(v).unwrap_or_default(),
            "interval" => group.interval = Some(duration(v, "interval")?),
            "query_offset" => group.query_offset = Some(duration(v, "query_offset")?),
            "limit" => {
                group.limit = match v {
                    Yaml::Integer(i) if *i >= 0 => *i as usize,
                    _ => return Err(err("limit: expected a non-negative integer")),
                }
            }
            "labels" => {
                group.labels = string_map(v, "group labels", &|n| label_name_ok(n, opts))?;
            }
            "rules" => rules_node = Some(v),
            other if !opts.ignore_unknown_fields => {
                return Err(err(format!(
                    "field {other} not found in type rulefmt.RuleGroup"
                )));
            }
            _ => {}
        }
    }
    if group.name.is_empty() {
        return Err(err(format!(
            "group {}: groupname must not be empty",
            gi + 1
        )));
    }
    let rules = match rules_node {
        None | Some(Yaml::Null) => &Vec::new(),
        Some(Yaml::Array(a)) => a,
        Some(_) => {
            return Err(err(format!(
                "group {:?}: rules: expected a list",
                group.name
            )));
        }
    };
    for (ri, r) in rules.iter().enumerate() {
        let rule = load_rule(r, opts).map_err(|e| {
            err(format!(
                "group {:?}, rule {}: {}",
                group.name,
                ri + 1,
                strip(e)
            ))
        })?;
        group.rules.push(rule);
    }
    Ok(group)
}

fn strip(e: Error) -> String {
    match e {
        Error::RuleFile(m) => m,
        other => other.to_string(),
    }
}

fn label_name_ok(n: &str, opts: LoadOptions) -> Result<(), String> {
    if n.is_empty() || n == "__name__" || (opts.legacy_names && !legacy_name(n)) {
        return Err(format!("invalid label name: {n}"));
    }
    Ok(())
}

fn load_rule(r: &Yaml, opts: LoadOptions) -> Result<Rule, Error> {
    let Yaml::Hash(h) = r else {
        return Err(err("expected a mapping"));
    };
    let (mut record, mut alert, mut expr) = (None, None, None);
    let (mut for_ms, mut keep) = (None, None);
    let (mut labels, mut annotations) = (Vec::new(), None);
    for (k, v) in h {
        match key(k)?.as_str() {
            "record" => record = scalar(v),
            "alert" => alert = scalar(v),
            "expr" => expr = scalar(v),
            "for" => for_ms = Some(duration(v, "for")?),
            "keep_firing_for" => keep = Some(duration(v, "keep_firing_for")?),
            "labels" => labels = string_map(v, "labels", &|n| label_name_ok(n, opts))?,
            "annotations" => {
                annotations = Some(string_map(v, "annotations", &|n| {
                    if n.is_empty() || (opts.legacy_names && !legacy_name(n)) {
                        Err(format!("invalid annotation name: {n}"))
                    } else {
                        Ok(())
                    }
                })?)
            }
            other if !opts.ignore_unknown_fields => {
                return Err(err(format!("field {other} not found in type rulefmt.Rule")));
            }
            _ => {}
        }
    }
    let expr = match expr {
        Some(e) if !e.trim().is_empty() => e,
        _ => return Err(err("field 'expr' must be set in rule")),
    };
    crate::parse(&expr).map_err(|e| err(format!("could not parse expression: {e}")))?;
    let check_templates = |kind: &str, pairs: &[(String, String)]| -> Result<(), Error> {
        for (k, v) in pairs {
            Template::parse(&format!("{kind} {k}"), v)?;
        }
        Ok(())
    };
    match (record, alert) {
        (Some(_), Some(_)) => Err(err("only one of 'record' and 'alert' must be set")),
        (None, None) => Err(err("one of 'record' or 'alert' must be set")),
        (Some(record), None) => {
            if for_ms.is_some() {
                return Err(err("invalid field 'for' in recording rule"));
            }
            if keep.is_some() {
                return Err(err("invalid field 'keep_firing_for' in recording rule"));
            }
            if annotations.is_some() {
                return Err(err("invalid field 'annotations' in recording rule"));
            }
            if record.contains('{') || record.contains('}') {
                return Err(err(format!(
                    "braces present in the recording rule name; should it be in expr?: {record}"
                )));
            }
            if !metric_name(&record) && (opts.legacy_names || record.is_empty()) {
                return Err(err(format!("invalid recording rule name: {record}")));
            }
            Ok(Rule::Recording(RecordingRule {
                record,
                expr,
                labels,
            }))
        }
        (None, Some(alert)) => {
            if alert.is_empty() {
                return Err(err("invalid alert name: \"\""));
            }
            let annotations = annotations.unwrap_or_default();
            check_templates("label", &labels)?;
            check_templates("annotation", &annotations)?;
            Ok(Rule::Alerting(AlertingRule {
                alert,
                expr,
                for_ms: for_ms.unwrap_or(0),
                keep_firing_for_ms: keep.unwrap_or(0),
                labels,
                annotations,
            }))
        }
    }
}
