//! The compaction planner: which blocks to merge next, as Prometheus's
//! leveled compactor decides it.
//!
//! Blocks are cut from the head at the base range (2 h by default). The
//! planner merges them into blocks of 3×, 9×, 27× … the base range, up to a
//! tenth of the retention time or 31 days, whichever is smaller, so a long
//! retention is held in few blocks (fewer files to open and to search) while
//! a block never spans so much that retention would have to wait long to
//! delete it. In order, [`plan`] returns:
//!
//! 1. the first run of blocks whose time ranges overlap (a crash between
//!    writing a compacted block and deleting its sources leaves such a run;
//!    merging it first removes the duplicate samples for good);
//! 2. otherwise, leaving out the newest block (the one just cut, so that a
//!    backup taken block by block sees each range once before it is merged),
//!    for each range from the smallest: the first group of at least two
//!    blocks lying within one aligned window of that range, if the group
//!    fills the window or lies wholly before the newest block's start (so a
//!    window still filling up is not merged early and again later);
//! 3. otherwise, from the newest block back: a block spanning at least the
//!    middle range whose tombstones name more than 5 % of its series (as
//!    Prometheus counts: entries / (series + 1)), to be rewritten without
//!    the deleted samples. A smaller block is rewritten only when its
//!    tombstones have as many entries as it has series (everything likely
//!    deleted); otherwise it is skipped, since the merge that will take it
//!    into a larger block drops its deleted samples anyway.
//!
//! An empty plan means nothing to do. `Db::compact` applies plans until one
//! is empty; each step merges blocks or drops tombstones, so it ends.

/// What the planner needs to know of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanBlock {
    /// First timestamp the block may hold (inclusive).
    pub mint: i64,
    /// End of its range (exclusive).
    pub maxt: i64,
    /// Number of series.
    pub series: u64,
    /// Number of tombstone entries (deleted ranges of series).
    pub tombstones: u64,
}

/// The longest block compaction makes, whatever the retention: 31 days.
pub const MAX_BLOCK_RANGE_MS: i64 = 31 * 24 * 3_600_000;

/// The ranges compaction builds: `base`, `3·base`, `9·base`, … (ten steps at
/// most, as Prometheus), keeping those no longer than a tenth of
/// `retention_ms` (when set) and [`MAX_BLOCK_RANGE_MS`]. The base range is
/// always kept.
///
/// ```
/// use vigil_tsdb::block::plan::compaction_ranges;
/// let h = 3_600_000;
/// // 15 days of retention: at most 36 h.
/// assert_eq!(compaction_ranges(2 * h, Some(15 * 24 * h)), [2 * h, 6 * h, 18 * h]);
/// ```
pub fn compaction_ranges(base: i64, retention_ms: Option<i64>) -> Vec<i64> {
    let base = base.max(1);
    let max = retention_ms
        .map_or(MAX_BLOCK_RANGE_MS, |r| (r / 10).min(MAX_BLOCK_RANGE_MS))
        .max(base);
    let mut out = vec![base];
    let mut r = base;
    for _ in 1..10 {
        match r.checked_mul(3) {
            Some(next) if next <= max => {
                out.push(next);
                r = next;
            }
            _ => break,
        }
    }
    out
}

/// Which blocks to compact together next (indices into `blocks`, oldest
/// first), or none. `ranges` comes from [`compaction_ranges`]. A single index
/// means: rewrite that block without its deleted samples.
///
/// ```
/// use vigil_tsdb::block::plan::{PlanBlock, plan};
/// let b = |mint, maxt| PlanBlock { mint, maxt, series: 10, tombstones: 0 };
/// let ranges = [2, 6, 18];
/// // [0,2) [2,4) [4,6) fill the 6-wide window; [6,8) is the newest, left out.
/// assert_eq!(plan(&ranges, &[b(0, 2), b(2, 4), b(4, 6), b(6, 8)]), [0, 1, 2]);
/// // Only two of the window's three blocks, and the window is not behind
/// // the newest block's start: wait.
/// assert!(plan(&ranges, &[b(0, 2), b(2, 4), b(4, 6)]).is_empty());
/// ```
pub fn plan(ranges: &[i64], blocks: &[PlanBlock]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    order.sort_by_key(|&i| (blocks[i].mint, blocks[i].maxt));
    let sorted: Vec<PlanBlock> = order.iter().map(|&i| blocks[i]).collect();
    let to_callers = |picked: Vec<usize>| -> Vec<usize> {
        let mut v: Vec<usize> = picked.into_iter().map(|i| order[i]).collect();
        v.sort_by_key(|&i| (blocks[i].mint, blocks[i].maxt));
        v
    };
    let overlapping = overlapping(&sorted);
    if !overlapping.is_empty() {
        return to_callers(overlapping);
    }
    let Some((_, older)) = sorted.split_last() else {
        return Vec::new();
    };
    let by_range = select_by_range(ranges, older);
    if !by_range.is_empty() {
        return to_callers(by_range);
    }
    let middle = ranges.get(ranges.len() / 2).copied().unwrap_or(i64::MAX);
    for (i, b) in older.iter().enumerate().rev() {
        if b.maxt.saturating_sub(b.mint) < middle {
            if b.tombstones > 0 && b.tombstones >= b.series {
                return to_callers(vec![i]);
            }
            continue;
        }
        // More than 5 % of the series named by a tombstone.
        if b.tombstones * 20 > b.series + 1 {
            return to_callers(vec![i]);
        }
    }
    Vec::new()
}

