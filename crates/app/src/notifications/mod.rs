//! In-app notifications and their emails. A notification is a row in the recipient's inbox
//! (`notifications:listMine`, live) plus an email through the outbox. Callers that act for a user
//! enqueue `DELIVER` on the job queue, so nothing is sent from inside their mutation and a failure
//! to notify never undoes the work; background code that already runs on its own (the reportable
//! reminders) calls `notify` directly.

use functions::{
    DbWriter, FnResult, FunctionError, FunctionRef, MutationCtx, Page, PaginationArg, QueryCtx,
    Registry, Scope,
};
use serde::{Deserialize, Serialize};
use store::{Order, Patch, TableDef};
use values::{DocumentId, Id, Typed, Validator, Value};

use crate::identity::{require_session, Role};
use crate::users::rows::{contact_of, with_roles, Contact};

pub const TABLE: &str = "notifications";
/// Delivers a notification to a company's roles and named users (a job).
pub const DELIVER: FunctionRef<Delivery, Delivered> =
    FunctionRef::internal_mutation("notifications:deliver");

macro_rules! kinds {
    ($($variant:ident = $text:literal),+ $(,)?) => {
        /// What a notification is about.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Typed)]
        pub enum Kind { $(#[serde(rename = $text)] $variant),+ }
        impl Kind {
            pub fn as_str(self) -> &'static str {
                match self { $(Kind::$variant => $text),+ }
            }
        }
    };
}

kinds!(
    AnalysisReady = "analysis_ready",
    ReportableDeadline = "reportable_deadline",
    AnalysisCompleted = "analysis_completed",
    AnalysisReopened = "analysis_reopened",
);

/// The fields of a notification.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct NotificationRow {
    #[typed(id = "users")]
    pub user_id: DocumentId,
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[typed(id = "incidents")]
    pub incident_id: Option<DocumentId>,
    pub title: String,
    pub body: String,
    pub created_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<f64>,
    /// A path of the web app (`/analysis/<incident id>`).
    pub link: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "notifications")]
pub struct NotificationDoc {
    #[serde(rename = "_id")]
    pub id: Id<NotificationDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[serde(flatten)]
    pub row: NotificationRow,
}

pub fn tables() -> Vec<TableDef> {
    let mut def = TableDef::new(TABLE);
    if let Validator::Object(fields) = NotificationRow::validator() {
        def.fields = fields;
    }
    vec![def
        .index(
            "by_company_user_created",
            &["company_id", "user_id", "created_at"],
        )
        .index("by_company_incident", &["company_id", "incident_id"])
        .tenant("company_id")]
}

pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![(TABLE, NotificationDoc::validator())]
}

/// What to tell people.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct Note {
    pub kind: Kind,
    #[typed(id = "incidents")]
    pub incident_id: Option<DocumentId>,
    pub title: String,
    pub body: String,
    pub link: String,
}

