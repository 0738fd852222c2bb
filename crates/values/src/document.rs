//! The extra rules a value must meet to be stored as a document's user fields.

use crate::json::{check_field_name, encoded_object_size};
use crate::value::object_depth;
use crate::{Object, Value, ValueError, MAX_DOCUMENT_NESTING, MAX_DOCUMENT_SIZE};

/// Checks a document's user fields: valid names not starting with `_` (reserved for system fields
/// such as `_id`), at most `MAX_DOCUMENT_NESTING` levels counting the document object itself, and at
/// most `MAX_DOCUMENT_SIZE` bytes of `convex_encoded_json`.
///
/// Nested objects may use `_` names; only top-level fields are reserved.
pub fn check_document(fields: &Object) -> Result<(), ValueError> {
    for name in fields.keys() {
        check_field_name(name)?;
        if name.starts_with('_') {
            return Err(ValueError::FieldName {
                name: name.clone(),
                reason: "field names starting with `_` are reserved for system fields",
            });
        }
    }
    // Values built in Rust never went through the wire decoder, so nested names are checked too.
    fields.values().try_for_each(check_nested_names)?;
    if object_depth(fields) > MAX_DOCUMENT_NESTING {
        return Err(ValueError::TooDeep {
            max: MAX_DOCUMENT_NESTING,
        });
    }
    let size = encoded_object_size(fields);
    if size > MAX_DOCUMENT_SIZE {
        return Err(ValueError::TooLarge {
            size,
            max: MAX_DOCUMENT_SIZE,
        });
    }
    Ok(())
}

fn check_nested_names(value: &Value) -> Result<(), ValueError> {
    match value {
        Value::Array(items) => items.iter().try_for_each(check_nested_names),
        Value::Object(fields) => fields.iter().try_for_each(|(name, value)| {
            check_field_name(name)?;
            check_nested_names(value)
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(fields: impl IntoIterator<Item = (&'static str, Value)>) -> Object {
        fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    #[test]
    fn accepts_plain_documents() {
        assert!(check_document(&Object::new()).is_ok());
        let nested = Value::object([("_meta", Value::Int64(1))]);
        assert!(check_document(&doc([("name", "x".into()), ("inner", nested)])).is_ok());
    }

    #[test]
    fn rejects_reserved_and_invalid_names() {
        let err = check_document(&doc([("_id", "x".into())])).unwrap_err();
        assert!(
            err.to_string().contains("reserved for system fields"),
            "{err}"
        );
        assert!(check_document(&doc([("$x", Value::Null)])).is_err());
        let nested = Value::Array(vec![Value::object([("bad\n", 1.0)])]);
        assert!(check_document(&doc([("a", nested)])).is_err());
    }

    #[test]
    fn nesting_limit_counts_the_document() {
        let mut value = Value::Null;
        for _ in 0..MAX_DOCUMENT_NESTING - 1 {
            value = Value::Array(vec![value]);
        }
        assert!(check_document(&doc([("a", value.clone())])).is_ok());
        let err = check_document(&doc([("a", Value::Array(vec![value]))])).unwrap_err();
        assert_eq!(
            err,
            ValueError::TooDeep {
                max: MAX_DOCUMENT_NESTING
            }
        );
    }

    #[test]
    fn size_limit() {
        // {"s":"..."} is 8 bytes around the string.
        let fits = "x".repeat(MAX_DOCUMENT_SIZE - 8);
        assert!(check_document(&doc([("s", fits.clone().into())])).is_ok());
        let err = check_document(&doc([("s", format!("{fits}x").into())])).unwrap_err();
        assert_eq!(
            err,
            ValueError::TooLarge {
                size: MAX_DOCUMENT_SIZE + 1,
                max: MAX_DOCUMENT_SIZE
            }
        );
    }
}
