//! Immutable blocks on disk: the samples of a time range, written once to a
//! temporary directory and renamed into place, so a crash never leaves half
//! a block visible (FORMAT.md, "Block").
//!
//! A block directory holds `meta.json` (range and counts), `chunks` (sealed
//! chunks, each framed with its length and a CRC-32 of its bytes) and `index`
//! (symbols, each series' labels with the place and range of its chunks,
//! postings, and tables to find them, with a CRC-32 of the whole file). Both
//! files are mapped read-only; opening a block checks the index's CRC and
//! its table of contents and builds nothing in memory. Chunk CRCs are
//! checked as chunks are read, so one damaged chunk fails only the series
//! that read it: its own, and those whose chunks share its timestamp
//! section (`shared`: series scraped together store their timestamps once
//! per block).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::chunk::{Chunk, ChunkPolicy, ChunkWriter};
use crate::head::record::{put_uvarint, put_varint};
use crate::index::Matcher;
use crate::labels::Labels;

mod index;
mod mapped;
pub mod plan;
mod shared;

use index::{ChunkMeta, IndexReader};
use mapped::Mapped;

const CHUNKS_MAGIC: &[u8; 4] = b"VTSC";
const TOMBSTONES_MAGIC: &[u8; 4] = b"VTST";
const VERSION: u8 = 1;
/// The `chunks` file's version: 2 adds shared timestamp sections (`0x03`
/// chunks); version 1 files (written before) are read as they are.
const CHUNKS_VERSION: u8 = 2;

/// A series' samples, oldest first.
pub type Samples = Vec<(i64, f64)>;

/// Series with their samples, or the error reading them (a damaged chunk
/// fails only the series that read it).
pub type Selected = Vec<(Labels, Result<Samples, Error>)>;

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

/// Writes a block of the given series (labels and samples in time order,
/// each series once) for the range `[mint, maxt)` into a new directory under
/// `parent`, and returns its path. Samples outside the range are left out.
pub fn write_block(
    parent: &Path,
    mint: i64,
    maxt: i64,
    series: impl IntoIterator<Item = (Labels, Vec<(i64, f64)>)>,
) -> Result<PathBuf, Error> {
    let list = series
        .into_iter()
        .map(|(l, v)| (l, SeriesData::Samples(v)))
        .collect();
    write_block_data(parent, mint, maxt, list)
}

/// A chunk copied as it is from a block (its CRC checked when read).
pub(crate) struct RawChunk {
    mint: i64,
    maxt: i64,
    samples: u64,
    bytes: Vec<u8>,
}

/// What [`write_block_data`] writes for a series.
pub(crate) enum SeriesData {
    /// Samples in time order, cut into chunks by the default policy.
    Samples(Samples),
    /// Chunks taken whole from another block (compaction of a series that
    /// lives in one source block only): no decoding, no re-encoding.
    Chunks(Vec<RawChunk>),
}

