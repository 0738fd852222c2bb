//! The analysis stage's records: the shapes of a contributing condition, a classification and a
//! reportable screening, and the row types the four tables are declared from (so a row type and
//! its table cannot differ).

use serde::{Deserialize, Serialize};
use store::TableDef;
use values::{DocumentId, Id, Typed, Validator};

use crate::narratives::Phase;

pub const ANALYSES: &str = "incident_analysis";
pub const REVISIONS: &str = "incident_analysis_revisions";
pub const CLASSIFICATIONS: &str = "incident_classifications";
pub const SCREENINGS: &str = "reportable_screenings";

/// Declares an enum stored as text, with its values and a lenient parser for AI replies.
macro_rules! words {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Typed)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            /// Reads a value, tolerating case, spaces and hyphens (AI replies vary).
            pub fn parse(text: &str) -> Option<$name> {
                let t = text.trim().to_lowercase().replace([' ', '-'], "_");
                $name::ALL.iter().copied().find(|v| v.as_str() == t)
            }
        }
    };
}

words!(
    /// Where an analysis stands.
    AnalysisState {
        Draft = "draft",
        AiGenerated = "ai_generated",
        UserReviewed = "user_reviewed",
        Completed = "completed",
    }
);

words!(ConditionType {
    Environmental = "environmental",
    Behavioural = "behavioural",
    Medical = "medical",
    Communication = "communication",
    Procedural = "procedural",
    Other = "other",
});

words!(Severity {
    Low = "low",
    Medium = "medium",
    High = "high",
});

words!(ConditionStatus {
    Identified = "identified",
    Confirmed = "confirmed",
    Addressed = "addressed",
    Ongoing = "ongoing",
});

words!(
    /// Who wrote a condition.
    Source {
        Ai = "ai",
        User = "user",
    }
);

words!(Rank {
    Primary = "primary",
    Secondary = "secondary",
});

words!(IncidentType {
    Behavioural = "behavioural",
    Environmental = "environmental",
    Medical = "medical",
    Communication = "communication",
    Other = "other",
});

words!(RiskLevel {
    Minimal = "minimal",
    Low = "low",
    Moderate = "moderate",
    High = "high",
    Extreme = "extreme",
});

words!(
    /// The NDIS Commission's reportable incident categories.
    ReportableCategory {
        Death = "death",
        SeriousInjury = "serious_injury",
        AbuseOrNeglect = "abuse_or_neglect",
        UnlawfulContactOrAssault = "unlawful_contact_or_assault",
        SexualMisconduct = "sexual_misconduct",
        UnauthorisedRestrictivePractice = "unauthorised_restrictive_practice",
    }
);

words!(Decision {
    Pending = "pending",
    Reportable = "reportable",
    NotReportable = "not_reportable",
});

words!(
    /// The forms a provider submits to the Commission about a reportable incident.
    CommissionForm {
        Immediate = "immediate",
        FiveDay = "five_day",
        Final = "final",
    }
);

/// A quote from one phase of the narrative (original or enhanced text).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Typed)]
pub struct Evidence {
    pub phase: Phase,
    pub quote: String,
}

/// One contributing condition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Typed)]
pub struct Condition {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ConditionType,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub is_modifiable: bool,
    pub recommended_actions: Vec<String>,
    pub status: ConditionStatus,
    pub evidence: Vec<Evidence>,
    pub source: Source,
}

/// The fields of `incident_analysis`.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct AnalysisRow {
    #[typed(id = "incidents")]
    pub incident_id: DocumentId,
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    pub status: AnalysisState,
    #[typed(id = "users")]
    pub assigned_to: DocumentId,
    pub started_at: f64,
    pub conditions: Vec<Condition>,
    /// The AI's first list, never changed afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions_original: Option<Vec<Condition>>,
    pub conditions_markdown: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_version: Option<String>,
    pub revision: f64,
    pub total_edit_time_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[typed(id = "users")]
    pub completed_by: Option<DocumentId>,
    pub reopened_count: f64,
    pub created_at: f64,
    pub updated_at: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "incident_analysis")]
pub struct AnalysisDoc {
    #[serde(rename = "_id")]
    pub id: Id<AnalysisDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[serde(flatten)]
    pub row: AnalysisRow,
}

/// The fields of `incident_analysis_revisions`: the conditions as one save left them.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct RevisionRow {
    /// The analysis at the time; rows are found by incident (imports renumber ids).
    #[typed(id = "incident_analysis")]
    pub analysis_id: DocumentId,
    #[typed(id = "incidents")]
    pub incident_id: DocumentId,
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    pub revision: f64,
    pub conditions: Vec<Condition>,
    #[typed(id = "users")]
    pub edited_by: DocumentId,
    pub edited_at: f64,
    pub edit_time_ms: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "incident_analysis_revisions")]
