//! A runner for Prometheus's scripted PromQL tests (`promqltest` format),
//! written from the format description in
//! `../shared/conformance/promql/README.md`.

use std::collections::BTreeMap;

use vigil_rules::{
    Engine, Expr, ExprKind, Labels, MemoryStore, STALE_NAN_BITS, Value, is_stale_nan, parse,
};

/// The outcome of one eval command.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

/// One eval command's result with its line number.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub line: usize,
    pub expr: String,
    pub outcome: Outcome,
}

/// Parses a Prometheus duration (`1h30m`, `0`, `10s500ms`) into ms.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s == "0" {
        return Some(0);
    }
    let b = s.as_bytes();
    let units: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let (mut i, mut total, mut last) = (0, 0i64, None::<usize>);
    while i < b.len() {
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if st == i {
            return None;
        }
        let n: i64 = s[st..i].parse().ok()?;
        let rest = &s[i..];
        let idx = if rest.starts_with("ms") {
            6
        } else {
            units
                .iter()
                .position(|(u, _)| u.len() == 1 && rest.starts_with(u))?
        };
        if last.is_some_and(|l| idx <= l) {
            return None;
        }
        last = Some(idx);
        i += units[idx].0.len();
        total += n * units[idx].1;
    }
    last.map(|_| total)
}

/// Go's `strconv.ParseFloat` for the numbers the scripts use.
pub fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let (sign, body) = match t.as_bytes().first() {
        Some(b'+') => (1.0, &t[1..]),
        Some(b'-') => (-1.0, &t[1..]),
        _ => (1.0, t),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(sign * f64::INFINITY);
    }
    if lower == "nan" {
        return Some(f64::NAN);
    }
    if let Some(h) = lower.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).ok().map(|v| sign * v as f64);
    }
    if body.is_empty()
        || !body
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == b'.')
    {
        return None;
    }
    body.parse::<f64>().ok().map(|v| sign * v)
}

