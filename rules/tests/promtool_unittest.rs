//! promtool's rule unit-test fixtures (`../shared/conformance/rules/promtool/`)
//! through `run_unit_tests`, with the outcomes that folder's README gives.
//! Files that need what is not built yet (native histograms) are listed
//! with the reason and checked to fail for that reason only.

use std::path::PathBuf;

use vigil_rules::rules::{UnitTestOptions, run_unit_tests};

fn path(f: &str) -> PathBuf {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance/rules/promtool"
    ))
    .join(f);
    assert!(
        p.is_file(),
        "the promtool fixtures are missing: {}",
        p.display()
    );
    p
}

fn run(f: &str, opts: UnitTestOptions) -> Result<bool, String> {
    run_unit_tests(&path(f), &opts)
        .map(|r| {
            if !r.passed() {
                eprintln!("{f}:\n{}", r.failures.join("\n"));
            }
            r.passed()
        })
        .map_err(|e| e.to_string())
}

fn only(names: &[&str]) -> UnitTestOptions {
    UnitTestOptions {
        run: names.iter().map(|s| s.to_string()).collect(),
        ..UnitTestOptions::default()
    }
}

#[test]
fn passing_files_pass() {
    for f in [
        "no-test-group-interval.yml",
        "at-modifier-test.yml",
        "negative-offset-test.yml",
        "start-time-test.yml",
        "long-period.yml",
    ] {
        assert_eq!(run(f, UnitTestOptions::default()), Ok(true), "{f}");
    }
    assert_eq!(run("rules_run.yml", only(&["correct"])), Ok(true));
    assert_eq!(run("rules_run_fuzzy.yml", only(&["correct"])), Ok(true));
    let lenient = UnitTestOptions {
        ignore_unknown_fields: true,
        ..UnitTestOptions::default()
    };
    assert_eq!(run("rules_run_extrafields.yml", lenient), Ok(true));
}

#[test]
fn failing_files_fail() {
    for f in [
        "bad-input-series.yml",
        "bad-promql.yml",
        "bad-rules-syntax-test.yml",
        "bad-rules-error-test.yml",
        "failing.yml",
        "rules_run_no_fuzzy.yml",
        "rules_run_extrafields.yml",
    ] {
        assert_ne!(
            run(f, UnitTestOptions::default()),
            Ok(true),
            "{f} must fail"
        );
    }
    assert_ne!(run("rules_run.yml", UnitTestOptions::default()), Ok(true));
    assert_ne!(run("rules_run.yml", only(&["wrong"])), Ok(true));
    assert_ne!(run("rules_run.yml", only(&["correct", "wrong"])), Ok(true));
    assert_ne!(run("rules_run_fuzzy.yml", only(&["wrong"])), Ok(true));
    assert_ne!(
        run("rules_run_fuzzy.yml", UnitTestOptions::default()),
        Ok(true)
    );
}

/// unittest.yml must pass but feeds native histograms, which are not built
/// yet: it fails for that reason only.
#[test]
fn native_histogram_fixture_fails_only_for_histograms() {
    let r = run_unit_tests(&path("unittest.yml"), &UnitTestOptions::default()).unwrap();
    assert!(!r.passed());
    assert!(
        r.failures.iter().all(|f| f.contains("native histogram")),
        "{}",
        r.failures.join("\n")
    );
}
