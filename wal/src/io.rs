//! All file I/O of the log goes through the [`Storage`] trait.
//!
//! Two implementations ship: [`StdFs`], the real file system (positional writes,
//! `fdatasync`, `fallocate`, read-only `mmap`, an `flock` on the directory), and
//! [`SimFs`], an in-memory file system that remembers which bytes and which
//! directory entries were made durable, can simulate a power cut that drops
//! everything else, and can fail the Nth write or fsync or run out of space.
//! The crash and fault-injection tests run the log on `SimFs`; nothing in the
//! log itself knows which one it has.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

/// A file system as the log needs it. Paths are absolute or relative to the
/// process's working directory; the log only ever uses files directly inside
/// its own directory.
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// Create `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names (not paths) of the entries of `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Open a file for reading and writing, creating it (empty) if `create`
    /// and it does not exist. A created file's directory entry is durable only
    /// after [`Storage::sync_dir`].
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn StorageFile>>;
    /// Remove a file. Durable only after [`Storage::sync_dir`].
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Atomically replace `to` with `from`. Durable only after [`Storage::sync_dir`].
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Make the directory's entries (creations, removals, renames) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// A read-only view of the first `len` bytes of a file. `len` must not
    /// exceed the file's length. The view stays valid after the file is
    /// removed; bytes beyond `len` may change under it and are never read.
    fn map(&self, path: &Path, len: u64) -> io::Result<Bytes>;
    /// Take an exclusive lock on `dir` for one writer; released when the
    /// returned guard drops. Fails with `WouldBlock` if another holder exists.
    fn lock(&self, dir: &Path) -> io::Result<Box<dyn std::any::Any + Send + Sync>>;
}

/// An open file.
#[allow(clippy::len_without_is_empty)]
pub trait StorageFile: Send + Sync + std::fmt::Debug {
    /// Write all of `buf` at `offset`. On error any prefix of `buf` may have
    /// been written.
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Write `bufs` one after the other from `offset`, as one write where the
    /// system has one (`pwritev`). On error any prefix of their concatenation
    /// may have been written. The default writes them in turn.
    fn write_vectored_at(&self, offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
        let mut at = offset;
        for buf in bufs {
            self.write_at(at, buf)?;
            at += buf.len() as u64;
        }
        Ok(())
    }
    /// Read into `buf` from `offset`; returns how many bytes were read
    /// (fewer only at the end of the file).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Make the file's contents (and its length) durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Cut or extend (with zeros) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Reserve disk blocks for the first `len` bytes, so that later writes
    /// below `len` do not fail for want of space. May do nothing.
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// The file's current length.
    fn len(&self) -> io::Result<u64>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

#[derive(Debug)]
struct StdFile(File);

impl Storage for StdFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                out.push(name.to_owned());
            }
        }
        Ok(out)
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Box::new(StdFile(file)))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    #[allow(unsafe_code)]
    fn map(&self, path: &Path, len: u64) -> io::Result<Bytes> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let file = File::open(path)?;
        let len_usize = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
        // SAFETY: the mapping is read-only and covers only bytes below `len`,
        // which the caller guarantees is within the file. The log never
        // rewrites bytes below a reader's limit (records are appended after
        // it, and cuts happen only above durable data or before any reader
        // exists), so the mapped bytes a reader looks at do not change. A
        // file that is removed while mapped stays readable on Unix.
        let map = unsafe { memmap2::MmapOptions::new().len(len_usize).map(&file)? };
        Ok(Bytes::from_owner(map))
    }

    fn lock(&self, dir: &Path) -> io::Result<Box<dyn std::any::Any + Send + Sync>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("LOCK"))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(io::Error::from)?;
        Ok(Box::new(file))
    }
}

