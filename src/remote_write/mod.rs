//! Prometheus remote write 1.0 on the wire: the protobuf messages and their snappy
//! block framing, shared by the server (which receives them) and the forwarder (which
//! sends them). The spec: <https://prometheus.io/docs/specs/prw/remote_write_spec/>.
//!
//! The messages are declared with `prost` derives rather than generated from
//! `remote.proto`/`types.proto` by a build script: the subset is small and stable, and
//! this keeps `protoc` out of the build. Field numbers follow Prometheus's
//! `prompb/types.proto` and `prompb/remote.proto`; fields Chronolith doesn't use
//! (exemplars, native histograms) are skipped by prost as unknown fields on decode.

pub mod borrowed;
mod proto;

pub use proto::{Label, MetricMetadata, Sample, TimeSeries, WriteRequest};

use prost::Message;

/// The `Content-Type` a remote write 1.0 request carries.
pub const CONTENT_TYPE: &str = "application/x-protobuf";
/// The `Content-Encoding` a remote write 1.0 request carries.
pub const CONTENT_ENCODING: &str = "snappy";
/// The `X-Prometheus-Remote-Write-Version` header value of remote write 1.0.
pub const VERSION_HEADER_VALUE: &str = "0.1.0";

/// Why a remote write body could not be decoded. Each variant maps to a 400 answer.
#[derive(Debug)]
pub enum DecodeError {
    /// The snappy block header or data is malformed.
    Snappy(String),
    /// The body would decompress to more than the limit the caller set.
    TooLarge { decompressed_bytes: usize, limit_bytes: usize },
    /// The decompressed bytes are not a valid `WriteRequest`.
    Protobuf(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Snappy(e) => write!(f, "invalid snappy block: {e}"),
            DecodeError::TooLarge { decompressed_bytes, limit_bytes } => {
                write!(f, "request decompresses to {decompressed_bytes} bytes, over the limit of {limit_bytes} bytes")
            }
            DecodeError::Protobuf(e) => write!(f, "invalid WriteRequest protobuf: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a snappy-compressed `WriteRequest`, refusing before allocating if the
/// snappy header announces more than `decompressed_limit_bytes`.
pub fn decode(body: &[u8], decompressed_limit_bytes: usize) -> Result<WriteRequest, DecodeError> {
    let len = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if len > decompressed_limit_bytes {
        return Err(DecodeError::TooLarge { decompressed_bytes: len, limit_bytes: decompressed_limit_bytes });
    }
    let raw = snap::raw::Decoder::new().decompress_vec(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    WriteRequest::decode(raw.as_slice()).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// Encodes a `WriteRequest` as protobuf in a snappy block, ready to POST.
pub fn encode(request: &WriteRequest) -> Vec<u8> {
    let raw = request.encode_to_vec();
    // Compressing a Vec we own into a fresh Vec cannot fail except on inputs over
    // ~4 GiB, which a remote write batch never approaches; fall back to an empty
    // body (which the receiver rejects loudly) rather than panicking.
    snap::raw::Encoder::new().compress_vec(&raw).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> WriteRequest {
        WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    Label { name: "__name__".into(), value: "up".into() },
                    Label { name: "job".into(), value: "node".into() },
                ],
                samples: vec![Sample { value: 1.0, timestamp: 1_700_000_000_000 }, Sample { value: 0.5, timestamp: 2 }],
            }],
            metadata: vec![],
        }
    }

    #[test]
    fn round_trips() {
        let body = encode(&request());
        assert_eq!(decode(&body, 1 << 20).unwrap(), request());
    }

    #[test]
    fn refuses_oversized_before_decompressing() {
        let body = encode(&request());
        assert!(matches!(decode(&body, 8), Err(DecodeError::TooLarge { limit_bytes: 8, .. })));
    }

    #[test]
    fn bad_snappy_and_bad_protobuf_are_errors() {
        assert!(matches!(decode(b"\xff\xff\xff\xff\xff\xff", 1 << 20), Err(DecodeError::Snappy(_))));
        let not_proto = snap::raw::Encoder::new().compress_vec(&[0x0a, 0xff, 0xff, 0xff]).unwrap();
        assert!(matches!(decode(&not_proto, 1 << 20), Err(DecodeError::Protobuf(_))));
    }

    #[test]
    fn decodes_bytes_from_prometheus_field_numbers() {
        // TimeSeries{labels=[{name:"a",value:"b"}], samples=[{value:1.0,timestamp:5}]}
        // written by hand from prompb/types.proto field numbers.
        let label = [0x0a, 0x01, b'a', 0x12, 0x01, b'b'];
        let sample = [0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x05];
        let mut ts = vec![0x0a, label.len() as u8];
        ts.extend_from_slice(&label);
        ts.push(0x12);
        ts.push(sample.len() as u8);
        ts.extend_from_slice(&sample);
        let mut req = vec![0x0a, ts.len() as u8];
        req.extend_from_slice(&ts);
        let decoded = WriteRequest::decode(req.as_slice()).unwrap();
        assert_eq!(decoded.timeseries[0].labels[0].name, "a");
        assert_eq!(decoded.timeseries[0].samples[0], Sample { value: 1.0, timestamp: 5 });
    }
}
