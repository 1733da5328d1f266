//! Immutable blocks on disk: the samples of a time range, written once to a
//! temporary directory and renamed into place, so a crash never leaves half
//! a block visible (FORMAT.md, "Block").
//!
//! A block directory holds `meta.json` (range and counts), `chunks` (sealed
//! chunks, each framed with its length and a CRC-32 of its bytes) and `index`
//! (symbols, and each series' labels with the place and range of its chunks,
//! with a CRC-32 of the whole file). Opening a block checks the index and
//! builds the inverted index in memory; chunk CRCs are checked as chunks are
//! read, so one damaged chunk fails only the series that reads it.
//!
//! Not yet: reading the files through `memmap2` (they are read into memory),
//! postings stored in the index file (they are rebuilt on open), compaction,
//! retention and tombstones.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::chunk::{Chunk, ChunkPolicy, ChunkWriter};
use crate::head::record::{put_str, put_uvarint, put_varint};
use crate::index::{Index, Matcher, SeriesId};
use crate::labels::Labels;

mod mapped;

use mapped::Mapped;

const CHUNKS_MAGIC: &[u8; 4] = b"VTSC";
const INDEX_MAGIC: &[u8; 4] = b"VTSI";
const TOMBSTONES_MAGIC: &[u8; 4] = b"VTST";
const VERSION: u8 = 1;

/// A series' samples, oldest first.
pub type Samples = Vec<(i64, f64)>;

/// The blocks that opened, and the directories that did not with why.
pub type OpenedBlocks = (Vec<Block>, Vec<(PathBuf, Error)>);

/// `meta.json`: what a block covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Format version (1).
    pub version: u32,
    /// First timestamp a sample of the block may have (inclusive).
    pub mint: i64,
    /// End of the range (exclusive).
    pub maxt: i64,
    /// Number of series.
    pub series: u64,
    /// Number of samples.
    pub samples: u64,
    /// Number of chunks.
    pub chunks: u64,
}

/// Where a series' chunk is and what it covers.
#[derive(Debug, Clone, Copy)]
struct ChunkMeta {
    mint: i64,
    maxt: i64,
    /// Offset of the chunk's frame in `chunks`.
    offset: u64,
}

/// Writes a block of the given series (labels and samples in time order,
/// each series once) for the range `[mint, maxt)` into a new directory under
/// `parent`, and returns its path. Samples outside the range are left out.
pub fn write_block(
    parent: &Path,
    mint: i64,
    maxt: i64,
    series: impl IntoIterator<Item = (Labels, Vec<(i64, f64)>)>,
) -> Result<PathBuf, Error> {
    // Unique among the blocks of a directory: the range, then the time of
    // writing in nanoseconds and the process id.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = format!("b-{mint}-{maxt}-{nanos:x}-{:x}", std::process::id());
    let final_dir = parent.join(&name);
    let tmp = parent.join(format!("{name}.tmp"));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(io("create", &tmp))?;

    let mut list: Vec<(Labels, Vec<(i64, f64)>)> = series.into_iter().collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    let mut chunks: Vec<u8> = Vec::new();
    chunks.extend_from_slice(CHUNKS_MAGIC);
    chunks.extend_from_slice(&[VERSION, 0, 0, 0]);
    let mut entries: Vec<(Labels, Vec<ChunkMeta>)> = Vec::new();
    let (mut n_samples, mut n_chunks) = (0u64, 0u64);
    let policy = ChunkPolicy::default();
    for (labels, samples) in list {
        let mut metas = Vec::new();
        let mut w = ChunkWriter::new();
        let flush = |w: &mut ChunkWriter, metas: &mut Vec<ChunkMeta>, chunks: &mut Vec<u8>| {
            if let (Some(first), Some(last)) = (w.first_time(), w.last_time()) {
                let bytes = w.seal();
                metas.push(ChunkMeta {
                    mint: first,
                    maxt: last,
                    offset: chunks.len() as u64,
                });
                put_uvarint(chunks, bytes.len() as u64);
                chunks.extend_from_slice(&bytes);
                chunks.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
            }
            *w = ChunkWriter::new();
        };
        for (t, v) in samples.into_iter().filter(|&(t, _)| t >= mint && t < maxt) {
            if policy.should_cut(&w, t) {
                flush(&mut w, &mut metas, &mut chunks);
            }
            w.append(t, v)?;
            n_samples += 1;
        }
        flush(&mut w, &mut metas, &mut chunks);
        if !metas.is_empty() {
            n_chunks += metas.len() as u64;
            entries.push((labels, metas));
        }
    }
    let index = encode_index(&entries);
    let meta = BlockMeta {
        version: 1,
        mint,
        maxt,
        series: entries.len() as u64,
        samples: n_samples,
        chunks: n_chunks,
    };
    let meta_json = serde_json::to_vec_pretty(&meta).map_err(|e| Error::Io {
        op: "encode meta.json",
        path: tmp.clone(),
        reason: e.to_string(),
    })?;
    for (file, bytes) in [
        ("chunks", &chunks),
        ("index", &index),
        ("meta.json", &meta_json),
    ] {
        let p = tmp.join(file);
        let mut f = fs::File::create(&p).map_err(io("create", &p))?;
        f.write_all(bytes).map_err(io("write", &p))?;
        f.sync_all().map_err(io("fsync", &p))?;
    }
    sync_dir(&tmp)?;
    fs::rename(&tmp, &final_dir).map_err(io("rename", &tmp))?;
    sync_dir(parent)?;
    Ok(final_dir)
}

