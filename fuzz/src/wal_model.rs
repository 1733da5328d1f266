//! `wal_model`: a list of operations run against the log on `SimFs` and
//! against a model of what the log must hold.
//!
//! The operations are appends, batches, syncs, clean reopens, front
//! truncation, snapshots, power cuts (`SimFs::crash`, keeping a chosen prefix
//! of each file's unsynced changes) and injected faults (a failing write or
//! fsync, a full disk). The sync policy is `Always` or `Never` (`Batch` runs a
//! timer thread, so its runs would not replay).
//!
//! The model keeps every acknowledged record with its batch, the records of
//! failed appends (which may or may not be there after a restart), and the
//! highest sequence number the log promised durable: under `Always` what
//! `Wal::durable_lsn` says; under `Never` what `sync`, `close` and
//! `save_snapshot` say (there `durable_lsn` may pass over records lost to a
//! failed fsync that the next `sync` reports). What must hold, after every
//! operation and after every reopen or crash:
//! - a reader yields strictly increasing sequence numbers, only durable ones,
//!   each with the bytes that were appended under it (after a restart, the
//!   bytes of an acknowledged record or of a failed append at that number);
//! - every acknowledged record at or below the promised durable sequence
//!   number, and every record a reader once returned, is there (after a crash
//!   too), unless the log reported it lost (`Error::SyncLost`) or truncation
//!   was asked to drop it; a loss is never reported for such a record;
//! - a batch is there whole or not at all;
//! - appends get the next sequence number; one once acknowledged and made
//!   durable is never handed out again, and under `Never` no acknowledged one
//!   is (until a crash takes it back);
//! - the durable sequence number never goes back, and after recovery equals
//!   the last one;
//! - the newest snapshot is one that was saved (or attempted), never older
//!   than the newest saved successfully, and reads back with its bytes;
//! - a log that went through any of this opens again (once faults are lifted).
//!
//! `VIGIL_FUZZ_TRACE=1` prints each operation as it is done (for triage).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use vigil_wal::io::SimFs;
use vigil_wal::{Error, Lsn, Options, SyncPolicy, Wal};

const DIR: &str = "/wal";

/// The decoded input.
#[derive(Arbitrary, Debug)]
pub struct Input {
    config: Config,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Config {
    /// `SyncPolicy::Never` instead of `Always`.
    never: bool,
    /// `Options::segment_size` is 64 more than this, modulo 4096.
    segment_size: u16,
    /// `Options::write_buffer` is 1 + 4 × this.
    write_buffer: u8,
    no_preallocate: bool,
}

/// A record: an 8-byte serial number (so that no two records are equal)
/// followed by `len` copies of `fill`.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Payload {
    len: u8,
    fill: u8,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Append(Payload),
    AppendBatch(Vec<Payload>),
    Sync,
    /// `close`, then open again on the same file system.
    Reopen,
    /// `truncate_front(last_lsn + 2 - back)`.
    TruncateFront(u8),
    /// `save_snapshot(last_lsn - back, data)`.
    SaveSnapshot {
        back: u8,
        data: Vec<u8>,
    },
    /// A power cut; each file keeps a prefix of its unsynced changes chosen by
    /// the cut points in turn (`u16::MAX` keeps all).
    Crash {
        cuts: Vec<u16>,
    },
    /// The `n % 4`th write from now fails.
    FailWrite(u8),
    /// The `n % 4`th fsync from now fails.
    FailSync(u8),
    /// Some bytes of free space, or none lifts the limit.
    Capacity(Option<u16>),
}

#[derive(Debug, Clone)]
struct Rec {
    data: Vec<u8>,
    /// The sequence numbers of the batch it was appended in.
    batch: Range<Lsn>,
    /// A reader returned it: it was durable, and must stay.
    seen: bool,
}

