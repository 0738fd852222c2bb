//! The analysis stage through the real HTTP API, on SQLite and (with TEST_DATABASE_URL)
//! PostgreSQL, with the offline AI provider: handoff notifications, the queue, start and take
//! over, contributing conditions with revisions and a stale editor, classifications, reportable
//! screening and its reminders (time driven through the scheduler), completion, the report and
//! reopening; the refusals; and (PostgreSQL) two nodes sending each reminder once.

#[path = "../ai_service/fake.rs"]
mod fake;
#[path = "../harness/mod.rs"]
mod harness;
#[path = "../node_client/mod.rs"]
mod node_client;
#[path = "../seed/mod.rs"]
mod seed;

mod npm;

use std::time::{Duration, Instant};

use harness::{backends, App, Db, Place};
use seed::{now_ms, Member};
use serde_json::{json, Value as Json};

const Q: &str = "query";
const M: &str = "mutation";
const A: &str = "action";
const DAY: f64 = 86_400_000.0;
const PHASES: [&str; 4] = ["before_event", "during_event", "end_event", "post_event"];
const REMINDER: &str = "analysis:sendReportableReminder";

/// A fall with a serious injury: the screening should say `serious_injury`.
const NARRATIVE: [&str; 4] = [
    "Sarah was watching TV in the lounge. The TV was loud and the kitchen was noisy.",
    "Sarah stood up quickly and slipped on the wet floor. She fell and broke her wrist.",
    "I stayed with Sarah and called an ambulance. She was crying with pain.",
    "The ambulance took Sarah to hospital. Her mother was called at 4 pm.",
];

struct People {
    company: String,
    site: String,
    worker: Member,
    lead: Member,
    lead2: Member,
    admin: Member,
    demo: Member,
    outsider: Member,
}

async fn people(app: &App) -> People {
    let company = seed::company(app, "ABC Care").await;
    let site = seed::insert(
        app,
        "sites",
        json!({"company_id": company, "name": "Primary", "created_at": 1.0}),
    )
    .await;
    let other = seed::company(app, "Other Care").await;
    let c = Some(company.as_str());
    People {
        worker: seed::member(app, c, "worker@abc.org", "frontline_worker").await,
        lead: seed::member(app, c, "lead@abc.org", "team_lead").await,
        lead2: seed::member(app, c, "lead2@abc.org", "team_lead").await,
        admin: seed::member(app, c, "admin@abc.org", "company_admin").await,
        demo: seed::member(app, None, "demo@platform.org", "demo_admin").await,
        outsider: seed::member(app, Some(&other), "lead@other.org", "team_lead").await,
        company,
        site,
    }
}

fn by(who: &Member, incident: &str, extra: Json) -> Json {
    let mut args = json!({"sessionToken": who.token, "incident_id": incident});
    for (k, v) in extra.as_object().unwrap() {
        args[k] = v.clone();
    }
    args
}

/// `(code, message, field)` of a failed call.
async fn fails(app: &App, kind: &str, path: &str, args: Json) -> (String, String, String) {
    let body = app.call(kind, path, args).await;
    assert_eq!(body["status"], "error", "{path} should fail: {body}");
    let data = &body["errorData"];
    let text = |k: &str| data[k].as_str().unwrap_or_default().to_string();
    (text("code"), text("message"), text("field"))
}

/// Rows of `table` as clean JSON.
async fn rows(app: &App, table: &'static str) -> Vec<Json> {
    seed::rows(app, table)
        .await
        .iter()
        .map(|d| values::json::to_clean_json(&d.to_value()))
        .collect()
}

/// Waits (at most 20 s) until `check` finds what it looks for.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `who`'s notifications, newest first.
async fn inbox(app: &App, who: &Member) -> Vec<Json> {
    let page = app
        .ok(
            Q,
            "notifications:listMine",
            json!({"sessionToken": who.token,
                   "paginationOpts": {"numItems": 100, "cursor": null}}),
        )
        .await;
    page["page"].as_array().unwrap().clone()
}

async fn wait_for_note(app: &App, who: &Member, kind: &str, count: usize) -> Vec<Json> {
    eventually(&format!("{count} {kind} notification(s)"), || async {
        let notes: Vec<Json> = inbox(app, who)
            .await
            .into_iter()
            .filter(|n| n["kind"] == kind)
            .collect();
        (notes.len() >= count).then_some(notes)
    })
    .await
}

