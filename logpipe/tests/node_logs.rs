//! The node's own logs on fixtures: the kernel's (`kmsg` input reading a
//! file of `/dev/kmsg` records), the systemd journal through the `exec`
//! input with the configuration the README documents (`journalctl -o json
//! -f --cursor-file=...`, the JSON parser, klog for the kubelet's lines),
//! and a restart that resumes at the journal's cursor.

mod common;

use common::{Running, dir, p, wait_until};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/node")
        .join(name)
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn kmsg_fixture_through_a_pipeline() {
    let d = dir();
    let root = d.path();
    let conf = format!(
        "[SERVICE]\n    Flush 0.1\n\
         [INPUT]\n    Name kmsg\n    Path {}\n    Prio_Level 6\n    Tag node.kernel\n\
         [OUTPUT]\n    Name file\n    Match node.*\n    Path {}\n    File kernel.out\n    Format plain\n",
        p(&fixture("kmsg.txt")),
        p(root)
    );
    let running = Running::start(&conf, root);
    let out = root.join("kernel.out");
    // 10 records, the `c` + `+` pair joined into one, the debug one
    // (level 7) dropped by Prio_Level 6.
    assert!(wait_until(Duration::from_secs(10), || lines(&out).len() == 9));
    running.stop();
    let recs = lines(&out);
    let msgs: Vec<&str> = recs.iter().map(|r| r["msg"].as_str().unwrap()).collect();
    assert!(msgs[0].starts_with("Linux version 6.1.0"));
    assert!(
        msgs[2].contains("(\\GSA1.SMBI)"),
        "\\x5c decoded: {}",
        msgs[2]
    );
    assert_eq!(
        msgs[5],
        "kubelet invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=-999"
    );
    assert!(msgs[6].starts_with("Out of memory: Killed process 4242 (java)"));
    assert!(!msgs.iter().any(|m| m.starts_with("cgroup: fork rejected")));
    let ext4 = &recs[4];
    assert_eq!(ext4["priority"], 3);
    assert_eq!(ext4["facility"], 0);
    assert_eq!(ext4["sequence"], 9120);
    assert_eq!(ext4["sec"], 86400);
    assert_eq!(ext4["usec"], 123456);
    assert_eq!(ext4["dict"]["SUBSYSTEM"], "block");
    assert_eq!(ext4["dict"]["DEVICE"], "b8:1");
    // A user process's write to /dev/kmsg: facility 1 (user), level 4.
    assert_eq!(recs[8]["facility"], 1);
    assert_eq!(recs[8]["priority"], 4);
}

#[test]
fn kmsg_configuration_errors() {
    let d = dir();
    for (conf, want) in [
        (
            "[INPUT]\n    Name kmsg\n    Prio_Level 9\n[OUTPUT]\n    Name null\n    Match *\n",
            "fluent-bit.conf:3: Prio_Level 9 is not 0 to 8",
        ),
        (
            "[INPUT]\n    Name kmsg\n    Offset 3\n[OUTPUT]\n    Name null\n    Match *\n",
            "fluent-bit.conf:3: unknown key 'Offset' in [INPUT] kmsg",
        ),
    ] {
        let cfg =
            vigil_logpipe::config::parse_str(conf, &d.path().join("fluent-bit.conf")).unwrap();
        let e = vigil_logpipe::engine::Pipeline::from_config(cfg)
            .unwrap_err()
            .to_string();
        assert!(e.ends_with(want), "{e}");
    }
}

