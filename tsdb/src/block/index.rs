//! The block's `index` file, version 2 (FORMAT.md, "index"): symbols, series
//! (labels and chunk references), postings (`name=value` → sorted series
//! numbers) and fixed-width tables to find each of them by binary search in
//! the mapped file, so opening a block reads a 28-byte table of contents
//! and checks one CRC instead of rebuilding an inverted index.

use std::cmp::Ordering;
use std::ops::Range;
use std::path::Path;

use crate::Error;
use crate::head::record::{put_str, put_uvarint, put_varint};
use crate::index::Matcher;
use crate::labels::Labels;

use super::mapped::Mapped;

pub(crate) const INDEX_MAGIC: &[u8; 4] = b"VTSI";
/// Version 1 stored no postings; it is refused with a clear error.
pub(crate) const INDEX_VERSION: u8 = 2;
/// Header: magic, version, three zero bytes.
const HEADER: usize = 8;
/// Table of contents: six `u32` then the CRC-32.
const TOC: usize = 28;
/// One postings-table entry: name symbol, value symbol, list offset.
const PAIR: usize = 12;

/// Where a series' chunk is and what it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkMeta {
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
    /// Offset of the chunk's frame in `chunks`.
    pub(crate) offset: u64,
}

/// Encodes the index of `entries` (sorted by labels, each once). Fails when
/// the file would pass 4 GiB, the reach of its 32-bit offsets.
pub(crate) fn encode(entries: &[(Labels, Vec<ChunkMeta>)], path: &Path) -> Result<Vec<u8>, Error> {
    let mut syms: Vec<&str> = entries
        .iter()
        .flat_map(|(l, _)| l.iter().flat_map(|(n, v)| [n, v]))
        .collect();
    syms.sort_unstable();
    syms.dedup();
    let sym = |s: &str| syms.binary_search(&s).unwrap_or(0) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(INDEX_MAGIC);
    out.extend_from_slice(&[INDEX_VERSION, 0, 0, 0]);
    let mut sym_offsets = Vec::with_capacity(syms.len());
    for s in &syms {
        sym_offsets.push(out.len());
        put_str(&mut out, s);
    }
    let mut series_offsets = Vec::with_capacity(entries.len());
    // (name symbol, value symbol) → series numbers, filled in series order
    // so every list comes out sorted.
    let mut pairs: Vec<((u32, u32), u32)> = Vec::new();
    for (i, (labels, metas)) in entries.iter().enumerate() {
        series_offsets.push(out.len());
        put_uvarint(&mut out, labels.len() as u64);
        for (n, v) in labels.iter() {
            let (n, v) = (sym(n), sym(v));
            put_uvarint(&mut out, u64::from(n));
            put_uvarint(&mut out, u64::from(v));
            pairs.push(((n, v), i as u32));
        }
        put_uvarint(&mut out, metas.len() as u64);
        let mut prev = 0i64;
        for m in metas {
            put_varint(&mut out, m.mint.wrapping_sub(prev));
            put_varint(&mut out, m.maxt.wrapping_sub(m.mint));
            put_uvarint(&mut out, m.offset);
            prev = m.maxt;
        }
    }
    // Stable: series numbers stay in increasing order within a pair.
    pairs.sort_by_key(|p| p.0);
    let mut pair_table: Vec<(u32, u32, usize)> = Vec::new();
    let mut i = 0;
    while i < pairs.len() {
        let key = pairs[i].0;
        let end = i + pairs[i..].iter().take_while(|p| p.0 == key).count();
        pair_table.push((key.0, key.1, out.len()));
        put_uvarint(&mut out, (end - i) as u64);
        let mut prev: Option<u32> = None;
        for p in &pairs[i..end] {
            put_uvarint(&mut out, u64::from(p.1 - prev.map_or(0, |x| x + 1)));
            prev = Some(p.1);
        }
        i = end;
    }
    let too_big = || Error::Io {
        op: "write index",
        path: path.to_path_buf(),
        reason: "the index would pass 4 GiB, the most its 32-bit offsets address".into(),
    };
    let u32_of = |x: usize| u32::try_from(x).map_err(|_| too_big());
    let symtab = out.len();
    for &o in &sym_offsets {
        out.extend_from_slice(&u32_of(o)?.to_le_bytes());
    }
    let sertab = out.len();
    for &o in &series_offsets {
        out.extend_from_slice(&u32_of(o)?.to_le_bytes());
    }
    let pairtab = out.len();
    for &(n, v, o) in &pair_table {
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&v.to_le_bytes());
        out.extend_from_slice(&u32_of(o)?.to_le_bytes());
    }
    for x in [
        syms.len(),
        symtab,
        entries.len(),
        sertab,
        pair_table.len(),
        pairtab,
    ] {
        out.extend_from_slice(&u32_of(x)?.to_le_bytes());
    }
    u32_of(out.len() + 4)?;
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A series as stored: label pairs as symbol numbers, and its chunks.
type RawSeries = (Vec<(u32, u32)>, Vec<ChunkMeta>);