#[derive(Debug, Default)]
struct Model {
    /// Acknowledged records that may still be in the log.
    known: BTreeMap<Lsn, Rec>,
    /// Records of failed appends: they may appear after a restart.
    candidates: BTreeMap<Lsn, Vec<Rec>>,
    /// The highest durable sequence number the log promised: every known
    /// record at or below it (at or above `floor`, not in `lost`) must be
    /// readable.
    required: Lsn,
    /// The highest `Wal::durable_lsn` seen since the last restart.
    seen_durable: Lsn,
    /// Records the log reported lost (`Error::SyncLost`).
    lost: BTreeSet<Lsn>,
    /// Truncation may have dropped every record below this.
    floor: Lsn,
    /// The highest sequence number acknowledged since the last restart.
    max_issued: Lsn,
    /// The newest snapshot saved successfully.
    snap_ok: Option<Lsn>,
    /// Every snapshot attempted.
    snap_attempts: Vec<(Lsn, Vec<u8>)>,
}

struct Harness {
    config: Config,
    fs: SimFs,
    wal: Option<Wal>,
    model: Model,
    serial: u64,
    /// What was done, for failure messages.
    trace: Vec<String>,
    /// `Wal::durable_lsn` is not a promise (under `Never`, see the module
    /// docs).
    durable_lsn_is_a_hint: bool,
}

/// Decode `data` and run it. Panics on a violated property.
pub fn run(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    run_input(&input);
}

fn run_input(input: &Input) {
    let mut h = Harness {
        config: input.config,
        fs: SimFs::new(),
        wal: None,
        model: Model::default(),
        serial: 0,
        trace: Vec::new(),
        durable_lsn_is_a_hint: input.config.never,
    };
    let wal = Wal::open(DIR, h.options()).expect("open an empty log");
    h.wal = Some(wal);
    for op in &input.ops {
        h.step(op);
    }
    // End with a power cut that keeps nothing unsynced: the strictest check.
    h.step(&Op::Crash { cuts: Vec::new() });
}

impl Harness {
    fn options(&self) -> Options {
        let c = self.config;
        Options::default()
            .storage(Arc::new(self.fs.clone()))
            .sync(if c.never {
                SyncPolicy::Never
            } else {
                SyncPolicy::Always
            })
            .segment_size(64 + u64::from(c.segment_size % 4096))
            .write_buffer(1 + usize::from(c.write_buffer) * 4)
            .preallocate(!c.no_preallocate)
            .gather_fraction(0.0)
    }

    fn wal(&self) -> &Wal {
        self.wal.as_ref().expect("the log is open")
    }

    fn fail(&self, what: String) -> ! {
        panic!(
            "{what}\nconfig: {:?}\nmodel: required {} floor {} max_issued {} lost {:?} snap_ok {:?}\noperations:\n  {}",
            self.config,
            self.model.required,
            self.model.floor,
            self.model.max_issued,
            self.model.lost,
            self.model.snap_ok,
            self.trace.join("\n  ")
        );
    }

    /// Record what was done, for failure messages.
    fn note(&mut self, line: String) {
        static TRACE: OnceLock<bool> = OnceLock::new();
        if *TRACE.get_or_init(|| std::env::var_os("VIGIL_FUZZ_TRACE").is_some()) {
            eprintln!("{line}");
        }
        self.trace.push(line);
    }

