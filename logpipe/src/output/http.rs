//! The network outputs, over a small blocking HTTP/1.1 client (`ureq`):
//! `http`, `es` (Elasticsearch `_bulk`) and `loki` (the push API).
//!
//! A connection failure, a timeout, 408, 429 and 5xx are [`Flush::Retry`];
//! any other non-2xx status is [`Flush::Error`] (sending the same bytes
//! again cannot make a 400 pass). Plain HTTP only: TLS is refused at
//! configuration time.

use super::{DateFormat, Flush, Output, format_time, iso8601, write_json_record};
use crate::config::Section;
use crate::error::Result;
use crate::record::{Record, Value};
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

/// Keys of the `http` output.
pub const HTTP_KEYS: &[&str] = &[
    "host",
    "port",
    "uri",
    "format",
    "header",
    "header_tag",
    "compress",
    "json_date_key",
    "json_date_format",
    "http_user",
    "http_passwd",
    "log_response_payload",
    "allow_duplicated_headers",
];

/// Keys of the `es` output.
pub const ES_KEYS: &[&str] = &[
    "host",
    "port",
    "path",
    "index",
    "type",
    "logstash_format",
    "logstash_prefix",
    "logstash_dateformat",
    "time_key",
    "time_key_format",
    "time_key_nanos",
    "include_tag_key",
    "tag_key",
    "id_key",
    "generate_id",
    "write_operation",
    "suppress_type_name",
    "http_user",
    "http_passwd",
    "compress",
    "buffer_size",
    "pipeline",
    "replace_dots",
    "trace_output",
    "trace_error",
];

/// Keys of the `loki` output.
pub const LOKI_KEYS: &[&str] = &[
    "host",
    "port",
    "uri",
    "tenant_id",
    "labels",
    "label_keys",
    "remove_keys",
    "drop_single_key",
    "line_format",
    "http_user",
    "http_passwd",
    "bearer_token",
    "compress",
    "auto_kubernetes_labels",
];

/// An HTTP endpoint with the settings every network output shares.
#[derive(Debug)]
struct Client {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
    gzip: bool,
}

impl Client {
    fn from_section(s: &Section, default_port: u16) -> Result<Self> {
        let host = s.get("host").unwrap_or("127.0.0.1");
        let port = match s.get_usize("port")? {
            Some(p) if (1..=65535).contains(&p) => p as u16,
            Some(p) => return Err(s.error_at("port", format!("port {p} is out of range"))),
            None => default_port,
        };
        let auth = s.get("http_user").map(|u| {
            let pass = s.get("http_passwd").unwrap_or("");
            format!("Basic {}", base64(format!("{u}:{pass}").as_bytes()))
        });
        let gzip = match s.get("compress").map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("none") | Some("off") => false,
            Some("gzip") => true,
            Some(other) => {
                return Err(s.error_at("compress", format!("unknown compression '{other}' (gzip)")));
            }
        };
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(10)))
                .timeout_global(Some(Duration::from_secs(60)))
                .build(),
        );
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        Ok(Client {
            agent,
            base: format!("http://{host}:{port}"),
            auth,
            gzip,
        })
    }

    /// POSTs `body` to `uri`: the status and response body, or why it could
    /// not be sent.
    fn post(
        &self,
        uri: &str,
        content_type: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> std::result::Result<(u16, String), String> {
        let url = format!("{}{}", self.base, uri);
        let mut req = self.agent.post(&url).header("Content-Type", content_type);
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let sent = if self.gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let gz = enc
                .write_all(body)
                .and_then(|()| enc.finish())
                .map_err(|e| format!("gzip: {e}"))?;
            req.header("Content-Encoding", "gzip").send(&gz[..])
        } else {
            req.send(body)
        };
        let mut resp = sent.map_err(|e| format!("POST {url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        Ok((status, text))
    }
}

/// The result for a status code (see the module notes).
fn classify(what: &str, status: u16, body: &str) -> Flush {
    let short: String = body.chars().take(300).collect();
    match status {
        200..=299 => Flush::Ok,
        408 | 429 | 500..=599 => Flush::Retry(format!("{what}: HTTP {status}: {short}")),
        _ => Flush::Error(format!("{what}: HTTP {status}: {short}")),
    }
}

/// Standard base64 with padding (for Basic authentication).
fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// How the `http` output encodes a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HttpFormat {
    Json,
    JsonLines,
    JsonStream,
}

