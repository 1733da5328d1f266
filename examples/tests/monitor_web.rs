//! vigil-monitor's web pages in headless Chromium (Debian's chromium and
//! chromium-driver, installed by scripts/test) against a monitor holding
//! known data: a query's table values, a graph's drawn series, clicking
//! through targets and alerts; screenshots go to
//! `target/web-screenshots/` for a person to look at. Plus the pages'
//! content types and caching headers over plain HTTP.

mod peers;
mod webdriver;

use std::path::PathBuf;
use std::time::Duration;

use peers::{get_json, wait_for};

/// A target exposing two known series.
fn known_target() -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap().to_string();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let body = "# TYPE demo_value gauge\ndemo_value{k=\"a\"} 1\ndemo_value{k=\"b\"} 2.5\n# TYPE metricsCPU gauge\nmetricsCPU 0.95\n";
            let _ = req.respond(tiny_http::Response::from_string(body));
        }
    });
    addr
}

fn monitor_with_data(node: &peers::Peer) -> peers::Peer {
    let target = known_target();
    let m = peers::monitor(
        &format!(
            "global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\n  evaluation_interval: 200ms\n\
             rule_files: ['seed.rules']\n\
             scrape_configs:\n- job_name: demo\n  static_configs:\n  - targets: ['{target}']\n\
             - job_name: node\n  static_configs:\n  - targets: ['{}']\n\
             - job_name: gone\n  static_configs:\n  - targets: ['127.0.0.1:1']\n",
            node.addr
        ),
        &[(
            "seed.rules",
            "ALERT Example\n  IF metricsCPU > 0.9\n  FOR 1s\n  LABELS {severity=\"High\"}\n  ANNOTATIONS {summary=\"Node CPU too high\"}\n",
        )],
        &[],
    );
    let u = m.url();
    wait_for("the alert firing", Duration::from_secs(20), || {
        get_json(&format!("{u}/api/v1/alerts"))["data"]["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["state"] == "firing"))
    });
    m
}

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/web-screenshots")
}

