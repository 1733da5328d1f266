//! Rule groups: the model shared by both rule-file forms.
//!
//! So far the legacy Prometheus 1.x syntax loads ([`parse_legacy`]) and
//! converts to the YAML rule-group form ([`RuleGroup::to_yaml`]), and an
//! alerting rule runs its state machine ([`AlertingRuleState`]). The YAML
//! loader, templates, recording-rule and group evaluation come next.

mod alerting;
mod group;
mod legacy;
mod notify;
mod unittest;
mod yaml;

use std::fmt::Write as _;

pub use alerting::{Alert, AlertState, AlertingRuleState, RESOLVED_RETENTION_MS};
pub use group::{GroupState, RecordingRuleState, RuleOutcome, RuleState};
pub use legacy::parse_legacy;
pub use notify::{Notifier, PostableAlert, rfc3339};
pub use unittest::{
    UnitTestOptions, UnitTestReport, parse_series_labels, parse_values, run_unit_tests,
};
pub use yaml::{LoadOptions, load_yaml};

/// A group of rules evaluated together at one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    /// The group name, unique within a file.
    pub name: String,
    /// Evaluation interval in milliseconds; `None` for the global default.
    pub interval: Option<i64>,
    /// How far back the group's queries look (`query_offset`, ms).
    pub query_offset: Option<i64>,
    /// Most series a rule may produce, most alerts it may have (0: no
    /// limit).
    pub limit: usize,
    /// Labels added to every rule's results.
    pub labels: Vec<(String, String)>,
    /// Rules in evaluation order.
    pub rules: Vec<Rule>,
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `record: name` — writes the expression's result as a new series.
    Recording(RecordingRule),
    /// `alert: name` — fires for every series the expression returns.
    Alerting(AlertingRule),
}

/// A recording rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRule {
    /// The metric name written.
    pub record: String,
    /// The PromQL expression as written (trimmed); it parses.
    pub expr: String,
    /// Labels added to or overriding the result's labels.
    pub labels: Vec<(String, String)>,
}

/// An alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertingRule {
    /// The alert name.
    pub alert: String,
    /// The PromQL expression as written (trimmed); it parses.
    pub expr: String,
    /// How long the condition must hold before the alert fires (ms).
    pub for_ms: i64,
    /// How long the alert keeps firing after the condition clears (ms).
    pub keep_firing_for_ms: i64,
    /// Labels added to the alert (values may be templates).
    pub labels: Vec<(String, String)>,
    /// Annotations (values may be templates).
    pub annotations: Vec<(String, String)>,
}

/// Rules that appear more than once across `groups` (same record or alert
/// name and same labels), each reported once, as promtool's
/// `check rules` lint finds them.
pub fn duplicate_rules(groups: &[RuleGroup]) -> Vec<(String, Vec<(String, String)>)> {
    let mut all: Vec<(String, Vec<(String, String)>)> = groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .map(|r| {
            let (name, labels) = match r {
                Rule::Recording(r) => (r.record.clone(), r.labels.clone()),
                Rule::Alerting(a) => (a.alert.clone(), a.labels.clone()),
            };
            let mut labels = labels;
            labels.sort();
            (name, labels)
        })
        .collect();
    all.sort();
    let mut dups: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for w in all.windows(2) {
        if w[0] == w[1] && dups.last() != Some(&w[1]) {
            dups.push(w[1].clone());
        }
    }
    dups
}

/// Formats milliseconds as Prometheus prints a duration (`1h30m`, `0s`).
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    if rest < 0 {
        out.push('-');
        rest = -rest;
    }
    for (unit, size) in [
        ("y", 365 * 86_400_000i64),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if rest >= size {
            let _ = write!(out, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    out
}

/// Quotes a string as a YAML double-quoted scalar.
fn yaml_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn yaml_map(out: &mut String, indent: &str, key: &str, pairs: &[(String, String)]) {
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}{key}:");
    for (k, v) in pairs {
        let _ = writeln!(out, "{indent}  {}: {}", yaml_quote(k), yaml_quote(v));
    }
}

impl RuleGroup {
    /// The group as a Prometheus 2.x/3.x rule file (`groups:` with this one
    /// group). Every string is double-quoted, so any value survives.
    pub fn to_yaml(&self) -> String {
        let mut out = String::from("groups:\n");
        let _ = writeln!(out, "  - name: {}", yaml_quote(&self.name));
        if let Some(i) = self.interval {
            let _ = writeln!(out, "    interval: {}", format_duration(i));
        }
        if let Some(o) = self.query_offset {
            let _ = writeln!(out, "    query_offset: {}", format_duration(o));
        }
        if self.limit > 0 {
            let _ = writeln!(out, "    limit: {}", self.limit);
        }
        yaml_map(&mut out, "    ", "labels", &self.labels);
        out.push_str("    rules:\n");
        for r in &self.rules {
            match r {
                Rule::Recording(r) => {
                    let _ = writeln!(out, "      - record: {}", yaml_quote(&r.record));
                    let _ = writeln!(out, "        expr: {}", yaml_quote(&r.expr));
                    yaml_map(&mut out, "        ", "labels", &r.labels);
                }
                Rule::Alerting(a) => {
                    let _ = writeln!(out, "      - alert: {}", yaml_quote(&a.alert));
                    let _ = writeln!(out, "        expr: {}", yaml_quote(&a.expr));
                    if a.for_ms != 0 {
                        let _ = writeln!(out, "        for: {}", format_duration(a.for_ms));
                    }
                    if a.keep_firing_for_ms != 0 {
                        let _ = writeln!(
                            out,
                            "        keep_firing_for: {}",
                            format_duration(a.keep_firing_for_ms)
                        );
                    }
                    yaml_map(&mut out, "        ", "labels", &a.labels);
                    yaml_map(&mut out, "        ", "annotations", &a.annotations);
                }
            }
        }
        out
    }
}

/// Evaluates a rule's expression at `ts` into a vector: a scalar becomes one
/// sample without labels; anything else is an error naming the rule.
pub(crate) fn eval_vector(
    engine: &crate::Engine,
    q: &dyn crate::Queryable,
    text: &str,
    expr: &crate::Expr,
    ts: i64,
    kind: &str,
    name: &str,
) -> Result<Vec<crate::Sample>, crate::Error> {
    match engine.instant_query_expr(q, text, expr, ts)?.value {
        crate::Value::Vector(v) => Ok(v),
        crate::Value::Scalar { v, .. } => Ok(vec![crate::Sample {
            labels: crate::Labels::new(),
            t: ts,
            value: v,
            drop_name: false,
        }]),
        _ => Err(crate::Error::Eval(format!(
            "{kind} rule {name:?}: the expression must return a vector or a scalar"
        ))),
    }
}
