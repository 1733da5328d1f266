//! `tsdb_block_chunks`: a vigil-tsdb block's `chunks` file (version 2, with
//! shared timestamp sections), damaged as the input says, read back.
//!
//! A block of series scraped together (so most chunks refer to another
//! chunk's timestamps) plus one series on its own timestamps is written
//! once. Each input is a list of 4-byte edits of its `chunks` file
//! (offset: u16 little-endian, modulo the length; value: u8; kind: u8 —
//! truncate there, set the byte, or flip bits by xor). The block is opened
//! and every series read: nothing may panic, every error must name the
//! `chunks` file, and with no effective edit every series must come back
//! bit for bit.

use std::path::PathBuf;
use std::sync::OnceLock;

use vigil_tsdb::block::{Block, write_block};
use vigil_tsdb::index::Matcher;
use vigil_tsdb::labels::Labels;

type Series = (Labels, Vec<(i64, f64)>);

struct Base {
    dir: PathBuf,
    chunks: Vec<u8>,
    want: Vec<Series>,
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let parent = std::env::temp_dir().join(format!("vigil-fuzz-block-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&parent);
        std::fs::create_dir_all(&parent).expect("temp dir");
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let ts: Vec<i64> = (0..300)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                i * 15_000 + (x % 7) as i64 - 3
            })
            .collect();
        let mut want: Vec<Series> = (0..5)
            .map(|k| {
                let l = Labels::new([("__name__", "m".to_owned()), ("k", k.to_string())])
                    .expect("labels");
                let s = ts
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| (t, (i as i64 * (k + 1)) as f64 * 0.5))
                    .collect();
                (l, s)
            })
            .collect();
        let own =
            Labels::new([("__name__", "m".to_owned()), ("k", "own".to_owned())]).expect("labels");
        want.push((own, (0..300).map(|i| (i * 15_000 + 1, 1.0)).collect()));
        want.sort_by(|a, b| a.0.cmp(&b.0));
        let dir = write_block(&parent, 0, i64::MAX, want.clone()).expect("write block");
        let chunks = std::fs::read(dir.join("chunks")).expect("read chunks");
        Base { dir, chunks, want }
    })
}

fn same(a: &[(i64, f64)], b: &[(i64, f64)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
}

/// Applies the edits in `data` to the block's `chunks` file, then opens
/// the block and reads every series.
pub fn run(data: &[u8]) {
    let b = base();
    let mut bytes = b.chunks.clone();
    for e in data.chunks_exact(4) {
        if bytes.is_empty() {
            break;
        }
        let at = usize::from(u16::from_le_bytes([e[0], e[1]])) % bytes.len();
        match e[3] % 8 {
            0 => bytes.truncate(at),
            1 => bytes[at] = e[2],
            _ => bytes[at] ^= e[2],
        }
    }
    let unchanged = bytes == b.chunks;
    std::fs::write(b.dir.join("chunks"), &bytes).expect("write chunks");
    let block = match Block::open(&b.dir) {
        Ok(block) => block,
        Err(e) => {
            assert!(!unchanged, "an intact block failed to open: {e}");
            assert!(e.to_string().contains("chunks"), "{e}");
            return;
        }
    };
    let got = block
        .select(&[Matcher::equal("__name__", "m")], i64::MIN, i64::MAX)
        .expect("the index is intact");
    assert_eq!(got.len(), b.want.len());
    for ((l, r), (wl, ws)) in got.iter().zip(&b.want) {
        assert_eq!(l, wl);
        match r {
            Ok(s) => assert!(!unchanged || same(s, ws), "{l:?} read back different"),
            Err(e) => {
                assert!(!unchanged, "{l:?} failed in an intact block: {e}");
                assert!(e.to_string().contains("chunks"), "{e}");
            }
        }
    }
}
