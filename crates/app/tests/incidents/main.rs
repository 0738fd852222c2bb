//! Incidents through the real HTTP API on SQLite and (with TEST_DATABASE_URL) PostgreSQL:
//! recording and validation, isolation between companies and ownership (here), the status
//! machine (`status.rs`), narratives and submission (`narratives.rs`), deletion, references and
//! export (`lifecycle.rs`), and listing 10,000 incidents (`listing.rs`).

#[path = "../harness/mod.rs"]
mod harness;
#[path = "../seed/mod.rs"]
mod seed;

mod lifecycle;
mod listing;
mod narratives;
mod status;

use std::time::Duration;

use functions::{Auth, Call, Caller, FunctionError, Registry, RequestId, Runtime, Scope};
use harness::{backends, App, Place};
pub use seed::{insert, member, Member};
use serde_json::{json, Value as Json};
use values::json::{from_clean_json, to_clean_json};
use values::Value;

use seed::now_ms;

pub const HOUR: f64 = 3_600_000.0;

/// A company with two sites.
pub struct Company {
    pub id: String,
    pub site: String,
    pub east: String,
}

pub async fn company(app: &App, name: &str) -> Company {
    let id = seed::company(app, name).await;
    let site = insert(
        app,
        "sites",
        json!({"company_id": id, "name": "Primary", "created_at": 1.0}),
    )
    .await;
    let east = insert(
        app,
        "sites",
        json!({"company_id": id, "name": "East", "created_at": 1.0}),
    )
    .await;
    Company { id, site, east }
}

/// A participant of `company`, recorded by `by`.
pub async fn participant(
    app: &App,
    company: &Company,
    by: &str,
    ndis: &str,
    status: &str,
) -> String {
    insert(
        app,
        "participants",
        json!({"company_id": company.id, "site_id": company.site, "first_name": "Sarah",
               "last_name": "Williams", "date_of_birth": "1985-04-12", "ndis_number": ndis,
               "support_level": "high", "status": status, "name_key": "williams\u{1}sarah",
               "created_at": 1.0, "created_by": by, "updated_at": 1.0, "updated_by": by}),
    )
    .await
}

