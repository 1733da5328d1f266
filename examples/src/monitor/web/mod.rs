//! vigil-monitor's web pages: the expression browser (table and graph),
//! targets, service discovery, alerts, rules, status (with the store's
//! cardinality) and a cluster dashboard from the agent's metrics.
//!
//! Everything is rendered on the server: tables, and charts as SVG, so the
//! pages work without JavaScript, are keyboard accessible (links, forms,
//! `<details>`) and fit a narrow screen. One small script adds the query
//! history and a crosshair with values on the charts. The assets are
//! compiled into the binary; no third-party front-end code is used.

pub mod chart;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value as Json;
use vigil_rules::{Engine, EngineOptions, Value};

use super::api::Backend;
use super::api::params::{parse_duration, parse_time};
use super::http::{Reply, Request};
use super::rules::now_ms;
use chart::Line;

const CSS: &str = include_str!("app.css");
const JS: &str = include_str!("app.js");

/// How queries from the pages run.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// `--query.lookback-delta`.
    pub lookback_delta: Duration,
    /// `--query.max-samples`.
    pub max_samples: usize,
    /// `--query.timeout`.
    pub query_timeout: Duration,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            query_timeout: Duration::from_secs(120),
        }
    }
}

/// The pages' paths (for routing and the navigation bar).
pub const PAGES: &[(&str, &str)] = &[
    ("/graph", "Graph"),
    ("/alerts", "Alerts"),
    ("/rules", "Rules"),
    ("/targets", "Targets"),
    ("/service-discovery", "Service discovery"),
    ("/status", "Status"),
    ("/dashboard", "Dashboard"),
];

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query-string value.
pub fn url_enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// A content hash for `ETag`s of the compiled-in assets.
fn etag(body: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

/// Answers the web pages and their assets; `None` for any other path.
pub fn handle(req: &Request, backend: &dyn Backend, opts: &WebOptions) -> Option<Reply> {
    let path = req.path.as_str();
    if req.method != "GET" && req.method != "HEAD" {
        return match path {
            "/" | "/static/app.css" | "/static/app.js" => {
                Some(Reply::text(405, "method not allowed\n"))
            }
            p if PAGES.iter().any(|(q, _)| *q == p) => {
                Some(Reply::text(405, "method not allowed\n"))
            }
            _ => None,
        };
    }
    let form = req.form().unwrap_or_default();
    let get = |k: &str| form.get(k).unwrap_or("").to_string();
    let body = match path {
        "/" => {
            let mut r = Reply::empty(302);
            r.headers.push(("Location", "/graph".into()));
            return Some(r);
        }
        "/static/app.css" => return Some(asset(req, "text/css; charset=utf-8", CSS)),
        "/static/app.js" => return Some(asset(req, "text/javascript; charset=utf-8", JS)),
        "/graph" => graph_page(
            backend,
            opts,
            &get("expr"),
            &get("tab"),
            &get("range"),
            &get("end"),
            &get("step"),
        ),
        "/alerts" => alerts_page(backend),
        "/rules" => rules_page(backend),
        "/targets" => targets_page(backend, &get("state")),
        "/service-discovery" => sd_page(backend),
        "/status" => status_page(backend),
        "/dashboard" => dashboard_page(backend, opts, &get("range")),
        _ => return None,
    };
    let mut r = Reply::new(200, "text/html; charset=utf-8", body);
    // Pages show live state: never served from a cache.
    r.headers.push(("Cache-Control", "no-store".into()));
    r.headers.push(("X-Content-Type-Options", "nosniff".into()));
    Some(r)
}

fn asset(req: &Request, content_type: &'static str, body: &'static str) -> Reply {
    let tag = etag(body);
    let mut r = if req.header("if-none-match") == Some(tag.as_str()) {
        Reply::empty(304)
    } else {
        Reply::new(200, content_type, body)
    };
    // Assets change only with the binary; revalidation by ETag is cheap.
    r.headers
        .push(("Cache-Control", "public, max-age=3600".into()));
    r.headers.push(("ETag", tag));
    r.headers.push(("X-Content-Type-Options", "nosniff".into()));
    r
}

fn layout(title: &str, active: &str, content: &str, refresh: Option<u32>) -> String {
    let mut nav = String::new();
    for (href, name) in PAGES {
        let cur = if *href == active {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(nav, "<li><a href=\"{href}\"{cur}>{name}</a></li>");
    }
    let meta_refresh = refresh
        .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{meta_refresh}<title>{} · Vigil</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><a class=\"skip\" href=\"#main\">Skip to content</a><header><nav aria-label=\"main\"><span class=\"brand\">Vigil</span><ul>{nav}</ul></nav></header><main id=\"main\"><h1>{}</h1>{content}</main><script src=\"/static/app.js\" defer></script></body></html>",
        esc(title),
        esc(title)
    )
}

fn engine(opts: &WebOptions) -> Engine {
    Engine::with_options(EngineOptions {
        lookback_delta_ms: opts.lookback_delta.as_millis() as i64,
        max_samples: opts.max_samples as u64,
        timeout: Some(opts.query_timeout),
        ..EngineOptions::default()
    })
}

/// Time as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn datetime(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = super::api::params::civil(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// The step for a range: about 250 points, at least a second, rounded.
fn default_step(range_ms: i64) -> i64 {
    let raw = (range_ms / 250).max(1_000);
    [
        1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
        1_800_000, 3_600_000,
    ]
    .into_iter()
    .find(|s| *s >= raw)
    .unwrap_or(raw)
}

#[allow(clippy::too_many_arguments)]
fn graph_page(
    backend: &dyn Backend,
    opts: &WebOptions,
    expr: &str,
    tab: &str,
    range: &str,
    end: &str,
    step: &str,
) -> String {
    let tab = if tab == "graph" { "graph" } else { "table" };
    let range_text = if range.is_empty() { "1h" } else { range };
    let mut html = String::new();
    let mut error: Option<String> = None;
    let mut result = String::new();
    let range_ms = parse_duration(range_text).ok().filter(|r| *r > 0);
    let end_ms = if end.is_empty() {
        Ok(now_ms())
    } else {
        parse_time(end)
    };
    if range_ms.is_none() {
        error = Some(format!(
            "invalid range {range_text:?}: use a duration such as 30m or 1h"
        ));
    }
    if let Err(e) = &end_ms {
        error = Some(format!("invalid end time {end:?}: {e}"));
    }
    if !expr.trim().is_empty() && error.is_none() {
        let (range_ms, end_ms) = (range_ms.unwrap_or(3_600_000), end_ms.clone().unwrap_or(0));
        let engine = engine(opts);
        let started = std::time::Instant::now();
        if tab == "table" {
            match engine.instant_query(backend.db(), expr, end_ms) {
                Ok(r) => result = table(&r.value, started.elapsed(), &r.warnings),
                Err(e) => error = Some(e.to_string()),
            }
        } else {
            let step_ms = if step.is_empty() {
                Ok(default_step(range_ms))
            } else {
                parse_duration(step).and_then(|s| {
                    if s <= 0 {
                        Err("zero or negative step".into())
                    } else {
                        Ok(s)
                    }
                })
            };
            match step_ms {
                Err(e) => error = Some(format!("invalid step {step:?}: {e}")),
                Ok(step_ms) if range_ms / step_ms > 11_000 => {
                    error = Some(
                        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
                    )
                }
                Ok(step_ms) => {
                    let start_ms = end_ms - range_ms;
                    match engine.range_query(backend.db(), expr, start_ms, end_ms, step_ms) {
                        Ok(r) => result = graph(&r.value, start_ms, end_ms, step_ms, started.elapsed()),
                        Err(e) => error = Some(e.to_string()),
                    }
                }
            }
        }
    }
    let _ = write!(
        html,
        "<form class=\"query\" method=\"get\" action=\"/graph\"><label for=\"expr\">Expression</label><div class=\"row\"><textarea id=\"expr\" name=\"expr\" rows=\"2\" spellcheck=\"false\" autocapitalize=\"off\" placeholder=\"up\">{}</textarea><button type=\"submit\">Execute</button></div>",
        esc(expr)
    );
    if let Some(e) = &error {
        let _ = write!(html, "<p class=\"error\" role=\"alert\">{}</p>", esc(e));
    }
    let checked = |t: &str| if t == tab { " checked" } else { "" };
    let _ = write!(
        html,
        "<fieldset class=\"options\"><legend>View</legend><label><input type=\"radio\" name=\"tab\" value=\"table\"{}> Table</label><label><input type=\"radio\" name=\"tab\" value=\"graph\"{}> Graph</label><label>Range <input name=\"range\" value=\"{}\" size=\"6\"></label><label>End <input name=\"end\" value=\"{}\" size=\"20\" placeholder=\"now\"></label><label>Step <input name=\"step\" value=\"{}\" size=\"6\" placeholder=\"auto\"></label></fieldset></form><div id=\"history\" hidden><h2>History</h2><ul></ul></div>",
        checked("table"),
        checked("graph"),
        esc(range_text),
        esc(end),
        esc(step)
    );
    html.push_str(&result);
    layout("Graph", "/graph", &html, None)
}

fn table(v: &Value, took: Duration, warnings: &[String]) -> String {
    let mut out = String::new();
    for w in warnings {
        let _ = write!(out, "<p class=\"warning\">{}</p>", esc(w));
    }
    let mut rows: Vec<(String, String)> = Vec::new();
    match v {
        Value::Scalar { v, .. } => rows.push(("scalar".into(), format_value_plain(*v))),
        Value::String { s, .. } => rows.push(("string".into(), s.clone())),
        Value::Vector(samples) => {
            for s in samples {
                rows.push((s.labels.to_string(), format_value_plain(s.value)));
            }
        }
        Value::Matrix(series) => {
            for s in series {
                let vals: Vec<String> = s
                    .floats
                    .iter()
                    .map(|p| format!("{} @{}", format_value_plain(p.v), p.t as f64 / 1000.0))
                    .collect();
                rows.push((s.labels.to_string(), vals.join("\n")));
            }
        }
    }
    let _ = write!(
        out,
        "<p class=\"meta\">{} result{} in {:.1} ms</p><table class=\"result\"><thead><tr><th scope=\"col\">Element</th><th scope=\"col\">Value</th></tr></thead><tbody>",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        took.as_secs_f64() * 1000.0
    );
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"2\" class=\"empty\">Empty query result</td></tr>");
    }
    for (k, v) in rows {
        let _ = write!(
            out,
            "<tr><td class=\"labels\">{}</td><td class=\"value\">{}</td></tr>",
            esc(&k),
            esc(&v)
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// A sample value as Prometheus's API writes it (`strconv` 'f' shortest).
fn format_value_plain(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        let s = format!("{v}");
        if s == "-0" { "-0".into() } else { s }
    }
}

/// Most series a graph draws (more would be unreadable and heavy).
const MAX_GRAPH_SERIES: usize = 200;

fn graph(v: &Value, start: i64, end: i64, step: i64, took: Duration) -> String {
    let mut lines: Vec<Line> = match v {
        Value::Matrix(series) => series
            .iter()
            .map(|s| Line {
                label: s.labels.to_string(),
                points: s.floats.iter().map(|p| (p.t, p.v)).collect(),
            })
            .collect(),
        Value::Scalar { v, .. } => vec![Line {
            label: "scalar".into(),
            points: vec![(start, *v), (end, *v)],
        }],
        Value::Vector(samples) => samples
            .iter()
            .map(|s| Line {
                label: s.labels.to_string(),
                points: vec![(s.t, s.value)],
            })
            .collect(),
        Value::String { .. } => Vec::new(),
    };
    let total = lines.len();
    lines.truncate(MAX_GRAPH_SERIES);
    let mut out = format!(
        "<p class=\"meta\">{total} series, step {}s, in {:.1} ms{}</p>",
        step as f64 / 1000.0,
        took.as_secs_f64() * 1000.0,
        if total > MAX_GRAPH_SERIES {
            format!(" (the first {MAX_GRAPH_SERIES} drawn)")
        } else {
            String::new()
        }
    );
    out.push_str(&chart::render("graph0", &lines, start, end));
    out
}

fn str_of(v: &Json) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

fn labels_html(v: &Json) -> String {
    let mut out = String::from("<span class=\"labelset\">");
    if let Some(m) = v.as_object() {
        for (k, val) in m {
            let _ = write!(
                out,
                "<span class=\"label\">{}=&quot;{}&quot;</span> ",
                esc(k),
                esc(&str_of(val))
            );
        }
    }
    out.push_str("</span>");
    out
}

/// "3.2s ago" from an RFC 3339 time, or "never".
fn ago(rfc3339: &str) -> String {
    match parse_time(rfc3339) {
        Ok(t) if !rfc3339.starts_with("0001-") => {
            let d = (now_ms() - t).max(0) as f64 / 1000.0;
            if d < 120.0 {
                format!("{d:.1}s ago")
            } else if d < 7200.0 {
                format!("{:.0}m ago", d / 60.0)
            } else {
                format!("{:.1}h ago", d / 3600.0)
            }
        }
        _ => "never".into(),
    }
}

fn targets_page(backend: &dyn Backend, state: &str) -> String {
    let data = backend.targets(Some("active"));
    let only_down = state == "down";
    let mut pools: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for t in data["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        pools.entry(str_of(&t["scrapePool"])).or_default().push(t);
    }
    let mut html = String::from("<p class=\"filters\">");
    html.push_str(if only_down {
        "<a href=\"/targets\">All</a> · <strong>Unhealthy</strong>"
    } else {
        "<strong>All</strong> · <a href=\"/targets?state=down\">Unhealthy</a>"
    });
    html.push_str("</p>");
    if pools.is_empty() {
        html.push_str("<p class=\"empty\">No targets configured.</p>");
    }
    for (pool, targets) in &pools {
        let up = targets.iter().filter(|t| t["health"] == "up").count();
        let shown: Vec<&Json> = targets
            .iter()
            .filter(|t| !only_down || t["health"] != "up")
            .collect();
        if only_down && shown.is_empty() {
            continue;
        }
        let _ = write!(
            html,
            "<section class=\"pool\" id=\"pool-{0}\"><h2>{0} <span class=\"count {1}\">({up}/{2} up)</span></h2><div class=\"scroll\"><table><thead><tr><th scope=\"col\">Endpoint</th><th scope=\"col\">State</th><th scope=\"col\">Labels</th><th scope=\"col\">Last scrape</th><th scope=\"col\">Scrape duration</th><th scope=\"col\">Error</th></tr></thead><tbody>",
            esc(pool),
            if up == targets.len() { "ok" } else { "bad" },
            targets.len()
        );
        for t in shown {
            let health = str_of(&t["health"]);
            let _ = write!(
                html,
                "<tr><td><a href=\"{0}\">{0}</a></td><td><span class=\"state {1}\">{2}</span></td><td>{3}</td><td>{4}</td><td>{5:.3}s</td><td class=\"error-text\">{6}</td></tr>",
                esc(&str_of(&t["scrapeUrl"])),
                esc(&health),
                esc(&health.to_uppercase()),
                labels_html(&t["labels"]),
                esc(&ago(&str_of(&t["lastScrape"]))),
                t["lastScrapeDuration"].as_f64().unwrap_or(0.0),
                esc(&str_of(&t["lastError"]))
            );
        }
        html.push_str("</tbody></table></div></section>");
    }
    layout("Targets", "/targets", &html, None)
}

fn sd_page(backend: &dyn Backend) -> String {
    let data = backend.targets(None);
    let mut html = String::from(
        "<p>Labels each target had when discovered, and what relabelling made of them (or that it dropped the target).</p>",
    );
    let mut rows: BTreeMap<String, Vec<(Json, Option<Json>)>> = BTreeMap::new();
    for t in data["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        rows.entry(str_of(&t["scrapePool"]))
            .or_default()
            .push((t["discoveredLabels"].clone(), Some(t["labels"].clone())));
    }
    for t in data["droppedTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let pool = t["discoveredLabels"]["job"]
            .as_str()
            .map(str::to_string)
            .or_else(|| t["scrapePool"].as_str().map(str::to_string))
            .unwrap_or_default();
        rows.entry(pool)
            .or_default()
            .push((t["discoveredLabels"].clone(), None));
    }
    for (pool, list) in &rows {
        let active = list.iter().filter(|r| r.1.is_some()).count();
        let _ = write!(
            html,
            "<section class=\"pool\"><h2>{} <span class=\"count\">({active} active / {} discovered)</span></h2><div class=\"scroll\"><table><thead><tr><th scope=\"col\">Discovered labels</th><th scope=\"col\">Target labels</th></tr></thead><tbody>",
            esc(pool),
            list.len()
        );
        for (disc, target) in list {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td></tr>",
                labels_html(disc),
                match target {
                    Some(l) => labels_html(l),
                    None => "<span class=\"state down\">Dropped</span>".into(),
                }
            );
        }
        html.push_str("</tbody></table></div></section>");
    }
    if rows.is_empty() {
        html.push_str("<p class=\"empty\">Nothing discovered.</p>");
    }
    layout("Service discovery", "/service-discovery", &html, None)
}

