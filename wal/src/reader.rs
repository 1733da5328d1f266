//! Readers: iterate durable records from any sequence number, and follow the
//! log as it grows.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::Lsn;
use crate::error::{Error, Result};
use crate::format::{self, Frame, SEGMENT_HEADER};
use crate::wal::Shared;

/// Iterates `(Lsn, Bytes)` pairs in order, from a starting sequence number,
/// over the records that are durable. Payloads borrow the segment's memory
/// map: no copy is made.
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
    /// The first LSN of the next segment, if one exists: no record here may
    /// reach it (unverified sealed segments are checked as they are read).
    end_lsn: Option<Lsn>,
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
        let (info, limit, sealed, end_lsn) = {
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
            let end_lsn = st.segments.get(idx + 1).map(|s| s.first_lsn);
            let (limit, sealed) = match info.sealed_len {
                Some(len) => (len, true),
                None if info.first_lsn == st.durable_seg => (st.durable_off, false),
                None => (SEGMENT_HEADER as u64, false),
            };
            (info, limit, sealed, end_lsn)
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
            end_lsn,
        });
        Ok(true)
    }

    /// Look at the log's state again once the cursor has read all it knew
    /// of. Returns false when there is nothing more to read for now.
    fn refresh(&mut self) -> Result<bool> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(false);
        };
        let (limit, sealed, next) = {
            let st = self.shared.state.lock();
            let info = st.segments.iter().find(|s| s.first_lsn == cur.first_lsn);
            let next = st
                .segments
                .iter()
                .find(|s| s.first_lsn > cur.first_lsn)
                .map(|s| s.first_lsn);
            match info {
                Some(s) => match s.sealed_len {
                    Some(len) => (len as usize, true, next),
                    None if s.first_lsn == st.durable_seg => (st.durable_off as usize, false, next),
                    None => (SEGMENT_HEADER, false, next),
                },
                // Truncated away while we read it: what we mapped is all there is.
                None => (cur.limit, true, next),
            }
        };
        cur.sealed = sealed;
        cur.end_lsn = next;
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
            if let Some(next_first) = next {
                // Records lost to a failed fsync leave a gap between
                // segments; skip over it.
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
            match format::read_frame(&cur.map[..cur.limit], cur.pos, cur.lsn) {
                Frame::Record { lsn, .. } if cur.end_lsn.is_some_and(|e| lsn >= e) => {
                    return Err(Error::Corrupt {
                        segment: cur.path.clone(),
                        offset: cur.pos as u64,
                        reason: format!(
                            "record {lsn} overlaps the next segment, which starts at {}",
                            cur.end_lsn.unwrap_or_default()
                        ),
                    });
                }
                Frame::Record {
                    lsn, start, end, ..
                } => {
                    cur.pos = end;
                    cur.lsn += 1;
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
