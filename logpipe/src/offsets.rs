//! The tail input's checkpoint database (`DB` in fluent-bit's tail input).
//!
//! One small file holds, for every file the input follows, its identity
//! (device, inode and a fingerprint of its first bytes), the last path it was
//! seen under and the byte offset up to which every output that matched its
//! records has acknowledged them. The whole file is rewritten on each save:
//! temporary file, fsync, rename over the old one, directory fsync. A crash at
//! any point leaves either the old or the new file, never a mix, so loading
//! never has to repair anything; a checksum still guards against damage from
//! outside. The bytes are in `FORMAT.md`.
//!
//! All I/O goes through vigil-wal's [`Storage`] trait so that tests can run
//! the database on a simulated file system and cut the power at any step.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vigil_wal::io::{StdFs, Storage};

/// The file's first bytes.
pub const MAGIC: &[u8; 7] = b"VLPOFFS";
/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// How many leading bytes of a file its fingerprint covers (fewer while the
/// file is shorter).
pub const FINGERPRINT_BYTES: usize = 256;

/// One followed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `st_dev` of the file.
    pub dev: u64,
    /// `st_ino` of the file.
    pub ino: u64,
    /// How many leading bytes [`Entry::fingerprint`] covers.
    pub fp_len: u32,
    /// [`fingerprint`] of the first `fp_len` bytes.
    pub fingerprint: u64,
    /// Acknowledged byte offset: reading resumes here.
    pub offset: u64,
    /// The path the file was last seen under (a rotated file's new name).
    pub path: PathBuf,
}

/// FNV-1a, 64 bits: stable across Rust versions and platforms (the standard
/// library's hasher is not), and the inputs are at most a few hundred bytes.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The checkpoint database at one path.
#[derive(Debug, Clone)]
pub struct OffsetsDb {
    path: PathBuf,
    tmp: PathBuf,
    dir: PathBuf,
    storage: Arc<dyn Storage>,
}