impl StorageFile for StdFile {
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn write_vectored_at(&self, offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
        // Linux takes at most this many buffers per call (UIO_MAXIOV).
        const MAX_IOV: usize = 1024;
        let mut slices: Vec<io::IoSlice<'_>> = bufs
            .iter()
            .filter(|b| !b.is_empty())
            .map(|b| io::IoSlice::new(b))
            .collect();
        let mut rest = &mut slices[..];
        let mut at = offset;
        while !rest.is_empty() {
            let n = rest.len().min(MAX_IOV);
            let written = match rustix::io::pwritev(&self.0, &rest[..n], at) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(w) => w,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            at += written as u64;
            // A short write: skip what was written, resume in the middle of
            // a buffer if need be.
            io::IoSlice::advance_slices(&mut rest, written);
        }
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.0.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let current = self.0.metadata()?.len();
        if len <= current {
            return Ok(());
        }
        match rustix::fs::fallocate(&self.0, rustix::fs::FallocateFlags::empty(), 0, len) {
            Ok(()) => Ok(()),
            // Not every file system can reserve blocks; a sparse extension
            // still keeps the file length fixed, which is what saves metadata
            // updates on fdatasync.
            Err(rustix::io::Errno::OPNOTSUPP) => self.0.set_len(len),
            Err(e) => Err(e.into()),
        }
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

// ---------------------------------------------------------------------------
// SimFs
// ---------------------------------------------------------------------------

/// One I/O operation as [`SimFs`] saw it, for tests that check the order of
/// writes, fsyncs and directory changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimOp {
    /// A file was created.
    Create(PathBuf),
    /// Bytes were written at an offset.
    Write {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// How many bytes.
        len: usize,
    },
    /// The file was cut or extended.
    SetLen(PathBuf, u64),
    /// `sync_data` on a file.
    SyncFile(PathBuf),
    /// `sync_dir` on a directory.
    SyncDir(PathBuf),
    /// A file was renamed.
    Rename(PathBuf, PathBuf),
    /// A file was removed.
    Remove(PathBuf),
}

#[derive(Debug, Clone)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Clone, Default)]
struct SimInode {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Changes since the last sync, in order; a crash applies a prefix.
    pending: Vec<Pending>,
}

#[derive(Debug, Default)]
struct SimState {
    inodes: HashMap<u64, SimInode>,
    next_inode: u64,
    live_dir: BTreeMap<PathBuf, u64>,
    durable_dir: BTreeMap<PathBuf, u64>,
    dirs: Vec<PathBuf>,
    locks: Vec<PathBuf>,
    ops: Vec<SimOp>,
    record_ops: bool,
    fail_write_in: Option<u64>,
    fail_sync_in: Option<u64>,
    capacity: Option<u64>,
}

impl SimState {
    fn used(&self) -> u64 {
        self.inodes.values().map(|i| i.live.len() as u64).sum()
    }

    fn inode(&mut self, path: &Path) -> io::Result<&mut SimInode> {
        let id = *self
            .live_dir
            .get(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        Ok(self
            .inodes
            .get_mut(&id)
            .expect("directory entry without inode"))
    }

    fn op(&mut self, op: SimOp) {
        if self.record_ops {
            self.ops.push(op);
        }
    }

    fn countdown(slot: &mut Option<u64>) -> bool {
        match slot {
            Some(0) => {
                *slot = None;
                true
            }
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    }
}

/// An in-memory file system for tests: it tracks which bytes and directory
/// entries are durable, can simulate a crash, and can inject faults.
///
/// Cloning gives another handle to the same file system.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<SimState>>,
}

#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<SimState>>,
    path: PathBuf,
    inode: u64,
}

impl SimFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Make the `n`th write from now (0 = the next one) fail with an I/O error,
    /// after writing a prefix of its bytes.
    pub fn fail_write_in(&self, n: u64) {
        self.state.lock().fail_write_in = Some(n);
    }

    /// Make the `n`th file or directory sync from now (0 = the next one) fail.
    pub fn fail_sync_in(&self, n: u64) {
        self.state.lock().fail_sync_in = Some(n);
    }

