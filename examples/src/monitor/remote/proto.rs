//! Remote write 1.0's wire messages (proto3, package `prometheus`; see
//! `shared/conformance/remote-write/README.md`) as prost-derived structs,
//! and the body codec: protobuf inside snappy's *block* format.
//!
//! The hot paths do not go through the owned structs: the sender encodes a
//! series' labels once and builds each request into reused buffers
//! ([`encode_labels`], [`BodyEncoder`]), and the receiver decodes into flat
//! lists that borrow from the body. Both are checked against prost's
//! encoding and decoding by property tests.
//!
//! Native histograms (`TimeSeries` field 4) are not modelled: a message
//! carrying them decodes (prost skips unknown fields) with the histograms
//! left out, and the receiver counts such series as having no samples.

use super::RemoteError;

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// Field 1: the series and their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Field 3: metric metadata (`metadata_config.send`).
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Field 1: labels sorted by name, `__name__` included.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Field 2: samples in timestamp order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Field 3: exemplars.
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct Label {
    /// Field 1.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// Field 1.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Field 2: milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.Exemplar`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// Field 1.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Field 2.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Field 3: milliseconds since the epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// Field 1: UNKNOWN 0, COUNTER 1, GAUGE 2, HISTOGRAM 3, GAUGEHISTOGRAM 4,
    /// SUMMARY 5, INFO 6, STATESET 7.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// Field 4.
    #[prost(string, tag = "4")]
    pub help: String,
    /// Field 5.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// Encodes `req` as a remote write body: protobuf, then snappy block format.
pub fn encode(req: &WriteRequest) -> Vec<u8> {
    let pb = prost::Message::encode_to_vec(req);
    compress(&pb)
}

/// Snappy block format of `raw`.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    // Compressing a buffer into a correctly sized one cannot fail: snap
    // errors only when the input exceeds its 4 GiB block limit.
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .unwrap_or_else(|_| Vec::new())
}

/// Decodes a remote write body. `max_decoded` bounds the size the snappy
/// header announces, checked before anything is allocated, so a tiny body
/// cannot claim gigabytes.
pub fn decode(body: &[u8], max_decoded: usize) -> Result<WriteRequest, RemoteError> {
    let raw = decompress(body, max_decoded)?;
    <WriteRequest as prost::Message>::decode(raw.as_slice())
        .map_err(|e| RemoteError::BadBody(format!("protobuf: {e}")))
}

/// The snappy block of a body, its announced size checked first.
pub(crate) fn decompress(body: &[u8], max_decoded: usize) -> Result<Vec<u8>, RemoteError> {
    let len = snap::raw::decompress_len(body)
        .map_err(|e| RemoteError::BadBody(format!("snappy: {e}")))?;
    if len > max_decoded {
        return Err(RemoteError::BadBody(format!(
            "decoded body of {len} bytes is larger than the limit of {max_decoded}"
        )));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| RemoteError::BadBody(format!("snappy: {e}")))
}

// ---------------------------------------------------------------------------
// The sender's encoder. A series' labels are encoded once (the sender keeps
// them per series); a request is then the labels' bytes and the samples
// written into buffers reused from request to request. Byte for byte what
// prost writes for the same `WriteRequest` (a unit property test checks
// it): fields in tag order, proto3 defaults (empty strings, 0.0, 0) left out.

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_str_field(out: &mut Vec<u8>, key: u8, s: &str) {
    if !s.is_empty() {
        out.push(key);
        put_varint(out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
}

fn str_field_len(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        1 + varint_len(s.len() as u64) + s.len()
    }
}

/// Appends to `out` the encoding of `labels` as `TimeSeries` field 1 (one
/// `Label` message each, in the order given: sorted by name for a valid
/// request). The result goes to [`BodyEncoder::push_series`].
pub fn encode_labels<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>, out: &mut Vec<u8>) {
    for (n, v) in labels {
        out.push(0x0a);
        put_varint(out, (str_field_len(n) + str_field_len(v)) as u64);
        put_str_field(out, 0x0a, n);
        put_str_field(out, 0x12, v);
    }
}

