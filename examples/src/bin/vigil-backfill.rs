//! `vigil-backfill openmetrics INPUT OUTDIR`: OpenMetrics text with
//! timestamps → vigil-tsdb blocks aligned to the block range (the shape of
//! `promtool tsdb create-blocks-from openmetrics`).
//!
//! Memory stays bounded for inputs of any size: a first pass streams the
//! input (in chunks of whole lines) and counts the samples of each block
//! range; then the ranges are taken in windows of consecutive ranges whose
//! samples fit `--max-samples-in-memory` (default 20 million, about 400 MB
//! with label sets), and each window streams the input once more, keeping
//! only its own samples, and writes its blocks. Time-sorted input of a few
//! hours is one window (two passes in all); memory is the window's samples
//! (16 bytes each plus their series) and one input chunk (8 MiB). A single
//! block range holding more than the limit is still read whole.
//!
//! Blocks go to `OUTDIR/blocks/`, where a store opened at `OUTDIR`
//! (`vigil-monitor --storage.tsdb.path=OUTDIR`) finds them. Exit status: 0
//! done, 1 bad input or I/O error (nothing is left half-written: a block is
//! renamed into place only when complete), 2 usage.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::process::ExitCode;

use vigil_exposition::Format;
use vigil_exposition::parse::{Entry, Parser};
use vigil_tsdb::block::write_block;
use vigil_tsdb::labels::Labels;

const USAGE: &str = "usage: vigil-backfill openmetrics [--max-block-duration=2h] [--max-samples-in-memory=N] INPUT OUTDIR";
const CHUNK: usize = 8 << 20;
const HOUR_MS: i64 = 3_600_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut range_ms = 2 * HOUR_MS;
    let mut budget: u64 = 20_000_000;
    let mut pos = Vec::new();
    for a in &args {
        if let Some(v) = a.strip_prefix("--max-block-duration=") {
            match parse_hours(v) {
                Some(ms) => range_ms = ms,
                None => return usage(&format!("invalid --max-block-duration {v:?}")),
            }
        } else if let Some(v) = a.strip_prefix("--max-samples-in-memory=") {
            match v.parse::<u64>() {
                Ok(n) if n > 0 => budget = n,
                _ => return usage(&format!("invalid --max-samples-in-memory {v:?}")),
            }
        } else if a.starts_with("--") {
            return usage(&format!("unknown flag {a}"));
        } else {
            pos.push(a.as_str());
        }
    }
    let [mode, input, out] = pos[..] else {
        return usage("expected openmetrics INPUT OUTDIR");
    };
    if mode != "openmetrics" {
        return usage(&format!("unknown input format {mode:?}"));
    }
    match run(Path::new(input), Path::new(out), range_ms, budget) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil-backfill: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("vigil-backfill: {msg}\n{USAGE}");
    ExitCode::from(2)
}

/// `2h`, `90m`, `1d`: promtool's `--max-block-duration` values (a multiple
/// of an hour is what blocks align to; minutes are allowed for tests).
fn parse_hours(v: &str) -> Option<i64> {
    let d = vigil_examples::monitor::config::parse_duration(v)?;
    let ms = i64::try_from(d.as_millis()).ok()?;
    (ms >= 60_000).then_some(ms)
}

