//! Incidents as the web app uses them (contract §12.1, §12.2 and the §13 rows for
//! `getIncidentNarrative` and `importWorkflowData`): the overall status after submission in the
//! lists, counts and the incident itself; the empty answers for callers without a company; the
//! narrative query the prompt-testing panel sends without a token; the wizard step an import
//! reports; and the `aiEnhancement` aliases the app names.

use super::*;

const PHASES: [&str; 4] = ["before_event", "during_event", "end_event", "post_event"];

/// `YYYY-MM-DDTHH:mm` two hours ago, as the metadata form sends it.
fn two_hours_ago() -> String {
    let at = seed::now_ms() - 2.0 * 3_600_000.0;
    chrono::DateTime::from_timestamp_millis(at as i64)
        .unwrap()
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// A site of `company` (the metadata form's site list).
async fn site(web: &Web, company: &str) -> String {
    seed::insert(
        &web.app,
        "sites",
        json!({"company_id": company, "name": "Primary", "created_at": 1.0}),
    )
    .await
}

/// Wizard steps 1 and 2 by `worker`: the details, then the four phases. The incident's id.
async fn capture(web: &Web, worker: &Member, site: &str) -> String {
    let tok = &worker.token;
    let id = web
        .mutation(
            "incidents:create",
            json!({"sessionToken": tok, "site_id": site, "reporter_name": "Kim Lee",
                   "participant_name": "Sarah Williams", "location": "Kitchen",
                   "event_date_time": two_hours_ago()}),
        )
        .await
        .value()
        .as_str()
        .unwrap()
        .to_string();
    let mut phases = json!({"sessionToken": tok, "incident_id": id});
    for (phase, text) in PHASES.iter().zip([
        "Sarah was calm at breakfast.",
        "She slipped on the wet kitchen floor.",
        "Staff helped her up and checked her wrist.",
        "Ice pack; her family was told.",
    ]) {
        phases[*phase] = json!(text);
    }
    let out = web
        .calls(&[
            (
                "mutation",
                "narratives:create",
                json!({"sessionToken": tok, "incident_id": id}),
            ),
            ("mutation", "narratives:update", phases),
        ])
        .await;
    assert_eq!(out[1].value()["success"], true);
    id
}

/// Step 2's question generation, then an answer to the first question of `phase` (steps 3-6).
async fn answer(web: &Web, worker: &Member, id: &str, phase: &str) {
    let tok = &worker.token;
    let narrative = web
        .query(
            "narratives:getByIncidentId",
            json!({"sessionToken": tok, "incident_id": id}),
        )
        .await;
    let mut phases = json!({});
    for phase in PHASES {
        phases[phase] = narrative.value()[phase].clone();
    }
    let generated = web
        .action(
            "aiClarification:generateAllClarificationQuestions",
            json!({"sessionToken": tok, "incident_id": id, "narrative": phases}),
        )
        .await;
    let questions = web
        .query(
            "aiClarification:getClarificationQuestions",
            json!({"sessionToken": tok, "incident_id": id, "phase": phase}),
        )
        .await;
    let first = &questions.value()[0];
    assert!(
        first["question_id"].is_string(),
        "{generated:?} {questions:?}"
    );
    let answered = web
        .mutation(
            "aiClarification:submitClarificationAnswer",
            json!({"sessionToken": tok, "incident_id": id, "phase": phase,
                   "question_id": first["question_id"],
                   "answer_text": "About two minutes after the floor was mopped."}),
        )
        .await;
    assert_eq!(answered.value()["success"], true);
}

/// The system administrator's export of `id`, imported into `company`: the import's answer.
async fn reimport(web: &Web, admin: &Member, id: &str, company: &str) -> Json {
    let exported = web
        .action(
            "workflowData:exportWorkflowData",
            json!({"sessionToken": admin.token, "incident_id": id}),
        )
        .await;
    let data = exported.value()["data"].clone();
    import(web, admin, data, company).await
}

async fn import(web: &Web, admin: &Member, data: Json, company: &str) -> Json {
    web.action(
        "workflowData:importWorkflowData",
        json!({"sessionToken": admin.token, "workflow_data": data, "company_id": company}),
    )
    .await
    .value()
    .clone()
}

/// A worker's capture from the details to submission: while it is captured it is
/// `capture_pending`; once submitted it is `analysis_pending` (handoff `ready_for_analysis`) in
/// `getById`, both lists, the "Analysis Pending" filter and the count cards, with no
/// `ready_for_analysis` count. On the way: the import's `created_step` at each stage, and the
/// reference's whole-incident enhancement and enhanced-text edit.
#[tokio::test]
async fn a_submitted_incident_is_analysis_pending_and_imports_open_at_the_step_reached() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let site_a = site(&web, &p.company_a).await;
        site(&web, &p.company_b).await;
        let (worker, lead, root) = (&p.worker_a, &p.lead_a, &p.system_admin);

        // Step 1 only: the import opens at the details.
        let id = capture(&web, worker, &site_a).await;
        let exported = web
            .action(
                "workflowData:exportWorkflowData",
                json!({"sessionToken": root.token, "incident_id": id}),
            )
            .await;
        let mut details_only = exported.value()["data"].clone();
        details_only["children"] = json!({});
        let imported = import(&web, root, details_only, &p.company_b).await;
        assert_eq!(imported["success"], true, "{db:?}: {imported}");
        assert_eq!(imported["created_step"], 1.0, "{db:?}");
        assert!(imported["incident_id"].is_string());
        // The narrative written: step 2.
        let imported = reimport(&web, root, &id, &p.company_b).await;
        assert_eq!(imported["created_step"], 2.0, "{db:?}: {imported}");
        assert!(imported["created_records"].is_object());
        assert!(imported["warnings"].is_array());
        // A during-event answer: step 4 (3-6 are before, during, end, post).
        answer(&web, worker, &id, "during_event").await;
        let imported = reimport(&web, root, &id, &p.company_b).await;
        assert_eq!(imported["created_step"], 4.0, "{db:?}: {imported}");

        // The whole-incident enhancement: every written phase, as enhanceNarrativePhase would.
        let enhanced = web
            .action(
                "aiEnhancement:enhanceIncidentNarrative",
                json!({"sessionToken": worker.token, "incident_id": id}),
            )
            .await;
        let enhanced = enhanced.value().clone();
        assert_eq!(
            enhanced["phases"].as_array().unwrap().len(),
            4,
            "{enhanced}"
        );
        let during = &enhanced["phases"][1];
        assert_eq!(during["phase"], "during_event");
        assert_eq!(during["clarification_count"], 1.0);
        assert!(enhanced["enhanced_content"]
            .as_str()
            .unwrap()
            .starts_with("**Before Event**: "));
        let narrative_id = enhanced["enhanced_narrative_id"]
            .as_str()
            .unwrap()
            .to_string();
        let imported = reimport(&web, root, &id, &p.company_b).await;
        assert_eq!(imported["created_step"], 7.0, "{db:?}: {imported}");

        // The enhanced-text edit: the creator's, per phase; not a colleague's.
        let edit = |who: &Member, phase: Option<&str>| {
            let mut args = json!({"sessionToken": who.token, "enhanced_narrative_id": narrative_id,
                                  "user_edited_content": "Sarah slipped near the sink at 8:10."});
            if let Some(phase) = phase {
                args["phase"] = json!(phase);
            }
            ("mutation", "aiEnhancement:updateEnhancedNarrative", args)
        };
        let out = web
            .calls(&[
                edit(worker, Some("during_event")),
                edit(worker, None),
                edit(lead, Some("during_event")),
                edit(&p.worker_b, Some("during_event")),
                (
                    "query",
                    "aiEnhancement:getEnhancedNarrative",
                    json!({"sessionToken": worker.token, "incident_id": id}),
                ),
            ])
            .await;
        assert_eq!(out[0].value()["success"], true, "{db:?}");
        assert_eq!(out[1].code(), "VALIDATION");
        assert_eq!(out[2].code(), "FORBIDDEN");
        assert_eq!(out[3].code(), "NOT_FOUND");
        assert_eq!(
            out[4].value()["enhanced_content"]["during_event_extra"],
            "Sarah slipped near the sink at 8:10."
        );

        // Before submission: capture pending everywhere.
        let counts = web
            .query(
                "incidents_listing:getIncidentCounts",
                json!({"sessionToken": lead.token}),
            )
            .await;
        assert_eq!(counts.value()["capture_pending"], 1.0, "{db:?}");

        // Step 8: submit.
        let submitted = web
            .mutation(
                "aiEnhancement:submitIncidentForAnalysis",
                json!({"sessionToken": worker.token, "incident_id": id}),
            )
            .await;
        assert_eq!(submitted.value()["success"], true, "{db:?}");

        let by_lead = |path: &str, args: Json| {
            let mut args = args;
            args["sessionToken"] = json!(lead.token);
            ("query", path.to_string(), args)
        };
        let reads = [
            by_lead("incidents:getById", json!({"id": id})),
            by_lead("incidents_listing:getAllCompanyIncidents", json!({})),
            by_lead(
                "incidents_listing:getAllCompanyIncidents",
                json!({"filters": {"status": "analysis_pending"}}),
            ),
            by_lead(
                "incidents_listing:getAllCompanyIncidents",
                json!({"filters": {"status": "capture_pending"}}),
            ),
            by_lead("incidents_listing:getIncidentCounts", json!({})),
            (
                "query",
                "incidents_listing:getMyIncidents".to_string(),
                json!({"sessionToken": worker.token}),
            ),
            (
                "query",
                "incidents_listing:getIncidentCounts".to_string(),
                json!({"sessionToken": worker.token}),
            ),
            (
                "query",
                "incidents_listing:getMyIncompleteIncidents".to_string(),
                json!({"sessionToken": worker.token}),
            ),
            {
                let (kind, path, args) = edit(worker, Some("during_event"));
                (kind, path.to_string(), args)
            },
        ];
        let calls: Vec<(&str, &str, Json)> = reads
            .iter()
            .map(|(k, p, a)| (*k, p.as_str(), a.clone()))
            .collect();
        let out = web.calls(&calls).await;
        let incident = out[0].value();
        assert_eq!(incident["overall_status"], "analysis_pending", "{db:?}");
        assert_eq!(incident["capture_status"], "completed");
        assert_eq!(incident["analysis_status"], "not_started");
        assert_eq!(incident["handoff_status"], "ready_for_analysis");
        let listed = &out[1].value()["incidents"];
        assert_eq!(listed[0]["_id"], id.as_str());
        assert_eq!(listed[0]["overall_status"], "analysis_pending");
        let pending = out[2].value();
        assert_eq!(pending["incidents"].as_array().unwrap().len(), 1);
        assert_eq!(pending["totalCount"], 1.0);
        assert_eq!(out[3].value()["totalCount"], 0.0);
        assert_eq!(
            out[4].value(),
            &json!({"capture_pending": 0, "analysis_pending": 1, "completed": 0, "total": 1,
                    "scope": "company"}),
            "{db:?}"
        );
        let mine = out[5].value();
        assert_eq!(mine["incidents"][0]["overall_status"], "analysis_pending");
        assert_eq!(mine["totalCount"], 1.0);
        assert_eq!(
            out[6].value(),
            &json!({"capture_pending": 0, "analysis_pending": 1, "completed": 0, "total": 1,
                    "scope": "personal"})
        );
        // Submitted captures are not offered for continuing.
        assert_eq!(out[7].value()["count"], 0.0);
        assert_eq!(out[7].value()["incidents"], json!([]));
        // The enhanced text is part of the submitted capture.
        assert_eq!(out[8].code(), "CONFLICT");

        // The submitted capture imports at the consolidated report, as analysis pending.
        let imported = reimport(&web, root, &id, &p.company_b).await;
        assert_eq!(imported["created_step"], 8.0, "{db:?}: {imported}");
        let copy = web
            .query(
                "incidents:getById",
                json!({"sessionToken": p.admin_b.token, "id": imported["incident_id"]}),
            )
            .await;
        assert_eq!(copy.value()["overall_status"], "analysis_pending");
        // Data that does not validate: `{success: false, errors}`, and nothing is written.
        let refused = import(&web, root, json!({"format": "other"}), &p.company_b).await;
        assert_eq!(refused["success"], false, "{db:?}");
        assert!(!refused["errors"].as_array().unwrap().is_empty());
        assert!(refused.get("incident_id").is_none());
        let b_counts = web
            .query(
                "incidents_listing:getIncidentCounts",
                json!({"sessionToken": p.admin_b.token}),
            )
            .await;
        // Five imports: details only, narrative, answer, enhancement (capture pending), submitted.
        assert_eq!(b_counts.value()["total"], 5.0, "{db:?}");
        assert_eq!(b_counts.value()["capture_pending"], 4.0);
        assert_eq!(b_counts.value()["analysis_pending"], 1.0);
        web.stop().await;
    }
}

