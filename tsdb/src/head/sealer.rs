//! The background sealer: re-encodes the chunks commits cut into their
//! sealed form on a thread of its own.
//!
//! Sealing a full chunk (decoding its Gorilla stream, choosing the smallest
//! layout, encoding it) was about 30 % of the appending thread's CPU on the
//! promtool workload (README, "Head"). A commit now leaves a full chunk in
//! the series' sealed buffer in its open encoding, which every reader
//! decodes, and sends a copy here ([`SealJobs`]); the sealed bytes come back
//! through [`Sealer::take_done`], and whoever next holds the state's write
//! lock (the next commit, a checkpoint) swaps them in with
//! [`SealedChunks::replace`](super::series::SealedChunks::replace), which
//! leaves a chunk alone if a deletion or truncation rewrote it meanwhile.
//! A query sees either form of a chunk, both giving the same samples; a
//! checkpoint first waits for every chunk in flight and swaps it in
//! ([`Sealer::in_flight`]), so what it saves is what sealing in place
//! would have saved, byte for byte.
//!
//! The sealed bytes are those of sealing in place: the same encoder on the
//! same samples (`tests/chunk_props.rs` pins that sealing from the samples
//! equals sealing the open chunk).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use super::series::{SealJob, SealJobs};
use crate::chunk::{Chunk, Encoder};

/// Chunks handed over and not yet returned, past which commits seal in
/// place again (a sealer starved of CPU must not let open-encoded chunks,
/// ten times their sealed size, pile up): about 1.2 MB of chunks at the
/// promtool workload's 300 bytes a chunk.
pub(crate) const MAX_IN_FLIGHT: usize = 4096;

/// What the thread and the head share.
#[derive(Default)]
struct Shared {
    /// Sealed chunks back, waiting to be swapped in.
    done: Mutex<Vec<Sealed>>,
    /// Chunks sent and not yet in `done`.
    in_flight: AtomicUsize,
}

/// The sealer thread and its queues.
pub(crate) struct Sealer {
    tx: Option<mpsc::Sender<SealJobs>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Sealer {
    /// Starts the thread; `None` if the system refuses one (then commits
    /// seal in place, as without a sealer).
    pub(crate) fn start() -> Option<Sealer> {
        let (tx, rx) = mpsc::channel::<SealJobs>();
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

    /// Hands `jobs` to the thread. Returns them if it is gone, for the
    /// caller to seal in place.
    pub(crate) fn send(&self, jobs: SealJobs) -> Result<(), SealJobs> {
        let n = jobs.jobs.len();
        self.shared.in_flight.fetch_add(n, Ordering::AcqRel);
        let Some(tx) = &self.tx else {
            self.shared.in_flight.fetch_sub(n, Ordering::AcqRel);
            return Err(jobs);
        };
        tx.send(jobs).map_err(|e| {
            self.shared.in_flight.fetch_sub(n, Ordering::AcqRel);
            e.0
        })
    }

    /// The sealed chunks returned so far.
    pub(crate) fn take_done(&self) -> Vec<Sealed> {
        std::mem::take(&mut *self.shared.done.lock().unwrap_or_else(|e| e.into_inner()))
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

/// A returned batch: the sealed encodings back to back, and for each
/// chunk its job (`at`: its sealed bytes) and the length its open encoding
/// had, which [`SealedChunks::replace`](super::series::SealedChunks::replace)
/// checks.
pub(crate) struct Sealed {
    bytes: Vec<u8>,
    chunks: Vec<(SealJob, usize)>,
}

impl Sealed {
    /// `(job, open-encoding length, sealed bytes)` for each chunk.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&SealJob, usize, &[u8])> {
        self.chunks
            .iter()
            .filter_map(|(job, open_len)| Some((job, *open_len, self.bytes.get(job.at.clone())?)))
    }
}

fn run(rx: &mpsc::Receiver<SealJobs>, shared: &Shared) {
    let mut enc = Encoder::new();
    let mut samples = Vec::new();
    while let Ok(batch) = rx.recv() {
        let n = batch.jobs.len();
        let mut out = Sealed {
            bytes: Vec::with_capacity(n * 48),
            chunks: Vec::with_capacity(n),
        };
        for job in &batch.jobs {
            samples.clear();
            let start = out.bytes.len();
            let sealed = batch
                .bytes
                .get(job.at.clone())
                .and_then(|b| Chunk::new(b).ok())
                .is_some_and(|c| c.decode_into(&mut samples).is_ok())
                && enc.encode(&samples, &mut out.bytes).is_ok();
            if !sealed {
                // Not expected (the head wrote these bytes); the chunk
                // stays in its open encoding, which reads the same.
                out.bytes.truncate(start);
                continue;
            }
            let sealed_at = start..out.bytes.len();
            out.chunks.push((
                SealJob {
                    at: sealed_at,
                    ..job.clone()
                },
                job.at.len(),
            ));
        }
        shared
            .done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(out);
        // After the push: whoever sees the count drop sees the chunks.
        shared.in_flight.fetch_sub(n, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::ChunkPolicy;
    use crate::head::series::MemSeries;

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
        // Until swapped, the open-encoded chunks read the same samples.
        let read = |s: &MemSeries| -> Vec<(i64, u64)> {
            s.sealed
                .iter()
                .flat_map(|c| Chunk::new(c.bytes).unwrap().iter().map(|r| r.unwrap()))
                .map(|(t, v)| (t, v.to_bits()))
                .collect()
        };
        assert_eq!(read(&here), read(&there));
        assert_ne!(here.sealed.raw(), there.sealed.raw());
        let sealer = Sealer::start().unwrap();
        assert!(sealer.send(jobs).is_ok());
        while sealer.in_flight() > 0 {
            std::thread::yield_now();
        }
        let mut swapped = 0;
        for batch in sealer.take_done() {
            for (job, open_len, bytes) in batch.iter() {
                assert_eq!(job.id, 9);
                swapped += usize::from(there.sealed.replace(job.mint, job.maxt, open_len, bytes));
            }
        }
        assert_eq!(swapped, 5);
        assert_eq!(here.sealed.raw(), there.sealed.raw(), "byte for byte");
        assert_eq!(here.open.bytes(), there.open.bytes());
        // A chunk rewritten meanwhile (here: already sealed) is left alone.
        let c = there.sealed.first().unwrap();
        let (mint, maxt, len) = (c.mint, c.maxt, c.bytes.len());
        assert!(!there.sealed.replace(mint, maxt, len, &[1, 2, 3]));
    }
}