/// [`write_block`] for samples or whole chunks; each series once.
pub(crate) fn write_block_data(
    parent: &Path,
    mint: i64,
    maxt: i64,
    mut list: Vec<(Labels, SeriesData)>,
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

    list.sort_by(|a, b| a.0.cmp(&b.0));
    let mut chunks: Vec<u8> = Vec::new();
    chunks.extend_from_slice(CHUNKS_MAGIC);
    chunks.extend_from_slice(&[CHUNKS_VERSION, 0, 0, 0]);
    let mut entries: Vec<(Labels, Vec<ChunkMeta>)> = Vec::new();
    let (mut n_samples, mut n_chunks) = (0u64, 0u64);
    let policy = ChunkPolicy::default();
    let mut dedup = shared::Dedup::default();
    let mut frame = |chunks: &mut Vec<u8>, metas: &mut Vec<ChunkMeta>, lo, hi, bytes: &[u8]| {
        let offset = chunks.len() as u64;
        metas.push(ChunkMeta {
            mint: lo,
            maxt: hi,
            offset,
        });
        let rewritten = dedup.rewrite(bytes, offset);
        let bytes = rewritten.as_deref().unwrap_or(bytes);
        put_uvarint(chunks, bytes.len() as u64);
        chunks.extend_from_slice(bytes);
        chunks.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
    };
    for (labels, data) in list {
        let mut metas = Vec::new();
        match data {
            SeriesData::Chunks(raw) => {
                for c in raw {
                    frame(&mut chunks, &mut metas, c.mint, c.maxt, &c.bytes);
                    n_samples += c.samples;
                }
            }
            SeriesData::Samples(samples) => {
                let mut w = ChunkWriter::new();
                let mut flush =
                    |w: &mut ChunkWriter, metas: &mut Vec<ChunkMeta>, chunks: &mut Vec<u8>| {
                        if let (Some(first), Some(last)) = (w.first_time(), w.last_time()) {
                            frame(chunks, metas, first, last, &w.seal());
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
            }
        }
        if !metas.is_empty() {
            n_chunks += metas.len() as u64;
            entries.push((labels, metas));
        }
    }
    let index = index::encode(&entries, &tmp.join("index"))?;
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

/// An open block.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    /// The `chunks` file, mapped.
    chunks: Mapped,
    /// The `index` file, mapped.
    index: IndexReader,
    /// Deleted ranges: (series number in the index, mint, maxt), inclusive.
    /// Behind a lock so that a block shared with running queries can take
    /// deletions.
    tombstones: RwLock<Vec<(usize, i64, i64)>>,
}

/// A series a block query selected: its labels and the chunks that overlap
/// the query's range, read only when [`Block::read_series`] is called.
#[derive(Debug, Clone)]
pub struct BlockSeries {
    /// The series' labels.
    pub labels: Labels,
    /// Its number in the block's index (tombstones name it).
    number: usize,
    chunks: Vec<ChunkMeta>,
}

impl Block {
    /// Opens the block in `dir`: reads `meta.json`, maps `chunks` and
    /// `index`, checks the index's CRC-32 and table of contents, reads
    /// `tombstones` if there is one. Nothing else is read or built.
    pub fn open(dir: &Path) -> Result<Block, Error> {
        let meta_path = dir.join("meta.json");
        let meta_bytes = fs::read(&meta_path).map_err(io("read", &meta_path))?;
        let meta: BlockMeta = serde_json::from_slice(&meta_bytes).map_err(|e| Error::BadBlock {
            file: meta_path.clone(),
            offset: 0,
            what: format!("meta.json does not parse: {e}"),
        })?;
        if meta.version != 1 {
            return Err(Error::BadBlock {
                file: meta_path,
                offset: 0,
                what: format!("unknown block version {}", meta.version),
            });
        }
        let chunks = Mapped::open(&dir.join("chunks"))?;
        chunks.check_len()?;
        if chunks.bytes().get(..4) != Some(CHUNKS_MAGIC)
            || !matches!(chunks.bytes().get(4), Some(&VERSION | &CHUNKS_VERSION))
        {
            return Err(Error::BadBlock {
                file: dir.join("chunks"),
                offset: 0,
                what: "bad magic or version".into(),
            });
        }
        let index = IndexReader::open(&dir.join("index"))?;
        let tombstones = match fs::read(dir.join("tombstones")) {
            Ok(b) => decode_tombstones(&b, &dir.join("tombstones"), index.len())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("read", &dir.join("tombstones"))(e)),
        };
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            chunks,
            index,
            tombstones: RwLock::new(tombstones),
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
        !self.tombstones.read().is_empty()
    }

    /// Number of tombstone entries (deleted ranges of series).
    pub fn tombstone_count(&self) -> usize {
        self.tombstones.read().len()
    }

    /// The series all `matchers` select that have a chunk overlapping
    /// `[mint, maxt]`, in label order, without reading a chunk: read each
    /// with [`Block::read_series`].
    pub fn select_series(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<BlockSeries>, Error> {
        self.index.check()?;
        let mut out = Vec::new();
        for id in self.index.select(matchers)? {
            let (labels, mut chunks) = self.index.series(id)?;
            chunks.retain(|m| m.maxt >= mint && m.mint <= maxt);
            if !chunks.is_empty() {
                out.push(BlockSeries {
                    labels,
                    number: id as usize,
                    chunks,
                });
            }
        }
        Ok(out)
    }

    /// Appends the samples of `s` in `[mint, maxt]` that no tombstone
    /// deletes to `out`, decoding its chunks (their CRC-32 checked). `s`
    /// must come from this block's [`Block::select_series`].
    pub fn read_series(
        &self,
        s: &BlockSeries,
        mint: i64,
        maxt: i64,
        out: &mut Vec<(i64, f64)>,
    ) -> Result<(), Error> {
        // One length check per series: the chunks file was not truncated
        // under the mapping (see `mapped`).
        self.chunks.check_len()?;
        let start = out.len();
        let mut buf = Vec::new();
        for m in &s.chunks {
            self.read_chunk(m.offset, &mut buf, out)?;
        }
        let dead: Vec<(i64, i64)> = self
            .tombstones
            .read()
            .iter()
            .filter(|x| x.0 == s.number)
            .map(|x| (x.1, x.2))
            .collect();
        let mut keep = start;
        for i in start..out.len() {
            let (t, v) = out[i];
            if t >= mint && t <= maxt && !dead.iter().any(|&(lo, hi)| t >= lo && t <= hi) {
                out[keep] = (t, v);
                keep += 1;
            }
        }
        out.truncate(keep);
        Ok(())
    }

    /// The series all `matchers` select with samples in `[mint, maxt]`, in
    /// label order, with their samples (chunk CRCs are checked as read; a
    /// damaged chunk fails only the series that read it). Fails as a whole only when the
    /// index cannot be read.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Selected, Error> {
        Ok(self
            .select_series(matchers, mint, maxt)?
            .into_iter()
            .map(|s| {
                let mut v = Vec::new();
                let r = self.read_series(&s, mint, maxt, &mut v).map(|()| v);
                (s.labels, r)
            })
            .collect())
    }

    /// Marks the samples in `[mint, maxt]` of the series `matchers` select
    /// as deleted: a `tombstones` file, replaced atomically (written,
    /// fsynced, renamed). Compaction drops them for good. Returns how many
    /// series were marked.
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<usize, Error> {
        self.index.check()?;
        let ids = self.index.select(matchers)?;
        if ids.is_empty() || maxt < self.meta.mint || mint >= self.meta.maxt {
            return Ok(0);
        }
        // Held across the write so two deletions do not lose one another.
        let mut tombstones = self.tombstones.write();
        let mut all = tombstones.clone();
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
        *tombstones = all;
        Ok(ids.len())
    }

    /// Label names of the selected series, sorted.
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, Error> {
        self.index.check()?;
        self.index.label_names(matchers)
    }

    /// Values of `name` among the selected series, sorted.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, Error> {
        self.index.check()?;
        self.index.label_values(name, matchers)
    }

    /// The chunks of `s` copied whole, or `None` when a tombstone names
    /// the series (its chunks must then be decoded and filtered). For
    /// compaction of a series that lives in this block only.
    pub(crate) fn raw_chunks(&self, s: &BlockSeries) -> Result<Option<Vec<RawChunk>>, Error> {
        if self.tombstones.read().iter().any(|x| x.0 == s.number) {
            return Ok(None);
        }
        self.chunks.check_len()?;
        let mut out = Vec::with_capacity(s.chunks.len());
        let mut buf = Vec::new();
        for m in &s.chunks {
            // A shared-timestamp chunk is handed out sealed again: the
            // block it goes to shares by its own offsets.
            let (bytes, at) = self.chunk_at(m.offset, &mut buf)?;
            let chunk = Chunk::new(bytes).map_err(|e| self.bad_chunk(at as u64, &e.to_string()))?;
            out.push(RawChunk {
                mint: m.mint,
                maxt: m.maxt,
                samples: chunk.len() as u64,
                bytes: bytes.to_vec(),
            });
        }
        Ok(Some(out))
    }

    fn bad_chunk(&self, at: u64, what: &str) -> Error {
        Error::BadBlock {
            file: self.dir.join("chunks"),
            offset: at,
            what: what.into(),
        }
    }

    /// The bytes of the chunk framed at `offset`, CRC-32 checked, and where
    /// they start in the file.
    fn chunk_bytes(&self, offset: u64) -> Result<(&[u8], usize), Error> {
        let bad = |at: u64, what: &str| self.bad_chunk(at, what);
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
        Ok((bytes, at))
    }

    /// The chunk framed at `offset` as the codec reads it: its own bytes,
    /// or for a shared-timestamp (`0x03`) chunk the sealed chunk put back
    /// together in `buf` from the chunk it refers to (FORMAT.md, `chunks`).
    fn chunk_at<'s>(
        &'s self,
        offset: u64,
        buf: &'s mut Vec<u8>,
    ) -> Result<(&'s [u8], usize), Error> {
        let (bytes, at) = self.chunk_bytes(offset)?;
        if bytes.first() != Some(&shared::ENC_SHARED_TS) {
            return Ok((bytes, at));
        }
        let bad = |w: &str| self.bad_chunk(at as u64, w);
        if self.chunks.bytes().get(4) != Some(&CHUNKS_VERSION) {
            return Err(bad("shared-timestamp chunk in a version 1 chunks file"));
        }
        let (first, layouts, values) = shared::parse_shared(bytes, offset).map_err(bad)?;
        let (base, base_at) = self.chunk_bytes(first)?;
        let parts = shared::split_sealed(base).ok_or_else(|| {
            self.bad_chunk(
                base_at as u64,
                "the chunk a shared-timestamp chunk refers to is not a sealed chunk",
            )
        })?;
        shared::join(&parts, layouts, values, buf).map_err(bad)?;
        let buf: &'s Vec<u8> = buf;
        Ok((buf.as_slice(), at))
    }

    fn read_chunk(
        &self,
        offset: u64,
        buf: &mut Vec<u8>,
        out: &mut Vec<(i64, f64)>,
    ) -> Result<(), Error> {
        let (bytes, at) = self.chunk_at(offset, buf)?;
        let chunk = Chunk::new(bytes).map_err(|e| self.bad_chunk(at as u64, &e.to_string()))?;
        for sample in chunk.iter() {
            out.push(sample.map_err(|e| self.bad_chunk(at as u64, &e.to_string()))?);
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
