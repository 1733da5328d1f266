//! Template functions: Go's builtins and Prometheus's.

use super::exec::{TValue, print_value};
use super::{Data, QueryFn};

fn num(v: &TValue, f: &str) -> Result<f64, String> {
    match v {
        TValue::Float(x) => Ok(*x),
        TValue::Int(i) => Ok(*i as f64),
        TValue::Str(s) => s
            .trim()
            .parse::<f64>()
            .or_else(|_| match s.trim().to_ascii_lowercase().as_str() {
                "+inf" | "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "nan" => Ok(f64::NAN),
                _ => Err(()),
            })
            .map_err(|_| format!("error calling {f}: can't convert {s:?} to float")),
        other => Err(format!(
            "error calling {f}: can't convert {} to float",
            print_value(other)
        )),
    }
}

fn string_arg(v: &TValue) -> String {
    print_value(v)
}

fn want(args: &[TValue], n: usize, f: &str) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {f}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

/// Go's `%g` (shortest with `None`, else `prec` significant digits),
/// including `+Inf`, `-Inf` and `NaN`.
pub(crate) fn format_g(f: f64, prec: Option<usize>) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (s, eprec) = match prec {
        None => (format!("{f:e}"), 6usize),
        Some(p) => {
            let p = p.max(1);
            (format!("{:.*e}", p - 1, f), p)
        }
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if exp < -4 || exp >= eprec as i32 {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, Some(4));
    }
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", format_g(v, Some(4)))
}

fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, Some(4));
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", format_g(v, Some(4)))
}

fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return format_g(v, Some(4));
    }
    if v == 0.0 {
        return format!("{}s", format_g(v, Some(4)));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        let d = v as i64;
        let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86_400);
        if days != 0 {
            return format!("{sign}{days}d {h}h {m}m {s}s");
        }
        if h != 0 {
            return format!("{sign}{h}h {m}m {s}s");
        }
        if m != 0 {
            return format!("{sign}{m}m {s}s");
        }
        return format!("{sign}{}s", format_g(v, Some(4)));
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", format_g(v, Some(4)))
}

fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Go's `time.Time.String()` of a UTC time given in seconds.
fn humanize_timestamp(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return format_g(v, Some(4));
    }
    let secs = v.floor() as i64;
    let nanos = ((v - v.floor()) * 1e9).round() as i64;
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mut frac = String::new();
    if nanos > 0 {
        frac = format!(".{nanos:09}").trim_end_matches('0').to_string();
    }
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}{frac} +0000 UTC",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

