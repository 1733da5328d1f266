//! `promtool test rules`: rule unit tests in promtool's YAML format
//! (`rule_files`, `evaluation_interval`, `group_eval_order`,
//! `fuzzy_compare`, and `tests` with `input_series`, `alert_rule_test` and
//! `promql_expr_test`), run as promtool runs them: rules are evaluated
//! every `evaluation_interval` from 0 to the last time a test asks about,
//! their results written back to the store; an alert test at time `t` is
//! checked against the evaluation at the last step at or before `t`
//! (firing alerts only); expression tests run afterwards.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use super::{GroupState, LoadOptions, RuleState, load_yaml};
use crate::promql::parse_duration;
use crate::{Engine, Error, ExprKind, Labels, MatchOp, MemoryStore, STALE_NAN_BITS, Value, parse};

/// How to run unit tests.
#[derive(Debug, Clone, Default)]
pub struct UnitTestOptions {
    /// Run only the test groups whose name matches one of these regular
    /// expressions (promtool's `--run`); empty runs all.
    pub run: Vec<String>,
    /// Accept unknown fields in the rule files.
    pub ignore_unknown_fields: bool,
}

/// What a test file gave.
#[derive(Debug, Clone, Default)]
pub struct UnitTestReport {
    /// Failures, formatted as promtool formats them.
    pub failures: Vec<String>,
    /// Test groups run.
    pub groups_run: usize,
}

impl UnitTestReport {
    /// Whether every test passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// An alert as a test compares it: labels and sorted annotations.
type AlertView = (Labels, Vec<(String, String)>);

fn err(msg: impl Into<String>) -> Error {
    Error::RuleFile(msg.into())
}

fn get<'a>(h: &'a Yaml, k: &str) -> Option<&'a Yaml> {
    match h {
        Yaml::Hash(m) => m.get(&Yaml::String(k.to_string())),
        _ => None,
    }
}

fn text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn dur(y: Option<&Yaml>, what: &str) -> Result<Option<i64>, Error> {
    match y {
        None | Some(Yaml::Null) => Ok(None),
        Some(v) => {
            let s = text(v).ok_or_else(|| err(format!("{what}: expected a duration")))?;
            parse_duration(&s)
                .map(Some)
                .ok_or_else(|| err(format!("{what}: not a valid duration string: {s:?}")))
        }
    }
}

fn string_pairs(y: Option<&Yaml>) -> Vec<(String, String)> {
    match y {
        Some(Yaml::Hash(h)) => h
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, text(v).unwrap_or_default())))
            .collect(),
        _ => Vec::new(),
    }
}

/// The labels of a series written in PromQL's series notation
/// (`up{job="a"}`, `{__name__="x"}`, `{}`).
pub fn parse_series_labels(s: &str) -> Result<Labels, Error> {
    if s.trim().is_empty() || s.trim() == "{}" {
        return Ok(Labels::new());
    }
    let e = parse(s)?;
    let ExprKind::VectorSelector(vs) = e.kind else {
        return Err(err(format!("not a series: {s:?}")));
    };
    let mut l = Labels::new();
    for m in &vs.matchers {
        if m.op != MatchOp::Equal {
            return Err(err(format!("series {s:?}: only = may be used")));
        }
        l.set(&m.name, &m.value);
    }
    Ok(l)
}

/// Expands promtool's value notation (`1 2 _ stale 0+1x10 1x3 _x2`) into
/// slots; `None` is an empty slot.
pub fn parse_values(s: &str) -> Result<Vec<Option<f64>>, Error> {
    let mut out = Vec::new();
    let num = |t: &str| -> Result<f64, Error> {
        let l = t.to_ascii_lowercase();
        let (sign, body) = match l.strip_prefix('-') {
            Some(b) => (-1.0, b),
            None => (1.0, l.strip_prefix('+').unwrap_or(&l)),
        };
        match body {
            "inf" => Ok(sign * f64::INFINITY),
            "nan" => Ok(f64::NAN),
            _ => t
                .parse::<f64>()
                .map_err(|_| err(format!("bad value {t:?} in {s:?}"))),
        }
    };
    for item in s.split_whitespace() {
        if item.starts_with("{{") {
            return Err(err("native histogram values are not supported yet"));
        }
        if item == "_" {
            out.push(None);
            continue;
        }
        if item == "stale" {
            out.push(Some(f64::from_bits(STALE_NAN_BITS)));
            continue;
        }
        if let Some(n) = item.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| err(format!("bad value {item:?}")))?;
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        if let Some(p) = item.rfind('x') {
            if let Ok(n) = item[p + 1..].parse::<usize>() {
                let lhs = &item[..p];
                let b = lhs.as_bytes();
                let split = (1..b.len())
                    .rev()
                    .find(|&k| (b[k] == b'+' || b[k] == b'-') && !matches!(b[k - 1], b'e' | b'E'));
                let (a, step) = match split {
                    Some(k) => {
                        let step = num(&lhs[k + 1..])?;
                        (num(&lhs[..k])?, if b[k] == b'-' { -step } else { step })
                    }
                    None => (num(lhs)?, 0.0),
                };
                let mut v = a;
                for _ in 0..=n {
                    out.push(Some(v));
                    v += step;
                }
                continue;
            }
        }
        out.push(Some(num(item)?));
    }
    Ok(out)
}