/// Maps an I/O error of `op` on `path` to the crate's error.
fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |e| Error::Io {
        op,
        path,
        reason: e.to_string(),
    }
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::Io {
            op: "fsync directory",
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })
}

/// index: magic, version, symbols (sorted strings), then each series' label
/// pairs (symbol numbers) and chunk metas, then a CRC-32 of all before it.
fn encode_index(entries: &[(Labels, Vec<ChunkMeta>)]) -> Vec<u8> {
    let mut syms: Vec<&str> = entries
        .iter()
        .flat_map(|(l, _)| l.iter().flat_map(|(n, v)| [n, v]))
        .collect();
    syms.sort_unstable();
    syms.dedup();
    let mut out = Vec::new();
    out.extend_from_slice(INDEX_MAGIC);
    out.push(VERSION);
    put_uvarint(&mut out, syms.len() as u64);
    for s in &syms {
        put_str(&mut out, s);
    }
    let sym = |s: &str| syms.binary_search(&s).unwrap_or(0) as u64;
    put_uvarint(&mut out, entries.len() as u64);
    for (labels, metas) in entries {
        put_uvarint(&mut out, labels.len() as u64);
        for (n, v) in labels.iter() {
            put_uvarint(&mut out, sym(n));
            put_uvarint(&mut out, sym(v));
        }
        put_uvarint(&mut out, metas.len() as u64);
        let mut prev = 0i64;
        for m in metas {
            put_varint(&mut out, m.mint.wrapping_sub(prev));
            put_varint(&mut out, m.maxt.wrapping_sub(m.mint));
            put_uvarint(&mut out, m.offset);
            prev = m.maxt;
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// An open block.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    /// The `chunks` file, mapped.
    chunks: Mapped,
    index: Index,
    series: Vec<(Labels, Vec<ChunkMeta>)>,
    /// Deleted ranges: (series number in the index, mint, maxt), inclusive.
    tombstones: Vec<(usize, i64, i64)>,
}

impl Block {
    /// Opens the block in `dir`: reads `meta.json`, checks and loads the
    /// index, reads the chunks file.
    pub fn open(dir: &Path) -> Result<Block, Error> {
        let read = |name: &str| {
            let p = dir.join(name);
            fs::read(&p).map_err(|e| Error::Io {
                op: "read",
                path: p,
                reason: e.to_string(),
            })
        };
        let meta_bytes = read("meta.json")?;
        let meta: BlockMeta = serde_json::from_slice(&meta_bytes).map_err(|e| Error::BadBlock {
            file: dir.join("meta.json"),
            offset: 0,
            what: format!("meta.json does not parse: {e}"),
        })?;
        if meta.version != 1 {
            return Err(Error::BadBlock {
                file: dir.join("meta.json"),
                offset: 0,
                what: format!("unknown block version {}", meta.version),
            });
        }
        let chunks = Mapped::open(&dir.join("chunks"))?;
        chunks.check_len()?;
        if chunks.bytes().get(..4) != Some(CHUNKS_MAGIC) || chunks.bytes().get(4) != Some(&VERSION) {
            return Err(Error::BadBlock {
                file: dir.join("chunks"),
                offset: 0,
                what: "bad magic or version".into(),
            });
        }
        let index_map = Mapped::open(&dir.join("index"))?;
        index_map.check_len()?;
        let series = decode_index(index_map.bytes(), &dir.join("index"))?;
        drop(index_map);
        let mut index = Index::new();
        for (i, (labels, _)) in series.iter().enumerate() {
            index.add(i as SeriesId, labels);
        }
        let tombstones = match fs::read(dir.join("tombstones")) {
            Ok(b) => decode_tombstones(&b, &dir.join("tombstones"), series.len())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("read", &dir.join("tombstones"))(e)),
        };
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            chunks,
            index,
            series,
            tombstones,
        })
    }

    /// What the block covers.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether deletions are recorded against this block (its `tombstones`
    /// file), which a rewrite would apply.
    pub fn has_tombstones(&self) -> bool {
        !self.tombstones.is_empty()
    }

    /// The series all `matchers` select with samples in `[mint, maxt]`, in
    /// label order, with their samples (chunk CRCs are checked as read).
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Vec<(Labels, Result<Samples, Error>)> {
        let mut out = Vec::new();
        for id in self.index.select(matchers) {
            let Some((labels, metas)) = self.series.get(id as usize) else {
                continue;
            };
            let wanted: Vec<&ChunkMeta> = metas
                .iter()
                .filter(|m| m.maxt >= mint && m.mint <= maxt)
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let mut samples = Vec::new();
            // One length check per series: the chunks file was not
            // truncated under the mapping (see `mapped`).
            let mut res = self.chunks.check_len();
            for m in wanted {
                if res.is_err() {
                    break;
                }
                if let Err(e) = self.read_chunk(m.offset, &mut samples) {
                    res = Err(e);
                    break;
                }
            }
            let dead: Vec<(i64, i64)> = self
                .tombstones
                .iter()
                .filter(|x| x.0 == id as usize)
                .map(|x| (x.1, x.2))
                .collect();
            samples.retain(|&(t, _)| {
                t >= mint && t <= maxt && !dead.iter().any(|&(lo, hi)| t >= lo && t <= hi)
            });
            out.push((labels.clone(), res.map(|()| samples)));
        }
        out
    }

    /// Marks the samples in `[mint, maxt]` of the series `matchers` select
    /// as deleted: a `tombstones` file, replaced atomically (written,
    /// fsynced, renamed). Compaction drops them for good. Returns how many
    /// series were marked.
    pub fn delete(&mut self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<usize, Error> {
        let ids = self.index.select(matchers);
        if ids.is_empty() || maxt < self.meta.mint || mint >= self.meta.maxt {
            return Ok(0);
        }
        let mut all = self.tombstones.clone();
        all.extend(ids.iter().map(|&id| (id as usize, mint, maxt)));
        let mut b = Vec::new();
        b.extend_from_slice(TOMBSTONES_MAGIC);
        b.push(VERSION);
        put_uvarint(&mut b, all.len() as u64);
        for &(i, lo, hi) in &all {
            put_uvarint(&mut b, i as u64);
            put_varint(&mut b, lo);
            put_varint(&mut b, hi);
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        let tmp = self.dir.join("tombstones.tmp");
        let dst = self.dir.join("tombstones");
        let mut f = fs::File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(&b).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        fs::rename(&tmp, &dst).map_err(io("rename", &tmp))?;
        sync_dir(&self.dir)?;
        self.tombstones = all;
        Ok(ids.len())
    }

    /// Label names of the selected series.
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        self.index.label_names(matchers)
    }

    /// Values of `name` among the selected series.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        self.index.label_values(name, matchers)
    }

    fn read_chunk(&self, offset: u64, out: &mut Vec<(i64, f64)>) -> Result<(), Error> {
        let file = || self.dir.join("chunks");
        let bad = |at: u64, what: &str| Error::BadBlock {
            file: file(),
            offset: at,
            what: what.into(),
        };
        let b = self.chunks.bytes();
        let mut at = usize::try_from(offset).map_err(|_| bad(offset, "offset"))?;
        let (mut len, mut shift) = (0u64, 0);
        loop {
            let byte = *b
                .get(at)
                .ok_or_else(|| bad(offset, "chunk length runs past the end"))?;
            at += 1;
            len |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(bad(offset, "chunk length varint too long"));
            }
        }
        let len = usize::try_from(len).map_err(|_| bad(offset, "chunk length"))?;
        let end = at
            .checked_add(len)
            .filter(|&e| e + 4 <= b.len())
            .ok_or_else(|| bad(offset, "chunk runs past the end"))?;
        let bytes = &b[at..end];
        let crc = u32::from_le_bytes([b[end], b[end + 1], b[end + 2], b[end + 3]]);
        if crc32fast::hash(bytes) != crc {
            return Err(bad(offset, "chunk checksum mismatch"));
        }
        let chunk = Chunk::new(bytes).map_err(|e| bad(at as u64, &e.to_string()))?;
        for sample in chunk.iter() {
            out.push(sample.map_err(|e| bad(at as u64, &e.to_string()))?);
        }
        Ok(())
    }
}

