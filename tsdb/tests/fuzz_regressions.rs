//! Replays the saved inputs of the `tsdb_chunk_decode` fuzz target
//! (`tests/fuzz-regressions/tsdb_chunk_decode/`) through the fuzz crate's
//! own harness (`fuzz/src/tsdb_chunk.rs`), so a failure here is the fuzz
//! crash with its message.

#[path = "../../fuzz/src/tsdb_chunk.rs"]
mod tsdb_chunk;

#[path = "../../fuzz/src/replay.rs"]
mod replay;

/// Replays `target`'s saved inputs; there must be some.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let n = replay::replay(env!("CARGO_MANIFEST_DIR"), target, run);
    assert!(n > 0, "no saved inputs for {target}");
    n
}

#[test]
fn tsdb_chunk_decode() {
    assert!(replay("tsdb_chunk_decode", tsdb_chunk::run) > 0);
}
