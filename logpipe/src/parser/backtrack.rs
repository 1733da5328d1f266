//! A small backtracking matcher for the regexes log parsers are written in.
//!
//! fluent-bit's regex parsers are sequences of character-class runs between
//! literal delimiters (`(?<remote>[^ ]*) (?<host>[^ ]*) \[(?<time>[^\]]*)\]`),
//! sometimes with lazy or optional groups. The regex crate answers such a
//! pattern with a lazy DFA pass to find the match and a bounded backtracker
//! (with a visited set as large as pattern × line) for the captures; on an
//! nginx access log that was 30 % of the pipeline's CPU. A plain backtracker
//! that consumes a class run in one tight loop does the same work in a
//! fraction of the time on these patterns.
//!
//! Plain backtracking can take exponential time, so every search has a step
//! budget proportional to the line; a search that runs out of it is answered
//! by the regex crate instead. Patterns outside the supported subset (Unicode
//! classes, word boundaries, multi-line anchors, unbounded repetitions of
//! something that can match empty) are never compiled here. The result is
//! always the regex crate's: the same leftmost-first match and the same
//! capture positions (a differential test and a fuzz target hold us to it).

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// A compiled program, or why the pattern is left to the regex crate.
#[derive(Debug)]
pub(crate) struct Backtracker {
    insts: Vec<Inst>,
    classes: Vec<ByteSet>,
    /// Per class: the one to three bytes it excludes, when that is all it
    /// excludes (`[^ ]`, `[^\]]`, `[^"]`): a run of it ends at the first of
    /// them, found with memchr instead of a test per byte.
    stops: Vec<Option<Stop>>,
    /// Per instruction (set for runs): the bytes the rest of the pattern
    /// must start with after the run, when it cannot match empty there. A
    /// run backtracking to a length followed by another byte would fail at
    /// once, so those lengths are skipped: a lazy `[^"]*?` before `"`
    /// jumps from quote to quote instead of trying every length.
    follow: Vec<Option<ByteSet>>,
    /// Capture slots: two per group, group 0 included.
    slots: usize,
    /// The match can only start at offset 0.
    anchored: bool,
    /// Bytes a match can start with; `None` when it can start with any or
    /// match empty.
    first: Option<ByteSet>,
}

/// 256 bits: which bytes a class matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct ByteSet([u64; 4]);

/// The bytes a negated class stops at.
#[derive(Debug, Clone, Copy)]
enum Stop {
    One(u8),
    Two(u8, u8),
    Three(u8, u8, u8),
}

impl Stop {
    fn of(set: &ByteSet) -> Option<Stop> {
        let out: Vec<u8> = (0..=255u8).filter(|&b| !set.contains(b)).collect();
        match out[..] {
            [a] => Some(Stop::One(a)),
            [a, b] => Some(Stop::Two(a, b)),
            [a, b, c] => Some(Stop::Three(a, b, c)),
            _ => None,
        }
    }

    /// Length of the run at the start of `hay`.
    #[inline]
    fn run(self, hay: &[u8]) -> usize {
        match self {
            Stop::One(a) => memchr::memchr(a, hay),
            Stop::Two(a, b) => memchr::memchr2(a, b, hay),
            Stop::Three(a, b, c) => memchr::memchr3(a, b, c, hay),
        }
        .unwrap_or(hay.len())
    }
}

