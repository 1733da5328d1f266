//! The head's WAL records (FORMAT.md, "WAL records"): a commit is one atomic
//! WAL batch of a `Series` record (the series it created, if any) and a
//! `Samples` record. [`decode`] is public for readers that follow the WAL
//! (`Head::wal_reader`).

use crate::Error;
use crate::labels::Labels;

const SERIES: u8 = 1;
const SAMPLES: u8 = 2;
const DELETE: u8 = 3;
/// The version written: 2 (samples with integer values as varints).
/// Version 1 records (every value as 8 raw bytes) are still read.
const VERSION: u8 = 2;
const V1: u8 = 1;

/// Integer-valued samples up to this magnitude are written as varints:
/// every integer below 2^53 is an exact `f64`.
const EXACT_INT: u64 = 1 << 53;

/// A decoded WAL record of the head.
#[derive(Debug, PartialEq)]
pub enum Record {
    /// Series created: `(id, labels)`.
    Series(Vec<(u64, Labels)>),
    /// Samples committed: `(series id, timestamp ms, value)`. A sample the
    /// head then refused (out of order, a duplicate) is in the WAL too.
    Samples(Vec<(u64, i64, f64)>),
    /// Samples of these series in `[mint, maxt]` are deleted.
    Delete(Vec<(u64, i64, i64)>),
}

pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn encode_series(series: &[(u64, Labels)], out: &mut Vec<u8>) {
    out.extend_from_slice(&[SERIES, VERSION]);
    put_uvarint(out, series.len() as u64);
    for (id, labels) in series {
        put_uvarint(out, *id);
        put_uvarint(out, labels.len() as u64);
        for (n, v) in labels.iter() {
            put_str(out, n);
            put_str(out, v);
        }
    }
}

