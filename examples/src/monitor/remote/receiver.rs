//! The `/api/v1/write` handler (`--web.enable-remote-write-receiver`):
//! decodes a remote write body and appends it to the store in one commit.
//!
//! Status codes tell a sender what to do: 204 stored; 400 for anything the
//! sender must not retry (a body that is not snappy or protobuf, a bad
//! label set, samples out of order or outside the store's window), with
//! nothing of the request applied; 413 for a body over the limit; 415 for a
//! wrong content encoding; 500 when the store itself fails (a retry may
//! succeed). The whole request is one appender: refused samples roll all of
//! it back, as Prometheus's handler does.

use vigil_tsdb::Error as TsdbError;
use vigil_tsdb::db::Db;
use vigil_tsdb::labels::Labels;

use super::proto;

/// The largest body accepted, compressed (Prometheus reads at most what its
/// decoder needs; 32 MiB is far above what a sender's batch of 2,000 or
/// even 50,000 samples takes).
pub const MAX_BODY: usize = 32 << 20;
/// The largest body accepted once decompressed.
pub const MAX_DECODED: usize = 128 << 20;

/// What [`receive`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The HTTP status to answer.
    pub status: u16,
    /// The body to answer with (empty on success; the reason otherwise).
    pub message: String,
    /// Samples stored (0 unless the status is 204).
    pub samples: usize,
}

fn fail(status: u16, message: String) -> Received {
    Received {
        status,
        message,
        samples: 0,
    }
}

/// Handles one remote write request: `body` as received, `content_encoding`
/// the value of that header if any. The caller answers with the returned
/// status and message (`text/plain`).
///
/// ```
/// use vigil_examples::monitor::remote::{proto, receive};
/// use vigil_tsdb::db::{Db, DbOptions};
///
/// let dir = tempfile::tempdir()?;
/// let db = Db::open(dir.path(), DbOptions::default())?;
/// let req = proto::WriteRequest {
///     timeseries: vec![proto::TimeSeries {
///         labels: vec![proto::Label { name: "__name__".into(), value: "up".into() }],
///         samples: vec![proto::Sample { value: 1.0, timestamp: 1_000 }],
///         exemplars: vec![],
///     }],
///     metadata: vec![],
/// };
/// let r = receive(&db, &proto::encode(&req), Some("snappy"));
/// assert_eq!((r.status, r.samples), (204, 1));
/// let r = receive(&db, b"garbage", Some("snappy"));
/// assert_eq!(r.status, 400);
/// assert!(r.message.contains("snappy"), "{}", r.message);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn receive(db: &Db, body: &[u8], content_encoding: Option<&str>) -> Received {
    if let Some(enc) = content_encoding.filter(|e| !e.trim().eq_ignore_ascii_case("snappy")) {
        return fail(
            415,
            format!("unsupported Content-Encoding {enc:?}: remote write 1.0 bodies are snappy"),
        );
    }
    if body.len() > MAX_BODY {
        return fail(
            413,
            format!(
                "body of {} bytes is larger than the limit of {MAX_BODY}",
                body.len()
            ),
        );
    }
    let req = match proto::decode(body, MAX_DECODED) {
        Ok(r) => r,
        Err(e) => return fail(400, e.to_string()),
    };
    // Everything is checked before the first append, so a bad series late
    // in the request leaves nothing of it behind.
    let mut series = Vec::with_capacity(req.timeseries.len());
    for (i, ts) in req.timeseries.iter().enumerate() {
        let labels = match Labels::new(ts.labels.iter().map(|l| (&*l.name, &*l.value))) {
            Ok(l) if !l.is_empty() => l,
            Ok(_) => return fail(400, format!("timeseries[{i}]: no labels")),
            Err(e) => return fail(400, format!("timeseries[{i}]: {e}")),
        };
        for w in ts.samples.windows(2) {
            if w[1].timestamp < w[0].timestamp {
                return fail(
                    400,
                    format!(
                        "timeseries[{i}] {}: samples out of order ({} after {})",
                        show(&labels),
                        w[1].timestamp,
                        w[0].timestamp
                    ),
                );
            }
        }
        series.push(labels);
    }
    let total: usize = req.timeseries.iter().map(|t| t.samples.len()).sum();
    let mut app = db.head().appender_with_capacity(total);
    for (ts, labels) in req.timeseries.iter().zip(&series) {
        let mut id = None;
        for s in &ts.samples {
            let r = match id {
                Some(id) => app.append_ref(id, s.timestamp, s.value),
                None => app.append(labels, s.timestamp, s.value).map(|r| {
                    id = Some(r);
                }),
            };
            if let Err(e) = r {
                app.rollback();
                return fail(status_of(&e), format!("{}: {e}", show(labels)));
            }
        }
    }
    match app.commit() {
        Ok(sum) => Received {
            status: 204,
            message: String::new(),
            samples: sum.appended + sum.duplicates,
        },
        Err(e) => fail(status_of(&e), e.to_string()),
    }
}

/// 400 for what the data did wrong (a retry cannot help), 500 for the store.
fn status_of(e: &TsdbError) -> u16 {
    match e {
        TsdbError::OutOfOrderSample { .. }
        | TsdbError::OutOfBounds { .. }
        | TsdbError::DuplicateSample { .. }
        | TsdbError::InvalidLabels { .. } => 400,
        _ => 500,
    }
}

fn show(l: &Labels) -> String {
    let mut s = String::from("{");
    for (i, (n, v)) in l.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&format!("{n}={v:?}"));
    }
    s.push('}');
    s
}
