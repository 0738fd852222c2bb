//! Prompt groups: how the administration screens arrange prompts (name, description, order,
//! collapsing). Deleting a group keeps its prompts, ungrouped. The versions of a prompt share
//! its group and place, so a rollback keeps both.
//!
//! `promptGroups:*` are the web app's board (`/admin/ai-prompts`): its two lists arrive without a
//! session and answer without the people fields or the template text; its two drag-and-drop
//! mutations need the same permission as the `promptManager:*` group functions.

use functions::{DbWriter, ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx, Registry};
use store::{Document, Patch};
use values::validator::v;
use values::{DocumentId, Object, Value};

use super::{
    anonymous, by_id_in, check_name, family, subsystem_of, text as field_text, GROUPS,
    PEOPLE_FIELDS, TABLE,
};
use crate::args::{object, opt_text, text, with_session};
use crate::audit::{self, Entry, Event};
use crate::identity::{require_permission, Permission, Viewer};

const MAX_GROUPS: usize = 500;
/// Prompts are few; this bounds the board's list and one reorder regardless.
const MAX_PROMPTS: usize = 1000;

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
    r.mutation_untyped(
        "promptManager:createPromptGroup",
        with_session([a, b, c, d, e]),
        create,
    );
    let [a, b, c, d, e] = fields(false);
    r.mutation_untyped(
        "promptManager:updatePromptGroup",
        with_session([("group_id", v::string().into()), a, b, c, d, e]),
        update,
    );
    r.mutation_untyped(
        "promptManager:deletePromptGroup",
        with_session([("group_id", v::string().into())]),
        delete,
    );
    r.query_untyped("promptManager:listPromptGroups", with_session([]), list);
    r.mutation_untyped(
        "promptManager:assignPromptGroup",
        with_session([
            ("prompt_name", v::string().into()),
            ("subsystem", v::optional(v::string())),
            ("group_id", v::optional(v::nullable(v::string()))),
            ("display_order", v::optional(v::number())),
        ]),
        assign,
    );
    r.query_untyped("promptGroups:listGroups", with_session([]), board_groups);
    r.query_untyped(
        "promptGroups:listPrompts",
        with_session([("activeOnly", v::optional(v::boolean()))]),
        board_prompts,
    );
    r.mutation_untyped(
        "promptGroups:reorderPrompts",
        with_session([
            ("promptIds", v::array(v::string()).into()),
            ("newOrders", v::array(v::number()).into()),
        ]),
        reorder,
    );
    r.mutation_untyped(
        "promptGroups:movePromptToGroup",
        with_session([
            ("promptId", v::string().into()),
            ("newGroupId", v::optional(v::nullable(v::string()))),
            ("displayOrder", v::optional(v::number())),
        ]),
        move_prompt,
    );
}

