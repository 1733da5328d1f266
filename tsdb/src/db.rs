//! The store: the head plus the blocks cut from it, with compaction and
//! retention, read through one querier that merges them.
//!
//! Layout under the store's directory: `wal/` (the head's WAL and
//! checkpoints) and `blocks/` (one directory per block).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::Error;
use crate::block::plan::{PlanBlock, compaction_ranges, plan};
use crate::block::{
    Block, BlockSeries, Samples, SeriesData, delete_block, open_blocks, write_block,
    write_block_data,
};
use crate::head::{self, Head, HeadOptions};
use crate::index::Matcher;
use crate::labels::Labels;

/// How the store behaves.
#[derive(Clone)]
pub struct DbOptions {
    /// The head's options.
    pub head: HeadOptions,
    /// Time range of a block cut from the head (Prometheus: 2 h).
    pub block_range_ms: i64,
    /// Delete blocks whose newest sample is older than this before the
    /// newest data (`--storage.tsdb.retention.time`); `None` keeps them.
    pub retention_ms: Option<i64>,
    /// Delete the oldest blocks while the blocks' files take more bytes than
    /// this (`--storage.tsdb.retention.size`); `None` for no limit.
    pub retention_bytes: Option<u64>,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            head: HeadOptions::default(),
            block_range_ms: 2 * 3_600_000,
            retention_ms: Some(15 * 24 * 3_600_000),
            retention_bytes: None,
        }
    }
}

/// A store on disk.
///
/// ```
/// use vigil_tsdb::db::{Db, DbOptions};
/// use vigil_tsdb::index::Matcher;
/// use vigil_tsdb::labels::Labels;
///
/// let dir = std::env::temp_dir().join(format!("vigil-db-doc-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let db = Db::open(&dir, DbOptions { block_range_ms: 1000, ..DbOptions::default() })?;
/// let up = Labels::new([("__name__", "up")])?;
/// let mut app = db.head().appender();
/// for t in 0..5 {
///     app.append(&up, t * 500, 1.0)?;
/// }
/// app.commit()?;
/// assert_eq!(db.cut_blocks()?, 2); // [0, 1000) and [1000, 2000) go to disk
/// let got = db.select(&[Matcher::equal("__name__", "up")], 0, 10_000)?;
/// assert_eq!(got[0].1.len(), 5);
/// # drop(db); std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), vigil_tsdb::Error>(())
/// ```
pub struct Db {
    dir: PathBuf,
    opts: DbOptions,
    head: Head,
    /// Shared with the series of running queries, which keep a block's
    /// mapping alive after compaction or retention removes it.
    blocks: RwLock<Vec<Arc<Block>>>,
    damaged: Vec<(PathBuf, Error)>,
    /// Held by each merge, so two threads compacting at once cannot both
    /// merge the same sources (the second would write a duplicate block and
    /// then fail to delete sources already gone).
    merging: parking_lot::Mutex<()>,
}

impl Db {
    /// Opens (or creates) the store in `dir`: the head from its checkpoint
    /// and WAL, every block that opens. Blocks that do not open are listed by
    /// [`Db::damaged_blocks`] and left on disk; the others are served.
    pub fn open(dir: impl AsRef<Path>, opts: DbOptions) -> Result<Db, Error> {
        let dir = dir.as_ref().to_path_buf();
        let head = Head::open(dir.join("wal"), opts.head.clone())?;
        let (blocks, damaged) = open_blocks(&dir.join("blocks"))?;
        if let Some(end) = blocks.iter().map(|b| b.meta().maxt).max() {
            head.set_min_valid_time(end);
        }
        Ok(Db {
            dir,
            opts,
            head,
            blocks: RwLock::new(blocks.into_iter().map(Arc::new).collect()),
            damaged,
            merging: parking_lot::Mutex::new(()),
        })
    }

    /// The head, to append to.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Blocks that failed to open, with why.
    pub fn damaged_blocks(&self) -> &[(PathBuf, Error)] {
        &self.damaged
    }

    /// The open blocks' time ranges, oldest first.
    pub fn block_ranges(&self) -> Vec<(i64, i64)> {
        self.blocks
            .read()
            .iter()
            .map(|b| (b.meta().mint, b.meta().maxt))
            .collect()
    }

