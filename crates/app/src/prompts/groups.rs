//! Prompt groups: how the administration screens arrange prompts (name, description, order,
//! collapsing). Deleting a group keeps its prompts, ungrouped.

use functions::{DbWriter, ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx, Registry};
use store::{Document, Patch};
use values::validator::v;
use values::{DocumentId, Object, Value};

use super::{check_name, family, subsystem_of, GROUPS, TABLE};
use crate::args::{object, opt_text, text, with_session};
use crate::audit::{self, Entry, Event};
use crate::identity::{require_permission, Permission, Viewer};

const MAX_GROUPS: usize = 500;

pub fn register(r: &mut Registry) {
    let fields = |required: bool| {
        let name = if required {
            v::required(v::string())
        } else {
            v::optional(v::string())
        };
        [
            ("group_name", name),
            ("description", v::optional(v::string())),
            ("display_order", v::optional(v::number())),
            ("is_collapsible", v::optional(v::boolean())),
            ("default_collapsed", v::optional(v::boolean())),
        ]
    };
    let [a, b, c, d, e] = fields(true);
    r.mutation(
        "promptManager:createPromptGroup",
        with_session([a, b, c, d, e]),
        create,
    );
    let [a, b, c, d, e] = fields(false);
    r.mutation(
        "promptManager:updatePromptGroup",
        with_session([("group_id", v::string().into()), a, b, c, d, e]),
        update,
    );
    r.mutation(
        "promptManager:deletePromptGroup",
        with_session([("group_id", v::string().into())]),
        delete,
    );
    r.query("promptManager:listPromptGroups", with_session([]), list);
    r.mutation(
        "promptManager:assignPromptGroup",
        with_session([
            ("prompt_name", v::string().into()),
            ("subsystem", v::optional(v::string())),
            ("group_id", v::optional(v::nullable(v::string()))),
            ("display_order", v::optional(v::number())),
        ]),
        assign,
    );
}

fn admin(ctx: &mut MutationCtx<'_>, args: &Object) -> FnResult<Viewer> {
    let now = ctx.now_ms();
    require_permission(
        &mut ctx.db,
        ctx.auth,
        args,
        now,
        Permission::SystemConfiguration,
    )
}

fn not_found() -> FunctionError {
    FunctionError::field(ErrorCode::NotFound, "group_id", "Prompt group not found")
}

/// A group by id: VALIDATION for a string that is no group id, NOT_FOUND for a missing group.
fn group(db: &mut DbWriter<'_>, id: &str) -> FnResult<Document> {
    let Some(id) = db.normalize_id(GROUPS, id) else {
        return Err(FunctionError::validation(
            "group_id",
            "group_id is not the id of a prompt group",
        ));
    };
    db.get_in(GROUPS, &id.encode())?.ok_or_else(not_found)
}

fn group_name(raw: &str) -> FnResult<String> {
    let name = raw.trim();
    if !(1..=100).contains(&name.chars().count()) || name.chars().any(char::is_control) {
        return Err(FunctionError::validation(
            "group_name",
            "A group name is 1 to 100 characters",
        ));
    }
    Ok(name.to_string())
}

fn ensure_name_free(
    db: &mut DbWriter<'_>,
    name: &str,
    except: Option<&DocumentId>,
) -> FnResult<()> {
    let n = name.to_string();
    let holders = db
        .query(GROUPS)?
        .with_index("by_name", |q| q.eq("group_name", n))?
        .take(2)?;
    if holders.iter().any(|g| Some(&g.id) != except) {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "group_name",
            format!("A prompt group named {name:?} already exists"),
        ));
    }
    Ok(())
}