impl ByteSet {
    fn insert_range(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            self.0[usize::from(b >> 6)] |= 1 << (b & 63);
        }
    }

    #[inline(always)]
    fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    fn union(&mut self, other: &ByteSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Inst {
    /// One byte equal to this.
    Byte(u8),
    /// One byte in `classes[i]`.
    Class(u32),
    /// Between `min` and `max` bytes of `classes[class]`, greedy or lazy:
    /// one instruction for the commonest shape of log patterns, so a run is
    /// consumed in a loop and backtracks with one stack frame.
    Run {
        class: u32,
        min: u32,
        max: u32,
        greedy: bool,
    },
    /// Try `first`, on failure `second`.
    Split {
        first: u32,
        second: u32,
    },
    Jump(u32),
    Save(u32),
    AssertStart,
    AssertEnd,
    Match,
}

/// Why a pattern is not compiled here (tests read it; callers only need to
/// know that it was not).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unsupported(pub(crate) &'static str);

/// Programs longer than this are left to the regex crate (bounded
/// repetitions are expanded copy by copy).
const MAX_INSTS: usize = 4096;

impl Backtracker {
    /// Compiles `pattern` as the regex crate reads it in bytes mode with
    /// Unicode off (how the regex parser builds it first).
    pub(crate) fn new(pattern: &str) -> Result<Backtracker, Unsupported> {
        let hir = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(pattern)
            .map_err(|_| Unsupported("the pattern does not parse with Unicode off"))?;
        let slots = (hir.properties().explicit_captures_len() + 1) * 2;
        let mut c = Compiler {
            insts: Vec::new(),
            classes: Vec::new(),
        };
        c.push(Inst::Save(0))?;
        c.hir(&hir)?;
        c.push(Inst::Save(1))?;
        c.push(Inst::Match)?;
        let anchored = starts_anchored(&hir);
        let first = if hir.properties().minimum_len().unwrap_or(0) == 0 {
            None
        } else {
            first_bytes(&hir)
        };
        let stops = c.classes.iter().map(Stop::of).collect();
        let follow = (0..c.insts.len())
            .map(|pc| match c.insts[pc] {
                Inst::Run { .. } => {
                    let mut set = ByteSet::default();
                    let mut seen = vec![false; c.insts.len()];
                    first_set(&c.insts, &c.classes, pc + 1, &mut seen, &mut set).then_some(set)
                }
                _ => None,
            })
            .collect();
        Ok(Backtracker {
            insts: c.insts,
            classes: c.classes,
            stops,
            follow,
            slots,
            anchored,
            first,
        })
    }

    /// Number of capture slots `search` fills (two per group).
    pub(crate) fn slot_count(&self) -> usize {
        self.slots
    }

    /// Finds the leftmost-first match in `text`, filling `slots` (start,
    /// end per group; `usize::MAX` for a group that did not take part).
    /// `Ok(false)`: no match. `Err(())`: the step budget ran out, and the
    /// caller must ask the regex crate.
    pub(crate) fn search(
        &self,
        text: &[u8],
        slots: &mut [usize],
        stack: &mut Vec<Frame>,
    ) -> Result<bool, ()> {
        // Generous for the patterns this is for (a few steps per byte),
        // small enough that a pathological pattern falls back quickly.
        let mut budget: u64 = 1024 + 64 * text.len() as u64;
        let last = if self.anchored { 0 } else { text.len() };
        for start in 0..=last {
            if let Some(first) = &self.first {
                match text.get(start) {
                    Some(&b) if first.contains(b) => {}
                    _ => continue,
                }
            }
            slots.iter_mut().for_each(|s| *s = usize::MAX);
            if self.run(text, start, slots, stack, &mut budget)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn run(
        &self,
        text: &[u8],
        start: usize,
        slots: &mut [usize],
        stack: &mut Vec<Frame>,
        budget: &mut u64,
    ) -> Result<bool, ()> {
        stack.clear();
        let mut pc = 0usize;
        let mut pos = start;
        loop {
            if *budget == 0 {
                return Err(());
            }
            *budget -= 1;
            let ok = match self.insts[pc] {
                Inst::Byte(b) => {
                    if text.get(pos) == Some(&b) {
                        pos += 1;
                        pc += 1;
                        true
                    } else {
                        false
                    }
                }
                Inst::Class(i) => match text.get(pos) {
                    Some(&b) if self.classes[i as usize].contains(b) => {
                        pos += 1;
                        pc += 1;
                        true
                    }
                    _ => false,
                },
                Inst::Run {
                    class,
                    min,
                    max,
                    greedy,
                } => {
                    let set = &self.classes[class as usize];
                    let (min, max) = (min as usize, max as usize);
                    if greedy {
                        let limit = text.len().min(pos.saturating_add(max));
                        let end = match self.stops[class as usize] {
                            Some(stop) => pos + stop.run(&text[pos..limit]),
                            None => {
                                let mut end = pos;
                                while end < limit && set.contains(text[end]) {
                                    end += 1;
                                }
                                end
                            }
                        };
                        *budget = budget.saturating_sub(((end - pos) / 16) as u64);
                        if end - pos < min {
                            false
                        } else {
                            if end - pos > min {
                                stack.push(Frame::RunBack {
                                    pc: pc as u32 + 1,
                                    low: pos + min,
                                    at: end,
                                });
                            }
                            pos = end;
                            pc += 1;
                            true
                        }
                    } else {
                        let mut end = pos;
                        while end - pos < min && end < text.len() && set.contains(text[end]) {
                            end += 1;
                        }
                        let high = pos.saturating_add(max);
                        match (end - pos >= min)
                            .then(|| self.lazy_next(text, pc, class, end, high))
                            .flatten()
                        {
                            Some(at) => {
                                if at < high {
                                    stack.push(Frame::RunForward {
                                        pc: pc as u32 + 1,
                                        class,
                                        high,
                                        at,
                                    });
                                }
                                pos = at;
                                pc += 1;
                                true
                            }
                            None => false,
                        }
                    }
                }
                Inst::Split { first, second } => {
                    stack.push(Frame::Retry { pc: second, pos });
                    pc = first as usize;
                    true
                }
                Inst::Jump(to) => {
                    pc = to as usize;
                    true
                }
                Inst::Save(s) => {
                    let s = s as usize;
                    stack.push(Frame::Restore {
                        slot: s as u32,
                        old: slots[s],
                    });
                    slots[s] = pos;
                    pc += 1;
                    true
                }
                Inst::AssertStart => {
                    pc += 1;
                    pos == 0
                }
                Inst::AssertEnd => {
                    pc += 1;
                    pos == text.len()
                }
                Inst::Match => return Ok(true),
            };
            if ok {
                continue;
            }
            // Backtrack: undo captures until a frame offers another way.
            loop {
                let Some(frame) = stack.pop() else {
                    return Ok(false);
                };
                match frame {
                    Frame::Restore { slot, old } => slots[slot as usize] = old,
                    Frame::Retry { pc: p, pos: q } => {
                        pc = p as usize;
                        pos = q;
                        break;
                    }
                    Frame::RunBack { pc: p, low, at } => {
                        let mut at = at - 1;
                        // Lengths the rest cannot follow are skipped.
                        if let Some(follow) = &self.follow[p as usize - 1] {
                            while at > low && !text.get(at).is_some_and(|&b| follow.contains(b)) {
                                at -= 1;
                            }
                        }
                        if at > low {
                            stack.push(Frame::RunBack { pc: p, low, at });
                        }
                        pc = p as usize;
                        pos = at;
                        break;
                    }
                    Frame::RunForward {
                        pc: p,
                        class,
                        high,
                        at,
                    } => {
                        // One byte more than the length that failed, then on
                        // to the next length the rest can follow.
                        let next = (at < text.len()
                            && self.classes[class as usize].contains(text[at]))
                        .then(|| self.lazy_next(text, p as usize - 1, class, at + 1, high))
                        .flatten();
                        if let Some(at) = next {
                            if at < high {
                                stack.push(Frame::RunForward {
                                    pc: p,
                                    class,
                                    high,
                                    at,
                                });
                            }
                            pc = p as usize;
                            pos = at;
                            break;
                        }
                    }
                }
                *budget = budget.saturating_sub(1);
            }
        }
    }
}

impl Backtracker {
    /// The first run end at or after `at` (and at most `high`) where the
    /// rest of the pattern can start, extending the lazy run of `class`
    /// (instruction `pc`) byte by byte; `None` when the run cannot reach
    /// one.
    #[inline]
    fn lazy_next(
        &self,
        text: &[u8],
        pc: usize,
        class: u32,
        mut at: usize,
        high: usize,
    ) -> Option<usize> {
        let Some(follow) = &self.follow[pc] else {
            return Some(at);
        };
        let set = &self.classes[class as usize];
        loop {
            match text.get(at) {
                Some(&b) if follow.contains(b) => return Some(at),
                Some(&b) if at < high && set.contains(b) => at += 1,
                _ => return None,
            }
        }
    }
}

/// Adds to `out` the bytes a match starting at `pc` can begin with; false
/// when it can reach the end of the pattern, or `$`, without consuming one
/// (then there is nothing to skip by).
fn first_set(
    insts: &[Inst],
    classes: &[ByteSet],
    pc: usize,
    seen: &mut [bool],
    out: &mut ByteSet,
) -> bool {
    if seen[pc] {
        // Already added (or being added higher up this path).
        return true;
    }
    seen[pc] = true;
    match insts[pc] {
        Inst::Byte(b) => {
            out.insert_range(b, b);
            true
        }
        Inst::Class(i) => {
            out.union(&classes[i as usize]);
            true
        }
        Inst::Run { class, min, .. } => {
            out.union(&classes[class as usize]);
            min > 0 || first_set(insts, classes, pc + 1, seen, out)
        }
        Inst::Split { first, second } => {
            let a = first_set(insts, classes, first as usize, seen, out);
            let b = first_set(insts, classes, second as usize, seen, out);
            a && b
        }
        Inst::Jump(to) => first_set(insts, classes, to as usize, seen, out),
        Inst::Save(_) | Inst::AssertStart => first_set(insts, classes, pc + 1, seen, out),
        Inst::AssertEnd | Inst::Match => false,
    }
}

/// A backtracking stack entry; the stack is the caller's so that it is
/// reused from line to line.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Frame {
    Retry {
        pc: u32,
        pos: usize,
    },
    Restore {
        slot: u32,
        old: usize,
    },
    /// A greedy run that can give back bytes down to `low`.
    RunBack {
        pc: u32,
        low: usize,
        at: usize,
    },
    /// A lazy run that can take more bytes up to `high`.
    RunForward {
        pc: u32,
        class: u32,
        high: usize,
        at: usize,
    },
}

struct Compiler {
    insts: Vec<Inst>,
    classes: Vec<ByteSet>,
}

impl Compiler {
    fn push(&mut self, i: Inst) -> Result<u32, Unsupported> {
        if self.insts.len() >= MAX_INSTS {
            return Err(Unsupported("the program is too long"));
        }
        self.insts.push(i);
        Ok(self.insts.len() as u32 - 1)
    }

    fn class(&mut self, set: ByteSet) -> u32 {
        match self.classes.iter().position(|c| *c == set) {
            Some(i) => i as u32,
            None => {
                self.classes.push(set);
                self.classes.len() as u32 - 1
            }
        }
    }

    fn hir(&mut self, hir: &Hir) -> Result<(), Unsupported> {
        match hir.kind() {
            HirKind::Empty => Ok(()),
            HirKind::Literal(lit) => {
                for &b in lit.0.iter() {
                    self.push(Inst::Byte(b))?;
                }
                Ok(())
            }
            HirKind::Class(class) => {
                let set = byte_set(class)?;
                let i = self.class(set);
                self.push(Inst::Class(i))?;
                Ok(())
            }
            HirKind::Look(Look::Start) => self.push(Inst::AssertStart).map(drop),
            HirKind::Look(Look::End) => self.push(Inst::AssertEnd).map(drop),
            HirKind::Look(_) => Err(Unsupported("a look-around other than ^ and $")),
            HirKind::Capture(cap) => {
                self.push(Inst::Save(cap.index * 2))?;
                self.hir(&cap.sub)?;
                self.push(Inst::Save(cap.index * 2 + 1))?;
                Ok(())
            }
            HirKind::Concat(subs) => subs.iter().try_for_each(|h| self.hir(h)),
            HirKind::Alternation(subs) => {
                // Split(a, next) a Jump(end) Split(b, next) b Jump(end) … z
                let mut jumps = Vec::new();
                for (k, sub) in subs.iter().enumerate() {
                    if k + 1 == subs.len() {
                        self.hir(sub)?;
                        break;
                    }
                    let split = self.push(Inst::Split {
                        first: 0,
                        second: 0,
                    })?;
                    self.hir(sub)?;
                    jumps.push(self.push(Inst::Jump(0))?);
                    let next = self.insts.len() as u32;
                    self.insts[split as usize] = Inst::Split {
                        first: split + 1,
                        second: next,
                    };
                }
                let end = self.insts.len() as u32;
                for j in jumps {
                    self.insts[j as usize] = Inst::Jump(end);
                }
                Ok(())
            }
            HirKind::Repetition(rep) => {
                let max = rep.max;
                if let Some(set) = single_byte_set(&rep.sub)? {
                    let class = self.class(set);
                    self.push(Inst::Run {
                        class,
                        min: rep.min,
                        max: max.unwrap_or(u32::MAX),
                        greedy: rep.greedy,
                    })?;
                    return Ok(());
                }
                if max.is_none() && rep.sub.properties().minimum_len().unwrap_or(0) == 0 {
                    // Backtracking and the regex crate disagree on how an
                    // empty iteration ends a loop; leave it to the crate.
                    return Err(Unsupported("an unbounded repetition that can match empty"));
                }
                for _ in 0..rep.min {
                    self.hir(&rep.sub)?;
                }
                match max {
                    None => {
                        // L: Split(body, exit) body Jump(L)
                        let split = self.push(Inst::Split {
                            first: 0,
                            second: 0,
                        })?;
                        self.hir(&rep.sub)?;
                        self.push(Inst::Jump(split))?;
                        let exit = self.insts.len() as u32;
                        self.insts[split as usize] = self.split(split + 1, exit, rep.greedy);
                    }
                    Some(max) => {
                        // Each optional copy: Split(body, exit) body.
                        let mut splits = Vec::new();
                        for _ in rep.min..max {
                            splits.push(self.push(Inst::Split {
                                first: 0,
                                second: 0,
                            })?);
                            self.hir(&rep.sub)?;
                        }
                        let exit = self.insts.len() as u32;
                        for s in splits {
                            self.insts[s as usize] = self.split(s + 1, exit, rep.greedy);
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn split(&self, body: u32, exit: u32, greedy: bool) -> Inst {
        if greedy {
            Inst::Split {
                first: body,
                second: exit,
            }
        } else {
            Inst::Split {
                first: exit,
                second: body,
            }
        }
    }
}

fn byte_set(class: &Class) -> Result<ByteSet, Unsupported> {
    let mut set = ByteSet::default();
    match class {
        Class::Bytes(c) => {
            for r in c.ranges() {
                set.insert_range(r.start(), r.end());
            }
        }
        Class::Unicode(c) => {
            for r in c.ranges() {
                let (lo, hi) = (u32::from(r.start()), u32::from(r.end()));
                if hi > 0x7f {
                    return Err(Unsupported("a class beyond ASCII"));
                }
                set.insert_range(lo as u8, hi as u8);
            }
        }
    }
    Ok(set)
}

/// The byte set when `hir` matches exactly one byte (a class or a one-byte
/// literal).
fn single_byte_set(hir: &Hir) -> Result<Option<ByteSet>, Unsupported> {
    match hir.kind() {
        HirKind::Class(c) => byte_set(c).map(Some),
        HirKind::Literal(lit) if lit.0.len() == 1 => {
            let mut set = ByteSet::default();
            set.insert_range(lit.0[0], lit.0[0]);
            Ok(Some(set))
        }
        _ => Ok(None),
    }
}

fn starts_anchored(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Look(Look::Start) => true,
        HirKind::Concat(subs) => subs.first().is_some_and(starts_anchored),
        HirKind::Capture(c) => starts_anchored(&c.sub),
        HirKind::Alternation(subs) => subs.iter().all(starts_anchored),
        _ => false,
    }
}

/// The bytes any match must start with, when that is simple to know; the
/// caller asks only for patterns that cannot match empty.
fn first_bytes(hir: &Hir) -> Option<ByteSet> {
    match hir.kind() {
        HirKind::Literal(lit) => {
            let mut set = ByteSet::default();
            let b = *lit.0.first()?;
            set.insert_range(b, b);
            Some(set)
        }
        HirKind::Class(c) => byte_set(c).ok(),
        HirKind::Capture(c) => first_bytes(&c.sub),
        HirKind::Repetition(r) if r.min > 0 => first_bytes(&r.sub),
        HirKind::Concat(subs) => {
            let first = subs.first()?;
            if first.properties().minimum_len().unwrap_or(0) == 0 {
                return None;
            }
            first_bytes(first)
        }
        HirKind::Alternation(subs) => {
            let mut set = ByteSet::default();
            for s in subs {
                if s.properties().minimum_len().unwrap_or(0) == 0 {
                    return None;
                }
                set.union(&first_bytes(s)?);
            }
            Some(set)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Our answer and the regex crate's for `pattern` on `text`: the capture
    /// slots, or None for no match (budget exhaustion counts as agreement:
    /// the caller then asks the crate).
    /// Capture slots of a match (start, end per group).
    type Slots = Option<Vec<usize>>;

    fn both(pattern: &str, text: &[u8]) -> Option<(Slots, Slots)> {
        let ours = Backtracker::new(pattern).ok()?;
        let re = regex::bytes::RegexBuilder::new(pattern)
            .unicode(false)
            .build()
            .ok()?;
        let mut slots = vec![usize::MAX; ours.slot_count()];
        let mut stack = Vec::new();
        let got = match ours.search(text, &mut slots, &mut stack) {
            Err(()) => return None,
            Ok(true) => Some(slots),
            Ok(false) => None,
        };
        let mut locs = re.capture_locations();
        let want = re.captures_read(&mut locs, text).map(|_| {
            (0..locs.len())
                .flat_map(|i| match locs.get(i) {
                    Some((s, e)) => [s, e],
                    None => [usize::MAX, usize::MAX],
                })
                .collect::<Vec<_>>()
        });
        Some((got, want))
    }

    const NGINX: &str = r#"^(?<remote>[^ ]*) (?<host>[^ ]*) (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^\"]*?)(?: +\S*)?)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^\"]*)" "(?<agent>[^\"]*)")"#;

    #[test]
    fn nginx_lines_agree_with_the_regex_crate() {
        for line in [
            r#"1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] "GET /a/b?c=d HTTP/1.1" 200 12 "-" "curl/8""#,
            r#"1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] "GET /a b c HTTP/1.1" 200 12 "-" "x""#,
            r#"1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] "GET" 200 12 "-" "x""#,
            r#"1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] "GET  /x  " 200 12 "-" "x""#,
            r#"1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] "GET /x HTTP/1.1" 200 12"#,
            "garbage",
            "",
        ] {
            let (got, want) = both(NGINX, line.as_bytes()).expect("compiles, within budget");
            assert_eq!(got, want, "{line}");
        }
    }

    #[test]
    fn unsupported_patterns_are_refused() {
        assert!(Backtracker::new(r"\bword").is_err());
        assert!(Backtracker::new(r"(a*)*b").is_err());
        assert!(Backtracker::new(r"(?m)^a$").is_err());
        assert!(Backtracker::new(r"(?u)\w").is_err());
        assert!(Backtracker::new(r"(a|b)*c").is_ok());
    }

    #[test]
    fn a_pathological_pattern_runs_out_of_budget() {
        let p = Backtracker::new(r"^(a|aa)+$").unwrap();
        let text = vec![b'a'; 200];
        let mut text2 = text.clone();
        text2.push(b'b');
        let mut slots = vec![0; p.slot_count()];
        assert_eq!(p.search(&text2, &mut slots, &mut Vec::new()), Err(()));
    }

    /// Patterns from a small grammar over the bytes `a b space "`: runs,
    /// classes, lazy and greedy repetitions, counted repetitions, optional
    /// and alternated groups, captures, anchors.
    fn pattern() -> impl Strategy<Value = String> {
        let atom = prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just(" ".to_string()),
            Just("\"".to_string()),
            Just("[^ ]".to_string()),
            Just("[ab]".to_string()),
            Just(r"\S".to_string()),
            Just("[^\"]".to_string()),
            Just(".".to_string()),
        ];
        let leaf = (atom, 0..9usize).prop_map(|(a, q)| {
            let suffix = ["", "*", "+", "?", "*?", "+?", "??", "{1,3}", "{2}"][q];
            format!("{a}{suffix}")
        });
        let expr = leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(|v| v.concat()),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("(?:{a}|{b})")),
                (inner.clone(), 0..6usize).prop_map(|(a, q)| {
                    let suffix = ["", "?", "*", "+", "*?", "{0,2}"][q];
                    format!("(?:{a}){suffix}")
                }),
                inner.prop_map(|a| format!("(?<g>{a})")),
            ]
        });
        (any::<bool>(), expr, any::<bool>()).prop_map(|(s, e, end)| {
            // Capture names must be unique: number them.
            let mut n = 0;
            let e = e
                .split("(?<g>")
                .enumerate()
                .map(|(i, part)| {
                    if i == 0 {
                        part.to_string()
                    } else {
                        n += 1;
                        format!("(?<g{n}>{part}")
                    }
                })
                .collect::<String>();
            format!(
                "{}{e}{}",
                if s { "^" } else { "" },
                if end { "$" } else { "" }
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn agrees_with_the_regex_crate(
            p in pattern(),
            text in prop::collection::vec(prop::sample::select(vec![b'a', b'b', b' ', b'"', b'\n']), 0..24),
        ) {
            if let Some((got, want)) = both(&p, &text) {
                prop_assert_eq!(got, want, "pattern {} text {:?}", p, String::from_utf8_lossy(&text));
            }
        }
    }
}
