//! The monitor's HTTP plumbing: a blocking tiny_http server whose requests
//! are read (with a body-size limit) into [`Request`], handed to a handler
//! on a thread of their own, and answered from a [`Reply`] (gzipped when the
//! client accepts it).
//!
//! Design note: one thread per request, capped. A query may run for its
//! whole timeout, and health checks and scrapes of `/metrics` must not queue
//! behind it; a fixed pool would make them wait. The cap bounds memory: past
//! it a request is answered 503 at once instead of spawning.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

/// A request as the handlers see it: the method, the path (not decoded),
/// the query string, headers and the body (already read, within the limit).
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET`, `POST`, ... as sent (upper case by convention).
    pub method: String,
    /// The path, without the query string, still percent-encoded.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body, or `None` when it was larger than the limit.
    pub body: Option<Vec<u8>>,
}

impl Request {
    /// The first value of header `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The form parameters, as Go's `Request.ParseForm` gives them: those
    /// of a form-encoded body (`POST`, `PUT`, `PATCH`) first, then those of
    /// the query string. `Err` when the body was over the size limit.
    pub fn form(&self) -> Result<Form, String> {
        let mut pairs = Vec::new();
        let is_form = self.header("content-type").is_some_and(|ct| {
            ct.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
        if matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") && is_form {
            match &self.body {
                Some(b) => pairs.extend(parse_urlencoded(&String::from_utf8_lossy(b))),
                None => return Err("request body too large".into()),
            }
        }
        pairs.extend(parse_urlencoded(&self.query));
        Ok(Form(pairs))
    }
}

/// Decoded form parameters, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// The first value of `name` (Go's `FormValue`: `None` and `""` alike
    /// mean "not given" to most handlers).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (for `match[]`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// `a=1&b=x+y&c=%2F`: pairs with `+` as space and `%XX` decoded; invalid
