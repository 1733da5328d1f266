//! `wal_open`: recovery of a log directory made of arbitrary files.
//!
//! The input describes the files of a log directory on `SimFs`: segments
//! built from well-formed frames (so that the fuzzer reaches the deep code of
//! recovery easily) and then damaged, segments of raw bytes, snapshots, left-over
//! temporary files and strangers. The log is opened, read to the end, appended
//! to and reopened.
//!
//! Errors are fine. What must hold:
//! - nothing panics;
//! - a reader yields strictly increasing sequence numbers, none above the last
//!   one the log reports;
//! - with `verify_sealed` on, a log that opened reads without error (damage is
//!   found at open, not later by a reader);
//! - the same directory opened with `verify_sealed` on and off (two copies):
//!   where it opens with it on, it opens with it off, with the same recovery
//!   summary, and reads the same records without error; where it fails with
//!   it on, it fails with it off too, at open or in a reader from the oldest
//!   record (sealed segments are checked once, by the reader, not skipped);
//! - a record whose append succeeded gets the next sequence number and is
//!   there, with its bytes, after a reopen.
//!
//! `VIGIL_FUZZ_TRACE=1` prints the files and what recovery did (for triage).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use vigil_wal::io::{SimFs, Storage};
use vigil_wal::{Lsn, Options, SyncPolicy, Wal};

const DIR: &str = "/wal";
const SEGMENT_HEADER: usize = 32;
const FLAG_CONTINUES: u32 = 1 << 31;
/// Upper bound on the records a reader is asked for, so that a reader that
/// never ends shows up as a failure rather than a hang.
const READ_LIMIT: usize = 100_000;
/// The record appended after recovery.
const PROBE: &[u8] = b"appended after recovery";

/// The decoded input.
#[derive(Arbitrary, Debug)]
pub struct Input {
    /// Bit 0: `verify_sealed` off; bit 1: `repair` on; bit 2: `preallocate` off.
    flags: u8,
    /// `Options::segment_size` is 64 more than this.
    segment_size: u16,
    files: Vec<File>,
}

/// One file of the directory.
#[derive(Arbitrary, Debug)]
enum File {
    /// A segment of frames, then damaged.
    Segment {
        name: Name,
        header: Header,
        records: Vec<Record>,
        damage: Vec<Damage>,
    },
    /// A file with a segment's name and any bytes.
    RawSegment { name: Name, bytes: Vec<u8> },
    /// A snapshot, well formed but for what `Tweak` changes, then damaged.
    Snapshot {
        name: Name,
        tweak: SnapshotTweak,
        data: Vec<u8>,
        damage: Vec<Damage>,
    },
    /// A temporary snapshot file left by a crash.
    TempSnapshot { lsn: u16, bytes: Vec<u8> },
    /// A file the log does not own.
    Stranger { which: u8, bytes: Vec<u8> },
}