    /// Writes every whole block range the head has moved past to disk (all
    /// ranges that end at or before the start of the range holding the
    /// head's newest sample), drops them from the head and checkpoints it.
    /// Returns how many blocks were written.
    pub fn cut_blocks(&self) -> Result<usize, Error> {
        let range = self.opts.block_range_ms.max(1);
        let Some((lo, hi)) = self.head.time_range() else {
            return Ok(0);
        };
        // Ranges already on disk are not cut again (chunks that straddled
        // the last cut stay in the head and would otherwise come back).
        let done = self.blocks.read().iter().map(|b| b.meta().maxt).max();
        let first = done.map_or(lo, |d| lo.max(d)).div_euclid(range) * range;
        let current = hi.div_euclid(range) * range;
        let mut written = 0;
        let mut start = first;
        while start < current {
            let end = start + range;
            let series: Vec<(Labels, Samples)> = self
                .head
                .querier(start, end - 1)
                .select(&[])
                .iter()
                .map(|s| (s.labels.clone(), s.samples().collect::<Result<Vec<_>, _>>()))
                .map(|(l, r)| r.map(|v| (l, v)))
                .collect::<Result<_, _>>()?;
            if series.iter().any(|(_, v)| !v.is_empty()) {
                let path = write_block(&self.dir.join("blocks"), start, end, series)?;
                let block = Block::open(&path)?;
                self.blocks.write().push(Arc::new(block));
                written += 1;
            }
            start = end;
        }
        if written > 0 || current > first {
            self.head.truncate_before(current);
            self.head.gc_series();
            self.head.checkpoint()?;
            self.blocks
                .write()
                .sort_by_key(|b| (b.meta().mint, b.meta().maxt));
        }
        Ok(written)
    }

    /// Merges the `n` oldest blocks into one (their series and samples, with
    /// duplicates dropped), then deletes them. A crash between the two leaves
    /// both, which readers deduplicate and [`Db::compact`] merges first.
    pub fn compact_oldest(&self, n: usize) -> Result<bool, Error> {
        let dirs: Vec<PathBuf> = {
            let blocks = self.blocks.read();
            if n < 2 || blocks.len() < n {
                return Ok(false);
            }
            blocks[..n].iter().map(|b| b.dir().to_path_buf()).collect()
        };
        self.merge_blocks(&dirs)
    }

    /// Compacts as Prometheus's leveled compactor does, until the planner
    /// ([`crate::block::plan`]) has nothing left: overlapping blocks merged
    /// first, then blocks merged into ranges of 3×, 9×, … the block range
    /// (up to a tenth of the retention time or 31 days), then big blocks
    /// whose tombstones name more than 5 % of their series rewritten without
    /// the deleted samples. The newest block is left alone (except to merge
    /// overlaps). Returns how many compactions ran.
    pub fn compact(&self) -> Result<usize, Error> {
        let ranges = compaction_ranges(self.opts.block_range_ms, self.opts.retention_ms);
        let mut done = 0;
        loop {
            let dirs: Vec<PathBuf> = {
                let blocks = self.blocks.read();
                let metas: Vec<PlanBlock> = blocks
                    .iter()
                    .map(|b| PlanBlock {
                        mint: b.meta().mint,
                        maxt: b.meta().maxt,
                        series: b.meta().series,
                        tombstones: b.tombstone_count() as u64,
                    })
                    .collect();
                plan(&ranges, &metas)
                    .into_iter()
                    .map(|i| blocks[i].dir().to_path_buf())
                    .collect()
            };
            if dirs.is_empty() || !self.merge_blocks(&dirs)? {
                return Ok(done);
            }
            done += 1;
        }
    }

