//! The `tail` input: follow files matched by glob patterns.
//!
//! Design notes:
//! - A followed file is a *stream*, known by its identity: device, inode and
//!   a fingerprint (FNV-1a of its first up to 256 bytes). The path only says
//!   where to look. When the path starts naming another inode (rotation by
//!   rename), the old stream keeps being read from its open descriptor to
//!   its end, for `Rotate_Wait`, and the new file is a new stream read from
//!   its head.
//! - A shrink below the read offset, or first bytes that no longer match the
//!   fingerprint, is a copytruncate: before starting over at 0, the unread
//!   rest is looked for in a sibling file whose first bytes match the
//!   fingerprint (the copy `logrotate` just made), so that lines written
//!   between our last read and the truncation are not lost.
//! - Offsets go to the database only as acknowledged by the outputs (the
//!   emitter tracks that); a restart resumes a file only when device, inode
//!   and fingerprint all match, so a reused inode starts from its head.
//! - Reads go through one shared buffer; a stream keeps only its partial
//!   last line between reads.

use super::{Emitter, line_text, now_ns, split_lines};
use crate::config::Section;
use crate::error::{Error, Result};
use crate::offsets::{self, Entry, FINGERPRINT_BYTES, OffsetsDb};
use crate::record::{Fields, Origin, Record, Text, Value};
use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The keys the tail input reads (besides the pipeline's own per-input
/// keys: `Tag`, `Parser`, `Mem_Buf_Limit`, `storage.*`).
pub const KEYS: &[&str] = &[
    "path",
    "exclude_path",
    "read_from_head",
    "refresh_interval",
    "rotate_wait",
    "buffer_chunk_size",
    "buffer_max_size",
    "skip_long_lines",
    "skip_empty_lines",
    "db",
    "db.*",
    "path_key",
    "offset_key",
    "key",
    "ignore_older",
    "inotify_watcher",
    "threaded",
    "exit_on_eof",
];

/// The tail input's settings, with fluent-bit's defaults.
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// Glob patterns (`Path`, comma-separated).
    pub paths: Vec<String>,
    /// Paths to leave alone (`Exclude_Path`, comma-separated globs).
    pub exclude: Vec<glob::Pattern>,
    /// The tag; a `*` in it is replaced by the file's path with `/` turned
    /// into `.` (fluent-bit's `Tag kube.*`).
    pub tag: String,
    /// Read files found at start from their head (`Read_From_Head`, off:
    /// from their end). Files found later are always read from the head.
    pub read_from_head: bool,
    /// How often the patterns are expanded again (`Refresh_Interval`, 60 s).
    pub refresh_interval: Duration,
    /// How long a rotated file is still watched after its end
    /// (`Rotate_Wait`, 5 s).
    pub rotate_wait: Duration,
    /// Bytes read at a time (`Buffer_Chunk_Size`, 32 KiB; reads are at least
    /// 256 KiB here, which costs nothing and reads faster).
    pub chunk_size: usize,
    /// Longest line (`Buffer_Max_Size`, 32 KiB).
    pub max_line: usize,
    /// Drop lines longer than `max_line` (`Skip_Long_Lines`); off: deliver
    /// them in `max_line` pieces, losing nothing (fluent-bit stops following
    /// the file instead).
    pub skip_long_lines: bool,
    /// Drop empty lines (`Skip_Empty_Lines`).
    pub skip_empty_lines: bool,
    /// The offsets database (`DB`).
    pub db: Option<PathBuf>,
    /// Add the file's path under this key (`Path_Key`).
    pub path_key: Option<String>,
    /// Add the line's offset under this key (`Offset_Key`).
    pub offset_key: Option<String>,
    /// The key of the raw line (`Key`, `log`).
    pub key: String,
    /// Skip files not modified for this long (`Ignore_Older`).
    pub ignore_older: Option<Duration>,
    /// Stop the whole pipeline once every file is read to its end
    /// (`Exit_On_Eof`; for batch runs and benchmarks).
    pub exit_on_eof: bool,
    /// How long to sleep when no file had anything new.
    pub poll: Duration,
    /// How often the database is saved while running.
    pub db_interval: Duration,
}

