//! The `kmsg` input: the kernel's log buffer, read from `/dev/kmsg` (driver
//! and file-system errors, OOM kills, panics: the node's own log), as
//! fluent-bit's input of the same name.
//!
//! Each read of `/dev/kmsg` returns one record (the kernel's
//! `Documentation/ABI/testing/dev-kmsg`):
//!
//! ```text
//! 6,1234,5678901,-;usb 1-1: new high-speed USB device number 2
//!  SUBSYSTEM=usb
//!  DEVICE=c189:1
//! ```
//!
//! `priority,sequence,microseconds since boot,flag[,more];message`, then
//! dictionary lines that begin with a space. The priority is `facility * 8
//! + level`. Bytes the kernel cannot print come as `\xNN`, and are decoded.
//! A record becomes `priority` (the level 0-7, fluent-bit's field),
//! `facility`, `sequence`, `sec` and `usec` (since boot), `msg`, and `dict`
//! (a map of the dictionary lines) when there are any. Its time is the boot
//! time plus the offset: the boot time is now minus `/proc/uptime`
//! (`CLOCK_BOOTTIME`), read once when the input starts, or `/proc/stat`'s
//! `btime` when that cannot be read.
//!
//! Continuation lines: kernels before 4.9 (and some since, for `pr_cont`
//! without a newline) split one line into a record flagged `c` and
//! fragments flagged `+`; they are joined into one record, emitted when the
//! next record that is not a fragment comes or the buffer has no more to
//! read.
//!
//! Keys: `Prio_Level` (fluent-bit's: records of a level above it are
//! dropped; default 8, all), and `Path`, which reads a file of records
//! (one record per line, dictionary lines beginning with a space, as
//! `/dev/kmsg` gives them) instead of the device, once, as a fixture.
//!
//! Opening `/dev/kmsg` needs `CAP_SYSLOG` when `kernel.dmesg_restrict` is
//! 1 (and some container runtimes hide it): the input then stops with an
//! error that says so, and the rest of the pipeline runs on.
//!
//! Like fluent-bit's, the input reads the whole buffer the kernel still
//! holds when it starts, so a restart reads again what it read before.

use super::{Emitter, now_ns};
use crate::config::Section;
use crate::error::{Error, Result};
use crate::record::{Fields, Record, Text, Value};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The keys the kmsg input reads.
pub const KEYS: &[&str] = &["prio_level", "path"];

/// The device.
pub const DEVICE: &str = "/dev/kmsg";

/// Records emitted in one batch at most.
const BATCH: usize = 512;
/// The largest record the kernel hands out is about 8 KiB (a line of up to
/// 1 KiB, escaped up to four times, and its dictionary); a smaller read
/// buffer makes the read fail with `EINVAL`.
const READ_BUF: usize = 16 << 10;

/// One record of the kernel log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsgEntry {
    /// Level, 0 (emergency) to 7 (debug).
    pub level: u8,
    /// Facility (0 for the kernel's own, others for `/dev/kmsg` writers).
    pub facility: u32,
    /// The kernel's sequence number.
    pub sequence: u64,
    /// Microseconds since boot.
    pub usec: u64,
    /// `-`, `c` (the first of continued fragments) or `+` (a fragment).
    pub flag: char,
    /// The message, `\xNN` escapes decoded.
    pub message: String,
    /// The dictionary lines (`SUBSYSTEM=usb`), in order.
    pub dict: Vec<(String, String)>,
}

/// Why a record did not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsgError(pub String);

impl std::fmt::Display for KmsgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(what: &str) -> KmsgError {
    KmsgError(format!("not a kmsg record: {what}"))
}