fn sample_len(s: &Sample) -> usize {
    // prost leaves out a value equal to 0.0 (so -0.0 too) and a zero time.
    let v = if s.value != 0.0 { 9 } else { 0 };
    let t = if s.timestamp != 0 {
        1 + varint_len(s.timestamp as u64)
    } else {
        0
    };
    v + t
}

/// Builds remote write bodies (`WriteRequest` protobuf in snappy's block
/// format) into buffers kept from one request to the next, from series
/// labels encoded once by [`encode_labels`].
///
/// ```
/// use vigil_examples::monitor::remote::proto::{self, BodyEncoder, Sample};
///
/// let mut labels = Vec::new();
/// proto::encode_labels([("__name__", "up"), ("job", "node")], &mut labels);
/// let mut enc = BodyEncoder::new();
/// enc.push_series(&labels, &[Sample { value: 1.0, timestamp: 1_000 }]);
/// let req = proto::decode(enc.finish(), 1 << 20)?;
/// assert_eq!(req.timeseries[0].labels[1].value, "node");
/// assert_eq!(req.timeseries[0].samples[0].timestamp, 1_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct BodyEncoder {
    pb: Vec<u8>,
    out: Vec<u8>,
    snappy: Option<snap::raw::Encoder>,
}

impl std::fmt::Debug for BodyEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyEncoder")
            .field("protobuf_len", &self.pb.len())
            .finish()
    }
}

impl BodyEncoder {
    /// An encoder with empty buffers.
    pub fn new() -> BodyEncoder {
        BodyEncoder::default()
    }

    /// Starts a new request.
    pub fn clear(&mut self) {
        self.pb.clear();
    }

    /// Adds one `TimeSeries`: `labels` from [`encode_labels`], then
    /// `samples` (in timestamp order for a valid request).
    pub fn push_series(&mut self, labels: &[u8], samples: &[Sample]) {
        let len = labels.len()
            + samples
                .iter()
                .map(|s| {
                    let n = sample_len(s);
                    1 + varint_len(n as u64) + n
                })
                .sum::<usize>();
        let pb = &mut self.pb;
        pb.reserve(1 + varint_len(len as u64) + len);
        pb.push(0x0a);
        put_varint(pb, len as u64);
        pb.extend_from_slice(labels);
        for s in samples {
            pb.push(0x12);
            put_varint(pb, sample_len(s) as u64);
            if s.value != 0.0 {
                pb.push(0x09);
                pb.extend_from_slice(&s.value.to_le_bytes());
            }
            if s.timestamp != 0 {
                pb.push(0x10);
                put_varint(pb, s.timestamp as u64);
            }
        }
    }

    /// The protobuf of the request so far.
    pub fn protobuf(&self) -> &[u8] {
        &self.pb
    }

    /// The request as a body: its protobuf compressed in snappy's block
    /// format. Valid until the next call on the encoder.
    pub fn finish(&mut self) -> &[u8] {
        let need = snap::raw::max_compress_len(self.pb.len());
        if self.out.len() < need {
            self.out.resize(need, 0);
        }
        let enc = self.snappy.get_or_insert_with(snap::raw::Encoder::new);
        // The output holds max_compress_len bytes, so snap can only fail on
        // an input beyond its 4 GiB limit, which max_compress_len (0 then)
        // and a batch of max_samples_per_send samples never reach.
        match enc.compress(&self.pb, &mut self.out) {
            Ok(n) => &self.out[..n],
            Err(_) => &[],
        }
    }
}

// ---------------------------------------------------------------------------
// The receiver's decoder: the same messages as prost's `decode` (a unit
// property test checks both agree on valid and on damaged input), but
// borrowing names and values from the decompressed body and writing every
// series into flat lists reused from request to request, instead of
// allocating two strings per label and two vectors per series.

