//! A YAML tree with positions, for the monitor's strict configuration files
//! (prometheus.yml and file_sd target files).
//!
//! yaml-rust2's `Yaml` loses where a node came from; its event parser does
//! not, so the tree is built from events, keeping the 1-based line and
//! column of every node. Aliases are resolved by copying the anchored node.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A node and where it starts (1-based line and column).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) kind: Kind,
    pub(crate) line: usize,
    pub(crate) col: usize,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Null,
    /// A scalar as written (after YAML unquoting); `quoted` when it was in
    /// quotes (so `"true"` is a string, not a boolean).
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// Deeper nesting than any configuration needs is refused, so that a hostile
/// file cannot make the tree builder recurse without bound later.
const MAX_DEPTH: usize = 64;

#[derive(Default)]
struct Builder {
    stack: Vec<(Node, Option<Node>, usize)>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    docs: usize,
    too_deep: Option<(usize, usize)>,
}

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
        if self.docs > 1 || self.too_deep.is_some() {
            return;
        }
        let node = |kind| Node {
            kind,
            line: mark.line(),
            col: mark.col() + 1,
        };
        match ev {
            Event::Scalar(v, style, aid, _) => {
                let plain = style == TScalarStyle::Plain;
                let null = plain && matches!(v.as_str(), "" | "~" | "null" | "Null" | "NULL");
                let n = node(if null {
                    Kind::Null
                } else {
                    Kind::Scalar {
                        text: v,
                        quoted: !plain,
                    }
                });
                if aid > 0 {
                    self.anchors.insert(aid, n.clone());
                }
                self.insert(n);
            }
            Event::SequenceStart(aid, _) | Event::MappingStart(aid, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.too_deep = Some((mark.line(), mark.col() + 1));
                    return;
                }
                let kind = if matches!(ev, Event::SequenceStart(..)) {
                    Kind::Seq(Vec::new())
                } else {
                    Kind::Map(Vec::new())
                };
                self.stack.push((node(kind), None, aid));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((mut n, _, aid)) = self.stack.pop() {
                    // A block mapping's start event is marked where the
                    // scanner first sees a `:`; its first key is where the
                    // reader sees the mapping begin.
                    if let Kind::Map(m) = &n.kind
                        && let Some((k, _)) = m.first()
                        && (k.line, k.col) < (n.line, n.col)
                    {
                        (n.line, n.col) = (k.line, k.col);
                    }
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

/// A YAML syntax error: line, column (1-based) and what.
#[derive(Debug, Clone)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) col: usize,
    pub(crate) msg: String,
}

/// Parses the first document of `text`; `None` for an empty file.
pub(crate) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut b = Builder::default();
    Parser::new_from_str(text)
        .load(&mut b, false)
        .map_err(|e| SyntaxError {
            line: e.marker().line(),
            col: e.marker().col() + 1,
            msg: format!("yaml: {}", e.info()),
        })?;
    if let Some((line, col)) = b.too_deep {
        return Err(SyntaxError {
            line,
            col,
            msg: format!("yaml: nested more than {MAX_DEPTH} levels"),
        });
    }
    Ok(b.root)
}

impl Node {
    /// The scalar text, if this is a scalar.
    pub(crate) fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A short name of the node's kind, for "expected X, found Y" errors.
    pub(crate) fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Null => "null",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let n = parse("a:\n  b: [1, 2]\n").unwrap().unwrap();
        let Kind::Map(m) = &n.kind else { panic!() };
        assert_eq!((m[0].0.line, m[0].0.col), (1, 1));
        let Kind::Map(inner) = &m[0].1.kind else {
            panic!()
        };
        assert_eq!((inner[0].0.line, inner[0].0.col), (2, 3));
    }

    #[test]
    fn aliases_copy_and_errors_have_positions() {
        let n = parse("a: &x [1]\nb: *x\n").unwrap().unwrap();
        let Kind::Map(m) = &n.kind else { panic!() };
        assert_eq!(m[0].1.kind, m[1].1.kind);
        let e = parse("a: [1\nb: 2\n").unwrap_err();
        assert!(e.line >= 1 && e.msg.starts_with("yaml:"), "{e:?}");
        assert!(parse("").unwrap().is_none());
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&deep).unwrap_err().msg.contains("nested"));
    }
}