    fn payload(&mut self, p: Payload) -> Vec<u8> {
        self.serial += 1;
        let mut v = self.serial.to_le_bytes().to_vec();
        v.resize(8 + usize::from(p.len), p.fill);
        v
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Append(p) => {
                let rec = self.payload(*p);
                self.append(vec![rec], false);
            }
            Op::AppendBatch(ps) => {
                let recs = ps.iter().map(|p| self.payload(*p)).collect();
                self.append(recs, true);
            }
            Op::Sync => {
                let last = self.wal().last_lsn();
                let r = self.wal().sync();
                self.note(format!("sync (last {last}) -> {r:?}"));
                match r {
                    Ok(d) if d < last => {
                        self.fail(format!("sync returned {d}, below the last record {last}"))
                    }
                    Ok(d) => self.model.required = self.model.required.max(d),
                    Err(e) => self.note_error(&e),
                }
            }
            Op::Reopen => {
                let wal = self.wal.take().expect("the log is open");
                let last = wal.last_lsn();
                let r = wal.close();
                self.note(format!("close (last {last}) -> {r:?}"));
                match r {
                    // Closing syncs: everything appended is durable.
                    Ok(()) => self.model.required = self.model.required.max(last),
                    Err(e) => self.note_error(&e),
                }
                self.reopen();
            }
            Op::TruncateFront(back) => {
                let last = self.wal().last_lsn();
                let lsn = (last + 2).saturating_sub(u64::from(*back));
                // Only segments whose records all lie below `lsn` go, and the
                // active segment stays: records after `last` are safe.
                self.model.floor = self.model.floor.max(lsn.min(last + 1));
                let r = self.wal().truncate_front(lsn);
                self.note(format!("truncate_front({lsn}) -> {r:?}"));
                if let Err(e) = r {
                    self.note_error(&e);
                }
            }
            Op::SaveSnapshot { back, data } => {
                let lsn = self.wal().last_lsn().saturating_sub(u64::from(*back));
                self.model.snap_attempts.push((lsn, data.clone()));
                let r = self.wal().save_snapshot(lsn, data);
                self.note(format!(
                    "save_snapshot({lsn}, {} bytes) -> {r:?}",
                    data.len()
                ));
                match r {
                    Ok(()) => {
                        let d = self.wal().durable_lsn();
                        if d < lsn {
                            self.fail(format!("snapshot at {lsn} saved with durable {d}"));
                        }
                        self.model.snap_ok = Some(self.model.snap_ok.map_or(lsn, |s| s.max(lsn)));
                        self.model.required = self.model.required.max(lsn);
                    }
                    Err(e) => self.note_error(&e),
                }
            }
            Op::Crash { cuts } => {
                let wal = self.wal.take().expect("the log is open");
                let durable = wal.durable_lsn();
                if !self.durable_lsn_is_a_hint {
                    self.model.required = self.model.required.max(durable);
                }
                let mut i = 0usize;
                let mut kept = Vec::new();
                let fs = self.fs.crash(|total| {
                    let keep = match cuts.get(i % cuts.len().max(1)) {
                        None => 0,
                        Some(&u16::MAX) => total,
                        Some(&c) => u64::from(c) % (total + 1),
                    };
                    i += 1;
                    kept.push((keep, total));
                    keep
                });
                self.note(format!("crash (durable {durable}) keeping {kept:?}"));
                drop(wal);
                self.fs = fs;
                self.reopen();
            }
            Op::FailWrite(n) => {
                self.note(format!("fail write in {}", n % 4));
                self.fs.fail_write_in(u64::from(n % 4));
            }
            Op::FailSync(n) => {
                self.note(format!("fail fsync in {}", n % 4));
                self.fs.fail_sync_in(u64::from(n % 4));
            }
            Op::Capacity(c) => {
                let cap = c.map(|c| self.fs.used() + u64::from(c));
                self.note(format!("capacity {cap:?}"));
                self.fs.set_capacity(cap);
            }
        }
        if !matches!(op, Op::Reopen | Op::Crash { .. }) {
            self.observe();
            self.check(false);
        }
    }

    fn append(&mut self, records: Vec<Vec<u8>>, batch: bool) {
        let wal = self.wal();
        let before = wal.last_lsn();
        let durable_before = wal.durable_lsn();
        let r = if batch {
            wal.append_batch(&records)
        } else {
            wal.append(&records[0]).map(|l| l..l + 1)
        };
        let sizes: Vec<usize> = records.iter().map(Vec::len).collect();
        self.note(format!(
            "append{} {sizes:?} (last {before}, durable {durable_before}) -> {r:?}",
            if batch { "_batch" } else { "" }
        ));
        let n = records.len() as u64;
        match r {
            Ok(range) => {
                if range.start != before + 1 || range.end - range.start != n {
                    self.fail(format!(
                        "{n} records after last {before} got sequence numbers {range:?}"
                    ));
                }
                if n == 0 {
                    return;
                }
                if range.start <= self.model.required {
                    self.fail(format!(
                        "append got {}, but {} was already durable",
                        range.start, self.model.required
                    ));
                }
                if self.config.never && range.start <= self.model.max_issued {
                    self.fail(format!(
                        "append got {}, but {} was already acknowledged",
                        range.start, self.model.max_issued
                    ));
                }
                if !self.config.never && self.wal().durable_lsn() < range.end - 1 {
                    self.fail(format!(
                        "under Always, append of {range:?} returned with durable {}",
                        self.wal().durable_lsn()
                    ));
                }
                self.model.max_issued = range.end - 1;
                // A success at `start` cut away whatever failed appends
                // left at and after it.
                let _ = self.model.candidates.split_off(&range.start);
                for (i, data) in records.into_iter().enumerate() {
                    let lsn = range.start + i as u64;
                    self.model.lost.remove(&lsn);
                    let old = self.model.known.insert(
                        lsn,
                        Rec {
                            data,
                            batch: range.clone(),
                            seen: false,
                        },
                    );
                    if old.is_some() {
                        self.fail(format!("sequence number {lsn} handed out twice"));
                    }
                }
            }
            Err(e) => {
                self.note_error(&e);
                let batch = before + 1..before + 1 + n;
                for (i, data) in records.into_iter().enumerate() {
                    self.model
                        .candidates
                        .entry(before + 1 + i as u64)
                        .or_default()
                        .push(Rec {
                            data,
                            batch: batch.clone(),
                            seen: false,
                        });
                }
            }
        }
    }

    fn note_error(&mut self, e: &Error) {
        if let Error::SyncLost { lost, .. } = e {
            for range in lost {
                let (first, last) = (*range.start(), *range.end());
                if first <= self.model.required {
                    self.fail(format!(
                        "records {first}..={last} reported lost, but {} was durable",
                        self.model.required
                    ));
                }
                if let Some((l, _)) = self.model.known.range(first..=last).find(|(_, r)| r.seen) {
                    self.fail(format!(
                        "records {first}..={last} reported lost, but a reader had returned {l}"
                    ));
                }
                self.model.lost.extend(first..=last);
            }
        }
    }

    /// The log's durable sequence number never goes back, and is what it
    /// must keep.
    fn observe(&mut self) {
        let d = self.wal().durable_lsn();
        let last = self.wal().last_lsn();
        let before = self.model.seen_durable.max(self.model.required);
        if d < before {
            self.fail(format!("durable went back from {before} to {d}"));
        }
        if d > last {
            self.fail(format!("durable {d} beyond last {last}"));
        }
        self.model.seen_durable = d;
        if !self.durable_lsn_is_a_hint {
            self.model.required = d;
        }
    }

    /// Open the log again after a close or a crash, then compare it with the
    /// model and take what it holds as the new truth.
    fn reopen(&mut self) {
        let wal = match Wal::open(DIR, self.options()) {
            Ok(w) => w,
            Err(first) => {
                // An injected fault may still be armed: lift every one.
                self.fs.fail_write_in(u64::MAX);
                self.fs.fail_sync_in(u64::MAX);
                self.fs.set_capacity(None);
                self.note(format!("open -> {first}; faults lifted, open again"));
                match Wal::open(DIR, self.options()) {
                    Ok(w) => w,
                    Err(e) => self.fail(format!("the log cannot be opened: {first}; then: {e}")),
                }
            }
        };
        let (last, durable) = (wal.last_lsn(), wal.durable_lsn());
        self.note(format!(
            "open: last {last}, durable {durable}, oldest {}, recovery {:?}",
            wal.oldest_lsn(),
            wal.recovery()
        ));
        self.wal = Some(wal);
        if durable != last {
            self.fail(format!("after recovery durable {durable} != last {last}"));
        }
        // The last durable record not reported lost must still be there.
        let must_reach = self
            .model
            .known
            .iter()
            .rev()
            .find(|(l, r)| (**l <= self.model.required || r.seen) && !self.model.lost.contains(l))
            .map_or(0, |(l, _)| *l);
        if last < must_reach {
            self.fail(format!(
                "after recovery the log ends at {last}, but {must_reach} was durable"
            ));
        }
        self.check(true);
        self.model.required = durable;
        self.model.seen_durable = durable;
        self.model.max_issued = last;
        self.model.candidates.clear();
        self.model.lost.clear();
    }

    /// Read the whole log and compare it with the model. `restarted`: the log
    /// was just opened, so failed appends may show up (and the model is then
    /// replaced by what was read).
    fn check(&mut self, restarted: bool) {
        let wal = self.wal();
        let durable = wal.durable_lsn();
        let oldest = wal.oldest_lsn();
        let snapshot = match wal.latest_snapshot() {
            Ok(s) => s,
            Err(e) => self.fail(format!("latest_snapshot: {e}")),
        };
        let mut floor = self.model.floor;
        match &snapshot {
            Some(s) => {
                if !self
                    .model
                    .snap_attempts
                    .iter()
                    .any(|(l, d)| *l == s.lsn && d[..] == s.data[..])
                {
                    self.fail(format!(
                        "snapshot at {} ({} bytes) was never saved",
                        s.lsn,
                        s.data.len()
                    ));
                }
                if self.model.snap_ok.is_some_and(|ok| s.lsn < ok) {
                    self.fail(format!(
                        "newest snapshot is at {}, but one at {:?} was saved",
                        s.lsn, self.model.snap_ok
                    ));
                }
                floor = floor.max(s.lsn.saturating_add(1));
            }
            None => {
                if let Some(ok) = self.model.snap_ok {
                    self.fail(format!("no snapshot, but one at {ok} was saved"));
                }
            }
        }

        let reader = match wal.reader(0) {
            Ok(r) => r,
            Err(e) => self.fail(format!("reader(0): {e}")),
        };
        let mut got: BTreeMap<Lsn, Rec> = BTreeMap::new();
        let mut prev: Lsn = 0;
        for item in reader {
            let (lsn, bytes) = match item {
                Ok(x) => x,
                Err(e) => self.fail(format!("reading after {prev}: {e}")),
            };
            if lsn <= prev && !got.is_empty() {
                self.fail(format!("reader went from {prev} to {lsn}"));
            }
            if lsn < oldest || lsn > durable {
                self.fail(format!(
                    "reader returned {lsn}, outside oldest {oldest} ..= durable {durable}"
                ));
            }
            let rec = match self.model.known.get(&lsn) {
                Some(r) if r.data[..] == bytes[..] => r.clone(),
                _ => match self
                    .model
                    .candidates
                    .get(&lsn)
                    .and_then(|c| c.iter().find(|r| r.data[..] == bytes[..]))
                {
                    Some(r) if restarted => r.clone(),
                    _ => self.fail(format!(
                        "record {lsn} reads as {} bytes {:?}…, which were never appended under it (expected {:?})",
                        bytes.len(),
                        &bytes[..bytes.len().min(12)],
                        self.model.known.get(&lsn).map(|r| &r.data[..r.data.len().min(12)])
                    )),
                },
            };
            got.insert(lsn, Rec { seen: true, ..rec });
            prev = lsn;
            if got.len() > 1_000_000 {
                self.fail("reader does not end".into());
            }
        }
        for (lsn, rec) in &got {
            if let Some(missing) = rec.batch.clone().find(|b| !got.contains_key(b)) {
                self.fail(format!(
                    "record {lsn} is there but {missing} of its batch {:?} is not",
                    rec.batch
                ));
            }
        }
        let required = self.model.required;
        for (&lsn, rec) in self.model.known.range(floor..) {
            if (lsn <= required || rec.seen)
                && !got.contains_key(&lsn)
                && !self.model.lost.contains(&lsn)
            {
                self.fail(format!(
                    "record {lsn} is missing (promised durable up to {required}, seen by a reader: {}, truncation floor {floor}, oldest {oldest})",
                    rec.seen
                ));
            }
        }
        for (lsn, rec) in &got {
            if let Some(r) = self.model.known.get_mut(lsn) {
                r.seen = true;
            } else if !restarted {
                self.fail(format!("record {lsn} read but not known: {rec:?}"));
            }
        }
        if restarted {
            // What was read is the log now; truncated records below `oldest`
            // may still come back if their removal was not synced.
            let _ = self.model.known.split_off(&oldest);
            self.model.known.extend(got);
        }
    }
}