/// The first sequence number in a segment's (or snapshot's) name.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Name {
    /// Right after the records of the previous segment.
    Next,
    /// Some distance from there.
    Delta(i8),
    /// Anything.
    Absolute(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Header {
    Valid,
    /// A well-formed header with this version byte.
    Version(u8),
    /// A well-formed header that gives this first sequence number.
    FirstLsn(u64),
    /// All zeros (a segment created but never initialised).
    Zeros,
    /// Only the first so many bytes of a valid header.
    Short(u8),
}

#[derive(Arbitrary, Debug)]
struct Record {
    payload: Vec<u8>,
    continues: bool,
    /// Added to the sequence number the frame should carry (with a valid CRC).
    lsn_delta: i8,
    /// Replaces the length-and-flags word (with a valid CRC over it).
    len_flags: Option<u32>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Damage {
    Flip { at: u16, mask: u8 },
    Truncate { at: u16 },
    Zero { at: u16, len: u8 },
    ExtendZeros { len: u16 },
    ExtendJunk { len: u8, byte: u8 },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum SnapshotTweak {
    None,
    InnerLsn(u64),
    Version(u8),
    Length(u64),
}

/// Decode `data` and run it. Panics on a violated property.
pub fn run(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    run_input(&input);
}

fn run_input(input: &Input) {
    let fs = build(&input.files);
    let opts = Options::default()
        .storage(Arc::new(fs.clone()))
        .sync(SyncPolicy::Always)
        .gather_fraction(0.0)
        .segment_size(64 + u64::from(input.segment_size))
        .verify_sealed(input.flags & 1 == 0)
        .repair(input.flags & 2 != 0)
        .preallocate(input.flags & 4 == 0)
        .max_record_size(1 << 16);
    let verify = opts.verify_sealed;
    compare_verify(&fs, &opts);

    let opened = Wal::open(DIR, opts.clone());
    trace(|| {
        format!(
            "options: verify_sealed {} repair {} preallocate {} segment_size {}\nopen -> {:?}",
            opts.verify_sealed,
            opts.repair,
            opts.preallocate,
            opts.segment_size,
            opened
                .as_ref()
                .map(|w| (w.last_lsn(), w.oldest_lsn(), w.recovery()))
        )
    });
    let Ok(wal) = opened else {
        return;
    };
    let last = wal.last_lsn();
    assert!(
        wal.durable_lsn() == last,
        "after recovery durable {} != last {last}",
        wal.durable_lsn()
    );
    read_all(&wal, 0, verify);
    if last > 0 {
        read_all(&wal, last / 2 + 1, verify);
    }
    let _ = wal.latest_snapshot();
    let appended = wal.append(PROBE);
    drop(wal);

    let Ok(lsn) = appended else {
        // The log may refuse to go on (for example a directory it cannot
        // write); it must still not panic when opened again.
        if let Ok(wal) = Wal::open(DIR, opts) {
            read_all(&wal, 0, false);
        }
        return;
    };
    assert_eq!(
        lsn,
        last + 1,
        "append after recovery got {lsn}, last was {last}"
    );
    let wal = Wal::open(DIR, opts)
        .unwrap_or_else(|e| panic!("reopen after a successful append at {lsn} failed: {e}"));
    let mut reader = wal
        .reader(lsn)
        .unwrap_or_else(|e| panic!("reader at the appended record {lsn}: {e}"));
    match reader.next() {
        Some(Ok((got, bytes))) if got == lsn && bytes[..] == *PROBE => {}
        other => panic!("record {lsn} appended before the reopen reads back as {other:?}"),
    }
}

/// Every record a reader from the oldest one returns (at most
/// `READ_LIMIT`), and the error it stopped at.
fn read_everything(wal: &Wal) -> (Vec<(Lsn, Vec<u8>)>, Option<String>) {
    let reader = match wal.reader(0) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e.to_string())),
    };
    let mut out = Vec::new();
    for (n, item) in reader.enumerate() {
        assert!(n < READ_LIMIT, "reader does not end");
        match item {
            Ok((lsn, bytes)) => out.push((lsn, bytes.to_vec())),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
    (out, None)
}

/// Open exact copies of the directory with `verify_sealed` on and off (and
/// no repair, which would check at open either way) and compare.
fn compare_verify(fs: &SimFs, opts: &Options) {
    let with = |verify: bool| {
        opts.clone()
            .storage(Arc::new(fs.crash(|unsynced| unsynced)))
            .verify_sealed(verify)
            .repair(false)
    };
    let eager = Wal::open(DIR, with(true));
    let lazy = Wal::open(DIR, with(false));
    trace(|| format!("verify_sealed on: {eager:?}\nverify_sealed off: {lazy:?}"));
    match (&eager, &lazy) {
        (Ok(e), Ok(l)) => {
            assert_eq!(
                e.recovery(),
                l.recovery(),
                "recovery with and without verify_sealed"
            );
            assert_eq!(e.last_lsn(), l.last_lsn());
            let (er, ee) = read_everything(e);
            let (lr, le) = read_everything(l);
            assert!(
                ee.is_none(),
                "opened with verify_sealed, then a reader failed: {ee:?}"
            );
            assert!(
                le.is_none(),
                "opens with verify_sealed, but without it a reader failed: {le:?}"
            );
            assert!(
                er == lr,
                "records read with and without verify_sealed differ"
            );
        }
        (Ok(_), Err(err)) => panic!("opens with verify_sealed, but not without it: {err}"),
        (Err(err), Ok(l)) => {
            let (_, le) = read_everything(l);
            assert!(
                le.is_some(),
                "open with verify_sealed failed ({err}), but without it a reader read everything"
            );
        }
        (Err(_), Err(_)) => {}
    }
}

/// Print what `f` says when `VIGIL_FUZZ_TRACE` is set.
fn trace(f: impl FnOnce() -> String) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("VIGIL_FUZZ_TRACE").is_some()) {
        eprintln!("{}", f());
    }
}

