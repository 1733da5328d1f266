//! vigil-sidecar as a process: configuration validation (`--dry-run`),
//! `/api/v1/health` and `/metrics`, reload on SIGHUP (a broken file is
//! refused and the running pipeline keeps shipping; a good one takes
//! effect), and a clean stop on SIGTERM.

mod peers;

use std::process::{Command, Stdio};
use std::time::Duration;

use peers::{free_addr, get, wait_for};

fn conf(dir: &std::path::Path, out_file: &str) -> String {
    format!(
        "[SERVICE]\n    Flush 1\n\n[INPUT]\n    Name tail\n    Path {0}/in/*.log\n    Tag app.*\n    Read_From_Head On\n    Refresh_Interval 1\n    DB {0}/tail.db\n\n[OUTPUT]\n    Name file\n    Match *\n    Path {0}/out\n    File {out_file}\n    Format plain\n    Mkdir On\n",
        dir.display()
    )
}

#[test]
fn dry_run_checks_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.conf");
    std::fs::write(&good, conf(dir.path(), "a.jsonl")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-sidecar"))
        .args(["-c", good.to_str().unwrap(), "--dry-run"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration test is successful"));

    let bad = dir.path().join("bad.conf");
    std::fs::write(
        &bad,
        "[INPUT]\n    Name tail\n    Path /x\n    Bogus_Key 1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-sidecar"))
        .args(["-c", bad.to_str().unwrap(), "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.conf:4"), "{err}");
}

#[test]
fn serves_health_and_metrics_reloads_on_sighup_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("in")).unwrap();
    let file = d.join("fluent-bit.conf");
    std::fs::write(&file, conf(d, "a.jsonl")).unwrap();
    std::fs::write(d.join("in/app.log"), "one\ntwo\n").unwrap();
    let addr = free_addr();
    let stderr = d.join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil-sidecar"))
        .args([
            "-c",
            file.to_str().unwrap(),
            &format!("--web.listen-address={addr}"),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let said = |what: &str| std::fs::read_to_string(&stderr).is_ok_and(|t| t.contains(what));
    let base = format!("http://{addr}");
    wait_for("health", Duration::from_secs(20), || {
        get(&format!("{base}/api/v1/health")) == (200, "ok\n".into())
    });
    wait_for("two lines shipped", Duration::from_secs(20), || {
        std::fs::read_to_string(d.join("out/a.jsonl")).is_ok_and(|t| t.lines().count() == 2)
    });
    let metrics = get(&format!("{base}/metrics")).1;
    assert!(
        metrics.contains("fluentbit_input_records_total"),
        "{metrics}"
    );

    let hup = |pid: u32| {
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .unwrap()
                .success()
        );
    };
    // A broken configuration is refused; the pipeline keeps shipping.
    std::fs::write(&file, "[INPUT]\n    Name nosuchplugin\n").unwrap();
    hup(child.id());
    wait_for("the reload refused", Duration::from_secs(20), || {
        said("reload refused")
    });
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("in/app.log"))
        .unwrap();
    use std::io::Write;
    writeln!(log, "three").unwrap();
    wait_for(
        "the third line, old config",
        Duration::from_secs(20),
        || std::fs::read_to_string(d.join("out/a.jsonl")).is_ok_and(|t| t.lines().count() == 3),
    );
    assert_eq!(get(&format!("{base}/api/v1/health")).0, 200);

    // A good new configuration takes effect: new lines go to b.jsonl, and
    // the offsets carried over (nothing is read twice).
    std::fs::write(&file, conf(d, "b.jsonl")).unwrap();
    hup(child.id());
    // A line written while the old pipeline is still stopping may go out
    // through it: write once the new one runs.
    wait_for("the reload", Duration::from_secs(30), || {
        said("configuration reloaded")
    });
    writeln!(log, "four").unwrap();
    wait_for(
        "the fourth line, new config",
        Duration::from_secs(20),
        || std::fs::read_to_string(d.join("out/b.jsonl")).is_ok_and(|t| t.lines().count() == 1),
    );
    assert!(
        std::fs::read_to_string(d.join("out/b.jsonl"))
            .unwrap()
            .contains("four")
    );

    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// The seed's two-container sidecar pattern on one machine: the "app"
/// sidecar runs the application through the `exec` input, copying its
/// output to its own stdout (the `2>&1 | tee -a` trick) and into a shared
/// directory; the "log" sidecar tails that directory with the seed's
/// `Timing` regex parser and ships the parsed records.
#[test]
fn the_seed_two_container_pattern_on_one_machine() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("shared")).unwrap();
    let app = d.join("app.conf");
    std::fs::write(
        &app,
        format!(
            "[SERVICE]\n    Flush 1\n\n[INPUT]\n    Name exec\n    Command sh -c 'i=0; while [ $i -lt 5 ]; do echo \"2018/11/10 08:00:0$i [INFO ] [main] step $i\"; i=$((i+1)); sleep 0.1; done'\n    Oneshot On\n    Tag app\n\n[OUTPUT]\n    Name file\n    Match app\n    Path {0}/shared\n    File app.log\n    Format template\n    Template {{exec}}\n",
            d.display()
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("parsers.conf"),
        "[PARSER]\n    Name   Timing\n    Format regex\n    Regex  (?<time>\\d\\d\\d\\d\\/[^\\[]*) (?<level>\\[[^ ]*)(?<context>.[^\"]*)\n",
    )
    .unwrap();
    let logs = d.join("logs.conf");
    std::fs::write(
        &logs,
        format!(
            "[SERVICE]\n    Flush 1\n    Parsers_File parsers.conf\n\n[INPUT]\n    Name tail\n    Path {0}/shared/*.log\n    Tag kube.app.*\n    Read_From_Head On\n    Refresh_Interval 1\n    Parser Timing\n\n[OUTPUT]\n    Name file\n    Match kube.*\n    Path {0}/out\n    File parsed.jsonl\n    Format plain\n    Mkdir On\n",
            d.display()
        ),
    )
    .unwrap();
    let (a1, a2) = (free_addr(), free_addr());
    let mut app_proc = Command::new(env!("CARGO_BIN_EXE_vigil-sidecar"))
        .args([
            "-c",
            app.to_str().unwrap(),
            &format!("--web.listen-address={a1}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut log_proc = Command::new(env!("CARGO_BIN_EXE_vigil-sidecar"))
        .args([
            "-c",
            logs.to_str().unwrap(),
            &format!("--web.listen-address={a2}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let parsed = d.join("out/parsed.jsonl");
    wait_for("five parsed records", Duration::from_secs(30), || {
        std::fs::read_to_string(&parsed).is_ok_and(|t| t.lines().count() == 5)
    });
    let text = std::fs::read_to_string(&parsed).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["level"], "[INFO");
    assert_eq!(first["context"], " ] [main] step 0");
    for p in [&app_proc, &log_proc] {
        assert!(
            Command::new("kill")
                .args(["-TERM", &p.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
    }
    // The app's own output was copied to the app sidecar's stdout (tee).
    let out = {
        use std::io::Read;
        let mut s = String::new();
        app_proc
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    assert!(out.contains("[main] step 4"), "{out}");
    assert!(app_proc.wait().unwrap().success());
    assert!(log_proc.wait().unwrap().success());
}