pub struct RevisionDoc {
    #[serde(rename = "_id")]
    pub id: Id<RevisionDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[serde(flatten)]
    pub row: RevisionRow,
}

/// What the AI suggested for one classification, kept beside the reviewed one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Typed)]
pub struct ClassificationFacts {
    pub rank: Rank,
    pub incident_type: IncidentType,
    pub severity: Severity,
    pub risk_level: RiskLevel,
    pub confidence: f64,
    pub supporting_evidence: Vec<String>,
    pub recommended_actions: Vec<String>,
}

/// The fields of `incident_classifications`.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct ClassificationRow {
    #[typed(id = "incidents")]
    pub incident_id: DocumentId,
    #[typed(id = "incident_analysis")]
    pub analysis_id: DocumentId,
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    /// Stable within the incident (`cls_1`, ...).
    pub classification_id: String,
    #[serde(flatten)]
    pub facts: ClassificationFacts,
    pub ai_generated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_ai_classification: Option<ClassificationFacts>,
    pub user_reviewed: bool,
    pub user_modified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[typed(id = "users")]
    pub reviewed_by: Option<DocumentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<f64>,
    pub created_at: f64,
    pub updated_at: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "incident_classifications")]
pub struct ClassificationDoc {
    #[serde(rename = "_id")]
    pub id: Id<ClassificationDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[serde(flatten)]
    pub row: ClassificationRow,
}

/// What the AI's screening said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Typed)]
pub struct AiScreening {
    pub categories: Vec<ReportableCategory>,
    pub harm_caused: bool,
    pub rationale: String,
    pub evidence: Vec<Evidence>,
    pub model: String,
    pub at: f64,
}

/// A form submitted to the Commission.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Typed)]
pub struct CommissionNotification {
    pub form: CommissionForm,
    pub submitted_at: f64,
    pub reference: String,
    #[typed(id = "users")]
    pub recorded_by: DocumentId,
}

/// The fields of `reportable_screenings`.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct ScreeningRow {
    #[typed(id = "incidents")]
    pub incident_id: DocumentId,
    #[typed(id = "companies")]
    pub company_id: DocumentId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_suggestion: Option<AiScreening>,
    pub decision: Decision,
    pub categories: Vec<ReportableCategory>,
    pub harm_caused: bool,
    pub rationale: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[typed(id = "users")]
    pub decided_by: Option<DocumentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<f64>,
    /// When the provider became aware (ms); defaults to when the incident was recorded.
    pub aware_at: f64,
    /// The Commission's deadline for the immediate notification, while the decision is reportable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<f64>,
    pub notifications: Vec<CommissionNotification>,
    /// The scheduled reminders still to come (cancelled when the clock stops).
    pub reminder_ids: Vec<String>,
    /// The reminder points already sent (`50`, `75`, `90`, `overdue`), so none is sent twice.
    pub reminders_sent: Vec<String>,
}

impl ScreeningRow {
    /// Whether the notification clock runs: reportable, and no immediate notification yet.
    pub fn clock_running(&self) -> bool {
        self.decision == Decision::Reportable
            && !self
                .notifications
                .iter()
                .any(|n| n.form == CommissionForm::Immediate)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "reportable_screenings")]
pub struct ScreeningDoc {
    #[serde(rename = "_id")]
    pub id: Id<ScreeningDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[serde(flatten)]
    pub row: ScreeningRow,
}

/// A table whose fields are those of the row type `T`.
fn table_of<T: Typed>(name: &str) -> TableDef {
    let mut def = TableDef::new(name);
    if let Validator::Object(fields) = T::validator() {
        def.fields = fields;
    }
    def.tenant("company_id")
}

pub fn tables() -> Vec<TableDef> {
    vec![
        table_of::<AnalysisRow>(ANALYSES)
            .index("by_company_incident", &["company_id", "incident_id"]),
        table_of::<RevisionRow>(REVISIONS).index(
            "by_company_incident_revision",
            &["company_id", "incident_id", "revision"],
        ),
        table_of::<ClassificationRow>(CLASSIFICATIONS).index(
            "by_company_incident",
            &["company_id", "incident_id", "classification_id"],
        ),
        table_of::<ScreeningRow>(SCREENINGS)
            .index("by_company_incident", &["company_id", "incident_id"])
            .index(
                "by_company_decision_due",
                &["company_id", "decision", "due_at"],
            ),
    ]
}

pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![
        (ANALYSES, AnalysisDoc::validator()),
        (REVISIONS, RevisionDoc::validator()),
        (CLASSIFICATIONS, ClassificationDoc::validator()),
        (SCREENINGS, ScreeningDoc::validator()),
    ]
}
