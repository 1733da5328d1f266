//! The background sealer: re-encodes the chunks commits cut into their
//! sealed form on a thread of its own.
//!
//! Sealing a full chunk (choosing the smallest layout and encoding it; until
//! the open chunk became raw, `open.rs`, decoding its Gorilla stream first)
//! was about 30 % of the appending thread's CPU on the promtool workload
//! (README, "Head"). A commit now copies each chunk it
//! cuts into one buffer per commit (`series::SealJobs`), shared (`Arc`) between
//! this thread and the head's `State::pending`, where queries read the
//! chunk in its raw form meanwhile. The sealed bytes come back, in
//! the order the chunks were cut, through [`Sealer::take_done`]; whoever
//! next holds the state's write lock (the next commit, or one of the
//! operations that first wait for every chunk in flight: a checkpoint, a
//! truncation, a deletion, a collection) appends them to their series'
//! sealed buffer and drops the pending copy. So a series' sealed buffer
//! only ever grows by sealed chunks, in order, exactly as when sealing in
//! place, and a checkpoint saves the same bytes.
//!
//! The sealed bytes are those of sealing in place: the same encoder on the
//! same samples (`tests/chunk_props.rs` pins that sealing from the samples
//! equals sealing the open chunk).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use super::open;
use super::series::{SealJob, SealJobs};
use crate::chunk::{ChunkWriter, Encoder};

/// Chunks handed over and not yet returned, past which commits seal in
/// place again (a sealer starved of CPU must not let raw chunks, a hundred
/// times their sealed size, pile up): about 1.5 MB of chunks at the
/// promtool workload's 1,450 raw bytes a chunk.
pub(crate) const MAX_IN_FLIGHT: usize = 1024;

/// What the thread and the head share.
#[derive(Default)]
struct Shared {
    /// Sealed chunks back, waiting to be swapped in.
    done: Mutex<Vec<Sealed>>,
    /// Chunks sent and not yet in `done`.
    in_flight: AtomicUsize,
    /// Buffers back from swapped batches, for the next ones: a commit's
    /// cut chunks and job list, and the sealer's output. Transient buffers
    /// allocated anew for every commit left holes between the series'
    /// long-lived buffers (about 300 resident bytes a series after 3,000
    /// samples, for the same heap bytes).
    spare_jobs: Mutex<Vec<SealJobs>>,
    spare_out: Mutex<Vec<Vec<u8>>>,
    /// Raw chunk buffers back from sealed chunks, for the open chunks that
    /// follow the next cuts (`OpenChunk::take`).
    spare_bufs: Mutex<Vec<Vec<u8>>>,
}

/// Raw chunk buffers kept for reuse: about the chunks in flight at once
/// (2 MB of 1.5 KB buffers at most).
const SPARE_BUFS: usize = MAX_IN_FLIGHT + 256;

/// Spare buffers kept, of each kind.
const SPARE: usize = 16;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A commit's cut chunks as the sealer gets them: the shared bytes and
/// the jobs.
type Batch = (Arc<Vec<Vec<u8>>>, Vec<SealJob>);

