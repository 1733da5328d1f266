//! A block file mapped read-only into memory, the crate's one use of
//! `unsafe`.
//!
//! Block files are never written after the block's directory is renamed
//! into place, so the bytes under a mapping do not change while the store
//! runs. What can still happen is someone truncating a file in place (a
//! stray `truncate`, `> file`, a full disk "cleaned up" by hand): touching a
//! page of the mapping past the new end of the file raises SIGBUS, which
//! would kill the process. Every read of the mapping therefore follows a
//! [`Mapped::check_len`] (once per series read, once per index query), which
//! asks the file's length from the kernel and refuses, with an error naming
//! the file, a file shorter than it was when mapped. What remains is a race: a
//! truncation that lands between that check and the copy or decode of the
//! bytes just checked (microseconds) can still raise SIGBUS. FORMAT.md
//! ("Reading through memory maps") states this guarantee.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::Error;

/// A read-only mapping of a whole file, with the file kept open to check
/// its length before reads.
pub(crate) struct Mapped {
    path: PathBuf,
    file: File,
    map: Mmap,
}

impl Mapped {
    /// Maps `path` read-only.
    pub(crate) fn open(path: &Path) -> Result<Mapped, Error> {
        let io = |op: &'static str| {
            let path = path.to_path_buf();
            move |e: std::io::Error| Error::Io {
                op,
                path,
                reason: e.to_string(),
            }
        };
        let file = File::open(path).map_err(io("open"))?;
        // SAFETY: the mapping is read-only and the store never writes a
        // block file after the block is renamed into place (blocks are
        // immutable; compaction writes new ones), so the bytes behind the
        // returned slice do not change under us. Another process truncating
        // the file would make pages past its new end fault; every access
        // checks the file's current length first (`check_len`),
        // which narrows that to a race documented in FORMAT.md.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(&file) }.map_err(io("map"))?;
        Ok(Mapped {
            path: path.to_path_buf(),
            file,
            map,
        })
    }

    /// The file's path, for errors.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The whole mapping. Callers check [`Mapped::check_len`] before
    /// touching bytes a truncation could have removed.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Fails unless the file still holds at least its mapped length, that
    /// is it was not truncated since it was mapped.
    pub(crate) fn check_len(&self) -> Result<(), Error> {
        let end = self.map.len();
        let now = self.file.metadata().map_err(|e| Error::Io {
            op: "stat",
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        if (now.len() as u128) < end as u128 {
            return Err(Error::BadBlock {
                file: self.path.clone(),
                offset: now.len(),
                what: format!(
                    "file truncated to {} bytes while open (it had {} when mapped)",
                    now.len(),
                    self.map.len()
                ),
            });
        }
        Ok(())
    }
}
