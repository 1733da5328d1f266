//! The parser: a zero-copy iterator of [`Entry`] over the input bytes.
//!
//! [`Parser`] yields borrowed entries (metadata, samples, `# EOF`) and never
//! allocates per sample: names and label values are slices of the input,
//! unescaped only when asked ([`Str::as_cow`]); a sample's labels are a view
//! ([`Labels`]) that decodes pairs on iteration. [`parse_families`] groups the
//! entries into owned [`MetricFamily`] values.
//!
//! Two dialects, chosen by [`Format`]: Prometheus text 0.0.4, read as leniently
//! as Prometheus reads it, and OpenMetrics 1.0 in one of two [`Mode`]s:
//! [`Mode::Scrape`] accepts what Prometheus's scrape parser accepts,
//! [`Mode::Strict`] rejects everything the specification rejects.
//!
//! [`MetricFamily`]: crate::MetricFamily

mod families;
pub(crate) mod number;
mod scan;
mod simd;
mod span;
mod strict;

use std::borrow::Cow;

use crate::Format;
use crate::error::{Error, Result};
use crate::model::MetricType;
use number::NumberKind;

pub use families::parse_families;

/// How strictly OpenMetrics input is checked. Text 0.0.4 is always read as
/// Prometheus reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// As lenient as Prometheus's own OpenMetrics scrape parser: the syntax
    /// is enforced, the semantic rules (suffixes per type, cumulative
    /// buckets, ordering, ...) are not.
    #[default]
    Scrape,
    /// Every rule of the OpenMetrics 1.0 specification; for validation and
    /// conformance tools.
    Strict,
}

/// A slice of the input that may hold escape sequences.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Str<'a> {
    raw: &'a str,
    esc: Esc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Esc {
    /// No backslash inside: the raw text is the value.
    None,
    /// Label value / quoted name / OpenMetrics HELP: `\\`, `\"`, `\n`.
    Quoted,
    /// Text 0.0.4 HELP: `\\` and `\n` only.
    Help,
}

impl<'a> Str<'a> {
    fn plain(raw: &'a str) -> Str<'a> {
        Str {
            raw,
            esc: Esc::None,
        }
    }

    fn quoted(raw: &'a str) -> Str<'a> {
        let esc = if raw.as_bytes().contains(&b'\\') {
            Esc::Quoted
        } else {
            Esc::None
        };
        Str { raw, esc }
    }

    fn quoted_known(raw: &'a str, escaped: bool) -> Str<'a> {
        Str {
            raw,
            esc: if escaped { Esc::Quoted } else { Esc::None },
        }
    }

    /// The text as it appears in the input, escapes included.
    #[inline]
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Whether the raw text holds escape sequences.
    #[inline]
    pub fn has_escapes(&self) -> bool {
        self.esc != Esc::None
    }

    /// The unescaped text; borrows unless there was an escape.
    #[inline]
    pub fn as_cow(&self) -> Cow<'a, str> {
        match self.esc {
            Esc::None => Cow::Borrowed(self.raw),
            Esc::Quoted => Cow::Owned(unescape(self.raw, true)),
            Esc::Help => Cow::Owned(unescape(self.raw, false)),
        }
    }

    /// Compares the unescaped text with `s`, without allocating when there
    /// are no escapes.
    #[inline]
    pub fn eq_str(&self, s: &str) -> bool {
        match self.esc {
            Esc::None => self.raw == s,
            _ => self.as_cow() == s,
        }
    }
}

impl std::fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_cow())
    }
}

/// Undoes `\\`, `\n` and (when `quote`) `\"`. Other escapes stay as written,
/// as Prometheus leaves them.
fn unescape(raw: &str, quote: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The labels of a sample or exemplar: a view over the text between the
/// braces, decoded on iteration.
///
/// The view stays small, as it is moved with every entry. When the parser
/// saw the plain form, `name="value"` pairs joined by single commas with no
/// blanks, escapes or quoted names (what every client library writes), it
/// keeps where the `=` and the closing quote of each pair are, one byte
/// each, so iteration costs no second scan, when there are at most
/// eight pairs within 255 bytes (the fast path's lines); otherwise the
/// pairs are found again by looking for `=` and `"`. Any other form is
/// walked by the lenient scanner.
#[derive(Clone, Copy, Debug)]
pub struct Labels<'a> {
    raw: &'a str,
    len: u16,
    /// `raw` is in the plain form described above.
    plain: bool,
    /// For pair k: offset of its `=` at 2k, of its closing quote at 2k+1;
    /// for all pairs or none (zeros), plain form only.
    ends: [u8; 2 * CACHED],
}

/// How many plain pairs a [`Labels`] view keeps the offsets of.
const CACHED: usize = 8;

/// How many timestamps the fast path remembers (see `Parser::ts_seen`).
const TS_SLOTS: usize = 4;

impl<'a> Labels<'a> {
    const EMPTY: Labels<'static> = Labels {
        raw: "",
        len: 0,
        plain: true,
        ends: [0; 2 * CACHED],
    };

    /// Number of label pairs (a quoted metric name inside the braces is not
    /// one).
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when there are no label pairs.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pairs, in input order.
    #[inline]
    pub fn iter(&self) -> LabelIter<'a> {
        LabelIter {
            src: self.raw,
            off: 0,
            plain: self.plain,
            ends: u128::from_le_bytes(self.ends),
        }
    }

    /// The value of label `name`.
    pub fn get(&self, name: &str) -> Option<Str<'a>> {
        self.iter().find(|(n, _)| n.eq_str(name)).map(|(_, v)| v)
    }

    /// The text between the braces, as in the input.
    #[inline]
    pub fn raw(&self) -> &'a str {
        self.raw
    }
}

impl<'a> IntoIterator for Labels<'a> {
    type Item = (Str<'a>, Str<'a>);
    type IntoIter = LabelIter<'a>;
    #[inline]
    fn into_iter(self) -> LabelIter<'a> {
        self.iter()
    }
}

/// Iterator over the `(name, value)` pairs of [`Labels`].
///
/// Only plain values (a text, a position, the offsets): no field is a
/// reference into the iterator, and the general form's walk is a function
/// of the text and the position (`general_pair`), so a caller's loop keeps
/// the iterator in registers (it was in a stack slot, stored and reloaded
/// at every pair, while `&mut self` went to the out-of-line general walk).
#[derive(Clone, Debug)]
pub struct LabelIter<'a> {
    src: &'a str,
    /// Where the next pair starts in `src`.
    off: usize,
    plain: bool,
    /// The offsets of [`Labels`], the next pair's in the low 16 bits
    /// (shifted out as the pairs are handed out: no index to keep). No
    /// pair's offsets are zero (its `=` comes after a name), so zero means
    /// none left.
    ends: u128,
}

/// The label walk of the general form (blanks, escapes, quoted names,
/// trailing commas): a cursor over `src`.
struct GeneralWalk<'a> {
    src: &'a str,
    /// `src[off..]`.
    rest: &'a [u8],
    off: usize,
}

/// The next pair of a label set in the general form from `off`, and where
/// the walk stopped (the next pair's start, or where it gave up).
#[cold]
#[inline(never)]
fn general_pair(src: &str, off: usize) -> (Option<(Str<'_>, Str<'_>)>, usize) {
    let mut w = GeneralWalk {
        src,
        rest: src.as_bytes().get(off..).unwrap_or_default(),
        off,
    };
    let pair = w.next_pair();
    (pair, w.off)
}

impl<'a> GeneralWalk<'a> {
    fn skip_ws(&mut self) {
        while let Some(&c) = self.rest.first() {
            if c == b' ' || c == b'\t' || c == b',' {
                self.advance(1);
            } else {
                break;
            }
        }
    }

    #[inline]
    fn advance(&mut self, n: usize) {
        self.rest = &self.rest[n..];
        self.off += n;
    }

    /// A name or quoted string at the cursor. The parser validated the text,
    /// so this only has to find the ends; it gives up (None) rather than
    /// panic on anything unexpected.
    fn item(&mut self) -> Option<Str<'a>> {
        if self.rest.first() == Some(&b'"') {
            let (end, esc) = quoted_end(self.rest, 1)?;
            let s = Str::quoted_known(self.src.get(self.off + 1..self.off + end)?, esc);
            self.advance(end + 1);
            Some(s)
        } else {
            let n = scan::label_chars(self.rest, 0);
            if n == 0 {
                return None;
            }
            let s = Str::plain(self.src.get(self.off..self.off + n)?);
            self.advance(n);
            Some(s)
        }
    }

    fn next_pair(&mut self) -> Option<(Str<'a>, Str<'a>)> {
        loop {
            self.skip_ws();
            if self.rest.is_empty() {
                return None;
            }
            let name = self.item()?;
            while matches!(self.rest.first(), Some(b' ' | b'\t')) {
                self.advance(1);
            }
            if self.rest.first() != Some(&b'=') {
                // A quoted metric name among the labels: not a pair.
                continue;
            }
            self.advance(1);
            while matches!(self.rest.first(), Some(b' ' | b'\t')) {
                self.advance(1);
            }
            if self.rest.first() != Some(&b'"') {
                return None;
            }
            let value = self.item()?;
            return Some((name, value));
        }
    }
}

