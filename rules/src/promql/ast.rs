//! The PromQL syntax tree. Every node carries the byte range it came from.

use std::fmt;

use crate::promql::functions::Function;

/// A byte range in the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset just past the last byte.
    pub end: usize,
}

/// The type an expression evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// A single number.
    Scalar,
    /// An instant vector.
    Vector,
    /// A range vector.
    Matrix,
    /// A string.
    String,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        })
    }
}

/// A node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What the node is.
    pub kind: ExprKind,
    /// Where it was written.
    pub span: Span,
}

/// Label matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

/// One label matcher. Regexes are fully anchored, as in Prometheus.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Value or pattern as written (unquoted).
    pub value: String,
    pub(crate) re: Option<regex::Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Matcher {
    /// Builds a matcher, compiling the regex for `=~` and `!~`.
    pub fn new(op: MatchOp, name: &str, value: &str) -> Result<Self, crate::Error> {
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(regex::Regex::new(&format!("^(?s:{value})$")).map_err(|e| {
                    crate::Error::Regex {
                        pattern: value.to_string(),
                        source: Box::new(e),
                    }
                })?)
            }
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    /// Whether a label value (empty when the label is absent) matches.
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Regex => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

/// A duration expression (3.x): arithmetic on durations and numbers of
/// seconds, with `step()`, `range()`, `min_of` and `max_of`.
#[derive(Debug, Clone, PartialEq)]
pub enum DurationExpr {
    /// A literal, in seconds.
    Seconds(f64),
    /// The query's step (0 for an instant query).
    Step,
    /// The query's range, end minus start (0 for an instant query).
    Range,
    /// `-x`
    Neg(Box<DurationExpr>),
    /// `a op b` with one of `+ - * / % ^`.
    Binary(BinaryOp, Box<DurationExpr>, Box<DurationExpr>),
    /// `min_of(a, b)`
    MinOf(Box<DurationExpr>, Box<DurationExpr>),
    /// `max_of(a, b)`
    MaxOf(Box<DurationExpr>, Box<DurationExpr>),
}

impl DurationExpr {
    /// The value in seconds for a query with the given step and range
    /// (both in seconds).
    pub fn seconds(&self, step: f64, range: f64) -> f64 {
        match self {
            DurationExpr::Seconds(v) => *v,
            DurationExpr::Step => step,
            DurationExpr::Range => range,
            DurationExpr::Neg(e) => -e.seconds(step, range),
            DurationExpr::Binary(op, a, b) => {
                let (a, b) = (a.seconds(step, range), b.seconds(step, range));
                match op {
                    BinaryOp::Add => a + b,
                    BinaryOp::Sub => a - b,
                    BinaryOp::Mul => a * b,
                    BinaryOp::Div => a / b,
                    BinaryOp::Mod => a % b,
                    BinaryOp::Pow => a.powf(b),
                    _ => f64::NAN,
                }
            }
            DurationExpr::MinOf(a, b) => {
                let (a, b) = (a.seconds(step, range), b.seconds(step, range));
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else {
                    a.min(b)
                }
            }
            DurationExpr::MaxOf(a, b) => {
                let (a, b) = (a.seconds(step, range), b.seconds(step, range));
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else {
                    a.max(b)
                }
            }
        }
    }

    /// Whether the value depends on the query (`step()` or `range()`).
    pub fn is_query_dependent(&self) -> bool {
        match self {
            DurationExpr::Seconds(_) => false,
            DurationExpr::Step | DurationExpr::Range => true,
            DurationExpr::Neg(e) => e.is_query_dependent(),
            DurationExpr::Binary(_, a, b)
            | DurationExpr::MinOf(a, b)
            | DurationExpr::MaxOf(a, b) => a.is_query_dependent() || b.is_query_dependent(),
        }
    }
}

/// A subquery's query-dependent duration expressions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubqueryDurations {
    /// The range, when it depends on the query.
    pub range: Option<DurationExpr>,
    /// The step, when it depends on the query.
    pub step: Option<DurationExpr>,
    /// The offset, when it depends on the query.
    pub offset: Option<DurationExpr>,
}

/// The `@` modifier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AtModifier {
    /// `@ <unix seconds>`, stored in milliseconds.
    Timestamp(i64),
    /// `@ start()`
    Start,
    /// `@ end()`
    End,
}

