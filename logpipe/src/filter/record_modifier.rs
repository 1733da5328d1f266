//! The `record_modifier` filter: `Record KEY VALUE` sets fields,
//! `Remove_key KEY` removes them, `Allowlist_key KEY` (or the older
//! `Whitelist_key`) keeps only the listed keys. Removal and the allowlist
//! apply before `Record`, so a record field always survives.

use super::{Action, COMMON_KEYS, Filter, split_kv};
use crate::Result;
use crate::config::Section;
use crate::record::Record;

/// The record_modifier filter.
#[derive(Debug)]
pub struct RecordModifier {
    records: Vec<(String, String)>,
    remove: Vec<String>,
    allow: Vec<String>,
}

impl RecordModifier {
    /// Reads a `[FILTER] Name record_modifier` section.
    pub fn from_section(s: &Section) -> Result<RecordModifier> {
        let mut keys = COMMON_KEYS.to_vec();
        keys.extend(["record", "remove_key", "allowlist_key", "whitelist_key"]);
        if let Some(e) = s.entry("uuid_key") {
            return Err(s.error(
                Some(e),
                "record_modifier: Uuid_key is not supported by vigil-logpipe",
            ));
        }
        s.check_keys(&keys)?;
        let mut records = Vec::new();
        for e in s.get_all("record") {
            let (k, v) =
                split_kv(&e.value).ok_or_else(|| s.error(Some(e), "Record wants KEY VALUE"))?;
            records.push((k.to_owned(), v.to_owned()));
        }
        let remove = s.get_all("remove_key").map(|e| e.value.clone()).collect();
        let allow = s
            .get_all("allowlist_key")
            .chain(s.get_all("whitelist_key"))
            .map(|e| e.value.clone())
            .collect();
        Ok(RecordModifier {
            records,
            remove,
            allow,
        })
    }
}

impl Filter for RecordModifier {
    fn filter(&mut self, rec: &mut Record) -> Action {
        for k in &self.remove {
            while rec.fields.remove(k).is_some() {}
        }
        if !self.allow.is_empty() {
            let drop: Vec<String> = rec
                .fields
                .iter()
                .filter(|(k, _)| !self.allow.iter().any(|a| a == k))
                .map(|(k, _)| k.to_owned())
                .collect();
            for k in drop {
                rec.fields.remove(&k);
            }
        }
        for (k, v) in &self.records {
            rec.fields.set(k.as_str(), v.as_str());
        }
        Action::Keep
    }
}