fn admin(ctx: &mut MutationCtx<'_>, _args: &Object) -> FnResult<Viewer> {
    let now = ctx.now_ms();
    require_permission(&mut ctx.db, ctx.auth, now, Permission::SystemConfiguration)
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
fn list(ctx: &mut QueryCtx<'_>, _args: Object) -> FnResult {
    let now = ctx.now_ms();
    require_permission(&mut ctx.db, ctx.auth, now, Permission::CreateIncident)?;
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
    let order = display_order(&args, "display_order")?;
    let group = match opt_text(&args, "group_id") {
        Some(id) => Some(group(&mut ctx.db, id)?),
        None => None,
    };
    let moved = place_family(ctx, &viewer, &subsystem, &name, Some(group.as_ref()), order)?;
    if moved == 0 {
        return Err(FunctionError::field(
            ErrorCode::NotFound,
            "prompt_name",
            format!("Prompt not found: {name}"),
        ));
    }
    Ok(object([
        ("success", Some(Value::from(true))),
        ("prompt_name", Some(Value::from(name))),
        (
            "group_id",
            Some(group.map_or(Value::Null, |g| Value::from(g.id))),
        ),
        ("updatedCount", Some(Value::from(moved as f64))),
    ]))
}

/// An optional display order argument: a finite number.
fn display_order(args: &Object, field: &str) -> FnResult<Option<f64>> {
    let order = args.get(field).and_then(Value::as_f64);
    if order.is_some_and(|o| !o.is_finite()) {
        return Err(FunctionError::validation(
            field,
            "The display order must be a number",
        ));
    }
    Ok(order)
}

/// Moves every version of a family: into `group` when given (`Some(None)` takes it out of any
/// group), to `order` when given. Audited; returns how many versions there were.
fn place_family(
    ctx: &mut MutationCtx<'_>,
    viewer: &Viewer,
    subsystem: &str,
    name: &str,
    group: Option<Option<&Document>>,
    order: Option<f64>,
) -> FnResult<usize> {
    let versions = family(&mut ctx.db, subsystem, name)?;
    if versions.is_empty() {
        return Ok(0);
    }
    for version in &versions {
        let mut patch = Patch::new();
        if let Some(group) = group {
            patch.insert("group_id".into(), group.map(|g| Value::from(g.id)));
        }
        if let Some(order) = order {
            patch.insert("display_order".into(), Some(Value::from(order)));
        }
        ctx.db.patch(&version.id, patch)?;
    }
    let (action, label) = match group {
        Some(group) => (
            "assign",
            group
                .and_then(|g| g.get("group_name").and_then(Value::as_str))
                .unwrap_or("(none)")
                .to_string(),
        ),
        None => ("reorder", String::new()),
    };
    let details: Vec<(&str, &str)> = [
        ("action", action),
        ("prompt_name", name),
        ("group_name", label.as_str()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    let now = ctx.now_ms();
    audit::record_by(
        &mut ctx.db,
        now,
        ctx.request_id.as_str(),
        viewer,
        Entry {
            event: Event::AiPromptGroupChanged,
            actor: Some(&viewer.user_id),
            target: group.flatten().map(|g| g.id.encode()),
            company: None,
            details: &details,
        },
    )?;
    Ok(versions.len())
}

/// `promptGroups:listGroups` (no session, as the web app calls it): every group in display order,
/// without who made or changed it.
fn board_groups(ctx: &mut QueryCtx<'_>, _args: Object) -> FnResult {
    let groups = ctx
        .db
        .query(GROUPS)?
        .with_index("by_display_order", |q| q)?
        .take(MAX_GROUPS)?;
    Ok(Value::Array(
        groups
            .iter()
            .map(|group| {
                let mut value = match group.to_value() {
                    Value::Object(o) => o,
                    _ => Object::new(),
                };
                for field in PEOPLE_FIELDS {
                    value.remove(field);
                }
                Value::Object(value)
            })
            .collect(),
    ))
}

/// `promptGroups:listPrompts` (no session): prompts (only the active versions with `activeOnly`)
/// by group, then display order, without the template text or the people fields: the board shows
/// names, models and statistics, and anyone may ask.
fn board_prompts(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let active_only = args
        .get("activeOnly")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut rows = if active_only {
        ctx.db
            .query(TABLE)?
            .with_index("by_active", |q| q.eq("is_active", true))?
            .take(MAX_PROMPTS)?
    } else {
        ctx.db.query(TABLE)?.take(MAX_PROMPTS)?
    };
    // Ungrouped prompts first, as the reference's index order puts a missing group_id first.
    let key = |doc: &Document| {
        (
            doc.get("group_id")
                .and_then(Value::as_str)
                .map(str::to_string),
            super::num(doc, "display_order"),
            field_text(doc, "prompt_name").to_string(),
        )
    };
    rows.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then(ka.2.cmp(&kb.2))
    });
    Ok(Value::Array(
        rows.iter()
            .map(|doc| {
                let mut prompt = anonymous(doc);
                if let Value::Object(fields) = &mut prompt {
                    fields.remove("prompt_template");
                }
                prompt
            })
            .collect(),
    ))
}

/// `promptGroups:reorderPrompts`: `{success, count}`; gives each prompt (with its other versions)
/// the display order at the same position of `newOrders`.
fn reorder(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let viewer = admin(ctx, &args)?;
    let list = |field: &str| {
        args.get(field)
            .and_then(Value::as_array)
            .unwrap_or_default()
            .to_vec()
    };
    let (ids, orders) = (list("promptIds"), list("newOrders"));
    if ids.len() != orders.len() {
        return Err(FunctionError::validation(
            "newOrders",
            "promptIds and newOrders arrays must have the same length",
        ));
    }
    if ids.len() > MAX_PROMPTS {
        return Err(FunctionError::validation(
            "promptIds",
            format!("At most {MAX_PROMPTS} prompts can be reordered at once"),
        ));
    }
    // Every id is checked before anything changes.
    let mut moves = Vec::with_capacity(ids.len());
    for (id, order) in ids.iter().zip(&orders) {
        let doc = by_id_in(&mut ctx.db, "promptIds", id.as_str().unwrap_or_default())?;
        let order = order.as_f64().filter(|o| o.is_finite()).ok_or_else(|| {
            FunctionError::validation("newOrders", "The display order must be a number")
        })?;
        moves.push((doc, order));
    }
    for (doc, order) in &moves {
        let (subsystem, name) = (field_text(doc, "subsystem"), field_text(doc, "prompt_name"));
        place_family(ctx, &viewer, subsystem, name, None, Some(*order))?;
    }
    Ok(object([
        ("success", Some(Value::from(true))),
        ("count", Some(Value::from(moves.len() as f64))),
    ]))
}

/// `promptGroups:movePromptToGroup`: `{success}`; puts the prompt (with its other versions) in
/// `newGroupId` (null: no group) at `displayOrder`.
fn move_prompt(ctx: &mut MutationCtx<'_>, args: Object) -> FnResult {
    let viewer = admin(ctx, &args)?;
    let doc = by_id_in(&mut ctx.db, "promptId", text(&args, "promptId"))?;
    let order = display_order(&args, "displayOrder")?;
    let target = match opt_text(&args, "newGroupId") {
        Some(id) => Some(
            group(&mut ctx.db, id)
                .map_err(|e| super::versions::rename_field(e, "group_id", "newGroupId"))?,
        ),
        None => None,
    };
    let (subsystem, name) = (
        field_text(&doc, "subsystem"),
        field_text(&doc, "prompt_name"),
    );
    place_family(ctx, &viewer, subsystem, name, Some(target.as_ref()), order)?;
    Ok(object([("success", Some(Value::from(true)))]))
}
