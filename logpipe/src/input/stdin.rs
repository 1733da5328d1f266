//! The `stdin` input: lines of the process's standard input, each a record
//! with the line under `log` (`Key`). It ends at end of input.

use super::{Emitter, LineSplitter, now_ns};
use crate::config::Section;
use crate::error::Result;
use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

/// The keys the stdin input reads.
pub const KEYS: &[&str] = &["key", "buffer_size", "threaded"];

/// Reads lines from any reader (standard input in the pipeline).
#[derive(Debug)]
pub struct Stdin {
    key: String,
    tag: String,
    max_line: usize,
}

impl Stdin {
    /// From an `[INPUT] Name stdin` section.
    pub fn from_section(s: &Section, tag: &str) -> Result<Self> {
        Ok(Stdin {
            key: s.get("key").unwrap_or("log").to_owned(),
            tag: tag.to_owned(),
            max_line: s
                .get_size("buffer_size")?
                .map_or(1 << 20, |n| n as usize)
                .max(1),
        })
    }

    /// Reads `source` until its end or until the emitter says stop. The
    /// blocking reads happen on a helper thread, so a stop is seen even
    /// while no input arrives.
    pub fn run<R: Read + Send + 'static>(&self, source: R, emit: &mut dyn Emitter) -> Result<()> {
        let rx = spawn_reader(source);
        let mut lines = LineSplitter::new(self.max_line);
        let mut offset = 0u64;
        loop {
            if emit.stopping() {
                break;
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(bytes) => {
                    offset += bytes.len() as u64;
                    let recs = lines.push(&bytes, false, |l| {
                        let mut r = crate::record::Record::line(self.tag.clone(), now_ns(), l);
                        if self.key != "log" {
                            r.fields.rename("log", self.key.clone());
                        }
                        r
                    });
                    if !recs.is_empty() {
                        emit.emit(0, offset, recs, bytes.len());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let recs = lines.push(&[], true, |l| {
                        let mut r = crate::record::Record::line(self.tag.clone(), now_ns(), l);
                        if self.key != "log" {
                            r.fields.rename("log", self.key.clone());
                        }
                        r
                    });
                    if !recs.is_empty() {
                        emit.emit(0, offset, recs, 0);
                    }
                    break;
                }
            }
        }
        emit.finish();
        Ok(())
    }
}

/// Reads `source` on a helper thread in blocks, sending them until the end.
pub(crate) fn spawn_reader<R: Read + Send + 'static>(mut source: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::sync_channel(16);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Collect;

    #[test]
    fn lines_until_end_of_input_including_an_unterminated_last_one() {
        let s = Stdin {
            key: "msg".into(),
            tag: "stdin.0".into(),
            max_line: 1 << 20,
        };
        let mut c = Collect::default();
        s.run(std::io::Cursor::new(b"a\nb\nlast".to_vec()), &mut c)
            .unwrap();
        let got: Vec<_> = c
            .records
            .iter()
            .map(|r| r.fields.get("msg").unwrap().as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, ["a", "b", "last"]);
        assert_eq!(c.records[0].tag, "stdin.0");
    }
}
