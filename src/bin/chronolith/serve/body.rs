//! Reading request bodies under the size limits, and gzip decoding with a bound on the
//! decompressed size (a small gzip body can expand to gigabytes).

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use http_body_util::BodyExt;
use std::io::Read;

/// Why a body could not be had; each is a 4xx with this text.
#[derive(Debug)]
pub struct BodyError {
    pub status: StatusCode,
    pub message: String,
}

impl BodyError {
    fn new(status: StatusCode, message: String) -> Self {
        Self { status, message }
    }
}

/// The whole body, refused with 413 past `limit` bytes (before reading, when the
/// Content-Length already says so).
pub async fn read(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, BodyError> {
    let too_large = |n: String| {
        BodyError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body of {n} bytes is over the limit of {limit} bytes (--body-bytes-max)"),
        )
    };
    let announced = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(n) = announced {
        if n > limit as u64 {
            return Err(too_large(n.to_string()));
        }
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(too_large("more than that".into()))
        }
        Err(e) => Err(BodyError::new(StatusCode::BAD_REQUEST, format!("cannot read the request body: {e}"))),
    }
}

/// The `Content-Encoding` of a request, lower-cased; `None` for identity.
pub fn content_encoding(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_ENCODING)?.to_str().unwrap_or("(not text)").trim().to_ascii_lowercase();
    (!v.is_empty() && v != "identity").then_some(v)
}

/// Decodes a text body sent as is or gzip-compressed (`Content-Encoding: gzip`), at
/// most `limit` bytes after decompression.
pub fn decode_text_body(bytes: Bytes, encoding: Option<&str>, limit: usize) -> Result<Bytes, BodyError> {
    match encoding {
        None => Ok(bytes),
        Some("gzip" | "x-gzip") => gunzip(&bytes, limit).map(Bytes::from),
        Some(other) => Err(BodyError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding {other:?}; send the body as is or gzip-compressed"),
        )),
    }
}

fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(limit));
    let mut reader = flate2::read::MultiGzDecoder::new(bytes).take(limit as u64 + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|e| BodyError::new(StatusCode::BAD_REQUEST, format!("invalid gzip body: {e}")))?;
    if out.len() > limit {
        return Err(BodyError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("gzip body decompresses to more than {limit} bytes (--decompressed-bytes-max)"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_round_trip_limit_and_garbage() {
        let body = Bytes::from(gz(b"m 1 2\n"));
        assert_eq!(&decode_text_body(body.clone(), Some("gzip"), 100).unwrap()[..], b"m 1 2\n");
        assert_eq!(decode_text_body(body, Some("gzip"), 3).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        let bomb = Bytes::from(gz(&vec![0u8; 1 << 20]));
        assert_eq!(decode_text_body(bomb, Some("gzip"), 1000).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        let bad = decode_text_body(Bytes::from_static(b"not gzip"), Some("gzip"), 100).unwrap_err();
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let br = decode_text_body(Bytes::from_static(b"x"), Some("br"), 100).unwrap_err();
        assert_eq!(br.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
