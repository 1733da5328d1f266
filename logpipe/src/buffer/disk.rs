//! The disk buffer (`storage.type filesystem`): one vigil-wal log per output.
//!
//! A chunk is appended as one WAL record with `SyncPolicy::Always` and
//! acknowledged to its input only once durable, so the input may checkpoint
//! past it: from then on the records live in the log, survive kill -9 and
//! are replayed on start. The output reads the log from just after the last
//! delivered sequence number; that number is saved as a WAL snapshot (empty
//! data, its sequence number is the point) at most every 100 ms and at
//! close, which also truncates the delivered segments. After a crash the
//! records delivered since the last snapshot are delivered again: at least
//! once, never lost.
//!
//! `storage.total_limit_size` bounds the bytes not yet delivered. When a
//! chunk would pass it, `push` waits for the output to drain: the input
//! pauses. Nothing that an input handed over is ever dropped for space
//! (fluent-bit drops the oldest chunks instead).

use super::{Chunk, codec};
use crate::error::{Error, Result};
use crate::record::Record;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_wal::io::Storage;
use vigil_wal::{Lsn, Options, Reader, SyncPolicy, Wal};

/// Largest WAL record written: a chunk larger than this is split (the WAL's
/// own limit is 16 MiB).
const MAX_RECORD: usize = 4 << 20;
/// How often the delivered position is saved while the output is busy.
const SAVE_EVERY: Duration = Duration::from_millis(100);

/// One output's disk buffer.
#[derive(Debug)]
pub struct DiskQueue {
    wal: Wal,
    dir: PathBuf,
    limit: u64,
    state: Mutex<State>,
    cv: Condvar,
}

#[derive(Debug)]
struct State {
    /// Size of each record not yet delivered, by sequence number.
    sizes: VecDeque<(Lsn, u64)>,
    used: u64,
    delivered: Lsn,
    saved: Lsn,
    saved_at: Instant,
    closed: bool,
}

impl DiskQueue {
    /// Opens (or creates) the buffer in `dir`, limited to `limit` bytes not
    /// yet delivered. What an earlier run left undelivered is read first.
    pub fn open(
        dir: impl Into<PathBuf>,
        limit: u64,
        storage: Option<Arc<dyn Storage>>,
    ) -> Result<Self> {
        let dir = dir.into();
        let mut opts = Options::default()
            .sync(SyncPolicy::Always)
            .segment_size(8 << 20);
        if let Some(s) = storage {
            opts = opts.storage(s);
        }
        let err = |source| Error::Buffer {
            path: dir.clone(),
            source,
        };
        let wal = Wal::open(&dir, opts).map_err(err)?;
        let delivered = match wal.latest_snapshot().map_err(err)? {
            Some(s) => s.lsn,
            None => wal.oldest_lsn().saturating_sub(1),
        };
        let mut sizes = VecDeque::new();
        let mut used = 0;
        if delivered < wal.last_lsn() {
            for rec in wal.reader(delivered + 1).map_err(err)? {
                let (lsn, bytes) = rec.map_err(err)?;
                sizes.push_back((lsn, bytes.len() as u64));
                used += bytes.len() as u64;
            }
        }
        Ok(DiskQueue {
            wal,
            dir,
            limit: limit.max(1),
            state: Mutex::new(State {
                sizes,
                used,
                delivered,
                saved: delivered,
                saved_at: Instant::now(),
                closed: false,
            }),
            cv: Condvar::new(),
        })
    }

    /// The buffer's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes written and not yet delivered.
    pub fn used(&self) -> u64 {
        self.state.lock().used
    }