    /// Limit the total bytes of all files; writes and allocations beyond it
    /// fail with `StorageFull` (after writing what fits). `None` lifts it.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.state.lock().capacity = bytes;
    }

    /// Bytes currently held by all files.
    pub fn used(&self) -> u64 {
        self.state.lock().used()
    }

    /// Start (or stop) recording the operations, clearing what was recorded.
    pub fn record_ops(&self, on: bool) {
        let mut st = self.state.lock();
        st.record_ops = on;
        st.ops.clear();
    }

    /// The operations recorded since [`SimFs::record_ops`].
    pub fn ops(&self) -> Vec<SimOp> {
        self.state.lock().ops.clone()
    }

    /// The live contents of a file (what a reader in the running process sees).
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let mut st = self.state.lock();
        st.inode(path).ok().map(|i| i.live.clone())
    }

    /// Overwrite the live and durable contents of a file (as damage on the
    /// medium would): for bit-flip and truncation tests.
    pub fn corrupt(&self, path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
        let mut st = self.state.lock();
        if let Ok(inode) = st.inode(path) {
            f(&mut inode.live);
            inode.durable = inode.live.clone();
            inode.pending.clear();
        }
    }

    /// A power cut: a new file system holding only what was durable, plus, for
    /// each file, the prefix of its unsynced changes chosen by `keep` (called
    /// with the number of unsynced bytes; it returns how many survive, in
    /// write order). Directory entries not synced are lost; a file whose
    /// entry is lost is lost whatever its data.
    pub fn crash(&self, mut keep: impl FnMut(u64) -> u64) -> SimFs {
        let st = self.state.lock();
        let mut new = SimState {
            next_inode: st.next_inode,
            dirs: st.dirs.clone(),
            ..SimState::default()
        };
        for (path, id) in &st.durable_dir {
            let Some(inode) = st.inodes.get(id) else {
                continue;
            };
            let total: u64 = inode
                .pending
                .iter()
                .map(|p| match p {
                    Pending::Write { data, .. } => data.len() as u64,
                    Pending::SetLen(_) => 1,
                })
                .sum();
            let mut budget = keep(total).min(total);
            let mut content = inode.durable.clone();
            for p in &inode.pending {
                if budget == 0 {
                    break;
                }
                match p {
                    Pending::Write { offset, data } => {
                        let n = (budget as usize).min(data.len());
                        let off = *offset as usize;
                        if content.len() < off + n {
                            content.resize(off + n, 0);
                        }
                        content[off..off + n].copy_from_slice(&data[..n]);
                        budget -= n as u64;
                    }
                    Pending::SetLen(len) => {
                        content.resize(*len as usize, 0);
                        budget -= 1;
                    }
                }
            }
            new.inodes.insert(
                *id,
                SimInode {
                    live: content.clone(),
                    durable: content,
                    pending: Vec::new(),
                },
            );
            new.live_dir.insert(path.clone(), *id);
            new.durable_dir.insert(path.clone(), *id);
        }
        SimFs {
            state: Arc::new(Mutex::new(new)),
        }
    }
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl Storage for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        if !st.dirs.iter().any(|d| d == dir) {
            st.dirs.push(dir.to_path_buf());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.state.lock();
        if !st.dirs.iter().any(|d| d == dir) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        Ok(st
            .live_dir
            .keys()
            .filter(|p| parent(p) == dir)
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn StorageFile>> {
        let mut st = self.state.lock();
        let inode = match st.live_dir.get(path) {
            Some(id) => *id,
            None if create => {
                if !st.dirs.iter().any(|d| *d == parent(path)) {
                    return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
                }
                st.next_inode += 1;
                let id = st.next_inode;
                st.inodes.insert(id, SimInode::default());
                st.live_dir.insert(path.to_path_buf(), id);
                st.op(SimOp::Create(path.to_path_buf()));
                id
            }
            None => return Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
        };
        Ok(Box::new(SimFile {
            state: self.state.clone(),
            path: path.to_path_buf(),
            inode,
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.live_dir
            .remove(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        st.op(SimOp::Remove(path.to_path_buf()));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        let id = st
            .live_dir
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        st.live_dir.insert(to.to_path_buf(), id);
        st.op(SimOp::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        if SimState::countdown(&mut st.fail_sync_in) {
            return Err(io::Error::other("injected directory fsync failure"));
        }
        st.durable_dir.retain(|p, _| parent(p) != dir);
        let entries: Vec<(PathBuf, u64)> = st
            .live_dir
            .iter()
            .filter(|(p, _)| parent(p) == dir)
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        st.durable_dir.extend(entries);
        st.op(SimOp::SyncDir(dir.to_path_buf()));
        Ok(())
    }

    fn map(&self, path: &Path, len: u64) -> io::Result<Bytes> {
        let mut st = self.state.lock();
        let inode = st.inode(path)?;
        let len = len as usize;
        if len > inode.live.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "map beyond end of file",
            ));
        }
        Ok(Bytes::copy_from_slice(&inode.live[..len]))
    }

    fn lock(&self, dir: &Path) -> io::Result<Box<dyn std::any::Any + Send + Sync>> {
        let mut st = self.state.lock();
        if st.locks.iter().any(|d| d == dir) {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "locked"));
        }
        st.locks.push(dir.to_path_buf());
        Ok(Box::new(SimLock {
            state: self.state.clone(),
            dir: dir.to_path_buf(),
        }))
    }
}

struct SimLock {
    state: Arc<Mutex<SimState>>,
    dir: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.state.lock().locks.retain(|d| *d != self.dir);
    }
}