impl Default for TailOptions {
    fn default() -> Self {
        TailOptions {
            paths: Vec::new(),
            exclude: Vec::new(),
            tag: "tail.0".into(),
            read_from_head: false,
            refresh_interval: Duration::from_secs(60),
            rotate_wait: Duration::from_secs(5),
            chunk_size: 32 << 10,
            max_line: 32 << 10,
            skip_long_lines: false,
            skip_empty_lines: false,
            db: None,
            path_key: None,
            offset_key: None,
            key: "log".into(),
            ignore_older: None,
            exit_on_eof: false,
            poll: Duration::from_millis(25),
            db_interval: Duration::from_millis(200),
        }
    }
}

impl TailOptions {
    /// Reads an `[INPUT] Name tail` section. `tag` is the input's tag (the
    /// pipeline's default when the section has none).
    pub fn from_section(s: &Section, tag: &str) -> Result<Self> {
        let mut o = TailOptions {
            tag: tag.to_owned(),
            ..TailOptions::default()
        };
        let path = s
            .get("path")
            .ok_or_else(|| s.error(None, "tail input needs a Path"))?;
        o.paths = split_list(path);
        if o.paths.is_empty() {
            return Err(s.error_at("path", "tail input needs a Path"));
        }
        if let Some(ex) = s.get("exclude_path") {
            for p in split_list(ex) {
                let pat = glob::Pattern::new(&p)
                    .map_err(|e| s.error_at("exclude_path", format!("bad pattern {p:?}: {e}")))?;
                o.exclude.push(pat);
            }
        }
        o.read_from_head = s.get_bool_or("read_from_head", false)?;
        if let Some(d) = s.get_duration("refresh_interval")? {
            o.refresh_interval = d.max(Duration::from_millis(10));
        }
        if let Some(d) = s.get_duration("rotate_wait")? {
            o.rotate_wait = d;
        }
        if let Some(n) = s.get_size("buffer_chunk_size")? {
            o.chunk_size = n as usize;
        }
        if let Some(n) = s.get_size("buffer_max_size")? {
            o.max_line = (n as usize).max(1);
        }
        o.skip_long_lines = s.get_bool_or("skip_long_lines", false)?;
        o.skip_empty_lines = s.get_bool_or("skip_empty_lines", false)?;
        o.db = s.get("db").map(PathBuf::from);
        o.path_key = s.get("path_key").map(str::to_owned);
        o.offset_key = s.get("offset_key").map(str::to_owned);
        if let Some(k) = s.get("key") {
            o.key = k.to_owned();
        }
        o.ignore_older = s.get_duration("ignore_older")?;
        o.exit_on_eof = s.get_bool_or("exit_on_eof", false)?;
        Ok(o)
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// fluent-bit's tag expansion (see [`crate::router::expand_tag`]).
pub fn expand_tag(pattern: &str, path: &Path) -> String {
    crate::router::expand_tag(pattern, &path.to_string_lossy())
}

/// One followed file.
#[derive(Debug)]
struct Stream {
    id: u64,
    path: PathBuf,
    tag: Text,
    file: File,
    dev: u64,
    ino: u64,
    /// Bytes of the file consumed so far (the partial line included).
    offset: u64,
    /// The partial last line, ending at `offset`.
    pending: Vec<u8>,
    /// Inside a long line being skipped.
    skipping: bool,
    fp_len: u32,
    fp: u64,
    rotated: Option<Instant>,
    last_check: Instant,
    at_eof: bool,
}

/// A closed stream whose last records may still be unacknowledged.
#[derive(Debug)]
struct Closing {
    entry: Entry,
    id: u64,
    end: u64,
}

/// The tail input.
#[derive(Debug)]
pub struct Tail {
    opts: TailOptions,
    input: usize,
    streams: Vec<Stream>,
    closing: Vec<Closing>,
    next_id: u64,
    buf: Vec<u8>,
    db: Option<OffsetsDb>,
    /// Database entries of files not yet seen in this run.
    saved: Vec<Entry>,
    first_scan: bool,
    next_scan: Instant,
    next_db: Instant,
    /// Lines dropped by `Skip_Long_Lines` or `Skip_Empty_Lines`.
    pub skipped: u64,
}

impl Tail {
    /// A tail input numbered `input` in its pipeline. Reads the offsets
    /// database, if any.
    pub fn new(opts: TailOptions, input: usize) -> Result<Self> {
        let db = opts.db.as_ref().map(OffsetsDb::new);
        let saved = match &db {
            Some(db) => db.load()?,
            None => Vec::new(),
        };
        let read = opts.chunk_size.max(256 << 10);
        Ok(Tail {
            buf: vec![0; read + opts.max_line],
            opts,
            input,
            streams: Vec::new(),
            closing: Vec::new(),
            next_id: 1,
            db,
            saved,
            first_scan: true,
            next_scan: Instant::now(),
            next_db: Instant::now(),
            skipped: 0,
        })
    }

    /// Follows the files until the emitter says stop; then waits for the
    /// outputs and saves the final offsets.
    pub fn run(&mut self, emit: &mut dyn Emitter) -> Result<()> {
        let result = self.run_loop(emit);
        emit.finish();
        self.save_db(emit)?;
        result
    }

    fn run_loop(&mut self, emit: &mut dyn Emitter) -> Result<()> {
        while !emit.stopping() {
            let progress = self.poll_once(emit)?;
            if !progress
                && self.opts.exit_on_eof
                && self
                    .streams
                    .iter()
                    .all(|s| s.at_eof && s.pending.is_empty())
            {
                emit.request_stop();
            }
            if !progress {
                std::thread::sleep(self.opts.poll);
            }
        }
        Ok(())
    }

    /// One round: rescan when due, read what is new in every stream, close
    /// what is finished, save the database when due. True when anything was
    /// read.
    pub fn poll_once(&mut self, emit: &mut dyn Emitter) -> Result<bool> {
        let now = Instant::now();
        if now >= self.next_scan {
            let first = self.first_scan;
            self.scan(emit)?;
            if first {
                self.resume_rotated(emit);
            }
            self.next_scan = now + self.opts.refresh_interval;
        }
        let mut progress = false;
        let mut rescan = false;
        let mut i = 0;
        while i < self.streams.len() {
            if emit.stopping() {
                return Ok(progress);
            }
            // Identity checks run every 100 ms whether or not the file is
            // being read: a paused input must not read a truncated and
            // regrown file at a stale offset.
            if self.streams[i].last_check.elapsed() >= Duration::from_millis(100) {
                let s = &mut self.streams[i];
                s.last_check = Instant::now();
                if s.rotated.is_none() && moved(s) {
                    s.rotated = Some(Instant::now());
                    if let Some(p) = fd_path(&s.file) {
                        s.path = p;
                    }
                    rescan = true;
                }
                if self.check_truncated(i, emit)? {
                    progress = true;
                }
                let s = &self.streams[i];
                let deleted = s.file.metadata().map(|m| m.nlink() == 0).unwrap_or(true);
                let expired = s
                    .rotated
                    .is_some_and(|t| t.elapsed() >= self.opts.rotate_wait);
                if s.at_eof && (expired || deleted) {
                    // One last read: the writer may have added a line since.
                    if !self.read_stream(i, emit)? {
                        self.close(i, emit);
                        continue;
                    }
                    progress = true;
                }
            }
            progress |= self.read_stream(i, emit)?;
            i += 1;
        }
        if rescan {
            self.scan(emit)?;
        }
        self.forget_acknowledged(emit);
        if self.db.is_some() && Instant::now() >= self.next_db {
            self.save_db(emit)?;
            self.next_db = Instant::now() + self.opts.db_interval;
        }
        Ok(progress)
    }

    fn scan(&mut self, emit: &mut dyn Emitter) -> Result<()> {
        let mut seen = HashSet::new();
        for pat in &self.opts.paths.clone() {
            let paths = match glob::glob(pat) {
                Ok(p) => p,
                Err(e) => {
                    return Err(Error::Config {
                        file: PathBuf::from(pat),
                        line: 0,
                        message: format!("tail Path is not a valid pattern: {e}"),
                    });
                }
            };
            for path in paths.flatten() {
                if self.opts.exclude.iter().any(|x| x.matches_path(&path))
                    || !seen.insert(path.clone())
                {
                    continue;
                }
                self.discover(path, emit);
            }
        }
        self.first_scan = false;
        Ok(())
    }

    fn discover(&mut self, path: PathBuf, emit: &mut dyn Emitter) {
        let Ok(meta) = std::fs::metadata(&path) else {
            return;
        };
        if !meta.is_file() {
            return;
        }
        let (dev, ino) = (meta.dev(), meta.ino());
        if self.streams.iter().any(|s| s.dev == dev && s.ino == ino) {
            return;
        }
        if let Some(age) = self.opts.ignore_older {
            let old = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_some_and(|a| a > age);
            if old {
                return;
            }
        }
        let Ok(file) = File::open(&path) else {
            return;
        };
        let size = meta.len();
        let mut head = [0u8; FINGERPRINT_BYTES];
        let n = read_head(&file, &mut head);
        let fp = offsets::fingerprint(&head[..n]);
        // A saved entry counts only when its fingerprint still matches the
        // file's first bytes: an inode reused by a new file starts over.
        let saved = self.saved.iter().position(|e| {
            e.dev == dev
                && e.ino == ino
                && (e.fp_len as usize) <= n
                && offsets::fingerprint(&head[..e.fp_len as usize]) == e.fingerprint
        });
        let offset = match saved {
            Some(k) => {
                let e = self.saved.swap_remove(k);
                if e.offset <= size { e.offset } else { 0 }
            }
            None if self.first_scan && !self.opts.read_from_head => size,
            None => 0,
        };
        let tag = expand_tag(&self.opts.tag, &path);
        self.open(
            path,
            tag.into(),
            file,
            dev,
            ino,
            offset,
            n as u32,
            fp,
            None,
            emit,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        path: PathBuf,
        tag: Text,
        file: File,
        dev: u64,
        ino: u64,
        offset: u64,
        fp_len: u32,
        fp: u64,
        rotated: Option<Instant>,
        emit: &mut dyn Emitter,
    ) {
        use std::io::Seek;
        let mut file = file;
        let offset = match file.seek(std::io::SeekFrom::Start(offset)) {
            Ok(o) => o,
            Err(_) => return,
        };
        let id = self.next_id;
        self.next_id += 1;
        emit.open_stream(id, offset);
        self.streams.push(Stream {
            id,
            path,
            tag,
            file,
            dev,
            ino,
            offset,
            pending: Vec::new(),
            skipping: false,
            fp_len,
            fp,
            rotated,
            last_check: Instant::now(),
            at_eof: false,
        });
    }

    /// Files in the database that the first scan did not find (rotated
    /// away before a restart): when their saved path, or a file next to it,
    /// is still the same file (device, inode, fingerprint), it is read to
    /// its end from the saved offset, then closed as a rotated file.
    fn resume_rotated(&mut self, emit: &mut dyn Emitter) {
        let saved = std::mem::take(&mut self.saved);
        for e in saved {
            let mut candidates = vec![e.path.clone()];
            if let Some(dir) = e.path.parent() {
                if let Ok(entries) = std::fs::read_dir(dir) {
                    candidates.extend(entries.flatten().map(|d| d.path()));
                }
            }
            for path in candidates {
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if meta.dev() != e.dev || meta.ino() != e.ino || !meta.is_file() {
                    continue;
                }
                let Ok(file) = File::open(&path) else {
                    continue;
                };
                let mut head = [0u8; FINGERPRINT_BYTES];
                let n = read_head(&file, &mut head);
                let same = (e.fp_len as usize) <= n
                    && offsets::fingerprint(&head[..e.fp_len as usize]) == e.fingerprint;
                if !same || e.offset > meta.len() {
                    break;
                }
                // Tagged by the name it had when it was followed.
                let tag = expand_tag(&self.opts.tag, &e.path);
                let fp = offsets::fingerprint(&head[..n]);
                self.open(
                    path,
                    tag.into(),
                    file,
                    e.dev,
                    e.ino,
                    e.offset,
                    n as u32,
                    fp,
                    Some(Instant::now()),
                    emit,
                );
                break;
            }
        }
    }

    /// Reads once from stream `i`; true when bytes came.
    fn read_stream(&mut self, i: usize, emit: &mut dyn Emitter) -> Result<bool> {
        let s = &mut self.streams[i];
        let plen = s.pending.len();
        self.buf[..plen].copy_from_slice(&s.pending);
        let room = self.buf.len() - plen;
        let want = room.min(self.opts.chunk_size.max(256 << 10));
        let n = match s.file.read(&mut self.buf[plen..plen + want]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(Error::io(&s.path, e)),
        };
        if n == 0 {
            s.at_eof = true;
            return Ok(false);
        }
        s.at_eof = false;
        // Were these bytes read from the same contents? A copytruncate
        // followed by new writes past our offset would otherwise be read
        // as a continuation. Checked after the read, so no window remains.
        let mut head = [0u8; FINGERPRINT_BYTES];
        let hn = read_head(&s.file, &mut head);
        let fp_len = s.fp_len as usize;
        if hn < fp_len || offsets::fingerprint(&head[..fp_len]) != s.fp {
            use std::io::Seek;
            let back = s.offset;
            s.file
                .seek(std::io::SeekFrom::Start(back))
                .map_err(|e| Error::io(&s.path, e))?;
            self.truncated(i, emit)?;
            return Ok(true);
        }
        if hn > fp_len {
            s.fp_len = hn as u32;
            s.fp = offsets::fingerprint(&head[..hn]);
        }
        s.offset += n as u64;
        let base = s.offset - (plen + n) as u64;
        let (records, consumed, bytes) = self.lines(i, base, plen + n, false);
        let s = &mut self.streams[i];
        s.pending.clear();
        s.pending.extend_from_slice(&self.buf[consumed..plen + n]);
        let end = base + consumed as u64;
        if consumed > 0 || !records.is_empty() {
            let id = s.id;
            if !records.is_empty() || consumed > 0 {
                emit.emit(id, end, records, bytes);
            }
        }
        Ok(true)
    }

    /// Cuts `self.buf[..len]` (stream `i`'s bytes from file offset `base`)
    /// into records. Returns them, the bytes consumed and the bytes they
    /// hold. With `flush`, a last line without newline is taken too.
    fn lines(
        &mut self,
        i: usize,
        base: u64,
        len: usize,
        flush: bool,
    ) -> (Vec<Record>, usize, usize) {
        let s = &mut self.streams[i];
        let opts = &self.opts;
        let now = now_ns();
        let mut records = Vec::new();
        let mut bytes = 0;
        let mut skipped = 0;
        let mut make = |line: &[u8], end: usize, records: &mut Vec<Record>| {
            // Collected, not pushed, so the fields vector is allocated at
            // its exact size (pushing reserves four entries at once).
            let text = (opts.key.clone(), Value::from(line_text(line)));
            let path = opts
                .path_key
                .as_ref()
                .map(|k| (k.clone(), Value::from(s.path.to_string_lossy().as_ref())));
            let offset = opts
                .offset_key
                .as_ref()
                .map(|k| (k.clone(), Value::Int((base + end as u64) as i64)));
            let fields: Fields = std::iter::once(text).chain(path).chain(offset).collect();
            let r = Record {
                tag: s.tag.clone(),
                time_ns: now,
                fields,
                origin: Some(Origin {
                    input: self.input,
                    stream: s.id,
                    end: base + end as u64,
                }),
            };
            bytes += line.len() + 1;
            records.push(r);
        };
        let buf = &self.buf[..len];
        let mut consumed = split_lines(buf, |line, end| {
            if s.skipping {
                // The tail of a long line being skipped.
                s.skipping = false;
                skipped += 1;
                return;
            }
            if line.len() > opts.max_line {
                if opts.skip_long_lines {
                    skipped += 1;
                    return;
                }
                let start = end - line.len() - 1;
                for (k, piece) in line.chunks(opts.max_line).enumerate() {
                    let piece_end = (start + (k + 1) * opts.max_line).min(end);
                    make(piece, piece_end, &mut records);
                }
                return;
            }
            if line.is_empty() && opts.skip_empty_lines {
                skipped += 1;
                return;
            }
            make(line, end, &mut records);
        });
        let rest = len - consumed;
        if rest > 0 && (flush || rest >= opts.max_line) {
            if s.skipping || opts.skip_long_lines && !flush {
                s.skipping = !flush;
                consumed = len;
            } else {
                let line = &buf[consumed..len];
                make(line, len, &mut records);
                consumed = len;
            }
        }
        self.skipped += skipped;
        (records, consumed, bytes)
    }

    /// Detects a copytruncate on stream `i`; when it happened, reads what
    /// was left unread from the copy and starts over at 0. True when the
    /// stream was reset.
    fn check_truncated(&mut self, i: usize, emit: &mut dyn Emitter) -> Result<bool> {
        let s = &mut self.streams[i];
        let Ok(meta) = s.file.metadata() else {
            return Ok(false);
        };
        let mut head = [0u8; FINGERPRINT_BYTES];
        let n = read_head(&s.file, &mut head);
        let fp_ok =
            (s.fp_len as usize) <= n && offsets::fingerprint(&head[..s.fp_len as usize]) == s.fp;
        if meta.len() >= s.offset && fp_ok {
            if n > s.fp_len as usize {
                s.fp_len = n as u32;
                s.fp = offsets::fingerprint(&head[..n]);
            }
            return Ok(false);
        }
        self.truncated(i, emit)?;
        Ok(true)
    }

    /// Stream `i` was truncated: take the unread rest from the copy, if
    /// one is found, and start over at 0.
    fn truncated(&mut self, i: usize, emit: &mut dyn Emitter) -> Result<()> {
        self.recover_from_copy(i, emit)?;
        let s = &mut self.streams[i];
        s.offset = 0;
        s.pending.clear();
        s.skipping = false;
        s.fp_len = 0;
        s.fp = offsets::fingerprint(&[]);
        use std::io::Seek;
        s.file
            .seek(std::io::SeekFrom::Start(0))
            .map_err(|e| Error::io(&s.path, e))?;
        Ok(())
    }

    /// The copy `logrotate` makes before truncating: a sibling whose name
    /// starts with this file's name, whose first bytes match the stream's
    /// fingerprint and which reaches at least our offset. Reads from our
    /// offset to its end as the stream's continuation.
    fn recover_from_copy(&mut self, i: usize, emit: &mut dyn Emitter) -> Result<()> {
        let s = &self.streams[i];
        if s.fp_len == 0 {
            return Ok(());
        }
        let (Some(dir), Some(name)) = (s.path.parent(), s.path.file_name()) else {
            return Ok(());
        };
        let name = name.to_string_lossy().into_owned();
        let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) else {
            return Ok(());
        };
        let mut best: Option<(SystemTime, File)> = None;
        for entry in entries.flatten() {
            let fname = entry.file_name().to_string_lossy().into_owned();
            if fname == name || !fname.starts_with(&name) {
                continue;
            }
            let Ok(f) = File::open(entry.path()) else {
                continue;
            };
            let Ok(m) = f.metadata() else { continue };
            if (m.dev() == s.dev && m.ino() == s.ino) || m.len() < s.offset {
                continue;
            }
            let mut head = vec![0u8; s.fp_len as usize];
            if read_head(&f, &mut head) != head.len() || offsets::fingerprint(&head) != s.fp {
                continue;
            }
            let mtime = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if best.as_ref().is_none_or(|(t, _)| mtime > *t) {
                best = Some((mtime, f));
            }
        }
        let Some((_, copy)) = best else {
            return Ok(());
        };
        let mut pos = self.streams[i].offset;
        loop {
            let plen = self.streams[i].pending.len();
            let pending = std::mem::take(&mut self.streams[i].pending);
            self.buf[..plen].copy_from_slice(&pending);
            let want = (self.buf.len() - plen).min(self.opts.chunk_size.max(256 << 10));
            let n = copy
                .read_at(&mut self.buf[plen..plen + want], pos)
                .map_err(|e| Error::io(&self.streams[i].path, e))?;
            let base = pos - plen as u64;
            let (records, consumed, bytes) = self.lines(i, base, plen + n, n == 0);
            let s = &mut self.streams[i];
            s.pending.extend_from_slice(&self.buf[consumed..plen + n]);
            pos += n as u64;
            s.offset = pos;
            if !records.is_empty() {
                let id = s.id;
                emit.emit(id, base + consumed as u64, records, bytes);
            }
            if n == 0 {
                break;
            }
        }
        Ok(())
    }

    fn close(&mut self, i: usize, emit: &mut dyn Emitter) {
        let s = self.streams.swap_remove(i);
        let end = s.offset - s.pending.len() as u64;
        self.closing.push(Closing {
            entry: Entry {
                dev: s.dev,
                ino: s.ino,
                fp_len: s.fp_len,
                fingerprint: s.fp,
                offset: end,
                path: s.path,
            },
            id: s.id,
            end,
        });
        self.forget_acknowledged(emit);
    }

    fn forget_acknowledged(&mut self, emit: &mut dyn Emitter) {
        self.closing.retain(|c| {
            let done = emit.committed(c.id).is_some_and(|o| o >= c.end);
            if done {
                emit.close_stream(c.id);
            }
            !done
        });
    }

    /// The database as of now: every stream (open or closing) at its
    /// acknowledged offset, plus saved entries not seen yet in this run (a
    /// file that is back after a while must not lose its place).
    fn entries(&self, emit: &dyn Emitter) -> Vec<Entry> {
        let mut out: Vec<Entry> = self
            .streams
            .iter()
            .map(|s| Entry {
                dev: s.dev,
                ino: s.ino,
                fp_len: s.fp_len,
                fingerprint: s.fp,
                offset: emit.committed(s.id).unwrap_or(0),
                path: s.path.clone(),
            })
            .collect();
        for c in &self.closing {
            let mut e = c.entry.clone();
            e.offset = emit.committed(c.id).unwrap_or(0).min(c.end);
            out.push(e);
        }
        out.extend(self.saved.iter().cloned());
        out
    }

    fn save_db(&mut self, emit: &dyn Emitter) -> Result<()> {
        if let Some(db) = &self.db {
            db.save(&self.entries(emit))?;
        }
        Ok(())
    }

    /// Number of streams being read.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }
}

/// Whether the stream's path now names another file (or none).
fn moved(s: &Stream) -> bool {
    match std::fs::metadata(&s.path) {
        Ok(m) => m.dev() != s.dev || m.ino() != s.ino,
        Err(_) => true,
    }
}

/// The current name of an open file, from `/proc/self/fd` (Linux).
fn fd_path(f: &File) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    let p = std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())).ok()?;
    if p.to_string_lossy().ends_with(" (deleted)") {
        return None;
    }
    Some(p)
}