impl<'a> LabelIter<'a> {
    /// The next pair of a plain label set whose offsets the parser kept.
    #[inline(always)]
    #[allow(unsafe_code)]
    fn next_cached(&mut self) -> (Str<'a>, Str<'a>) {
        let start = self.off;
        let eq = (self.ends & 0xff) as usize;
        let ve = ((self.ends >> 8) & 0xff) as usize;
        self.ends >>= 16;
        self.off = ve + 2;
        // SAFETY: the fast path stored these offsets (`Labels` fields are
        // private to this module) for this pair of `src`, in order: `start`
        // is 0 or right after the ',' that ends the pair before, the name is
        // at least one character, `eq` is the '=' and `eq + 1` the opening
        // '"', `ve` the closing '"', followed by ',' or the end of `src`. So
        // `start < eq < eq + 2 <= ve < src.len()`, and each index is at or
        // right after an ASCII byte: a character boundary.
        let (name, value) = unsafe {
            (
                span::sub(self.src, start, eq),
                span::sub(self.src, eq + 2, ve),
            )
        };
        (Str::plain(name), Str::plain(value))
    }

    /// The next pair of a plain label set whose offsets were not kept:
    /// `name="value"` and an optional comma.
    #[inline(always)]
    fn next_plain(&mut self) -> Option<(Str<'a>, Str<'a>)> {
        let start = self.off;
        // INVARIANT (plain form): a name of label characters, then `="`, a
        // value without '"' or '\\', then '"', then ',' or the end.
        let b = self.src.as_bytes();
        if start >= b.len() {
            return None;
        }
        let eq = scan::find_byte(b, start, b'=')?;
        let ve = scan::find_quote_or_backslash(b, eq + 2)?;
        let name = self.src.get(start..eq)?;
        let value = self.src.get(eq + 2..ve)?;
        // Past the quote and the comma (or the end); `rest` is not used in
        // the plain form.
        self.off = ve + 2;
        Some((Str::plain(name), Str::plain(value)))
    }
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (Str<'a>, Str<'a>);

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.ends != 0 {
            return Some(self.next_cached());
        }
        if self.plain {
            return self.next_plain();
        }
        let (pair, off) = general_pair(self.src, self.off);
        self.off = off;
        pair
    }
}

/// Index of the closing quote of a quoted string whose content starts at
/// `from`, skipping backslash escapes; also says whether an escape was seen.
#[inline]
fn quoted_end(b: &[u8], from: usize) -> Option<(usize, bool)> {
    let mut i = from;
    let mut esc = false;
    loop {
        let j = scan::find_quote_or_backslash(b, i)?;
        if b[j] == b'"' {
            return Some((j, esc));
        }
        esc = true;
        i = j + 2;
        if i > b.len() {
            return None;
        }
    }
}

/// An exemplar attached to a sample (OpenMetrics).
#[derive(Clone, Copy, Debug)]
pub struct Exemplar<'a> {
    /// The exemplar's labels.
    pub labels: Labels<'a>,
    /// Its value.
    pub value: f64,
    /// Its timestamp in milliseconds, if given.
    pub timestamp_ms: Option<i64>,
}

/// One sample line.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    /// The sample name (suffix included), possibly from a quoted UTF-8 name.
    pub name: Str<'a>,
    /// The labels.
    pub labels: Labels<'a>,
    /// The value.
    pub value: f64,
    /// Timestamp in milliseconds since the epoch (OpenMetrics seconds are
    /// converted exactly, truncated to the millisecond).
    pub timestamp_ms: Option<i64>,
    /// OpenMetrics exemplar.
    pub exemplar: Option<Exemplar<'a>>,
    /// Line number in the input, from 1.
    pub line: u32,
    /// The timestamp as written (strict mode orders timestamps at their full
    /// precision).
    ts_text: Option<&'a str>,
}

impl<'a> Sample<'a> {
    /// The timestamp exactly as written in the input, if any.
    #[inline]
    pub fn timestamp_text(&self) -> Option<&'a str> {
        self.ts_text
    }
}

