//! Replays the saved inputs of the `tsdb_chunk_decode` fuzz target
//! (`tests/fuzz-regressions/tsdb_chunk_decode/`) through the fuzz crate's
//! own harness (`fuzz/src/tsdb_chunk.rs`), so a failure here is the fuzz
//! crash with its message.

#[path = "../../fuzz/src/tsdb_chunk.rs"]
mod tsdb_chunk;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
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
    for f in &files {
        eprintln!("{target}: {}", f.display());
        run(&std::fs::read(f).expect("read a regression input"));
    }
    files.len()
}

#[test]
fn tsdb_chunk_decode() {
    assert!(replay("tsdb_chunk_decode", tsdb_chunk::run) > 0);
}
