//! The workload of `promtool tsdb bench write` (../shared/corpus/bench), shared
//! by the criterion bench `tsdb_ingest` and the example `tsdb_ingest_full`:
//! label sets as the shared generator writes them, one sample per series per
//! round (timestamps +30 s, values +1000 a round), split as promtool splits
//! it (Prometheus's cmd/promtool/tsdb.go, `ingestScrapes`): the series in
//! shards of 1,000, and for each block of 100 rounds every shard appends
//! its 100 rounds on its own, one commit per shard and round (commits of
//! 1,000 samples). promtool runs the shards as goroutines; here `threads`
//! OS threads take the shards of each block of rounds between them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use vigil_tsdb::head::Head;
use vigil_tsdb::labels::Labels;

/// Series per shard, and rounds per block, as promtool.
const SHARD: usize = 1_000;
const BLOCK_ROUNDS: usize = 100;

/// Label sets from the generator's JSON lines.
pub fn parse_label_sets(json_lines: &str, n: usize) -> Vec<Labels> {
    json_lines
        .lines()
        .take(n)
        .map(|l| {
            let m: serde_json::Map<String, serde_json::Value> = serde_json::from_str(l).unwrap();
            Labels::new(
                m.into_iter()
                    .map(|(k, v)| (k, v.as_str().unwrap().to_owned())),
            )
            .unwrap()
        })
        .collect()
}

/// Appends `rounds` rounds to every series of `sets` from `threads`
/// threads (at least 1); round 0 creates the series (by labels, as
/// promtool's first append of a shard), later rounds append by reference.
pub fn ingest(head: &Head, sets: &[Labels], rounds: usize, threads: usize) {
    let shards: Vec<&[Labels]> = sets.chunks(SHARD).collect();
    // A shard's series references; one thread at a time works on a shard.
    let refs: Vec<Mutex<Vec<u64>>> = shards.iter().map(|_| Mutex::default()).collect();
    let threads = threads.clamp(1, shards.len().max(1));
    for block in (0..rounds).step_by(BLOCK_ROUNDS) {
        let end = (block + BLOCK_ROUNDS).min(rounds);
        let next = AtomicUsize::new(0);
        let work = || loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let (Some(shard), Some(refs)) = (shards.get(i), refs.get(i)) else {
                break;
            };
            shard_rounds(head, shard, &mut refs.lock().unwrap(), block..end);
        };
        std::thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(work);
            }
            work();
        });
    }
}

/// One shard's rounds `range`: a commit of one sample per series a round.
fn shard_rounds(head: &Head, sets: &[Labels], refs: &mut Vec<u64>, range: std::ops::Range<usize>) {
    for round in range {
        let (t, v) = (round as i64 * 30_000, round as f64 * 1000.0);
        let mut app = head.appender_with_capacity(sets.len());
        if refs.is_empty() {
            *refs = sets.iter().map(|l| app.append(l, t, v).unwrap()).collect();
        } else {
            for &r in refs.iter() {
                app.append_ref(r, t, v).unwrap();
            }
        }
        app.commit().unwrap();
    }
}

/// CPU seconds (user + system, all threads) this process has used, from
/// /proc/self/stat (clock ticks, 100 a second): on a shared machine, wall
/// time says more about the neighbours than about the code.
#[allow(dead_code)] // the criterion bench that includes this file measures its own way
pub fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

/// Bytes per series, part by part, from `Head::memory`.
#[allow(dead_code)] // each includer uses part of this file
pub fn breakdown(m: &vigil_tsdb::head::HeadMemory, n: f64) -> String {
    let per = |b: usize| b as f64 / n;
    let i = &m.index;
    let labels = i.symbols + i.series_labels;
    let mut out = format!(
        "  heap per series: {:.0} B = labels {:.0} (interned strings {:.0}, of which text {:.0}; \
         per-series label refs {:.0}) + label-set table {:.0} + postings {:.0} + values {:.0} \
         + series table {:.0} + sealed chunks {:.0} + open chunk {:.0} + out-of-order {:.0}\n",
        per(m.total()),
        per(labels),
        per(i.symbols),
        per(i.symbol_text),
        per(i.series_labels),
        per(i.label_set_table),
        per(i.postings),
        per(i.values),
        per(m.series_table),
        per(m.sealed_chunks),
        per(m.open_chunks),
        per(m.out_of_order),
    );
    out += &format!(
        "  heap per series without labels: {:.0} B; without labels and sample data (chunks): {:.0} B\n",
        per(m.total() - labels),
        per(m.total() - labels - m.sealed_chunks - m.open_chunks - m.out_of_order),
    );
    out
}
