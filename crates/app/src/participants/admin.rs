//! `participants/admin:deleteParticipant`: company administrators delete their company's
//! participants, holders of `manage_all_companies` any company's. A participant that incidents refer
//! to is kept (incident records must keep their subject); the answer says to discharge instead.

use functions::{ErrorCode, FnResult, FunctionError, MutationCtx, ScopedWriter};
use store::Schema;
use values::{DocumentId, Object, Value};

use super::{not_found, TABLE};
use crate::args::{object, text};
use crate::audit::{self, Entry, Event};
use crate::identity::{require_session, Permission};

const INCIDENTS: &str = "incidents";

/// How to find a participant's incidents, worked out once from the schema. `None` while the
/// application has no incidents table: then no participant can have incidents, and the check
/// starts to apply by itself once the incidents module declares its table.
pub struct IncidentLink {
    index: String,
    /// The index continues with `participant_id`, so the lookup is one index probe; otherwise the
    /// company's incidents are scanned for the participant.
    by_participant: bool,
    /// Whether the incidents table is tenant-scoped (the scope then fixes `company_id` itself).
    scoped: bool,
}

impl IncidentLink {
    pub fn from_schema(schema: &Schema) -> Option<IncidentLink> {
        let table = schema.get(INCIDENTS)?;
        let scoped = match table.tenant_field.as_deref() {
            None => false,
            Some("company_id") => true,
            Some(other) => panic!("incidents are tenant-scoped by {other}, expected company_id"),
        };
        let starts = |index: &&store::IndexDef, fields: &[&str]| {
            index.fields.len() >= fields.len()
                && index.fields.iter().zip(fields).all(|(a, b)| a == b)
        };
        let probe = table
            .indexes
            .iter()
            .find(|i| starts(i, &["company_id", "participant_id"]));
        let scan = || table.indexes.iter().find(|i| starts(i, &["company_id"]));
        let (index, by_participant) = match probe {
            Some(index) => (index, true),
            // Registration runs at start-up: an incidents table without a company index is a
            // programming error, reported at once rather than on the first deletion.
            None => (
                scan().expect("the incidents table needs an index starting with company_id"),
                false,
            ),
        };
        Some(IncidentLink {
            index: index.name.clone(),
            by_participant,
            scoped,
        })
    }
}

/// Whether any incident of `company` refers to `participant`.
fn has_incidents(
    db: &mut ScopedWriter<'_>,
    link: Option<&IncidentLink>,
    company: &DocumentId,
    participant: &DocumentId,
) -> FnResult<bool> {
    let Some(link) = link else {
        return Ok(false);
    };
    let wanted = participant.encode();
    let (company, probe) = (company.encode(), wanted.clone());
    let query = db.query(INCIDENTS, &link.index, |q| {
        let q = if link.scoped {
            q
        } else {
            q.eq("company_id", company)
        };
        if link.by_participant {
            q.eq("participant_id", probe)
        } else {
            q
        }
    })?;
    let query = query.filter(move |incident| {
        incident.get("participant_id").and_then(Value::as_str) == Some(&wanted)
    });
    Ok(query.first()?.is_some())
}

pub fn delete(ctx: &mut MutationCtx<'_>, args: Object, link: Option<&IncidentLink>) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_session(&mut ctx.db, ctx.auth, &args, now)?;
    let grant = ctx.cross_tenant()?;
    // Where to look: everywhere for those who manage every company, else only the own company.
    let lookup = if viewer.has(Permission::ManageAllCompanies) {
        viewer.all_companies_scope(&grant, Permission::ManageAllCompanies)?
    } else {
        viewer.require(Permission::CompanyConfiguration)?;
        viewer.company_scope()?
    };
    let participant = ctx
        .db
        .scoped(&lookup)
        .get_in(TABLE, text(&args, "participantId"))?
        .ok_or_else(not_found)?;
    let company = participant
        .get("company_id")
        .and_then(Value::as_str)
        .and_then(|c| ctx.db.normalize_id("companies", c))
        .ok_or_else(|| FunctionError::internal("participant without a company"))?;
    let scope = viewer.scope_for(&company, Some(&grant), Permission::ManageAllCompanies)?;
    let mut db = ctx.db.scoped(&scope);
    if has_incidents(&mut db, link, &company, &participant.id)? {
        return Err(FunctionError::user(
            ErrorCode::Conflict,
            "Cannot delete a participant with incidents; discharge the participant instead",
        ));
    }
    db.delete(&participant.id)?;
    let entry = Entry {
        event: Event::ParticipantDeleted,
        actor: Some(&viewer.user_id),
        target: Some(participant.id.encode()),
        company: Some(&company),
        details: &[],
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), &viewer, entry)?;
    Ok(object([
        ("success", Some(Value::from(true))),
        ("correlationId", Some(Value::from(ctx.request_id.as_str()))),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::TableDef;
    use values::validator::v;

    fn schema(indexes: &[(&str, &[&str])]) -> Schema {
        let table = TableDef::new(INCIDENTS)
            .field("company_id", v::id("companies"))
            .optional("participant_id", v::id("participants"))
            .tenant("company_id");
        let table = indexes
            .iter()
            .fold(table, |t, (name, fields)| t.index(name, fields));
        Schema::new().table(table)
    }

    #[test]
    fn finds_the_cheapest_way_to_a_participants_incidents() {
        assert!(IncidentLink::from_schema(&Schema::new()).is_none());
        let probe = IncidentLink::from_schema(&schema(&[
            ("by_company", &["company_id"]),
            ("by_company_participant", &["company_id", "participant_id"]),
        ]))
        .unwrap();
        assert_eq!(probe.index, "by_company_participant");
        assert!(probe.by_participant && probe.scoped);
        let scan = IncidentLink::from_schema(&schema(&[("by_company", &["company_id"])])).unwrap();
        assert_eq!(scan.index, "by_company");
        assert!(!scan.by_participant);
    }
}
