//! Between the inputs and the outputs: chunks of records, their
//! acknowledgement back to the input, and the per-output queues (in memory,
//! or on disk through vigil-wal).
//!
//! Every chunk an input hands over is registered with that input's
//! [`AckTracker`], which returns an [`AckToken`]. Each output that takes part
//! of the chunk holds a clone of the token inside a [`Chunk`]; the output
//! calls [`Chunk::ack`] once the destination took the records (or, with a
//! disk buffer, once they are durable in the buffer). When the last clone is
//! gone the tracker marks the chunk done, and the input's checkpoint advances
//! to the end of the longest run of done chunks from the oldest: chunks may
//! complete out of order (two outputs, retries), the checkpoint never skips
//! one that is not done. A chunk dropped without `ack` (shutdown before
//! delivery) is abandoned: nothing at or after it is ever checkpointed, so a
//! restart reads it again.
//!
//! The tracker also counts the bytes an input has in memory and makes the
//! input wait while they exceed its `Mem_Buf_Limit`: that is the input
//! pausing, and nothing is dropped.

mod codec;
pub mod disk;
pub mod memory;

pub use disk::DiskQueue;
pub use memory::MemQueue;

use crate::record::Record;
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Per input: which chunks are still out, which byte offsets are
/// acknowledged, and how many bytes are held in memory.
#[derive(Debug)]
pub struct AckTracker {
    state: Mutex<AckState>,
    cv: Condvar,
    limit: usize,
}

#[derive(Debug, Default)]
struct AckState {
    /// Sequence number of `pending[0]`.
    head: u64,
    pending: VecDeque<Slot>,
    committed: HashMap<u64, u64>,
    inflight: usize,
    stopping: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SlotState {
    Out,
    Done,
    Abandoned,
}

#[derive(Debug)]
struct Slot {
    stream: u64,
    end: u64,
    state: SlotState,
}

impl AckTracker {
    /// A tracker that pauses its input while more than `limit` bytes are
    /// held (`usize::MAX`: never).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(AckTracker {
            state: Mutex::new(AckState::default()),
            cv: Condvar::new(),
            limit: limit.max(1),
        })
    }

    /// Registers a chunk of `bytes` bytes from `stream` ending at byte `end`,
    /// first waiting while the input holds more than its limit. `None` when
    /// the pipeline is stopping (the chunk is not taken; its input will read
    /// it again after a restart if it checkpoints).
    pub fn register(
        self: &Arc<Self>,
        stream: u64,
        end: u64,
        bytes: usize,
    ) -> Option<Arc<AckToken>> {
        let mut st = self.state.lock();
        // Over the limit after this chunk: wait (unless nothing is held,
        // so that a chunk larger than the limit still passes).
        while st.inflight > 0 && st.inflight + bytes > self.limit && !st.stopping {
            self.cv.wait_for(&mut st, Duration::from_millis(200));
        }
        if st.stopping {
            return None;
        }
        st.inflight += bytes;
        let seq = st.head + st.pending.len() as u64;
        st.pending.push_back(Slot {
            stream,
            end,
            state: SlotState::Out,
        });
        Some(Arc::new(AckToken {
            tracker: self.clone(),
            seq,
            bytes,
            abandoned: AtomicBool::new(false),
        }))
    }

    /// Whether the input is over its limit now (it would wait in
    /// [`AckTracker::register`]).
    pub fn is_paused(&self) -> bool {
        self.state.lock().inflight >= self.limit
    }

    /// Bytes held in memory by this input's chunks.
    pub fn inflight_bytes(&self) -> usize {
        self.state.lock().inflight
    }

    /// Chunks registered and not yet acknowledged (abandoned ones included).
    pub fn outstanding(&self) -> usize {
        self.state.lock().pending.len()
    }

    /// Sets the acknowledged offset of a stream that starts (or resumes) at
    /// `offset`.
    pub fn set_committed(&self, stream: u64, offset: u64) {
        self.state.lock().committed.insert(stream, offset);
    }

    /// The acknowledged offset of `stream`.
    pub fn committed(&self, stream: u64) -> Option<u64> {
        self.state.lock().committed.get(&stream).copied()
    }

    /// Forgets a stream that was closed and is fully acknowledged.
    pub fn forget(&self, stream: u64) {
        self.state.lock().committed.remove(&stream);
    }

    /// Wakes a paused input and makes further registrations fail.
    pub fn stop(&self) {
        self.state.lock().stopping = true;
        self.cv.notify_all();
    }

    /// Waits until every registered chunk is acknowledged or abandoned, or
    /// `timeout` passes; true when none is out.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut st = self.state.lock();
        loop {
            if st.pending.iter().all(|s| s.state != SlotState::Out) {
                return true;
            }
            if self.cv.wait_until(&mut st, deadline).timed_out() {
                return st.pending.iter().all(|s| s.state != SlotState::Out);
            }
        }
    }

    fn finish(&self, seq: u64, bytes: usize, abandoned: bool) {
        let mut st = self.state.lock();
        st.inflight -= bytes;
        let idx = (seq - st.head) as usize;
        if let Some(slot) = st.pending.get_mut(idx) {
            slot.state = if abandoned {
                SlotState::Abandoned
            } else {
                SlotState::Done
            };
        }
        while st
            .pending
            .front()
            .is_some_and(|s| s.state == SlotState::Done)
        {
            let Some(slot) = st.pending.pop_front() else {
                break;
            };
            st.head += 1;
            st.committed.insert(slot.stream, slot.end);
        }
        drop(st);
        self.cv.notify_all();
    }
}

