//! vigil-monitor's HTTP API over a store filled with known series and a test
//! [`Backend`]: every endpoint's JSON, the error shapes and codes, POST
//! forms, the limits, `/federate` and `/metrics`, and Prometheus's own
//! `promtool query …` reading our answers (Debian's promtool, which
//! `scripts/test` installs).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use vigil_examples::monitor::api::{ApiOptions, Backend, Server, serve};
use vigil_exposition::parse::{Mode, parse_families};
use vigil_exposition::{Format, MetricType};
use vigil_tsdb::db::{Db, DbOptions};
use vigil_tsdb::index::Matcher;
use vigil_tsdb::labels::Labels;

/// Samples every 15 s over the last 10 minutes, ending at `base`.
const STEPS: i64 = 40;
const STEP_MS: i64 = 15_000;

struct TestBackend {
    db: Db,
    ready: AtomicBool,
    reloads: AtomicUsize,
    fail_reload: AtomicBool,
    quits: AtomicUsize,
}

impl Backend for TestBackend {
    fn db(&self) -> &Db {
        &self.db
    }
    fn targets(&self, state: Option<&str>) -> Value {
        let active = json!([{"labels": {"job": "node"}, "health": "up", "lastError": ""}]);
        let dropped = json!([{"discoveredLabels": {"__address__": "c:1"}}]);
        match state {
            Some("active") => json!({"activeTargets": active, "droppedTargets": []}),
            Some("dropped") => json!({"activeTargets": [], "droppedTargets": dropped}),
            _ => json!({"activeTargets": active, "droppedTargets": dropped}),
        }
    }
    fn rules(&self, kind: Option<&str>) -> Value {
        json!({"groups": [{"name": "g", "kind": kind}]})
    }
    fn alerts(&self) -> Value {
        json!({"alerts": [{"labels": {"alertname": "Down"}, "state": "firing"}]})
    }
    fn metadata(&self, metric: Option<&str>, limit: Option<usize>) -> Value {
        json!({"asked": {"metric": metric, "limit": limit}})
    }
    fn config_yaml(&self) -> String {
        "global:\n  scrape_interval: 15s\n".into()
    }
    fn flags(&self) -> Vec<(String, String)> {
        vec![
            ("query.timeout".into(), "2m".into()),
            ("web.enable-lifecycle".into(), "true".into()),
            ("storage.tsdb.retention.time".into(), "15d".into()),
            ("storage.tsdb.retention.size".into(), "0B".into()),
        ]
    }
    fn reload(&self) -> Result<(), String> {
        self.reloads.fetch_add(1, Ordering::SeqCst);
        if self.fail_reload.load(Ordering::SeqCst) {
            Err("prometheus.yml:3:5: unknown field \"scrape_intervall\"".into())
        } else {
            Ok(())
        }
    }
    fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
    fn quit(&self) {
        self.quits.fetch_add(1, Ordering::SeqCst);
    }
    fn own_metrics(&self, out: &mut String) {
        out.push_str(
            "# HELP prometheus_config_last_reload_successful Whether the last reload succeeded.\n\
             # TYPE prometheus_config_last_reload_successful gauge\n\
             prometheus_config_last_reload_successful 1\n\
             # HELP prometheus_rule_evaluations_total The total number of rule evaluations.\n\
             # TYPE prometheus_rule_evaluations_total counter\n\
             prometheus_rule_evaluations_total 7\n\
             # HELP prometheus_notifications_latency_seconds Latency.\n\
             # TYPE prometheus_notifications_latency_seconds summary\n\
             prometheus_notifications_latency_seconds{quantile=\"0.5\"} 0.25\n\
             prometheus_notifications_latency_seconds_sum 1.5\n\
             prometheus_notifications_latency_seconds_count 6\n",
        );
    }
}

struct Fixture {
    backend: Arc<TestBackend>,
    server: Option<Server>,
    dir: tempfile::TempDir,
    /// The newest sample's time (a whole second, ms).
    base: i64,
    agent: ureq::Agent,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The series: `up` for two node targets (1 and 0), two
/// `http_requests_total` counters rising by 10 and 1 per step, and an old
/// `legacy_metric` two hours back (cut into a block).
fn fill(db: &Db, base: i64) {
    let up_a = Labels::new([("__name__", "up"), ("job", "node"), ("instance", "a:9100")]).unwrap();
    let up_b = Labels::new([("__name__", "up"), ("job", "node"), ("instance", "b:9100")]).unwrap();
    let ok = Labels::new([
        ("__name__", "http_requests_total"),
        ("job", "api"),
        ("code", "200"),
    ])
    .unwrap();
    let err = Labels::new([
        ("__name__", "http_requests_total"),
        ("job", "api"),
        ("code", "500"),
    ])
    .unwrap();
    let legacy = Labels::new([("__name__", "legacy_metric"), ("job", "old")]).unwrap();
    let mut app = db.head().appender();
    for k in 0..10 {
        app.append(&legacy, base - 7_200_000 + k * STEP_MS, k as f64)
            .unwrap();
    }
    for k in 0..=STEPS {
        let t = base - (STEPS - k) * STEP_MS;
        app.append(&up_a, t, 1.0).unwrap();
        app.append(&up_b, t, 0.0).unwrap();
        app.append(&ok, t, (10 * k) as f64).unwrap();
        app.append(&err, t, k as f64).unwrap();
    }
    app.commit().unwrap();
    db.cut_blocks().unwrap();
}

fn start(tweak: impl FnOnce(&mut ApiOptions)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path().join("data"),
        DbOptions {
            block_range_ms: 3_600_000,
            ..DbOptions::default()
        },
    )
    .unwrap();
    let base = now_ms() / 1000 * 1000;
    fill(&db, base);
    let backend = Arc::new(TestBackend {
        db,
        ready: AtomicBool::new(true),
        reloads: AtomicUsize::new(0),
        fail_reload: AtomicBool::new(false),
        quits: AtomicUsize::new(0),
    });
    let mut opts = ApiOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        snapshot_dir: dir.path().join("snapshots"),
        external_labels: vec![("region".into(), "eu".into())],
        ..ApiOptions::default()
    };
    tweak(&mut opts);
    let server = serve(opts, Arc::clone(&backend) as Arc<dyn Backend>).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    Fixture {
        backend,
        server: Some(server),
        dir,
        base,
        agent,
    }
}

