//! The PromQL function table: names, argument types and return types, used
//! by the parser to check calls exactly as Prometheus does.

use crate::promql::ast::ValueType;
use ValueType::{Matrix as M, Scalar as S, String as Str, Vector as V};

/// One function's signature.
#[derive(Debug, PartialEq)]
pub struct Function {
    /// The name as written in queries.
    pub name: &'static str,
    /// Argument types. With `variadic != 0` the last type repeats or is
    /// optional.
    pub args: &'static [ValueType],
    /// 0: exactly `args`; n > 0: up to n more/optional trailing arguments of
    /// the last type (optional ones are counted from the end of `args`);
    /// -1: any number more.
    pub variadic: i32,
    /// The result type.
    pub ret: ValueType,
    /// True for functions that only apply to native histograms.
    pub native_histogram_only: bool,
}

const fn f(
    name: &'static str,
    args: &'static [ValueType],
    variadic: i32,
    ret: ValueType,
) -> Function {
    Function {
        name,
        args,
        variadic,
        ret,
        native_histogram_only: false,
    }
}

const fn nh(name: &'static str) -> Function {
    Function {
        name,
        args: &[V],
        variadic: 0,
        ret: V,
        native_histogram_only: true,
    }
}

/// Every function the parser knows.
pub static FUNCTIONS: &[Function] = &[
    f("abs", &[V], 0, V),
    f("absent", &[V], 0, V),
    f("absent_over_time", &[M], 0, V),
    f("acos", &[V], 0, V),
    f("acosh", &[V], 0, V),
    f("asin", &[V], 0, V),
    f("asinh", &[V], 0, V),
    f("atan", &[V], 0, V),
    f("atanh", &[V], 0, V),
    f("avg_over_time", &[M], 0, V),
    f("ceil", &[V], 0, V),
    f("changes", &[M], 0, V),
    f("clamp", &[V, S, S], 0, V),
    f("clamp_max", &[V, S], 0, V),
    f("clamp_min", &[V, S], 0, V),
    f("cos", &[V], 0, V),
    f("cosh", &[V], 0, V),
    f("count_over_time", &[M], 0, V),
    f("days_in_month", &[V], 1, V),
    f("day_of_month", &[V], 1, V),
    f("day_of_week", &[V], 1, V),
    f("day_of_year", &[V], 1, V),
    f("deg", &[V], 0, V),
    f("delta", &[M], 0, V),
    f("deriv", &[M], 0, V),
    f("exp", &[V], 0, V),
    f("floor", &[V], 0, V),
    nh("histogram_avg"),
    nh("histogram_count"),
    nh("histogram_sum"),
    nh("histogram_stddev"),
    nh("histogram_stdvar"),
    f("histogram_fraction", &[S, S, V], 0, V),
    f("histogram_quantile", &[S, V], 0, V),
    f("histogram_quantiles", &[V, Str, S, S], -1, V),
    f("double_exponential_smoothing", &[M, S, S], 0, V),
    f("holt_winters", &[M, S, S], 0, V),
    f("hour", &[V], 1, V),
    f("idelta", &[M], 0, V),
    f("increase", &[M], 0, V),
    f("info", &[V, V], 1, V),
    f("irate", &[M], 0, V),
    f("label_replace", &[V, Str, Str, Str, Str], 0, V),
    f("label_join", &[V, Str, Str, Str], -1, V),
    f("last_over_time", &[M], 0, V),
    f("first_over_time", &[M], 0, V),
    f("ln", &[V], 0, V),
    f("log10", &[V], 0, V),
    f("log2", &[V], 0, V),
    f("mad_over_time", &[M], 0, V),
    f("max_over_time", &[M], 0, V),
    f("min_over_time", &[M], 0, V),
    f("ts_of_first_over_time", &[M], 0, V),
    f("ts_of_last_over_time", &[M], 0, V),
    f("ts_of_max_over_time", &[M], 0, V),
    f("ts_of_min_over_time", &[M], 0, V),
    f("minute", &[V], 1, V),
    f("month", &[V], 1, V),
    f("pi", &[], 0, S),
    f("predict_linear", &[M, S], 0, V),
    f("present_over_time", &[M], 0, V),
    f("quantile_over_time", &[S, M], 0, V),
    f("rad", &[V], 0, V),
    f("rate", &[M], 0, V),
    f("resets", &[M], 0, V),
    f("round", &[V, S], 1, V),
    f("scalar", &[V], 0, S),
    f("sgn", &[V], 0, V),
    f("sin", &[V], 0, V),
    f("sinh", &[V], 0, V),
    f("sort", &[V], 0, V),
    f("sort_desc", &[V], 0, V),
    f("sort_by_label", &[V, Str], -1, V),
    f("sort_by_label_desc", &[V, Str], -1, V),
    f("sqrt", &[V], 0, V),
    f("stddev_over_time", &[M], 0, V),
    f("stdvar_over_time", &[M], 0, V),
    f("sum_over_time", &[M], 0, V),
    f("tan", &[V], 0, V),
    f("tanh", &[V], 0, V),
    f("time", &[], 0, S),
    f("timestamp", &[V], 0, V),
    f("vector", &[S], 0, V),
    f("year", &[V], 1, V),
    f("start", &[], 0, S),
    f("end", &[], 0, S),
    f("range", &[], 0, S),
    f("step", &[], 0, S),
    f("start_timestamp", &[V], 0, V),
    f("min_of", &[S, S], 0, S),
    f("max_of", &[S, S], 0, S),
];

/// Looks a function up by name.
pub fn lookup_function(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}
