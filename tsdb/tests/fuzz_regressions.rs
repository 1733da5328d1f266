//! Replays the saved inputs of the `tsdb_chunk_decode` and
//! `tsdb_block_chunks` fuzz targets (`tests/fuzz-regressions/<target>/`)
//! through the fuzz crate's own harnesses (`fuzz/src/tsdb_chunk.rs`,
//! `fuzz/src/tsdb_block.rs`), so a failure here is the fuzz
//! crash with its message.

#[path = "../../fuzz/src/tsdb_chunk.rs"]
mod tsdb_chunk;

#[path = "../../fuzz/src/tsdb_block.rs"]
mod tsdb_block;

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

#[test]
fn tsdb_block_chunks() {
    assert!(replay("tsdb_block_chunks", tsdb_block::run) > 0);
}
