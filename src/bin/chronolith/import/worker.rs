//! Parse workers: each takes a chunk of whole lines and turns it into append batches.
//!
//! Lines of series already imported take the byte-level fast path
//! ([`known_series::parse_with`]: no UTF-8 check of the labels, no allocation); the rest
//! take the format's full parser. A series seen for the first time goes into the batch
//! by its labels with its key alongside; the appender, which appends chunks in file
//! order, learns its ref from the append and publishes `key → ref` in [`Known`], from
//! where workers copy it into their own map. Workers never write to the database, so
//! nothing after a line that stops the import (`--strict`, `# EOF`) is stored.

use super::chunks::{ChunkOut, Slot, Stop};
use super::local_keys::LocalKeys;
use super::{csv, now_ms, Format, MALFORMED_REPORTED_MAX};
use chronolith::formats::{influx, known_series, prometheus, Line, Parsed};
use chronolith::{Batch, Labels, SeriesId};
use crossbeam::channel::{Receiver, Sender};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Series keys are ~200 bytes of label text; foldhash hashes them several times
/// faster than std's SipHash, and the map is not exposed to untrusted probing at a
/// scale where DoS resistance matters (one import's own series).
pub type KeyMap<V = SeriesId> = HashMap<Box<[u8]>, V, foldhash::fast::RandomState>;

/// `key → ref` of every series the appender has seen in this file.
#[derive(Debug, Default)]
pub struct Known(RwLock<KeyMap>);

impl Known {
    pub fn insert(&self, key: Box<[u8]>, id: SeriesId) {
        self.0.write().insert(key, id);
    }

    pub fn get(&self, key: &[u8]) -> Option<SeriesId> {
        self.0.read().get(key).copied()
    }
}

/// What every worker needs to know about the file.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub format: Format,
    pub precision: influx::Precision,
    pub series_table: Option<&'a csv::SeriesTable>,
    pub strict: bool,
    pub batch_max: usize,
    pub known: &'a Known,
}

/// One append's worth of samples; `new` names the entries added by labels:
/// `(index in the batch, series key)`.
#[derive(Debug, Default)]
pub struct Part {
    pub batch: Batch,
    pub new: Vec<(usize, Box<[u8]>)>,
}

/// The refs of one line protocol series' fields, by field key.
type FieldRefs = Vec<(Box<[u8]>, SeriesId)>;

/// A worker's own copy of the refs it has needed.
#[derive(Debug, Default)]
struct Local {
    keys: LocalKeys,
    /// Line protocol: series text → index into `fields`, so a line of ten fields costs
    /// one hash of its ~200-byte series text rather than ten of `series\0field`.
    influx_series: KeyMap<usize>,
    fields: Vec<FieldRefs>,
    /// Scratch: keys being built, and one line protocol line's samples.
    key: Vec<u8>,
    samples: Vec<(SeriesId, f64)>,
}

/// Parses chunks until `jobs` closes or `results` does.
pub fn work(ctx: &Ctx<'_>, jobs: &Receiver<Slot>, results: &Sender<Slot>, stop: &AtomicBool) {
    let mut local = Local::default();
    while let Ok(mut slot) = jobs.recv() {
        if !stop.load(Ordering::Relaxed) {
            parse_chunk(ctx, &mut local, &mut slot);
        }
        if results.send(slot).is_err() {
            return;
        }
    }
}

fn parse_chunk(ctx: &Ctx<'_>, local: &mut Local, slot: &mut Slot) {
    let Slot { seq, buf, len, out } = slot;
    reset(out);
    let mut sink = Sink { out, batch_max: ctx.batch_max.max(1) };
    let data = &buf[..*len];
    let seconds = ctx.format == Format::Openmetrics;
    let mut start = 0;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
        let line = &data[start..end];
        start = end + 1;
        let rel = sink.out.lines;
        sink.out.lines += 1;
        if fast_path(ctx, local, line, seconds, &mut sink) {
            continue;
        }
        match full_parse(ctx, line, *seq == 0 && rel == 0).and_then(|l| sink.add_line(l, &mut local.keys, ctx.known)) {
            Ok(true) => {}
            Ok(false) => {
                sink.out.stop = Some(Stop::Eof);
                return;
            }
            Err(e) => {
                sink.out.malformed_count += 1;
                if ctx.strict {
                    sink.out.stop = Some(Stop::Strict(rel, e));
                    return;
                }
                if sink.out.malformed.len() as u64 <= MALFORMED_REPORTED_MAX {
                    sink.out.malformed.push((rel, e));
                }
            }
        }
    }
}

