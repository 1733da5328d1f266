//! Blocks on disk: what is written reads back bit for bit; damaged, truncated
//! or half-written blocks give errors naming the file and offset, never a
//! panic, and do not stop the other blocks from opening.

use std::path::Path;

use proptest::prelude::*;
use vigil_tsdb::Error;
use vigil_tsdb::block::{Block, open_blocks, write_block};
use vigil_tsdb::index::{MatchOp, Matcher};
use vigil_tsdb::labels::Labels;

type SeriesData = Vec<(Labels, Vec<(i64, u64)>)>;

fn series() -> impl Strategy<Value = SeriesData> {
    // Steps of 6 s on average: a series in the block spans several chunks.
    let one = (
        0u8..20,
        proptest::collection::vec((1i64..12_000, any::<u64>()), 0..800),
    );
    proptest::collection::vec(one, 0..12).prop_map(|v| {
        let mut out: SeriesData = Vec::new();
        for (k, steps) in v {
            let labels = Labels::new([("__name__", "m".to_owned()), ("k", k.to_string())]).unwrap();
            if out.iter().any(|(l, _)| *l == labels) {
                continue;
            }
            let mut t = -1_000_000i64;
            let samples = steps
                .into_iter()
                .map(|(d, bits)| {
                    t += d;
                    // Mostly ordinary values, sometimes any bit pattern.
                    let v = if bits % 3 == 0 {
                        bits
                    } else {
                        ((bits % 1000) as f64).to_bits()
                    };
                    (t, v)
                })
                .collect();
            out.push((labels, samples));
        }
        out
    })
}

fn write(dir: &Path, data: &SeriesData, mint: i64, maxt: i64) -> std::path::PathBuf {
    let input = data.iter().map(|(l, s)| {
        (
            l.clone(),
            s.iter().map(|&(t, b)| (t, f64::from_bits(b))).collect(),
        )
    });
    write_block(dir, mint, maxt, input).unwrap()
}

fn read_all(b: &Block, mint: i64, maxt: i64) -> Result<SeriesData, Error> {
    b.select(&[Matcher::equal("__name__", "m")], mint, maxt)?
        .into_iter()
        .map(|(l, r)| r.map(|s| (l, s.into_iter().map(|(t, v)| (t, v.to_bits())).collect())))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn what_is_written_reads_back(data in series(), qmin in -1_200_000i64..3_000_000, qlen in 0i64..5_000_000) {
        let dir = tempfile::tempdir().unwrap();
        let (mint, maxt) = (-900_000, 2_500_000);
        let path = write(dir.path(), &data, mint, maxt);
        let b = Block::open(&path).unwrap();
        let mut want: SeriesData = data
            .iter()
            .map(|(l, s)| (l.clone(), s.iter().copied().filter(|&(t, _)| t >= mint && t < maxt).collect::<Vec<_>>()))
            .filter(|(_, s)| !s.is_empty())
            .collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        prop_assert_eq!(b.meta().series as usize, want.len());
        prop_assert_eq!(b.meta().samples as usize, want.iter().map(|(_, s)| s.len()).sum::<usize>());
        prop_assert_eq!(read_all(&b, i64::MIN, i64::MAX).unwrap(), want.clone());
        // A sub-range.
        let qmax = qmin + qlen;
        let got: SeriesData = read_all(&b, qmin, qmax).unwrap().into_iter().filter(|(_, s)| !s.is_empty()).collect();
        let sub: SeriesData = want
            .iter()
            .map(|(l, s)| (l.clone(), s.iter().copied().filter(|&(t, _)| t >= qmin && t <= qmax).collect::<Vec<_>>()))
            .filter(|(_, s)| !s.is_empty())
            .collect();
        prop_assert_eq!(got, sub);
        // Matchers go through the block's index.
        let odd = b.select(&[Matcher::new("k", MatchOp::Regex, "[13579]|1[13579]").unwrap()], i64::MIN, i64::MAX).unwrap();
        prop_assert!(odd.iter().all(|(l, _)| l.get("k").unwrap().parse::<u32>().unwrap() % 2 == 1));
    }
}

