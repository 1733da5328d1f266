//! Every captured exposition in ../shared/corpus parses, with the counts the
//! corpus READMEs give.

use std::path::PathBuf;

use vigil_exposition::parse::{Entry, Mode, Parser, parse_families};
use vigil_exposition::{Format, MetricType};

fn shared() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    assert!(
        p.join("corpus").is_dir(),
        "../shared/corpus is missing (expected at {}): these tests read the upstream corpus in place",
        p.display()
    );
    p
}

fn read(rel: &str) -> Vec<u8> {
    let p = shared().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// (types, samples) counted through the zero-copy parser.
fn count(input: &[u8], format: Format, mode: Mode) -> (usize, usize) {
    let (mut types, mut samples) = (0, 0);
    for e in Parser::with_mode(input, format, mode) {
        match e.unwrap_or_else(|e| panic!("{e}")) {
            Entry::Type { .. } => types += 1,
            Entry::Sample(s) => {
                // Touch every label so a bad label view would show.
                assert!(s.labels.iter().count() == s.labels.len());
                samples += 1;
            }
            _ => {}
        }
    }
    (types, samples)
}

#[test]
fn exposition_captures_parse_with_readme_counts() {
    // From ../shared/corpus/exposition/README.md.
    let cases = [
        ("alertmanager.prom", 77, 288),
        ("federate.prom", 548, 1390),
        ("node_exporter.prom", 287, 513),
        ("prometheus.prom", 181, 482),
        ("pushgateway.prom", 47, 77),
    ];
    for (file, types, samples) in cases {
        let input = read(&format!("corpus/exposition/{file}"));
        assert_eq!(
            count(&input, Format::Text, Mode::Scrape),
            (types, samples),
            "{file}"
        );
        let fams = parse_families(&input, Format::Text, Mode::Scrape).unwrap();
        let n: usize = fams.iter().map(|f| f.samples.len()).sum();
        assert_eq!(n, samples, "{file}");
    }
}

#[test]
fn textparse_files_parse_with_readme_counts() {
    // From ../shared/corpus/textparse/README.md: (file, format, families, samples).
    let cases = [
        ("alltypes.237mfs.prom.txt", Format::Text, 237, 1857),
        ("alltypes.237mfs.nometa.prom.txt", Format::Text, 0, 1857),
        ("legacy/promtestdata.txt", Format::Text, 59, 410),
        ("legacy/promtestdata.nometa.txt", Format::Text, 0, 410),
        ("alltypes.5mfs.om.txt", Format::OpenMetrics, 5, 53),
        ("1histogram.om.txt", Format::OpenMetrics, 1, 42),
    ];
    for (file, format, types, samples) in cases {
        let input = read(&format!("corpus/textparse/{file}"));
        assert_eq!(
            count(&input, format, Mode::Scrape),
            (types, samples),
            "{file}"
        );
    }
    // The 237-family file's type mix.
    let input = read("corpus/textparse/alltypes.237mfs.prom.txt");
    let fams = parse_families(&input, Format::Text, Mode::Scrape).unwrap();
    assert_eq!(fams.len(), 237);
    let of = |t| fams.iter().filter(|f| f.metric_type == t).count();
    assert_eq!(
        (
            of(MetricType::Counter),
            of(MetricType::Gauge),
            of(MetricType::Histogram),
            of(MetricType::Summary)
        ),
        (112, 97, 15, 13)
    );
}