/// Decodes the kernel's `\xNN` escapes (it escapes `\` itself too); text
/// that is not UTF-8 after decoding gets replacement characters.
fn unescape(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && s.get(i + 1) == Some(&b'x') {
            let hex = s
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn number<T: std::str::FromStr>(field: Option<&[u8]>, what: &str) -> Result<T, KmsgError> {
    field
        .and_then(|f| std::str::from_utf8(f).ok())
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| bad(&format!("no {what}")))
}

/// Reads one record: its header line and any dictionary lines after it.
pub fn parse_record(rec: &[u8]) -> Result<KmsgEntry, KmsgError> {
    let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
    let semi = memchr::memchr(b';', rec).ok_or_else(|| bad("no ';' after the prefix"))?;
    let (prefix, rest) = (&rec[..semi], &rec[semi + 1..]);
    let mut fields = prefix.split(|&b| b == b',');
    let pri: u64 = number(fields.next(), "priority")?;
    let sequence: u64 = number(fields.next(), "sequence number")?;
    let usec: u64 = number(fields.next(), "timestamp")?;
    // Kernels before 3.6 had no flag field; a missing one reads as `-`.
    let flag = match fields.next() {
        None | Some(b"-") => '-',
        Some(b"c") => 'c',
        Some(b"+") => '+',
        Some(_) => return Err(bad("flag is not -, c or +")),
    };
    let facility = u32::try_from(pri >> 3).map_err(|_| bad("priority out of range"))?;
    let level = (pri & 7) as u8;
    let mut lines = rest.split(|&b| b == b'\n');
    let message = unescape(lines.next().unwrap_or(&[]));
    let mut dict = Vec::new();
    for l in lines {
        let Some(kv) = l.strip_prefix(b" ") else {
            return Err(bad("a line after the message does not begin with a space"));
        };
        let eq = memchr::memchr(b'=', kv).ok_or_else(|| bad("dictionary line without '='"))?;
        dict.push((unescape(&kv[..eq]), unescape(&kv[eq + 1..])));
    }
    Ok(KmsgEntry {
        level,
        facility,
        sequence,
        usec,
        flag,
        message,
        dict,
    })
}

/// Splits a fixture file into records: a line that does not begin with a
/// space starts one; empty lines are skipped. Yields each record's bytes
/// and the offset just past it.
pub fn split_records(text: &[u8]) -> Vec<(&[u8], usize)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    while pos < text.len() {
        let end = memchr::memchr(b'\n', &text[pos..]).map_or(text.len(), |i| pos + i + 1);
        let line = &text[pos..end];
        if !line.starts_with(b" ") {
            if let Some(s) = start.take() {
                out.push((&text[s..pos], pos));
            }
            if line.iter().any(|b| !b.is_ascii_whitespace()) {
                start = Some(pos);
            }
        }
        pos = end;
    }
    if let Some(s) = start {
        out.push((&text[s..], text.len()));
    }
    out
}

/// Joins continued fragments (`c` then `+` ...) into one entry.
#[derive(Debug, Default)]
pub struct KmsgJoiner {
    pending: Option<KmsgEntry>,
}

impl KmsgJoiner {
    /// Takes the next entry; complete entries go to `out`.
    pub fn push(&mut self, e: KmsgEntry, out: &mut Vec<KmsgEntry>) {
        if e.flag == '+'
            && let Some(p) = self.pending.as_mut()
        {
            p.message.push_str(&e.message);
            p.dict.extend(e.dict);
            return;
        }
        self.flush(out);
        if e.flag == 'c' {
            self.pending = Some(e);
        } else {
            out.push(e);
        }
    }

    /// Emits a pending entry (nothing more came to continue it).
    pub fn flush(&mut self, out: &mut Vec<KmsgEntry>) {
        if let Some(p) = self.pending.take() {
            out.push(p);
        }
    }
}

/// The boot time in nanoseconds since the epoch: now minus the uptime in
/// `/proc/uptime`, else `/proc/stat`'s `btime` (whole seconds).
pub fn boot_time_ns() -> Option<i64> {
    if let Ok(text) = std::fs::read_to_string("/proc/uptime")
        && let Some(up) = text
            .split_whitespace()
            .next()
            .and_then(|u| u.parse::<f64>().ok())
    {
        return Some(now_ns() - (up * 1e9) as i64);
    }
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<i64>()
        .ok()?;
    btime.checked_mul(1_000_000_000)
}

/// The kmsg input.
#[derive(Debug, Clone)]
pub struct Kmsg {
    tag: String,
    prio_level: u8,
    path: Option<PathBuf>,
    boot_ns: Option<i64>,
}