/// The `http` output.
#[derive(Debug)]
pub struct HttpOut {
    client: Client,
    uri: String,
    format: HttpFormat,
    headers: Vec<(String, String)>,
    header_tag: Option<String>,
    date_key: Option<String>,
    date_format: DateFormat,
    body: String,
}

impl HttpOut {
    /// From an `[OUTPUT] Name http` section. `Format` defaults to `json`
    /// (fluent-bit's default, msgpack, is not supported).
    pub fn from_section(s: &Section) -> Result<Self> {
        let format = match s.get("format").map(str::to_ascii_lowercase).as_deref() {
            None | Some("json") => HttpFormat::Json,
            Some("json_lines") => HttpFormat::JsonLines,
            Some("json_stream") => HttpFormat::JsonStream,
            Some(other) => {
                return Err(s.error_at(
                    "format",
                    format!("unsupported http format '{other}' (json, json_lines, json_stream)"),
                ));
            }
        };
        let mut headers = Vec::new();
        for e in s.get_all("header") {
            let v = e.value.trim();
            let (k, val) = v.split_once(char::is_whitespace).ok_or_else(|| {
                s.error(Some(e), format!("Header needs a name and a value: {v:?}"))
            })?;
            headers.push((k.to_owned(), val.trim().to_owned()));
        }
        let date_key = match s.get("json_date_key") {
            Some(k) if k.eq_ignore_ascii_case("false") || k.eq_ignore_ascii_case("off") => None,
            Some(k) => Some(k.to_owned()),
            None => Some("date".to_owned()),
        };
        Ok(HttpOut {
            client: Client::from_section(s, 80)?,
            uri: s.get("uri").unwrap_or("/").to_owned(),
            format,
            headers,
            header_tag: s.get("header_tag").map(str::to_owned),
            date_key,
            date_format: DateFormat::from_section(s)?,
            body: String::new(),
        })
    }
}

impl Output for HttpOut {
    fn flush(&mut self, records: &[Record]) -> Flush {
        // A request carries one tag when Header_Tag is set.
        if let Some(h) = self.header_tag.clone() {
            let mut start = 0;
            while start < records.len() {
                let tag = records[start].tag.clone();
                let end = start
                    + records[start..]
                        .iter()
                        .position(|r| r.tag != tag)
                        .unwrap_or(records.len() - start);
                let mut headers = self.headers.clone();
                headers.push((h.clone(), tag.to_string()));
                let res = self.send(&records[start..end], &headers);
                if res != Flush::Ok {
                    return res;
                }
                start = end;
            }
            return Flush::Ok;
        }
        let headers = std::mem::take(&mut self.headers);
        let res = self.send(records, &headers);
        self.headers = headers;
        res
    }
}

impl HttpOut {
    fn send(&mut self, records: &[Record], headers: &[(String, String)]) -> Flush {
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        let (sep, open, close, ctype) = match self.format {
            HttpFormat::Json => (",", "[", "]", "application/json"),
            HttpFormat::JsonLines => ("\n", "", "\n", "application/x-ndjson"),
            HttpFormat::JsonStream => ("", "", "", "application/json"),
        };
        body.push_str(open);
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                body.push_str(sep);
            }
            write_json_record(&mut body, r, self.date_key.as_deref(), self.date_format);
        }
        body.push_str(close);
        let res = match self.client.post(&self.uri, ctype, headers, body.as_bytes()) {
            Ok((status, text)) => classify("http", status, &text),
            Err(e) => Flush::Retry(e),
        };
        self.body = body;
        res
    }
}

/// The `es` output: Elasticsearch's `_bulk` API.
#[derive(Debug)]
pub struct Es {
    client: Client,
    path: String,
    index: String,
    type_name: Option<String>,
    logstash: Option<(String, String)>,
    time_key: String,
    time_key_nanos: bool,
    tag_key: Option<String>,
    id_key: Option<String>,
    generate_id: bool,
    operation: String,
    pipeline: Option<String>,
    body: String,
}

