//! Narratives: the frontline worker's account of an incident in four phases (before, during, end
//! and after the event), one record per incident. Every edit bumps the version and recomputes the
//! content hash; the AI-enhanced text of a phase lives beside the original in `<phase>_extra`, so
//! both are kept. Once the incident is submitted for analysis the narrative is read-only.

pub(crate) mod handlers;

use functions::{DbRead, DbWriter, FnResult, FunctionError, Registry, Scope};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::{Document, Patch, TableDef};
use values::validator::v;
use values::{DocumentId, Id, Object, Typed, Validator, Value};

use crate::identity::Viewer;
use crate::incidents::record::{self, Change, Incident};
use crate::incidents::status::{self, CaptureStatus, Request, Route};

pub const TABLE: &str = "incident_narratives";
/// Longest text of one phase.
pub const MAX_PHASE_CHARS: usize = 20_000;

/// The four phases of a narrative; on the wire, their stored names (`before_event`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Typed)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    BeforeEvent,
    DuringEvent,
    EndEvent,
    PostEvent,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::BeforeEvent,
        Phase::DuringEvent,
        Phase::EndEvent,
        Phase::PostEvent,
    ];

    /// The stored field and wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::BeforeEvent => "before_event",
            Phase::DuringEvent => "during_event",
            Phase::EndEvent => "end_event",
            Phase::PostEvent => "post_event",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Phase::BeforeEvent => "Before Event",
            Phase::DuringEvent => "During Event",
            Phase::EndEvent => "End Event",
            Phase::PostEvent => "Post Event",
        }
    }

    /// The field holding the AI-enhanced text of the phase.
    pub fn extra_field(self) -> &'static str {
        match self {
            Phase::BeforeEvent => "before_event_extra",
            Phase::DuringEvent => "during_event_extra",
            Phase::EndEvent => "end_event_extra",
            Phase::PostEvent => "post_event_extra",
        }
    }

    pub fn parse(value: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == value)
    }

    fn index(self) -> usize {
        Phase::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

pub fn tables() -> Vec<TableDef> {
    let table = TableDef::new(TABLE)
        .field("company_id", v::id("companies"))
        .field("incident_id", v::id("incidents"));
    let table = Phase::ALL.iter().fold(table, |t, phase| {
        t.field(phase.as_str(), v::string())
            .optional(phase.extra_field(), v::string())
    });
    vec![table
        .optional("consolidated_narrative", v::string())
        .optional("enhanced_at", v::number())
        // SHA-256 of the four original phases (see `content_hash`).
        .field("narrative_hash", v::string())
        .field("version", v::number())
        .field("created_at", v::number())
        .field("created_by", v::id("users"))
        .field("updated_at", v::number())
        .field("updated_by", v::id("users"))
        .index("by_company_incident", &["company_id", "incident_id"])
        .tenant("company_id")]
}

pub fn register(r: &mut Registry) {
    r.mutation("narratives:create", handlers::create);
    r.mutation("narratives:update", handlers::update);
    r.query("narratives:getByIncident", handlers::get);
    r.query("narratives:getByIncidentId", handlers::get);
    r.query("narratives:getConsolidated", handlers::consolidated);
    r.query("narratives:getStatsByIncidentId", handlers::stats);
}

/// A document of the narratives table, as stored and as clients see it.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "incident_narratives")]
pub struct NarrativeDoc {
    #[serde(rename = "_id")]
    pub id: Id<NarrativeDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    #[typed(id = "incidents")]
    pub incident_id: DocumentId,
    pub before_event: String,
    pub before_event_extra: Option<String>,
    pub during_event: String,
    pub during_event_extra: Option<String>,
    pub end_event: String,
    pub end_event_extra: Option<String>,
    pub post_event: String,
    pub post_event_extra: Option<String>,
    pub consolidated_narrative: Option<String>,
    pub enhanced_at: Option<f64>,
    pub narrative_hash: String,
    pub version: f64,
    pub created_at: f64,
    #[typed(id = "users")]
    pub created_by: DocumentId,
    pub updated_at: f64,
    #[typed(id = "users")]
    pub updated_by: DocumentId,
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![(TABLE, NarrativeDoc::validator())]
}

/// A stored narrative.
#[derive(Clone, Debug)]
pub struct Narrative {
    pub id: DocumentId,
    pub phases: [String; 4],
    /// The AI-enhanced text of each phase, once there is one.
    pub enhanced: [Option<String>; 4],
    pub version: f64,
    pub hash: String,
    pub doc: Document,
}

impl Narrative {
    fn from_doc(doc: Document) -> Narrative {
        let text = |field: &str| doc.get(field).and_then(Value::as_str).map(str::to_string);
        Narrative {
            id: doc.id,
            phases: Phase::ALL.map(|p| text(p.as_str()).unwrap_or_default()),
            enhanced: Phase::ALL.map(|p| text(p.extra_field()).filter(|t| !t.trim().is_empty())),
            version: doc.get("version").and_then(Value::as_f64).unwrap_or(1.0),
            hash: text("narrative_hash").unwrap_or_default(),
            doc,
        }
    }

    /// The document as clients see it.
    pub fn row(&self) -> FnResult<NarrativeDoc> {
        functions::row(&self.doc)
    }

    pub fn phase(&self, phase: Phase) -> &str {
        &self.phases[phase.index()]
    }

    pub fn enhanced(&self, phase: Phase) -> Option<&str> {
        self.enhanced[phase.index()].as_deref()
    }

    /// Whether every phase has been written (the checklist's `narratives_complete`).
    pub fn all_phases_written(&self) -> bool {
        self.phases.iter().all(|p| !p.trim().is_empty())
    }

    /// Whether any phase has an AI-enhanced version (the checklist's `enhancement_complete`).
    pub fn any_enhanced(&self) -> bool {
        self.enhanced.iter().any(Option::is_some)
    }

    pub fn public(&self) -> Value {
        self.doc.to_value()
    }
}

/// SHA-256 (hex) of the four phases, each length-prefixed so moving text between phases changes it.
pub fn content_hash(phases: &[String; 4]) -> String {
    let mut hasher = Sha256::new();
    for text in phases {
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The narrative of an incident in the scope's company, if one was created.
pub fn find(
    db: &mut impl DbRead,
    scope: &Scope,
    incident: &DocumentId,
) -> FnResult<Option<Narrative>> {
    let doc = db
        .read_scoped(scope)
        .query(TABLE, "by_company_incident", |q| {
            q.eq("incident_id", incident.encode())
        })?
        .first()?;
    Ok(doc.map(Narrative::from_doc))
}

/// The narrative `id` names in the scope's company, if any (another company's answers like a
/// missing one).
pub fn get(db: &mut impl DbRead, scope: &Scope, id: &str) -> FnResult<Option<Narrative>> {
    let doc = db.read_scoped(scope).get_in(TABLE, id)?;
    Ok(doc.map(Narrative::from_doc))
}

/// Creates the empty narrative of `incident` (version 1) unless it exists; returns its id.
pub fn ensure(
    db: &mut DbWriter<'_>,
    scope: &Scope,
    incident: &Incident,
    by: &DocumentId,
    now: f64,
) -> FnResult<Narrative> {
    if let Some(existing) = find(db, scope, &incident.id)? {
        return Ok(existing);
    }
    record::require_unlocked(incident, "narrative")?;
    let empty: [String; 4] = Default::default();
    let mut row = Object::new();
    row.insert("incident_id".into(), Value::from(incident.id));
    for phase in Phase::ALL {
        row.insert(phase.as_str().into(), Value::from(""));
    }
    row.insert("narrative_hash".into(), Value::from(content_hash(&empty)));
    row.insert("version".into(), Value::from(1.0));
    for field in ["created_at", "updated_at"] {
        row.insert(field.into(), Value::from(now));
    }
    for field in ["created_by", "updated_by"] {
        row.insert(field.into(), Value::from(*by));
    }
    let id = db.scoped(scope).insert(TABLE, row)?;
    let doc = db
        .scoped(scope)
        .get(&id)?
        .ok_or_else(|| FunctionError::internal("narrative vanished after insert"))?;
    Ok(Narrative::from_doc(doc))
}

/// Writes the phases given (others stay), bumps the version, recomputes the hash, copies the hash
/// to the incident, and moves a draft capture to `in_progress` once the narrative has content.
/// The caller has checked that `viewer` may edit the capture. Returns the new version.
pub fn write_phases(
    db: &mut DbWriter<'_>,
    scope: &Scope,
    viewer: &Viewer,
    incident: &Incident,
    narrative: &Narrative,
    changes: &[(Phase, String)],
    now: f64,
) -> FnResult<f64> {
    record::require_unlocked(incident, "narrative")?;
    let mut phases = narrative.phases.clone();
    let mut patch = Patch::new();
    for (phase, text) in changes {
        if text.chars().count() > MAX_PHASE_CHARS {
            return Err(FunctionError::validation(
                phase.as_str(),
                format!(
                    "Validation failed: the {} narrative must not exceed {MAX_PHASE_CHARS} characters",
                    phase.label()
                ),
            ));
        }
        phases[phase.index()] = text.clone();
        patch.insert(phase.as_str().into(), Some(Value::from(text.as_str())));
    }
    let hash = content_hash(&phases);
    let version = narrative.version + 1.0;
    patch.insert("narrative_hash".into(), Some(Value::from(hash.as_str())));
    patch.insert("version".into(), Some(Value::from(version)));
    patch.insert("updated_at".into(), Some(Value::from(now)));
    patch.insert("updated_by".into(), Some(Value::from(viewer.user_id)));
    db.scoped(scope).patch(&narrative.id, patch)?;

    let mut change = Change::default();
    change.set("narrative_hash", hash.as_str());
    let has_content = phases.iter().any(|p| !p.trim().is_empty());
    let state = incident.row.state();
    if has_content && state.capture == CaptureStatus::Draft {
        let next = status::transition(
            state,
            Request::Capture(CaptureStatus::InProgress),
            incident.actor(viewer),
            Route::StatusUpdate,
        )?;
        change.state = Some(next);
    }
    record::save(db, scope, incident, change, &viewer.user_id, now)?;
    Ok(version)
}

/// Stores the AI-enhanced text of one phase beside the original (for the AI layer's enhancement
/// step): `<phase>_extra`, `enhanced_at`, a version bump, and `narrative_enhanced` on the
/// incident. Refused once the incident is submitted. The caller has checked access.
pub fn write_enhancement(
    db: &mut DbWriter<'_>,
    scope: &Scope,
    incident: &Incident,
    narrative: &Narrative,
    (phase, text): (Phase, &str),
    by: &DocumentId,
    now: f64,
) -> FnResult<f64> {
    record::require_unlocked(incident, "narrative")?;
    let version = narrative.version + 1.0;
    let mut patch = Patch::new();
    patch.insert(phase.extra_field().into(), Some(Value::from(text)));
    patch.insert("enhanced_at".into(), Some(Value::from(now)));
    patch.insert("version".into(), Some(Value::from(version)));
    patch.insert("updated_at".into(), Some(Value::from(now)));
    patch.insert("updated_by".into(), Some(Value::from(*by)));
    db.scoped(scope).patch(&narrative.id, patch)?;
    let mut change = Change::default();
    change.set("narrative_enhanced", true);
    record::save(db, scope, incident, change, by, now)?;
    Ok(version)
}

/// `**Before Event**: …` paragraphs of the written phases, as the reference's consolidated view.
pub fn consolidated_text(narrative: &Narrative) -> String {
    Phase::ALL
        .iter()
        .filter(|p| !narrative.phase(**p).trim().is_empty())
        .map(|p| format!("**{}**: {}", p.label(), narrative.phase(*p)))
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_phase_and_its_boundaries() {
        let phases =
            |a: &str, b: &str| [a.to_string(), b.to_string(), String::new(), String::new()];
        let base = content_hash(&phases("ab", "c"));
        assert_eq!(base.len(), 64);
        assert_eq!(base, content_hash(&phases("ab", "c")));
        assert_ne!(base, content_hash(&phases("a", "bc")));
        assert_ne!(base, content_hash(&phases("ab", "C")));
    }
}
