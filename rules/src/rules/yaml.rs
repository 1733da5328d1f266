//! Prometheus rule files (YAML), loaded as strictly as Prometheus's
//! `rulefmt`: unknown fields are errors (unless ignored on request), group
//! names are unique, every rule is exactly one of `record`/`alert` with an
//! `expr` that parses, `for`/`keep_firing_for`/`annotations` only on
//! alerting rules, valid label and annotation names, and templates that
//! parse. Anchors and aliases work, and so does the `<<` merge key. Only
//! the first YAML document is read, as upstream.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

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

/// A YAML node with where it starts (1-based line and column).
#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    line: usize,
    col: usize,
}

#[derive(Debug, Clone)]
enum Kind {
    Null,
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    fn at(&self) -> String {
        format!("{}:{}", self.line, self.col)
    }

    fn str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s) => Some(s),
            _ => None,
        }
    }
}

/// Builds the first document's tree from parser events, resolving aliases.
#[derive(Default)]
struct Builder {
    stack: Vec<(Node, Option<Node>, usize)>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    docs: usize,
    /// Set when nesting passes [`MAX_YAML_DEPTH`]; the file is refused.
    too_deep: bool,
}

/// How deeply a rule file may nest (rule files need 6 levels).
const MAX_YAML_DEPTH: usize = 64;

impl Builder {
    fn insert(&mut self, n: Node) {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(n);
                }
            }
            Some((parent, key, _)) => match &mut parent.kind {
                Kind::Seq(v) => v.push(n),
                Kind::Map(m) => match key.take() {
                    Some(k) => m.push((k, n)),
                    None => *key = Some(n),
                },
                _ => {}
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if matches!(ev, Event::DocumentStart) {
            self.docs += 1;
        }
        // Only the first document counts, as upstream.
        if self.docs > 1 {
            return;
        }
        let node = |kind| Node {
            kind,
            line: mark.line(),
            col: mark.col() + 1,
        };
        match ev {
            Event::Scalar(v, style, aid, _) => {
                let null = style == TScalarStyle::Plain
                    && matches!(v.as_str(), "" | "~" | "null" | "Null" | "NULL");
                let n = node(if null { Kind::Null } else { Kind::Scalar(v) });
                if aid > 0 {
                    self.anchors.insert(aid, n.clone());
                }
                self.insert(n);
            }
            Event::SequenceStart(aid, _) => {
                self.stack.push((node(Kind::Seq(Vec::new())), None, aid))
            }
            Event::MappingStart(aid, _) => {
                self.stack.push((node(Kind::Map(Vec::new())), None, aid))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((n, _, aid)) = self.stack.pop() {
                    if aid > 0 {
                        self.anchors.insert(aid, n.clone());
                    }
                    self.insert(n);
                }
            }
            Event::Alias(id) => {
                let n = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| node(Kind::Null));
                self.insert(n);
            }
            _ => {}
        }
    }
}

/// Loads a rule file's groups. Errors start with the line and column of
/// the offending node and name the group and rule.
pub fn load_yaml(text: &str, opts: LoadOptions) -> Result<Vec<RuleGroup>, Error> {
    let mut b = Builder::default();
    Parser::new_from_str(text)
        .load(&mut b, false)
        .map_err(|e| err(format!("yaml: {e}")))?;
    if b.too_deep {
        return Err(err(format!(
            "yaml: nested more than {MAX_YAML_DEPTH} levels"
        )));
    }
    let Some(doc) = b.root else {
        return Ok(Vec::new());
    };
    let doc = merge_keys(doc);
    let top = match &doc.kind {
        Kind::Null => return Ok(Vec::new()),
        Kind::Map(m) => m,
        _ => {
            return Err(err(format!(
                "{}: the file must hold a mapping with \"groups\"",
                doc.at()
            )));
        }
    };
    let mut groups_node = None;
    for (k, v) in top {
        match key(k)?.as_str() {
            "groups" => groups_node = Some(v),
            other if !opts.ignore_unknown_fields => {
                return Err(err(format!(
                    "{}: field {other} not found in type rulefmt.RuleGroups",
                    k.at()
                )));
            }
            _ => {}
        }
    }
    let list = match groups_node.map(|n| (&n.kind, n)) {
        None | Some((Kind::Null, _)) => return Ok(Vec::new()),
        Some((Kind::Seq(a), _)) => a,
        Some((_, n)) => return Err(err(format!("{}: groups: expected a list", n.at()))),
    };
    let mut out: Vec<RuleGroup> = Vec::new();
    for (gi, g) in list.iter().enumerate() {
        let group = load_group(g, gi, opts)?;
        if out.iter().any(|o| o.name == group.name) {
            return Err(err(format!(
                "{}: groupname: {:?} is repeated in the same file",
                g.at(),
                group.name
            )));
        }
        out.push(group);
    }
    Ok(out)
}

