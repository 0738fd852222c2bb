//! The incident document: its typed form, loading with tenant and ownership checks, and the one
//! write path that keeps the derived fields (overall and handoff status, sort keys) and the status
//! counts in step with every change.

use functions::{DbRead, DbWriter, FnResult, FunctionError, Scope};
use serde::{Deserialize, Serialize, Serializer};
use store::{Document, Patch};
use values::serde_bridge::{from_value, to_value};
use values::{DocumentId, Id, Typed, Validator, Value};

use super::counts;
use super::fields::Details;
use super::status::{self, AnalysisStatus, CaptureStatus, HandoffStatus, OverallStatus, State};
use super::submission::Checklist;
use super::TABLE;
use crate::identity::{Permission, Viewer};

/// Every field this module reads or writes. Fields other modules add to an incident are kept:
/// writes patch only the fields they change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Typed)]
pub struct IncidentRow {
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    #[typed(id = "sites")]
    pub site_id: DocumentId,
    pub reporter_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[typed(id = "participants")]
    pub participant_id: Option<DocumentId>,
    pub participant_name: String,
    pub event_date_time: String,
    pub event_at: f64,
    pub location: String,
    pub capture_status: CaptureStatus,
    pub analysis_status: AnalysisStatus,
    pub overall_status: OverallStatus,
    pub handoff_status: HandoffStatus,
    pub created_at: f64,
    #[typed(id = "users")]
    pub created_by: DocumentId,
    pub updated_at: f64,
    #[typed(id = "users")]
    pub updated_by: DocumentId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narrative_hash: Option<String>,
    #[serde(default)]
    pub questions_generated: bool,
    #[serde(default)]
    pub narrative_enhanced: bool,
    #[serde(default)]
    pub analysis_generated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_preview: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_completed_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[typed(id = "users")]
    pub submitted_by: Option<DocumentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_checklist: Option<Checklist>,
    /// The incident id this record was imported from (another company or deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
    /// Lower-cased names: the order of the participant and reporter sorts.
    #[serde(default)]
    pub participant_sort: String,
    #[serde(default)]
    pub reporter_sort: String,
}

/// Fields clients never see: derived sort keys.
pub const INTERNAL_FIELDS: [&str; 2] = ["participant_sort", "reporter_sort"];

/// A document of the incidents table, as stored (the row type checked against the table).
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "incidents")]
pub struct IncidentDoc {
    #[serde(rename = "_id")]
    pub id: Id<IncidentDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[serde(flatten)]
    pub row: IncidentRow,
}

/// An incident as clients see it: the stored document less the internal sort keys.
#[derive(Clone, Debug)]
pub struct PublicIncident(pub IncidentDoc);

impl Serialize for PublicIncident {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut value = to_value(&self.0).map_err(serde::ser::Error::custom)?;
        if let Value::Object(fields) = &mut value {
            for field in INTERNAL_FIELDS {
                fields.remove(field);
            }
        }
        value.serialize(serializer)
    }
}

impl Typed for PublicIncident {
    fn validator() -> Validator {
        match IncidentDoc::validator() {
            Validator::Object(mut fields) => {
                for field in INTERNAL_FIELDS {
                    fields.remove(field);
                }
                Validator::Object(fields)
            }
            other => other,
        }
    }
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![(TABLE, IncidentDoc::validator())]
}

impl IncidentRow {
    /// A new draft recorded by `created_by` at `now` (capture draft, analysis not started).
    pub fn new(
        company_id: DocumentId,
        site_id: DocumentId,
        participant_id: Option<DocumentId>,
        details: Details,
        created_by: DocumentId,
        now: f64,
    ) -> IncidentRow {
        let state = State::INITIAL;
        let mut row = IncidentRow {
            company_id,
            site_id,
            reporter_name: details.reporter_name,
            participant_id,
            participant_name: details.participant_name,
            event_date_time: details.event_date_time,
            event_at: details.event_at,
            location: details.location,
            capture_status: state.capture,
            analysis_status: state.analysis,
            overall_status: state.overall(),
            handoff_status: state.handoff(),
            created_at: now,
            created_by,
            updated_at: now,
            updated_by: created_by,
            narrative_hash: None,
            questions_generated: false,
            narrative_enhanced: false,
            analysis_generated: false,
            current_step: None,
            step_description: None,
            content_preview: None,
            workflow_completed_at: None,
            submitted_by: None,
            submitted_at: None,
            completion_checklist: None,
            imported_from: None,
            participant_sort: String::new(),
            reporter_sort: String::new(),
        };
        row.derive();
        row
    }

    pub fn state(&self) -> State {
        State {
            capture: self.capture_status,
            analysis: self.analysis_status,
        }
    }

    /// Makes the derived fields agree with the facts they come from.
    fn derive(&mut self) {
        let state = self.state();
        self.overall_status = state.overall();
        self.handoff_status = state.handoff();
        self.participant_sort = sort_key(&self.participant_name);
        self.reporter_sort = sort_key(&self.reporter_name);
    }
}

/// How names sort: trimmed and lower-cased, so "de Vries" sits with "De Vries".
pub fn sort_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// A stored incident.
#[derive(Clone, Debug)]
pub struct Incident {
    pub id: DocumentId,
    pub row: IncidentRow,
    pub doc: Document,
}

impl Incident {
    pub fn from_doc(doc: Document) -> FnResult<Incident> {
        let row: IncidentRow = from_value(&Value::Object(doc.fields.clone())).map_err(|e| {
            FunctionError::internal(format!("incident {} does not read back: {e}", doc.id))
        })?;
        Ok(Incident {
            id: doc.id,
            row,
            doc,
        })
    }