impl Kmsg {
    /// From an `[INPUT] Name kmsg` section.
    pub fn from_section(s: &Section, tag: &str) -> Result<Self> {
        let prio_level = match s.get_usize("prio_level")? {
            None => 8,
            Some(n @ 0..=8) => n as u8,
            Some(n) => {
                return Err(s.error_at("prio_level", format!("Prio_Level {n} is not 0 to 8")));
            }
        };
        Ok(Kmsg {
            tag: tag.to_owned(),
            prio_level,
            path: s.get("path").map(PathBuf::from),
            boot_ns: None,
        })
    }

    /// An input reading `path` (a fixture) or the device, tagging records
    /// `tag`, with this boot time (tests; read from the system otherwise).
    pub fn new(tag: &str, path: Option<PathBuf>, boot_ns: Option<i64>) -> Self {
        Kmsg {
            tag: tag.to_owned(),
            prio_level: 8,
            path,
            boot_ns,
        }
    }

    /// The record an entry makes.
    pub fn record(&self, e: KmsgEntry, boot_ns: i64) -> Record {
        let usec = i64::try_from(e.usec).unwrap_or(i64::MAX);
        let time_ns = boot_ns.saturating_add(usec.saturating_mul(1000));
        let mut fields = Fields::new();
        fields.push("priority", Value::Int(i64::from(e.level)));
        fields.push("facility", Value::Int(i64::from(e.facility)));
        fields.push(
            "sequence",
            Value::Int(i64::try_from(e.sequence).unwrap_or(i64::MAX)),
        );
        fields.push("sec", Value::Int(usec / 1_000_000));
        fields.push("usec", Value::Int(usec % 1_000_000));
        fields.push("msg", e.message);
        if !e.dict.is_empty() {
            fields.push(
                "dict",
                Value::Map(
                    e.dict
                        .into_iter()
                        .map(|(k, v)| (k, Value::from(v)))
                        .collect(),
                ),
            );
        }
        Record {
            tag: Text::from(self.tag.as_str()),
            time_ns,
            fields,
            origin: None,
        }
    }

    fn boot(&self) -> i64 {
        self.boot_ns.or_else(boot_time_ns).unwrap_or(0)
    }

    /// Reads until the emitter says stop (a fixture once, then waits).
    pub fn run(&self, emit: &mut dyn Emitter) -> Result<()> {
        match &self.path {
            Some(p) => self.run_fixture(p, emit)?,
            None => self.run_device(Path::new(DEVICE), emit)?,
        }
        // Not on an error: the engine reports it first (at once, so a
        // refused /dev/kmsg shows when the pipeline starts), then finishes.
        emit.finish();
        Ok(())
    }

    fn keep(&self, e: &KmsgEntry) -> bool {
        e.level <= self.prio_level
    }

