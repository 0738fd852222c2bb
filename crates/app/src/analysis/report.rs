//! `analysis:exportReport`: the whole incident as one document, JSON or Markdown: the capture
//! (details, narrative with its enhanced version, clarification answers), the analysis
//! (conditions and the AI's original, classifications, reportable screening and the forms sent to
//! the Commission) and the audit trail. The PDF report builds on the same content.

use functions::{ActionCtx, FnResult, FunctionRef, QueryCtx, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use values::Typed;

use super::find_analysis;
use super::model::{AnalysisDoc, ClassificationDoc, ScreeningDoc};
use super::read::reader;
use crate::audit::{self, AuditDoc};
use crate::narratives::{self, Phase};

const BUILD: FunctionRef<ReportArgs, String> = FunctionRef::internal_query("analysis:buildReport");

pub fn register(r: &mut Registry) {
    r.internal_query(BUILD, build);
    r.action("analysis:exportReport", export);
}

#[derive(Clone, Copy, Serialize, Deserialize, Typed)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Markdown,
}

#[derive(Clone, Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct ReportArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    format: Format,
}

#[derive(Serialize, Typed)]
pub struct Exported {
    format: Format,
    content: String,
}

/// `analysis:exportReport`: `{format, content}`, the report as a string.
async fn export(ctx: ActionCtx, args: ReportArgs) -> FnResult<Exported> {
    let content = ctx.run_query(BUILD, &args).await?;
    Ok(Exported {
        format: args.format,
        content,
    })
}

struct Contents {
    incident: Json,
    phases: Vec<(Phase, String, Option<String>)>,
    answers: Vec<(String, String)>,
    analysis: Option<AnalysisDoc>,
    classifications: Vec<ClassificationDoc>,
    screening: Option<ScreeningDoc>,
    audit: Vec<AuditDoc>,
}

fn to_json<T: Serialize>(value: &T) -> FnResult<Json> {
    let value = values::serde_bridge::to_value(value)?;
    Ok(values::json::to_clean_json(&value))
}

fn build(ctx: &mut QueryCtx<'_>, args: ReportArgs) -> FnResult<String> {
    let now = ctx.now_ms();
    let (_, scope, incident) = reader(&mut ctx.db, ctx.auth, &args.incident_id, now)?;
    let narrative = narratives::find(&mut ctx.db, &scope, &incident.id)?;
    let phases = Phase::ALL
        .into_iter()
        .map(|p| {
            let original = narrative
                .as_ref()
                .map(|n| n.phase(p).to_string())
                .unwrap_or_default();
            let enhanced = narrative
                .as_ref()
                .and_then(|n| n.enhanced(p).map(str::to_string));
            (p, original, enhanced)
        })
        .collect();
    let answers =
        crate::clarification::questions_with_answers(&mut ctx.db, &scope, &incident.id, None)?
            .into_iter()
            .filter_map(|(q, a)| a.filter(|a| a.is_given()).map(|a| (q.text, a.text)))
            .collect();
    let contents = Contents {
        incident: to_json(&incident.public()?)?,
        phases,
        answers,
        analysis: find_analysis(&mut ctx.db, &scope, &incident.id)?,
        classifications: super::classification::of_incident(&mut ctx.db, &scope, &incident.id)?,
        screening: super::screening::find(&mut ctx.db, &scope, &incident.id)?,
        audit: audit::for_target(&mut ctx.db, &scope, &incident.id.encode())?,
    };
    match args.format {
        Format::Json => json_report(&contents),
        Format::Markdown => Ok(markdown_report(&contents)),
    }
}

fn json_report(c: &Contents) -> FnResult<String> {
    let narrative: Vec<Json> = c
        .phases
        .iter()
        .map(|(p, original, enhanced)| json!({"phase": p.as_str(), "original": original, "enhanced": enhanced}))
        .collect();
    let answers: Vec<Json> = c
        .answers
        .iter()
        .map(|(q, a)| json!({"question": q, "answer": a}))
        .collect();
    let report = json!({
        "incident": c.incident,
        "narrative": narrative,
        "clarification_answers": answers,
        "analysis": c.analysis.as_ref().map(to_json).transpose()?,
        "classifications": c.classifications.iter().map(to_json).collect::<FnResult<Vec<_>>>()?,
        "reportable_screening": c.screening.as_ref().map(to_json).transpose()?,
        "audit_trail": c.audit.iter().map(to_json).collect::<FnResult<Vec<_>>>()?,
    });
    serde_json::to_string_pretty(&report)
        .map_err(|e| functions::FunctionError::internal(e.to_string()))
}

fn field<'a>(incident: &'a Json, name: &str) -> &'a str {
    incident
        .get(name)
        .and_then(Json::as_str)
        .unwrap_or_default()
}

fn markdown_report(c: &Contents) -> String {
    let i = &c.incident;
    let mut out = format!(
        "# Incident report: {}\n\n- Reported by: {}\n- Location: {}\n- Date and time: {}\n- Status: {}\n\n## Narrative\n",
        field(i, "participant_name"),
        field(i, "reporter_name"),
        field(i, "location"),
        field(i, "event_date_time"),
        field(i, "overall_status"),
    );
    for (phase, original, enhanced) in &c.phases {
        out.push_str(&format!("\n### {}\n\n{}\n", phase.label(), original.trim()));
        if let Some(enhanced) = enhanced {
            out.push_str(&format!(
                "\n*With the follow-up answers:* {}\n",
                enhanced.trim()
            ));
        }
    }
    if !c.answers.is_empty() {
        out.push_str("\n## Clarification answers\n\n");
        for (q, a) in &c.answers {
            out.push_str(&format!("- **{}** {}\n", q.trim(), a.trim()));
        }
    }
    out.push_str("\n## Analysis\n\n");
    match &c.analysis {
        Some(a) => {
            out.push_str(&format!(
                "- Status: {}\n- Revision: {}\n\n",
                a.row.status.as_str(),
                a.row.revision
            ));
            out.push_str(&a.row.conditions_markdown);
        }
        None => out.push_str("Not started.\n"),
    }
    if !c.classifications.is_empty() {
        out.push_str("\n## Classifications\n\n");
        for cl in &c.classifications {
            let f = &cl.row.facts;
            out.push_str(&format!(
                "- {} ({}): {} severity, {} risk{}\n",
                f.incident_type.as_str(),
                f.rank.as_str(),
                f.severity.as_str(),
                f.risk_level.as_str(),
                if cl.row.user_reviewed {
                    ", reviewed"
                } else {
                    ", not reviewed"
                }
            ));
        }
    }
    out.push_str("\n## Reportable incident screening\n\n");
    match &c.screening {
        Some(s) => {
            let cats: Vec<&str> = s.row.categories.iter().map(|c| c.as_str()).collect();
            out.push_str(&format!(
                "- Decision: {}\n- Categories: {}\n- Harm caused: {}\n- Rationale: {}\n",
                s.row.decision.as_str(),
                if cats.is_empty() {
                    "none".to_string()
                } else {
                    cats.join(", ")
                },
                s.row.harm_caused,
                s.row.rationale
            ));
            for n in &s.row.notifications {
                out.push_str(&format!(
                    "- Commission notification ({}): reference {}\n",
                    n.form.as_str(),
                    n.reference
                ));
            }
        }
        None => out.push_str("Not screened.\n"),
    }
    out.push_str("\n## Audit trail\n\n");
    for entry in &c.audit {
        out.push_str(&format!("- {} at {}\n", entry.event, entry.at));
    }
    out
}
