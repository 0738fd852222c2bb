//! Files through the real server on SQLite and (with TEST_DATABASE_URL) PostgreSQL: incident
//! attachments (here) and the PDF incident report (`pdf.rs`).

#[path = "../harness/mod.rs"]
mod harness;
#[path = "../seed/mod.rs"]
mod seed;

mod pdf;

use harness::{backends, App, Place};
use seed::{anyone, insert, Member};
use serde_json::{json, Value as Json};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";

pub struct Company {
    pub id: String,
    pub site: String,
}

pub async fn company(app: &App, name: &str) -> Company {
    let id = seed::company(app, name).await;
    let site = insert(
        app,
        "sites",
        json!({"company_id": id, "name": "Primary", "created_at": 1.0}),
    )
    .await;
    Company { id, site }
}

pub async fn incident(app: &App, worker: &Member, site: &str) -> String {
    let args = json!({"sessionToken": worker.token, "site_id": site, "reporter_name": "Kim Lee",
                      "participant_name": "Sarah Williams", "location": "Kitchen",
                      "event_date_time": "2026-11-30T14:30"});
    let id = app.ok("mutation", "incidents:create", args).await;
    id.as_str().unwrap().to_string()
}

/// `(code, message)` of a failed call.
pub async fn failure(app: &App, kind: &str, path: &str, args: Json) -> (String, String) {
    let body = app.call(kind, path, args).await;
    assert_eq!(body["status"], "error", "{path} should fail: {body}");
    let text = |v: &Json| v.as_str().unwrap_or_default().to_string();
    (
        text(&body["errorData"]["code"]),
        text(&body["errorData"]["message"]),
    )
}

/// Uploads `bytes` through a fresh upload URL of `incident`; the storage id.
async fn upload(app: &App, who: &Member, incident: &str, bytes: &[u8]) -> String {
    let url = app
        .ok(
            "mutation",
            "incidentAttachments:generateUploadUrl",
            json!({"sessionToken": who.token, "incident_id": incident}),
        )
        .await;
    let response = app
        .http
        .post(url.as_str().unwrap())
        .header("content-type", "image/png")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Json = response.json().await.unwrap();
    body["storageId"].as_str().unwrap().to_string()
}

async fn list(app: &App, who: &Member, incident: &str) -> Json {
    app.ok(
        "query",
        "incidentAttachments:list",
        json!({"sessionToken": who.token, "incident_id": incident}),
    )
    .await
}

async fn stored_files(app: &App) -> usize {
    seed::rows(app, "storage_files").await.len()
}

#[tokio::test]
async fn workers_attach_files_to_their_own_open_incident_and_readers_download_them() {
    for db in backends() {
        let place = Place::new(db).await;
        let app = App::start(&place).await;
        let acme = company(&app, "Acme Care").await;
        let other = company(&app, "Other Care").await;
        let worker = anyone(&app, Some(&acme.id), "frontline_worker").await;
        let colleague = anyone(&app, Some(&acme.id), "frontline_worker").await;
        let lead = anyone(&app, Some(&acme.id), "team_lead").await;
        let admin = anyone(&app, Some(&acme.id), "company_admin").await;
        let outsider = anyone(&app, Some(&other.id), "company_admin").await;
        let id = incident(&app, &worker, &acme.site).await;

        let file = upload(&app, &worker, &id, PNG).await;
        let attached = app
            .ok(
                "mutation",
                "incidentAttachments:attach",
                json!({"sessionToken": worker.token, "incident_id": id, "storageId": file,
                       "file_name": "kitchen.png", "caption": "The spill by the sink"}),
            )
            .await;
        assert_eq!(attached["caption"], "The spill by the sink", "{db:?}");
        assert_eq!(attached["content_type"], "image/png");
        assert_eq!(attached["size"], PNG.len() as f64);

        // The team lead reads the incident, so sees the photo and can fetch it.
        let listed = list(&app, &lead, &id).await;
        assert_eq!(listed.as_array().unwrap().len(), 1);
        assert_eq!(listed[0]["file_name"], "kitchen.png");
        let url = listed[0]["url"].as_str().unwrap().to_string();
        let got = app.http.get(&url).send().await.unwrap();
        assert_eq!(got.status(), 200);
        assert_eq!(got.bytes().await.unwrap().as_ref(), PNG);

        // A colleague who may not read the incident, and another company, get nothing.
        let args = json!({"sessionToken": colleague.token, "incident_id": id});
        let (code, _) = failure(&app, "query", "incidentAttachments:list", args.clone()).await;
        assert_eq!(code, "FORBIDDEN");
        let (code, _) = failure(
            &app,
            "mutation",
            "incidentAttachments:generateUploadUrl",
            args,
        )
        .await;
        assert_eq!(code, "FORBIDDEN");
        let args = json!({"sessionToken": outsider.token, "incident_id": id});
        let (code, _) = failure(&app, "query", "incidentAttachments:list", args).await;
        assert_eq!(code, "NOT_FOUND");

        // Only files the worker uploaded, once each.
        let again = json!({"sessionToken": worker.token, "incident_id": id, "storageId": file});
        let (code, _) = failure(&app, "mutation", "incidentAttachments:attach", again).await;
        assert_eq!(code, "CONFLICT");
        let theirs_incident = incident(&app, &colleague, &acme.site).await;
        let theirs = upload(&app, &colleague, &theirs_incident, PNG).await;
        let steal = json!({"sessionToken": worker.token, "incident_id": id, "storageId": theirs});
        let (code, _) = failure(&app, "mutation", "incidentAttachments:attach", steal).await;
        assert_eq!(code, "VALIDATION");

        // Removing deletes the file: the link stops working.
        let attachment = attached["_id"].as_str().unwrap();
        let removed = app
            .ok(
                "mutation",
                "incidentAttachments:remove",
                json!({"sessionToken": worker.token, "incident_id": id,
                       "attachment_id": attachment}),
            )
            .await;
        assert_eq!(removed["success"], true);
        assert_eq!(app.http.get(&url).send().await.unwrap().status(), 404);
        assert_eq!(list(&app, &worker, &id).await, json!([]));

        // Deleting the incident deletes its files.
        let second = upload(&app, &worker, &id, PNG).await;
        app.ok(
            "mutation",
            "incidentAttachments:attach",
            json!({"sessionToken": worker.token, "incident_id": id, "storageId": second}),
        )
        .await;
        let before = stored_files(&app).await;
        app.ok(
            "mutation",
            "incidents:deleteIncident",
            json!({"sessionToken": admin.token, "id": id, "reason": "test"}),
        )
        .await;
        assert_eq!(stored_files(&app).await, before - 1);

        // Company admins read who touched which file; workers cannot.
        let log = app
            .ok(
                "query",
                "storageAccess:listAccessLog",
                json!({"sessionToken": admin.token}),
            )
            .await;
        let actions: Vec<&str> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"download") && actions.contains(&"delete"),
            "{actions:?}"
        );
        assert!(log.as_array().unwrap().iter().all(|e| e["at"].is_number()));
        let (code, _) = failure(
            &app,
            "query",
            "storageAccess:listAccessLog",
            json!({"sessionToken": worker.token}),
        )
        .await;
        assert_eq!(code, "FORBIDDEN");
        let outsiders = app
            .ok(
                "query",
                "storageAccess:listAccessLog",
                json!({"sessionToken": outsider.token}),
            )
            .await;
        assert_eq!(outsiders, json!([]));
        app.stop().await;
    }
}