fn title(s: &str) -> String {
    let mut out = String::new();
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

fn cmp_values(a: &TValue, b: &TValue, f: &str) -> Result<std::cmp::Ordering, String> {
    use TValue::*;
    match (a, b) {
        (Int(x), Int(y)) => Ok(x.cmp(y)),
        (Float(_) | Int(_), Float(_) | Int(_)) => {
            let (x, y) = (num(a, f)?, num(b, f)?);
            x.partial_cmp(&y)
                .ok_or_else(|| format!("error calling {f}: NaN is not comparable"))
        }
        (Str(x), Str(y)) => Ok(x.cmp(y)),
        (Bool(x), Bool(y)) if f == "eq" || f == "ne" => Ok(x.cmp(y)),
        _ => Err(format!(
            "error calling {f}: incompatible types for comparison"
        )),
    }
}

/// Go's `fmt.Sprintf` for the verbs templates use.
fn sprintf(format: &str, args: &[TValue]) -> String {
    let mut out = String::new();
    let mut it = format.chars().peekable();
    let mut n = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = it.peek() {
            if "-+ 0#".contains(f) {
                flags.push(f);
                it.next();
            } else {
                break;
            }
        }
        let mut width = String::new();
        while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            it.next();
        }
        let mut prec: Option<usize> = None;
        if it.peek() == Some(&'.') {
            it.next();
            let mut p = String::new();
            while let Some(&d) = it.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                it.next();
            }
            // Bounded, so that a template cannot ask for gigabytes.
            prec = Some(p.parse::<usize>().unwrap_or(0).min(1000));
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(n) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        n += 1;
        let bad = || format!("%!{verb}({}={})", arg.type_name(), print_value(arg));
        let s = match (verb, arg) {
            ('v', _) => print_value(arg),
            ('s', TValue::Str(s)) => s.clone(),
            ('s', TValue::Float(_) | TValue::Int(_) | TValue::Bool(_)) => bad(),
            ('s', _) => print_value(arg),
            ('q', TValue::Str(s)) => crate::promql::labels::go_quote(s.as_bytes()),
            ('d', TValue::Int(i)) => {
                if flags.contains('+') && *i >= 0 {
                    format!("+{i}")
                } else {
                    i.to_string()
                }
            }
            ('f' | 'F', TValue::Float(x)) => fixed(*x, prec.unwrap_or(6), flags.contains('+')),
            ('e' | 'E', TValue::Float(x)) => {
                let s = exp_form(*x, prec.unwrap_or(6));
                if verb == 'E' { s.to_uppercase() } else { s }
            }
            ('g' | 'G', TValue::Float(x)) => {
                let s = format_g(*x, prec);
                if verb == 'G' { s.to_uppercase() } else { s }
            }
            ('x', TValue::Int(i)) => format!("{i:x}"),
            ('X', TValue::Int(i)) => format!("{i:X}"),
            ('x', TValue::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('t', TValue::Bool(b)) => b.to_string(),
            _ => bad(),
        };
        let w: usize = width.parse::<usize>().unwrap_or(0).min(1000);
        let len = s.chars().count();
        if len < w {
            let pad = w - len;
            if flags.contains('-') {
                out.push_str(&s);
                out.extend(std::iter::repeat_n(' ', pad));
            } else if flags.contains('0') && matches!(arg, TValue::Int(_) | TValue::Float(_)) {
                let (sign, digits) = if s.starts_with('-') || s.starts_with('+') {
                    s.split_at(1)
                } else {
                    ("", s.as_str())
                };
                out.push_str(sign);
                out.extend(std::iter::repeat_n('0', pad));
                out.push_str(digits);
            } else {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(&s);
            }
        } else {
            out.push_str(&s);
        }
    }
    if n < args.len() {
        let extra: Vec<String> = args[n..]
            .iter()
            .map(|a| format!("{}={}", a.type_name(), print_value(a)))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn fixed(x: f64, prec: usize, plus: bool) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{x:.prec$}");
    if plus && x >= 0.0 { format!("+{s}") } else { s }
}

fn exp_form(x: f64, prec: usize) -> String {
    if !x.is_finite() {
        return format_g(x, None);
    }
    let s = format!("{x:.prec$e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

/// Go's `fmt.Sprint`: spaces between operands when neither is a string.
fn sprint(args: &[TValue]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, TValue::Str(_)) && !matches!(args[i - 1], TValue::Str(_)) {
            out.push(' ');
        }
        out.push_str(&print_value(a));
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn regex(pattern: &str, f: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| format!("error calling {f}: {e}"))
}

/// A query result sample as templates see it: `.Labels` and `.Value`.
fn sample_value(labels: &crate::Labels, v: f64) -> TValue {
    TValue::Map(vec![
        (
            "Labels".into(),
            TValue::Map(
                labels
                    .iter()
                    .map(|l| (l.name.clone(), TValue::Str(l.value.clone())))
                    .collect(),
            ),
        ),
        ("Value".into(), TValue::Float(v)),
    ])
}

fn sample_field(s: &TValue, field: &str, f: &str) -> Result<TValue, String> {
    match s {
        TValue::Map(m) => Ok(m
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.clone())
            .unwrap_or(TValue::Nil)),
        other => Err(format!(
            "error calling {f}: {} is not a sample",
            print_value(other)
        )),
    }
}

/// Calls function `f`.
pub(crate) fn call(
    f: &str,
    args: Vec<TValue>,
    data: &Data,
    query: Option<&QueryFn<'_>>,
) -> Result<TValue, String> {
    use TValue::*;
    let one_num = |args: &[TValue]| -> Result<f64, String> {
        want(args, 1, f)?;
        num(&args[0], f)
    };
    Ok(match f {
        "and" => {
            let mut last = Nil;
            for a in args {
                if !a.truthy() {
                    return Ok(a);
                }
                last = a;
            }
            last
        }
        "or" => {
            let mut last = Nil;
            for a in args {
                if a.truthy() {
                    return Ok(a);
                }
                last = a;
            }
            last
        }
        "not" => {
            want(&args, 1, f)?;
            Bool(!args[0].truthy())
        }
        "len" => {
            want(&args, 1, f)?;
            Int(match &args[0] {
                Str(s) => s.len() as i64,
                Map(m) => m.len() as i64,
                List(l) => l.len() as i64,
                other => {
                    return Err(format!(
                        "error calling len: len of type {}",
                        other.type_name()
                    ));
                }
            })
        }
        "index" => {
            let mut it = args.into_iter();
            let mut v = it.next().ok_or("error calling index: missing argument")?;
            for k in it {
                v = match (&v, &k) {
                    (Map(m), Str(key)) => m
                        .iter()
                        .find(|(n, _)| n == key)
                        .map(|(_, x)| x.clone())
                        .unwrap_or(Str(String::new())),
                    (List(l), Int(i)) => l
                        .get(*i as usize)
                        .cloned()
                        .ok_or_else(|| format!("error calling index: index out of range: {i}"))?,
                    _ => return Err("error calling index: cannot index".into()),
                };
            }
            v
        }
        "print" => Str(sprint(&args)),
        "println" => {
            let parts: Vec<String> = args.iter().map(print_value).collect();
            Str(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            let (fmt, rest) = args
                .split_first()
                .ok_or("error calling printf: missing format")?;
            Str(sprintf(&string_arg(fmt), rest))
        }
        "eq" => {
            let (a, rest) = args
                .split_first()
                .ok_or("error calling eq: missing argument")?;
            let mut any = false;
            for b in rest {
                if cmp_values(a, b, f)? == std::cmp::Ordering::Equal {
                    any = true;
                }
            }
            Bool(any)
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(&args, 2, f)?;
            let o = cmp_values(&args[0], &args[1], f)?;
            use std::cmp::Ordering::*;
            Bool(match f {
                "ne" => o != Equal,
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            })
        }
        "html" => Str(html_escape(&sprint(&args))),
        "urlquery" => Str(query_escape(&sprint(&args))),
        "js" => Str(sprint(&args)
            .replace('\\', "\\\\")
            .replace('\'', "\\'")
            .replace('"', "\\\"")),
        "humanize" => Str(humanize(one_num(&args)?)),
        "humanize1024" => Str(humanize1024(one_num(&args)?)),
        "humanizeDuration" => Str(humanize_duration(one_num(&args)?)),
        "humanizePercentage" => Str(format!("{}%", format_g(one_num(&args)? * 100.0, Some(4)))),
        "humanizeTimestamp" => Str(humanize_timestamp(one_num(&args)?)),
        "toTime" => Str(humanize_timestamp(one_num(&args)?)),
        "title" => {
            want(&args, 1, f)?;
            Str(title(&string_arg(&args[0])))
        }
        "toUpper" => {
            want(&args, 1, f)?;
            Str(string_arg(&args[0]).to_uppercase())
        }
        "toLower" => {
            want(&args, 1, f)?;
            Str(string_arg(&args[0]).to_lowercase())
        }
        "match" => {
            want(&args, 2, f)?;
            Bool(regex(&string_arg(&args[0]), f)?.is_match(&string_arg(&args[1])))
        }
        "reReplaceAll" => {
            want(&args, 3, f)?;
            let re = regex(&string_arg(&args[0]), f)?;
            Str(re
                .replace_all(&string_arg(&args[2]), string_arg(&args[1]).as_str())
                .into_owned())
        }
        "safeHtml" => {
            want(&args, 1, f)?;
            Str(string_arg(&args[0]))
        }
        "args" => List(args),
        "pathPrefix" => Str(String::new()),
        "externalURL" => Str(data.external_url.clone()),
        "stripPort" => {
            want(&args, 1, f)?;
            let s = string_arg(&args[0]);
            Str(match s.rsplit_once(':') {
                Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                    h.trim_start_matches('[').trim_end_matches(']').to_string()
                }
                _ => s,
            })
        }
        "stripDomain" => {
            want(&args, 1, f)?;
            let s = string_arg(&args[0]);
            let (host, port) = match s.rsplit_once(':') {
                Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => {
                    (h.to_string(), format!(":{p}"))
                }
                _ => (s.clone(), String::new()),
            };
            if host.parse::<std::net::IpAddr>().is_ok() {
                Str(s)
            } else {
                Str(format!("{}{port}", host.split('.').next().unwrap_or("")))
            }
        }
        "parseDuration" => {
            want(&args, 1, f)?;
            let s = string_arg(&args[0]);
            let ms = crate::promql::parse_duration(&s).ok_or_else(|| {
                format!("error calling parseDuration: not a valid duration string: {s:?}")
            })?;
            Float(ms as f64 / 1000.0)
        }
        "toDuration" => {
            let v = one_num(&args)?;
            Str(crate::rules::format_duration((v * 1000.0).round() as i64))
        }
        "strvalue" => {
            want(&args, 1, f)?;
            match sample_field(&args[0], "Labels", f)? {
                Map(m) => m
                    .iter()
                    .find(|(k, _)| k == "__value__")
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Str(String::new())),
                _ => Str(String::new()),
            }
        }
        "query" => {
            want(&args, 1, f)?;
            let q = query.ok_or("error calling query: no query engine here")?;
            let res = q(&string_arg(&args[0])).map_err(|e| format!("error calling query: {e}"))?;
            List(res.iter().map(|(l, v)| sample_value(l, *v)).collect())
        }
        "first" => {
            want(&args, 1, f)?;
            match &args[0] {
                List(l) => l
                    .first()
                    .cloned()
                    .ok_or("error calling first: first() called on vector with no elements")?,
                other => {
                    return Err(format!(
                        "error calling first: {} is not a vector",
                        print_value(other)
                    ));
                }
            }
        }
        "label" => {
            want(&args, 2, f)?;
            let labels = sample_field(&args[1], "Labels", f)?;
            match labels {
                Map(m) => m
                    .iter()
                    .find(|(k, _)| *k == string_arg(&args[0]))
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Str(String::new())),
                _ => Str(String::new()),
            }
        }
        "value" => {
            want(&args, 1, f)?;
            sample_field(&args[0], "Value", f)?
        }
        "sortByLabel" => {
            want(&args, 2, f)?;
            let name = string_arg(&args[0]);
            let List(mut l) = args[1].clone() else {
                return Err("error calling sortByLabel: not a vector".into());
            };
            let key = |s: &TValue| -> String {
                match sample_field(s, "Labels", "sortByLabel") {
                    Ok(Map(m)) => m
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| print_value(v))
                        .unwrap_or_default(),
                    _ => String::new(),
                }
            };
            l.sort_by_key(key);
            List(l)
        }
        "graphLink" | "tableLink" | "tmpl" | "now" | "slice" | "call" => {
            return Err(format!("error calling {f}: not supported yet"));
        }
        other => return Err(format!("function {other:?} not defined")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_g_formatting() {
        assert_eq!(format_g(0.95, None), "0.95");
        assert_eq!(format_g(1e6, None), "1e+06");
        assert_eq!(format_g(123456.0, None), "123456");
        assert_eq!(format_g(1234567.0, None), "1.234567e+06");
        assert_eq!(format_g(0.0001, None), "0.0001");
        assert_eq!(format_g(0.00001, None), "1e-05");
        assert_eq!(format_g(1234.5678, Some(4)), "1235");
        assert_eq!(format_g(12345.0, Some(4)), "1.234e+04");
        assert_eq!(format_g(1.5, Some(4)), "1.5");
    }

    #[test]
    fn humanize_like_prometheus() {
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(0.001234), "1.234m");
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize1024(1048576.0), "1Mi");
        assert_eq!(humanize_duration(3661.0), "1h 1m 1s");
        assert_eq!(humanize_duration(1.5), "1.5s");
        assert_eq!(humanize_duration(0.0015), "1.5ms");
        assert_eq!(humanize_timestamp(1.5), "1970-01-01 00:00:01.5 +0000 UTC");
    }

    #[test]
    fn printf_verbs() {
        assert_eq!(sprintf("%.2f%%", &[TValue::Float(12.345)]), "12.35%");
        assert_eq!(sprintf("%d", &[TValue::Int(7)]), "7");
        assert_eq!(sprintf("%d", &[TValue::Float(1.5)]), "%!d(float64=1.5)");
        assert_eq!(
            sprintf("%s=%v", &[TValue::Str("a".into())]),
            "a=%!v(MISSING)"
        );
        assert_eq!(
            sprintf("%5s|%-3d|", &[TValue::Str("ab".into()), TValue::Int(1)]),
            "   ab|1  |"
        );
    }
}