/// escapes are kept as written, invalid UTF-8 is replaced.
pub fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    s.split(['&', ';'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Decodes `%XX` escapes (and `+` as a space when `plus` is set).
pub fn percent_decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let hex = |i: usize| b.get(i).and_then(|&c| (c as char).to_digit(16));
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
            (b'+', _, _) if plus => out.push(b' '),
            (c, _, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a handler answers.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<&'static str>,
    /// Other headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A reply with a body of the given type.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            content_type: Some(content_type),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A `text/plain; charset=utf-8` reply.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::new(status, "text/plain; charset=utf-8", body)
    }

    /// A reply without a body (204, ...).
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Bodies larger than this are not read (the handler sees `body: None`).
    pub max_body_bytes: usize,
    /// Requests handled at once; more are answered 503 at once.
    pub max_connections: usize,
}

/// Handles one request.
pub type Handler = dyn Fn(&Request) -> Reply + Send + Sync + 'static;

/// A running server. Dropping it stops it too.
pub struct Server {
    addr: SocketAddr,
    inner: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// The address it listens on (with the port the system chose for
    /// port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting requests and waits for the accept loop to end.
    /// Requests being handled finish on their own threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.inner.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds `opts.listen` and serves every request with `handler`, each on its
/// own thread.
pub fn serve(opts: HttpOptions, handler: Arc<Handler>) -> std::io::Result<Server> {
    let inner = tiny_http::Server::http(opts.listen)
        .map_err(|e| std::io::Error::other(format!("listen on {}: {e}", opts.listen)))?;
    let addr = inner
        .server_addr()
        .to_ip()
        .ok_or_else(|| std::io::Error::other("listener has no IP address"))?;
    let inner = Arc::new(inner);
    let stopping = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (srv, stop) = (Arc::clone(&inner), Arc::clone(&stopping));
    let thread = std::thread::Builder::new()
        .name("monitor-http".into())
        .spawn(move || {
            loop {
                let rq = srv.recv();
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(rq) = rq else { continue };
                if in_flight.fetch_add(1, Ordering::SeqCst) >= opts.max_connections {
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    let _ = rq.respond(
                        tiny_http::Response::from_string("too many open requests\n")
                            .with_status_code(503),
                    );
                    continue;
                }
                // Counted out when the request thread ends, even by a panic;
                // if the thread cannot start, the closure is dropped with
                // the request (the client sees tiny_http's 500) and the slot.
                let slot = InFlight(Arc::clone(&in_flight));
                let (h, max_body) = (Arc::clone(&handler), opts.max_body_bytes);
                let _ = std::thread::Builder::new()
                    .name("monitor-request".into())
                    .spawn(move || {
                        let _slot = slot;
                        handle(rq, &*h, max_body);
                    });
            }
        })?;
    Ok(Server {
        addr,
        inner,
        stopping,
        thread: Some(thread),
    })
}

/// One request being handled; counted out when dropped.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Reads the request, runs the handler and answers.
fn handle(mut rq: tiny_http::Request, handler: &Handler, max_body: usize) {
    let url = rq.url().to_string();
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (url, String::new()),
    };
    let headers: Vec<(String, String)> = rq
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    let method = rq.method().as_str().to_ascii_uppercase();
    let body = if rq.body_length().is_some_and(|n| n > max_body) {
        None
    } else {
        let mut b = Vec::new();
        match rq.as_reader().take(max_body as u64 + 1).read_to_end(&mut b) {
            Ok(_) if b.len() <= max_body => Some(b),
            _ => None,
        }
    };
    let req = Request {
        method,
        path,
        query,
        headers,
        body,
    };
    let reply = handler(&req);
    let gzip = reply.body.len() >= 1024
        && req.header("accept-encoding").is_some_and(|a| {
            a.split(',')
                .any(|e| e.split(';').next().is_some_and(|e| e.trim() == "gzip"))
        });
    let mut body = reply.body;
    let mut headers = Vec::new();
    if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if enc.write_all(&body).is_ok() {
            if let Ok(z) = enc.finish() {
                body = z;
                headers.push(("Content-Encoding", "gzip".to_string()));
            }
        }
    }
    let mut resp = tiny_http::Response::from_data(body).with_status_code(reply.status);
    if let Some(ct) = reply.content_type {
        headers.push(("Content-Type", ct.to_string()));
    }
    headers.extend(reply.headers);
    for (n, v) in headers {
        if let Ok(h) = tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes()) {
            resp.add_header(h);
        }
    }
    let _ = rq.respond(resp);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_pairs() {
        assert_eq!(
            parse_urlencoded("query=sum(rate(x%5B5m%5D))+by+(job)&match[]=a&match%5B%5D=b&e=&f"),
            [
                ("query".into(), "sum(rate(x[5m])) by (job)".into()),
                ("match[]".into(), "a".into()),
                ("match[]".into(), "b".into()),
                ("e".into(), String::new()),
                ("f".into(), String::new()),
            ]
        );
        // Bad escapes stay as written; a trailing `%` too.
        assert_eq!(percent_decode("100%zz%", false), "100%zz%");
        assert_eq!(percent_decode("%e2%82%ac+", false), "€+");
        assert_eq!(percent_decode("%4", true), "%4");
    }

    #[test]
    fn form_takes_body_then_query() {
        let mut r = Request {
            method: "POST".into(),
            query: "a=2&b=3".into(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            )],
            body: Some(b"a=1".to_vec()),
            ..Request::default()
        };
        let f = r.form().unwrap();
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.all("a"), ["1", "2"]);
        assert_eq!(f.get("b"), Some("3"));
        r.body = None;
        assert!(r.form().is_err());
        // A body of another type is not a form.
        r.headers[0].1 = "application/json".into();
        assert_eq!(r.form().unwrap().get("a"), Some("2"));
        // Nor is a GET's.
        r.method = "GET".into();
        r.headers[0].1 = "application/x-www-form-urlencoded".into();
        assert_eq!(r.form().unwrap().get("a"), Some("2"));
    }
}