/// One `TimeSeries` of a [`Flat`] request: ranges into its lists.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FlatSeries {
    pub labels: std::ops::Range<usize>,
    pub samples: std::ops::Range<usize>,
    /// The series' `Label` fields as they were on the wire (tags and
    /// lengths included): the same bytes always decode to the same labels.
    pub key: std::ops::Range<usize>,
}

/// A decoded `WriteRequest` that borrows its strings.
#[derive(Debug, Default)]
pub(crate) struct Flat<'a> {
    pub series: Vec<FlatSeries>,
    pub labels: Vec<(&'a str, &'a str)>,
    pub samples: Vec<Sample>,
    pub keys: Vec<u8>,
}

/// prost's recursion limit: groups of unknown fields nest at most this deep.
const RECURSION_LIMIT: u32 = 100;

struct Wire<'a> {
    b: &'a [u8],
    at: usize,
}

type WireResult<T> = Result<T, &'static str>;

impl<'a> Wire<'a> {
    fn done(&self) -> bool {
        self.at >= self.b.len()
    }

    fn varint(&mut self) -> WireResult<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.b.get(self.at) else {
                return Err("invalid varint");
            };
            self.at += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                // The tenth byte may only carry bit 63.
                return if i == 9 && b >= 2 {
                    Err("invalid varint")
                } else {
                    Ok(v)
                };
            }
        }
        Err("invalid varint")
    }

    /// A field key: `(tag, wire type)`.
    fn key(&mut self) -> WireResult<(u32, u8)> {
        let k = self.varint()?;
        if k > u64::from(u32::MAX) {
            return Err("invalid key value");
        }
        let wt = (k & 7) as u8;
        if wt > 5 {
            return Err("invalid wire type value");
        }
        let tag = (k as u32) >> 3;
        if tag == 0 {
            return Err("invalid tag value: 0");
        }
        Ok((tag, wt))
    }

    fn bytes(&mut self) -> WireResult<&'a [u8]> {
        let n = self.varint()?;
        let left = (self.b.len() - self.at) as u64;
        if n > left {
            return Err("buffer underflow");
        }
        let s = &self.b[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(s)
    }

    fn str(&mut self) -> WireResult<&'a str> {
        std::str::from_utf8(self.bytes()?)
            .map_err(|_| "invalid string value: data is not UTF-8 encoded")
    }

    fn fixed64(&mut self) -> WireResult<[u8; 8]> {
        let s = self.b.get(self.at..self.at + 8).ok_or("buffer underflow")?;
        self.at += 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Skips an unknown field as prost does, groups included.
    fn skip(&mut self, wt: u8, tag: u32, depth: u32) -> WireResult<()> {
        if depth == 0 {
            return Err("recursion limit reached");
        }
        let n = match wt {
            0 => {
                self.varint()?;
                0
            }
            1 => 8,
            5 => 4,
            2 => self.varint()?,
            3 => {
                loop {
                    let (t, w) = self.key()?;
                    if w == 4 {
                        if t != tag {
                            return Err("unexpected end group tag");
                        }
                        break;
                    }
                    self.skip(w, t, depth - 1)?;
                }
                0
            }
            _ => return Err("unexpected end group tag"),
        };
        if n > (self.b.len() - self.at) as u64 {
            return Err("buffer underflow");
        }
        self.at += n as usize;
        Ok(())
    }
}

fn want(wt: u8, expected: u8) -> WireResult<()> {
    if wt == expected {
        Ok(())
    } else {
        Err("invalid wire type")
    }
}