/// A block file's body: checks the magic, the version byte and the CRC-32
/// in its last four bytes, which the body excludes.
fn checked_body<'b>(
    b: &'b [u8],
    magic: &[u8; 4],
    file: &Path,
    what: &str,
) -> Result<&'b [u8], Error> {
    let bad = |at: usize, w: String| Error::BadBlock {
        file: file.to_path_buf(),
        offset: at as u64,
        what: w,
    };
    if b.len() < 9 || &b[..4] != magic || b[4] != VERSION {
        return Err(bad(0, "bad magic or version".into()));
    }
    let (body, tail) = b.split_at(b.len() - 4);
    let crc = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    if crc32fast::hash(body) != crc {
        return Err(bad(b.len() - 4, format!("{what} checksum mismatch")));
    }
    Ok(body)
}

fn decode_tombstones(
    b: &[u8],
    file: &Path,
    series: usize,
) -> Result<Vec<(usize, i64, i64)>, Error> {
    let bad = |at: usize, what: &str| Error::BadBlock {
        file: file.to_path_buf(),
        offset: at as u64,
        what: what.into(),
    };
    let body = checked_body(b, TOMBSTONES_MAGIC, file, "tombstones")?;
    let mut r = crate::head::record::Reader {
        b: body,
        at: 5,
        lsn: 0,
    };
    let n = r
        .count(3)
        .map_err(|_| bad(5, "count larger than the file"))?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let at = r.at;
        let i = r.uvarint().map_err(|_| bad(at, "truncated entry"))?;
        let lo = r.varint().map_err(|_| bad(at, "truncated entry"))?;
        let hi = r.varint().map_err(|_| bad(at, "truncated entry"))?;
        match usize::try_from(i) {
            Ok(i) if i < series => out.push((i, lo, hi)),
            _ => return Err(bad(at, "series number out of range")),
        }
    }
    Ok(out)
}

