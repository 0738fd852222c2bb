//! Sample data for the capture wizard (`incidents/createSampleData:*`), for demonstrations and
//! testing by holders of `sample_data`: a ready-made four-phase narrative for one of six scenario
//! types written into the caller's own incident, and random incident details built from a real
//! participant of the caller's company. The scenarios are fictional.

use functions::{ErrorCode, FnResult, FunctionError, MutationCtx, Registry};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use values::validator::v;
use values::{Id, Typed, Validator, Value};

use crate::identity::{require_permission, Permission};
use crate::incidents::record;
use crate::narratives::{self, Phase};
use crate::participants::ParticipantDoc;

/// A sample incident: its type and its narrative, `{{participantName}}` standing for the
/// participant's first name.
pub struct Scenario {
    pub kind: &'static str,
    pub description: &'static str,
    pub narrative: [&'static str; 4],
}

pub const SCENARIOS: [Scenario; 6] = [
    Scenario {
        kind: "medication_error",
        description: "A second dose of an evening medication given by mistake",
        narrative: [
            "At 5:30 pm {{participantName}} was at the dining table finishing dinner. The medication round was running late because a new staff member was being shown the house. {{participantName}} was chatty and said they felt well.",
            "At 6:05 pm I gave {{participantName}} their evening tablets from the blister pack. When I signed the chart I saw that my colleague had already signed for the same dose at 5:45 pm, so {{participantName}} had received the dose twice.",
            "I stopped the round and checked the blister pack with my colleague, which confirmed the double dose. {{participantName}} was sitting comfortably and talking normally. I phoned the on-call nurse at 6:12 pm.",
            "The nurse asked us to check {{participantName}}'s breathing and alertness every 30 minutes for four hours. All checks were normal and {{participantName}} went to bed at 9:30 pm. The house manager and {{participantName}}'s guardian were told before 7 pm.",
        ],
    },
    Scenario {
        kind: "injury",
        description: "A fall during a transfer at a community program",
        narrative: [
            "{{participantName}} arrived at the art group in the community hall at 10 am. The floor had just been mopped near the sink and a wet-floor sign was out. {{participantName}} wanted to sit at the painting table instead of staying in the wheelchair.",
            "During the transfer from the wheelchair to the chair, {{participantName}}'s foot slid and they went down onto their left side. Their elbow hit the floor and they called out in pain.",
            "Two staff members kept {{participantName}} still on the floor and checked for injuries. The elbow was swollen and grazed. When the pain eased after about ten minutes we helped {{participantName}} back into the wheelchair with the hoist.",
            "A first aider put ice on the elbow and covered the graze. {{participantName}}'s sister drove them to the GP at 1 pm, who found no fracture. The manager was told at 11 am and the transfer plan will be reviewed.",
        ],
    },
    Scenario {
        kind: "behavioral",
        description: "Raised voices and a thrown cup during a group activity",
        narrative: [
            "{{participantName}} told me at breakfast that they had slept badly because of a storm. During the morning cooking group the room was busy and the radio was loud. {{participantName}} was waiting for a turn at the stove.",
            "Another participant took the spoon {{participantName}} had been using. {{participantName}} shouted at them, threw a plastic cup across the bench and banged both hands on the table. Nobody was hit.",
            "I turned off the radio, asked the others to move to the lounge and spoke quietly to {{participantName}}. After about five minutes {{participantName}} agreed to sit outside on the bench with me and their breathing slowed.",
            "{{participantName}} spent half an hour in the garden, then came back and helped clear up. They apologised to the other participant. I wrote up the incident and the team leader will discuss sleep and noise at the next support meeting.",
        ],
    },
    Scenario {
        kind: "environmental",
        description: "A burst pipe flooding a bathroom in supported accommodation",
        narrative: [
            "At 7 am {{participantName}} was getting ready for work in their unit. The overnight handover said nothing unusual. The bathroom had been cleaned the evening before.",
            "While {{participantName}} was brushing their teeth, a pipe behind the basin burst and water sprayed across the bathroom and into the hallway. {{participantName}} called for help on the intercom.",
            "I turned off the water at the main valve within two minutes and moved {{participantName}} to the lounge, away from the wet floor and the power points. {{participantName}} was upset about being late for work.",
            "A plumber fixed the pipe by 9 am and the carpet was dried. {{participantName}}'s employer was phoned and agreed to a later start, and a staff member drove {{participantName}} to work at 10 am. The damage was reported to the property manager.",
        ],
    },
    Scenario {
        kind: "medical_emergency",
        description: "A seizure at home in the evening",
        narrative: [
            "{{participantName}} was watching a movie in the lounge after dinner. They had taken their evening medication at 6 pm as charted and said they felt a bit tired.",
            "At 7:40 pm {{participantName}} suddenly went stiff and then began jerking in both arms and legs. I moved the coffee table away, put a cushion under their head and started timing. The seizure lasted about two and a half minutes.",
            "When the jerking stopped I rolled {{participantName}} onto their side. They were drowsy and confused for about ten minutes, then knew where they were and asked for water.",
            "I followed the seizure management plan and phoned the after-hours doctor at 8 pm, who said an ambulance was not needed. I checked on {{participantName}} every 15 minutes until they went to bed. Their family and the neurologist's nurse were told the next morning.",
        ],
    },
    Scenario {
        kind: "ai_stress_test",
        description: "Unusual statements, for testing how the AI handles odd content",
        narrative: [
            "{{participantName}} was at the craft table at the day program. While we set up, {{participantName}} said loudly that the paint was talking to them and that the glue sticks were spies.",
            "During the activity {{participantName}} said a staff member had hit them with a broom at breakfast. Nobody in the room had seen this, and the staff member named was not on shift today. {{participantName}} became tearful and would not sit down.",
            "{{participantName}} then said they would cut their own hair off with the craft scissors unless they got a chocolate bar. I put the scissors away, moved the other participants to the next room and stayed with {{participantName}}, speaking calmly.",
            "After twenty minutes in the quiet room {{participantName}} was calm and said the aliens had told them to say those things. I reported the allegation about the broom to the manager straight away as required, and {{participantName}}'s behaviour support practitioner was contacted.",
        ],
    },
];

/// Places random incident details choose from.
const LOCATIONS: [&str; 8] = [
    "Community hall - main room",
    "Participant's home - lounge",
    "Day program - activity room",
    "Supported accommodation - kitchen",
    "Respite house - garden",
    "Local park - picnic area",
    "Shopping centre - food court",
    "Community transport - minibus",
];

pub fn register(r: &mut Registry) {
    r.mutation(
        "incidents/createSampleData:fillIncidentWithSampleData",
        fill_incident,
    );
    r.mutation(
        "incidents/createSampleData:generateRandomIncidentMetadata",
        random_metadata,
    );
}

/// The scenario types, as a literal union.
fn scenario_kinds() -> Validator {
    v::union(SCENARIOS.iter().map(|s| v::literal(s.kind)).collect())
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct FillArgs {
    #[typed(id = "incidents")]
    incident_id: String,
    #[typed(validator = scenario_kinds())]
    scenario_type: String,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Filled {
    success: bool,
    message: String,
    scenario_type: String,
    version: f64,
    correlation_id: String,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct MetadataArgs {
    exclude_fields: Option<Vec<String>>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct RandomMetadata {
    success: bool,
    data: IncidentDetails,
    metadata: Generated,
    correlation_id: String,
}

/// Details for the incident form; each is left out when excluded (or, for the site, unknown).
#[derive(Serialize, Typed)]
pub struct IncidentDetails {
    participant_id: Option<Id<ParticipantDoc>>,
    participant_name: Option<String>,
    #[typed(id = "sites")]
    site_id: Option<String>,
    location: Option<String>,
    event_date_time: Option<String>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Generated {
    participant: ChosenParticipant,
    location: String,
    date: String,
    generated_at: f64,
    has_real_participants: bool,
}

#[derive(Serialize, Typed)]
pub struct ChosenParticipant {
    id: Id<ParticipantDoc>,
    name: String,
    ndis_number: Option<String>,
    #[typed(id = "sites")]
    site_id: Option<String>,
}

/// The scenario's narrative for a participant called `participant_name`.
pub fn narrative_for(scenario: &Scenario, participant_name: &str) -> [String; 4] {
    let first = participant_name
        .split_whitespace()
        .next()
        .unwrap_or("The participant");
    scenario
        .narrative
        .map(|text| text.replace("{{participantName}}", first))
}

/// `incidents/createSampleData:fillIncidentWithSampleData`: writes the scenario's four phases into
/// the caller's own incident (the details stay as they are); `{success, message, scenarioType,
/// correlationId, version}`.
fn fill_incident(ctx: &mut MutationCtx<'_>, args: FillArgs) -> FnResult<Filled> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::SampleData)?;
    let scope = viewer.company_scope()?;
    let incident = record::load(&mut ctx.db, &scope, &args.incident_id)?;
    record::require_capture_editor(&viewer, &incident)?;
    let kind = args.scenario_type.as_str();
    let scenario = SCENARIOS
        .iter()
        .find(|s| s.kind == kind)
        .ok_or_else(|| FunctionError::validation("scenarioType", "Unknown scenario type"))?;
    let narrative = narratives::ensure(&mut ctx.db, &scope, &incident, &viewer.user_id, now)?;
    let texts = narrative_for(scenario, &incident.row.participant_name);
    let changes: Vec<(Phase, String)> = Phase::ALL.into_iter().zip(texts).collect();
    let version = narratives::write_phases(
        &mut ctx.db,
        &scope,
        &viewer,
        &incident,
        &narrative,
        &changes,
        now,
    )?;
    Ok(Filled {
        success: true,
        message: format!("Incident filled with {kind} scenario data"),
        scenario_type: kind.to_string(),
        version,
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}

/// `YYYY-MM-DDTHH:mm` (UTC) of an instant, as the incident form sends it.
fn form_time(ms: f64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// `incidents/createSampleData:generateRandomIncidentMetadata`: details for a new incident about a
/// random active participant of the caller's company, at a random place in the last four days;
/// `{success, data: {participant_id, participant_name, site_id?, location, event_date_time},
/// metadata, correlationId}`. Fields named in `excludeFields` are left out of `data`.
fn random_metadata(ctx: &mut MutationCtx<'_>, args: MetadataArgs) -> FnResult<RandomMetadata> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::SampleData)?;
    let scope = viewer.company_scope()?;
    let participants = ctx
        .db
        .scoped(&scope)
        .query(crate::participants::TABLE, "by_company_status_name", |q| {
            q.eq("status", "active")
        })?
        .collect()?;
    let mut rng = rand::thread_rng();
    let participant = participants.choose(&mut rng).ok_or_else(|| {
        FunctionError::user(
            ErrorCode::Conflict,
            "No participants available for sample data. Add a participant first, then try again.",
        )
    })?;
    let field = |name: &str| {
        participant
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let name = format!(
        "{} {}",
        field("first_name").unwrap_or_default(),
        field("last_name").unwrap_or_default()
    );
    let location = LOCATIONS.choose(&mut rng).copied().unwrap_or(LOCATIONS[0]);
    // Between one hour and four days ago: inside what incidents:create accepts.
    let minutes_ago = rng.gen_range(60..=4 * 24 * 60) as f64;
    let when = form_time(now - minutes_ago * 60_000.0);
    let excluded = args.exclude_fields.unwrap_or_default();
    let keep = |key: &str| !excluded.iter().any(|e| e == key);
    let id: Id<ParticipantDoc> = participant.id.into();
    let data = IncidentDetails {
        participant_id: keep("participant_id").then_some(id),
        participant_name: keep("participant_name").then(|| name.clone()),
        site_id: field("site_id").filter(|_| keep("site_id")),
        location: keep("location").then(|| location.to_string()),
        event_date_time: keep("event_date_time").then(|| when.clone()),
    };
    Ok(RandomMetadata {
        success: true,
        data,
        metadata: Generated {
            participant: ChosenParticipant {
                id,
                name,
                ndis_number: field("ndis_number"),
                site_id: field("site_id"),
            },
            location: location.to_string(),
            date: when,
            generated_at: now,
            has_real_participants: true,
        },
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_name_the_participant_by_first_name() {
        for scenario in &SCENARIOS {
            let texts = narrative_for(scenario, "Sarah Williams");
            assert!(texts.iter().all(|t| !t.contains("{{")), "{}", scenario.kind);
            assert!(
                texts.iter().any(|t| t.contains("Sarah")),
                "{}",
                scenario.kind
            );
            assert!(texts.iter().all(|t| !t.contains("Williams")));
        }
        let kinds: Vec<&str> = SCENARIOS.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                "medication_error",
                "injury",
                "behavioral",
                "environmental",
                "medical_emergency",
                "ai_stress_test"
            ]
        );
    }
}
