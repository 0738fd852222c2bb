//! Reading prompts: the list (any signed-in member, as in the contract: `create_incident`), one
//! prompt by id and the versions of a family, which show no more than the list already does.

use functions::{FnResult, QueryCtx, Registry};
use values::validator::v;
use values::{Object, Value};

use super::{by_id, check_name, family, public, subsystem_of, TABLE};
use crate::args::{text, with_session};
use crate::identity::{require_permission, Permission};

/// Prompts are few (a handful of families with their versions); this bounds a list regardless.
const MAX_LISTED: usize = 1000;

pub fn register(r: &mut Registry) {
    r.query_untyped(
        "promptManager:listAllPrompts",
        with_session([
            ("subsystem", v::optional(v::string())),
            ("activeOnly", v::optional(v::boolean())),
        ]),
        list_all,
    );
    r.query_untyped(
        "promptManager:getPrompt",
        with_session([("prompt_id", v::string().into())]),
        get,
    );
    r.query_untyped(
        "promptManager:listPromptVersions",
        with_session([
            ("prompt_name", v::string().into()),
            ("subsystem", v::optional(v::string())),
        ]),
        versions,
    );
}

fn reader(ctx: &mut QueryCtx<'_>, _args: &Object) -> FnResult<()> {
    let now = ctx.now_ms();
    require_permission(&mut ctx.db, ctx.auth, now, Permission::CreateIncident)?;
    Ok(())
}

/// `promptManager:listAllPrompts`: active prompts by default, in display order.
fn list_all(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    reader(ctx, &args)?;
    let active_only = args
        .get("activeOnly")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let subsystem = match args.get("subsystem") {
        Some(_) => Some(subsystem_of(&args)?),
        None => None,
    };
    let query = ctx.db.query(TABLE)?;
    let rows = match (subsystem, active_only) {
        (Some(s), true) => query
            .with_index("by_subsystem_active", |q| {
                q.eq("subsystem", s).eq("is_active", true)
            })?
            .take(MAX_LISTED)?,
        (Some(s), false) => {
            // Active versions first, then the rest, each in display order.
            let mut rows = Vec::new();
            for active in [true, false] {
                let s = s.clone();
                rows.extend(
                    ctx.db
                        .query(TABLE)?
                        .with_index("by_subsystem_active", |q| {
                            q.eq("subsystem", s).eq("is_active", active)
                        })?
                        .take(MAX_LISTED - rows.len())?,
                );
            }
            rows
        }
        (None, true) => query
            .with_index("by_active", |q| q.eq("is_active", true))?
            .take(MAX_LISTED)?,
        (None, false) => query.take(MAX_LISTED)?,
    };
    Ok(Value::Array(rows.iter().map(public).collect()))
}

/// `promptManager:getPrompt`: one version by id.
fn get(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    reader(ctx, &args)?;
    Ok(public(&by_id(&mut ctx.db, text(&args, "prompt_id"))?))
}

/// `promptManager:listPromptVersions`: every version of a family, newest first.
fn versions(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    reader(ctx, &args)?;
    let name = check_name("prompt_name", text(&args, "prompt_name"))?;
    let subsystem = subsystem_of(&args)?;
    let rows = family(&mut ctx.db, &subsystem, &name)?;
    Ok(Value::Array(rows.iter().map(public).collect()))
}
