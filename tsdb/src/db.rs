//! The store: the head plus the blocks cut from it, with compaction and
//! retention, read through one querier that merges them.
//!
//! Layout under the store's directory: `wal/` (the head's WAL and
//! checkpoints) and `blocks/` (one directory per block).

use std::path::{Path, PathBuf};

use parking_lot::RwLock;

use crate::Error;
use crate::block::{Block, Samples, delete_block, open_blocks, write_block};
use crate::head::{Head, HeadOptions};
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
    blocks: RwLock<Vec<Block>>,
    damaged: Vec<(PathBuf, Error)>,
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
            blocks: RwLock::new(blocks),
            damaged,
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
                self.blocks.write().push(block);
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
    /// both, which readers deduplicate.
    pub fn compact_oldest(&self, n: usize) -> Result<bool, Error> {
        let (mint, maxt, merged, old_dirs) = {
            let blocks = self.blocks.read();
            if n < 2 || blocks.len() < n {
                return Ok(false);
            }
            let chosen = &blocks[..n];
            let mint = chosen.iter().map(|b| b.meta().mint).min().unwrap_or(0);
            let maxt = chosen.iter().map(|b| b.meta().maxt).max().unwrap_or(0);
            let merged = merge(chosen.iter().map(|b| b.select(&[], mint, maxt)).collect())?;
            (
                mint,
                maxt,
                merged,
                chosen
                    .iter()
                    .map(|b| b.dir().to_path_buf())
                    .collect::<Vec<_>>(),
            )
        };
        let path = write_block(&self.dir.join("blocks"), mint, maxt, merged)?;
        let block = Block::open(&path)?;
        let mut blocks = self.blocks.write();
        blocks.retain(|b| !old_dirs.iter().any(|d| d == b.dir()));
        blocks.push(block);
        blocks.sort_by_key(|b| (b.meta().mint, b.meta().maxt));
        drop(blocks);
        for d in old_dirs {
            delete_block(&d)?;
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
            let (mint, maxt, series) = {
                let blocks = self.blocks.read();
                let Some(b) = blocks.iter().find(|b| b.dir() == dir) else {
                    continue;
                };
                let (mint, maxt) = (b.meta().mint, b.meta().maxt);
                let series: Vec<(Labels, Samples)> = b
                    .select(&[], mint, maxt)
                    .into_iter()
                    .map(|(l, r)| r.map(|v| (l, v)))
                    .collect::<Result<_, _>>()?;
                (mint, maxt, series)
            };
            let series: Vec<(Labels, Samples)> =
                series.into_iter().filter(|(_, v)| !v.is_empty()).collect();
            let mut blocks = self.blocks.write();
            if !series.is_empty() {
                let path = write_block(&self.dir.join("blocks"), mint, maxt, series)?;
                blocks.push(Block::open(&path)?);
            }
            blocks.retain(|b| b.dir() != dir);
            blocks.sort_by_key(|b| (b.meta().mint, b.meta().maxt));
            drop(blocks);
            delete_block(&dir)?;
            rewritten += 1;
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
        for b in self.blocks.write().iter_mut() {
            n += b.delete(matchers, mint, maxt)?;
        }
        Ok(n)
    }

    /// Label names of the series `matchers` select, in the head and every
    /// block, sorted and unique.
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        let mut all = self.head.querier(i64::MIN, i64::MAX).label_names(matchers);
        for b in self.blocks.read().iter() {
            all.extend(b.label_names(matchers));
        }
        all.sort();
        all.dedup();
        all
    }

    /// Values of label `name` among the series `matchers` select, in the
    /// head and every block, sorted and unique.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let mut all = self
            .head
            .querier(i64::MIN, i64::MAX)
            .label_values(name, matchers);
        for b in self.blocks.read().iter() {
            all.extend(b.label_values(name, matchers));
        }
        all.sort();
        all.dedup();
        all
    }

    /// Series all `matchers` select with their samples in `[mint, maxt]`,
    /// from the blocks and the head merged (a timestamp present twice is
    /// kept once, the head's value winning), sorted by labels. A damaged
    /// chunk fails the query with an error naming its file and offset.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<(Labels, Samples)>, Error> {
        let mut parts: Vec<Part> = Vec::new();
        for b in self.blocks.read().iter() {
            if b.meta().maxt > mint && b.meta().mint <= maxt {
                parts.push(b.select(matchers, mint, maxt));
            }
        }
        // The head last: on equal timestamps the newest source wins.
        parts.push(
            self.head
                .querier(mint, maxt)
                .select(matchers)
                .iter()
                .map(|s| (s.labels.clone(), s.samples().collect::<Result<Vec<_>, _>>()))
                .collect(),
        );
        Ok(merge(parts)?
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect())
    }
}

/// One source's series, each with its samples or the error reading them.
type Part = Vec<(Labels, Result<Samples, Error>)>;

/// Merges per-source series lists: same labels joined, samples sorted by
/// time, a repeated timestamp kept once (the later source's value).
fn merge(parts: Vec<Part>) -> Result<Vec<(Labels, Samples)>, Error> {
    let mut all: std::collections::BTreeMap<Labels, Vec<(i64, f64, usize)>> =
        std::collections::BTreeMap::new();
    for (source, part) in parts.into_iter().enumerate() {
        for (labels, samples) in part {
            let samples = samples?;
            all.entry(labels)
                .or_default()
                .extend(samples.into_iter().map(|(t, v)| (t, v, source)));
        }
    }
    Ok(all
        .into_iter()
        .map(|(l, mut v)| {
            v.sort_by_key(|&(t, _, src)| (t, std::cmp::Reverse(src)));
            v.dedup_by_key(|x| x.0);
            (l, v.into_iter().map(|(t, v, _)| (t, v)).collect())
        })
        .collect())
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
