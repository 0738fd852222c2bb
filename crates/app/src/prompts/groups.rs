//! Prompt groups: how the administration screens arrange prompts (name, description, order,
//! collapsing). Deleting a group keeps its prompts, ungrouped. The versions of a prompt share
//! its group and place, so a rollback keeps both.
//!
//! `promptGroups:*` are the web app's board (`/admin/ai-prompts`): its two lists arrive without a
//! session and answer without the people fields or the template text; its two drag-and-drop
//! mutations need the same permission as the `promptManager:*` group functions.

use functions::{DbWriter, ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx, Registry};
use serde::{Deserialize, Serialize};
use store::{Document, Patch};
use values::{DocumentId, Id, Nullable, Object, Typed, Value};

use super::{
    anonymous, by_id_in, check_name, family, subsystem_of, text as field_text, AnonymousPrompt,
    GroupCore, GroupDoc, PromptCore, GROUPS, TABLE,
};
use crate::args::{SessionArgs, Success};
use crate::audit::{self, Entry, Event};
use crate::identity::{require_permission, Permission, Viewer};

const MAX_GROUPS: usize = 500;
/// Prompts are few; this bounds the board's list and one reorder regardless.
const MAX_PROMPTS: usize = 1000;

/// The fields of a group other than its name, each optional (an update changes those given).
#[derive(Deserialize, Typed)]
pub struct GroupExtras {
    description: Option<String>,
    display_order: Option<f64>,
    is_collapsible: Option<bool>,
    default_collapsed: Option<bool>,
}