impl OffsetsDb {
    /// The database at `path` on the real file system.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_storage(path, Arc::new(StdFs))
    }

    /// The database at `path` on `storage` (tests pass a simulated one).
    pub fn with_storage(path: impl Into<PathBuf>, storage: Arc<dyn Storage>) -> Self {
        let path = path.into();
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        OffsetsDb {
            path,
            tmp: PathBuf::from(tmp),
            dir,
            storage,
        }
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the entries; none when the file does not exist yet. A leftover
    /// temporary file (a crash during a save) is ignored: the rename never
    /// happened, so the old file is the truth.
    pub fn load(&self) -> Result<Vec<Entry>> {
        let file = match self.storage.open(&self.path, false) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let len = file.len().map_err(|e| Error::io(&self.path, e))?;
        let len = usize::try_from(len).map_err(|_| self.corrupt(0, "file too large"))?;
        let mut buf = vec![0u8; len];
        let mut got = 0;
        while got < len {
            let n = file
                .read_at(got as u64, &mut buf[got..])
                .map_err(|e| Error::io(&self.path, e))?;
            if n == 0 {
                break;
            }
            got += n;
        }
        buf.truncate(got);
        decode(&buf).map_err(|(offset, what)| self.corrupt(offset, what))
    }

    /// Replaces the database with `entries`, durably and atomically.
    pub fn save(&self, entries: &[Entry]) -> Result<()> {
        let bytes = encode(entries);
        self.storage
            .create_dir_all(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?;
        let file = self
            .storage
            .open(&self.tmp, true)
            .map_err(|e| Error::io(&self.tmp, e))?;
        file.set_len(0).map_err(|e| Error::io(&self.tmp, e))?;
        file.write_at(0, &bytes)
            .map_err(|e| Error::io(&self.tmp, e))?;
        file.sync_data().map_err(|e| Error::io(&self.tmp, e))?;
        drop(file);
        self.storage
            .rename(&self.tmp, &self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        self.storage
            .sync_dir(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))
    }

    fn corrupt(&self, offset: usize, what: &str) -> Error {
        Error::Offsets {
            path: self.path.clone(),
            offset,
            message: what.to_owned(),
        }
    }
}

/// The file's bytes for `entries` (layout in `FORMAT.md`).
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + entries.len() * 64);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.dev.to_le_bytes());
        out.extend_from_slice(&e.ino.to_le_bytes());
        out.extend_from_slice(&e.fp_len.to_le_bytes());
        out.extend_from_slice(&e.fingerprint.to_le_bytes());
        out.extend_from_slice(&e.offset.to_le_bytes());
        let path = e.path.as_os_str().as_encoded_bytes();
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads the bytes of a database file; on failure the byte offset and what
/// was wrong there.
pub fn decode(buf: &[u8]) -> std::result::Result<Vec<Entry>, (usize, &'static str)> {
    if buf.len() < MAGIC.len() + 1 + 4 + 4 {
        return Err((0, "shorter than the header and checksum"));
    }
    if &buf[..MAGIC.len()] != MAGIC {
        return Err((0, "not an offsets database (bad magic)"));
    }
    if buf[MAGIC.len()] != VERSION {
        return Err((MAGIC.len(), "unsupported version"));
    }
    let body_end = buf.len() - 4;
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&buf[body_end..]);
    if crc32fast::hash(&buf[..body_end]) != u32::from_le_bytes(crc) {
        return Err((body_end, "checksum mismatch"));
    }
    let mut r = Cursor {
        buf: &buf[..body_end],
        pos: MAGIC.len() + 1,
    };
    let count = r.u32()? as usize;
    let mut out = Vec::with_capacity(count.min(4096));
    for _ in 0..count {
        let dev = r.u64()?;
        let ino = r.u64()?;
        let fp_len = r.u32()?;
        let fingerprint = r.u64()?;
        let offset = r.u64()?;
        let n = r.u32()? as usize;
        let path = r.bytes(n)?;
        let path = std::str::from_utf8(path).map_err(|_| (r.pos - n, "path is not UTF-8"))?;
        out.push(Entry {
            dev,
            ino,
            fp_len,
            fingerprint,
            offset,
            path: PathBuf::from(path),
        });
    }
    if r.pos != r.buf.len() {
        return Err((r.pos, "bytes after the last entry"));
    }
    Ok(out)
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&mut self, n: usize) -> std::result::Result<&'a [u8], (usize, &'static str)> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or((self.pos, "entry runs past the end"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> std::result::Result<u32, (usize, &'static str)> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.bytes(4)?);
        Ok(u32::from_le_bytes(a))
    }

    fn u64(&mut self) -> std::result::Result<u64, (usize, &'static str)> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.bytes(8)?);
        Ok(u64::from_le_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vigil_wal::io::SimFs;

    fn entry(i: u64) -> Entry {
        Entry {
            dev: 2049,
            ino: 1000 + i,
            fp_len: 256,
            fingerprint: fingerprint(&i.to_le_bytes()),
            offset: i * 4096,
            path: PathBuf::from(format!("/var/log/app-{i}.log")),
        }
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(
            raw in proptest::collection::vec((any::<u64>(), any::<u64>(), any::<u32>(), any::<u64>(), any::<u64>(), "[a-z/._-]{0,40}"), 0..20)
        ) {
            let entries: Vec<Entry> = raw.into_iter().map(|(dev, ino, fp_len, fingerprint, offset, path)| Entry {
                dev, ino, fp_len, fingerprint, offset, path: PathBuf::from(path),
            }).collect();
            let bytes = encode(&entries);
            prop_assert_eq!(decode(&bytes).unwrap(), entries);
        }

        #[test]
        fn any_damage_is_reported_never_a_panic(flip in 0usize..200, bit in 0u8..8) {
            let mut bytes = encode(&[entry(1), entry(2)]);
            let i = flip % bytes.len();
            bytes[i] ^= 1 << bit;
            prop_assert!(decode(&bytes).is_err());
            for cut in 0..bytes.len() {
                prop_assert!(decode(&bytes[..cut]).is_err());
            }
        }
    }

    #[test]
    fn missing_file_is_empty_and_saves_replace() {
        let dir = tempfile::tempdir().unwrap();
        let db = OffsetsDb::new(dir.path().join("tail.db"));
        assert_eq!(db.load().unwrap(), vec![]);
        db.save(&[entry(1), entry(2)]).unwrap();
        assert_eq!(db.load().unwrap(), vec![entry(1), entry(2)]);
        db.save(&[entry(3)]).unwrap();
        assert_eq!(db.load().unwrap(), vec![entry(3)]);
    }

    #[test]
    fn damaged_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tail.db");
        std::fs::write(&path, b"VLPOFFS\x01garbage!").unwrap();
        let err = OffsetsDb::new(&path).load().unwrap_err().to_string();
        assert!(err.contains("tail.db"), "{err}");
        assert!(err.contains("checksum"), "{err}");
        std::fs::write(&path, b"VLPOFFS\x07\0\0\0\0\0\0\0\0").unwrap();
        let err = OffsetsDb::new(&path).load().unwrap_err().to_string();
        assert!(err.contains("unsupported version"), "{err}");
    }

    /// A power cut at every possible point of a save, keeping any prefix of
    /// what was not yet made durable: the database reads back as the old or
    /// the new contents, never anything else and never an error.
    #[test]
    fn power_cut_during_save_keeps_old_or_new() {
        let path = PathBuf::from("/db/tail.db");
        let old = vec![entry(1), entry(2)];
        let new = vec![entry(1), entry(2), entry(3)];
        // The save stops at each step in turn: its write, its file fsync,
        // its directory fsync, or not at all.
        for fault in 0..4 {
            for keep in [0u64, 1, 7, 40, u64::MAX] {
                let fs = Arc::new(SimFs::new());
                let db = OffsetsDb::with_storage(&path, fs.clone());
                db.save(&old).unwrap();
                match fault {
                    0 => fs.fail_write_in(0),
                    1 => fs.fail_sync_in(0),
                    2 => fs.fail_sync_in(1),
                    _ => {}
                }
                let _ = db.save(&new);
                let crashed = Arc::new(fs.crash(|n| n.min(keep)));
                let got = OffsetsDb::with_storage(&path, crashed).load().unwrap();
                assert!(
                    got == old || got == new,
                    "fault {fault} keep {keep}: {got:?}"
                );
            }
        }
    }
}
