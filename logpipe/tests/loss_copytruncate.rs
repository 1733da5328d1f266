//! Loss test (b): a writer appends numbered lines at 50,000 lines/s while
//! the file is copied and truncated every second (copytruncate); every line must
//! arrive exactly once in the file output. The CI variant runs 5 s; the
//! issue's 20 s variant is `--ignored`.

mod common;

use common::*;
use std::time::Duration;

fn run(secs: f64) {
    let d = dir();
    let root = d.path();
    std::fs::create_dir(root.join("out")).unwrap();
    let log = root.join("app.log");
    std::fs::write(&log, "").unwrap();
    let conf = format!(
        "[SERVICE]\n    Flush 0.2\n    Grace 10\n\
         [INPUT]\n    Name tail\n    Path {}\n    Read_From_Head On\n    Refresh_Interval 1\n    Rotate_Wait 5\n    Mem_Buf_Limit 32MB\n\
         [OUTPUT]\n    Name file\n    Match *\n    Path {}\n    File out.jsonl\n    Format plain\n",
        p(&log),
        p(&root.join("out"))
    );
    let running = Running::start(&conf, root);
    let writer = Writer::start(&log, 50_000, secs, Rotation::CopyTruncate);
    let n = writer.join();
    let out = root.join("out");
    wait_until(Duration::from_secs(60), || {
        tally_files(&out, "out", n).unique == n
    });
    running.stop();
    let t = tally_files(&out, "out", n);
    println!("loss (b) copytruncate every second, {secs} s: {t}");
    assert!(n as f64 >= 50_000.0 * secs * 0.9, "writer too slow: {n}");
    assert_eq!(t.lost, 0, "{t}");
    assert_eq!(t.duplicates, 0, "{t}");
    assert_eq!(t.unexpected, 0, "{t}");
}

#[test]
fn copytruncate_every_second_loses_nothing() {
    run(5.0);
}

#[test]
#[ignore = "the issue's 20 s run; CI runs the 5 s one"]
fn copytruncate_every_second_loses_nothing_20s() {
    run(20.0);
}
