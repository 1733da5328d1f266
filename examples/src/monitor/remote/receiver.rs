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
//!
//! The body is decoded without copying names and values, and label sets
//! already seen are taken from a cache keyed by their bytes on the wire
//! (see `LABELS`), so a series sent at every interval is parsed once.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
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
    let raw = match proto::decompress(body, MAX_DECODED) {
        Ok(r) => r,
        Err(e) => return fail(400, e.to_string()),
    };
    let mut req = proto::Flat::default();
    if let Err(e) = req.decode(&raw) {
        return fail(400, e.to_string());
    }
    // Everything is checked before the first append, so a bad series late
    // in the request leaves nothing of it behind.
    let mut series = Vec::with_capacity(req.series.len());
    {
        let mut cache = LABELS.lock();
        for (i, ts) in req.series.iter().enumerate() {
            let labels = match cache.labels(&req, ts) {
                Ok(l) => l,
                Err(e) => return fail(400, format!("timeseries[{i}]: {e}")),
            };
            for w in req.samples[ts.samples.clone()].windows(2) {
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
    }
    let mut app = db.head().appender_with_capacity(req.samples.len());
    for (ts, labels) in req.series.iter().zip(&series) {
        let mut id = None;
        for s in &req.samples[ts.samples.clone()] {
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

/// The label sets of the series received lately, by their bytes on the
/// wire. A sender sends the same series at every interval, so building
/// (allocating, sorting, checking) their `Labels` again for every request
/// was the receiver's largest cost after the store itself. The cache holds
/// only what the bytes alone decide (no store ids), so it is right for any
/// store; it is bounded by keeping two generations and dropping the older
/// when the newer fills.
static LABELS: Mutex<LabelCache> = Mutex::new(LabelCache::new(GENERATION_BYTES));

/// Bytes of keys and labels a generation holds before it is retired.
const GENERATION_BYTES: usize = 32 << 20;

struct LabelCache {
    young: Option<HashMap<Box<[u8]>, Arc<Labels>>>,
    old: Option<HashMap<Box<[u8]>, Arc<Labels>>>,
    young_bytes: usize,
    /// [`GENERATION_BYTES`] but in tests.
    limit: usize,
}

impl LabelCache {
    const fn new(limit: usize) -> LabelCache {
        LabelCache {
            young: None,
            old: None,
            young_bytes: 0,
            limit,
        }
    }

    /// The labels of `ts`, a series of `req`, or why they are refused.
    fn labels(
        &mut self,
        req: &proto::Flat<'_>,
        ts: &proto::FlatSeries,
    ) -> Result<Arc<Labels>, String> {
        let key = &req.keys[ts.key.clone()];
        let young = self.young.get_or_insert_with(HashMap::new);
        if let Some(l) = young.get(key) {
            return Ok(l.clone());
        }
        let l = match self.old.as_mut().and_then(|o| o.remove(key)) {
            Some(l) => l,
            None => match Labels::new(req.labels[ts.labels.clone()].iter().copied()) {
                Ok(l) if !l.is_empty() => Arc::new(l),
                Ok(_) => return Err("no labels".into()),
                Err(e) => return Err(e.to_string()),
            },
        };
        // The key, and the labels' strings at most as long again.
        self.young_bytes += 2 * key.len() + 64;
        young.insert(key.into(), l.clone());
        if self.young_bytes > self.limit {
            self.old = self.young.take();
            self.young_bytes = 0;
        }
        Ok(l)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(names: &[&str]) -> Vec<u8> {
        let req = proto::WriteRequest {
            timeseries: names
                .iter()
                .map(|n| proto::TimeSeries {
                    labels: vec![
                        proto::Label {
                            name: "__name__".into(),
                            value: (*n).into(),
                        },
                        proto::Label {
                            name: "job".into(),
                            value: "j".into(),
                        },
                    ],
                    samples: vec![],
                    exemplars: vec![],
                })
                .collect(),
            metadata: vec![],
        };
        prost::Message::encode_to_vec(&req)
    }

    #[test]
    fn the_label_cache_gives_what_parsing_gives_and_stays_bounded() {
        // Room for about three series per generation.
        let mut cache = LabelCache::new(3 * (2 * 20 + 64));
        let names: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
        for round in 0..3 {
            for chunk in names.chunks(7) {
                let raw = request(&chunk.iter().map(|s| s.as_str()).collect::<Vec<_>>());
                let mut req = proto::Flat::default();
                req.decode(&raw).unwrap();
                for (ts, n) in req.series.iter().zip(chunk) {
                    let got = cache.labels(&req, ts).unwrap();
                    let want = Labels::new([("__name__", n.as_str()), ("job", "j")]).unwrap();
                    assert_eq!(*got, want, "round {round}");
                }
            }
            let held = cache.young.as_ref().map_or(0, HashMap::len)
                + cache.old.as_ref().map_or(0, HashMap::len);
            assert!(held <= 10, "{held} label sets held");
        }
        // Refusals are not cached: the same bad series is refused again.
        let raw = prost::Message::encode_to_vec(&proto::WriteRequest {
            timeseries: vec![proto::TimeSeries {
                labels: vec![],
                samples: vec![],
                exemplars: vec![],
            }],
            metadata: vec![],
        });
        let mut req = proto::Flat::default();
        req.decode(&raw).unwrap();
        for _ in 0..2 {
            let e = cache.labels(&req, &req.series[0]).unwrap_err();
            assert_eq!(e, "no labels");
        }
        assert!(
            cache
                .young
                .as_ref()
                .is_none_or(|y| !y.contains_key(&[][..]))
        );
    }
}