/// `YYYY-MM-DDTHH:mm` (UTC) of an instant, as the web form sends it.
pub fn form_time(ms: f64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap()
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// Valid details of an event `hours_ago` at `site`.
pub fn details(token: &str, site: &str, hours_ago: f64) -> Json {
    json!({"sessionToken": token, "site_id": site, "reporter_name": "Kim Lee",
           "participant_name": "Sarah Williams", "location": "Kitchen",
           "event_date_time": form_time(now_ms() - hours_ago * HOUR)})
}

pub async fn create(app: &App, token: &str, site: &str) -> String {
    let id = app
        .ok("mutation", "incidents:create", details(token, site, 2.0))
        .await;
    id.as_str().unwrap().to_string()
}

/// A failed call: `(code, message, field)`.
pub async fn failure(app: &App, kind: &str, path: &str, args: Json) -> (String, String, String) {
    let body = app.call(kind, path, args).await;
    assert_eq!(body["status"], "error", "{path} should fail: {body}");
    let text = |v: &Json| v.as_str().unwrap_or_default().to_string();
    let data = &body["errorData"];
    (
        text(&data["code"]),
        text(&data["message"]),
        text(&data["field"]),
    )
}

/// Calls as server code does: internal functions (the AI layer's submission) and test helpers.
pub struct Server {
    runtime: Runtime,
}

impl Server {
    pub fn new(app: &App) -> Server {
        let config = config::Config::from_env(config::Overrides::default(), |k| {
            (k == "SUPPORTSIGNAL_ENV").then(|| "test".to_string())
        })
        .unwrap();
        let mut registry = app::registry(&config);
        registry.merge(test_functions());
        Server {
            runtime: Runtime::new(registry, app.store.clone(), Duration::from_secs(120)),
        }
    }

    pub async fn call(&self, path: &str, token: &str, args: Json) -> Result<Json, FunctionError> {
        let call = Call {
            path: path.to_string(),
            expected: None,
            args: from_clean_json(&args).unwrap(),
            auth: Auth::bearer(token),
            request_id: RequestId::generate(),
            caller: Caller::Server,
        };
        let outcome = self.runtime.call(call).await?;
        Ok(to_clean_json(&outcome.value))
    }
}

/// What the AI layer will do with this module's API, and bulk seeding for the listing test.
fn test_functions() -> Registry {
    use app::incidents::record;
    use values::validator::v;
    let mut r = Registry::new();
    r.internal_mutation_untyped(
        "test:enhance",
        v::object([
            ("incident_id", v::string()),
            ("phase", v::string()),
            ("text", v::string()),
        ]),
        |ctx, args| {
            let now = ctx.now_ms();
            let viewer = app::identity::require_session(&mut ctx.db, ctx.auth, now)?;
            let scope = viewer.company_scope()?;
            let text = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default();
            let incident = record::load(&mut ctx.db, &scope, text("incident_id"))?;
            let narrative = app::narratives::find(&mut ctx.db, &scope, &incident.id)?
                .ok_or_else(|| FunctionError::internal("no narrative"))?;
            let phase = app::narratives::Phase::parse(text("phase")).unwrap();
            let version = app::narratives::write_enhancement(
                &mut ctx.db,
                &scope,
                &incident,
                &narrative,
                (phase, text("text")),
                &viewer.user_id,
                now,
            )?;
            Ok(Value::from(version))
        },
    );
    r.internal_mutation_untyped(
        "test:seedIncidents",
        v::object([("rows", v::any())]),
        |ctx, args| {
            let rows: Vec<record::IncidentRow> =
                values::serde_bridge::from_value(args.get("rows").unwrap())?;
            let mut ids = Vec::new();
            for row in rows {
                let scope = Scope::company(row.company_id);
                ids.push(Value::from(record::insert(&mut ctx.db, &scope, row)?));
            }
            Ok(Value::Array(ids))
        },
    );
    r
}

#[tokio::test]
async fn a_worker_records_an_incident_and_bad_details_are_refused() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let other = company(&app, "Other Care").await;
        let worker = member(&app, Some(&abc.id), "worker@abc.org", "frontline_worker").await;
        let sarah = participant(&app, &abc, &worker.id, "431234567", "active").await;
        let gone = participant(&app, &abc, &worker.id, "431234568", "discharged").await;
        let foreign = participant(&app, &other, &worker.id, "431234569", "active").await;

        let mut args = details(&worker.token, &abc.site, 2.0);
        args["participant_id"] = json!(sarah);
        let id = app.ok("mutation", "incidents:create", args.clone()).await;
        let id = id.as_str().unwrap().to_string();
        let got = app
            .ok(
                "query",
                "incidents:getById",
                json!({"sessionToken": worker.token, "id": id}),
            )
            .await;
        assert_eq!(got["_id"], id.as_str());
        assert_eq!(got["company_id"], abc.id.as_str());
        assert_eq!(got["site_id"], abc.site.as_str());
        assert_eq!(got["participant_id"], sarah.as_str());
        assert_eq!(got["event_date_time"], args["event_date_time"]);
        assert_eq!(
            (
                &got["capture_status"],
                &got["analysis_status"],
                &got["overall_status"]
            ),
            (
                &json!("draft"),
                &json!("not_started"),
                &json!("capture_pending")
            )
        );
        assert_eq!(got["created_by"], worker.id.as_str());
        assert_eq!(got["updated_by"], worker.id.as_str());
        assert!(got["created_at"].as_f64().unwrap() >= got["event_at"].as_f64().unwrap());
        assert!(got.get("participant_sort").is_none(), "internal: {got}");

        // An ISO time with an offset is read as the instant it names.
        let mut iso = details(&worker.token, &abc.site, 0.0);
        iso["event_date_time"] = json!("2030-01-01T10:00:00+10:00");
        let (code, message, _) = failure(&app, "mutation", "incidents:create", iso).await;
        assert_eq!(
            (code.as_str(), message.as_str()),
            (
                "VALIDATION",
                "Incident date cannot be more than 24 hours in the future"
            )
        );

        let long = "x".repeat(101);
        let cases = [
            (
                ("event_date_time", json!(form_time(now_ms() - 31.0 * 24.0 * HOUR))),
                "Incident date cannot be more than 30 days in the past",
            ),
            (
                ("event_date_time", json!(form_time(now_ms() + 25.0 * HOUR))),
                "Incident date cannot be more than 24 hours in the future",
            ),
            (
                ("reporter_name", json!("  ")),
                "Validation failed: Reporter name must be between 1 and 100 characters",
            ),
            (
                ("participant_name", json!(long)),
                "Validation failed: Participant name must be between 1 and 100 characters",
            ),
            (
                ("location", json!("y".repeat(201))),
                "Validation failed: Location must be between 1 and 200 characters",
            ),
            (
                ("event_date_time", json!("last Tuesday")),
                "Validation failed: Event date and time must look like 2025-06-01T14:30 (ISO 8601)",
            ),
            (
                ("participant_id", json!(gone)),
                "Participant has been discharged and is no longer available for new incident reports",
            ),
        ];
        for ((field, value), want) in cases {
            let mut bad = details(&worker.token, &abc.site, 2.0);
            bad[field] = value;
            let (code, message, named) = failure(&app, "mutation", "incidents:create", bad).await;
            assert_eq!((code.as_str(), message.as_str()), ("VALIDATION", want));
            assert_eq!(named, field);
        }
        // Another company's site or participant answers exactly like a missing one.
        let foreign_site = failure(
            &app,
            "mutation",
            "incidents:create",
            details(&worker.token, &other.site, 2.0),
        )
        .await;
        assert_eq!(
            foreign_site,
            (
                "NOT_FOUND".into(),
                "Invalid site: Site does not belong to your company".into(),
                "site_id".into()
            )
        );
        let mut bad = details(&worker.token, &abc.site, 2.0);
        bad["participant_id"] = json!(foreign);
        let (code, message, _) = failure(&app, "mutation", "incidents:create", bad).await;
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("NOT_FOUND", "Participant not found")
        );

        // Editing the details: new values, checked the same way; leaving the site out keeps it.
        let edit = json!({"sessionToken": worker.token, "incidentId": id,
                          "reporter_name": "Kim Lee-Park", "participant_name": "Sarah W",
                          "event_date_time": form_time(now_ms() - 5.0 * HOUR),
                          "location": "Garden", "site_id": abc.east});
        let same = app
            .ok("mutation", "incidents:updateMetadata", edit.clone())
            .await;
        assert_eq!(same, json!(id));
        let got = app
            .ok(
                "query",
                "incidents:getById",
                json!({"sessionToken": worker.token, "id": id}),
            )
            .await;
        assert_eq!(
            (&got["location"], &got["site_id"], &got["reporter_name"]),
            (&json!("Garden"), &json!(abc.east), &json!("Kim Lee-Park"))
        );
        assert!(got.get("participant_id").is_none(), "link removed: {got}");
        let mut bad = edit.clone();
        bad["location"] = json!("");
        let (code, _, field) = failure(&app, "mutation", "incidents:updateMetadata", bad).await;
        assert_eq!((code.as_str(), field.as_str()), ("VALIDATION", "location"));
        app.stop().await;
    }
}