    /// Writes the chunk durably, then acknowledges it. Waits while the
    /// buffer is over its limit; once closed, returns without taking the
    /// chunk (it is abandoned, so its input does not checkpoint past it).
    pub fn push(&self, mut chunk: Chunk) -> Result<()> {
        if chunk.records.is_empty() {
            chunk.ack();
            return Ok(());
        }
        let mut payloads = Vec::new();
        let mut start = 0;
        // Split so that no WAL record passes MAX_RECORD (estimated from the
        // raw bytes, then checked on the encoding).
        let per = (chunk.records.len() * MAX_RECORD / 2 / chunk.bytes.max(1)).max(1);
        while start < chunk.records.len() {
            let end = (start + per).min(chunk.records.len());
            let mut buf =
                Vec::with_capacity(chunk.bytes / (chunk.records.len() / (end - start)).max(1) + 64);
            codec::encode(&chunk.records[start..end], &mut buf);
            payloads.push(buf);
            start = end;
        }
        let total: u64 = payloads.iter().map(|p| p.len() as u64).sum();
        {
            let mut st = self.state.lock();
            while st.used > 0 && st.used + total > self.limit && !st.closed {
                self.cv.wait_for(&mut st, Duration::from_millis(200));
            }
            if st.closed {
                return Ok(());
            }
        }
        let lsns = self
            .wal
            .append_batch(&payloads)
            .map_err(|source| Error::Buffer {
                path: self.dir.clone(),
                source,
            })?;
        {
            let mut st = self.state.lock();
            for (lsn, p) in lsns.zip(&payloads) {
                st.sizes.push_back((lsn, p.len() as u64));
                st.used += p.len() as u64;
            }
        }
        chunk.records.clear();
        chunk.ack();
        Ok(())
    }

    /// A reader from the first record not yet delivered.
    pub fn reader(&self) -> Result<DiskReader> {
        let from = self.state.lock().delivered + 1;
        let inner = self.wal.reader(from).map_err(|source| Error::Buffer {
            path: self.dir.clone(),
            source,
        })?;
        Ok(DiskReader { inner })
    }

    /// Everything up to `lsn` was delivered: free it, and save the position
    /// now and then (always when `force`).
    pub fn commit(&self, lsn: Lsn, force: bool) -> Result<()> {
        let save = {
            let mut st = self.state.lock();
            if lsn > st.delivered {
                st.delivered = lsn;
            }
            while st.sizes.front().is_some_and(|&(l, _)| l <= lsn) {
                if let Some((_, n)) = st.sizes.pop_front() {
                    st.used -= n;
                }
            }
            let due = force || st.saved_at.elapsed() >= SAVE_EVERY;
            if due && st.delivered > st.saved {
                st.saved_at = Instant::now();
                Some(st.delivered)
            } else {
                None
            }
        };
        self.cv.notify_all();
        if let Some(lsn) = save {
            self.wal
                .save_snapshot(lsn, &[])
                .map_err(|source| Error::Buffer {
                    path: self.dir.clone(),
                    source,
                })?;
            self.state.lock().saved = lsn;
        }
        Ok(())
    }

    /// Stops accepting; wakes a waiting `push`.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.cv.notify_all();
    }

    /// Whether [`DiskQueue::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Whether everything written was delivered.
    pub fn is_drained(&self) -> bool {
        self.state.lock().sizes.is_empty()
    }
}

/// Reads an output's disk buffer in order.
#[derive(Debug)]
pub struct DiskReader {
    inner: Reader,
}

