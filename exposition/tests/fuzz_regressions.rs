//! Replays the saved inputs of the exposition fuzz targets
//! (`tests/fuzz-regressions/<target>/`) through the fuzz crate's own harness
//! (`fuzz/src/expo.rs`), so a failure here is the fuzz crash with its message.

#[path = "../../fuzz/src/expo.rs"]
mod expo;

#[path = "../../fuzz/src/replay.rs"]
mod replay;

/// Replays `target`'s saved inputs; there must be some.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let n = replay::replay(env!("CARGO_MANIFEST_DIR"), target, run);
    assert!(n > 0, "no saved inputs for {target}");
    n
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
