//! The web app's prompt testing panel (`processTemplateWithValidationQuery` with a `template`): a
//! pure function of the text being edited and the values given, so it needs no session and reads
//! nothing. It must cope with every half-typed state of the text, so unlike the save-time check it
//! never fails: what is not a well-formed `{{ name }}` stays as written.

use std::collections::BTreeMap;

use ai::template::is_valid_name;
use serde_json::{Map, Value as Json};

/// What the panel shows.
#[derive(Debug, Default, PartialEq)]
pub struct Preview {
    pub processed: String,
    /// Placeholders with no value, each once, in order of first use.
    pub missing: Vec<String>,
    /// Given values no placeholder uses, sorted.
    pub unused: Vec<String>,
    /// Each placeholder name with the text put in its place; a missing one maps to the
    /// placeholder as written (it stays in the text).
    pub substitutions: BTreeMap<String, String>,
}

/// A value as text: strings as they are, `null` as nothing, anything else as JSON.
fn shown(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// Substitutes `values` into every `{{ name }}` of `template` (whitespace, newlines included, is
/// allowed inside the braces). In a run of braces the last two open the placeholder, as in saved
/// templates, so `{{{name}}}` gives the value in single braces.
pub fn preview(template: &str, values: &Map<String, Json>) -> Preview {
    let mut out = Preview::default();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let run = rest[open..].bytes().take_while(|&b| b == b'{').count();
        let start = open + run - 2;
        let inner_start = start + 2;
        let Some(close) = rest[inner_start..].find("}}") else {
            break;
        };
        let written = &rest[start..inner_start + close + 2];
        let name = rest[inner_start..inner_start + close].trim();
        out.processed.push_str(&rest[..start]);
        if !is_valid_name(name) {
            // Not a placeholder (yet): keep the braces and look further on.
            out.processed.push_str("{{");
            rest = &rest[inner_start..];
            continue;
        }
        let text = match values.get(name) {
            Some(value) => shown(value),
            None => {
                if !out.missing.iter().any(|m| m == name) {
                    out.missing.push(name.to_string());
                }
                written.to_string()
            }
        };
        out.processed.push_str(&text);
        out.substitutions.entry(name.to_string()).or_insert(text);
        rest = &rest[inner_start + close + 2..];
    }
    out.processed.push_str(rest);
    out.unused = values
        .keys()
        .filter(|k| !out.substitutions.contains_key(k.as_str()))
        .cloned()
        .collect();
    out.unused.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(v: Json) -> Map<String, Json> {
        match v {
            Json::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn fills_what_is_given_and_keeps_what_is_missing_as_written() {
        let out = preview(
            "Hi {{ name }}, {{name}} at {{place}} on {{\n day }}.",
            &values(json!({"name": "Sam", "day": 3, "extra": true, "also": null})),
        );
        assert_eq!(out.processed, "Hi Sam, Sam at {{place}} on 3.");
        assert_eq!(out.missing, ["place"]);
        assert_eq!(out.unused, ["also", "extra"]);
        assert_eq!(out.substitutions["name"], "Sam");
        assert_eq!(out.substitutions["day"], "3");
        assert_eq!(out.substitutions["place"], "{{place}}");
    }

    #[test]
    fn half_typed_text_is_left_alone() {
        let given = values(json!({"a": "x"}));
        assert_eq!(
            preview("{{a}} {{ b c }} {{", &given).processed,
            "x {{ b c }} {{"
        );
        assert_eq!(preview("{{{a}}} {{a", &given).processed, "{x} {{a");
        assert_eq!(preview("{{ }}{{a}}", &given).processed, "{{ }}x");
        let none = preview("", &Map::new());
        assert_eq!(none, Preview::default());
    }
}
