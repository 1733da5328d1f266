//! The `exec` input: run a command and read its standard output and error
//! as records, while copying both to our own (`Tee On`, the default): the
//! `cmd 2>&1 | tee -a file` sidecar trick, without a shell or a shared
//! volume. Each line becomes `{"exec": line, "stream": "stdout"|"stderr"}`
//! (`Key` renames `exec`).
//!
//! `Command` is split on whitespace, with single and double quotes grouping
//! words; no shell runs it. With `Oneshot On` the command runs once (and
//! `Exit_After_Oneshot On` stops the pipeline when it ends); otherwise it
//! runs again `Interval_Sec` after it ends, as fluent-bit's exec does.

use super::{Emitter, LineSplitter, now_ns};
use crate::config::Section;
use crate::error::{Error, Result};
use crate::record::Record;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The keys the exec input reads.
pub const KEYS: &[&str] = &[
    "command",
    "interval_sec",
    "interval_nsec",
    "oneshot",
    "exit_after_oneshot",
    "propagate_exit_code",
    "buf_size",
    "key",
    "tee",
    "threaded",
];

/// The exec input.
#[derive(Debug, Clone)]
pub struct Exec {
    argv: Vec<String>,
    tag: String,
    key: String,
    tee: bool,
    oneshot: bool,
    exit_after: bool,
    interval: Duration,
    max_line: usize,
}

