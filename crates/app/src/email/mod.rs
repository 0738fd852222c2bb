//! Outgoing email through a transactional outbox, delivered by the job queue.
//!
//! A mutation queues an email with [`enqueue`], which inserts a row into `email_outbox` and enqueues
//! its delivery job (`functions::jobs`), both inside the mutation's own transaction: the email
//! exists if and only if the business write committed, and nothing leaves the server while a
//! transaction that may still roll back is open. The job ([`DELIVER`], see `delivery`) runs on
//! any node's job worker and hands the row to the registry's [`Mailer`] (given to [`register`]):
//! SMTP when `SMTP_URL` is configured, otherwise [`LogMailer`], which logs the envelope (never the
//! body) and keeps the message in the outbox for a developer to read.
//!
//! The outbox row stays the record of the email. Row life cycle (`status`):
//! `pending` → `sending` (an attempt under way; `attempts` counts them) → `sent` | `logged` |
//! `failed` (with `last_error`), or back to `pending` after a transient failure, until the job's
//! next attempt.
//!
//! Delivery is at least once: a node that dies between the relay accepting a message and recording
//! `sent` leaves the row `sending`; when its job's lease expires another node sends it again. Every
//! attempt of one row carries the same `Message-ID`, so receiving systems can tell the copies apart.

mod delivery;
mod mailer;

use functions::{DbRead, DbWriter, FnResult, MutationCtx, Runtime};
use serde::{Deserialize, Serialize};
use store::{Document, Order, StoreError, TableDef, Txn};
use values::serde_bridge::from_value;
use values::validator::v;
use values::{DocumentId, Id, Object, Typed, Validator, Value};

pub use delivery::{register, DeliverArgs, BACKOFF_MS, DELIVER, MAX_ATTEMPTS, SEND_TIMEOUT};
pub use mailer::{
    mailer_from_config, Delivered, LogMailer, MailError, Mailer, QueuedEmail, SmtpMailer, Unusable,
};

pub const TABLE: &str = "email_outbox";
/// `[status, next_attempt_at]`: unsent rows (for the requeue cron) and the purge's range.
pub const INDEX_BY_STATUS: &str = "by_status_next_attempt";

/// Where a queued email stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Waiting for its delivery job's first or next attempt.
    Pending,
    /// An attempt is under way (or its node died; the job's next attempt sends it again).
    Sending,
    /// Accepted by the SMTP relay.
    Sent,
    /// Gave up: a permanent refusal, or too many attempts. `last_error` says why.
    Failed,
    /// No SMTP configured: logged and kept here instead of being sent.
    Logged,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Sending,
        Status::Sent,
        Status::Failed,
        Status::Logged,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Failed => "failed",
            Status::Logged => "logged",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.as_str() == s)
    }
    /// Whether the row is done with (no delivery attempt will touch it again).
    pub fn is_final(self) -> bool {
        matches!(self, Status::Sent | Status::Failed | Status::Logged)
    }
}

pub fn tables() -> Vec<TableDef> {
    vec![TableDef::new(TABLE)
        .field("to", v::string())
        .field("subject", v::string())
        .field("text", v::string())
        // "password_reset", "invitation", ...: free text, for filtering and logs.
        .field("kind", v::string())
        .field("status", status_validator())
        .field("attempts", v::number())
        // Pending: when it was queued or its last attempt failed (the delivery job's `run_at` says
        // when the next one is). Sending: when the attempt began. Final states: when the row got
        // there (so the same index serves retention).
        .field("next_attempt_at", v::number())
        .optional("last_error", v::string())
        .field("created_at", v::number())
        .optional("sent_at", v::number())
        .optional("company_id", v::id("companies"))
        // Ties the email to what caused it (an invitation id, a request id) for support and tests.
        .optional("correlation_id", v::string())
        .index(INDEX_BY_STATUS, &["status", "next_attempt_at"])]
}

fn status_validator() -> Validator {
    v::union(Status::ALL.iter().map(|s| v::literal(s.as_str())).collect())
}