/// Samples: ids and timestamps as deltas from the previous sample's (zigzag
/// varints); a value that is an integer of magnitude below 2^53 (counters,
/// 0/1 gauges: most scraped values) as `ivarint + 1`, any other as `0` and
/// its 8 raw bytes, so every NaN payload and `-0.0` survive. An integer
/// value takes 1–4 bytes instead of 8, which is most of a sample's WAL
/// bytes, and so of what commit copies and checksums.
pub(crate) fn encode_samples(samples: &[(u64, i64, f64)], out: &mut Vec<u8>) {
    out.extend_from_slice(&[SAMPLES, VERSION]);
    put_uvarint(out, samples.len() as u64);
    // A scraped sample takes 3–12 bytes (the most is 30): room for 12,
    // grown if needed; reserving the most would put a 10,000-sample
    // record's buffer past the allocator's mmap threshold.
    out.reserve(12 + samples.len() * 12);
    let (mut pid, mut pt) = (0i64, 0i64);
    for &(id, t, v) in samples {
        put_varint(out, (id as i64).wrapping_sub(pid));
        put_varint(out, t.wrapping_sub(pt));
        let i = v as i64;
        if (i as f64).to_bits() == v.to_bits() && i.unsigned_abs() < EXACT_INT {
            put_uvarint(out, zigzag(i) + 1);
        } else {
            out.push(0);
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        pid = id as i64;
        pt = t;
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Deletions: `uvarint n`, then `n` × (`uvarint id`, `ivarint mint`,
/// `ivarint maxt`).
pub(crate) fn encode_delete(ranges: &[(u64, i64, i64)], out: &mut Vec<u8>) {
    out.extend_from_slice(&[DELETE, VERSION]);
    put_uvarint(out, ranges.len() as u64);
    for &(id, mint, maxt) in ranges {
        put_uvarint(out, id);
        put_varint(out, mint);
        put_varint(out, maxt);
    }
}

pub(crate) struct Reader<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) at: usize,
    pub(crate) lsn: u64,
}

impl Reader<'_> {
    pub(crate) fn bad(&self, what: &'static str) -> Error {
        Error::BadRecord {
            lsn: self.lsn,
            offset: self.at,
            what,
        }
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, Error> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.b.get(self.at) else {
                return Err(self.bad("varint runs past the end"));
            };
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.bad("varint longer than 10 bytes"))
    }

    pub(crate) fn varint(&mut self) -> Result<i64, Error> {
        let u = self.uvarint()?;
        Ok((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    fn raw_f64(&mut self) -> Result<f64, Error> {
        let mut v = [0u8; 8];
        v.copy_from_slice(self.take(8)?);
        Ok(f64::from_bits(u64::from_le_bytes(v)))
    }

    /// A version-2 sample value (`encode_samples`).
    fn value(&mut self) -> Result<f64, Error> {
        match self.uvarint()? {
            0 => self.raw_f64(),
            u => {
                let i = ((u - 1) >> 1) as i64 ^ -(((u - 1) & 1) as i64);
                if i.unsigned_abs() >= EXACT_INT {
                    return Err(self.bad("integer value beyond 2^53"));
                }
                Ok(i as f64)
            }
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&[u8], Error> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| self.bad("field runs past the end"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    pub(crate) fn str(&mut self) -> Result<String, Error> {
        let n = usize::try_from(self.uvarint()?).map_err(|_| self.bad("string length"))?;
        let at = self.at;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::BadRecord {
            lsn: self.lsn,
            offset: at,
            what: "string is not UTF-8",
        })
    }

    /// A label set: `uvarint k`, then `k` length-prefixed name and value pairs.
    pub(crate) fn labels(&mut self) -> Result<Labels, Error> {
        let k = self.count(2)?;
        let mut pairs = Vec::with_capacity(k);
        for _ in 0..k {
            pairs.push((self.str()?, self.str()?));
        }
        let at = self.at;
        Labels::new(pairs).map_err(|_| Error::BadRecord {
            lsn: self.lsn,
            offset: at,
            what: "invalid label set",
        })
    }

    /// A count of items that each take at least `min` bytes: bounded by
    /// what is left, so a damaged count cannot ask for a huge allocation.
    pub(crate) fn count(&mut self, min: usize) -> Result<usize, Error> {
        let n = self.uvarint()?;
        let left = (self.b.len() - self.at) / min.max(1);
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= left)
            .ok_or_else(|| self.bad("count larger than the record"))
    }
}

/// Decodes the record stored at WAL position `lsn` (FORMAT.md, "WAL
/// records"); damage is `Error::BadRecord` naming `lsn` and the offset.
pub fn decode(b: &[u8], lsn: u64) -> Result<Record, Error> {
    let mut r = Reader { b, at: 0, lsn };
    let head = r.take(2)?;
    let (kind, version) = (head[0], head[1]);
    if version != VERSION && version != V1 {
        return Err(Error::BadRecord {
            lsn,
            offset: 1,
            what: "unknown record version",
        });
    }
    let rec = match kind {
        SERIES => {
            let n = r.count(2)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let id = r.uvarint()?;
                out.push((id, r.labels()?));
            }
            Record::Series(out)
        }
        SAMPLES => {
            let n = r.count(if version == V1 { 10 } else { 3 })?;
            let mut out = Vec::with_capacity(n);
            let (mut id, mut t) = (0i64, 0i64);
            for _ in 0..n {
                id = id.wrapping_add(r.varint()?);
                t = t.wrapping_add(r.varint()?);
                let v = if version == V1 {
                    r.raw_f64()?
                } else {
                    r.value()?
                };
                out.push((id as u64, t, v));
            }
            Record::Samples(out)
        }
        DELETE => {
            let n = r.count(3)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push((r.uvarint()?, r.varint()?, r.varint()?));
            }
            Record::Delete(out)
        }
        _ => {
            return Err(Error::BadRecord {
                lsn,
                offset: 0,
                what: "unknown record type",
            });
        }
    };
    if r.at != b.len() {
        return Err(r.bad("bytes after the record"));
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let series = vec![(7, Labels::new([("__name__", "up"), ("job", "é")]).unwrap())];
        let samples = vec![
            (7, 1000, 1.5),
            (3, -5, f64::from_bits(0x7ff0_0000_0000_0002)),
            (u64::MAX, i64::MIN, -0.0),
        ];
        let mut a = Vec::new();
        encode_series(&series, &mut a);
        assert_eq!(decode(&a, 1).unwrap(), Record::Series(series));
        let mut b = Vec::new();
        encode_samples(&samples, &mut b);
        let Record::Samples(back) = decode(&b, 2).unwrap() else {
            panic!()
        };
        assert_eq!(back.len(), 3);
        for (x, y) in back.iter().zip(&samples) {
            assert_eq!((x.0, x.1, x.2.to_bits()), (y.0, y.1, y.2.to_bits()));
        }
        for cut in 0..b.len() {
            assert!(decode(&b[..cut], 2).is_err(), "truncated at {cut}");
        }
        assert!(decode(&[9, 1], 3).is_err());
        assert!(decode(&[2, 3, 0], 3).is_err(), "unknown version");
        assert!(
            decode(&[2, 1, 0xff, 0xff, 0xff, 0x7f], 3).is_err(),
            "huge count"
        );
    }
}

#[cfg(test)]
mod value_tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(samples: &[(u64, i64, f64)]) -> Vec<(u64, i64, u64)> {
        let mut b = Vec::new();
        encode_samples(samples, &mut b);
        let Record::Samples(back) = decode(&b, 1).unwrap() else {
            panic!("not a samples record")
        };
        back.into_iter()
            .map(|(i, t, v)| (i, t, v.to_bits()))
            .collect()
    }

    fn bits(samples: &[(u64, i64, f64)]) -> Vec<(u64, i64, u64)> {
        samples
            .iter()
            .map(|&(i, t, v)| (i, t, v.to_bits()))
            .collect()
    }

    #[test]
    fn integers_are_short_and_other_values_exact() {
        let edge = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            2_999_000.0,
            (EXACT_INT - 1) as f64,
            -((EXACT_INT - 1) as f64),
            EXACT_INT as f64,
            1e300,
            0.5,
            f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0002),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE / 2.0,
            i64::MIN as f64,
        ];
        let samples: Vec<_> = edge
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as u64 + 1, 1000 * i as i64, v))
            .collect();
        assert_eq!(round_trip(&samples), bits(&samples));
        // An integer sample in a run of consecutive ids and equal times:
        // two one-byte deltas and a 4-byte value.
        let mut b = Vec::new();
        encode_samples(&[(1, 5, 7.0), (2, 5, 2_999_000.0)], &mut b);
        assert_eq!(b.len(), 2 + 1 + (1 + 1 + 1) + (1 + 1 + 4));
    }

    #[test]
    fn version_1_records_are_still_read() {
        // type 2, version 1, one sample: id +3, t +2 (zigzag 4), 1.5 raw.
        let mut b = vec![SAMPLES, V1, 1, 6, 4];
        b.extend_from_slice(&1.5f64.to_bits().to_le_bytes());
        assert_eq!(decode(&b, 9).unwrap(), Record::Samples(vec![(3, 2, 1.5)]));
    }

    #[test]
    fn damaged_integer_value_is_an_error() {
        // A value varint of 2^54 + 1 decodes to an integer beyond 2^53.
        let mut b = vec![SAMPLES, VERSION, 1, 2, 2];
        put_uvarint(&mut b, (1 << 54) + 1);
        assert!(decode(&b, 1).is_err());
    }

    proptest! {
        #[test]
        fn samples_round_trip_bit_for_bit(
            samples in proptest::collection::vec(
                (any::<u64>(), any::<i64>(), prop_oneof![
                    any::<u64>().prop_map(f64::from_bits),
                    any::<i32>().prop_map(f64::from),
                    (-(1i64 << 53)..(1i64 << 53)).prop_map(|i| i as f64),
                ]),
                0..50,
            )
        ) {
            prop_assert_eq!(round_trip(&samples), bits(&samples));
            let mut b = Vec::new();
            encode_samples(&samples, &mut b);
            for cut in 0..b.len() {
                prop_assert!(decode(&b[..cut], 1).is_err());
            }
        }
    }
}