/// A registered chunk; the chunk is done when the last clone drops.
#[derive(Debug)]
pub struct AckToken {
    tracker: Arc<AckTracker>,
    seq: u64,
    bytes: usize,
    abandoned: AtomicBool,
}

impl Drop for AckToken {
    fn drop(&mut self) {
        self.tracker
            .finish(self.seq, self.bytes, self.abandoned.load(Ordering::Relaxed));
    }
}

/// Records on their way to one output, with the acknowledgement they owe.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The records.
    pub records: Vec<Record>,
    /// Their approximate size in memory (the raw bytes read).
    pub bytes: usize,
    token: Option<Arc<AckToken>>,
}

impl Chunk {
    /// A chunk that owes `token` (none for records nobody waits for).
    pub fn new(records: Vec<Record>, bytes: usize, token: Option<Arc<AckToken>>) -> Self {
        Chunk {
            records,
            bytes,
            token,
        }
    }

    /// This output is done with the records: they were delivered, made
    /// durable, or given up on by the retry policy.
    pub fn ack(mut self) {
        self.token.take();
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(t) = self.token.take() {
            t.abandoned.store(true, Ordering::Relaxed);
        }
    }
}

/// Where an output's records wait: memory or disk.
#[derive(Debug)]
pub enum Buffer {
    /// `storage.type memory` (the default).
    Memory(MemQueue),
    /// `storage.type filesystem`.
    Disk(Box<DiskQueue>),
}

impl Buffer {
    /// Hands a chunk to the buffer. A memory queue keeps it (the output acks
    /// it after delivery); a disk queue writes it durably and acks it at
    /// once, waiting first while the disk buffer is over its size limit.
    pub fn push(&self, chunk: Chunk) -> crate::Result<()> {
        match self {
            Buffer::Memory(q) => {
                q.push(chunk);
                Ok(())
            }
            Buffer::Disk(q) => q.push(chunk),
        }
    }

    /// Stops accepting: wakes anyone waiting in `push` or for records.
    pub fn close(&self) {
        match self {
            Buffer::Memory(q) => q.close(),
            Buffer::Disk(q) => q.close(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_is_the_lowest_contiguous_acknowledged_end() {
        let t = AckTracker::new(usize::MAX);
        t.set_committed(7, 0);
        let a = t.register(7, 100, 10).unwrap();
        let b = t.register(7, 200, 10).unwrap();
        let c = t.register(7, 300, 10).unwrap();
        drop(c);
        assert_eq!(t.committed(7), Some(0));
        drop(a);
        assert_eq!(t.committed(7), Some(100));
        drop(b);
        assert_eq!(t.committed(7), Some(300));
        assert_eq!(t.inflight_bytes(), 0);
    }

    #[test]
    fn every_output_must_ack_and_an_abandoned_chunk_blocks_the_checkpoint() {
        let t = AckTracker::new(usize::MAX);
        let tok = t.register(1, 50, 5).unwrap();
        let one = Chunk::new(vec![], 5, Some(tok.clone()));
        let two = Chunk::new(vec![], 5, Some(tok));
        one.ack();
        assert_eq!(t.committed(1), None);
        two.ack();
        assert_eq!(t.committed(1), Some(50));

        let tok = t.register(1, 80, 5).unwrap();
        let later = t.register(1, 90, 5).unwrap();
        drop(Chunk::new(vec![], 5, Some(tok)));
        drop(later);
        assert_eq!(t.committed(1), Some(50));
        assert_eq!(t.outstanding(), 2);
        assert!(t.wait_idle(Duration::from_millis(10)));
    }

    #[test]
    fn over_the_limit_the_input_waits_until_memory_is_released() {
        let t = AckTracker::new(100);
        let a = t.register(1, 100, 150).unwrap();
        assert!(t.is_paused());
        let t2 = t.clone();
        let waiter = std::thread::spawn(move || t2.register(1, 200, 10).is_some());
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished());
        drop(a);
        assert!(waiter.join().unwrap());
        let t3 = t.clone();
        let _held = t.register(1, 300, 200).unwrap();
        let stopped = std::thread::spawn(move || t3.register(1, 400, 1).is_none());
        std::thread::sleep(Duration::from_millis(20));
        t.stop();
        assert!(stopped.join().unwrap());
    }
}
