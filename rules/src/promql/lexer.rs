//! PromQL lexer.
//!
//! Design note: Prometheus's lexer is a state machine that changes meaning
//! inside `{...}` (label matchers) and `[...]` (where `:` separates a
//! subquery's range from its step instead of being part of a metric name).
//! We keep the same two states with a bracket flag. Numbers and durations
//! share a scanner: an integer directly followed by a unit letter
//! (`y w d h m s ms`) is a duration, as in `lexNumberOrDuration` upstream.

use crate::Error;

/// One token kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An identifier or keyword, as written.
    Ident(String),
    /// A number literal (`1`, `0x1f`, `1e3`, `Inf`, `NaN`).
    Number(f64),
    /// A duration literal in milliseconds (`5m`, `1h30m`).
    Duration(i64),
    /// A string literal, unquoted. Go escapes can produce bytes that are not
    /// UTF-8, so this is bytes.
    Str(Vec<u8>),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    At,
    Assign,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eql,
    Neq,
    Lss,
    Lte,
    Gtr,
    Gte,
    EqlRegex,
    NeqRegex,
    Eof,
}

impl Tok {
    /// How Prometheus names the token in "unexpected X" messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("identifier {s:?}"),
            Tok::Number(_) => "number".into(),
            Tok::Duration(_) => "duration".into(),
            Tok::Str(_) => "string".into(),
            Tok::LParen => "\"(\"".into(),
            Tok::RParen => "\")\"".into(),
            Tok::LBrace => "\"{\"".into(),
            Tok::RBrace => "\"}\"".into(),
            Tok::LBracket => "\"[\"".into(),
            Tok::RBracket => "\"]\"".into(),
            Tok::Comma => "\",\"".into(),
            Tok::Colon => "\":\"".into(),
            Tok::At => "\"@\"".into(),
            Tok::Assign => "\"=\"".into(),
            Tok::Add => "\"+\"".into(),
            Tok::Sub => "\"-\"".into(),
            Tok::Mul => "\"*\"".into(),
            Tok::Div => "\"/\"".into(),
            Tok::Mod => "\"%\"".into(),
            Tok::Pow => "\"^\"".into(),
            Tok::Eql => "\"==\"".into(),
            Tok::Neq => "\"!=\"".into(),
            Tok::Lss => "\"<\"".into(),
            Tok::Lte => "\"<=\"".into(),
            Tok::Gtr => "\">\"".into(),
            Tok::Gte => "\">=\"".into(),
            Tok::EqlRegex => "\"=~\"".into(),
            Tok::NeqRegex => "\"!~\"".into(),
            Tok::Eof => "end of input".into(),
        }
    }
}

/// A token and its byte range in the input.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

/// Splits a whole query into tokens.
pub(crate) fn lex(input: &str) -> Result<Vec<Token>, Error> {
    let mut lx = Lexer {
        src: input.as_bytes(),
        input,
        pos: 0,
        bracket_depth: 0,
        brace_open: false,
        out: Vec::new(),
    };
    lx.run()?;
    Ok(lx.out)
}

struct Lexer<'a> {
    src: &'a [u8],
    input: &'a str,
    pos: usize,
    bracket_depth: usize,
    brace_open: bool,
    out: Vec<Token>,
}

fn is_alpha(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphabetic()
}