/// A submitted incident: written, clarified (one answer), one phase enhanced, submitted.
async fn submitted_incident(app: &App, p: &People) -> String {
    let worker = &p.worker;
    let when = chrono::DateTime::from_timestamp_millis((now_ms() - 7_200_000.0) as i64)
        .unwrap()
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let id = app
        .ok(
            M,
            "incidents:create",
            json!({"sessionToken": worker.token, "site_id": p.site, "reporter_name": "Kim Lee",
                   "participant_name": "Sarah Williams", "location": "Lounge, Primary house",
                   "event_date_time": when}),
        )
        .await;
    let id = id.as_str().unwrap().to_string();
    app.ok(M, "narratives:create", by(worker, &id, json!({})))
        .await;
    let mut narrative = by(worker, &id, json!({}));
    for (phase, text) in PHASES.iter().zip(NARRATIVE) {
        narrative[*phase] = json!(text);
    }
    app.ok(M, "narratives:update", narrative).await;
    app.ok(
        A,
        "aiClarification:generateClarificationQuestions",
        by(
            worker,
            &id,
            json!({"phase": "during_event", "narrative_content": NARRATIVE[1]}),
        ),
    )
    .await;
    let questions = app
        .ok(
            Q,
            "aiClarification:getClarificationQuestions",
            by(worker, &id, json!({"phase": "during_event"})),
        )
        .await;
    let q = &questions[0];
    app.ok(
        M,
        "aiClarification:submitClarificationAnswer",
        by(
            worker,
            &id,
            json!({"question_id": q["question_id"], "phase": "during_event",
                   "answer_text": "The floor had just been mopped."}),
        ),
    )
    .await;
    app.ok(
        A,
        "aiEnhancement:enhanceNarrativePhase",
        by(worker, &id, json!({"phase": "during_event"})),
    )
    .await;
    id
}

fn quote_in_narrative(e: &Json) -> bool {
    let phase = PHASES.iter().position(|p| *p == e["phase"]).unwrap();
    let quote = e["quote"].as_str().unwrap();
    NARRATIVE[phase].contains(quote) || quote.contains("mopped")
}