fn read_head(f: &File, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], got as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Collect;
    use std::io::Write;

    fn opts(dir: &Path) -> TailOptions {
        TailOptions {
            paths: vec![dir.join("*.log").to_string_lossy().into_owned()],
            read_from_head: true,
            tag: "app.*".into(),
            rotate_wait: Duration::from_millis(0),
            ..TailOptions::default()
        }
    }

    fn logs(c: &Collect) -> Vec<String> {
        c.records
            .iter()
            .map(|r| r.fields.get("log").unwrap().as_str().unwrap().to_owned())
            .collect()
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn settle(t: &mut Tail, c: &mut Collect) {
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(110));
            while t.poll_once(c).unwrap() {}
        }
    }

    #[test]
    fn tag_expansion_like_fluent_bit() {
        assert_eq!(
            expand_tag("kube.*", Path::new("/var/log/containers/a.log")),
            "kube.var.log.containers.a.log"
        );
        assert_eq!(expand_tag("fixed", Path::new("/x")), "fixed");
    }

    #[test]
    fn reads_lines_keeps_partial_ones_and_tags_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        append(&p, "one\ntwo\nthr");
        let mut t = Tail::new(opts(dir.path()), 0).unwrap();
        let mut c = Collect::default();
        t.poll_once(&mut c).unwrap();
        assert_eq!(logs(&c), ["one", "two"]);
        append(&p, "ee\n");
        t.poll_once(&mut c).unwrap();
        assert_eq!(logs(&c), ["one", "two", "three"]);
        let tag = &c.records[0].tag;
        assert!(tag.starts_with("app.") && tag.ends_with(".a.log"), "{tag}");
        assert_eq!(c.records[2].origin.unwrap().end, 14);
    }

    #[test]
    fn without_read_from_head_starts_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        append(&p, "old\n");
        let mut o = opts(dir.path());
        o.read_from_head = false;
        let mut t = Tail::new(o, 0).unwrap();
        let mut c = Collect::default();
        t.poll_once(&mut c).unwrap();
        append(&p, "new\n");
        t.poll_once(&mut c).unwrap();
        assert_eq!(logs(&c), ["new"]);
    }

    #[test]
    fn long_lines_are_split_or_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        append(&p, &format!("short\n{}\nafter\n", "x".repeat(25)));
        let mut o = opts(dir.path());
        o.max_line = 10;
        let mut t = Tail::new(o.clone(), 0).unwrap();
        let mut c = Collect::default();
        t.poll_once(&mut c).unwrap();
        assert_eq!(
            logs(&c),
            ["short", "xxxxxxxxxx", "xxxxxxxxxx", "xxxxx", "after"]
        );
        o.skip_long_lines = true;
        let mut t = Tail::new(o, 0).unwrap();
        let mut c = Collect::default();
        t.poll_once(&mut c).unwrap();
        assert_eq!(logs(&c), ["short", "after"]);
        assert_eq!(t.skipped, 1);
    }

    #[test]
    fn rename_rotation_reads_old_file_to_its_end_then_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        append(&p, "1\n2\n");
        let mut t = Tail::new(opts(dir.path()), 0).unwrap();
        let mut c = Collect::default();
        t.poll_once(&mut c).unwrap();
        let mut old = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::fs::rename(&p, dir.path().join("a.log.1")).unwrap();
        old.write_all(b"3\n").unwrap();
        append(&p, "4\n");
        settle(&mut t, &mut c);
        assert_eq!(logs(&c), ["1", "2", "3", "4"]);
        assert_eq!(
            t.stream_count(),
            1,
            "the rotated file is closed after Rotate_Wait"
        );
    }

    #[test]
    fn copytruncate_reads_the_unread_rest_from_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        append(&p, "1\n2\n");
        let mut t = Tail::new(opts(dir.path()), 0).unwrap();
        let mut c = Collect::default();
        t.poll_once(&mut c).unwrap();
        append(&p, "3\n4\n");
        // Not read yet: copied away, then the original is truncated.
        std::fs::copy(&p, dir.path().join("a.log.1")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&p, "5\n");
        let mut o = opts(dir.path());
        o.paths = vec![p.to_string_lossy().into_owned()];
        settle(&mut t, &mut c);
        assert_eq!(logs(&c), ["1", "2", "3", "4", "5"]);
    }

    #[test]
    fn restart_resumes_at_the_acknowledged_offset_and_not_on_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        let mut o = opts(dir.path());
        o.db = Some(dir.path().join("tail.db"));
        append(&p, "1\n2\n");
        {
            let mut t = Tail::new(o.clone(), 0).unwrap();
            let mut c = Collect::default();
            t.poll_once(&mut c).unwrap();
            t.save_db(&c).unwrap();
        }
        append(&p, "3\n");
        {
            let mut t = Tail::new(o.clone(), 0).unwrap();
            let mut c = Collect::default();
            t.poll_once(&mut c).unwrap();
            assert_eq!(logs(&c), ["3"]);
            t.save_db(&c).unwrap();
        }
        // Same path, new file (maybe even the same inode): the fingerprint
        // differs, so it is read from its head.
        std::fs::remove_file(&p).unwrap();
        append(&p, "A\nB\nC\n");
        let mut t = Tail::new(o, 0).unwrap();
        let mut c = Collect::default();
        t.poll_once(&mut c).unwrap();
        assert_eq!(logs(&c), ["A", "B", "C"]);
    }
}