impl Es {
    /// From an `[OUTPUT] Name es` section, with fluent-bit's defaults
    /// (`Index fluent-bit`, `Type _doc`, `Write_Operation create`).
    pub fn from_section(s: &Section) -> Result<Self> {
        let logstash = if s.get_bool_or("logstash_format", false)? {
            Some((
                s.get("logstash_prefix").unwrap_or("logstash").to_owned(),
                s.get("logstash_dateformat")
                    .unwrap_or("%Y.%m.%d")
                    .to_owned(),
            ))
        } else {
            None
        };
        let operation = s
            .get("write_operation")
            .unwrap_or("create")
            .to_ascii_lowercase();
        if !["create", "index", "update", "upsert"].contains(&operation.as_str()) {
            return Err(s.error_at(
                "write_operation",
                format!("unknown Write_Operation '{operation}' (create, index, update, upsert)"),
            ));
        }
        if matches!(operation.as_str(), "update" | "upsert")
            && s.get("id_key").is_none()
            && !s.get_bool_or("generate_id", false)?
        {
            return Err(s.error_at(
                "write_operation",
                "Write_Operation update/upsert needs Id_Key or Generate_ID",
            ));
        }
        let type_name = if s.get_bool_or("suppress_type_name", false)? {
            None
        } else {
            Some(s.get("type").unwrap_or("_doc").to_owned())
        };
        Ok(Es {
            client: Client::from_section(s, 9200)?,
            path: s.get("path").unwrap_or("").trim_end_matches('/').to_owned(),
            index: s.get("index").unwrap_or("fluent-bit").to_owned(),
            type_name,
            logstash,
            time_key: s.get("time_key").unwrap_or("@timestamp").to_owned(),
            time_key_nanos: s.get_bool_or("time_key_nanos", false)?,
            tag_key: if s.get_bool_or("include_tag_key", false)? {
                Some(s.get("tag_key").unwrap_or("_flb-key").to_owned())
            } else {
                None
            },
            id_key: s.get("id_key").map(str::to_owned),
            generate_id: s.get_bool_or("generate_id", false)?,
            operation,
            pipeline: s.get("pipeline").map(str::to_owned),
            body: String::new(),
        })
    }

    /// The `_bulk` body for `records`.
    fn encode(&self, records: &[Record], body: &mut String) {
        let mut doc = String::new();
        for r in records {
            doc.clear();
            doc.push('{');
            super::json_str(&mut doc, &self.time_key);
            doc.push(':');
            super::json_str(&mut doc, &iso8601(r.time_ns, self.time_key_nanos));
            if let Some(k) = &self.tag_key {
                doc.push(',');
                super::json_str(&mut doc, k);
                doc.push(':');
                super::json_str(&mut doc, &r.tag);
            }
            for (k, v) in r.fields.iter() {
                doc.push(',');
                super::json_str(&mut doc, k);
                doc.push(':');
                super::json_value(&mut doc, v);
            }
            doc.push('}');
            let index = match &self.logstash {
                Some((prefix, fmt)) => format!("{prefix}-{}", format_time(fmt, r.time_ns)),
                None => self.index.clone(),
            };
            let id = match (&self.id_key, self.generate_id) {
                (Some(k), _) => r.fields.get(k).map(|v| v.to_string()),
                (None, true) => {
                    // Same record, same id: a retried bulk cannot duplicate.
                    let h = crate::offsets::fingerprint(doc.as_bytes());
                    let h2 = crate::offsets::fingerprint(&h.to_le_bytes());
                    Some(format!("{h:016x}{h2:016x}"))
                }
                (None, false) => None,
            };
            let op = if self.operation == "upsert" {
                "update"
            } else {
                &self.operation
            };
            body.push_str("{\"");
            body.push_str(op);
            body.push_str("\":{\"_index\":");
            super::json_str(body, &index);
            if let Some(t) = &self.type_name {
                body.push_str(",\"_type\":");
                super::json_str(body, t);
            }
            if let Some(id) = &id {
                body.push_str(",\"_id\":");
                super::json_str(body, id);
            }
            body.push_str("}}\n");
            match self.operation.as_str() {
                "update" => {
                    let _ = write!(body, "{{\"doc\":{doc}}}");
                }
                "upsert" => {
                    let _ = write!(body, "{{\"doc\":{doc},\"doc_as_upsert\":true}}");
                }
                _ => body.push_str(&doc),
            }
            body.push('\n');
        }
    }
}

