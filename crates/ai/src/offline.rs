//! The offline provider: deterministic answers built from the request's variables, so the whole
//! incident workflow can be completed with no network. It never invents facts about the incident
//! except in `generate_mock_answers`, whose purpose is sample data.

use serde_json::{json, Map, Value};

use crate::error::{AiError, AiErrorCode};
use crate::request::ChatRequest;

pub const PROVIDER: &str = "offline";
pub const MODEL: &str = "offline";

mod analysis;

const PHASES: [(&str, &str); 4] = [
    ("before_event", "beforeEvent"),
    ("during_event", "duringEvent"),
    ("end_event", "endEvent"),
    ("post_event", "postEvent"),
];

/// The reply text for `req`, or `AI_UNSUPPORTED` for an operation it does not know.
pub fn answer(req: &ChatRequest) -> Result<String, AiError> {
    let op = req.operation.as_str();
    let vars = Vars(&req.variables);
    if let Some(phase) = op.strip_prefix("generate_clarification_questions_") {
        let var = phase_var(phase, op)?;
        return Ok(clarification_questions(phase, var, &vars).to_string());
    }
    if let Some(phase) = op.strip_prefix("enhance_narrative_") {
        let var = phase_var(phase, op)?;
        return Ok(enhance(var, &vars));
    }
    match op {
        "generate_mock_answers" => Ok(mock_answers(&vars).to_string()),
        "analyze_contributing_conditions" => Ok(analysis::contributing_conditions(&req.variables).to_string()),
        "classify_incident" => Ok(analysis::classify(&req.variables).to_string()),
        "screen_reportable_incident" => Ok(analysis::screen(&req.variables).to_string()),
        _ => Err(AiError::new(
            AiErrorCode::Unsupported,
            format!(
                "the offline provider cannot perform {op:?}; configure LLM_BASE_URL or ANTHROPIC_API_KEY for it"
            ),
        )),
    }
}

fn phase_var(phase: &str, op: &str) -> Result<&'static str, AiError> {
    PHASES
        .iter()
        .find(|(p, _)| *p == phase)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            AiError::new(
                AiErrorCode::Unsupported,
                format!("the offline provider does not know the phase in {op:?}"),
            )
        })
}

/// Variable lookup that tolerates absent or non-string values.
struct Vars<'a>(&'a Map<String, Value>);

impl Vars<'_> {
    fn text(&self, name: &str) -> String {
        match self.0.get(name) {
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    }

    fn or(&self, name: &str, fallback: &str) -> String {
        let t = self.text(name);
        if t.is_empty() {
            fallback.to_string()
        } else {
            t
        }
    }
}

/// Sentences of a narrative (split at `.`, `!`, `?` and line ends), trimmed, non-empty.
pub(crate) fn sentences(text: &str) -> Vec<String> {
    text.split(['.', '!', '?', '\n'])
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| s.split_whitespace().count() >= 2)
        .collect()
}

/// A sentence short enough to quote in a question.
fn quote(sentence: &str) -> String {
    let words: Vec<&str> = sentence.split_whitespace().collect();
    if words.len() > 14 {
        format!("“{}…”", words[..14].join(" "))
    } else {
        format!("“{}”", words.join(" "))
    }
}

const ACTIONS: &[&str] = &[
    "hit",
    "threw",
    "throw",
    "yell",
    "shout",
    "scream",
    "push",
    "kick",
    "bit",
    "bite",
    "punch",
    "slap",
    "grab",
    "fell",
    "fall",
    "ran",
    "run",
    "cry",
    "cried",
    "refus",
    "broke",
    "smash",
    "slam",
    "bang",
    "swore",
    "spat",
    "scratch",
    "hurt",
    "injur",
    "upset",
    "angry",
    "agitat",
    "distress",
    "left",
    "walked out",
    "climb",
    "self-harm",
    "head-butt",
    "pacing",
    "paced",
    "said no",
    "swear",
];

/// The first sentence that describes something someone did or showed.
fn action_sentence(sents: &[String]) -> Option<&String> {
    sents.iter().find(|s| {
        let lower = s.to_lowercase();
        ACTIONS.iter().any(|a| lower.contains(a))
    })
}

