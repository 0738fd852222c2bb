//! Companies as the web app uses them (contract §3, §11, §12.1, §13): the platform totals on
//! /admin/companies, the test-company cleanup dialog, the company settings form, the edit page's
//! `null` for a missing company, the company page for users without one, and the database export
//! the developer tools fetch over raw HTTP.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use crate::harness::App;
use crate::seed::{self, Member};
use crate::{backends, Web};

const METRICS: &str = "companies/admin:getSystemMetrics";
const PREVIEW: &str = "companies/admin:previewTestCompanyCleanup";
const EXECUTE: &str = "companies/admin:executeTestCompanyCleanup";
const UPDATE: &str = "companies/updateCompany:updateCompany";
const EXPORT: &str = "exports:generateDatabaseExport";

/// `YYYY-MM-DDTHH:mm` two hours ago, as the incident form sends it.
fn event_time() -> String {
    chrono::DateTime::from_timestamp_millis(seed::now_ms() as i64 - 7_200_000)
        .unwrap()
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// An incident recorded through the app by `worker` at `site`, with its narrative started.
async fn incident(web: &Web, worker: &Member, site: &str) -> String {
    let out = web
        .calls(&[(
            "mutation",
            "incidents:create",
            json!({"sessionToken": worker.token, "site_id": site, "reporter_name": "Kim Lee",
                   "participant_name": "Sarah Williams", "location": "Kitchen",
                   "event_date_time": event_time()}),
        )])
        .await;
    let id = out[0].value().as_str().unwrap().to_string();
    web.mutation(
        "narratives:create",
        json!({"sessionToken": worker.token, "incident_id": id}),
    )
    .await
    .value();
    id
}

fn site(company: &str, name: &str) -> Json {
    json!({"company_id": company, "name": name, "created_at": 1.0})
}

fn participant(company: &str, by: &str, first: &str, last: &str) -> Json {
    json!({"company_id": company, "first_name": first, "last_name": last,
           "date_of_birth": "1985-04-12", "ndis_number": "431234567", "support_level": "high",
           "status": "active", "name_key": format!("{}\u{1}{}", last.to_lowercase(), first.to_lowercase()),
           "created_at": 1.0, "created_by": by, "updated_at": 1.0, "updated_by": by})
}

/// Per table, how many rows mention any of `needles` (ids, emails), the audit log aside: it is
/// append-only and keeps its history of a deleted company.
async fn rows_mentioning(app: &App, needles: &[String]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for table in app::schema().tables {
        if table.name == "audit_log" {
            continue;
        }
        let name: &'static str = Box::leak(table.name.clone().into_boxed_str());
        let n = seed::rows(app, name)
            .await
            .iter()
            .map(|r| values::json::to_clean_json(&r.to_value()).to_string())
            .filter(|text| needles.iter().any(|n| text.contains(n.as_str())))
            .count();
        if n > 0 {
            out.insert(table.name.clone(), n);
        }
    }
    out
}

#[tokio::test]
async fn system_metrics_count_the_whole_platform_for_platform_administrators_only() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let app = &web.app;
        let demo = seed::anyone(app, None, "demo_admin").await;
        seed::insert(app, "sites", site(&p.company_a, "Primary")).await;
        let east = seed::insert(app, "sites", site(&p.company_a, "East")).await;
        seed::insert(app, "sites", site(&p.company_b, "Primary")).await;
        for (first, last) in [("Sarah", "Williams"), ("Tom", "Nguyen")] {
            let row = participant(&p.company_a, &p.worker_a.id, first, last);
            seed::insert(app, "participants", row).await;
        }
        incident(&web, &p.worker_a, &east).await;
        seed::insert(
            app,
            "companies",
            json!({"name": "Sandbox", "slug": "sandbox", "contact_email": "s@example.org",
                   "status": "test", "created_at": 1.0}),
        )
        .await;

        let out = web
            .calls(&[
                (
                    "query",
                    METRICS,
                    json!({"sessionToken": p.system_admin.token}),
                ),
                ("query", METRICS, json!({"sessionToken": demo.token})),
                ("query", METRICS, json!({"sessionToken": p.admin_a.token})),
                ("query", METRICS, json!({"sessionToken": p.lead_a.token})),
                ("query", METRICS, json!({})),
            ])
            .await;
        let m = out[0].value();
        assert_eq!(m["totalCompanies"], 3.0, "{db:?}: {m}");
        // Five company members, the system administrator and the demo admin.
        assert_eq!(m["totalUsers"], 7.0, "{db:?}");
        assert_eq!(m["totalParticipants"], 2.0, "{db:?}");
        assert_eq!(m["totalSites"], 3.0, "{db:?}");
        assert_eq!(m["totalIncidents"], 1.0, "{db:?}");
        assert_eq!(
            m["companiesByStatus"],
            json!({"active": 2, "test": 1}),
            "{db:?}"
        );
        assert_eq!(out[1].value(), m, "{db:?}: demo admins see the same page");
        assert_eq!(out[2].code(), "FORBIDDEN", "{db:?}");
        assert_eq!(out[3].code(), "FORBIDDEN", "{db:?}");
        assert_eq!(out[4].code(), "UNAUTHENTICATED", "{db:?}");
        web.stop().await;
    }
}