    /// Writes one block holding the samples of the blocks in `dirs` (each
    /// timestamp once, the later block's value winning, tombstoned samples
    /// left out) over their whole range, opens it, then deletes the sources.
    /// A crash before the deletions leaves overlapping blocks, which readers
    /// deduplicate and the planner merges first. False when a block of
    /// `dirs` is gone (another compaction took it).
    fn merge_blocks(&self, dirs: &[PathBuf]) -> Result<bool, Error> {
        let _merging = self.merging.lock();
        let chosen: Vec<Arc<Block>> = {
            let blocks = self.blocks.read();
            let chosen: Vec<Arc<Block>> = blocks
                .iter()
                .filter(|b| dirs.iter().any(|d| d == b.dir()))
                .cloned()
                .collect();
            if chosen.len() != dirs.len() || chosen.is_empty() {
                return Ok(false);
            }
            chosen
        };
        let mint = chosen.iter().map(|b| b.meta().mint).min().unwrap_or(0);
        let maxt = chosen.iter().map(|b| b.meta().maxt).max().unwrap_or(0);
        let mut by_labels: BTreeMap<Labels, Vec<(usize, BlockSeries)>> = BTreeMap::new();
        for (i, b) in chosen.iter().enumerate() {
            for s in b.select_series(&[], mint, maxt)? {
                by_labels.entry(s.labels.clone()).or_default().push((i, s));
            }
        }
        let mut list: Vec<(Labels, SeriesData)> = Vec::with_capacity(by_labels.len());
        let mut buf: Samples = Vec::new();
        for (labels, sources) in by_labels {
            // A series in one source block, nothing of it deleted: its
            // chunks are copied whole.
            if let [(i, s)] = sources.as_slice()
                && let Some(raw) = chosen[*i].raw_chunks(s)?
            {
                list.push((labels, SeriesData::Chunks(raw)));
                continue;
            }
            let mut all: Vec<(i64, f64, usize)> = Vec::new();
            for (i, s) in &sources {
                buf.clear();
                chosen[*i].read_series(s, mint, maxt, &mut buf)?;
                all.extend(buf.iter().map(|&(t, v)| (t, v, *i)));
            }
            // One sample per timestamp, the later block's value.
            all.sort_by_key(|&(t, _, src)| (t, std::cmp::Reverse(src)));
            all.dedup_by_key(|x| x.0);
            if !all.is_empty() {
                let samples = all.into_iter().map(|(t, v, _)| (t, v)).collect();
                list.push((labels, SeriesData::Samples(samples)));
            }
        }
        let new = if list.is_empty() {
            None
        } else {
            let path = write_block_data(&self.dir.join("blocks"), mint, maxt, list)?;
            Some(Arc::new(Block::open(&path)?))
        };
        let mut blocks = self.blocks.write();
        blocks.retain(|b| !dirs.iter().any(|d| d == b.dir()));
        blocks.extend(new);
        blocks.sort_by_key(|b| (b.meta().mint, b.meta().maxt));
        drop(blocks);
        for d in dirs {
            delete_block(d)?;
        }
        Ok(true)
    }

    /// Rewrites every block that has tombstones without the deleted
    /// samples (Prometheus's `clean_tombstones`): the new block is written
    /// and opened first, then the old one is deleted, so a crash in between
    /// leaves both, which readers deduplicate. Returns how many blocks were
    /// rewritten.
    pub fn clean_tombstones(&self) -> Result<usize, Error> {
        let dirty: Vec<PathBuf> = self
            .blocks
            .read()
            .iter()
            .filter(|b| b.has_tombstones())
            .map(|b| b.dir().to_path_buf())
            .collect();
        let mut rewritten = 0;
        for dir in dirty {
            if self.merge_blocks(std::slice::from_ref(&dir))? {
                rewritten += 1;
            }
        }
        Ok(rewritten)
    }

    /// Deletes blocks past the retention time (measured from the newest
    /// sample in the store) or beyond the size limit, oldest first. Returns
    /// how many were deleted.
    pub fn apply_retention(&self) -> Result<usize, Error> {
        let newest = {
            let blocks = self.blocks.read();
            let b = blocks.iter().map(|b| b.meta().maxt - 1).max();
            match (b, self.head.time_range().map(|r| r.1)) {
                (Some(a), Some(h)) => a.max(h),
                (a, h) => match a.or(h) {
                    Some(x) => x,
                    None => return Ok(0),
                },
            }
        };
        let mut doomed: Vec<PathBuf> = Vec::new();
        {
            let blocks = self.blocks.read();
            if let Some(keep) = self.opts.retention_ms {
                doomed.extend(
                    blocks
                        .iter()
                        .filter(|b| b.meta().maxt <= newest - keep)
                        .map(|b| b.dir().to_path_buf()),
                );
            }
            if let Some(limit) = self.opts.retention_bytes {
                let sizes: Vec<u64> = blocks.iter().map(|b| dir_size(b.dir())).collect();
                let mut total: u64 = sizes.iter().sum();
                for (b, size) in blocks.iter().zip(sizes) {
                    if total <= limit {
                        break;
                    }
                    total -= size;
                    if !doomed.iter().any(|d| d == b.dir()) {
                        doomed.push(b.dir().to_path_buf());
                    }
                }
            }
        }
        self.blocks
            .write()
            .retain(|b| !doomed.iter().any(|d| d == b.dir()));
        for d in &doomed {
            delete_block(d)?;
        }
        Ok(doomed.len())
    }

