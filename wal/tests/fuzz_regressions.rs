//! Replays the saved inputs of the log's fuzz targets.
//!
//! `tests/fuzz-regressions/<target>/` holds inputs of the cargo-fuzz targets
//! in `fuzz/`: crashes they found (minimised) and a few seeds that reach deep
//! into the code. Each file runs through the very harness the target runs (the
//! modules below are the fuzz crate's own files), so a failure here is the
//! fuzz crash, with its message.
//!
//! A file whose name starts with `unfixed-` reproduces a bug that is not fixed
//! yet: it is replayed only by the ignored tests (`cargo test -p vigil-wal
//! --test fuzz_regressions -- --ignored`), which fail until the fix lands.
//! Drop the prefix when it does, so the input guards the fix from then on.

#[path = "../../fuzz/src/wal_model.rs"]
mod wal_model;
#[path = "../../fuzz/src/wal_open.rs"]
mod wal_open;

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

const UNFIXED: &str = "unfixed-";
/// Longer than any input takes (a fraction of a second each); past it the
/// input counts as a hang. The thread is left behind and ends with the test
/// process.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The inputs saved for `target`, in name order: the fixed ones, or the
/// `unfixed-` ones.
fn inputs(target: &str, unfixed: bool) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.expect("read the regression folder"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            (name.starts_with(UNFIXED) == unfixed && !name.starts_with('.')).then(|| {
                let bytes = std::fs::read(e.path()).expect("read a regression input");
                (name, bytes)
            })
        })
        .collect();
    out.sort();
    out
}

/// Run every input, then fail naming each one that panicked or hung.
fn replay(target: &str, run: fn(&[u8]), unfixed: bool) {
    let inputs = inputs(target, unfixed);
    let mut failed = Vec::new();
    for (name, bytes) in &inputs {
        eprintln!("{target}: {name} ({} bytes)", bytes.len());
        let (tx, rx) = mpsc::channel();
        let input = bytes.clone();
        std::thread::spawn(move || {
            let ok = std::panic::catch_unwind(|| run(&input)).is_ok();
            let _ = tx.send(ok);
        });
        match rx.recv_timeout(TIMEOUT) {
            Ok(true) => {}
            Ok(false) | Err(mpsc::RecvTimeoutError::Disconnected) => failed.push(name.clone()),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                eprintln!("{target}: {name} did not finish in {TIMEOUT:?}");
                failed.push(format!("{name} (hangs)"));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs fail: {failed:?} (messages above)",
        failed.len(),
        inputs.len()
    );
}

#[test]
fn wal_open_regressions() {
    replay("wal_open", wal_open::run, false);
}

#[test]
fn wal_model_regressions() {
    replay("wal_model", wal_model::run, false);
}

#[test]
#[ignore = "reproduces bugs not fixed yet; fails until they are"]
fn wal_open_unfixed() {
    replay("wal_open", wal_open::run, true);
}

#[test]
#[ignore = "reproduces bugs not fixed yet; fails until they are"]
fn wal_model_unfixed() {
    replay("wal_model", wal_model::run, true);
}
