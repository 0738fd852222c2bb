//! The prompts seeded on first start: the names and variables of the reference (§6), our own
//! wording for NDIS incident work (plain English, observable facts, dignity, nothing invented, the
//! reporter's voice kept), and the groups they are shown in.

use ai::template::{VarKind, VariableSpec};

pub const SUBSYSTEM: &str = "incidents";
pub const VERSION: &str = "v1.0.0";
pub const TEMPERATURE: f64 = 0.3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 2] = [OutputFormat::Text, OutputFormat::Json];
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Text => "text",
            OutputFormat::Json => "json",
        }
    }
    pub fn parse(s: &str) -> Option<OutputFormat> {
        OutputFormat::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// A group the admin screens show prompts in: name, description, order.
pub const GROUPS: [(&str, &str); 4] = [
    (
        "Clarification questions",
        "Follow-up questions for each phase of an incident narrative",
    ),
    (
        "Narrative enhancement",
        "Merging the answers into each phase of the narrative",
    ),
    (
        "Incident analysis",
        "Contributing conditions, classification and reportable screening for team leaders",
    ),
    (
        "Sample data",
        "Fictional answers for demonstrations and tests",
    ),
];

pub struct DefaultPrompt {
    pub name: String,
    pub description: String,
    pub workflow_step: &'static str,
    /// One of `GROUPS`.
    pub group: &'static str,
    pub display_order: f64,
    pub output_format: OutputFormat,
    pub max_tokens: f64,
    pub template: String,
    pub variables: Vec<VariableSpec>,
}

/// The four narrative phases: key, variable name, heading, and what the phase covers.
pub const PHASES: [(&str, &str, &str, &str); 4] = [
    (
        "before_event",
        "beforeEvent",
        "BEFORE the incident",
        "the lead-up: where the participant was, what they were doing, how they seemed, and anything that changed",
    ),
    (
        "during_event",
        "duringEvent",
        "DURING the incident",
        "what happened while the incident was taking place, in the order it happened",
    ),
    (
        "end_event",
        "endEvent",
        "the END of the incident",
        "how the incident came to an end and what helped it settle",
    ),
    (
        "post_event",
        "postEvent",
        "AFTER the incident",
        "the first four hours after the incident: care and first aid given, who was told, and how the participant was",
    ),
];

fn string(name: &str, required: bool, description: &str) -> VariableSpec {
    VariableSpec {
        name: name.to_string(),
        kind: VarKind::String,
        required,
        // An optional variable left out renders as empty text; saying so keeps the check honest.
        default: (!required).then(|| serde_json::Value::String(String::new())),
        description: Some(description.to_string()),
    }
}

const DETAILS: &str = "Incident details
- Participant: {{participantName}}
- Reported by: {{reporterName}}
- Location: {{location}}
- Date and time: {{eventDateTime}}";

fn context_variables() -> Vec<VariableSpec> {
    vec![
        string("participantName", true, "The participant's name"),
        string("reporterName", true, "The name of the worker reporting"),
        string("location", true, "Where the incident happened"),
        string("eventDateTime", true, "When the incident happened"),
    ]
}

fn clarification(order: f64, phase: (&str, &str, &str, &str)) -> DefaultPrompt {
    let (key, var, heading, covers) = phase;
    let template = format!(
        "You help disability support workers write clear, factual NDIS incident reports.

{DETAILS}

The worker's account of {heading} ({covers}):
\"\"\"
{{{{{var}}}}}
\"\"\"

Write 3 to 5 follow-up questions that would help the worker fill the gaps in this part of the account.
- Ask about what was seen, heard or done, not about opinions, blame or diagnoses.
- Build each question on something the account says, or on something important it leaves out.
- Use plain, everyday English and short sentences: many workers speak English as a second language.
- Ask open questions (what, where, when, who, how), never ones answered by yes or no.
- Refer to {{{{participantName}}}} by name and with respect; do not guess what they thought or felt.
- Do not ask about anything the account already answers clearly.

Reply with JSON only: an array of 3 to 5 objects, each with the keys \"question\" (the question to ask the worker) and \"purpose\" (one short sentence on why the answer matters), like
[{{\"question\": \"...\", \"purpose\": \"...\"}}]"
    );
    let mut variables = context_variables();
    variables.push(string(
        var,
        true,
        &format!("The worker's account of {}", heading.to_lowercase()),
    ));
    DefaultPrompt {
        name: format!("generate_clarification_questions_{key}"),
        description: format!(
            "Follow-up questions about {} in an incident narrative",
            heading.to_lowercase()
        ),
        workflow_step: "clarification_questions",
        group: GROUPS[0].0,
        display_order: order,
        output_format: OutputFormat::Json,
        max_tokens: 2000.0,
        template,
        variables,
    }
}

fn enhancement(order: f64, phase: (&str, &str, &str, &str)) -> DefaultPrompt {
    let (key, var, heading, _) = phase;
    let template = format!(
        "You help disability support workers turn their notes into a clear NDIS incident report without changing what they reported.

{DETAILS}

The worker's account of {heading}:
\"\"\"
{{{{{var}}}}}
\"\"\"

The worker's answers to follow-up questions about this part (Q: question, A: answer):
\"\"\"
{{{{{var}QA}}}}
\"\"\"

Rewrite this part of the account as one clear passage that includes the facts given in the answers.
- Keep the worker's voice: their point of view, their order of events, and their own words where they are clear.
- Fix spelling and grammar, and place each answer where it belongs in the account.
- Add nothing that the account and the answers do not say: no guessed causes, feelings or diagnoses, and no invented times, names or actions.
- Describe {{{{participantName}}}} with dignity and respect; describe behaviour as what was seen and heard, without labels.
- Leave out answers that are blank or say the worker does not know.

Reply with the rewritten passage only, as plain text without headings."
    );
    let mut variables = context_variables();
    variables.push(string(
        var,
        true,
        &format!("The worker's account of {}", heading.to_lowercase()),
    ));
    variables.push(string(
        &format!("{var}QA"),
        false,
        "The follow-up questions and answers for this phase, as \"Q: ...\\nA: ...\" lines",
    ));
    DefaultPrompt {
        name: format!("enhance_narrative_{key}"),
        description: format!(
            "Merges the follow-up answers into the account of {}",
            heading.to_lowercase()
        ),
        workflow_step: "narrative_enhancement",
        group: GROUPS[1].0,
        display_order: order,
        output_format: OutputFormat::Text,
        max_tokens: 4000.0,
        template,
        variables,
    }
}

fn mock_answers() -> DefaultPrompt {
    let template = "You write realistic sample answers for demonstrating and testing an NDIS incident reporting tool. The answers are fictional and never become part of a real report.

Incident details
- Participant: {{participant_name}}
- Reported by: {{reporter_name}}
- Location: {{location}}
- Part of the incident: {{phase}}

The account of this part of the incident:
\"\"\"
{{phase_narrative}}
\"\"\"

The follow-up questions, as JSON (each with a question_id and its question):
{{questions}}

Write one answer to each question, as the support worker who wrote the account would give it.
- Stay consistent with the account: do not contradict it or add dramatic new events.
- Describe what was seen, heard and done, in plain English, in one to three sentences.
- Refer to the participant by name and with respect.

Reply with JSON only, in this form:
{\"answers\": [{\"question_id\": \"...\", \"answer\": \"...\"}]}"
        .to_string();
    let variables = vec![
        string("participant_name", true, "The participant's name"),
        string("reporter_name", true, "The name of the worker reporting"),
        string("location", true, "Where the incident happened"),
        string("phase", true, "The narrative phase the questions are about"),
        string("phase_narrative", true, "The account of that phase"),
        string(
            "questions",
            true,
            "The questions as a JSON array of {question_id, question}",
        ),
    ];
    DefaultPrompt {
        name: "generate_mock_answers".to_string(),
        description: "Fictional answers to clarification questions, for demonstrations and tests"
            .to_string(),
        workflow_step: "sample_data",
        group: GROUPS[3].0,
        display_order: 1.0,
        output_format: OutputFormat::Json,
        max_tokens: 5000.0,
        template,
        variables,
    }
}

/// The narrative sections every analysis prompt is given: variable and heading.
const ANALYSIS_SECTIONS: [(&str, &str); 4] = [
    ("before_event", "Before the incident"),
    ("during_event", "During the incident"),
    ("end_of_event", "End of the incident"),
    ("post_event_support", "Support after the incident"),
];

/// The whole capture record as the analysis prompts see it: details, the four phases with their
/// enhanced versions, and the clarification answers; and its variables.
fn analysis_record() -> (String, Vec<VariableSpec>) {
    let mut report = String::from(
        "Incident details
- Participant: {{participant_name}}
- Reported by: {{reporter_name}}
- Location: {{location}}
- Date and time: {{event_datetime}}

",
    );
    let mut variables = vec![
        string("reporter_name", true, "The name of the worker who reported"),
        string("participant_name", true, "The participant's name"),
        string("event_datetime", true, "When the incident happened"),
        string("location", true, "Where the incident happened"),
    ];
    for (var, heading) in ANALYSIS_SECTIONS {
        report.push_str(&format!(
            "{heading} (phase \"{phase}\"):\n\"\"\"\n{{{{{var}}}}}\n\"\"\"\n\n{heading}, with the follow-up answers merged in:\n\"\"\"\n{{{{{var}_extra}}}}\n\"\"\"\n\n",
            phase = narrative_phase(var),
        ));
        variables.push(string(
            var,
            true,
            &format!("The narrative: {}", heading.to_lowercase()),
        ));
        variables.push(string(
            &format!("{var}_extra"),
            false,
            &format!("The enhanced narrative: {}", heading.to_lowercase()),
        ));
    }
    report.push_str(
        "The worker's answers to the follow-up questions:\n\"\"\"\n{{clarification_answers}}\n\"\"\"\n\n",
    );
    variables.push(string(
        "clarification_answers",
        false,
        "The answered follow-up questions, as \"Q: ...\\nA: ...\" lines",
    ));
    (report, variables)
}

/// The narrative phase key a section's evidence names.
fn narrative_phase(var: &str) -> &'static str {
    match var {
        "before_event" => "before_event",
        "during_event" => "during_event",
        "end_of_event" => "end_event",
        _ => "post_event",
    }
}

const EVIDENCE_RULE: &str = "- Evidence is a quote: copy words exactly as they appear in one phase's text (original or merged), and name that phase (before_event, during_event, end_event or post_event). Quotes that do not appear in the report are discarded.";

fn analysis_prompt(
    name: &str,
    description: &str,
    order: f64,
    task: &str,
    reply: &str,
) -> DefaultPrompt {
    let (record, variables) = analysis_record();
    let template = format!(
        "You support a team leader who reviews NDIS incident reports.

{record}{task}
- Use only what the report says; leave out anything it does not support.
- Describe behaviour neutrally and the participant with dignity. Do not blame individuals and do not diagnose.
{EVIDENCE_RULE}
- Use plain English.

Reply with JSON only, in this form:
{reply}"
    );
    DefaultPrompt {
        name: name.to_string(),
        description: description.to_string(),
        workflow_step: "incident_analysis",
        group: GROUPS[2].0,
        display_order: order,
        output_format: OutputFormat::Json,
        max_tokens: 3000.0,
        template,
        variables,
    }
}

/// The reference keeps this one in documents only (`docs/prompts/ndis-original/`, in Markdown);
/// here it answers with structured conditions so the team lead can edit each one.
fn contributing_conditions() -> DefaultPrompt {
    analysis_prompt(
        "analyze_contributing_conditions",
        "The immediate contributing conditions of a submitted incident, with quoted evidence",
        1.0,
        "Identify the immediate contributing conditions of this incident. A contributing condition is a circumstance present at the time that made the incident more likely or more serious: for example the environment, staffing, communication, a change of routine, health, pain or sensory factors. List the most significant first.",
        r#"{"conditions": [{"type": "environmental|behavioural|medical|communication|procedural|other", "title": "...", "description": "...", "severity": "low|medium|high", "is_modifiable": true, "recommended_actions": ["..."], "evidence": [{"phase": "during_event", "quote": "..."}]}], "confidence": 0.0}"#,
    )
}

fn classification() -> DefaultPrompt {
    analysis_prompt(
        "classify_incident",
        "One primary and any secondary classifications of a submitted incident",
        2.0,
        "Classify this incident: exactly one primary classification, and secondary ones only where the report clearly supports them. Severity is about the harm and its likely impact; risk level is about how likely and how serious a repeat would be. Confidence is a whole number from 0 to 100. Supporting evidence items are quotes from the report.",
        r#"{"classifications": [{"rank": "primary|secondary", "incident_type": "behavioural|environmental|medical|communication|other", "severity": "low|medium|high", "risk_level": "minimal|low|moderate|high|extreme", "confidence": 0, "supporting_evidence": ["..."], "recommended_actions": ["..."]}]}"#,
    )
}

fn reportable_screening() -> DefaultPrompt {
    analysis_prompt(
        "screen_reportable_incident",
        "Screens a submitted incident against the NDIS Commission's six reportable categories",
        3.0,
        "Screen this incident against the NDIS Commission's reportable incident categories: death (death), serious injury (serious_injury), abuse or neglect (abuse_or_neglect), unlawful physical or sexual contact with, or assault of, the participant (unlawful_contact_or_assault), sexual misconduct (sexual_misconduct), and the use of a restrictive practice that was not authorised or not in line with a behaviour support plan (unauthorised_restrictive_practice). Name every category the report supports, say whether the participant was harmed, and explain why in two or three sentences. A person makes the decision; say so when the report is unclear.",
        r#"{"categories": ["serious_injury"], "harm_caused": true, "rationale": "...", "evidence": [{"phase": "during_event", "quote": "..."}]}"#,
    )
}

/// Every default prompt, in display order.
pub fn all() -> Vec<DefaultPrompt> {
    let mut prompts: Vec<DefaultPrompt> = PHASES
        .iter()
        .enumerate()
        .map(|(i, phase)| clarification(i as f64 + 1.0, *phase))
        .collect();
    prompts.extend(
        PHASES
            .iter()
            .enumerate()
            .map(|(i, phase)| enhancement(i as f64 + 1.0, *phase)),
    );
    prompts.push(mock_answers());
    prompts.push(contributing_conditions());
    prompts.push(classification());
    prompts.push(reportable_screening());
    prompts
}

/// The default of `name`, if it has one.
pub fn find(name: &str) -> Option<DefaultPrompt> {
    all().into_iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ai::template::{check, render};
    use serde_json::{Map, Value};

    #[test]
    fn every_default_passes_the_save_time_check_and_renders() {
        let prompts = all();
        assert_eq!(prompts.len(), 12);
        for prompt in &prompts {
            let template = check(&prompt.template, &prompt.variables)
                .unwrap_or_else(|issues| panic!("{}: {issues:?}", prompt.name));
            let values: Map<String, Value> = prompt
                .variables
                .iter()
                .filter(|v| v.required)
                .map(|v| (v.name.clone(), Value::String(format!("<{}>", v.name))))
                .collect();
            let rendered = render(&template, &prompt.variables, &values).unwrap();
            for v in prompt.variables.iter().filter(|v| v.required) {
                assert!(
                    rendered.text.contains(&format!("<{}>", v.name)),
                    "{}",
                    prompt.name
                );
            }
            assert!(!rendered.text.contains("{{"), "{}", prompt.name);
            assert!(GROUPS.iter().any(|(g, _)| *g == prompt.group));
        }
    }

    #[test]
    fn the_reference_names_and_variables_are_kept() {
        let names: Vec<String> = all().into_iter().map(|p| p.name).collect();
        for phase in ["before_event", "during_event", "end_event", "post_event"] {
            assert!(names.contains(&format!("generate_clarification_questions_{phase}")));
            assert!(names.contains(&format!("enhance_narrative_{phase}")));
        }
        let enhance = find("enhance_narrative_post_event").unwrap();
        let vars: Vec<&str> = enhance.variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            vars,
            [
                "participantName",
                "reporterName",
                "location",
                "eventDateTime",
                "postEvent",
                "postEventQA"
            ]
        );
        assert_eq!(enhance.max_tokens, 4000.0);
        assert_eq!(find("generate_mock_answers").unwrap().max_tokens, 5000.0);
        assert!(find("no_such_prompt").is_none());
    }
}