const NOT_NAMES: &[&str] = &[
    "I",
    "The",
    "A",
    "An",
    "He",
    "She",
    "They",
    "We",
    "It",
    "His",
    "Her",
    "Their",
    "Our",
    "My",
    "At",
    "After",
    "Before",
    "When",
    "Then",
    "This",
    "That",
    "There",
    "Staff",
    "Support",
    "Worker",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "NDIS",
    "AM",
    "PM",
    "OK",
];

/// Capitalised words (and runs of them) that do not start a sentence: names of people and
/// places, in order of appearance, each once, leaving out `exclude` (people already named).
fn proper_names(text: &str, exclude: &[&str]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for sentence in text.split(['.', '!', '?', '\n']) {
        let words: Vec<&str> = sentence.split_whitespace().collect();
        let mut run: Vec<&str> = Vec::new();
        let mut flush = |run: &mut Vec<&str>| {
            if !run.is_empty() {
                let name = run.join(" ");
                // A name sharing a word with someone already named is that person.
                let excluded = exclude.iter().any(|e| {
                    e.split(|c: char| !c.is_alphanumeric())
                        .any(|w| !w.is_empty() && run.contains(&w))
                });
                if !excluded && !found.contains(&name) {
                    found.push(name);
                }
                run.clear();
            }
        };
        for (i, raw) in words.iter().enumerate() {
            let word = raw.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
            let word = word.strip_suffix("'s").unwrap_or(word);
            let capitalised = word.chars().next().is_some_and(char::is_uppercase)
                && word.chars().skip(1).all(|c| c.is_lowercase() || c == '-')
                && word.len() > 1;
            if i > 0 && capitalised && !NOT_NAMES.contains(&word) {
                run.push(word);
                // Punctuation after the word ends the name.
                if raw.ends_with([',', ';', ':', ')']) {
                    flush(&mut run);
                }
            } else {
                flush(&mut run);
            }
        }
        flush(&mut run);
    }
    found
}

