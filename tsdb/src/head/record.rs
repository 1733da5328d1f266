//! The head's WAL records (FORMAT.md, "WAL records"): a commit is one atomic
//! WAL batch of a `Series` record (the series it created, if any) and a
//! `Samples` record. [`decode`] is public for readers that follow the WAL
//! (`Head::wal_reader`).

use crate::Error;
use crate::labels::Labels;

const SERIES: u8 = 1;
const SAMPLES: u8 = 2;
const DELETE: u8 = 3;
const VERSION: u8 = 1;

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
/// varints), values as their 8 raw bytes, so every NaN payload survives.
pub(crate) fn encode_samples(samples: &[(u64, i64, f64)], out: &mut Vec<u8>) {
    out.extend_from_slice(&[SAMPLES, VERSION]);
    put_uvarint(out, samples.len() as u64);
    let (mut pid, mut pt) = (0i64, 0i64);
    for &(id, t, v) in samples {
        put_varint(out, (id as i64).wrapping_sub(pid));
        put_varint(out, t.wrapping_sub(pt));
        out.extend_from_slice(&v.to_bits().to_le_bytes());
        pid = id as i64;
        pt = t;
    }
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
    if version != VERSION {
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
            let n = r.count(10)?;
            let mut out = Vec::with_capacity(n);
            let (mut id, mut t) = (0i64, 0i64);
            for _ in 0..n {
                id = id.wrapping_add(r.varint()?);
                t = t.wrapping_add(r.varint()?);
                let mut v = [0u8; 8];
                v.copy_from_slice(r.take(8)?);
                out.push((id as u64, t, f64::from_bits(u64::from_le_bytes(v))));
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
        assert!(
            decode(&[2, 1, 0xff, 0xff, 0xff, 0x7f], 3).is_err(),
            "huge count"
        );
    }
}
