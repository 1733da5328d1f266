//! Template lexer and parser.

/// One piece of a parsed template.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    /// `{{ pipeline }}`: printed unless it declares or assigns a variable.
    Action(Pipeline),
    /// `if`/`with`: branches tried in order; `else` body.
    If {
        with: bool,
        branches: Vec<(Pipeline, Vec<Node>)>,
        else_: Vec<Node>,
    },
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        else_: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    /// Variables declared (`$x :=`, or `$i, $e :=` in range) or assigned.
    pub vars: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Func(String),
    /// `$name.f1.f2`; `$` alone is the root.
    Var(String, Vec<String>),
    /// `.f1.f2`; `.` alone is the current value.
    Dot(Vec<String>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Pipe(Box<Pipeline>),
}

/// The functions a template may call.
pub(crate) const FUNCS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    "slice",
    "call",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "title",
    "toUpper",
    "toLower",
    "match",
    "reReplaceAll",
    "query",
    "first",
    "label",
    "value",
    "sortByLabel",
    "strvalue",
    "safeHtml",
    "args",
    "tmpl",
    "pathPrefix",
    "externalURL",
    "parseDuration",
    "toTime",
    "toDuration",
    "stripPort",
    "stripDomain",
    "graphLink",
    "tableLink",
    "now",
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Var(String, Vec<String>),
    Dot(Vec<String>),
    Str(String),
    Num(String),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

/// An action's tokens and where it starts.
struct Action {
    toks: Vec<(Tok, usize)>,
    at: usize,
}

enum Item {
    Text(String),
    Action(Action),
}

type PResult<T> = Result<T, (usize, String)>;