/// A response: status, content type, body.
struct Resp {
    status: u16,
    content_type: String,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Fixture {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.as_ref().unwrap().addr())
    }

    fn read(mut r: ureq::http::Response<ureq::Body>) -> Resp {
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        Resp {
            status: r.status().as_u16(),
            content_type,
            body: r.body_mut().read_to_string().unwrap(),
        }
    }

    fn get(&self, path: &str) -> Resp {
        Self::read(self.agent.get(self.url(path)).call().unwrap())
    }

    fn get_accept(&self, path: &str, accept: &str) -> Resp {
        Self::read(
            self.agent
                .get(self.url(path))
                .header("Accept", accept)
                .call()
                .unwrap(),
        )
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        Self::read(
            self.agent
                .post(self.url(path))
                .send_form(form.iter().copied())
                .unwrap(),
        )
    }

    fn post_empty(&self, path: &str) -> Resp {
        Self::read(self.agent.post(self.url(path)).send_empty().unwrap())
    }

    /// A successful JSON answer's `data`.
    fn data(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.content_type, "application/json");
        let j = r.json();
        assert_eq!(j["status"], "success", "{path}");
        j["data"].clone()
    }

    /// An error answer: (HTTP status, errorType, error).
    fn error(&self, path: &str) -> (u16, String, String) {
        let r = self.get(path);
        let j = r.json();
        assert_eq!(j["status"], "error", "{path}: {}", r.body);
        (
            r.status,
            j["errorType"].as_str().unwrap().to_string(),
            j["error"].as_str().unwrap().to_string(),
        )
    }

    fn secs(&self, ms: i64) -> String {
        format!("{}", ms as f64 / 1000.0)
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[test]
fn instant_queries_of_every_result_type() {
    let f = start(|_| {});
    let t = f.secs(f.base);
    let d = f.data(&format!("/api/v1/query?query=up&time={t}"));
    assert_eq!(
        d,
        json!({"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "instance": "a:9100", "job": "node"},
             "value": [f.base / 1000, "1"]},
            {"metric": {"__name__": "up", "instance": "b:9100", "job": "node"},
             "value": [f.base / 1000, "0"]},
        ]})
    );
    // rate over 1 minute of a counter rising 10 per 15 s: 2/3 per second.
    let q = enc("sum by (code) (rate(http_requests_total[1m]))");
    let d = f.data(&format!("/api/v1/query?query={q}&time={t}"));
    let r = d["result"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["metric"], json!({"code": "200"}));
    let v: f64 = r[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((v - 10.0 / 15.0).abs() < 1e-9, "{v}");
    assert_eq!(
        f.data(&format!("/api/v1/query?query=1%2F0&time={t}")),
        json!({"resultType": "scalar", "result": [f.base / 1000, "+Inf"]})
    );
    assert_eq!(
        f.data(&format!("/api/v1/query?query=%22hi%22&time={t}")),
        json!({"resultType": "string", "result": [f.base / 1000, "hi"]})
    );
    // A range selector: a matrix of the raw samples, 3-digit fractions kept.
    let t_frac = f.secs(f.base + 500);
    let d = f.data(&format!(
        "/api/v1/query?query={}&time={t_frac}",
        enc(r#"up{instance="a:9100"}[30s]"#)
    ));
    assert_eq!(d["resultType"], "matrix");
    assert_eq!(
        d["result"][0]["values"],
        json!([[(f.base - 15_000) / 1000, "1"], [f.base / 1000, "1"]])
    );
    // The body writes the fraction as Prometheus does.
    let r = f.get(&format!("/api/v1/query?query=up&time={t_frac}"));
    assert!(
        r.body.contains(&format!("[{}.500,\"1\"]", f.base / 1000)),
        "{}",
        r.body
    );
    // 3.x's `limit` keeps that many series and says it cut.
    let r = f
        .get(&format!("/api/v1/query?query=up&time={t}&limit=1"))
        .json();
    assert_eq!(r["data"]["result"].as_array().unwrap().len(), 1);
    assert_eq!(r["warnings"], json!(["results truncated due to limit"]));
    let r = f
        .get(&format!("/api/v1/query?query=up&time={t}&limit=2"))
        .json();
    assert!(r.get("warnings").is_none());
    // `lookback_delta` overrides the lookback for one query: 5 s after the
    // last samples, a 2 s lookback finds nothing.
    let later = f.secs(f.base + 5000);
    let d = f.data(&format!(
        "/api/v1/query?query=up&time={later}&lookback_delta=2s"
    ));
    assert_eq!(d["result"], json!([]));
    let d = f.data(&format!("/api/v1/query?query=up&time={later}"));
    assert_eq!(d["result"].as_array().unwrap().len(), 2);
    // Without `time`: now, which sees the newest samples.
    let d = f.data("/api/v1/query?query=up");
    assert_eq!(d["result"].as_array().unwrap().len(), 2);
}

#[test]
fn range_queries_take_durations_and_float_steps() {
    let f = start(|_| {});
    let (s, e) = (f.secs(f.base - 60_000), f.secs(f.base));
    let q = enc(r#"up{instance="b:9100"}"#);
    for step in ["15s", "15", "15.0"] {
        let d = f.data(&format!(
            "/api/v1/query_range?query={q}&start={s}&end={e}&step={step}"
        ));
        assert_eq!(d["resultType"], "matrix");
        let vals = d["result"][0]["values"].as_array().unwrap();
        assert_eq!(vals.len(), 5, "{step}");
        assert_eq!(vals[0], json!([(f.base - 60_000) / 1000, "0"]));
    }
    // RFC 3339 times too.
    let d = f.data(
        "/api/v1/query_range?query=time()&start=1970-01-01T00:00:00Z&end=1970-01-01T00:01:00Z&step=30s",
    );
    assert_eq!(
        d,
        json!({"resultType": "matrix", "result": [{"metric": {}, "values": [[0, "0"], [30, "30"], [60, "60"]]}]})
    );
}

#[test]
fn errors_have_prometheus_types_codes_and_texts() {
    let f = start(|_| {});
    let cases: &[(&str, u16, &str, &str)] = &[
        (
            "/api/v1/query?query=up&time=abc",
            400,
            "bad_data",
            "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"abc\" to a valid timestamp",
        ),
        (
            "/api/v1/query?query=up&timeout=abc",
            400,
            "bad_data",
            "invalid parameter \"timeout\": cannot parse \"abc\" to a valid duration",
        ),
        (
            "/api/v1/query?query=up&timeout=0",
            503,
            "timeout",
            "query timed out in query execution",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=100000&step=1",
            400,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=10&step=0",
            400,
            "bad_data",
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ),
        (
            "/api/v1/query_range?query=up&start=10&end=0&step=1",
            400,
            "bad_data",
            "invalid parameter \"end\": end timestamp must not be before start time",
        ),
        (
            "/api/v1/query_range?query=up%5B1m%5D&start=0&end=10&step=1",
            400,
            "bad_data",
            "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=10",
            400,
            "bad_data",
            "invalid parameter \"step\": cannot parse \"\" to a valid duration",
        ),
        (
            "/api/v1/query_range?query=up&start=abc&end=10&step=1",
            400,
            "bad_data",
            "invalid parameter \"start\": cannot parse \"abc\" to a valid timestamp",
        ),
        (
            "/api/v1/series",
            400,
            "bad_data",
            "no match[] parameter provided",
        ),
        (
            "/api/v1/label/job/values?start=abc",
            400,
            "bad_data",
            "invalid parameter \"start\": Invalid time value for 'start': cannot parse \"abc\" to a valid timestamp",
        ),
        (
            "/api/v1/rules?type=x",
            400,
            "bad_data",
            "invalid parameter \"type\": not supported value \"x\"",
        ),
    ];
    let mut wrong = Vec::new();
    for (path, code, ty, msg) in cases {
        let got = f.error(path);
        if got != (*code, ty.to_string(), msg.to_string()) {
            wrong.push(format!(
                "{path}: got {got:?}, Prometheus 2.42 gives {msg:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Parse errors: bad_data at the position Prometheus 2.42 gives (its
    // messages, kept here, word some cases differently from vigil-rules').
    let parse_cases = [
        (
            "up{",
            "1:4: parse error: unexpected end of input inside braces",
        ),
        ("1 +", "1:4: parse error: unexpected end of input"),
        ("sum(up", "1:7: parse error: unclosed left parenthesis"),
        ("up[5m", "1:6: parse error: unclosed left bracket"),
        ("foo bar", "1:5: parse error: unexpected identifier \"bar\""),
        (
            "rate(up[5m]",
            "1:12: parse error: unclosed left parenthesis",
        ),
        (
            "{}",
            "1:1: parse error: vector selector must contain at least one non-empty matcher",
        ),
        (
            "sum(up) by",
            "1:11: parse error: unexpected end of input in grouping opts, expected \"(\"",
        ),
        ("", "1:1: parse error: no expression found in input"),
    ];
    for (q, prom) in parse_cases {
        let (code, ty, msg) = f.error(&format!("/api/v1/query?query={}", enc(q)));
        assert_eq!((code, ty.as_str()), (400, "bad_data"), "{q}");
        let at = prom.split(' ').next().unwrap();
        assert!(
            msg.starts_with(&format!("invalid parameter \"query\": {at} parse error: ")),
            "{q}: {msg}"
        );
    }
    let (_, _, msg) = f.error("/api/v1/query?query=up%5B5m");
    assert_eq!(
        msg,
        "invalid parameter \"query\": 1:6: parse error: unclosed left bracket"
    );
    // An evaluation failure is `execution` (422).
    let q = enc(r#"label_replace(up, "x", "", "y", "(")"#);
    let (code, ty, _) = f.error(&format!("/api/v1/query?query={q}"));
    assert_eq!((code, ty.as_str()), (422, "execution"));
    let q = enc(r#"http_requests_total / on() group_left up"#);
    let (code, ty, _) = f.error(&format!("/api/v1/query?query={q}"));
    assert_eq!((code, ty.as_str()), (422, "execution"));
    // A selector with a parse error in match[].
    let (code, ty, msg) = f.error("/api/v1/series?match[]=up(");
    assert_eq!((code, ty.as_str()), (400, "bad_data"));
    assert!(
        msg.starts_with("invalid parameter \"match[]\": 1:"),
        "{msg}"
    );
    // Plain-text answers where Prometheus's router gives them.
    let r = f.get("/api/v1/nope");
    assert_eq!((r.status, r.body.as_str()), (404, "404 page not found\n"));
    let r = Fixture::read(
        f.agent
            .put(f.url("/api/v1/query?query=1"))
            .send_empty()
            .unwrap(),
    );
    assert_eq!(r.status, 405);
    let r = f.post_empty("/api/v1/label/job/values");
    assert_eq!(r.status, 405);
}

#[test]
fn post_forms_and_the_body_limit() {
    let f = start(|o| o.max_body_bytes = 1000);
    let t = f.secs(f.base);
    let r = f.post(
        "/api/v1/query",
        &[("query", "up{instance=\"a:9100\"}"), ("time", &t)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["result"][0]["value"][1], "1");
    let r = f.post(
        "/api/v1/query_range",
        &[
            ("query", "up{instance=\"a:9100\"}"),
            ("start", &t),
            ("end", &t),
            ("step", "1m"),
        ],
    );
    assert_eq!(r.json()["data"]["result"][0]["values"][0][1], "1");
    let r = f.post(
        "/api/v1/series",
        &[("match[]", "up"), ("match[]", "legacy_metric")],
    );
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 3);
    // The body's parameters win over the URL's, as Go's FormValue.
    let r = Fixture::read(
        f.agent
            .post(f.url("/api/v1/query?query=nonexistent"))
            .send_form([("query", "vector(7)"), ("time", t.as_str())])
            .unwrap(),
    );
    assert_eq!(r.json()["data"]["result"][0]["value"][1], "7");
    // Over the limit: refused, not read.
    let big = "x".repeat(2000);
    let r = f.post("/api/v1/query", &[("query", &big)]);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errorType"], "bad_data");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("larger than 1000 bytes")
    );
}

#[test]
fn series_labels_and_values() {
    let f = start(|_| {});
    assert_eq!(
        f.data("/api/v1/series?match[]=up"),
        json!([
            {"__name__": "up", "instance": "a:9100", "job": "node"},
            {"__name__": "up", "instance": "b:9100", "job": "node"},
        ])
    );
    // Several match[] are a union; the time range leaves out the old block.
    let (s, e) = (f.secs(f.base - 60_000), f.secs(f.base));
    let d = f.data(&format!(
        "/api/v1/series?match[]=legacy_metric&match[]={}&start={s}&end={e}",
        enc(r#"{job="api",code=~"5.."}"#)
    ));
    assert_eq!(
        d,
        json!([{"__name__": "http_requests_total", "code": "500", "job": "api"}])
    );
    assert_eq!(
        f.data("/api/v1/labels"),
        json!(["__name__", "code", "instance", "job"])
    );
    assert_eq!(
        f.data("/api/v1/labels?match[]=up"),
        json!(["__name__", "instance", "job"])
    );
    assert_eq!(
        f.data("/api/v1/label/__name__/values"),
        json!(["http_requests_total", "legacy_metric", "up"])
    );
    assert_eq!(
        f.data("/api/v1/label/job/values?match[]=http_requests_total&match[]=up"),
        json!(["api", "node"])
    );
    assert_eq!(
        f.data(&format!("/api/v1/label/job/values?start={s}&end={e}")),
        json!(["api", "node"])
    );
    assert_eq!(f.data("/api/v1/label/nope/values"), json!([]));
    // A limit cuts the list and says so.
    let r = f.get("/api/v1/label/__name__/values?limit=2").json();
    assert_eq!(r["data"], json!(["http_requests_total", "legacy_metric"]));
    assert_eq!(r["warnings"], json!(["results truncated due to limit"]));
    // Label names in the path are percent-decoded (3.x allows UTF-8 names).
    assert_eq!(
        f.data("/api/v1/label/j%6Fb/values"),
        json!(["api", "node", "old"])
    );
    // And 3.x's U__ escaping of names in the path.
    assert_eq!(
        f.data("/api/v1/label/U__j_6f_b/values"),
        json!(["api", "node", "old"])
    );
    // No exemplars are stored: the answer is an empty list.
    assert_eq!(f.data("/api/v1/query_exemplars?query=up"), json!([]));
}

#[test]
fn backend_endpoints_pass_its_json_through() {
    let f = start(|_| {});
    let all = f.data("/api/v1/targets");
    assert_eq!(all["activeTargets"][0]["health"], "up");
    assert_eq!(all["droppedTargets"].as_array().unwrap().len(), 1);
    let active = f.data("/api/v1/targets?state=active");
    assert_eq!(active["droppedTargets"], json!([]));
    let odd = f.data("/api/v1/targets?state=odd");
    assert_eq!(odd, json!({"activeTargets": [], "droppedTargets": []}));
    assert_eq!(f.data("/api/v1/rules")["groups"][0]["kind"], Value::Null);
    assert_eq!(
        f.data("/api/v1/rules?type=alert")["groups"][0]["kind"],
        "alert"
    );
    assert_eq!(f.data("/api/v1/alerts")["alerts"][0]["state"], "firing");
    assert_eq!(
        f.data("/api/v1/metadata?metric=up&limit=5"),
        json!({"asked": {"metric": "up", "limit": 5}})
    );
    assert_eq!(
        f.error("/api/v1/metadata?limit=x"),
        (400, "bad_data".into(), "limit must be a number".into())
    );
    assert_eq!(
        f.data("/api/v1/status/config"),
        json!({"yaml": "global:\n  scrape_interval: 15s\n"})
    );
    assert_eq!(
        f.data("/api/v1/status/flags"),
        json!({
            "query.timeout": "2m",
            "web.enable-lifecycle": "true",
            "storage.tsdb.retention.time": "15d",
            "storage.tsdb.retention.size": "0B",
        })
    );
    let b = f.data("/api/v1/status/buildinfo");
    assert!(b["version"].as_str().unwrap().starts_with("3.0.0+vigil."));
    for k in ["revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(b[k].is_string(), "{k}");
    }
    let rt = f.data("/api/v1/status/runtimeinfo");
    assert_eq!(rt["reloadConfigSuccess"], true);
    assert_eq!(rt["corruptionCount"], 0);
    assert_eq!(rt["storageRetention"], "15d");
    assert!(rt["GOMAXPROCS"].as_u64().unwrap() >= 1);
    let started = rt["startTime"].as_str().unwrap();
    assert!(
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
            .unwrap()
            .is_match(started),
        "{started}"
    );
    let s = f.data("/api/v1/status/tsdb");
    // The head: legacy_metric went into a block and left the head.
    assert_eq!(s["headStats"]["numSeries"], 4);
    assert_eq!(
        s["seriesCountByMetricName"][0],
        json!({"name": "http_requests_total", "value": 2})
    );
    let one = f.data("/api/v1/status/tsdb?limit=1");
    assert_eq!(
        one["seriesCountByLabelValuePair"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        s["seriesCountByLabelValuePair"].as_array().unwrap().len(),
        8
    );
    assert_eq!(
        f.error("/api/v1/status/tsdb?limit=0").2,
        "limit must be a positive number"
    );
    assert_eq!(
        s["labelValueCountByLabelName"][0],
        // Head statistics: legacy_metric's samples went into a block.
        json!({"name": "__name__", "value": 2})
    );
}

#[test]
fn health_readiness_and_lifecycle() {
    let f = start(|_| {});
    let r = f.get("/-/healthy");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "Prometheus Server is Healthy.\n")
    );
    assert_eq!(f.get("/-/ready").status, 200);
    f.backend.ready.store(false, Ordering::SeqCst);
    assert_eq!(f.get("/-/ready").status, 503);
    // Lifecycle is off: 403 for POST, 405 for GET.
    let r = f.post_empty("/-/reload");
    assert_eq!(
        (r.status, r.body.as_str()),
        (403, "Lifecycle API is not enabled.")
    );
    assert_eq!(f.get("/-/reload").status, 405);
    assert_eq!(f.post_empty("/-/quit").status, 403);
    assert_eq!(f.backend.reloads.load(Ordering::SeqCst), 0);
    // Admin is off: Prometheus's 500 "unavailable".
    let r = f.post_empty("/api/v1/admin/tsdb/snapshot");
    assert_eq!(r.status, 500);
    assert_eq!(
        r.json(),
        json!({"status": "error", "errorType": "unavailable", "error": "admin APIs disabled"})
    );

    let f = start(|o| o.enable_lifecycle = true);
    assert_eq!(f.post_empty("/-/reload").status, 200);
    f.backend.fail_reload.store(true, Ordering::SeqCst);
    let r = f.post_empty("/-/reload");
    assert_eq!(r.status, 500);
    assert!(r.body.contains("unknown field"), "{}", r.body);
    assert_eq!(f.backend.reloads.load(Ordering::SeqCst), 2);
    let r = Fixture::read(f.agent.put(f.url("/-/quit")).send_empty().unwrap());
    assert_eq!(r.status, 200);
    assert_eq!(f.backend.quits.load(Ordering::SeqCst), 1);
}

#[test]
fn admin_delete_snapshot_and_clean_tombstones() {
    let f = start(|o| o.enable_admin_api = true);
    // Snapshot first: a store opened from it holds every series.
    let r = f.post_empty("/api/v1/admin/tsdb/snapshot");
    assert_eq!(r.status, 200, "{}", r.body);
    let name = r.json()["data"]["name"].as_str().unwrap().to_string();
    let re = regex::Regex::new(r"^\d{8}T\d{6}Z-[0-9a-f]{16}$").unwrap();
    assert!(re.is_match(&name), "{name}");
    let snap = Db::open(
        f.dir.path().join("snapshots").join(&name),
        DbOptions::default(),
    )
    .unwrap();
    let all = snap
        .select(&[Matcher::equal("job", "node")], i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].1.len() as i64, STEPS + 1);
    assert_eq!(snap.label_values("__name__", &[]).len(), 3);
    drop(snap);
    // skip_head leaves the head out (here: everything recent).
    let r = f.post("/api/v1/admin/tsdb/snapshot", &[("skip_head", "true")]);
    let name = r.json()["data"]["name"].as_str().unwrap().to_string();
    let snap = Db::open(
        f.dir.path().join("snapshots").join(&name),
        DbOptions::default(),
    )
    .unwrap();
    let up = snap
        .select(&[Matcher::equal("__name__", "up")], i64::MIN, i64::MAX)
        .unwrap();
    let in_blocks = f.backend.db.block_ranges();
    assert!(
        up.iter()
            .flat_map(|(_, s)| s)
            .all(|(t, _)| in_blocks.iter().any(|(lo, hi)| t >= lo && t < hi))
    );
    drop(snap);
    let r = f.post("/api/v1/admin/tsdb/snapshot", &[("skip_head", "maybe")]);
    assert_eq!(r.status, 400);

    // delete_series: the series goes from queries, series and labels.
    let r = f.post(
        "/api/v1/admin/tsdb/delete_series",
        &[("match[]", "up{instance=\"b:9100\"}")],
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let d = f.data("/api/v1/series?match[]=up");
    assert_eq!(d.as_array().unwrap().len(), 1);
    let d = f.data(&format!("/api/v1/query?query=up&time={}", f.secs(f.base)));
    assert_eq!(d["result"].as_array().unwrap().len(), 1);
    let r = f.post_empty("/api/v1/admin/tsdb/delete_series");
    assert_eq!(r.json()["error"], "no match[] parameter provided");
    assert_eq!(f.get("/api/v1/admin/tsdb/delete_series").status, 405);
    // clean_tombstones rewrites blocks with tombstones; the deletion holds.
    let r = f.post_empty("/api/v1/admin/tsdb/clean_tombstones");
    assert_eq!(r.status, 204, "{}", r.body);
    let d = f.data("/api/v1/series?match[]=up");
    assert_eq!(d.as_array().unwrap().len(), 1);
}

#[test]
fn federate_writes_untyped_families_with_external_labels() {
    let f = start(|_| {});
    let r = f.get(&format!(
        "/federate?match[]=up&match[]={}&match[]=legacy_metric",
        enc(r#"{__name__="http_requests_total",code="500"}"#)
    ));
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    let b = f.base;
    let expect = format!(
        "# TYPE http_requests_total untyped\n\
         http_requests_total{{code=\"500\",job=\"api\",region=\"eu\"}} {STEPS} {b}\n\
         # TYPE up untyped\n\
         up{{instance=\"a:9100\",job=\"node\",region=\"eu\"}} 1 {b}\n\
         up{{instance=\"b:9100\",job=\"node\",region=\"eu\"}} 0 {b}\n"
    );
    assert_eq!(r.body, expect);
    let fams = parse_families(r.body.as_bytes(), Format::Text, Mode::Strict).unwrap();
    assert_eq!(fams.len(), 2);
    assert_eq!(fams[1].metric_type, MetricType::Unknown);
    // No match[]: empty; a bad one: 400 with the parse error.
    assert_eq!(f.get("/federate").body, "");
    let r = f.get("/federate?match[]=up(");
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("1:"), "{}", r.body);
}

#[test]
fn metrics_are_negotiated_and_count_requests() {
    let f = start(|_| {});
    f.get("/api/v1/query?query=up");
    f.get("/api/v1/label/job/values");
    let r = f.get("/metrics");
    assert_eq!(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    for want in [
        "prometheus_http_requests_total{code=\"200\",handler=\"/api/v1/query\"} 1",
        "prometheus_http_requests_total{code=\"200\",handler=\"/api/v1/label/:name/values\"} 1",
        "prometheus_http_request_duration_seconds_bucket{handler=\"/api/v1/query\",le=\"+Inf\"} 1",
        "prometheus_engine_queries 0",
        "prometheus_engine_queries_concurrent_max 20",
        "prometheus_tsdb_head_series ",
        "prometheus_config_last_reload_successful 1",
        "prometheus_rule_evaluations_total 7",
        "prometheus_notifications_latency_seconds{quantile=\"0.5\"} 0.25",
        "prometheus_notifications_latency_seconds_count 6",
        "process_resident_memory_bytes ",
    ] {
        assert!(r.body.contains(want), "missing {want:?} in\n{}", r.body);
    }
    parse_families(r.body.as_bytes(), Format::Text, Mode::Scrape).unwrap();
    let om = f.get_accept(
        "/metrics",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    );
    assert_eq!(
        om.content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.body.ends_with("# EOF\n"));
    let fams = parse_families(om.body.as_bytes(), Format::OpenMetrics, Mode::Strict).unwrap();
    assert!(
        fams.iter()
            .any(|f| f.name == "prometheus_config_last_reload_successful")
    );
    assert!(
        om.body.contains("\nprometheus_rule_evaluations_total 7"),
        "{}",
        om.body
    );
    assert!(
        fams.iter().any(
            |f| f.name == "prometheus_rule_evaluations" && f.metric_type == MetricType::Counter
        )
    );
    // Prometheus's own checker accepts the text form.
    let dir = f.dir.path().join("metrics.txt");
    std::fs::write(&dir, &r.body).unwrap();
    let out = Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&dir).unwrap())
        .output()
        .expect("promtool (Debian's prometheus package; scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn api_answers_carry_cors_headers_for_an_origin() {
    let f = start(|_| {});
    let call = |method: &str| {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(f.url("/api/v1/query?query=1"))
            .header("Origin", "http://grafana.example")
            .body(())
            .unwrap();
        f.agent.run(req).unwrap()
    };
    for (method, status) in [("GET", 200), ("OPTIONS", 204)] {
        let r = call(method);
        assert_eq!(r.status().as_u16(), status);
        let h = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(h("access-control-allow-origin").as_deref(), Some("*"));
        assert_eq!(
            h("access-control-allow-methods").as_deref(),
            Some("GET, POST, OPTIONS")
        );
        assert_eq!(h("vary").as_deref(), Some("Origin"));
    }
    // Not without an Origin, and not outside the API.
    let r = f.agent.get(f.url("/api/v1/query?query=1")).call().unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = f
        .agent
        .get(f.url("/federate"))
        .header("Origin", "http://x")
        .call()
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[test]
fn large_answers_are_gzipped_when_the_client_accepts_it() {
    use std::io::{Read, Write};
    let f = start(|_| {});
    let addr = f.server.as_ref().unwrap().addr();
    let fetch = |accept_encoding: &str| {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        write!(
            c,
            "GET /metrics HTTP/1.1\r\nHost: x\r\n{accept_encoding}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        c.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        (head, raw[split + 4..].to_vec())
    };
    let (head, body) = fetch("Accept-Encoding: gzip, deflate\r\n");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("prometheus_tsdb_head_series"));
    let (head, body) = fetch("");
    assert!(!head.contains("content-encoding"), "{head}");
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("prometheus_tsdb_head_series")
    );
}

#[test]
fn query_limits_hold() {
    // --query.max-samples: `up[10m]` loads 2 x 41 samples.
    let f = start(|o| o.max_samples = 50);
    let (code, ty, msg) = f.error(&format!(
        "/api/v1/query?query={}&time={}",
        enc("up[10m]"),
        f.secs(f.base)
    ));
    assert_eq!(
        (code, ty.as_str(), msg.as_str()),
        (
            422,
            "execution",
            "query processing would load too many samples into memory in query execution"
        )
    );
    assert_eq!(
        f.data(&format!(
            "/api/v1/query?query={}&time={}",
            enc("up[1m]"),
            f.secs(f.base)
        ))["result"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // One query at a time: a long one holds the slot until its own 1.5 s
    // timeout stops it; another waits 0.3 s for the slot and gives up.
    let f = Arc::new(start(|o| o.max_concurrency = 1));
    // A 1 ms subquery over an hour of 1 ms subqueries over 5 minutes:
    // about 10^12 steps, far beyond 1.5 s on any machine (one level alone,
    // 3.6 M steps, now answers within the 0.3 s of the second request).
    let slow = format!(
        "/api/v1/query?query={}&timeout=1.5",
        enc("count_over_time(count_over_time(up[5m:1ms])[1h:1ms])")
    );
    let f2 = Arc::clone(&f);
    let long = std::thread::spawn(move || f2.error(&slow));
    std::thread::sleep(Duration::from_millis(300));
    let (code, ty, msg) = f.error("/api/v1/query?query=up&timeout=0.3");
    assert_eq!(
        (code, ty.as_str(), msg.as_str()),
        (503, "timeout", "query timed out in query queue")
    );
    let (code, ty, msg) = long.join().unwrap();
    assert_eq!(
        (code, ty.as_str(), msg.as_str()),
        (503, "timeout", "query timed out in expression evaluation")
    );
    // The slot is free again.
    assert_eq!(f.data("/api/v1/query?query=up")["resultType"], "vector");
}

#[test]
fn requests_past_the_connection_cap_get_503_at_once() {
    let f = Arc::new(start(|o| o.max_connections = 1));
    let slow = format!(
        "/api/v1/query?query={}&timeout=1",
        enc("count_over_time(count_over_time(up[5m:1ms])[1h:1ms])")
    );
    let f2 = Arc::clone(&f);
    let long = std::thread::spawn(move || f2.error(&slow));
    std::thread::sleep(Duration::from_millis(300));
    let r = f.get("/-/healthy");
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "too many open requests\n")
    );
    assert_eq!(long.join().unwrap().1, "timeout");
    // Served again once the long request's thread is done (it counts
    // itself out just after answering).
    let served = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        f.get("/-/healthy").status == 200
    });
    assert!(served);
}

#[test]
fn hostile_parameters_get_json_answers_not_panics() {
    let f = start(|_| {});
    let paths = [
        "/api/v1/query?query=%ff%fe",
        "/api/v1/query?query=up&time=1e400",
        "/api/v1/query?query=up&time=9e15",
        "/api/v1/query?query=up&time=-9e15",
        "/api/v1/query?query=up%20offset%20-100000y&time=9e15",
        "/api/v1/query?query=up&timeout=1e300",
        "/api/v1/query?query=up&limit=99999999999999999999",
        "/api/v1/query?query=up&lookback_delta=-5m",
        "/api/v1/query_range?query=up&start=-9e15&end=9e15&step=1e15",
        "/api/v1/query_range?query=up&start=0&end=1&step=1e-9",
        "/api/v1/query_range?query=up&start=0&end=9e15&step=1e30",
        "/api/v1/query_range?query=vector(1)&start=-9e15&end=9e15&step=1e12",
        "/api/v1/series?match[]=",
        "/api/v1/series?match[]=up&start=9e15&end=-9e15",
        "/api/v1/series?match[]=%7Ba%3D~%22(%22%7D",
        "/api/v1/labels?match[]=%7B__name__%3D~%22.%2B%22%7D&start=-9e15&end=9e15",
        "/api/v1/label/a%2Fb/values",
        "/api/v1/label/%ff/values?limit=-1",
        "/api/v1/query_exemplars?query=up&start=2&end=1",
        "/api/v1/query?query=",
    ];
    for p in paths {
        let r = f.get(p);
        assert!(
            matches!(r.status, 200 | 400 | 422 | 503),
            "{p}: {} {}",
            r.status,
            r.body
        );
        let j = r.json();
        assert!(j["status"] == "success" || j["status"] == "error", "{p}");
    }
    assert_eq!(f.get("/-/healthy").status, 200);
}

/// Runs promtool against our server and returns its stdout.
fn promtool(args: &[&str]) -> String {
    let out = Command::new("/usr/bin/promtool")
        .args(args)
        .output()
        .expect("promtool (Debian's prometheus package; scripts/test installs it)");
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn promtool_reads_our_answers() {
    let f = start(|_| {});
    let server = format!("http://{}", f.server.as_ref().unwrap().addr());
    let t = f.secs(f.base);
    let out = promtool(&["query", "instant", "--time", &t, &server, "up"]);
    assert_eq!(
        out,
        format!(
            "up{{instance=\"a:9100\", job=\"node\"}} => 1 @[{t}]\nup{{instance=\"b:9100\", job=\"node\"}} => 0 @[{t}]\n"
        )
    );
    let out = promtool(&[
        "query", "instant", "-o", "json", "--time", &t, &server, "sum(up)",
    ]);
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j[0]["value"][1], "1");
    let start_s = f.secs(f.base - 30_000);
    let out = promtool(&[
        "query",
        "range",
        "--start",
        &start_s,
        "--end",
        &t,
        "--step",
        "15s",
        &server,
        "up{instance=\"a:9100\"}",
    ]);
    assert_eq!(
        out,
        format!(
            "up{{instance=\"a:9100\", job=\"node\"}} =>\n1 @[{}]\n1 @[{}]\n1 @[{t}]\n",
            f.secs(f.base - 30_000),
            f.secs(f.base - 15_000)
        )
    );
    let out = promtool(&["query", "series", "--match", "up", &server]);
    assert_eq!(
        out,
        "{__name__=\"up\", instance=\"a:9100\", job=\"node\"}\n{__name__=\"up\", instance=\"b:9100\", job=\"node\"}\n"
    );
    let out = promtool(&["query", "labels", &server, "job"]);
    assert_eq!(out, "api\nnode\nold\n");
    let out = promtool(&["query", "labels", "--match", "up", &server, "instance"]);
    assert_eq!(out, "a:9100\nb:9100\n");
    // A parse error comes back as promtool's query error.
    let bad = Command::new("/usr/bin/promtool")
        .args(["query", "instant", &server, "up("])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("parse error"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn stop_closes_the_listener() {
    let mut f = start(|_| {});
    let addr = f.server.as_ref().unwrap().addr();
    f.server.take().unwrap().stop();
    // The listener closes once tiny_http's accept thread sees the stop.
    let refused = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err()
    });
    assert!(refused, "{addr} still accepts connections after stop");
}

/// A real Prometheus (Debian's 2.42), stopped by its pid when dropped.
struct RealPrometheus {
    child: std::process::Child,
    addr: String,
}

impl Drop for RealPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `/usr/bin/prometheus` on 127.0.0.1 (a port of its choosing) with
/// `config` in a directory of `dir`, and waits until it says where it
/// listens.
fn real_prometheus(dir: &std::path::Path, config: &str) -> RealPrometheus {
    use std::io::BufRead;
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config).unwrap();
    let mut child = Command::new("/usr/bin/prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("prom-data").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("prometheus (Debian's prometheus package; scripts/test installs it)");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("msg=\"Listening on\"") {
                if let Some(a) = line.split("address=").nth(1) {
                    let _ = tx.send(Ok(a.trim().to_string()));
                }
            }
            log.push_str(&line);
            log.push('\n');
        }
        let _ = tx.send(Err(log));
    });
    let addr = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(a)) => a,
        other => panic!("prometheus did not say where it listens: {other:?}"),
    };
    RealPrometheus { child, addr }
}