#[test]
fn pages_in_a_real_browser() {
    // A real node_exporter feeds the dashboard's node panels.
    let node = peers::node_exporter();
    let m = monitor_with_data(&node);
    let u = m.url();
    let b = webdriver::Browser::start();

    // Table view: the known values, one row per series.
    b.goto(&format!("{u}/graph?expr=demo_value&tab=table"));
    let rows = b.find_all("table.result tbody tr");
    assert_eq!(rows.len(), 2);
    let cells: Vec<String> = b
        .find_all("table.result td.value")
        .iter()
        .map(|c| b.text(c))
        .collect();
    assert_eq!(cells, ["1", "2.5"]);
    let labels = b.text(&b.find("table.result td.labels"));
    assert!(labels.contains("k=\"a\""), "{labels}");
    b.screenshot(&shots().join("graph-table.png"));

    // Typing a query and executing it (Enter submits) keeps the state in
    // the URL.
    let expr = b.find("#expr");
    b.exec("document.getElementById('expr').value = ''");
    b.type_text(&expr, "sum(demo_value)");
    b.click(&b.find("form.query button[type=submit]"));
    wait_for("the sum", Duration::from_secs(10), || {
        b.url().contains("expr=sum%28demo_value%29")
    });
    assert_eq!(b.text(&b.find("table.result td.value")), "3.5");

    // Graph view: one path per series, with line segments, and a legend.
    wait_for("a few scrapes for a line", Duration::from_secs(10), || {
        let v = get_json(&format!(
            "{u}/api/v1/query?query=count_over_time(demo_value%5B1m%5D)"
        ));
        v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(|n| n >= 4.0)
    });
    b.goto(&format!("{u}/graph?expr=demo_value&tab=graph&range=1m"));
    let paths = b.find_all("svg.chart path.series");
    assert_eq!(paths.len(), 2);
    for p in &paths {
        let d = b.attr(p, "d").unwrap_or_default();
        assert!(d.starts_with('M') && d.contains('L'), "path {d:?}");
    }
    assert_eq!(b.find_all(".legend li").len(), 2);
    // The script drew a crosshair layer once the mouse moves; its data
    // parsed (two series).
    let n =
        b.exec("return JSON.parse(document.querySelector('script.chart-data').textContent).length");
    assert_eq!(n, 2);
    b.screenshot(&shots().join("graph-chart.png"));

    // An error shows where the query is.
    b.goto(&format!("{u}/graph?expr=sum(&tab=table"));
    let err = b.text(&b.find("p.error"));
    assert!(err.contains("parse error"), "{err}");

    // Targets: one up, one down with its error; click through to the
    // unhealthy filter and to the alerts page from the navigation.
    b.goto(&format!("{u}/targets"));
    let states: Vec<String> = b.find_all("td .state").iter().map(|s| b.text(s)).collect();
    assert_eq!(
        states.iter().filter(|s| *s == "UP").count(),
        2,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| *s == "DOWN").count(),
        1,
        "{states:?}"
    );
    b.screenshot(&shots().join("targets.png"));
    b.click(&b.find("a[href='/targets?state=down']"));
    wait_for("the filter", Duration::from_secs(5), || {
        b.url().ends_with("state=down")
    });
    let states: Vec<String> = b.find_all("td .state").iter().map(|s| b.text(s)).collect();
    assert_eq!(states, ["DOWN"]);
    let why = b.text(&b.find("td.error-text"));
    assert!(why.to_lowercase().contains("refused"), "{why}");

    b.click(&b.find("nav a[href='/alerts']"));
    wait_for("the alerts page", Duration::from_secs(5), || {
        b.url().ends_with("/alerts")
    });
    let summary = b.text(&b.find("details.rule summary"));
    assert!(
        summary.contains("FIRING") && summary.contains("Example"),
        "{summary}"
    );
    let cell = b.text(&b.find("details.rule table td"));
    assert!(cell.contains("severity=\"High\""), "{cell}");
    b.screenshot(&shots().join("alerts.png"));

    // Rules, status (cardinality tables), service discovery, dashboard.
    b.goto(&format!("{u}/rules"));
    assert!(b.text(&b.find("main")).contains("metricsCPU > 0.9"));
    b.goto(&format!("{u}/status"));
    // The top-10 table of metric names: ten rows, largest first.
    let counts: Vec<u64> = b
        .find_all("table.top:first-of-type td.value")
        .iter()
        .map(|c| b.text(c).trim().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 10, "{counts:?}");
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    assert!(b.text(&b.find("main")).contains("node_cpu_seconds_total"));
    b.screenshot(&shots().join("status.png"));
    b.goto(&format!("{u}/service-discovery"));
    assert!(b.text(&b.find("main")).contains("__address__"));
    b.goto(&format!("{u}/dashboard"));
    assert_eq!(b.find_all("section.panel").len(), 6);
    // The node panels draw node_exporter's data; the container panels have
    // none here (no agent) and say so.
    let drawn = b.find_all("section.panel svg.chart").len();
    assert!(drawn >= 3, "{drawn} panels drawn");
    assert!(b.text(&b.find("ul.tiles")).contains("2/3"));
    b.screenshot(&shots().join("dashboard.png"));
}

#[test]
fn pages_answer_with_content_types_and_caching_headers() {
    let m = peers::monitor(
        "global:\n  scrape_interval: 1s\nscrape_configs: []\n",
        &[],
        &[],
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let get = |path: &str, etag: Option<&str>| {
        let mut req = agent.get(&format!("{}{path}", m.url()));
        if let Some(e) = etag {
            req = req.header("If-None-Match", e);
        }
        let r = req.call().unwrap();
        let h = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        (
            r.status().as_u16(),
            h("content-type"),
            h("cache-control"),
            h("etag"),
            h("location"),
        )
    };
    for page in [
        "/graph",
        "/targets",
        "/alerts",
        "/rules",
        "/status",
        "/service-discovery",
        "/dashboard",
    ] {
        let (status, ct, cc, _, _) = get(page, None);
        assert_eq!(status, 200, "{page}");
        assert_eq!(ct, "text/html; charset=utf-8", "{page}");
        assert_eq!(cc, "no-store", "{page}");
    }
    let (status, _, _, _, location) = get("/", None);
    assert_eq!((status, location.as_str()), (302, "/graph"));
    for (asset, want) in [
        ("/static/app.css", "text/css; charset=utf-8"),
        ("/static/app.js", "text/javascript; charset=utf-8"),
    ] {
        let (status, ct, cc, etag, _) = get(asset, None);
        assert_eq!((status, ct.as_str()), (200, want));
        assert!(cc.contains("max-age"), "{cc}");
        assert!(etag.starts_with('"'), "{etag}");
        // Revalidation with the ETag costs no body.
        let (status, ..) = get(asset, Some(&etag));
        assert_eq!(status, 304);
    }
    // POST to a page is refused; an unknown path is still the API's 404.
    let r = agent.post(&format!("{}/graph", m.url())).send("x").unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(get("/no-such-page", None).0, 404);
}