fn unquote(s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let q = *b.first()?;
    let mut out: Vec<u8> = Vec::new();
    let mut i = 1;
    while i < b.len() {
        let c = b[i];
        if c == q {
            return Some((String::from_utf8_lossy(&out).into_owned(), i + 1));
        }
        if c == b'\\' && q != b'`' {
            i += 1;
            let e = *b.get(i)?;
            match e {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'a' => out.push(7),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'v' => out.push(11),
                b'x' => {
                    out.push(u8::from_str_radix(s.get(i + 1..i + 3)?, 16).ok()?);
                    i += 2;
                }
                b'u' | b'U' => {
                    let n = if e == b'u' { 4 } else { 8 };
                    let v = u32::from_str_radix(s.get(i + 1..i + 1 + n)?, 16).ok()?;
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(char::from_u32(v)?.encode_utf8(&mut buf).as_bytes());
                    i += n;
                }
                b'0'..=b'7' => {
                    out.push(u8::from_str_radix(s.get(i..i + 3)?, 8).ok()?);
                    i += 2;
                }
                _ => out.push(e),
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    None
}

/// Parses `name{a="b", ...}` at the start of `s`; returns labels and the
/// rest of the line.
pub fn parse_series(s: &str) -> Result<(Labels, &str), String> {
    let s = s.trim_start();
    let b = s.as_bytes();
    let mut i = 0;
    let mut pairs: Vec<(String, String)> = Vec::new();
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
        i += 1;
    }
    if i > 0 {
        pairs.push(("__name__".into(), s[..i].to_string()));
    }
    if i < b.len() && b[i] == b'{' {
        i += 1;
        loop {
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == b',') {
                i += 1;
            }
            if i >= b.len() {
                return Err(format!("unclosed series braces in {s:?}"));
            }
            if b[i] == b'}' {
                i += 1;
                break;
            }
            let name = if b[i] == b'"' || b[i] == b'\'' || b[i] == b'`' {
                let (n, used) = unquote(&s[i..]).ok_or_else(|| format!("bad quote in {s:?}"))?;
                i += used;
                n
            } else {
                let st = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                s[st..i].to_string()
            };
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            if i < b.len() && b[i] == b'=' {
                i += 1;
                while i < b.len() && b[i] == b' ' {
                    i += 1;
                }
                let (v, used) =
                    unquote(&s[i..]).ok_or_else(|| format!("bad label value in {s:?}"))?;
                i += used;
                pairs.push((name, v));
            } else {
                pairs.push(("__name__".into(), name));
            }
        }
    } else if i == 0 {
        return Err(format!("expected a series in {s:?}"));
    }
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Ok((Labels::from_pairs(&refs), &s[i..]))
}

/// Splits items on whitespace, keeping `{{ ... }}` together.
fn split_items(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' && chars.get(i + 1) == Some(&'{') {
            depth += 1;
            cur.push_str("{{");
            i += 2;
            continue;
        }
        if c == '}' && chars.get(i + 1) == Some(&'}') && depth > 0 {
            depth -= 1;
            cur.push_str("}}");
            i += 2;
            continue;
        }
        if (c == ' ' || c == '\t') && depth == 0 {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
        i += 1;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One slot of a series description.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Slot {
    Empty,
    Float(f64),
    Histogram,
}

/// Expands series items into slots.
pub fn parse_items(s: &str) -> Result<Vec<Slot>, String> {
    let mut out = Vec::new();
    for item in split_items(s) {
        if item.starts_with("{{") {
            let n = match item.rfind("}}x") {
                Some(p) => {
                    item[p + 3..]
                        .parse::<usize>()
                        .map_err(|_| format!("bad histogram repetition {item:?}"))?
                        + 1
                }
                None => 1,
            };
            out.extend(std::iter::repeat_n(Slot::Histogram, n));
            continue;
        }
        if item == "_" {
            out.push(Slot::Empty);
            continue;
        }
        if item == "stale" {
            out.push(Slot::Float(f64::from_bits(STALE_NAN_BITS)));
            continue;
        }
        if let Some(n) = item.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad item {item:?}"))?;
            out.extend(std::iter::repeat_n(Slot::Empty, n));
            continue;
        }
        if let Some(p) = item.rfind('x') {
            let (lhs, n) = (&item[..p], &item[p + 1..]);
            if let Ok(n) = n.parse::<usize>() {
                // Split A and B at a sign that is not the first character
                // and does not follow an exponent marker.
                let lb = lhs.as_bytes();
                let mut split = None;
                for k in 1..lb.len() {
                    if (lb[k] == b'+' || lb[k] == b'-') && !matches!(lb[k - 1], b'e' | b'E') {
                        split = Some(k);
                    }
                }
                let (a, b) = match split {
                    Some(k) => {
                        let a =
                            parse_float(&lhs[..k]).ok_or_else(|| format!("bad item {item:?}"))?;
                        let b = parse_float(&lhs[k + 1..])
                            .ok_or_else(|| format!("bad item {item:?}"))?;
                        (a, if lb[k] == b'-' { -b } else { b })
                    }
                    None => (
                        parse_float(lhs).ok_or_else(|| format!("bad item {item:?}"))?,
                        0.0,
                    ),
                };
                let mut v = a;
                for _ in 0..=n {
                    out.push(Slot::Float(v));
                    v += b;
                }
                continue;
            }
        }
        out.push(Slot::Float(
            parse_float(&item).ok_or_else(|| format!("bad item {item:?}"))?,
        ));
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct Expectations {
    fail: Option<Option<Match>>,
    warn: Vec<Option<Match>>,
    info: Vec<Option<Match>>,
    no_warn: bool,
    no_info: bool,
    ordered: bool,
    range_vector: Option<(i64, i64, i64)>,
    string: Option<String>,
    scalar: Option<f64>,
    series: Vec<(Labels, Vec<Slot>)>,
}

#[derive(Debug, Clone)]
enum Match {
    Msg(String),
    Regex(String),
}

impl Match {
    fn matches(&self, s: &str) -> bool {
        match self {
            Match::Msg(m) => s.trim() == m.trim(),
            Match::Regex(r) => regex::Regex::new(r).is_ok_and(|re| re.is_match(s)),
        }
    }
}

fn parse_match(rest: &str) -> Option<Match> {
    let rest = rest.trim();
    if let Some(m) = rest.strip_prefix("msg:") {
        Some(Match::Msg(m.trim().to_string()))
    } else {
        rest.strip_prefix("regex:")
            .map(|r| Match::Regex(r.trim().to_string()))
    }
}

/// Compares floats the way upstream does.
pub fn float_eq(exp: f64, got: f64) -> bool {
    if is_stale_nan(exp) || is_stale_nan(got) {
        return is_stale_nan(exp) && is_stale_nan(got);
    }
    if exp.is_nan() && got.is_nan() {
        return true;
    }
    if exp == got {
        return true;
    }
    if exp == 0.0 || got == 0.0 {
        return (exp - got).abs() < 1e-6 * f64::MIN_POSITIVE;
    }
    (exp - got).abs() / (exp.abs() + got.abs()) < 1e-6
}

/// Where a script's `load` commands put their samples.
pub trait TestStore {
    /// Adds one sample (flushed at the end of the load block).
    fn add(&mut self, labels: &Labels, t: i64, v: f64);
    /// Makes the samples added so far visible to queries.
    fn flush(&mut self) -> Result<(), String>;
    /// Removes everything.
    fn clear(&mut self) -> Result<(), String>;
    /// The store as the engine sees it.
    fn queryable(&self) -> &dyn vigil_rules::Queryable;
}

impl TestStore for MemoryStore {
    fn add(&mut self, labels: &Labels, t: i64, v: f64) {
        self.add_sample(labels, t, v);
    }
    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }
    fn clear(&mut self) -> Result<(), String> {
        MemoryStore::clear(self);
        Ok(())
    }
    fn queryable(&self) -> &dyn vigil_rules::Queryable {
        self
    }
}

/// Runs a whole script on the in-memory store. Script errors (malformed
/// commands) are returned as `Err`.
pub fn run_script(text: &str) -> Result<Vec<CaseResult>, String> {
    run_script_on(text, &mut MemoryStore::new())
}

/// Runs a whole script on `store`.
pub fn run_script_on(text: &str, store: &mut dyn TestStore) -> Result<Vec<CaseResult>, String> {
    let lines: Vec<&str> = text.lines().collect();
    // Series that hold data we cannot load yet (native histograms, NHCB
    // conversions, start timestamps), with the reason.
    let mut hist_series: Vec<(Labels, &'static str)> = Vec::new();
    let engine = Engine::new();
    let mut results = Vec::new();
    let mut i = 0;
    let is_blank = |l: &str| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    };
    while i < lines.len() {
        let line = lines[i].trim();
        if is_blank(line) {
            i += 1;
            continue;
        }
        let lineno = i + 1;
        let word = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if word == "clear" {
            store.clear()?;
            hist_series.clear();
            i += 1;
            continue;
        }
        // Gather the body.
        let mut body = Vec::new();
        let mut j = i + 1;
        while j < lines.len() && !is_blank(lines[j]) {
            body.push((j + 1, lines[j].trim()));
            j += 1;
        }
        i = j;
        if word.starts_with("load") {
            let interval = line
                .split_whitespace()
                .nth(1)
                .and_then(parse_duration)
                .ok_or_else(|| format!("line {lineno}: bad load interval"))?;
            let nhcb = word == "load_with_nhcb";
            let mut block: BTreeMap<Labels, Vec<Slot>> = BTreeMap::new();
            for (ln, l) in body {
                let (labels, rest) = parse_series(l).map_err(|e| format!("line {ln}: {e}"))?;
                if rest.starts_with("@st") {
                    hist_series.push((labels, "its data was loaded with start timestamps (@st)"));
                    continue;
                }
                let slots = parse_items(rest).map_err(|e| format!("line {ln}: {e}"))?;
                if slots.contains(&Slot::Histogram) {
                    hist_series.push((
                        labels.clone(),
                        "its data was loaded with native histogram notation {{...}}",
                    ));
                }
                let name = labels.get("__name__").to_string();
                if nhcb && labels.has("le") && name.ends_with("_bucket") {
                    let mut base = labels.clone();
                    base.remove("le");
                    base.set("__name__", &name[..name.len() - "_bucket".len()]);
                    hist_series.push((base, "its data was loaded by load_with_nhcb"));
                }
                block.insert(labels, slots);
            }
            for (labels, slots) in block {
                for (k, s) in slots.iter().enumerate() {
                    if let Slot::Float(v) = s {
                        store.add(&labels, k as i64 * interval, *v);
                    }
                }
            }
            store.flush()?;
            continue;
        }
        if !word.starts_with("eval") {
            return Err(format!("line {lineno}: unknown command {line:?}"));
        }
        let case = parse_eval(line, &body).map_err(|e| format!("line {lineno}: {e}"))?;
        let outcome = if let Some(reason) = selects_skipped_data(&case.expr, &hist_series) {
            Outcome::Skipped(reason.to_string())
        } else if let Some(f) = nh_only_function(&case.expr) {
            Outcome::Skipped(format!("calls the native-histogram-only function {f}"))
        } else {
            match run_eval(&engine, store.queryable(), &case) {
                Ok(()) => Outcome::Passed,
                Err(e) => Outcome::Failed(e),
            }
        };
        results.push(CaseResult {
            line: lineno,
            expr: case.expr.clone(),
            outcome,
        });
    }
    Ok(results)
}

/// Whether any selector of `expr` selects one of the `skipped` series.
fn selects_skipped_data(expr: &str, skipped: &[(Labels, &'static str)]) -> Option<&'static str> {
    if skipped.is_empty() {
        return None;
    }
    let Ok(e) = parse(expr) else {
        // The expression does not parse (yet): fall back to the metric
        // names written in it.
        let words: Vec<&str> = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .collect();
        return skipped
            .iter()
            .find(|(l, _)| words.contains(&l.get("__name__")))
            .map(|(_, why)| *why);
    };
    let mut found = None;
    e.walk(&mut |n| {
        let ms = match &n.kind {
            ExprKind::VectorSelector(vs) => &vs.matchers,
            ExprKind::MatrixSelector { selector, .. } => &selector.matchers,
            _ => return,
        };
        for (l, why) in skipped {
            if found.is_none() && ms.iter().all(|m| m.matches(l.get(&m.name))) {
                found = Some(*why);
            }
        }
    });
    found
}

fn nh_only_function(expr: &str) -> Option<&'static str> {
    vigil_rules::FUNCTIONS
        .iter()
        .filter(|f| f.native_histogram_only)
        .find(|f| {
            let pat = format!("{}(", f.name);
            expr.match_indices(&pat).any(|(p, _)| {
                p == 0
                    || !expr.as_bytes()[p - 1].is_ascii_alphanumeric()
                        && expr.as_bytes()[p - 1] != b'_'
            })
        })
        .map(|f| f.name)
}

#[derive(Debug)]
struct EvalCase {
    instant: Option<i64>,
    range: Option<(i64, i64, i64)>,
    expr: String,
    exp: Expectations,
}

fn parse_eval(header: &str, body: &[(usize, &str)]) -> Result<EvalCase, String> {
    let mut words = header.splitn(2, char::is_whitespace);
    let cmd = words.next().unwrap_or("").to_ascii_lowercase();
    let rest = words.next().unwrap_or("").trim();
    let mut exp = Expectations::default();
    match cmd.as_str() {
        "eval" => {}
        "eval_fail" => exp.fail = Some(None),
        "eval_warn" => exp.warn.push(None),
        "eval_info" => exp.info.push(None),
        "eval_ordered" => exp.ordered = true,
        _ => return Err(format!("unknown eval command {cmd:?}")),
    }
    let (instant, range, expr) = if let Some(r) = rest.strip_prefix("instant") {
        let r = r.trim_start();
        let r = r.strip_prefix("at").ok_or("expected 'at'")?.trim_start();
        let (t, e) = r
            .split_once(char::is_whitespace)
            .ok_or("missing expression")?;
        (
            Some(parse_duration(t).ok_or(format!("bad time {t:?}"))?),
            None,
            e.trim().to_string(),
        )
    } else if let Some(r) = rest.strip_prefix("range") {
        let r = r
            .trim_start()
            .strip_prefix("from")
            .ok_or("expected 'from'")?
            .trim_start();
        let (s, r) = r.split_once(char::is_whitespace).ok_or("bad range")?;
        let r = r
            .trim_start()
            .strip_prefix("to")
            .ok_or("expected 'to'")?
            .trim_start();
        let (e, r) = r.split_once(char::is_whitespace).ok_or("bad range")?;
        let r = r
            .trim_start()
            .strip_prefix("step")
            .ok_or("expected 'step'")?
            .trim_start();
        let (st, ex) = r.split_once(char::is_whitespace).ok_or("bad range")?;
        let d = |x: &str| parse_duration(x).ok_or(format!("bad duration {x:?}"));
        (None, Some((d(s)?, d(e)?, d(st)?)), ex.trim().to_string())
    } else {
        return Err(format!("bad eval header {header:?}"));
    };
    for (ln, l) in body {
        if let Some(e) = l.strip_prefix("expect ") {
            let e = e.trim();
            if let Some(r) = e.strip_prefix("fail") {
                exp.fail = Some(parse_match(r));
            } else if let Some(r) = e.strip_prefix("warn") {
                exp.warn.push(parse_match(r));
            } else if let Some(r) = e.strip_prefix("info") {
                exp.info.push(parse_match(r));
            } else if e == "no_warn" {
                exp.no_warn = true;
            } else if e == "no_info" {
                exp.no_info = true;
            } else if e == "ordered" {
                exp.ordered = true;
            } else if let Some(r) = e.strip_prefix("range vector from") {
                let p: Vec<&str> = r.split_whitespace().collect();
                if p.len() != 5 || p[1] != "to" || p[3] != "step" {
                    return Err(format!("line {ln}: bad range vector expectation"));
                }
                let d = |x: &str| parse_duration(x).ok_or(format!("line {ln}: bad duration {x:?}"));
                exp.range_vector = Some((d(p[0])?, d(p[2])?, d(p[4])?));
            } else if let Some(r) = e.strip_prefix("string") {
                let (s, _) = unquote(r.trim()).ok_or(format!("line {ln}: bad string"))?;
                exp.string = Some(s);
            } else {
                return Err(format!("line {ln}: unknown expectation {e:?}"));
            }
            continue;
        }
        if let Some(m) = l.strip_prefix("expected_fail_message") {
            exp.fail = Some(Some(Match::Msg(m.trim().to_string())));
            continue;
        }
        if let Some(m) = l.strip_prefix("expected_fail_regexp") {
            exp.fail = Some(Some(Match::Regex(m.trim().to_string())));
            continue;
        }
        if let Some(v) = parse_float(l) {
            exp.scalar = Some(v);
            continue;
        }
        let (labels, rest) = parse_series(l).map_err(|e| format!("line {ln}: {e}"))?;
        let slots = parse_items(rest).map_err(|e| format!("line {ln}: {e}"))?;
        exp.series.push((labels, slots));
    }
    Ok(EvalCase {
        instant,
        range,
        expr,
        exp,
    })
}

fn check_annotations(
    exp: &Expectations,
    warnings: &[String],
    infos: &[String],
) -> Result<(), String> {
    let check =
        |kind: &str, want: &[Option<Match>], none: bool, got: &[String]| -> Result<(), String> {
            if none && !got.is_empty() {
                return Err(format!("expected no {kind} annotations, got {got:?}"));
            }
            if want.is_empty() {
                return Ok(());
            }
            for w in want {
                let ok = match w {
                    None => !got.is_empty(),
                    Some(m) => got.iter().any(|g| m.matches(g)),
                };
                if !ok {
                    return Err(format!("expected {kind} annotation {w:?}, got {got:?}"));
                }
            }
            for g in got {
                if !want.iter().any(|w| w.as_ref().is_none_or(|m| m.matches(g))) {
                    return Err(format!("unexpected {kind} annotation {g:?}"));
                }
            }
            Ok(())
        };
    check("warn", &exp.warn, exp.no_warn, warnings)?;
    check("info", &exp.info, exp.no_info, infos)
}

fn run_eval(
    engine: &Engine,
    store: &dyn vigil_rules::Queryable,
    case: &EvalCase,
) -> Result<(), String> {
    let exp = &case.exp;
    let parsed = parse(&case.expr);
    let expr = match (&parsed, &exp.fail) {
        (Ok(e), _) => e.clone(),
        (Err(e), Some(m)) => {
            return match m {
                Some(m) if !m.matches(&e.to_string()) => {
                    Err(format!("parse error {e:?} does not match {m:?}"))
                }
                _ => Ok(()),
            };
        }
        (Err(e), None) => return Err(format!("parse error: {e}")),
    };
    if let Some((start, end, step)) = case.range {
        let res = engine.range_query_expr(store, &case.expr, &expr, start, end, step);
        return check_result(
            exp,
            res.map(|r| (r.value, r.warnings, r.infos)),
            None,
            Some((start, step)),
        );
    }
    let t = case.instant.unwrap_or(0);
    let res = engine.instant_query_expr(store, &case.expr, &expr, t);
    check_result(exp, res.map(|r| (r.value, r.warnings, r.infos)), None, None)
        .map_err(|e| format!("instant query: {e}"))?;

    let mut calls: Vec<&str> = calls_in(&expr);
    // step() and range() inside duration expressions are not calls.
    let lower = case.expr.to_ascii_lowercase();
    for f in ["step", "range"] {
        if lower.contains(&format!("{f}(")) {
            calls.push(f);
        }
    }
    // Check a: the same expression as a range query around t.
    let range_ok = exp.range_vector.is_none()
        && exp.string.is_none()
        && !exp.ordered
        && !calls
            .iter()
            .any(|f| matches!(*f, "start" | "end" | "range" | "step"));
    if range_ok {
        let res = engine.range_query_expr(store, &case.expr, &expr, t - 60_000, t + 60_000, 60_000);
        check_result(
            exp,
            res.map(|r| (r.value, r.warnings, r.infos)),
            Some(t),
            None,
        )
        .map_err(|e| format!("range-mode check: {e}"))?;
    }
    // Check b: pin every selector with @ t and evaluate at other times.
    let time_fns = [
        "time",
        "timestamp",
        "minute",
        "hour",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "days_in_month",
        "month",
        "year",
        "predict_linear",
        "start",
        "end",
        "range",
        "step",
    ];
    if !calls.iter().any(|f| time_fns.contains(f)) {
        let mut pinned = expr.clone();
        pin_at(&mut pinned, t);
        let times: Vec<i64> = if t == 0 {
            vec![-1000, 0, 1000]
        } else {
            vec![-10 * t, 0, t / 5, t, 10 * t]
        };
        for at in times {
            let res = engine.instant_query_expr(store, &case.expr, &pinned, at);
            check_result(exp, res.map(|r| (r.value, r.warnings, r.infos)), None, None)
                .map_err(|e| format!("@-pinned check at {at}ms: {e}"))?;
        }
    }
    Ok(())
}

fn calls_in(e: &Expr) -> Vec<&'static str> {
    let mut out = Vec::new();
    e.walk(&mut |n| {
        if let ExprKind::Call { func, .. } = &n.kind {
            out.push(func.name);
        }
    });
    out
}

fn pin_at(e: &mut Expr, t: i64) {
    use vigil_rules::AtModifier;
    match &mut e.kind {
        ExprKind::VectorSelector(vs) => {
            vs.at.get_or_insert(AtModifier::Timestamp(t));
        }
        ExprKind::MatrixSelector { selector, .. } => {
            selector.at.get_or_insert(AtModifier::Timestamp(t));
        }
        ExprKind::Subquery { at, .. } => {
            at.get_or_insert(AtModifier::Timestamp(t));
        }
        ExprKind::Paren(x) | ExprKind::Unary { expr: x, .. } => pin_at(x, t),
        ExprKind::Binary { lhs, rhs, .. } => {
            pin_at(lhs, t);
            pin_at(rhs, t);
        }
        ExprKind::Aggregate { expr, param, .. } => {
            pin_at(expr, t);
            if let Some(p) = param {
                pin_at(p, t);
            }
        }
        ExprKind::Call { args, .. } => args.iter_mut().for_each(|a| pin_at(a, t)),
        _ => {}
    }
}

type Got = Result<(Value, Vec<String>, Vec<String>), vigil_rules::Error>;

/// Checks one query's result. With `at`, the result is a range query's and
/// only the point at `at` is compared against instant expectations.
fn check_result(
    exp: &Expectations,
    got: Got,
    at: Option<i64>,
    range: Option<(i64, i64)>,
) -> Result<(), String> {
    let (value, warnings, infos) = match (got, &exp.fail) {
        (Err(e), Some(m)) => {
            return match m {
                Some(m) if !m.matches(&e.to_string()) => {
                    Err(format!("error {:?} does not match {m:?}", e.to_string()))
                }
                _ => Ok(()),
            };
        }
        (Err(e), None) => return Err(format!("unexpected error: {e}")),
        (Ok(_), Some(_)) => return Err("expected an error, got a result".into()),
        (Ok(v), None) => v,
    };
    check_annotations(exp, &warnings, &infos)?;
    let value = match (at, value) {
        (Some(t), Value::Matrix(m)) => {
            // Reduce the range result to the instant at t.
            if exp.scalar.is_some() {
                let pts: Vec<f64> = m
                    .iter()
                    .flat_map(|s| s.floats.iter().filter(|p| p.t == t).map(|p| p.v))
                    .collect();
                if pts.len() != 1 {
                    return Err(format!("expected one scalar point at {t}, got {pts:?}"));
                }
                Value::Scalar { t, v: pts[0] }
            } else {
                Value::Vector(
                    m.into_iter()
                        .filter_map(|s| {
                            s.floats
                                .iter()
                                .find(|p| p.t == t)
                                .map(|p| vigil_rules::Sample {
                                    labels: s.labels.clone(),
                                    t,
                                    value: p.v,
                                    drop_name: false,
                                })
                        })
                        .collect(),
                )
            }
        }
        (_, v) => v,
    };
    if let Some(s) = &exp.string {
        return match value {
            Value::String { s: g, .. } if &g == s => Ok(()),
            v => Err(format!("expected string {s:?}, got {v:?}")),
        };
    }
    if let Some(want) = exp.scalar {
        return match value {
            Value::Scalar { v, .. } if float_eq(want, v) => Ok(()),
            v => Err(format!("expected scalar {want}, got {v:?}")),
        };
    }
    match value {
        Value::Vector(v) => {
            if exp.range_vector.is_some() {
                return Err(format!("expected a range vector, got a vector {v:?}"));
            }
            if v.len() != exp.series.len() {
                return Err(format!(
                    "expected {} series, got {}: {}",
                    exp.series.len(),
                    v.len(),
                    show_vector(&v)
                ));
            }
            for (k, (labels, slots)) in exp.series.iter().enumerate() {
                let want = match slots.as_slice() {
                    [Slot::Float(f)] => *f,
                    _ => {
                        return Err(format!(
                            "expected series {labels} must have exactly one float value"
                        ));
                    }
                };
                let Some(pos) = v.iter().position(|s| &s.labels == labels) else {
                    return Err(format!("missing series {labels}; got {}", show_vector(&v)));
                };
                if !float_eq(want, v[pos].value) {
                    return Err(format!("{labels}: expected {want}, got {}", v[pos].value));
                }
                if exp.ordered && pos != k {
                    return Err(format!("{labels}: expected at position {k}, got {pos}"));
                }
            }
            Ok(())
        }
        Value::Matrix(m) => {
            let (start, step) = match (exp.range_vector, range) {
                (Some((s, _, st)), _) => (s, st),
                (None, Some(r)) => r,
                (None, None) => {
                    return Err(format!(
                        "expected a vector, got a matrix with {} series",
                        m.len()
                    ));
                }
            };
            compare_matrix(exp, &m, start, step)
        }
        Value::Scalar { v, .. } => Err(format!("expected series, got scalar {v}")),
        Value::String { s, .. } => Err(format!("expected series, got string {s:?}")),
    }
}

fn show_vector(v: &[vigil_rules::Sample]) -> String {
    v.iter()
        .map(|s| format!("{} {}", s.labels, s.value))
        .collect::<Vec<_>>()
        .join(", ")
}

fn compare_matrix(
    exp: &Expectations,
    m: &[vigil_rules::Series],
    start: i64,
    step: i64,
) -> Result<(), String> {
    if m.len() != exp.series.len() {
        return Err(format!(
            "expected {} series, got {}: {:?}",
            exp.series.len(),
            m.len(),
            m.iter().map(|s| s.labels.to_string()).collect::<Vec<_>>()
        ));
    }
    for (labels, slots) in &exp.series {
        let Some(s) = m.iter().find(|s| &s.labels == labels) else {
            return Err(format!("missing series {labels}"));
        };
        let want: Vec<(i64, f64)> = slots
            .iter()
            .enumerate()
            .filter_map(|(k, sl)| match sl {
                Slot::Float(f) => Some((start + k as i64 * step, *f)),
                _ => None,
            })
            .collect();
        if want.len() != s.floats.len() {
            return Err(format!(
                "{labels}: expected {} points {want:?}, got {:?}",
                want.len(),
                s.floats
            ));
        }
        for ((wt, wv), p) in want.iter().zip(&s.floats) {
            if *wt != p.t || !float_eq(*wv, p.v) {
                return Err(format!("{labels}: expected {wv}@{wt}, got {}@{}", p.v, p.t));
            }
        }
    }
    Ok(())
}
