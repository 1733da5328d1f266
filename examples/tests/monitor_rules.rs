//! The monitor's rule evaluation: groups run on their own at their
//! interval, recording rules write into the store (and their series go
//! stale when they stop), the seed's legacy ALERT fires after its FOR and
//! its notification reaches an Alertmanager-shaped HTTP endpoint, then
//! resolves there when the condition clears.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use vigil_examples::monitor::notify::{AlertmanagerNotifier, AlertmanagerTarget};
use vigil_examples::monitor::rules::{
    RuleManager, RuleOptions, format_value, load_rule_files, now_ms,
};
use vigil_rules::Engine;
use vigil_tsdb::db::{Db, DbOptions};
use vigil_tsdb::index::Matcher;
use vigil_tsdb::labels::Labels;

/// An HTTP endpoint that records every body POSTed to it.
fn capture_server() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap().to_string();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            if req.url() == "/am/api/v2/alerts" {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
                    sink.lock().push(v);
                }
            }
            let _ = req.respond(tiny_http::Response::empty(200));
        }
    });
    (addr, got)
}

fn write(db: &Db, name: &str, v: f64) {
    let mut app = db.head().appender();
    let l = Labels::new([("__name__", name), ("instance", "node-1"), ("job", "node")]).unwrap();
    app.append(&l, now_ms(), v).unwrap();
    app.commit().unwrap();
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn recording_and_legacy_alert_rules_run_notify_and_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path().join("data"), DbOptions::default()).unwrap());
    std::fs::write(
        dir.path().join("seed.rules"),
        "ALERT Example\n  IF metricsCPU > 0.9\n  FOR 1s\n  LABELS {severity=\"High\"}\n  ANNOTATIONS {description=\"Node CPU too high: {{ $labels.instance }} CPU {{$value}}\", summary=\"Node CPU too high\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("record.yml"),
        "groups:\n- name: rec\n  interval: 200ms\n  rules:\n  - record: job:metricsCPU:max\n    expr: max by (job) (metricsCPU)\n",
    )
    .unwrap();
    let groups = load_rule_files(&["*.rules".into(), "*.yml".into()], dir.path()).unwrap();
    assert_eq!(groups.len(), 2);

    let (am, posted) = capture_server();
    let notifier = Arc::new(AlertmanagerNotifier::new(100));
    notifier.configure(
        vec![AlertmanagerTarget::new(
            "http",
            &am,
            "/am",
            Duration::from_secs(2),
        )],
        vec![("cluster".into(), "test".into())],
    );
    let manager = RuleManager::new(db.clone(), Engine::new(), notifier.clone());
    let opts = RuleOptions {
        evaluation_interval: Duration::from_millis(200),
        resend_delay: Duration::from_millis(200),
        ..RuleOptions::default()
    };
    manager.apply(groups, opts).unwrap();

    // Keep the condition true with fresh samples until the alert fires.
    let feed = |v: f64, until: &dyn Fn() -> bool, what: &str| {
        let start = Instant::now();
        while !until() {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "timed out: {what}"
            );
            write(&db, "metricsCPU", v);
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let firing = || {
        posted
            .lock()
            .iter()
            .flat_map(|b| b.as_array().cloned().unwrap_or_default())
            .any(|a| {
                a["labels"]["alertname"] == "Example"
                    && a["endsAt"].as_str().is_some_and(|e| e > "2000")
                    && manager.alerts_json()["alerts"]
                        .as_array()
                        .is_some_and(|l| l.iter().any(|x| x["state"] == "firing"))
            })
    };
    feed(0.95, &firing, "the alert to fire");
    let alert = posted
        .lock()
        .iter()
        .flat_map(|b| b.as_array().cloned().unwrap_or_default())
        .find(|a| a["labels"]["alertname"] == "Example")
        .unwrap();
    assert_eq!(alert["labels"]["severity"], "High");
    assert_eq!(alert["labels"]["instance"], "node-1");
    assert_eq!(
        alert["labels"]["cluster"], "test",
        "external labels are added"
    );
    assert_eq!(
        alert["annotations"]["description"],
        "Node CPU too high: node-1 CPU 0.95"
    );
    assert_eq!(alert["annotations"]["summary"], "Node CPU too high");

    // The recording rule wrote its series.
    let m = [Matcher::equal("__name__", "job:metricsCPU:max")];
    let got = db.select(&m, 0, i64::MAX).unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].1.iter().any(|&(_, v)| v == 0.95));

    let rules = manager.rules_json(None);
    let names: Vec<&str> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Example", "job:metricsCPU:max"]);
    let records = manager.rules_json(Some("record"));
    assert_eq!(records["groups"].as_array().unwrap().len(), 1);
    assert_eq!(records["groups"][0]["name"], "rec");

    // The condition clears: the alert resolves at Alertmanager (an update
    // whose endsAt is not in the future).
    posted.lock().clear();
    let resolved = || {
        posted
            .lock()
            .iter()
            .flat_map(|b| b.as_array().cloned().unwrap_or_default())
            .any(|a| {
                a["labels"]["alertname"] == "Example"
                    && a["endsAt"]
                        .as_str()
                        .is_some_and(|e| e <= vigil_rules::rules::rfc3339(now_ms()).as_str())
            })
    };
    feed(0.1, &resolved, "the alert to resolve");
    wait_for("no active alerts", Duration::from_secs(5), || {
        manager.alerts_json()["alerts"]
            .as_array()
            .unwrap()
            .is_empty()
    });

    // Removing the groups stops their series: the recorded one goes stale.
    manager.apply(Vec::new(), RuleOptions::default()).unwrap();
    let got = db.select(&m, 0, i64::MAX).unwrap();
    let last = got[0].1.last().unwrap().1;
    assert_eq!(last.to_bits(), vigil_rules::STALE_NAN_BITS);
    manager.stop();
    notifier.stop();
    assert_eq!(
        notifier
            .metrics()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn a_broken_rule_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        "groups:\n- name: x\n  rules:\n  - record: a\n    expr: sum(\n",
    )
    .unwrap();
    let err = load_rule_files(&["bad.yml".into()], dir.path()).unwrap_err();
    assert!(err.contains("bad.yml"), "{err}");
}

#[test]
fn a_full_queue_drops_the_oldest_and_counts_them() {
    let notifier = AlertmanagerNotifier::new(2);
    // No Alertmanager: the sender drops what it takes too, so stop it first
    // by making the queue overflow in one call.
    let alert = vigil_rules::rules::PostableAlert {
        labels: [("alertname".to_string(), "A".to_string())]
            .into_iter()
            .collect(),
        annotations: Default::default(),
        starts_at: "2026-01-01T00:00:00Z".into(),
        ends_at: "2026-01-01T00:01:00Z".into(),
        generator_url: String::new(),
    };
    use vigil_rules::rules::Notifier;
    notifier.notify(&[alert.clone(), alert.clone(), alert.clone(), alert]);
    notifier.stop();
    // 2 dropped for capacity; the other 2 dropped as undeliverable.
    assert_eq!(
        notifier
            .metrics()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        4
    );
}

#[test]
fn alert_values_print_like_go() {
    assert_eq!(format_value(1.0), "1e+00");
    assert_eq!(format_value(0.95), "9.5e-01");
    assert_eq!(format_value(2.5e-7), "2.5e-07");
    assert_eq!(format_value(123456.0), "1.23456e+05");
    assert_eq!(format_value(f64::INFINITY), "+Inf");
    assert_eq!(format_value(f64::NAN), "NaN");
}