fn alerts_page(backend: &dyn Backend) -> String {
    let data = backend.rules(Some("alert"));
    let mut html = String::new();
    let mut counts = [0usize; 3];
    let mut body = String::new();
    for g in data["groups"].as_array().cloned().unwrap_or_default() {
        let _ = write!(
            body,
            "<h2>{} <small>{}</small></h2>",
            esc(&str_of(&g["name"])),
            esc(&str_of(&g["file"]))
        );
        for r in g["rules"].as_array().cloned().unwrap_or_default() {
            let state = str_of(&r["state"]);
            let idx = match state.as_str() {
                "firing" => 0,
                "pending" => 1,
                _ => 2,
            };
            counts[idx] += 1;
            let alerts = r["alerts"].as_array().cloned().unwrap_or_default();
            let _ = write!(
                body,
                "<details class=\"rule {state}\"{}><summary><span class=\"state {state}\">{}</span> {} <span class=\"count\">({} active)</span></summary><pre class=\"expr\">{}</pre>",
                if idx < 2 { " open" } else { "" },
                esc(&state.to_uppercase()),
                esc(&str_of(&r["name"])),
                alerts.len(),
                esc(&str_of(&r["query"]))
            );
            if r["duration"].as_f64().unwrap_or(0.0) > 0.0 {
                let _ = write!(body, "<p>for: {}s</p>", r["duration"]);
            }
            let _ = write!(body, "<p>labels: {}</p>", labels_html(&r["labels"]));
            if !alerts.is_empty() {
                body.push_str("<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Labels</th><th scope=\"col\">State</th><th scope=\"col\">Active since</th><th scope=\"col\">Value</th><th scope=\"col\">Annotations</th></tr></thead><tbody>");
                for a in alerts {
                    let st = str_of(&a["state"]);
                    let mut ann = String::new();
                    if let Some(m) = a["annotations"].as_object() {
                        for (k, v) in m {
                            let _ =
                                write!(ann, "<div><b>{}</b>: {}</div>", esc(k), esc(&str_of(v)));
                        }
                    }
                    let _ = write!(
                        body,
                        "<tr><td>{}</td><td><span class=\"state {st}\">{}</span></td><td>{}</td><td>{}</td><td>{ann}</td></tr>",
                        labels_html(&a["labels"]),
                        esc(&st.to_uppercase()),
                        esc(&str_of(&a["activeAt"])),
                        esc(&str_of(&a["value"]))
                    );
                }
                body.push_str("</tbody></table></div>");
            }
            body.push_str("</details>");
        }
    }
    let _ = write!(
        html,
        "<p class=\"summary\"><span class=\"state firing\">Firing {}</span> <span class=\"state pending\">Pending {}</span> <span class=\"state inactive\">Inactive {}</span></p>",
        counts[0], counts[1], counts[2]
    );
    if counts.iter().sum::<usize>() == 0 {
        html.push_str("<p class=\"empty\">No alerting rules loaded.</p>");
    }
    html.push_str(&body);
    layout("Alerts", "/alerts", &html, None)
}

