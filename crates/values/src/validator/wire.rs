//! The JSON form of validators, as Convex's `v.*` produce it (protocol §D).

use serde_json::{json, Map, Value as Json};

use super::{FieldValidator, Validator};
use crate::json::{from_encoded_json, to_encoded_json};

pub(super) fn to_json(validator: &Validator) -> Json {
    match validator {
        Validator::Any => json!({"type": "any"}),
        Validator::Null => json!({"type": "null"}),
        Validator::Float64 => json!({"type": "number"}),
        Validator::Int64 => json!({"type": "bigint"}),
        Validator::Boolean => json!({"type": "boolean"}),
        Validator::String => json!({"type": "string"}),
        Validator::Bytes => json!({"type": "bytes"}),
        Validator::Id(table) => json!({"type": "id", "tableName": table}),
        Validator::Literal(value) => json!({"type": "literal", "value": to_encoded_json(value)}),
        Validator::Array(element) => json!({"type": "array", "value": to_json(element)}),
        Validator::Object(fields) => {
            let fields: Map<String, Json> = fields
                .iter()
                .map(|(name, field)| (name.clone(), field_to_json(field)))
                .collect();
            json!({"type": "object", "value": fields})
        }
        Validator::Union(members) => {
            json!({"type": "union", "value": members.iter().map(to_json).collect::<Vec<_>>()})
        }
        Validator::Record(keys, values) => json!({
            "type": "record",
            "keys": to_json(keys),
            "values": field_to_json(&FieldValidator { validator: (**values).clone(), optional: false }),
        }),
    }
}

fn field_to_json(field: &FieldValidator) -> Json {
    json!({"fieldType": to_json(&field.validator), "optional": field.optional})
}

/// `at` names where in the JSON we are (`value.a.fieldType`), so errors point at the bad part.
pub(super) fn from_json(json: &Json) -> Result<Validator, String> {
    parse(json, "validator")
}

fn parse(json: &Json, at: &str) -> Result<Validator, String> {
    let object = json
        .as_object()
        .ok_or_else(|| format!("{at}: expected an object, found {json}"))?;
    let kind = object
        .get("type")
        .and_then(Json::as_str)
        .ok_or_else(|| format!("{at}: missing string field `type`"))?;
    let member = |name: &str| {
        object
            .get(name)
            .ok_or_else(|| format!("{at}: a `{kind}` validator needs the field `{name}`"))
    };
    Ok(match kind {
        "any" => Validator::Any,
        "null" => Validator::Null,
        "number" => Validator::Float64,
        "bigint" => Validator::Int64,
        "boolean" => Validator::Boolean,
        "string" => Validator::String,
        "bytes" => Validator::Bytes,
        "id" => {
            let table = member("tableName")?;
            let table = table
                .as_str()
                .ok_or_else(|| format!("{at}.tableName: expected a string"))?;
            Validator::Id(table.to_owned())
        }
        "literal" => {
            let value =
                from_encoded_json(member("value")?).map_err(|e| format!("{at}.value: {e}"))?;
            Validator::Literal(value)
        }
        "array" => Validator::Array(Box::new(parse(member("value")?, &format!("{at}.value"))?)),
        "object" => {
            let fields = member("value")?
                .as_object()
                .ok_or_else(|| format!("{at}.value: expected an object of fields"))?;
            let mut out = std::collections::BTreeMap::new();
            for (name, field) in fields {
                out.insert(
                    name.clone(),
                    parse_field(field, &format!("{at}.value.{name}"))?,
                );
            }
            Validator::Object(out)
        }
        "union" => {
            let members = member("value")?
                .as_array()
                .ok_or_else(|| format!("{at}.value: expected an array"))?;
            let members = members
                .iter()
                .enumerate()
                .map(|(i, m)| parse(m, &format!("{at}.value[{i}]")))
                .collect::<Result<_, _>>()?;
            Validator::Union(members)
        }
        "record" => {
            let keys = parse(member("keys")?, &format!("{at}.keys"))?;
            // An optional record value means the same as a required one (an absent key is just
            // absent), so the flag is accepted and dropped.
            let values = parse_field(member("values")?, &format!("{at}.values"))?.validator;
            Validator::Record(Box::new(keys), Box::new(values))
        }
        other => return Err(format!("{at}: unknown validator type {other:?}")),
    })
}

fn parse_field(json: &Json, at: &str) -> Result<FieldValidator, String> {
    let field_type = json
        .get("fieldType")
        .ok_or_else(|| format!("{at}: expected {{\"fieldType\": ..., \"optional\": ...}}"))?;
    let optional = match json.get("optional") {
        None => false,
        Some(flag) => flag
            .as_bool()
            .ok_or_else(|| format!("{at}.optional: expected a boolean"))?,
    };
    Ok(FieldValidator {
        validator: parse(field_type, &format!("{at}.fieldType"))?,
        optional,
    })
}