/// An instant vector selector `name{matchers} offset d @ t`.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSelector {
    /// The metric name if written outside the braces (also present as a
    /// `__name__` matcher).
    pub name: Option<String>,
    /// All matchers, including the one for the name.
    pub matchers: Vec<Matcher>,
    /// Offset in milliseconds (may be negative).
    pub offset: i64,
    /// An offset written as a duration expression that depends on the
    /// query (`offset step()`); resolved into `offset` when the query runs.
    pub offset_expr: Option<Box<DurationExpr>>,
    /// The `@` modifier.
    pub at: Option<AtModifier>,
    /// The 3.x `anchored` modifier (range selectors).
    pub anchored: bool,
    /// The 3.x `smoothed` modifier.
    pub smoothed: bool,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eql,
    Neq,
    Lss,
    Lte,
    Gtr,
    Gte,
    And,
    Or,
    Unless,
}

impl BinaryOp {
    /// Whether this is `== != < <= > >=`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eql
                | BinaryOp::Neq
                | BinaryOp::Lss
                | BinaryOp::Lte
                | BinaryOp::Gtr
                | BinaryOp::Gte
        )
    }

    /// Whether this is `and or unless`.
    pub fn is_set(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }

    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Atan2 => "atan2",
            BinaryOp::Eql => "==",
            BinaryOp::Neq => "!=",
            BinaryOp::Lss => "<",
            BinaryOp::Lte => "<=",
            BinaryOp::Gtr => ">",
            BinaryOp::Gte => ">=",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Unless => "unless",
        }
    }

    /// Binding power: higher binds tighter (Prometheus's yacc precedences).
    pub(crate) fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And | BinaryOp::Unless => 2,
            BinaryOp::Eql
            | BinaryOp::Neq
            | BinaryOp::Lss
            | BinaryOp::Lte
            | BinaryOp::Gtr
            | BinaryOp::Gte => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod | BinaryOp::Atan2 => 5,
            BinaryOp::Pow => 6,
        }
    }
}

/// Matching cardinality of a vector/vector binary operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    /// The default for arithmetic and comparisons.
    OneToOne,
    /// `group_left`
    ManyToOne,
    /// `group_right`
    OneToMany,
    /// The set operators.
    ManyToMany,
}

/// `on`/`ignoring` and `group_left`/`group_right`.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorMatching {
    /// Cardinality.
    pub card: Cardinality,
    /// True for `on(...)`, false for `ignoring(...)` or none.
    pub on: bool,
    /// The labels of `on` or `ignoring`.
    pub labels: Vec<String>,
    /// Labels copied from the "one" side (`group_left(...)` list).
    pub include: Vec<String>,
    /// `fill_left(v)` (or `fill(v)`): the value used for a missing left
    /// operand (after `group_right` swaps the sides, the many side).
    pub fill_left: Option<f64>,
    /// `fill_right(v)` (or `fill(v)`): the value for a missing right operand.
    pub fill_right: Option<f64>,
}

/// Aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum AggregateOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Quantile,
    CountValues,
    Limitk,
    LimitRatio,
}

impl AggregateOp {
    pub(crate) fn from_name(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "sum" => AggregateOp::Sum,
            "avg" => AggregateOp::Avg,
            "min" => AggregateOp::Min,
            "max" => AggregateOp::Max,
            "count" => AggregateOp::Count,
            "group" => AggregateOp::Group,
            "stddev" => AggregateOp::Stddev,
            "stdvar" => AggregateOp::Stdvar,
            "topk" => AggregateOp::Topk,
            "bottomk" => AggregateOp::Bottomk,
            "quantile" => AggregateOp::Quantile,
            "count_values" => AggregateOp::CountValues,
            "limitk" => AggregateOp::Limitk,
            "limit_ratio" => AggregateOp::LimitRatio,
            _ => return None,
        })
    }

    /// The operator's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateOp::Sum => "sum",
            AggregateOp::Avg => "avg",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
            AggregateOp::Count => "count",
            AggregateOp::Group => "group",
            AggregateOp::Stddev => "stddev",
            AggregateOp::Stdvar => "stdvar",
            AggregateOp::Topk => "topk",
            AggregateOp::Bottomk => "bottomk",
            AggregateOp::Quantile => "quantile",
            AggregateOp::CountValues => "count_values",
            AggregateOp::Limitk => "limitk",
            AggregateOp::LimitRatio => "limit_ratio",
        }
    }

    /// Whether the operator takes a parameter before the vector.
    pub fn has_param(self) -> bool {
        matches!(
            self,
            AggregateOp::Topk
                | AggregateOp::Bottomk
                | AggregateOp::Quantile
                | AggregateOp::CountValues
                | AggregateOp::Limitk
                | AggregateOp::LimitRatio
        )
    }
}