#[tokio::test]
async fn cleanup_previews_exact_counts_then_deletes_every_row_of_a_test_company_and_nothing_else() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let app = &web.app;
        let sys = &p.system_admin;
        let demo = seed::anyone(app, None, "demo_admin").await;

        // A test company as the admin pages create it: its admin (with a reset token and the
        // email carrying it) and its "Primary" site.
        let created = web
            .mutation(
                "companies:createCompany",
                json!({"sessionToken": sys.token, "name": "Sandbox Care",
                       "contactEmail": "office@sandbox-care.org",
                       "adminEmail": "admin@sandbox-care.org", "adminName": "Sam Admin",
                       "status": "test"}),
            )
            .await;
        let t = created.value()["companyId"].as_str().unwrap().to_string();
        let t_admin = created.value()["adminUserId"].as_str().unwrap().to_string();
        let worker =
            seed::member(app, Some(&t), "worker@sandbox-care.org", "frontline_worker").await;
        let east = seed::insert(app, "sites", site(&t, "East")).await;
        seed::insert(
            app,
            "participants",
            participant(&t, &worker.id, "Sarah", "Williams"),
        )
        .await;
        seed::insert(
            app,
            "participants",
            participant(&t, &worker.id, "Tom", "Nguyen"),
        )
        .await;
        let inc = incident(&web, &worker, &east).await;
        let w = &worker.id;
        seed::insert(
            app,
            "clarification_questions",
            json!({"company_id": t, "incident_id": inc, "phase": "before_event",
                   "question_id": "before_event_q1", "question_text": "Who was there?",
                   "question_order": 1.0, "is_active": true, "ai_model": "m", "provider": "p",
                   "correlation_id": "c", "created_at": 1.0, "created_by": w, "updated_at": 1.0}),
        )
        .await;
        // Answers refer to questions by `<phase>_qN`, not by document id (the reference missed them).
        seed::insert(
            app,
            "clarification_answers",
            json!({"company_id": t, "incident_id": inc, "question_id": "before_event_q1",
                   "phase": "before_event", "answer_text": "Two staff", "character_count": 9.0,
                   "word_count": 2.0, "is_complete": true, "answered_by": w,
                   "created_at": 1.0, "updated_at": 1.0}),
        )
        .await;
        seed::insert(
            app,
            "workflow_handoffs",
            json!({"company_id": t, "incident_id": inc, "from_workflow": "incident_capture",
                   "to_workflow": "incident_analysis", "handoff_data": {},
                   "team_leader_notified": false, "handoff_accepted": false, "created_at": 1.0,
                   "created_by": w, "updated_at": 1.0, "updated_by": w}),
        )
        .await;
        let log = |incident: Option<&str>| {
            let mut row = json!({"correlation_id": "c1", "operation": "enhance_narrative",
                   "variables": {}, "tokens_in": 1.0, "tokens_out": 1.0, "cost_usd": 0.0,
                   "latency_ms": 1.0, "success": true, "attempts": [], "company_id": t,
                   "created_at": 1.0});
            if let Some(i) = incident {
                row["incident_id"] = json!(i);
            }
            row
        };
        seed::insert(app, "ai_request_logs", log(Some(&inc))).await;
        seed::insert(app, "ai_request_logs", log(None)).await;
        seed::insert(
            app,
            "ai_usage_daily",
            json!({"company_id": t, "owner_key": t, "day": 1.0, "operation": "x",
                   "requests": 1.0, "successes": 1.0, "failures": 0.0, "rejected": 0.0,
                   "tokens_in": 1.0, "tokens_out": 1.0, "cost_usd": 0.0,
                   "latency_ms_total": 1.0}),
        )
        .await;
        seed::insert(
            app,
            "user_invitations",
            json!({"email": "invitee@elsewhere.org", "company_id": t, "role": "team_lead",
                   "invited_by": t_admin, "inviter_name": "Sam", "inviter_email":
                   "admin@sandbox-care.org", "token_hash": "00", "expires_at": 9e15,
                   "status": "pending", "created_at": 1.0}),
        )
        .await;
        // Queued without a company: found by its address.
        seed::insert(
            app,
            "email_outbox",
            json!({"to": "invitee@elsewhere.org", "subject": "Join Sandbox Care", "text": "x",
                   "kind": "invitation", "status": "pending", "attempts": 0.0,
                   "next_attempt_at": 1.0, "created_at": 1.0}),
        )
        .await;
        seed::insert(
            app,
            "accounts",
            json!({"user_id": w, "provider": "github", "provider_account_id": "4242",
                   "created_at": 1.0}),
        )
        .await;
        let sys_session = seed::rows(app, "sessions")
            .await
            .into_iter()
            .find(|s| s.get("user_id").and_then(values::Value::as_str) == Some(sys.id.as_str()))
            .unwrap()
            .id
            .encode();
        seed::insert(
            app,
            "impersonation_sessions",
            json!({"admin_user_id": sys.id, "admin_session_id": sys_session,
                   "target_user_id": w, "target_company_id": t, "token_hash": "11",
                   "reason": "support", "created_at": 1.0, "expires_at": 9e15,
                   "is_active": true, "correlation_id": "c"}),
        )
        .await;

        // Company A has the same kinds of rows, which must all stay.
        let a_site = seed::insert(app, "sites", site(&p.company_a, "Primary")).await;
        incident(&web, &p.worker_a, &a_site).await;
        let a_needles = vec![
            p.company_a.clone(),
            p.admin_a.id.clone(),
            p.lead_a.id.clone(),
            p.worker_a.id.clone(),
        ];
        let a_before = rows_mentioning(app, &a_needles).await;
        let t_needles: Vec<String> = [
            t.as_str(),
            t_admin.as_str(),
            w.as_str(),
            "admin@sandbox-care.org",
            "worker@sandbox-care.org",
            "invitee@elsewhere.org",
        ]
        .map(str::to_string)
        .to_vec();
        let t_before = rows_mentioning(app, &t_needles).await;
        for table in [
            "companies",
            "users",
            "sessions",
            "password_reset_tokens",
            "accounts",
            "impersonation_sessions",
            "email_outbox",
            "user_invitations",
            "sites",
            "participants",
            "incidents",
            "incident_counts",
            "incident_narratives",
            "clarification_questions",
            "clarification_answers",
            "workflow_handoffs",
            "ai_request_logs",
            "ai_usage_daily",
        ] {
            assert!(
                t_before.contains_key(table),
                "{db:?}: seeding missed {table}"
            );
        }
        let t_total: usize = t_before.values().sum();

        let preview = json!({"sessionToken": sys.token, "companyId": t});
        let out = web
            .calls(&[
                ("query", PREVIEW, preview.clone()),
                (
                    "query",
                    PREVIEW,
                    json!({"sessionToken": demo.token, "companyId": t}),
                ),
                (
                    "query",
                    PREVIEW,
                    json!({"sessionToken": p.admin_a.token, "companyId": t}),
                ),
                (
                    "query",
                    PREVIEW,
                    json!({"sessionToken": p.lead_a.token, "companyId": t}),
                ),
                (
                    "mutation",
                    EXECUTE,
                    json!({"sessionToken": demo.token, "companyId": t}),
                ),
                (
                    "mutation",
                    EXECUTE,
                    json!({"sessionToken": p.admin_a.token, "companyId": t}),
                ),
                (
                    "mutation",
                    EXECUTE,
                    json!({"sessionToken": p.lead_a.token, "companyId": t}),
                ),
                // Not a test company.
                (
                    "query",
                    PREVIEW,
                    json!({"sessionToken": sys.token, "companyId": p.company_a}),
                ),
                (
                    "mutation",
                    EXECUTE,
                    json!({"sessionToken": sys.token, "companyId": p.company_b}),
                ),
            ])
            .await;
        let v = out[0].value();
        assert_eq!(v["company"]["_id"], t.as_str(), "{db:?}");
        assert_eq!(v["company"]["name"], "Sandbox Care");
        assert_eq!(v["company"]["status"], "test");
        assert_eq!(
            v["sites"],
            json!({"count": 2, "names": ["East", "Primary"]})
        );
        assert_eq!(v["users"]["count"], 2.0);
        let mut emails: Vec<&str> = v["users"]["emails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        emails.sort_unstable();
        assert_eq!(
            emails,
            ["admin@sandbox-care.org", "worker@sandbox-care.org"]
        );
        assert_eq!(
            v["participants"],
            json!({"count": 2, "names": ["Tom Nguyen", "Sarah Williams"]})
        );
        assert_eq!(v["incidents"]["count"], 1.0);
        assert_eq!(v["userInvitations"]["count"], 1.0);
        assert_eq!(v["sessions"]["count"], 1.0);
        assert_eq!(
            v["totalRecords"], t_total as f64,
            "{db:?}: counted, not guessed: {t_before:?}"
        );
        for refused in &out[1..7] {
            assert_eq!(refused.code(), "FORBIDDEN", "{db:?}");
            assert_eq!(
                refused.message(),
                "Only system administrators can delete test companies"
            );
        }
        for not_test in &out[7..9] {
            assert_eq!(
                not_test.message(),
                "Only test companies can be deleted. This company has status: active",
                "{db:?}"
            );
        }
        assert_eq!(
            rows_mentioning(app, &t_needles).await,
            t_before,
            "{db:?}: refusals delete nothing"
        );

        let done = web
            .mutation(EXECUTE, json!({"sessionToken": sys.token, "companyId": t}))
            .await;
        let done = done.value();
        assert_eq!(done["success"], true, "{db:?}");
        assert_eq!(done["companyName"], "Sandbox Care");
        let counts = &done["deletedCounts"];
        for (key, n) in [
            ("incidents", 1.0),
            ("participants", 2.0),
            ("sites", 2.0),
            ("user_invitations", 1.0),
            ("users", 2.0),
            ("companies", 1.0),
        ] {
            assert_eq!(counts[key], n, "{db:?}: {key} in {counts}");
        }
        let deleted: f64 = counts
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_f64().unwrap())
            .sum();
        assert_eq!(deleted, t_total as f64, "{db:?}: {counts}");
        assert_eq!(
            rows_mentioning(app, &t_needles).await,
            BTreeMap::new(),
            "{db:?}: nothing of the company is left"
        );
        assert_eq!(
            rows_mentioning(app, &a_needles).await,
            a_before,
            "{db:?}: other companies are untouched"
        );
        let audit: Vec<_> = seed::rows(app, "audit_log")
            .await
            .into_iter()
            .filter(|r| r.get("event").and_then(values::Value::as_str) == Some("company_deleted"))
            .collect();
        assert_eq!(audit.len(), 1, "{db:?}");
        let entry = values::json::to_clean_json(&audit[0].to_value());
        assert_eq!(entry["actor_id"], sys.id.as_str());
        assert_eq!(entry["target_id"], t.as_str());
        assert_eq!(entry["details"]["name"], "Sandbox Care");
        assert!(entry.get("company_id").is_none(), "{entry}");

        // The company is gone: the edit page gets null, the dialog "Company not found".
        let after = web
            .calls(&[
                (
                    "query",
                    "companies/admin:getCompanyForEdit",
                    json!({"sessionToken": sys.token, "companyId": t}),
                ),
                ("query", PREVIEW, preview.clone()),
                ("mutation", EXECUTE, preview),
            ])
            .await;
        assert_eq!(after[0].value(), &Json::Null, "{db:?}");
        assert_eq!(after[1].message(), "Company not found");
        assert_eq!(after[2].message(), "Company not found");
        web.stop().await;
    }
}