/// Read from `from` to the end, checking the order. With `strict`, a read
/// error is a failure.
fn read_all(wal: &Wal, from: Lsn, strict: bool) {
    let last = wal.last_lsn();
    let reader = match wal.reader(from) {
        Ok(r) => r,
        Err(e) if strict && from == 0 => panic!("reader from the oldest record: {e}"),
        Err(_) => return,
    };
    let mut prev: Option<Lsn> = None;
    for (n, item) in reader.enumerate() {
        assert!(n < READ_LIMIT, "reader does not end");
        match item {
            Ok((lsn, bytes)) => {
                trace(|| format!("read {lsn}: {} bytes", bytes.len()));
                assert!(
                    prev.is_none_or(|p| lsn > p),
                    "reader went from {prev:?} to {lsn}"
                );
                assert!(lsn <= last, "reader returned {lsn} beyond last {last}");
                if from > 0 && prev.is_none() {
                    assert!(lsn >= from, "reader from {from} returned {lsn}");
                }
                prev = Some(lsn);
            }
            Err(e) if strict => panic!("opened with verify_sealed, but a reader failed: {e}"),
            Err(_) => return,
        }
    }
}

fn dir() -> PathBuf {
    PathBuf::from(DIR)
}

fn segment_file_name(lsn: Lsn) -> String {
    format!("{lsn:020}.wal")
}

fn snapshot_file_name(lsn: Lsn) -> String {
    format!("snap-{lsn:020}.snap")
}

fn resolve(name: Name, next: Lsn) -> Lsn {
    match name {
        Name::Next => next,
        Name::Delta(d) => next.wrapping_add_signed(i64::from(d)),
        Name::Absolute(l) => l,
    }
}

/// Build the directory on a fresh `SimFs`, every file and entry durable.
fn build(files: &[File]) -> SimFs {
    let fs = SimFs::new();
    fs.create_dir_all(&dir()).expect("SimFs create_dir_all");
    // The first sequence number the next segment named `Next` gets.
    let mut next: Lsn = 1;
    for file in files {
        let (name, bytes) = match file {
            File::Segment {
                name,
                header,
                records,
                damage,
            } => {
                let first = resolve(*name, next);
                let mut bytes = segment_header(*header, first);
                let mut lsn = first;
                for r in records {
                    let len_flags = r.len_flags.unwrap_or(
                        r.payload.len() as u32 | if r.continues { FLAG_CONTINUES } else { 0 },
                    );
                    frame(
                        &mut bytes,
                        lsn.wrapping_add_signed(i64::from(r.lsn_delta)),
                        len_flags,
                        &r.payload,
                    );
                    lsn = lsn.wrapping_add(1);
                }
                next = lsn;
                apply(&mut bytes, damage);
                (segment_file_name(first), bytes)
            }
            File::RawSegment { name, bytes } => {
                let first = resolve(*name, next);
                next = first.wrapping_add(1);
                (segment_file_name(first), bytes.clone())
            }
            File::Snapshot {
                name,
                tweak,
                data,
                damage,
            } => {
                let lsn = resolve(*name, next.wrapping_sub(1));
                let mut bytes = snapshot(lsn, *tweak, data);
                apply(&mut bytes, damage);
                (snapshot_file_name(lsn), bytes)
            }
            File::TempSnapshot { lsn, bytes } => (
                format!("{}.tmp", snapshot_file_name(Lsn::from(*lsn))),
                bytes.clone(),
            ),
            File::Stranger { which, bytes } => {
                let names = [
                    "LOCK",
                    "1.wal",
                    "0000000000000000000x.wal",
                    "snap-1.snap",
                    "snap-.tmp",
                    "00000000000000000001.wal.tmp",
                    "README",
                ];
                let name = names[usize::from(*which) % names.len()];
                (name.to_owned(), bytes.clone())
            }
        };
        trace(|| {
            format!(
                "file {name}: {} bytes {:02x?}",
                bytes.len(),
                &bytes[..bytes.len().min(48)]
            )
        });
        write_file(&fs, &dir().join(name), &bytes);
    }
    fs.sync_dir(&dir()).expect("SimFs sync_dir");
    fs
}