/// Splits a command line into words: whitespace separates, quotes group,
/// a backslash escapes the next character (outside single quotes).
pub fn split_command(cmd: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = cmd.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => match chars.next() {
                Some(n) => {
                    cur.push(n);
                    in_word = true;
                }
                None => return Err("command ends with a backslash".into()),
            },
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unclosed quote in command".into());
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

impl Exec {
    /// From an `[INPUT] Name exec` section.
    pub fn from_section(s: &Section, tag: &str) -> Result<Self> {
        let cmd = s
            .get("command")
            .ok_or_else(|| s.error(None, "exec input needs a Command"))?;
        let argv = split_command(cmd).map_err(|m| s.error_at("command", m))?;
        if argv.is_empty() {
            return Err(s.error_at("command", "exec input needs a Command"));
        }
        let secs = s.get_usize("interval_sec")?.unwrap_or(1) as u64;
        let nsecs = s.get_usize("interval_nsec")?.unwrap_or(0) as u64;
        Ok(Exec {
            argv,
            tag: tag.to_owned(),
            key: s.get("key").unwrap_or("exec").to_owned(),
            tee: s.get_bool_or("tee", true)?,
            oneshot: s.get_bool_or("oneshot", false)?,
            exit_after: s.get_bool_or("exit_after_oneshot", false)?,
            interval: Duration::from_secs(secs) + Duration::from_nanos(nsecs),
            max_line: s.get_size("buf_size")?.map_or(1 << 20, |n| n as usize),
        })
    }

    /// Runs the command (again and again unless `Oneshot`) until the
    /// emitter says stop; a child still running then is killed.
    pub fn run(&self, emit: &mut dyn Emitter) -> Result<()> {
        let result = self.run_loop(emit);
        emit.finish();
        result
    }

    fn run_loop(&self, emit: &mut dyn Emitter) -> Result<()> {
        loop {
            let started = Instant::now();
            self.run_once(emit)?;
            if self.oneshot {
                if self.exit_after {
                    emit.request_stop();
                }
                while !emit.stopping() {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return Ok(());
            }
            while started.elapsed() < self.interval || started.elapsed() < Duration::from_millis(10)
            {
                if emit.stopping() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(20).min(self.interval));
            }
            if emit.stopping() {
                return Ok(());
            }
        }
    }

    fn run_once(&self, emit: &mut dyn Emitter) -> Result<()> {
        let mut child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(&self.argv[0], e))?;
        let (tx, rx) = mpsc::sync_channel::<(usize, Vec<u8>)>(16);
        if let Some(out) = child.stdout.take() {
            spawn_pipe(out, 0, self.tee, tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            spawn_pipe(err, 1, self.tee, tx.clone());
        }
        drop(tx);
        let mut split = [
            LineSplitter::new(self.max_line),
            LineSplitter::new(self.max_line),
        ];
        let mut offset = 0u64;
        let names = ["stdout", "stderr"];
        let mut term_deadline: Option<Instant> = None;
        loop {
            if emit.stopping() {
                // Ask the child to end, as a shell's SIGTERM would, and keep
                // reading what it prints while it does; kill it if it takes
                // longer than two seconds.
                match term_deadline {
                    None => {
                        let pid = rustix::process::Pid::from_child(&child);
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                        term_deadline = Some(Instant::now() + Duration::from_secs(2));
                    }
                    Some(d) if Instant::now() >= d => {
                        let _ = child.kill();
                        break;
                    }
                    Some(_) => {}
                }
            }
            // A pipe's end comes as an empty block.
            let (which, bytes) = match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(got) => got,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let eof = bytes.is_empty();
            offset += bytes.len() as u64;
            let recs = split[which].push(&bytes, eof, |line| {
                let mut r = Record::line(self.tag.clone(), now_ns(), line);
                r.fields.rename("log", self.key.clone());
                r.fields.push("stream", names[which]);
                r
            });
            if !recs.is_empty() {
                emit.emit(0, offset, recs, bytes.len());
            }
        }
        let _ = child.wait();
        Ok(())
    }
}

fn spawn_pipe<R: Read + Send + 'static>(
    mut pipe: R,
    which: usize,
    tee: bool,
    tx: mpsc::SyncSender<(usize, Vec<u8>)>,
) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) | Err(_) => 0,
                Ok(n) => n,
            };
            if n > 0 && tee {
                // Copy before the pipeline sees it, as `tee` does; a closed
                // stdout of ours must not stop the records.
                let _ = if which == 0 {
                    std::io::stdout().lock().write_all(&buf[..n])
                } else {
                    std::io::stderr().lock().write_all(&buf[..n])
                };
            }
            if tx.send((which, buf[..n].to_vec())).is_err() || n == 0 {
                break;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Collect;

    #[test]
    fn command_words_and_quotes() {
        assert_eq!(
            split_command(r#"sh -c 'echo "a b"; echo c' x\ y"#).unwrap(),
            ["sh", "-c", r#"echo "a b"; echo c"#, "x y"]
        );
        assert!(split_command("echo 'open").is_err());
    }

    #[test]
    fn reads_stdout_and_stderr_lines_of_a_oneshot_child() {
        let exec = Exec {
            argv: split_command("sh -c 'echo out1; echo err1 >&2; printf out2'").unwrap(),
            tag: "exec.0".into(),
            key: "exec".into(),
            tee: false,
            oneshot: true,
            exit_after: false,
            interval: Duration::from_secs(1),
            max_line: 1024,
        };
        let mut c = Collect::default();
        exec.run_once(&mut c).unwrap();
        let mut got: Vec<(String, String)> = c
            .records
            .iter()
            .map(|r| {
                (
                    r.fields.get("stream").unwrap().as_str().unwrap().to_owned(),
                    r.fields.get("exec").unwrap().as_str().unwrap().to_owned(),
                )
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("stderr".to_owned(), "err1".to_owned()),
                ("stdout".to_owned(), "out1".to_owned()),
                ("stdout".to_owned(), "out2".to_owned())
            ]
        );
    }

    #[test]
    fn stop_sends_sigterm_to_the_child() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("got-term");
        let cmd = format!(
            "sh -c 'trap \"touch {}; exit 0\" TERM; while true; do sleep 0.05; done'",
            marker.display()
        );
        let exec = Exec {
            argv: split_command(&cmd).unwrap(),
            tag: "t".into(),
            key: "exec".into(),
            tee: false,
            oneshot: true,
            exit_after: false,
            interval: Duration::from_secs(1),
            max_line: 1024,
        };
        let mut c = Collect::default();
        let stop = c.stop.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let started = Instant::now();
        exec.run(&mut c).unwrap();
        t.join().unwrap();
        assert!(marker.exists(), "the child did not get SIGTERM");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_missing_program_is_an_error_naming_it() {
        let exec = Exec {
            argv: vec!["/nonexistent/prog".into()],
            tag: "t".into(),
            key: "exec".into(),
            tee: false,
            oneshot: true,
            exit_after: false,
            interval: Duration::from_secs(1),
            max_line: 1024,
        };
        let err = exec
            .run_once(&mut Collect::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/prog"), "{err}");
    }
}
