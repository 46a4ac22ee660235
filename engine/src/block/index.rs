//! `index`: a block's symbol table, series (id + labels) and chunk references.
//! Layout in `block/FORMAT.md`. Read whole at open; chunk data stays in the mmap.

use crate::error::{Error, Result};
use crate::labels::Labels;
use crate::types::SeriesId;
use crate::varint::{put_ivarint, put_uvarint, Reader};
use std::collections::BTreeMap;
use std::path::Path;

pub const INDEX_MAGIC: [u8; 4] = *b"CHBI";
pub const INDEX_VERSION: u32 = 1;

/// Where one chunk lives and what it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    pub min_t: i64,
    pub max_t: i64,
    /// Offset of the chunk's frame in the `chunks` file.
    pub offset: u64,
    pub samples: u32,
}

/// One series of a block: its id and the range of its chunks in `Index::chunks`.
#[derive(Clone, Copy, Debug)]
pub struct SeriesEntry {
    pub id: SeriesId,
    pub chunks_from: u32,
    pub chunks_to: u32,
}

#[derive(Debug, Default)]
pub struct Index {
    pub series: Vec<SeriesEntry>,
    pub chunks: Vec<ChunkRef>,
}

impl Index {
    pub fn chunks_of(&self, id: SeriesId) -> &[ChunkRef] {
        // Series ids in a block are ascending and usually dense: try the position the
        // id would have without gaps before searching.
        let guess = self.series.first().and_then(|f| usize::try_from(id.0.checked_sub(f.id.0)?).ok());
        let at = match guess.and_then(|g| self.series.get(g)) {
            Some(e) if e.id == id => guess,
            _ => self.series.binary_search_by_key(&id, |e| e.id).ok(),
        };
        match at.and_then(|i| self.series.get(i)) {
            Some(e) => self.chunks.get(e.chunks_from as usize..e.chunks_to as usize).unwrap_or(&[]),
            None => &[],
        }
    }
}

