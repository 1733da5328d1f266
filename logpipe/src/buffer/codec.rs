//! The bytes of a chunk in the disk buffer: one WAL record per chunk. The
//! layout is in `FORMAT.md` ("Disk buffer records"). Decoding checks every
//! length against the bytes left and never panics; the WAL's CRC already
//! guards the bytes, so damage here means a bug or a foreign file.

use crate::record::{Fields, Record, Text, Value};

/// Version byte at the start of every chunk record.
pub const CHUNK_VERSION: u8 = 1;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const STR: u8 = 5;
const ARRAY: u8 = 6;
const MAP: u8 = 7;

/// Deepest nesting decoded (a crafted record cannot overflow the stack).
const MAX_DEPTH: u32 = 64;

/// Appends the encoding of `records` to `out`.
pub fn encode(records: &[Record], out: &mut Vec<u8>) {
    out.push(CHUNK_VERSION);
    put_u32(out, records.len() as u32);
    for r in records {
        put_str(out, &r.tag);
        out.extend_from_slice(&r.time_ns.to_le_bytes());
        put_fields(out, &r.fields);
    }
}

fn put_u32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

fn put_fields(out: &mut Vec<u8>, f: &Fields) {
    put_u32(out, f.len() as u32);
    for (k, v) in f.iter() {
        put_str(out, k);
        put_value(out, v);
    }
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Int(i) => {
            out.push(INT);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(x) => {
            out.push(FLOAT);
            out.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        Value::Str(s) => {
            out.push(STR);
            put_str(out, s);
        }
        Value::Array(items) => {
            out.push(ARRAY);
            put_u32(out, items.len() as u32);
            for i in items {
                put_value(out, i);
            }
        }
        Value::Map(f) => {
            out.push(MAP);
            put_fields(out, f);
        }
    }
}

/// Decodes a chunk record; on failure, what was wrong.
pub fn decode(buf: &[u8]) -> Result<Vec<Record>, String> {
    let mut r = Reader { buf, pos: 0 };
    let version = r.u8()?;
    if version != CHUNK_VERSION {
        return Err(format!("unsupported chunk version {version}"));
    }
    let n = r.u32()? as usize;
    // Each record takes at least 16 bytes: a bound that keeps a damaged count
    // from reserving memory.
    let mut out = Vec::with_capacity(n.min(buf.len() / 16));
    for _ in 0..n {
        let tag = r.string()?;
        let time_ns = i64::from_le_bytes(r.array()?);
        let fields = r.fields(0)?;
        out.push(Record {
            tag,
            time_ns,
            fields,
            origin: None,
        });
    }
    if r.pos != buf.len() {
        return Err(format!("{} bytes after the last record", buf.len() - r.pos));
    }
    Ok(out)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => Err(format!("truncated at byte {}", self.pos)),
        }
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<Text, String> {
        let n = self.u32()? as usize;
        let at = self.pos;
        let s = self.take(n)?;
        std::str::from_utf8(s)
            .map(Text::from)
            .map_err(|_| format!("invalid UTF-8 at byte {at}"))
    }

    fn fields(&mut self, depth: u32) -> Result<Fields, String> {
        let n = self.u32()? as usize;
        let mut f = Fields::new();
        for _ in 0..n {
            let k = self.string()?;
            let v = self.value(depth)?;
            f.push(k, v);
        }
        Ok(f)
    }

    fn value(&mut self, depth: u32) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "nesting deeper than {MAX_DEPTH} at byte {}",
                self.pos
            ));
        }
        let at = self.pos;
        Ok(match self.u8()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            INT => Value::Int(i64::from_le_bytes(self.array()?)),
            FLOAT => Value::Float(f64::from_bits(u64::from_le_bytes(self.array()?))),
            STR => Value::Str(self.string()?),
            ARRAY => {
                let n = self.u32()? as usize;
                let mut items = Vec::with_capacity(n.min(self.buf.len() - self.pos));
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            MAP => Value::Map(self.fields(depth + 1)?),
            t => return Err(format!("unknown value type {t} at byte {at}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>()
                .prop_filter("NaN is not equal to itself", |x| !x.is_nan())
                .prop_map(Value::Float),
            ".{0,40}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(("[a-z]{1,5}", inner), 0..4)
                    .prop_map(|kv| Value::Map(kv.into_iter().collect())),
            ]
        })
    }

    fn record() -> impl Strategy<Value = Record> {
        (
            "[a-z.]{0,12}",
            any::<i64>(),
            proptest::collection::vec(("[a-z_]{1,6}", value()), 0..5),
        )
            .prop_map(|(tag, time_ns, kv)| Record {
                tag: tag.into(),
                time_ns,
                fields: kv.into_iter().collect(),
                origin: None,
            })
    }

    proptest! {
        #[test]
        fn round_trip(records in proptest::collection::vec(record(), 0..8)) {
            let mut buf = Vec::new();
            encode(&records, &mut buf);
            prop_assert_eq!(decode(&buf).unwrap(), records);
        }

        #[test]
        fn truncation_and_garbage_are_errors(records in proptest::collection::vec(record(), 1..4), cut in 0usize..1000, junk in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = Vec::new();
            encode(&records, &mut buf);
            let cut = cut % buf.len();
            prop_assert!(decode(&buf[..cut]).is_err());
            let _ = decode(&junk);
        }
    }
}