fn decode_index(b: &[u8], file: &Path) -> Result<Vec<(Labels, Vec<ChunkMeta>)>, Error> {
    let bad = |at: usize, what: &str| Error::BadBlock {
        file: file.to_path_buf(),
        offset: at as u64,
        what: what.into(),
    };
    let body = checked_body(b, INDEX_MAGIC, file, "index")?;
    let mut r = crate::head::record::Reader {
        b: body,
        at: 5,
        lsn: 0,
    };
    let map = |e: Error, r: &crate::head::record::Reader<'_>| match e {
        Error::BadRecord { what, .. } => bad(r.at, what),
        other => other,
    };
    let nsyms = r.count(1).map_err(|e| map(e, &r))?;
    let mut syms = Vec::with_capacity(nsyms);
    for _ in 0..nsyms {
        syms.push(r.str().map_err(|e| map(e, &r))?);
    }
    let n = r.count(2).map_err(|e| map(e, &r))?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let k = r.count(2).map_err(|e| map(e, &r))?;
        let mut pairs = Vec::with_capacity(k);
        for _ in 0..k {
            let name = r.uvarint().map_err(|e| map(e, &r))?;
            let value = r.uvarint().map_err(|e| map(e, &r))?;
            let get = |i: u64| syms.get(usize::try_from(i).unwrap_or(usize::MAX)).cloned();
            match (get(name), get(value)) {
                (Some(n), Some(v)) => pairs.push((n, v)),
                _ => return Err(bad(r.at, "symbol number out of range")),
            }
        }
        let labels = Labels::new(pairs).map_err(|_| bad(r.at, "invalid label set"))?;
        let c = r.count(3).map_err(|e| map(e, &r))?;
        let mut metas = Vec::with_capacity(c);
        let mut prev = 0i64;
        for _ in 0..c {
            let mint = prev.wrapping_add(r.varint().map_err(|e| map(e, &r))?);
            let maxt = mint.wrapping_add(r.varint().map_err(|e| map(e, &r))?);
            let offset = r.uvarint().map_err(|e| map(e, &r))?;
            metas.push(ChunkMeta { mint, maxt, offset });
            prev = maxt;
        }
        out.push((labels, metas));
    }
    if r.at != body.len() {
        return Err(bad(r.at, "bytes after the last series"));
    }
    Ok(out)
}

