//! Head checkpoints (FORMAT.md, "Head snapshot"): every series with its
//! sealed chunks as they are, its open chunk's samples and its out-of-order
//! samples, saved through the WAL's atomic snapshot so a restart loads them
//! instead of replaying the records they cover.

use super::State;
use super::record::{Reader, put_str, put_uvarint, put_varint};
use super::series::MemSeries;
use crate::Error;
use crate::chunk::{Chunk, ChunkPolicy};

const MAGIC: &[u8; 4] = b"VHSN";
const VERSION: u8 = 1;

pub(crate) fn encode(st: &State, out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    put_uvarint(out, st.next_id);
    put_uvarint(out, st.series.len() as u64);
    let mut samples = Vec::new();
    for (id, s) in st.series.iter() {
        let labels = st.index.labels(id).unwrap_or_default();
        put_uvarint(out, id);
        put_uvarint(out, labels.len() as u64);
        for (n, v) in labels.iter() {
            put_str(out, n);
            put_str(out, v);
        }
        put_uvarint(out, s.sealed.len() as u64);
        for c in s.sealed.iter() {
            put_varint(out, c.mint);
            put_varint(out, c.maxt);
            put_uvarint(out, c.bytes.len() as u64);
            out.extend_from_slice(c.bytes);
        }
        samples.clear();
        samples.extend(s.open.samples());
        samples.extend(s.ooo_iter());
        put_uvarint(out, samples.len() as u64);
        put_uvarint(out, s.ooo_len() as u64);
        for &(t, v) in &samples {
            put_varint(out, t);
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }
}

/// Rebuilds the head's state from snapshot bytes (taken at WAL position
/// `lsn`, which errors name).
pub(crate) fn decode(b: &[u8], lsn: u64, policy: &ChunkPolicy) -> Result<State, Error> {
    let mut r = Reader { b, at: 0, lsn };
    if r.take(4)? != MAGIC {
        return Err(Error::BadRecord {
            lsn,
            offset: 0,
            what: "snapshot magic",
        });
    }
    if r.take(1)?[0] != VERSION {
        return Err(Error::BadRecord {
            lsn,
            offset: 4,
            what: "unknown snapshot version",
        });
    }
    let mut st = State::new();
    let next_id = r.uvarint()?;
    let n = r.count(3)?;
    for _ in 0..n {
        let id = r.uvarint()?;
        let labels = r.labels()?;
        if !st.create(id, labels) {
            return Err(r.bad("series id far beyond the ids in use"));
        }
        let mut s = MemSeries::default();
        let chunks = r.count(3)?;
        for _ in 0..chunks {
            let mint = r.varint()?;
            let maxt = r.varint()?;
            let len = usize::try_from(r.uvarint()?).map_err(|_| r.bad("chunk length"))?;
            let at = r.at;
            let bytes = r.take(len)?;
            Chunk::new(bytes).map_err(|_| Error::BadRecord {
                lsn,
                offset: at,
                what: "damaged chunk",
            })?;
            s.sealed.push(mint, maxt, bytes);
        }
        let total = r.count(9)?;
        let ooo = r.uvarint()?;
        let in_order = usize::try_from(ooo)
            .ok()
            .and_then(|o| total.checked_sub(o))
            .ok_or_else(|| r.bad("more late samples than samples"))?;
        for i in 0..total {
            let t = r.varint()?;
            let mut v = [0u8; 8];
            v.copy_from_slice(r.take(8)?);
            let v = f64::from_bits(u64::from_le_bytes(v));
            if i < in_order {
                s.open
                    .append(t, v)
                    .map_err(|_| r.bad("open chunk samples out of order"))?;
            } else {
                s.insert_ooo(t, v);
            }
        }
        // A chunk as full as the policy allows is cut at the next append.
        let _ = policy;
        if let Some(slot) = st.series.get_mut(id) {
            *slot = s;
        }
    }
    st.next_id = st.next_id.max(next_id);
    if r.at != b.len() {
        return Err(r.bad("bytes after the snapshot"));
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;

    fn sample_state() -> State {
        let mut st = State::new();
        for id in 1..4u64 {
            let labels =
                Labels::new([("__name__", "m".to_owned()), ("i", id.to_string())]).unwrap();
            assert!(st.create(id, labels));
            let s = st.series.get_mut(id).unwrap();
            for t in 0..300 {
                s.append(t * 1000, t as f64, &ChunkPolicy::default(), 5000)
                    .unwrap();
            }
            s.append(
                299_000 - 500,
                f64::from_bits(0x7ff0_0000_0000_0002),
                &ChunkPolicy::default(),
                5000,
            )
            .unwrap();
        }
        st
    }

    #[test]
    fn round_trip_truncations_and_garbage() {
        let st = sample_state();
        let mut b = Vec::new();
        encode(&st, &mut b);
        let back = decode(&b, 7, &ChunkPolicy::default()).unwrap();
        let mut again = Vec::new();
        encode(&back, &mut again);
        assert_eq!(b, again, "decode(encode(x)) encodes to the same bytes");
        for cut in 0..b.len() {
            assert!(
                decode(&b[..cut], 7, &ChunkPolicy::default()).is_err(),
                "cut at {cut}"
            );
        }
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for i in 0..2000 {
            let mut junk = b.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x as usize) % junk.len();
                junk[at] ^= (x >> 32) as u8 | 1;
            }
            // Must not panic; may decode if the flip hit a value byte.
            let _ = decode(&junk, i, &ChunkPolicy::default());
        }
    }
}
