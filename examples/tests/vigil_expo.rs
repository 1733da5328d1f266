//! `vigil-expo check`: exit status and messages, as the conformance suites
//! that drive it expect.

use std::io::Write;
use std::process::{Command, Stdio};

fn check(args: &[&str], input: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil-expo"))
        .arg("check")
        .args(args)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vigil-expo");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn accepts_and_rejects_with_line_and_column() {
    let (code, out, _) = check(&["--text"], "# TYPE a counter\na 1\n");
    assert_eq!(code, 0);
    assert!(out.contains("ok (1 samples"), "{out}");

    let (code, _, err) = check(&["--text"], "a 1\nb{c=d} 1\n");
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "-: line 2, column 5: expected '\"' opening the label value, found \"d} 1\""
    );

    // Scrape mode takes what only strict mode refuses.
    let om = "# TYPE a counter\na_total -1\n# EOF\n";
    assert_eq!(check(&["--openmetrics"], om).0, 0);
    let (code, _, err) = check(&["--strict", "--openmetrics"], om);
    assert_eq!(code, 1);
    assert!(
        err.contains("line 2, column 1: counter sample \"a_total\""),
        "{err}"
    );

    let (code, _, err) = check(&["--openmetrics"], "a 1\n");
    assert_eq!(code, 1);
    assert!(err.contains("expected \"# EOF\""), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(check(&[], "").0, 2);
    assert_eq!(check(&["--json"], "").0, 2);
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-expo"))
        .arg("lint")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-expo"))
        .args(["check", "--text", "/nonexistent/file"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
