//! Readers: iterate durable records from any sequence number, and follow the
//! log as it grows.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::Lsn;
use crate::error::{Error, Result};
use crate::format::{self, Frame, SEGMENT_HEADER};
use crate::wal::{Shared, verify_sealed_frames};

/// A reader verifies a sealed segment's frames this many bytes (rounded up
/// to a batch) ahead of the records it returns: the records of a batch are
/// returned only once the whole batch is known to be valid, and the bytes
/// just checksummed are still in the cache when the caller reads them.
const VERIFY_WINDOW: usize = 512 << 10;

/// Iterates `(Lsn, Bytes)` pairs in order, from a starting sequence number,
/// over the records that are durable. Payloads borrow the segment's memory
/// map: no copy is made.
///
/// A reader checks every record it returns, when it reads it, so damage
/// that happens while the log is open never reaches the caller as data. In
/// a sealed segment it checks a window of whole batches ahead of the
/// records it returns, with every check `Wal::open` makes of a sealed
/// segment under `Options::verify_sealed` (the frames, a batch cut short at
/// the segment's end, the sequence numbers where one segment meets the
/// next): so with `verify_sealed` off (the default) each sealed record is
/// checked once, here, and damage is the same [`Error::Corrupt`], naming the
/// same segment and offset, that `open` would have given, returned after
/// every record of the complete batches before it and again on every later
/// call. In the newest segment, which appenders extend, it checks each
/// record as it reads it.
///
/// As an [`Iterator`] it stops when it has caught up with the durable end;
/// calling `next` again later yields what was appended since. For a consumer
/// that tails the log, [`Reader::next_timeout`] waits for new records.
pub struct Reader {
    shared: Arc<Shared>,
    /// The next sequence number to return.
    want: Lsn,
    cur: Option<Cursor>,
}

struct Cursor {
    first_lsn: Lsn,
    path: PathBuf,
    map: Bytes,
    /// Byte offset of the next frame.
    pos: usize,
    /// Sequence number the frame at `pos` must carry.
    lsn: Lsn,
    /// Bytes below this are durable and may be read.
    limit: usize,
    sealed: bool,
    /// This reader has just verified the frames below this offset (a batch
    /// boundary): they are returned without checking them again.
    checked: usize,
    /// Damage found at or after `checked` in a sealed segment (offset,
    /// reason).
    damage: Option<(u64, String)>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("next_lsn", &self.want)
            .finish()
    }
}

impl Reader {
    pub(crate) fn new(shared: Arc<Shared>, from: Lsn) -> Result<Reader> {
        let oldest = shared.state.lock().segments[0].first_lsn;
        let want = if from == 0 { oldest } else { from };
        if want < oldest {
            return Err(Error::Truncated {
                requested: want,
                oldest,
            });
        }
        Ok(Reader {
            shared,
            want,
            cur: None,
        })
    }

    /// The sequence number of the next record this reader will return.
    pub fn next_lsn(&self) -> Lsn {
        self.want
    }

    /// The next durable record, waiting up to `timeout` for one to be
    /// appended. `None` when the timeout passes with nothing new (or the log
    /// was closed).
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<(Lsn, Bytes)>> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.shared.state.lock().durable_lsn;
            match self.try_next() {
                Ok(Some(r)) => return Some(Ok(r)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            let sh = self.shared.clone();
            let mut st = sh.state.lock();
            if st.durable_lsn != seen {
                continue;
            }
            if st.closed {
                return None;
            }
            st.reader_waiters += 1;
            let timed_out = sh.cv_readers.wait_until(&mut st, deadline).timed_out();
            st.reader_waiters -= 1;
            if timed_out {
                drop(st);
                return self.try_next().transpose();
            }
        }
    }

    fn open_segment(&mut self) -> Result<bool> {
        let (info, limit, sealed) = {
            let st = self.shared.state.lock();
            let oldest = st.segments[0].first_lsn;
            if self.want < oldest {
                return Err(Error::Truncated {
                    requested: self.want,
                    oldest,
                });
            }
            let idx = st.segments.partition_point(|s| s.first_lsn <= self.want) - 1;
            let info = st.segments[idx].clone();
            let (limit, sealed) = match info.sealed_len {
                Some(len) => (len, true),
                None if info.first_lsn == st.durable_seg => (st.durable_off, false),
                None => (SEGMENT_HEADER as u64, false),
            };
            (info, limit, sealed)
        };
        let map = self
            .shared
            .storage
            .map(&info.path, limit)
            .map_err(|e| Error::io("map", &info.path, e))?;
        self.cur = Some(Cursor {
            first_lsn: info.first_lsn,
            path: info.path,
            limit: map.len(),
            map,
            pos: SEGMENT_HEADER,
            lsn: info.first_lsn,
            sealed,
            checked: SEGMENT_HEADER,
            damage: None,
        });
        Ok(true)
    }