    /// Deletes the samples in `[mint, maxt]` of the series `matchers`
    /// select, in the head (a WAL record) and in every block (a tombstones
    /// file; compaction drops them for good). Returns the series touched.
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<usize, Error> {
        let mut n = self.head.delete(matchers, mint, maxt)?;
        for b in self.blocks.read().iter() {
            n += b.delete(matchers, mint, maxt)?;
        }
        Ok(n)
    }

    /// Label names of the series `matchers` select, in the head and every
    /// block, sorted and unique. A block whose index cannot be read (its
    /// file damaged or truncated since it opened) adds nothing here; a
    /// select that reaches it reports the error.
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        let mut all = self.head.querier(i64::MIN, i64::MAX).label_names(matchers);
        for b in self.blocks.read().iter() {
            all.extend(b.label_names(matchers).unwrap_or_default());
        }
        all.sort();
        all.dedup();
        all
    }

    /// Values of label `name` among the series `matchers` select, in the
    /// head and every block, sorted and unique (a block whose index cannot
    /// be read adds nothing, as in [`Db::label_names`]).
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let mut all = self
            .head
            .querier(i64::MIN, i64::MAX)
            .label_values(name, matchers);
        for b in self.blocks.read().iter() {
            all.extend(b.label_values(name, matchers).unwrap_or_default());
        }
        all.sort();
        all.dedup();
        all
    }

    /// Series all `matchers` select with their samples in `[mint, maxt]`,
    /// from the blocks and the head merged (a timestamp present twice is
    /// kept once, the head's value winning), sorted by labels, every sample
    /// decoded into a vector. A damaged chunk fails the query with an error
    /// naming its file and offset. [`Db::select_series`] decodes as the
    /// caller iterates instead.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<(Labels, Samples)>, Error> {
        let mut out = Vec::new();
        for s in self.select_series(matchers, mint, maxt)? {
            let samples: Samples = s.samples().collect::<Result<_, _>>()?;
            if !samples.is_empty() {
                out.push((s.labels, samples));
            }
        }
        Ok(out)
    }

    /// Series all `matchers` select with a chunk overlapping `[mint, maxt]`
    /// in the blocks or the head, sorted by labels, each read lazily: no
    /// chunk is decoded until [`DbSeries::samples`] is iterated, and a
    /// block's chunks only when the iteration reaches that block. The
    /// series hold the blocks they read (a compaction or retention that
    /// removes a block meanwhile does not pull it from under them) and a
    /// snapshot of the head's chunks. A series may yield no sample (a chunk
    /// overlaps the range without a sample in it, or its samples are
    /// deleted).
    ///
    /// ```
    /// use vigil_tsdb::db::{Db, DbOptions};
    /// use vigil_tsdb::index::Matcher;
    /// use vigil_tsdb::labels::Labels;
    ///
    /// let dir = std::env::temp_dir().join(format!("vigil-db-lazy-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let db = Db::open(&dir, DbOptions { block_range_ms: 1000, ..DbOptions::default() })?;
    /// let mut app = db.head().appender();
    /// for i in 0..100 {
    ///     let l = Labels::new([("__name__", "x".to_owned()), ("i", i.to_string())])?;
    ///     for t in 0..4 {
    ///         app.append(&l, t * 500, t as f64)?;
    ///     }
    /// }
    /// app.commit()?;
    /// db.cut_blocks()?; // [0, 1000) to disk; 1000 and 1500 stay in the head
    /// let found = db.select_series(&[Matcher::equal("__name__", "x")], 0, 2000)?;
    /// assert_eq!(found.len(), 100); // nothing decoded yet
    /// let one: Vec<(i64, f64)> = found[7].samples().collect::<Result<_, _>>()?;
    /// assert_eq!(one, [(0, 0.0), (500, 1.0), (1000, 2.0), (1500, 3.0)]);
    /// # drop(found); drop(db); std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), vigil_tsdb::Error>(())
    /// ```
    pub fn select_series(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<DbSeries>, Error> {
        let mut all: BTreeMap<Labels, Vec<Source>> = BTreeMap::new();
        let blocks: Vec<Arc<Block>> = self.blocks.read().clone();
        for b in blocks {
            if b.meta().maxt > mint && b.meta().mint <= maxt {
                for s in b.select_series(matchers, mint, maxt)? {
                    all.entry(s.labels.clone())
                        .or_default()
                        .push(Source::Block(b.clone(), s));
                }
            }
        }
        // The head last: on equal timestamps the newest source wins.
        for s in self.head.querier(mint, maxt).select(matchers) {
            all.entry(s.labels.clone())
                .or_default()
                .push(Source::Head(s));
        }
        Ok(all
            .into_iter()
            .map(|(labels, sources)| DbSeries {
                labels,
                sources,
                mint,
                maxt,
            })
            .collect())
    }
}