/// The scheduled reminders, as `(id, point, state, time)`.
async fn reminders(app: &App) -> Vec<(String, String, String, f64)> {
    rows(app, functions::scheduler::TABLE)
        .await
        .into_iter()
        .filter(|r| r["name"] == REMINDER)
        .map(|r| {
            (
                r["_id"].as_str().unwrap().to_string(),
                r["args"]["point"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
                r["scheduled_time"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// Time passes for the schedule `id`: it becomes due now.
async fn make_due(app: &App, id: &str) {
    let id: values::DocumentId = id.parse().unwrap();
    app.store
        .mutate(move |txn| {
            let patch = store::Patch::from([(
                "scheduled_time".to_string(),
                Some(values::Value::Float64(txn.now_ms())),
            )]);
            txn.patch(&id, patch)
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_whole_analysis_of_a_reportable_incident() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        whole_flow(&app, db).await;
        app.stop().await;
    }
}

async fn whole_flow(app: &App, db: Db) {
    let p = people(app).await;
    let id = submitted_incident(app, &p).await;

    // Before submission nobody can start.
    let (code, _, _) = fails(
        app,
        M,
        "analysis:startAnalysis",
        by(&p.lead, &id, json!({})),
    )
    .await;
    assert_eq!(code, "CONFLICT", "{db:?}");

    // 1. Submission: the team leads and the company admin hear of it, in-app and by email.
    app.ok(
        M,
        "aiEnhancement:submitIncidentForAnalysis",
        by(&p.worker, &id, json!({})),
    )
    .await;
    for who in [&p.lead, &p.lead2, &p.admin] {
        let notes = wait_for_note(app, who, "analysis_ready", 1).await;
        assert_eq!(notes[0]["link"], format!("/analysis/{id}"), "{db:?}");
        assert_eq!(notes[0]["incident_id"], id.as_str());
    }
    assert!(inbox(app, &p.worker).await.is_empty(), "{db:?}");
    let emails = rows(app, "email_outbox").await;
    for to in ["lead@abc.org", "lead2@abc.org", "admin@abc.org"] {
        let mine: Vec<&Json> = emails
            .iter()
            .filter(|e| e["to"] == to && e["kind"] == "notification_analysis_ready")
            .collect();
        assert_eq!(mine.len(), 1, "{db:?}: one email to {to}");
        assert!(mine[0]["text"]
            .as_str()
            .unwrap()
            .contains(&format!("/analysis/{id}")));
    }
    let handoff = rows(app, "workflow_handoffs").await.remove(0);
    assert_eq!(handoff["team_leader_notified"], true, "{db:?}");
    assert!(handoff["notification_sent_at"].as_f64().is_some());

    // 2. Refusals: a frontline worker, another company.
    let queue_args = |who: &Member| json!({"sessionToken": who.token, "paginationOpts": {"numItems": 10, "cursor": null}});
    for (path, kind, args) in [
        ("analysis:listQueue", Q, queue_args(&p.worker)),
        ("analysis:startAnalysis", M, by(&p.worker, &id, json!({}))),
        ("analysis:getAnalysis", Q, by(&p.worker, &id, json!({}))),
    ] {
        assert_eq!(
            fails(app, kind, path, args).await.0,
            "FORBIDDEN",
            "{db:?}: {path}"
        );
    }
    for (path, kind) in [
        ("analysis:getAnalysis", Q),
        ("analysis:startAnalysis", M),
        ("analysis:screenReportable", A),
    ] {
        let args = by(&p.outsider, &id, json!({}));
        assert_eq!(
            fails(app, kind, path, args).await.0,
            "NOT_FOUND",
            "{db:?}: {path}"
        );
    }
    let theirs = app
        .ok(Q, "analysis:listQueue", queue_args(&p.outsider))
        .await;
    assert_eq!(theirs["page"], json!([]));

    // 3. The queue, and starting.
    let queue = app.ok(Q, "analysis:listQueue", queue_args(&p.lead)).await;
    assert_eq!(
        queue["page"].as_array().unwrap().len(),
        1,
        "{db:?}: {queue}"
    );
    let item = &queue["page"][0];
    assert_eq!(item["incident_id"], id.as_str());
    assert_eq!(item["site_name"], "Primary");
    assert_eq!(item["analysis_status"], "not_started");
    assert_eq!(item["reportable"]["decision"], "pending");
    let analysis_id = app
        .ok(M, "analysis:startAnalysis", by(&p.lead, &id, json!({})))
        .await;
    let handoff = rows(app, "workflow_handoffs").await.remove(0);
    assert_eq!(handoff["handoff_accepted"], true);
    assert_eq!(handoff["accepted_by"], p.lead.id.as_str());
    let (code, message, _) = fails(
        app,
        M,
        "analysis:startAnalysis",
        by(&p.lead2, &id, json!({})),
    )
    .await;
    assert_eq!(code, "CONFLICT", "{db:?}");
    assert!(message.contains("takeOverAnalysis"), "{message}");
    let view = app
        .ok(Q, "analysis:getAnalysis", by(&p.lead, &id, json!({})))
        .await;
    assert_eq!(view["analysis"]["_id"], analysis_id);
    assert_eq!(view["incident"]["analysis_status"], "in_progress");
    assert_eq!(view["incident"]["overall_status"], "analysis_pending");
    // Capture stays locked.
    let mut edit = by(&p.worker, &id, json!({}));
    edit["before_event"] = json!("Changed.");
    assert_eq!(fails(app, M, "narratives:update", edit).await.0, "CONFLICT");

    // Completion too early names everything missing.
    let (code, message, field) = fails(
        app,
        M,
        "analysis:completeAnalysis",
        by(&p.lead, &id, json!({})),
    )
    .await;
    assert_eq!(code, "VALIDATION", "{db:?}");
    assert_eq!(field, "conditions,classifications,reportable_decision");
    for what in ["conditions", "classifications", "reportable_decision"] {
        assert!(message.contains(what), "{message}");
    }

    // 4. Contributing conditions: the offline provider, evidence quoted from the narrative.
    let generated = app
        .ok(
            A,
            "analysis:generateContributingConditions",
            by(&p.lead, &id, json!({})),
        )
        .await;
    assert_eq!(generated["success"], true, "{db:?}: {generated}");
    assert_eq!(generated["offline"], true);
    let conditions = generated["conditions"].as_array().unwrap().clone();
    assert!(!conditions.is_empty(), "{generated}");
    for c in &conditions {
        assert_eq!(c["source"], "ai");
        for e in c["evidence"].as_array().unwrap() {
            assert!(quote_in_narrative(e), "{e}");
        }
    }
    // Edited twice: the second editor's revision is stale.
    let mut edited = conditions.clone();
    edited[0]["title"] = json!("Wet floor after mopping");
    edited[0]["status"] = json!("confirmed");
    let saved = app
        .ok(
            M,
            "analysis:updateContributingConditions",
            by(
                &p.lead,
                &id,
                json!({"conditions": edited, "expected_revision": 1, "edit_time_ms": 30000}),
            ),
        )
        .await;
    assert_eq!(saved["revision"], 2.0, "{db:?}");
    let mut stale = conditions.clone();
    stale.truncate(1);
    let (code, _, field) = fails(
        app,
        M,
        "analysis:updateContributingConditions",
        by(
            &p.lead,
            &id,
            json!({"conditions": stale, "expected_revision": 1}),
        ),
    )
    .await;
    assert_eq!(
        (code.as_str(), field.as_str()),
        ("CONFLICT", "expected_revision")
    );
    // An invented quote is refused, naming it.
    let mut invented = edited.clone();
    invented[0]["evidence"] = json!([{"phase": "during_event", "quote": "Sarah was pushed"}]);
    let (code, _, field) = fails(
        app,
        M,
        "analysis:updateContributingConditions",
        by(
            &p.lead,
            &id,
            json!({"conditions": invented, "expected_revision": 2}),
        ),
    )
    .await;
    assert_eq!(
        (code.as_str(), field.as_str()),
        ("VALIDATION", "conditions[0].evidence[0].quote")
    );
    // A person's edits are not replaced without `force`.
    let again = fails(
        app,
        A,
        "analysis:generateContributingConditions",
        by(&p.lead, &id, json!({})),
    )
    .await;
    assert_eq!(again.0, "CONFLICT", "{db:?}");
    let view = app
        .ok(Q, "analysis:getAnalysis", by(&p.lead, &id, json!({})))
        .await;
    let analysis = &view["analysis"];
    assert_eq!(analysis["status"], "user_reviewed");
    assert_eq!(
        analysis["conditions"][0]["title"],
        "Wet floor after mopping"
    );
    assert_eq!(
        analysis["conditions_original"],
        json!(conditions),
        "the AI's list is kept"
    );
    assert_eq!(analysis["total_edit_time_ms"], 30000.0);
    assert!(analysis["conditions_markdown"]
        .as_str()
        .unwrap()
        .contains("### Wet floor after mopping"));
    assert_eq!(view["revisions_count"], 2.0);
    let revisions = app
        .ok(Q, "analysis:listRevisions", by(&p.lead, &id, json!({})))
        .await;
    let numbers: Vec<f64> = revisions
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["revision"].as_f64().unwrap())
        .collect();
    assert_eq!(numbers, vec![2.0, 1.0]);

    // Take over: audited; the first analyst can no longer edit.
    assert_eq!(
        fails(
            app,
            M,
            "analysis:takeOverAnalysis",
            by(&p.lead2, &id, json!({"reason": " "}))
        )
        .await
        .0,
        "VALIDATION"
    );
    let taken = app
        .ok(
            M,
            "analysis:takeOverAnalysis",
            by(&p.lead2, &id, json!({"reason": "Kim is on leave"})),
        )
        .await;
    assert_eq!(taken["previous_assignee"], p.lead.id.as_str());
    let (code, _, field) = fails(
        app,
        M,
        "analysis:updateContributingConditions",
        by(
            &p.lead,
            &id,
            json!({"conditions": edited, "expected_revision": 2}),
        ),
    )
    .await;
    assert_eq!((code.as_str(), field.as_str()), ("CONFLICT", "assigned_to"));
    let lead = &p.lead2;

    // 5. Classifications: suggested, then each reviewed.
    let suggested = app
        .ok(
            A,
            "analysis:generateClassifications",
            by(lead, &id, json!({})),
        )
        .await;
    assert_eq!(suggested["success"], true, "{suggested}");
    let all = suggested["classifications"].as_array().unwrap().clone();
    let primary = all.iter().find(|c| c["rank"] == "primary").unwrap();
    assert_eq!(primary["ai_generated"], true);
    assert_eq!(primary["user_reviewed"], false);
    assert_eq!(primary["severity"], "high", "{primary}");
    let accepted = app
        .ok(
            M,
            "analysis:saveClassification",
            by(
                lead,
                &id,
                json!({
                "classification_id": primary["classification_id"], "rank": "primary",
                "incident_type": primary["incident_type"], "severity": primary["severity"],
                "risk_level": primary["risk_level"],
                "supporting_evidence": primary["supporting_evidence"],
                "recommended_actions": primary["recommended_actions"]}),
            ),
        )
        .await;
    assert_eq!(accepted["user_reviewed"], true);
    assert_eq!(accepted["user_modified"], false);
    assert_eq!(accepted["reviewed_by"], lead.id.as_str());
    for other in all.iter().filter(|c| c["rank"] != "primary") {
        app.ok(
            M,
            "analysis:removeClassification",
            by(
                lead,
                &id,
                json!({"classification_id": other["classification_id"]}),
            ),
        )
        .await;
    }
    let added = app
        .ok(
            M,
            "analysis:saveClassification",
            by(
                lead,
                &id,
                json!({
                "rank": "secondary", "incident_type": "environmental", "severity": "medium",
                "risk_level": "moderate", "supporting_evidence": ["The floor had just been mopped"],
                "recommended_actions": ["Use wet-floor signs"], "review_notes": "Added by hand"}),
            ),
        )
        .await;
    assert_eq!(added["ai_generated"], false);
    let modified = app
        .ok(
            M,
            "analysis:saveClassification",
            by(
                lead,
                &id,
                json!({
                "classification_id": primary["classification_id"], "rank": "primary",
                "incident_type": "medical", "severity": "high", "risk_level": "high",
                "supporting_evidence": [], "recommended_actions": []}),
            ),
        )
        .await;
    assert_eq!(modified["user_modified"], true, "{modified}");
    assert_eq!(
        modified["original_ai_classification"]["incident_type"],
        primary["incident_type"]
    );

    // 6. Screening: the AI says serious injury; the company admin decides.
    let screened = app
        .ok(A, "analysis:screenReportable", by(lead, &id, json!({})))
        .await;
    assert_eq!(screened["success"], true, "{screened}");
    assert_eq!(
        screened["suggestion"]["categories"],
        json!(["serious_injury"]),
        "{screened}"
    );
    assert_eq!(screened["suggestion"]["harm_caused"], true);
    for e in screened["suggestion"]["evidence"].as_array().unwrap() {
        assert!(quote_in_narrative(e), "{e}");
    }
    let (code, _, field) = fails(
        app,
        M,
        "analysis:decideReportable",
        by(&p.admin, &id, json!({"decision": "reportable", "categories": [], "harm_caused": true, "rationale": "Broken wrist"})),
    )
    .await;
    assert_eq!(
        (code.as_str(), field.as_str()),
        ("VALIDATION", "categories")
    );
    assert_eq!(
        fails(
            app,
            M,
            "analysis:decideReportable",
            by(&p.worker, &id, json!({"decision": "reportable", "categories": ["serious_injury"], "harm_caused": true, "rationale": "x"})),
        )
        .await
        .0,
        "FORBIDDEN"
    );
    let decided = app
        .ok(
            M,
            "analysis:decideReportable",
            by(&p.admin, &id, json!({"decision": "reportable", "categories": ["serious_injury"],
                                     "harm_caused": true, "rationale": "Sarah broke her wrist and went to hospital."})),
        )
        .await;
    let aware = decided["aware_at"].as_f64().unwrap();
    assert_eq!(
        aware,
        view["incident"]["created_at"].as_f64().unwrap(),
        "aware when recorded"
    );
    assert_eq!(decided["due_at"].as_f64().unwrap(), aware + DAY);
    assert_eq!(decided["decided_by"], p.admin.id.as_str());
    let mut scheduled = reminders(app).await;
    scheduled.sort_by(|a, b| a.3.total_cmp(&b.3));
    let points: Vec<(&str, &str, f64)> = scheduled
        .iter()
        .map(|(_, point, state, at)| (point.as_str(), state.as_str(), *at))
        .collect();
    assert_eq!(
        points,
        vec![
            ("50", "pending", aware + 0.5 * DAY),
            ("75", "pending", aware + 0.75 * DAY),
            ("90", "pending", aware + 0.9 * DAY),
            ("overdue", "pending", aware + DAY),
        ],
        "{db:?}"
    );
    let deadlines = app
        .ok(
            Q,
            "analysis:listReportableDeadlines",
            json!({"sessionToken": lead.token}),
        )
        .await;
    assert_eq!(deadlines[0]["incident_id"], id.as_str(), "{deadlines}");
    assert_eq!(deadlines[0]["overdue"], false);
    let queue = app.ok(Q, "analysis:listQueue", queue_args(lead)).await;
    assert_eq!(queue["page"][0]["reportable"]["decision"], "reportable");
    assert_eq!(
        queue["page"][0]["assigned_to_name"],
        "team_lead lead2@abc.org"
    );

    // Half the window passes: the first reminder goes to the leads and the admin, once.
    make_due(app, &scheduled[0].0).await;
    for who in [&p.lead, &p.lead2, &p.admin] {
        let notes = wait_for_note(app, who, "reportable_deadline", 1).await;
        assert!(
            notes[0]["title"].as_str().unwrap().contains("is due in"),
            "{}",
            notes[0]
        );
    }
    let reminder_emails = rows(app, "email_outbox")
        .await
        .into_iter()
        .filter(|e| e["kind"] == "notification_reportable_deadline")
        .count();
    assert_eq!(reminder_emails, 3, "{db:?}");

    // The immediate notification stops the clock: the other reminders are cancelled.
    let recorded = app
        .ok(
            M,
            "analysis:recordCommissionNotification",
            by(lead, &id, json!({"form": "immediate", "submitted_at": now_ms(), "reference": "NDIS-2024-0042"})),
        )
        .await;
    assert_eq!(recorded["notifications"][0]["reference"], "NDIS-2024-0042");
    let states: Vec<(String, String)> = reminders(app)
        .await
        .into_iter()
        .map(|(_, point, state, _)| (point, state))
        .collect();
    for (point, state) in &states {
        let expected = if point == "50" { "success" } else { "canceled" };
        assert_eq!(state, expected, "{db:?}: {states:?}");
    }
    let deadlines = app
        .ok(
            Q,
            "analysis:listReportableDeadlines",
            json!({"sessionToken": lead.token}),
        )
        .await;
    assert_eq!(deadlines, json!([]));

    // AI failure keeps the person's work: with no active prompt, generation reports the code.
    app.ok(
        M,
        "promptManager:clearAllPrompts",
        json!({"sessionToken": p.demo.token}),
    )
    .await;
    let failed = app
        .ok(
            A,
            "analysis:generateContributingConditions",
            by(lead, &id, json!({"force": true})),
        )
        .await;
    assert_eq!(failed["success"], false, "{failed}");
    assert_eq!(failed["error_code"], "PROMPT_NOT_FOUND");
    assert_eq!(failed["conditions"][0]["title"], "Wet floor after mopping");
    let view = app
        .ok(Q, "analysis:getAnalysis", by(lead, &id, json!({})))
        .await;
    assert_eq!(view["analysis"]["revision"], 2.0);
    assert_eq!(
        view["analysis"]["conditions"][0]["title"],
        "Wet floor after mopping"
    );

    // 7. Complete: the incident is completed, the counts follow, the reporter is told.
    let counts = |who: &Member| json!({"sessionToken": who.token});
    let before = app
        .ok(Q, "incidents_listing:getIncidentCounts", counts(&p.admin))
        .await;
    app.ok(M, "analysis:completeAnalysis", by(lead, &id, json!({})))
        .await;
    let after = app
        .ok(Q, "incidents_listing:getIncidentCounts", counts(&p.admin))
        .await;
    assert_eq!(
        after["completed"],
        before["completed"].as_f64().unwrap() + 1.0,
        "{db:?}"
    );
    assert_eq!(
        after["analysis_pending"],
        before["analysis_pending"].as_f64().unwrap() - 1.0
    );
    let incident = app
        .ok(
            Q,
            "incidents:getById",
            json!({"sessionToken": p.worker.token, "id": id}),
        )
        .await;
    assert_eq!(incident["overall_status"], "completed");
    assert_eq!(incident["analysis_status"], "completed");
    wait_for_note(app, &p.worker, "analysis_completed", 1).await;
    wait_for_note(app, &p.admin, "analysis_completed", 1).await;
    // The reporter reads the completed analysis, and changes nothing.
    let theirs = app
        .ok(Q, "analysis:getAnalysis", by(&p.worker, &id, json!({})))
        .await;
    assert_eq!(theirs["analysis"]["status"], "completed");
    assert_eq!(
        fails(
            app,
            M,
            "analysis:completeAnalysis",
            by(&p.worker, &id, json!({}))
        )
        .await
        .0,
        "FORBIDDEN"
    );
    let done = app.ok(Q, "analysis:listQueue", json!({"sessionToken": lead.token, "status": "completed", "paginationOpts": {"numItems": 10, "cursor": null}})).await;
    assert_eq!(done["page"][0]["incident_id"], id.as_str());

    // 8. The report, with capture, analysis, screening and the audit trail.
    let md = app
        .ok(
            A,
            "analysis:exportReport",
            by(lead, &id, json!({"format": "markdown"})),
        )
        .await;
    let md = md["content"].as_str().unwrap();
    for part in [
        "# Incident report: Sarah Williams",
        "broke her wrist",
        "Wet floor after mopping",
        "serious_injury",
        "NDIS-2024-0042",
        "analysis_completed",
        "analysis_taken_over",
    ] {
        assert!(md.contains(part), "{db:?}: {part} missing from\n{md}");
    }
    let report = app
        .ok(
            A,
            "analysis:exportReport",
            by(lead, &id, json!({"format": "json"})),
        )
        .await;
    let report: Json = serde_json::from_str(report["content"].as_str().unwrap()).unwrap();
    assert_eq!(report["reportable_screening"]["decision"], "reportable");
    assert_eq!(report["analysis"]["status"], "completed");

    // 9. Reopen: company administrators only, with a reason; audited.
    let reason = json!({"reason": "The family raised a new concern"});
    assert_eq!(
        fails(
            app,
            M,
            "analysis:reopenAnalysis",
            by(lead, &id, reason.clone())
        )
        .await
        .0,
        "FORBIDDEN"
    );
    let reopened = app
        .ok(M, "analysis:reopenAnalysis", by(&p.admin, &id, reason))
        .await;
    assert_eq!(reopened["reopened_count"], 1.0);
    let incident = app
        .ok(
            Q,
            "incidents:getById",
            json!({"sessionToken": lead.token, "id": id}),
        )
        .await;
    assert_eq!(incident["analysis_status"], "in_progress");
    assert_eq!(incident["overall_status"], "analysis_pending");
    let events: Vec<String> = rows(app, "audit_log")
        .await
        .into_iter()
        .filter(|e| e["target_id"] == id.as_str())
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    for event in [
        "analysis_started",
        "analysis_taken_over",
        "reportable_decided",
        "commission_notified",
        "analysis_completed",
        "analysis_reopened",
    ] {
        assert!(
            events.iter().any(|e| e == event),
            "{db:?}: {event} in {events:?}"
        );
    }
    wait_for_note(app, &p.lead2, "analysis_reopened", 1).await;
    // Marking read.
    let marked = app
        .ok(
            M,
            "notifications:markRead",
            json!({"sessionToken": p.lead2.token}),
        )
        .await;
    assert!(marked["marked"].as_f64().unwrap() >= 3.0, "{marked}");
    let unread = app
        .ok(Q, "notifications:listMine", json!({"sessionToken": p.lead2.token, "unreadOnly": true,
                                                 "paginationOpts": {"numItems": 10, "cursor": null}}))
        .await;
    assert_eq!(unread["page"], json!([]));
    let _ = &p.company;
}

/// Two nodes on one PostgreSQL database: every reminder point goes out once.
#[tokio::test]
async fn two_nodes_send_each_reminder_once() {
    if std::env::var("TEST_DATABASE_URL").is_err() {
        eprintln!("TEST_DATABASE_URL not set: two-node test skipped");
        return;
    }
    let place = Place::new(Db::Postgres).await;
    let first = App::start(&place).await;
    let second = App::start(&place).await;
    let p = people(&first).await;
    let id = submitted_incident(&first, &p).await;
    first
        .ok(
            M,
            "aiEnhancement:submitIncidentForAnalysis",
            by(&p.worker, &id, json!({})),
        )
        .await;
    second
        .ok(M, "analysis:startAnalysis", by(&p.lead, &id, json!({})))
        .await;
    second
        .ok(
            M,
            "analysis:decideReportable",
            by(
                &p.lead,
                &id,
                json!({"decision": "reportable", "categories": ["serious_injury"],
                                    "harm_caused": true, "rationale": "Broken wrist"}),
            ),
        )
        .await;
    // The whole window passes at once: every point is due on both nodes.
    for (schedule, _, _, _) in reminders(&first).await {
        make_due(&first, &schedule).await;
    }
    eventually("every reminder to run", || async {
        let all = reminders(&first).await;
        all.iter()
            .all(|(_, _, state, _)| state == "success")
            .then_some(())
    })
    .await;
    for who in [&p.lead, &p.lead2, &p.admin] {
        let notes: Vec<Json> = inbox(&first, who)
            .await
            .into_iter()
            .filter(|n| n["kind"] == "reportable_deadline")
            .collect();
        assert_eq!(notes.len(), 4, "one per point: {notes:#?}");
    }
    let emails = rows(&first, "email_outbox")
        .await
        .into_iter()
        .filter(|e| e["kind"] == "notification_reportable_deadline")
        .count();
    assert_eq!(emails, 12);
    second.stop().await;
    first.stop().await;
}

/// Starts the analysis of a submitted incident as the lead and decides it reportable as the admin.
async fn reportable(app: &App, p: &People, id: &str) {
    app.ok(
        M,
        "aiEnhancement:submitIncidentForAnalysis",
        by(&p.worker, id, json!({})),
    )
    .await;
    app.ok(M, "analysis:startAnalysis", by(&p.lead, id, json!({})))
        .await;
    app.ok(
        M,
        "analysis:decideReportable",
        by(
            &p.admin,
            id,
            json!({"decision": "reportable", "categories": ["serious_injury"],
                                "harm_caused": true, "rationale": "Broken wrist"}),
        ),
    )
    .await;
}

/// The reminders are durable: after a restart they still fire, and a `not_reportable` decision
/// cancels those still to come.
#[tokio::test]
async fn reminders_survive_a_restart_and_stop_when_not_reportable() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let p = people(&app).await;
        let id = submitted_incident(&app, &p).await;
        reportable(&app, &p, &id).await;
        app.stop().await;

        let app = App::start(&place).await;
        let mut due = reminders(&app).await;
        due.sort_by(|a, b| a.3.total_cmp(&b.3));
        assert_eq!(due.len(), 4, "{db:?}");
        make_due(&app, &due[0].0).await;
        let notes = wait_for_note(&app, &p.lead, "reportable_deadline", 1).await;
        assert_eq!(notes.len(), 1, "{db:?}");
        app.ok(
            M,
            "analysis:decideReportable",
            by(
                &p.lead,
                &id,
                json!({"decision": "not_reportable", "categories": [],
                                    "harm_caused": false, "rationale": "The fracture was old"}),
            ),
        )
        .await;
        let states: Vec<(String, String)> = reminders(&app)
            .await
            .into_iter()
            .map(|(_, point, state, _)| (point, state))
            .collect();
        for (point, state) in &states {
            let expected = if point == "50" { "success" } else { "canceled" };
            assert_eq!(state, expected, "{db:?}: {states:?}");
        }
        let deadlines = app
            .ok(
                Q,
                "analysis:listReportableDeadlines",
                json!({"sessionToken": p.lead.token}),
            )
            .await;
        assert_eq!(deadlines, json!([]));
        app.stop().await;
    }
}

/// With a real provider (a fake OpenAI-compatible server): its conditions are stored, quotes that
/// are not in the narrative are dropped, and a provider outage leaves the analyst's edits as they
/// were and reports the code.
#[tokio::test]
async fn provider_conditions_keep_only_real_quotes_and_an_outage_keeps_the_edits() {
    use fake::{Fake, Reply};
    for db in backends() {
        let place = Place::new(db).await;
        let questions = json!([{"question": "What was on the floor?", "purpose": "Cause."},
                               {"question": "Who was there?", "purpose": "Witnesses."},
                               {"question": "What happened next?", "purpose": "Order."}]);
        let fake = Fake::start(Reply::text(&questions.to_string(), 10, 10)).await;
        let env = [
            ("LLM_BASE_URL", fake.base_url.as_str()),
            ("LLM_API_KEY", "sk-test-not-a-real-key"),
            ("LLM_MODEL", "test-model"),
            ("AI_MAX_RETRIES", "0"),
            ("AI_RETRY_BASE_DELAY_MS", "1"),
        ];
        let app = App::start_with(&place, &env).await;
        let p = people(&app).await;
        fake.then(Reply::text(&questions.to_string(), 10, 10));
        fake.then(Reply::text(
            "Sarah slipped on the freshly mopped floor and fell.",
            10,
            10,
        ));
        let id = submitted_incident(&app, &p).await;
        app.ok(
            M,
            "aiEnhancement:submitIncidentForAnalysis",
            by(&p.worker, &id, json!({})),
        )
        .await;
        app.ok(M, "analysis:startAnalysis", by(&p.lead, &id, json!({})))
            .await;
        let reply = json!({"conditions": [{
            "type": "environmental", "title": "Wet floor", "description": "Just mopped.",
            "severity": "high", "is_modifiable": true, "recommended_actions": ["Signs"],
            "evidence": [{"phase": "during_event", "quote": "slipped on the wet floor"},
                         {"phase": "during_event", "quote": "nobody put up a sign"},
                         {"phase": "before_event", "quote": "She fell and broke her wrist"}]}],
            "confidence": 0.8});
        fake.then(Reply::text(&reply.to_string(), 10, 10));
        let generated = app
            .ok(
                A,
                "analysis:generateContributingConditions",
                by(&p.lead, &id, json!({})),
            )
            .await;
        assert_eq!(generated["success"], true, "{db:?}: {generated}");
        assert_eq!(generated["offline"], false);
        assert_eq!(generated["ai_model"], "test-model");
        let condition = &generated["conditions"][0];
        // The invented quote and the one from another phase are gone.
        assert_eq!(
            condition["evidence"],
            json!([{"phase": "during_event", "quote": "slipped on the wet floor"}]),
            "{db:?}"
        );
        let view = app
            .ok(Q, "analysis:getAnalysis", by(&p.lead, &id, json!({})))
            .await;
        assert_eq!(view["analysis"]["ai_confidence"], 0.8);
        let sent = fake.bodies();
        let prompt = sent.last().unwrap()["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["content"]
            .as_str()
            .unwrap()
            .to_string();
        for part in [
            NARRATIVE[1],
            "The floor had just been mopped.",
            "freshly mopped floor",
        ] {
            assert!(prompt.contains(part), "{part} is in the prompt");
        }

        let mut edited = generated["conditions"].as_array().unwrap().clone();
        edited[0]["title"] = json!("Floor mopped during the lunch rush");
        app.ok(
            M,
            "analysis:updateContributingConditions",
            by(
                &p.lead,
                &id,
                json!({"conditions": edited, "expected_revision": 1}),
            ),
        )
        .await;
        fake.then(Reply::Status(503));
        let failed = app
            .ok(
                A,
                "analysis:generateContributingConditions",
                by(&p.lead, &id, json!({"force": true})),
            )
            .await;
        assert_eq!(failed["success"], false, "{db:?}: {failed}");
        assert!(
            failed["error_code"].as_str().unwrap().starts_with("AI_"),
            "{failed}"
        );
        let view = app
            .ok(Q, "analysis:getAnalysis", by(&p.lead, &id, json!({})))
            .await;
        assert_eq!(
            view["analysis"]["conditions"][0]["title"],
            "Floor mopped during the lunch rush"
        );
        assert_eq!(view["analysis"]["revision"], 2.0);
        app.stop().await;
    }
}
