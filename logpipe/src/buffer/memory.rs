//! The in-memory queue in front of one output.

use super::Chunk;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Chunks waiting for one output, oldest first. Its size is bounded by the
/// inputs' `Mem_Buf_Limit` (they wait while their chunks hold too much), so
/// the queue itself never refuses a chunk.
#[derive(Debug, Default)]
pub struct MemQueue {
    state: Mutex<State>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct State {
    chunks: VecDeque<Chunk>,
    bytes: usize,
    oldest: Option<Instant>,
    closed: bool,
}

/// Why [`MemQueue::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// Enough bytes, or the oldest chunk waited a whole flush interval.
    Flush,
    /// Nothing to do yet (the timeout passed).
    Idle,
    /// Closed: take what is left and finish.
    Closed,
}

impl MemQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a chunk.
    pub fn push(&self, chunk: Chunk) {
        let mut st = self.state.lock();
        st.bytes += chunk.bytes;
        st.oldest.get_or_insert_with(Instant::now);
        st.chunks.push_back(chunk);
        drop(st);
        self.cv.notify_one();
    }

    /// Waits until `min_bytes` are queued, the oldest chunk is `interval`
    /// old, the queue is closed, or `timeout` passes.
    pub fn wait(&self, min_bytes: usize, interval: Duration, timeout: Duration) -> Ready {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock();
        loop {
            if st.closed {
                return Ready::Closed;
            }
            let now = Instant::now();
            let due = st.oldest.map(|t| t + interval);
            if st.bytes >= min_bytes.max(1) || due.is_some_and(|d| d <= now) {
                return Ready::Flush;
            }
            if now >= deadline {
                return Ready::Idle;
            }
            let until = due.map_or(deadline, |d| d.min(deadline));
            self.cv.wait_until(&mut st, until);
        }
    }

    /// Takes chunks from the front up to about `max_bytes` (at least one).
    pub fn take(&self, max_bytes: usize, out: &mut Vec<Chunk>) {
        let mut st = self.state.lock();
        let mut taken = 0;
        while let Some(c) = st.chunks.front() {
            if taken > 0 && taken + c.bytes > max_bytes {
                break;
            }
            taken += c.bytes;
            if let Some(c) = st.chunks.pop_front() {
                out.push(c);
            }
        }
        st.bytes -= taken;
        if st.chunks.is_empty() {
            st.oldest = None;
        }
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.state.lock().bytes
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.state.lock().chunks.is_empty()
    }

    /// Marks the queue closed and wakes the waiter.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_on_size_or_age() {
        let q = MemQueue::new();
        let ms = Duration::from_millis;
        assert_eq!(q.wait(10, ms(30), ms(5)), Ready::Idle);
        q.push(Chunk::new(vec![], 4, None));
        let t = Instant::now();
        assert_eq!(q.wait(10, ms(30), ms(1000)), Ready::Flush);
        assert!(t.elapsed() >= ms(25));
        q.push(Chunk::new(vec![], 8, None));
        assert_eq!(q.wait(10, Duration::from_secs(60), ms(1000)), Ready::Flush);
        let mut out = Vec::new();
        q.take(5, &mut out);
        assert_eq!(out.len(), 1);
        q.take(5, &mut out);
        assert_eq!(out.len(), 2);
        assert!(q.is_empty());
        q.close();
        assert_eq!(q.wait(10, ms(30), ms(1000)), Ready::Closed);
    }
}
