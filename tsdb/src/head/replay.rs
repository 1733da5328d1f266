//! WAL replay on open, in parallel.
//!
//! Restart time is what Prometheus users complain about most, and nearly
//! all of it is applying samples (appending them to chunks and sealing full
//! chunks), which is independent per series. So the records are read in
//! order and gathered into batches; a batch's `Samples` records are decoded
//! by all threads (each takes every n-th record), then every thread applies
//! the samples of its own shard of series (blocks of 64 consecutive ids,
//! dealt round-robin), with no lock and no allocation per sample. `Series`
//! and `Delete` records are applied in order between batches, so every
//! sample meets the head exactly as a sequential replay would.

use vigil_wal::Wal;

use super::record::{self, Record};
use super::series::MemSeries;
use super::{HeadOptions, State};
use crate::Error;

/// Samples gathered before a batch is applied: large enough that starting
/// threads is noise, small enough that the decoded batch (24 bytes a
/// sample) stays a few megabytes.
const BATCH_SAMPLES: usize = 1 << 19;

/// Below this many samples a batch is applied on the calling thread.
const PARALLEL_MIN: usize = 1 << 14;

/// Consecutive series ids per shard block.
const BLOCK: usize = 64;

/// One record's samples once decoded (`None` until its thread ran).
type Decoded = Option<Result<Vec<(u64, i64, f64)>, Error>>;

/// The record kind byte of a `Samples` record (FORMAT.md, "WAL records").
const SAMPLES_KIND: u8 = 2;

/// Replays the WAL from `from` into `state`.
pub(super) fn replay(
    wal: &Wal,
    from: u64,
    state: &mut State,
    opts: &HeadOptions,
) -> Result<(), Error> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let mut batch = Vec::new();
    let mut batch_samples = 0usize;
    for rec in wal.reader(from.max(wal.oldest_lsn()))? {
        let (lsn, bytes) = rec?;
        if bytes.first() == Some(&SAMPLES_KIND) {
            // A count that is wrong only sizes the batch; decode checks it.
            batch_samples += bytes.len() / 10;
            batch.push((lsn, bytes));
            if batch_samples >= BATCH_SAMPLES {
                apply_samples(&batch, state, opts, threads)?;
                batch.clear();
                batch_samples = 0;
            }
            continue;
        }
        apply_samples(&batch, state, opts, threads)?;
        batch.clear();
        batch_samples = 0;
        match record::decode(&bytes, lsn)? {
            Record::Series(list) => {
                for (id, labels) in list {
                    if !state.create(id, labels) {
                        return Err(Error::BadRecord {
                            lsn,
                            offset: 0,
                            what: "series id far beyond the ids in use",
                        });
                    }
                }
            }
            Record::Delete(list) => {
                for (id, mint, maxt) in list {
                    if let Some(s) = state.series.get_mut(id) {
                        s.delete(mint, maxt);
                    }
                }
            }
            Record::Samples(_) => unreachable_samples(lsn)?,
        }
    }
    apply_samples(&batch, state, opts, threads)
}

/// A `Samples` record that did not start with its kind byte cannot decode
/// as one; should the codec ever disagree, say so rather than drop it.
fn unreachable_samples(lsn: u64) -> Result<(), Error> {
    Err(Error::BadRecord {
        lsn,
        offset: 0,
        what: "samples record with an unexpected kind byte",
    })
}