/// One `Label` message; `(name, value)`.
fn flat_label(b: &[u8], depth: u32) -> WireResult<(&str, &str)> {
    let mut w = Wire { b, at: 0 };
    let (mut name, mut value) = ("", "");
    while !w.done() {
        match w.key()? {
            (1, wt) => {
                want(wt, 2)?;
                name = w.str()?;
            }
            (2, wt) => {
                want(wt, 2)?;
                value = w.str()?;
            }
            (tag, wt) => w.skip(wt, tag, depth)?,
        }
    }
    Ok((name, value))
}

fn flat_sample(b: &[u8], depth: u32) -> WireResult<Sample> {
    let mut w = Wire { b, at: 0 };
    let mut s = Sample {
        value: 0.0,
        timestamp: 0,
    };
    while !w.done() {
        match w.key()? {
            (1, wt) => {
                want(wt, 1)?;
                s.value = f64::from_le_bytes(w.fixed64()?);
            }
            (2, wt) => {
                want(wt, 0)?;
                s.timestamp = w.varint()? as i64;
            }
            (tag, wt) => w.skip(wt, tag, depth)?,
        }
    }
    Ok(s)
}

/// An exemplar is checked as prost would decode it, then left out (the
/// receiver does not store exemplars).
fn check_exemplar(b: &[u8], depth: u32) -> WireResult<()> {
    let mut w = Wire { b, at: 0 };
    while !w.done() {
        match w.key()? {
            (1, wt) => {
                want(wt, 2)?;
                flat_label(w.bytes()?, depth - 1)?;
            }
            (2, wt) => {
                want(wt, 1)?;
                w.fixed64()?;
            }
            (3, wt) => {
                want(wt, 0)?;
                w.varint()?;
            }
            (tag, wt) => w.skip(wt, tag, depth)?,
        }
    }
    Ok(())
}

fn check_metadata(b: &[u8], depth: u32) -> WireResult<()> {
    let mut w = Wire { b, at: 0 };
    while !w.done() {
        match w.key()? {
            (1, wt) => {
                want(wt, 0)?;
                w.varint()?;
            }
            (2 | 4 | 5, wt) => {
                want(wt, 2)?;
                w.str()?;
            }
            (tag, wt) => w.skip(wt, tag, depth)?,
        }
    }
    Ok(())
}

impl<'a> Flat<'a> {
    /// Decodes the protobuf `raw` into `self`, emptied first.
    pub(crate) fn decode(&mut self, raw: &'a [u8]) -> Result<(), RemoteError> {
        self.series.clear();
        self.labels.clear();
        self.samples.clear();
        self.keys.clear();
        self.decode_request(raw)
            .map_err(|e| RemoteError::BadBody(format!("protobuf: {e}")))
    }

    fn decode_request(&mut self, raw: &'a [u8]) -> WireResult<()> {
        let depth = RECURSION_LIMIT;
        let mut w = Wire { b: raw, at: 0 };
        while !w.done() {
            match w.key()? {
                (1, wt) => {
                    want(wt, 2)?;
                    let ts = w.bytes()?;
                    self.decode_series(ts, depth - 1)?;
                }
                (3, wt) => {
                    want(wt, 2)?;
                    check_metadata(w.bytes()?, depth - 1)?;
                }
                (tag, wt) => w.skip(wt, tag, depth)?,
            }
        }
        Ok(())
    }