/// Applies YAML merge keys (`<<: *anchor` or a list of them) everywhere:
/// keys already present win over merged ones.
fn merge_keys(n: Node) -> Node {
    let kind = match n.kind {
        Kind::Seq(a) => Kind::Seq(a.into_iter().map(merge_keys).collect()),
        Kind::Map(m) => {
            let mut out: Vec<(Node, Node)> = Vec::new();
            let mut merged: Vec<Vec<(Node, Node)>> = Vec::new();
            for (k, v) in m {
                if k.str() == Some("<<") {
                    match merge_keys(v).kind {
                        Kind::Map(mm) => merged.push(mm),
                        Kind::Seq(list) => {
                            for item in list {
                                if let Kind::Map(mm) = item.kind {
                                    merged.push(mm);
                                }
                            }
                        }
                        _ => {}
                    }
                } else {
                    out.push((k, merge_keys(v)));
                }
            }
            for mm in merged {
                for (k, v) in mm {
                    if !out
                        .iter()
                        .any(|(ok, _)| ok.str().is_some() && ok.str() == k.str())
                    {
                        out.push((k, v));
                    }
                }
            }
            Kind::Map(out)
        }
        other => other,
    };
    Node { kind, ..n }
}

fn key(k: &Node) -> Result<String, Error> {
    scalar(k).ok_or_else(|| err(format!("{}: mapping keys must be scalars", k.at())))
}

/// A scalar as the text Prometheus would read into a string.
fn scalar(n: &Node) -> Option<String> {
    n.str().map(str::to_string)
}

fn duration(n: &Node, what: &str) -> Result<i64, Error> {
    let s = scalar(n).ok_or_else(|| err(format!("{}: {what}: expected a duration", n.at())))?;
    parse_duration(&s).ok_or_else(|| {
        err(format!(
            "{}: {what}: not a valid duration string: {s:?}",
            n.at()
        ))
    })
}