impl DiskReader {
    /// Decodes records until about `max_bytes` of log are read, waiting up
    /// to `timeout` for the first. Returns the last sequence number read
    /// (commit it after delivery) and the bytes read, or `None` when
    /// nothing came.
    pub fn next_batch(
        &mut self,
        max_bytes: usize,
        timeout: Duration,
        out: &mut Vec<Record>,
    ) -> Result<Option<(Lsn, usize)>> {
        let mut last = None;
        let mut read = 0;
        let mut wait = timeout;
        while read < max_bytes {
            let Some(rec) = self.inner.next_timeout(wait) else {
                break;
            };
            let (lsn, bytes) = rec.map_err(|source| Error::Buffer {
                path: PathBuf::new(),
                source,
            })?;
            let records = codec::decode(&bytes).map_err(|message| Error::BufferRecord {
                path: PathBuf::new(),
                lsn,
                message,
            })?;
            out.extend(records);
            read += bytes.len();
            last = Some(lsn);
            wait = Duration::ZERO;
        }
        Ok(last.map(|l| (l, read)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::AckTracker;
    use vigil_wal::io::SimFs;

    fn chunk(t: &Arc<AckTracker>, from: u64, n: u64) -> Chunk {
        let records: Vec<Record> = (from..from + n)
            .map(|i| Record::line("t", i as i64, format!("line {i}")))
            .collect();
        let tok = t.register(0, from + n, 10 * n as usize).unwrap();
        Chunk::new(records, 10 * n as usize, Some(tok))
    }

    fn lines(recs: &[Record]) -> Vec<String> {
        recs.iter()
            .map(|r| {
                r.fields
                    .get("log")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn acknowledged_when_durable_and_replayed_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let t = AckTracker::new(usize::MAX);
        t.set_committed(0, 0);
        {
            let q = DiskQueue::open(dir.path().join("out"), 1 << 30, None).unwrap();
            q.push(chunk(&t, 0, 5)).unwrap();
            assert_eq!(t.committed(0), Some(5));
            q.push(chunk(&t, 5, 5)).unwrap();
            let mut r = q.reader().unwrap();
            let mut out = Vec::new();
            let lsn = r
                .next_batch(1, Duration::from_millis(10), &mut out)
                .unwrap()
                .unwrap()
                .0;
            assert_eq!(out.len(), 5);
            q.commit(lsn, true).unwrap();
        }
        // Reopened: the delivered chunk is gone, the other one comes back.
        let q = DiskQueue::open(dir.path().join("out"), 1 << 30, None).unwrap();
        assert!(!q.is_drained());
        let mut r = q.reader().unwrap();
        let mut out = Vec::new();
        let lsn = r
            .next_batch(1 << 20, Duration::from_millis(10), &mut out)
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(
            lines(&out),
            (5..10).map(|i| format!("line {i}")).collect::<Vec<_>>()
        );
        q.commit(lsn, false).unwrap();
        assert!(q.is_drained());
        assert_eq!(q.used(), 0);
    }

    #[test]
    fn full_buffer_makes_push_wait_until_delivery_frees_space() {
        let dir = tempfile::tempdir().unwrap();
        let t = AckTracker::new(usize::MAX);
        let q = Arc::new(DiskQueue::open(dir.path(), 200, None).unwrap());
        q.push(chunk(&t, 0, 10)).unwrap();
        assert!(q.used() > 100);
        let q2 = q.clone();
        let t2 = t.clone();
        let pusher = std::thread::spawn(move || q2.push(chunk(&t2, 10, 10)).unwrap());
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !pusher.is_finished(),
            "push must wait while the buffer is full"
        );
        let mut r = q.reader().unwrap();
        let mut out = Vec::new();
        let lsn = r
            .next_batch(1, Duration::from_millis(10), &mut out)
            .unwrap()
            .unwrap()
            .0;
        q.commit(lsn, false).unwrap();
        pusher.join().unwrap();
        out.clear();
        r.next_batch(1 << 20, Duration::from_millis(100), &mut out)
            .unwrap()
            .unwrap();
        assert_eq!(out.len(), 10);
    }

    /// A power cut at any moment after a push returned: the pushed records
    /// are all there after recovery (the WAL's guarantee, checked through
    /// this buffer), and a push whose write failed was not acknowledged.
    #[test]
    fn power_cut_keeps_every_acknowledged_chunk() {
        for fail_at in 0..6u64 {
            let fs = SimFs::new();
            let t = AckTracker::new(usize::MAX);
            t.set_committed(0, 0);
            let q = DiskQueue::open("/buf", 1 << 30, Some(Arc::new(fs.clone()))).unwrap();
            fs.fail_sync_in(fail_at);
            let mut acked = 0;
            for i in 0..6 {
                if q.push(chunk(&t, i * 3, 3)).is_ok() {
                    acked = t.committed(0).unwrap();
                } else {
                    break;
                }
            }
            drop(q);
            for keep in [0u64, 3, u64::MAX] {
                let crashed = Arc::new(fs.crash(|n| n.min(keep)));
                let q = DiskQueue::open("/buf", 1 << 30, Some(crashed)).unwrap();
                let mut r = q.reader().unwrap();
                let mut out = Vec::new();
                r.next_batch(usize::MAX, Duration::ZERO, &mut out).unwrap();
                let got = lines(&out);
                let want: Vec<String> = (0..acked).map(|i| format!("line {i}")).collect();
                assert!(
                    got.len() >= want.len() && got[..want.len()] == want[..],
                    "fail_at {fail_at} keep {keep}: acked {acked}, got {got:?}"
                );
            }
        }
    }
}