/// A document of the outbox. No `Debug`: the body carries reset and invitation tokens.
#[derive(Clone, Serialize, Deserialize, Typed)]
#[typed(table = "email_outbox")]
pub struct OutboxDoc {
    #[serde(rename = "_id")]
    pub id: Id<OutboxDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub kind: String,
    #[typed(validator = status_validator())]
    pub status: String,
    pub attempts: f64,
    pub next_attempt_at: f64,
    pub last_error: Option<String>,
    pub created_at: f64,
    pub sent_at: Option<f64>,
    #[typed(id = "companies")]
    pub company_id: Option<DocumentId>,
    pub correlation_id: Option<String>,
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![(TABLE, OutboxDoc::validator())]
}

/// An outbox document as its row type; a row that does not read is a store error here (the callers
/// work in store terms).
pub(crate) fn read_row(doc: &Document) -> store::Result<OutboxDoc> {
    from_value(&doc.to_value()).map_err(|e| {
        StoreError::Internal(format!(
            "{TABLE} row {} does not read as its row type: {e}",
            doc.id
        ))
    })
}

/// An email to queue. `Debug` leaves out the body: it carries reset and invitation tokens.
#[derive(Clone, PartialEq)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    pub kind: String,
    pub company_id: Option<DocumentId>,
    pub correlation_id: Option<String>,
}

impl OutgoingEmail {
    pub fn new(
        to: impl Into<String>,
        subject: impl Into<String>,
        text: impl Into<String>,
        kind: impl Into<String>,
    ) -> OutgoingEmail {
        OutgoingEmail {
            to: to.into(),
            subject: subject.into(),
            text: text.into(),
            kind: kind.into(),
            company_id: None,
            correlation_id: None,
        }
    }
}

impl std::fmt::Debug for OutgoingEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingEmail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text", &format_args!("<{} bytes>", self.text.len()))
            .field("kind", &self.kind)
            .field("company_id", &self.company_id)
            .field("correlation_id", &self.correlation_id)
            .finish()
    }
}

/// Queues `email` in the calling mutation's transaction: the outbox row and its delivery job,
/// which sends it once that commits. Refuses (as a validation error on the field) a recipient the
/// mailer could not address, and a subject with line breaks. The registry must have [`register`]ed
/// delivery (`app::registry` does).
pub fn enqueue(ctx: &mut MutationCtx<'_>, email: OutgoingEmail) -> FnResult<DocumentId> {
    let fields = outbox_row(email, ctx.now_ms())?;
    let id = ctx.db.insert(TABLE, fields)?;
    let outbox_id = Id::new(id);
    ctx.jobs().enqueue(
        DELIVER,
        &DeliverArgs { outbox_id },
        delivery::job_options(&outbox_id),
    )?;
    Ok(id)
}

/// [`enqueue`] for server code that runs its own `Store::mutate` rather than a registered mutation;
/// `runtime` is the one whose registry has delivery registered (it checks the job's arguments).
pub fn enqueue_in_txn(
    txn: &mut Txn,
    runtime: &Runtime,
    email: OutgoingEmail,
) -> FnResult<DocumentId> {
    let fields = outbox_row(email, txn.now_ms())?;
    let id = txn.insert(TABLE, fields)?;
    let outbox_id = Id::new(id);
    functions::jobs::enqueue_in_txn(
        txn,
        runtime,
        DELIVER,
        &DeliverArgs { outbox_id },
        delivery::job_options(&outbox_id),
    )?;
    Ok(id)
}