/// Streams `input` in chunks of whole lines, each parsed on its own (with
/// `# EOF` appended, which only the input's last line may be), calling `f`
/// for each sample.
fn scan(
    input: &Path,
    mut f: impl FnMut(&vigil_exposition::parse::Sample<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let file = File::open(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 64);
    let mut carry: Vec<u8> = Vec::new();
    let mut line0: u32 = 0;
    let mut saw_eof = false;
    let mut done = false;
    while !done {
        buf.clear();
        buf.append(&mut carry);
        let mut tmp = vec![0u8; CHUNK];
        while buf.len() < CHUNK {
            let n = r
                .read(&mut tmp[..CHUNK - buf.len()])
                .map_err(|e| format!("{}: {e}", input.display()))?;
            if n == 0 {
                done = true;
                break;
            }
            buf.extend_from_slice(&tmp[..n]);
        }
        if !done {
            match memchr_last(&buf) {
                Some(nl) => carry = buf.split_off(nl + 1),
                None => {
                    return Err(format!(
                        "{}: line {} is longer than {CHUNK} bytes",
                        input.display(),
                        line0 + 1
                    ));
                }
            }
        }
        if buf.is_empty() {
            continue;
        }
        if saw_eof {
            return Err(format!(
                "{}: line {line0}: text after # EOF",
                input.display()
            ));
        }
        if let Some(stripped) = strip_eof(&buf) {
            buf.truncate(stripped);
            saw_eof = true;
        }
        let lines = bytecount_lines(&buf);
        if !buf.ends_with(b"\n") {
            buf.push(b'\n');
        }
        buf.extend_from_slice(b"# EOF\n");
        for e in Parser::new(&buf, Format::OpenMetrics) {
            match e {
                Ok(Entry::Sample(s)) => {
                    f(&s).map_err(|m| format!("{}:{}: {m}", input.display(), line0 + s.line))?;
                }
                Ok(_) => {}
                Err(e) => return Err(format!("{}: {}", input.display(), shift(e, line0))),
            }
        }
        line0 += lines;
    }
    if !saw_eof {
        return Err(format!(
            "{}: no # EOF at the end (OpenMetrics input ends with it)",
            input.display()
        ));
    }
    Ok(())
}

fn memchr_last(b: &[u8]) -> Option<usize> {
    b.iter().rposition(|&c| c == b'\n')
}

fn bytecount_lines(b: &[u8]) -> u32 {
    b.iter().filter(|&&c| c == b'\n').count() as u32
}

/// If the chunk's last line is `# EOF`, the length without it.
fn strip_eof(b: &[u8]) -> Option<usize> {
    let t = b.strip_suffix(b"\n").unwrap_or(b);
    let start = t.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
    (&t[start..] == b"# EOF").then_some(start)
}

fn shift(e: vigil_exposition::Error, by: u32) -> String {
    match e {
        vigil_exposition::Error::Syntax {
            line,
            column,
            expected,
            found,
        } => format!(
            "line {}, column {column}: expected {expected}, found {found}",
            line + by
        ),
        vigil_exposition::Error::Invalid {
            line,
            column,
            reason,
        } => format!("line {}, column {column}: {reason}", line + by),
        other => other.to_string(),
    }
}

fn labels_of(s: &vigil_exposition::parse::Sample<'_>) -> Result<Labels, String> {
    let mut pairs: Vec<(String, String)> = vec![("__name__".into(), s.name.as_cow().into_owned())];
    for (n, v) in s.labels.iter() {
        pairs.push((n.as_cow().into_owned(), v.as_cow().into_owned()));
    }
    Labels::new(pairs).map_err(|e| e.to_string())
}

fn run(input: &Path, out: &Path, range_ms: i64, budget: u64) -> Result<(), String> {
    // Pass 1: samples per block range.
    let mut per_range: BTreeMap<i64, u64> = BTreeMap::new();
    let mut total: u64 = 0;
    scan(input, |s| {
        let t = s
            .timestamp_ms
            .ok_or("sample without a timestamp (backfilling needs one on every sample)")?;
        *per_range
            .entry(t.div_euclid(range_ms) * range_ms)
            .or_default() += 1;
        total += 1;
        Ok(())
    })?;
    if total == 0 {
        println!("no samples in {}", input.display());
        return Ok(());
    }
    let parent = out.join("blocks");
    std::fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    // Windows of consecutive ranges within the memory budget.
    let mut windows: Vec<Vec<i64>> = Vec::new();
    let mut acc = 0;
    for (&start, &n) in &per_range {
        match windows.last_mut() {
            Some(w) if acc + n <= budget => {
                w.push(start);
                acc += n;
            }
            _ => {
                windows.push(vec![start]);
                acc = n;
            }
        }
    }
    println!(
        "{:<48} {:>24} {:>24} {:>9} {:>11} {:>11}",
        "BLOCK", "MIN TIME", "MAX TIME", "SERIES", "SAMPLES", "BYTES"
    );
    let (mut blocks, mut all_bytes) = (0, 0u64);
    for w in windows {
        let (lo, hi) = (w[0], w[w.len() - 1] + range_ms);
        let mut data: HashMap<i64, HashMap<Labels, Vec<(i64, f64)>>> = HashMap::new();
        scan(input, |s| {
            let t = s.timestamp_ms.unwrap_or(i64::MIN);
            if t < lo || t >= hi {
                return Ok(());
            }
            let l = labels_of(s)?;
            data.entry(t.div_euclid(range_ms) * range_ms)
                .or_default()
                .entry(l)
                .or_default()
                .push((t, s.value));
            Ok(())
        })?;
        for start in w {
            let Some(series) = data.remove(&start) else {
                continue;
            };
            let mut list: Vec<(Labels, Vec<(i64, f64)>)> = series.into_iter().collect();
            let mut samples = 0;
            for (l, v) in &mut list {
                v.sort_by_key(|p| p.0);
                v.dedup_by(|b, a| a.0 == b.0 && a.1.to_bits() == b.1.to_bits());
                if let Some(w) = v.windows(2).find(|w| w[0].0 == w[1].0) {
                    return Err(format!(
                        "{}: series {} has two different values at timestamp {}",
                        input.display(),
                        show(l),
                        w[0].0
                    ));
                }
                samples += v.len();
            }
            list.sort_by(|a, b| a.0.iter().cmp(b.0.iter()));
            let n_series = list.len();
            let path = write_block(&parent, start, start + range_ms, list)
                .map_err(|e| format!("writing the block for {start}: {e}"))?;
            let bytes = dir_bytes(&path);
            all_bytes += bytes;
            blocks += 1;
            println!(
                "{:<48} {:>24} {:>24} {:>9} {:>11} {:>11}",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                rfc3339(start),
                rfc3339(start + range_ms - 1),
                n_series,
                samples,
                bytes
            );
        }
    }
    println!(
        "{blocks} blocks, {total} samples read, {all_bytes} bytes in {}",
        parent.display()
    );
    Ok(())
}

fn show(l: &Labels) -> String {
    let inner: Vec<String> = l.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Milliseconds since the epoch as RFC 3339 UTC.
fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