fn is_alnum(c: u8) -> bool {
    is_alpha(c) || c.is_ascii_digit()
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<u8> {
        self.src.get(self.pos + n).copied()
    }

    fn err(&self, at: usize, msg: impl Into<String>) -> Error {
        Error::parse_at(self.input, at, msg)
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.out.push(Token {
            tok,
            start,
            end: self.pos,
        });
    }

    fn run(&mut self) -> Result<(), Error> {
        while let Some(c) = self.peek() {
            let start = self.pos;
            match c {
                b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                b'#' => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                b'(' | b')' | b',' | b'@' | b'+' | b'-' | b'*' | b'/' | b'%' | b'^' => {
                    self.pos += 1;
                    let t = match c {
                        b'(' => Tok::LParen,
                        b')' => Tok::RParen,
                        b',' => Tok::Comma,
                        b'@' => Tok::At,
                        b'+' => Tok::Add,
                        b'-' => Tok::Sub,
                        b'*' => Tok::Mul,
                        b'/' => Tok::Div,
                        b'%' => Tok::Mod,
                        _ => Tok::Pow,
                    };
                    self.push(t, start);
                }
                b'{' => {
                    if self.brace_open {
                        return Err(self.err(start, "unexpected left brace '{'"));
                    }
                    self.brace_open = true;
                    self.pos += 1;
                    self.push(Tok::LBrace, start);
                }
                b'}' => {
                    if !self.brace_open {
                        return Err(self.err(start, "unexpected right brace '}'"));
                    }
                    self.brace_open = false;
                    self.pos += 1;
                    self.push(Tok::RBrace, start);
                }
                b'[' => {
                    if self.bracket_depth > 0 {
                        return Err(self.err(start, "unexpected left bracket '['"));
                    }
                    self.bracket_depth += 1;
                    self.pos += 1;
                    self.push(Tok::LBracket, start);
                }
                b']' => {
                    if self.bracket_depth == 0 {
                        return Err(self.err(start, "unexpected right bracket ']'"));
                    }
                    self.bracket_depth -= 1;
                    self.pos += 1;
                    self.push(Tok::RBracket, start);
                }
                b'=' => {
                    self.pos += 1;
                    let t = match self.peek() {
                        Some(b'=') => {
                            self.pos += 1;
                            Tok::Eql
                        }
                        Some(b'~') => {
                            self.pos += 1;
                            Tok::EqlRegex
                        }
                        _ => Tok::Assign,
                    };
                    self.push(t, start);
                }
                b'!' => {
                    self.pos += 1;
                    let t = match self.peek() {
                        Some(b'=') => Tok::Neq,
                        Some(b'~') => Tok::NeqRegex,
                        _ => return Err(self.err(start, "unexpected character after '!'")),
                    };
                    self.pos += 1;
                    self.push(t, start);
                }
                b'<' | b'>' => {
                    self.pos += 1;
                    let eq = self.peek() == Some(b'=');
                    if eq {
                        self.pos += 1;
                    }
                    let t = match (c, eq) {
                        (b'<', false) => Tok::Lss,
                        (b'<', true) => Tok::Lte,
                        (_, false) => Tok::Gtr,
                        _ => Tok::Gte,
                    };
                    self.push(t, start);
                }
                b':' if self.bracket_depth > 0 => {
                    self.pos += 1;
                    self.push(Tok::Colon, start);
                }
                b'"' | b'\'' | b'`' => {
                    let s = self.string(c)?;
                    self.push(Tok::Str(s), start);
                }
                b'0'..=b'9' => self.number_or_duration()?,
                b'.' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => {
                    self.number_or_duration()?
                }
                _ if is_alpha(c) || c == b':' => {
                    while self.peek().is_some_and(|c| is_alnum(c) || c == b':') {
                        self.pos += 1;
                    }
                    let word = &self.input[start..self.pos];
                    let lower = word.to_ascii_lowercase();
                    if !self.brace_open && (lower == "inf" || lower == "nan") {
                        let v = if lower == "inf" {
                            f64::INFINITY
                        } else {
                            f64::NAN
                        };
                        self.push(Tok::Number(v), start);
                    } else {
                        self.push(Tok::Ident(word.to_string()), start);
                    }
                }
                _ => {
                    let ch = self.input[start..].chars().next().unwrap_or('?');
                    return Err(self.err(start, format!("unexpected character: {ch:?}")));
                }
            }
        }
        if self.brace_open {
            return Err(self.err(self.pos, "unclosed left brace"));
        }
        if self.bracket_depth > 0 {
            return Err(self.err(self.pos, "unclosed left bracket"));
        }
        let end = self.pos;
        self.out.push(Token {
            tok: Tok::Eof,
            start: end,
            end,
        });
        Ok(())
    }

    /// Scans a string literal starting at the quote `q`.
    fn string(&mut self, q: u8) -> Result<Vec<u8>, Error> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(start, "unterminated quoted string"));
            };
            self.pos += 1;
            if c == q {
                return Ok(out);
            }
            if q == b'`' {
                out.push(c);
                continue;
            }
            if c == b'\n' {
                return Err(self.err(start, "unterminated quoted string"));
            }
            if c != b'\\' {
                out.push(c);
                continue;
            }
            let esc_at = self.pos - 1;
            let Some(e) = self.peek() else {
                return Err(self.err(start, "unterminated quoted string"));
            };
            self.pos += 1;
            match e {
                b'a' => out.push(7),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'v' => out.push(11),
                b'\\' => out.push(b'\\'),
                _ if e == q => out.push(q),
                b'x' | b'u' | b'U' => {
                    let n = match e {
                        b'x' => 2,
                        b'u' => 4,
                        _ => 8,
                    };
                    let digits = self.src.get(self.pos..self.pos + n);
                    let v = digits
                        .and_then(|d| std::str::from_utf8(d).ok())
                        .and_then(|d| u32::from_str_radix(d, 16).ok())
                        .ok_or_else(|| self.err(esc_at, "invalid escape sequence in string"))?;
                    self.pos += n;
                    if e == b'x' {
                        out.push(v as u8);
                    } else {
                        let ch = char::from_u32(v).ok_or_else(|| {
                            self.err(esc_at, "escape sequence is an invalid Unicode code point")
                        })?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                }
                b'0'..=b'7' => {
                    let digits = self.src.get(self.pos - 1..self.pos + 2);
                    let v = digits
                        .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
                        .and_then(|d| std::str::from_utf8(d).ok())
                        .and_then(|d| u32::from_str_radix(d, 8).ok())
                        .filter(|v| *v < 256)
                        .ok_or_else(|| self.err(esc_at, "invalid escape sequence in string"))?;
                    self.pos += 2;
                    out.push(v as u8);
                }
                _ => return Err(self.err(esc_at, "unknown escape sequence in string")),
            }
        }
    }

    fn number_or_duration(&mut self) -> Result<(), Error> {
        let start = self.pos;
        // A duration: digits then a unit, repeated.
        if let Some((ms, end)) = scan_duration(self.src, start) {
            self.pos = end;
            self.push(Tok::Duration(ms), start);
            return Ok(());
        }
        let mut hex = false;
        if self.peek() == Some(b'0') && matches!(self.peek_at(1), Some(b'x' | b'X')) {
            hex = true;
            self.pos += 2;
        }
        let digit = |c: u8| {
            if hex {
                c.is_ascii_hexdigit() || c == b'_'
            } else {
                c.is_ascii_digit() || c == b'_'
            }
        };
        while self.peek().is_some_and(digit) {
            self.pos += 1;
        }
        if !hex && self.peek() == Some(b'.') {
            self.pos += 1;
            while self.peek().is_some_and(digit) {
                self.pos += 1;
            }
        }
        if !hex && matches!(self.peek(), Some(b'e' | b'E')) {
            let save = self.pos;
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
            } else {
                self.pos = save;
            }
        }
        if self.peek().is_some_and(is_alnum) {
            while self.peek().is_some_and(is_alnum) {
                self.pos += 1;
            }
            return Err(self.err(
                start,
                format!(
                    "bad number or duration syntax: {:?}",
                    &self.input[start..self.pos]
                ),
            ));
        }
        let text = &self.input[start..self.pos];
        let v = parse_number(text)
            .ok_or_else(|| self.err(start, format!("bad number or duration syntax: {text:?}")))?;
        self.push(Tok::Number(v), start);
        Ok(())
    }
}