/// Series that share one timestamp vector (as the series of one scrape
/// target do), with their own values; some start later or end earlier, so
/// their chunks' timestamps differ from the others'.
fn shared_series() -> impl Strategy<Value = SeriesData> {
    (
        // Steps of at least 7 ms keep the ±3 ms jitter in order.
        proptest::collection::vec((7i64..40_000, -3i64..=3), 1..700),
        proptest::collection::vec((0usize..3, any::<u64>()), 1..10),
    )
        .prop_map(|(steps, per)| {
            let mut t = 0i64;
            let ts: Vec<i64> = steps
                .iter()
                .map(|&(d, j)| {
                    t += d;
                    t + j
                })
                .collect();
            per.into_iter()
                .enumerate()
                .map(|(k, (skip, seed))| {
                    let l =
                        Labels::new([("__name__", "m".to_owned()), ("k", k.to_string())]).unwrap();
                    let from = (skip * 100).min(ts.len() - 1);
                    let samples = ts[from..]
                        .iter()
                        .enumerate()
                        .map(|(i, &t)| {
                            let x = seed.wrapping_mul(i as u64 + 1) >> 40;
                            (t, ((x % 500) as f64 * 0.25).to_bits())
                        })
                        .collect();
                    (l, samples)
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Chunks that share a timestamp section in the `chunks` file (version
    /// 2) read back bit for bit, also after a copy into a compacted block.
    #[test]
    fn shared_timestamp_chunks_read_back(data in shared_series()) {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &data, i64::MIN, i64::MAX);
        let b = Block::open(&path).unwrap();
        let mut want = data.clone();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        prop_assert_eq!(read_all(&b, i64::MIN, i64::MAX).unwrap(), want);
    }
}

/// Five series scraped together: one timestamp vector, jittered by a few
/// milliseconds, each series its own values.
fn shared_data() -> SeriesData {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let ts: Vec<i64> = (0..500)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            i * 15_000 + (x % 7) as i64 - 3
        })
        .collect();
    (0..5)
        .map(|k| {
            let l = Labels::new([("__name__", "m".to_owned()), ("k", k.to_string())]).unwrap();
            let samples = ts
                .iter()
                .enumerate()
                .map(|(i, &t)| (t, ((i as i64 * (k + 1)) as f64).to_bits()))
                .collect();
            (l, samples)
        })
        .collect()
}

#[test]
fn series_scraped_together_store_their_timestamps_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = shared_data();
    let shared = write(&dir.path().join("a"), &data, 0, i64::MAX);
    // The same values, each series 1 ms later than the one before: no two
    // chunks have equal timestamps.
    let apart: SeriesData = data
        .iter()
        .enumerate()
        .map(|(k, (l, s))| {
            (
                l.clone(),
                s.iter().map(|&(t, v)| (t + k as i64, v)).collect(),
            )
        })
        .collect();
    let separate = write(&dir.path().join("b"), &apart, 0, i64::MAX);
    let size = |p: &Path| std::fs::metadata(p.join("chunks")).unwrap().len();
    let (a, b) = (size(&shared), size(&separate));
    // Timestamps are about half of these chunks: four of five series
    // drop theirs.
    assert!(a * 10 < b * 7, "shared {a} B, separate {b} B");
    assert_eq!(
        read_all(&Block::open(&shared).unwrap(), i64::MIN, i64::MAX).unwrap(),
        data
    );
    assert_eq!(
        read_all(&Block::open(&separate).unwrap(), i64::MIN, i64::MAX).unwrap(),
        apart
    );
}

/// What sharing costs: a damaged chunk whose timestamps other chunks use
/// fails those series too (in this block only), with the file named.
#[test]
fn a_damaged_shared_timestamp_section_fails_the_series_that_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = shared_data();
    // k=5 on its own timestamps.
    let l = Labels::new([("__name__", "m".to_owned()), ("k", "5".to_owned())]).unwrap();
    data.push((
        l,
        (0..500).map(|i| (i * 15_000 + 1, 1f64.to_bits())).collect(),
    ));
    let path = write(dir.path(), &data, 0, i64::MAX);
    let p = path.join("chunks");
    let mut bytes = std::fs::read(&p).unwrap();
    // k=0 is written first; its first chunk holds the timestamps the other
    // four refer to.
    bytes[12] ^= 0x10;
    std::fs::write(&p, &bytes).unwrap();
    let b = Block::open(&path).unwrap();
    let got = b
        .select(&[Matcher::equal("__name__", "m")], i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(got.len(), 6);
    for (l, r) in &got[..5] {
        let e = r.as_ref().expect_err("reads the damaged chunk");
        assert!(e.to_string().contains("chunks"), "{l:?}: {e}");
    }
    let own = got[5].1.as_ref().expect("k=5 shares nothing");
    assert_eq!(own.len(), 500);
}

/// A `chunks` file of version 1 (written before shared timestamps) still
/// reads; a shared-timestamp chunk in one is refused by name.
#[test]
fn version_1_chunks_files_read_and_refuse_shared_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let plain = write(&dir.path().join("a"), &sample_data(), 0, i64::MAX);
    let p = plain.join("chunks");
    let mut bytes = std::fs::read(&p).unwrap();
    assert_eq!(bytes[4], 2);
    bytes[4] = 1;
    std::fs::write(&p, &bytes).unwrap();
    assert_eq!(
        read_all(&Block::open(&plain).unwrap(), i64::MIN, i64::MAX).unwrap(),
        sample_data()
    );
    let shared = write(&dir.path().join("b"), &shared_data(), 0, i64::MAX);
    let p = shared.join("chunks");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[4] = 1;
    std::fs::write(&p, &bytes).unwrap();
    let e = read_all(&Block::open(&shared).unwrap(), i64::MIN, i64::MAX).unwrap_err();
    assert!(e.to_string().contains("version 1"), "{e}");
}