fn outbox_row(email: OutgoingEmail, now_ms: f64) -> store::Result<Object> {
    let invalid = |field: &str, message: &str| StoreError::Validation {
        path: format!(".{field}"),
        message: message.to_string(),
    };
    let to = email.to.trim();
    if to.parse::<lettre::Address>().is_err() || to.chars().any(char::is_whitespace) {
        return Err(invalid(
            "to",
            "The recipient must be an email address like name@example.org",
        ));
    }
    // lettre encodes headers safely, but a line break in a subject is always a caller's bug (or an
    // injection attempt through user input), so it is refused rather than silently folded.
    if email.subject.contains(['\r', '\n']) {
        return Err(invalid("subject", "The subject must be a single line"));
    }
    if email.subject.trim().is_empty() {
        return Err(invalid("subject", "The subject must not be empty"));
    }
    let mut row = Object::new();
    row.insert("to".into(), Value::from(to));
    row.insert("subject".into(), Value::from(email.subject));
    row.insert("text".into(), Value::from(email.text));
    row.insert("kind".into(), Value::from(email.kind));
    row.insert("status".into(), Value::from(Status::Pending.as_str()));
    row.insert("attempts".into(), Value::from(0.0));
    row.insert("next_attempt_at".into(), Value::from(now_ms));
    row.insert("created_at".into(), Value::from(now_ms));
    if let Some(company) = email.company_id {
        row.insert("company_id".into(), Value::from(company));
    }
    if let Some(correlation) = email.correlation_id {
        row.insert("correlation_id".into(), Value::from(correlation));
    }
    Ok(row)
}

/// Deletes up to `limit` rows that reached a final state before `before_ms` (bodies hold tokens, so
/// they should not be kept forever); returns how many went. For a retention cron: call it again
/// while it returns `limit`.
pub fn purge_finished(db: &mut DbWriter<'_>, before_ms: f64, limit: usize) -> store::Result<usize> {
    let mut purged = 0;
    for status in Status::ALL.into_iter().filter(|s| s.is_final()) {
        let rows = db
            .query(TABLE)?
            .with_index(INDEX_BY_STATUS, |q| {
                q.eq("status", status.as_str())
                    .lt("next_attempt_at", before_ms)
            })?
            .order(Order::Asc)
            .take(limit - purged)?;
        for row in rows {
            db.delete(&row.id)?;
            purged += 1;
        }
        if purged == limit {
            break;
        }
    }
    Ok(purged)
}

/// Outbox rows that belong to a deleted company: those queued for it, and those addressed to its
/// users (their reset and invitation links lead to accounts that no longer exist). The outbox is
/// kept small by retention, so this reads it whole.
fn rows_for_company(
    db: &mut impl DbRead,
    company: &DocumentId,
    addresses: &[String],
) -> store::Result<Vec<DocumentId>> {
    let mut ids = Vec::new();
    for doc in db.query(TABLE)?.collect()? {
        let row = read_row(&doc)?;
        let to = row.to.to_lowercase();
        if row.company_id.as_ref() == Some(company)
            || addresses.iter().any(|a| a.to_lowercase() == to)
        {
            ids.push(doc.id);
        }
    }
    Ok(ids)
}

/// How many outbox rows belong to a deleted company (see `rows_for_company`).
pub fn count_for_company(
    db: &mut impl DbRead,
    company: &DocumentId,
    addresses: &[String],
) -> store::Result<usize> {
    Ok(rows_for_company(db, company, addresses)?.len())
}

/// Deletes the outbox rows of a deleted company (see `rows_for_company`); returns how many went.
pub fn delete_for_company(
    db: &mut DbWriter<'_>,
    company: &DocumentId,
    addresses: &[String],
) -> store::Result<usize> {
    let ids = rows_for_company(db, company, addresses)?;
    for id in &ids {
        db.delete(id)?;
    }
    Ok(ids.len())
}

/// Finished emails are kept this long (a week) for support, then deleted: their bodies hold reset
/// and invitation links.
pub const RETENTION_MS: f64 = 7.0 * crate::housekeeping::DAY_MS;

const SWEEP: functions::FunctionRef<
    crate::housekeeping::BatchArgs,
    crate::housekeeping::SweepBatch,
> = functions::FunctionRef::internal_mutation("housekeeping:sweepEmails");

/// Deletes finished emails past `RETENTION_MS`, hourly (unsent ones are their jobs').
pub fn register_sweep(r: &mut functions::Registry) {
    r.internal_mutation(SWEEP, |ctx, args| {
        let limit = crate::housekeeping::batch_limit(args.limit);
        let before = ctx.now_ms() - RETENTION_MS;
        let deleted = purge_finished(&mut ctx.db, before, limit)?;
        Ok(crate::housekeeping::swept(deleted, limit))
    });
    crate::housekeeping::cron_for(r, "prune emails", SWEEP);
}
