//! Routing by tag: fluent-bit's `Match` (wildcards) and `Match_Regex`, and
//! the `Tag kube.*` expansion of the tail input.

use crate::Result;
use crate::config::Section;

/// Which tags a filter or output takes.
#[derive(Debug, Clone)]
pub enum TagMatch {
    /// `Match`: `*` matches any run of characters (dots included), every
    /// other character itself, case-sensitively.
    Wildcard(String),
    /// `Match_Regex`: a search in the tag (anchor with `^...$` to match the
    /// whole tag).
    Regex(regex::Regex),
    /// Neither key: matches nothing (fluent-bit warns and leaves the plugin
    /// without records).
    Nothing,
}

impl TagMatch {
    /// `Match_Regex` when present (it wins, as in fluent-bit), else `Match`,
    /// else [`TagMatch::Nothing`].
    pub fn from_section(s: &Section) -> Result<TagMatch> {
        if let Some(re) = s.get("match_regex") {
            let re = regex::Regex::new(re)
                .map_err(|e| s.error_at("match_regex", format!("bad Match_Regex: {e}")))?;
            return Ok(TagMatch::Regex(re));
        }
        Ok(match s.get("match") {
            Some(p) => TagMatch::Wildcard(p.to_owned()),
            None => TagMatch::Nothing,
        })
    }

    /// A wildcard pattern.
    pub fn wildcard(pattern: &str) -> TagMatch {
        TagMatch::Wildcard(pattern.to_owned())
    }

    /// Whether this matches nothing (no `Match` nor `Match_Regex`).
    pub fn is_nothing(&self) -> bool {
        matches!(self, TagMatch::Nothing)
    }

    /// Whether `tag` is routed here.
    pub fn matches(&self, tag: &str) -> bool {
        match self {
            TagMatch::Wildcard(p) => wildcard_match(p.as_bytes(), tag.as_bytes()),
            TagMatch::Regex(re) => re.is_match(tag),
            TagMatch::Nothing => false,
        }
    }
}

/// `*`-only glob matching, iterative with one backtrack point (linear in
/// practice, no recursion on hostile patterns).
pub fn wildcard_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The tail input's tag for `path`: the first `*` of `tag_pattern` becomes
/// the path with its separators (`/`, `\`) turned into dots and a leading
/// separator dropped, so `kube.*` and `/var/log/containers/a.log` give
/// `kube.var.log.containers.a.log`. A pattern without `*` is the tag as is.
pub fn expand_tag(tag_pattern: &str, path: &str) -> String {
    let Some(star) = tag_pattern.find('*') else {
        return tag_pattern.to_owned();
    };
    let trimmed = path.trim_start_matches(['/', '\\']);
    let mut out = String::with_capacity(tag_pattern.len() + trimmed.len());
    out.push_str(&tag_pattern[..star]);
    out.extend(
        trimmed
            .chars()
            .map(|c| if c == '/' || c == '\\' { '.' } else { c }),
    );
    out.push_str(&tag_pattern[star + 1..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SectionKind;

    #[test]
    fn wildcards() {
        let m = TagMatch::wildcard("kube.*");
        assert!(m.matches("kube.var.log.a.log"));
        assert!(m.matches("kube."));
        assert!(!m.matches("kube"));
        assert!(!m.matches("app.kube.x"));
        assert!(TagMatch::wildcard("*").matches(""));
        assert!(TagMatch::wildcard("*.log").matches("a.b.log"));
        assert!(TagMatch::wildcard("a*b*c").matches("a-x-b-y-c"));
        assert!(!TagMatch::wildcard("a*b*c").matches("a-x-c-y-b"));
        assert!(TagMatch::wildcard("app.a").matches("app.a"));
        assert!(!TagMatch::wildcard("app.a").matches("app.ab"));
        assert!(!TagMatch::wildcard("App.*").matches("app.x"));
    }

    #[test]
    fn from_section_prefers_regex() {
        let s = Section::new(SectionKind::Output, "f", 1)
            .with("Name", "stdout")
            .with("Match", "x")
            .with("Match_Regex", r"^app\.(a|b)$");
        let m = TagMatch::from_section(&s).unwrap();
        assert!(m.matches("app.a") && !m.matches("x") && !m.matches("app.c"));
        let none = TagMatch::from_section(&Section::new(SectionKind::Output, "f", 1)).unwrap();
        assert!(none.is_nothing() && !none.matches("x"));
        let bad = Section::new(SectionKind::Output, "f", 1).with("Match_Regex", "(");
        assert!(
            TagMatch::from_section(&bad)
                .unwrap_err()
                .to_string()
                .starts_with("f:2:")
        );
    }

    #[test]
    fn tag_expansion() {
        assert_eq!(
            expand_tag("kube.*", "/var/log/containers/a_b_c-123.log"),
            "kube.var.log.containers.a_b_c-123.log"
        );
        assert_eq!(
            expand_tag("kube.pod1.*", "/logs/x-log/y.log"),
            "kube.pod1.logs.x-log.y.log"
        );
        assert_eq!(expand_tag("app.log", "/x"), "app.log");
        assert_eq!(expand_tag("*.in", "rel/p"), "rel.p.in");
    }
}
