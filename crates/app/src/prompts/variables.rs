//! A template's declared variables as stored (`[{name, type, required, default?, description?}]`)
//! and as the template engine wants them (`ai::template::VariableSpec`), and the save-time check
//! that turns every problem the engine finds into one clear error.

use ai::template::{self, Template, TemplateIssue, VarKind, VariableSpec};
use functions::{FnResult, FunctionError};
use values::validator::v;
use values::{Object, Validator, Value};

pub const KINDS: [&str; 3] = ["string", "number", "boolean"];

/// The validator of one stored (and sent) variable declaration.
pub fn validator() -> Validator {
    v::object([
        ("name", v::string().into()),
        (
            "type",
            v::union(KINDS.iter().map(|k| v::literal(*k)).collect()).into(),
        ),
        ("required", v::boolean().into()),
        ("default", v::optional(v::any())),
        ("description", v::optional(v::string())),
    ])
}

fn kind(name: &str) -> Option<VarKind> {
    match name {
        "string" => Some(VarKind::String),
        "number" => Some(VarKind::Number),
        "boolean" => Some(VarKind::Boolean),
        _ => None,
    }
}

/// The declarations of a stored `variables` array (already checked by `validator`).
pub fn specs(stored: Option<&Value>) -> FnResult<Vec<VariableSpec>> {
    let items = stored.and_then(Value::as_array).unwrap_or_default();
    items
        .iter()
        .map(|item| {
            let text = |field: &str| item.get(field).and_then(Value::as_str);
            let name = text("name").unwrap_or_default().to_string();
            let kind = text("type").and_then(kind).ok_or_else(|| {
                FunctionError::validation(
                    "variables",
                    format!("variable {name:?} has no valid type"),
                )
            })?;
            Ok(VariableSpec {
                kind,
                required: item
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                default: item
                    .get("default")
                    .filter(|d| !d.is_null())
                    .map(values::json::to_clean_json),
                description: text("description").map(str::to_string),
                name,
            })
        })
        .collect()
}

/// The stored form of `specs`.
pub fn to_value(specs: &[VariableSpec]) -> FnResult<Value> {
    let items = specs
        .iter()
        .map(|spec| {
            let mut item = Object::new();
            item.insert("name".into(), Value::from(spec.name.as_str()));
            item.insert("type".into(), Value::from(spec.kind.as_str()));
            item.insert("required".into(), Value::from(spec.required));
            if let Some(default) = &spec.default {
                item.insert("default".into(), values::json::from_clean_json(default)?);
            }
            if let Some(description) = &spec.description {
                item.insert("description".into(), Value::from(description.as_str()));
            }
            Ok(Value::Object(item))
        })
        .collect::<FnResult<Vec<Value>>>()?;
    Ok(Value::Array(items))
}

/// The save-time check: the template parses, uses only declared variables, uses every declared
/// one, and defaults match their types. Every problem is listed in one VALIDATION error on `field`.
pub fn check(field: &str, source: &str, specs: &[VariableSpec]) -> FnResult<Template> {
    template::check(source, specs).map_err(|issues| issues_error(field, &issues))
}

pub fn issues_error(field: &str, issues: &[TemplateIssue]) -> FunctionError {
    let listed: Vec<String> = issues.iter().map(ToString::to_string).collect();
    FunctionError::validation(
        field,
        format!("The prompt template is not valid: {}", listed.join("; ")),
    )
}

/// `specs` narrowed to the variables `source` uses, for edits that change only the template text
/// (the reference's `updatePromptTemplate`): a placeholder the admin removed takes its declaration
/// with it, while an undeclared placeholder is still refused by `check`.
pub fn used_by(source: &str, specs: &[VariableSpec]) -> Vec<VariableSpec> {
    match Template::parse(source) {
        Ok(parsed) => {
            let used = parsed.placeholders();
            specs
                .iter()
                .filter(|s| used.contains(&s.name.as_str()))
                .cloned()
                .collect()
        }
        // Unparseable: keep everything, so `check` reports the parse error (and only that).
        Err(_) => specs.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(name: &str, kind: VarKind, default: Option<serde_json::Value>) -> VariableSpec {
        VariableSpec {
            name: name.into(),
            kind,
            required: default.is_none(),
            default,
            description: Some(format!("the {name}")),
        }
    }

    #[test]
    fn declarations_round_trip_through_the_stored_form() {
        let declared = vec![
            spec("participantName", VarKind::String, None),
            spec("count", VarKind::Number, Some(json!(3.0))),
            spec("urgent", VarKind::Boolean, Some(json!(false))),
        ];
        let stored = to_value(&declared).unwrap();
        let tables = |_: &str| None;
        v::array(validator()).check(&stored, &tables).unwrap();
        assert_eq!(specs(Some(&stored)).unwrap(), declared);
    }

    #[test]
    fn the_check_lists_every_problem_in_one_error() {
        let declared = vec![
            spec("name", VarKind::String, None),
            spec("count", VarKind::Number, Some(json!("three"))),
        ];
        let err = check("template", "Hello {{name}} from {{place}}", &declared).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("place"), "{message}");
        assert!(message.contains("count"), "{message}");
        assert_eq!(
            err.error_data()
                .unwrap()
                .get("field")
                .and_then(Value::as_str),
            Some("template")
        );
    }

    #[test]
    fn a_template_edit_drops_declarations_it_no_longer_uses() {
        let declared = vec![
            spec("a", VarKind::String, None),
            spec("b", VarKind::String, None),
        ];
        let kept = used_by("only {{a}}", &declared);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].name, "a");
        assert!(check("t", "only {{a}}", &kept).is_ok());
        assert!(check(
            "t",
            "{{a}} and {{c}}",
            &used_by("{{a}} and {{c}}", &declared)
        )
        .is_err());
    }
}
