//! Relabelling with Prometheus's semantics (`relabel_configs` for targets,
//! `metric_relabel_configs` for samples).
//!
//! A rule joins the values of `source_labels` with `separator` (a missing
//! label is the empty string), matches the fully anchored `regex` against
//! that, and acts: `replace` writes `replacement` (with `$1`, `${1}`,
//! `$name` expanded) to `target_label` (itself expanded), deleting it when
//! the result is empty; `keep`/`drop` keep or drop the whole set;
//! `keepequal`/`dropequal` compare with `target_label`'s value; `hashmod`
//! writes the md5-based hash modulo `modulus`; `labelmap` copies matching
//! label names to the expanded `replacement`; `labeldrop`/`labelkeep`
//! filter label names; `lowercase`/`uppercase` write the case-mapped value.
//! Label sets are `(name, value)` vectors; an empty value means no label.

use std::fmt;

use regex::Regex;

use vigil_exposition::is_legacy_label_name;

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Write the expanded replacement to the (expanded) target label.
    Replace,
    /// Drop the set unless the joined value matches.
    Keep,
    /// Drop the set if the joined value matches.
    Drop,
    /// Drop the set unless the joined value equals `target_label`'s value.
    KeepEqual,
    /// Drop the set if the joined value equals `target_label`'s value.
    DropEqual,
    /// Write md5(joined value) mod `modulus` to the target label.
    HashMod,
    /// Copy every label whose name matches to the expanded replacement name.
    LabelMap,
    /// Remove every label whose name matches.
    LabelDrop,
    /// Remove every label whose name does not match.
    LabelKeep,
    /// Write the joined value in lower case to the target label.
    Lowercase,
    /// Write the joined value in upper case to the target label.
    Uppercase,
}

impl Action {
    /// Reads an action name (case-insensitive, as Prometheus).
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }

    /// The name as written in configuration files.
    pub fn name(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REPLACEMENT: &str = "$1";

/// One validated relabelling rule. Build it with [`RelabelConfig::builder`].
#[derive(Debug, Clone)]
pub struct RelabelConfig {
    source_labels: Vec<String>,
    separator: String,
    /// The regex as written (for equality and display).
    regex_src: String,
    /// `^(?:regex)$`.
    regex: Regex,
    modulus: u64,
    target_label: String,
    replacement: String,
    action: Action,
}

impl PartialEq for RelabelConfig {
    fn eq(&self, o: &Self) -> bool {
        self.source_labels == o.source_labels
            && self.separator == o.separator
            && self.regex_src == o.regex_src
            && self.modulus == o.modulus
            && self.target_label == o.target_label
            && self.replacement == o.replacement
            && self.action == o.action
    }
}

/// The fields of a rule as written; unset fields take Prometheus's
/// defaults (`separator` `;`, `regex` `(.*)`, `replacement` `$1`, `action`
/// replace).
#[derive(Debug, Clone, Default)]
pub struct RelabelBuilder {
    /// `source_labels`.
    pub source_labels: Option<Vec<String>>,
    /// `separator`.
    pub separator: Option<String>,
    /// `regex` (without anchors; they are added).
    pub regex: Option<String>,
    /// `modulus`.
    pub modulus: Option<u64>,
    /// `target_label`.
    pub target_label: Option<String>,
    /// `replacement`.
    pub replacement: Option<String>,
    /// `action`.
    pub action: Option<Action>,
}

/// Why a rule is invalid (Prometheus's messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelabelError(pub String);

impl fmt::Display for RelabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RelabelError {}

/// `$1`, `${name}`, `abc_$1`: a label name made of names and references.
fn valid_template_target(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let mut i = 0;
    let mut first = true;
    while i < b.len() {
        let c = b[i];
        if c == b'$' {
            i += 1;
            if i < b.len() && b[i] == b'{' {
                let end = match s[i..].find('}') {
                    Some(e) => i + e,
                    None => return false,
                };
                let name = &s[i + 1..end];
                if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    return false;
                }
                i = end + 1;
            } else {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if i == start {
                    return false;
                }
            }
        } else if c.is_ascii_alphabetic() || c == b'_' || (!first && c.is_ascii_digit()) {
            i += 1;
        } else {
            return false;
        }
        first = false;
    }
    true
}