/// What a node is.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A number literal.
    Number(f64),
    /// A string literal. Go escapes may make it invalid UTF-8; then `value`
    /// holds a lossy copy and `bytes` the exact bytes.
    String {
        /// The text (lossy if `bytes` is set).
        value: String,
        /// The exact bytes when they are not UTF-8.
        bytes: Option<Vec<u8>>,
    },
    /// An instant vector selector.
    VectorSelector(VectorSelector),
    /// A range vector selector `sel[range]`.
    MatrixSelector {
        /// The selector (it carries offset and `@`).
        selector: VectorSelector,
        /// Range in milliseconds.
        range: i64,
        /// A range that depends on the query (`[step()+1s]`), resolved into
        /// `range` when the query runs.
        range_expr: Option<Box<DurationExpr>>,
    },
    /// A subquery `expr[range:step] offset d @ t`.
    Subquery {
        /// The inner expression.
        expr: Box<Expr>,
        /// Range in milliseconds.
        range: i64,
        /// Step in milliseconds, `None` for the default.
        step: Option<i64>,
        /// Offset in milliseconds.
        offset: i64,
        /// Query-dependent duration expressions for range, step and offset,
        /// resolved into the fields above when the query runs.
        duration_exprs: Option<Box<SubqueryDurations>>,
        /// The `@` modifier.
        at: Option<AtModifier>,
    },
    /// `( expr )`
    Paren(Box<Expr>),
    /// `-expr` (or `+expr`).
    Unary {
        /// True for minus.
        negate: bool,
        /// The operand.
        expr: Box<Expr>,
    },
    /// A binary operation.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
        /// The `bool` modifier.
        return_bool: bool,
        /// Vector matching (present when both sides are vectors).
        matching: Option<VectorMatching>,
    },
    /// An aggregation.
    Aggregate {
        /// The operator.
        op: AggregateOp,
        /// The aggregated expression.
        expr: Box<Expr>,
        /// The parameter of topk, quantile, count_values, ...
        param: Option<Box<Expr>>,
        /// `by`/`without` labels.
        grouping: Vec<String>,
        /// True for `without`.
        without: bool,
    },
    /// A function call.
    Call {
        /// The function from the function table.
        func: &'static Function,
        /// Arguments.
        args: Vec<Expr>,
    },
}

impl Expr {
    /// The type this expression evaluates to.
    pub fn value_type(&self) -> ValueType {
        match &self.kind {
            ExprKind::Number(_) => ValueType::Scalar,
            ExprKind::String { .. } => ValueType::String,
            ExprKind::VectorSelector(_) => ValueType::Vector,
            ExprKind::MatrixSelector { .. } | ExprKind::Subquery { .. } => ValueType::Matrix,
            ExprKind::Paren(e) | ExprKind::Unary { expr: e, .. } => e.value_type(),
            ExprKind::Binary { lhs, rhs, .. } => {
                if lhs.value_type() == ValueType::Scalar && rhs.value_type() == ValueType::Scalar {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            ExprKind::Aggregate { .. } => ValueType::Vector,
            ExprKind::Call { func, .. } => func.ret,
        }
    }

    /// Calls `f` on this node and every node below it, parents first.
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match &self.kind {
            ExprKind::Subquery { expr, .. }
            | ExprKind::Paren(expr)
            | ExprKind::Unary { expr, .. } => expr.walk(f),
            ExprKind::Binary { lhs, rhs, .. } => {
                lhs.walk(f);
                rhs.walk(f);
            }
            ExprKind::Aggregate { expr, param, .. } => {
                if let Some(p) = param {
                    p.walk(f);
                }
                expr.walk(f);
            }
            ExprKind::Call { args, .. } => args.iter().for_each(|a| a.walk(f)),
            _ => {}
        }
    }
}