fn string_map(
    n: &Node,
    what: &str,
    names: &dyn Fn(&str) -> Result<(), String>,
) -> Result<Vec<(String, String)>, Error> {
    match &n.kind {
        Kind::Null => Ok(Vec::new()),
        Kind::Map(m) => {
            let mut out = Vec::new();
            for (k, v) in m {
                let name = key(k)?;
                names(&name).map_err(|m| err(format!("{}: {what}: {m}", k.at())))?;
                let value = match &v.kind {
                    Kind::Null => String::new(),
                    Kind::Scalar(s) => s.clone(),
                    _ => {
                        return Err(err(format!(
                            "{}: {what}: the value of {name:?} must be a string",
                            v.at()
                        )));
                    }
                };
                out.push((name, value));
            }
            Ok(out)
        }
        _ => Err(err(format!("{}: {what}: expected a mapping", n.at()))),
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

fn load_group(g: &Node, gi: usize, opts: LoadOptions) -> Result<RuleGroup, Error> {
    let Kind::Map(m) = &g.kind else {
        return Err(err(format!(
            "{}: group {}: expected a mapping",
            g.at(),
            gi + 1
        )));
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
    for (k, v) in m {
        match key(k)?.as_str() {
            "name" => group.name = scalar(v).unwrap_or_default(),
            "interval" => group.interval = Some(duration(v, "interval")?),
            "query_offset" => group.query_offset = Some(duration(v, "query_offset")?),
            "limit" => {
                group.limit = scalar(v)
                    .and_then(|s| s.parse::<usize>().ok())
                    .ok_or_else(|| {
                        err(format!(
                            "{}: limit: expected a non-negative integer",
                            v.at()
                        ))
                    })?;
            }
            "labels" => {
                group.labels = string_map(v, "group labels", &|n| label_name_ok(n, opts))?;
            }
            "rules" => rules_node = Some(v),
            other if !opts.ignore_unknown_fields => {
                return Err(err(format!(
                    "{}: field {other} not found in type rulefmt.RuleGroup",
                    k.at()
                )));
            }
            _ => {}
        }
    }
    if group.name.is_empty() {
        return Err(err(format!(
            "{}: group {}: groupname must not be empty",
            g.at(),
            gi + 1
        )));
    }
    let empty = Vec::new();
    let rules = match rules_node.map(|n| (&n.kind, n)) {
        None | Some((Kind::Null, _)) => &empty,
        Some((Kind::Seq(a), _)) => a,
        Some((_, n)) => {
            return Err(err(format!(
                "{}: group {:?}: rules: expected a list",
                n.at(),
                group.name
            )));
        }
    };
    for (ri, r) in rules.iter().enumerate() {
        let rule = load_rule(r, opts).map_err(|(at, e)| {
            err(format!(
                "{at}: group {:?}, rule {}: {}",
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

/// A rule; an error comes with the position it is about (the rule's
/// first key, or the node at fault).
fn load_rule(r: &Node, opts: LoadOptions) -> Result<Rule, (String, Error)> {
    let Kind::Map(m) = &r.kind else {
        return Err((r.at(), err("expected a mapping")));
    };
    let here = m.first().map_or_else(|| r.at(), |(k, _)| k.at());
    let mut expr_at = here.clone();
    load_rule_fields(m, opts, &mut expr_at).map_err(|(at, e)| (at.unwrap_or(here), e))
}

type Fields<'a> = &'a [(Node, Node)];

fn load_rule_fields(
    m: Fields<'_>,
    opts: LoadOptions,
    expr_at: &mut String,
) -> Result<Rule, (Option<String>, Error)> {
    let plain = |e: Error| (None, e);
    let (mut record, mut alert, mut expr) = (None, None, None);
    let (mut for_ms, mut keep) = (None, None);
    let (mut labels, mut annotations) = (Vec::new(), None);
    for (k, v) in m {
        let at = || Some(k.at());
        match key(k).map_err(plain)?.as_str() {
            "record" => record = scalar(v),
            "alert" => alert = scalar(v),
            "expr" => {
                expr = scalar(v);
                *expr_at = v.at();
            }
            "for" => for_ms = Some(duration(v, "for").map_err(|e| (at(), e))?),
            "keep_firing_for" => {
                keep = Some(duration(v, "keep_firing_for").map_err(|e| (at(), e))?)
            }
            "labels" => {
                labels =
                    string_map(v, "labels", &|n| label_name_ok(n, opts)).map_err(|e| (at(), e))?
            }
            "annotations" => {
                annotations = Some(
                    string_map(v, "annotations", &|n| {
                        if n.is_empty() || (opts.legacy_names && !legacy_name(n)) {
                            Err(format!("invalid annotation name: {n}"))
                        } else {
                            Ok(())
                        }
                    })
                    .map_err(|e| (at(), e))?,
                )
            }
            other if !opts.ignore_unknown_fields => {
                return Err((
                    at(),
                    err(format!("field {other} not found in type rulefmt.Rule")),
                ));
            }
            _ => {}
        }
    }
    let expr = match expr {
        Some(e) if !e.trim().is_empty() => e,
        _ => return Err((None, err("field 'expr' must be set in rule"))),
    };
    crate::parse(&expr).map_err(|e| {
        (
            Some(expr_at.clone()),
            err(format!("could not parse expression: {e}")),
        )
    })?;
    let check_templates =
        |kind: &str, pairs: &[(String, String)]| -> Result<(), (Option<String>, Error)> {
            for (k, v) in pairs {
                Template::parse(&format!("{kind} {k}"), v).map_err(plain)?;
            }
            Ok(())
        };
    match (record, alert) {
        (Some(_), Some(_)) => Err(plain(err("only one of 'record' and 'alert' must be set"))),
        (None, None) => Err(plain(err("one of 'record' or 'alert' must be set"))),
        (Some(record), None) => {
            if for_ms.is_some() {
                return Err(plain(err("invalid field 'for' in recording rule")));
            }
            if keep.is_some() {
                return Err(plain(err(
                    "invalid field 'keep_firing_for' in recording rule",
                )));
            }
            if annotations.is_some() {
                return Err(plain(err("invalid field 'annotations' in recording rule")));
            }
            if record.contains('{') || record.contains('}') {
                return Err(plain(err(format!(
                    "braces present in the recording rule name; should it be in expr?: {record}"
                ))));
            }
            if !metric_name(&record) && (opts.legacy_names || record.is_empty()) {
                return Err(plain(err(format!("invalid recording rule name: {record}"))));
            }
            Ok(Rule::Recording(RecordingRule {
                record,
                expr,
                labels,
            }))
        }
        (None, Some(alert)) => {
            if alert.is_empty() {
                return Err(plain(err("invalid alert name: \"\"")));
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