/// The arguments of `DELIVER`: the note, to every member of the company holding one of `roles`
/// and to each of `users` (each person once).
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct Delivery {
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    pub note: Note,
    pub roles: Vec<String>,
    #[typed(id = "users")]
    pub users: Vec<DocumentId>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct Delivered {
    pub delivered: usize,
}

/// The company's team leads and company administrators.
pub const ANALYSTS: [Role; 2] = [Role::TeamLead, Role::CompanyAdmin];

/// Who `delivery` reaches, each once.
fn recipients(db: &mut DbWriter<'_>, scope: &Scope, delivery: &Delivery) -> FnResult<Vec<Contact>> {
    let roles: Vec<Role> = delivery
        .roles
        .iter()
        .filter_map(|r| Role::parse(r))
        .collect();
    let mut people = with_roles(db, scope, &roles)?;
    for user in &delivery.users {
        if let Some(contact) = contact_of(db, scope, user)? {
            people.push(contact);
        }
    }
    let mut seen = std::collections::HashSet::new();
    people.retain(|p| seen.insert(p.id));
    Ok(people)
}

/// Puts `note` in each recipient's inbox and queues its email; returns how many were told.
pub fn notify(
    ctx: &mut MutationCtx<'_>,
    scope: &Scope,
    company: &DocumentId,
    people: &[Contact],
    note: &Note,
    app_base: &str,
    now: f64,
) -> FnResult<usize> {
    for person in people {
        let row = NotificationRow {
            user_id: person.id,
            company_id: *company,
            kind: note.kind,
            incident_id: note.incident_id,
            title: note.title.clone(),
            body: note.body.clone(),
            created_at: now,
            read_at: None,
            link: note.link.clone(),
        };
        let fields = values::serde_bridge::to_value(&row)?
            .into_object()
            .ok_or_else(|| FunctionError::internal("a notification row is an object"))?;
        ctx.db.scoped(scope).insert(TABLE, fields)?;
        if person.email.trim().is_empty() {
            continue;
        }
        let text = format!(
            "Hello {},\n\n{}\n\nOpen it in SupportSignal: {}{}\n",
            person.name,
            note.body,
            app_base.trim_end_matches('/'),
            note.link
        );
        let mut email = crate::email::OutgoingEmail::new(
            person.email.clone(),
            note.title.replace(['\r', '\n'], " "),
            text,
            format!("notification_{}", note.kind.as_str()),
        );
        email.company_id = Some(*company);
        email.correlation_id = note.incident_id.map(|i| i.encode());
        crate::email::enqueue(ctx, email)?;
    }
    Ok(people.len())
}

/// `notifications:deliver` (a job): the note to everyone `Delivery` names.
fn deliver(ctx: &mut MutationCtx<'_>, args: Delivery, app_base: &str) -> FnResult<Delivered> {
    let now = ctx.now_ms();
    let scope = Scope::company(args.company_id);
    let people = recipients(&mut ctx.db, &scope, &args)?;
    let delivered = notify(
        ctx,
        &scope,
        &args.company_id,
        &people,
        &args.note,
        app_base,
        now,
    )?;
    Ok(Delivered { delivered })
}

/// Who `DELIVER` reaches, for callers that must act on it in the same transaction.
pub fn deliver_now(
    ctx: &mut MutationCtx<'_>,
    delivery: &Delivery,
    app_base: &str,
) -> FnResult<usize> {
    deliver(ctx, delivery.clone(), app_base).map(|d| d.delivered)
}

#[derive(Deserialize, Typed)]
#[typed(session)]
#[serde(rename_all = "camelCase")]
pub struct ListArgs {
    unread_only: Option<bool>,
    pagination_opts: PaginationArg,
}

/// `notifications:listMine`: the caller's notifications, newest first (live).
fn list_mine(ctx: &mut QueryCtx<'_>, args: ListArgs) -> FnResult<Page<NotificationDoc>> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let opts = args.pagination_opts.opts()?;
    let Some(company) = viewer.company_id else {
        // Platform administrators belong to no company and get no analysis notifications.
        return Ok(Page {
            page: Vec::new(),
            is_done: true,
            continue_cursor: String::new(),
        });
    };
    let scope = Scope::company(company);
    let me = viewer.user_id.encode();
    let unread_only = args.unread_only == Some(true);
    let mut db = ctx.db.scoped(&scope);
    let query = db
        .query(TABLE, "by_company_user_created", |q| q.eq("user_id", me))?
        .order(Order::Desc);
    let query = if unread_only {
        query.filter(|doc| doc.get("read_at").is_none())
    } else {
        query
    };
    let result = query.paginate(opts)?;
    Page::of(&result, functions::row)
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct MarkArgs {
    #[typed(id = "notifications")]
    notification_ids: Option<Vec<String>>,
}

#[derive(Serialize, Typed)]
pub struct Marked {
    success: bool,
    marked: usize,
}

/// `notifications:markRead`: marks the caller's named notifications (all unread ones when none
/// are named) read. Someone else's notification answers like a missing one.
fn mark_read(ctx: &mut MutationCtx<'_>, args: MarkArgs) -> FnResult<Marked> {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, now)?;
    let scope = viewer.company_scope()?;
    let me = viewer.user_id;
    let docs = match &args.notification_ids {
        Some(ids) => {
            let mut docs = Vec::new();
            for id in ids {
                let doc = ctx
                    .db
                    .scoped(&scope)
                    .get_in(TABLE, id)?
                    .filter(|d| d.get("user_id") == Some(&Value::from(me)))
                    .ok_or_else(|| FunctionError::not_found("Notification not found"))?;
                docs.push(doc);
            }
            docs
        }
        None => {
            let mine = me.encode();
            ctx.db
                .scoped(&scope)
                .query(TABLE, "by_company_user_created", |q| q.eq("user_id", mine))?
                .filter(|doc| doc.get("read_at").is_none())
                .collect()?
        }
    };
    let mut marked = 0;
    for doc in docs.iter().filter(|d| d.get("read_at").is_none()) {
        let patch = Patch::from([("read_at".to_string(), Some(Value::from(now)))]);
        ctx.db.scoped(&scope).patch(&doc.id, patch)?;
        marked += 1;
    }
    Ok(Marked {
        success: true,
        marked,
    })
}

pub fn register(r: &mut Registry, urls: &config::Urls) {
    r.query("notifications:listMine", list_mine);
    r.mutation("notifications:markRead", mark_read);
    let base = urls.app_base().to_string();
    r.internal_mutation(DELIVER, move |ctx, args| deliver(ctx, args, &base));
}
