//! Shared timestamp sections in a block's `chunks` file (version 2).
//!
//! Every series of a scrape target is stored with the same timestamps (the
//! scrape's), and chunks are cut at the same samples, so the timestamp
//! sections of their sealed chunks are equal byte for byte. On ms-jittered
//! scrapes those sections are about half of a sealed chunk (FORMAT.md,
//! "Encoding 0x02"). The block writer keeps the first chunk with a given
//! timestamp section as it is and writes every later one as a reference to
//! it plus its own values: the block-only form `0x03` (FORMAT.md,
//! "`chunks`"). The reader puts the sealed chunk back together before
//! decoding it, so the chunk codec never sees `0x03`.

use std::collections::HashMap;

use crate::chunk::ENC_SEALED;
use crate::head::record::put_uvarint;

/// The block-only encoding byte: a sealed chunk whose timestamp section is
/// the one of an earlier chunk in the same file.
pub(crate) const ENC_SHARED_TS: u8 = 0x03;

/// A sealed (`0x02`) chunk cut into its parts.
pub(crate) struct SealedParts<'a> {
    /// The sample count, as written (a uvarint).
    pub(crate) n: &'a [u8],
    /// The layouts byte: bits 0–3 timestamps, 4–7 values.
    pub(crate) layouts: u8,
    /// The timestamp section.
    pub(crate) ts: &'a [u8],
    /// The value section, to the end of the chunk.
    pub(crate) values: &'a [u8],
}

/// Reads a uvarint at `*at`, moving past it; `None` when it runs past the
/// end or is longer than ten bytes.
pub(crate) fn uvarint(b: &[u8], at: &mut usize) -> Option<u64> {
    let (mut v, mut shift) = (0u64, 0u32);
    loop {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// The parts of a sealed chunk, or `None` when `b` is not one or its
/// header does not hold together (the codec reports what is wrong when it
/// decodes it).
pub(crate) fn split_sealed(b: &[u8]) -> Option<SealedParts<'_>> {
    if b.first() != Some(&ENC_SEALED) {
        return None;
    }
    let mut at = 1;
    uvarint(b, &mut at)?;
    let n = &b[1..at];
    let layouts = *b.get(at)?;
    at += 1;
    let ts_len = usize::try_from(uvarint(b, &mut at)?).ok()?;
    let end = at.checked_add(ts_len).filter(|&e| e <= b.len())?;
    Some(SealedParts {
        n,
        layouts,
        ts: &b[at..end],
        values: &b[end..],
    })
}

/// The writer's side: remembers where each distinct timestamp section was
/// first written.
#[derive(Default)]
pub(crate) struct Dedup {
    /// Sample count bytes, timestamp layout and section → offset of the
    /// frame that holds it.
    first: HashMap<Vec<u8>, u64>,
    key: Vec<u8>,
}

impl Dedup {
    /// The bytes to frame at `offset` for the chunk `bytes`: `None` to
    /// write it as it is (and remember its timestamps when it is sealed),
    /// or the `0x03` form when an earlier frame has the same timestamps
    /// and the reference is shorter than the section it replaces.
    pub(crate) fn rewrite(&mut self, bytes: &[u8], offset: u64) -> Option<Vec<u8>> {
        let p = split_sealed(bytes)?;
        self.key.clear();
        self.key.extend_from_slice(p.n);
        self.key.push(p.layouts & 0x0f);
        self.key.extend_from_slice(p.ts);
        let Some(&first) = self.first.get(&self.key) else {
            self.first.insert(self.key.clone(), offset);
            return None;
        };
        let mut out = Vec::with_capacity(12 + p.values.len());
        out.push(ENC_SHARED_TS);
        put_uvarint(&mut out, first);
        out.push(p.layouts);
        out.extend_from_slice(p.values);
        // What the sealed form spends on the section: its length and bytes.
        let mut len = Vec::new();
        put_uvarint(&mut len, p.ts.len() as u64);
        let replaced = p.n.len() + len.len() + p.ts.len();
        let added = out.len() - 2 - p.values.len();
        (added < replaced).then_some(out)
    }
}

/// The `0x03` chunk `b` framed at `offset`: the offset of the frame it
/// takes its timestamps from (earlier in the file) and the rest.
pub(crate) fn parse_shared(b: &[u8], offset: u64) -> Result<(u64, u8, &[u8]), &'static str> {
    let mut at = 1;
    let first = uvarint(b, &mut at).ok_or("shared-timestamp reference")?;
    if first >= offset {
        return Err("shared-timestamp reference does not point before the chunk");
    }
    let layouts = *b
        .get(at)
        .ok_or("shared-timestamp chunk ends before its layouts")?;
    Ok((first, layouts, &b[at + 1..]))
}

