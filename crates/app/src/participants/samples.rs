//! `participants/createSampleData:createSampleParticipants`: six fictional participants for
//! demonstrations (four active, one inactive, one discharged; mixed support levels) at the first
//! site of the caller's company, written through the module's own create path. Their NDIS numbers
//! are fixed, so a second run finds them and creates nothing.

use functions::{ErrorCode, FnResult, FunctionError, MutationCtx, Scope};
use serde::Serialize;
use values::{Id, Typed, Value};

use super::fields::{checked, ParticipantFields};
use super::{write, ParticipantDoc, TABLE};
use crate::args::SessionArgs;
use crate::identity::{require_permission, Permission};

/// A sample participant: first and last name, NDIS number, date of birth, support level, status,
/// phone, emergency contact and care notes. All invented.
struct Sample {
    first: &'static str,
    last: &'static str,
    ndis: &'static str,
    born: &'static str,
    level: &'static str,
    status: &'static str,
    phone: &'static str,
    emergency: &'static str,
    notes: &'static str,
}

const SAMPLES: [Sample; 6] = [
    Sample {
        first: "Maya",
        last: "Okonkwo",
        ndis: "700100201",
        born: "1991-04-12",
        level: "high",
        status: "active",
        phone: "0400 111 201",
        emergency: "Ada Okonkwo (mother) 0400 111 202",
        notes: "Uses a communication board; prefers a quiet room for meals.",
    },
    Sample {
        first: "Tobias",
        last: "Lindqvist",
        ndis: "700100202",
        born: "1985-09-30",
        level: "medium",
        status: "active",
        phone: "0400 111 203",
        emergency: "Greta Lindqvist (sister) 0400 111 204",
        notes: "Enjoys gardening; needs prompting for afternoon medication.",
    },
    Sample {
        first: "Priya",
        last: "Ramanathan",
        ndis: "700100203",
        born: "2001-01-23",
        level: "low",
        status: "active",
        phone: "0400 111 205",
        emergency: "Arun Ramanathan (father) 0400 111 206",
        notes: "Travels to work independently; check in by phone each morning.",
    },
    Sample {
        first: "Declan",
        last: "Fairweather",
        ndis: "700100204",
        born: "1978-06-05",
        level: "high",
        status: "active",
        phone: "0400 111 207",
        emergency: "Nora Fairweather (guardian) 0400 111 208",
        notes: "Two-person transfers with the hoist; skin checks twice daily.",
    },
    Sample {
        first: "Rosa",
        last: "Delgado",
        ndis: "700100205",
        born: "1996-11-17",
        level: "medium",
        status: "inactive",
        phone: "0400 111 209",
        emergency: "Luis Delgado (brother) 0400 111 210",
        notes: "Services paused while overseas with family.",
    },
    Sample {
        first: "Henry",
        last: "Whitcombe",
        ndis: "700100206",
        born: "1969-03-08",
        level: "low",
        status: "discharged",
        phone: "0400 111 211",
        emergency: "June Whitcombe (wife) 0400 111 212",
        notes: "Moved interstate to live closer to family.",
    },
];

const DISCHARGE_REASON: &str = "Moved to another provider after relocating interstate";

/// `{success: false, message, existingCount}` when samples exist, else `{success: true, message,
/// participantIds}`; both with the `correlationId`.
#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Samples {
    success: bool,
    message: String,
    existing_count: Option<usize>,
    participant_ids: Option<Vec<Id<ParticipantDoc>>>,
    correlation_id: String,
}

pub fn create_samples(ctx: &mut MutationCtx<'_>, _args: SessionArgs) -> FnResult<Samples> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::SampleData)?;
    let correlation_id = ctx.request_id.as_str().to_string();
    let Some(company) = viewer.company_id else {
        return Err(FunctionError::forbidden(
            "User must be associated with a company to create sample participants",
        ));
    };
    let scope = Scope::company(company);
    let mut existing = 0usize;
    for sample in &SAMPLES {
        let ndis = sample.ndis.to_string();
        let found = ctx
            .db
            .scoped(&scope)
            .query(TABLE, "by_company_ndis", |q| q.eq("ndis_number", ndis))?
            .first()?;
        existing += usize::from(found.is_some());
    }
    if existing > 0 {
        return Ok(Samples {
            success: false,
            message: "Sample participants already exist".into(),
            existing_count: Some(existing),
            participant_ids: None,
            correlation_id,
        });
    }
    // The first site the company got (normally the one it was created with).
    let site = crate::companies::sites_of(&mut ctx.db, &scope)?
        .into_iter()
        .min_by(|a, b| a.created_at.total_cmp(&b.created_at))
        .ok_or_else(|| {
            FunctionError::user(
                ErrorCode::Conflict,
                "No sites found in company. Please create a site first.",
            )
        })?;
    let site = site.id.encode();
    let mut ids = Vec::with_capacity(SAMPLES.len());
    for sample in &SAMPLES {
        let given = ParticipantFields {
            first_name: Some(sample.first.into()),
            last_name: Some(sample.last.into()),
            ndis_number: Some(sample.ndis.into()),
            date_of_birth: Some(sample.born.into()),
            support_level: Some(sample.level.into()),
            status: Some(sample.status.into()),
            contact_phone: Some(sample.phone.into()),
            emergency_contact: Some(sample.emergency.into()),
            care_notes: Some(sample.notes.into()),
        };
        let mut fields = checked(&given, now)?;
        if sample.status == super::fields::DISCHARGED {
            // Discharged participants always carry a reason (`updateParticipantStatus` asks for one).
            fields.insert(
                "discharge_reason".into(),
                Some(Value::from(DISCHARGE_REASON)),
            );
        }
        let id = write::insert(ctx, &viewer, &scope, fields, Some(&site))?;
        ids.push(id.into());
    }
    Ok(Samples {
        success: true,
        message: format!("Created {} sample participants", ids.len()),
        existing_count: None,
        participant_ids: Some(ids),
        correlation_id,
    })
}