fn write_file(fs: &SimFs, path: &Path, bytes: &[u8]) {
    let f = fs.open(path, true).expect("SimFs open");
    f.set_len(0).expect("SimFs set_len");
    f.write_at(0, bytes).expect("SimFs write_at");
    f.sync_data().expect("SimFs sync_data");
}

fn segment_header(header: Header, first: Lsn) -> Vec<u8> {
    let (version, lsn) = match header {
        Header::Zeros => return vec![0; SEGMENT_HEADER],
        Header::Short(n) => {
            let mut h = segment_header(Header::Valid, first);
            h.truncate(usize::from(n) % SEGMENT_HEADER);
            return h;
        }
        Header::Valid => (1, first),
        Header::Version(v) => (v, first),
        Header::FirstLsn(l) => (1, l),
    };
    let mut h = vec![0u8; SEGMENT_HEADER];
    h[..8].copy_from_slice(b"VIGILWAL");
    h[8] = version;
    h[16..24].copy_from_slice(&lsn.to_le_bytes());
    let crc = crc32fast::hash(&h[..28]);
    h[28..].copy_from_slice(&crc.to_le_bytes());
    h
}

fn frame(out: &mut Vec<u8>, lsn: Lsn, len_flags: u32, payload: &[u8]) {
    let mut h = crc32fast::Hasher::new();
    h.update(payload);
    h.update(&len_flags.to_le_bytes());
    h.update(&lsn.to_le_bytes());
    out.extend_from_slice(&len_flags.to_le_bytes());
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(payload);
}

fn snapshot(lsn: Lsn, tweak: SnapshotTweak, data: &[u8]) -> Vec<u8> {
    let (version, inner, len) = match tweak {
        SnapshotTweak::None => (1, lsn, data.len() as u64),
        SnapshotTweak::InnerLsn(l) => (1, l, data.len() as u64),
        SnapshotTweak::Version(v) => (v, lsn, data.len() as u64),
        SnapshotTweak::Length(n) => (1, lsn, n),
    };
    let mut out = Vec::with_capacity(36 + data.len());
    out.extend_from_slice(b"VIGILSNP");
    out.push(version);
    out.extend_from_slice(&[0; 7]);
    out.extend_from_slice(&inner.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn apply(bytes: &mut Vec<u8>, damage: &[Damage]) {
    for d in damage {
        match *d {
            Damage::Flip { at, mask } => {
                if !bytes.is_empty() {
                    let i = usize::from(at) % bytes.len();
                    bytes[i] ^= mask;
                }
            }
            Damage::Truncate { at } => {
                let n = usize::from(at) % (bytes.len() + 1);
                bytes.truncate(n);
            }
            Damage::Zero { at, len } => {
                if !bytes.is_empty() {
                    let i = usize::from(at) % bytes.len();
                    let j = (i + usize::from(len)).min(bytes.len());
                    bytes[i..j].fill(0);
                }
            }
            Damage::ExtendZeros { len } => bytes.resize(bytes.len() + usize::from(len), 0),
            Damage::ExtendJunk { len, byte } => {
                bytes.resize(bytes.len() + usize::from(len), byte);
            }
        }
    }
}