/// A system administrator (no company) opening /incidents and /new-incident: empty lists, zero
/// counts and no sites, where a company's incidents exist; a signed-out caller is still refused.
#[tokio::test]
async fn callers_without_a_company_get_empty_lists_and_zero_counts() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let site_a = site(&web, &p.company_a).await;
        capture(&web, &p.worker_a, &site_a).await;
        let tok = json!({"sessionToken": p.system_admin.token});
        let out = web
            .calls(&[
                ("query", "incidents_listing:getIncidentCounts", tok.clone()),
                (
                    "query",
                    "incidents_listing:getMyIncompleteIncidents",
                    tok.clone(),
                ),
                (
                    "query",
                    "incidents_listing:getAllCompanyIncidents",
                    json!({"sessionToken": p.system_admin.token,
                           "filters": {"status": "capture_pending"},
                           "pagination": {"limit": 20.0, "offset": 0.0}}),
                ),
                ("query", "incidents_listing:getMyIncidents", tok.clone()),
                ("query", "sites/list:listCompanySites", tok.clone()),
                ("query", "incidents_listing:getIncidentCounts", json!({})),
                ("query", "sites/list:listCompanySites", json!({})),
            ])
            .await;
        assert_eq!(
            out[0].value(),
            &json!({"capture_pending": 0, "analysis_pending": 0, "completed": 0, "total": 0,
                    "scope": "company"}),
            "{db:?}"
        );
        let incomplete = out[1].value();
        assert_eq!(incomplete["incidents"], json!([]));
        assert_eq!(incomplete["count"], 0.0);
        assert_eq!(incomplete["totalCount"], 0.0);
        assert!(incomplete["correlationId"].is_string());
        for list in [out[2].value(), out[3].value()] {
            assert_eq!(list["incidents"], json!([]), "{db:?}");
            assert_eq!(list["totalCount"], 0.0);
            assert_eq!(list["hasMore"], false);
            assert!(list["correlationId"].is_string());
        }
        assert_eq!(out[4].value(), &json!([]));
        assert_eq!(out[5].code(), "UNAUTHENTICATED");
        assert_eq!(out[6].code(), "UNAUTHENTICATED");
        // A bad filter is still refused, company or not.
        let bad = web
            .query(
                "incidents_listing:getAllCompanyIncidents",
                json!({"sessionToken": p.system_admin.token,
                       "filters": {"status": "ready_for_analysis"}}),
            )
            .await;
        assert_eq!(bad.code(), "VALIDATION");
        // The company's own people still see their incident.
        let counts = web
            .query(
                "incidents_listing:getIncidentCounts",
                json!({"sessionToken": p.admin_a.token}),
            )
            .await;
        assert_eq!(counts.value()["capture_pending"], 1.0);
        web.stop().await;
    }
}

/// The prompt-testing panel asks for the narrative with `{incident_id}` and no token: null, not
/// an error. With a token the usual checks apply.
#[tokio::test]
async fn the_narrative_without_a_token_is_null() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let site_a = site(&web, &p.company_a).await;
        let id = capture(&web, &p.worker_a, &site_a).await;
        let path = "incidents:getIncidentNarrative";
        let out = web
            .calls(&[
                ("query", path, json!({"incident_id": id})),
                (
                    "query",
                    path,
                    json!({"incident_id": id, "sessionToken": p.worker_a.token}),
                ),
                (
                    "query",
                    path,
                    json!({"incident_id": id, "sessionToken": p.worker_b.token}),
                ),
                (
                    "query",
                    path,
                    json!({"incident_id": id, "sessionToken": "expired-or-made-up"}),
                ),
            ])
            .await;
        assert_eq!(out[0].value(), &Json::Null, "{db:?}");
        assert_eq!(
            out[1].value()["during_event"],
            "She slipped on the wet kitchen floor."
        );
        assert_eq!(out[2].code(), "NOT_FOUND");
        assert_eq!(out[3].code(), "UNAUTHENTICATED");
        web.stop().await;
    }
}