fn rules_page(backend: &dyn Backend) -> String {
    let data = backend.rules(None);
    let mut html = String::new();
    let groups = data["groups"].as_array().cloned().unwrap_or_default();
    if groups.is_empty() {
        html.push_str("<p class=\"empty\">No rule groups loaded.</p>");
    }
    for g in groups {
        let _ = write!(
            html,
            "<section><h2>{} <small>{}</small></h2><p class=\"meta\">interval {}s · last evaluation {} · took {:.3} ms</p><div class=\"scroll\"><table><thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">Health</th><th scope=\"col\">Last evaluation</th><th scope=\"col\">Evaluation time</th><th scope=\"col\">Error</th></tr></thead><tbody>",
            esc(&str_of(&g["name"])),
            esc(&str_of(&g["file"])),
            g["interval"],
            esc(&ago(&str_of(&g["lastEvaluation"]))),
            g["evaluationTime"].as_f64().unwrap_or(0.0) * 1000.0
        );
        for r in g["rules"].as_array().cloned().unwrap_or_default() {
            let kind = if r["type"] == "alerting" {
                "alert"
            } else {
                "record"
            };
            let health = str_of(&r["health"]);
            let _ = write!(
                html,
                "<tr><td><pre class=\"expr\">{kind}: {}\nexpr: {}</pre></td><td><span class=\"state {}\">{}</span></td><td>{}</td><td>{:.3} ms</td><td class=\"error-text\">{}</td></tr>",
                esc(&str_of(&r["name"])),
                esc(&str_of(&r["query"])),
                if health == "ok" {
                    "up"
                } else if health == "err" {
                    "down"
                } else {
                    "unknown"
                },
                esc(&health.to_uppercase()),
                esc(&ago(&str_of(&r["lastEvaluation"]))),
                r["evaluationTime"].as_f64().unwrap_or(0.0) * 1000.0,
                esc(r["lastError"].as_str().unwrap_or(""))
            );
        }
        html.push_str("</tbody></table></div></section>");
    }
    layout("Rules", "/rules", &html, None)
}