/// Where a [`DbSeries`]' samples come from.
enum Source {
    Block(Arc<Block>, BlockSeries),
    Head(head::Series),
}

/// One series of [`Db::select_series`]: its labels and, per block and the
/// head, where its samples are.
pub struct DbSeries {
    /// The series' labels.
    pub labels: Labels,
    /// Blocks oldest first, then the head.
    sources: Vec<Source>,
    mint: i64,
    maxt: i64,
}

impl DbSeries {
    /// The samples in the query's range, oldest first, one per timestamp
    /// (the newest source's value), decoded as they are read. After an error
    /// (a damaged chunk, naming its file and offset) the iterator ends.
    pub fn samples(&self) -> DbSamples<'_> {
        DbSamples {
            cursors: self
                .sources
                .iter()
                .map(|s| match s {
                    Source::Block(b, bs) => Cursor::Block {
                        block: b,
                        series: bs,
                        buf: Vec::new(),
                        at: 0,
                        loaded: false,
                    },
                    Source::Head(h) => Cursor::Head(h.samples(), None),
                })
                .collect(),
            mint: self.mint,
            maxt: self.maxt,
            failed: false,
        }
    }
}

/// One source's position in a [`DbSamples`] merge.
enum Cursor<'a> {
    Block {
        block: &'a Block,
        series: &'a BlockSeries,
        buf: Samples,
        at: usize,
        loaded: bool,
    },
    Head(head::SeriesSamples<'a>, Option<(i64, f64)>),
}

impl Cursor<'_> {
    /// The next sample without consuming it, decoding a block's chunks on
    /// first use.
    fn peek(&mut self, mint: i64, maxt: i64) -> Option<Result<(i64, f64), Error>> {
        match self {
            Cursor::Block {
                block,
                series,
                buf,
                at,
                loaded,
            } => {
                if !*loaded {
                    *loaded = true;
                    if let Err(e) = block.read_series(series, mint, maxt, buf) {
                        return Some(Err(e));
                    }
                }
                buf.get(*at).copied().map(Ok)
            }
            Cursor::Head(it, peeked) => {
                if peeked.is_none() {
                    match it.next()? {
                        Ok(x) => *peeked = Some(x),
                        Err(e) => return Some(Err(e)),
                    }
                }
                peeked.map(Ok)
            }
        }
    }

    fn advance(&mut self) {
        match self {
            Cursor::Block { at, .. } => *at += 1,
            Cursor::Head(_, peeked) => *peeked = None,
        }
    }
}

/// Iterator over a [`DbSeries`]' samples: a merge of its sources by
/// timestamp.
pub struct DbSamples<'a> {
    cursors: Vec<Cursor<'a>>,
    mint: i64,
    maxt: i64,
    failed: bool,
}

impl Iterator for DbSamples<'_> {
    type Item = Result<(i64, f64), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        // The earliest timestamp; on a tie the later source's value.
        let mut best: Option<(i64, f64)> = None;
        for c in &mut self.cursors {
            match c.peek(self.mint, self.maxt) {
                None => {}
                Some(Err(e)) => {
                    self.failed = true;
                    return Some(Err(e));
                }
                Some(Ok(x)) if best.is_none_or(|b| x.0 <= b.0) => best = Some(x),
                Some(Ok(_)) => {}
            }
        }
        let (t, v) = best?;
        for c in &mut self.cursors {
            if let Some(Ok((ct, _))) = c.peek(self.mint, self.maxt)
                && ct == t
            {
                c.advance();
            }
        }
        Some(Ok((t, v)))
    }
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|es| {
            es.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