/// The sealer thread and its queues.
pub(crate) struct Sealer {
    tx: Option<mpsc::Sender<Batch>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Sealer {
    /// Starts the thread; `None` if the system refuses one (then commits
    /// seal in place, as without a sealer).
    pub(crate) fn start() -> Option<Sealer> {
        let (tx, rx) = mpsc::channel::<Batch>();
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("vigil-tsdb-seal".into())
            .spawn(move || run(&rx, &theirs))
            .ok()?;
        Some(Sealer {
            tx: Some(tx),
            shared,
            thread: Some(thread),
        })
    }

    /// Chunks sent and not yet returned.
    pub(crate) fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Whether the thread is gone (it never ends while the head holds its
    /// queue; this guards a wait against a thread that panicked).
    pub(crate) fn is_gone(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Hands `jobs` (whose bytes are in `bytes`) to the thread; false if
    /// it is gone (the caller's pending chunks then wait for
    /// `Head::settle_seals`, which seals them in place).
    pub(crate) fn send(&self, bytes: Arc<Vec<Vec<u8>>>, jobs: Vec<SealJob>) -> bool {
        let n = jobs.len();
        self.shared.in_flight.fetch_add(n, Ordering::AcqRel);
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send((bytes, jobs)).is_ok());
        if !sent {
            self.shared.in_flight.fetch_sub(n, Ordering::AcqRel);
        }
        sent
    }

    /// Empty buffers for a commit's cut chunks, with spare raw buffers
    /// for the open chunks after them.
    pub(crate) fn jobs(&self) -> SealJobs {
        let mut jobs = lock(&self.shared.spare_jobs).pop().unwrap_or_default();
        // All of them, in one move: on scrape-aligned series one commit
        // cuts every series of its batch at once.
        std::mem::swap(&mut jobs.spare, &mut *lock(&self.shared.spare_bufs));
        jobs
    }

    /// Takes back raw buffers a commit did not use.
    pub(crate) fn give_spare(&self, mut spare: Vec<Vec<u8>>) {
        let mut bufs = lock(&self.shared.spare_bufs);
        if bufs.is_empty() {
            std::mem::swap(&mut *bufs, &mut spare);
        } else {
            let room = SPARE_BUFS.saturating_sub(bufs.len());
            bufs.extend(spare.into_iter().take(room));
        }
    }

    /// Takes back a batch's buffers once its chunks are swapped in.
    pub(crate) fn recycle(&self, done: Sealed) {
        let Sealed {
            mut bytes,
            mut chunks,
            open,
        } = done;
        bytes.clear();
        chunks.clear();
        let mut out = lock(&self.shared.spare_out);
        if out.len() < SPARE {
            out.push(bytes);
        }
        drop(out);
        // Pending entries of its chunks may still hold the raw buffers.
        if let Ok(mut open) = Arc::try_unwrap(open) {
            {
                let mut bufs = lock(&self.shared.spare_bufs);
                let room = SPARE_BUFS.saturating_sub(bufs.len());
                bufs.extend(open.drain(..).take(room));
            }
            open.clear();
            let mut spare = lock(&self.shared.spare_jobs);
            if spare.len() < SPARE {
                spare.push(SealJobs {
                    bufs: open,
                    jobs: chunks,
                    spare: Vec::new(),
                });
            }
        }
    }

    /// The sealed chunks returned so far.
    pub(crate) fn take_done(&self) -> Vec<Sealed> {
        std::mem::take(&mut *lock(&self.shared.done))
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has sealed what it
        // holds; nothing is waiting for those chunks any more.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A returned batch: the sealed encodings back to back, and each chunk's
/// job with `at` its sealed bytes (and the open bytes it came from, for
/// [`Sealer::recycle`]).
pub(crate) struct Sealed {
    bytes: Vec<u8>,
    chunks: Vec<SealJob>,
    open: Arc<Vec<Vec<u8>>>,
}

impl Sealed {
    /// `(job, sealed bytes)` for each chunk, in the order they were cut.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&SealJob, &[u8])> {
        self.chunks
            .iter()
            .map(|job| (job, self.bytes.get(job.at.clone()).unwrap_or_default()))
    }
}

/// Seals the raw open chunk `bytes` (`head/open.rs`) into `out`
/// (appending). Should that fail (not expected: the head wrote them), `out`
/// gets a Gorilla chunk (`0x01`, which files may hold) of the samples
/// before the damage, so that a series' chunks stay whole and in order.
pub(crate) fn seal(
    enc: &mut Encoder,
    samples: &mut Vec<(i64, f64)>,
    bytes: &[u8],
    out: &mut Vec<u8>,
) {
    if open::seal_raw(enc, bytes, out).is_ok() {
        return;
    }
    samples.clear();
    let _ = open::walk(bytes, |t, v| samples.push((t, v)));
    if !samples.is_empty() {
        let mut w = ChunkWriter::new();
        for &(t, v) in samples.iter() {
            let _ = w.append(t, v);
        }
        out.extend_from_slice(&w.seal());
    }
}

fn run(rx: &mpsc::Receiver<Batch>, shared: &Shared) {
    let mut enc = Encoder::new();
    let mut samples = Vec::new();
    while let Ok((open, mut jobs)) = rx.recv() {
        let n = jobs.len();
        let mut out = lock(&shared.spare_out).pop().unwrap_or_default();
        for job in &mut jobs {
            let start = out.len();
            let bytes = open.get(job.at.start).map_or(&[][..], Vec::as_slice);
            seal(&mut enc, &mut samples, bytes, &mut out);
            job.at = start..out.len();
        }
        let done = Sealed {
            bytes: out,
            chunks: jobs,
            open,
        };
        lock(&shared.done).push(done);
        // After the push: whoever sees the count drop sees the chunks.
        shared.in_flight.fetch_sub(n, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::ChunkPolicy;
    use crate::head::series::{MemSeries, SealJobs};

    #[test]
    fn sealed_in_the_background_equals_sealed_in_place() {
        let policy = ChunkPolicy {
            max_samples: 50,
            max_span_ms: i64::MAX,
        };
        let (mut here, mut there) = (MemSeries::default(), MemSeries::default());
        let mut jobs = SealJobs::default();
        for i in 0..260i64 {
            let v = if i % 7 == 0 {
                f64::NAN
            } else {
                (i * i) as f64 * 0.5
            };
            here.append(i * 1000 + i % 3, v, &policy, 0).unwrap();
            there
                .append_deferring(9, i * 1000 + i % 3, v, &policy, 0, &mut jobs)
                .unwrap();
        }
        assert_eq!(jobs.jobs.len(), 5);
        assert!(there.sealed.is_empty(), "nothing sealed here");
        let sealer = Sealer::start().unwrap();
        // Two batches, as two commits would send them.
        let second = jobs.jobs.split_off(2);
        let bytes = Arc::new(jobs.bufs);
        assert!(sealer.send(bytes.clone(), jobs.jobs));
        assert!(sealer.send(bytes, second));
        while sealer.in_flight() > 0 {
            std::thread::yield_now();
        }
        let mut n = 0;
        for batch in sealer.take_done() {
            for (job, sealed) in batch.iter() {
                assert_eq!(job.id, 9);
                there.sealed.push(job.mint, job.maxt, sealed);
                n += 1;
            }
        }
        assert_eq!(n, 5);
        assert_eq!(here.sealed.raw(), there.sealed.raw(), "byte for byte");
        assert_eq!(here.open.bytes(), there.open.bytes());
    }

    /// Open chunks started in reused buffers (dirty, too small, large)
    /// hold what appending to a fresh one holds, and the buffers handed
    /// over are the full chunks.
    #[test]
    fn reused_buffers_start_clean() {
        let policy = ChunkPolicy {
            max_samples: 40,
            max_span_ms: i64::MAX,
        };
        let (mut here, mut there) = (MemSeries::default(), MemSeries::default());
        let mut jobs = SealJobs {
            spare: vec![
                vec![0xAA; 700],
                vec![1; 3],
                Vec::with_capacity(9000),
                vec![0x80; 20],
            ],
            ..SealJobs::default()
        };
        for i in 0..200i64 {
            let v = (i % 13) as f64 * 1.5;
            here.append(i * 15_000, v, &policy, 0).unwrap();
            there
                .append_deferring(3, i * 15_000, v, &policy, 0, &mut jobs)
                .unwrap();
            assert_eq!(here.open.bytes(), there.open.bytes(), "sample {i}");
        }
        assert_eq!(jobs.jobs.len(), 4);
        assert!(jobs.spare.is_empty(), "every spare buffer used");
        let mut enc = Encoder::new();
        let mut samples = Vec::new();
        for job in &jobs.jobs {
            let mut out = Vec::new();
            seal(&mut enc, &mut samples, &jobs.bufs[job.at.start], &mut out);
            there.sealed.push(job.mint, job.maxt, &out);
        }
        assert_eq!(here.sealed.raw(), there.sealed.raw());
    }

    #[test]
    fn bytes_that_do_not_seal_keep_what_decodes() {
        let (mut enc, mut samples, mut out) = (Encoder::new(), Vec::new(), vec![7]);
        seal(&mut enc, &mut samples, &[0x01, 0, 5, 1], &mut out);
        assert_eq!(out, [7], "nothing decodes: nothing appended");
        let mut c = crate::head::open::OpenChunk::default();
        c.append(10, 1.0).unwrap();
        c.append(20, 2.0).unwrap();
        let mut bad = c.bytes().to_vec();
        // The second sample's offset made 0: not increasing.
        bad[10 + 12..10 + 16].copy_from_slice(&[0; 4]);
        out.clear();
        seal(&mut enc, &mut samples, &bad, &mut out);
        let back: Vec<_> = crate::chunk::Chunk::new(&out)
            .unwrap()
            .iter()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, vec![(10, 1.0)]);
    }
}
