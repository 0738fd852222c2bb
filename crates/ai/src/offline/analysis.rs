//! The offline answers of the three analysis prompts: contributing conditions, classification and
//! reportable screening. Each is built from the incident's own text by keyword, and every piece of
//! evidence is a sentence quoted from the narrative, so nothing is invented; a person reviews all
//! of it.

use serde_json::{json, Map, Value};

use super::{contains_word, sentences, CONDITIONS};

/// The prompts' narrative variables and the narrative phase each belongs to.
const SOURCES: [(&str, &str); 4] = [
    ("before_event", "before_event"),
    ("during_event", "during_event"),
    ("end_of_event", "end_event"),
    ("post_event_support", "post_event"),
];

/// Every sentence of the narrative (original, then enhanced), with its phase, without repeats.
fn pool(vars: &Map<String, Value>) -> Vec<(&'static str, String)> {
    let text = |name: &str| vars.get(name).and_then(Value::as_str).unwrap_or_default();
    let mut pool: Vec<(&'static str, String)> = Vec::new();
    for (var, phase) in SOURCES {
        for key in [var.to_string(), format!("{var}_extra")] {
            for s in sentences(text(&key)) {
                if !pool.iter().any(|(_, e)| *e == s) {
                    pool.push((phase, s));
                }
            }
        }
    }
    pool
}

/// The sentences that mention any of `words`, at most `max`.
fn matching<'a>(
    pool: &'a [(&'static str, String)],
    words: &[&str],
    max: usize,
) -> Vec<&'a (&'static str, String)> {
    pool.iter()
        .filter(|(_, s)| {
            let lower = s.to_lowercase();
            words.iter().any(|w| contains_word(&lower, w))
        })
        .take(max)
        .collect()
}