/// The optional fields of `args` as a patch.
fn fields(args: &Object) -> FnResult<Patch> {
    let mut patch = Patch::new();
    if let Some(name) = opt_text(args, "group_name") {
        patch.insert("group_name".into(), Some(Value::from(group_name(name)?)));
    }
    if let Some(description) = opt_text(args, "description") {
        let description = description.trim();
        if description.chars().count() > 500 {
            return Err(FunctionError::validation(
                "description",
                "A group description is at most 500 characters",
            ));
        }
        patch.insert(
            "description".into(),
            (!description.is_empty()).then(|| Value::from(description)),
        );
    }
    if let Some(order) = args.get("display_order").and_then(Value::as_f64) {
        if !order.is_finite() {
            return Err(FunctionError::validation(
                "display_order",
                "The display order must be a number",
            ));
        }
        patch.insert("display_order".into(), Some(Value::from(order)));
    }
    for flag in ["is_collapsible", "default_collapsed"] {
        if let Some(b) = args.get(flag).and_then(Value::as_bool) {
            patch.insert(flag.into(), Some(Value::from(b)));
        }
    }
    Ok(patch)
}

fn record(
    ctx: &mut MutationCtx<'_>,
    viewer: &Viewer,
    action: &str,
    group: &Document,
) -> FnResult<()> {
    let name = group
        .get("group_name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let now = ctx.now_ms();
    audit::record_by(
        &mut ctx.db,
        now,
        ctx.request_id.as_str(),
        viewer,
        Entry {
            event: Event::AiPromptGroupChanged,
            actor: Some(&viewer.user_id),
            target: Some(group.id.encode()),
            company: None,
            details: &[("action", action), ("group_name", name.as_str())],
        },
    )
}

/// `promptManager:createPromptGroup`: `{success, group_id}`; placed last unless an order is given.
fn create(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let viewer = admin(ctx, &args)?;
    let now = ctx.now_ms();
    let patch = fields(&args)?;
    let name = patch
        .get("group_name")
        .and_then(|v| v.as_ref())
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    ensure_name_free(&mut ctx.db, &name, None)?;
    let last = ctx
        .db
        .query(GROUPS)?
        .with_index("by_display_order", |q| q)?
        .order(store::Order::Desc)
        .first()?
        .and_then(|g| g.get("display_order").and_then(Value::as_f64))
        .unwrap_or(0.0);
    let mut row: Object = patch
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    row.entry("display_order".into())
        .or_insert(Value::from(last + 1.0));
    row.entry("is_collapsible".into())
        .or_insert(Value::from(true));
    row.entry("default_collapsed".into())
        .or_insert(Value::from(false));
    row.insert("created_at".into(), Value::from(now));
    row.insert("created_by".into(), Value::from(viewer.user_id));
    row.insert("updated_at".into(), Value::from(now));
    row.insert("updated_by".into(), Value::from(viewer.user_id));
    let id = ctx.db.insert(GROUPS, row)?;
    let group = ctx.db.get_in(GROUPS, &id.encode())?.ok_or_else(not_found)?;
    record(ctx, &viewer, "create", &group)?;
    Ok(object([
        ("success", Some(Value::from(true))),
        ("group_id", Some(Value::from(id))),
    ]))
}

/// `promptManager:updatePromptGroup`: changes the fields given.
fn update(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let viewer = admin(ctx, &args)?;
    let mut patch = fields(&args)?;
    let group = group(&mut ctx.db, text(&args, "group_id"))?;
    if let Some(Some(name)) = patch.get("group_name") {
        let name = name.as_str().unwrap_or_default().to_string();
        ensure_name_free(&mut ctx.db, &name, Some(&group.id))?;
    }
    patch.insert("updated_at".into(), Some(Value::from(ctx.now_ms())));
    patch.insert("updated_by".into(), Some(Value::from(viewer.user_id)));
    ctx.db.patch(&group.id, patch)?;
    let group = ctx
        .db
        .get_in(GROUPS, &group.id.encode())?
        .ok_or_else(not_found)?;
    record(ctx, &viewer, "update", &group)?;
    Ok(object([
        ("success", Some(Value::from(true))),
        ("group_id", Some(Value::from(group.id))),
    ]))
}

/// `promptManager:deletePromptGroup`: `{success, ungroupedCount}`.
fn delete(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let viewer = admin(ctx, &args)?;
    let group = group(&mut ctx.db, text(&args, "group_id"))?;
    let members = ctx
        .db
        .query(TABLE)?
        .with_index("by_group", |q| q.eq("group_id", group.id.encode()))?
        .collect()?;
    for prompt in &members {
        let mut patch = Patch::new();
        patch.insert("group_id".into(), None);
        ctx.db.patch(&prompt.id, patch)?;
    }
    record(ctx, &viewer, "delete", &group)?;
    ctx.db.delete(&group.id)?;
    Ok(object([
        ("success", Some(Value::from(true))),
        ("ungroupedCount", Some(Value::from(members.len() as f64))),
    ]))
}

/// `promptManager:listPromptGroups`: every group in display order, with how many prompt versions
/// each holds. Readable by anyone who may list prompts.
fn list(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    require_permission(
        &mut ctx.db,
        ctx.auth,
        &args,
        now,
        Permission::CreateIncident,
    )?;
    let groups = ctx
        .db
        .query(GROUPS)?
        .with_index("by_display_order", |q| q)?
        .take(MAX_GROUPS)?;
    let mut out = Vec::with_capacity(groups.len());
    for group in groups {
        let count = ctx
            .db
            .query(TABLE)?
            .with_index("by_group", |q| q.eq("group_id", group.id.encode()))?
            .filter(|p| p.get("is_active").and_then(Value::as_bool) == Some(true))
            .collect()?
            .len();
        let mut value = match group.to_value() {
            Value::Object(o) => o,
            _ => Object::new(),
        };
        value.insert("active_prompt_count".into(), Value::from(count as f64));
        out.push(Value::Object(value));
    }
    Ok(Value::Array(out))
}

/// `promptManager:assignPromptGroup`: puts every version of a family in a group (`group_id: null`
/// takes it out), optionally at a display order.
fn assign(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let viewer = admin(ctx, &args)?;
    let name = check_name("prompt_name", text(&args, "prompt_name"))?;
    let subsystem = subsystem_of(&args)?;
    let order = args.get("display_order").and_then(Value::as_f64);
    if order.is_some_and(|o| !o.is_finite()) {
        return Err(FunctionError::validation(
            "display_order",
            "The display order must be a number",
        ));
    }
    let group = match opt_text(&args, "group_id") {
        Some(id) => Some(group(&mut ctx.db, id)?),
        None => None,
    };
    let versions = family(&mut ctx.db, &subsystem, &name)?;
    if versions.is_empty() {
        return Err(FunctionError::field(
            ErrorCode::NotFound,
            "prompt_name",
            format!("Prompt not found: {name}"),
        ));
    }
    for version in &versions {
        let mut patch = Patch::new();
        patch.insert("group_id".into(), group.as_ref().map(|g| Value::from(g.id)));
        if let Some(order) = order {
            patch.insert("display_order".into(), Some(Value::from(order)));
        }
        ctx.db.patch(&version.id, patch)?;
    }
    let label = group
        .as_ref()
        .and_then(|g| g.get("group_name").and_then(Value::as_str))
        .unwrap_or("(none)")
        .to_string();
    let now = ctx.now_ms();
    audit::record_by(
        &mut ctx.db,
        now,
        ctx.request_id.as_str(),
        &viewer,
        Entry {
            event: Event::AiPromptGroupChanged,
            actor: Some(&viewer.user_id),
            target: group.as_ref().map(|g| g.id.encode()),
            company: None,
            details: &[
                ("action", "assign"),
                ("prompt_name", name.as_str()),
                ("group_name", label.as_str()),
            ],
        },
    )?;
    Ok(object([
        ("success", Some(Value::from(true))),
        ("prompt_name", Some(Value::from(name))),
        (
            "group_id",
            Some(group.map_or(Value::Null, |g| Value::from(g.id))),
        ),
        ("updatedCount", Some(Value::from(versions.len() as f64))),
    ]))
}
