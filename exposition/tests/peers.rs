//! Real clients must agree with the encoder: Prometheus's `promtool check
//! metrics` (Debian's prometheus 2.42) accepts the text output of a registry
//! that uses every metric type, and the Python reference client
//! (`prometheus_client`) reads both formats to the same samples as our parser.
//!
//! `scripts/test` installs both (promtool from Debian, prometheus_client in a
//! virtualenv at target/pyenv); run through it, or point `VIGIL_PYTHON` at a
//! Python that has prometheus_client.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use vigil_exposition::client::{
    Counter, Family, Gauge, Histogram, Info, Registry, StateSet, Summary,
};
use vigil_exposition::parse::{Mode, parse_families};
use vigil_exposition::{Format, MetricFamily};

/// Classic names only: promtool 2.42 predates UTF-8 names.
fn registry() -> Registry {
    let created = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let r = Registry::with_prefix("shop");
    let orders = Family::<[&'static str; 1], Counter>::builder()
        .label_names(&["status"])
        .constructor(move || Counter::with_created(created))
        .build();
    r.register("orders", "Orders by status.", orders.clone())
        .unwrap();
    orders.with(&["paid"], |c| c.inc_by(41));
    orders.with(&["refunded \"late\"\n"], |c| c.inc());

    let energy = Counter::<f64>::with_created(created);
    r.register_with_unit("energy", "Energy used.", "joules", energy.clone())
        .unwrap();
    energy.inc_by(12.75);

    let queue = Gauge::<i64>::new();
    r.register("queue_length", "Jobs waiting.", queue.clone())
        .unwrap();
    queue.set(-2);

    let temp = Gauge::<f64>::new();
    r.register_with_unit("temperature", "Oven temperature.", "celsius", temp.clone())
        .unwrap();
    temp.set(f64::NAN);

    let latency = Histogram::with_created([0.005, 0.05, 0.5, 5.0], created);
    r.register_with_unit(
        "checkout_latency",
        "Checkout latency.",
        "seconds",
        latency.clone(),
    )
    .unwrap();
    for v in [0.001, 0.02, 0.02, 0.7, 9.0] {
        latency.observe(v);
    }

    let sizes = Summary::builder()
        .quantiles(&[0.5, 0.9])
        .created(created)
        .build();
    r.register_with_unit("basket_size", "Items per basket.", "items", sizes.clone())
        .unwrap();
    for v in [1.0, 2.0, 3.0, 10.0] {
        sizes.observe(v);
    }

    r.register(
        "build",
        "Build information.",
        Info::new(&vec![("version", "1.2.3"), ("commit", "abc")]),
    )
    .unwrap();

    let mode = StateSet::new(&["open", "closed", "maintenance"]);
    mode.set_only("open");
    r.register("store_mode", "Store mode.", mode).unwrap();
    r
}

fn encode(format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    registry().encode(format, &mut out);
    out
}

#[test]
fn promtool_check_metrics_accepts_the_text_output() {
    let body = encode(Format::Text);
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool not found ({e}): scripts/test installs Debian's prometheus package")
        });
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&body).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {}\n{said}\n--- input:\n{}",
        out.status,
        String::from_utf8_lossy(&body)
    );
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("VIGIL_PYTHON") {
        return p.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/pyenv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: scripts/test creates it with prometheus_client (or set VIGIL_PYTHON)",
        venv.display()
    );
    venv
}

/// The samples and family types the Python client reads from `body`.
fn python_reads(body: &[u8], format: Format) -> Value {
    let dir = std::env::temp_dir().join(format!("vigil-peers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(if format == Format::Text {
        "m.prom"
    } else {
        "m.om"
    });
    std::fs::write(&file, body).unwrap();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/read_with_prometheus_client.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(if format == Format::Text {
            "text"
        } else {
            "openmetrics"
        })
        .arg(&file)
        .output()
        .expect("run python");
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "prometheus_client refused our {format:?} output: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(body)
    );
    let fams: Value = serde_json::from_slice(&out.stdout).unwrap();
    summarize(fams.as_array().unwrap().iter().map(|f| {
        (
            f["type"].as_str().unwrap().to_owned(),
            f["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| json!([s["name"], s["labels"], s["value"], s["exemplar"]]))
                .collect::<Vec<_>>(),
        )
    }))
}

fn number(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v.is_infinite() {
        json!(if v > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        json!(v)
    }
}

fn sorted(labels: &[(String, String)]) -> Value {
    let mut l = labels.to_vec();
    l.sort();
    json!(l)
}

/// The same summary from our own parser.
fn we_read(fams: &[MetricFamily]) -> Value {
    summarize(fams.iter().map(|f| {
        (
            f.metric_type.openmetrics_word().to_owned(),
            f.samples
                .iter()
                .map(|s| {
                    let ex = s
                        .exemplar
                        .as_ref()
                        .map(|e| json!({"labels": sorted(&e.labels), "value": number(e.value)}));
                    json!([s.name, sorted(&s.labels), number(s.value), ex])
                })
                .collect(),
        )
    }))
}

fn summarize(fams: impl Iterator<Item = (String, Vec<Value>)>) -> Value {
    let (types, samples): (Vec<_>, Vec<_>) = fams.unzip();
    json!({"types": types, "samples": samples})
}

#[test]
fn python_prometheus_client_reads_what_we_read() {
    for (format, mode) in [
        (Format::Text, Mode::Scrape),
        (Format::OpenMetrics, Mode::Strict),
    ] {
        let body = encode(format);
        let ours = we_read(&parse_families(&body, format, mode).unwrap());
        let theirs = python_reads(&body, format);
        assert_eq!(
            ours,
            theirs,
            "{format:?}: prometheus_client disagrees\n{}",
            String::from_utf8_lossy(&body)
        );
        // And OpenMetrics carries the registry's whole view (text 0.0.4 has
        // no _created, info or stateset, so it is a narrower one).
        if format == Format::OpenMetrics {
            assert_eq!(
                ours,
                we_read(&registry().gather()),
                "gather() differs from the encoded output"
            );
        }
    }
}