fn kv_table(caption: &str, rows: &[(String, String)]) -> String {
    let mut out = format!(
        "<table class=\"kv\"><caption>{}</caption><tbody>",
        esc(caption)
    );
    for (k, v) in rows {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            esc(k),
            esc(v)
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn top_table(caption: &str, col: &str, rows: &[(String, u64)]) -> String {
    let mut out = format!(
        "<table class=\"top\"><caption>{}</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">Count</th></tr></thead><tbody>",
        esc(caption),
        esc(col)
    );
    for (k, v) in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"value\">{v}</td></tr>",
            esc(k)
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn status_page(backend: &dyn Backend) -> String {
    let db = backend.db();
    let stats = db.head().stats(10);
    let mut html = String::new();
    html.push_str(&kv_table(
        "Build information",
        &[
            ("Version".into(), env!("CARGO_PKG_VERSION").into()),
            (
                "Server".into(),
                "vigil-monitor (Prometheus-compatible API)".into(),
            ),
            ("Time (UTC)".into(), datetime(now_ms())),
        ],
    ));
    let (lo, hi) = stats
        .time_range
        .map(|(a, b)| (datetime(a), datetime(b)))
        .unwrap_or_else(|| ("—".into(), "—".into()));
    html.push_str("<h2 id=\"tsdb\">TSDB status</h2>");
    html.push_str(&kv_table(
        "Head",
        &[
            ("Series".into(), stats.index.series.to_string()),
            ("Chunks".into(), stats.chunks.to_string()),
            ("Label pairs".into(), stats.index.label_pairs.to_string()),
            ("Min time".into(), lo),
            ("Max time".into(), hi),
            ("Blocks on disk".into(), db.block_ranges().len().to_string()),
        ],
    ));
    html.push_str("<div class=\"tops\">");
    html.push_str(&top_table(
        "Top 10 metric names by series",
        "Name",
        &stats.index.series_by_metric_name,
    ));
    html.push_str(&top_table(
        "Top 10 label pairs by series",
        "Pair",
        &stats.index.series_by_label_pair,
    ));
    html.push_str(&top_table(
        "Top 10 label names by values",
        "Label",
        &stats.index.values_by_label_name,
    ));
    html.push_str(&top_table(
        "Top 10 label names by bytes of values",
        "Label",
        &stats.index.value_bytes_by_label_name,
    ));
    html.push_str("</div><h2>Flags</h2>");
    html.push_str(&kv_table("Command-line flags", &backend.flags()));
    let _ = write!(
        html,
        "<h2>Configuration</h2><pre class=\"config\">{}</pre>",
        esc(&backend.config_yaml())
    );
    layout("Status", "/status", &html, None)
}

/// The dashboard's charts: title, PromQL, unit.
const DASHBOARD: &[(&str, &str, &str)] = &[
    (
        "Node CPU busy",
        "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[1m]))",
        "ratio",
    ),
    (
        "Node memory used",
        "node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes",
        "bytes",
    ),
    (
        "Disk I/O",
        "sum by (instance) (rate(node_disk_read_bytes_total[1m]) + rate(node_disk_written_bytes_total[1m]))",
        "bytes/s",
    ),
    (
        "Network traffic",
        "sum by (instance) (rate(node_network_receive_bytes_total{device!=\"lo\"}[1m]) + rate(node_network_transmit_bytes_total{device!=\"lo\"}[1m]))",
        "bytes/s",
    ),
    (
        "Containers by CPU (top 10)",
        "topk(10, sum by (namespace, pod, container, id) (rate(container_cpu_usage_seconds_total[1m])))",
        "cores",
    ),
    (
        "Containers by memory (top 10)",
        "topk(10, sum by (namespace, pod, container, id) (container_memory_working_set_bytes))",
        "bytes",
    ),
];

fn dashboard_page(backend: &dyn Backend, opts: &WebOptions, range: &str) -> String {
    let range_text = if range.is_empty() { "1h" } else { range };
    let range_ms = parse_duration(range_text)
        .ok()
        .filter(|r| *r > 0)
        .unwrap_or(3_600_000);
    let end = now_ms();
    let start = end - range_ms;
    let step = default_step(range_ms);
    let engine = engine(opts);
    let mut html = String::new();
    // Summary tiles.
    let targets = backend.targets(Some("active"));
    let active = targets["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let up = active.iter().filter(|t| t["health"] == "up").count();
    let alerts = backend.alerts();
    let firing = alerts["alerts"]
        .as_array()
        .map(|a| a.iter().filter(|x| x["state"] == "firing").count())
        .unwrap_or(0);
    let series = backend.db().head().num_series();
    let _ = write!(
        html,
        "<ul class=\"tiles\"><li><a href=\"/targets\"><b>{up}/{}</b> targets up</a></li><li><a href=\"/alerts\"><b>{firing}</b> alerts firing</a></li><li><a href=\"/status#tsdb\"><b>{series}</b> series</a></li></ul><form class=\"options\" method=\"get\" action=\"/dashboard\"><label>Range <input name=\"range\" value=\"{}\" size=\"6\"></label> <button type=\"submit\">Show</button> <span class=\"meta\">refreshes every 30 s</span></form><div class=\"panels\">",
        active.len(),
        esc(range_text)
    );
    for (i, (title, q, unit)) in DASHBOARD.iter().enumerate() {
        let _ = write!(
            html,
            "<section class=\"panel\"><h2>{} <small>{}</small></h2>",
            esc(title),
            esc(unit)
        );
        match engine.range_query(backend.db(), q, start, end, step) {
            Ok(r) => {
                let lines: Vec<Line> = match r.value {
                    Value::Matrix(series) => series
                        .into_iter()
                        .map(|s| Line {
                            label: s.labels.to_string(),
                            points: s.floats.iter().map(|p| (p.t, p.v)).collect(),
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                if lines.is_empty() {
                    html.push_str("<p class=\"empty\">No data (is vigil-agent being scraped?)</p>");
                } else {
                    html.push_str(&chart::render(&format!("panel{i}"), &lines, start, end));
                }
            }
            Err(e) => {
                let _ = write!(html, "<p class=\"error\">{}</p>", esc(&e.to_string()));
            }
        }
        let _ = write!(
            html,
            "<p><a href=\"/graph?tab=graph&amp;range={}&amp;expr={}\">Open in the expression browser</a></p></section>",
            url_enc(range_text),
            url_enc(q)
        );
    }
    html.push_str("</div>");
    layout("Cluster dashboard", "/dashboard", &html, Some(30))
}
