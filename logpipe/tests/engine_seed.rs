//! The seed's fluent-bit configuration (seed 003: tail
//! `${LOG_PATH}/*-log/*.log` with `Mem_Buf_Limit 5MB`, the `Timing` regex
//! parser, `Tag kube.${POD_NAME}.*`, the stdout output) runs unchanged: the
//! fixture is read in place, the pipeline runs in a child process (this
//! test binary again) and its standard output must show each line parsed,
//! printed as fluent-bit's stdout output prints records.

mod common;

use common::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD: &str = "seed_child_pipeline";

#[test]
fn seed_child_pipeline() {
    child_main();
}

#[test]
fn seed_003_config_runs_unchanged() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed003/fluent-bit.conf");
    let d = dir();
    let root = d.path();
    std::fs::create_dir(root.join("stdout-log")).unwrap();
    let log = root.join("stdout-log/app.log");
    // Present at start: without Read_From_Head the input starts at its end,
    // so this line is not read.
    std::fs::write(&log, "2024/05/06 07:08:00 [INFO] before start\n").unwrap();
    let stop = root.join("stop");
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD, "--nocapture", "--test-threads=1"])
        .env("VIGIL_LP_CHILD_CONF", &conf)
        .env("VIGIL_LP_CHILD_STOP", &stop)
        .env("LOG_PATH", root)
        .env("POD_NAME", "web-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"2024/05/06 07:08:09 [INFO] request served in 3 ms\n")
        .unwrap();
    f.write_all(b"not a timing line\n").unwrap();
    drop(f);
    std::thread::sleep(Duration::from_millis(2500));
    std::fs::write(&stop, "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // libtest's own "test ... " may precede a record on its line.
    let records: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            l.find("] kube.")
                .and_then(|i| l[..i].rfind('['))
                .map(|i| &l[i..])
        })
        .collect();
    let tag = format!(
        "kube.web-1.{}.stdout-log.app.log",
        root.to_string_lossy()
            .trim_start_matches('/')
            .replace('/', ".")
    );
    assert_eq!(records.len(), 2, "{text}");
    let want0 = format!(
        "{tag}: [[{{}}], {{\"time\"=>\"2024/05/06 07:08:09\", \"level\"=>\"[INFO]\", \"context\"=>\" request served in 3 ms\"}}]"
    );
    // The time printed is when the line was read: mask it.
    let masked: Vec<String> = records
        .iter()
        .map(|r| {
            let open = r.find("[[").unwrap();
            let comma = r[open..].find(", {}").unwrap() + open;
            format!("{}[[{}", &r[..open], &r[comma + 2..])
        })
        .collect();
    assert_eq!(masked[0], format!("[0] {want0}"), "{text}");
    assert!(
        masked[1].ends_with("[[{}], {\"log\"=>\"not a timing line\"}]"),
        "{text}"
    );
}
