//! Replaying saved fuzz inputs from a crate's regression tests: every file
//! in `<crate>/tests/fuzz-regressions/<target>/`, in name order, through the
//! target's harness. Included with `#[path]` by each crate's
//! `tests/fuzz_regressions.rs` (not part of the fuzz crate's own build).

use std::path::Path;

/// Runs every saved input of `target` under `manifest_dir`; returns how many
/// there were.
pub fn replay(manifest_dir: &str, target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(manifest_dir)
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
