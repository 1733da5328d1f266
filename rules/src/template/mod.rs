//! Go `text/template`, the subset Prometheus users write in alert labels and
//! annotations: `{{ $labels.instance }}`, `{{ $value | humanize }}`,
//! pipelines, variables, `if`/`else if`/`else`, `range`, `with`, comments,
//! `{{-`/`-}}` trimming, and Prometheus's template functions.
//!
//! [`Template::parse`] checks a template when a rule file loads (unknown
//! functions and undefined variables are errors there, as in Prometheus);
//! [`Template::execute`] expands it for one alert.
//!
//! ```
//! use vigil_rules::template::{Data, Template};
//! use vigil_rules::Labels;
//!
//! let t = Template::parse("summary", "{{ $labels.instance }} at {{ $value | humanize }}")?;
//! let data = Data {
//!     labels: Labels::from_pairs(&[("instance", "db1")]),
//!     value: 1234567.0,
//!     ..Data::default()
//! };
//! assert_eq!(t.execute(&data)?, "db1 at 1.235M");
//! # Ok::<(), vigil_rules::Error>(())
//! ```

mod exec;
mod funcs;
mod parse;

use crate::Error;
use crate::promql::labels::Labels;

pub use exec::TValue;

/// Formats a float as Go's `%v` does (`0.95`, `1e+06`, `+Inf`).
pub fn format_float(v: f64) -> String {
    funcs::format_g(v, None)
}

/// Runs a PromQL instant query for the template function `query`: the
/// result's series as labels and value.
pub type QueryFn<'a> = dyn Fn(&str) -> Result<Vec<(Labels, f64)>, String> + 'a;

/// What a template sees: Prometheus's `.Labels`, `.ExternalLabels`,
/// `.ExternalURL` and `.Value` (also as `$labels`, `$externalLabels`,
/// `$externalURL`, `$value`).
#[derive(Debug, Clone, Default)]
pub struct Data {
    /// The alert's labels.
    pub labels: Labels,
    /// The server's external labels.
    pub external_labels: Labels,
    /// The server's external URL.
    pub external_url: String,
    /// The alert's value.
    pub value: f64,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    nodes: Vec<parse::Node>,
}

impl Template {
    /// Parses `text`; `name` names it in errors (for example
    /// `annotation summary`).
    pub fn parse(name: &str, text: &str) -> Result<Template, Error> {
        let nodes = parse::parse(text).map_err(|(at, msg)| template_error(name, text, at, msg))?;
        let t = Template {
            name: name.to_string(),
            nodes,
        };
        Ok(t)
    }

    /// Expands the template for `data` (the `query` function is not
    /// available).
    pub fn execute(&self, data: &Data) -> Result<String, Error> {
        self.execute_with(data, None)
    }

    /// Expands the template for `data`, with `query` answering the
    /// template function of that name.
    pub fn execute_with(&self, data: &Data, query: Option<&QueryFn<'_>>) -> Result<String, Error> {
        exec::execute(&self.nodes, data, query).map_err(|msg| Error::Template {
            name: self.name.clone(),
            line: 0,
            column: 0,
            message: msg,
        })
    }
}

fn template_error(name: &str, text: &str, at: usize, msg: String) -> Error {
    let (line, column) = crate::error::line_col(text, at);
    Error::Template {
        name: name.to_string(),
        line,
        column,
        message: msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Data {
        Data {
            labels: Labels::from_pairs(&[("instance", "node1:9100"), ("job", "node")]),
            external_labels: Labels::from_pairs(&[("cluster", "eu")]),
            external_url: "http://prom".into(),
            value: 0.9512,
        }
    }

    fn run(t: &str) -> String {
        Template::parse("t", t)
            .unwrap_or_else(|e| panic!("{t}: {e}"))
            .execute(&data())
            .unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    #[test]
    fn the_seed_annotation() {
        assert_eq!(
            run("Node CPU too high: {{ $labels.instance }} CPU {{$value}}"),
            "Node CPU too high: node1:9100 CPU 0.9512"
        );
    }

    #[test]
    fn pipelines_functions_and_control() {
        assert_eq!(run("{{ $value | humanizePercentage }}"), "95.12%");
        assert_eq!(run(r#"{{ printf "%.1f" $value }}"#), "1.0");
        assert_eq!(
            run("{{ .Labels.job }}/{{ $externalLabels.cluster }}"),
            "node/eu"
        );
        assert_eq!(
            run("{{ if gt $value 0.5 }}high{{ else }}low{{ end }}"),
            "high"
        );
        assert_eq!(
            run("{{ if eq $labels.job \"x\" }}x{{ else if eq $labels.job \"node\" }}node{{ end }}"),
            "node"
        );
        assert_eq!(
            run("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}"),
            "instance=node1:9100;job=node;"
        );
        assert_eq!(run("{{ with $labels.job }}[{{ . }}]{{ end }}"), "[node]");
        assert_eq!(run("{{ $x := \"a\" }}{{ $x = \"b\" }}{{ $x }}"), "b");
        assert_eq!(run("a  {{- \" b \" -}}  c"), "a b c");
        assert_eq!(run("{{/* note */}}x"), "x");
        assert_eq!(run("{{ $labels.instance | stripPort | toUpper }}"), "NODE1");
        assert_eq!(
            run("{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }}"),
            "node1"
        );
        assert_eq!(run("{{ $labels.missing }}|"), "|");
    }

    #[test]
    fn load_time_errors() {
        for (t, want) in [
            ("{{ $label.foo }}", "undefined variable \"$label\""),
            (
                "{{$this_is_wrong}}",
                "undefined variable \"$this_is_wrong\"",
            ),
            ("{{$labels.quantile * 100}}", "unexpected '*'"),
            ("{{ nosuch 1 }}", "function \"nosuch\" not defined"),
            ("{{ if true }}x", "missing {{end}}"),
            ("{{ end }}", "unexpected {{end}}"),
            ("{{ $labels", "unclosed action"),
        ] {
            let e = Template::parse("annotation summary", t)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{t}: {e}");
            assert!(e.starts_with("template \"annotation summary\": 1:"), "{e}");
        }
    }
}