fn join_names(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn q(question: String, purpose: &str) -> Value {
    json!({"question": question, "purpose": purpose})
}

/// 3–5 questions for one phase, quoting the narrative and naming the people in it.
fn clarification_questions(phase: &str, var: &str, vars: &Vars) -> Value {
    let full_name = vars.text("participantName");
    // Plain English: the participant by first name, as a support worker would say it.
    let p = full_name
        .split_whitespace()
        .next()
        .unwrap_or("the participant")
        .to_string();
    let reporter = vars.text("reporterName");
    let location = vars.text("location");
    let narrative = vars.text(var);
    let sents = sentences(&narrative);
    let others = proper_names(&narrative, &[&full_name, &p, &reporter, &location]);
    let others = &others[..others.len().min(3)];
    let others_text = join_names(others);
    let were = if others.len() == 1 { "was" } else { "were" };
    let first = sents.first().map(|s| quote(s));
    let last = sents.last().map(|s| quote(s));
    let action = action_sentence(&sents).map(|s| quote(s));

    let mut qs = Vec::new();
    match phase {
        "before_event" => {
            qs.push(match &first {
                Some(f) => q(
                    format!("You wrote {f}. What was {p} doing in the hour before this, and where exactly were they?"),
                    "Sets out the activity and the setting that led up to the incident.",
                ),
                None => q(
                    format!("What was {p} doing in the hour before the incident, and where exactly were they?"),
                    "Sets out the activity and the setting that led up to the incident.",
                ),
            });
            if let Some(a) = action.as_ref().filter(|a| Some(*a) != first.as_ref()) {
                qs.push(q(
                    format!("You mentioned {a}. What exactly did you see and hear {p} do at that moment?"),
                    "Records the observed behaviour in the reporter's own words, without interpretation.",
                ));
            }
            qs.push(if others.is_empty() {
                q(
                    format!("Who else was near {p} before the incident, and what were they doing?"),
                    "Identifies the people present and what they were doing.",
                )
            } else {
                q(
                    format!("What {were} {others_text} doing or saying before the incident, and how close were they to {p}?"),
                    "Records what the other people named in the narrative were doing.",
                )
            });
            qs.push(q(
                format!("What was different from {p}'s usual routine that day, for example noise, visitors, staff changes or a changed activity?"),
                "Looks for changes in routine or environment that may have contributed.",
            ));
            qs.push(q(
                format!("What signs did {p} show that they were becoming unsettled, and what did staff do when they noticed them?"),
                "Captures early warning signs and the first response to them.",
            ));
        }
        "during_event" => {
            qs.push(match &first {
                Some(f) => q(
                    format!("You wrote {f}. Describe, step by step, what {p} did from that point on."),
                    "Builds a clear sequence of what happened during the incident.",
                ),
                None => q(
                    format!("Describe, step by step, what {p} did from the moment the incident started."),
                    "Builds a clear sequence of what happened during the incident.",
                ),
            });
            qs.push(q(
                format!("What did staff say and do in response, and how did {p} react to each response?"),
                "Records the support given during the incident and its effect.",
            ));
            if let Some(a) = action.as_ref().filter(|a| Some(*a) != first.as_ref()) {
                qs.push(q(
                    format!("You wrote {a}. How long did that go on, and what happened straight after it?"),
                    "Clarifies the duration and consequence of the key action described.",
                ));
            }
            if !others.is_empty() {
                qs.push(q(
                    format!(
                        "Where {were} {others_text} during the incident, and what did they do?"
                    ),
                    "Records the position and actions of the other people named in the narrative.",
                ));
            }
            qs.push(q(
                format!("What injuries, damage or risks to anyone, including {p}, did you see during the incident?"),
                "Records harm and risk observed, for safety follow-up and reporting.",
            ));
        }
        "end_event" => {
            qs.push(match &last {
                Some(l) => q(
                    format!("You wrote {l}. What was happening at that point that helped the incident to end?"),
                    "Identifies what brought the incident to an end.",
                ),
                None => q(
                    "What was happening at the point the incident ended?".to_string(),
                    "Identifies what brought the incident to an end.",
                ),
            });
            qs.push(q(
                format!("What support or strategies helped {p} to become calm, and how long did that take?"),
                "Records which de-escalation strategies worked, to guide future support.",
            ));
            qs.push(q(
                format!("How did {p} look and act once the incident was over, for example their breathing, speech and body language?"),
                "Records the participant's observable state at the end of the incident.",
            ));
            if !others.is_empty() {
                qs.push(q(
                    format!("What did {others_text} do as the incident was ending?"),
                    "Records the role of the other people named in the narrative at the end.",
                ));
            }
        }
        _ => {
            // post_event: the first 4 hours after the incident.
            qs.push(q(
                format!("In the first 4 hours after the incident, what support did {p} receive, and from whom?"),
                "Records the immediate support given after the incident.",
            ));
            if let Some(f) = &first {
                qs.push(q(
                    format!("You wrote {f}. How was {p} over the next 4 hours, for example their mood, eating, rest and activities?"),
                    "Tracks the participant's wellbeing in the first 4 hours after the incident.",
                ));
            }
            qs.push(q(
                "What first aid or medical checks happened in the first 4 hours after the incident, and what was found?".to_string(),
                "Records injury checks and treatment after the incident.",
            ));
            qs.push(q(
                "Who was told about the incident in the first 4 hours (for example family, guardian, manager), and at what time?".to_string(),
                "Confirms notifications were made on time.",
            ));
            if !others.is_empty() {
                qs.push(q(
                    format!("How {were} {others_text} supported or checked on after the incident?"),
                    "Records follow-up for the other people named in the narrative.",
                ));
            }
        }
    }
    qs.truncate(5);
    Value::Array(qs)
}

/// Light tidying only: spacing, a capital at the start of each sentence, a standalone "i", and a
/// full stop at the end. The words are the reporter's.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut capitalise = true;
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        let word = if word == "i" { "I" } else { word };
        if capitalise {
            let mut chars = word.chars();
            if let Some(c) = chars.next() {
                out.extend(c.to_uppercase());
                out.push_str(chars.as_str());
            }
        } else {
            out.push_str(word);
        }
        capitalise = word.ends_with(['.', '!', '?']);
    }
    if !out.is_empty() && !out.ends_with(['.', '!', '?', '"', '”', ')']) {
        out.push('.');
    }
    out
}

/// `Q: …\nA: …` pairs (answers may run over several lines).
fn qa_pairs(text: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut in_answer = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(question) = line.strip_prefix("Q:") {
            pairs.push((question.trim().to_string(), String::new()));
            in_answer = false;
        } else if let Some(answer) = line.strip_prefix("A:") {
            if let Some(last) = pairs.last_mut() {
                last.1 = answer.trim().to_string();
                in_answer = true;
            }
        } else if !line.is_empty() {
            if let Some(last) = pairs.last_mut() {
                let target = if in_answer { &mut last.1 } else { &mut last.0 };
                target.push(' ');
                target.push_str(line);
            }
        }
    }
    pairs
}

