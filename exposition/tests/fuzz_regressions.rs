//! Replays the saved inputs of the exposition fuzz targets
//! (`tests/fuzz-regressions/<target>/`) through the fuzz crate's own harness
//! (`fuzz/src/expo.rs`), so a failure here is the fuzz crash with its message.

#[path = "../../fuzz/src/expo.rs"]
mod expo;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.expect("read the regression folder").path())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for f in files {
        eprintln!("{target}: {}", f.display());
        run(&std::fs::read(&f).expect("read a regression input"));
    }
}

#[test]
fn expo_text() {
    replay("expo_text", expo::run_text);
}

#[test]
fn expo_openmetrics() {
    replay("expo_openmetrics", expo::run_openmetrics);
}

#[test]
fn expo_roundtrip() {
    replay("expo_roundtrip", expo::run_roundtrip);
}
