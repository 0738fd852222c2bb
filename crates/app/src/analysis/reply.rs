//! Reading the AI's JSON replies: the three analysis prompts answer with lists of objects whose
//! fields are read leniently (a missing field is empty; the callers pick defaults).

use serde_json::Value as Json;

use super::model::Evidence;
use crate::narratives::Phase;

/// The list under `key` of an object reply, or the reply itself when it is a bare list.
pub(super) fn list<'a>(reply: &'a Json, key: &str) -> Result<&'a Vec<Json>, String> {
    match reply {
        Json::Array(items) => Ok(items),
        Json::Object(fields) => fields
            .get(key)
            .and_then(Json::as_array)
            .ok_or_else(|| format!("the reply has no \"{key}\" list")),
        _ => Err("the reply is not a JSON object".into()),
    }
}

/// A string field; empty when missing.
pub(super) fn text(item: &Json, key: &str) -> String {
    item.get(key)
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A list of strings; non-strings are skipped.
pub(super) fn strings(item: &Json, key: &str) -> Vec<String> {
    item.get(key)
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Json::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The `evidence` list: `{phase, quote}` items with a known phase (others are skipped).
pub(super) fn evidence(item: &Json) -> Vec<Evidence> {
    item.get("evidence")
        .and_then(Json::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|e| {
                    Some(Evidence {
                        phase: Phase::parse(e.get("phase")?.as_str()?)?,
                        quote: e.get("quote")?.as_str()?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}