/// One entry of an exposition.
// A sample is much larger than the metadata variants (its label view keeps
// the label positions); boxing it would cost an allocation per sample, and
// entries are handed out one at a time, never stored in bulk.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    /// `# HELP name text`.
    Help {
        /// The metric name the line is for.
        name: Str<'a>,
        /// The help text (escaped as in the input).
        text: Str<'a>,
    },
    /// `# TYPE name type`.
    Type {
        /// The metric name the line is for.
        name: Str<'a>,
        /// The type.
        metric_type: MetricType,
    },
    /// `# UNIT name unit` (OpenMetrics).
    Unit {
        /// The metric name the line is for.
        name: Str<'a>,
        /// The unit (may be empty).
        unit: &'a str,
    },
    /// Any other `#` line (text 0.0.4 only), without the `#`.
    Comment(&'a str),
    /// A sample.
    Sample(Sample<'a>),
    /// `# EOF`. In OpenMetrics always the last entry; in text 0.0.4 it is
    /// reported as a comment instead.
    Eof,
}

/// The parser. Iterate it for entries; after the first error it ends.
///
/// ```
/// use vigil_exposition::{parse::{Entry, Parser}, Format};
///
/// let text = "# TYPE http_requests_total counter\n\
///             http_requests_total{code=\"200\",path=\"/a\"} 1027 1395066363000\n";
/// let mut samples = 0;
/// for entry in Parser::new(text.as_bytes(), Format::Text) {
///     if let Entry::Sample(s) = entry? {
///         assert_eq!(s.name.raw(), "http_requests_total");
///         assert_eq!(s.labels.get("path").unwrap().raw(), "/a");
///         assert_eq!((s.value, s.timestamp_ms), (1027.0, Some(1395066363000)));
///         samples += 1;
///     }
/// }
/// assert_eq!(samples, 1);
/// # Ok::<(), vigil_exposition::Error>(())
/// ```
pub struct Parser<'a> {
    /// The input.
    src: &'a [u8],
    /// The longest valid UTF-8 prefix of the input (all of it, normally).
    text: &'a str,
    pos: usize,
    /// Number of the line starting at `pos`.
    line: u32,
    om: bool,
    state: ParseState,
    /// Lines through the fast path first: off in strict mode, whose extra
    /// checks are the general path's, and in the tests that compare the
    /// two paths.
    fast: bool,
    strict: Option<Box<strict::Validator>>,
    /// Spans of the current sample's label names, for the duplicate check.
    names: Vec<(usize, usize)>,
    /// The last metric name the fast path checked. A family's HELP, TYPE
    /// and samples repeat it, so the next line usually starts with these
    /// bytes and a comparison replaces the character checks.
    last_name: &'a [u8],
    /// Timestamps the fast path read, as written, with their values: the
    /// samples of one target in a `/federate` response all carry the same
    /// one, and the targets interleave (`federate.prom`: 5 values in 193
    /// runs; one slot missed 193 times a pass, four miss 10), so a
    /// comparison usually replaces reading thirteen digits.
    ts_seen: [(&'a [u8], i64); TS_SLOTS],
    /// The slot that matched or was filled last, tried first.
    ts_last: usize,
    /// The slot to fill next (round robin).
    ts_next: usize,
    /// Label names the fast path has checked (see [`NameCache`]).
    label_names: Box<NameCache>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ParseState {
    Running,
    /// `# EOF` seen (OpenMetrics).
    SawEof,
    Done,
}

impl<'a> Parser<'a> {
    /// A parser for `format`; OpenMetrics in [`Mode::Scrape`].
    pub fn new(input: &'a [u8], format: Format) -> Parser<'a> {
        Parser::with_mode(input, format, Mode::Scrape)
    }

    /// A parser with an explicit OpenMetrics [`Mode`] (ignored for text).
    pub fn with_mode(input: &'a [u8], format: Format, mode: Mode) -> Parser<'a> {
        let om = format == Format::OpenMetrics;
        // One validation pass up front (fast for ASCII) lets every later
        // slice be a `&str` for free; a bad byte is reported when the line
        // holding it is reached, so earlier errors still come first.
        let text = match simdutf8::compat::from_utf8(input) {
            Ok(t) => t,
            Err(e) => std::str::from_utf8(&input[..e.valid_up_to()]).unwrap_or_default(),
        };
        Parser {
            src: input,
            text,
            pos: 0,
            line: 1,
            om,
            state: ParseState::Running,
            fast: !(om && mode == Mode::Strict),
            strict: (om && mode == Mode::Strict).then(|| Box::new(strict::Validator::new())),
            names: Vec::new(),
            last_name: &[],
            ts_seen: [(&[], 0); TS_SLOTS],
            ts_last: 0,
            ts_next: 0,
            label_names: Box::new(NameCache::new()),
        }
    }

    /// A parser picking the format from a scrape response's `Content-Type`.
    pub fn for_content_type(input: &'a [u8], content_type: &str) -> Parser<'a> {
        Parser::new(input, Format::from_content_type(content_type))
    }

    fn fail(&mut self, e: Error) -> Option<Result<Entry<'a>>> {
        self.state = ParseState::Done;
        Some(Err(e))
    }

    fn next_entry(&mut self) -> Option<Result<Entry<'a>>> {
        loop {
            if self.pos >= self.src.len() {
                if self.om && self.state != ParseState::SawEof {
                    let (line, column) = line_col(self.src, self.src.len());
                    return self.fail(Error::Syntax {
                        line,
                        column,
                        expected: "\"# EOF\"".into(),
                        found: "end of input".into(),
                    });
                }
                self.state = ParseState::Done;
                return None;
            }
            let start = self.pos;
            let (end, has_lf) = match memchr::memchr(b'\n', &self.src[start..]) {
                Some(i) => (start + i, true),
                None => (self.src.len(), false),
            };
            if end > self.text.len() {
                let bad = self.text.len();
                let (line, column) = line_col(self.src, bad);
                return self.fail(Error::Syntax {
                    line,
                    column,
                    expected: "UTF-8 text".into(),
                    found: format!("byte 0x{:02x}", self.src[bad]),
                });
            }
            let line_no = self.line;
            self.pos = end + usize::from(has_lf);
            self.line += 1;
            let line = &self.text[start..end];
            if self.state == ParseState::SawEof {
                return self.fail(Error::Syntax {
                    line: line_no,
                    column: 1,
                    expected: "end of input after \"# EOF\"".into(),
                    found: found_at(line, 0),
                });
            }
            let result = if self.om {
                self.om_line(line, line_no, has_lf)
            } else {
                match self.text_line(line, line_no) {
                    Ok(None) => continue,
                    Ok(Some(e)) => Ok(e),
                    Err(e) => Err(e),
                }
            };
            let entry = match result {
                Ok(e) => e,
                Err(e) => return self.fail(e),
            };
            if let Some(v) = self.strict.as_mut() {
                let checked = match &entry {
                    Entry::Eof => v.finish(line_no),
                    e => v.check(e, line, line_no),
                };
                if let Err(e) = checked {
                    return self.fail(e);
                }
            }
            return Some(Ok(entry));
        }
    }

    /// The fast path for the common lines. Text 0.0.4: `name{a="b",...}
    /// value [timestamp]` with classic names, unescaped values and single
    /// spaces, `# HELP name text` and `# TYPE name type`. OpenMetrics (scrape
    /// mode): the same samples without timestamp or exemplar, and `# HELP`,
    /// `# TYPE` and `# UNIT`, each ending in a line feed. Returns the entry
    /// and moves to the next line; `None` for anything else (or anything
    /// wrong), which the general path ([`Parser::text_line`],
    /// [`Parser::om_line`]) then reads from the start of the line, so both
    /// paths accept and refuse the same input and give the same entries
    /// (checked against each other in debug builds, which the fuzz targets
    /// are).
    ///
    /// INVARIANT: only bytes of the valid UTF-8 prefix `self.text` are read;
    /// reaching its end ends the line only when it is the end of the input.
    #[inline]
    #[allow(unsafe_code)]
    fn fast_line(&mut self, start: usize) -> Option<Entry<'a>> {
        let text = self.text;
        let b = text.as_bytes();
        let om = self.om;
        let at_end = |i: usize| !om && i == b.len() && b.len() == self.src.len();
        if b.get(start) == Some(&b'#') {
            return if om {
                self.fast_om_meta(start)
            } else {
                self.fast_meta(start)
            };
        }
        let n = self.known_name_len(b, start);
        if n == 0 {
            return None;
        }
        let mut i = start + n;
        // SAFETY: `n > 0` ASCII name characters from `start`, inside `text`:
        // both ends are next to an ASCII byte.
        let name = Str::plain(unsafe { span::sub(text, start, i) });
        let mut labels = Labels::EMPTY;
        if b.get(i) == Some(&b'{') {
            let open = i + 1;
            i = open;
            // Counted in a full register and saturated once at the end (a
            // saturating `u16` add per pair cost a compare and a move).
            let mut count: usize = 0;
            // The offsets are gathered in a register and stored once: byte
            // stores followed by the entry's word copy stalled on store
            // forwarding. Each pair enters at the top and moves the others
            // down: no test, variable shift or index per pair; whether they
            // fit is settled once at the end.
            let mut ends: u128 = 0;
            loop {
                let Some((eq, q)) = self.plain_pair(b, i) else {
                    // No pair here: the end of the set (empty, or after a
                    // trailing comma), or not the plain form. Tested here
                    // rather than before each pair (a `}` is never a pair).
                    if b.get(i) == Some(&b'}') {
                        break;
                    }
                    return None;
                };
                // Truncated to a byte each; only used below when every
                // offset fits.
                let pair = ((eq - open) & 0xff | ((q - open) & 0xff) << 8) as u128;
                ends = ends >> 16 | pair << (128 - 16);
                count += 1;
                // The closing quote and the `,` or `}` after it, in one
                // read. `q` is the index of a byte of `b` (`plain_pair`),
                // so the length test cannot wrap.
                debug_assert!(q < b.len());
                if b.len() - q < 2 {
                    return None;
                }
                // SAFETY: `q + 2 <= b.len()`, just tested.
                let w = unsafe { span::u16_at(b, q) };
                if w == u16::from_le_bytes(*b"\",") {
                    i = q + 2;
                } else if w == u16::from_le_bytes(*b"\"}") {
                    i = q + 1;
                    break;
                } else {
                    return None;
                }
            }
            // All pairs kept when there are at most `CACHED` and every
            // offset fits in a byte (the last closing quote is the largest);
            // else none, and iteration finds them again.
            let cached = if count <= CACHED && i - open <= usize::from(u8::MAX) {
                count as u8
            } else {
                0
            };
            labels = Labels {
                // SAFETY: `open` follows the '{' and `i` is the '}' (both
                // ASCII, inside `text`, `open <= i`).
                raw: unsafe { span::sub(text, open, i) },
                len: u16::try_from(count).unwrap_or(u16::MAX),
                plain: true,
                // The first pair to the low bits.
                ends: ends
                    .checked_shr(16 * (CACHED as u32 - u32::from(cached)))
                    .unwrap_or(0)
                    .to_le_bytes(),
            };
            i += 1;
        }
        if b.get(i) != Some(&b' ') {
            return None;
        }
        let (value, vend) = number::parse_value_prefix(b, i + 1)?;
        i = vend;
        let mut timestamp_ms = None;
        let mut ts_text = None;
        // OpenMetrics exemplars: the general path.
        if b.get(i) == Some(&b' ') {
            let t = i + 1;
            let (ts, tend) = match self.seen_ts(b, t) {
                Some(seen) => seen,
                None => {
                    let (ts, tend) = if om {
                        number::parse_seconds_prefix(b, t)?
                    } else {
                        number::parse_ms_prefix(b, t)?
                    };
                    let k = self.ts_next;
                    self.ts_seen[k] = (&b[t..tend], ts);
                    self.ts_last = k;
                    self.ts_next = (k + 1) % TS_SLOTS;
                    (ts, tend)
                }
            };
            timestamp_ms = Some(ts);
            // SAFETY: the timestamp is the ASCII digits (and sign or
            // point) between the space at `i` and `tend`, inside `text`.
            ts_text = Some(unsafe { span::sub(text, i + 1, tend) });
            i = tend;
        }
        let next = match b.get(i) {
            Some(b'\n') => i + 1,
            None if at_end(i) => i,
            _ => return None,
        };
        let sample = Sample {
            name,
            labels,
            value,
            timestamp_ms,
            exemplar: None,
            line: self.line,
            ts_text,
        };
        // Straight into the caller's entry (a tuple with `next` was built
        // and then copied, 176 bytes per line).
        self.pos = next;
        self.line += 1;
        Some(Entry::Sample(sample))
    }

    /// The `=` and the value's end (a `"`, `\\` or line feed, which the
    /// caller tests) of the label pair at `b[i..]` in the plain form
    /// `name="value`; `None` for anything else.
    #[inline(always)]
    #[allow(unsafe_code)]
    fn plain_pair(&mut self, b: &[u8], i: usize) -> Option<(usize, usize)> {
        // Both ends from masks of the 32 bytes at `i` (see
        // `simd::pair_masks32`): the name of up to 15 bytes, the value's
        // end when it is within them.
        #[cfg(target_arch = "x86_64")]
        if i + 32 <= b.len() {
            // SAFETY: `i + 32 <= b.len()`, just tested.
            let (eqs, ends, v) = unsafe { simd::pair_masks32(b, i) };
            if eqs != 0 {
                let n = eqs.trailing_zeros() as usize;
                // SAFETY: `v` is the sixteen bytes at `b[i..]`,
                // `i + 16 <= b.len()` and `n < 16` (a bit of a sixteen-bit
                // mask).
                if !unsafe { self.label_names.is_name16_v(v, b, i, n) } {
                    return None;
                }
                let eq = i + n;
                // SAFETY: `eq + 2 <= i + 17 <= b.len()`.
                if unsafe { span::u16_at(b, eq) } != u16::from_le_bytes(*b"=\"") {
                    return None;
                }
                // The lowest bit of `ends` is the opening quote (a name has
                // none of the three bytes, nor has the '='); the next one is
                // the value's end. Found without `n`: the name's end and the
                // value's end come from the loads side by side.
                debug_assert_eq!(ends.trailing_zeros() as usize, n + 1);
                let rest = ends & ends.wrapping_sub(1);
                let q = if rest != 0 {
                    i + rest.trailing_zeros() as usize
                } else {
                    // None of them from `eq + 2` to `i + 32`.
                    scan::find_value_end(b, i + 32)?
                };
                return Some((eq, q));
            }
        }
        let eq = i + self.label_names.name_len(b, i)?;
        // `name_len` measured a name inside `b`: `eq <= b.len()`, so the
        // length test cannot wrap (a range `get` also tested `eq + 2` for
        // overflow: six instructions a pair).
        debug_assert!(eq <= b.len());
        // SAFETY: `eq + 2 <= b.len()`, tested first.
        if b.len() - eq < 2 || unsafe { span::u16_at(b, eq) } != u16::from_le_bytes(*b"=\"") {
            return None;
        }
        Some((eq, scan::find_value_end(b, eq + 2)?))
    }

    /// A timestamp read before that `b[t..]` repeats (and that no further
    /// digit extends): its value and where it ends.
    #[inline(always)]
    fn seen_ts(&mut self, b: &[u8], t: usize) -> Option<(i64, usize)> {
        let repeats = |p: &[u8]| {
            !p.is_empty()
                && scan::starts_with_at(b, t, p)
                && !b.get(t + p.len()).is_some_and(u8::is_ascii_digit)
        };
        let (p, v) = self.ts_seen[self.ts_last];
        if repeats(p) {
            return Some((v, t + p.len()));
        }
        for k in 0..TS_SLOTS {
            let (p, v) = self.ts_seen[k];
            if repeats(p) {
                self.ts_last = k;
                return Some((v, t + p.len()));
            }
        }
        None
    }

    /// [`name_len`] of a classic metric name at `b[i..]`, first comparing
    /// with the last name checked, which the line usually repeats (its
    /// characters are known to be valid); remembers the name found.
    #[inline(always)]
    #[allow(unsafe_code)]
    fn known_name_len(&mut self, b: &'a [u8], i: usize) -> usize {
        let last = self.last_name;
        let n = if !last.is_empty() && scan::starts_with_at(b, i, last) {
            // A longer name (a `_bucket` after the family name) goes on.
            let k = i + last.len();
            if b.get(k).is_some_and(|&c| is_name_char(c)) {
                last.len() + scan::metric_chars(b, k)
            } else {
                last.len()
            }
        } else {
            name_len(b, i)
        };
        self.last_name = if n == 0 {
            &[]
        } else {
            // SAFETY: `i + n <= b.len()`: either `b[i..]` starts with
            // `last` and the run of name characters from `k` stays in `b`,
            // or `name_len` read `b[i]` (`n > 0`) and the run after it.
            unsafe { span::bytes(b, i, i + n) }
        };
        n
    }

    /// `# HELP name text` and `# TYPE name type` on the fast path (see
    /// [`Parser::fast_line`]).
    #[inline]
    #[allow(unsafe_code)]
    fn fast_meta(&mut self, start: usize) -> Option<Entry<'a>> {
        let text = self.text;
        let b = text.as_bytes();
        // The keyword and its blank as one word (a line of fewer than
        // eight bytes is left to the general path).
        let kw = u64::from_le_bytes(*b.get(start..)?.first_chunk::<8>()?) & 0x00ff_ffff_ffff_ffff;
        let help = kw == u64::from_le_bytes(*b"# HELP \0");
        if !help && kw != u64::from_le_bytes(*b"# TYPE \0") {
            return None;
        }
        let ns = start + 7;
        let n = self.known_name_len(b, ns);
        if n == 0 || b.get(ns + n) != Some(&b' ') {
            return None;
        }
        // SAFETY: `n > 0` ASCII name characters from `ns`, followed by a
        // space, inside `text`.
        let name = Str::plain(unsafe { span::sub(text, ns, ns + n) });
        let rest = ns + n + 1;
        if !help {
            if let Some((metric_type, next)) = type_word(b, rest) {
                self.pos = next;
                self.line += 1;
                return Some(Entry::Type { name, metric_type });
            }
        }
        let tail = b.get(rest..)?;
        // The end of the line, past the text or type word.
        let eol = |from: usize| match memchr::memchr(b'\n', &tail[from..]) {
            Some(k) => Some((rest + from + k, rest + from + k + 1)),
            None if b.len() == self.src.len() => Some((b.len(), b.len())),
            None => None,
        };
        let (entry, next) = if help {
            // One search finds the end of the line, or a backslash first.
            let (end, next, esc) = match memchr::memchr2(b'\n', b'\\', tail) {
                Some(k) if tail[k] == b'\n' => (rest + k, rest + k + 1, Esc::None),
                Some(k) => {
                    let (end, next) = eol(k)?;
                    (end, next, Esc::Help)
                }
                None if b.len() == self.src.len() => (b.len(), b.len(), Esc::None),
                None => return None,
            };
            // SAFETY: from after the space at `rest - 1` to the line feed
            // at `end` or the end of `text`.
            let raw = unsafe { span::sub(text, rest, end) };
            (
                Entry::Help {
                    name,
                    text: Str { raw, esc },
                },
                next,
            )
        } else {
            // The type words are short: a word-at-a-time search.
            let (end, next) = match scan::find_byte(tail, 0, b'\n') {
                Some(k) => (rest + k, rest + k + 1),
                None => eol(tail.len())?,
            };
            let metric_type = match &b[rest..end] {
                b"counter" => MetricType::Counter,
                b"gauge" => MetricType::Gauge,
                b"histogram" => MetricType::Histogram,
                b"summary" => MetricType::Summary,
                b"untyped" => MetricType::Unknown,
                _ => return None,
            };
            (Entry::Type { name, metric_type }, next)
        };
        self.pos = next;
        self.line += 1;
        Some(entry)
    }

    /// `# HELP`, `# TYPE` and `# UNIT` lines of OpenMetrics on the fast
    /// path (see [`Parser::fast_line`]); as [`Parser::om_line`] reads them.
    #[inline]
    #[allow(unsafe_code)]
    fn fast_om_meta(&mut self, start: usize) -> Option<Entry<'a>> {
        let text = self.text;
        let b = text.as_bytes();
        let kw = b.get(start..start + 7)?;
        let ns = start + 7;
        let n = match kw {
            b"# HELP " | b"# TYPE " | b"# UNIT " => self.known_name_len(b, ns),
            _ => return None,
        };
        if n == 0 || b.get(ns + n) != Some(&b' ') {
            return None;
        }
        // SAFETY: `n > 0` ASCII name characters from `ns`, followed by a
        // space, inside `text`.
        let name = Str::plain(unsafe { span::sub(text, ns, ns + n) });
        let rest = ns + n + 1;
        let tail = b.get(rest..)?;
        // Every metadata line ends in a line feed.
        let (entry, end) = match kw[2] {
            b'H' => {
                let (end, esc) = match memchr::memchr2(b'\n', b'\\', tail)? {
                    k if tail[k] == b'\n' => (rest + k, Esc::None),
                    k => (rest + k + memchr::memchr(b'\n', &tail[k..])?, Esc::Quoted),
                };
                let help = Entry::Help {
                    name,
                    text: Str {
                        raw: text.get(rest..end)?,
                        esc,
                    },
                };
                (help, end)
            }
            b'T' => {
                let end = rest + scan::find_byte(tail, 0, b'\n')?;
                let word = text.get(rest..end)?;
                let metric_type = MetricType::from_word(word).filter(|_| word != "untyped")?;
                (Entry::Type { name, metric_type }, end)
            }
            _ => {
                let end = rest + scan::find_byte(tail, 0, b'\n')?;
                let unit = text.get(rest..end)?;
                if !unit.bytes().all(is_name_char) {
                    return None;
                }
                // As the general path: empty, or the name's `_` suffix.
                let nm = name.raw.as_bytes();
                let u = unit.as_bytes();
                let suffix =
                    nm.len() > u.len() && nm.ends_with(u) && nm[nm.len() - u.len() - 1] == b'_';
                if !u.is_empty() && !suffix {
                    return None;
                }
                (Entry::Unit { name, unit }, end)
            }
        };
        self.pos = end + 1;
        self.line += 1;
        Some(entry)
    }

    /// Debug builds (tests, fuzzing): the general path must read a line the
    /// fast path took to the same entry.
    #[cfg(debug_assertions)]
    fn cross_check(&mut self, fast: &Entry<'a>, start: usize, next: usize, no: u32) {
        let end = if self.src.get(next.wrapping_sub(1)) == Some(&b'\n') && next > start {
            next - 1
        } else {
            next
        };
        let line = &self.text[start..end];
        let general = if self.om {
            self.om_line(line, no, end < next).map(Some)
        } else {
            self.text_line(line, no)
        };
        match general {
            Ok(Some(g)) => assert!(
                same_entry(fast, &g),
                "fast path {fast:?} != general path {g:?} on line {line:?}"
            ),
            other => panic!("fast path took {line:?} as {fast:?}, general path: {other:?}"),
        }
    }

    /// One line of text 0.0.4; `None` for blank lines.
    fn text_line(&mut self, line: &'a str, no: u32) -> Result<Option<Entry<'a>>> {
        let b = line.as_bytes();
        let mut i = skip_ws(b, 0);
        if i == b.len() {
            return Ok(None);
        }
        if b[i] != b'#' {
            return self.sample(line, i, no).map(|s| Some(Entry::Sample(s)));
        }
        // `#` then blanks then HELP/TYPE then blanks: metadata. Anything else
        // is a comment.
        let after_hash = i + 1;
        i = skip_ws(b, after_hash);
        let kw = &b[i..];
        let is_kw = |k: &[u8]| {
            i > after_hash && kw.starts_with(k) && matches!(kw.get(k.len()), Some(b' ' | b'\t'))
        };
        let help = is_kw(b"HELP");
        if !help && !is_kw(b"TYPE") {
            return Ok(Some(Entry::Comment(&line[after_hash..])));
        }
        i = skip_ws(b, i + 4);
        let (name, j) = self.meta_name(line, i, no)?;
        let rest_start = skip_ws(b, j);
        if j < b.len() && rest_start == j {
            return Err(syntax(no, j, "whitespace after the metric name", line));
        }
        if help {
            // Exactly one blank separates name and text, as in Prometheus:
            // further leading blanks belong to the text.
            let text = &line[(j + 1).min(b.len())..];
            let esc = if text.as_bytes().contains(&b'\\') {
                Esc::Help
            } else {
                Esc::None
            };
            return Ok(Some(Entry::Help {
                name,
                text: Str { raw: text, esc },
            }));
        }
        let word = line[rest_start..].trim_end_matches([' ', '\t']);
        match word {
            "counter" | "gauge" | "histogram" | "summary" | "untyped" => {}
            _ => {
                return Err(Error::Syntax {
                    line: no,
                    column: col(rest_start),
                    expected: "metric type (counter, gauge, histogram, summary, untyped)".into(),
                    found: if word.is_empty() {
                        "end of line".into()
                    } else {
                        format!("{word:?}")
                    },
                });
            }
        }
        let metric_type = MetricType::from_word(word).unwrap_or_default();
        Ok(Some(Entry::Type { name, metric_type }))
    }

    /// The metric name of a metadata line: classic, or quoted UTF-8.
    fn meta_name(&self, line: &'a str, i: usize, no: u32) -> Result<(Str<'a>, usize)> {
        let b = line.as_bytes();
        if b.get(i) == Some(&b'"') {
            let (end, _) = quoted_end(b, i + 1)
                .ok_or_else(|| syntax(no, b.len(), "closing '\"' of the metric name", line))?;
            let s = Str::quoted(&line[i + 1..end]);
            if s.raw.is_empty() {
                return Err(syntax(no, i, "a non-empty metric name", line));
            }
            return Ok((s, end + 1));
        }
        let n = name_len(b, i);
        if n == 0 {
            return Err(syntax(no, i, "metric name", line));
        }
        Ok((Str::plain(&line[i..i + n]), i + n))
    }

    /// One line of OpenMetrics.
    fn om_line(&mut self, line: &'a str, no: u32, has_lf: bool) -> Result<Entry<'a>> {
        let b = line.as_bytes();
        if b.first() == Some(&b'#') {
            if line == "# EOF" {
                self.state = ParseState::SawEof;
                return Ok(Entry::Eof);
            }
            if !has_lf {
                return Err(syntax(no, b.len(), "line feed", line));
            }
            let (kind, rest) = if let Some(r) = line.strip_prefix("# HELP ") {
                (0, r)
            } else if let Some(r) = line.strip_prefix("# TYPE ") {
                (1, r)
            } else if let Some(r) = line.strip_prefix("# UNIT ") {
                (2, r)
            } else {
                return Err(syntax(
                    no,
                    1,
                    "\" HELP \", \" TYPE \", \" UNIT \" or \" EOF\"",
                    line,
                ));
            };
            let i = line.len() - rest.len();
            if self.strict.is_some() && b.get(i) == Some(&b'"') {
                // OpenMetrics 1.0 has no quoted names.
                return Err(syntax(no, i, "metric name", line));
            }
            let (name, j) = self.meta_name(line, i, no)?;
            // After the name: one space, then the rest (HELP and UNIT may be
            // empty, but the space is still required).
            if b.get(j) != Some(&b' ') {
                return Err(syntax(no, j, "' ' after the metric name", line));
            }
            let value_at = j + 1;
            let value = &line[value_at..];
            return match kind {
                0 => Ok(Entry::Help {
                    name,
                    text: Str::quoted(value),
                }),
                1 => match MetricType::from_word(value).filter(|_| value != "untyped") {
                    Some(metric_type) => Ok(Entry::Type { name, metric_type }),
                    None => Err(Error::Syntax {
                        line: no,
                        column: col(value_at),
                        expected: "metric type (counter, gauge, histogram, gaugehistogram, \
                                   summary, info, stateset, unknown)"
                            .into(),
                        found: found_at(line, value_at),
                    }),
                },
                _ => {
                    if let Some(k) = value.bytes().position(|c| !is_name_char(c)) {
                        return Err(syntax(no, value_at + k, "unit name character", line));
                    }
                    // As Prometheus: a unit must be the family name's suffix.
                    let n = name.as_cow();
                    let fits = n.len() > value.len()
                        && n.ends_with(value)
                        && n.as_bytes()[n.len() - value.len() - 1] == b'_';
                    if !value.is_empty() && !fits {
                        return Err(Error::Invalid {
                            line: no,
                            column: col(value_at),
                            reason: format!("unit {value:?} is not a suffix of metric {n:?}"),
                        });
                    }
                    Ok(Entry::Unit { name, unit: value })
                }
            };
        }
        if b.is_empty() {
            return Err(syntax(
                no,
                0,
                "a sample or metadata line (blank lines are not allowed)",
                line,
            ));
        }
        if !has_lf {
            // Only `# EOF` may end the input without a newline; make sure the
            // line itself is valid first, so the error names the real fault.
            self.sample(line, 0, no)?;
            return Err(syntax(no, b.len(), "line feed", line));
        }
        self.sample(line, 0, no).map(Entry::Sample)
    }

    /// A sample line starting at byte `i`.
    fn sample(&mut self, line: &'a str, mut i: usize, no: u32) -> Result<Sample<'a>> {
        let b = line.as_bytes();
        let om = self.om;
        let mut name: Option<Str<'a>> = None;
        let n = name_len(b, i);
        if n > 0 {
            name = Some(Str::plain(&line[i..i + n]));
            i += n;
        } else if b[i] != b'{' {
            return Err(syntax(no, i, "metric name or '{'", line));
        }
        let mut labels = Labels::EMPTY;
        if !om && name.is_some() {
            // Text allows blanks between the name and `{`.
            let j = skip_ws(b, i);
            if b.get(j) == Some(&b'{') {
                i = j;
            }
        }
        let mut braces = false;
        if b.get(i) == Some(&b'{') {
            braces = true;
            let (l, qname, j) = self.labels(line, i, no, name.is_none())?;
            labels = l;
            if let Some(q) = qname {
                name = Some(q);
            }
            i = j;
        }
        let Some(name) = name else {
            return Err(syntax(
                no,
                i.saturating_sub(1),
                "a quoted metric name inside the braces",
                line,
            ));
        };
        // Value. Text allows it right after `}` with no blank.
        if om || !braces || matches!(b.get(i), Some(b' ' | b'\t')) {
            i = self.sep(line, i, no, "' ' before the value")?;
        }
        let vend = token_end(b, i, om);
        let value = parse_value_at(line, i, vend, no)?.0;
        i = vend;
        let mut sample = Sample {
            name,
            labels,
            value,
            timestamp_ms: None,
            exemplar: None,
            line: no,
            ts_text: None,
        };
        if i == b.len() {
            return Ok(sample);
        }
        if om {
            i = self.sep(line, i, no, "' ' after the value")?;
            if b.get(i) != Some(&b'#') {
                let tend = token_end(b, i, true);
                sample.timestamp_ms = Some(om_timestamp(line, i, tend, no)?);
                sample.ts_text = Some(&line[i..tend]);
                i = tend;
                if i == b.len() {
                    return Ok(sample);
                }
                i = self.sep(line, i, no, "' ' after the timestamp")?;
            }
            if !line[i..].starts_with("# {") {
                return Err(syntax(no, i, "exemplar (\"# {\")", line));
            }
            i += 2;
            let (elabels, qname, j) = self.labels(line, i, no, false)?;
            debug_assert!(qname.is_none());
            i = self.sep(line, j, no, "' ' before the exemplar value")?;
            let vend = token_end(b, i, true);
            let evalue = parse_value_at(line, i, vend, no)?.0;
            i = vend;
            let mut ex = Exemplar {
                labels: elabels,
                value: evalue,
                timestamp_ms: None,
            };
            if i < b.len() {
                i = self.sep(line, i, no, "' ' after the exemplar value")?;
                let tend = token_end(b, i, true);
                ex.timestamp_ms = Some(om_timestamp(line, i, tend, no)?);
                i = tend;
                if i < b.len() {
                    return Err(syntax(no, i, "end of line after the exemplar", line));
                }
            }
            sample.exemplar = Some(ex);
            return Ok(sample);
        }
        // Text: optional timestamp (digits), then optional blanks.
        let mut j = skip_ws(b, i);
        if j == b.len() {
            return Ok(sample);
        }
        if j == i {
            return Err(syntax(no, i, "whitespace after the value", line));
        }
        let tend = token_end(b, j, false);
        sample.ts_text = Some(&line[j..tend]);
        sample.timestamp_ms =
            Some(
                number::parse_ms(&line[j..tend]).ok_or_else(|| Error::Syntax {
                    line: no,
                    column: col(j),
                    expected: "timestamp (integer milliseconds)".into(),
                    found: format!("{:?}", &line[j..tend]),
                })?,
            );
        j = skip_ws(b, tend);
        if j < b.len() {
            return Err(syntax(no, j, "end of line after the timestamp", line));
        }
        Ok(sample)
    }

    /// The separator between tokens: one space in OpenMetrics, blanks in text.
    fn sep(&self, line: &str, i: usize, no: u32, what: &'static str) -> Result<usize> {
        let b = line.as_bytes();
        if self.om {
            if b.get(i) == Some(&b' ') && b.get(i + 1).is_some_and(|&c| c != b' ') {
                return Ok(i + 1);
            }
            if b.get(i) == Some(&b' ') {
                return Err(syntax(no, i + 1, "a single space", line));
            }
            return Err(syntax(no, i, what, line));
        }
        let j = skip_ws(b, i);
        if j == i || j == b.len() {
            return Err(syntax(no, j, what, line));
        }
        Ok(j)
    }

    /// A brace-enclosed label set starting at `i` (the `{`). Returns the view,
    /// a quoted metric name found inside (when `name_allowed`), and the index
    /// after the `}`.
    fn labels(
        &mut self,
        line: &'a str,
        open: usize,
        no: u32,
        name_allowed: bool,
    ) -> Result<(Labels<'a>, Option<Str<'a>>, usize)> {
        let b = line.as_bytes();
        let om = self.om;
        let strict = self.strict.is_some();
        let mut i = open + 1;
        let mut count: u16 = 0;
        let mut qname: Option<Str<'a>> = None;
        self.names.clear();
        let mut after_comma = false;
        // Whether the set is in the plain form `Labels` iterates fast.
        let mut plain = true;
        loop {
            if !om {
                let j = skip_ws(b, i);
                plain &= j == i;
                i = j;
            }
            let Some(&c) = b.get(i) else {
                return Err(syntax(no, i, "label name or '}'", line));
            };
            if c == b'}' {
                if after_comma && strict {
                    return Err(syntax(no, i, "label name after ','", line));
                }
                break;
            }
            // An item: label name, or quoted string (a UTF-8 label name, or
            // the metric name when followed by ',' or '}').
            let (item_start, item_end, quoted) = if c == b'"' {
                if strict {
                    return Err(syntax(no, i, "label name", line));
                }
                let (end, _) = quoted_end(b, i + 1)
                    .ok_or_else(|| syntax(no, b.len(), "closing '\"'", line))?;
                plain = false;
                (i + 1, end, true)
            } else {
                let n = label_name_len(b, i);
                if n == 0 {
                    return Err(syntax(no, i, "label name", line));
                }
                (i, i + n, false)
            };
            i = item_end + usize::from(quoted);
            if !om {
                let j = skip_ws(b, i);
                plain &= j == i;
                i = j;
            }
            match b.get(i) {
                Some(b'=') => {}
                Some(b',' | b'}') if quoted => {
                    if !name_allowed || qname.is_some() {
                        return Err(syntax(
                            no,
                            item_start - 1,
                            "label name (the metric name is already given)",
                            line,
                        ));
                    }
                    let s = Str::quoted(&line[item_start..item_end]);
                    if s.raw.is_empty() {
                        return Err(syntax(no, item_start - 1, "a non-empty metric name", line));
                    }
                    qname = Some(s);
                    after_comma = b[i] == b',';
                    if after_comma {
                        i += 1;
                    }
                    continue;
                }
                _ => return Err(syntax(no, i, "'='", line)),
            }
            i += 1;
            if !om {
                let j = skip_ws(b, i);
                plain &= j == i;
                i = j;
            }
            if b.get(i) != Some(&b'"') {
                return Err(syntax(no, i, "'\"' opening the label value", line));
            }
            let (vend, value_esc) = quoted_end(b, i + 1)
                .ok_or_else(|| syntax(no, b.len(), "'\"' closing the label value", line))?;
            plain &= !value_esc;
            // Duplicate names: refused in strict mode; in scrape mode left to
            // the consumer, as Prometheus's parser leaves them to its store
            // (which drops the sample, not the scrape).
            let nm = &b[item_start..item_end];
            if strict && self.names.iter().any(|&(s, e)| &b[s..e] == nm) {
                return Err(Error::Invalid {
                    line: no,
                    column: col(item_start),
                    reason: format!("duplicate label name {:?}", &line[item_start..item_end]),
                });
            }
            if strict {
                self.names.push((item_start, item_end));
            }
            count = count.saturating_add(1);
            i = vend + 1;
            if !om {
                let j = skip_ws(b, i);
                plain &= j == i;
                i = j;
            }
            match b.get(i) {
                Some(b',') => {
                    i += 1;
                    after_comma = true;
                }
                Some(b'}') => break,
                // Prometheus's text parser takes pairs without commas
                // (`{a="1" b="2"}`); so do we, in text only.
                Some(&c) if !om && (c == b'"' || c.is_ascii_alphabetic() || c == b'_') => {
                    after_comma = false;
                    plain = false;
                }
                _ => return Err(syntax(no, i, "',' or '}'", line)),
            }
        }
        let labels = Labels {
            raw: &line[open + 1..i],
            len: count,
            plain,
            ends: [0; 2 * CACHED],
        };
        Ok((labels, qname, i + 1))
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.state == ParseState::Done {
            return None;
        }
        // The fast path (a failed attempt costs a few compares; the general
        // path then reads the line). Not after an OpenMetrics `# EOF`, and
        // not in strict mode, whose extra checks are the general path's.
        if self.fast && self.state == ParseState::Running {
            let start = self.pos;
            #[cfg(debug_assertions)]
            let no = self.line;
            if let Some(entry) = self.fast_line(start) {
                #[cfg(debug_assertions)]
                self.cross_check(&entry, start, self.pos, no);
                return Some(Ok(entry));
            }
        }
        self.next_entry()
    }
}

fn om_timestamp(line: &str, i: usize, end: usize, no: u32) -> Result<i64> {
    number::parse_seconds_as_ms(&line[i..end]).ok_or_else(|| Error::Syntax {
        line: no,
        column: col(i),
        expected: "timestamp (seconds, a real number)".into(),
        found: if i == end {
            "end of line".into()
        } else {
            format!("{:?}", &line[i..end])
        },
    })
}

fn parse_value_at(line: &str, i: usize, end: usize, no: u32) -> Result<(f64, NumberKind)> {
    number::parse_value(&line[i..end]).ok_or_else(|| Error::Syntax {
        line: no,
        column: col(i),
        expected: "sample value (a number, Inf or NaN)".into(),
        found: if i == end {
            "end of line".into()
        } else {
            format!("{:?}", &line[i..end])
        },
    })
}

/// A text 0.0.4 type word and its line feed at `b[i..]`, by one or two
/// word compares, with the index after the line feed; `None` leaves it to
/// the search for the line feed and the compare by length (the end of the
/// input, anything else).
#[inline(always)]
#[allow(unsafe_code)]
fn type_word(b: &[u8], i: usize) -> Option<(MetricType, usize)> {
    if i > b.len() || b.len() - i < 8 {
        return None;
    }
    // SAFETY: `i + 8 <= b.len()`, just tested without overflow.
    let w = unsafe { span::u64_at(b, i) };
    let word = |s: &[u8; 8]| u64::from_le_bytes(*s);
    if w == word(b"untyped\n") {
        Some((MetricType::Unknown, i + 8))
    } else if w == word(b"counter\n") {
        Some((MetricType::Counter, i + 8))
    } else if w == word(b"summary\n") {
        Some((MetricType::Summary, i + 8))
    } else if w & 0xffff_ffff_ffff == word(b"gauge\n\0\0") {
        Some((MetricType::Gauge, i + 6))
    } else if w == word(b"histogra")
        && b.len() - i >= 10
        // SAFETY: `i + 10 <= b.len()`, just tested.
        && unsafe { span::u16_at(b, i + 8) } == u16::from_le_bytes(*b"m\n")
    {
        Some((MetricType::Histogram, i + 10))
    } else {
        None
    }
}

/// Whether two entries are the same: names, texts and label pairs as
/// written, values bit for bit, timestamps, line numbers.
#[cfg(any(test, debug_assertions))]
fn same_entry(a: &Entry<'_>, b: &Entry<'_>) -> bool {
    fn labels(a: &Labels<'_>, b: &Labels<'_>) -> bool {
        a.raw == b.raw && a.len == b.len && a.iter().eq(b.iter()) && a.iter().count() == a.len()
    }
    match (a, b) {
        (Entry::Help { name: n1, text: t1 }, Entry::Help { name: n2, text: t2 }) => {
            n1 == n2 && t1 == t2
        }
        (
            Entry::Type {
                name: n1,
                metric_type: m1,
            },
            Entry::Type {
                name: n2,
                metric_type: m2,
            },
        ) => n1 == n2 && m1 == m2,
        (Entry::Unit { name: n1, unit: u1 }, Entry::Unit { name: n2, unit: u2 }) => {
            n1 == n2 && u1 == u2
        }
        (Entry::Comment(c1), Entry::Comment(c2)) => c1 == c2,
        (Entry::Eof, Entry::Eof) => true,
        (Entry::Sample(s1), Entry::Sample(s2)) => {
            let ex = match (&s1.exemplar, &s2.exemplar) {
                (None, None) => true,
                (Some(e1), Some(e2)) => {
                    labels(&e1.labels, &e2.labels)
                        && e1.value.to_bits() == e2.value.to_bits()
                        && e1.timestamp_ms == e2.timestamp_ms
                }
                _ => false,
            };
            s1.name == s2.name
                && labels(&s1.labels, &s2.labels)
                && s1.value.to_bits() == s2.value.to_bits()
                && s1.timestamp_ms == s2.timestamp_ms
                && s1.ts_text == s2.ts_text
                && s1.line == s2.line
                && ex
        }
        _ => false,
    }
}

#[inline]
fn is_name_char(c: u8) -> bool {
    scan::is_metric_char(c)
}

/// Length of a classic metric name at `i` (0 if none).
#[inline]
fn name_len(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(&c) if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {}
        _ => return 0,
    }
    1 + scan::metric_chars(b, i + 1)
}

use scan::{NameCache, label_name_len};

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// End of a value or timestamp token: up to a space (and, in text, a tab).
#[inline]
fn token_end(b: &[u8], i: usize, om: bool) -> usize {
    let mut j = i;
    while j < b.len() && b[j] != b' ' && (om || b[j] != b'\t') {
        j += 1;
    }
    j
}

fn col(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

/// What is at byte `i` of `line`, for messages.
fn found_at(line: &str, i: usize) -> String {
    match line.get(i..).and_then(|s| s.chars().next()) {
        None => "end of line".into(),
        Some(_) => {
            let rest = &line[i..];
            let cut = rest.char_indices().nth(16).map_or(rest.len(), |(k, _)| k);
            format!("{:?}", &rest[..cut])
        }
    }
}

fn syntax(line_no: u32, i: usize, expected: &'static str, line: &str) -> Error {
    Error::Syntax {
        line: line_no,
        column: col(i),
        expected: expected.into(),
        found: found_at(line, i),
    }
}

/// Line and column (from 1) of byte offset `at`.
fn line_col(src: &[u8], at: usize) -> (u32, u32) {
    let before = &src[..at.min(src.len())];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        col(at - line_start),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every entry and the error, if any, through one path.
    fn read(input: &[u8], format: Format, fast: bool) -> (Vec<Entry<'_>>, Option<String>) {
        let mut p = Parser::new(input, format);
        p.fast = fast;
        let mut entries = Vec::new();
        for e in p {
            match e {
                Ok(e) => entries.push(e),
                Err(e) => return (entries, Some(e.to_string())),
            }
        }
        (entries, None)
    }

    fn same_reading(input: &[u8]) -> std::result::Result<(), TestCaseError> {
        same_reading_as(input, Format::Text)
    }

    fn same_reading_as(input: &[u8], format: Format) -> std::result::Result<(), TestCaseError> {
        let (fast, fast_err) = read(input, format, true);
        let (general, general_err) = read(input, format, false);
        prop_assert_eq!(
            fast.len(),
            general.len(),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        for (f, g) in fast.iter().zip(&general) {
            prop_assert!(same_entry(f, g), "{:?} != {:?}", f, g);
        }
        prop_assert_eq!(fast_err, general_err);
        Ok(())
    }

    /// Mostly one of `common`, sometimes one of `odd`.
    fn pick(common: &[&'static str], odd: &[&'static str]) -> BoxedStrategy<&'static str> {
        prop_oneof![
            6 => prop::sample::select(common.to_vec()),
            1 => prop::sample::select(odd.to_vec()),
        ]
        .boxed()
    }

    /// A line of text 0.0.4: mostly well-formed, with the odd part that
    /// sends it to the general path or makes it an error.
    fn line() -> impl Strategy<Value = String> {
        let name = pick(
            &["a", "node_cpu_seconds_total", "x:y", "_z"],
            &["1bad", "\"q.n\"", "a b", "", "a\u{e9}"],
        );
        let labels = pick(
            &[
                "",
                "{}",
                "{a=\"b\"}",
                "{a=\"b\",}",
                "{a=\"b\",c=\"d\",e=\"\"}",
                "{le=\"+Inf\",quantile=\"0.5\",instance=\"127.0.0.1:9100\",job=\"node\"}",
                "{a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\",f=\"6\",g=\"7\",h=\"8\",i=\"9\"}",
                "{a=\"\u{e9}\"}",
                // Names around the lengths the name cache keys on (8, 15, 16).
                "{instance=\"127.0.0.1:9100\",job=\"node\"}",
                "{abcdefghijklmno=\"x\",abcdefghijklmnop=\"y\",abcdefghijklmnopq=\"z\"}",
            ],
            &[
                "{a=\"b\\\"c\"}",
                "{a = \"b\"}",
                "{a=\"b\" c=\"d\"}",
                "{\"u.tf\"=\"x\"}",
                "{\"q.n\"}",
                "{a=\"b\"",
                "{a=b}",
                "{,}",
                "{a=\"b\",a=\"c\"}",
                "{1=\"x\"}",
                " {a=\"b\"}",
                "{a=\"b\\\\\"}",
                // Bad characters in names the cache may hold the good twin of.
                "{instanc\u{e9}=\"x\"}",
                "{instance.=\"x\"}",
                "{abcdefghijklmn-=\"x\"}",
                "{abcdefgh\u{0}=\"x\"}",
                "{=\"x\"}",
                "{9abcdefghij=\"x\"}",
            ],
        );
        let sep = pick(&[" "], &["  ", "\t", ""]);
        let value = pick(
            &[
                "1",
                "-0",
                "1.5e3",
                "1.",
                ".5",
                "7.6238e-05",
                "1e-22",
                "9e22",
                "2.279966416e+09",
                "0.1",
                "12345",
                "-17.25",
            ],
            &[
                "Inf",
                "NaN",
                "+1",
                "1e400",
                "0x1",
                "12345678901234567890",
                "1.7953283591354845e+09",
                "",
                "1e",
                "-",
                "1_0",
                "1e23",
                "-Inf",
            ],
        );
        let ts = pick(
            &["", " 123", " -5", " 1795328359972", " 999999999999999999"],
            &[
                " 99999999999999999999",
                " 1.5",
                "  7",
                " 1795328359972 ",
                " +3",
                " 9223372036854775807",
                " x",
            ],
        );
        let end = pick(&["\n"], &["\r\n", " \n", "", "\n\n", "\t\n"]);
        let meta = pick(
            &[
                "# HELP a x\\ny\n",
                "# HELP a plain text\n",
                "# TYPE a counter\n",
                "# TYPE b summary\n",
            ],
            &[
                "# TYPE a  gauge\n",
                "# TYPE a foo\n",
                "#HELP a\n",
                "# HELP a\n",
                "# HELP a \n",
                "# TYPE \"q.n\" gauge\n",
                "# TYPE a untyped \n",
                "# comment\n",
                "# EOF\n",
                "\n",
                "  \n",
                "# TYPE a histogram",
                "# HELP a_b\\",
                "# TYPE 9a gauge\n",
            ],
        );
        prop_oneof![
            3 => (name, labels, sep, value, ts, end).prop_map(|(n, l, s, v, t, e)| {
                format!("{n}{l}{s}{v}{t}{e}")
            }),
            1 => meta.prop_map(str::to_owned),
        ]
    }

    /// A line of OpenMetrics: the text lines (whose blanks, comments and
    /// `untyped` OpenMetrics refuses) and OpenMetrics' own metadata,
    /// timestamps, exemplars and `# EOF`.
    fn om_line() -> impl Strategy<Value = String> {
        let meta = pick(
            &[
                "# HELP a_seconds x\\\"y\n",
                "# HELP a_seconds plain text\n",
                "# TYPE a_seconds gaugehistogram\n",
                "# TYPE a_seconds info\n",
                "# TYPE a_seconds unknown\n",
                "# UNIT a_seconds seconds\n",
                "# UNIT a_seconds \n",
            ],
            &[
                "# UNIT a seconds\n",
                "# UNIT a_seconds se.conds\n",
                "# UNIT xseconds seconds\n",
                "# UNIT a_seconds seconds",
                "# UNIT a_seconds\n",
                "# TYPE a_seconds untyped\n",
                "# TYPE a_seconds counter \n",
                "# HELP a_seconds\n",
                "# HELP a_seconds x",
                "# help a b\n",
                "# EOF\n",
                "# EOF",
                "#EOF\n",
            ],
        );
        let tail = pick(
            &["", " 1795328359.972", " 17", " 1.5"],
            &[
                " -1.5",
                " 1e3",
                " 1.5 ",
                " 1.2345678901234567890",
                " .5",
                " 1.",
                " # {a=\"b\"} 1",
                " 1 # {} 2 3",
                " # {a=\"b\"} 1 ",
            ],
        );
        prop_oneof![
            4 => (line(), tail).prop_map(|(l, t)| match l.strip_suffix('\n') {
                Some(body) => format!("{body}{t}\n"),
                None => l,
            }),
            1 => meta.prop_map(str::to_owned),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The same for OpenMetrics (scrape mode), usually ended by
        /// `# EOF`, sometimes with lines after it.
        #[test]
        fn fast_and_general_paths_agree_on_openmetrics(
            lines in prop::collection::vec(om_line(), 1..10),
            eof in prop::sample::select(vec!["# EOF\n", "# EOF", "", "# EOF\na 1\n"]),
        ) {
            let doc = lines.concat() + eof;
            same_reading_as(doc.as_bytes(), Format::OpenMetrics)?;
        }

        /// OpenMetrics with a byte changed or the input cut short.
        #[test]
        fn fast_and_general_paths_agree_on_damaged_openmetrics(
            lines in prop::collection::vec(om_line(), 1..6),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(vec![0xffu8, b'"', b'\\', b'\n', b' ', b'{', b'}', b'=', b',', b'#', b'_', b'0']),
            cut in any::<bool>(),
        ) {
            let mut doc = (lines.concat() + "# EOF\n").into_bytes();
            let i = at.index(doc.len().max(1)).min(doc.len().saturating_sub(1));
            if cut {
                doc.truncate(i);
            } else if let Some(b) = doc.get_mut(i) {
                *b = byte;
            }
            same_reading_as(&doc, Format::OpenMetrics)?;
        }

        /// The fast path and the general path read any mix of common and
        /// unusual lines to the same entries and the same error.
        #[test]
        fn fast_and_general_paths_agree(lines in prop::collection::vec(line(), 1..10)) {
            let doc = lines.concat();
            same_reading(doc.as_bytes())?;
        }

        /// Also with a byte changed anywhere (invalid UTF-8 included) or
        /// the input cut short.
        #[test]
        fn fast_and_general_paths_agree_on_damaged_input(
            lines in prop::collection::vec(line(), 1..6),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(vec![0xffu8, b'"', b'\\', b'\n', b' ', b'{', b'}', b'=', b',', b'#', b'a', b'0']),
            cut in any::<bool>(),
        ) {
            let mut doc = lines.concat().into_bytes();
            let i = at.index(doc.len().max(1)).min(doc.len().saturating_sub(1));
            if cut {
                doc.truncate(i);
            } else if let Some(b) = doc.get_mut(i) {
                *b = byte;
            }
            same_reading(&doc)?;
        }
    }

    /// The fast path's remembered timestamps: interleaved targets, more
    /// values than slots, and values that are prefixes of one another.
    #[test]
    fn remembered_timestamps_read_as_written() {
        let stamps = [
            "1795328360122",
            "1795328360509",
            "17953283601220",
            "179532836012",
            "1795328360122",
            "5",
            "1795328360023",
            "-5",
            "1795328359708",
            "1795328360509",
            "55",
            "5",
        ];
        let mut doc = String::new();
        for (k, t) in stamps.iter().cycle().take(40).enumerate() {
            doc.push_str(&format!("m{{i=\"{}\"}} {k} {t}\n", k % 3));
        }
        let (entries, err) = read(doc.as_bytes(), Format::Text, true);
        assert_eq!(err, None);
        let got: Vec<Option<i64>> = entries
            .iter()
            .map(|e| match e {
                Entry::Sample(s) => s.timestamp_ms,
                _ => None,
            })
            .collect();
        let want: Vec<Option<i64>> = stamps
            .iter()
            .cycle()
            .take(40)
            .map(|t| Some(t.parse().unwrap()))
            .collect();
        assert_eq!(got, want);
        same_reading(doc.as_bytes()).unwrap();
        // The same in seconds, as OpenMetrics writes them.
        let om = doc.replace("1795328", "1795.328") + "# EOF\n";
        same_reading_as(om.as_bytes(), Format::OpenMetrics).unwrap();
    }

    /// The pair masks of the fast path (`plain_pair`: a name of up to 15
    /// bytes, the value's end within 32 bytes of the pair's start or past
    /// them) against the general path: names and values of every length
    /// around those limits, with a blank, a backslash, a quote or a line
    /// feed at each place of the value, at the end of the input and with
    /// room after it, in both formats.
    #[test]
    fn label_pairs_read_the_same_at_every_length() {
        let names = [
            "a",
            "_9",
            "abcdefg",
            "abcdefgh",
            "abcdefghijklmn",
            "abcdefghijklmno",
        ];
        let longer = [
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
            "9a",
            "a.b",
            "a\u{e9}",
        ];
        let mut lines = Vec::new();
        for name in names.iter().chain(&longer) {
            for len in 0..40 {
                let value = "v".repeat(len);
                lines.push(format!("m{{{name}=\"{value}\"}} 1\n"));
                lines.push(format!("m{{x=\"y\",{name}=\"{value}\",z=\"\"}} 1 2\n"));
                for at in 0..len {
                    for odd in [" ", "\\\\", "\\\"", "\n", "\""] {
                        let mut v = value.clone();
                        v.replace_range(at..at + 1, odd);
                        lines.push(format!("m{{{name}=\"{v}\"}} 1\n"));
                    }
                }
            }
        }
        let pad = "# TYPE padding_to_make_room_after_the_line gauge\n";
        for line in &lines {
            for tail in ["", pad] {
                let input = format!("{line}{tail}");
                same_reading(input.as_bytes()).unwrap();
                let om = format!("{input}# EOF\n");
                same_reading_as(om.as_bytes(), Format::OpenMetrics).unwrap();
            }
        }
    }

    /// `# TYPE` lines through the word compares of `type_word` and past
    /// them, against the general path: every type word and near misses,
    /// with a line feed, a blank, a carriage return or the end of the input
    /// after them, and with and without room for the compares after them.
    #[test]
    fn type_words_read_the_same() {
        let words = [
            "untyped",
            "counter",
            "summary",
            "gauge",
            "histogram",
            "gaugex",
            "histograms",
            "histogra",
            "untype",
            "Counter",
            "",
            "unknown",
            "info",
            "stateset",
        ];
        for word in words {
            for after in ["\n", " \n", "\r\n", "\t\n", ""] {
                for tail in ["", "a 1\n", "m{a=\"b\"} 1\n"] {
                    let input = format!("# TYPE m {word}{after}{tail}");
                    same_reading(input.as_bytes()).unwrap();
                }
            }
        }
        // Keyword lines shorter than the keyword's word, at the end.
        for line in [
            "#",
            "# TYPE",
            "# TYPE ",
            "# HELP",
            "# HELP ",
            "# HELP m",
            "# HELP m \\",
        ] {
            same_reading(line.as_bytes()).unwrap();
            same_reading(format!("a 1\n{line}").as_bytes()).unwrap();
        }
    }

    #[test]
    fn corpus_reads_the_same_through_both_paths() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
        let mut files = 0;
        for dir in ["exposition", "textparse"] {
            let entries = std::fs::read_dir(root.join(dir))
                .unwrap_or_else(|e| panic!("{} (../shared must exist): {e}", root.display()));
            for f in entries {
                let path = f.unwrap().path();
                if !path.is_file() {
                    continue;
                }
                let input = std::fs::read(&path).unwrap();
                // Both formats: a text file read as OpenMetrics stops at
                // the same line with the same error either way.
                for format in [Format::Text, Format::OpenMetrics] {
                    same_reading_as(&input, format)
                        .unwrap_or_else(|e| panic!("{} as {format:?}: {e}", path.display()));
                }
                files += 1;
            }
        }
        assert!(files >= 10, "only {files} corpus files");
    }
}