/// Splits the text into text pieces and actions, applying trim markers.
fn split(src: &str) -> PResult<Vec<Item>> {
    let mut items = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    while pos < src.len() {
        let Some(rel) = src[pos..].find("{{") else {
            let mut t = &src[pos..];
            if trim_next {
                t = t.trim_start();
            }
            if !t.is_empty() {
                items.push(Item::Text(t.to_string()));
            }
            break;
        };
        let open = pos + rel;
        let mut text = &src[pos..open];
        if trim_next {
            text = text.trim_start();
        }
        let mut inner_start = open + 2;
        let trim_left = src[inner_start..].starts_with("- ")
            || src[inner_start..].starts_with("-\t")
            || src[inner_start..].starts_with("-\n");
        if trim_left {
            text = text.trim_end();
            inner_start += 1;
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        // Comments.
        let rest = src[inner_start..].trim_start();
        if rest.starts_with("/*") {
            let cstart = src.len() - rest.len();
            let Some(cend) = src[cstart..].find("*/") else {
                return Err((open, "unclosed comment".into()));
            };
            let after = cstart + cend + 2;
            let after_ws = src[after..].trim_start();
            let (close, trim_right) = if let Some(r) = after_ws.strip_prefix("-}}") {
                (src.len() - r.len(), true)
            } else if let Some(r) = after_ws.strip_prefix("}}") {
                (src.len() - r.len(), false)
            } else {
                return Err((open, "comment ends before closing delimiter".into()));
            };
            pos = close;
            trim_next = trim_right;
            continue;
        }
        let (toks, end, trim_right) = lex_action(src, inner_start)?;
        items.push(Item::Action(Action { toks, at: open }));
        pos = end;
        trim_next = trim_right;
    }
    Ok(items)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Lexes one action from `start` (just after `{{` or `{{-`); returns the
/// tokens, the offset after `}}` and whether `-}}` asked for trimming.
/// An action's tokens with their offsets, the offset after `}}`, and
/// whether `-}}` asked to trim what follows.
type Lexed = (Vec<(Tok, usize)>, usize, bool);

fn lex_action(src: &str, start: usize) -> PResult<Lexed> {
    let b = src.as_bytes();
    let mut i = start;
    let mut toks = Vec::new();
    loop {
        while i < b.len() && (b[i] as char).is_ascii_whitespace() {
            // ` -}}` closes with trimming.
            i += 1;
        }
        if i >= b.len() {
            return Err((start, "unclosed action".into()));
        }
        if src[i..].starts_with("}}") {
            return Ok((toks, i + 2, false));
        }
        if src[i..].starts_with("-}}") && i > start && (b[i - 1] as char).is_ascii_whitespace() {
            return Ok((toks, i + 3, true));
        }
        let at = i;
        let c = src[i..].chars().next().unwrap_or(' ');
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '|' => {
                i += 1;
                Tok::Pipe
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            ':' if src[i..].starts_with(":=") => {
                i += 2;
                Tok::Declare
            }
            '=' => {
                i += 1;
                Tok::Assign
            }
            '"' | '`' => {
                let (s, used) =
                    unquote(&src[i..]).ok_or((i, "unterminated quoted string".to_string()))?;
                i += used;
                Tok::Str(s)
            }
            '$' | '.' => {
                let mut name = String::new();
                if c == '$' {
                    name.push('$');
                    i += 1;
                    while let Some(ch) = src[i..].chars().next().filter(|c| is_ident(*c)) {
                        name.push(ch);
                        i += ch.len_utf8();
                    }
                }
                let mut fields = Vec::new();
                while src[i..].starts_with('.') {
                    i += 1;
                    let mut f = String::new();
                    while let Some(ch) = src[i..].chars().next().filter(|c| is_ident(*c)) {
                        f.push(ch);
                        i += ch.len_utf8();
                    }
                    if f.is_empty() {
                        if c == '.' && fields.is_empty() && name.is_empty() {
                            break; // a bare "."
                        }
                        return Err((at, "bad field syntax".into()));
                    }
                    fields.push(f);
                }
                if c == '$' {
                    Tok::Var(name, fields)
                } else {
                    Tok::Dot(fields)
                }
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let st = i;
                i += 1;
                while i < b.len() && ((b[i] as char).is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
                Tok::Num(src[st..i].to_string())
            }
            c if is_ident(c) => {
                let st = i;
                while let Some(ch) = src[i..].chars().next().filter(|c| is_ident(*c)) {
                    i += ch.len_utf8();
                }
                Tok::Ident(src[st..i].to_string())
            }
            other => return Err((at, format!("unexpected {other:?} in action"))),
        };
        toks.push((tok, at));
    }
}

fn unquote(s: &str) -> Option<(String, usize)> {
    let q = s.chars().next()?;
    let mut out = String::new();
    let mut it = s.char_indices().skip(1);
    while let Some((i, c)) = it.next() {
        if c == q {
            return Some((out, i + 1));
        }
        if c == '\n' && q == '"' {
            return None;
        }
        if c == '\\' && q == '"' {
            let (_, e) = it.next()?;
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let mut hex = String::new();
                    for _ in 0..n {
                        hex.push(it.next()?.1);
                    }
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                _ => return None,
            }
            continue;
        }
        out.push(c);
    }
    None
}

/// Parses a template into nodes, checking functions and variables.
pub(crate) fn parse(src: &str) -> PResult<Vec<Node>> {
    let items = split(src)?;
    let mut p = Parser {
        items,
        pos: 0,
        scopes: vec![vec![
            "$".into(),
            "$labels".into(),
            "$externalLabels".into(),
            "$externalURL".into(),
            "$value".into(),
        ]],
    };
    let (nodes, end) = p.list()?;
    if let Some((kw, at)) = end {
        return Err((at, format!("unexpected {{{{{kw}}}}}")));
    }
    Ok(nodes)
}

struct Parser {
    items: Vec<Item>,
    pos: usize,
    scopes: Vec<Vec<String>>,
}

/// How deeply blocks and parentheses may nest in a template.
const MAX_DEPTH: usize = 64;

impl Parser {
    fn defined(&self, v: &str) -> bool {
        self.scopes.iter().any(|s| s.iter().any(|x| x == v))
    }

    /// Nodes up to an `else` or `end` (returned with its position), or the
    /// end of input.
    #[allow(clippy::type_complexity)]
    fn list(&mut self) -> PResult<(Vec<Node>, Option<(String, usize)>)> {
        if self.scopes.len() > MAX_DEPTH {
            let at = match self.items.get(self.pos.saturating_sub(1)) {
                Some(Item::Action(a)) => a.at,
                _ => 0,
            };
            return Err((at, "blocks nested too deeply".into()));
        }
        let mut out = Vec::new();
        while self.pos < self.items.len() {
            let idx = self.pos;
            self.pos += 1;
            let (toks, at) = match &self.items[idx] {
                Item::Text(t) => {
                    out.push(Node::Text(t.clone()));
                    continue;
                }
                Item::Action(a) => (a.toks.clone(), a.at),
            };
            let kw = match toks.first() {
                Some((Tok::Ident(k), _)) => k.clone(),
                _ => String::new(),
            };
            match kw.as_str() {
                "end" => return Ok((out, Some(("end".into(), at)))),
                "else" => {
                    // Hand the whole else action back: `else if ...` keeps its tokens.
                    self.pos -= 1;
                    return Ok((out, Some(("else".into(), at))));
                }
                "if" | "with" => out.push(self.branching(kw == "with", &toks[1..], at)?),
                "range" => {
                    self.scopes.push(Vec::new());
                    let pipe = self.pipeline(&toks[1..], at, true)?;
                    let (body, end) = self.list()?;
                    let mut else_ = Vec::new();
                    match end {
                        Some((e, _)) if e == "else" => {
                            self.pos += 1;
                            let (b, end2) = self.list()?;
                            else_ = b;
                            if !matches!(end2, Some((ref e, _)) if e == "end") {
                                return Err((at, "missing {{end}} for range".into()));
                            }
                        }
                        Some(_) => {}
                        None => return Err((at, "missing {{end}} for range".into())),
                    }
                    self.scopes.pop();
                    out.push(Node::Range { pipe, body, else_ });
                }
                "define" | "template" | "block" => {
                    return Err((at, format!("{{{{{kw}}}}} is not supported")));
                }
                _ => {
                    let pipe = self.pipeline(&toks, at, false)?;
                    out.push(Node::Action(pipe));
                }
            }
        }
        Ok((out, None))
    }

    fn branching(&mut self, with: bool, toks: &[(Tok, usize)], at: usize) -> PResult<Node> {
        let mut branches = Vec::new();
        let mut else_ = Vec::new();
        let mut cond_toks: Vec<(Tok, usize)> = toks.to_vec();
        loop {
            self.scopes.push(Vec::new());
            let pipe = self.pipeline(&cond_toks, at, false)?;
            let (body, end) = self.list()?;
            self.scopes.pop();
            branches.push((pipe, body));
            match end {
                Some((e, _)) if e == "end" => break,
                Some((_, eat)) => {
                    // An else action: plain else, or else if / else with.
                    let Item::Action(a) = &self.items[self.pos] else {
                        return Err((eat, "bad else".into()));
                    };
                    let rest: Vec<(Tok, usize)> = a.toks[1..].to_vec();
                    self.pos += 1;
                    match rest.first() {
                        Some((Tok::Ident(k), _)) if k == "if" || k == "with" => {
                            cond_toks = rest[1..].to_vec();
                            continue;
                        }
                        None => {
                            self.scopes.push(Vec::new());
                            let (b, end2) = self.list()?;
                            self.scopes.pop();
                            else_ = b;
                            if !matches!(end2, Some((ref e, _)) if e == "end") {
                                return Err((at, "missing {{end}}".into()));
                            }
                            break;
                        }
                        Some((_, p)) => return Err((*p, "unexpected tokens after else".into())),
                    }
                }
                None => return Err((at, "missing {{end}}".into())),
            }
        }
        Ok(Node::If {
            with,
            branches,
            else_,
        })
    }

    fn pipeline(&mut self, toks: &[(Tok, usize)], at: usize, range: bool) -> PResult<Pipeline> {
        let mut i = 0;
        let mut vars = Vec::new();
        let mut assign = false;
        // `$x :=` / `$x =` / `$i, $e :=`
        let mut j = 0;
        let mut names = Vec::new();
        while let Some((Tok::Var(n, f), _)) = toks.get(j) {
            if !f.is_empty() {
                break;
            }
            names.push(n.clone());
            j += 1;
            if range && matches!(toks.get(j), Some((Tok::Comma, _))) {
                j += 1;
                continue;
            }
            break;
        }
        match toks.get(j) {
            Some((Tok::Declare, _)) if !names.is_empty() => {
                vars = names;
                i = j + 1;
            }
            Some((Tok::Assign, p)) if names.len() == 1 => {
                if !self.defined(&names[0]) {
                    return Err((*p, format!("undefined variable {:?}", names[0])));
                }
                vars = names;
                assign = true;
                i = j + 1;
            }
            _ => {}
        }
        let (cmds, used) = self.commands(&toks[i..], at)?;
        if used != toks.len() - i {
            return Err((toks[i + used].1, "unexpected token in pipeline".into()));
        }
        if !assign {
            if let Some(scope) = self.scopes.last_mut() {
                scope.extend(vars.iter().cloned());
            }
        }
        if cmds.is_empty() {
            return Err((at, "missing value for command".into()));
        }
        Ok(Pipeline { vars, assign, cmds })
    }

    /// Commands separated by `|`, up to a `)` or the end.
    fn commands(&mut self, toks: &[(Tok, usize)], at: usize) -> PResult<(Vec<Vec<Arg>>, usize)> {
        self.scopes.push(Vec::new());
        let r = if self.scopes.len() > MAX_DEPTH {
            Err((at, "parentheses nested too deeply".into()))
        } else {
            self.commands_inner(toks, at)
        };
        self.scopes.pop();
        r
    }

    fn commands_inner(
        &mut self,
        toks: &[(Tok, usize)],
        at: usize,
    ) -> PResult<(Vec<Vec<Arg>>, usize)> {
        let mut cmds = Vec::new();
        let mut cur = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let (t, p) = &toks[i];
            match t {
                Tok::RParen => break,
                Tok::Pipe => {
                    if cur.is_empty() {
                        return Err((*p, "missing command before |".into()));
                    }
                    cmds.push(std::mem::take(&mut cur));
                    i += 1;
                    continue;
                }
                Tok::LParen => {
                    let (inner, used) = self.commands(&toks[i + 1..], *p)?;
                    match toks.get(i + 1 + used) {
                        Some((Tok::RParen, _)) => {}
                        _ => return Err((*p, "unclosed left paren".into())),
                    }
                    if inner.is_empty() {
                        return Err((*p, "missing value for parenthesized pipeline".into()));
                    }
                    cur.push(Arg::Pipe(Box::new(Pipeline {
                        vars: Vec::new(),
                        assign: false,
                        cmds: inner,
                    })));
                    i += used + 2;
                    continue;
                }
                Tok::Ident(n) => {
                    let a = match n.as_str() {
                        "true" => Arg::Bool(true),
                        "false" => Arg::Bool(false),
                        "nil" => Arg::Nil,
                        _ if FUNCS.contains(&n.as_str()) => Arg::Func(n.clone()),
                        _ => return Err((*p, format!("function {n:?} not defined"))),
                    };
                    cur.push(a);
                }
                Tok::Var(n, f) => {
                    if !self.defined(n) {
                        return Err((*p, format!("undefined variable {n:?}")));
                    }
                    cur.push(Arg::Var(n.clone(), f.clone()));
                }
                Tok::Dot(f) => cur.push(Arg::Dot(f.clone())),
                Tok::Str(s) => cur.push(Arg::Str(s.clone())),
                Tok::Num(s) => {
                    let a = if let Ok(v) = s.parse::<i64>() {
                        Arg::Int(v)
                    } else if let Ok(v) = s.parse::<f64>() {
                        Arg::Float(v)
                    } else {
                        return Err((*p, format!("bad number syntax: {s:?}")));
                    };
                    cur.push(a);
                }
                Tok::Declare | Tok::Assign | Tok::Comma => {
                    return Err((*p, "unexpected token in command".into()));
                }
            }
            i += 1;
        }
        if !cur.is_empty() {
            cmds.push(cur);
        } else if !cmds.is_empty() {
            return Err((at, "missing command after |".into()));
        }
        Ok((cmds, i))
    }
}
