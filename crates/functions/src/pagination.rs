//! Convex's `paginationOpts` argument and `{page, isDone, continueCursor}` result, for paginated
//! queries.

use store::{Document, PaginationOpts, PaginationResult};
use values::validator::v;
use values::{Object, Validator, Value};

use crate::{ErrorCode, FnResult, FunctionError};

/// The most items one page may ask for; larger requests are refused rather than silently trimmed.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The validator of the `paginationOpts` argument, as Convex's `paginationOptsValidator`.
pub fn pagination_opts_validator() -> Validator {
    let nullable_string = || v::union(vec![v::string(), v::null()]);
    v::object([
        ("numItems", v::number().into()),
        ("cursor", nullable_string().into()),
        ("endCursor", v::optional(nullable_string())),
        ("id", v::optional(v::number())),
        ("maximumRowsRead", v::optional(v::number())),
        ("maximumBytesRead", v::optional(v::number())),
    ])
}

/// Reads `args.paginationOpts` (already checked against `pagination_opts_validator`).
pub fn parse_pagination_opts(args: &Object) -> FnResult<PaginationOpts> {
    let field = "paginationOpts";
    let opts = args
        .get(field)
        .and_then(Value::as_object)
        .ok_or_else(|| FunctionError::validation(field, "paginationOpts is required"))?;
    let num_items = opts
        .get("numItems")
        .and_then(Value::as_f64)
        .unwrap_or(f64::NAN);
    if !(num_items.is_finite() && num_items >= 0.0 && num_items.fract() == 0.0) {
        return Err(FunctionError::validation(
            "paginationOpts.numItems",
            "numItems must be a whole number of at least 0",
        ));
    }
    if num_items as usize > MAX_PAGE_SIZE {
        return Err(FunctionError::field(
            ErrorCode::Validation,
            "paginationOpts.numItems",
            format!("numItems must be at most {MAX_PAGE_SIZE}"),
        ));
    }
    Ok(PaginationOpts {
        num_items: num_items as usize,
        cursor: opts
            .get("cursor")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// `{page, isDone, continueCursor}`, each document shown through `show`.
pub fn pagination_result(result: &PaginationResult, show: impl Fn(&Document) -> Value) -> Value {
    let mut out = Object::new();
    out.insert(
        "page".into(),
        Value::Array(result.page.iter().map(show).collect()),
    );
    out.insert("isDone".into(), Value::from(result.is_done));
    out.insert(
        "continueCursor".into(),
        Value::from(result.continue_cursor.as_str()),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(num_items: Value, cursor: Value) -> Object {
        let mut o = Object::new();
        o.insert("numItems".into(), num_items);
        o.insert("cursor".into(), cursor);
        let mut args = Object::new();
        args.insert("paginationOpts".into(), Value::Object(o));
        args
    }

    #[test]
    fn parses_first_and_later_pages() {
        let first = parse_pagination_opts(&opts(Value::from(10.0), Value::Null)).unwrap();
        assert_eq!(
            first,
            PaginationOpts {
                num_items: 10,
                cursor: None
            }
        );
        let later = parse_pagination_opts(&opts(Value::from(5.0), Value::from("abc"))).unwrap();
        assert_eq!(later.cursor.as_deref(), Some("abc"));
    }

    #[test]
    fn refuses_bad_sizes_naming_the_field() {
        for bad in [-1.0, 2.5, f64::NAN, 1e9] {
            let err = parse_pagination_opts(&opts(Value::from(bad), Value::Null)).unwrap_err();
            assert_eq!(
                err.error_data()
                    .unwrap()
                    .get("field")
                    .and_then(Value::as_str),
                Some("paginationOpts.numItems"),
                "{bad}"
            );
        }
    }
}
