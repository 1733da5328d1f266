//! Template execution.

use super::funcs::call;
use super::parse::{Arg, Node, Pipeline};
use super::{Data, QueryFn};

/// A value inside a template.
#[derive(Debug, Clone, PartialEq)]
pub enum TValue {
    /// Go's nil.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer (number constants without a fraction).
    Int(i64),
    /// A float64 (`$value`, humanize's input).
    Float(f64),
    /// A string.
    Str(String),
    /// A map with string keys (label sets, the root data), sorted by key.
    Map(Vec<(String, TValue)>),
    /// A list.
    List(Vec<TValue>),
}

impl TValue {
    pub(crate) fn truthy(&self) -> bool {
        match self {
            TValue::Nil => false,
            TValue::Bool(b) => *b,
            TValue::Int(i) => *i != 0,
            TValue::Float(f) => *f != 0.0,
            TValue::Str(s) => !s.is_empty(),
            TValue::Map(m) => !m.is_empty(),
            TValue::List(l) => !l.is_empty(),
        }
    }

    /// Go's name of the value's type, for error texts.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            TValue::Nil => "nil",
            TValue::Bool(_) => "bool",
            TValue::Int(_) => "int",
            TValue::Float(_) => "float64",
            TValue::Str(_) => "string",
            TValue::Map(_) => "map[string]string",
            TValue::List(_) => "[]interface {}",
        }
    }

    fn field(&self, name: &str) -> Result<TValue, String> {
        match self {
            TValue::Map(m) => Ok(m
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or(TValue::Str(String::new()))),
            TValue::Nil => Err(format!("nil pointer evaluating .{name}")),
            other => Err(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            )),
        }
    }
}

/// Prints a value as Go's `fmt` `%v` does.
pub(crate) fn print_value(v: &TValue) -> String {
    match v {
        TValue::Nil => "<no value>".into(),
        TValue::Bool(b) => b.to_string(),
        TValue::Int(i) => i.to_string(),
        TValue::Float(f) => super::funcs::format_g(*f, None),
        TValue::Str(s) => s.clone(),
        TValue::Map(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}:{}", print_value(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        TValue::List(l) => {
            let parts: Vec<String> = l.iter().map(print_value).collect();
            format!("[{}]", parts.join(" "))
        }
    }
}

fn labels_map(l: &crate::Labels) -> TValue {
    TValue::Map(
        l.iter()
            .map(|x| (x.name.clone(), TValue::Str(x.value.clone())))
            .collect(),
    )
}

struct Exec<'a> {
    data: &'a Data,
    query: Option<&'a QueryFn<'a>>,
    vars: Vec<Vec<(String, TValue)>>,
    out: String,
}

pub(crate) fn execute<'a>(
    nodes: &[Node],
    data: &'a Data,
    query: Option<&'a QueryFn<'a>>,
) -> Result<String, String> {
    let root = TValue::Map(vec![
        ("ExternalLabels".into(), labels_map(&data.external_labels)),
        ("ExternalURL".into(), TValue::Str(data.external_url.clone())),
        ("Labels".into(), labels_map(&data.labels)),
        ("Value".into(), TValue::Float(data.value)),
    ]);
    let mut ex = Exec {
        data,
        query,
        vars: vec![vec![
            ("$".into(), root.clone()),
            ("$labels".into(), labels_map(&data.labels)),
            ("$externalLabels".into(), labels_map(&data.external_labels)),
            (
                "$externalURL".into(),
                TValue::Str(data.external_url.clone()),
            ),
            ("$value".into(), TValue::Float(data.value)),
        ]],
        out: String::new(),
    };
    ex.nodes(nodes, &root)?;
    Ok(ex.out)
}

