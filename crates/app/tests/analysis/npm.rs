//! The whole analysis through the official npm client (`npm/analysis.mjs`): capture and
//! submission by the worker, the team told in-app and by email, the lead's analysis with a stale
//! second save, the admin's reportable decision, a reminder (time driven through the scheduler),
//! a live deadline list emptied by the immediate notification, completion, the report, refusals
//! and the reopening. SQLite and (with TEST_DATABASE_URL) PostgreSQL.

use super::*;
use crate::node_client;

async fn step(app: &App, db: Db, name: &str, input: Json) -> Json {
    tokio::task::spawn_blocking(node_client::ensure_client_installed)
        .await
        .unwrap();
    node_client::step("analysis.mjs", &app.url, name, input, format!("{db:?}")).await
}

fn code(v: &Json) -> &str {
    assert_eq!(
        v["$error"]["isConvexError"], true,
        "expected a refusal: {v}"
    );
    v["$error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn the_analysis_through_the_official_client() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let p = people(&app).await;
        let narrative: serde_json::Map<String, Json> = PHASES
            .iter()
            .zip(NARRATIVE)
            .map(|(phase, text)| (phase.to_string(), json!(text)))
            .collect();

        let captured = step(
            &app,
            db,
            "capture",
            json!({"worker": p.worker.token, "site": p.site, "narrative": narrative}),
        )
        .await;
        assert_eq!(code(&captured["queueBefore"]), "FORBIDDEN", "{db:?}");
        assert_eq!(captured["submitted"]["success"], true);
        let id = captured["incidentId"].as_str().unwrap().to_string();
        // The team hears of it: in-app (read back below through the client) and by email.
        wait_for_note(&app, &p.lead, "analysis_ready", 1).await;
        eventually("the email to the lead", || async {
            rows(&app, "email_outbox")
                .await
                .iter()
                .any(|e| e["to"] == "lead@abc.org" && e["kind"] == "notification_analysis_ready")
                .then_some(())
        })
        .await;

        let a = step(
            &app,
            db,
            "analyse",
            json!({"lead": p.lead.token, "lead2": p.lead2.token, "incidentId": id}),
        )
        .await;
        assert_eq!(a["inbox"]["page"][0]["kind"], "analysis_ready", "{db:?}");
        assert_eq!(a["queue"]["page"][0]["incident_id"], id.as_str());
        assert_eq!(a["generated"]["success"], true);
        assert_eq!(a["generated"]["offline"], true);
        assert_eq!(a["first"]["revision"], 2.0);
        assert_eq!(a["second"]["revision"], 3.0);
        assert_eq!(code(&a["stale"]), "CONFLICT");
        assert_eq!(a["stale"]["$error"]["field"], "expected_revision");
        assert_eq!(code(&a["otherLead"]), "CONFLICT");
        assert_eq!(a["otherLead"]["$error"]["field"], "assigned_to");
        assert_eq!(a["reviewed"]["user_reviewed"], true);
        assert_eq!(
            a["screened"]["suggestion"]["categories"],
            json!(["serious_injury"]),
            "{db:?}"
        );
        let view = &a["view"]["analysis"];
        assert_eq!(view["revision"], 3.0);
        assert_eq!(view["conditions"].as_array().unwrap().len(), 1);
        assert_eq!(view["conditions_original"], a["generated"]["conditions"]);

        let decided = step(
            &app,
            db,
            "decide",
            json!({"admin": p.admin.token, "incidentId": id,
                   "categories": a["screened"]["suggestion"]["categories"]}),
        )
        .await;
        let aware = decided["decided"]["aware_at"].as_f64().unwrap();
        assert_eq!(decided["decided"]["due_at"].as_f64().unwrap(), aware + DAY);
        assert_eq!(decided["deadlines"][0]["incident_id"], id.as_str());

        // Three quarters of the window pass: the 50% and 75% reminders go out, once each.
        let mut due = reminders(&app).await;
        due.sort_by(|a, b| a.3.total_cmp(&b.3));
        for (schedule, _, _, _) in &due[..2] {
            make_due(&app, schedule).await;
        }
        wait_for_note(&app, &p.admin, "reportable_deadline", 2).await;

        let live = step(
            &app,
            db,
            "live",
            json!({"lead": p.lead.token, "admin": p.admin.token, "incidentId": id,
                   "reference": "NDIS-2024-0042"}),
        )
        .await;
        let seen = live["seen"].as_array().unwrap();
        assert_eq!(seen.first(), Some(&json!(1)), "{db:?}: {live}");
        assert_eq!(seen.last(), Some(&json!(0)), "{db:?}: {live}");
        let states: Vec<String> = reminders(&app)
            .await
            .into_iter()
            .map(|(_, _, state, _)| state)
            .collect();
        assert_eq!(
            states.iter().filter(|s| *s == "canceled").count(),
            2,
            "{states:?}"
        );
        assert_eq!(
            wait_for_note(&app, &p.admin, "reportable_deadline", 2)
                .await
                .len(),
            2
        );

        let done = step(
            &app,
            db,
            "complete",
            json!({"lead": p.lead.token, "worker": p.worker.token, "admin": p.admin.token,
                   "outsider": p.outsider.token, "incidentId": id}),
        )
        .await;
        assert_eq!(code(&done["byWorker"]), "FORBIDDEN", "{db:?}");
        assert_eq!(done["completed"]["success"], true, "{done}");
        assert_eq!(done["incident"]["overall_status"], "completed");
        assert_eq!(done["reporterView"]["analysis"]["status"], "completed");
        assert_eq!(code(&done["workerQueue"]), "FORBIDDEN");
        assert_eq!(code(&done["foreign"]), "NOT_FOUND");
        let report = done["report"]["content"].as_str().unwrap();
        assert!(report.contains("NDIS-2024-0042"), "{report}");
        assert!(report.contains("Wet floor after mopping"), "{report}");
        assert_eq!(code(&done["reopenByLead"]), "FORBIDDEN");
        assert_eq!(done["reopened"]["reopened_count"], 1.0);
        assert_eq!(done["after"]["analysis_status"], "in_progress");
        wait_for_note(&app, &p.worker, "analysis_completed", 1).await;
        app.stop().await;
    }
}
