//! The `parser` filter: parse one field of the record with the first of
//! its `Parser`s that reads it.
//!
//! On success the record becomes the parsed fields, followed (with
//! `Reserve_Data On`) by the record's other fields, and (with `Preserve_Key
//! On`) the original field; a parsed time becomes the record's time. When
//! no parser reads the field, or it is missing or not text, the record
//! passes unchanged, as in fluent-bit.

use super::{Action, COMMON_KEYS, Filter};
use crate::Result;
use crate::config::Section;
use crate::parser::{LineParser, Parsers};
use crate::record::{Fields, Record, Value};
use std::sync::Arc;

/// The parser filter.
pub struct ParserFilter {
    key: String,
    parsers: Vec<Arc<dyn LineParser>>,
    reserve_data: bool,
    preserve_key: bool,
}

impl std::fmt::Debug for ParserFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParserFilter")
            .field("key", &self.key)
            .field(
                "parsers",
                &self.parsers.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .field("reserve_data", &self.reserve_data)
            .field("preserve_key", &self.preserve_key)
            .finish()
    }
}

impl ParserFilter {
    /// Reads a `[FILTER] Name parser` section, resolving `Parser` names in
    /// `parsers`.
    pub fn from_section(s: &Section, parsers: &Parsers) -> Result<ParserFilter> {
        let mut keys = COMMON_KEYS.to_vec();
        keys.extend([
            "key_name",
            "parser",
            "reserve_data",
            "preserve_key",
            "unescape_key",
        ]);
        s.check_keys(&keys)?;
        let key = s
            .get("key_name")
            .ok_or_else(|| s.error(None, "parser filter without Key_Name"))?
            .to_owned();
        let mut list = Vec::new();
        for e in s.get_all("parser") {
            let p = parsers
                .get(e.value.trim())
                .ok_or_else(|| s.error(Some(e), format!("unknown parser '{}'", e.value)))?;
            list.push(p);
        }
        if list.is_empty() {
            return Err(s.error(None, "parser filter without a Parser"));
        }
        Ok(ParserFilter {
            key,
            parsers: list,
            reserve_data: s.get_bool_or("reserve_data", false)?,
            preserve_key: s.get_bool_or("preserve_key", false)?,
        })
    }
}

impl Filter for ParserFilter {
    fn filter(&mut self, rec: &mut Record) -> Action {
        let Some(Value::Str(text)) = rec.fields.get(&self.key) else {
            return Action::Keep;
        };
        let Some(parsed) = self.parsers.iter().find_map(|p| p.parse(text).ok()) else {
            return Action::Keep;
        };
        let old = std::mem::take(&mut rec.fields);
        let mut fields: Fields = parsed.fields;
        for (k, v) in old.iter() {
            let is_key = k == self.key;
            if (is_key && self.preserve_key) || (!is_key && self.reserve_data) {
                fields.push(k, v.clone());
            }
        }
        rec.fields = fields;
        if let Some(t) = parsed.time_ns {
            rec.time_ns = t;
        }
        Action::Keep
    }
}