/// Opens every block under `parent`, oldest range first. Directories left by
/// a crash in the middle of a write (`*.tmp`) or of a deletion
/// (`*.deleting`) are removed, never read. A block
/// that does not open is reported beside the others instead of stopping
/// them.
pub fn open_blocks(parent: &Path) -> Result<OpenedBlocks, Error> {
    let entries = match fs::read_dir(parent) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => {
            return Err(Error::Io {
                op: "read directory",
                path: parent.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };
    let mut blocks = Vec::new();
    let mut damaged = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.starts_with("b-") || !path.is_dir() {
            continue;
        }
        if name.ends_with(".tmp") || name.ends_with(".deleting") {
            let _ = fs::remove_dir_all(&path);
            continue;
        }
        match Block::open(&path) {
            Ok(b) => blocks.push(b),
            Err(e) => damaged.push((path, e)),
        }
    }
    blocks.sort_by_key(|b| (b.meta.mint, b.meta.maxt));
    Ok((blocks, damaged))
}

/// Deletes a block directory so that a crash part-way never leaves a block
/// with some files gone: rename it to `<name>.deleting` (atomic), sync the
/// parent, then remove it.
pub fn delete_block(dir: &Path) -> Result<(), Error> {
    let mut doomed = dir.as_os_str().to_owned();
    doomed.push(".deleting");
    let doomed = PathBuf::from(doomed);
    fs::rename(dir, &doomed).map_err(io("rename", dir))?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    fs::remove_dir_all(&doomed).map_err(io("remove", &doomed))
}