/// Parses a PromQL number literal the way Go's `ParseInt(s, 0, 64)` then
/// `ParseFloat` would: `0x` hex, a leading `0` for octal, else decimal.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    let t = text.replace('_', "");
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok().map(|v| v as f64);
    }
    if t.len() > 1 && t.starts_with('0') && t.bytes().all(|c| c.is_ascii_digit()) {
        if let Ok(v) = i64::from_str_radix(&t[1..], 8) {
            return Some(v as f64);
        }
    }
    t.parse::<f64>().ok()
}

/// Reads a Prometheus duration (`1h30m`, `5m`, `10s500ms`) starting at `at`.
/// Returns milliseconds and the end offset, or `None` when the text there is
/// not a duration (for example a plain number).
pub(crate) fn scan_duration(src: &[u8], at: usize) -> Option<(i64, usize)> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut pos = at;
    let mut total: i64 = 0;
    let mut last_unit = None::<usize>;
    loop {
        let ds = pos;
        while src.get(pos).is_some_and(|c| c.is_ascii_digit()) {
            pos += 1;
        }
        if pos == ds {
            break;
        }
        let n: i64 = std::str::from_utf8(&src[ds..pos]).ok()?.parse().ok()?;
        // Longest unit first so that "ms" wins over "m".
        let rest = &src[pos..];
        let idx = if rest.starts_with(b"ms") {
            6
        } else {
            let c = *rest.first()?;
            UNITS
                .iter()
                .position(|(u, _)| u.as_bytes()[0] == c && u.len() == 1)?
        };
        if last_unit.is_some_and(|l| idx <= l) {
            return None;
        }
        last_unit = Some(idx);
        pos += UNITS[idx].0.len();
        total = total.checked_add(n.checked_mul(UNITS[idx].1)?)?;
    }
    last_unit?;
    if src.get(pos).is_some_and(|c| is_alnum(*c) || *c == b'.') {
        return None;
    }
    Some((total, pos))
}

/// Parses a whole string as a Prometheus duration in milliseconds (`1h30m`,
/// `15d`; a bare `0`), as flags and config files write them.
pub fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    match scan_duration(s.as_bytes(), 0) {
        Some((ms, end)) if end == s.len() => Some(ms),
        _ => None,
    }
}
