//! `vigil-promtool` on the upstream promtool fixtures (read in place from
//! ../shared/conformance/rules/promtool): exit codes as promtool's.

use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> PathBuf {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/rules/promtool");
    assert!(
        p.is_dir(),
        "{} is missing: the tests read the upstream fixtures in place",
        p.display()
    );
    p
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-promtool"))
        .current_dir(fixtures())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn check_rules_accepts_and_rejects_like_promtool() {
    let (code, out) = run(&["check", "rules", "rules.yml"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCESS: 5 rules found"), "{out}");
    let (code, out) = run(&["check", "rules", "rules-bad.yml"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("6:9"), "the error says where: {out}");
    // Duplicates warn, and fail only with --lint-fatal.
    let (code, out) = run(&["check", "rules", "rules_duplicates.yml"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("duplicate rule"), "{out}");
    assert_eq!(
        run(&["check", "rules", "--lint-fatal", "rules_duplicates.yml"]).0,
        1
    );
    assert_eq!(run(&["check", "rules"]).0, 2);
    assert_eq!(run(&["lint"]).0, 2);
}

#[test]
fn test_rules_exit_codes() {
    let (code, out) = run(&[
        "test",
        "rules",
        "long-period.yml",
        "no-test-group-interval.yml",
    ]);
    assert_eq!(code, 0, "{out}");
    // rules_run.yml holds a correct and a wrong test group.
    assert_eq!(run(&["test", "rules", "rules_run.yml"]).0, 1);
    assert_eq!(
        run(&["test", "rules", "--run", "correct", "rules_run.yml"]).0,
        0
    );
    let (code, out) = run(&["test", "rules", "failing.yml"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED"), "{out}");
}