fn sample_data() -> SeriesData {
    (0..5)
        .map(|k| {
            let l = Labels::new([("__name__", "m".to_owned()), ("k", k.to_string())]).unwrap();
            (
                l,
                (0..500)
                    .map(|i| (i * 15_000 + k, ((i * k) as f64).to_bits()))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn damage_is_reported_with_file_and_offset_and_never_panics() {
    damage_run(sample_data());
    damage_run(shared_data());
}

fn damage_run(data: SeriesData) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &data, 0, i64::MAX);
    let good = write(&dir.path().join("other"), &data, 0, i64::MAX);
    for file in ["chunks", "index", "meta.json"] {
        let p = path.join(file);
        let orig = std::fs::read(&p).unwrap();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for round in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut bytes = orig.clone();
            if round % 3 == 0 {
                bytes.truncate((x as usize) % orig.len());
            } else {
                let at = (x as usize) % bytes.len();
                bytes[at] ^= 1 << ((x >> 40) % 8);
            }
            std::fs::write(&p, &bytes).unwrap();
            match Block::open(&path) {
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(file) || file == "meta.json", "{file}: {msg}");
                }
                Ok(b) => {
                    // A flip inside a chunk shows when that chunk is read.
                    if let Err(e) = read_all(&b, i64::MIN, i64::MAX) {
                        assert!(e.to_string().contains("chunks"), "{e}");
                    }
                }
            }
        }
        std::fs::write(&p, &orig).unwrap();
    }
    assert_eq!(
        read_all(&Block::open(&path).unwrap(), i64::MIN, i64::MAX).unwrap(),
        data
    );
    // The other block is unaffected by anything done to the first.
    assert!(Block::open(&good).is_ok());
}

#[test]
fn half_written_and_damaged_blocks_do_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), &sample_data(), 0, 3_000_000);
    let b = write(dir.path(), &sample_data(), 3_000_000, 9_000_000);
    // A crash in the middle of a write leaves a .tmp directory.
    let tmp = dir.path().join("b-9-9-dead.tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(tmp.join("chunks"), b"VTSC").unwrap();
    // And one block's index is damaged.
    let idx = b.join("index");
    let mut bytes = std::fs::read(&idx).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&idx, bytes).unwrap();

    let (blocks, damaged) = open_blocks(dir.path()).unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].dir(), a.as_path());
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged[0].0, b);
    assert!(
        damaged[0].1.to_string().contains("index checksum mismatch"),
        "{}",
        damaged[0].1
    );
    assert!(!tmp.exists(), "the half-written block is removed");
}