/// Reads a `_bulk` response: with `errors: true`, any item failing with
/// 429 or 5xx makes the batch retry; items failing otherwise are rejected
/// for good (a 409 on `create` means the document is already there, which
/// is success for an at-least-once pipeline).
fn bulk_result(text: &str) -> Flush {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return Flush::Retry(format!(
            "es: unreadable bulk response: {}",
            text.chars().take(200).collect::<String>()
        ));
    };
    if v.get("errors").and_then(|e| e.as_bool()) != Some(true) {
        return Flush::Ok;
    }
    let mut retry = None;
    let mut rejected = None;
    for item in v
        .get("items")
        .and_then(|i| i.as_array())
        .into_iter()
        .flatten()
    {
        let Some(res) = item.as_object().and_then(|o| o.values().next()) else {
            continue;
        };
        let status = res.get("status").and_then(|s| s.as_u64()).unwrap_or(0);
        let why = || res.get("error").map(|e| e.to_string()).unwrap_or_default();
        match status {
            200..=299 | 409 => {}
            429 | 500..=599 => {
                retry.get_or_insert_with(|| format!("es: item status {status}: {}", why()));
            }
            _ => {
                rejected.get_or_insert_with(|| format!("es: item status {status}: {}", why()));
            }
        }
    }
    match (retry, rejected) {
        (Some(r), _) => Flush::Retry(r),
        (None, Some(e)) => Flush::Error(e),
        (None, None) => Flush::Ok,
    }
}

impl Output for Es {
    fn flush(&mut self, records: &[Record]) -> Flush {
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        self.encode(records, &mut body);
        let mut uri = format!("{}/_bulk", self.path);
        if let Some(p) = &self.pipeline {
            uri.push_str("?pipeline=");
            uri.push_str(p);
        }
        let res = match self
            .client
            .post(&uri, "application/x-ndjson", &[], body.as_bytes())
        {
            Ok((200..=299, text)) => bulk_result(&text),
            Ok((status, text)) => classify("es", status, &text),
            Err(e) => Flush::Retry(e),
        };
        self.body = body;
        res
    }
}

/// One label of the loki output.
#[derive(Debug, Clone, PartialEq)]
enum Label {
    Fixed(String, String),
    /// A label from a record key path (`$a['b']`).
    Key(String, Vec<String>),
}

/// Parses `$key` or `$a['b']['c']` into the key path.
fn accessor(s: &str) -> Option<Vec<String>> {
    let rest = s.strip_prefix('$')?;
    let (head, mut tail) = match rest.find('[') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if head.is_empty() {
        return None;
    }
    let mut path = vec![head.to_owned()];
    while !tail.is_empty() {
        let inner = tail.strip_prefix('[')?;
        let close = inner.find(']')?;
        let key = inner[..close].trim_matches(|c| c == '\'' || c == '"');
        path.push(key.to_owned());
        tail = &inner[close + 1..];
    }
    Some(path)
}

fn lookup<'a>(r: &'a Record, path: &[String]) -> Option<&'a Value> {
    let mut v = r.fields.get(path.first()?)?;
    for k in &path[1..] {
        match v {
            Value::Map(m) => v = m.get(k)?,
            _ => return None,
        }
    }
    Some(v)
}

/// The `loki` output: Loki's `/loki/api/v1/push` JSON API.
#[derive(Debug)]
pub struct Loki {
    client: Client,
    uri: String,
    labels: Vec<Label>,
    remove: Vec<String>,
    drop_single_key: bool,
    key_value: bool,
    headers: Vec<(String, String)>,
}

