//! The tail input through the whole pipeline: restarts that meet a rotated
//! or replaced file, exclusions, files that appear later.
#![cfg(feature = "http")]

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

fn numbered(range: std::ops::Range<u64>) -> String {
    range.map(line).collect()
}

/// The pipeline stopped before anything was delivered; meanwhile the file
/// was renamed and a new one created. The restart finds the renamed file by
/// its identity next to the old path and reads it from the saved offset.
#[test]
fn restart_after_a_rename_reads_the_renamed_file_to_its_end() {
    let d = dir();
    let root = d.path();
    let log = root.join("app.log");
    std::fs::write(&log, numbered(0..1000)).unwrap();
    let mut server = TestServer::start();
    server.set_down(true);
    let conf = format!(
        "[SERVICE]\n    Flush 0.1\n    Grace 0.3\n    scheduler.base 0.1\n    scheduler.cap 0.2\n\
         [INPUT]\n    Name tail\n    Path {}\n    Read_From_Head On\n    DB {}\n    Rotate_Wait 1\n\
         [OUTPUT]\n    Name http\n    Match *\n    Port {}\n    Format json_lines\n    Retry_Limit False\n",
        p(&log),
        p(&root.join("tail.db")),
        server.port
    );
    let running = Running::start(&conf, root);
    std::thread::sleep(Duration::from_millis(500));
    running.stop();
    std::fs::rename(&log, root.join("app.log.1")).unwrap();
    std::fs::write(&log, numbered(1000..1010)).unwrap();
    server.set_down(false);
    let running = Running::start(&conf, root);
    assert!(
        wait_until(Duration::from_secs(10), || server.tally(1010).unique
            == 1010),
        "{}",
        server.tally(1010)
    );
    running.stop();
    let t = server.tally(1010);
    assert_eq!((t.lost, t.duplicates), (0, 0), "{t}");
}

/// A file deleted and replaced while the pipeline was stopped (possibly on
/// the same inode): the fingerprint differs, so it is read from its head,
/// not from the old file's offset.
#[test]
fn a_replaced_file_is_read_from_its_head_even_on_a_reused_inode() {
    let d = dir();
    let root = d.path();
    std::fs::create_dir(root.join("out")).unwrap();
    let log = root.join("app.log");
    std::fs::write(&log, numbered(0..100)).unwrap();
    let old_ino = std::fs::metadata(&log).unwrap().ino();
    let conf = format!(
        "[SERVICE]\n    Flush 0.1\n\
         [INPUT]\n    Name tail\n    Path {}\n    Read_From_Head On\n    DB {}\n\
         [OUTPUT]\n    Name file\n    Match *\n    Path {}\n    File out\n    Format plain\n",
        p(&log),
        p(&root.join("tail.db")),
        p(&root.join("out"))
    );
    let out = root.join("out");
    let running = Running::start(&conf, root);
    assert!(wait_until(Duration::from_secs(10), || tally_files(
        &out, "out", 100
    )
    .unique
        == 100));
    std::thread::sleep(Duration::from_millis(400));
    running.stop();
    std::fs::remove_file(&log).unwrap();
    // Shorter than the old offset, so a stale resume would also be caught
    // by the size; the fingerprint is what decides here.
    std::fs::write(&log, numbered(100..150)).unwrap();
    let reused = std::fs::metadata(&log).unwrap().ino() == old_ino;
    let running = Running::start(&conf, root);
    assert!(wait_until(Duration::from_secs(10), || tally_files(
        &out, "out", 150
    )
    .unique
        == 150));
    std::thread::sleep(Duration::from_millis(300));
    running.stop();
    let t = tally_files(&out, "out", 150);
    println!("inode reused: {reused}; {t}");
    assert_eq!((t.lost, t.duplicates), (0, 0), "{t}");
}

#[test]
fn exclude_path_and_files_that_appear_later() {
    let d = dir();
    let root = d.path();
    std::fs::create_dir(root.join("out")).unwrap();
    std::fs::write(root.join("a.log"), numbered(0..10)).unwrap();
    std::fs::write(root.join("skip-me.log"), numbered(100..110)).unwrap();
    let conf = format!(
        "[SERVICE]\n    Flush 0.1\n\
         [INPUT]\n    Name tail\n    Path {}\n    Exclude_Path *skip*\n    Refresh_Interval 0.2\n\
         [OUTPUT]\n    Name file\n    Match *\n    Path {}\n    File out\n    Format plain\n",
        p(&root.join("*.log")),
        p(&root.join("out"))
    );
    let out = root.join("out");
    let running = Running::start(&conf, root);
    std::thread::sleep(Duration::from_millis(300));
    // Found at start without Read_From_Head: read from its end.
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("a.log"))
        .unwrap()
        .write_all(numbered(10..12).as_bytes())
        .unwrap();
    // Appears later: read from its head.
    std::fs::write(root.join("b.log"), numbered(10..11)).unwrap();
    assert!(wait_until(Duration::from_secs(10), || tally_files(
        &out, "out", 12
    )
    .arrived
        == 3));
    std::thread::sleep(Duration::from_millis(300));
    running.stop();
    let mut counts = std::collections::HashMap::new();
    count_into(&std::fs::read(out.join("out")).unwrap(), &mut counts);
    let mut seqs: Vec<u64> = counts.keys().copied().collect();
    seqs.sort();
    // a.log lines 10 and 11 (appended after start), b.log's line 10.
    assert_eq!(seqs, [10, 11]);
    assert_eq!(counts[&10], 2);
}