    /// The incident as clients see it: every stored field but the internal sort keys.
    pub fn public(&self) -> FnResult<PublicIncident> {
        public(&self.doc)
    }

    pub fn is_creator(&self, viewer: &Viewer) -> bool {
        self.row.created_by == viewer.user_id
    }

    /// The status machine's view of `viewer` acting on this incident.
    pub fn actor(&self, viewer: &Viewer) -> status::Actor {
        status::Actor {
            role: viewer.role,
            is_creator: self.is_creator(viewer),
        }
    }
}

/// A stored incident document as clients see it.
pub fn public(doc: &Document) -> FnResult<PublicIncident> {
    functions::row(doc).map(PublicIncident)
}

/// The one answer for missing incidents and other companies' incidents alike.
pub fn not_found() -> FunctionError {
    FunctionError::not_found("Incident not found")
}

/// The incident `id` names in the scope's company; anything else is "not found".
pub fn load(db: &mut impl DbRead, scope: &Scope, id: &str) -> FnResult<Incident> {
    let doc = db
        .read_scoped(scope)
        .get_in(TABLE, id)?
        .ok_or_else(not_found)?;
    Incident::from_doc(doc)
}

/// Whether `viewer` may read `incident` (already known to be in their company): everyone with
/// `view_all_company_incidents`, and its creator.
pub fn may_view(viewer: &Viewer, incident: &Incident) -> bool {
    viewer.has(Permission::ViewAllCompanyIncidents)
        || (incident.is_creator(viewer) && viewer.has(Permission::ViewMyIncidents))
}

pub fn require_view(viewer: &Viewer, incident: &Incident) -> FnResult<()> {
    if may_view(viewer, incident) {
        Ok(())
    } else {
        Err(FunctionError::forbidden(
            "Access denied: you can only view your own incidents",
        ))
    }
}

/// Capture (details, narrative, progress, submission) is edited by its creator only: no
/// permission in the matrix lets anyone edit someone else's capture.
pub fn require_capture_editor(viewer: &Viewer, incident: &Incident) -> FnResult<()> {
    viewer.require(Permission::EditOwnIncidentCapture)?;
    if !incident.is_creator(viewer) {
        return Err(FunctionError::forbidden(
            "Access denied: can only update your own incidents",
        ));
    }
    Ok(())
}

/// Refuses changes to a submitted capture (its details and narrative are what was handed over).
pub fn require_unlocked(incident: &Incident, what: &str) -> FnResult<()> {
    if incident.row.state().capture_locked() {
        return Err(FunctionError::field(
            functions::ErrorCode::Conflict,
            "capture_status",
            format!(
                "Cannot edit {what}: workflow has been completed and the incident was submitted for analysis"
            ),
        ));
    }
    Ok(())
}

/// Stores a new incident: derives overall and handoff status and the sort keys, and counts it.
pub fn insert(db: &mut DbWriter<'_>, scope: &Scope, mut row: IncidentRow) -> FnResult<DocumentId> {
    row.derive();
    let fields = to_value(&row)?
        .into_object()
        .ok_or_else(|| FunctionError::internal("an incident row is an object"))?;
    let id = db.scoped(scope).insert(TABLE, fields)?;
    counts::moved(
        db,
        scope,
        &row.created_by,
        None,
        Some(row.overall_status),
        row.updated_at,
    )?;
    Ok(id)
}

/// A change to a stored incident: fields to set or remove, and the new statuses if they change.
#[derive(Default)]
pub struct Change {
    pub patch: Patch,
    pub state: Option<State>,
}

impl Change {
    pub fn set(&mut self, field: &str, value: impl Into<Value>) -> &mut Change {
        self.patch.insert(field.to_string(), Some(value.into()));
        self
    }
    pub fn set_opt(&mut self, field: &str, value: Option<Value>) -> &mut Change {
        self.patch.insert(field.to_string(), value);
        self
    }
}

/// Applies `change` to `incident`, stamping who and when, re-deriving what depends on the changed
/// fields and moving the incident between status counts.
pub fn save(
    db: &mut DbWriter<'_>,
    scope: &Scope,
    incident: &Incident,
    change: Change,
    by: &DocumentId,
    now: f64,
) -> FnResult<()> {
    let Change { mut patch, state } = change;
    let before = incident.row.overall_status;
    let mut after = before;
    if let Some(state) = state {
        after = state.overall();
        let mut set = |field: &str, value: &str| {
            patch.insert(field.to_string(), Some(Value::from(value)));
        };
        set("capture_status", state.capture.as_str());
        set("analysis_status", state.analysis.as_str());
        set("overall_status", after.as_str());
        set("handoff_status", state.handoff().as_str());
    }
    for (name, key) in [
        ("participant_name", "participant_sort"),
        ("reporter_name", "reporter_sort"),
    ] {
        if let Some(Some(Value::String(text))) = patch.get(name) {
            let sort = sort_key(text);
            patch.insert(key.to_string(), Some(Value::from(sort)));
        }
    }
    patch.insert("updated_at".into(), Some(Value::from(now)));
    patch.insert("updated_by".into(), Some(Value::from(*by)));
    db.scoped(scope).patch(&incident.id, patch)?;
    counts::moved(
        db,
        scope,
        &incident.row.created_by,
        Some(before),
        Some(after),
        now,
    )
}
