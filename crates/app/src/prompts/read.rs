//! Reading prompts: the list (any signed-in member, as in the contract: `create_incident`), one
//! prompt by id and the versions of a family, which show no more than the list already does.

use functions::{FnResult, QueryCtx, Registry};
use serde::Deserialize;
use values::Typed;

use super::{by_id, check_name, family, public, subsystem_of, PublicPrompt, TABLE};
use crate::identity::{require_permission, Permission};

/// Prompts are few (a handful of families with their versions); this bounds a list regardless.
const MAX_LISTED: usize = 1000;

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct ListArgs {
    subsystem: Option<String>,
    active_only: Option<bool>,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct ByIdArgs {
    prompt_id: String,
}

/// The arguments naming a prompt family.
#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct FamilyArgs {
    pub prompt_name: String,
    pub subsystem: Option<String>,
}

pub fn register(r: &mut Registry) {
    r.query("promptManager:listAllPrompts", list_all);
    r.query("promptManager:getPrompt", get);
    r.query("promptManager:listPromptVersions", versions);
}

fn reader(ctx: &mut QueryCtx<'_>) -> FnResult<()> {
    let now = ctx.now_ms();
    require_permission(&mut ctx.db, ctx.auth, now, Permission::CreateIncident)?;
    Ok(())
}

/// `promptManager:listAllPrompts`: active prompts by default, in display order.
fn list_all(ctx: &mut QueryCtx<'_>, args: ListArgs) -> FnResult<Vec<PublicPrompt>> {
    reader(ctx)?;
    let active_only = args.active_only.unwrap_or(true);
    let subsystem = match &args.subsystem {
        Some(s) => Some(subsystem_of(Some(s))?),
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
    rows.iter().map(public).collect()
}

/// `promptManager:getPrompt`: one version by id.
fn get(ctx: &mut QueryCtx<'_>, args: ByIdArgs) -> FnResult<PublicPrompt> {
    reader(ctx)?;
    public(&by_id(&mut ctx.db, &args.prompt_id)?)
}

/// `promptManager:listPromptVersions`: every version of a family, newest first.
fn versions(ctx: &mut QueryCtx<'_>, args: FamilyArgs) -> FnResult<Vec<PublicPrompt>> {
    reader(ctx)?;
    let name = check_name("prompt_name", &args.prompt_name)?;
    let subsystem = subsystem_of(args.subsystem.as_deref())?;
    let rows = family(&mut ctx.db, &subsystem, &name)?;
    rows.iter().map(public).collect()
}