/// Encodes the index; `series` must be in ascending id order.
pub fn encode(series: &[(SeriesId, &Labels, &[ChunkRef])]) -> Vec<u8> {
    let mut symbols: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, labels, _) in series {
        for (n, v) in labels.iter() {
            symbols.insert(n, 0);
            symbols.insert(v, 0);
        }
    }
    for (i, v) in symbols.values_mut().enumerate() {
        *v = i as u64;
    }
    let mut b = Vec::new();
    b.extend_from_slice(&INDEX_MAGIC);
    b.extend_from_slice(&INDEX_VERSION.to_le_bytes());
    put_uvarint(&mut b, symbols.len() as u64);
    for s in symbols.keys() {
        put_uvarint(&mut b, s.len() as u64);
        b.extend_from_slice(s.as_bytes());
    }
    put_uvarint(&mut b, series.len() as u64);
    let mut prev_id = 0u64;
    let mut prev_offset = 0u64;
    let mut prev_labels: Vec<(&str, &str)> = Vec::new();
    let mut prev_min_t = 0i64;
    for (id, labels, chunks) in series {
        debug_assert!(id.0 > prev_id, "series must be ascending");
        put_uvarint(&mut b, id.0.wrapping_sub(prev_id));
        prev_id = id.0;
        // Neighbouring series mostly share labels (a host's metrics): a pair equal to the
        // previous series' pair at the same position costs one byte.
        put_uvarint(&mut b, labels.len() as u64);
        for (i, (n, v)) in labels.iter().enumerate() {
            if prev_labels.get(i) == Some(&(n, v)) {
                put_uvarint(&mut b, 0);
            } else {
                put_uvarint(&mut b, symbols.get(n).copied().unwrap_or(0) + 1);
                put_uvarint(&mut b, symbols.get(v).copied().unwrap_or(0));
            }
        }
        prev_labels.clear();
        prev_labels.extend(labels.iter());
        put_uvarint(&mut b, chunks.len() as u64);
        for c in *chunks {
            put_ivarint(&mut b, c.min_t.wrapping_sub(prev_min_t));
            prev_min_t = c.min_t;
            put_uvarint(&mut b, c.max_t.wrapping_sub(c.min_t) as u64);
            put_uvarint(&mut b, c.offset.wrapping_sub(prev_offset));
            prev_offset = c.offset;
            put_uvarint(&mut b, u64::from(c.samples));
        }
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes and checks an index; calls `on_series` with each series' labels.
pub fn decode(bytes: &[u8], path: &Path, mut on_series: impl FnMut(SeriesId, Labels)) -> Result<Index> {
    let corrupt = |off: usize, d: &str| Error::corrupt(path, off as u64, d.to_string());
    if bytes.len() < 12 {
        return Err(corrupt(0, "index shorter than header and trailer"));
    }
    let (body, crc_bytes) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(Error::corrupt(
            path,
            body.len() as u64,
            format!("index crc mismatch: computed {computed:#010x}, stored {stored:#010x}"),
        ));
    }
    if body[0..4] != INDEX_MAGIC {
        return Err(corrupt(0, "bad index magic"));
    }
    if body[4..8] != INDEX_VERSION.to_le_bytes() {
        return Err(corrupt(4, "unsupported index version"));
    }
    let mut r = Reader::new(&body[8..]);
    let at = |r: &Reader<'_>| r.pos() + 8;
    let nsym = r.len_prefix().ok_or_else(|| corrupt(at(&r), "symbol count"))?;
    let mut symbols = Vec::with_capacity(nsym);
    for _ in 0..nsym {
        symbols.push(r.str().ok_or_else(|| corrupt(at(&r), "symbol"))?);
    }
    let sym = |r: &mut Reader<'_>| -> Option<&str> {
        let i = usize::try_from(r.uvarint()?).ok()?;
        symbols.get(i).copied()
    };
    let nseries = r.len_prefix().ok_or_else(|| corrupt(at(&r), "series count"))?;
    let mut index = Index { series: Vec::with_capacity(nseries), chunks: Vec::new() };
    let mut id = 0u64;
    let mut offset = 0u64;
    let mut prev_pairs: Vec<(&str, &str)> = Vec::new();
    let mut prev_min_t = 0i64;
    for _ in 0..nseries {
        let delta = r.uvarint().filter(|d| *d > 0).ok_or_else(|| corrupt(at(&r), "series id"))?;
        id = id.checked_add(delta).ok_or_else(|| corrupt(at(&r), "series id overflow"))?;
        let nl = r.len_prefix().ok_or_else(|| corrupt(at(&r), "label count"))?;
        let mut pairs = Vec::with_capacity(nl);
        for i in 0..nl {
            let name_ref = r.uvarint().ok_or_else(|| corrupt(at(&r), "label name symbol"))?;
            if name_ref == 0 {
                let same = prev_pairs.get(i).copied().ok_or_else(|| corrupt(at(&r), "label repeats a missing pair"))?;
                pairs.push(same);
                continue;
            }
            let n = usize::try_from(name_ref - 1)
                .ok()
                .and_then(|i| symbols.get(i).copied())
                .ok_or_else(|| corrupt(at(&r), "label name symbol"))?;
            let v = sym(&mut r).ok_or_else(|| corrupt(at(&r), "label value symbol"))?;
            pairs.push((n, v));
        }
        let labels = Labels::new(pairs.iter().copied()).map_err(|_| corrupt(at(&r), "invalid label set"))?;
        prev_pairs = pairs;
        let nc = r.len_prefix().ok_or_else(|| corrupt(at(&r), "chunk count"))?;
        let from = index.chunks.len() as u32;
        for _ in 0..nc {
            let min_t = prev_min_t.wrapping_add(r.ivarint().ok_or_else(|| corrupt(at(&r), "chunk min_t"))?);
            prev_min_t = min_t;
            let span = r.uvarint().ok_or_else(|| corrupt(at(&r), "chunk span"))?;
            let max_t = min_t.checked_add_unsigned(span).ok_or_else(|| corrupt(at(&r), "chunk max_t"))?;
            offset = offset.wrapping_add(r.uvarint().ok_or_else(|| corrupt(at(&r), "chunk offset"))?);
            let samples =
                r.uvarint().and_then(|s| u32::try_from(s).ok()).ok_or_else(|| corrupt(at(&r), "chunk samples"))?;
            index.chunks.push(ChunkRef { min_t, max_t, offset, samples });
        }
        index.series.push(SeriesEntry { id: SeriesId(id), chunks_from: from, chunks_to: index.chunks.len() as u32 });
        on_series(SeriesId(id), labels);
    }
    if r.remaining() != 0 {
        return Err(corrupt(at(&r), "trailing bytes in index"));
    }
    Ok(index)
}