/// The README's journal configuration with `cat` standing in for
/// journalctl: records come out with the journal's fields, and the
/// kubelet's klog lines parsed.
#[test]
fn journal_json_lines_through_exec_and_the_json_parser() {
    let d = dir();
    let root = d.path();
    let conf = format!(
        "[SERVICE]\n    Flush 0.1\n\
         [INPUT]\n    Name exec\n    Tag node.journal\n    Command cat {}\n    Parser json\n    Oneshot On\n    Tee Off\n\
         [FILTER]\n    Name parser\n    Match node.journal\n    Key_Name MESSAGE\n    Parser klog\n    Reserve_Data On\n\
         [OUTPUT]\n    Name file\n    Match node.*\n    Path {}\n    File journal.out\n    Format plain\n",
        p(&fixture("journal.json")),
        p(root)
    );
    let running = Running::start(&conf, root);
    let out = root.join("journal.out");
    assert!(wait_until(Duration::from_secs(10), || lines(&out).len() == 5));
    running.stop();
    let recs = lines(&out);
    // The kubelet's lines: klog fields beside the journal's.
    assert_eq!(recs[0]["_SYSTEMD_UNIT"], "kubelet.service");
    assert_eq!(recs[0]["severity"], "INFO");
    assert_eq!(recs[0]["file"], "server.go");
    assert_eq!(recs[0]["line"], 1290);
    assert_eq!(recs[0]["message"], "\"Started kubelet\"");
    assert!(recs[0]["__CURSOR"].as_str().unwrap().contains(";i=101;"));
    assert_eq!(recs[1]["severity"], "ERROR");
    assert_eq!(recs[1]["PRIORITY"], "3");
    // Not klog: the journal's fields as they were.
    assert_eq!(recs[2]["_SYSTEMD_UNIT"], "containerd.service");
    assert!(recs[2]["MESSAGE"].as_str().unwrap().starts_with("time="));
    // A message that is not UTF-8 comes from journalctl as a byte array.
    assert_eq!(recs[3]["MESSAGE"][0], 111);
    assert_eq!(
        recs[4]["MESSAGE"],
        "Started kubelet.service - kubelet: The Kubernetes Node Agent."
    );
}

/// A stand-in for `journalctl -o json [-f] --cursor-file=F` keeping its
/// contract: entries after the cursor saved in F (all without one); with
/// `-f` it then follows until SIGTERM (systemd 254 and later write the
/// cursor then), without it it ends; either way it writes the cursor of
/// the last entry shown. Cursors here are `i=N`, the entry's line in the
/// fixture; `LIMIT` shows at most that many entries.
const FAKE_JOURNALCTL: &str = r#"#!/bin/sh
fixture="$1"; shift
cf=""; follow=""
for a in "$@"; do case "$a" in --cursor-file=*) cf="${a#--cursor-file=}";; -f) follow=1;; esac; done
[ -n "$cf" ] || { echo "no --cursor-file" >&2; exit 2; }
start=0
if [ -s "$cf" ]; then start=$(sed 's/.*i=\([0-9]*\).*/\1/' "$cf"); fi
total=$(wc -l < "$fixture")
last=$start
save() { [ "$last" -gt 0 ] && echo "s=fake;i=$last" > "$cf"; exit 0; }
trap save TERM INT
if [ "$start" -lt "$total" ]; then
  # The cursor is set first: a SIGTERM's trap runs only once the printing
  # command has ended, so it never saves less than was printed.
  last=$((start + $(tail -n +"$((start + 1))" "$fixture" | head -n "${LIMIT:-1000000}" | wc -l)))
  tail -n +"$((start + 1))" "$fixture" | head -n "${LIMIT:-1000000}"
fi
[ -n "$follow" ] || save
while :; do sleep 0.05; done
"#;