#[tokio::test]
async fn company_admins_update_their_own_company_but_not_its_status() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let app = &web.app;
        let form = |token: &str, name: &str, email: &str, status: &str| json!({"sessionToken": token, "name": name, "contact_email": email, "status": status});
        let admin = &p.admin_a.token;
        let out = web
            .calls(&[
                // The form sends the current status and email back unchanged.
                (
                    "mutation",
                    UPDATE,
                    form(
                        admin,
                        "  Harbour Care Services ",
                        "office@example.org",
                        "active",
                    ),
                ),
                (
                    "mutation",
                    UPDATE,
                    form(admin, "Harbour Care", "Team@Harbour.org", "active"),
                ),
                (
                    "mutation",
                    UPDATE,
                    form(admin, "H", "team@harbour.org", "active"),
                ),
                (
                    "mutation",
                    UPDATE,
                    form(admin, "Harbour", "not-an-email", "active"),
                ),
                (
                    "mutation",
                    UPDATE,
                    form(admin, "Harbour", "team@harbour.org", "suspended"),
                ),
                (
                    "mutation",
                    UPDATE,
                    form(admin, "Harbour", "team@harbour.org", "test"),
                ),
                (
                    "mutation",
                    UPDATE,
                    form(&p.lead_a.token, "Mine", "x@harbour.org", "active"),
                ),
                (
                    "mutation",
                    UPDATE,
                    form(&p.worker_a.token, "Mine", "x@harbour.org", "active"),
                ),
                (
                    "mutation",
                    UPDATE,
                    form(&p.system_admin.token, "Mine", "x@harbour.org", "active"),
                ),
            ])
            .await;
        let first = out[0].value();
        assert_eq!(first["company"]["_id"], p.company_a.as_str(), "{db:?}");
        assert_eq!(first["company"]["name"], "Harbour Care Services");
        assert!(first["correlationId"]
            .as_str()
            .is_some_and(|c| !c.is_empty()));
        let second = out[1].value();
        assert_eq!(
            second["company"]["contact_email"], "team@harbour.org",
            "{db:?}"
        );
        assert_eq!(second["company"]["status"], "active");
        assert_eq!(
            out[2].message(),
            "Company name must be at least 2 characters long"
        );
        assert_eq!(out[3].message(), "Invalid email format");
        for refused in &out[4..6] {
            assert_eq!(refused.code(), "FORBIDDEN", "{db:?}");
            assert_eq!(
                refused.message(),
                "Only platform administrators can change a company's status"
            );
        }
        for refused in &out[6..8] {
            assert_eq!(
                refused.message(),
                "Only company administrators can update company information",
                "{db:?}"
            );
        }
        assert_eq!(
            out[8].message(),
            "User must be associated with a company",
            "{db:?}"
        );

        let companies = seed::rows(app, "companies").await;
        let field = |id: &str, f: &str| {
            let c = companies.iter().find(|c| c.id.encode() == id).unwrap();
            c.get(f)
                .and_then(values::Value::as_str)
                .unwrap()
                .to_string()
        };
        assert_eq!(field(&p.company_a, "name"), "Harbour Care");
        assert_eq!(field(&p.company_a, "status"), "active", "{db:?}");
        assert_eq!(field(&p.company_b, "name"), "Ridge Support", "{db:?}");
        assert_eq!(field(&p.company_b, "contact_email"), "office@example.org");
        let updates: Vec<_> = seed::rows(app, "audit_log")
            .await
            .into_iter()
            .map(|r| values::json::to_clean_json(&r.to_value()))
            .filter(|r| r["event"] == "company_updated")
            .collect();
        assert_eq!(updates.len(), 2, "{db:?}");
        assert_eq!(updates[0]["company_id"], p.company_a.as_str());
        assert_eq!(updates[0]["actor_id"], p.admin_a.id.as_str());
        assert_eq!(updates[0]["details"]["fields"], "name");
        assert_eq!(updates[1]["details"]["fields"], "name,contact_email");

        // A platform administrator who belongs to a company may change its status.
        let root = seed::anyone(app, Some(&p.company_b), "system_admin").await;
        let suspended = web
            .mutation(
                UPDATE,
                form(
                    &root.token,
                    "Ridge Support",
                    "office@example.org",
                    "suspended",
                ),
            )
            .await;
        assert_eq!(
            suspended.value()["company"]["status"],
            "suspended",
            "{db:?}"
        );
        let gone = web
            .query(
                "users:getCurrentUser",
                json!({"sessionToken": p.worker_b.token}),
            )
            .await;
        assert_eq!(
            gone.value(),
            &Json::Null,
            "{db:?}: suspension ends sessions"
        );
        web.stop().await;
    }
}