#[test]
fn a_real_prometheus_scrapes_metrics_and_federates() {
    let f = start(|_| {});
    let ours = f.server.as_ref().unwrap().addr();
    let config = format!(
        r#"global:
  scrape_interval: 1s
scrape_configs:
  - job_name: vigil
    static_configs:
      - targets: ['{ours}']
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['up', '{{job="api"}}']
    static_configs:
      - targets: ['{ours}']
"#
    );
    let prom = real_prometheus(f.dir.path(), &config);
    let ask = |q: &str| -> Value {
        let url = format!("http://{}/api/v1/query?query={}", prom.addr, enc(q));
        let mut r = f.agent.get(&url).call().unwrap();
        let body = r.body_mut().read_to_string().unwrap();
        // Until its store is up, Prometheus answers 503 in plain text.
        serde_json::from_str(&body).unwrap_or(Value::String(body))
    };
    // Wait (up to 20 s) for both jobs to have been scraped.
    let mut last = Value::Null;
    for _ in 0..100 {
        last = ask("up{job=~\"vigil|federate\"} == 1");
        if last["data"]["result"]
            .as_array()
            .is_some_and(|r| r.len() == 2)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        last["data"]["result"].as_array().map(Vec::len),
        Some(2),
        "{last}"
    );
    // Our /metrics as Prometheus stored it.
    let r = ask("prometheus_tsdb_head_series{job=\"vigil\"}");
    assert_eq!(r["data"]["result"].as_array().map(Vec::len), Some(1), "{r}");
    // The federated series, with their own job/instance (honor_labels) and
    // our external label.
    let r = ask("up{job=\"node\"}");
    let got: Vec<(String, String, String)> = r["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"]["instance"].as_str().unwrap_or("").to_string(),
                s["metric"]["region"].as_str().unwrap_or("").to_string(),
                s["value"][1].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let mut got = got;
    got.sort();
    assert_eq!(
        got,
        [
            ("a:9100".to_string(), "eu".to_string(), "1".to_string()),
            ("b:9100".to_string(), "eu".to_string(), "0".to_string())
        ]
    );
    let r = ask("http_requests_total{job=\"api\"}");
    assert_eq!(r["data"]["result"].as_array().map(Vec::len), Some(2), "{r}");
}
