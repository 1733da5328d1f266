//! Recursive-descent PromQL parser with precedence climbing for binary
//! operators.
//!
//! Precedence, lowest first, as in Prometheus's grammar: `or`; `and`
//! `unless`; comparisons; `+ -`; `* / % atan2`; `^` (right-associative).
//! Unary minus binds like `*` (so `-2^2` is `-(2^2)` and `-a * b` is
//! `(-a) * b`); `[range]`, `offset` and `@` bind tightest. After parsing,
//! every node is type-checked with Prometheus's rules and messages.

use crate::Error;
use crate::promql::ast::*;
use crate::promql::functions::{Function, lookup_function};
use crate::promql::lexer::{Tok, Token, lex};

/// Parses and type-checks a PromQL expression.
pub fn parse(input: &str) -> Result<Expr, Error> {
    let tokens = lex(input)?;
    let mut p = Parser {
        input,
        tokens,
        pos: 0,
        info_selector: false,
        depth: 0,
    };
    let e = p.expr(0)?;
    if p.peek() != &Tok::Eof {
        return Err(p.unexpected("end of input"));
    }
    Ok(e)
}

struct Parser<'a> {
    input: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    /// Set while parsing info()'s label selector, which may match empty
    /// values only (`{data=~".*"}`).
    info_selector: bool,
    /// Current nesting depth, bounded so that a hostile query cannot
    /// overflow the stack (here or in the evaluator, which recurses alike).
    depth: usize,
}

/// How deeply expressions may nest.
const MAX_DEPTH: usize = 128;

/// How many binary operators one chain (`a + b + c ...`) may have: the tree
/// it builds is that deep, and checks and evaluation recurse through it.
const MAX_CHAIN: usize = 400;

fn binary_op(t: &Tok) -> Option<BinaryOp> {
    Some(match t {
        Tok::Add => BinaryOp::Add,
        Tok::Sub => BinaryOp::Sub,
        Tok::Mul => BinaryOp::Mul,
        Tok::Div => BinaryOp::Div,
        Tok::Mod => BinaryOp::Mod,
        Tok::Pow => BinaryOp::Pow,
        Tok::Eql => BinaryOp::Eql,
        Tok::Neq => BinaryOp::Neq,
        Tok::Lss => BinaryOp::Lss,
        Tok::Lte => BinaryOp::Lte,
        Tok::Gtr => BinaryOp::Gtr,
        Tok::Gte => BinaryOp::Gte,
        Tok::Ident(s) => match s.to_ascii_lowercase().as_str() {
            "and" => BinaryOp::And,
            "or" => BinaryOp::Or,
            "unless" => BinaryOp::Unless,
            "atan2" => BinaryOp::Atan2,
            _ => return None,
        },
        _ => return None,
    })
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
}