impl Loki {
    /// From an `[OUTPUT] Name loki` section (`Labels job=fluent-bit` by
    /// default, as fluent-bit).
    pub fn from_section(s: &Section) -> Result<Self> {
        let mut labels = Vec::new();
        let spec = s.get("labels").unwrap_or("job=fluent-bit");
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let label = match item.split_once('=') {
                Some((name, value)) => {
                    let (name, value) = (name.trim(), value.trim());
                    match accessor(value) {
                        Some(path) => Label::Key(name.to_owned(), path),
                        None => Label::Fixed(name.to_owned(), value.to_owned()),
                    }
                }
                None => {
                    let path = accessor(item).ok_or_else(|| {
                        s.error_at(
                            "labels",
                            format!("label {item:?} is neither name=value nor $key"),
                        )
                    })?;
                    Label::Key(label_name(&path), path)
                }
            };
            labels.push(label);
        }
        let mut remove = Vec::new();
        for k in s.get("label_keys").into_iter().flat_map(|v| v.split(',')) {
            let k = k.trim();
            if k.is_empty() {
                continue;
            }
            let path = accessor(k).ok_or_else(|| {
                s.error_at("label_keys", format!("label key {k:?} must start with $"))
            })?;
            labels.push(Label::Key(label_name(&path), path));
        }
        for k in s.get("remove_keys").into_iter().flat_map(|v| v.split(',')) {
            let k = k.trim();
            if !k.is_empty() {
                remove.push(k.trim_start_matches('$').to_owned());
            }
        }
        let key_value = match s.get("line_format").map(str::to_ascii_lowercase).as_deref() {
            None | Some("json") => false,
            Some("key_value") => true,
            Some(other) => {
                return Err(s.error_at(
                    "line_format",
                    format!("unknown line_format '{other}' (json, key_value)"),
                ));
            }
        };
        if s.get_bool_or("auto_kubernetes_labels", false)? {
            return Err(s.error_at(
                "auto_kubernetes_labels",
                "auto_kubernetes_labels is not supported",
            ));
        }
        let mut headers = Vec::new();
        if let Some(t) = s.get("tenant_id") {
            headers.push(("X-Scope-OrgID".to_owned(), t.to_owned()));
        }
        if let Some(t) = s.get("bearer_token") {
            headers.push(("Authorization".to_owned(), format!("Bearer {t}")));
        }
        Ok(Loki {
            client: Client::from_section(s, 3100)?,
            uri: s.get("uri").unwrap_or("/loki/api/v1/push").to_owned(),
            labels,
            remove,
            drop_single_key: s.get_bool_or("drop_single_key", false)?,
            key_value,
            headers,
        })
    }

    /// The push body for `records`: one stream per distinct label set, in
    /// order of first appearance.
    fn encode(&self, records: &[Record]) -> String {
        let mut streams: Vec<(String, String)> = Vec::new();
        for r in records {
            let mut labels = String::from("{");
            let mut first = true;
            let mut used_keys: Vec<&str> = Vec::new();
            for l in &self.labels {
                let (name, value) = match l {
                    Label::Fixed(n, v) => (n.as_str(), v.clone()),
                    Label::Key(n, path) => match lookup(r, path) {
                        Some(v) => {
                            if path.len() == 1 {
                                used_keys.push(&path[0]);
                            }
                            (n.as_str(), v.to_string())
                        }
                        None => continue,
                    },
                };
                if !first {
                    labels.push(',');
                }
                first = false;
                super::json_str(&mut labels, name);
                labels.push(':');
                super::json_str(&mut labels, &value);
            }
            labels.push('}');
            let kept: Vec<(&str, &Value)> = r
                .fields
                .iter()
                .filter(|(k, _)| !self.remove.iter().any(|x| x == k))
                .collect();
            let line = if self.drop_single_key && kept.len() == 1 {
                kept[0].1.to_string()
            } else if self.key_value {
                let mut s = String::new();
                for (i, (k, v)) in kept.iter().enumerate() {
                    if i > 0 {
                        s.push(' ');
                    }
                    let _ = write!(s, "{k}={v}");
                }
                s
            } else {
                let mut s = String::from("{");
                for (i, (k, v)) in kept.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    super::json_str(&mut s, k);
                    s.push(':');
                    super::json_value(&mut s, v);
                }
                s.push('}');
                s
            };
            let _ = used_keys;
            let mut value = String::from("[\"");
            let _ = write!(value, "{}", r.time_ns.max(0));
            value.push_str("\",");
            super::json_str(&mut value, &line);
            value.push(']');
            match streams.iter_mut().find(|(l, _)| *l == labels) {
                Some((_, vals)) => {
                    vals.push(',');
                    vals.push_str(&value);
                }
                None => streams.push((labels, value)),
            }
        }
        let mut body = String::from("{\"streams\":[");
        for (i, (labels, values)) in streams.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            let _ = write!(body, "{{\"stream\":{labels},\"values\":[{values}]}}");
        }
        body.push_str("]}");
        body
    }
}