    fn decode_series(&mut self, b: &'a [u8], depth: u32) -> WireResult<()> {
        let labels = self.labels.len();
        let samples = self.samples.len();
        let key = self.keys.len();
        let mut w = Wire { b, at: 0 };
        while !w.done() {
            let field = w.at;
            match w.key()? {
                (1, wt) => {
                    want(wt, 2)?;
                    let l = flat_label(w.bytes()?, depth - 1)?;
                    self.labels.push(l);
                    self.keys.extend_from_slice(&b[field..w.at]);
                }
                (2, wt) => {
                    want(wt, 2)?;
                    let s = flat_sample(w.bytes()?, depth - 1)?;
                    self.samples.push(s);
                }
                (3, wt) => {
                    want(wt, 2)?;
                    check_exemplar(w.bytes()?, depth - 1)?;
                }
                (tag, wt) => w.skip(wt, tag, depth)?,
            }
        }
        self.series.push(FlatSeries {
            labels: labels..self.labels.len(),
            samples: samples..self.samples.len(),
            key: key..self.keys.len(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: "up".into(),
                    },
                    Label {
                        name: "job".into(),
                        value: "é".into(),
                    },
                ],
                samples: vec![Sample {
                    value: 1.5,
                    timestamp: -3,
                }],
                exemplars: vec![],
            }],
            metadata: vec![],
        };
        let body = encode(&req);
        assert_eq!(decode(&body, 1 << 20).unwrap(), req);
        assert!(
            decode(b"not snappy at all", 1 << 20)
                .unwrap_err()
                .to_string()
                .contains("snappy")
        );
        let not_pb = compress(&[0xff; 16]);
        assert!(
            decode(&not_pb, 1 << 20)
                .unwrap_err()
                .to_string()
                .contains("protobuf")
        );
        assert!(decode(&body, 4).unwrap_err().to_string().contains("limit"));
    }

    use proptest::prelude::*;

    fn arb_label() -> impl Strategy<Value = Label> {
        // Empty names and values too: proto3 leaves empty strings out.
        ("[a-z_]{0,6}", "\\PC{0,8}").prop_map(|(name, value)| Label { name, value })
    }

    fn arb_sample() -> impl Strategy<Value = Sample> {
        let value = prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            Just(0.0),
            Just(-0.0),
            Just(f64::NAN),
        ];
        let timestamp = prop_oneof![any::<i64>(), Just(0i64), -200i64..200];
        (value, timestamp).prop_map(|(value, timestamp)| Sample { value, timestamp })
    }

    fn arb_series(exemplars: bool) -> impl Strategy<Value = TimeSeries> {
        let ex =
            (prop::collection::vec(arb_label(), 0..3), arb_sample()).prop_map(|(labels, s)| {
                Exemplar {
                    labels,
                    value: s.value,
                    timestamp: s.timestamp,
                }
            });
        (
            prop::collection::vec(arb_label(), 0..6),
            prop::collection::vec(arb_sample(), 0..6),
            prop::collection::vec(ex, 0..if exemplars { 3 } else { 1 }),
        )
            .prop_map(|(labels, samples, exemplars)| TimeSeries {
                labels,
                samples,
                exemplars,
            })
    }

    fn arb_request(full: bool) -> impl Strategy<Value = WriteRequest> {
        let md = (any::<i32>(), "\\PC{0,6}", "\\PC{0,6}", "[a-z]{0,3}").prop_map(|(t, n, h, u)| {
            MetricMetadata {
                r#type: t,
                metric_family_name: n,
                help: h,
                unit: u,
            }
        });
        (
            prop::collection::vec(arb_series(full), 0..6),
            prop::collection::vec(md, 0..if full { 3 } else { 1 }),
        )
            .prop_map(|(timeseries, metadata)| WriteRequest {
                timeseries,
                metadata,
            })
    }

    /// What the receiver reads of a request, bit-exact.
    type Seen = Vec<(Vec<(String, String)>, Vec<(i64, u64)>)>;

    fn seen_prost(r: &WriteRequest) -> Seen {
        r.timeseries
            .iter()
            .map(|t| {
                (
                    t.labels
                        .iter()
                        .map(|l| (l.name.clone(), l.value.clone()))
                        .collect(),
                    t.samples
                        .iter()
                        .map(|s| (s.timestamp, s.value.to_bits()))
                        .collect(),
                )
            })
            .collect()
    }

    fn seen_flat(f: &Flat<'_>, raw: &[u8]) -> Seen {
        f.series
            .iter()
            .map(|s| {
                // The key is the series' label fields as sent: decoding
                // them alone gives the same labels.
                let mut alone = Vec::new();
                alone.push(0x0a);
                put_varint(&mut alone, (s.key.end - s.key.start) as u64);
                alone.extend_from_slice(&f.keys[s.key.clone()]);
                let mut again = Flat::default();
                again.decode(&alone).unwrap();
                assert_eq!(again.labels, f.labels[s.labels.clone()], "{raw:?}");
                (
                    f.labels[s.labels.clone()]
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect(),
                    f.samples[s.samples.clone()]
                        .iter()
                        .map(|s| (s.timestamp, s.value.to_bits()))
                        .collect(),
                )
            })
            .collect()
    }

    /// The flat decoder against prost on the same bytes: both refuse, or
    /// both give the same series.
    fn agree(raw: &[u8]) -> Result<(), TestCaseError> {
        let p = <WriteRequest as prost::Message>::decode(raw);
        let mut f = Flat::default();
        let r = f.decode(raw);
        match (&p, &r) {
            (Ok(p), Ok(())) => prop_assert_eq!(seen_flat(&f, raw), seen_prost(p)),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "prost {:?}, flat {:?} on {:?}", p, r, raw),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn body_encoder_writes_what_prost_writes(req in arb_request(false)) {
            let mut enc = BodyEncoder::new();
            let mut labels = Vec::new();
            for t in &req.timeseries {
                labels.clear();
                encode_labels(t.labels.iter().map(|l| (&*l.name, &*l.value)), &mut labels);
                enc.push_series(&labels, &t.samples);
            }
            let want = prost::Message::encode_to_vec(&req);
            prop_assert_eq!(enc.protobuf(), &want[..]);
            let body = enc.finish().to_vec();
            prop_assert_eq!(decompress(&body, 1 << 20).unwrap(), want);
            // Reused for the next request.
            enc.clear();
            prop_assert!(enc.protobuf().is_empty());
        }

        #[test]
        fn flat_decoder_agrees_with_prost(req in arb_request(true)) {
            agree(&prost::Message::encode_to_vec(&req))?;
        }

        #[test]
        fn flat_decoder_agrees_with_prost_on_damage(
            req in arb_request(true),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut raw = prost::Message::encode_to_vec(&req);
            if raw.is_empty() {
                return Ok(());
            }
            for (at, b) in edits {
                let i = at.index(raw.len());
                raw[i] = b;
            }
            agree(&raw)?;
            agree(&raw[..cut.index(raw.len())])?;
        }

        #[test]
        fn flat_decoder_agrees_with_prost_on_noise(raw in prop::collection::vec(any::<u8>(), 0..64)) {
            agree(&raw)?;
        }
    }

    #[test]
    fn flat_decoder_skips_groups_and_unknown_fields_as_prost_does() {
        // TimeSeries { label{a=b}, field 9 group { field 1 varint } end, field 4 fixed32 }
        let label = [0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b'];
        let mut ts = label.to_vec();
        ts.extend_from_slice(&[0x4b, 0x08, 0x05, 0x4c, 0x25, 1, 2, 3, 4]);
        let mut raw = vec![0x0a, ts.len() as u8];
        raw.extend_from_slice(&ts);
        agree(&raw).unwrap();
        let mut f = Flat::default();
        f.decode(&raw).unwrap();
        assert_eq!(f.labels, [("a", "b")]);
        // A group closed by another field's end tag, and deep nesting.
        agree(&[0x4b, 0x54]).unwrap();
        let mut deep = vec![0x4b; 120];
        deep.extend(std::iter::repeat_n(0x4c, 120));
        agree(&deep).unwrap();
        let mut ok = vec![0x4b; 99];
        ok.extend(std::iter::repeat_n(0x4c, 99));
        agree(&ok).unwrap();
        let mut edge = vec![0x4b; 100];
        edge.extend(std::iter::repeat_n(0x4c, 100));
        agree(&edge).unwrap();
    }
}
