//! A damaged WAL under a head. vigil-wal checks a sealed WAL segment's
//! records as the replay reads them (not in `Wal::open`, unless
//! `verify_sealed` asks for it), so a flipped bit in a sealed segment must
//! fail `Head::open` with the WAL's own error naming the segment and the
//! damaged record's offset, the same error `verify_sealed` gives from
//! `Wal::open`; and with the WAL's `repair` the head opens with what comes
//! before the damage.

use std::path::{Path, PathBuf};

use vigil_tsdb::head::{Head, HeadOptions};
use vigil_tsdb::labels::Labels;

const SEGMENT_HEADER: usize = 32;
const FRAME_HEADER: usize = 16;
const SERIES: usize = 50;
const ROUNDS: i64 = 400;

fn opts() -> HeadOptions {
    HeadOptions {
        // Small segments, so that the WAL has several sealed ones.
        wal: vigil_wal::Options::default().segment_size(32 << 10),
        ..HeadOptions::default()
    }
}

fn series(i: usize) -> Labels {
    Labels::new([("__name__", "m".to_owned()), ("i", i.to_string())]).unwrap()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

/// The offset of the frame holding byte `at` of a segment (frames as
/// vigil-wal's FORMAT.md lays them out), and where its payload starts.
fn frame_at(bytes: &[u8], at: usize) -> (usize, usize, usize) {
    let mut pos = SEGMENT_HEADER;
    loop {
        let word = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap());
        let len = (word & !(1 << 31)) as usize;
        let end = pos + FRAME_HEADER + len;
        if end > at {
            return (pos, pos + FRAME_HEADER, len);
        }
        pos = end;
    }
}

#[test]
fn a_flipped_bit_in_a_sealed_wal_segment_fails_the_replay_at_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let head = Head::open(dir.path(), opts()).unwrap();
    let refs: Vec<_> = {
        let mut app = head.appender();
        let r = (0..SERIES)
            .map(|i| app.append(&series(i), 0, 0.0).unwrap())
            .collect();
        app.commit().unwrap();
        r
    };
    for round in 1..ROUNDS {
        let mut app = head.appender();
        for (i, &r) in refs.iter().enumerate() {
            app.append_ref(r, round * 15_000, (round as f64) * 0.25 + i as f64)
                .unwrap();
        }
        app.commit().unwrap();
    }
    drop(head);
    let segs = segments(dir.path());
    assert!(segs.len() >= 4, "only {} WAL segments", segs.len());

    // A payload byte in the middle of the second segment (sealed).
    let path = &segs[1];
    let mut bytes = std::fs::read(path).unwrap();
    let (frame, payload, len) = frame_at(&bytes, bytes.len() / 2);
    assert!(len > 0);
    bytes[payload + len / 2] ^= 0x10;
    std::fs::write(path, &bytes).unwrap();
    let want = format!("corrupt log segment {} at byte {frame}", path.display());

    // The default: found by the replay's reader.
    let err = Head::open(dir.path(), opts())
        .err()
        .expect("a damaged sealed segment must fail the replay");
    assert!(
        err.to_string().contains(&want),
        "expected {want:?}, got {err}"
    );
    // The same error from `Wal::open` when it checks sealed segments.
    let mut eager = opts();
    eager.wal = eager.wal.verify_sealed(true);
    let err = Head::open(dir.path(), eager).err().expect("verify_sealed");
    assert!(
        err.to_string().contains(&want),
        "expected {want:?}, got {err}"
    );
    // Neither changed the damaged segment.
    assert!(std::fs::read(path).unwrap() == bytes);

    // Repair cuts the WAL at the damage: the head opens with every series
    // (created in the first segment) and fewer samples than were written.
    let mut repair = opts();
    repair.wal = repair.wal.repair(true);
    let head = Head::open(dir.path(), repair).unwrap();
    assert_eq!(head.num_series(), SERIES);
    let samples: usize = head
        .querier(i64::MIN, i64::MAX)
        .select(&[])
        .iter()
        .map(|s| s.samples().count())
        .sum();
    assert!(
        samples > SERIES && samples < SERIES * ROUNDS as usize,
        "{samples} samples after repair"
    );
}
