//! Remote write 1.0's wire messages (proto3, package `prometheus`; see
//! `shared/conformance/remote-write/README.md`) as prost-derived structs,
//! and the body codec: protobuf inside snappy's *block* format.
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
    let len = snap::raw::decompress_len(body)
        .map_err(|e| RemoteError::BadBody(format!("snappy: {e}")))?;
    if len > max_decoded {
        return Err(RemoteError::BadBody(format!(
            "decoded body of {len} bytes is larger than the limit of {max_decoded}"
        )));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| RemoteError::BadBody(format!("snappy: {e}")))?;
    <WriteRequest as prost::Message>::decode(raw.as_slice())
        .map_err(|e| RemoteError::BadBody(format!("protobuf: {e}")))
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
}