#[test]
fn a_restart_resumes_at_the_journal_cursor() {
    let d = dir();
    let root = d.path();
    // Ten entries, `i=1` to `i=10`.
    let fixture = root.join("journal.json");
    let mut text = String::new();
    for i in 1..=10 {
        text.push_str(&format!(
            "{{\"__CURSOR\":\"s=fake;i={i}\",\"MESSAGE\":\"entry {i}\",\"_SYSTEMD_UNIT\":\"kubelet.service\"}}\n"
        ));
    }
    std::fs::write(&fixture, text).unwrap();
    let script = root.join("journalctl");
    std::fs::write(&script, FAKE_JOURNALCTL).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cursor = root.join("journal.cursor");
    let out = root.join("journal.out");
    let conf = |limit: usize| {
        format!(
            "[SERVICE]\n    Flush 0.1\n\
             [INPUT]\n    Name exec\n    Tag node.journal\n    Command env LIMIT={limit} {} {} -o json -f --cursor-file={}\n    Parser json\n    Tee Off\n\
             [OUTPUT]\n    Name file\n    Match node.*\n    Path {}\n    File journal.out\n    Format plain\n",
            p(&script),
            p(&fixture),
            p(&cursor),
            p(root)
        )
    };
    // The first run shows 4 entries, then is stopped: SIGTERM lets the
    // child write its cursor.
    let running = Running::start(&conf(4), root);
    assert!(wait_until(Duration::from_secs(10), || lines(&out).len() == 4));
    running.stop();
    assert_eq!(
        std::fs::read_to_string(&cursor).unwrap().trim(),
        "s=fake;i=4"
    );
    // The second starts after it: the rest, once each.
    let running = Running::start(&conf(100), root);
    assert!(wait_until(Duration::from_secs(10), || lines(&out).len() == 10));
    running.stop();
    let msgs: Vec<String> = lines(&out)
        .iter()
        .map(|r| r["MESSAGE"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = (1..=10).map(|i| format!("entry {i}")).collect();
    assert_eq!(msgs, want);
    assert_eq!(
        std::fs::read_to_string(&cursor).unwrap().trim(),
        "s=fake;i=10"
    );
}

fn entries(from: usize, to: usize) -> String {
    (from..=to)
        .map(|i| format!("{{\"__CURSOR\":\"s=fake;i={i}\",\"MESSAGE\":\"entry {i}\"}}\n"))
        .collect()
}

/// The form for journalctl before systemd 254 (whose `-f` does not write
/// the cursor when stopped): without `-f`, run again every `Interval_Sec`;
/// each run starts after the last one's cursor. Entries written between
/// runs and across a restart arrive once each.
#[test]
fn polling_journalctl_every_interval_resumes_each_run() {
    use std::os::unix::fs::PermissionsExt;
    let d = dir();
    let root = d.path();
    let fixture = root.join("journal.json");
    std::fs::write(&fixture, entries(1, 3)).unwrap();
    let script = root.join("journalctl");
    std::fs::write(&script, FAKE_JOURNALCTL).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cursor = root.join("journal.cursor");
    let out = root.join("journal.out");
    let conf = format!(
        "[SERVICE]\n    Flush 0.1\n\
         [INPUT]\n    Name exec\n    Tag node.journal\n    Command {} {} -o json --cursor-file={}\n    Interval_Sec 1\n    Parser json\n    Tee Off\n\
         [OUTPUT]\n    Name file\n    Match node.*\n    Path {}\n    File journal.out\n    Format plain\n",
        p(&script),
        p(&fixture),
        p(&cursor),
        p(root)
    );
    let append = |text: String| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&fixture)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    let running = Running::start(&conf, root);
    assert!(wait_until(Duration::from_secs(10), || lines(&out).len() == 3));
    append(entries(4, 6));
    assert!(wait_until(Duration::from_secs(10), || lines(&out).len() == 6));
    running.stop();
    append(entries(7, 8));
    let running = Running::start(&conf, root);
    assert!(wait_until(Duration::from_secs(10), || lines(&out).len() == 8));
    // Another run or two with nothing new adds nothing.
    std::thread::sleep(Duration::from_millis(1500));
    running.stop();
    let msgs: Vec<String> = lines(&out)
        .iter()
        .map(|r| r["MESSAGE"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = (1..=8).map(|i| format!("entry {i}")).collect();
    assert_eq!(msgs, want);
}

mod kmsg_props {
    use proptest::prelude::*;
    use vigil_logpipe::input::kmsg::{KmsgEntry, parse_record, split_records};

    /// Writes an entry as the kernel does: `\` and bytes it cannot print
    /// escaped as `\xNN`.
    fn escape(s: &str) -> String {
        let mut out = String::new();
        for c in s.chars() {
            if c == '\\' || c < ' ' || c == '\x7f' {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push(c);
            }
        }
        // Multi-byte UTF-8 stays as it is (the kernel passes bytes >= 0x80).
        out
    }

    proptest! {
        #[test]
        fn what_the_kernel_writes_reads_back(
            level in 0u8..8,
            facility in 0u32..24,
            sequence in any::<u64>(),
            usec in any::<u64>(),
            flag in prop::sample::select(vec!['-', 'c', '+']),
            message in "\\PC{0,60}",
            dict in prop::collection::vec(("[A-Z_]{1,10}", "[^\n]{0,20}"), 0..3),
        ) {
            let mut text = format!(
                "{},{sequence},{usec},{flag};{}\n",
                u64::from(facility) * 8 + u64::from(level),
                escape(&message)
            );
            for (k, v) in &dict {
                text.push_str(&format!(" {k}={}\n", escape(v)));
            }
            let e = parse_record(text.as_bytes()).unwrap();
            prop_assert_eq!(e, KmsgEntry { level, facility, sequence, usec, flag, message, dict });
        }

        #[test]
        fn records_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_record(&bytes);
            for (rec, end) in split_records(&bytes) {
                prop_assert!(end <= bytes.len());
                let _ = parse_record(rec);
            }
        }
    }
}