fn bytes_to_string(b: Vec<u8>) -> (String, Option<Vec<u8>>) {
    match String::from_utf8(b) {
        Ok(s) => (s, None),
        Err(e) => {
            let bytes = e.into_bytes();
            (String::from_utf8_lossy(&bytes).into_owned(), Some(bytes))
        }
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos.min(self.tokens.len() - 1)].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.tokens[(self.pos + n).min(self.tokens.len() - 1)].tok
    }

    fn tok(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.tok().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn prev_end(&self) -> usize {
        if self.pos == 0 {
            0
        } else {
            self.tokens[self.pos - 1].end
        }
    }

    fn err_at(&self, offset: usize, msg: impl Into<String>) -> Error {
        Error::parse_at(self.input, offset, msg)
    }

    fn unexpected(&self, expected: &str) -> Error {
        let t = self.tok();
        let what = t.tok.describe();
        if expected.is_empty() {
            self.err_at(t.start, format!("unexpected {what}"))
        } else {
            self.err_at(t.start, format!("unexpected {what}, expected {expected}"))
        }
    }

    fn expect(&mut self, t: Tok, what: &str) -> Result<Token, Error> {
        if *self.peek() == t {
            Ok(self.next())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn expr(&mut self, min_prec: u8) -> Result<Expr, Error> {
        self.depth += 1;
        let r = self.expr_inner(min_prec);
        self.depth -= 1;
        r
    }

    fn expr_inner(&mut self, min_prec: u8) -> Result<Expr, Error> {
        if self.depth > MAX_DEPTH {
            let at = self.tok().start;
            return Err(self.err_at(at, "expression nested too deeply"));
        }
        let mut lhs = self.unary()?;
        let mut chain = 0;
        while let Some(op) = binary_op(self.peek()) {
            chain += 1;
            if chain > MAX_CHAIN {
                let at = self.tok().start;
                return Err(self.err_at(at, "too many binary operators in one expression"));
            }
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            let op_tok = self.next();
            let mut return_bool = false;
            if is_kw(self.peek(), "bool") {
                self.next();
                return_bool = true;
            }
            let mut matching = None;
            if is_kw(self.peek(), "on") || is_kw(self.peek(), "ignoring") {
                let on = is_kw(self.peek(), "on");
                self.next();
                let labels = self.label_list()?;
                let mut m = VectorMatching {
                    card: Cardinality::OneToOne,
                    on,
                    labels,
                    include: Vec::new(),
                    fill_left: None,
                    fill_right: None,
                };
                if is_kw(self.peek(), "group_left") || is_kw(self.peek(), "group_right") {
                    let left = is_kw(self.peek(), "group_left");
                    let g = self.next();
                    m.card = if left {
                        Cardinality::ManyToOne
                    } else {
                        Cardinality::OneToMany
                    };
                    if *self.peek() == Tok::LParen {
                        m.include = self.label_list()?;
                    }
                    if op.is_set() {
                        return Err(self.err_at(
                            g.start,
                            format!("no grouping allowed for \"{}\" operation", op.as_str()),
                        ));
                    }
                    for l in &m.include {
                        if m.on && m.labels.contains(l) {
                            return Err(self.err_at(
                                g.start,
                                format!(
                                    "label \"{l}\" must not occur in ON and GROUP clause at once"
                                ),
                            ));
                        }
                    }
                }
                matching = Some(m);
            } else if is_kw(self.peek(), "group_left") || is_kw(self.peek(), "group_right") {
                return Err(self.unexpected("\"on\" or \"ignoring\" before group modifier"));
            }
            // 3.x fill modifiers: fill(v), fill_left(v), fill_right(v).
            while let Tok::Ident(w) = self.peek().clone() {
                let which = match w.as_str() {
                    "fill" => 0,
                    "fill_left" => 1,
                    "fill_right" => 2,
                    _ => break,
                };
                if *self.peek_at(1) != Tok::LParen {
                    break;
                }
                let ft = self.next();
                self.next();
                let neg = match self.peek() {
                    Tok::Sub => {
                        self.next();
                        true
                    }
                    Tok::Add => {
                        self.next();
                        false
                    }
                    _ => false,
                };
                let Tok::Number(v) = self.peek().clone() else {
                    return Err(self.unexpected("number in fill modifier"));
                };
                self.next();
                self.expect(Tok::RParen, "\")\"")?;
                let v = if neg { -v } else { v };
                if op.is_set() {
                    return Err(self.err_at(
                        ft.start,
                        format!(
                            "fill modifiers are not allowed for \"{}\" operation",
                            op.as_str()
                        ),
                    ));
                }
                let m = matching.get_or_insert(VectorMatching {
                    card: Cardinality::OneToOne,
                    on: false,
                    labels: Vec::new(),
                    include: Vec::new(),
                    fill_left: None,
                    fill_right: None,
                });
                if which != 2 {
                    m.fill_left = Some(v);
                }
                if which != 1 {
                    m.fill_right = Some(v);
                }
            }
            let next_min = if op == BinaryOp::Pow { prec } else { prec + 1 };
            let rhs = self.expr(next_min)?;
            lhs = self.binary(op, op_tok.start, lhs, rhs, return_bool, matching)?;
        }
        Ok(lhs)
    }

    fn binary(
        &self,
        op: BinaryOp,
        op_pos: usize,
        lhs: Expr,
        rhs: Expr,
        return_bool: bool,
        matching: Option<VectorMatching>,
    ) -> Result<Expr, Error> {
        let span = Span {
            start: lhs.span.start,
            end: rhs.span.end,
        };
        let (lt, rt) = (lhs.value_type(), rhs.value_type());
        let ok = |t| t == ValueType::Scalar || t == ValueType::Vector;
        if return_bool && !op.is_comparison() {
            return Err(self.err_at(
                op_pos,
                "bool modifier can only be used on comparison operators",
            ));
        }
        if !ok(lt) || !ok(rt) {
            return Err(self.err_at(
                span.start,
                "binary expression must contain only scalar and instant vector types",
            ));
        }
        if op.is_comparison() && !return_bool && lt == ValueType::Scalar && rt == ValueType::Scalar
        {
            return Err(self.err_at(
                span.start,
                "comparisons between scalars must use BOOL modifier",
            ));
        }
        if op.is_set() && (lt == ValueType::Scalar || rt == ValueType::Scalar) {
            return Err(self.err_at(
                span.start,
                format!(
                    "set operator \"{}\" not allowed in binary scalar expression",
                    op.as_str()
                ),
            ));
        }
        let both_vectors = lt == ValueType::Vector && rt == ValueType::Vector;
        let matching = if both_vectors {
            let mut m = matching.unwrap_or(VectorMatching {
                card: Cardinality::OneToOne,
                on: false,
                labels: Vec::new(),
                include: Vec::new(),
                fill_left: None,
                fill_right: None,
            });
            if op.is_set() {
                m.card = Cardinality::ManyToMany;
            }
            Some(m)
        } else {
            if let Some(m) = &matching {
                if !m.labels.is_empty()
                    || m.on
                    || m.card != Cardinality::OneToOne
                    || m.fill_left.is_some()
                    || m.fill_right.is_some()
                {
                    return Err(self.err_at(
                        span.start,
                        "vector matching only allowed between instant vectors",
                    ));
                }
            }
            None
        };
        Ok(Expr {
            kind: ExprKind::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                return_bool,
                matching,
            },
            span,
        })
    }

    fn unary(&mut self) -> Result<Expr, Error> {
        if matches!(self.peek(), Tok::Sub | Tok::Add) {
            let t = self.next();
            let negate = t.tok == Tok::Sub;
            let e = self.expr(BinaryOp::Pow.precedence())?;
            let span = Span {
                start: t.start,
                end: e.span.end,
            };
            if let ExprKind::Number(v) = e.kind {
                return Ok(Expr {
                    kind: ExprKind::Number(if negate { -v } else { v }),
                    span,
                });
            }
            let ty = e.value_type();
            if ty != ValueType::Scalar && ty != ValueType::Vector {
                return Err(self.err_at(
                    t.start,
                    format!(
                        "unary expression only allowed on expressions of type scalar or instant vector, got \"{ty}\""
                    ),
                ));
            }
            return Ok(Expr {
                kind: ExprKind::Unary {
                    negate,
                    expr: Box::new(e),
                },
                span,
            });
        }
        let p = self.primary()?;
        self.postfix(p)
    }

    /// Converts seconds to milliseconds, refusing what does not fit.
    fn secs_to_ms(&self, v: f64, at: usize) -> Result<i64, Error> {
        if !v.is_finite() || (v * 1000.0).abs() > 9.2e18 {
            return Err(self.err_at(at, "duration is out of range"));
        }
        Ok((v * 1000.0).round() as i64)
    }

    /// A duration inside `[...]`: a literal or (3.x) a duration expression.
    /// Returns milliseconds, or the expression when it depends on the query.
    fn bracket_duration(&mut self) -> Result<(i64, Option<Box<DurationExpr>>), Error> {
        let at = self.tok().start;
        let d = self.dexpr(0)?;
        if d.is_query_dependent() {
            return Ok((0, Some(Box::new(d))));
        }
        Ok((self.secs_to_ms(d.seconds(0.0, 0.0), at)?, None))
    }

    /// A duration expression with the arithmetic operators.
    fn dexpr(&mut self, min_prec: u8) -> Result<DurationExpr, Error> {
        self.depth += 1;
        let r = self.dexpr_inner(min_prec);
        self.depth -= 1;
        r
    }

    fn dexpr_inner(&mut self, min_prec: u8) -> Result<DurationExpr, Error> {
        if self.depth > MAX_DEPTH {
            let at = self.tok().start;
            return Err(self.err_at(at, "duration expression nested too deeply"));
        }
        let mut lhs = if matches!(self.peek(), Tok::Sub | Tok::Add) {
            let neg = *self.peek() == Tok::Sub;
            self.next();
            let e = self.dexpr(BinaryOp::Pow.precedence())?;
            if neg {
                DurationExpr::Neg(Box::new(e))
            } else {
                e
            }
        } else {
            self.datom()?
        };
        loop {
            let op = match self.peek() {
                Tok::Add => BinaryOp::Add,
                Tok::Sub => BinaryOp::Sub,
                Tok::Mul => BinaryOp::Mul,
                Tok::Div => BinaryOp::Div,
                Tok::Mod => BinaryOp::Mod,
                Tok::Pow => BinaryOp::Pow,
                _ => break,
            };
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            self.next();
            let rhs = self.dexpr(if op == BinaryOp::Pow { prec } else { prec + 1 })?;
            lhs = DurationExpr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    /// One operand of a duration expression.
    fn datom(&mut self) -> Result<DurationExpr, Error> {
        match self.peek().clone() {
            Tok::Number(v) => {
                self.next();
                Ok(DurationExpr::Seconds(v))
            }
            Tok::Duration(ms) => {
                self.next();
                Ok(DurationExpr::Seconds(ms as f64 / 1000.0))
            }
            Tok::LParen => {
                self.next();
                let e = self.dexpr(0)?;
                self.expect(Tok::RParen, "\")\"")?;
                Ok(e)
            }
            Tok::Ident(name) if *self.peek_at(1) == Tok::LParen => {
                let lower = name.to_ascii_lowercase();
                match lower.as_str() {
                    "step" | "range" => {
                        self.next();
                        self.next();
                        self.expect(Tok::RParen, "\")\"")?;
                        Ok(if lower == "step" {
                            DurationExpr::Step
                        } else {
                            DurationExpr::Range
                        })
                    }
                    "min_of" | "max_of" => {
                        self.next();
                        self.next();
                        let a = self.dexpr(0)?;
                        self.expect(Tok::Comma, "\",\"")?;
                        let b = self.dexpr(0)?;
                        self.expect(Tok::RParen, "\")\"")?;
                        let (a, b) = (Box::new(a), Box::new(b));
                        Ok(if lower == "min_of" {
                            DurationExpr::MinOf(a, b)
                        } else {
                            DurationExpr::MaxOf(a, b)
                        })
                    }
                    _ => Err(self.unexpected("number or duration")),
                }
            }
            _ => Err(self.unexpected("number or duration")),
        }
    }

    fn postfix(&mut self, mut e: Expr) -> Result<Expr, Error> {
        loop {
            match self.peek().clone() {
                Tok::LBracket => {
                    let lb = self.next();
                    let (range, range_expr) = self.bracket_duration()?;
                    if *self.peek() == Tok::Colon {
                        self.next();
                        let (step, step_expr) = if *self.peek() == Tok::RBracket {
                            (None, None)
                        } else {
                            let (s, se) = self.bracket_duration()?;
                            (Some(s), se)
                        };
                        let rb = self.expect(Tok::RBracket, "\"]\"")?;
                        let ty = e.value_type();
                        if ty != ValueType::Vector {
                            return Err(self.err_at(
                                lb.start,
                                format!(
                                    "subquery is only allowed on instant vector, got {ty} instead"
                                ),
                            ));
                        }
                        if range_expr.is_none() && range <= 0 {
                            return Err(self.err_at(lb.start, "subquery range must be positive"));
                        }
                        if step_expr.is_none() && step.is_some_and(|s| s <= 0) {
                            return Err(self.err_at(lb.start, "subquery step must be positive"));
                        }
                        let duration_exprs = if range_expr.is_some() || step_expr.is_some() {
                            Some(Box::new(SubqueryDurations {
                                range: range_expr.map(|d| *d),
                                step: step_expr.map(|d| *d),
                                offset: None,
                            }))
                        } else {
                            None
                        };
                        let span = Span {
                            start: e.span.start,
                            end: rb.end,
                        };
                        e = Expr {
                            kind: ExprKind::Subquery {
                                expr: Box::new(e),
                                range,
                                step,
                                offset: 0,
                                duration_exprs,
                                at: None,
                            },
                            span,
                        };
                    } else {
                        let rb = self.expect(Tok::RBracket, "\"]\" or \":\"")?;
                        let ExprKind::VectorSelector(vs) = e.kind else {
                            return Err(
                                self.err_at(lb.start, "ranges only allowed for vector selectors")
                            );
                        };
                        if vs.offset != 0 || vs.offset_expr.is_some() {
                            return Err(
                                self.err_at(lb.start, "no offset modifiers allowed before range")
                            );
                        }
                        if vs.at.is_some() {
                            return Err(
                                self.err_at(lb.start, "no @ modifiers allowed before range")
                            );
                        }
                        if range_expr.is_none() && range <= 0 {
                            return Err(self.err_at(lb.start, "range must be positive"));
                        }
                        e = Expr {
                            kind: ExprKind::MatrixSelector {
                                selector: vs,
                                range,
                                range_expr,
                            },
                            span: Span {
                                start: e.span.start,
                                end: rb.end,
                            },
                        };
                    }
                }
                Tok::Ident(s) if s.eq_ignore_ascii_case("offset") => {
                    let t = self.next();
                    // A sign, then one operand: a literal, a parenthesised
                    // duration expression, step(), range(), min_of, max_of.
                    // `x offset 5m + 1` adds 1 to the selector's value.
                    let neg = match self.peek() {
                        Tok::Sub => {
                            self.next();
                            true
                        }
                        Tok::Add => {
                            self.next();
                            false
                        }
                        _ => false,
                    };
                    let at = self.tok().start;
                    let mut d = self.datom()?;
                    if neg {
                        d = DurationExpr::Neg(Box::new(d));
                    }
                    let (ms, dexpr) = if d.is_query_dependent() {
                        (0, Some(d))
                    } else {
                        (self.secs_to_ms(d.seconds(0.0, 0.0), at)?, None)
                    };
                    let has_offset = match &e.kind {
                        ExprKind::VectorSelector(vs) => vs.offset != 0 || vs.offset_expr.is_some(),
                        ExprKind::MatrixSelector { selector, .. } => {
                            selector.offset != 0 || selector.offset_expr.is_some()
                        }
                        ExprKind::Subquery {
                            offset,
                            duration_exprs,
                            ..
                        } => {
                            *offset != 0
                                || duration_exprs.as_ref().is_some_and(|d| d.offset.is_some())
                        }
                        _ => {
                            return Err(self.err_at(
                                t.start,
                                "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                            ));
                        }
                    };
                    if has_offset {
                        return Err(self.err_at(t.start, "offset may not be set multiple times"));
                    }
                    match &mut e.kind {
                        ExprKind::VectorSelector(vs) => {
                            vs.offset = ms;
                            vs.offset_expr = dexpr.map(Box::new);
                        }
                        ExprKind::MatrixSelector { selector, .. } => {
                            selector.offset = ms;
                            selector.offset_expr = dexpr.map(Box::new);
                        }
                        ExprKind::Subquery {
                            offset,
                            duration_exprs,
                            ..
                        } => {
                            *offset = ms;
                            if let Some(d) = dexpr {
                                duration_exprs.get_or_insert_with(Default::default).offset =
                                    Some(d);
                            }
                        }
                        _ => {}
                    }
                    e.span.end = self.prev_end();
                }
                Tok::Ident(w)
                    if (w == "anchored" || w == "smoothed")
                        && matches!(
                            e.kind,
                            ExprKind::VectorSelector(_) | ExprKind::MatrixSelector { .. }
                        ) =>
                {
                    let t = self.next();
                    let vs = match &mut e.kind {
                        ExprKind::VectorSelector(vs) => vs,
                        ExprKind::MatrixSelector { selector, .. } => selector,
                        _ => unreachable!("matched above"),
                    };
                    if vs.anchored || vs.smoothed {
                        return Err(
                            self.err_at(t.start, "anchored or smoothed may be set only once")
                        );
                    }
                    if w == "anchored" {
                        vs.anchored = true;
                    } else {
                        vs.smoothed = true;
                    }
                    e.span.end = self.prev_end();
                }
                Tok::At => {
                    let t = self.next();
                    let at = self.at_value()?;
                    let slot = match &mut e.kind {
                        ExprKind::VectorSelector(vs) => &mut vs.at,
                        ExprKind::MatrixSelector { selector, .. } => &mut selector.at,
                        ExprKind::Subquery { at, .. } => at,
                        _ => {
                            return Err(self.err_at(
                                t.start,
                                "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                            ));
                        }
                    };
                    if slot.is_some() {
                        return Err(
                            self.err_at(t.start, "@ <timestamp> may not be set multiple times")
                        );
                    }
                    *slot = Some(at);
                    e.span.end = self.prev_end();
                }
                _ => return Ok(e),
            }
        }
    }

    fn at_value(&mut self) -> Result<AtModifier, Error> {
        let t = self.tok().clone();
        match &t.tok {
            Tok::Ident(s) if (s == "start" || s == "end") && *self.peek_at(1) == Tok::LParen => {
                let start = s == "start";
                self.next();
                self.next();
                self.expect(Tok::RParen, "\")\"")?;
                Ok(if start {
                    AtModifier::Start
                } else {
                    AtModifier::End
                })
            }
            Tok::Number(_) | Tok::Sub | Tok::Add | Tok::Duration(_) => {
                let neg = match self.peek() {
                    Tok::Sub => {
                        self.next();
                        true
                    }
                    Tok::Add => {
                        self.next();
                        false
                    }
                    _ => false,
                };
                let v = match self.peek().clone() {
                    Tok::Number(v) => v,
                    Tok::Duration(ms) => ms as f64 / 1000.0,
                    _ => {
                        return Err(self.unexpected("number, duration, \"start()\" or \"end()\""));
                    }
                };
                self.next();
                let v = if neg { -v } else { v };
                let ms = (v * 1000.0).round();
                if !ms.is_finite() || ms.abs() > 9.2e18 {
                    return Err(self.err_at(t.start, "timestamp out of bounds for @ modifier"));
                }
                Ok(AtModifier::Timestamp(ms as i64))
            }
            _ => Err(self.unexpected("timestamp for @ modifier")),
        }
    }

    fn primary(&mut self) -> Result<Expr, Error> {
        let t = self.tok().clone();
        let span = Span {
            start: t.start,
            end: t.end,
        };
        match t.tok {
            Tok::Number(v) => {
                self.next();
                Ok(Expr {
                    kind: ExprKind::Number(v),
                    span,
                })
            }
            Tok::Duration(ms) => {
                self.next();
                Ok(Expr {
                    kind: ExprKind::Number(ms as f64 / 1000.0),
                    span,
                })
            }
            Tok::Str(b) => {
                self.next();
                let (value, bytes) = bytes_to_string(b);
                Ok(Expr {
                    kind: ExprKind::String { value, bytes },
                    span,
                })
            }
            Tok::LParen => {
                self.next();
                let inner = self.expr(0)?;
                let rp = self.expect(Tok::RParen, "\")\"")?;
                Ok(Expr {
                    kind: ExprKind::Paren(Box::new(inner)),
                    span: Span {
                        start: t.start,
                        end: rp.end,
                    },
                })
            }
            Tok::LBrace => self.selector(None, t.start),
            Tok::Ident(name) => {
                let next = self.peek_at(1).clone();
                if let Some(op) = AggregateOp::from_name(&name) {
                    if next == Tok::LParen || is_kw(&next, "by") || is_kw(&next, "without") {
                        self.next();
                        return self.aggregate(op, t.start);
                    }
                }
                if next == Tok::LParen {
                    self.next();
                    let f = lookup_function(&name).ok_or_else(|| {
                        self.err_at(t.start, format!("unknown function with name {name:?}"))
                    })?;
                    return self.call(f, t.start);
                }
                if binary_op(&Tok::Ident(name.clone())).is_some() {
                    return Err(self.unexpected("expression"));
                }
                self.next();
                self.selector(Some(name), t.start)
            }
            _ => Err(self.unexpected("expression")),
        }
    }

    fn label_name(&mut self) -> Result<String, Error> {
        let t = self.tok().clone();
        let name = match t.tok {
            Tok::Ident(s) if !s.contains(':') => s,
            Tok::Str(b) => match String::from_utf8(b) {
                Ok(s) => s,
                Err(_) => return Err(self.err_at(t.start, "invalid UTF-8 in label name")),
            },
            _ => return Err(self.unexpected("label")),
        };
        self.next();
        Ok(name)
    }

    fn label_list(&mut self) -> Result<Vec<String>, Error> {
        self.expect(Tok::LParen, "\"(\"")?;
        let mut out = Vec::new();
        loop {
            if *self.peek() == Tok::RParen {
                self.next();
                return Ok(out);
            }
            out.push(self.label_name()?);
            match self.peek() {
                Tok::Comma => {
                    self.next();
                }
                Tok::RParen => {}
                _ => return Err(self.unexpected("\",\" or \")\"")),
            }
        }
    }

    fn selector(&mut self, name: Option<String>, start: usize) -> Result<Expr, Error> {
        let mut name = name;
        let mut matchers = Vec::new();
        if let Some(n) = &name {
            matchers.push(Matcher::new(MatchOp::Equal, "__name__", n)?);
        }
        if *self.peek() == Tok::LBrace {
            self.next();
            loop {
                if *self.peek() == Tok::RBrace {
                    self.next();
                    break;
                }
                let lt = self.tok().clone();
                let is_str = matches!(lt.tok, Tok::Str(_));
                let lname = self.label_name()?;
                let op = match self.peek() {
                    Tok::Assign => Some(MatchOp::Equal),
                    Tok::Neq => Some(MatchOp::NotEqual),
                    Tok::EqlRegex => Some(MatchOp::Regex),
                    Tok::NeqRegex => Some(MatchOp::NotRegex),
                    _ => None,
                };
                match op {
                    None if is_str => {
                        if name.is_some() {
                            return Err(self.err_at(
                                lt.start,
                                format!(
                                    "metric name must not be set twice: {:?} or {:?}",
                                    name.unwrap_or_default(),
                                    lname
                                ),
                            ));
                        }
                        matchers.push(Matcher::new(MatchOp::Equal, "__name__", &lname)?);
                        name = Some(lname);
                    }
                    None => return Err(self.unexpected("label matching operator")),
                    Some(op) => {
                        self.next();
                        let vt = self.tok().clone();
                        let Tok::Str(b) = vt.tok else {
                            return Err(self.unexpected("string"));
                        };
                        self.next();
                        let (value, _) = bytes_to_string(b);
                        let m = Matcher::new(op, &lname, &value).map_err(|e| match e {
                            Error::Regex { source, .. } => self.err_at(
                                vt.start,
                                format!("invalid regular expression in matcher: {source}"),
                            ),
                            e => e,
                        })?;
                        if lname == "__name__" && name.is_some() && op == MatchOp::Equal {
                            if let Some(n) = &name {
                                return Err(self.err_at(
                                    lt.start,
                                    format!(
                                        "metric name must not be set twice: {n:?} or {value:?}"
                                    ),
                                ));
                            }
                        }
                        matchers.push(m);
                    }
                }
                match self.peek() {
                    Tok::Comma => {
                        self.next();
                    }
                    Tok::RBrace => {}
                    _ => return Err(self.unexpected("\",\" or \"}\"")),
                }
            }
        }
        let end = self.prev_end();
        if !self.info_selector && !matchers.iter().any(|m| !m.matches("")) {
            return Err(self.err_at(
                start,
                "vector selector must contain at least one non-empty matcher",
            ));
        }
        Ok(Expr {
            kind: ExprKind::VectorSelector(VectorSelector {
                name,
                matchers,
                offset: 0,
                offset_expr: None,
                at: None,
                anchored: false,
                smoothed: false,
            }),
            span: Span { start, end },
        })
    }

    fn args(&mut self) -> Result<Vec<Expr>, Error> {
        self.expect(Tok::LParen, "\"(\"")?;
        let mut args = Vec::new();
        loop {
            if *self.peek() == Tok::RParen {
                self.next();
                return Ok(args);
            }
            args.push(self.expr(0)?);
            match self.peek() {
                Tok::Comma => {
                    self.next();
                }
                Tok::RParen => {}
                _ => return Err(self.unexpected("\",\" or \")\"")),
            }
        }
    }

    /// info(v, {label selector}): the selector may be a lone `{...}` whose
    /// matchers all match the empty value.
    fn info_args(&mut self) -> Result<Vec<Expr>, Error> {
        self.expect(Tok::LParen, "\"(\"")?;
        let mut args = vec![self.expr(0)?];
        if *self.peek() == Tok::Comma {
            self.next();
            self.info_selector = true;
            let sel = self.expr(0);
            self.info_selector = false;
            let sel = sel?;
            if !matches!(sel.kind, ExprKind::VectorSelector(_)) {
                return Err(self.err_at(
                    sel.span.start,
                    "expected label selectors as the second argument to \"info\" function",
                ));
            }
            args.push(sel);
        }
        self.expect(Tok::RParen, "\")\"")?;
        Ok(args)
    }

    fn grouping(&mut self) -> Result<Option<(bool, Vec<String>)>, Error> {
        if is_kw(self.peek(), "by") || is_kw(self.peek(), "without") {
            let without = is_kw(self.peek(), "without");
            self.next();
            let labels = self.label_list()?;
            return Ok(Some((without, labels)));
        }
        Ok(None)
    }

    fn aggregate(&mut self, op: AggregateOp, start: usize) -> Result<Expr, Error> {
        let before = self.grouping()?;
        let args_at = self.tok().start;
        let mut args = self.args()?;
        let after = self.grouping()?;
        if before.is_some() && after.is_some() {
            return Err(self.err_at(args_at, "grouping may be given only once"));
        }
        let (without, grouping) = before.or(after).unwrap_or((false, Vec::new()));
        let want = if op.has_param() { 2 } else { 1 };
        if args.len() != want {
            return Err(self.err_at(
                args_at,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {want}, got {}",
                    args.len()
                ),
            ));
        }
        let expr = args.pop().expect("checked length");
        let param = args.pop();
        if expr.value_type() != ValueType::Vector {
            return Err(self.err_at(
                expr.span.start,
                format!(
                    "expected type instant vector in aggregation expression, got {}",
                    expr.value_type()
                ),
            ));
        }
        if let Some(p) = &param {
            let want = if op == AggregateOp::CountValues {
                ValueType::String
            } else {
                ValueType::Scalar
            };
            if p.value_type() != want {
                return Err(self.err_at(
                    p.span.start,
                    format!(
                        "expected type {want} in aggregation parameter, got {}",
                        p.value_type()
                    ),
                ));
            }
        }
        Ok(Expr {
            kind: ExprKind::Aggregate {
                op,
                expr: Box::new(expr),
                param: param.map(Box::new),
                grouping,
                without,
            },
            span: Span {
                start,
                end: self.prev_end(),
            },
        })
    }

    fn call(&mut self, func: &'static Function, start: usize) -> Result<Expr, Error> {
        let args = if func.name == "info" {
            self.info_args()?
        } else {
            self.args()?
        };
        let span = Span {
            start,
            end: self.prev_end(),
        };
        let nargs = func.args.len();
        let got = args.len();
        if func.variadic == 0 {
            if nargs != got {
                return Err(self.err_at(
                    start,
                    format!(
                        "expected {nargs} argument(s) in call to {:?}, got {got}",
                        func.name
                    ),
                ));
            }
        } else {
            let min = nargs - 1;
            if got < min {
                return Err(self.err_at(
                    start,
                    format!(
                        "expected at least {min} argument(s) in call to {:?}, got {got}",
                        func.name
                    ),
                ));
            }
            if func.variadic > 0 && got > min + func.variadic as usize {
                return Err(self.err_at(
                    start,
                    format!(
                        "expected at most {} argument(s) in call to {:?}, got {got}",
                        min + func.variadic as usize,
                        func.name
                    ),
                ));
            }
        }
        for (i, a) in args.iter().enumerate() {
            let want = func.args[i.min(nargs.saturating_sub(1))];
            if a.value_type() != want {
                return Err(self.err_at(
                    a.span.start,
                    format!(
                        "expected type {want} in call to function {:?}, got {}",
                        func.name,
                        a.value_type()
                    ),
                ));
            }
        }
        Ok(Expr {
            kind: ExprKind::Call { func, args },
            span,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(q: &str) -> Expr {
        parse(q).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    fn fails(q: &str, msg: &str) {
        match parse(q) {
            Ok(e) => panic!("{q} parsed: {e:?}"),
            Err(e) => assert!(e.to_string().contains(msg), "{q}: {e}"),
        }
    }

    #[test]
    fn literals() {
        assert_eq!(ok("0x1f").kind, ExprKind::Number(31.0));
        assert_eq!(ok("010").kind, ExprKind::Number(8.0));
        assert_eq!(ok("1e3").kind, ExprKind::Number(1000.0));
        assert_eq!(ok(".5").kind, ExprKind::Number(0.5));
        assert_eq!(ok("-Inf").kind, ExprKind::Number(f64::NEG_INFINITY));
        assert_eq!(ok("1h30m").kind, ExprKind::Number(5400.0));
        match ok(r#""a\x41\u00e9\101\n""#).kind {
            ExprKind::String { value, .. } => assert_eq!(value, "aAéA\n"),
            k => panic!("{k:?}"),
        }
        match ok("`a\\n`").kind {
            ExprKind::String { value, .. } => assert_eq!(value, "a\\n"),
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn precedence() {
        // -2^2 is -(2^2); 2^3^2 is 2^(3^2).
        let ExprKind::Number(v) = ok("-2 ^ 2").kind else {
            // Folding only applies to a literal operand; this is a Unary.
            return;
        };
        assert_eq!(v, -2.0);
        let e = ok("2 ^ 3 ^ 2");
        let ExprKind::Binary { rhs, .. } = e.kind else {
            panic!()
        };
        assert!(matches!(
            rhs.kind,
            ExprKind::Binary {
                op: BinaryOp::Pow,
                ..
            }
        ));
        let e = ok("a + b * c or d and e");
        let ExprKind::Binary { op, .. } = e.kind else {
            panic!()
        };
        assert_eq!(op, BinaryOp::Or);
    }

    #[test]
    fn selectors_and_modifiers() {
        ok(r#"foo{a="b", c!="d", e=~"f.*", g!~"h",}"#);
        ok(r#"{"a.b", "c.d"="x"}"#);
        ok("foo[5m] offset -1h @ 100");
        ok("rate(foo[5m])[30m:1m] @ end()");
        ok("sum by (a) (foo)");
        ok("sum(foo) without (a, b)");
        ok("topk(3, foo)");
        ok("foo * on(a) group_left(b) bar");
        ok("1 > bool 2");
        ok("foo # a comment\n + bar");
        ok("a + on(b) group_left fill_left(0) fill_right(-1) c");
        ok("fill + fill(0) fill");
        ok("x[2m*(10+5)] offset (100 + 2)");
        ok("count_over_time(x[min_of(step()+1, 1h)])");
    }

    #[test]
    fn offset_takes_one_operand() {
        // `x offset 100 + 2` adds 2 to the selector; parentheses make a
        // duration expression.
        let ExprKind::Binary { lhs, .. } = ok("x offset 100 + 2").kind else {
            panic!("expected a binary expression");
        };
        let ExprKind::VectorSelector(vs) = lhs.kind else {
            panic!()
        };
        assert_eq!(vs.offset, 100_000);
        let ExprKind::VectorSelector(vs) = ok("x offset (100 + 2)").kind else {
            panic!()
        };
        assert_eq!(vs.offset, 102_000);
    }

    #[test]
    fn errors() {
        fails("{}", "at least one non-empty matcher");
        fails(r#"{a=~".*"}"#, "at least one non-empty matcher");
        fails(
            "rate(foo)",
            "expected type range vector in call to function \"rate\", got instant vector",
        );
        fails(
            "foo[5m] + 1",
            "binary expression must contain only scalar and instant vector types",
        );
        fails(
            "1 > 2",
            "comparisons between scalars must use BOOL modifier",
        );
        fails(
            "sum(foo[5m])",
            "expected type instant vector in aggregation expression",
        );
        fails("foo + ", "unexpected end of input");
        fails("label_join(a)", "expected at least 3 argument(s)");
        fails("(foo)[5m]", "ranges only allowed for vector selectors");
        fails("nosuchfn(a)", "unknown function with name \"nosuchfn\"");
        fails("foo and 1", "set operator \"and\" not allowed");
        fails(
            "foo offset 1m offset 2m",
            "offset may not be set multiple times",
        );
        fails(
            "1 + on(a) 2",
            "vector matching only allowed between instant vectors",
        );
    }
}