fn label_name(path: &[String]) -> String {
    path.join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Output for Loki {
    fn flush(&mut self, records: &[Record]) -> Flush {
        let body = self.encode(records);
        match self.client.post(
            &self.uri,
            "application/json",
            &self.headers,
            body.as_bytes(),
        ) {
            Ok((status, text)) => classify("loki", status, &text),
            Err(e) => Flush::Retry(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Section, SectionKind};

    fn out(name: &str) -> Section {
        Section::new(SectionKind::Output, "t.conf", 1).with("Name", name)
    }

    fn rec() -> Record {
        let mut r = Record::line("kube.a", 1_709_212_455_123_456_789, "hello");
        r.fields.push("stream", "stdout");
        let mut k = crate::record::Fields::new();
        k.push("pod", "web-1");
        r.fields.push("kubernetes", Value::Map(k));
        r
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn es_bulk_body_with_logstash_index_and_id_key() {
        let s = out("es")
            .with("Logstash_Format", "On")
            .with("Logstash_Prefix", "app")
            .with("Id_Key", "stream")
            .with("Suppress_Type_Name", "On");
        let es = Es::from_section(&s).unwrap();
        let mut body = String::new();
        es.encode(&[rec()], &mut body);
        assert_eq!(
            body,
            "{\"create\":{\"_index\":\"app-2024.02.29\",\"_id\":\"stdout\"}}\n\
             {\"@timestamp\":\"2024-02-29T13:14:15.123Z\",\"log\":\"hello\",\"stream\":\"stdout\",\"kubernetes\":{\"pod\":\"web-1\"}}\n"
        );
        let es = Es::from_section(&out("es")).unwrap();
        body.clear();
        es.encode(&[rec()], &mut body);
        assert!(
            body.starts_with("{\"create\":{\"_index\":\"fluent-bit\",\"_type\":\"_doc\"}}\n"),
            "{body}"
        );
    }

    #[test]
    fn es_bulk_item_errors() {
        assert_eq!(bulk_result(r#"{"errors":false,"items":[]}"#), Flush::Ok);
        let conflict =
            r#"{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409}}]}"#;
        assert_eq!(bulk_result(conflict), Flush::Ok);
        let busy = r#"{"errors":true,"items":[{"create":{"status":429,"error":{"type":"es_rejected_execution_exception"}}}]}"#;
        assert!(matches!(bulk_result(busy), Flush::Retry(e) if e.contains("429")));
        let bad = r#"{"errors":true,"items":[{"create":{"status":400,"error":{"type":"mapper_parsing_exception"}}}]}"#;
        assert!(matches!(bulk_result(bad), Flush::Error(e) if e.contains("mapper_parsing")));
        assert!(matches!(bulk_result("<html>"), Flush::Retry(_)));
    }

    #[test]
    fn loki_streams_by_label_set() {
        let s = out("loki")
            .with("Labels", "job=app, $kubernetes['pod']")
            .with("Label_Keys", "$stream")
            .with("Remove_Keys", "kubernetes, stream")
            .with("Line_Format", "key_value");
        let loki = Loki::from_section(&s).unwrap();
        let mut other = rec();
        other.fields.set("stream", "stderr");
        let body = loki.encode(&[rec(), other, rec()]);
        assert_eq!(
            body,
            "{\"streams\":[\
             {\"stream\":{\"job\":\"app\",\"kubernetes_pod\":\"web-1\",\"stream\":\"stdout\"},\"values\":[[\"1709212455123456789\",\"log=hello\"],[\"1709212455123456789\",\"log=hello\"]]},\
             {\"stream\":{\"job\":\"app\",\"kubernetes_pod\":\"web-1\",\"stream\":\"stderr\"},\"values\":[[\"1709212455123456789\",\"log=hello\"]]}]}"
        );
        let _: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(Loki::from_section(&out("loki").with("Labels", "nonsense")).is_err());
    }

    #[test]
    fn status_classes() {
        assert_eq!(classify("x", 204, ""), Flush::Ok);
        assert!(matches!(classify("x", 503, ""), Flush::Retry(_)));
        assert!(matches!(classify("x", 429, ""), Flush::Retry(_)));
        assert!(matches!(classify("x", 400, "bad"), Flush::Error(e) if e.contains("bad")));
    }

    #[test]
    fn a_refused_connection_is_a_retry() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let s = out("http").with("Port", &port.to_string());
        let mut h = HttpOut::from_section(&s).unwrap();
        assert!(matches!(h.flush(&[rec()]), Flush::Retry(_)));
    }
}
