//! The engine end to end: configuration errors with file and line, the
//! disk buffer carrying records across a restart, checkpoints that wait for
//! every matching output, filters and routing, the exec input.
#![cfg(feature = "http")]

mod common;

use common::*;
use std::time::Duration;
use vigil_logpipe::config;
use vigil_logpipe::engine::Pipeline;
use vigil_logpipe::offsets::OffsetsDb;

fn build_err(conf: &str) -> String {
    let cfg = config::parse_str(conf, std::path::Path::new("/etc/fb/fluent-bit.conf")).unwrap();
    Pipeline::from_config(cfg).unwrap_err().to_string()
}

#[test]
fn configuration_errors_name_file_and_line() {
    let e = build_err("[INPUT]\n    Name nosuch\n[OUTPUT]\n    Name null\n    Match *\n");
    assert!(
        e.starts_with("/etc/fb/fluent-bit.conf:2:") && e.contains("nosuch"),
        "{e}"
    );
    let e = build_err(
        "[INPUT]\n    Name stdin\n[OUTPUT]\n    Name file\n    Match *\n    Colour red\n",
    );
    assert!(
        e.starts_with("/etc/fb/fluent-bit.conf:6:") && e.contains("Colour"),
        "{e}"
    );
    let e = build_err(
        "[INPUT]\n    Name stdin\n[OUTPUT]\n    Name null\n    Match *\n    Retry_Limit sometimes\n",
    );
    assert!(e.starts_with("/etc/fb/fluent-bit.conf:6:"), "{e}");
    let e = build_err(
        "[INPUT]\n    Name stdin\n    storage.type filesystem\n[OUTPUT]\n    Name null\n    Match *\n",
    );
    assert!(e.contains(":3:") && e.contains("storage.path"), "{e}");
    let e = build_err("[INPUT]\n    Name tail\n[OUTPUT]\n    Name null\n    Match *\n");
    assert!(e.contains("Path"), "{e}");
    let e = build_err("[INPUT]\n    Name tail\n    Path /x\n    Parser nope\n");
    assert!(e.contains(":4:") && e.contains("nope"), "{e}");
}

fn numbered(n: u64) -> String {
    (0..n).map(line).collect()
}

#[test]
fn disk_buffer_carries_records_across_a_restart() {
    let d = dir();
    let root = d.path();
    let log = root.join("app.log");
    std::fs::write(&log, numbered(1000)).unwrap();
    let mut server = TestServer::start();
    server.set_down(true);
    let conf = format!(
        "[SERVICE]\n    Flush 0.1\n    Grace 0.5\n    scheduler.base 0.1\n    scheduler.cap 0.2\n    storage.path {}\n\
         [INPUT]\n    Name tail\n    Path {}\n    Read_From_Head On\n    DB {}\n    storage.type filesystem\n\
         [OUTPUT]\n    Name http\n    Match *\n    Port {}\n    Format json_lines\n    Retry_Limit False\n",
        p(&root.join("buf")),
        p(&log),
        p(&root.join("tail.db")),
        server.port
    );
    // First run: the destination is down; the records reach the disk
    // buffer, so the input checkpoints past them.
    let running = Running::start(&conf, root);
    std::thread::sleep(Duration::from_millis(800));
    running.stop();
    let db = OffsetsDb::new(root.join("tail.db")).load().unwrap();
    assert_eq!(db.len(), 1);
    assert_eq!(db[0].offset, std::fs::metadata(&log).unwrap().len());
    assert!(server.bodies.lock().unwrap().is_empty());
    // Second run: the destination is back; the buffer is replayed and the
    // file is not read again.
    server.set_down(false);
    let running = Running::start(&conf, root);
    assert!(wait_until(Duration::from_secs(10), || server
        .tally(1000)
        .unique
        == 1000));
    std::thread::sleep(Duration::from_millis(300));
    running.stop();
    let t = server.tally(1000);
    assert_eq!((t.lost, t.duplicates), (0, 0), "{t}");
}