impl Exec<'_> {
    fn var(&self, name: &str) -> Result<TValue, String> {
        for scope in self.vars.iter().rev() {
            if let Some((_, v)) = scope.iter().rev().find(|(n, _)| n == name) {
                return Ok(v.clone());
            }
        }
        Err(format!("undefined variable {name:?}"))
    }

    fn set_var(&mut self, name: &str, v: TValue, declare: bool) {
        if !declare {
            for scope in self.vars.iter_mut().rev() {
                if let Some(slot) = scope.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = v;
                    return;
                }
            }
        }
        if let Some(scope) = self.vars.last_mut() {
            scope.push((name.to_string(), v));
        }
    }

    fn nodes(&mut self, nodes: &[Node], dot: &TValue) -> Result<(), String> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.vars.is_empty() {
                        self.out.push_str(&print_value(&v));
                    }
                }
                Node::If {
                    with,
                    branches,
                    else_,
                } => {
                    let mut done = false;
                    for (cond, body) in branches {
                        self.vars.push(Vec::new());
                        let v = self.pipeline(cond, dot)?;
                        if v.truthy() {
                            let d = if *with { v } else { dot.clone() };
                            self.nodes(body, &d)?;
                            self.vars.pop();
                            done = true;
                            break;
                        }
                        self.vars.pop();
                    }
                    if !done {
                        self.vars.push(Vec::new());
                        self.nodes(else_, dot)?;
                        self.vars.pop();
                    }
                }
                Node::Range { pipe, body, else_ } => {
                    self.vars.push(Vec::new());
                    let mut p = pipe.clone();
                    let names = std::mem::take(&mut p.vars);
                    let v = self.pipeline(&p, dot)?;
                    let items: Vec<(TValue, TValue)> = match v {
                        TValue::Map(m) => m.into_iter().map(|(k, v)| (TValue::Str(k), v)).collect(),
                        TValue::List(l) => l
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (TValue::Int(i as i64), v))
                            .collect(),
                        TValue::Nil => Vec::new(),
                        TValue::Int(n) => (0..n.max(0))
                            .map(|i| (TValue::Int(i), TValue::Int(i)))
                            .collect(),
                        other => {
                            return Err(format!(
                                "range can't iterate over {}",
                                print_value(&other)
                            ));
                        }
                    };
                    if items.is_empty() {
                        self.nodes(else_, dot)?;
                    }
                    for (k, v) in items {
                        self.vars.push(Vec::new());
                        match names.len() {
                            1 => self.set_var(&names[0], v.clone(), true),
                            2 => {
                                self.set_var(&names[0], k, true);
                                self.set_var(&names[1], v.clone(), true);
                            }
                            _ => {}
                        }
                        self.nodes(body, &v)?;
                        self.vars.pop();
                    }
                    self.vars.pop();
                }
            }
        }
        Ok(())
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &TValue) -> Result<TValue, String> {
        let mut val: Option<TValue> = None;
        for cmd in &p.cmds {
            val = Some(self.command(cmd, dot, val.take())?);
        }
        let v = val.unwrap_or(TValue::Nil);
        for name in &p.vars {
            self.set_var(name, v.clone(), !p.assign);
        }
        Ok(v)
    }

    fn arg(&mut self, a: &Arg, dot: &TValue) -> Result<TValue, String> {
        Ok(match a {
            Arg::Var(n, fields) => {
                let mut v = self.var(n)?;
                for f in fields {
                    v = v.field(f)?;
                }
                v
            }
            Arg::Dot(fields) => {
                let mut v = dot.clone();
                for f in fields {
                    v = v.field(f)?;
                }
                v
            }
            Arg::Str(s) => TValue::Str(s.clone()),
            Arg::Int(i) => TValue::Int(*i),
            Arg::Float(f) => TValue::Float(*f),
            Arg::Bool(b) => TValue::Bool(*b),
            Arg::Nil => TValue::Nil,
            Arg::Pipe(p) => self.pipeline(p, dot)?,
            Arg::Func(f) => call(f, Vec::new(), self.data, self.query)?,
        })
    }

    fn command(
        &mut self,
        cmd: &[Arg],
        dot: &TValue,
        piped: Option<TValue>,
    ) -> Result<TValue, String> {
        if let Some(Arg::Func(name)) = cmd.first() {
            let mut args = Vec::with_capacity(cmd.len());
            for a in &cmd[1..] {
                args.push(self.arg(a, dot)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            return call(name, args, self.data, self.query);
        }
        if piped.is_some() || cmd.len() > 1 {
            return Err("can't give argument to non-function".into());
        }
        self.arg(&cmd[0], dot)
    }
}