/// The phase text with its clarification answers merged in after it as plain sentences. A short
/// answer keeps its question so it still makes sense on its own.
fn enhance(var: &str, vars: &Vars) -> String {
    let original = tidy(&vars.text(var));
    let answers: Vec<String> = qa_pairs(&vars.text(&format!("{var}QA")))
        .into_iter()
        .filter(|(_, a)| {
            let a = a.trim().to_lowercase();
            !a.is_empty() && !matches!(a.as_str(), "n/a" | "na" | "-" | "none")
        })
        .map(|(question, answer)| {
            if answer.split_whitespace().count() >= 6 || question.is_empty() {
                tidy(&answer)
            } else {
                let question = question.trim_end_matches('?').trim();
                format!(
                    "{}? {}",
                    tidy(question).trim_end_matches('.'),
                    tidy(&answer)
                )
            }
        })
        .collect();
    match (original.is_empty(), answers.is_empty()) {
        (_, true) => original,
        (true, false) => answers.join(" "),
        (false, false) => format!("{original}\n\n{}", answers.join(" ")),
    }
}

/// Questions as the caller sent them: a JSON array (or its text) of objects with an id and a
/// text, or of plain strings.
fn question_list(v: &Value, phase: &str) -> Vec<(String, String)> {
    let parsed;
    let list = match v {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
            &parsed
        }
        other => other,
    };
    let items = match list {
        Value::Array(items) => items.as_slice(),
        Value::Object(o) => o
            .get("questions")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice),
        _ => &[],
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let default_id = format!("{phase}_q{}", i + 1);
            match item {
                Value::String(text) => Some((default_id, text.clone())),
                Value::Object(o) => {
                    let text = ["question_text", "question", "text"]
                        .iter()
                        .find_map(|k| o.get(*k).and_then(Value::as_str))?;
                    let id = ["question_id", "id", "_id"]
                        .iter()
                        .find_map(|k| o.get(*k).and_then(Value::as_str))
                        .map_or(default_id, str::to_string);
                    Some((id, text.to_string()))
                }
                _ => None,
            }
        })
        .collect()
}

/// Sample answers for the demo "Fill Q&A" button: plausible, in a support worker's voice, built
/// on the narrative where possible. (Unlike the other operations this one makes details up: it
/// exists to produce sample data.)
fn mock_answers(vars: &Vars) -> Value {
    let full_name = vars.text("participant_name");
    let p = full_name
        .split_whitespace()
        .next()
        .unwrap_or("the participant")
        .to_string();
    let reporter = vars.text("reporter_name");
    let location = vars.or("location", "the house");
    let phase = vars.or("phase", "during_event");
    let narrative = vars.text("phase_narrative");
    let sents = sentences(&narrative);
    let others = proper_names(&narrative, &[&full_name, &reporter, &location]);
    let questions = question_list(vars.0.get("questions").unwrap_or(&Value::Null), &phase);
    let has = |t: &str, words: &[&str]| words.iter().any(|w| t.contains(w));
    let answers: Vec<Value> = questions
        .iter()
        .enumerate()
        .map(|(i, (id, text))| {
            let t = text.to_lowercase();
            // Tie each answer to a different part of the narrative.
            let moment = sents
                .get(i % sents.len().max(1))
                .map(|s| format!(" This was when {}.", lower_first(s)))
                .unwrap_or_default();
            let answer = if has(&t, &["injur", "first aid", "medical", "hurt", "damage", "harm"]) {
                format!("I checked {p} straight afterwards and saw no injuries. Nobody needed first aid, and I wrote the check in the shift notes.")
            } else if has(&t, &["told", "notif", "family", "manager", "guardian", "informed"]) {
                format!("I phoned the team leader within 15 minutes, and {p}'s family was called about an hour later.")
            } else if has(&t, &["staff say", "staff do", "respon", "calm", "strateg", "help", "support"]) {
                format!("I spoke quietly and slowly, gave {p} space and offered a drink of water. After about 10 minutes {p} sat down and was calmer.")
            } else if has(&t, &["who", "people", "else", "other"]) {
                let with = if reporter.is_empty() { format!("I was with {p}") } else { format!("{reporter} was with {p}") };
                if others.is_empty() {
                    format!("{with}, and one other support worker was in the next room.")
                } else {
                    format!("{with}. {} {} also there.", join_names(&others), if others.len() == 1 { "was" } else { "were" })
                }
            } else if has(&t, &["routine", "different", "change", "usual"]) {
                format!("{p}'s usual outing was cancelled that morning, and {location} was noisier than usual because of visitors.")
            } else if has(&t, &["sign", "look", "mood", "body language", "breathing", "unsettled"]) {
                format!("{p} was pacing and speaking louder than usual, and kept looking at the door.{moment}")
            } else if has(&t, &["step by step", "describe", "what happened", "sequence"]) && !sents.is_empty() {
                let steps: Vec<String> = sents.iter().take(4).map(|s| lower_first(s)).collect();
                format!("First, {}.", steps.join(". Then "))
            } else if has(&t, &["how long", "what time", "when"]) {
                "It lasted about 10 minutes from start to finish.".to_string()
            } else {
                format!("From what I saw at {location}, {p} was clearly upset.{moment} I stayed nearby so I could step in if needed.")
            };
            json!({"question_id": id, "answer": answer})
        })
        .collect();
    json!({ "answers": answers })
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        // Keep "I" and names capitalised; only lower an ordinary first word.
        Some(c)
            if c.is_uppercase()
                && s.split_whitespace().next().is_some_and(|w| {
                    w.len() > 1
                        && [
                            "The", "A", "An", "He", "She", "They", "We", "It", "His", "Her",
                            "Their", "After", "Then", "When",
                        ]
                        .contains(&w)
                }) =>
        {
            c.to_lowercase().chain(chars).collect()
        }
        _ => s.to_string(),
    }
}