/// The first run of blocks (sorted by start) whose ranges overlap.
fn overlapping(sorted: &[PlanBlock]) -> Vec<usize> {
    let mut out = Vec::new();
    let Some(first) = sorted.first() else {
        return out;
    };
    let mut maxt = first.maxt;
    for (i, b) in sorted.iter().enumerate().skip(1) {
        if b.mint < maxt {
            if out.is_empty() {
                out.push(i - 1);
            }
            out.push(i);
        } else if !out.is_empty() {
            break;
        }
        maxt = maxt.max(b.maxt);
    }
    out
}

/// Step 2 of [`plan`] over the blocks before the newest.
fn select_by_range(ranges: &[i64], older: &[PlanBlock]) -> Vec<usize> {
    let Some(last) = older.last() else {
        return Vec::new();
    };
    let high = last.mint;
    for &range in ranges.iter().skip(1) {
        for group in split_by_range(older, range) {
            let (Some(&a), Some(&z)) = (group.first(), group.last()) else {
                continue;
            };
            let (mint, maxt) = (older[a].mint, older[z].maxt);
            if group.len() > 1 && (maxt - mint == range || maxt <= high) {
                return group;
            }
        }
    }
    Vec::new()
}

/// Groups of consecutive blocks (indices into `sorted`) that lie within one
/// window `[t0, t0 + range)` aligned on multiples of `range`; a block that
/// straddles windows or is longer than one belongs to no group.
fn split_by_range(sorted: &[PlanBlock], range: i64) -> Vec<Vec<usize>> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let t0 = sorted[i].mint.div_euclid(range) * range;
        let end = t0.saturating_add(range);
        if sorted[i].maxt > end {
            i += 1;
            continue;
        }
        let mut group = Vec::new();
        while i < sorted.len() && sorted[i].mint >= t0 && sorted[i].maxt <= end {
            group.push(i);
            i += 1;
        }
        groups.push(group);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn b(mint: i64, maxt: i64) -> PlanBlock {
        PlanBlock {
            mint,
            maxt,
            series: 100,
            tombstones: 0,
        }
    }

    fn hours(list: &[(i64, i64)]) -> Vec<PlanBlock> {
        list.iter().map(|&(a, z)| b(a * H, z * H)).collect()
    }

    fn ranges() -> Vec<i64> {
        compaction_ranges(2 * H, None)
    }

    #[test]
    fn ranges_grow_by_three_up_to_a_tenth_of_retention_or_31_days() {
        assert_eq!(
            compaction_ranges(2 * H, None),
            [2, 6, 18, 54, 162, 486].map(|x| x * H),
            "1458 h is past 31 days (744 h)"
        );
        assert_eq!(
            compaction_ranges(2 * H, Some(15 * 24 * H)),
            [2, 6, 18].map(|x| x * H)
        );
        assert_eq!(
            compaction_ranges(2 * H, Some(10 * H)),
            [2 * H],
            "a tenth of 10 h is less than the base range"
        );
        assert_eq!(compaction_ranges(1, None).len(), 10, "ten steps at most");
    }

    #[test]
    fn nothing_to_do() {
        assert!(plan(&ranges(), &[]).is_empty());
        assert!(plan(&ranges(), &hours(&[(0, 2)])).is_empty());
        // Two blocks of a 6 h window, and the newest is left out.
        assert!(plan(&ranges(), &hours(&[(0, 2), (2, 4)])).is_empty());
        // Already compacted.
        assert!(plan(&ranges(), &hours(&[(0, 6), (6, 8)])).is_empty());
    }

    #[test]
    fn a_full_window_is_merged_leaving_the_newest_block_out() {
        let bs = hours(&[(0, 2), (2, 4), (4, 6), (6, 8)]);
        assert_eq!(plan(&ranges(), &bs), [0, 1, 2]);
        // Input order does not matter; indices are the caller's.
        let mut rev = bs.clone();
        rev.reverse();
        assert_eq!(plan(&ranges(), &rev), [3, 2, 1]);
    }

    #[test]
    fn a_window_behind_the_newest_block_is_merged_even_with_gaps() {
        // [0,2) and [4,6) in window [0,6); newest starts at 8.
        assert_eq!(
            plan(&ranges(), &hours(&[(0, 2), (4, 6), (8, 10), (10, 12)])),
            [0, 1]
        );
        // The window still filling: [6,8) and [8,10) are in [6,12), the
        // newest [10,12) is left out and [8,10) is its window's last block.
        assert!(plan(&ranges(), &hours(&[(6, 8), (8, 10), (10, 12)])).is_empty());
    }

    #[test]
    fn larger_levels_follow_and_straddling_blocks_are_skipped() {
        // Three 6 h blocks fill an 18 h window.
        let bs = hours(&[(0, 6), (6, 12), (12, 18), (18, 20)]);
        assert_eq!(plan(&ranges(), &bs), [0, 1, 2]);
        // A block crossing a 6 h boundary joins no 6 h group; at 18 h it
        // does, and the window lies behind the newest block's start.
        let bs = hours(&[(0, 2), (4, 8), (8, 10), (18, 20), (20, 22)]);
        assert_eq!(plan(&ranges(), &bs), [0, 1, 2]);
        // Longer than the largest range: never grouped.
        assert!(split_by_range(&hours(&[(0, 800)]), 486 * H).is_empty());
    }

    #[test]
    fn overlapping_blocks_come_first() {
        // A compaction crashed after writing [0,6) and before deleting its
        // sources.
        let bs = hours(&[(0, 2), (0, 6), (2, 4), (4, 6), (6, 8), (8, 10)]);
        assert_eq!(plan(&ranges(), &bs), [0, 1, 2, 3]);
        // Only the first run of overlaps.
        let bs = hours(&[(0, 2), (1, 3), (6, 8), (7, 9)]);
        assert_eq!(plan(&ranges(), &bs), [0, 1]);
        // Touching is not overlapping.
        assert!(overlapping(&hours(&[(0, 2), (2, 4)])).is_empty());
    }

    #[test]
    fn blocks_with_many_tombstones_are_rewritten() {
        // 15 days of retention: 2, 6 and 18 h; blocks of 6 h or more count
        // as big.
        let r = compaction_ranges(2 * H, Some(15 * 24 * H));
        let mut bs = hours(&[(0, 18), (18, 36), (36, 38)]);
        bs[0].tombstones = 5; // 5 of 101: under 5 %
        assert!(plan(&r, &bs).is_empty());
        bs[0].tombstones = 6;
        assert_eq!(plan(&r, &bs), [0]);
        // The newest big block first.
        bs[1].tombstones = 50;
        assert_eq!(plan(&r, &bs), [1]);
        // Small blocks are skipped on the way to a big one.
        let mut mixed = hours(&[(0, 18), (18, 20), (20, 22), (22, 24)]);
        mixed[0].tombstones = 6;
        mixed[1].tombstones = 3;
        assert_eq!(plan(&r, &mixed), [0]);
        // Small blocks only when every series is named.
        let mut small = hours(&[(0, 2), (2, 4)]);
        small[0].tombstones = 99;
        assert!(plan(&r, &small).is_empty());
        small[0].tombstones = 100;
        assert_eq!(plan(&r, &small), [0]);
        // The newest block is never rewritten by the planner.
        let mut newest = hours(&[(0, 2)]);
        newest[0].tombstones = 100;
        assert!(plan(&r, &newest).is_empty());
    }

    /// Applying plans until none is left ends, merges a day of 2 h blocks
    /// into the level ranges, and never merges the newest block.
    #[test]
    fn applied_repeatedly_it_ends_in_levels() {
        let mut bs: Vec<PlanBlock> = (0..24).map(|i| b(i * 2 * H, (i + 1) * 2 * H)).collect();
        let mut steps = 0;
        loop {
            let p = plan(&ranges(), &bs);
            if p.is_empty() {
                break;
            }
            steps += 1;
            assert!(steps < 100);
            assert!(p.len() > 1);
            let merged = b(bs[p[0]].mint, bs[*p.last().unwrap()].maxt);
            bs = bs
                .iter()
                .enumerate()
                .filter(|(i, _)| !p.contains(i))
                .map(|(_, x)| *x)
                .chain([merged])
                .collect();
            bs.sort_by_key(|x| x.mint);
        }
        let got: Vec<(i64, i64)> = bs.iter().map(|x| (x.mint / H, x.maxt / H)).collect();
        assert_eq!(
            got,
            [(0, 18), (18, 36), (36, 42), (42, 44), (44, 46), (46, 48)]
        );
    }
}
