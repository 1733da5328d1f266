//! The network outputs end to end: a tail input feeds a pipeline whose
//! output posts to a small HTTP server in this test (127.0.0.1); the test
//! checks the requests as the destinations (Elasticsearch `_bulk`, Loki
//! push, a JSON HTTP endpoint) read them.
#![cfg(feature = "http")]

mod common;

use common::*;
use std::time::Duration;

fn run_to(
    server: &TestServer,
    output: &str,
    lines: &[&str],
    want_requests: usize,
) -> Vec<(String, Vec<u8>)> {
    let d = dir();
    let root = d.path();
    let log = root.join("app.log");
    std::fs::write(
        &log,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let conf = format!(
        "[SERVICE]\n    Flush 0.1\n    scheduler.base 0.1\n    scheduler.cap 0.2\n\
         [INPUT]\n    Name tail\n    Path {}\n    Read_From_Head On\n    Tag app\n\
         [OUTPUT]\n    Port {}\n    Match app\n{output}",
        p(&log),
        server.port
    );
    let running = Running::start(&conf, root);
    assert!(
        wait_until(Duration::from_secs(10), || server
            .bodies
            .lock()
            .unwrap()
            .len()
            >= want_requests),
        "no request arrived"
    );
    running.stop();
    server.bodies.lock().unwrap().clone()
}

#[test]
fn elasticsearch_bulk_with_logstash_index() {
    let server = TestServer::start();
    server.set_response(r#"{"took":1,"errors":false,"items":[{"create":{"status":201}}]}"#);
    let bodies = run_to(
        &server,
        "    Name es\n    Logstash_Format On\n    Logstash_Prefix app\n    Suppress_Type_Name On\n    Path /es\n",
        &["one", "two"],
        1,
    );
    let (path, body) = &bodies[0];
    assert_eq!(path, "/es/_bulk");
    let text = String::from_utf8(body.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let action: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let index = action["create"]["_index"].as_str().unwrap();
    assert!(
        index.starts_with("app-20") && index.len() == "app-2026.01.01".len(),
        "{index}"
    );
    let doc: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(doc["log"], "one");
    assert!(doc["@timestamp"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn elasticsearch_item_errors_are_retried() {
    let mut server = TestServer::start();
    // Every bulk says one item was rejected with 429: the batch is retried.
    server.set_response(r#"{"errors":true,"items":[{"create":{"status":429,"error":{"type":"es_rejected_execution_exception"}}}]}"#);
    let bodies = run_to(&server, "    Name es\n    Retry_Limit 2\n", &["x"], 3);
    assert!(
        bodies.len() >= 3,
        "first try and two retries: {}",
        bodies.len()
    );
    server.set_down(true);
}

#[test]
fn loki_push_with_labels_from_keys() {
    let server = TestServer::start();
    // Records with a `stream` key come from a parser; here: a JSON input.
    let d = dir();
    let root = d.path();
    let log = root.join("app.log");
    std::fs::write(&log, "{\"stream\":\"stderr\",\"msg\":\"boom\"}\n").unwrap();
    std::fs::write(
        root.join("parsers.conf"),
        "[PARSER]\n    Name j\n    Format json\n",
    )
    .unwrap();
    let conf = format!(
        "[SERVICE]\n    Flush 0.1\n    Parsers_File parsers.conf\n\
         [INPUT]\n    Name tail\n    Path {}\n    Read_From_Head On\n    Parser j\n    Tag app\n\
         [OUTPUT]\n    Name loki\n    Match *\n    Port {}\n    Labels job=sidecar\n    Label_Keys $stream\n    Remove_Keys stream\n",
        p(&log),
        server.port
    );
    let running = Running::start(&conf, root);
    assert!(wait_until(Duration::from_secs(10), || !server
        .bodies
        .lock()
        .unwrap()
        .is_empty()));
    running.stop();
    let (path, body) = server.bodies.lock().unwrap()[0].clone();
    assert_eq!(path, "/loki/api/v1/push");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let stream = &v["streams"][0];
    assert_eq!(stream["stream"]["job"], "sidecar");
    assert_eq!(stream["stream"]["stream"], "stderr");
    assert_eq!(stream["values"][0][1], "{\"msg\":\"boom\"}");
}

#[test]
fn http_json_gzip_with_headers() {
    let server = TestServer::start();
    let bodies = run_to(
        &server,
        "    Name http\n    URI /in\n    Format json\n    compress gzip\n    Header X-Team logs\n",
        &["a", "b\"c"],
        1,
    );
    let (path, body) = &bodies[0];
    assert_eq!(path, "/in");
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[1]["log"], "b\"c");
    assert!(arr[0]["date"].as_f64().unwrap() > 1.6e9);
}

#[test]
fn a_4xx_is_not_retried() {
    let server = TestServer::start();
    server.set_status(400);
    let d = dir();
    let root = d.path();
    let log = root.join("app.log");
    std::fs::write(&log, "x\n").unwrap();
    let conf = format!(
        "[SERVICE]\n    Flush 0.1\n    scheduler.base 0.1\n\
         [INPUT]\n    Name tail\n    Path {}\n    Read_From_Head On\n\
         [OUTPUT]\n    Name http\n    Match *\n    Port {}\n    Retry_Limit False\n",
        p(&log),
        server.port
    );
    let running = Running::start(&conf, root);
    let m = running.metrics.clone();
    assert!(wait_until(Duration::from_secs(10), || m.dropped() == 1));
    std::thread::sleep(Duration::from_millis(300));
    let retries: u64 = m
        .outputs
        .lock()
        .iter()
        .map(|o| o.retries.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    running.stop();
    assert_eq!(retries, 0);
}
