//! Replays the saved inputs of the logpipe fuzz targets
//! (`tests/fuzz-regressions/<target>/`) through the fuzz crate's own harness
//! (`fuzz/src/logpipe.rs`), so a failure here is the fuzz failure with its
//! message. Inputs that pinned no crash are kept too: edge cases (include
//! patterns reaching outside the folder, hostile nesting, extreme times)
//! that must stay harmless.

#[path = "../../fuzz/src/logpipe.rs"]
mod logpipe;

#[path = "../../fuzz/src/replay.rs"]
mod replay;

/// Replays `target`'s saved inputs; there must be some.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let n = replay::replay(env!("CARGO_MANIFEST_DIR"), target, run);
    assert!(n > 0, "no saved inputs for {target}");
    n
}

#[test]
fn logpipe_config() {
    replay("logpipe_config", logpipe::run_config);
}

#[test]
fn logpipe_parsers() {
    replay("logpipe_parsers", logpipe::run_parsers);
}

#[test]
fn logpipe_regex() {
    replay("logpipe_regex", logpipe::run_regex);
}