impl RelabelBuilder {
    /// Validates the rule as Prometheus does and compiles its regex.
    pub fn build(self) -> Result<RelabelConfig, RelabelError> {
        let action = self.action.unwrap_or(Action::Replace);
        let err = |m: String| Err(RelabelError(m));
        let regex_src = self.regex.clone().unwrap_or_else(|| DEFAULT_REGEX.into());
        let regex = match Regex::new(&format!("^(?:{regex_src})$")) {
            Ok(r) => r,
            Err(e) => return err(format!("invalid regex {regex_src:?}: {e}")),
        };
        let target = self.target_label.clone().unwrap_or_default();
        let replacement = self
            .replacement
            .clone()
            .unwrap_or_else(|| DEFAULT_REPLACEMENT.into());
        use Action::*;
        if action == HashMod && self.modulus.unwrap_or(0) == 0 {
            return err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let needs_target = matches!(
            action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if needs_target && target.is_empty() {
            return err(format!(
                "relabel configuration for {action} action requires 'target_label' value"
            ));
        }
        let target_ok = match action {
            Replace if target.contains('$') => valid_template_target(&target),
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual => {
                is_legacy_label_name(&target)
            }
            _ => true,
        };
        if !target_ok {
            return err(format!(
                "{target:?} is invalid 'target_label' for {action} action"
            ));
        }
        if matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual)
            && replacement != DEFAULT_REPLACEMENT
        {
            return err(format!("'replacement' can not be set for {action} action"));
        }
        if action == LabelMap && !valid_template_target(&replacement) {
            return err(format!(
                "{replacement:?} is invalid 'replacement' for {action} action"
            ));
        }
        if matches!(action, KeepEqual | DropEqual)
            && (self.regex.as_deref().is_some_and(|r| r != DEFAULT_REGEX)
                || self.modulus.unwrap_or(0) != 0
                || self
                    .separator
                    .as_deref()
                    .is_some_and(|s| s != DEFAULT_SEPARATOR)
                || replacement != DEFAULT_REPLACEMENT)
        {
            return err(format!(
                "{action} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(action, LabelDrop | LabelKeep)
            && (self.source_labels.is_some()
                || !target.is_empty()
                || self.modulus.unwrap_or(0) != 0
                || self
                    .separator
                    .as_deref()
                    .is_some_and(|s| s != DEFAULT_SEPARATOR)
                || replacement != DEFAULT_REPLACEMENT)
        {
            return err(format!(
                "{action} action requires only 'regex', and no other fields"
            ));
        }
        Ok(RelabelConfig {
            source_labels: self.source_labels.unwrap_or_default(),
            separator: self.separator.unwrap_or_else(|| DEFAULT_SEPARATOR.into()),
            regex_src,
            regex,
            modulus: self.modulus.unwrap_or(0),
            target_label: target,
            replacement,
            action,
        })
    }
}

impl RelabelConfig {
    /// A builder with every field unset.
    pub fn builder() -> RelabelBuilder {
        RelabelBuilder::default()
    }

    /// The rule's action.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The regex as written (unanchored).
    pub fn regex(&self) -> &str {
        &self.regex_src
    }
}

fn get<'a>(labels: &'a [(String, String)], name: &str) -> &'a str {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn set(labels: &mut Vec<(String, String)>, name: &str, value: String) {
    match labels.iter().position(|(n, _)| n == name) {
        Some(i) if value.is_empty() => {
            labels.remove(i);
        }
        Some(i) => labels[i].1 = value,
        None if value.is_empty() => {}
        None => labels.push((name.to_owned(), value)),
    }
}

/// Applies `cfgs` in order to `labels`. `None` when a rule drops the set;
/// otherwise the relabelled set, sorted by name, without empty values.
///
/// ```
/// use vigil_examples::monitor::relabel::{relabel, Action, RelabelConfig};
///
/// let mut b = RelabelConfig::builder();
/// b.source_labels = Some(vec!["__address__".into()]);
/// b.regex = Some("(.*):9100".into());
/// b.target_label = Some("host".into());
/// let rule = b.build()?;
/// let out = relabel(&[("__address__".into(), "db1:9100".into())], &[rule]).unwrap();
/// assert_eq!(out, [("__address__".into(), "db1:9100".into()), ("host".into(), "db1".into())]);
/// # Ok::<(), vigil_examples::monitor::relabel::RelabelError>(())
/// ```
pub fn relabel(
    labels: &[(String, String)],
    cfgs: &[RelabelConfig],
) -> Option<Vec<(String, String)>> {
    let mut lb: Vec<(String, String)> = labels
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .cloned()
        .collect();
    for cfg in cfgs {
        if !apply(cfg, &mut lb) {
            return None;
        }
    }
    lb.sort();
    Some(lb)
}

/// One rule; false when it drops the set.
fn apply(cfg: &RelabelConfig, lb: &mut Vec<(String, String)>) -> bool {
    let val = match cfg.source_labels.len() {
        0 => String::new(),
        1 => get(lb, &cfg.source_labels[0]).to_owned(),
        _ => {
            let vals: Vec<&str> = cfg.source_labels.iter().map(|n| get(lb, n)).collect();
            vals.join(&cfg.separator)
        }
    };
    match cfg.action {
        Action::Drop => {
            if cfg.regex.is_match(&val) {
                return false;
            }
        }
        Action::Keep => {
            if !cfg.regex.is_match(&val) {
                return false;
            }
        }
        Action::DropEqual => {
            if get(lb, &cfg.target_label) == val {
                return false;
            }
        }
        Action::KeepEqual => {
            if get(lb, &cfg.target_label) != val {
                return false;
            }
        }
        Action::Replace => {
            let Some(caps) = cfg.regex.captures(&val) else {
                return true;
            };
            let mut target = String::new();
            caps.expand(&cfg.target_label, &mut target);
            if !is_legacy_label_name(&target) {
                return true;
            }
            let mut res = String::new();
            caps.expand(&cfg.replacement, &mut res);
            set(lb, &target, res);
        }
        Action::Lowercase => set(lb, &cfg.target_label, val.to_lowercase()),
        Action::Uppercase => set(lb, &cfg.target_label, val.to_uppercase()),
        Action::HashMod => {
            let h = md5(val.as_bytes());
            // Prometheus uses the digest's last 8 bytes, big-endian.
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&h[8..]);
            let m = u64::from_be_bytes(tail) % cfg.modulus;
            set(lb, &cfg.target_label, m.to_string());
        }
        Action::LabelMap => {
            let mut add = Vec::new();
            for (n, v) in lb.iter() {
                if let Some(caps) = cfg.regex.captures(n) {
                    let mut name = String::new();
                    caps.expand(&cfg.replacement, &mut name);
                    add.push((name, v.clone()));
                }
            }
            for (n, v) in add {
                set(lb, &n, v);
            }
        }
        Action::LabelDrop => lb.retain(|(n, _)| !cfg.regex.is_match(n)),
        Action::LabelKeep => lb.retain(|(n, _)| cfg.regex.is_match(n)),
    }
    true
}

/// MD5 (RFC 1321) of `data`: hashmod needs exactly Prometheus's hash, and
/// this is the only use, so it is written here rather than pulled in.
pub fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    // K[i] = floor(|sin(i + 1)| * 2^32), computed once per call: 64 sines
    // are cheap next to the per-target work that calls this.
    let k: [u32; 64] =
        std::array::from_fn(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32);
    let mut h: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_le_bytes());
    for chunk in msg.chunks_exact(64) {
        let m: [u32; 16] = std::array::from_fn(|i| {
            u32::from_le_bytes([
                chunk[4 * i],
                chunk[4 * i + 1],
                chunk[4 * i + 2],
                chunk[4 * i + 3],
            ])
        });
        let [mut a, mut b, mut c, mut d] = h;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, w) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn md5_rfc1321_vectors() {
        assert_eq!(hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(&md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(&md5(b"message digest")),
            "f96b697d7cb7938d525a2f31aaf161d0"
        );
        assert_eq!(
            hex(&md5(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn template_targets() {
        assert!(valid_template_target("${1}"));
        assert!(valid_template_target("foo_$1"));
        assert!(valid_template_target("$name"));
        assert!(!valid_template_target("1abc"));
        assert!(!valid_template_target("a-b"));
        assert!(!valid_template_target("$"));
    }
}