impl StorageFile for SimFile {
    /// One write, as `pwritev` is: an injected failure or a full disk
    /// stops it part-way through the concatenated buffers.
    fn write_vectored_at(&self, offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
        self.write_at(offset, &bufs.concat())
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let mut st = self.state.lock();
        let fail = SimState::countdown(&mut st.fail_write_in);
        let used = st.used();
        let capacity = st.capacity;
        let inode = st
            .inodes
            .get_mut(&self.inode)
            .expect("open file without inode");
        let end = offset as usize + buf.len();
        let growth = end.saturating_sub(inode.live.len()) as u64;
        let mut n = buf.len();
        let mut err = None;
        if fail {
            n = buf.len() / 2;
            err = Some(io::Error::other("injected write failure"));
        }
        if let Some(cap) = capacity {
            if used + growth > cap {
                let room = (cap.saturating_sub(used)) as usize;
                let fits = (inode.live.len() + room).saturating_sub(offset as usize);
                n = n.min(fits);
                err = Some(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "No space left on device (simulated)",
                ));
            }
        }
        let off = offset as usize;
        if inode.live.len() < off + n {
            inode.live.resize(off + n, 0);
        }
        inode.live[off..off + n].copy_from_slice(&buf[..n]);
        inode.pending.push(Pending::Write {
            offset,
            data: buf[..n].to_vec(),
        });
        st.op(SimOp::Write {
            path: self.path.clone(),
            offset,
            len: n,
        });
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let st = self.state.lock();
        let inode = st.inodes.get(&self.inode).expect("open file without inode");
        let off = (offset as usize).min(inode.live.len());
        let n = buf.len().min(inode.live.len() - off);
        buf[..n].copy_from_slice(&inode.live[off..off + n]);
        Ok(n)
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut st = self.state.lock();
        if SimState::countdown(&mut st.fail_sync_in) {
            return Err(io::Error::other("injected fsync failure"));
        }
        let inode = st
            .inodes
            .get_mut(&self.inode)
            .expect("open file without inode");
        inode.durable = inode.live.clone();
        inode.pending.clear();
        st.op(SimOp::SyncFile(self.path.clone()));
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut st = self.state.lock();
        let used = st.used();
        let capacity = st.capacity;
        let inode = st
            .inodes
            .get_mut(&self.inode)
            .expect("open file without inode");
        let growth = len.saturating_sub(inode.live.len() as u64);
        if let Some(cap) = capacity {
            if growth > 0 && used + growth > cap {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "No space left on device (simulated)",
                ));
            }
        }
        inode.live.resize(len as usize, 0);
        inode.pending.push(Pending::SetLen(len));
        st.op(SimOp::SetLen(self.path.clone(), len));
        Ok(())
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let current = self.len()?;
        if len > current {
            self.set_len(len)?;
        }
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let st = self.state.lock();
        Ok(st
            .inodes
            .get(&self.inode)
            .map(|i| i.live.len() as u64)
            .unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn a_crash_keeps_only_synced_bytes_and_synced_entries() {
        let fs = SimFs::new();
        fs.create_dir_all(&p("/d")).unwrap();
        let a = fs.open(&p("/d/a"), true).unwrap();
        a.write_at(0, b"durable").unwrap();
        a.sync_data().unwrap();
        // The file's bytes are synced but its directory entry is not.
        assert!(fs.crash(|n| n).contents(&p("/d/a")).is_none());
        fs.sync_dir(&p("/d")).unwrap();
        a.write_at(7, b" and more").unwrap();
        let none = fs.crash(|_| 0);
        assert_eq!(none.contents(&p("/d/a")).unwrap(), b"durable");
        let some = fs.crash(|n| n - 2);
        assert_eq!(some.contents(&p("/d/a")).unwrap(), b"durable and mo");
        // The running file system still sees everything.
        assert_eq!(fs.contents(&p("/d/a")).unwrap(), b"durable and more");
    }

    #[test]
    fn renames_and_removals_need_a_directory_sync() {
        let fs = SimFs::new();
        fs.create_dir_all(&p("/d")).unwrap();
        let t = fs.open(&p("/d/t"), true).unwrap();
        t.write_at(0, b"x").unwrap();
        t.sync_data().unwrap();
        fs.sync_dir(&p("/d")).unwrap();
        fs.rename(&p("/d/t"), &p("/d/f")).unwrap();
        let before = fs.crash(|n| n);
        assert!(before.contents(&p("/d/t")).is_some());
        assert!(before.contents(&p("/d/f")).is_none());
        fs.sync_dir(&p("/d")).unwrap();
        let after = fs.crash(|n| n);
        assert!(after.contents(&p("/d/t")).is_none());
        assert_eq!(after.contents(&p("/d/f")).unwrap(), b"x");
    }

    #[test]
    fn injected_faults_fire_once_at_the_chosen_call() {
        let fs = SimFs::new();
        fs.create_dir_all(&p("/d")).unwrap();
        let f = fs.open(&p("/d/f"), true).unwrap();
        fs.fail_write_in(1);
        f.write_at(0, b"ok").unwrap();
        assert!(f.write_at(2, b"fail").is_err());
        f.write_at(2, b"ok").unwrap();
        fs.fail_sync_in(0);
        assert!(f.sync_data().is_err());
        f.sync_data().unwrap();
        fs.set_capacity(Some(fs.used() + 3));
        let e = f.write_at(4, b"toolong").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        // What fit was written, as a real short write would.
        assert_eq!(fs.contents(&p("/d/f")).unwrap(), b"okoktoo");
    }

    #[test]
    fn a_failed_vectored_write_is_one_write_that_stops_part_way() {
        let fs = SimFs::new();
        fs.create_dir_all(&p("/d")).unwrap();
        let f = fs.open(&p("/d/f"), true).unwrap();
        fs.record_ops(true);
        fs.fail_write_in(0);
        assert!(f.write_vectored_at(0, &[b"abc", b"", b"defgh"]).is_err());
        // Half of the eight bytes, across the first buffer's end.
        assert_eq!(fs.contents(&p("/d/f")).unwrap(), b"abcd");
        f.write_vectored_at(2, &[b"CD", b"EF"]).unwrap();
        assert_eq!(fs.contents(&p("/d/f")).unwrap(), b"abCDEF");
        let writes = fs.ops();
        assert_eq!(writes.len(), 2, "{writes:?}");
    }

    #[test]
    fn std_fs_writes_more_buffers_than_one_call_takes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = StdFs.open(&path, true).unwrap();
        // More than the 1024 buffers one pwritev takes, with empty ones.
        let parts: Vec<Vec<u8>> = (0..2500u32)
            .map(|i| vec![i as u8; (i % 7) as usize])
            .collect();
        let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        f.write_vectored_at(10, &slices).unwrap();
        let want: Vec<u8> = std::iter::repeat_n(0, 10).chain(parts.concat()).collect();
        assert_eq!(std::fs::read(&path).unwrap(), want);
    }

    #[test]
    fn std_fs_maps_and_locks() {
        let dir = std::env::temp_dir().join(format!("vigil-wal-io-{}", std::process::id()));
        let fs = StdFs;
        fs.create_dir_all(&dir).unwrap();
        let lock = fs.lock(&dir).unwrap();
        assert_eq!(
            fs.lock(&dir).err().map(|e| e.kind()),
            Some(io::ErrorKind::WouldBlock)
        );
        drop(lock);
        let f = fs.open(&dir.join("x"), true).unwrap();
        f.write_at(0, b"hello").unwrap();
        f.allocate(4096).unwrap();
        assert_eq!(f.len().unwrap(), 4096);
        assert_eq!(&fs.map(&dir.join("x"), 5).unwrap()[..], b"hello");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