/// A mapped index file. Opening checks the CRC over the whole file and
/// the table of contents; every entry is bounds-checked when it is read, so
/// a file that is damaged in a way the CRC misses gives errors, not panics.
pub(crate) struct IndexReader {
    map: Mapped,
    nsyms: usize,
    symtab: usize,
    nseries: usize,
    sertab: usize,
    npairs: usize,
    pairtab: usize,
}

/// A varint reader over the index file's bytes, errors naming the file.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
    file: &'a Path,
}

impl Cursor<'_> {
    fn bad(&self, what: &str) -> Error {
        Error::BadBlock {
            file: self.file.to_path_buf(),
            offset: self.at as u64,
            what: what.into(),
        }
    }

    fn uvarint(&mut self) -> Result<u64, Error> {
        let start = self.at;
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.b.get(self.at) else {
                self.at = start;
                return Err(self.bad("varint runs past the end of its section"));
            };
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        self.at = start;
        Err(self.bad("varint longer than 10 bytes"))
    }

    fn varint(&mut self) -> Result<i64, Error> {
        let u = self.uvarint()?;
        Ok((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    /// A count of items of at least `min` bytes each, bounded by the bytes
    /// left so that a damaged count cannot ask for a huge allocation.
    fn count(&mut self, min: usize) -> Result<usize, Error> {
        let start = self.at;
        let n = self.uvarint()?;
        let left = (self.b.len() - self.at) / min.max(1);
        match usize::try_from(n) {
            Ok(n) if n <= left => Ok(n),
            _ => {
                self.at = start;
                Err(self.bad("count larger than the bytes left"))
            }
        }
    }
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let x = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}

impl IndexReader {
    /// Maps and checks `path`.
    pub(crate) fn open(path: &Path) -> Result<IndexReader, Error> {
        let map = Mapped::open(path)?;
        map.check_len()?;
        let b = map.bytes();
        let bad = |at: usize, what: String| Error::BadBlock {
            file: path.to_path_buf(),
            offset: at as u64,
            what,
        };
        if b.get(..4) != Some(INDEX_MAGIC) {
            return Err(bad(0, "bad magic: not a block index".into()));
        }
        match b.get(4) {
            Some(&INDEX_VERSION) => {}
            Some(1) => {
                return Err(bad(
                    4,
                    "index version 1 (no postings) is no longer read; \
                     rebuild the block from its samples with a version that reads it"
                        .into(),
                ));
            }
            Some(v) => return Err(bad(4, format!("unknown index version {v}"))),
            None => return Err(bad(4, "no version byte".into())),
        }
        if b.len() < HEADER + TOC {
            return Err(bad(
                b.len(),
                "file shorter than its header and table of contents".into(),
            ));
        }
        let (body, tail) = b.split_at(b.len() - 4);
        let crc = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        if crc32fast::hash(body) != crc {
            return Err(bad(b.len() - 4, "index checksum mismatch".into()));
        }
        let toc = b.len() - TOC;
        let field = |i: usize| le32(b, toc + 4 * i).map_or(0, |x| x as usize);
        let (nsyms, symtab, nseries, sertab, npairs, pairtab) =
            (field(0), field(1), field(2), field(3), field(4), field(5));
        // The three tables follow each other and end at the TOC.
        let ok = HEADER <= symtab
            && nsyms.checked_mul(4).and_then(|n| n.checked_add(symtab)) == Some(sertab)
            && nseries.checked_mul(4).and_then(|n| n.checked_add(sertab)) == Some(pairtab)
            && npairs
                .checked_mul(PAIR)
                .and_then(|n| n.checked_add(pairtab))
                == Some(toc);
        if !ok {
            return Err(bad(
                toc,
                "table of contents does not describe the file".into(),
            ));
        }
        Ok(IndexReader {
            map,
            nsyms,
            symtab,
            nseries,
            sertab,
            npairs,
            pairtab,
        })
    }

    /// Number of series.
    pub(crate) fn len(&self) -> usize {
        self.nseries
    }

    fn path(&self) -> &Path {
        self.map.path()
    }

    fn bad(&self, at: usize, what: &str) -> Error {
        Error::BadBlock {
            file: self.path().to_path_buf(),
            offset: at as u64,
            what: what.into(),
        }
    }

    /// Fails if the file was truncated since it was mapped; called once per
    /// query before the mapped bytes are read (see `mapped`).
    pub(crate) fn check(&self) -> Result<(), Error> {
        self.map.check_len()
    }

    fn table(&self, base: usize, i: usize) -> Result<u32, Error> {
        le32(self.map.bytes(), base + 4 * i).ok_or_else(|| self.bad(base, "table entry"))
    }

    /// The bytes of the sections before the tables, where entries live.
    fn cursor(&self, at: usize) -> Result<Cursor<'_>, Error> {
        let b = self.map.bytes().get(..self.symtab).unwrap_or_default();
        if at < HEADER || at >= b.len() {
            return Err(self.bad(at, "entry offset outside the sections"));
        }
        Ok(Cursor {
            b,
            at,
            file: self.path(),
        })
    }

    /// Symbol number `i`.
    fn symbol(&self, i: u32) -> Result<&str, Error> {
        if i as usize >= self.nsyms {
            return Err(self.bad(self.symtab, "symbol number out of range"));
        }
        let at = self.table(self.symtab, i as usize)? as usize;
        let mut c = self.cursor(at)?;
        let n = usize::try_from(c.uvarint()?).unwrap_or(usize::MAX);
        let bytes =
            c.b.get(c.at..c.at.saturating_add(n))
                .ok_or_else(|| self.bad(at, "symbol runs past its section"))?;
        std::str::from_utf8(bytes).map_err(|_| self.bad(at, "symbol is not UTF-8"))
    }

    /// The number of the symbol `s`, by binary search (symbols are sorted).
    fn find_symbol(&self, s: &str) -> Result<Option<u32>, Error> {
        let (mut lo, mut hi) = (0usize, self.nsyms);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.symbol(mid as u32)?.cmp(s) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(Some(mid as u32)),
            }
        }
        Ok(None)
    }

    /// Postings-table entry `i`: (name symbol, value symbol, list offset).
    fn pair(&self, i: usize) -> Result<(u32, u32, usize), Error> {
        let at = self.pairtab + PAIR * i;
        let b = self.map.bytes();
        match (le32(b, at), le32(b, at + 4), le32(b, at + 8)) {
            (Some(n), Some(v), Some(o)) if i < self.npairs => Ok((n, v, o as usize)),
            _ => Err(self.bad(at, "postings table entry out of range")),
        }
    }

    /// The postings-table entries of label name symbol `n`.
    fn pairs_of(&self, n: u32) -> Result<Range<usize>, Error> {
        let lower = |key: u32| -> Result<usize, Error> {
            let (mut lo, mut hi) = (0usize, self.npairs);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.pair(mid)?.0 < key {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            Ok(lo)
        };
        let start = lower(n)?;
        let end = match n.checked_add(1) {
            Some(next) => lower(next)?,
            None => self.npairs,
        };
        Ok(start..end)
    }

    /// The series numbers of postings list at `at`, appended to `out`.
    fn postings(&self, at: usize, out: &mut Vec<u32>) -> Result<(), Error> {
        let mut c = self.cursor(at)?;
        let n = c.count(1)?;
        out.reserve(n);
        let mut next = 0u64;
        for _ in 0..n {
            let id = next
                .checked_add(c.uvarint()?)
                .filter(|&id| id < self.nseries as u64)
                .ok_or_else(|| c.bad("series number out of range"))?;
            out.push(id as u32);
            next = id + 1;
        }
        Ok(())
    }

    /// The postings of `name=value`: two symbol searches and one in the
    /// postings table.
    fn postings_of(&self, name: &str, value: &str) -> Result<Vec<u32>, Error> {
        let (Some(n), Some(v)) = (self.find_symbol(name)?, self.find_symbol(value)?) else {
            return Ok(Vec::new());
        };
        let r = self.pairs_of(n)?;
        let (mut lo, mut hi) = (r.start, r.end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (_, mv, at) = self.pair(mid)?;
            match mv.cmp(&v) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => {
                    let mut out = Vec::new();
                    self.postings(at, &mut out)?;
                    return Ok(out);
                }
            }
        }
        Ok(Vec::new())
    }

    /// Union of the postings of every value of `name` that `keep` accepts.
    fn union_of(&self, name: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<u32>, Error> {
        let Some(n) = self.find_symbol(name)? else {
            return Ok(Vec::new());
        };
        let mut all = Vec::new();
        let mut lists = 0;
        for i in self.pairs_of(n)? {
            let (_, v, at) = self.pair(i)?;
            if keep(self.symbol(v)?) {
                self.postings(at, &mut all)?;
                lists += 1;
            }
        }
        if lists > 1 {
            all.sort_unstable();
            all.dedup();
        }
        Ok(all)
    }

    /// The series numbers all `matchers` select, sorted, with Prometheus's
    /// semantics (a missing label is the empty value), as
    /// [`crate::index::Index::select`].
    pub(crate) fn select(&self, matchers: &[Matcher]) -> Result<Vec<u32>, Error> {
        let mut result: Option<Vec<u32>> = None;
        let mut subtract: Vec<Vec<u32>> = Vec::new();
        let mut order: Vec<&Matcher> = matchers.iter().collect();
        order.sort_by_key(|m| (m.exact_value().is_none(), m.matches("")));
        for m in order {
            if m.matches("") {
                let drop = self.union_of(m.name(), |v| !m.matches(v))?;
                if !drop.is_empty() {
                    subtract.push(drop);
                }
            } else {
                let keep = match m.exact_value() {
                    Some(v) => self.postings_of(m.name(), v)?,
                    None => self.union_of(m.name(), |v| m.matches(v))?,
                };
                result = Some(match result {
                    None => keep,
                    Some(r) => intersect(&r, &keep),
                });
            }
            if result.as_ref().is_some_and(Vec::is_empty) {
                return Ok(Vec::new());
            }
        }
        let mut r = result.unwrap_or_else(|| (0..self.nseries as u32).collect());
        for s in &subtract {
            r = subtract_sorted(&r, s);
        }
        Ok(r)
    }

    /// Series `i`'s label pairs as symbol numbers and its chunks.
    fn series_raw(&self, i: u32) -> Result<RawSeries, Error> {
        if i as usize >= self.nseries {
            return Err(self.bad(self.sertab, "series number out of range"));
        }
        let at = self.table(self.sertab, i as usize)? as usize;
        let mut c = self.cursor(at)?;
        let k = c.count(2)?;
        let mut pairs = Vec::with_capacity(k);
        for _ in 0..k {
            let n = c.uvarint()?;
            let v = c.uvarint()?;
            match (u32::try_from(n), u32::try_from(v)) {
                (Ok(n), Ok(v)) => pairs.push((n, v)),
                _ => return Err(c.bad("symbol number out of range")),
            }
        }
        let nc = c.count(3)?;
        let mut metas = Vec::with_capacity(nc);
        let mut prev = 0i64;
        for _ in 0..nc {
            let mint = prev.wrapping_add(c.varint()?);
            let maxt = mint.wrapping_add(c.varint()?);
            let offset = c.uvarint()?;
            metas.push(ChunkMeta { mint, maxt, offset });
            prev = maxt;
        }
        Ok((pairs, metas))
    }

    /// Series `i`: its labels and chunks.
    pub(crate) fn series(&self, i: u32) -> Result<(Labels, Vec<ChunkMeta>), Error> {
        let (pairs, metas) = self.series_raw(i)?;
        let mut strs = Vec::with_capacity(pairs.len());
        for (n, v) in pairs {
            strs.push((self.symbol(n)?, self.symbol(v)?));
        }
        let labels = Labels::new(strs).map_err(|_| self.bad(self.sertab, "invalid label set"))?;
        Ok((labels, metas))
    }

    /// Label names of the selected series (all with no matchers), sorted.
    pub(crate) fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, Error> {
        let mut names: Vec<u32> = Vec::new();
        if matchers.is_empty() {
            let mut i = 0;
            while i < self.npairs {
                let n = self.pair(i)?.0;
                names.push(n);
                i = self.pairs_of(n)?.end.max(i + 1);
            }
        } else {
            for id in self.select(matchers)? {
                names.extend(self.series_raw(id)?.0.iter().map(|p| p.0));
            }
            names.sort_unstable();
            names.dedup();
        }
        names
            .iter()
            .map(|&n| self.symbol(n).map(str::to_owned))
            .collect()
    }

    /// Values of label `name` among the selected series, sorted.
    pub(crate) fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, Error> {
        let Some(n) = self.find_symbol(name)? else {
            return Ok(Vec::new());
        };
        let mut values: Vec<u32> = Vec::new();
        if matchers.is_empty() {
            for i in self.pairs_of(n)? {
                values.push(self.pair(i)?.1);
            }
        } else {
            for id in self.select(matchers)? {
                if let Some(&(_, v)) = self.series_raw(id)?.0.iter().find(|p| p.0 == n) {
                    values.push(v);
                }
            }
            values.sort_unstable();
            values.dedup();
        }
        // Symbols are sorted, so symbol order is string order.
        values
            .iter()
            .map(|&v| self.symbol(v).map(str::to_owned))
            .collect()
    }
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn subtract_sorted(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if b.get(j) != Some(&x) {
            out.push(x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Index, MatchOp};

    fn entries() -> Vec<(Labels, Vec<ChunkMeta>)> {
        let mut v: Vec<(Labels, Vec<ChunkMeta>)> = (0..40u64)
            .map(|i| {
                let mut pairs = vec![("__name__", format!("m{}", i % 3)), ("i", i.to_string())];
                if i % 4 != 0 {
                    pairs.push(("job", format!("j{}", i % 5)));
                }
                let meta = ChunkMeta {
                    mint: i as i64 * 10,
                    maxt: i as i64 * 10 + 5,
                    offset: 8 + i,
                };
                (Labels::new(pairs).unwrap(), vec![meta])
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The mapped index answers exactly as the in-memory index built from
    /// the same series.
    #[test]
    fn answers_as_the_in_memory_index() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("index");
        let e = entries();
        std::fs::write(&p, encode(&e, &p).unwrap()).unwrap();
        let r = IndexReader::open(&p).unwrap();
        let mut mem = Index::new();
        for (i, (l, _)) in e.iter().enumerate() {
            mem.add(i as u64, l);
        }
        for (i, (l, m)) in e.iter().enumerate() {
            assert_eq!(r.series(i as u32).unwrap(), (l.clone(), m.clone()));
        }
        let m = |n: &str, op, v: &str| Matcher::new(n, op, v).unwrap();
        let sets: Vec<Vec<Matcher>> = vec![
            vec![],
            vec![m("__name__", MatchOp::Equal, "m1")],
            vec![m("job", MatchOp::Equal, "")],
            vec![m("job", MatchOp::NotEqual, "j1")],
            vec![
                m("job", MatchOp::Regex, "j[12]"),
                m("__name__", MatchOp::NotRegex, "m0"),
            ],
            vec![m("job", MatchOp::Regex, ".*")],
            vec![m("nope", MatchOp::Equal, "x")],
            vec![
                m("i", MatchOp::Regex, "1.*"),
                m("job", MatchOp::NotRegex, ""),
            ],
        ];
        for ms in &sets {
            let want: Vec<u32> = mem.select(ms).iter().map(|&x| x as u32).collect();
            assert_eq!(r.select(ms).unwrap(), want, "{ms:?}");
            assert_eq!(r.label_names(ms).unwrap(), mem.label_names(ms), "{ms:?}");
            for name in ["job", "__name__", "i", "nope"] {
                assert_eq!(
                    r.label_values(name, ms).unwrap(),
                    mem.label_values(name, ms)
                );
            }
        }
    }

    #[test]
    fn version_1_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("index");
        let mut b = encode(&entries(), &p).unwrap();
        b[4] = 1;
        std::fs::write(&p, b).unwrap();
        let e = IndexReader::open(&p).err().unwrap().to_string();
        assert!(e.contains("index version 1") && e.contains("index"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Random label sets and matchers: the mapped index selects, and
        /// lists names and values, exactly as the in-memory index.
        #[test]
        fn random_sets_and_matchers_agree_with_the_in_memory_index(
            sets in proptest::collection::vec(
                proptest::collection::vec((0u8..4, 0u8..5), 1..4), 0..40),
            ms in proptest::collection::vec((0u8..5, 0u8..4, 0u8..6), 0..4),
        ) {
            let names = ["a", "b", "c", "d", "e"];
            let values = ["", "x", "y", "xy", "z"];
            let mut entries: Vec<(Labels, Vec<ChunkMeta>)> = Vec::new();
            for pairs in sets {
                let pairs: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|&(n, v)| (names[n as usize], values[v as usize]))
                    .collect();
                let mut seen = std::collections::HashSet::new();
                let pairs: Vec<(&str, &str)> = pairs.into_iter().filter(|p| seen.insert(p.0)).collect();
                let l = Labels::new(pairs).unwrap();
                if !entries.iter().any(|(x, _)| *x == l) {
                    entries.push((l, Vec::new()));
                }
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("index");
            std::fs::write(&p, encode(&entries, &p).unwrap()).unwrap();
            let r = IndexReader::open(&p).unwrap();
            let mut mem = Index::new();
            for (i, (l, _)) in entries.iter().enumerate() {
                mem.add(i as u64, l);
            }
            let pats = ["", "x", "x.*", "y|z", ".+", "xy"];
            let ops = [MatchOp::Equal, MatchOp::NotEqual, MatchOp::Regex, MatchOp::NotRegex];
            let ms: Vec<Matcher> = ms
                .iter()
                .map(|&(n, o, v)| Matcher::new(names[n as usize], ops[o as usize], pats[v as usize]).unwrap())
                .collect();
            let want: Vec<u32> = mem.select(&ms).iter().map(|&x| x as u32).collect();
            proptest::prop_assert_eq!(r.select(&ms).unwrap(), want);
            proptest::prop_assert_eq!(r.label_names(&ms).unwrap(), mem.label_names(&ms));
            for n in names {
                proptest::prop_assert_eq!(r.label_values(n, &ms).unwrap(), mem.label_values(n, &ms));
            }
        }
    }
}
