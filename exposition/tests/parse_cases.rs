//! Table-driven accept/reject cases for both dialects, including the
//! leniencies of Prometheus's own parsers that scrape mode must keep.

use vigil_exposition::parse::{Entry, Mode, Parser};
use vigil_exposition::{Error, Format};

/// A parsed sample: name, labels, value, timestamp.
type Got = (String, Vec<(String, String)>, f64, Option<i64>);

/// Parses everything; returns the samples as (name, labels, value, ts) or the
/// first error.
fn run(input: &str, format: Format, mode: Mode) -> Result<Vec<Got>, Error> {
    let mut out = Vec::new();
    for e in Parser::with_mode(input.as_bytes(), format, mode) {
        if let Entry::Sample(s) = e? {
            let labels = s
                .labels
                .iter()
                .map(|(n, v)| (n.as_cow().into_owned(), v.as_cow().into_owned()))
                .collect();
            out.push((
                s.name.as_cow().into_owned(),
                labels,
                s.value,
                s.timestamp_ms,
            ));
        }
    }
    Ok(out)
}

fn text_ok(input: &str) -> Vec<Got> {
    run(input, Format::Text, Mode::Scrape).unwrap_or_else(|e| panic!("{input:?}: {e}"))
}

fn text_err(input: &str) -> String {
    match run(input, Format::Text, Mode::Scrape) {
        Ok(v) => panic!("{input:?} accepted: {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn om(input: &str, mode: Mode) -> Result<Vec<Got>, Error> {
    run(input, Format::OpenMetrics, mode)
}

#[test]
fn text_leniencies_prometheus_has() {
    // Blanks anywhere between tokens, tabs, trailing blanks.
    let s = text_ok("go_gc{ quantile = \"1.0\", a = \"b\" } 8.3e-05\n");
    assert_eq!(
        s[0].1,
        [("quantile".into(), "1.0".into()), ("a".into(), "b".into())]
    );
    text_ok("some:aggregate:rate5m{a_b=\"c\"}\t1\n");
    let s = text_ok("go_goroutines 33  \t123123\n");
    assert_eq!((s[0].2, s[0].3), (33.0, Some(123123)));
    text_ok("m 1 \nm2 1\t\n");
    text_ok("m {a=\"b\"} 1\n");
    text_ok("m{a=\"b\"}1\n");
    // Trailing comma, missing commas.
    text_ok("m{quantile=\"0.25\",} 7\n");
    let s = text_ok("m{ q = \"2.0\" a = \"b\" } 8\n");
    assert_eq!(s[0].1.len(), 2);
    // Blank lines, comments, `# EOF` is a comment, no final newline.
    assert_eq!(
        text_ok("\n \t\n# a comment\n#\n# HELP\n# EOF\nm 1").len(),
        1
    );
    assert!(text_ok("").is_empty());
    // Floats Go accepts.
    for v in [
        "1.",
        ".5",
        "-.5e-3",
        "1E3",
        "+1",
        "00012",
        "Inf",
        "-iNfInItY",
        "nan",
        "NaN",
    ] {
        text_ok(&format!("m {v}\n"));
    }
    // Unknown escapes are kept verbatim.
    assert_eq!(text_ok("m{a=\"x\\ty\"} 1\n")[0].1[0].1, "x\\ty");
    assert_eq!(text_ok("m{a=\"\\\"bar\\\"\"} 1\n")[0].1[0].1, "\"bar\"");
    // Quoted UTF-8 names, anywhere in the braces.
    let s = text_ok("{\"go.gc_duration_seconds\",quantile=\"0\"} 4.9e-05\n");
    assert_eq!(s[0].0, "go.gc_duration_seconds");
    let s = text_ok("{ \"a.b\" , quantile= \"1.0\", \"c.d\"= \"b\", } 8\n");
    assert_eq!((s[0].0.as_str(), s[0].1[1].0.as_str()), ("a.b", "c.d"));
    assert_eq!(text_ok("{c=\"d\",\"a.b\"} 1\n")[0].0, "a.b");
    // NUL inside a label value is a character like any other.
    text_ok("null_byte_metric{a=\"abc\x00\"} 1");
}

#[test]
fn text_rejections() {
    for (input, expect) in [
        ("a\n", "expected"),
        ("a{b='c'} 1\n", "opening the label value"),
        ("a{b=\n", "opening the label value"),
        ("a true\n", "sample value"),
        ("something_weird{problem=\"", "closing the label value"),
        ("empty_label_name{=\"\"} 0", "label name"),
        ("foo 1_2\n", "sample value"),
        ("foo 0x1p-3\n", "sample value"),
        ("foo 0 1_2\n", "timestamp"),
        ("{a=\"ok\"} 1", "quoted metric name"),
        ("# TYPE #\n", "metric name"),
        ("# HELP #\n", "metric name"),
        ("m{,} 1\n", "label name"),
        ("m{\"x\"} 1\n", "already given"),
        ("m -NaN\n", "sample value"),
        ("m 1e400\n", "sample value"),
        ("m 1 1.5\n", "timestamp"),
        ("m 1 9223372036854775808\n", "timestamp"),
        ("m 1 # comment\n", "timestamp"),
        ("m 1\r\n", "sample value"),
        ("# TYPE m unknown\n", "metric type"),
        ("# TYPE m\n", "metric type"),
        ("m{a=\"b\"}{c=\"d\"} 1\n", "sample value"),
        ("m 1 2 3\n", "end of line"),
        ("a{b=\"\u{0}\" 1\n", "',' or '}'"),
    ] {
        let e = text_err(input);
        assert!(
            e.contains(expect),
            "{input:?}: {e:?} does not mention {expect:?}"
        );
    }
    // Non-UTF-8 bytes: an error with the position.
    let e = Parser::new(b"m 1\na{b=\"\xff\"} 1\n", Format::Text)
        .find_map(Result::err)
        .unwrap();
    assert!(
        e.to_string()
            .starts_with("line 2, column 6: expected UTF-8 text"),
        "{e}"
    );
}

#[test]
fn errors_carry_line_and_column() {
    let e = text_err("ok 1\nok 2\nbad{x=1} 3\n");
    assert_eq!(
        e,
        "line 3, column 7: expected '\"' opening the label value, found \"1} 3\""
    );
    let e = om("a 1\nb{c=\"d\" } 2\n# EOF\n", Mode::Scrape)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "line 2, column 8: expected ',' or '}', found \" } 2\"");
}

#[test]
fn openmetrics_framing() {
    for m in [Mode::Scrape, Mode::Strict] {
        assert!(om("# EOF", m).is_ok());
        assert!(om("# EOF\n", m).is_ok());
        for bad in [
            "",
            "\n",
            "metric",
            "metric 1",
            "metric 1\n",
            "# EOF\n\n",
            "# EOF\na 1",
            "# EOFa 1\n",
            "# EOF \n",
            "# EOF\r\n",
            "# eof\n",
            "#EOF\n",
            "m 1\n\n# EOF\n",
            "# comment\n# EOF\n",
            "#\n# EOF\n",
            "a 1\n#EOF\n",
        ] {
            assert!(om(bad, m).is_err(), "{bad:?} accepted in {m:?}");
        }
    }
    let e = om("m 1\n", Mode::Scrape).unwrap_err().to_string();
    assert!(e.contains("expected \"# EOF\", found end of input"), "{e}");
}

#[test]
fn openmetrics_scrape_mode_syntax() {
    let ok = |s: &str| om(s, Mode::Scrape).unwrap_or_else(|e| panic!("{s:?}: {e}"));
    let bad = |s: &str| assert!(om(s, Mode::Scrape).is_err(), "{s:?} accepted");
    // Exactly one space everywhere; no blanks in braces.
    bad("a\t1\n# EOF\n");
    bad("m  1\n# EOF\n");
    bad("a 1\t2\n# EOF\n");
    bad("a 1 2 \n# EOF\n");
    bad("m 1 \n# EOF\n");
    bad("m{ a=\"b\"} 1\n# EOF\n");
    bad("m{a=\"b\", c=\"d\"} 1\n# EOF\n");
    bad("m {a=\"b\"} 1\n# EOF\n");
    bad("m{a=\"b\"}1\n# EOF\n");
    bad(" a 1\n# EOF\n");
    bad("9\n# EOF\n");
    bad("a{b=\"c\"d=\"e\"} 1\n# EOF\n");
    bad("a{,b=\"c\"} 1\n# EOF\n");
    bad("a{b=\"c\",,d=\"e\"} 1\n# EOF\n");
    bad("a 1 1 1\n# EOF\n");
    bad("a 1 2 #\n# EOF\n");
    bad("a 1 NaN\n# EOF\n");
    bad("a 1 Inf\n# EOF\n");
    // Metadata lines.
    bad("# TYPE u untyped\n# EOF\n");
    bad("# TYPE c counter \n# EOF\n");
    bad("# TYPE c  counter\n# EOF\n");
    bad("#  TYPE c counter\n# EOF\n");
    bad("#\tTYPE c counter\n# EOF\n");
    bad("# TYPE m\n# EOF\n");
    bad("# HELP m\n# EOF\n");
    bad("# UNIT m\n# EOF\n");
    bad("# UNIT metric suffix\n# EOF\n");
    bad("# UNIT metricsuffix suffix\n# EOF\n");
    bad("# UNIT m_seconds_total seconds\n# EOF\n");
    ok("# UNIT m_seconds seconds\n# UNIT nounit \n# HELP nohelp \n# EOF\n");
    // Exemplars.
    bad("c_total 1 # {aa=bb}\n# EOF\n");
    bad("c_total 1 # {aa=\"bb\"}\n# EOF\n");
    bad("c_total 1 # {bb}\n# EOF\n");
    bad("c_total 1 # {aa=\"bb\"} 1_2\n# EOF\n");
    bad("c_total 1 # {a=\"b\"} 2 # {c=\"d\"} 3\n# EOF\n");
    bad("h_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4 NaN\n# EOF\n");
    ok("c_total 17.0 1520879607.789 # {id=\"counter-test\"} 5\n# EOF\n");
    ok("q_count 1 # {\"id.thing\"=\"x\",other=\"y\"} 4\n# EOF\n");
    ok("m{a=\"b\",} 1\n# EOF\n");
    ok("{q=\"0.9\",\"http.status\",a=\"b\"} 8.3835e-05\n# EOF\n");
    // Timestamps are seconds, converted exactly and truncated to ms.
    let s = ok("a 1 123.123\nb 1 -1.5\nc 1 1.005\n# EOF\n");
    assert_eq!(
        s.iter().map(|x| x.3.unwrap()).collect::<Vec<_>>(),
        [123123, -1500, 1005]
    );
    // Lenient floats in scrape mode.
    ok("m 1.\nn inf\no nan\n# EOF\n");
}

#[test]
fn content_type_picks_the_dialect() {
    let p = Parser::for_content_type(b"m 1\n", "application/openmetrics-text; version=1.0.0");
    assert!(
        p.last().unwrap().is_err(),
        "OpenMetrics without # EOF must fail"
    );
    let p = Parser::for_content_type(b"m 1\n", "text/plain; version=0.0.4");
    assert!(p.last().unwrap().is_ok());
}