/// Builds a call's arguments for an incident id.
type ArgsFor = fn(&str) -> Json;

#[tokio::test]
async fn other_companies_incidents_answer_like_missing_ones() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let other = company(&app, "Other Care").await;
        let worker = member(&app, Some(&abc.id), "worker@abc.org", "frontline_worker").await;
        let lead_b = member(&app, Some(&other.id), "lead@other.org", "team_lead").await;
        let admin_b = member(&app, Some(&other.id), "admin@other.org", "company_admin").await;
        let id = create(&app, &worker.token, &abc.site).await;
        // A well-formed id that names nothing: an incident created and deleted again.
        let missing = {
            let gone = create(&app, &worker.token, &abc.site).await;
            let admin = member(&app, Some(&abc.id), "admin@abc.org", "company_admin").await;
            app.ok(
                "mutation",
                "incidents:deleteIncident",
                json!({"sessionToken": admin.token, "id": gone}),
            )
            .await;
            gone
        };
        let calls: [(&str, &str, ArgsFor); 9] = [
            ("query", "incidents:getById", |id| json!({"id": id})),
            (
                "query",
                "incidents:getDraftIncident",
                |id| json!({"incidentId": id}),
            ),
            (
                "query",
                "narratives:getByIncidentId",
                |id| json!({"incident_id": id}),
            ),
            (
                "query",
                "narratives:getStatsByIncidentId",
                |id| json!({"incident_id": id}),
            ),
            (
                "mutation",
                "narratives:create",
                |id| json!({"incident_id": id}),
            ),
            (
                "mutation",
                "incidents:updateStatus",
                |id| json!({"id": id, "capture_status": "in_progress"}),
            ),
            (
                "mutation",
                "incidents:updateWorkflowProgress",
                |id| json!({"incidentId": id, "current_step": 2}),
            ),
            (
                "mutation",
                "incidents:deleteIncident",
                |id| json!({"id": id}),
            ),
            ("mutation", "incidents:updateMetadata", |id| {
                json!({"incidentId": id, "reporter_name": "X", "participant_name": "Y",
                       "event_date_time": "2025-01-01T00:00", "location": "Z"})
            }),
        ];
        for (kind, path, args) in calls {
            for token in [&lead_b.token, &admin_b.token] {
                let mut foreign = args(&id);
                foreign["sessionToken"] = json!(token);
                let mut absent = args(&missing);
                absent["sessionToken"] = json!(token);
                let a = failure(&app, kind, path, foreign).await;
                let b = failure(&app, kind, path, absent).await;
                assert_eq!(a, b, "{path}: a foreign id must answer like a missing one");
                // Team leads may not delete at all; everything else reaches the lookup.
                let refused = path == "incidents:deleteIncident" && token == &lead_b.token;
                let want = if refused { "FORBIDDEN" } else { "NOT_FOUND" };
                assert_eq!(a.0, want, "{path}");
            }
        }
        let null = app
            .ok(
                "query",
                "incidents:getIncidentById",
                json!({"sessionToken": lead_b.token, "incident_id": id}),
            )
            .await;
        assert_eq!(null, Json::Null);
        let listed = app
            .ok(
                "query",
                "incidents_listing:getAllCompanyIncidents",
                json!({"sessionToken": lead_b.token}),
            )
            .await;
        assert_eq!(listed["incidents"], json!([]));
        assert_eq!(listed["totalCount"], 0.0);
        // Company A's incident is still there, untouched.
        let got = app
            .ok(
                "query",
                "incidents:getById",
                json!({"sessionToken": worker.token, "id": id}),
            )
            .await;
        assert_eq!(got["capture_status"], "draft");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_worker_edits_only_their_own_capture_and_team_leads_read_all() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let abc = company(&app, "ABC Care").await;
        let worker = member(&app, Some(&abc.id), "worker@abc.org", "frontline_worker").await;
        let colleague = member(&app, Some(&abc.id), "mate@abc.org", "frontline_worker").await;
        let lead = member(&app, Some(&abc.id), "lead@abc.org", "team_lead").await;
        let admin = member(&app, Some(&abc.id), "admin@abc.org", "company_admin").await;
        let id = create(&app, &worker.token, &abc.site).await;
        app.ok(
            "mutation",
            "narratives:create",
            json!({"sessionToken": worker.token, "incident_id": id}),
        )
        .await;

        // A colleague can neither read nor edit it.
        let denied = failure(
            &app,
            "query",
            "incidents:getById",
            json!({"sessionToken": colleague.token, "id": id}),
        )
        .await;
        assert_eq!(
            (denied.0.as_str(), denied.1.as_str()),
            (
                "FORBIDDEN",
                "Access denied: you can only view your own incidents"
            )
        );
        let edits: [(&str, Json); 5] = [
            (
                "incidents:updateMetadata",
                json!({"incidentId": id, "reporter_name": "X", "participant_name": "Y",
                       "event_date_time": form_time(now_ms()), "location": "Z"}),
            ),
            (
                "narratives:update",
                json!({"incident_id": id, "before_event": "not mine"}),
            ),
            (
                "incidents:updateWorkflowProgress",
                json!({"incidentId": id, "current_step": 3}),
            ),
            (
                "incidents:updateStatus",
                json!({"id": id, "capture_status": "in_progress"}),
            ),
            ("incidents:autoCompleteWorkflow", json!({"incident_id": id})),
        ];
        // Team leads and company admins read every incident of the company, but the capture
        // stays its creator's: nobody else edits it.
        for who in [&colleague, &lead, &admin] {
            for (path, args) in &edits {
                let mut args = args.clone();
                args["sessionToken"] = json!(who.token);
                let (code, message, _) = failure(&app, "mutation", path, args).await;
                assert_eq!(code, "FORBIDDEN", "{path}");
                assert_eq!(message, "Access denied: can only update your own incidents");
            }
        }
        for who in [&lead, &admin] {
            let got = app
                .ok(
                    "query",
                    "incidents:getById",
                    json!({"sessionToken": who.token, "id": id}),
                )
                .await;
            assert_eq!(got["_id"], id.as_str());
            let narrative = app
                .ok(
                    "query",
                    "narratives:getByIncidentId",
                    json!({"sessionToken": who.token, "incident_id": id}),
                )
                .await;
            assert_eq!(narrative["incident_id"], id.as_str());
        }
        // The creator edits.
        app.ok(
            "mutation",
            "narratives:update",
            json!({"sessionToken": worker.token, "incident_id": id,
                   "before_event": "Mine to write."}),
        )
        .await;
        // Only administrators delete.
        for who in [&worker, &lead] {
            let (code, _, _) = failure(
                &app,
                "mutation",
                "incidents:deleteIncident",
                json!({"sessionToken": who.token, "id": id}),
            )
            .await;
            assert_eq!(code, "FORBIDDEN");
        }
        app.stop().await;
    }
}