#[tokio::test]
async fn company_reads_answer_null_for_no_company_and_missing_companies() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let mine = "companies/getCompany:getCurrentUserCompany";
        let edit = "companies/admin:getCompanyForEdit";
        let out = web
            .calls(&[
                ("query", mine, json!({"sessionToken": p.system_admin.token})),
                ("query", mine, json!({"sessionToken": p.worker_a.token})),
                (
                    "query",
                    edit,
                    json!({"sessionToken": p.system_admin.token, "companyId": p.company_b}),
                ),
                (
                    "query",
                    edit,
                    json!({"sessionToken": p.admin_a.token, "companyId": p.company_a}),
                ),
            ])
            .await;
        assert_eq!(out[0].value(), &Json::Null, "{db:?}");
        assert_eq!(out[1].value()["name"], "Harbour Care", "{db:?}");
        assert_eq!(out[2].value()["name"], "Ridge Support", "{db:?}");
        assert_eq!(
            out[3].code(),
            "FORBIDDEN",
            "{db:?}: the edit page is for platform admins"
        );
        web.stop().await;
    }
}

/// The export page's request: a raw `POST /api/query`, the token in an args object.
async fn export(app: &App, token: Option<&str>) -> Json {
    let args = match token {
        Some(t) => json!({"sessionToken": t}),
        None => json!({}),
    };
    let response = app
        .http
        .post(format!("{}/api/query", app.url))
        .json(&json!({"path": EXPORT, "args": args, "format": "json"}))
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_database_export_is_for_system_admins_and_carries_no_secrets() {
    for db in backends() {
        let web = Web::start(db).await;
        let p = web.people().await;
        let app = &web.app;
        let demo = seed::anyone(app, None, "demo_admin").await;
        // A real password hash, and token hashes in the tables that hold them.
        seed::user(app, Some(&p.company_a), "hashed@harbour.org", "team_lead").await;
        seed::insert(
            app,
            "user_invitations",
            json!({"email": "new@harbour.org", "company_id": p.company_a, "role": "team_lead",
                   "invited_by": p.admin_a.id, "inviter_name": "A", "inviter_email":
                   "admin@harbour.org", "token_hash": "feedface-invitation", "expires_at": 9e15,
                   "status": "pending", "created_at": 1.0}),
        )
        .await;
        seed::insert(app, "sites", site(&p.company_a, "Primary")).await;

        let body = export(app, Some(&p.system_admin.token)).await;
        assert_eq!(body["status"], "success", "{db:?}: {body}");
        let v = &body["value"];
        let meta = &v["metadata"];
        assert_eq!(meta["exportType"], "full");
        assert_eq!(meta["exportedBy"], "root@platform.org");
        // The six people, the demo admin and the user with a password.
        assert_eq!(meta["recordCounts"]["users"], 8.0, "{db:?}");
        assert_eq!(meta["recordCounts"]["companies"], 2.0);
        assert_eq!(meta["recordCounts"]["user_invitations"], 1.0);
        let data = v["data"].as_object().unwrap();
        let total: usize = data
            .values()
            .map(|rows| rows.as_array().unwrap().len())
            .sum();
        assert_eq!(meta["totalRecords"], total as f64);
        for table in [
            "companies",
            "users",
            "user_invitations",
            "sites",
            "accounts",
            "impersonation_sessions",
            "participants",
            "incidents",
            "incident_narratives",
            "clarification_questions",
            "clarification_answers",
            "workflow_handoffs",
            "ai_prompts",
            "ai_request_logs",
        ] {
            assert!(data.contains_key(table), "{db:?}: {table} is missing");
        }
        for table in ["sessions", "password_reset_tokens", "email_outbox"] {
            assert!(!data.contains_key(table), "{db:?}: {table} is exported");
            let excluded = meta["sanitization"]["excludedTables"].as_array().unwrap();
            assert!(
                excluded.contains(&json!(table)),
                "{db:?}: {table} not reported"
            );
        }
        assert!(data["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u.get("password").is_none()));
        assert_eq!(
            meta["sanitization"]["removedFields"]["user_invitations"],
            json!(["token_hash"])
        );
        let text = body.to_string();
        assert!(!text.contains("$argon2"), "{db:?}: a password hash leaked");
        assert!(
            !text.contains("feedface-invitation"),
            "{db:?}: a token hash leaked"
        );
        let session_hash = app::identity::sessions::hash_token(&p.worker_a.token);
        assert!(
            !text.contains(&session_hash),
            "{db:?}: a session hash leaked"
        );

        let none = export(app, None).await;
        assert_eq!(none["status"], "error", "{db:?}");
        assert_eq!(
            none["errorMessage"],
            "Authentication required. Please log in."
        );
        for token in [&p.admin_a.token, &demo.token, &p.worker_a.token] {
            let refused = export(app, Some(token)).await;
            assert_eq!(
                refused["errorMessage"],
                "Unauthorized. System admin access required for database exports.",
                "{db:?}"
            );
        }
        web.stop().await;
    }
}