#[test]
fn tombstones_hide_samples_survive_reopen_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &sample_data(), 0, i64::MAX);
    let b = Block::open(&path).unwrap();
    assert_eq!(
        b.delete(&[Matcher::equal("k", "1")], 15_000, 60_001)
            .unwrap(),
        1
    );
    let check = |b: &Block| {
        let all = read_all(b, i64::MIN, i64::MAX).unwrap();
        let one = &all.iter().find(|(l, _)| l.get("k") == Some("1")).unwrap().1;
        assert_eq!(one.len(), 500 - 4, "15001, 30001, 45001 and 60001 are gone");
        assert!(one.iter().all(|&(t, _)| !(15_000..=60_001).contains(&t)));
        let zero = &all.iter().find(|(l, _)| l.get("k") == Some("0")).unwrap().1;
        assert_eq!(zero.len(), 500, "other series untouched");
    };
    check(&b);
    check(&Block::open(&path).unwrap());
    let p = path.join("tombstones");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[6] ^= 0x40;
    std::fs::write(&p, &bytes).unwrap();
    let e = Block::open(&path)
        .err()
        .expect("a damaged tombstones file is an error");
    assert!(e.to_string().contains("tombstones"), "{e}");
}

/// Block files are mapped; a file truncated in place while the block is
/// open gives an error naming it at the next read, not a SIGBUS.
#[test]
fn a_file_truncated_while_mapped_gives_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &sample_data(), 0, i64::MAX);
    let b = Block::open(&path).unwrap();
    assert_eq!(read_all(&b, i64::MIN, i64::MAX).unwrap(), sample_data());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path.join("chunks"))
        .unwrap();
    f.set_len(9).unwrap();
    let e = read_all(&b, i64::MIN, i64::MAX).expect_err("the chunks are gone");
    let msg = e.to_string();
    assert!(msg.contains("chunks") && msg.contains("truncated"), "{msg}");
}

/// The index is read in the map at query time: truncated in place after
/// the block opened, it gives an error naming it.
#[test]
fn an_index_truncated_while_mapped_gives_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &sample_data(), 0, i64::MAX);
    let b = Block::open(&path).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path.join("index"))
        .unwrap();
    f.set_len(100).unwrap();
    let e = read_all(&b, i64::MIN, i64::MAX).expect_err("the index is cut");
    assert!(e.to_string().contains("index"), "{e}");
    assert!(b.label_names(&[]).is_err());
    assert!(b.label_values("k", &[]).is_err());
}

/// Selecting lists series without reading chunks: with one series' chunk
/// damaged, the other series of the block are listed and read; the damaged
/// one fails only when it is read.
#[test]
fn select_series_reads_no_chunk_until_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &sample_data(), 0, i64::MAX);
    // The chunks of series k=0 come first in the file (label order): flip
    // a byte inside its first chunk.
    let p = path.join("chunks");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[12] ^= 0x55;
    std::fs::write(&p, &bytes).unwrap();
    let b = Block::open(&path).unwrap();
    let all = b
        .select_series(&[Matcher::equal("__name__", "m")], i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(all.len(), 5);
    let mut buf = Vec::new();
    b.read_series(&all[3], i64::MIN, i64::MAX, &mut buf)
        .unwrap();
    let want: Vec<(i64, u64)> = sample_data()[3].1.clone();
    let got: Vec<(i64, u64)> = buf.iter().map(|&(t, v)| (t, v.to_bits())).collect();
    assert_eq!(got, want);
    buf.clear();
    let e = b
        .read_series(&all[0], i64::MIN, i64::MAX, &mut buf)
        .expect_err("k=0's chunk is damaged");
    assert!(e.to_string().contains("chunks"), "{e}");
    // The eager select reports it in that series only.
    let eager = b
        .select(&[Matcher::equal("__name__", "m")], i64::MIN, i64::MAX)
        .unwrap();
    assert!(eager[0].1.is_err() && eager[1..].iter().all(|(_, r)| r.is_ok()));
}