/// The settable fields of a group, all optional.
#[derive(Deserialize, Typed)]
pub struct GroupFields {
    group_name: Option<String>,
    #[serde(flatten)]
    extras: GroupExtras,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct CreateGroupArgs {
    group_name: String,
    #[serde(flatten)]
    extras: GroupExtras,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct UpdateGroupArgs {
    group_id: String,
    #[serde(flatten)]
    fields: GroupFields,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct GroupIdArgs {
    group_id: String,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct AssignArgs {
    prompt_name: String,
    subsystem: Option<String>,
    /// Null (or left out) takes the family out of any group.
    group_id: Option<Nullable<String>>,
    display_order: Option<f64>,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct BoardArgs {
    active_only: Option<bool>,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct ReorderArgs {
    prompt_ids: Vec<String>,
    new_orders: Vec<f64>,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct MoveArgs {
    prompt_id: String,
    /// Null (or left out): no group.
    new_group_id: Option<Nullable<String>>,
    display_order: Option<f64>,
}

#[derive(Serialize, Typed)]
pub struct GroupSaved {
    success: bool,
    group_id: Id<GroupDoc>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct GroupDeleted {
    success: bool,
    ungrouped_count: usize,
}

/// A group with how many active prompt versions it holds.
#[derive(Serialize, Typed)]
pub struct ListedGroup {
    #[serde(flatten)]
    group: GroupDoc,
    active_prompt_count: usize,
}

#[derive(Serialize, Typed)]
pub struct Assigned {
    success: bool,
    prompt_name: String,
    group_id: Nullable<Id<GroupDoc>>,
    #[serde(rename = "updatedCount")]
    updated_count: usize,
}

/// A prompt on the board: no template text, no people fields.
#[derive(Serialize, Typed)]
pub struct BoardPrompt {
    #[serde(flatten)]
    core: PromptCore,
    success_rate: Nullable<f64>,
    adjustment_pending: bool,
}

impl From<AnonymousPrompt> for BoardPrompt {
    fn from(prompt: AnonymousPrompt) -> BoardPrompt {
        BoardPrompt {
            core: prompt.core,
            success_rate: prompt.success_rate,
            adjustment_pending: prompt.adjustment_pending,
        }
    }
}

#[derive(Serialize, Typed)]
pub struct Reordered {
    success: bool,
    count: usize,
}

pub fn register(r: &mut Registry) {
    r.mutation("promptManager:createPromptGroup", create);
    r.mutation("promptManager:updatePromptGroup", update);
    r.mutation("promptManager:deletePromptGroup", delete);
    r.query("promptManager:listPromptGroups", list);
    r.mutation("promptManager:assignPromptGroup", assign);
    r.query("promptGroups:listGroups", board_groups);
    r.query("promptGroups:listPrompts", board_prompts);
    r.mutation("promptGroups:reorderPrompts", reorder);
    r.mutation("promptGroups:movePromptToGroup", move_prompt);
}

fn admin(ctx: &mut MutationCtx<'_>) -> FnResult<Viewer> {
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

/// The fields given as a patch.
fn fields(args: &GroupFields) -> FnResult<Patch> {
    let mut patch = Patch::new();
    if let Some(name) = &args.group_name {
        patch.insert("group_name".into(), Some(Value::from(group_name(name)?)));
    }
    if let Some(description) = &args.extras.description {
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
    if let Some(order) = args.extras.display_order {
        if !order.is_finite() {
            return Err(FunctionError::validation(
                "display_order",
                "The display order must be a number",
            ));
        }
        patch.insert("display_order".into(), Some(Value::from(order)));
    }
    for (flag, given) in [
        ("is_collapsible", args.extras.is_collapsible),
        ("default_collapsed", args.extras.default_collapsed),
    ] {
        if let Some(b) = given {
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
fn create(ctx: &mut MutationCtx<'_>, args: CreateGroupArgs) -> FnResult<GroupSaved> {
    let viewer = admin(ctx)?;
    let now = ctx.now_ms();
    let patch = fields(&GroupFields {
        group_name: Some(args.group_name),
        extras: args.extras,
    })?;
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
    Ok(GroupSaved {
        success: true,
        group_id: id.into(),
    })
}

/// `promptManager:updatePromptGroup`: changes the fields given.
fn update(ctx: &mut MutationCtx<'_>, args: UpdateGroupArgs) -> FnResult<GroupSaved> {
    let viewer = admin(ctx)?;
    let mut patch = fields(&args.fields)?;
    let group = group(&mut ctx.db, &args.group_id)?;
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
    Ok(GroupSaved {
        success: true,
        group_id: group.id.into(),
    })
}

/// `promptManager:deletePromptGroup`: `{success, ungroupedCount}`.
fn delete(ctx: &mut MutationCtx<'_>, args: GroupIdArgs) -> FnResult<GroupDeleted> {
    let viewer = admin(ctx)?;
    let group = group(&mut ctx.db, &args.group_id)?;
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
    Ok(GroupDeleted {
        success: true,
        ungrouped_count: members.len(),
    })
}

/// `promptManager:listPromptGroups`: every group in display order, with how many prompt versions
/// each holds. Readable by anyone who may list prompts.
fn list(ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<Vec<ListedGroup>> {
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
        out.push(ListedGroup {
            group: functions::row(&group)?,
            active_prompt_count: count,
        });
    }
    Ok(out)
}

/// `promptManager:assignPromptGroup`: puts every version of a family in a group (`group_id: null`
/// takes it out), optionally at a display order.
fn assign(ctx: &mut MutationCtx<'_>, args: AssignArgs) -> FnResult<Assigned> {
    let viewer = admin(ctx)?;
    let name = check_name("prompt_name", &args.prompt_name)?;
    let subsystem = subsystem_of(args.subsystem.as_deref())?;
    let order = display_order(args.display_order, "display_order")?;
    let group = match args.group_id.and_then(|g| g.0) {
        Some(id) => Some(group(&mut ctx.db, &id)?),
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
    Ok(Assigned {
        success: true,
        prompt_name: name,
        group_id: Nullable(group.map(|g| g.id.into())),
        updated_count: moved,
    })
}

/// An optional display order argument: a finite number.
fn display_order(order: Option<f64>, field: &str) -> FnResult<Option<f64>> {
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
fn board_groups(ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<Vec<GroupCore>> {
    let groups = ctx
        .db
        .query(GROUPS)?
        .with_index("by_display_order", |q| q)?
        .take(MAX_GROUPS)?;
    groups
        .iter()
        .map(|group| Ok(functions::row::<GroupDoc>(group)?.core))
        .collect()
}

/// `promptGroups:listPrompts` (no session): prompts (only the active versions with `activeOnly`)
/// by group, then display order, without the template text or the people fields: the board shows
/// names, models and statistics, and anyone may ask.
fn board_prompts(ctx: &mut QueryCtx<'_>, args: BoardArgs) -> FnResult<Vec<BoardPrompt>> {
    let active_only = args.active_only.unwrap_or(false);
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
    rows.iter()
        .map(|doc| anonymous(doc).map(BoardPrompt::from))
        .collect()
}

/// `promptGroups:reorderPrompts`: `{success, count}`; gives each prompt (with its other versions)
/// the display order at the same position of `newOrders`.
fn reorder(ctx: &mut MutationCtx<'_>, args: ReorderArgs) -> FnResult<Reordered> {
    let viewer = admin(ctx)?;
    let (ids, orders) = (args.prompt_ids, args.new_orders);
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
        let doc = by_id_in(&mut ctx.db, "promptIds", id)?;
        let order = Some(*order).filter(|o| o.is_finite()).ok_or_else(|| {
            FunctionError::validation("newOrders", "The display order must be a number")
        })?;
        moves.push((doc, order));
    }
    for (doc, order) in &moves {
        let (subsystem, name) = (field_text(doc, "subsystem"), field_text(doc, "prompt_name"));
        place_family(ctx, &viewer, subsystem, name, None, Some(*order))?;
    }
    Ok(Reordered {
        success: true,
        count: moves.len(),
    })
}

/// `promptGroups:movePromptToGroup`: `{success}`; puts the prompt (with its other versions) in
/// `newGroupId` (null: no group) at `displayOrder`.
fn move_prompt(ctx: &mut MutationCtx<'_>, args: MoveArgs) -> FnResult<Success> {
    let viewer = admin(ctx)?;
    let doc = by_id_in(&mut ctx.db, "promptId", &args.prompt_id)?;
    let order = display_order(args.display_order, "displayOrder")?;
    let target = match args.new_group_id.and_then(|g| g.0) {
        Some(id) => Some(
            group(&mut ctx.db, &id)
                .map_err(|e| super::versions::rename_field(e, "group_id", "newGroupId"))?,
        ),
        None => None,
    };
    let (subsystem, name) = (
        field_text(&doc, "subsystem"),
        field_text(&doc, "prompt_name"),
    );
    place_family(ctx, &viewer, subsystem, name, Some(target.as_ref()), order)?;
    Ok(Success { success: true })
}