#[test]
fn checkpoint_waits_for_every_matching_output() {
    let d = dir();
    let root = d.path();
    let log = root.join("app.log");
    std::fs::write(&log, numbered(500)).unwrap();
    std::fs::create_dir(root.join("out")).unwrap();
    let mut server = TestServer::start();
    server.set_down(true);
    let conf = format!(
        "[SERVICE]\n    Flush 0.1\n    Grace 0.5\n    scheduler.base 0.1\n    scheduler.cap 0.2\n\
         [INPUT]\n    Name tail\n    Path {}\n    Read_From_Head On\n    DB {}\n\
         [OUTPUT]\n    Name file\n    Match *\n    Path {}\n    File out\n    Format plain\n\
         [OUTPUT]\n    Name http\n    Match *\n    Port {}\n    Retry_Limit False\n",
        p(&log),
        p(&root.join("tail.db")),
        p(&root.join("out")),
        server.port
    );
    let running = Running::start(&conf, root);
    assert!(wait_until(Duration::from_secs(10), || tally_files(
        &root.join("out"),
        "out",
        500
    )
    .unique
        == 500));
    running.stop();
    // The file output has everything, the HTTP one nothing: no checkpoint.
    let db = OffsetsDb::new(root.join("tail.db")).load().unwrap();
    assert_eq!(db[0].offset, 0);
    server.set_down(false);
    let running = Running::start(&conf, root);
    assert!(wait_until(Duration::from_secs(10), || server
        .tally(500)
        .unique
        == 500));
    std::thread::sleep(Duration::from_millis(300));
    running.stop();
    let db = OffsetsDb::new(root.join("tail.db")).load().unwrap();
    assert_eq!(db[0].offset, std::fs::metadata(&log).unwrap().len());
    // At least once: the file output saw the lines twice.
    assert_eq!(tally_files(&root.join("out"), "out", 500).duplicates, 500);
}

#[test]
fn filters_and_routing_by_tag() {
    let d = dir();
    let root = d.path();
    std::fs::create_dir(root.join("out")).unwrap();
    std::fs::write(root.join("a.log"), "keep 1\ndrop 2\nkeep 3\n").unwrap();
    std::fs::write(root.join("b.log"), "other\n").unwrap();
    let conf = format!(
        "[SERVICE]\n    Flush 0.1\n\
         [INPUT]\n    Name tail\n    Path {}\n    Read_From_Head On\n    Tag app.*\n\
         [FILTER]\n    Name grep\n    Match app.*a.log\n    Exclude log ^drop\n\
         [FILTER]\n    Name modify\n    Match *\n    Add source sidecar\n\
         [OUTPUT]\n    Name file\n    Match_Regex a\\.log$\n    Path {}\n    File a.out\n    Format plain\n\
         [OUTPUT]\n    Name file\n    Match *b.log\n    Path {}\n    File b.out\n    Format plain\n",
        p(&root.join("*.log")),
        p(&root.join("out")),
        p(&root.join("out"))
    );
    let running = Running::start(&conf, root);
    let out = root.join("out");
    let read = |n: &str| std::fs::read_to_string(out.join(n)).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(10), || read("a.out")
        .lines()
        .count()
        == 2
        && read("b.out").lines().count() == 1));
    running.stop();
    assert_eq!(
        read("a.out"),
        "{\"log\":\"keep 1\",\"source\":\"sidecar\"}\n{\"log\":\"keep 3\",\"source\":\"sidecar\"}\n"
    );
    assert_eq!(
        read("b.out"),
        "{\"log\":\"other\",\"source\":\"sidecar\"}\n"
    );
}

#[test]
fn exec_input_records_stdout_and_stderr() {
    let d = dir();
    let root = d.path();
    let conf = format!(
        "[SERVICE]\n    Flush 0.1\n\
         [INPUT]\n    Name exec\n    Command sh -c 'echo out; echo err >&2'\n    Oneshot On\n    Tee Off\n    Tag job\n\
         [OUTPUT]\n    Name file\n    Match job\n    Path {}\n    File job.out\n    Format plain\n",
        p(root)
    );
    let running = Running::start(&conf, root);
    let read = || std::fs::read_to_string(root.join("job.out")).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(10), || read()
        .lines()
        .count()
        == 2));
    running.stop();
    let mut lines: Vec<String> = read().lines().map(str::to_owned).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "{\"exec\":\"err\",\"stream\":\"stderr\"}",
            "{\"exec\":\"out\",\"stream\":\"stdout\"}"
        ]
    );
}