    /// Look at the log's state again once the cursor has read all it knew
    /// of. Returns false when there is nothing more to read for now.
    fn refresh(&mut self) -> Result<bool> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(false);
        };
        let (limit, sealed, next, listed) = {
            let st = self.shared.state.lock();
            let info = st.segments.iter().find(|s| s.first_lsn == cur.first_lsn);
            let next = st
                .segments
                .iter()
                .find(|s| s.first_lsn > cur.first_lsn)
                .map(|s| (s.first_lsn, s.gap_before));
            match info {
                Some(s) => match s.sealed_len {
                    Some(len) => (len as usize, true, next, true),
                    None if s.first_lsn == st.durable_seg => {
                        (st.durable_off as usize, false, next, true)
                    }
                    None => (SEGMENT_HEADER, false, next, true),
                },
                // Truncated away while we read it: what we mapped is all there is.
                None => (cur.limit, true, next, false),
            }
        };
        cur.sealed = sealed;
        if limit > cur.pos {
            if limit > cur.map.len() {
                cur.map = self
                    .shared
                    .storage
                    .map(&cur.path, limit as u64)
                    .map_err(|e| Error::io("map", &cur.path, e))?;
            }
            cur.limit = limit;
            return Ok(true);
        }
        if sealed {
            if let Some((next_first, gap_before)) = next {
                // The next segment starts right after this one's last
                // record, or says that records before it were lost (a
                // failed fsync, a snapshot beyond the log); anything else
                // means this segment lost its tail, as `Wal::open` reports
                // it. Skip over an allowed gap.
                let n = cur.lsn;
                if listed && next_first != n && (next_first < n || !gap_before) {
                    return Err(Error::Corrupt {
                        segment: cur.path.clone(),
                        offset: cur.pos as u64,
                        reason: format!(
                            "segment ends before record {n}, but the next segment starts at {next_first}"
                        ),
                    });
                }
                self.want = self.want.max(next_first);
                self.cur = None;
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn try_next(&mut self) -> Result<Option<(Lsn, Bytes)>> {
        loop {
            if self.cur.is_none() && !self.open_segment()? {
                return Ok(None);
            }
            let cur = self.cur.as_mut().expect("cursor opened above");
            if cur.pos >= cur.limit {
                if self.refresh()? {
                    continue;
                }
                return Ok(None);
            }
            let trusted = cur.pos < cur.checked;
            if !trusted && cur.sealed {
                if let Some((offset, reason)) = &cur.damage {
                    return Err(Error::Corrupt {
                        segment: cur.path.clone(),
                        offset: *offset,
                        reason: reason.clone(),
                    });
                }
                // `checked` is the start of the batch `pos` is in.
                let v = verify_sealed_frames(
                    &cur.map[..cur.limit],
                    cur.pos,
                    cur.lsn,
                    cur.checked,
                    VERIFY_WINDOW,
                );
                cur.checked = v.end.max(cur.checked);
                cur.damage = v.damage;
                continue;
            }
            match format::read_frame_checked(&cur.map[..cur.limit], cur.pos, cur.lsn, !trusted) {
                Frame::Record {
                    lsn,
                    start,
                    end,
                    continues,
                } => {
                    cur.pos = end;
                    cur.lsn += 1;
                    if !trusted && !continues {
                        // In the active segment, each frame checked as it
                        // is read: a batch boundary for the case that the
                        // segment is sealed while this reader is in it.
                        cur.checked = end;
                    }
                    if lsn < self.want {
                        continue;
                    }
                    self.want = lsn + 1;
                    return Ok(Some((lsn, cur.map.slice(start..end))));
                }
                Frame::End => {
                    return Err(Error::Corrupt {
                        segment: cur.path.clone(),
                        offset: cur.pos as u64,
                        reason: "zeros where durable records should be".into(),
                    });
                }
                Frame::Bad(reason) => {
                    return Err(Error::Corrupt {
                        segment: cur.path.clone(),
                        offset: cur.pos as u64,
                        reason: reason.into(),
                    });
                }
            }
        }
    }
}

impl Iterator for Reader {
    type Item = Result<(Lsn, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.try_next().transpose()
    }
}