    fn run_fixture(&self, path: &Path, emit: &mut dyn Emitter) -> Result<()> {
        let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let boot = self.boot();
        let mut joiner = KmsgJoiner::default();
        let mut entries = Vec::new();
        let mut records = Vec::new();
        let mut last_end = 0;
        for (i, (rec, end)) in split_records(&text).into_iter().enumerate() {
            // A damaged record is reported with its place and skipped, as
            // a reader of the device would skip it.
            match parse_record(rec) {
                Ok(e) => joiner.push(e, &mut entries),
                Err(e) => log_warn(&format!("{}: record {}: {e}", path.display(), i + 1)),
            }
            last_end = end;
        }
        joiner.flush(&mut entries);
        for e in entries {
            if self.keep(&e) {
                records.push(self.record(e, boot));
            }
        }
        if !records.is_empty() {
            emit.emit(0, last_end as u64, records, text.len());
        }
        while !emit.stopping() {
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Reads the device: non-blocking, so that a quiet kernel does not
    /// hold the thread past a stop.
    pub fn run_device(&self, path: &Path, emit: &mut dyn Emitter) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(path)
            .map_err(|e| open_error(path, e))?;
        let boot = self.boot();
        let mut buf = vec![0u8; READ_BUF];
        let mut joiner = KmsgJoiner::default();
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        let mut offset = 0u64;
        let mut last_seq: Option<u64> = None;
        while !emit.stopping() {
            let idle = match file.read(&mut buf) {
                Ok(0) => true,
                Ok(n) => {
                    bytes += n;
                    offset += n as u64;
                    match parse_record(&buf[..n]) {
                        Ok(e) => {
                            if let Some(prev) = last_seq
                                && e.sequence > prev + 1
                                && e.flag != '+'
                            {
                                // Sequence numbers count fragments too, so
                                // only a gap between whole records says
                                // the ring buffer overwrote unread ones.
                                log_warn(&format!(
                                    "{}: {} records overwritten before they were read",
                                    path.display(),
                                    e.sequence - prev - 1
                                ));
                            }
                            last_seq = Some(e.sequence);
                            joiner.push(e, &mut entries);
                        }
                        Err(e) => log_warn(&format!("{}: {e}", path.display())),
                    }
                    false
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => true,
                Err(e) if e.kind() == ErrorKind::Interrupted => false,
                // EPIPE: records were overwritten since the last read; the
                // next read returns the oldest one still held.
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::PIPE.raw_os_error()) => {
                    log_warn(&format!(
                        "{}: records were overwritten before they were read",
                        path.display()
                    ));
                    false
                }
                Err(e) => return Err(Error::io(path, e)),
            };
            if idle {
                joiner.flush(&mut entries);
            }
            if (idle && !entries.is_empty()) || entries.len() >= BATCH {
                let records: Vec<Record> = entries
                    .drain(..)
                    .filter(|e| self.keep(e))
                    .map(|e| self.record(e, boot))
                    .collect();
                if !records.is_empty() && !emit.emit(0, offset, records, bytes) {
                    return Ok(());
                }
                bytes = 0;
            }
            if idle {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }
}

/// An open error that says what to do about a refusal.
fn open_error(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == ErrorKind::PermissionDenied {
        return Error::io(
            path,
            std::io::Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "{e}: reading the kernel log needs CAP_SYSLOG (or sysctl kernel.dmesg_restrict=0, or /dev/kmsg given to the container); the kmsg input stops, the rest of the pipeline runs on"
                ),
            ),
        );
    }
    Error::io(path, e)
}

fn log_warn(msg: &str) {
    let (secs, _) = crate::output::split_time(now_ns());
    let (y, mo, d, h, mi, s) = crate::output::civil(secs);
    eprintln!("[{y:04}/{mo:02}/{d:02} {h:02}:{mi:02}:{s:02}] [ warn] [input:kmsg] {msg}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Collect;

    #[test]
    fn reads_a_record_with_its_dictionary() {
        let e = parse_record(
            b"30,1234,5678901,-,caller=T1;usb 1-1: new \\x5cdevice\\x0a2\n SUBSYSTEM=usb\n DEVICE=c189:1\n",
        )
        .unwrap();
        assert_eq!(
            e,
            KmsgEntry {
                level: 6,
                facility: 3,
                sequence: 1234,
                usec: 5_678_901,
                flag: '-',
                message: "usb 1-1: new \\device\n2".into(),
                dict: vec![
                    ("SUBSYSTEM".into(), "usb".into()),
                    ("DEVICE".into(), "c189:1".into())
                ],
            }
        );
        let k = Kmsg::new("kmsg", None, Some(1_000_000_000_000_000_000));
        let r = k.record(e, 1_000_000_000_000_000_000);
        assert_eq!(r.time_ns, 1_000_000_005_678_901_000);
        assert_eq!(r.fields.get("sec"), Some(&Value::Int(5)));
        assert_eq!(r.fields.get("usec"), Some(&Value::Int(678_901)));
        assert_eq!(r.fields.get("priority"), Some(&Value::Int(6)));
        match r.fields.get("dict") {
            Some(Value::Map(m)) => assert_eq!(m.get("SUBSYSTEM"), Some(&Value::from("usb"))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_what_is_not_a_record() {
        for rec in [
            &b""[..],
            b"6,1,2,-",
            b"x,1,2,-;m",
            b"6,,2,-;m",
            b"6,1,2,?;m",
            b"6,1,2,-;m\nSUBSYSTEM=x",
            b"6,1,2,-;m\n SUBSYSTEM",
            b"99999999999999999999999,1,2,-;m",
        ] {
            assert!(
                parse_record(rec).is_err(),
                "{:?}",
                String::from_utf8_lossy(rec)
            );
        }
        // No flag field (kernels before 3.6).
        assert_eq!(parse_record(b"4,7,8;old").unwrap().flag, '-');
    }

    #[test]
    fn joins_continued_fragments() {
        let mut j = KmsgJoiner::default();
        let mut out = Vec::new();
        for rec in [
            &b"6,1,10,-;one"[..],
            b"6,2,11,c;two ",
            b"6,3,12,+;and a half",
            b"6,4,13,c;three",
            b"6,5,14,-;four",
            b"6,6,15,+;stray fragment",
        ] {
            j.push(parse_record(rec).unwrap(), &mut out);
        }
        j.flush(&mut out);
        let msgs: Vec<&str> = out.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            msgs,
            ["one", "two and a half", "three", "four", "stray fragment"]
        );
    }

    #[test]
    fn fixture_records_split_on_unindented_lines() {
        let text = b"6,1,10,-;a\n SUBSYSTEM=x\n\n6,2,11,-;b\n6,3,12,-;c";
        let recs: Vec<(&[u8], usize)> = split_records(text);
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].0, b"6,1,10,-;a\n SUBSYSTEM=x\n");
        assert_eq!(recs[1], (&b"6,2,11,-;b\n"[..], 36));
        assert_eq!(recs[2], (&b"6,3,12,-;c"[..], text.len()));
    }

    #[test]
    fn fixture_mode_with_prio_level() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kmsg.txt");
        std::fs::write(
            &p,
            "3,1,100,-;disk error\n7,2,200,-;debug chatter\nnot a record\n6,3,300,-;info\n",
        )
        .unwrap();
        let mut k = Kmsg::new("node.kmsg", Some(p), Some(0));
        k.prio_level = 6;
        let mut c = Collect::default();
        c.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        k.run(&mut c).unwrap();
        let msgs: Vec<String> = c
            .records
            .iter()
            .map(|r| r.fields.get("msg").unwrap().to_string())
            .collect();
        assert_eq!(msgs, ["disk error", "info"]);
        assert_eq!(c.records[1].time_ns, 300_000);
        assert_eq!(c.records[0].tag, "node.kmsg");
    }

    #[test]
    fn a_refused_open_says_what_is_needed() {
        let e = open_error(
            Path::new(DEVICE),
            std::io::Error::from_raw_os_error(rustix::io::Errno::PERM.raw_os_error()),
        )
        .to_string();
        assert!(
            e.starts_with("/dev/kmsg: ") && e.contains("CAP_SYSLOG") && e.contains("runs on"),
            "{e}"
        );
    }

    /// The real device: records when this machine lets us read it, the
    /// explaining error when it does not (CI may run in a container).
    #[test]
    fn reads_the_device_or_says_why_not() {
        let k = Kmsg::new("kmsg", None, None);
        let mut c = Collect::default();
        let stop = c.stop.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let res = k.run_device(Path::new(DEVICE), &mut c);
        t.join().unwrap();
        match res {
            Ok(()) => {
                let Some(first) = c.records.first() else {
                    return; // an empty buffer (a fresh namespace) is allowed
                };
                assert!(matches!(first.fields.get("sequence"), Some(Value::Int(_))));
                assert!(matches!(first.fields.get("msg"), Some(Value::Str(_))));
                // The boot time is read from /proc/uptime (10 ms steps)
                // again here, a moment after the input read it: allow for
                // that, since the first record may be stamped at boot.
                let boot = boot_time_ns().unwrap();
                let slack = 1_000_000_000;
                assert!(first.time_ns + slack >= boot && first.time_ns <= now_ns());
            }
            Err(e) => {
                let e = e.to_string();
                assert!(e.starts_with("/dev/kmsg: "), "{e}");
            }
        }
    }

    #[test]
    fn boot_time_is_in_the_past() {
        if let Some(b) = boot_time_ns() {
            assert!(b > 0 && b < now_ns(), "{b}");
        }
    }
}