/// Conditions the analysis looks for, each with the words that point to it.
pub(crate) const CONDITIONS: &[(&str, &[&str])] = &[
    (
        "Noisy, crowded or busy environment",
        &[
            "noise",
            "noisy",
            "loud",
            "crowd",
            "busy",
            "music",
            "tv",
            "television",
            "alarm",
            "shopping",
        ],
    ),
    (
        "Change to routine or plans",
        &[
            "change",
            "cancel",
            "late",
            "delay",
            "unexpected",
            "new staff",
            "different",
            "routine",
            "instead",
        ],
    ),
    (
        "Physical discomfort, health or medication",
        &[
            "pain",
            "hungry",
            "tired",
            "sick",
            "unwell",
            "medication",
            "headache",
            "hot",
            "cold",
            "toilet",
            "sleep",
        ],
    ),
    (
        "Communication difficulty",
        &[
            "understand",
            "confus",
            "repeat",
            "couldn't say",
            "could not say",
            "communicat",
            "didn't hear",
            "misunderstood",
        ],
    ),
    (
        "Interaction with other people",
        &[
            "another resident",
            "housemate",
            "peer",
            "other participant",
            "argu",
            "visitor",
            "family",
            "co-resident",
        ],
    ),
    (
        "Request, demand or transition",
        &[
            "asked to",
            "told to",
            "had to",
            "stop",
            "leave",
            "transition",
            "turn off",
            "wait",
            "no to",
            "refused",
        ],
    ),
];

/// Contributing conditions as markdown, each with the narrative sentences that support it.
/// `word` occurs in `text` starting at a word boundary (so "tv" does not match "activity").
pub(crate) fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        i == 0
            || !text[..i]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_skip_sentence_starts_and_known_people() {
        let names = proper_names(
            "After lunch Jordan asked Priya Shah for the iPad. Jordan then went to Bunnings, with Sam.",
            &["Sam"],
        );
        assert_eq!(names, vec!["Jordan", "Priya Shah", "Bunnings"]);
    }

    #[test]
    fn qa_pairs_handle_multiline_answers() {
        let pairs = qa_pairs("Q: Who was there?\nA: Me and Ali.\nAlso Jo.\nQ: When?\nA:");
        assert_eq!(
            pairs,
            vec![
                (
                    "Who was there?".to_string(),
                    "Me and Ali. Also Jo.".to_string()
                ),
                ("When?".to_string(), String::new())
            ]
        );
    }

    #[test]
    fn tidy_fixes_spacing_and_capitals_only() {
        assert_eq!(
            tidy("  he was  upset. i stayed with him"),
            "He was upset. I stayed with him."
        );
    }

    #[test]
    fn word_boundaries() {
        assert!(contains_word("the tv was on", "tv"));
        assert!(!contains_word("a group activity", "tv"));
    }
}