/// Puts the sealed chunk back together from the referenced chunk's count
/// and timestamps and this one's layouts and values, into `out`.
pub(crate) fn join(
    base: &SealedParts<'_>,
    layouts: u8,
    values: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    if base.layouts & 0x0f != layouts & 0x0f {
        return Err(
            "shared-timestamp chunk's timestamp layout differs from the referenced chunk's",
        );
    }
    out.clear();
    out.push(ENC_SEALED);
    out.extend_from_slice(base.n);
    out.push(layouts);
    put_uvarint(out, base.ts.len() as u64);
    out.extend_from_slice(base.ts);
    out.extend_from_slice(values);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{Chunk, Encoder};

    fn sealed(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut out = Vec::new();
        Encoder::new().encode(samples, &mut out).unwrap();
        out
    }

    #[test]
    fn a_repeated_timestamp_section_becomes_a_reference_that_joins_back() {
        let ts: Vec<i64> = (0..240)
            .map(|i| 1_000_000 + i * 15_000 + (i * 7) % 5)
            .collect();
        let a: Vec<(i64, f64)> = ts.iter().map(|&t| (t, (t % 97) as f64)).collect();
        let b: Vec<(i64, f64)> = ts
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, i as f64 * 0.5))
            .collect();
        let (sa, sb) = (sealed(&a), sealed(&b));
        let mut d = Dedup::default();
        assert!(d.rewrite(&sa, 8).is_none(), "the first is kept as it is");
        let shared = d.rewrite(&sb, 500).expect("the second refers to the first");
        assert!(shared.len() < sb.len(), "{} !< {}", shared.len(), sb.len());
        let (first, layouts, values) = parse_shared(&shared, 500).unwrap();
        assert_eq!(first, 8);
        let mut back = Vec::new();
        join(&split_sealed(&sa).unwrap(), layouts, values, &mut back).unwrap();
        assert_eq!(back, sb);
        let got: Vec<(i64, f64)> = Chunk::new(&back)
            .unwrap()
            .iter()
            .map(|s| s.unwrap())
            .collect();
        assert_eq!(got, b);
    }

    #[test]
    fn different_timestamps_or_counts_are_not_shared() {
        let a: Vec<(i64, f64)> = (0..100).map(|i| (i * 15_000 + i % 3, 1.0)).collect();
        let b: Vec<(i64, f64)> = (0..100).map(|i| (i * 15_000 + i % 4, 1.0)).collect();
        let c: Vec<(i64, f64)> = (0..99).map(|i| (i * 15_000 + i % 3, 1.0)).collect();
        let mut d = Dedup::default();
        assert!(d.rewrite(&sealed(&a), 8).is_none());
        assert!(d.rewrite(&sealed(&b), 100).is_none());
        assert!(d.rewrite(&sealed(&c), 200).is_none());
        assert!(d.rewrite(&sealed(&a), 300).is_some());
    }

    #[test]
    fn references_forward_or_to_itself_are_refused() {
        let mut b = vec![ENC_SHARED_TS];
        put_uvarint(&mut b, 40);
        b.push(0x20);
        assert!(parse_shared(&b, 40).is_err());
        assert!(parse_shared(&b, 41).is_ok());
        assert!(parse_shared(&[ENC_SHARED_TS], 41).is_err());
        assert!(parse_shared(&[ENC_SHARED_TS, 1], 41).is_err());
    }
}