/// Parses RFC 3339 (`2024-01-01T00:00:00Z`, fractions, `+02:00`) to ms.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, se) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let st = i + 1;
        i = st;
        while b.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        let frac = format!("{:0<3}", &s[st..i]);
        ms = frac[..3].parse().ok()?;
    }
    let off = match b.get(i)? {
        b'Z' | b'z' => 0,
        c @ (b'+' | b'-') => {
            let o = n(i + 1..i + 3)? * 60 + n(i + 4..i + 6)?;
            if *c == b'-' { -o } else { o }
        }
        _ => return None,
    };
    // Days from the civil date (proleptic Gregorian).
    let (yy, mm) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + se - off * 60) * 1000) + ms)
}

/// Go's `time.Duration.String()` for a test's time, as promtool prints it.
fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    let secs = rest as f64 / 1000.0;
    out.push_str(&format!("{secs}s"));
    out
}

fn same_float(a: f64, b: f64, fuzzy: bool) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    // One unit in the last place apart, when asked.
    fuzzy && a.is_finite() && b.is_finite() && a.signum() == b.signum() && {
        let (x, y) = (a.abs().to_bits(), b.abs().to_bits());
        x.abs_diff(y) <= 1
    }
}

/// Runs the unit tests in `path` (rule files are found relative to it).
pub fn run_unit_tests(path: &Path, opts: &UnitTestOptions) -> Result<UnitTestReport, Error> {
    let src = std::fs::read_to_string(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    let docs =
        YamlLoader::load_from_str(&src).map_err(|e| err(format!("{}: {e}", path.display())))?;
    let doc = docs.into_iter().next().unwrap_or(Yaml::Null);
    let base = path.parent().unwrap_or(Path::new("."));
    let eval_interval =
        dur(get(&doc, "evaluation_interval"), "evaluation_interval")?.unwrap_or(60_000);
    let fuzzy = matches!(get(&doc, "fuzzy_compare"), Some(Yaml::Boolean(true)));
    let mut groups = Vec::new();
    if let Some(Yaml::Array(files)) = get(&doc, "rule_files") {
        for f in files {
            let name = text(f).unwrap_or_default();
            let p = base.join(&name);
            let t =
                std::fs::read_to_string(&p).map_err(|e| err(format!("{}: {e}", p.display())))?;
            let load = LoadOptions {
                ignore_unknown_fields: opts.ignore_unknown_fields,
                ..LoadOptions::default()
            };
            let gs = load_yaml(&t, load).map_err(|e| err(format!("{}: {e}", p.display())))?;
            groups.extend(gs);
        }
    }
    if let Some(Yaml::Array(order)) = get(&doc, "group_eval_order") {
        let order: Vec<String> = order.iter().filter_map(text).collect();
        groups.sort_by_key(|g| {
            order
                .iter()
                .position(|o| *o == g.name)
                .unwrap_or(usize::MAX)
        });
    }
    let filters = opts
        .run
        .iter()
        .map(|r| regex::Regex::new(r).map_err(|e| err(format!("--run {r:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut report = UnitTestReport::default();
    let Some(Yaml::Array(tests)) = get(&doc, "tests") else {
        return Ok(report);
    };
    for t in tests {
        let name = get(t, "name").and_then(text).unwrap_or_default();
        if !filters.is_empty() && !filters.iter().any(|f| f.is_match(&name)) {
            continue;
        }
        report.groups_run += 1;
        let states = groups
            .iter()
            .map(|g| GroupState::new(g.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        if let Err(e) = run_group(t, &name, states, eval_interval, fuzzy, &mut report) {
            report.failures.push(format!("    name: {name},\n    {e}"));
        }
    }
    Ok(report)
}

fn run_group(
    t: &Yaml,
    name: &str,
    mut groups: Vec<GroupState>,
    eval_interval: i64,
    fuzzy: bool,
    report: &mut UnitTestReport,
) -> Result<(), Error> {
    let prefix = if name.is_empty() {
        String::new()
    } else {
        format!("    name: {name},\n")
    };
    let interval = dur(get(t, "interval"), "interval")?.unwrap_or(eval_interval);
    // Every time in the group is relative to its start (default 0).
    let start = match get(t, "start_timestamp") {
        None | Some(Yaml::Null) => 0,
        Some(Yaml::Integer(i)) => i * 1000,
        Some(Yaml::Real(r)) => (r.parse::<f64>().unwrap_or(0.0) * 1000.0).round() as i64,
        Some(Yaml::String(s)) => match s.parse::<f64>() {
            Ok(v) => (v * 1000.0).round() as i64,
            Err(_) => parse_rfc3339(s)
                .ok_or_else(|| err(format!("start_timestamp: not a time: {s:?}")))?,
        },
        Some(_) => return Err(err("start_timestamp: expected a time")),
    };
    let external = string_pairs(get(t, "external_labels"));
    let ext_refs: Vec<(&str, &str)> = external
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let ext_labels = Labels::from_pairs(&ext_refs);
    let ext_url = get(t, "external_url").and_then(text).unwrap_or_default();
    for g in &mut groups {
        g.set_external(ext_labels.clone(), &ext_url);
    }
    let mut store = MemoryStore::new();
    if let Some(Yaml::Array(series)) = get(t, "input_series") {
        for s in series {
            let labels = parse_series_labels(&get(s, "series").and_then(text).unwrap_or_default())?;
            let values = parse_values(&get(s, "values").and_then(text).unwrap_or_default())?;
            for (k, v) in values.iter().enumerate() {
                if let Some(v) = v {
                    store.add_sample(&labels, start + k as i64 * interval, *v);
                }
            }
        }
    }
    // Alert tests by time.
    let mut alert_tests: Vec<(i64, String, Vec<AlertView>)> = Vec::new();
    if let Some(Yaml::Array(list)) = get(t, "alert_rule_test") {
        for a in list {
            let at = dur(get(a, "eval_time"), "eval_time")?.unwrap_or(0);
            let alertname = get(a, "alertname").and_then(text).unwrap_or_default();
            let mut exp = Vec::new();
            if let Some(Yaml::Array(ea)) = get(a, "exp_alerts") {
                for e in ea {
                    let mut pairs = string_pairs(get(e, "exp_labels"));
                    pairs.push(("alertname".into(), alertname.clone()));
                    let refs: Vec<(&str, &str)> = pairs
                        .iter()
                        .map(|(a, b)| (a.as_str(), b.as_str()))
                        .collect();
                    let mut ann = string_pairs(get(e, "exp_annotations"));
                    ann.sort();
                    exp.push((Labels::from_pairs(&refs), ann));
                }
            }
            alert_tests.push((at, alertname, exp));
        }
    }
    alert_tests.sort_by_key(|a| a.0);
    let mut expr_tests = Vec::new();
    if let Some(Yaml::Array(list)) = get(t, "promql_expr_test") {
        for p in list {
            expr_tests.push(p.clone());
        }
    }
    let mut max_t = alert_tests.last().map_or(0, |a| a.0);
    for p in &expr_tests {
        max_t = max_t.max(dur(get(p, "eval_time"), "eval_time")?.unwrap_or(0));
    }
    let engine = Engine::new();
    let mut next_alert = 0;
    let mut ts = 0;
    while ts <= max_t {
        for g in &mut groups {
            let mut written = Vec::new();
            let outcomes = g.eval(&engine, &store, start + ts, &mut |s| {
                written.extend_from_slice(s)
            });
            for o in outcomes {
                if let Err(e) = o.result {
                    report.failures.push(format!(
                        "{prefix}    rule {:?}, time: {}: {e}",
                        o.name,
                        go_duration(ts)
                    ));
                }
            }
            for s in written {
                store.add_sample(&s.labels, start + ts, s.value);
            }
        }
        while next_alert < alert_tests.len() && alert_tests[next_alert].0 < ts + eval_interval {
            let (at, alertname, exp) = &alert_tests[next_alert];
            next_alert += 1;
            let mut got: Vec<AlertView> = Vec::new();
            for g in &groups {
                for r in g.rules() {
                    if let RuleState::Alerting(a) = r {
                        if a.rule().alert != *alertname {
                            continue;
                        }
                        for al in a.alerts() {
                            if al.state == super::AlertState::Firing {
                                let mut ann = al.annotations.clone();
                                ann.sort();
                                got.push((al.labels.clone(), ann));
                            }
                        }
                    }
                }
            }
            let mut exp = exp.clone();
            exp.sort();
            got.sort();
            if exp != got {
                report.failures.push(format!(
                    "{prefix}    alertname: {alertname}, time: {}, \n        exp:{}, \n        got:{}",
                    go_duration(*at),
                    show_alerts(&exp),
                    show_alerts(&got)
                ));
            }
        }
        ts += eval_interval;
    }
    for p in &expr_tests {
        let expr = get(p, "expr").and_then(text).unwrap_or_default();
        let at = dur(get(p, "eval_time"), "eval_time")?.unwrap_or(0);
        let got = match engine.instant_query(&store, &expr, start + at) {
            Ok(r) => match r.value {
                Value::Vector(v) => v
                    .into_iter()
                    .map(|s| (s.labels, s.value))
                    .collect::<Vec<_>>(),
                Value::Scalar { v, .. } => vec![(Labels::new(), v)],
                other => {
                    report.failures.push(format!(
                        "{prefix}    expr: {expr:?}, time: {}, err: unexpected result {other:?}",
                        go_duration(at)
                    ));
                    continue;
                }
            },
            Err(e) => {
                report.failures.push(format!(
                    "{prefix}    expr: {expr:?}, time: {}, err: {e}",
                    go_duration(at)
                ));
                continue;
            }
        };
        let mut exp = Vec::new();
        if let Some(Yaml::Array(list)) = get(p, "exp_samples") {
            for s in list {
                if get(s, "histogram").is_some() {
                    return Err(err("native histogram samples are not supported yet"));
                }
                let labels =
                    parse_series_labels(&get(s, "labels").and_then(text).unwrap_or_default())?;
                let value = get(s, "value")
                    .and_then(text)
                    .map(|v| parse_values(&v))
                    .transpose()?
                    .and_then(|v| v.first().copied().flatten())
                    .unwrap_or(0.0);
                exp.push((labels, value));
            }
        }
        let mut got = got;
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let same = exp.len() == got.len()
            && exp
                .iter()
                .zip(&got)
                .all(|(e, g)| e.0 == g.0 && same_float(e.1, g.1, fuzzy));
        if !same {
            report.failures.push(format!(
                "{prefix}    expr: {expr:?}, time: {},\n        exp: {}\n        got: {}",
                go_duration(at),
                show_samples(&exp),
                show_samples(&got)
            ));
        }
    }
    Ok(())
}

fn show_samples(s: &[(Labels, f64)]) -> String {
    let parts: Vec<String> = s
        .iter()
        .map(|(l, v)| format!("{l} {}", crate::template::format_float(*v)))
        .collect();
    format!("[{}]", parts.join(", "))
}

fn show_alerts(a: &[AlertView]) -> String {
    let parts: Vec<String> = a
        .iter()
        .enumerate()
        .map(|(i, (l, ann))| {
            let ann: Vec<String> = ann.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            format!(
                "{i}:\n            Labels:{l}\n            Annotations:{{{}}}",
                ann.join(", ")
            )
        })
        .collect();
    format!(
        "[\n            {}\n            ]",
        parts.join("\n            ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_times() {
        assert_eq!(
            parse_values("1 _ 0+2x2 _x2 stale 3x1").unwrap().len(),
            1 + 1 + 3 + 2 + 1 + 2
        );
        assert_eq!(
            parse_rfc3339("2024-01-01T00:00:00Z"),
            Some(1_704_067_200_000)
        );
        assert_eq!(
            parse_rfc3339("2024-01-01T01:00:00.5+01:00"),
            Some(1_704_067_200_500)
        );
        assert_eq!(go_duration(90_500), "1m30.5s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
    }
}