/// Decodes and applies a batch of `Samples` records.
fn apply_samples<B: AsRef<[u8]> + Sync>(
    batch: &[(u64, B)],
    state: &mut State,
    opts: &HeadOptions,
    threads: usize,
) -> Result<(), Error> {
    if batch.is_empty() {
        return Ok(());
    }
    let approx: usize = batch.iter().map(|(_, b)| b.as_ref().len() / 10).sum();
    if threads < 2 || approx < PARALLEL_MIN {
        for (lsn, bytes) in batch {
            let Record::Samples(list) = record::decode(bytes.as_ref(), *lsn)? else {
                return unreachable_samples(*lsn);
            };
            let mut shard = Shard::whole(&mut state.series.slots);
            shard.apply(*lsn, &list, opts)?;
        }
        return Ok(());
    }
    // Decode: thread k takes records k, k + n, ...
    let mut decoded: Vec<Decoded> = (0..batch.len()).map(|_| None).collect();
    std::thread::scope(|sc| {
        let mut outs: Vec<Vec<&mut Decoded>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, slot) in decoded.iter_mut().enumerate() {
            outs[i % threads].push(slot);
        }
        for (k, out) in outs.into_iter().enumerate() {
            sc.spawn(move || {
                for (j, slot) in out.into_iter().enumerate() {
                    let (lsn, bytes) = &batch[k + j * threads];
                    *slot = Some(match record::decode(bytes.as_ref(), *lsn) {
                        Ok(Record::Samples(list)) => Ok(list),
                        Ok(_) => unreachable_samples(*lsn).map(|()| Vec::new()),
                        Err(e) => Err(e),
                    });
                }
            });
        }
    });
    let mut lists = Vec::with_capacity(batch.len());
    for (d, (lsn, _)) in decoded.into_iter().zip(batch) {
        match d {
            Some(Ok(list)) => lists.push((*lsn, list)),
            Some(Err(e)) => return Err(e),
            None => return unreachable_samples(*lsn),
        }
    }
    // Apply: thread k owns the blocks of ids b with b % n == k.
    let mut shards: Vec<Shard<'_>> = (0..threads).map(|_| Shard::empty(threads)).collect();
    for (b, block) in state.series.slots.chunks_mut(BLOCK).enumerate() {
        shards[b % threads].blocks.push(block);
    }
    let results: Vec<Result<(), Error>> = std::thread::scope(|sc| {
        let handles: Vec<_> = shards
            .into_iter()
            .enumerate()
            .map(|(k, mut shard)| {
                let lists = &lists;
                sc.spawn(move || {
                    for (lsn, list) in lists {
                        shard.apply_owned(k, *lsn, list, opts)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or(Err(Error::BadRecord {
                    lsn: 0,
                    offset: 0,
                    what: "a replay thread panicked",
                }))
            })
            .collect()
    });
    results.into_iter().collect()
}

/// The series one replay thread may touch.
struct Shard<'a> {
    /// Its blocks of `BLOCK` slots, in id order.
    blocks: Vec<&'a mut [Option<MemSeries>]>,
    /// Threads sharing the slots (1: this shard has them all).
    threads: usize,
}

impl<'a> Shard<'a> {
    fn empty(threads: usize) -> Self {
        Shard {
            blocks: Vec::new(),
            threads,
        }
    }

    fn whole(slots: &'a mut [Option<MemSeries>]) -> Self {
        Shard {
            blocks: slots.chunks_mut(BLOCK).collect(),
            threads: 1,
        }
    }

    fn apply(
        &mut self,
        lsn: u64,
        list: &[(u64, i64, f64)],
        opts: &HeadOptions,
    ) -> Result<(), Error> {
        self.apply_owned(0, lsn, list, opts)
    }

    /// Applies the samples of `list` whose series this shard (number `k`)
    /// owns.
    fn apply_owned(
        &mut self,
        k: usize,
        lsn: u64,
        list: &[(u64, i64, f64)],
        opts: &HeadOptions,
    ) -> Result<(), Error> {
        let missing = || Error::BadRecord {
            lsn,
            offset: 0,
            what: "sample of a series no record created",
        };
        for &(id, t, v) in list {
            let Ok(i) = usize::try_from(id) else {
                return Err(missing());
            };
            let b = i / BLOCK;
            if b % self.threads != k {
                continue;
            }
            let s = self
                .blocks
                .get_mut(b / self.threads)
                .and_then(|blk| blk.get_mut(i % BLOCK))
                .and_then(Option::as_mut)
                .ok_or_else(missing)?;
            // Samples refused when first committed were refused then too;
            // the same rules give the same result.
            let _ = s.append(t, v, &opts.chunk_policy, opts.out_of_order_window_ms);
        }
        Ok(())
    }
}