fn evidence(found: &[&(&'static str, String)]) -> Value {
    Value::Array(
        found
            .iter()
            .map(|(phase, quote)| json!({"phase": phase, "quote": quote}))
            .collect(),
    )
}

/// The kind of condition each of the provider's condition families is.
fn condition_type(title: &str) -> &'static str {
    match title {
        "Noisy, crowded or busy environment" => "environmental",
        "Change to routine or plans" => "procedural",
        "Physical discomfort, health or medication" => "medical",
        "Communication difficulty" => "communication",
        "Interaction with other people" => "behavioural",
        _ => "other",
    }
}

const INJURY: &[&str] = &[
    "injur",
    "bleed",
    "blood",
    "fracture",
    "broke her",
    "broke his",
    "broke their",
    "broken",
    "bruis",
    "cut ",
    "wound",
    "hospital",
    "ambulance",
    "unconscious",
    "stitches",
    "burn",
    "head injury",
];

const SERIOUS_INJURY: &[&str] = &[
    "fracture",
    "broke her",
    "broke his",
    "broke their",
    "broken",
    "hospital",
    "ambulance",
    "unconscious",
    "stitches",
    "head injury",
    "emergency department",
    "burn",
];

/// `{conditions: [Condition without id, status, source], confidence}`.
pub(super) fn contributing_conditions(vars: &Map<String, Value>) -> Value {
    let pool = pool(vars);
    let mut conditions = Vec::new();
    for (title, words) in CONDITIONS {
        let found = matching(&pool, words, 3);
        if found.is_empty() {
            continue;
        }
        let high = found.iter().any(|(_, s)| {
            let lower = s.to_lowercase();
            INJURY.iter().any(|w| contains_word(&lower, w))
        });
        conditions.push(json!({
            "type": condition_type(title),
            "title": title,
            "description": format!(
                "The report describes this {} time(s); see the quoted evidence.",
                found.len()
            ),
            "severity": if high { "high" } else { "medium" },
            "is_modifiable": true,
            "recommended_actions": [format!("Review with the team how to reduce: {}", title.to_lowercase())],
            "evidence": evidence(&found),
        }));
    }
    let confidence = if conditions.is_empty() { 0.2 } else { 0.5 };
    json!({"conditions": conditions, "confidence": confidence})
}

const TYPES: &[(&str, &[&str])] = &[
    (
        "behavioural",
        &[
            "hit", "threw", "yell", "shout", "scream", "push", "kick", "bit", "punch", "slap",
            "grab", "smash", "slam", "pacing", "refus",
        ],
    ),
    (
        "medical",
        &[
            "fell",
            "fall",
            "injur",
            "bleed",
            "seizure",
            "medication",
            "hospital",
            "ambulance",
            "pain",
            "unwell",
            "broke",
            "fracture",
        ],
    ),
    (
        "environmental",
        &[
            "loud", "noise", "noisy", "hot", "cold", "wet", "floor", "crowd", "alarm",
        ],
    ),
    (
        "communication",
        &[
            "understand",
            "confus",
            "communicat",
            "misunderstood",
            "repeat",
        ],
    ),
];

/// `{classifications: [{rank, incident_type, severity, risk_level, confidence, supporting_evidence,
/// recommended_actions}]}`: the best-supported type as primary, the others found as secondary.
pub(super) fn classify(vars: &Map<String, Value>) -> Value {
    let pool = pool(vars);
    let mut scored: Vec<(&str, Vec<&(&'static str, String)>)> = TYPES
        .iter()
        .map(|(t, words)| (*t, matching(&pool, words, 3)))
        .filter(|(_, found)| !found.is_empty())
        .collect();
    // Most evidence first; ties keep the table's order (stable sort).
    scored.sort_by_key(|s| std::cmp::Reverse(s.1.len()));
    let serious = !matching(&pool, SERIOUS_INJURY, 1).is_empty();
    let injured = !matching(&pool, INJURY, 1).is_empty();
    let (severity, risk) = match (serious, injured) {
        (true, _) => ("high", "high"),
        (false, true) => ("medium", "moderate"),
        _ => ("low", "low"),
    };
    let mut out = Vec::new();
    if scored.is_empty() {
        out.push(json!({
            "rank": "primary", "incident_type": "other", "severity": severity,
            "risk_level": risk, "confidence": 30,
            "supporting_evidence": [],
            "recommended_actions": ["Review the narrative with the reporter"],
        }));
    }
    for (i, (kind, found)) in scored.iter().enumerate() {
        let quotes: Vec<&str> = found.iter().map(|(_, s)| s.as_str()).collect();
        out.push(json!({
            "rank": if i == 0 { "primary" } else { "secondary" },
            "incident_type": kind,
            "severity": if i == 0 { severity } else { "low" },
            "risk_level": if i == 0 { risk } else { "low" },
            "confidence": (40 + 15 * found.len()).min(85),
            "supporting_evidence": quotes,
            "recommended_actions": [format!("Review the {kind} factors with the team")],
        }));
    }
    json!({"classifications": out})
}

const CATEGORIES: &[(&str, &[&str])] = &[
    ("death", &["died", "death", "passed away", "deceased"]),
    ("serious_injury", SERIOUS_INJURY),
    ("abuse_or_neglect", &["abuse", "neglect", "abandon"]),
    (
        "unlawful_contact_or_assault",
        &[
            "assault", "punched", "kicked", "slapped", "hit him", "hit her", "hit them",
        ],
    ),
    (
        "sexual_misconduct",
        &["sexual", "indecent", "grope", "inappropriate touch"],
    ),
    (
        "unauthorised_restrictive_practice",
        &[
            "restrain",
            "held down",
            "locked in",
            "locked the door",
            "seclu",
            "sedat",
            "pinned",
        ],
    ),
];

/// `{categories, harm_caused, rationale, evidence}`: each category whose words occur, with the
/// sentences that say so. A screen, not a decision: a person confirms.
pub(super) fn screen(vars: &Map<String, Value>) -> Value {
    let pool = pool(vars);
    let mut categories = Vec::new();
    let mut all: Vec<&(&'static str, String)> = Vec::new();
    for (category, words) in CATEGORIES {
        let found = matching(&pool, words, 2);
        if found.is_empty() {
            continue;
        }
        categories.push(*category);
        for f in found {
            if !all.contains(&f) {
                all.push(f);
            }
        }
    }
    let harm_caused = !matching(&pool, INJURY, 1).is_empty();
    let rationale = if categories.is_empty() {
        "The narrative does not mention death, serious injury, abuse or neglect, assault, sexual \
         misconduct or a restrictive practice. Confirm by reading it."
            .to_string()
    } else {
        format!(
            "The narrative mentions words associated with {}; the quoted sentences are the \
             evidence. A person must confirm whether the incident is reportable.",
            categories.join(", ").replace('_', " ")
        )
    };
    json!({
        "categories": categories,
        "harm_caused": harm_caused,
        "rationale": rationale,
        "evidence": evidence(&all),
    })
}
