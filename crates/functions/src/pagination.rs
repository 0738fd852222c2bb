//! Convex's `paginationOpts` argument and `{page, isDone, continueCursor}` result, for paginated
//! queries.

use serde::{Deserialize, Serialize};
use store::{Document, PaginationOpts, PaginationResult};
use values::{Nullable, Object, Typed, Validator, Value};

use crate::{ErrorCode, FnResult, FunctionError};

/// The most items one page may ask for; larger requests are refused rather than silently trimmed.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Convex's `paginationOpts` argument (its `paginationOptsValidator`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct PaginationArg {
    pub num_items: f64,
    pub cursor: Nullable<String>,
    pub end_cursor: Option<Nullable<String>>,
    pub id: Option<f64>,
    pub maximum_rows_read: Option<f64>,
    pub maximum_bytes_read: Option<f64>,
}

impl PaginationArg {
    /// The page size and cursor, refusing a size that is not a whole number from 0 to
    /// `MAX_PAGE_SIZE`.
    pub fn opts(&self) -> FnResult<PaginationOpts> {
        let num_items = self.num_items;
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
            cursor: self.cursor.0.clone(),
        })
    }
}

/// A page of a paginated query, as Convex's `PaginationResult`.
#[derive(Clone, Debug, Deserialize, Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub page: Vec<T>,
    pub is_done: bool,
    pub continue_cursor: String,
}

impl<T> Page<T> {
    /// The page of `result`, each document read through `show`.
    pub fn of(
        result: &PaginationResult,
        show: impl FnMut(&Document) -> FnResult<T>,
    ) -> FnResult<Page<T>> {
        Ok(Page {
            page: result.page.iter().map(show).collect::<FnResult<_>>()?,
            is_done: result.is_done,
            continue_cursor: result.continue_cursor.clone(),
        })
    }
}

/// The validator of the `paginationOpts` argument.
pub fn pagination_opts_validator() -> Validator {
    PaginationArg::validator()
}

/// Reads `args.paginationOpts` (already checked against `pagination_opts_validator`).
pub fn parse_pagination_opts(args: &Object) -> FnResult<PaginationOpts> {
    let field = "paginationOpts";
    let opts = args
        .get(field)
        .ok_or_else(|| FunctionError::validation(field, "paginationOpts is required"))?;
    let opts: PaginationArg = values::serde_bridge::from_value(opts)
        .map_err(|e| FunctionError::validation(field, e.to_string()))?;
    opts.opts()
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
