//! A minimal remote-write receiver in this process, for `bench forward --receiver sink`:
//! it decompresses every request, walks its protobuf to count the samples (no messages
//! built) and answers 204, or 400 if the body does not parse. It stores nothing, so a run
//! against it measures what the sender costs when the receiver is on another host; its
//! threads (`bench-sink*`) are timed apart. Not the benchmark (that is
//! VictoriaMetrics); a comparison.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Decoded request bodies may be this large at most.
const DECODED_BYTES_MAX: usize = 256 << 20;

pub struct Sink {
    pub port: u16,
    samples: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

impl Sink {
    pub fn start() -> std::io::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let samples = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (n, st) = (samples.clone(), stop.clone());
        let accept = std::thread::Builder::new().name("bench-sink".into()).spawn(move || {
            while !st.load(Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (n, st) = (n.clone(), st.clone());
                        // A connection thread ends when the sender closes it (at close).
                        let _ = std::thread::Builder::new().name("bench-sink-conn".into()).spawn(move || {
                            let _ = serve(conn, &n, &st);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })?;
        Ok(Sink { port, samples, stop, accept: Some(accept) })
    }

    pub fn samples(&self) -> u64 {
        self.samples.load(Relaxed)
    }
}

/// HTTP/1.1 keep-alive: each request's body by `Content-Length`, decoded and counted.
fn serve(conn: TcpStream, samples: &AtomicU64, stop: &AtomicBool) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut out = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    let mut body = Vec::new();
    let mut raw = Vec::new();
    let mut snappy = snap::raw::Decoder::new();
    while !stop.load(Relaxed) {
        let mut len = 0usize;
        // Request line and headers; a read timeout between requests just loops.
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e),
        }
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let h = line.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        body.resize(len, 0);
        r.read_exact(&mut body)?;
        let decoded = snap::raw::decompress_len(&body).ok().filter(|n| *n <= DECODED_BYTES_MAX).and_then(|n| {
            raw.resize(n, 0);
            snappy.decompress(&body, &mut raw).ok()
        });
        let answer = match decoded.and_then(|n| count_samples(&raw[..n])) {
            Some(n) => {
                samples.fetch_add(n, Relaxed);
                "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
            }
            None => "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
        };
        out.write_all(answer.as_bytes())?;
    }
    Ok(())
}

/// Samples in a `WriteRequest` (fields as in `prompb`): the `samples` entries (field 2)
/// of each `timeseries` entry (field 1). `None` if the bytes do not parse.
fn count_samples(b: &[u8]) -> Option<u64> {
    let mut n = 0;
    let mut at = 0;
    while at < b.len() {
        let (tag, len, body) = field(b, &mut at)?;
        if tag == (1 << 3) | 2 {
            let ts = &b[body..body + len];
            let mut i = 0;
            while i < ts.len() {
                let (tag, _, _) = field(ts, &mut i)?;
                n += u64::from(tag == (2 << 3) | 2);
            }
        }
    }
    Some(n)
}

/// A length-delimited field at `*at`: its key, length and where its body starts; moves
/// `*at` past it.
fn field(b: &[u8], at: &mut usize) -> Option<(u64, usize, usize)> {
    let tag = varint(b, at)?;
    if tag & 7 != 2 {
        return None;
    }
    let len = usize::try_from(varint(b, at)?).ok()?;
    let start = *at;
    *at = start.checked_add(len).filter(|end| *end <= b.len())?;
    Some((tag, len, start))
}

fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}
