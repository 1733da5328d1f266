//! Strict OpenMetrics: every rule of the specification beyond the grammar,
//! one accepted and one rejected exposition at a time. Scrape mode must accept
//! all of the semantic rejections (it checks syntax only).

use vigil_exposition::Format;
use vigil_exposition::parse::{Mode, parse_families};

fn strict(body: &str) -> Result<(), String> {
    let input = format!("{body}# EOF\n");
    parse_families(input.as_bytes(), Format::OpenMetrics, Mode::Strict)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[track_caller]
fn accept(body: &str) {
    if let Err(e) = strict(body) {
        panic!("rejected {body:?}: {e}");
    }
}

/// Rejected in strict mode (with `why` in the message), accepted by scrape mode.
#[track_caller]
fn reject(body: &str, why: &str) {
    match strict(body) {
        Ok(()) => panic!("accepted {body:?}"),
        Err(e) => assert!(e.contains(why), "{body:?}: {e:?} does not say {why:?}"),
    }
    let input = format!("{body}# EOF\n");
    if let Err(e) = parse_families(input.as_bytes(), Format::OpenMetrics, Mode::Scrape) {
        panic!("scrape mode rejected {body:?}: {e}");
    }
}

#[test]
fn metadata_rules() {
    accept("# HELP a x\n# TYPE a counter\n# UNIT a \na_total 1\n");
    accept("# HELP a \n# UNIT a \n");
    reject("# TYPE a counter\n# TYPE a counter\n", "second TYPE");
    reject("# HELP a x\n# HELP a y\n", "second HELP");
    reject("# UNIT a_s s\n# UNIT a_s s\n", "second UNIT");
    reject("# TYPE a gauge\na 1\n# HELP a x\n", "after its samples");
    reject("# HELP a x\na 1\n# TYPE a gauge\n", "after its samples");
    reject("# TYPE x_u info\n# UNIT x_u u\n", "must not have a unit");
    reject(
        "# UNIT x_u u\n# TYPE x_u stateset\n",
        "must not have a unit",
    );
}

#[test]
fn families_do_not_interleave_or_clash() {
    accept("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n");
    reject(
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\n",
        "second time",
    );
    reject("a 1\nb 1\na 2\n", "second time");
    reject("# TYPE a_created gauge\n# TYPE a counter\n", "clash");
    reject("# TYPE a counter\n# TYPE a_total gauge\n", "clash");
    reject("# TYPE a info\na 1\n", "does not fit");
}

#[test]
fn counters() {
    accept("# TYPE a counter\na_total 0 123 # {a=\"b\"} 0.5\na_created 1 123\n");
    reject(
        "# TYPE a counter\na_total 0 123\na_created 1\n",
        "timestamps or none",
    );
    accept("# TYPE a counter\na_total 9223372036854775808\n");
    reject("# TYPE a counter\na_total NaN\n", ">= 0");
    reject("# TYPE a counter\na_total -1\n", ">= 0");
    reject("# TYPE a counter\na_created 1\n", "needs its _total");
    reject(
        "# TYPE a counter\na_created 1 # {a=\"b\"} 0.5\n",
        "exemplars are allowed only",
    );
}

#[test]
fn histograms() {
    accept(
        "# TYPE a histogram\na_bucket{le=\"1.0\"} 0\na_bucket{le=\"+Inf\"} 3\na_count 3\na_sum 2\n",
    );
    accept(
        "# TYPE a histogram\na_bucket{le=\"-1.0\"} 0\na_bucket{le=\"1\"} 1\na_bucket{le=\"+Inf\"} 3\n",
    );
    // Non-canonical bounds are fine.
    accept(
        "# TYPE a histogram\na_bucket{le=\"1e-04\"} 0\na_bucket{le=\"10000000000\"} 0\na_bucket{le=\"+Inf\"} 3\n",
    );
    reject("# TYPE a histogram\na_sum 1\n", "+Inf");
    reject("# TYPE a histogram\na_bucket{le=\"+INF\"} 0\n", "le");
    reject(
        "# TYPE a histogram\na_bucket{le=\"+Inf\"} 0\na_sum 0\n",
        "together",
    );
    reject(
        "# TYPE a histogram\na_bucket{le=\"+Inf\"} 0\na_count 0\n",
        "together",
    );
    reject(
        "# TYPE a histogram\na_bucket{le=\"+Inf\"} 0\na_count 1\na_sum 1\n",
        "differs",
    );
    reject(
        "# TYPE a histogram\na_bucket{le=\"2\"} 0\na_bucket{le=\"1\"} 0\na_bucket{le=\"+Inf\"} 0\n",
        "sorted",
    );
    reject(
        "# TYPE a histogram\na_bucket{le=\"1\"} 1\na_bucket{le=\"2\"} 0\na_bucket{le=\"+Inf\"} 1\n",
        "decrease",
    );
    reject(
        "# TYPE a histogram\na_bucket{le=\"1\"} 2\na_bucket{le=\"+Inf\"} 1\n",
        "below",
    );
    reject(
        "# TYPE a histogram\na_bucket{le=\"-1\"} 0\na_bucket{le=\"+Inf\"} 0\na_count 0\na_sum 0\n",
        "negative buckets",
    );
    reject(
        "# TYPE a histogram\na_bucket{le=\"+Inf\"} 1.5\n",
        "integers",
    );
    reject("# TYPE a histogram\na_bucket{le=\"+Inf\"} -1\n", "integers");
    reject(
        "# TYPE a histogram\na_bucket{le=\"+Inf\"} 1\na_count 1\na_sum -1\n",
        ">= 0",
    );
    reject("# TYPE a histogram\na_bucket 0\n", "lacks");
    reject(
        "# TYPE a histogram\na_bucket{le=\"+Inf\"} 1\na_count{le=\"1\"} 1\n",
        "only _bucket",
    );
    reject(
        "# TYPE a histogram\na_sum 1 # {a=\"b\"} 0.5\n",
        "exemplars are allowed only",
    );
    // 128 characters of exemplar labels at most.
    let long = "x".repeat(127);
    accept(&format!(
        "# TYPE a histogram\na_bucket{{le=\"+Inf\"}} 1 # {{a=\"{long}\"}} 1 1\n"
    ));
    reject(
        &format!("# TYPE a histogram\na_bucket{{le=\"+Inf\"}} 1 # {{a=\"{long}x\"}} 1 1\n"),
        "128",
    );
    // Code points, not bytes.
    let wide = "☃".repeat(127);
    accept(&format!(
        "# TYPE a histogram\na_bucket{{le=\"+Inf\"}} 1 # {{a=\"{wide}\"}} 1\n"
    ));
}

#[test]
fn gauge_histograms() {
    accept(
        "# TYPE a gaugehistogram\na_bucket{le=\"-1.0\"} 1\na_bucket{le=\"+Inf\"} 3\na_gcount 3\na_gsum -5\n",
    );
    reject("# TYPE a gaugehistogram\na_gsum 1\n", "+Inf");
    reject(
        "# TYPE a gaugehistogram\na_bucket{le=\"+Inf\"} 0\na_gcount 0\n",
        "together",
    );
    reject(
        "# TYPE a gaugehistogram\na_bucket{le=\"+Inf\"} 1\na_gsum -1\na_gcount 1\n",
        "negative",
    );
    reject(
        "# TYPE a gaugehistogram\na_bucket{le=\"+Inf\"} 1\na_gsum NaN\na_gcount 1\n",
        "NaN",
    );
}

#[test]
fn summaries_infos_statesets() {
    accept(
        "# TYPE a summary\na_count 1\na_sum 2\na{quantile=\"0.5\"} 0.7\na{quantile=\"1\"} NaN\n",
    );
    reject("# TYPE a summary\na 0\n", "lacks");
    for q in ["-1", "foo", "1.01", "NaN"] {
        reject(
            &format!("# TYPE a summary\na{{quantile=\"{q}\"}} 0\n"),
            "between 0 and 1",
        );
    }
    reject("# TYPE a summary\na{quantile=\"0.5\"} -1\n", "negative");
    reject("# TYPE a summary\na_count 1.5\n", "integers");
    reject("# TYPE a summary\na_sum NaN\n", ">= 0");
    accept("# TYPE a info\na_info{a=\"1\",foo=\"bar\"} 1 1\n");
    reject("# TYPE a info\na_info{foo=\"bar\"} 2\n", "must be 1");
    reject(
        "# TYPE a info\na_info 1 # {a=\"b\"} 1\n",
        "exemplars are allowed only",
    );
    accept("# TYPE a stateset\na{a=\"bar\"} 0\na{a=\"foo\"} 1.0\n");
    reject("# TYPE a stateset\na{a=\"bar\"} 2\n", "0 or 1");
    reject("# TYPE a stateset\na 0\n", "lacks");
    reject(
        "# TYPE a gauge\na 1 # {a=\"b\"} 1\n",
        "exemplars are allowed only",
    );
}

#[test]
fn metrics_and_points_are_grouped_and_ordered() {
    accept("# TYPE a gauge\na{x=\"1\"} 1 0\na{x=\"1\"} 2 0\na{x=\"2\"} 3 0\n");
    accept("# TYPE a gauge\na 1 0.0000000000\na 2 0.0000000001\n");
    reject(
        "# TYPE a summary\na_sum{a=\"1\"} 0\na_sum{a=\"2\"} 0\na_count{a=\"1\"} 0\n",
        "interleaved",
    );
    reject("# TYPE a gauge\na 0\na 0 0\n", "timestamps or none");
    reject("# TYPE a gauge\na 0 0\na 0\n", "timestamps or none");
    reject("# TYPE a gauge\na 0 -1\na 0 -1.1\n", "backwards");
    reject("# TYPE a gauge\na 0 0.0002\na 0 0.0001\n", "backwards");
    reject("# TYPE a gauge\na 1\na 2\n", "duplicate sample");
    // Points of one metric, one after the other, are fine.
    accept(
        "# TYPE s summary\ns_count{a=\"bb\"} 0 123\ns_sum{a=\"bb\"} 0 123\ns_count{a=\"bb\"} 0 456\ns_sum{a=\"bb\"} 0 456\n",
    );
    // Interleaved points are not.
    reject(
        "# TYPE s summary\ns_count{a=\"bb\"} 0 123\ns_count{a=\"bb\"} 0 456\ns_sum{a=\"bb\"} 0 123\n",
        "backwards",
    );
}

#[test]
fn syntax_that_only_strict_refuses() {
    for body in [
        "a{a=\"1\",b=\"2\",} 1\n",
        "{\"a.b\"} 1\n",
        "a{\"x.y\"=\"1\"} 1\n",
        "# TYPE \"a.b\" gauge\n",
        "a{a=\"1\",a=\"2\"} 1\n",
        "a{__name__=\"1\"} 1\n",
    ] {
        assert!(strict(body).is_err(), "strict accepted {body:?}");
        let input = format!("{body}# EOF\n");
        parse_families(input.as_bytes(), Format::OpenMetrics, Mode::Scrape)
            .unwrap_or_else(|e| panic!("scrape rejected {body:?}: {e}"));
    }
}

#[test]
fn the_corpus_file_that_breaks_the_specification() {
    // ../shared/corpus/textparse/README.md: parses in scrape mode, rejected in
    // strict mode with a precise error.
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/textparse/alltypes.5mfs.om.txt");
    let input =
        std::fs::read(&p).unwrap_or_else(|e| panic!("{} (../shared must exist): {e}", p.display()));
    parse_families(&input, Format::OpenMetrics, Mode::Scrape).unwrap();
    let e = parse_families(&input, Format::OpenMetrics, Mode::Strict)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "line 33, column 1: histogram sample \"rpc_durations_histogram_seconds_sum\": a sum must be a number >= 0 \
         (value -0.00008452185437166741)"
    );
}
