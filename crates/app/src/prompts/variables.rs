//! A template's declared variables as stored (`[{name, type, required, default?, description?}]`)
//! and as the template engine wants them (`ai::template::VariableSpec`), and the save-time check
//! that turns every problem the engine finds into one clear error.

use ai::template::{self, Template, TemplateIssue, VarKind, VariableSpec};
use functions::{FnResult, FunctionError};
use serde::{Deserialize, Serialize};
use values::validator::v;
use values::{Object, Typed, Validator, Value};

pub const KINDS: [&str; 3] = ["string", "number", "boolean"];

/// A variable's type, as stored and sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Typed)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    String,
    Number,
    Boolean,
}

/// One declared variable as stored and sent (its validator is `validator()`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Typed)]
pub struct Declared {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub required: bool,
    pub default: Option<Value>,
    pub description: Option<String>,
}

/// The engine's declarations of variables sent by a client (already checked by `validator`).
pub fn declared_specs(declared: &[Declared]) -> Vec<VariableSpec> {
    declared
        .iter()
        .map(|d| VariableSpec {
            name: d.name.clone(),
            kind: match d.kind {
                Kind::String => VarKind::String,
                Kind::Number => VarKind::Number,
                Kind::Boolean => VarKind::Boolean,
            },
            required: d.required,
            default: d
                .default
                .as_ref()
                .filter(|d| !d.is_null())
                .map(values::json::to_clean_json),
            description: d.description.clone(),
        })
        .collect()
}

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

/// The check of an edit of the wording alone (the reference's `updatePromptTemplate`). The
/// declarations are what the code supplies when it renders the prompt, so they all stay declared:
/// an optional one the new wording leaves out is allowed (see `left_out`), a required one is
/// refused by name, and a placeholder with no declaration is refused as by `check`.
pub fn check_wording(field: &str, source: &str, specs: &[VariableSpec]) -> FnResult<Template> {
    let issues = match template::check(source, specs) {
        Ok(parsed) => return Ok(parsed),
        Err(issues) => issues,
    };
    let required = |name: &str| specs.iter().any(|s| s.name == name && s.required);
    let mut listed = Vec::new();
    for issue in &issues {
        match issue {
            TemplateIssue::UnusedVariable(name) if required(name) => listed.push(format!(
                "the template leaves out {{{{{name}}}}}, which this prompt requires"
            )),
            TemplateIssue::UnusedVariable(_) => {}
            other => listed.push(other.to_string()),
        }
    }
    if listed.is_empty() {
        // Only optional variables left out: the wording parsed.
        return Template::parse(source)
            .map_err(|e| issues_error(field, &[TemplateIssue::Parse(e)]));
    }
    Err(FunctionError::validation(
        field,
        format!("The prompt template is not valid: {}", listed.join("; ")),
    ))
}

/// The optional declared variables `source` does not use (the code still supplies them; a later
/// wording may use them again).
pub fn left_out(source: &str, specs: &[VariableSpec]) -> Vec<String> {
    let Ok(parsed) = Template::parse(source) else {
        return Vec::new();
    };
    let used = parsed.placeholders();
    specs
        .iter()
        .filter(|s| !s.required && !used.contains(&s.name.as_str()))
        .map(|s| s.name.clone())
        .collect()
}

/// `declared` plus any declaration of `defaults` it lacks: repairs a family whose edit dropped a
/// variable the code supplies (as edits did before `check_wording`).
pub fn with_defaults(declared: Vec<VariableSpec>, defaults: &[VariableSpec]) -> Vec<VariableSpec> {
    let mut all = declared;
    for spec in defaults {
        if !all.iter().any(|s| s.name == spec.name) {
            all.push(spec.clone());
        }
    }
    all
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
    fn the_declaration_type_has_the_stored_validator() {
        assert_eq!(Declared::validator(), validator());
        let stored = to_value(&[spec("n", VarKind::Number, Some(json!(2.0)))]).unwrap();
        let typed: Vec<Declared> = values::serde_bridge::from_value(&stored).unwrap();
        assert_eq!(
            declared_specs(&typed),
            [spec("n", VarKind::Number, Some(json!(2.0)))]
        );
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
    fn a_wording_edit_keeps_every_declaration_and_names_a_required_one_left_out() {
        let declared = vec![
            spec("story", VarKind::String, None),
            spec("storyQA", VarKind::String, Some(json!(""))),
        ];
        // Leaving out the optional one is allowed and reported; putting it back is accepted.
        assert!(check_wording("t", "only {{story}}", &declared).is_ok());
        assert_eq!(left_out("only {{story}}", &declared), ["storyQA"]);
        assert!(check_wording("t", "{{story}} and {{ storyQA }}", &declared).is_ok());
        assert!(left_out("{{story}} and {{storyQA}}", &declared).is_empty());
        // Leaving out the required one is refused by name, with any other problem.
        let message = check_wording("t", "only {{storyQA}} and {{other}}", &declared)
            .unwrap_err()
            .to_string();
        assert!(message.contains("leaves out {{story}}"), "{message}");
        assert!(message.contains("other"), "{message}");
        assert!(!message.contains("storyQA\""), "{message}");
        // A parse error is still reported.
        assert!(check_wording("t", "{{story}} {{oops", &declared).is_err());
        // The stricter save-time check still refuses an unused declaration.
        assert!(check("t", "only {{story}}", &declared).is_err());
        let repaired = with_defaults(vec![declared[0].clone()], &declared);
        assert_eq!(repaired, declared);
    }
}