fn reset(out: &mut ChunkOut) {
    for p in &mut out.parts[..out.parts_used] {
        p.batch.clear();
        p.new.clear();
    }
    out.parts_used = 0;
    out.lines = 0;
    out.malformed.clear();
    out.malformed_count = 0;
    out.stop = None;
}

/// Adds the line's samples and returns `true` if all its series are known and the
/// line is of the plain shape the format's fast path reads.
fn fast_path(ctx: &Ctx<'_>, local: &mut Local, line: &[u8], seconds: bool, sink: &mut Sink<'_>) -> bool {
    let Local { keys, influx_series, fields, key, samples } = local;
    let one = match ctx.format {
        Format::Openmetrics | Format::Prometheus => known_series::parse_with(line, seconds, |k| keys.get(ctx.known, k)),
        Format::Csv => csv::parse_known(line, ctx.series_table.is_some(), key, |k| keys.get(ctx.known, k)),
        Format::Influx => {
            let series = |text: &[u8]| {
                if let Some(&i) = influx_series.get(text) {
                    return Some(i);
                }
                let next = influx_series.len();
                influx_series.insert(text.into(), next);
                Some(next)
            };
            let field = |&i: &usize, text: &[u8], name: &[u8]| influx_field(fields, key, ctx.known, i, text, name);
            let Some(ts) = known_series::parse_influx_with(line, ctx.precision, series, field, samples) else {
                return false;
            };
            for &(id, v) in samples.iter() {
                sink.part().batch.add(id, ts, v);
            }
            return true;
        }
    };
    one.map(|(id, ts, v)| sink.part().batch.add(id, ts, v)).is_some()
}

/// The ref of field `name` of the line protocol series with index `i` (text `text`).
fn influx_field(
    fields: &mut Vec<FieldRefs>,
    key: &mut Vec<u8>,
    known: &Known,
    i: usize,
    text: &[u8],
    name: &[u8],
) -> Option<SeriesId> {
    if fields.len() <= i {
        fields.resize_with(i + 1, Vec::new);
    }
    if let Some((_, id)) = fields[i].iter().find(|(n, _)| **n == *name) {
        return Some(*id);
    }
    // The full parser's key for this field: the series text, NUL, the field key.
    key.clear();
    key.extend_from_slice(text);
    key.push(0);
    key.extend_from_slice(name);
    let id = known.get(key)?;
    fields[i].push((name.into(), id));
    Some(id)
}

fn full_parse(ctx: &Ctx<'_>, line: &[u8], first_line: bool) -> Result<Line, String> {
    let line = std::str::from_utf8(line).map_err(|_| "not valid UTF-8".to_string())?;
    let line = line.trim_end_matches(['\n', '\r']);
    match ctx.format {
        Format::Openmetrics => prometheus::parse_line(line, true),
        Format::Prometheus => prometheus::parse_line(line, false),
        Format::Influx => influx::parse_line(line, ctx.precision),
        Format::Csv => csv::parse_line(line, first_line, ctx.series_table),
    }
}

struct Sink<'a> {
    out: &'a mut ChunkOut,
    batch_max: usize,
}

impl Sink<'_> {
    /// The part to add to: the last one, or a fresh one once that holds `batch_max`.
    fn part(&mut self) -> &mut Part {
        let out = &mut *self.out;
        if out.parts_used == 0 || out.parts[out.parts_used - 1].batch.len() >= self.batch_max {
            if out.parts.len() == out.parts_used {
                out.parts.push(Part::default());
            }
            out.parts_used += 1;
        }
        &mut out.parts[out.parts_used - 1]
    }

    /// Adds a fully parsed line; `Ok(false)` at `# EOF`. A label set the engine would
    /// refuse makes the whole line malformed (with its position) before any of its
    /// samples is added.
    fn add_line(&mut self, line: Line, local: &mut LocalKeys, known: &Known) -> Result<bool, String> {
        let samples = match line {
            Line::Samples(s) => s,
            Line::Skip => return Ok(true),
            Line::Eof => return Ok(false),
        };
        let mut resolved = Vec::with_capacity(samples.len());
        for Parsed { key, labels, ts_ms, value } in samples {
            let series = match local.get(known, key.as_bytes()) {
                Some(id) => Ok(id),
                None => Err((Labels::new(labels).map_err(|e| e.to_string())?, key)),
            };
            resolved.push((series, ts_ms.unwrap_or_else(now_ms), value));
        }
        for (series, ts, v) in resolved {
            let part = self.part();
            match series {
                Ok(id) => part.batch.add(id, ts, v),
                Err((labels, key)) => {
                    part.new.push((part.batch.len(), key.into_bytes().into_boxed_slice()));
                    part.batch.add_labels(labels, ts, v);
                }
            }
        }
        Ok(true)
    }
}
